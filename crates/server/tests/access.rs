//! Who may do what over HTTP: phone tokens (shown once, stored hashed, bound to the device,
//! rotated by the phone), a phone confined to its own cards and orders, operator keys confined to their city, revoked
//! keys refused, and the rider's and the operator's views of a card.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::Row;
use support::{issue, issue_as, paid_topup, service, top_up, SecureElement, Service};
use tower::ServiceExt;
use yitong_platform::access;

/// A new operator key of `city`.
async fn operator_key(s: &Service, city: &str) -> (String, String) {
    let (key, secret) =
        access::new_operator_key(s.state.store(), s.state.cities(), city, "test desk", 0).await.expect("a key");
    (key.key_id, secret.expose().to_owned())
}

/// Every text column of every row of `table`, read behind the store's back.
async fn stored_text(s: &Service, table: &str) -> Vec<String> {
    let url = format!("sqlite://{}", s.data_dir().join(yitong_platform::store::SQLITE_FILE_NAME).display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.expect("the database opens");
    let rows = sqlx::query(&format!("SELECT * FROM {table}")).fetch_all(&pool).await.expect("rows");
    let mut texts = Vec::new();
    for row in &rows {
        for index in 0..row.len() {
            if let Ok(Some(text)) = row.try_get::<Option<String>, _>(index) {
                texts.push(text);
            }
        }
    }
    pool.close().await;
    texts
}

#[tokio::test]
async fn a_phone_registers_once_and_its_token_is_stored_only_hashed() {
    let s = service().await;
    let body = json!({"device_id": "phone-B", "se_id": "SE-B", "maker": "Huawei", "model": "P10"});
    let (status, registered) = s.send_as(None, Method::POST, "/v1/phones", Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let token = registered["token"].as_str().expect("a token");
    assert_eq!(registered["device_id"], "phone-B");
    // `ytp_` and 256 random bits in hex.
    assert!(token.starts_with("ytp_") && token.len() == 4 + 64, "{token}");
    assert!(token[4..].bytes().all(|b| b.is_ascii_hexdigit()), "{token}");

    // The same device again: 409, and no second token.
    let (status, again) = s.send_as(None, Method::POST, "/v1/phones", Some(body)).await;
    assert_eq!((status, &again["code"]), (StatusCode::CONFLICT, &json!("phone_registered")), "{again}");

    // The database holds no token, only SHA-256 of each (FIPS 180-4, computed here by `sha2`).
    let stored = stored_text(&s, "phones").await;
    assert!(!stored.is_empty());
    for text in &stored {
        assert!(!text.contains(&token[4..]) && !text.contains(&s.token[4..]), "a token in the database: {text}");
    }
    let hashed = hex::encode(Sha256::digest(token.as_bytes()));
    assert!(stored.contains(&hashed), "{stored:?}");

    // Fields are checked as a card request's: a 400 naming the field.
    let long = "x".repeat(65);
    for (field, value) in [("device_id", json!("")), ("se_id", json!(long)), ("maker", json!("a\u{7}b"))] {
        let mut body = json!({"device_id": "phone-C", "se_id": "SE-C", "maker": "Xiaomi", "model": "Mi 6"});
        body[field] = value;
        let (status, refused) = s.send_as(None, Method::POST, "/v1/phones", Some(body)).await;
        assert_eq!((status, &refused["code"]), (StatusCode::BAD_REQUEST, &json!("bad_field")), "{refused}");
        assert!(refused["message"].as_str().expect("message").contains(field), "{refused}");
    }

    // The token is the phone: /v1/phones/me answers what it registered.
    let (status, me) = s.send_as(Some(token), Method::GET, "/v1/phones/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!((&me["device_id"], &me["maker"], &me["model"]), (&json!("phone-B"), &json!("Huawei"), &json!("P10")));
    assert_eq!(me["phone_id"], registered["phone_id"]);
    assert_eq!(me["cards"], json!([]));
}

#[tokio::test]
async fn a_request_without_a_valid_phone_token_is_401() {
    let s = service().await;
    let (_, operator) = operator_key(&s, "beijing").await;
    let unknown = format!("ytp_{}", "0".repeat(64));
    let headers: [Option<String>; 6] = [
        None,
        Some("Bearer".into()),
        Some(format!("Basic {}", s.token)),
        Some("Bearer ytp_short".into()),
        Some(format!("Bearer {unknown}")),
        Some(format!("Bearer {operator}")),
    ];
    for header in headers {
        for (method, uri) in [(Method::GET, "/v1/phones/me"), (Method::POST, "/v1/cards"), (Method::POST, "/v1/topups")]
        {
            let mut request = Request::builder().method(method).uri(uri).header("content-type", "application/json");
            if let Some(header) = &header {
                request = request.header("authorization", header);
            }
            let request = request.body(Body::from("{}")).expect("a request");
            let response = yitong_server::router(s.state.clone()).oneshot(request).await.expect("answers");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{uri} with {header:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer", "{uri}");
        }
    }
    let (status, body) = s.send_as(Some(&unknown), Method::GET, "/v1/phones/me", None).await;
    assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!("unauthorized")), "{body}");
    // The dev pay endpoint and registration take no token.
    let (status, _) = s.send_as(None, Method::POST, "/v1/dev/orders/NOSUCH01/pay", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_phone_rotates_its_token_and_the_old_one_stops_working() {
    let s = service().await;
    let (status, me) = s.send_as(Some(&s.token), Method::GET, "/v1/phones/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    // The phone's own new token; a malformed one, or the one in use, is a 400 naming the field.
    let token = format!("ytp_{}", hex::encode(Sha256::digest(b"the phone's randomness")));
    let uri = "/v1/phones/me/token";
    for bad in [json!({}), json!({"token": "ytp_XYZ"}), json!({"token": s.token})] {
        let (status, body) = s.send_as(Some(&s.token), Method::POST, uri, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let (status, rotated) = s.send_as(Some(&s.token), Method::POST, uri, Some(json!({"token": token}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{rotated}");
    // The old token: 401 everywhere, rotating included; the new one: the same phone.
    let again = Some(json!({"token": format!("ytp_{}", hex::encode(Sha256::digest(b"more randomness")))}));
    for (method, uri, body) in [(Method::GET, "/v1/phones/me", None), (Method::POST, uri, again)] {
        let (status, body) = s.send_as(Some(&s.token), method, uri, body).await;
        assert_eq!((status, &body["code"]), (StatusCode::UNAUTHORIZED, &json!("unauthorized")), "{uri}: {body}");
    }
    let (status, again) = s.send_as(Some(&token), Method::GET, "/v1/phones/me", None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["phone_id"], me["phone_id"]);
    // Only its hash is kept.
    let stored = stored_text(&s, "phones").await;
    assert!(stored.iter().all(|text| !text.contains(&token[4..])), "the new token in the database");
    assert!(stored.contains(&hex::encode(Sha256::digest(token.as_bytes()))));
}

#[tokio::test]
async fn the_clearing_house_resets_a_lost_registration_and_the_rider_registers_again_with_the_code() {
    let s = service().await;
    let issued = issue(&s, "FEE-0009").await;
    let serial = issued["card"]["serial"].as_str().expect("serial").to_owned();
    let uri = "/v1/operator/phones/phone-A/reset";
    // Phones are the clearing house's: a city's key is 403, a phone's token 401.
    let (_, beijing) = operator_key(&s, "beijing").await;
    let (status, body) = s.send_as(Some(&beijing), Method::POST, uri, None).await;
    assert_eq!((status, &body["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")), "{body}");
    let (status, _) = s.send_as(Some(&s.token), Method::POST, uri, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, clearing) = operator_key(&s, access::CLEARING_HOUSE).await;
    let (status, body) = s.send_as(Some(&clearing), Method::POST, "/v1/operator/phones/nobody/reset", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = s.send_as(Some(&clearing), Method::POST, "/v1/operator/phones/a%00b/reset", None).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("bad_field")), "{body}");

    let (status, reset) = s.send_as(Some(&clearing), Method::POST, uri, None).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    let code = reset["reset_code"].as_str().expect("a code").to_owned();
    assert!(code.starts_with("ytr_") && code.len() == 4 + 64, "{code}");
    assert!(reset["valid_until_ms"].as_i64().is_some(), "{reset}");
    // The lost token works no more.
    let (status, _) = s.send(Method::GET, "/v1/phones/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The same device and SE with the code: a new token, the same phone and its card.
    let phone = json!({"device_id": "phone-A", "se_id": "SE-phone-A", "maker": "Xiaomi", "model": "Mi 6"});
    let (status, body) = s.send_as(None, Method::POST, "/v1/phones", Some(phone.clone())).await;
    assert_eq!((status, &body["code"]), (StatusCode::CONFLICT, &json!("phone_registered")), "no code: {body}");
    // The phone proposes its own new token (here SHA-256 of a phrase stands in for its randomness).
    let token = format!("ytp_{}", hex::encode(Sha256::digest(b"the phone's randomness after the reset")));
    let mut with_code = phone.clone();
    with_code["reset_code"] = json!(code);
    let (status, body) = s.send_as(None, Method::POST, "/v1/phones", Some(with_code.clone())).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("bad_field")), "no token: {body}");
    with_code["token"] = json!(token);
    let mut other_se = with_code.clone();
    other_se["se_id"] = json!("SE-elsewhere");
    let (status, body) = s.send_as(None, Method::POST, "/v1/phones", Some(other_se)).await;
    assert_eq!((status, &body["code"]), (StatusCode::CONFLICT, &json!("phone_registered")), "another SE: {body}");
    let (status, registered) = s.send_as(None, Method::POST, "/v1/phones", Some(with_code.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(registered["token"], json!(token), "{registered}");
    let token = token.as_str();
    let (status, me) = s.send_as(Some(token), Method::GET, "/v1/phones/me", None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["cards"][0]["serial"], json!(serial), "{me}");
    // The code is used up.
    let (status, body) = s.send_as(None, Method::POST, "/v1/phones", Some(with_code)).await;
    assert_eq!((status, &body["code"]), (StatusCode::CONFLICT, &json!("phone_registered")), "{body}");
    // Only hashes are kept.
    let stored = stored_text(&s, "phones").await;
    assert!(stored.iter().all(|text| !text.contains(&code[4..]) && !text.contains(&token[4..])));
}

#[tokio::test]
async fn a_phone_cannot_see_or_act_on_another_phones_card_or_order() {
    let s = service().await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().expect("serial").to_owned();
    let mut se = SecureElement::new(issued["image_hex"].as_str().expect("an image"));
    let initialize = paid_topup(&s, &s.token, &serial, "TOP-0001", 1_000).await;
    let answer = hex::encode(se.send(&initialize));

    let other = s.register("phone-B", "Mi 6").await;
    let as_other = |method: Method, uri: String, body: Option<Value>| {
        let other = other.clone();
        let s = &s;
        async move { s.send_as(Some(&other), method, &uri, body).await }
    };
    // Another phone's card and order are "not found", exactly as unknown ones.
    let attempts = [
        (Method::GET, format!("/v1/cards/{serial}"), None),
        (Method::POST, "/v1/topups".into(), Some(json!({"card": serial, "amount_fen": 100, "order_id": "TOP-0002"}))),
        (Method::POST, "/v1/topups/TOP-0001/authorize".into(), Some(json!({"answer": answer}))),
        (Method::POST, "/v1/topups/TOP-0001/complete".into(), Some(json!({"answer": "00000000" }))),
        (Method::GET, "/v1/topups/TOP-0001/evidence".into(), None),
        (
            Method::POST,
            "/v1/topups/TOP-0001/reconcile".into(),
            Some(json!({"initialize": answer, "when_not_loaded": "refund"})),
        ),
    ];
    for (method, uri, body) in attempts {
        let (status, refused) = as_other(method, uri.clone(), body).await;
        assert_eq!((status, &refused["code"]), (StatusCode::NOT_FOUND, &json!("not_found")), "{uri}: {refused}");
        assert!(!refused["message"].as_str().expect("message").contains("phone-A"), "{refused}");
    }
    let (status, unknown) = as_other(Method::GET, "/v1/cards/10000000000000000099".into(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, mine) = as_other(Method::GET, format!("/v1/cards/{serial}"), None).await;
    assert_eq!(
        mine["message"].as_str().map(|m| m.replace(&serial, "")),
        unknown["message"].as_str().map(|m| m.replace("10000000000000000099", ""))
    );
    // Nothing moved: the order is still paid, and its owner goes on.
    let (_, me) = as_other(Method::GET, "/v1/phones/me".into(), None).await;
    assert_eq!(me["cards"], json!([]));
    let (status, authorization) =
        s.send(Method::POST, "/v1/topups/TOP-0001/authorize", Some(json!({"answer": answer}))).await;
    assert_eq!(status, StatusCode::OK, "{authorization}");
    // The other phone asking for a Beijing card gets its own, never phone-A's.
    let theirs = issue_as(&s, &other, "FEE-0002").await;
    assert_ne!(theirs["card"]["serial"], serial.as_str());
    assert_eq!(theirs["card"]["device_id"], "phone-B");
}

#[tokio::test]
async fn the_rider_sees_balance_and_history_and_the_cities_operator_the_card() {
    let s = service().await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().expect("serial").to_owned();
    let mut se = SecureElement::new(issued["image_hex"].as_str().expect("an image"));
    let loaded = top_up(&s, &s.token, &mut se, &serial, "TOP-0001", 5_000).await;
    assert_eq!(se.balance_fen(), 5_000);

    let (status, view) = s.send(Method::GET, &format!("/v1/cards/{serial}"), None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!((&view["serial"], &view["city"], &view["state"]), (&json!(serial), &json!("beijing"), &json!("active")));
    assert_eq!(view["balance_fen"], 5_000, "the load the card proved, and nothing known to have left it");
    let history = view["history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{view}");
    let load = &history[0];
    assert_eq!(
        (&load["kind"], &load["order_id"], &load["state"]),
        (&json!("load"), &json!("TOP-0001"), &json!("loaded"))
    );
    assert_eq!((&load["amount_fen"], &load["counter"]), (&json!(5_000), &json!(1)));
    assert_eq!((&load["tap_id"], &load["tac"]), (&loaded["tap_id"], &loaded["tac"]), "the TAC the card gave");
    let fee = &history[1];
    assert_eq!((&fee["kind"], &fee["order_id"], &fee["state"]), (&json!("fee"), &json!("FEE-0001"), &json!("issued")));
    assert_eq!(fee["amount_fen"], 2_900);
    assert!(fee.get("tap_id").is_none(), "{fee}");

    let (_, me) = s.send(Method::GET, "/v1/phones/me", None).await;
    assert_eq!(me["cards"], json!([view.clone()]));

    // The Beijing operator sees the card and its phone; Shanghai's does not know it exists.
    let (_, beijing) = operator_key(&s, "beijing").await;
    let (shanghai_id, shanghai) = operator_key(&s, "shanghai").await;
    let uri = format!("/v1/operator/cards/{serial}");
    let (status, seen) = s.send_as(Some(&beijing), Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(
        (&seen["device_id"], &seen["se_id"], &seen["model"]),
        (&json!("phone-A"), &json!("SE-phone-A"), &json!("Mi 6"))
    );
    assert_eq!((&seen["balance_fen"], &seen["history"]), (&view["balance_fen"], &view["history"]));
    let (status, refused) = s.send_as(Some(&shanghai), Method::GET, &uri, None).await;
    assert_eq!((status, &refused["code"]), (StatusCode::NOT_FOUND, &json!("not_found")), "{refused}");
    // A phone token is no operator key.
    let (status, _) = s.send(Method::GET, &uri, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The ledger check, for the clearing house (a city's key is refused): balanced, the card's
    // 50 yuan owed, the fee earned. The clearing house reads every city's cards too.
    let (status, refused) = s.send_as(Some(&shanghai), Method::GET, "/v1/operator/ledger/check", None).await;
    assert_eq!((status, &refused["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")), "{refused}");
    let (_, clearing) = operator_key(&s, access::CLEARING_HOUSE).await;
    let (status, seen) = s.send_as(Some(&clearing), Method::GET, &uri, None).await;
    assert_eq!((status, &seen["balance_fen"]), (StatusCode::OK, &view["balance_fen"]), "{seen}");
    let (status, check) = s.send_as(Some(&clearing), Method::GET, "/v1/operator/ledger/check", None).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert_eq!(check["balanced"], true, "{check}");
    assert_eq!(check["card_balances_fen"], 5_000);
    assert_eq!(check["accounts"][format!("card_liability/{serial}")], -5_000);
    assert_eq!(check["accounts"]["fee_revenue"], -2_900);
    assert_eq!(check["debit_fen"], check["credit_fen"]);

    // Revoked, the key opens nothing.
    assert!(s.state.store().revoke_operator_key(&shanghai_id, 1).await.expect("revoked"));
    let (status, _) = s.send_as(Some(&shanghai), Method::GET, "/v1/operator/ledger/check", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!s.state.store().revoke_operator_key(&shanghai_id, 2).await.expect("read"), "revoked once");
    // Operator keys are stored hashed too.
    for text in stored_text(&s, "operator_keys").await {
        assert!(!text.contains(&beijing[4..]) && !text.contains(&shanghai[4..]), "a key in the database");
    }
}
