//! Every route through the whole router, without a socket (`oneshot`): success and 4xx cases,
//! the OpenAPI document, `/healthz`, `/metrics`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use yitong_platform::store::Store;
use yitong_profile::DateTime;
use yitong_server::{AppState, FixedClock, KeySource};

struct Service {
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn service() -> Service {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
    let now = DateTime::new(2026, 11, 25, 18, 30, 0).expect("valid");
    let state = AppState::builtin(store, Arc::new(FixedClock(now)), KeySource::Development(dir.path().to_owned()))
        .expect("the built-in data loads");
    Service { state, _dir: dir }
}

impl Service {
    fn app(&self) -> Router {
        yitong_server::router(self.state.clone())
    }

    /// (status, content type, body) of `method uri`.
    async fn call(&self, method: Method, uri: &str) -> (StatusCode, String, String) {
        let request = Request::builder().method(method).uri(uri).body(Body::empty()).expect("a request");
        let response = self.app().oneshot(request).await.expect("the router answers");
        let status = response.status();
        let content_type =
            response.headers().get("content-type").map(|v| v.to_str().expect("ASCII").to_owned()).unwrap_or_default();
        let body = response.into_body().collect().await.expect("a body").to_bytes();
        (status, content_type, String::from_utf8(body.to_vec()).expect("UTF-8"))
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, content_type, body) = self.call(Method::GET, uri).await;
        assert!(content_type.starts_with("application/json"), "{uri}: {content_type}: {body}");
        (status, serde_json::from_str(&body).expect("JSON"))
    }

    /// A 4xx error's `{code, message}`, checked to be exactly that shape.
    async fn error(&self, uri: &str, status: StatusCode) -> (String, String) {
        let (got, body) = self.get(uri).await;
        assert_eq!(got, status, "{uri}: {body}");
        let fields = body.as_object().expect("an object");
        assert_eq!(fields.len(), 2, "{body}");
        (body["code"].as_str().expect("code").to_owned(), body["message"].as_str().expect("message").to_owned())
    }
}

#[tokio::test]
async fn eligibility_answers_each_path_with_its_reason() {
    let s = service().await;
    let (status, body) = s.get("/v1/devices/eligibility?maker=xiaomi&model=Mi6&city=Beijing").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["path"], "embedded-se");
    assert_eq!((&body["maker"], &body["model"], &body["city"]), (&"Xiaomi".into(), &"Mi 6".into(), &"beijing".into()));
    assert_eq!(body["wallet_app"], "Mi Wallet (小米钱包)");
    assert_eq!(body["city_app"], "北京一卡通 (Beijing All-in-One Card)");
    assert!(body["reason"].as_str().expect("text").contains("sign up in Mi Wallet"), "{body}");
    assert!(body.get("not_supported").is_none());

    // The catalogue's NFC-SIM and no-NFC phones, found from the catalogue itself.
    let (_, catalogue) = s.get("/v1/devices/makers").await;
    let find = |se: &str, nfc: bool| {
        catalogue["makers"]
            .as_array()
            .expect("makers")
            .iter()
            .flat_map(|m| m["models"].as_array().expect("models").iter().map(move |d| (m, d)))
            .find(|(_, d)| d["secure_element"] == se && d["nfc"] == nfc)
            .map(|(m, d)| (m["name"].as_str().expect("name").to_owned(), d.clone()))
            .expect("the catalogue has such a phone")
    };
    let (maker, sim_phone) = find("nfc-sim", true);
    let city = match sim_phone["cities"][0].as_str().expect("a city") {
        "all" => "shanghai",
        city => city,
    }
    .to_owned();
    let model = sim_phone["model"].as_str().expect("model");
    let uri = format!("/v1/devices/eligibility?maker={maker}&model={}&city={city}", model.replace(' ', "%20"));
    let (status, body) = s.get(&uri).await;
    assert_eq!((status, &body["path"]), (StatusCode::OK, &"nfc-sim".into()), "{body}");
    assert!(body["reason"].as_str().expect("text").contains("service hall"), "{body}");

    let (maker, no_nfc) = find("none", false);
    let model = no_nfc["model"].as_str().expect("model").replace(' ', "%20");
    let (_, body) = s.get(&format!("/v1/devices/eligibility?maker={maker}&model={model}&city=beijing")).await;
    assert_eq!((&body["path"], &body["not_supported"]), (&"not-supported".into(), &"no-nfc".into()), "{body}");
    assert!(body["reason"].as_str().expect("text").ends_with("has no NFC"), "{body}");

    // Unknown names are an answer, not an error.
    let (status, body) = s.get("/v1/devices/eligibility?maker=Nokia&model=3310&city=beijing").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&body["path"], &body["not_supported"]), (&"not-supported".into(), &"unknown-maker".into()));
    assert_eq!(body["reason"], "maker `Nokia` is not in the device catalogue");
    let (_, body) = s.get("/v1/devices/eligibility?maker=Xiaomi&model=Mi%206&city=atlantis").await;
    assert_eq!(body["not_supported"], "unknown-city");
    assert_eq!(body["reason"], "no phone cards are issued for city `atlantis`");
}

#[tokio::test]
async fn eligibility_names_a_missing_or_bad_parameter() {
    let s = service().await;
    let (code, message) = s.error("/v1/devices/eligibility?maker=Xiaomi&city=beijing", StatusCode::BAD_REQUEST).await;
    assert_eq!((code.as_str(), message.as_str()), ("missing_parameter", "query parameter `model` is required"));
    let (_, message) =
        s.error("/v1/devices/eligibility?maker=%20&model=Mi6&city=beijing", StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "query parameter `maker` is required");
    let long = "x".repeat(201);
    let (code, message) =
        s.error(&format!("/v1/devices/eligibility?maker=Xiaomi&model=Mi6&city={long}"), StatusCode::BAD_REQUEST).await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("bad_parameter", "query parameter `city`: longer than 200 characters")
    );
    // A repeated field does not parse: 400, not 500.
    let (code, message) =
        s.error("/v1/devices/eligibility?maker=a&maker=b&model=Mi6&city=beijing", StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "bad_query");
    assert!(message.contains("maker"), "{message}");
}

#[tokio::test]
async fn the_catalogue_lists_six_makers_and_160_models() {
    let s = service().await;
    let (status, body) = s.get("/v1/devices/makers").await;
    assert_eq!(status, StatusCode::OK);
    let makers: Vec<&str> =
        body["makers"].as_array().expect("makers").iter().map(|m| m["name"].as_str().expect("name")).collect();
    assert_eq!(makers, ["Huawei", "Meizu", "OPPO", "Samsung", "vivo", "Xiaomi"]);
    assert_eq!(body["model_count"], 160);
    let listed: usize =
        body["makers"].as_array().expect("makers").iter().map(|m| m["models"].as_array().expect("models").len()).sum();
    assert_eq!(listed, 160);
    let samsung = &body["makers"][3];
    let s8 = samsung["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|d| d["model"] == "S8 Plus" || d["aliases"].as_array().expect("aliases").iter().any(|a| a == "S8 Plus"))
        .expect("the S8 Plus");
    assert_eq!((&s8["nfc"], &s8["secure_element"], &s8["source"]), (&true.into(), &"ese".into(), &"brief".into()));
}

#[tokio::test]
async fn cities_are_listed_and_found_by_name() {
    let s = service().await;
    let (status, body) = s.get("/v1/cities").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> =
        body["cities"].as_array().expect("cities").iter().map(|c| c["name"].as_str().expect("name")).collect();
    assert_eq!(
        names,
        [
            "beijing",
            "chengdu",
            "chongqing",
            "guangzhou",
            "hangzhou",
            "jilin",
            "shanghai",
            "shenzhen",
            "tianjin",
            "wuhan"
        ]
    );

    let (status, beijing) = s.get("/v1/cities/BeiJing").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(beijing["name"], "beijing");
    assert_eq!(beijing["city_code"], "1000");
    assert_eq!(beijing["issuer_id"], "0000100000000001");
    assert_eq!(beijing["card_aids"][0], "A000000632010105");
    assert_eq!(beijing["signup_fee_fen"], 2_900);
    assert_eq!(beijing["card_app"], "北京一卡通 (Beijing All-in-One Card)");
    assert!(beijing["issuer"].as_str().expect("issuer").starts_with("北京市政交通一卡通"));
    assert_eq!(beijing["fare_profile"]["metro"], true);
    assert_eq!(beijing["fare_profile"]["time_zone"], "Asia/Shanghai");

    let (_, jilin) = s.get("/v1/cities/jilin").await;
    assert_eq!((&jilin["fare_profile"]["metro"], jilin.get("card_app")), (&false.into(), None));

    let (code, message) = s.error("/v1/cities/atlantis", StatusCode::NOT_FOUND).await;
    assert_eq!(code, "not_found");
    assert!(message.starts_with("no city `atlantis`; the cities are beijing, chengdu"), "{message}");
    // A path segment that is not UTF-8: a JSON 400 like every other error.
    let (code, _) = s.error("/v1/cities/%FF", StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "bad_path");
}

#[tokio::test]
async fn the_signup_fee_is_the_standard_fee_without_promotions() {
    let s = service().await;
    let (status, body) = s.get("/v1/cities/beijing/signup-fee?maker=xiaomi&channel=maker-wallet").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["fee_fen"], 2_900);
    assert_eq!(body["standard_fee_fen"], 2_900);
    assert_eq!(
        (&body["maker"], &body["channel"], &body["city"]),
        (&"Xiaomi".into(), &"maker-wallet".into(), &"beijing".into())
    );
    // No `at`: the injected clock's time.
    assert_eq!(body["at"], "2026-11-25 18:30:00");
    assert!(body.get("promotion").is_none());
    assert_eq!(body["passed_over"], Value::Array(Vec::new()));

    let (_, body) =
        s.get("/v1/cities/shanghai/signup-fee?maker=Huawei&channel=carrier-hall&at=2027-01-01%2008:00").await;
    assert_eq!((&body["at"], &body["fee_fen"]), (&"2027-01-01 08:00:00".into(), &2_900.into()));
}

#[tokio::test]
async fn the_signup_fee_names_a_missing_or_bad_parameter() {
    let s = service().await;
    let cases = [
        ("/v1/cities/beijing/signup-fee?channel=city-app", "missing_parameter", "query parameter `maker` is required"),
        ("/v1/cities/beijing/signup-fee?maker=Xiaomi", "missing_parameter", "query parameter `channel` is required"),
        (
            "/v1/cities/beijing/signup-fee?maker=Xiaomi&channel=post",
            "bad_parameter",
            "query parameter `channel`: `post` is not maker-wallet, city-app or carrier-hall",
        ),
        (
            "/v1/cities/beijing/signup-fee?maker=Nokia&channel=city-app",
            "bad_parameter",
            "query parameter `maker`: `Nokia` is not in the device catalogue; its makers are Huawei, Meizu, OPPO, Samsung, vivo, Xiaomi",
        ),
        (
            "/v1/cities/beijing/signup-fee?maker=Xiaomi&channel=city-app&at=2026-02-30%2010:00",
            "bad_parameter",
            "query parameter `at`: `2026-02-30 10:00` is not a local time like 2026-11-25 08:30:00",
        ),
    ];
    for (uri, code, message) in cases {
        assert_eq!(s.error(uri, StatusCode::BAD_REQUEST).await, (code.to_owned(), message.to_owned()), "{uri}");
    }
    let (code, _) =
        s.error("/v1/cities/atlantis/signup-fee?maker=Xiaomi&channel=city-app", StatusCode::NOT_FOUND).await;
    assert_eq!(code, "not_found");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let s = service().await;
    assert_eq!(s.error("/v2/nothing", StatusCode::NOT_FOUND).await.0, "not_found");
    let (status, content_type, body) = s.call(Method::POST, "/v1/cities").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(content_type.starts_with("application/json"));
    assert_eq!(serde_json::from_str::<Value>(&body).expect("JSON")["code"], "method_not_allowed");
}

#[tokio::test]
async fn healthz_answers_once_the_database_does() {
    let s = service().await;
    let (status, body) = s.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({ "status": "ok", "database": "sqlite" }));
    // With the database gone it says so, as a 503 in the same error shape.
    s.state.store().close().await;
    let (code, message) = s.error("/healthz", StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!((code.as_str(), message.as_str()), ("unavailable", "the database is unavailable; try again"));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let s = service().await;
    s.get("/v1/cities/beijing").await;
    s.get("/v1/cities/shanghai").await;
    s.get("/v1/cities/atlantis").await;
    s.get("/no/such/path").await;
    let (status, content_type, text) = s.call(Method::GET, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"# TYPE yitong_http_requests_total counter"), "{text}");
    assert!(
        lines.contains(&r#"yitong_http_requests_total{method="GET",route="/v1/cities/{name}",status="200"} 2"#),
        "{text}"
    );
    assert!(
        lines.contains(&r#"yitong_http_requests_total{method="GET",route="/v1/cities/{name}",status="404"} 1"#),
        "{text}"
    );
    assert!(lines.contains(&r#"yitong_http_requests_total{method="GET",route="unmatched",status="404"} 1"#), "{text}");
    // The scrape itself is counted once it is answered.
    s.call(Method::GET, "/metrics").await;
    assert_eq!(s.state.metrics().requests(&Method::GET, "/metrics", 200), 2);
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let s = service().await;
    let (status, document) = s.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().expect("version").starts_with("3."));
    let paths: Vec<&str> = document["paths"].as_object().expect("paths").keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "/healthz",
            "/metrics",
            "/v1/cards",
            "/v1/cards/{serial}",
            "/v1/cards/{serial}/closure",
            "/v1/cities",
            "/v1/cities/{name}",
            "/v1/cities/{name}/signup-fee",
            "/v1/clearing/batches",
            "/v1/closures/{id}/answer",
            "/v1/dev/orders/{id}/pay",
            "/v1/devices/eligibility",
            "/v1/devices/makers",
            "/v1/hotlist",
            "/v1/operator/cards/{serial}",
            "/v1/operator/cards/{serial}/shadow",
            "/v1/operator/hotlist",
            "/v1/operator/hotlist/{serial}/remove",
            "/v1/operator/ledger/agreement",
            "/v1/operator/ledger/check",
            "/v1/operator/phones/{device_id}/reset",
            "/v1/operator/ridership",
            "/v1/operator/settlement",
            "/v1/payments/notifications",
            "/v1/phones",
            "/v1/phones/me",
            "/v1/phones/me/token",
            "/v1/topups",
            "/v1/topups/{id}/authorize",
            "/v1/topups/{id}/complete",
            "/v1/topups/{id}/evidence",
            "/v1/topups/{id}/reconcile",
            "/v1/transfers/claim",
        ]
    );
    // Each documented route is served with its method (not the router's 404 or 405): document
    // and routes agree. (An unknown order is the route's own 404; a route that needs a
    // credential answers 401 without one.)
    for path in &paths {
        let method = if document["paths"][*path]["get"].is_object() { Method::GET } else { Method::POST };
        let uri = path
            .replace("{name}", "beijing")
            .replace("{id}", "NOSUCH01")
            .replace("{serial}", "10000000000000000001")
            .replace("{code}", "00000000000000000000000000000000");
        let (status, _, body) = s.call(method, &uri).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{uri}: {body}");
        assert!(!body.contains("no such endpoint"), "{uri}: {body}");
    }
    let eligibility = &document["paths"]["/v1/devices/eligibility"]["get"];
    let parameters: Vec<&str> = eligibility["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(parameters, ["maker", "model", "city"]);
    assert!(eligibility["responses"]["400"].is_object());
    // Every route with a JSON body documents the 415 it answers to another content type.
    for (path, item) in document["paths"].as_object().expect("paths") {
        if let Some(post) = item.get("post").filter(|post| post.get("requestBody").is_some()) {
            assert!(post["responses"]["415"].is_object(), "{path}");
        }
    }
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());
    assert_eq!(yitong_server::openapi().paths.paths.len(), paths.len());
}
