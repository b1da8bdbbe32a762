//! `yitong serve` as a real process on a free port: it prints its URL, answers plain HTTP over
//! TCP, and stops cleanly at Ctrl-C (SIGINT).
#![cfg(unix)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::server::start;

#[test]
fn serve_answers_http_on_a_sqlite_file_and_stops_at_ctrl_c() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("service.sqlite");
    let server = start(&["--db", &format!("sqlite:{}", db.display())], &dir.path().join("unused"), "info");

    let (status, body) = server.get("/healthz");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok","database":"sqlite"}"#));
    let (status, body) = server.get("/v1/cities/beijing");
    assert_eq!(status, 200, "{body}");
    let beijing: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!((&beijing["name"], &beijing["signup_fee_fen"]), (&"beijing".into(), &2_900.into()));
    assert_eq!(beijing["card_aids"][0], "A000000632010105");
    let (status, body) = server.get("/v1/cities/atlantis");
    assert_eq!(status, 404);
    assert_eq!(serde_json::from_str::<Value>(&body).expect("JSON")["code"], "not_found");

    let (status, stdout, stderr) = server.interrupt();
    assert!(status.success(), "{status}: {stderr}");
    assert_eq!(stdout, "yitong: stopped\n");
    // Structured request logs: the route pattern and the status as fields.
    assert!(stderr.contains("route=/v1/cities/{name} status=200"), "{stderr}");
    assert!(db.exists(), "the database file {} was created", db.display());
    assert!(!dir.path().join("unused").exists(), "--db wins over the data directory");
}

#[test]
fn serve_keeps_its_database_in_the_data_directory_by_default() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let data_dir = dir.path().join("data");
    let server = start(&[], &data_dir, "info");
    assert_eq!(server.get("/healthz").0, 200);
    let (status, _, stderr) = server.interrupt();
    assert!(status.success(), "{status}: {stderr}");
    assert!(data_dir.join("platform.sqlite").exists());
}

#[test]
fn serve_names_a_bad_listen_address_or_database() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = Command::new(env!("CARGO_BIN_EXE_yitong"))
        .args(["serve", "--listen", "localhost"])
        .env("YITONG_DATA_DIR", dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--listen: `localhost` is not an address and port like 127.0.0.1:8080"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_yitong"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db", "mysql://db/yitong"])
        .env("YITONG_DATA_DIR", dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--db: cannot open mysql://db/yitong"), "{stderr}");
    assert!(stderr.contains("expected sqlite:PATH or postgres://"), "{stderr}");
}
