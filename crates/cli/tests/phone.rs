//! `yitong phone …` and `yitong gate tap --phone` as a rider would run them, against a spawned
//! `yitong serve` on a free port (SQLite and development keys in a temporary data directory):
//! a new phone, a card, a top-up, a metro trip through the phone, the balance shown.
#![cfg(unix)]

mod support;

use serde_json::Value;
use support::server::{start, Server};
use support::Dir;

/// A service in `dir/data` and the environment that points `yitong phone` at it.
fn service(dir: &Dir) -> Server {
    start(&[], &dir.path("data"), "warn")
}

fn phone(dir: &Dir, server: &Server, args: &[&str]) -> std::process::Output {
    dir.command(&[&["phone"], args].concat())
        .env("YITONG_SERVER", format!("http://{}", server.address))
        .output()
        .unwrap()
}

fn ok(dir: &Dir, server: &Server, args: &[&str]) -> String {
    let out = phone(dir, server, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json(dir: &Dir, server: &Server, args: &[&str]) -> Value {
    let text = ok(dir, server, &[args, &["--json"]].concat());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// A tap of the phone's Beijing card at `station`, `direction` in or out, with the service's
/// development keys (a full key file: its purchase and maintenance keys are the gate's).
fn tap(dir: &Dir, station: &str, direction: &str) -> Value {
    let keys = dir.path("data/dev-keys/beijing.toml");
    let keys = keys.to_str().unwrap();
    let args = ["gate", "tap", "--phone", "p.json", "--city", "beijing", "--keys", keys, "--station", station];
    dir.json(&[&args[..], &["--direction", direction, "--json"]].concat())
}

#[test]
fn a_phone_enrolls_tops_up_rides_the_metro_and_shows_its_balance() {
    let dir = Dir::new();
    let server = service(&dir);

    let new = json(&dir, &server, &["new", "--maker", "Xiaomi", "--model", "Mi 6", "--out", "p.json"]);
    assert_eq!(new["registered"], true, "{new}");
    assert!(new["path"].as_str().unwrap().starts_with("embedded SE"), "{new}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path("p.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the phone file holds a token and card keys");
    }

    let enrolled = json(&dir, &server, &["enroll", "p.json", "--city", "beijing"]);
    assert_eq!((&enrolled["fee_fen"], &enrolled["existing"]), (&2_900.into(), &false.into()), "{enrolled}");
    let text = ok(&dir, &server, &["topup", "p.json", "--city", "beijing", "--amount", "50"]);
    assert!(text.contains("loaded 50.00 yuan onto the beijing card"), "{text}");
    assert!(text.ends_with("balance 50.00 yuan\n"), "{text}");

    let entry = tap(&dir, "Xidan", "in");
    assert_eq!((&entry["result"], &entry["amount_fen"]), (&"entry".into(), &0.into()), "{entry}");
    let exit = tap(&dir, "Guomao", "out");
    // Xidan to Guomao is 6.2 km on the sample network: Beijing's 6-12 km band, 4 yuan.
    assert_eq!(
        (&exit["result"], &exit["amount_fen"], &exit["balance_fen"]),
        (&"exit".into(), &400.into(), &4_600.into())
    );

    let shown = json(&dir, &server, &["show", "p.json"]);
    let card = &shown["cards"][0];
    assert_eq!((&card["city"], &card["card"]["balance_fen"]), (&"beijing".into(), &4_600.into()), "{shown}");
    // EF18, newest first: the exit's and the entry's composite (CAPP) purchases, the load.
    let log: Vec<_> = card["card"]["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["type"].as_str().unwrap(), r["amount_fen"].as_i64().unwrap()))
        .collect();
    assert_eq!(log, [("composite", 400), ("composite", 0), ("load", 5_000)]);
    // The service knows the load (gate fares are not reported to it).
    assert_eq!(shown["service"]["cards"][0]["balance_fen"], 5_000, "{shown}");

    let offline = dir.json(&["phone", "show", "p.json", "--offline", "--json"]);
    assert_eq!(offline["cards"][0]["card"]["balance_fen"], 4_600);
    assert!(offline["service"].is_null());
}

#[test]
fn a_torn_top_up_exits_1_and_the_next_command_recovers_it() {
    let dir = Dir::new();
    let server = service(&dir);
    ok(&dir, &server, &["new", "--maker", "Xiaomi", "--model", "Mi 6", "--out", "p.json"]);
    ok(&dir, &server, &["enroll", "p.json", "--city", "beijing"]);
    let out = phone(
        &dir,
        &server,
        &["topup", "p.json", "--city", "beijing", "--amount", "20", "--simulate-tear", "answer-lost"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the next command on this phone recovers it"), "{stderr}");
    let text = ok(&dir, &server, &["show", "p.json"]);
    assert!(text.contains("recovered the interrupted top-up"), "{text}");
    assert!(text.contains("loaded on the card, balance 20.00 yuan"), "{text}");
    let shown = json(&dir, &server, &["show", "p.json"]);
    assert_eq!(shown["cards"][0]["card"]["balance_fen"], 2_000);
    assert_eq!(shown["service"]["cards"][0]["balance_fen"], 2_000);
}

#[test]
fn bad_input_names_the_flag_or_the_file() {
    let dir = Dir::new();
    let cases: [(&[&str], &str); 6] = [
        (
            &["phone", "new", "--maker", "Nokia", "--model", "3310", "--out", "p.json"],
            "--maker: `Nokia` is not in the device catalogue",
        ),
        (
            &["phone", "new", "--maker", "Xiaomi", "--model", "Mi 5c", "--out", "p.json"],
            "--model: the Xiaomi Mi 5c has no NFC",
        ),
        (&["phone", "show", "missing.json"], "missing.json: cannot read"),
        (
            &["phone", "topup", "missing.json", "--city", "beijing", "--amount", "1.234"],
            "--amount: `1.234` is not an amount in yuan",
        ),
        (
            &["phone", "enroll", "good.json", "--city", "beijing", "--server", "localhost:8080"],
            "--server: `localhost:8080` is not a service URL",
        ),
        (&["gate", "tap", "--phone", "missing.json", "--keys", "k.toml", "--station", "Xidan"], "k.toml"),
    ];
    std::fs::write(dir.path("p.json"), "{\"format\": \"yitong-phone\", \"version\": 1}").unwrap();
    dir.ok(&["phone", "new", "--maker", "Xiaomi", "--model", "Mi 6", "--out", "good.json", "--offline"]);
    for (args, expected) in cases {
        let out = dir.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let out = dir.run(&["phone", "show", "p.json", "--offline"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("p.json: damaged: missing field `device`"), "{stderr}");
}

#[test]
fn an_nfc_sim_phone_names_its_carrier_and_signs_up_at_the_carriers_hall() {
    let dir = Dir::new();
    let server = service(&dir);
    let out = phone(&dir, &server, &["new", "--maker", "Xiaomi", "--model", "Mi 4", "--out", "sim.json"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--carrier: the Xiaomi Mi 4 carries cards on an NFC-SIM"), "{stderr}");
    let out = phone(
        &dir,
        &server,
        &["new", "--maker", "Xiaomi", "--model", "Mi 6", "--carrier", "China Mobile", "--out", "x.json"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--carrier: the Xiaomi Mi 6 carries cards on its embedded SE")
    );

    let new = json(
        &dir,
        &server,
        &["new", "--maker", "Xiaomi", "--model", "Mi 4", "--carrier", "China Mobile", "--out", "sim.json"],
    );
    assert_eq!(new["device"]["carrier"], "China Mobile", "{new}");
    let iccid = new["device"]["se_id"].as_str().unwrap();
    assert!(iccid.starts_with("8986") && iccid.len() == 20 && iccid.bytes().all(|b| b.is_ascii_digit()), "{iccid}");
    let enrolled = json(&dir, &server, &["enroll", "sim.json", "--city", "beijing"]);
    assert_eq!(enrolled["channel"], "carrier-hall", "{enrolled}");
}

#[test]
fn a_card_moves_to_a_new_phone_then_is_deleted_with_a_refund() {
    let dir = Dir::new();
    let server = service(&dir);
    ok(&dir, &server, &["new", "--maker", "Xiaomi", "--model", "Mi 6", "--out", "p.json"]);
    ok(&dir, &server, &["enroll", "p.json", "--city", "beijing"]);
    ok(&dir, &server, &["topup", "p.json", "--city", "beijing", "--amount", "30"]);
    ok(&dir, &server, &["new", "--maker", "Huawei", "--model", "P10", "--out", "q.json"]);

    let moved = json(&dir, &server, &["transfer", "p.json", "--to", "q.json", "--city", "beijing"]);
    assert_eq!((&moved["moved_fen"], &moved["new_balance_fen"]), (&3_000.into(), &3_000.into()), "{moved}");
    let old = json(&dir, &server, &["show", "p.json"]);
    assert_eq!(old["cards"].as_array().map(Vec::len), Some(0), "{old}");
    let new = json(&dir, &server, &["show", "q.json"]);
    assert_eq!(new["cards"][0]["card"]["balance_fen"], 3_000, "{new}");
    // The old phone's card no longer passes a gate: the phone has no Beijing card now.
    let keys = dir.path("data/dev-keys/beijing.toml");
    let out = dir.run(&["gate", "tap", "--phone", "p.json", "--keys", keys.to_str().unwrap(), "--station", "Xidan"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("p.json has no beijing card"));

    let deleted = json(&dir, &server, &["delete", "q.json", "--city", "beijing"]);
    assert_eq!(deleted["moved_fen"], 3_000, "{deleted}");
    assert_eq!(deleted["refund_order"]["amount_fen"], 3_000, "{deleted}");
    let text = ok(&dir, &server, &["show", "q.json"]);
    assert!(text.contains("no cards"), "{text}");
}

#[test]
fn a_phone_made_while_the_service_is_down_registers_at_its_first_enroll() {
    let dir = Dir::new();
    // Port 9 (discard) on loopback: nothing answers.
    let new = dir.json(&[
        "phone",
        "new",
        "--maker",
        "Xiaomi",
        "--model",
        "Mi 6",
        "--out",
        "p.json",
        "--server",
        "http://127.0.0.1:9",
        "--json",
    ]);
    assert_eq!(new["registered"], false, "{new}");
    assert!(new["note"].as_str().unwrap().contains("the first `enroll` registers it"), "{new}");
    let server = service(&dir);
    let enrolled = json(&dir, &server, &["enroll", "p.json", "--city", "beijing"]);
    assert_eq!(enrolled["existing"], false, "{enrolled}");
    let shown = json(&dir, &server, &["show", "p.json"]);
    assert_eq!(shown["server"], format!("http://{}", server.address));
    assert!(shown["phone_id"].is_string(), "{shown}");
}

#[test]
fn a_promotion_from_the_pricing_file_waives_the_fee_up_to_its_cap() {
    let dir = Dir::new();
    let pricing = dir.path("pricing.toml");
    std::fs::write(
        &pricing,
        "[[beijing.promotions]]\nid = \"mi-free\"\nmakers = [\"Xiaomi\"]\nstarts = \"2020-01-01 00:00\"\n\
         ends = \"2099-01-01 00:00\"\nfee_fen = 0\ncap = 1\n",
    )
    .unwrap();
    let server = start(&["--pricing", pricing.to_str().unwrap()], &dir.path("data"), "warn");
    let (status, quote) = server.get("/v1/cities/beijing/signup-fee?maker=Xiaomi&channel=maker-wallet");
    assert_eq!(status, 200, "{quote}");
    let quote: Value = serde_json::from_str(&quote).unwrap();
    assert_eq!((&quote["fee_fen"], &quote["promotion"]), (&0.into(), &"mi-free".into()), "{quote}");

    ok(&dir, &server, &["new", "--maker", "Xiaomi", "--model", "Mi 6", "--out", "a.json"]);
    ok(&dir, &server, &["new", "--maker", "Xiaomi", "--model", "Mi MIX", "--out", "b.json"]);
    ok(&dir, &server, &["new", "--maker", "Huawei", "--model", "P10", "--out", "c.json"]);
    let first = json(&dir, &server, &["enroll", "a.json", "--city", "beijing"]);
    assert_eq!((&first["fee_fen"], &first["promotion_id"]), (&0.into(), &"mi-free".into()), "{first}");
    // The cap of one is spent: the standard 29 yuan; another maker's phone was never in it.
    let second = json(&dir, &server, &["enroll", "b.json", "--city", "beijing"]);
    assert_eq!(second["fee_fen"], 2_900, "{second}");
    let other = json(&dir, &server, &["enroll", "c.json", "--city", "beijing"]);
    assert_eq!(other["fee_fen"], 2_900, "{other}");
    drop(server);

    // A file that cannot be used stops the start, naming the flag, the file and the field.
    std::fs::write(&pricing, "[[beijing.promotions]]\nid = \"x\"\nchannels = [\"fax\"]\nstarts = \"2020-01-01 00:00\"\nends = \"2021-01-01 00:00\"\nfee_fen = 0\n").unwrap();
    let out = dir.run(&["serve", "--listen", "127.0.0.1:0", "--pricing", pricing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--pricing: ") && stderr.contains("[beijing] promotion `x`, `channels`: `fax`"),
        "{stderr}"
    );
}

#[test]
fn a_rotated_token_is_kept_in_the_phone_file_and_the_old_one_is_refused() {
    let dir = Dir::new();
    let server = service(&dir);
    ok(&dir, &server, &["new", "--maker", "Xiaomi", "--model", "Mi 6", "--out", "p.json"]);
    ok(&dir, &server, &["enroll", "p.json", "--city", "beijing"]);
    let read = |name: &str| -> Value { serde_json::from_slice(&std::fs::read(dir.path(name)).unwrap()).unwrap() };
    let write = |name: &str, value: &Value| std::fs::write(dir.path(name), value.to_string()).unwrap();
    let first = read("p.json");
    std::fs::copy(dir.path("p.json"), dir.path("old.json")).unwrap();

    let rotated = json(&dir, &server, &["rotate-token", "p.json"]);
    assert_eq!(rotated["token_rotated"], true, "{rotated}");
    let second = read("p.json");
    assert_ne!(second["token"], first["token"], "a new token in the file");
    assert!(second["token"].as_str().unwrap().starts_with("ytp_"));
    assert!(second.get("pending_token").is_none(), "nothing left pending: {second}");
    let shown = json(&dir, &server, &["show", "p.json"]);
    assert_eq!(shown["phone_id"], first["phone_id"], "{shown}");

    // The copy with the old token: the service refuses it.
    let out = phone(&dir, &server, &["show", "old.json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("401"), "{stderr}");

    // A proposal kept but never sent (the phone died before): the next command sends it.
    // (SHA-256 of "abc", FIPS 180-2's example, standing in for the phone's randomness.)
    let third = "ytp_ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let mut file = read("p.json");
    file["pending_token"] = third.into();
    write("p.json", &file);
    json(&dir, &server, &["show", "p.json"]);
    let sent = read("p.json");
    assert_eq!((&sent["token"], sent.get("pending_token")), (&third.into(), None), "{sent}");

    // A rotation whose answer was lost after the service took it: the file still names the old
    // token, the new one pending. The next command finds the old refused, the new taken.
    ok(&dir, &server, &["rotate-token", "p.json"]);
    let fourth = read("p.json")["token"].clone();
    assert!(fourth != third && fourth != second["token"], "a fresh token: {fourth}");
    let mut lost = read("p.json");
    lost["token"] = third.into();
    lost["pending_token"] = fourth.clone();
    write("p.json", &lost);
    let shown = json(&dir, &server, &["show", "p.json"]);
    assert_eq!(shown["phone_id"], first["phone_id"], "{shown}");
    let settled = read("p.json");
    assert_eq!((&settled["token"], settled.get("pending_token")), (&fourth, None), "{settled}\n{shown}");

    // A proposal the service refuses for good (not made of randomness): dropped, the phone keeps
    // its token and the command goes on.
    let mut refused = read("p.json");
    refused["pending_token"] = format!("ytp_{}", "0a".repeat(32)).into();
    write("p.json", &refused);
    json(&dir, &server, &["show", "p.json"]);
    let kept = read("p.json");
    assert_eq!((&kept["token"], kept.get("pending_token")), (&fourth, None), "{kept}");
}

#[test]
fn a_phone_whose_registration_the_clearing_house_reset_registers_again_with_the_code() {
    let dir = Dir::new();
    let server = service(&dir);
    ok(&dir, &server, &["new", "--maker", "Xiaomi", "--model", "Mi 6", "--out", "p.json"]);
    ok(&dir, &server, &["enroll", "p.json", "--city", "beijing"]);
    let read = || -> Value { serde_json::from_slice(&std::fs::read(dir.path("p.json")).unwrap()).unwrap() };
    let before = read();
    let device = before["device"]["device_id"].as_str().unwrap().to_owned();
    let data = dir.path("data");
    let key = dir.ok(&["operator", "key", "new", "--clearing-house", "--data-dir", data.to_str().unwrap()]);
    let (status, body) = server.send("POST", &format!("/v1/operator/phones/{device}/reset"), Some(key.trim()));
    assert_eq!(status, 200, "{body}");
    let code = serde_json::from_str::<Value>(&body).unwrap()["reset_code"].as_str().unwrap().to_owned();

    // The file's token is dead; with the code, the file gets a new one and the card is there.
    let out = phone(&dir, &server, &["show", "p.json"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("401"));
    // The code read from standard input, as a rider would paste it.
    let mut child = dir
        .command(&["phone", "reregister", "p.json", "--reset-code", "-", "--json"])
        .env("YITONG_SERVER", format!("http://{}", server.address))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["registered_again"], true, "{again}");
    let after = read();
    assert_ne!(after["token"], before["token"]);
    assert_eq!(after["phone_id"], before["phone_id"]);
    assert!(after.get("pending_token").is_none(), "{after}");
    let shown = json(&dir, &server, &["show", "p.json"]);
    assert_eq!(shown["cards"][0]["city"], "beijing", "{shown}");
    // The code is used up: refused, and the proposal dropped, the phone keeps its token.
    let out = phone(&dir, &server, &["reregister", "p.json", "--reset-code", &code]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("409"));
    let kept = read();
    assert_eq!((&kept["token"], kept.get("pending_token")), (&after["token"], None), "{kept}");

    // An answer lost after the service took the new token: the file names the dead token with
    // the new one pending; the next command settles it.
    let (status, body) = server.send("POST", &format!("/v1/operator/phones/{device}/reset"), Some(key.trim()));
    assert_eq!(status, 200, "{body}");
    let code = serde_json::from_str::<Value>(&body).unwrap()["reset_code"].as_str().unwrap().to_owned();
    ok(&dir, &server, &["reregister", "p.json", "--reset-code", &code]);
    let taken = read()["token"].clone();
    let mut lost = read();
    lost["token"] = after["token"].clone();
    lost["pending_token"] = taken.clone();
    std::fs::write(dir.path("p.json"), lost.to_string()).unwrap();
    let shown = json(&dir, &server, &["show", "p.json"]);
    let settled = read();
    assert_eq!((&settled["token"], settled.get("pending_token")), (&taken, None), "{settled}\n{shown}");
}
