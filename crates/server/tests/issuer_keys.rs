//! Issuer keys that outlive a restart: development keys made once into the data directory
//! (mode 0600) and read again, so that a card issued before a restart is loaded after it; and a
//! keys directory with one full key file per city, cities without one unable to issue.

mod support;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::{beijing, issue, service, top_up, SecureElement};
use yitong_crypto::Algorithm;
use yitong_files::write_atomically;
use yitong_platform::cities::Cities;
use yitong_platform::keyfile::KeySet;
use yitong_platform::store::Store;
use yitong_profile::DateTime;
use yitong_server::{AppState, FixedClock, KeySource, StateError};

#[tokio::test]
async fn a_card_issued_before_a_restart_is_topped_up_after_it() {
    let s = service().await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().expect("serial").to_owned();
    let mut se = SecureElement::new(issued["image_hex"].as_str().expect("an image"));
    let keys_file = s.data_dir().join("dev-keys").join("beijing.toml");
    let written = std::fs::read_to_string(&keys_file).expect("the development keys are on disk");
    assert!(written.contains("DEVELOPMENT") && written.contains("issuer_id = \"0000100000000001\""), "{written}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys_file).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable by its owner only");
    }

    let s = s.restart().await;
    assert_eq!(std::fs::read_to_string(&keys_file).expect("still there"), written, "read again, not made anew");
    // The card's MAC1 verifies under the keys read back, and it accepts our MAC2.
    let loaded = top_up(&s, &s.token, &mut se, &serial, "TOP-0001", 2_000).await;
    assert_eq!(loaded["order"]["state"], "loaded");
    assert_eq!(se.balance_fen(), 2_000);
    // The same request after the restart returns the same card image, byte for byte.
    let (status, again) = s.post("/v1/cards", beijing("FEE-0001")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["image_hex"], issued["image_hex"]);
    s.assert_balanced().await;
}

#[tokio::test]
async fn a_keys_directory_gives_keys_to_its_cities_only() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).expect("a keys directory");
    let cities = Cities::builtin().expect("cities");
    let beijing_city = cities.get("beijing").expect("Beijing");
    let set = KeySet::generate(beijing_city.issuer_id(), Algorithm::Sm4).expect("keys");
    // Any file name: the issuer ID inside names the city.
    write_atomically(&keys.join("issuer-a.toml"), set.to_toml().as_bytes()).expect("written");
    std::fs::write(keys.join("README"), "not a key file").expect("written");

    let store = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
    let now = DateTime::new(2026, 11, 25, 18, 30, 0).expect("valid");
    let state = AppState::builtin(store.clone(), Arc::new(FixedClock(now)), KeySource::Dir(keys.clone()))
        .expect("the keys directory reads");
    assert!(!dir.path().join("dev-keys").exists(), "no development keys when a keys directory is given");
    let s = support::Service::with_state(state, dir).await;
    let issued = issue(&s, "FEE-0001").await;
    let mut se = SecureElement::new(issued["image_hex"].as_str().expect("an image"));
    let serial = issued["card"]["serial"].as_str().expect("serial").to_owned();
    let loaded = top_up(&s, &s.token, &mut se, &serial, "TOP-0001", 100).await;
    assert_eq!(loaded["order"]["state"], "loaded", "an SM4 card under the directory's keys");

    // Shanghai has no key file: it cannot issue.
    let body = json!({"city": "shanghai", "channel": "maker-wallet", "fee_order_id": "FEE-0002"});
    let (status, refused) = s.send(Method::POST, "/v1/cards", Some(body)).await;
    assert_eq!((status, &refused["code"]), (StatusCode::SERVICE_UNAVAILABLE, &json!("cannot_issue")), "{refused}");

    // A file of an issuer that is no city's is refused at start, naming the file.
    let stranger = KeySet::generate([0, 0, 0x99, 0x99, 0, 0, 0, 1], Algorithm::Des).expect("keys");
    write_atomically(&keys.join("stranger.toml"), stranger.to_toml().as_bytes()).expect("written");
    let error = AppState::builtin(store, Arc::new(FixedClock(now)), KeySource::Dir(keys))
        .expect_err("an unknown issuer is refused");
    assert!(matches!(error, StateError::Keys(_)), "{error}");
    assert!(error.to_string().contains("stranger.toml"), "{error}");
}
