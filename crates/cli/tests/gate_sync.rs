//! `yitong gate sync` against a spawned `yitong serve` holding the issuer's keys: a top-up
//! terminal's and a gate's records (a real card's TACs) uploaded from the state file, accepted and
//! cleared in the day's report (the exit fare owed by Beijing's issuer to Beijing's metro); a sync
//! again uploads nothing; a card the operator lists reaches the gate's hotlist file and the gate
//! refuses it.
#![cfg(unix)]

mod support;

use serde_json::Value;
use support::server::start;
use support::Dir;
use yitong_clearing::hotlist::{Actor, ChangeKind};
use yitong_clearing::shadow::CardId;
use yitong_platform::store::Store;

fn sync(dir: &Dir, address: &str, key: &str) -> Value {
    dir.json(&[
        "gate",
        "sync",
        "--state",
        "st.json",
        "--server",
        &format!("http://{address}"),
        "--key",
        key,
        "--operator",
        "beijing-metro",
        "--hotlist",
        "hot.txt",
        "--json",
    ])
}

#[test]
fn a_gate_uploads_its_records_and_follows_the_hotlist() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path("keys")).unwrap();
    dir.ok(&["keys", "new", "--issuer-id", "0000100000000001", "--out", "keys/beijing.toml"]);
    let data = dir.path("data");
    let server = start(&["--keys", dir.path("keys").to_str().unwrap()], &data, "warn");
    let key = dir.ok(&["operator", "key", "new", "--city", "beijing", "--data-dir", data.to_str().unwrap()]);
    let key = key.trim().to_owned();

    let keys = "keys/beijing.toml";
    dir.ok(&[
        "card",
        "issue",
        "--keys",
        keys,
        "--serial",
        "10000000000000123456",
        "--out",
        "card.se",
        "--valid-from",
        "2026-01-01",
        "--valid-to",
        "2030-12-31",
    ]);
    let state = ["--state", "st.json"];
    dir.ok(&[
        &["card", "load", "card.se", "--keys", keys, "--amount", "50", "--at", "2026-11-25 07:00:00"][..],
        &state,
    ]
    .concat());
    let tap = |station: &str, at: &str, extra: &[&str]| {
        let args = ["gate", "tap", "card.se", "--keys", keys, "--city", "beijing", "--station", station, "--at", at];
        dir.json(&[&args[..], &state, extra, &["--json"]].concat())
    };
    tap("Xidan", "2026-11-25 08:00:00", &[]);
    let exit = tap("Guomao", "2026-11-25 08:30:00", &[]);
    let fare = exit["amount_fen"].as_i64().unwrap();
    assert!(fare > 0, "{exit}");

    let first = sync(&dir, &server.address, &key);
    let uploads = first["uploads"].as_array().unwrap();
    let accepted: i64 = uploads.iter().map(|u| u["answer"]["accepted"].as_i64().unwrap()).sum();
    assert_eq!((uploads.len(), accepted), (3, 3), "the load terminal, the entry gate and the exit gate: {first}");
    assert!(uploads.iter().all(|u| u["answer"]["rejected"] == serde_json::json!([])), "{first}");
    assert_eq!(first["failed"], serde_json::json!([]));
    let again = sync(&dir, &server.address, &key);
    assert_eq!(again["uploads"], serde_json::json!([]), "nothing left to send: {again}");

    // The day's report: the exit fare cleared, owed by Beijing's issuer to Beijing's metro.
    let report =
        dir.json(&["settle", "--date", "2026-11-25", "--format", "json", "--data-dir", data.to_str().unwrap()]);
    let metro = report["operators"].as_array().unwrap().iter().find(|o| o["operator"]["id"] == "metro:1000");
    assert_eq!(metro.map(|m| m["purchases"]["amount_fen"].as_i64()), Some(Some(fare)), "{report}");

    // Ridership: one journey Xidan → Guomao at 08:00–08:30, the fare on the metro's line.
    let (status, body) = server.get_as("/v1/operator/ridership?date=2026-11-25", Some(&key));
    assert_eq!(status, 200, "{body}");
    let stats: Value = serde_json::from_str(&body).unwrap();
    let journeys = stats["journeys"].as_array().unwrap();
    assert_eq!(journeys.len(), 1, "{stats}");
    assert_eq!((&journeys[0]["journeys"], &journeys[0]["fares_fen"]), (&1.into(), &fare.into()), "{stats}");
    assert_eq!(stats["operators"][0]["amount_fen"], fare, "{stats}");
    let taps: i64 = stats["station_hours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["entries"].as_i64().unwrap() + h["exits"].as_i64().unwrap())
        .sum();
    assert_eq!(taps, 2, "{stats}");

    // The operator lists the card; the next sync brings it to the gate, which refuses it.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = Store::open_data_dir(&data).await.unwrap();
        let card =
            CardId { issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1], card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56] };
        let at = yitong_profile::DateTime::new(2026, 11, 25, 9, 0, 0).unwrap();
        store.change_hotlist(card, ChangeKind::Added, "reported stolen", Actor::Policy, at, 0).await.unwrap();
        store.close().await;
    });
    let third = sync(&dir, &server.address, &key);
    assert_eq!((&third["hotlist"]["version"], &third["hotlist"]["cards"]), (&1.into(), &1.into()), "{third}");
    let hotlist = std::fs::read_to_string(dir.path("hot.txt")).unwrap();
    assert!(hotlist.lines().any(|l| l == "10000000000000123456"), "{hotlist}");
    let refused = tap("Xidan", "2026-11-25 10:00:00", &["--hotlist", "hot.txt"]);
    assert_eq!(refused["result"], "refused", "{refused}");
}

#[test]
fn a_sync_without_a_key_or_server_says_what_is_missing() {
    let dir = Dir::new();
    let out = dir.command(&["gate", "sync", "--state", "st.json"]).env_remove("YITONG_OPERATOR_KEY").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--key"));
    let out = dir.run(&["gate", "sync", "--state", "st.json", "--key", "yto_x", "--server", "http://127.0.0.1:9"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the hotlist could not be fetched: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not answer"));
}
