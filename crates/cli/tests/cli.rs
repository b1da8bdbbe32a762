//! The `yitong` binary end to end: files on disk, exit codes, JSON output and error messages.

mod support;

use std::process::Output;

use serde_json::Value;
use support::{records, skip, Dir};

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn keys_new_writes_a_marked_development_key_set() {
    let d = Dir::new();
    let out = d.ok(&["keys", "new", "--out", "keys.toml", "--issuer-id", "0000290000000007", "--algorithm", "sm4"]);
    assert!(out.contains("DEVELOPMENT"));
    let text = std::fs::read_to_string(d.path("keys.toml")).unwrap();
    assert!(text.starts_with("# Yitong DEVELOPMENT key set"));
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(v["issuer_id"].as_str(), Some("0000290000000007"));
    assert_eq!(v["algorithm"].as_str(), Some("sm4"));
    for k in ["dlk", "dpk", "dtk"] {
        let key = v["master"][k].as_str().unwrap();
        assert_eq!(key.len(), 32);
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    }
    // Not overwritten without --force.
    let again = d.run(&["keys", "new", "--out", "keys.toml"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--force"));
}

#[test]
fn issue_without_a_serial_takes_the_next_one_from_the_register() {
    let d = Dir::new();
    d.ok(&["keys", "new", "--out", "keys.toml"]);
    let first = d.ok(&["card", "issue", "--keys", "keys.toml", "--out", "a.se"]);
    assert_eq!(first.trim(), "issued card 0000000000000000001 to a.se");
    // A card the issuer's rules refuse spends no serial.
    let refused = d.run(&["card", "issue", "--keys", "keys.toml", "--out", "x.se", "--valid-to", "2020-01-01"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("--valid-to: the card would expire before it becomes valid"),
        "{}",
        stderr(&refused)
    );
    let second = d.ok(&["card", "issue", "--keys", "keys.toml", "--out", "b.se"]);
    assert_eq!(second.trim(), "issued card 0000000000000000002 to b.se");
    assert_eq!(d.json(&["card", "show", "b.se", "--json"])["serial"], "10000000000000000002");
    // Another register counts on its own; --serial and --serials do not go together.
    let other = d.ok(&["card", "issue", "--keys", "keys.toml", "--out", "c.se", "--serials", "other.json"]);
    assert_eq!(other.trim(), "issued card 0000000000000000001 to c.se");
    let both = d.run(&[
        "card",
        "issue",
        "--keys",
        "keys.toml",
        "--out",
        "d.se",
        "--serial",
        "10000000000000000009",
        "--serials",
        "o.json",
    ]);
    assert_eq!(both.status.code(), Some(2));
    // A damaged register is refused by name, not overwritten.
    std::fs::write(d.path("yitong-serials.json"), "{").unwrap();
    let damaged = d.run(&["card", "issue", "--keys", "keys.toml", "--out", "e.se"]);
    assert!(stderr(&damaged).contains("yitong-serials.json: not a serial register"), "{}", stderr(&damaged));
}

#[test]
fn issue_load_and_show_through_apdus() {
    let d = Dir::new();
    d.card("50");
    let v = d.json(&["card", "show", "card.se", "--json"]);
    assert_eq!(v["serial"], "10000000000000123456");
    assert_eq!(v["card_number"], "0000000000000123456");
    assert_eq!(v["issuer_id"], "0000100000000001");
    assert_eq!(v["valid_from"], "2026-01-01");
    assert_eq!(v["valid_to"], "2030-12-31");
    assert_eq!(v["balance_fen"], 5_000);
    assert_eq!(v["online_counter"], 1);
    assert_eq!(v["offline_counter"], 0);
    assert_eq!(v["metro"]["inside"], false);
    assert_eq!(v["log"][0]["type"], "load");
    assert_eq!(v["log"][0]["amount_fen"], 5_000);
    assert_eq!(v["log"][0]["counter"], 1);
    assert_eq!(v["log"][0]["terminal_id"], "1000FFFF0001");
    assert_eq!(v["log"][0]["at"], "2026-11-25 07:00:00");
    let text = d.ok(&["card", "show", "card.se"]);
    assert!(text.contains("balance       50.00 yuan"), "{text}");
}

#[test]
fn entry_and_exit_charge_and_write_records() {
    let d = Dir::new();
    d.card("20");
    let entry = stdout_json(&d.tap("西单", "2026-11-25 08:00:00", &[]));
    assert_eq!(
        (entry["result"].as_str(), entry["amount_fen"].as_u64(), entry["balance_fen"].as_i64()),
        (Some("entry"), Some(0), Some(2_000))
    );
    let show = d.json(&["card", "show", "card.se", "--json"]);
    assert_eq!(show["metro"]["inside"], true);
    let exit = stdout_json(&d.tap("Guomao", "2026-11-25 08:30:00", &[]));
    assert_eq!(
        (exit["result"].as_str(), exit["amount_fen"].as_u64(), exit["balance_fen"].as_i64()),
        (Some("exit"), Some(400), Some(1_600))
    );
    let lines = records(&d.path("taps.jsonl"));
    assert_eq!(lines.iter().map(|r| r["kind"].as_str().unwrap()).collect::<Vec<_>>(), ["load", "entry", "exit"]);
    assert_eq!(lines[2]["station"], "国贸");
    assert_eq!((lines[0]["city"].as_str(), lines[0]["city_code"].as_str()), (Some("beijing"), Some("1000")));
    assert_eq!(lines[2]["counter"], 2);
    assert_eq!(lines[2]["tac"].as_str().unwrap().len(), 8);
    // The two gates numbered their own transactions from 1.
    assert_eq!(lines[1]["terminal_transaction_number"], 1);
    assert_eq!(lines[2]["terminal_transaction_number"], 1);
    let show = d.json(&["card", "show", "card.se", "--json"]);
    assert_eq!(show["balance_fen"], 1_600);
    assert_eq!(show["log"][0]["type"], "composite");
    assert_eq!(show["trips"][0]["type"], "exit");
}

#[test]
fn pulled_away_tap_is_recovered_without_a_second_charge() {
    let d = Dir::new();
    d.card("20");
    d.tap("Xidan", "2026-11-25 08:00:00", &[]);
    let lost = d.tap("Guomao", "2026-11-25 08:30:00", &["--simulate-pull-away"]);
    assert_eq!(lost.status.code(), Some(1), "{}", stderr(&lost));
    assert_eq!(stdout_json(&lost)["result"], "interrupted");
    assert_eq!(records(&d.path("taps.jsonl")).len(), 2, "no exit record while in doubt");
    // The card committed the exit.
    assert_eq!(d.json(&["card", "show", "card.se", "--json"])["balance_fen"], 1_600);
    let again = stdout_json(&d.tap("Guomao", "2026-11-25 08:30:05", &[]));
    assert_eq!(
        (again["result"].as_str(), again["amount_fen"].as_u64(), again["recovered"].as_bool()),
        (Some("exit"), Some(400), Some(true))
    );
    assert_eq!(again["balance_fen"], 1_600);
    assert_eq!(d.json(&["card", "show", "card.se", "--json"])["balance_fen"], 1_600);
    let lines = records(&d.path("taps.jsonl"));
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["status"], "recovered");
}

#[test]
fn refusals_are_outcomes_not_errors() {
    let d = Dir::new();
    d.card("0");
    let out = d.tap("Xidan", "2026-11-25 08:00:00", &[]);
    assert!(out.status.success());
    let v = stdout_json(&out);
    assert_eq!(v["result"], "refused");
    assert_eq!(v["reason"], "balance below the minimum to enter");
    let bus = d.json(&[
        "gate",
        "tap",
        "card.se",
        "--keys",
        "keys.toml",
        "--bus",
        "1",
        "--at",
        "2026-11-25 08:00:00",
        "--json",
    ]);
    assert_eq!(bus["reason"], "insufficient balance");
}

#[test]
fn bad_input_names_the_field_and_never_panics() {
    let d = Dir::new();
    d.card("10");
    let issue = |flag: &'static str, value: &'static str| {
        ["card", "issue", "--keys", "keys.toml", "--serial", "10000000000000123456", "--out", "x.se", flag, value]
    };
    let cases: &[(&[&str], &str)] = &[
        (&["card", "load", "card.se", "--keys", "keys.toml", "--amount", "abc"], "--amount"),
        (&["card", "load", "card.se", "--keys", "keys.toml", "--amount", "1.234"], "--amount"),
        (&["card", "issue", "--keys", "keys.toml", "--serial", "12", "--out", "x.se"], "--serial"),
        (&["card", "issue", "--keys", "keys.toml", "--serial", "1000000000000012345Z", "--out", "x.se"], "--serial"),
        (&issue("--valid-to", "2030-02-30"), "--valid-to"),
        (&issue("--overdraft", "200000"), "--overdraft"),
        (&["gate", "tap", "card.se", "--keys", "keys.toml", "--station", "Atlantis"], "--station"),
        (&["gate", "tap", "card.se", "--keys", "keys.toml", "--city", "gotham", "--station", "Xidan"], "--city"),
        (&["gate", "tap", "card.se", "--keys", "keys.toml", "--station", "Xidan", "--at", "yesterday"], "--at"),
        (&["keys", "new", "--out", "k2.toml", "--issuer-id", "XYZ"], "--issuer-id"),
        (&["card", "show", "missing.se"], "missing.se"),
    ];
    for (args, needle) in cases {
        let out = d.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // A load past the balance limit is refused, and leaves the card as it was.
    let out = d.ok(&["card", "load", "card.se", "--keys", "keys.toml", "--amount", "2000"]);
    assert!(out.contains("refused") && out.contains("balance limit"), "{out}");
    assert_eq!(d.json(&["card", "show", "card.se", "--json"])["balance_fen"], 1_000);

    // Damaged files.
    std::fs::write(d.path("junk.se"), b"not a card").unwrap();
    let out = d.run(&["card", "show", "junk.se"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a Yitong card image"), "{}", stderr(&out));
    std::fs::write(d.path("bad.toml"), "issuer_id = 5").unwrap();
    let out = d.run(&["card", "load", "card.se", "--keys", "bad.toml", "--amount", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.toml"), "{}", stderr(&out));
}

#[test]
fn unknown_station_error_suggests_names() {
    let d = Dir::new();
    d.card("10");
    let out = d.tap("Atlantis", "2026-11-25 08:00:00", &[]);
    assert!(stderr(&out).contains("yitong fare stations --city beijing"), "{}", stderr(&out));
    let out = d.tap("Xidann", "2026-11-25 08:00:00", &[]);
    assert!(stderr(&out).contains("did you mean Xidan"), "{}", stderr(&out));
}

#[test]
fn demo_runs_a_day_and_conserves_money() {
    let d = Dir::new();
    let out = d.ok(&["demo"]);
    assert!(out.contains("GET TRANSACTION PROVE"));
    assert!(out.contains("(recovered from an interrupted tap)"));
    assert!(out.contains("loads 50.00 yuan, fares 11.00 yuan, card balance 39.00 yuan"), "{out}");
    assert!(out.trim_end().ends_with("Every fen accounted for: balance = loads - fares."));
}

#[test]
fn bench_tap_prints_figures() {
    let d = Dir::new();
    let out = d.ok(&["bench", "tap", "--trips", "20"]);
    assert!(out.contains("entry 6, exit 6"), "{out}");
    assert!(out.contains("µs/tap"), "{out}");
    assert!(out.contains("SM4 / DES"), "{out}");
    let v = d.json(&["bench", "tap", "--trips", "5", "--json"]);
    assert_eq!((v["apdus_per_entry"].as_u64(), v["apdus_per_exit"].as_u64()), (Some(6), Some(6)));
    assert!(v["des"]["us_per_tap"].as_f64().unwrap() > 0.0);
}

#[test]
fn every_command_has_help() {
    let d = Dir::new();
    for args in [
        &["--help"][..],
        &["keys", "new", "--help"],
        &["card", "issue", "--help"],
        &["card", "show", "--help"],
        &["card", "load", "--help"],
        &["gate", "tap", "--help"],
        &["bench", "tap", "--help"],
        &["demo", "--help"],
    ] {
        assert!(d.ok(args).contains("Usage"), "{args:?}");
    }
}

#[test]
fn fare_quote_and_stations() {
    let d = Dir::new();
    let v = d.json(&[
        "fare",
        "quote",
        "--city",
        "beijing",
        "--from",
        "Xidan",
        "--to",
        "国贸",
        "--at",
        "2026-11-25 08:00",
        "--json",
    ]);
    // Sample network: 西单 - 天安门西 400 - 王府井 1,700 - 东单 700 - 建国门 1,300 - 国贸 2,100 = 6,200 m.
    assert_eq!((v["fare_fen"].as_u64(), v["distance_m"].as_u64()), (Some(400), Some(6_200)));
    assert_eq!(v["path"][0]["station"], "西单");
    assert_eq!(v["path"][5]["station"], "国贸");
    assert_eq!(v["sample_network"], true);
    let v = d.json(&[
        "fare",
        "quote",
        "--from",
        "Xidan",
        "--to",
        "Guomao",
        "--at",
        "2026-11-25 08:00",
        "--month-spent",
        "100",
        "--json",
    ]);
    assert_eq!(v["fare_fen"], 320);
    let text = d.ok(&["fare", "stations", "--city", "shenzhen"]);
    assert!(text.contains("罗湖 (Luohu)"), "{text}");
    let v = d.json(&["fare", "stations", "--json"]);
    let xidan = v.as_array().unwrap().iter().find(|s| s["name"] == "西单").unwrap();
    // The sample network's file gives 西单 code 7.
    assert_eq!((xidan["code"].as_u64(), xidan["code_origin"].as_str()), (Some(7), Some("data")));
    // A GTFS feed that prices itself.
    let feed = concat!(env!("CARGO_MANIFEST_DIR"), "/../fare-import/tests/feeds/metro_bus");
    let v = d.json(&[
        "fare",
        "quote",
        "--network",
        feed,
        "--from",
        "Anding",
        "--to",
        "Donghu",
        "--at",
        "2026-11-25 10:00",
        "--json",
    ]);
    assert_eq!((v["fare_fen"].as_u64(), v["fare_product_id"].as_str()), (Some(500), Some("metro_5")));
    // Bad input.
    for (args, needle) in [
        (&["fare", "quote", "--from", "Xidann", "--to", "Guomao"][..], "did you mean Xidan"),
        (&["fare", "quote", "--city", "gotham", "--from", "a", "--to", "b"], "--city"),
        (&["fare", "quote", "--city", "jilin", "--from", "a", "--to", "b"], "no metro"),
        (&["fare", "quote", "--from", "Xidan", "--to", "Guomao", "--month-spent", "x"], "--month-spent"),
        (&["fare", "quote", "--network", "/nonexistent", "--from", "a", "--to", "b"], "--network"),
    ] {
        let out = d.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    std::fs::write(d.path("city.toml"), "name = \"x\"\nbogus = 1\n").unwrap();
    let out = d.run(&["fare", "quote", "--city-file", "city.toml", "--from", "a", "--to", "b"]);
    assert!(stderr(&out).contains("city.toml"), "{}", stderr(&out));
}

#[test]
fn gate_tap_on_an_imported_network() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/beijing-subway");
    if !std::path::Path::new(data).join("network.json").exists() {
        skip(&format!("no Beijing reference data at {data}"));
        return;
    }
    let d = Dir::new();
    d.card("50");
    let tap = |station: &str, at: &str| {
        d.json(&[
            "gate",
            "tap",
            "card.se",
            "--keys",
            "keys.toml",
            "--network",
            data,
            "--station",
            station,
            "--at",
            at,
            "--json",
        ])
    };
    tap("北京南站", "2026-11-25 10:00:00");
    // Line 4: 北京南站 - 马家堡 1,480 - 角门西 827 - 公益西桥 989 - 新宫 2,798 = 6,094 m: 3 yuan.
    let exit = tap("新宫", "2026-11-25 10:20:00");
    assert_eq!((exit["result"].as_str(), exit["amount_fen"].as_u64()), (Some("exit"), Some(300)));
}

#[test]
fn hotlisted_cards_are_refused() {
    let d = Dir::new();
    d.card("10");
    std::fs::write(d.path("hot.txt"), "# stolen\n10000000000000123456\n\n").unwrap();
    let v = stdout_json(&d.tap("Xidan", "2026-11-25 08:00:00", &["--hotlist", "hot.txt"]));
    assert_eq!(
        (v["result"].as_str(), v["reason"].as_str()),
        (Some("refused"), Some("card on the hotlist: application blocked"))
    );
    // Blocked: the top-up terminal refuses it too, and so does a gate without the hotlist.
    let load = d.json(&["card", "load", "card.se", "--keys", "keys.toml", "--amount", "5", "--json"]);
    assert_eq!(load["reason"].as_str(), Some("card locked"), "{load}");
    let v = stdout_json(&d.tap("Guomao", "2026-11-25 08:10:00", &[]));
    assert_eq!(v["reason"].as_str(), Some("card locked"));
    std::fs::write(d.path("bad.txt"), "1234\n").unwrap();
    let out = d.tap("Xidan", "2026-11-25 08:00:00", &["--hotlist", "bad.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.txt:1"), "{}", stderr(&out));
}

#[test]
fn entry_and_exit_gates_with_their_own_terminal_ids() {
    let d = Dir::new();
    d.card("20");
    let exit_only = stdout_json(&d.tap("Xidan", "2026-11-25 08:00:00", &["--direction", "out", "--gate", "3"]));
    assert_eq!(
        (exit_only["result"].as_str(), exit_only["reason"].as_str()),
        (Some("refused"), Some("no entry on the card: see the service desk"))
    );
    let entry = stdout_json(&d.tap("Xidan", "2026-11-25 08:00:05", &["--direction", "in", "--gate", "1"]));
    assert_eq!(entry["result"], "entry");
    let double = stdout_json(&d.tap("Xidan", "2026-11-25 08:00:20", &["--direction", "in", "--gate", "2"]));
    assert_eq!(double["reason"].as_str(), Some("already entered at 西单 08:00:05"));
    let exit = stdout_json(&d.tap("Guomao", "2026-11-25 08:30:00", &["--direction", "out", "--gate", "2"]));
    assert_eq!((exit["result"].as_str(), exit["amount_fen"].as_u64()), (Some("exit"), Some(400)));
    assert!(exit["fare_explained"].as_str().unwrap().starts_with("base 4.00 for "), "{exit}");
    // Two gates of one station: different terminal IDs, so their tap IDs never collide.
    let ids: Vec<String> =
        records(&d.path("taps.jsonl")).iter().map(|r| r["tap_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids[1].ends_with("0001-1") && ids[2].ends_with("0002-1"), "{ids:?}");
    assert_ne!(ids[1], ids[2]);
    let out = d.tap("Xidan", "2026-11-25 09:00:00", &["--gate", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--gate"), "{}", stderr(&out));
}

#[test]
fn the_top_up_terminal_honours_the_hotlist() {
    let d = Dir::new();
    d.card("10");
    std::fs::write(d.path("hot.txt"), "10000000000000123456\n").unwrap();
    let v =
        d.json(&["card", "load", "card.se", "--keys", "keys.toml", "--amount", "5", "--hotlist", "hot.txt", "--json"]);
    assert_eq!((v["result"].as_str(), v["reason"].as_str()), (Some("refused"), Some("card on the hotlist")));
    assert_eq!(v["card_number"].as_str(), Some("0000000000000123456"));
    assert_eq!(d.json(&["card", "show", "card.se", "--json"])["balance_fen"], 1_000);
}

#[test]
fn a_key_file_of_the_other_algorithm_says_so() {
    let d = Dir::new();
    d.card("10");
    d.ok(&["keys", "new", "--out", "sm4.toml", "--algorithm", "sm4"]);
    let v = d.json(&[
        "gate",
        "tap",
        "card.se",
        "--keys",
        "sm4.toml",
        "--city",
        "beijing",
        "--station",
        "Xidan",
        "--at",
        "2026-11-25 08:00:00",
        "--json",
    ]);
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains("(version 1, algorithm 00) are not held here"), "{reason}");
}

#[test]
fn the_trip_view_shows_another_citys_entry() {
    let d = Dir::new();
    d.card("20");
    let entry = d.json(&[
        "gate",
        "tap",
        "card.se",
        "--keys",
        "keys.toml",
        "--city",
        "shanghai",
        "--station",
        "人民广场",
        "--at",
        "2026-11-25 08:00:00",
        "--json",
    ]);
    assert_eq!(entry["result"], "entry");
    let exit = stdout_json(&d.tap("Guomao", "2026-11-25 12:00:00", &[]));
    let reason = exit["reason"].as_str().unwrap();
    assert!(reason.starts_with("incomplete trip: entered at 上海 Shanghai 人民广场"), "{reason}");
    let show = d.ok(&["card", "show", "card.se"]);
    assert!(show.contains("inside since 2026-11-25 08:00:00 at 上海 Shanghai 人民广场"), "{show}");
}
