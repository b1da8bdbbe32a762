//! `yitong gate sync` against a spawned `yitong serve` holding the issuer's keys: a top-up
//! terminal's and a gate's records (a real card's TACs) uploaded from the state file, accepted and
//! cleared in the day's report (the exit fare owed by Beijing's issuer to Beijing's metro); a sync
//! again uploads nothing; a card the operator lists reaches the gate's hotlist file and the gate
//! refuses it. Taps and syncs in parallel processes on one state file lose and double nothing.
#![cfg(unix)]

mod support;

use serde_json::Value;
use support::server::{start, Server};
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

/// Beijing's issuer keys in `keys/beijing.toml`, a `yitong serve` holding them (data in `data`),
/// and an operator key of Beijing's.
fn back_office(dir: &Dir) -> (Server, String) {
    std::fs::create_dir(dir.path("keys")).unwrap();
    dir.ok(&["keys", "new", "--issuer-id", "0000100000000001", "--out", "keys/beijing.toml"]);
    let data = dir.path("data");
    let server = start(&["--keys", dir.path("keys").to_str().unwrap()], &data, "warn");
    let key = dir.ok(&["operator", "key", "new", "--city", "beijing", "--data-dir", data.to_str().unwrap()]);
    (server, key.trim().to_owned())
}

#[test]
fn a_gate_uploads_its_records_and_follows_the_hotlist() {
    let dir = Dir::new();
    let (server, key) = back_office(&dir);
    let data = dir.path("data");
    let keys = "keys/beijing.toml";
    dir.issue(keys, "10000000000000123456", "card.se");
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
    let clearing = dir.ok(&["operator", "key", "new", "--clearing-house", "--data-dir", data.to_str().unwrap()]);
    let (status, body) = server.get_as("/v1/operator/ridership?date=2026-11-25", Some(&key));
    assert_eq!(status, 403, "a city's key reads no ridership across cities: {body}");
    let (status, body) = server.get_as("/v1/operator/ridership?date=2026-11-25", Some(clearing.trim()));
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

/// Gates tapping three cards (a process per tap) while `gate sync` runs again and again (a
/// process per sync), all on one state file: every record reaches the back office exactly once —
/// none lost between a tap and a sync, none sent twice — and a last sync finds nothing left.
#[test]
fn taps_and_syncs_in_parallel_processes_lose_and_double_nothing() {
    const CARDS: usize = 3;
    const TAPS: usize = 6;
    let dir = std::sync::Arc::new(Dir::new());
    let (server, key) = back_office(&dir);
    let data = dir.path("data");
    let keys = "keys/beijing.toml";
    for card in 0..CARDS {
        let (file, serial) = (format!("card{card}.se"), format!("1000000000000012345{card}"));
        dir.issue(keys, &serial, &file);
        let load = ["card", "load", &file, "--keys", keys, "--amount", "50", "--at", "2026-11-25 07:00:00"];
        dir.ok(&[&load[..], &["--state", "st.json"]].concat());
    }

    let tappers: Vec<_> = (0..CARDS)
        .map(|card| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                for tap in 0..TAPS {
                    let file = format!("card{card}.se");
                    let station = if tap % 2 == 0 { "Xidan" } else { "Guomao" };
                    let at = format!("2026-11-25 {:02}:{:02}:00", 8 + card, tap * 5);
                    let args = ["gate", "tap", &file, "--keys", keys, "--city", "beijing", "--station", station];
                    dir.ok(&[&args[..], &["--at", &at, "--state", "st.json", "--json"]].concat());
                }
            })
        })
        .collect();
    let syncer = {
        let (dir, address, key) = (dir.clone(), server.address.clone(), key.clone());
        std::thread::spawn(move || {
            for _ in 0..5 {
                let synced = sync(&dir, &address, &key);
                assert_eq!(synced["failed"], serde_json::json!([]), "{synced}");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
    };
    for thread in tappers.into_iter().chain([syncer]) {
        thread.join().expect("a tapper or the syncer");
    }
    let last = sync(&dir, &server.address, &key);
    assert_eq!(last["failed"], serde_json::json!([]), "{last}");
    let again = sync(&dir, &server.address, &key);
    assert_eq!(again["uploads"], serde_json::json!([]), "nothing left: {again}");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (batches, records) = runtime.block_on(async {
        let store = Store::open_data_dir(&data).await.unwrap();
        let counts = store.clearing_counts().await.unwrap();
        store.close().await;
        counts
    });
    assert!(batches >= 1);
    let expected = i64::try_from(CARDS * (1 + TAPS)).unwrap();
    assert_eq!(records, [("accepted".to_owned(), expected)].into(), "each load and tap once, none twice");
}
