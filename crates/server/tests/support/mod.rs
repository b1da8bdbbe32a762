//! The test's phone and service: the whole router called without a socket (`oneshot`) over
//! SQLite and development keys in a temporary directory, phone-A (a Xiaomi Mi 6) registered,
//! and the phone's secure element — a real in-process card (`yitong-card`) made from the issued
//! image, so that a load it accepts proves the service's keys and MACs.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use yitong_card::testing::CountingRng;
use yitong_card::{Card, MemStore};
use yitong_platform::ledger::Account;
use yitong_platform::store::Store;
use yitong_profile::apdu;
use yitong_profile::DateTime;
use yitong_server::{AppState, FixedClock, KeySource};

pub struct Service {
    pub state: AppState,
    /// The token of phone-A (a Xiaomi Mi 6), which the requests carry unless told otherwise.
    pub token: String,
    _dir: tempfile::TempDir,
}

pub async fn service() -> Service {
    service_in(tempfile::tempdir().expect("a temporary directory")).await
}

/// The service over the SQLite file and development keys in `dir`, phone-A registered.
pub async fn service_in(dir: tempfile::TempDir) -> Service {
    let mut s = open_in(dir).await;
    s.token = s.register("phone-A", "Mi 6").await;
    s
}

/// The service over the database and development keys in `dir`, no phone registered.
pub async fn open_in(dir: tempfile::TempDir) -> Service {
    let store = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
    let now = DateTime::new(2026, 11, 25, 18, 30, 0).expect("valid");
    let keys = KeySource::Development(dir.path().to_owned());
    let state = AppState::builtin(store, Arc::new(FixedClock(now)), keys).expect("the built-in data loads");
    Service { state, token: String::new(), _dir: dir }
}

impl Service {
    /// The issuers' development keys the service uses (from its keys directory).
    pub fn keyring(&self) -> yitong_platform::issuer_keys::IssuerKeyring {
        let cities = yitong_platform::cities::Cities::builtin().expect("the built-in cities");
        yitong_platform::issuer_keys::IssuerKeyring::development(self._dir.path(), &cities).expect("the keys")
    }

    /// A service over `state` (whose store lives in `dir`), phone-A registered.
    pub async fn with_state(state: AppState, dir: tempfile::TempDir) -> Service {
        let mut s = Service { state, token: String::new(), _dir: dir };
        s.token = s.register("phone-A", "Mi 6").await;
        s
    }

    /// The data directory (database and development keys).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The service stopped and started again on the same data directory (database and
    /// development keys), phone-A's token kept.
    pub async fn restart(self) -> Service {
        self.state.store().close().await;
        let token = self.token;
        let mut s = open_in(self._dir).await;
        s.token = token;
        s
    }

    /// Registers a Xiaomi `model` as `device`: its token.
    pub async fn register(&self, device: &str, model: &str) -> String {
        let body = json!({ "device_id": device, "se_id": format!("SE-{device}"), "maker": "Xiaomi", "model": model });
        let (status, answer) = self.send_as(None, Method::POST, "/v1/phones", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        answer["token"].as_str().expect("a token").to_owned()
    }

    /// (status, JSON body) of `method uri` with `body`, as phone-A.
    pub async fn send(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.send_as(Some(&self.token), method, uri, body).await
    }

    /// (status, JSON body) of `method uri` with `body` and the bearer `token`.
    pub async fn send_as(
        &self,
        token: Option<&str>,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut builder = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder.header("content-type", "application/json").body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        }
        .expect("a request");
        let response = yitong_server::router(self.state.clone()).oneshot(request).await.expect("the router answers");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("a body").to_bytes();
        if bytes.is_empty() {
            // No content (204).
            return (status, Value::Null);
        }
        (status, serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("{uri}: not JSON: {bytes:?}")))
    }

    pub async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, uri, Some(body)).await
    }

    /// A 4xx's `{code, message}`, checked to be exactly that shape and status.
    pub async fn refused(&self, uri: &str, body: Option<Value>, status: StatusCode) -> (String, String) {
        let (got, answer) = self.send(Method::POST, uri, body).await;
        assert_eq!(got, status, "{uri}: {answer}");
        assert_eq!(answer.as_object().expect("an object").len(), 2, "{answer}");
        (answer["code"].as_str().expect("code").to_owned(), answer["message"].as_str().expect("message").to_owned())
    }

    pub async fn balance(&self, account: Account) -> i64 {
        self.state.store().balance(&account).await.expect("a balance")
    }

    pub async fn assert_balanced(&self) {
        let check = self.state.store().check_ledger().await.expect("checked");
        assert!(check.is_ok(), "{check}");
    }
}

/// A request for a Beijing card in the maker's wallet: the phone is the token's.
pub fn beijing(fee_order: &str) -> Value {
    json!({ "city": "beijing", "channel": "maker-wallet", "fee_order_id": fee_order })
}

/// Asks as phone-A, pays the fee through the dev endpoint, asks again: the new card's answer.
pub async fn issue(s: &Service, fee_order: &str) -> Value {
    issue_as(s, &s.token, fee_order).await
}

/// [`issue`] as the phone of `token`.
pub async fn issue_as(s: &Service, token: &str, fee_order: &str) -> Value {
    let (status, answer) = s.send_as(Some(token), Method::POST, "/v1/cards", Some(beijing(fee_order))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let (status, paid) = s.send_as(None, Method::POST, &format!("/v1/dev/orders/{fee_order}/pay"), None).await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    let (status, answer) = s.send_as(Some(token), Method::POST, "/v1/cards", Some(beijing(fee_order))).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer
}

/// The phone's SE: a real card powered on from the issued image, the T-Union app selected.
pub struct SecureElement(pub Card<MemStore, CountingRng>);

impl SecureElement {
    pub fn new(image_hex: &str) -> SecureElement {
        let image = hex::decode(image_hex).expect("the image is hex");
        let card = Card::power_on(MemStore::new(image), CountingRng(0)).expect("the image powers on");
        let mut se = SecureElement(card);
        assert!(se.send(&apdu::select_by_name(&apdu::AID_TUNION)).ends_with(&[0x90, 0x00]));
        se
    }

    pub fn send(&mut self, command: &[u8]) -> Vec<u8> {
        self.0.process(command).expect("no power loss in memory")
    }

    /// A load of `amount_fen` by a station's machine (another load terminal, `1000 FFFF 0001`)
    /// with the issuer's development load key from `s`'s keys directory, at `at`: the card's
    /// online counter moves behind the service's back.
    pub fn station_load(&mut self, s: &Service, serial: &str, amount_fen: u32, at: DateTime) {
        use yitong_terminal::{LoadKeyHolder, LoadRequest};
        let station = [0x10, 0x00, 0xFF, 0xFF, 0x00, 0x01];
        let answer = self.send(&apdu::initialize_for_load(amount_fen, station));
        assert!(answer.ends_with(&[0x90, 0x00]), "INITIALIZE FOR LOAD: {answer:02X?}");
        let init = apdu::LoadInit::decode(&answer[..answer.len() - 2]).expect("INITIALIZE's answer");
        let serial: [u8; 10] = hex::decode(serial).expect("hex").try_into().expect("10 bytes");
        let keyring = s.keyring();
        let issuer_id = [0, 0, 0x10, 0, 0, 0, 0, 1];
        let mac2 = keyring
            .load_host()
            .authorize_load(&LoadRequest {
                issuer_id,
                asn8: yitong_profile::files::asn8(&serial),
                card_random: init.card_random,
                online_counter: init.online_counter,
                balance_before_fen: init.balance_fen,
                amount_fen,
                terminal_id: station,
                at,
                key_version: init.key_version,
                algorithm_id: init.algorithm_id,
                mac1: init.mac1,
            })
            .expect("the station's MAC2");
        let credited = self.send(&apdu::credit_for_load(at.date_bcd(), at.time_bcd(), mac2));
        assert!(credited.ends_with(&[0x90, 0x00]), "CREDIT FOR LOAD: {credited:02X?}");
    }

    pub fn balance_fen(&mut self) -> i32 {
        let answer = self.send(&apdu::get_balance());
        assert!(answer.ends_with(&[0x90, 0x00]));
        i32::from_be_bytes(answer[..4].try_into().expect("4 bytes"))
    }
}

/// Opens top-up `order_id` of `amount_fen` on `serial` as the phone of `token` and pays it:
/// the INITIALIZE FOR LOAD to send.
pub async fn paid_topup(s: &Service, token: &str, serial: &str, order_id: &str, amount_fen: i64) -> Vec<u8> {
    let body = json!({"card": serial, "amount_fen": amount_fen, "order_id": order_id});
    let (status, opened) = s.send_as(Some(token), Method::POST, "/v1/topups", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let (status, paid) = s.send_as(None, Method::POST, &format!("/v1/dev/orders/{order_id}/pay"), None).await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    hex::decode(opened["initialize_command"].as_str().expect("hex")).expect("hex")
}

/// A whole paid top-up as the phone of `token`: INITIALIZE, authorize, CREDIT, complete. The
/// `complete` answer.
pub async fn top_up(
    s: &Service,
    token: &str,
    se: &mut SecureElement,
    serial: &str,
    order_id: &str,
    amount_fen: i64,
) -> Value {
    let initialize = paid_topup(s, token, serial, order_id, amount_fen).await;
    let answer = se.send(&initialize);
    let uri = format!("/v1/topups/{order_id}/authorize");
    let (status, authorization) =
        s.send_as(Some(token), Method::POST, &uri, Some(json!({"answer": hex::encode(&answer)}))).await;
    assert_eq!(status, StatusCode::OK, "{authorization}");
    let credit = hex::decode(authorization["credit_command"].as_str().expect("hex")).expect("hex");
    let credited = se.send(&credit);
    let uri = format!("/v1/topups/{order_id}/complete");
    let (status, loaded) =
        s.send_as(Some(token), Method::POST, &uri, Some(json!({"answer": hex::encode(&credited)}))).await;
    assert_eq!(status, StatusCode::OK, "{loaded}");
    loaded
}
