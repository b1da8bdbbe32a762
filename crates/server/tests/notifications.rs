//! The provider's paid-notification callback over HTTP (`POST /v1/payments/notifications`): a
//! notification the simulated provider signed books the payment once (sent again: `duplicate`);
//! an altered body under its signature, a missing or garbled signature, a body that is not UTF-8
//! or too long are refused and book nothing. The ledger balances after each.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use support::{issue, Service};
use tower::ServiceExt;
use yitong_platform::payments::{MerchantOrderId, OrderState, PayOutcome, SignedNotification};

/// Phone-A's card with top-up TOP-0001 of 30 yuan opened and paid at the provider, whose
/// notification is held back: (service, the notification).
async fn paid_at_the_provider() -> (Service, SignedNotification) {
    let s = support::service().await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().expect("serial");
    let body = json!({"card": serial, "amount_fen": 3_000, "order_id": "TOP-0001"});
    let (status, opened) = s.send(Method::POST, "/v1/topups", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let provider = &s.state.services().provider;
    let id = MerchantOrderId::parse("TOP-0001").expect("an order ID");
    assert_eq!(provider.pay(&id, s.state.now_ms()), PayOutcome::Paid { notifications: 1 });
    let notification = provider.poll_notification().expect("the provider's notification");
    (s, notification)
}

/// (status, JSON answer) of the callback with `body` and the signature header `signature`.
async fn deliver(s: &Service, body: impl Into<Body>, signature: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/v1/payments/notifications")
        .header("content-type", "application/json");
    if let Some(signature) = signature {
        request = request.header("Yitong-Signature", signature);
    }
    let response = yitong_server::router(s.state.clone())
        .oneshot(request.body(body.into()).expect("a request"))
        .await
        .expect("the router answers");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    (status, serde_json::from_slice(&bytes).expect("a JSON answer"))
}

async fn state_of(s: &Service) -> OrderState {
    let id = MerchantOrderId::parse("TOP-0001").expect("an order ID");
    s.state.store().order(&id).await.expect("read").expect("the order").state
}

#[tokio::test]
async fn a_signed_notification_books_the_payment_once() {
    let (s, signed) = paid_at_the_provider().await;
    let (status, answer) = deliver(&s, signed.body.clone(), Some(&signed.signature)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!((&answer["outcome"], &answer["order"]["state"]), (&json!("paid"), &json!("paid")), "{answer}");
    assert_eq!((&answer["order"]["order_id"], &answer["order"]["amount_fen"]), (&json!("TOP-0001"), &json!(3_000)));
    let postings = s.state.store().check_ledger().await.expect("checked").postings;

    // The provider retries: answered as booked, nothing booked again.
    let (status, again) = deliver(&s, signed.body.clone(), Some(&signed.signature.to_uppercase())).await;
    assert_eq!((status, &again["outcome"]), (StatusCode::OK, &json!("duplicate")), "{again}");
    assert_eq!(s.state.store().check_ledger().await.expect("checked").postings, postings);
    s.assert_balanced().await;
}

#[tokio::test]
async fn an_altered_or_unsigned_notification_books_nothing() {
    let (s, signed) = paid_at_the_provider().await;
    let altered = signed.body.replace("3000", "300000");
    assert_ne!(altered, signed.body, "the amount is in the body: {}", signed.body);
    let (status, refused) = deliver(&s, altered, Some(&signed.signature)).await;
    assert_eq!((status, &refused["code"]), (StatusCode::FORBIDDEN, &json!("bad_signature")), "{refused}");

    let (status, refused) = deliver(&s, signed.body.clone(), None).await;
    assert_eq!((status, &refused["code"]), (StatusCode::BAD_REQUEST, &json!("bad_notification")), "{refused}");
    assert!(refused["message"].as_str().expect("text").contains("Yitong-Signature"), "{refused}");
    let (status, refused) = deliver(&s, signed.body.clone(), Some("not hex")).await;
    assert_eq!((status, &refused["code"]), (StatusCode::BAD_REQUEST, &json!("bad_notification")), "{refused}");
    assert!(refused["message"].as_str().expect("text").contains("128 hex digits"), "{refused}");
    let (status, refused) = deliver(&s, vec![0xff, 0xfe, b'{'], Some(&signed.signature)).await;
    assert_eq!((status, &refused["code"]), (StatusCode::BAD_REQUEST, &json!("bad_notification")), "{refused}");
    let (status, refused) = deliver(&s, " ".repeat(5_000), Some(&signed.signature)).await;
    assert_eq!((status, &refused["code"]), (StatusCode::BAD_REQUEST, &json!("bad_notification")), "{refused}");
    assert!(refused["message"].as_str().expect("text").contains("longer than 4096 bytes"), "{refused}");
    let (status, refused) = deliver(&s, " ".repeat(100_000), Some(&signed.signature)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{refused}");

    assert_eq!(state_of(&s).await, OrderState::Created, "nothing booked");
    s.assert_balanced().await;
    // The genuine one still books it.
    let (status, answer) = deliver(&s, signed.body.clone(), Some(&signed.signature)).await;
    assert_eq!((status, &answer["outcome"]), (StatusCode::OK, &json!("paid")), "{answer}");
    assert_eq!(state_of(&s).await, OrderState::Paid);
}
