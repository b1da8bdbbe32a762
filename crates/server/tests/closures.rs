//! Card transfer and deletion over HTTP with real in-process cards: the closure's commands
//! carried to the card and its answers back until it is empty and blocked for good; a transfer
//! claimed and loaded onto the new phone's card; a deletion refunded. Other phones' cards,
//! closures and transfers are refused; forged card answers change nothing; the ledger balances
//! after each.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use support::{issue, issue_as, top_up, SecureElement, Service};
use yitong_platform::ledger::Account;
use yitong_profile::apdu;

/// Phone-A's Beijing card with `amount_fen` loaded: (service, card, serial).
async fn loaded(amount_fen: i64) -> (Service, SecureElement, String) {
    let s = support::service().await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().expect("serial").to_owned();
    let mut se = SecureElement::new(issued["image_hex"].as_str().expect("an image"));
    top_up(&s, &s.token, &mut se, &serial, "TOP-0001", amount_fen).await;
    (s, se, serial)
}

fn command(step: &Value) -> Vec<u8> {
    hex::decode(step["command"].as_str().expect("a command while open")).expect("hex")
}

/// Runs the closure from `step` to `closed`: each command sent to the card, its answer posted.
async fn run(s: &Service, se: &mut SecureElement, mut step: Value) -> Value {
    for _ in 0..12 {
        if step["state"] == "closed" {
            return step;
        }
        let answer = se.send(&command(&step));
        let uri = format!("/v1/closures/{}/answer", step["closure_id"].as_str().expect("an ID"));
        let (status, next) = s.post(&uri, json!({"answer": hex::encode(&answer)})).await;
        assert_eq!(status, StatusCode::OK, "{next}");
        step = next;
    }
    panic!("the closure did not close: {step}");
}

/// The card refuses a purchase: blocked (`6283`, card-profile status words).
fn assert_blocked(se: &mut SecureElement) {
    let initialize = apdu::initialize_for_purchase(false, 100, [0x11, 0x22, 0x33, 0x44, 0x55, 0x66]);
    assert_eq!(se.send(&initialize), [0x62, 0x83]);
}

#[tokio::test]
async fn a_card_moves_to_a_new_phone_over_http() {
    let (s, mut se, serial) = loaded(5_000).await;
    let uri = format!("/v1/cards/{serial}/closure");
    let (status, first) = s.post(&uri, json!({"purpose": "transfer"})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["closure_id"], format!("C{serial}"));
    assert_eq!((&first["purpose"], &first["state"]), (&json!("transfer"), &json!("open")));
    // GET BALANCE first (card-profile: `80 5C 00 02 04`).
    assert_eq!(command(&first), [0x80, 0x5C, 0x00, 0x02, 0x04]);

    let closed = run(&s, &mut se, first).await;
    assert_eq!(closed["moved_fen"], 5_000, "{closed}");
    assert_eq!(closed["unconfirmed_fen"], 0);
    assert!(closed["command"].is_null());
    let code = closed["transfer_code"].as_str().expect("a transfer code").to_owned();
    assert_eq!(code.len(), 32, "128 bits as hex");
    assert_eq!(se.balance_fen(), 0, "the old card is empty");
    assert_blocked(&mut se);
    // Starting again answers the outcome (200) with a fresh code; the first claims nothing now.
    let (status, again) = s.post(&uri, json!({"purpose": "transfer"})).await;
    assert_eq!((status, &again["state"], &again["moved_fen"]), (StatusCode::OK, &json!("closed"), &json!(5_000)));
    let stale = code;
    let code = again["transfer_code"].as_str().expect("a fresh code").to_owned();
    assert_ne!(code, stale);
    let (_, view) = s.send(Method::GET, &format!("/v1/cards/{serial}"), None).await;
    assert_eq!((&view["state"], &view["balance_fen"]), (&json!("closed"), &json!(0)), "{view}");
    assert_eq!(s.balance(Account::TransfersPayable).await, -5_000, "owed to the new card");

    // The old phone cannot claim its own transfer; a malformed channel names the field.
    let claim = "/v1/transfers/claim";
    let (code_name, _) =
        s.refused(claim, Some(json!({"code": code, "channel": "maker-wallet"})), StatusCode::CONFLICT).await;
    assert_eq!(code_name, "transfer_not_claimable");
    let phone_b = s.register("phone-B", "Mi 6").await;
    let (status, _) =
        s.send_as(Some(&phone_b), Method::POST, claim, Some(json!({"code": stale, "channel": "maker-wallet"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a replaced code");
    let (status, bad) =
        s.send_as(Some(&phone_b), Method::POST, claim, Some(json!({"code": code, "channel": "post"}))).await;
    assert_eq!((status, &bad["code"]), (StatusCode::BAD_REQUEST, &json!("bad_field")), "{bad}");

    let body = json!({"code": code, "channel": "maker-wallet"});
    let (status, claimed) = s.send_as(Some(&phone_b), Method::POST, claim, Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{claimed}");
    assert_eq!((&claimed["card"]["device_id"], &claimed["card"]["fee_fen"]), (&json!("phone-B"), &json!(0)));
    let order = &claimed["load_order"];
    assert_eq!(
        (&order["kind"], &order["state"], &order["amount_fen"]),
        (&json!("transfer"), &json!("paid"), &json!(5_000))
    );
    let new_serial = claimed["card"]["serial"].as_str().expect("serial").to_owned();
    assert_ne!(new_serial, serial);
    let mut new_se = SecureElement::new(claimed["image_hex"].as_str().expect("an image"));
    let initialize = hex::decode(claimed["initialize_command"].as_str().expect("hex")).expect("hex");
    let order_id = order["order_id"].as_str().expect("an order ID");
    let answer = new_se.send(&initialize);
    let (status, authorization) = s
        .send_as(
            Some(&phone_b),
            Method::POST,
            &format!("/v1/topups/{order_id}/authorize"),
            Some(json!({"answer": hex::encode(answer)})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{authorization}");
    let credited = new_se.send(&hex::decode(authorization["credit_command"].as_str().expect("hex")).expect("hex"));
    let (status, done) = s
        .send_as(
            Some(&phone_b),
            Method::POST,
            &format!("/v1/topups/{order_id}/complete"),
            Some(json!({"answer": hex::encode(credited)})),
        )
        .await;
    assert_eq!((status, &done["balance_after_fen"]), (StatusCode::OK, &json!(5_000)), "{done}");
    assert_eq!(new_se.balance_fen(), 5_000, "the balance moved, verified by the new card's TAC");

    // The same claim again: the same card (200); a third phone's: refused.
    let (status, repeat) = s.send_as(Some(&phone_b), Method::POST, claim, Some(body.clone())).await;
    assert_eq!((status, &repeat["card"]["serial"]), (StatusCode::OK, &json!(new_serial)), "{repeat}");
    let phone_c = s.register("phone-C", "Mi 6").await;
    let (status, third) = s.send_as(Some(&phone_c), Method::POST, claim, Some(body)).await;
    assert_eq!((status, &third["code"]), (StatusCode::CONFLICT, &json!("transfer_not_claimable")), "{third}");
    let (status, unknown) = s
        .send_as(
            Some(&phone_c),
            Method::POST,
            claim,
            Some(json!({"code": "00000000000000000000000000000000", "channel": "maker-wallet"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
    assert_eq!(s.balance(Account::TransfersPayable).await, 0, "paid out to the new card");
    s.assert_balanced().await;
}

#[tokio::test]
async fn a_deleted_card_has_its_balance_refunded() {
    let (s, mut se, serial) = loaded(3_000).await;
    let (status, first) = s.post(&format!("/v1/cards/{serial}/closure"), json!({"purpose": "delete"})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let closed = run(&s, &mut se, first).await;
    assert_eq!(closed["moved_fen"], 3_000, "{closed}");
    assert!(closed.get("transfer_code").is_none());
    let refund = &closed["refund_order"];
    assert_eq!((&refund["kind"], &refund["amount_fen"]), (&json!("balance_refund"), &json!(3_000)), "{closed}");
    assert_eq!(refund["state"], "refunded", "the simulated provider refunds the top-up at once");
    assert_blocked(&mut se);
    let (_, view) = s.send(Method::GET, &format!("/v1/cards/{serial}"), None).await;
    assert_eq!(view["state"], "closed");
    assert!(view["history"].as_array().expect("history").iter().any(|h| h["kind"] == "balance_refund"), "{view}");
    // A closure of the other purpose is refused now.
    let (code, _) = s
        .refused(&format!("/v1/cards/{serial}/closure"), Some(json!({"purpose": "transfer"})), StatusCode::CONFLICT)
        .await;
    assert_eq!(code, "closing_for_other_purpose");
    assert_eq!(s.balance(Account::RefundsPayable).await, 0, "nothing left owed");
    s.assert_balanced().await;
}

#[tokio::test]
async fn another_phones_card_and_closure_are_not_found() {
    let (s, mut se, serial) = loaded(1_000).await;
    let other = s.register("phone-B", "Mi 6").await;
    issue_as(&s, &other, "FEE-0002").await;
    let uri = format!("/v1/cards/{serial}/closure");
    let (status, answer) = s.send_as(Some(&other), Method::POST, &uri, Some(json!({"purpose": "delete"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");

    let (_, first) = s.post(&uri, json!({"purpose": "delete"})).await;
    let closure = format!("/v1/closures/{}/answer", first["closure_id"].as_str().expect("an ID"));
    let balance = se.send(&command(&first));
    let body = json!({"answer": hex::encode(&balance)});
    let (status, answer) = s.send_as(Some(&other), Method::POST, &closure, Some(body.clone())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = s.send_as(None, Method::POST, &closure, Some(body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let (_, view) = s.send(Method::GET, &format!("/v1/cards/{serial}"), None).await;
    assert_eq!((&view["state"], &view["balance_fen"]), (&json!("closing"), &json!(1_000)));
}

#[tokio::test]
async fn bad_input_and_forged_answers_change_nothing() {
    let (s, mut se, serial) = loaded(2_000).await;
    let uri = format!("/v1/cards/{serial}/closure");
    let (code, message) = s.refused(&uri, Some(json!({"purpose": "burn"})), StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "bad_field");
    assert!(message.contains("purpose"), "{message}");
    let (code, _) =
        s.refused("/v1/cards/XY-Z/closure", Some(json!({"purpose": "delete"})), StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "bad_path");
    s.refused("/v1/closures/CNOSUCH/answer", Some(json!({"answer": "9000"})), StatusCode::NOT_FOUND).await;
    // Not a closure ID at all (a NUL, not `C` and a card ID): not found, and never sent to SQL.
    for id in ["C%00", "X1000", "C"] {
        s.refused(&format!("/v1/closures/{id}/answer"), Some(json!({"answer": "9000"})), StatusCode::NOT_FOUND).await;
    }

    let (_, mut step) = s.post(&uri, json!({"purpose": "delete"})).await;
    let answer_uri = format!("/v1/closures/{}/answer", step["closure_id"].as_str().expect("an ID"));
    let (code, _) = s.refused(&answer_uri, Some(json!({"answer": "not hex"})), StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "bad_field");
    // Up to DEBIT FOR PURCHASE (`80 54`), then a forged TAC: refused, nothing recorded.
    loop {
        let command = command(&step);
        let answer = se.send(&command);
        if command[..2] == [0x80, 0x54] {
            let mut forged = answer.clone();
            forged[0] ^= 0x01;
            let (code, _) = s
                .refused(&answer_uri, Some(json!({"answer": hex::encode(&forged)})), StatusCode::UNPROCESSABLE_ENTITY)
                .await;
            assert_eq!(code, "card_answer_rejected");
            assert_eq!(s.balance(Account::RefundsPayable).await, 0, "nothing moved on a forged answer");
            let (status, next) = s.post(&answer_uri, json!({"answer": hex::encode(&answer)})).await;
            assert_eq!(status, StatusCode::OK, "{next}");
            step = next;
            break;
        }
        let (status, next) = s.post(&answer_uri, json!({"answer": hex::encode(&answer)})).await;
        assert_eq!(status, StatusCode::OK, "{next}");
        step = next;
    }
    let closed = run(&s, &mut se, step).await;
    assert_eq!(closed["moved_fen"], 2_000, "{closed}");
    s.assert_balanced().await;
}
