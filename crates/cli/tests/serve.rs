//! `yitong serve` as a real process on a free port: it prints its URL, answers plain HTTP over
//! TCP, and stops cleanly at Ctrl-C (SIGINT).
#![cfg(unix)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::server::{start, start_with_env};

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
    let data_dir = dir.path().join("unused");
    assert!(!data_dir.join("platform.sqlite").exists(), "--db wins over the data directory");
    // The development keys live in the data directory all the same; the log says what they
    // are and never shows one.
    let keys = std::fs::read_to_string(data_dir.join("dev-keys/beijing.toml")).expect("development keys");
    assert!(stderr.contains("DEVELOPMENT ONLY"), "{stderr}");
    for line in keys.lines().filter(|l| l.starts_with("d")) {
        let key = line.split('"').nth(1).expect("a quoted key");
        assert!(!stderr.contains(key), "a key in the log");
    }
}

#[test]
fn serve_reads_a_keys_directory_and_names_a_bad_one() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).expect("a directory");
    let out = Command::new(env!("CARGO_BIN_EXE_yitong"))
        .args(["keys", "new", "--issuer-id", "0000100000000001", "--out"])
        .arg(keys.join("beijing.toml"))
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let server = start(&["--keys", keys.to_str().expect("UTF-8")], &dir.path().join("data"), "info");
    assert_eq!(server.get("/healthz").0, 200);
    let (status, _, stderr) = server.interrupt();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("cities=[\"beijing\"]"), "{stderr}");
    assert!(!dir.path().join("data/dev-keys").exists(), "no development keys with --keys");

    std::fs::write(keys.join("broken.toml"), "issuer_id = 12").expect("written");
    // $YITONG_KEYS_DIR is --keys by default.
    let out = Command::new(env!("CARGO_BIN_EXE_yitong"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("YITONG_KEYS_DIR", &keys)
        .env("YITONG_DATA_DIR", dir.path().join("data"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.toml: not a Yitong key file"), "{stderr}");
}

#[test]
fn serve_reads_key_files_from_the_environment_and_never_shows_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("beijing.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_yitong"))
        .args(["keys", "new", "--issuer-id", "0000100000000001", "--out"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&file).expect("the key file");
    let dlk = text.lines().find(|l| l.trim_start().starts_with("dlk")).expect("a load key line");
    let dlk = dlk.split('"').nth(1).expect("quoted hex").to_owned();
    let env = [("YITONG_ISSUER_KEYS_BEIJING", text.as_str())];
    let server = start_with_env(&[], &dir.path().join("data"), "info", &env);
    let (status, body) = server.get("/v1/cities/beijing/signup-fee?maker=Xiaomi&channel=maker-wallet");
    assert_eq!(status, 200, "{body}");
    let (status, stdout, stderr) = server.interrupt();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("variables=[\"YITONG_ISSUER_KEYS_BEIJING\"]"), "{stderr}");
    assert!(stderr.contains("cities=[\"beijing\"]"), "{stderr}");
    assert!(!stderr.contains(&dlk) && !stdout.contains(&dlk), "a key in the output");
    assert!(!dir.path().join("data/dev-keys").exists(), "no development keys with keys in the environment");

    // A broken one stops the start, naming the variable, not its value; with --keys too: refused.
    let broken = text.replace(&dlk, "00");
    let out = Command::new(env!("CARGO_BIN_EXE_yitong"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("YITONG_ISSUER_KEYS_BEIJING", &broken)
        .env("YITONG_DATA_DIR", dir.path().join("data"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("YITONG_ISSUER_KEYS_BEIJING: master.dlk: must be 32 hex digits (value not shown)"),
        "{stderr}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_yitong"))
        .args(["serve", "--listen", "127.0.0.1:0", "--keys"])
        .arg(dir.path())
        .env("YITONG_ISSUER_KEYS_BEIJING", &text)
        .env("YITONG_DATA_DIR", dir.path().join("data"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not both"));
}

#[test]
fn operator_keys_are_made_listed_and_revoked_and_printed_once() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let yitong = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_yitong"))
            .args(args)
            .args(["--data-dir", dir.path().to_str().expect("UTF-8")])
            .output()
            .expect("runs")
    };
    let out = yitong(&["operator", "key", "new", "--city", "Beijing", "--name", "desk 1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).expect("UTF-8").trim().to_owned();
    assert!(key.starts_with("yto_") && key.len() == 68, "{key}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let id = stderr.split_whitespace().nth(2).expect("the key's ID").to_owned();
    assert!(id.starts_with("opk_"), "{stderr}");

    let out = yitong(&["operator", "key", "list"]);
    let listed = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(listed.contains(&id) && listed.contains("beijing") && listed.contains("active"), "{listed}");
    assert!(!listed.contains(&key[4..]), "list never shows a key");

    let out = yitong(&["operator", "key", "revoke", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8(yitong(&["operator", "key", "list"]).stdout).expect("UTF-8");
    assert!(listed.contains("revoked"), "{listed}");
    let out = yitong(&["operator", "key", "revoke", &id]);
    assert_eq!(out.status.code(), Some(2));
    let out = yitong(&["operator", "key", "new", "--city", "atlantis"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--city: `atlantis` is not a city"));
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
    // `serve` with `args` refuses to start (exit 2): what it says.
    let refused = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_yitong"))
            .arg("serve")
            .args(args)
            .env("YITONG_DATA_DIR", dir.path())
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = refused(&["--listen", "localhost"]);
    assert!(stderr.contains("--listen: `localhost` is not an address and port like 127.0.0.1:8080"), "{stderr}");

    let stderr = refused(&["--listen", "127.0.0.1:0", "--db", "mysql://db/yitong"]);
    assert!(stderr.contains("--db: cannot open mysql://db/yitong"), "{stderr}");
    assert!(stderr.contains("expected sqlite:PATH or postgres://"), "{stderr}");

    let stderr = refused(&["--listen", "127.0.0.1:0", "--shadow-cache-cards", "0"]);
    assert!(stderr.contains("--shadow-cache-cards") && stderr.contains("from 2 to 16777216"), "{stderr}");
}

#[test]
fn serve_imports_more_makers_and_models_and_names_a_bad_row() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let makers = dir.path().join("makers.csv");
    let models = dir.path().join("models.csv");
    std::fs::write(&makers, "# an operator's additions\nmaker,wallet_app,source\nNokia,Nokia Wallet,example\n")
        .expect("written");
    std::fs::write(
        &models,
        "maker,model,aliases,nfc,secure_element,cities,source\nNokia,X7,Nokia X7,yes,ese,beijing,example\n",
    )
    .expect("written");
    let args = ["--makers", makers.to_str().expect("UTF-8"), "--devices", models.to_str().expect("UTF-8")];
    let server = start(&args, &dir.path().join("data"), "info");
    let (status, body) = server.get("/v1/devices/eligibility?maker=nokia&model=X7&city=beijing");
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!((&answer["path"], &answer["wallet_app"]), (&"embedded-se".into(), &"Nokia Wallet".into()), "{body}");
    // The shipped catalogue is still there.
    let (_, body) = server.get("/v1/devices/eligibility?maker=Xiaomi&model=Mi%206&city=beijing");
    assert!(body.contains("\"path\":\"embedded-se\""), "{body}");
    let (status, _, stderr) = server.interrupt();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("device models imported") && stderr.contains("added=1"), "{stderr}");

    // A bad row: nothing served, the file, line and field named.
    std::fs::write(&models, "maker,model,aliases,nfc,secure_element,cities,source\nNokia,X8,,maybe,ese,beijing,x\n")
        .expect("written");
    let out = Command::new(env!("CARGO_BIN_EXE_yitong"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(args)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("--makers/--devices: device catalogue: {}:2: nfc", models.display())), "{stderr}");

    // A makers file without its wallet app column, likewise.
    std::fs::write(&makers, "maker,source\nNokia,example\n").expect("written");
    let out = Command::new(env!("CARGO_BIN_EXE_yitong"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--makers", makers.to_str().expect("UTF-8")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("--makers/--devices: device catalogue: {}", makers.display())), "{stderr}");
    assert!(stderr.contains("wallet_app"), "{stderr}");
}
