//! The hotlist over HTTP: an operator lists and unlists cards of its own issuer with a reason, a
//! gate's copy follows by deltas (`since`), other credentials and bad input are refused.

mod support;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use support::{service, Service};
use yitong_clearing::hotlist::{Actor, ChangeKind};
use yitong_clearing::shadow::CardId;
use yitong_platform::access;

async fn operator_key(s: &Service, city: &str, name: &str) -> String {
    let (_, key) = access::new_operator_key(s.state.store(), s.state.cities(), city, name, 0).await.expect("a key");
    key.expose().to_owned()
}

async fn as_key(s: &Service, key: &str, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    s.send_as(Some(key), method, uri, body).await
}

const SERIAL: &str = "10000000000000000042";

#[tokio::test]
async fn an_operator_lists_and_unlists_and_gates_follow_by_deltas() {
    let s = service().await;
    let beijing = operator_key(&s, "beijing", "desk1").await;
    let gate = operator_key(&s, "shanghai", "gate-sync").await;

    let (status, empty) = as_key(&s, &gate, Method::GET, "/v1/hotlist", None).await;
    assert_eq!(status, StatusCode::OK, "{empty}");
    assert_eq!(empty, json!({"from": 0, "to": 0, "added": [], "removed": []}));

    let body = json!({"serial": SERIAL, "reason": "reported stolen"});
    let (status, listed) = as_key(&s, &beijing, Method::POST, "/v1/operator/hotlist", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{listed}");
    assert_eq!(
        (&listed["version"], &listed["issuer_id"], &listed["serial"], &listed["kind"], &listed["by"]),
        (&json!(1), &json!("0000100000000001"), &json!(SERIAL), &json!("added"), &json!("desk1")),
        "Beijing's issuer ID: 0000 · city code 1000 · 00000001"
    );
    assert_eq!(listed["at"], "2026-11-25 18:30:00", "the service's clock");
    let (status, again) = as_key(&s, &beijing, Method::POST, "/v1/operator/hotlist", Some(body)).await;
    assert_eq!((status, &again["code"]), (StatusCode::CONFLICT, &json!("already_listed")), "{again}");

    // A gate of another city sees every issuer's cards (it accepts every T-Union card).
    let (status, delta) = as_key(&s, &gate, Method::GET, "/v1/hotlist?since=0", None).await;
    assert_eq!(status, StatusCode::OK, "{delta}");
    assert_eq!((&delta["from"], &delta["to"]), (&json!(0), &json!(1)));
    assert_eq!(delta["added"][0]["serial"], SERIAL);

    // The policy lists another card, the desk removes the first: a gate at 1 learns both.
    let other = CardId { issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1], card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0x43] };
    let at = s.state.now();
    s.state
        .store()
        .change_hotlist(other, ChangeKind::Added, "clone: counter 7 twice", Actor::Policy, at, 0)
        .await
        .expect("listed");
    let uri = format!("/v1/operator/hotlist/{SERIAL}/remove");
    let (status, removed) = as_key(&s, &beijing, Method::POST, &uri, Some(json!({"reason": "found"}))).await;
    assert_eq!((status, &removed["version"], &removed["kind"]), (StatusCode::OK, &json!(3), &json!("removed")));
    let (_, delta) = as_key(&s, &gate, Method::GET, "/v1/hotlist?since=1", None).await;
    assert_eq!((&delta["from"], &delta["to"]), (&json!(1), &json!(3)), "{delta}");
    assert_eq!(delta["added"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (&delta["added"][0]["serial"], &delta["added"][0]["by"]),
        (&json!("10000000000000000043"), &json!("policy"))
    );
    assert_eq!(delta["removed"], json!([{"issuer_id": "0000100000000001", "serial": SERIAL}]));
    let (status, gone) = as_key(&s, &beijing, Method::POST, &uri, Some(json!({"reason": "twice"}))).await;
    assert_eq!((status, &gone["code"]), (StatusCode::CONFLICT, &json!("not_listed")), "{gone}");
}

#[tokio::test]
async fn other_credentials_and_bad_input_are_refused() {
    let s = service().await;
    let beijing = operator_key(&s, "beijing", "desk1").await;
    // A phone's token is no operator key.
    let (status, _) = s.send(Method::GET, "/v1/hotlist", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s.send_as(None, Method::GET, "/v1/hotlist", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for since in ["x", "-1", "5"] {
        let (status, error) = as_key(&s, &beijing, Method::GET, &format!("/v1/hotlist?since={since}"), None).await;
        assert_eq!((status, &error["code"]), (StatusCode::BAD_REQUEST, &json!("bad_parameter")), "{since}: {error}");
    }
    for (serial, reason) in [("XYZ", "stolen"), ("1000000000000000004", "stolen"), (SERIAL, "  ")] {
        let body = json!({"serial": serial, "reason": reason});
        let (status, error) = as_key(&s, &beijing, Method::POST, "/v1/operator/hotlist", Some(body)).await;
        assert_eq!((status, &error["code"]), (StatusCode::BAD_REQUEST, &json!("bad_field")), "{serial}: {error}");
    }
    let (status, _) =
        as_key(&s, &beijing, Method::POST, "/v1/operator/hotlist/XYZ/remove", Some(json!({"reason": "r"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, delta) = as_key(&s, &beijing, Method::GET, "/v1/hotlist", None).await;
    assert_eq!(delta["to"], 0, "nothing was written");
}
