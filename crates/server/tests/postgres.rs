//! The service's store on PostgreSQL (`YITONG_TEST_PG_URL`): opened with its migrations, and
//! `/healthz` reports it; phones, a card, a top-up and the views run on it through the routes, and operators of one city are refused another's card. Skips, saying why, when the variable is unset; under
//! `YITONG_REQUIRE_EXTERNAL=1` the skip is a failure.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use sqlx::{Connection, Executor};
use tower::ServiceExt;
use yitong_platform::store::{Backend, Store};
use yitong_profile::DateTime;
use yitong_server::{AppState, FixedClock, KeySource};

fn skip(why: &str) {
    use std::io::Write;
    if std::env::var_os("YITONG_REQUIRE_EXTERNAL").is_some_and(|v| v == "1") {
        panic!("cannot run: {why} (YITONG_REQUIRE_EXTERNAL=1 makes a skip a failure)");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_postgres() {
    let Ok(server) = std::env::var("YITONG_TEST_PG_URL") else {
        skip("YITONG_TEST_PG_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)");
        return;
    };
    // A fresh schema, so that the migrations run from the start.
    let schema = format!("yitong_server_test_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&server).await.expect("YITONG_TEST_PG_URL connects");
    admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.expect("a fresh schema");
    let separator = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{separator}options[search_path]={schema}");

    let store = Store::open(&url).await.expect("PostgreSQL opens and migrates");
    assert_eq!(store.backend(), Backend::Postgres);
    let now = DateTime::new(2026, 11, 25, 18, 30, 0).expect("valid");
    let dir = tempfile::tempdir().expect("a temporary directory for the development keys");
    let keys = KeySource::Development(dir.path().to_owned());
    let state = AppState::builtin(store.clone(), Arc::new(FixedClock(now)), keys).expect("built-in data");
    let request = Request::get("/healthz").body(Body::empty()).expect("a request");
    let response = yitong_server::router(state).oneshot(request).await.expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(body.as_ref(), br#"{"status":"ok","database":"postgres"}"#);
    // The migrations made the ledger's table in this schema.
    let tables: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM information_schema.tables WHERE table_schema = '{schema}'"))
            .fetch_one(&mut admin)
            .await
            .expect("counted");
    assert!(tables > 0, "no tables in {schema}");

    // Phones, cards, a top-up and the views on PostgreSQL, through the same routes.
    let state =
        AppState::builtin(store.clone(), Arc::new(FixedClock(now)), KeySource::Development(dir.path().to_owned()))
            .expect("built-in data");
    let s = support::Service::with_state(state, dir).await;
    let issued = support::issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().expect("serial").to_owned();
    let mut se = support::SecureElement::new(issued["image_hex"].as_str().expect("an image"));
    support::top_up(&s, &s.token, &mut se, &serial, "TOP-0001", 1_500).await;
    let (status, me) = s.send(Method::GET, "/v1/phones/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["cards"][0]["balance_fen"], 1_500);
    assert_eq!(me["cards"][0]["history"].as_array().map(Vec::len), Some(2), "{me}");
    let other = s.register("phone-B", "Mi 6").await;
    let (status, _) = s.send_as(Some(&other), Method::GET, &format!("/v1/cards/{serial}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let clearing = yitong_platform::access::CLEARING_HOUSE;
    let (_, key) = yitong_platform::access::new_operator_key(s.state.store(), s.state.cities(), clearing, "desk", 0)
        .await
        .expect("a key");
    let (status, check) = s.send_as(Some(key.expose()), Method::GET, "/v1/operator/ledger/check", None).await;
    assert_eq!((status, &check["balanced"]), (StatusCode::OK, &serde_json::json!(true)), "{check}");
    // Beijing's operator sees the card; Shanghai's does not know it exists, nor may it check the
    // ledger (the keys read from PostgreSQL).
    let key_of = |city: &'static str| {
        let s = &s;
        async move {
            let (_, key) =
                yitong_platform::access::new_operator_key(s.state.store(), s.state.cities(), city, "desk", 0)
                    .await
                    .expect("a key");
            key.expose().to_owned()
        }
    };
    let (beijing, shanghai) = (key_of("beijing").await, key_of("shanghai").await);
    let uri = format!("/v1/operator/cards/{serial}");
    let (status, seen) = s.send_as(Some(&beijing), Method::GET, &uri, None).await;
    assert_eq!((status, &seen["balance_fen"]), (StatusCode::OK, &serde_json::json!(1_500)), "{seen}");
    let (status, refused) = s.send_as(Some(&shanghai), Method::GET, &uri, None).await;
    assert_eq!((status, &refused["code"]), (StatusCode::NOT_FOUND, &serde_json::json!("not_found")), "{refused}");
    let (status, _) = s.send_as(Some(&shanghai), Method::GET, "/v1/operator/ledger/check", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    store.close().await;
    admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await.expect("dropped");
    admin.close().await.expect("closed");
}
