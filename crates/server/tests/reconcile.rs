//! A top-up whose phone vanished between `authorize` and `complete`, settled over HTTP from a
//! real card's evidence (GET TRANSACTION PROVE, EF18, a fresh INITIALIZE FOR LOAD): loaded →
//! recovered with the card's TAC; not loaded → refunded or loaded again; loaded by another
//! terminal meanwhile → handed on unconfirmed; evidence that proves nothing → 422, nothing
//! changed. The ledger balances after each.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use support::{issue, paid_topup, service, SecureElement, Service};

/// A card of phone-A with top-up TOP-0001 of 50 yuan authorized: (service, card, CREDIT FOR LOAD, serial).
async fn authorized() -> (Service, SecureElement, Vec<u8>, String) {
    let s = service().await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().expect("serial").to_owned();
    let mut se = SecureElement::new(issued["image_hex"].as_str().expect("an image"));
    let initialize = paid_topup(&s, &s.token, &serial, "TOP-0001", 5_000).await;
    let answer = se.send(&initialize);
    let (status, authorization) =
        s.send(Method::POST, "/v1/topups/TOP-0001/authorize", Some(json!({"answer": hex::encode(&answer)}))).await;
    assert_eq!(status, StatusCode::OK, "{authorization}");
    let credit = hex::decode(authorization["credit_command"].as_str().expect("hex")).expect("hex");
    (s, se, credit, serial)
}

/// The phone at its next contact: the evidence commands sent to its card, the answers as the
/// reconcile body.
async fn evidence(s: &Service, se: &mut SecureElement, when_not_loaded: &str) -> Value {
    let (status, commands) = s.send(Method::GET, "/v1/topups/TOP-0001/evidence", None).await;
    assert_eq!(status, StatusCode::OK, "{commands}");
    let send = |se: &mut SecureElement, command: &Value| {
        hex::encode_upper(se.send(&hex::decode(command.as_str().expect("hex")).expect("hex")))
    };
    let prove = send(se, &commands["prove"]);
    let log: Vec<String> = commands["log"].as_array().expect("log").iter().map(|c| send(se, c)).collect();
    assert_eq!(log.len(), 10, "EF18 holds ten records");
    let initialize = send(se, &commands["initialize"]);
    json!({"prove": prove, "log": log, "initialize": initialize, "when_not_loaded": when_not_loaded})
}

#[tokio::test]
async fn a_load_the_card_made_is_recovered_with_its_tac() {
    let (s, mut se, credit, serial) = authorized().await;
    let credited = se.send(&credit);
    assert_eq!(&credited[4..], &[0x90, 0x00], "the card committed; its answer is lost");
    assert_eq!(se.balance_fen(), 5_000);

    let body = evidence(&s, &mut se, "refund").await;
    let (status, settled) = s.send(Method::POST, "/v1/topups/TOP-0001/reconcile", Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{settled}");
    assert_eq!((&settled["status"], &settled["order"]["state"]), (&json!("loaded"), &json!("loaded")), "{settled}");
    assert_eq!(settled["tac"], hex::encode_upper(&credited[..4]), "the TAC the card made, verified");
    assert_eq!((&settled["balance_after_fen"], &settled["counter"]), (&json!(5_000), &json!(1)));
    // Asked again: nothing in doubt, nothing posted twice.
    let (status, again) = s.send(Method::POST, "/v1/topups/TOP-0001/reconcile", Some(body)).await;
    assert_eq!((status, &again["status"]), (StatusCode::OK, &json!("nothing_in_doubt")), "{again}");
    let (_, view) = s.send(Method::GET, &format!("/v1/cards/{serial}"), None).await;
    assert_eq!(view["balance_fen"], 5_000);
    s.assert_balanced().await;
}

#[tokio::test]
async fn a_load_the_card_never_made_is_refunded() {
    let (s, mut se, _credit, serial) = authorized().await;
    // CREDIT never reached the card.
    let body = evidence(&s, &mut se, "refund").await;
    let (status, settled) = s.send(Method::POST, "/v1/topups/TOP-0001/reconcile", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{settled}");
    assert_eq!(settled["status"], "refunded", "{settled}");
    let state = settled["order"]["state"].as_str().expect("a state");
    assert!(state == "refunded" || state == "refund_pending", "{state}");
    assert_eq!(se.balance_fen(), 0);
    let (_, view) = s.send(Method::GET, &format!("/v1/cards/{serial}"), None).await;
    assert_eq!((&view["balance_fen"], &view["history"][0]["kind"]), (&json!(0), &json!("refund")), "{view}");
    s.assert_balanced().await;
}

#[tokio::test]
async fn a_load_the_card_never_made_is_loaded_again_once() {
    let (s, mut se, old_credit, _) = authorized().await;
    let body = evidence(&s, &mut se, "load_again").await;
    let (status, settled) = s.send(Method::POST, "/v1/topups/TOP-0001/reconcile", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{settled}");
    assert_eq!((&settled["status"], &settled["order"]["state"]), (&json!("load_again"), &json!("loading")));
    assert_eq!(settled["terminal_id"], "1000FFFF0002");
    assert_eq!(settled["tap_id"], "1000FFFF0002-2", "a new transaction of our terminal");
    // The old session's MAC2 is void: the card's fresh INITIALIZE replaced it.
    let credit = hex::decode(settled["credit_command"].as_str().expect("hex")).expect("hex");
    let credited = se.send(&credit);
    assert_eq!(&credited[4..], &[0x90, 0x00], "the card accepts the new MAC2");
    let (status, loaded) =
        s.send(Method::POST, "/v1/topups/TOP-0001/complete", Some(json!({"answer": hex::encode(&credited)}))).await;
    assert_eq!((status, &loaded["order"]["state"]), (StatusCode::OK, &json!("loaded")), "{loaded}");
    assert_eq!(se.balance_fen(), 5_000, "loaded once");
    assert!(!se.send(&old_credit).ends_with(&[0x90, 0x00]), "the old CREDIT loads nothing more");
    assert_eq!(se.balance_fen(), 5_000);
    s.assert_balanced().await;
}

#[tokio::test]
async fn evidence_that_proves_nothing_changes_nothing() {
    let (s, mut se, _credit, _) = authorized().await;
    let mut body = evidence(&s, &mut se, "refund").await;
    let uri = "/v1/topups/TOP-0001/reconcile";
    // No proof of the load and no fresh INITIALIZE: the card's word is missing, not "no".
    body["initialize"] = Value::Null;
    let (status, refused) = s.send(Method::POST, uri, Some(body.clone())).await;
    assert_eq!(
        (status, &refused["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("evidence_incomplete")),
        "{refused}"
    );
    // A fresh INITIALIZE whose MAC1 is forged proves nothing either.
    let mut initialize = se.send(&hex::decode("805000020B01000013881000FFFF000210").expect("hex"));
    let at = initialize.len() - 3;
    initialize[at] ^= 1;
    body["initialize"] = json!(hex::encode(&initialize));
    let (status, refused) = s.send(Method::POST, uri, Some(body.clone())).await;
    assert_eq!(
        (status, &refused["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("evidence_incomplete")),
        "{refused}"
    );
    // Bad fields are 400s naming them.
    let mut bad = body.clone();
    bad["when_not_loaded"] = json!("keep");
    let (status, refused) = s.send(Method::POST, uri, Some(bad)).await;
    assert_eq!((status, &refused["code"]), (StatusCode::BAD_REQUEST, &json!("bad_field")));
    assert!(refused["message"].as_str().expect("message").contains("when_not_loaded"), "{refused}");
    let mut bad = body.clone();
    bad["log"] = json!(vec!["9000"; 11]);
    let (status, refused) = s.send(Method::POST, uri, Some(bad)).await;
    assert_eq!((status, &refused["code"]), (StatusCode::BAD_REQUEST, &json!("bad_field")), "{refused}");
    let mut bad = body;
    bad["prove"] = json!("xyz");
    let (status, refused) = s.send(Method::POST, uri, Some(bad)).await;
    assert_eq!((status, &refused["code"]), (StatusCode::BAD_REQUEST, &json!("bad_field")), "{refused}");
    // Still in doubt: the evidence commands still ask the card for the proof.
    let (status, order) = s.send(Method::GET, "/v1/topups/TOP-0001/evidence", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(order["prove"].is_string(), "{order}");
    s.assert_balanced().await;
}

#[tokio::test]
async fn a_load_another_terminal_made_meanwhile_is_handed_on_unconfirmed() {
    let (s, mut se, old_credit, serial) = authorized().await;
    // Our CREDIT never reached the card; a station's machine loads 7 yuan meanwhile and takes the
    // online counter our MAC2 was for.
    let at = yitong_profile::DateTime::new(2026, 11, 25, 18, 35, 0).expect("a time");
    se.station_load(&s, &serial, 700, at);
    assert_eq!(se.balance_fen(), 700);
    let body = evidence(&s, &mut se, "refund").await;
    let uri = "/v1/topups/TOP-0001/reconcile";
    let (status, settled) = s.send(Method::POST, uri, Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{settled}");
    // Neither loaded nor refunded: the card's word on our load is gone.
    assert_eq!((&settled["status"], &settled["order"]["state"]), (&json!("unconfirmed"), &json!("loading")));
    assert_eq!(settled["tap_id"], "1000FFFF0002-1", "our load record, handed on");
    let (status, again) = s.send(Method::POST, uri, Some(body)).await;
    assert_eq!((status, &again["code"]), (StatusCode::CONFLICT, &json!("load_unconfirmed")), "{again}");
    assert!(!se.send(&old_credit).ends_with(&[0x90, 0x00]), "our old CREDIT loads nothing");
    assert_eq!(se.balance_fen(), 700);
    s.assert_balanced().await;
}
