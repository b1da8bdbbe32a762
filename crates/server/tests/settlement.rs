//! The day's clearing report over HTTP: a card's fee and top-up settled for 25 November 2026 as
//! JSON and CSV, for any operator key; bad parameters named.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use support::{issue, service, top_up, SecureElement};
use tower::ServiceExt;
use yitong_platform::access;

#[tokio::test]
async fn a_day_is_settled_as_json_and_csv() {
    let s = service().await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().expect("serial").to_owned();
    let mut se = SecureElement::new(issued["image_hex"].as_str().expect("an image"));
    top_up(&s, &s.token, &mut se, &serial, "TOP-0001", 5_000).await;
    let (_, city) = access::new_operator_key(s.state.store(), s.state.cities(), "shanghai", "desk", 0).await.unwrap();
    let uri = "/v1/operator/settlement?date=2026-11-25";
    // A city's key sees no report of every participant: the clearing house's does.
    let (status, refused) = s.send_as(Some(city.expose()), Method::GET, uri, None).await;
    assert_eq!((status, &refused["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")), "{refused}");
    let (_, key) = access::new_operator_key(s.state.store(), s.state.cities(), access::CLEARING_HOUSE, "clearing", 0)
        .await
        .unwrap();
    let key = key.expose().to_owned();

    let (status, report) = s.send_as(Some(&key), Method::GET, uri, None).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!((&report["day"], &report["cut_over"]), (&json!("2026-11-25"), &json!("04:00")), "{report}");
    let beijing = &report["issuers"][0];
    assert_eq!(beijing["issuer"]["id"], "issuer:0000100000000001");
    assert_eq!(
        (&beijing["host_loads"]["amount_fen"], &beijing["platform_loads"]["amount_fen"]),
        (&json!(5_000), &json!(5_000))
    );
    assert_eq!(beijing["platform_fees"]["amount_fen"], 2_900);
    assert_eq!(report["reconciliation"]["net_positions_sum_fen"], 0);

    let request = Request::get("/v1/operator/settlement?date=2026-11-25&format=csv")
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let response = yitong_server::router(s.state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let text = String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    assert!(text.starts_with(yitong_clearing::settlement::CSV_HEADER), "{text}");
    assert!(text.lines().any(|l| l.starts_with("2026-11-25,") && l.ends_with(",1,5000")), "{text}");

    for (query, name) in [
        ("", "date"),
        ("?date=2026-02-30", "date"),
        ("?date=2026-11-25&cut_over=25:00", "cut_over"),
        ("?date=2026-11-25&format=xml", "format"),
    ] {
        let (status, error) =
            s.send_as(Some(&key), Method::GET, &format!("/v1/operator/settlement{query}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
        assert!(error["message"].as_str().unwrap().contains(name), "{query}: {error}");
    }
    let (status, _) = s.send(Method::GET, "/v1/operator/settlement?date=2026-11-25", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a phone token is no operator key");
}
