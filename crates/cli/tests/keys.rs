//! Keys by purpose end to end: `yitong keys export` writes each role's part, gates tap with a
//! gate key file, a load with a gate key file is refused with a message that says what is
//! missing, and the service desk unblocks a card that a gate's maintenance key blocked.

mod support;

use std::process::Output;

use serde_json::Value;
use support::Dir;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn master_keys_of(d: &Dir, file: &str) -> Vec<String> {
    let v: toml::Table = toml::from_str(&std::fs::read_to_string(d.path(file)).unwrap()).unwrap();
    let mut names: Vec<String> = v["master"].as_table().unwrap().keys().cloned().collect();
    names.sort();
    names
}

fn role_of(d: &Dir, file: &str) -> String {
    let v: toml::Table = toml::from_str(&std::fs::read_to_string(d.path(file)).unwrap()).unwrap();
    v["role"].as_str().unwrap().to_string()
}

/// A full key set, a card loaded with 20 yuan, and the three role files.
fn setup() -> Dir {
    let d = Dir::new();
    d.card("20");
    for role in ["gate", "topup", "backoffice"] {
        d.ok(&["keys", "export", "--keys", "keys.toml", "--for", role, "--out", &format!("{role}.toml")]);
    }
    d
}

#[test]
fn export_writes_only_the_part_each_role_needs() {
    let d = setup();
    assert_eq!(master_keys_of(&d, "keys.toml"), ["damk", "dlk", "dpk", "dtk"]);
    assert_eq!(role_of(&d, "keys.toml"), "full");
    assert_eq!(master_keys_of(&d, "gate.toml"), ["damk", "dpk"]);
    assert_eq!(role_of(&d, "gate.toml"), "gate");
    assert_eq!(master_keys_of(&d, "topup.toml"), ["dlk"]);
    assert_eq!(role_of(&d, "topup.toml"), "topup");
    assert_eq!(master_keys_of(&d, "backoffice.toml"), ["damk", "dtk"]);
    assert_eq!(role_of(&d, "backoffice.toml"), "backoffice");
    // The exported keys are the full set's, byte for byte.
    let full: toml::Table = toml::from_str(&std::fs::read_to_string(d.path("keys.toml")).unwrap()).unwrap();
    let gate: toml::Table = toml::from_str(&std::fs::read_to_string(d.path("gate.toml")).unwrap()).unwrap();
    assert_eq!(full["master"]["dpk"], gate["master"]["dpk"]);
    assert_eq!(full["master"]["damk"], gate["master"]["damk"]);
    // A part cannot be exported again into another role's part.
    let out = d.run(&["keys", "export", "--keys", "gate.toml", "--for", "topup", "--out", "x.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("gate.toml is a gate key file"), "{}", stderr(&out));
    // A hand-edited gate file holding a load key is refused.
    let text = std::fs::read_to_string(d.path("gate.toml")).unwrap();
    let dlk = &full["master"]["dlk"];
    std::fs::write(d.path("bad-gate.toml"), format!("{text}dlk = {dlk}\n")).unwrap();
    let out = d.run(&["gate", "tap", "card.se", "--keys", "bad-gate.toml", "--city", "beijing", "--station", "Xidan"]);
    assert!(stderr(&out).contains("master.dlk: a gate key file must not hold this key"), "{}", stderr(&out));
}

#[test]
fn a_gate_taps_with_a_gate_key_file_and_a_topup_loads_with_a_topup_file() {
    let d = setup();
    let tap = |keys: &str, station: &str, at: &str| -> Value {
        let out = d.ok(&[
            "gate",
            "tap",
            "card.se",
            "--keys",
            keys,
            "--city",
            "beijing",
            "--station",
            station,
            "--at",
            at,
            "--json",
        ]);
        serde_json::from_str(&out).unwrap()
    };
    let entry = tap("gate.toml", "Xidan", "2026-11-25 08:00:00");
    assert_eq!(entry["result"].as_str(), Some("entry"));
    let exit = tap("gate.toml", "Guomao", "2026-11-25 08:30:00");
    assert_eq!(exit["result"].as_str(), Some("exit"));
    assert!(exit["amount_fen"].as_u64().unwrap() > 0);
    d.ok(&["card", "load", "card.se", "--keys", "topup.toml", "--amount", "5", "--at", "2026-11-25 09:00:00"]);
}

#[test]
fn each_command_refuses_a_key_file_without_its_key() {
    let d = setup();
    let before = std::fs::read(d.path("card.se")).unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["card", "load", "card.se", "--keys", "gate.toml", "--amount", "5"],
            "gate.toml is a gate key file: it has no load key; `card load` needs a topup or full key file",
        ),
        (
            &["gate", "tap", "card.se", "--keys", "topup.toml", "--city", "beijing", "--station", "Xidan"],
            "topup.toml is a topup key file: it has no purchase key; `gate tap` needs a gate or full key file",
        ),
        (
            &["card", "issue", "--keys", "gate.toml", "--serial", "10000000000000123457", "--out", "c2.se"],
            "gate.toml is a gate key file: `card issue` needs the issuer's full key file",
        ),
        (
            &["card", "unblock", "card.se", "--keys", "topup.toml"],
            "topup.toml is a topup key file: it has no maintenance key; `card unblock` needs a gate, backoffice or full key file",
        ),
    ];
    for (args, message) in cases {
        let out = d.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(std::fs::read(d.path("card.se")).unwrap(), before, "a refused command leaves the card alone");
    assert!(!d.path("c2.se").exists());
}

#[test]
fn key_files_from_before_the_maintenance_key_say_so() {
    let d = setup();
    let full = std::fs::read_to_string(d.path("keys.toml")).unwrap();
    let old: String =
        full.lines().filter(|l| !l.starts_with("damk") && !l.starts_with("role")).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.path("old.toml"), old).unwrap();
    let out = d.run(&["card", "load", "card.se", "--keys", "old.toml", "--amount", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("master.damk is missing"), "{}", stderr(&out));
}

/// A gate with the card on its hotlist blocks it: SELECT, GET CHALLENGE, APPLICATION BLOCK
/// under the gate key file's maintenance key.
fn block_with_gate_keys(d: &Dir) {
    std::fs::write(d.path("hotlist.txt"), "# lost phones\n10000000000000123456\n").unwrap();
    let out = d.ok(&[
        "gate",
        "tap",
        "card.se",
        "--keys",
        "gate.toml",
        "--city",
        "beijing",
        "--station",
        "Xidan",
        "--hotlist",
        "hotlist.txt",
        "--at",
        "2026-11-25 07:00:00",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["reason"].as_str(), Some("card on the hotlist: application blocked"), "{v}");
}

#[test]
fn the_service_desk_unblocks_a_blocked_card() {
    let d = setup();
    block_with_gate_keys(&d);
    let tap = || {
        d.run(&[
            "gate",
            "tap",
            "card.se",
            "--keys",
            "gate.toml",
            "--city",
            "beijing",
            "--station",
            "Xidan",
            "--at",
            "2026-11-25 08:00:00",
            "--json",
        ])
    };
    let refused: Value = serde_json::from_slice(&tap().stdout).unwrap();
    assert_eq!(refused["result"].as_str(), Some("refused"), "{refused}");

    let out = d.ok(&["card", "unblock", "card.se", "--keys", "backoffice.toml"]);
    assert!(out.contains("unblocked card 0000000000000123456"), "{out}");
    let entry: Value = serde_json::from_slice(&tap().stdout).unwrap();
    assert_eq!(entry["result"].as_str(), Some("entry"), "{entry}");
    // Unblocking an open card changes nothing.
    let out = d.ok(&["card", "unblock", "card.se", "--keys", "backoffice.toml"]);
    assert!(out.contains("is not blocked"), "{out}");
}

#[test]
fn unblock_with_another_issuers_keys_is_refused() {
    let d = setup();
    block_with_gate_keys(&d);
    d.ok(&["keys", "new", "--out", "other.toml", "--issuer-id", "0000290000000007"]);
    let out = d.run(&["card", "unblock", "card.se", "--keys", "other.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("card of issuer 0000100000000001"), "{}", stderr(&out));
    // Same issuer, other keys: the card refuses the MAC and stays blocked.
    let text = std::fs::read_to_string(d.path("other.toml")).unwrap().replace("0000290000000007", "0000100000000001");
    std::fs::write(d.path("same-issuer.toml"), text).unwrap();
    let out = d.run(&["card", "unblock", "card.se", "--keys", "same-issuer.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("6988"), "{}", stderr(&out));
    d.ok(&["card", "unblock", "card.se", "--keys", "keys.toml"]);
}

#[test]
fn errors_in_key_files_never_repeat_key_digits() {
    let d = setup();
    let full = std::fs::read_to_string(d.path("keys.toml")).unwrap();
    let dpk_line = full.lines().find(|l| l.starts_with("dpk")).unwrap().to_owned();
    let dpk = dpk_line.split('"').nth(1).unwrap().to_owned();
    // One digit short.
    std::fs::write(d.path("short.toml"), full.replace(&dpk, &dpk[1..])).unwrap();
    let out = d.run(&["gate", "tap", "card.se", "--keys", "short.toml", "--city", "beijing", "--station", "Xidan"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("master.dpk: must be 32 hex digits") && !err.contains(&dpk[1..]), "{err}");
    // Unquoted: not TOML; the parser's message would quote the line.
    std::fs::write(d.path("bare.toml"), full.replace(&format!("\"{dpk}\""), &dpk)).unwrap();
    let out = d.run(&["gate", "tap", "card.se", "--keys", "bare.toml", "--city", "beijing", "--station", "Xidan"]);
    let err = stderr(&out);
    assert!(err.contains("not a Yitong key file") && err.contains("line ") && !err.contains(&dpk), "{err}");
}
