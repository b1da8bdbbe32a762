//! Card issuance and over-the-air top-up through the whole router (`oneshot`, SQLite in a
//! temporary directory), the test playing the phone: the fee paid through the DEVELOPMENT-ONLY
//! pay endpoint, the card's image loaded into a real in-process card (`yitong-card`), and the
//! platform's commands carried to it and its answers back over HTTP. The card itself checks
//! MAC2 and makes the TAC, so a load it accepts proves the service's keys and MACs.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use support::{beijing, issue, service, SecureElement};
use yitong_platform::ledger::{Account, CardId};
use yitong_platform::payments::MerchantOrderId;

#[tokio::test]
async fn a_card_is_issued_once_its_fee_is_paid_and_a_repeat_charges_nothing() {
    let s = service().await;
    let (status, answer) = s.post("/v1/cards", beijing("FEE-0001")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "payment_required");
    assert_eq!(answer["order"]["order_id"], "FEE-0001");
    assert_eq!(answer["order"]["kind"], "sign_up_fee");
    assert_eq!(answer["order"]["amount_fen"], 2_900, "29 yuan in Beijing, no promotion configured");
    assert_eq!(answer["order"]["state"], "created");
    assert_eq!(answer["standard_fee_fen"], 2_900);

    let (status, paid) = s.send(Method::POST, "/v1/dev/orders/FEE-0001/pay", None).await;
    assert_eq!((status, &paid["state"]), (StatusCode::OK, &json!("paid")), "{paid}");
    // Paying twice is refused, and changes nothing.
    let (code, _) = s.refused("/v1/dev/orders/FEE-0001/pay", None, StatusCode::CONFLICT).await;
    assert_eq!(code, "order_conflict");

    let (status, issued) = s.post("/v1/cards", beijing("FEE-0001")).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    assert_eq!((&issued["status"], &issued["existing"]), (&json!("issued"), &json!(false)));
    let card = &issued["card"];
    let serial = card["serial"].as_str().expect("serial");
    assert_eq!(serial.len(), 20);
    assert!(serial.starts_with("1000"), "a Beijing serial starts with its city code: {serial}");
    assert_eq!(
        (&card["fee_fen"], &card["fee_order_id"], &card["city"]),
        (&json!(2_900), &json!("FEE-0001"), &json!("beijing"))
    );
    assert!(!card["card_number"].as_str().expect("a card number").is_empty());
    // The image is a real card: it powers on, holds this serial and an empty purse.
    let mut se = SecureElement::new(issued["image_hex"].as_str().expect("an image"));
    assert_eq!(se.balance_fen(), 0);

    // Repeated, even with another fee order ID: the same card, nothing charged again.
    for fee_order in ["FEE-0001", "FEE-0002"] {
        let (status, again) = s.post("/v1/cards", beijing(fee_order)).await;
        assert_eq!(status, StatusCode::OK, "{again}");
        assert_eq!(again["existing"], true);
        assert_eq!(again["card"]["serial"], serial);
        assert_eq!(again["card"]["fee_order_id"], "FEE-0001");
    }
    assert_eq!(s.state.store().order(&MerchantOrderId::parse("FEE-0002").expect("an ID")).await.expect("read"), None);
    assert_eq!(s.balance(Account::FeeRevenue).await, -2_900, "one fee earned (a credit balance)");
    s.assert_balanced().await;
}

#[tokio::test]
async fn a_phone_that_cannot_carry_the_card_is_refused_with_the_reason() {
    let s = service().await;
    let mi5c = s.register("phone-B", "Mi 5c").await;
    let (status, answer) = s.send_as(Some(&mi5c), Method::POST, "/v1/cards", Some(beijing("FEE-0003"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let (code, message) = (answer["code"].as_str().expect("code"), answer["message"].as_str().expect("message"));
    assert_eq!(code, "not_eligible");
    assert!(message.contains("the Xiaomi Mi 5c has no NFC"), "{message}");

    // Bad input is a 400 naming the field; an unknown city a 404.
    let mut body = beijing("FEE-0003");
    body["channel"] = json!("post-office");
    let (code, message) = s.refused("/v1/cards", Some(body), StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "bad_field");
    assert!(message.contains("`channel`"), "{message}");
    let mut body = beijing("FEE-0003");
    body["fee_order_id"] = json!("a b");
    let (code, message) = s.refused("/v1/cards", Some(body), StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "bad_field");
    assert!(message.contains("`fee_order_id`"), "{message}");
    let mut body = beijing("FEE-0003");
    body["city"] = json!("atlantis");
    let (code, _) = s.refused("/v1/cards", Some(body), StatusCode::NOT_FOUND).await;
    assert_eq!(code, "not_found");
    let (code, message) = s.refused("/v1/cards", Some(json!({"city": "beijing"})), StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "bad_body");
    assert!(message.contains("channel"), "{message}");
    let (code, _) = s.refused("/v1/cards", None, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_eq!(code, "bad_body");
    // Nothing was opened or charged.
    assert_eq!(s.balance(Account::FeeRevenue).await, 0);
}

#[tokio::test]
async fn a_full_over_the_air_top_up_loads_the_card_once() {
    let s = service().await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().expect("serial").to_owned();
    let mut se = SecureElement::new(issued["image_hex"].as_str().expect("an image"));

    let (status, opened) =
        s.post("/v1/topups", json!({"card": serial, "amount_fen": 5_000, "order_id": "TOP-0001"})).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    assert_eq!((&opened["order"]["state"], &opened["order"]["kind"]), (&json!("created"), &json!("top_up")));
    // INITIALIZE FOR LOAD: key index 01, 5,000 fen, terminal 1000 FFFF 0002 (Beijing, over the air).
    assert_eq!(opened["initialize_command"], "805000020B01000013881000FFFF000210");
    let initialize = hex::decode(opened["initialize_command"].as_str().expect("hex")).expect("hex");

    // Not paid yet: no MAC2.
    let answer = se.send(&initialize);
    let authorize = "/v1/topups/TOP-0001/authorize";
    let (code, _) = s.refused(authorize, Some(json!({"answer": hex::encode(&answer)})), StatusCode::CONFLICT).await;
    assert_eq!(code, "order_not_paid");
    let (status, paid) = s.send(Method::POST, "/v1/dev/orders/TOP-0001/pay", None).await;
    assert_eq!((status, &paid["state"]), (StatusCode::OK, &json!("paid")), "{paid}");

    // A forged MAC1 (its last byte, before the status word) is refused.
    let answer = se.send(&initialize);
    let mut forged = answer.clone();
    forged[answer.len() - 3] ^= 1;
    let (code, message) =
        s.refused(authorize, Some(json!({"answer": hex::encode(&forged)})), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(code, "card_answer_rejected");
    assert!(message.contains("MAC1"), "{message}");

    let (status, authorization) = s.post(authorize, json!({"answer": hex::encode(&answer)})).await;
    assert_eq!(status, StatusCode::OK, "{authorization}");
    assert_eq!(authorization["tap_id"], "1000FFFF0002-1");
    assert_eq!(authorization["terminal_id"], "1000FFFF0002");
    // CREDIT FOR LOAD at the service's time (18:30:00 on 25 November 2026), MAC2, Le 4.
    let credit = authorization["credit_command"].as_str().expect("hex");
    assert!(
        credit.starts_with("805200000B20261125183000") && credit.ends_with("04") && credit.len() == 2 * 17,
        "{credit}"
    );

    // The card checks MAC2 with its own load key and answers the TAC.
    let credited = se.send(&hex::decode(credit).expect("hex"));
    assert_eq!(credited.len(), 6, "TAC and 9000: the card accepted MAC2");
    assert_eq!(&credited[4..], &[0x90, 0x00]);
    assert_eq!(se.balance_fen(), 5_000);

    // A TAC with one bit flipped proves nothing.
    let mut forged = credited.clone();
    forged[0] ^= 1;
    let complete = "/v1/topups/TOP-0001/complete";
    let (code, _) =
        s.refused(complete, Some(json!({"answer": hex::encode(&forged)})), StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(code, "card_answer_rejected");

    for _ in 0..2 {
        let (status, loaded) = s.post(complete, json!({"answer": hex::encode_upper(&credited)})).await;
        assert_eq!(status, StatusCode::OK, "{loaded}");
        assert_eq!(loaded["order"]["state"], "loaded");
        assert_eq!((&loaded["balance_after_fen"], &loaded["counter"]), (&json!(5_000), &json!(1)));
        assert_eq!(loaded["tac"], hex::encode_upper(&credited[..4]));
        assert_eq!(loaded["tap_id"], "1000FFFF0002-1");
    }
    // The paid order never loads twice.
    let answer = se.send(&initialize);
    let (code, _) = s.refused(authorize, Some(json!({"answer": hex::encode(&answer)})), StatusCode::CONFLICT).await;
    assert_eq!(code, "already_loaded");
    assert_eq!(se.balance_fen(), 5_000);
    let card = CardId::parse(&serial).expect("a card ID");
    assert_eq!(s.balance(Account::CardLiability(card)).await, -5_000, "the card's money, owed once");
    s.assert_balanced().await;
}

#[tokio::test]
async fn bad_hex_and_unknown_ids_are_4xx() {
    let s = service().await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().expect("serial").to_owned();
    let (status, _) = s.post("/v1/topups", json!({"card": serial, "amount_fen": 100, "order_id": "TOP-0001"})).await;
    assert_eq!(status, StatusCode::CREATED);

    let cases: [(&str, Value, StatusCode, &str); 10] = [
        ("/v1/topups/TOP-0001/authorize", json!({"answer": "zz"}), StatusCode::BAD_REQUEST, "bad_field"),
        ("/v1/topups/TOP-0001/complete", json!({"answer": "123"}), StatusCode::BAD_REQUEST, "bad_field"),
        ("/v1/topups/TOP-0001/authorize", json!({"answer": ""}), StatusCode::BAD_REQUEST, "bad_field"),
        ("/v1/topups/TOP-0001/authorize", json!({"answer": 12}), StatusCode::BAD_REQUEST, "bad_body"),
        ("/v1/topups/NOSUCH01/authorize", json!({"answer": "9000"}), StatusCode::NOT_FOUND, "not_found"),
        ("/v1/topups/NOSUCH01/complete", json!({"answer": "9000"}), StatusCode::NOT_FOUND, "not_found"),
        ("/v1/topups/a%20b/authorize", json!({"answer": "9000"}), StatusCode::BAD_REQUEST, "bad_path"),
        (
            "/v1/topups",
            json!({"card": "10000000000000000099", "amount_fen": 100, "order_id": "TOP-0002"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/v1/topups",
            json!({"card": serial, "amount_fen": 0, "order_id": "TOP-0003"}),
            StatusCode::BAD_REQUEST,
            "bad_field",
        ),
        (
            "/v1/topups",
            json!({"card": serial, "amount_fen": 200, "order_id": "TOP-0001"}),
            StatusCode::CONFLICT,
            "order_id_taken",
        ),
    ];
    for (uri, body, status, want) in cases {
        let (code, message) = s.refused(uri, Some(body.clone()), status).await;
        assert_eq!(code, want, "{uri} {body}: {message}");
    }
    // A short, garbled card answer is the card's answer refused, not a crash.
    s.send(Method::POST, "/v1/dev/orders/TOP-0001/pay", None).await;
    let (code, _) = s
        .refused("/v1/topups/TOP-0001/authorize", Some(json!({"answer": "01029000"})), StatusCode::UNPROCESSABLE_ENTITY)
        .await;
    assert_eq!(code, "card_answer_rejected");
    let (code, _) = s.refused("/v1/dev/orders/NOSUCH01/pay", None, StatusCode::NOT_FOUND).await;
    assert_eq!(code, "not_found");
    // A top-up order is not a card's fee order and vice versa.
    let (code, _) =
        s.refused("/v1/topups/FEE-0001/authorize", Some(json!({"answer": "9000"})), StatusCode::NOT_FOUND).await;
    assert_eq!(code, "not_found");
}

#[tokio::test]
async fn the_openapi_document_lists_the_new_routes_and_marks_the_dev_one() {
    let s = service().await;
    let (status, document) = s.send(Method::GET, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/phones",
        "/v1/cards",
        "/v1/topups",
        "/v1/topups/{id}/authorize",
        "/v1/topups/{id}/complete",
        "/v1/topups/{id}/reconcile",
        "/v1/dev/orders/{id}/pay",
    ] {
        assert!(document["paths"][path]["post"].is_object(), "{path} missing");
    }
    for path in [
        "/v1/phones/me",
        "/v1/cards/{serial}",
        "/v1/topups/{id}/evidence",
        "/v1/operator/cards/{serial}",
        "/v1/operator/ledger/check",
    ] {
        assert!(document["paths"][path]["get"].is_object(), "{path} missing");
    }
    // Each route says which credential it takes; registration and the dev endpoint take none.
    let security = |path: &str, method: &str| document["paths"][path][method]["security"].clone();
    assert_eq!(security("/v1/cards", "post"), json!([{"phone_token": []}]));
    assert_eq!(security("/v1/topups/{id}/reconcile", "post"), json!([{"phone_token": []}]));
    assert_eq!(security("/v1/operator/ledger/check", "get"), json!([{"operator_key": []}]));
    assert_eq!(security("/v1/phones", "post"), Value::Null);
    assert_eq!(security("/v1/dev/orders/{id}/pay", "post"), Value::Null);
    for scheme in ["phone_token", "operator_key"] {
        assert_eq!(document["components"]["securitySchemes"][scheme]["scheme"], "bearer", "{scheme}");
    }
    let dev = document["paths"]["/v1/dev/orders/{id}/pay"]["post"]["description"].as_str().expect("a description");
    assert!(dev.contains("DEVELOPMENT ONLY"), "{dev}");
}
