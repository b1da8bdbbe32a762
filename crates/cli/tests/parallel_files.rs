//! Card images and terminal state files under parallel `yitong` processes: every transaction is
//! counted once, no transaction number is handed out twice, damaged files are refused.

mod support;

use std::collections::BTreeSet;
use std::process::Output;

use serde_json::Value;
use support::{records, Dir};

/// How many processes race on one file.
const PROCESSES: usize = 20;
const LOCK_GAVE_UP: &str = "in use by another yitong process";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts every command before waiting for any, so that they run at the same time.
fn run_parallel(d: &Dir, commands: &[Vec<String>]) -> Vec<Output> {
    let children: Vec<_> = commands
        .iter()
        .map(|args| {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            d.command(&args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

/// Counts the successes; every failure must be the clean lock time-out, never a torn file.
fn successes(outputs: &[Output]) -> usize {
    for out in outputs.iter().filter(|o| !o.status.success()) {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
        assert!(stderr(out).contains(LOCK_GAVE_UP), "only a lock time-out may fail: {}", stderr(out));
    }
    outputs.iter().filter(|o| o.status.success()).count()
}

fn balance_fen(d: &Dir, card: &str) -> i64 {
    d.json(&["card", "show", card, "--json"])["balance_fen"].as_i64().unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn bus_tap(card: &str, records: &str, state: &str, at: &str) -> Vec<String> {
    strings(&[
        "gate",
        "tap",
        card,
        "--keys",
        "keys.toml",
        "--bus",
        "1",
        "--records",
        records,
        "--state",
        state,
        "--at",
        at,
        "--json",
    ])
}

fn issue(d: &Dir, serial: &str, out: &str) {
    d.ok(&["card", "issue", "--keys", "keys.toml", "--serial", serial, "--out", out, "--valid-from", "2026-01-01"]);
}

#[test]
fn parallel_loads_on_one_image_are_each_counted_once() {
    let d = Dir::new();
    d.card("0");
    let load = strings(&[
        "card",
        "load",
        "card.se",
        "--keys",
        "keys.toml",
        "--amount",
        "1",
        "--at",
        "2026-11-25 07:00:00",
        "--records",
        "loads.jsonl",
    ]);
    let outputs = run_parallel(&d, &vec![load; PROCESSES]);
    let loaded = successes(&outputs);
    assert!(loaded > 0, "no load got through");
    assert_eq!(balance_fen(&d, "card.se"), 100 * loaded as i64);
    let lines = records(&d.path("loads.jsonl"));
    assert_eq!(lines.len(), loaded);
    let tap_ids: BTreeSet<_> = lines.iter().map(|r| r["tap_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(tap_ids.len(), loaded, "tap_ids repeat: {tap_ids:?}");
    let counters: BTreeSet<_> = lines.iter().map(|r| r["counter"].as_u64().unwrap()).collect();
    assert_eq!(counters, (1..=loaded as u64).collect(), "the card's online counter counts every load once");
    // The state file sits beside the image, not in the directory the command ran in.
    assert!(d.path("yitong-terminals.json").exists());
}

#[test]
fn parallel_bus_taps_on_one_card_charge_what_the_records_say() {
    let d = Dir::new();
    d.card("50");
    let before = balance_fen(&d, "card.se");
    let taps: Vec<_> = (0..PROCESSES)
        .map(|i| bus_tap("card.se", "bus.jsonl", "state.json", &format!("2026-11-25 08:{i:02}:00")))
        .collect();
    let outputs = run_parallel(&d, &taps);
    let charged = successes(&outputs);
    let lines = records(&d.path("bus.jsonl"));
    assert_eq!(lines.len(), charged, "one record per successful tap");
    let fares: i64 = lines.iter().map(|r| r["amount_fen"].as_i64().unwrap()).sum();
    assert!(fares > 0);
    assert_eq!(before - balance_fen(&d, "card.se"), fares, "the card paid exactly what the records claim");
    let tap_ids: BTreeSet<_> = lines.iter().map(|r| r["tap_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(tap_ids.len(), lines.len(), "tap_ids repeat");
    // Each record continues where the previous one left the purse.
    let mut after: Vec<_> = lines
        .iter()
        .map(|r| (r["balance_before_fen"].as_i64().unwrap(), r["balance_after_fen"].as_i64().unwrap()))
        .collect();
    after.sort_unstable_by(|a, b| b.cmp(a));
    assert!(after.windows(2).all(|w| w[0].1 == w[1].0), "{after:?}");
}

#[test]
fn two_cards_at_one_terminal_never_share_a_transaction_number() {
    let d = Dir::new();
    d.card("50");
    issue(&d, "10000000000000654321", "other.se");
    d.ok(&["card", "load", "other.se", "--keys", "keys.toml", "--amount", "50", "--at", "2026-11-25 07:00:00"]);
    // Both cards' taps go through one state file: the same bus validator in two processes.
    let taps: Vec<_> = (0..PROCESSES)
        .map(|i| {
            let card = if i % 2 == 0 { "card.se" } else { "other.se" };
            bus_tap(card, "bus.jsonl", "shared.json", &format!("2026-11-25 08:{i:02}:00"))
        })
        .collect();
    let charged = successes(&run_parallel(&d, &taps));
    let lines = records(&d.path("bus.jsonl"));
    assert_eq!(lines.len(), charged);
    let numbers: BTreeSet<_> = lines.iter().map(|r| r["terminal_transaction_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (1..=charged as u64).collect(), "numbers handed out once each, in turn");

    // A tap that fails after MAC1 keeps its number: the next card gets a new one.
    let lost =
        d.run(&strs(&bus_tap("card.se", "bus.jsonl", "shared.json", "2026-11-25 09:00:00"), &["--simulate-pull-away"]));
    assert_eq!(lost.status.code(), Some(1), "{}", stderr(&lost));
    let next = d.json(&strs(&bus_tap("other.se", "bus.jsonl", "shared.json", "2026-11-25 09:01:00"), &[]));
    assert_eq!(next["result"], "single");
    let recovered = d.json(&strs(&bus_tap("card.se", "bus.jsonl", "shared.json", "2026-11-25 09:02:00"), &[]));
    assert_eq!(recovered["recovered"], true);
    let lines = records(&d.path("bus.jsonl"));
    let numbers: Vec<_> = lines.iter().map(|r| r["terminal_transaction_number"].as_u64().unwrap()).collect();
    let distinct: BTreeSet<_> = numbers.iter().collect();
    assert_eq!(distinct.len(), numbers.len(), "a number was reused: {numbers:?}");
    let interrupted = lines.last().unwrap()["terminal_transaction_number"].as_u64().unwrap();
    let after_it = lines[lines.len() - 2]["terminal_transaction_number"].as_u64().unwrap();
    assert!(after_it > interrupted, "the tap after the interrupted one got {after_it}, not past {interrupted}");
}

fn strs<'a>(args: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    args.iter().map(String::as_str).chain(extra.iter().copied()).collect()
}

#[test]
fn a_locked_image_makes_the_next_command_wait_then_give_up_naming_it() {
    let d = Dir::new();
    d.card("10");
    let lock = std::fs::File::create(d.path("card.se.lock")).unwrap();
    fs4::FileExt::lock(&lock).unwrap();
    let image = std::fs::read(d.path("card.se")).unwrap();
    let start = std::time::Instant::now();
    let out = d
        .command(&["card", "load", "card.se", "--keys", "keys.toml", "--amount", "1"])
        .env("YITONG_LOCK_TIMEOUT", "1")
        .output()
        .unwrap();
    assert!(start.elapsed() >= std::time::Duration::from_secs(1), "it did not wait");
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains(&format!("card.se: {LOCK_GAVE_UP}")), "{message}");
    assert!(message.contains("YITONG_LOCK_TIMEOUT"), "{message}");
    let out = d
        .command(&[
            "card",
            "issue",
            "--keys",
            "keys.toml",
            "--serial",
            "10000000000000123456",
            "--out",
            "card.se",
            "--force",
        ])
        .env("YITONG_LOCK_TIMEOUT", "0")
        .output()
        .unwrap();
    assert!(stderr(&out).contains(&format!("card.se: {LOCK_GAVE_UP}")), "{}", stderr(&out));
    assert_eq!(std::fs::read(d.path("card.se")).unwrap(), image, "nothing written");
    // Reading needs no lock: files are replaced whole.
    assert_eq!(balance_fen(&d, "card.se"), 1_000);
    fs4::FileExt::unlock(&lock).unwrap();
    d.ok(&["card", "load", "card.se", "--keys", "keys.toml", "--amount", "1"]);
    assert_eq!(balance_fen(&d, "card.se"), 1_100);
    let out = d.command(&["card", "show", "card.se"]).env("YITONG_LOCK_TIMEOUT", "soon").output().unwrap();
    assert!(out.status.success(), "show takes no lock");
    let out = d
        .command(&["card", "load", "card.se", "--keys", "keys.toml", "--amount", "1"])
        .env("YITONG_LOCK_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("YITONG_LOCK_TIMEOUT: expected whole seconds"), "{}", stderr(&out));
}

#[test]
fn damaged_images_are_refused_as_damaged() {
    let d = Dir::new();
    d.card("10");
    let mut image = std::fs::read(d.path("card.se")).unwrap();
    let middle = image.len() / 2;
    image[middle] ^= 0x40;
    std::fs::write(d.path("card.se"), &image).unwrap();
    for args in [
        &["card", "show", "card.se"][..],
        &["card", "load", "card.se", "--keys", "keys.toml", "--amount", "1"],
        &["gate", "tap", "card.se", "--keys", "keys.toml", "--bus", "1"],
    ] {
        let out = d.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("card.se: card image damaged (checksum mismatch)"), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(std::fs::read(d.path("card.se")).unwrap(), image, "a damaged image is left for inspection");
    std::fs::write(d.path("card.se"), &image[..image.len() - 10]).unwrap();
    assert!(stderr(&d.run(&["card", "show", "card.se"])).contains("card image damaged (truncated)"));
}

#[test]
fn bare_images_of_earlier_versions_are_read_and_rewritten_checksummed() {
    let d = Dir::new();
    d.card("10");
    let file = std::fs::read(d.path("card.se")).unwrap();
    assert_eq!(&file[..5], b"YTCF\x01");
    // Format 1: a 12-byte header and a 32-byte SHA-256 around the card's own image.
    let bare = &file[12..file.len() - 32];
    assert_eq!(&bare[..4], b"YTSE");
    std::fs::write(d.path("card.se"), bare).unwrap();
    assert_eq!(balance_fen(&d, "card.se"), 1_000);
    d.ok(&["card", "load", "card.se", "--keys", "keys.toml", "--amount", "1"]);
    assert_eq!(&std::fs::read(d.path("card.se")).unwrap()[..4], b"YTCF");
    assert_eq!(balance_fen(&d, "card.se"), 1_100);
}

#[cfg(unix)]
#[test]
fn a_transaction_that_changes_nothing_writes_nothing() {
    use std::os::unix::fs::MetadataExt;
    let d = Dir::new();
    d.card("10");
    let inode = || std::fs::metadata(d.path("card.se")).unwrap().ino();
    let before = inode();
    // Refused past the balance limit: the card said no, its image stays the very same file.
    let out = d.ok(&["card", "load", "card.se", "--keys", "keys.toml", "--amount", "2000"]);
    assert!(out.contains("refused"), "{out}");
    // A card not yet valid is refused before any purchase command.
    let v = d.json(&[
        "gate",
        "tap",
        "card.se",
        "--keys",
        "keys.toml",
        "--bus",
        "1",
        "--at",
        "2020-01-01 08:00:00",
        "--json",
    ]);
    assert_eq!((v["result"].as_str(), v["reason"].as_str()), (Some("refused"), Some("card not yet valid")));
    assert_eq!(inode(), before, "the image was written back");
    d.ok(&["card", "load", "card.se", "--keys", "keys.toml", "--amount", "1"]);
    assert_ne!(inode(), before, "a load replaces the image");
}

#[test]
fn the_state_file_is_the_data_directorys_not_the_current_or_the_cards() {
    let d = Dir::new();
    d.card("10");
    for dir in ["elsewhere", "data", "a", "b"] {
        std::fs::create_dir(d.path(dir)).unwrap();
    }
    let data = d.path("data");
    let tap = |card: &str, cwd: &str| {
        d.command(&["gate", "tap", card, "--keys", "../keys.toml", "--bus", "1", "--records", "../bus.jsonl"])
            .env("YITONG_DATA_DIR", &data)
            .current_dir(d.path(cwd))
            .output()
            .unwrap()
    };
    // Two cards in two folders, tapped at the same simulated validator: one state file, so the
    // validator never hands out a transaction number twice.
    std::fs::copy(d.path("card.se"), d.path("a/card.se")).unwrap();
    std::fs::copy(d.path("card.se"), d.path("b/card.se")).unwrap();
    for card in ["../a/card.se", "../b/card.se"] {
        let out = tap(card, "elsewhere");
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert!(!d.path("elsewhere/yitong-terminals.json").exists(), "state written to the current directory");
    assert!(!d.path("a/yitong-terminals.json").exists() && !d.path("b/yitong-terminals.json").exists());
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("yitong-terminals.json")).unwrap()).unwrap();
    assert_eq!(state["terminals"]["10000001B001"]["next_transaction_number"], 3, "{state}");
    let ids: Vec<Value> = records(&d.path("bus.jsonl")).iter().map(|r| r["tap_id"].clone()).collect();
    assert_eq!(ids, ["10000001B001-1", "10000001B001-2"]);
    // A state file left in the current directory by an earlier version is not silently
    // replaced by a fresh one that would number the same terminal's transactions from 1 again.
    std::fs::write(d.path("elsewhere/yitong-terminals.json"), "{\"terminals\": {}}").unwrap();
    let fresh = d.path("fresh-data");
    let out = d
        .command(&["gate", "tap", "../a/card.se", "--keys", "../keys.toml", "--bus", "1"])
        .env("YITONG_DATA_DIR", &fresh)
        .current_dir(d.path("elsewhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--state yitong-terminals.json"), "{}", stderr(&out));
}

#[test]
fn parallel_issues_from_the_serial_register_never_share_a_serial() {
    let d = Dir::new();
    d.ok(&["keys", "new", "--out", "keys.toml"]);
    let commands: Vec<Vec<String>> = (0..PROCESSES)
        .map(|i| strings(&["card", "issue", "--keys", "keys.toml", "--out", &format!("c{i}.se")]))
        .collect();
    let outputs = run_parallel(&d, &commands);
    assert_eq!(successes(&outputs), PROCESSES, "the register's lock is held for milliseconds");
    let serials: BTreeSet<String> = (0..PROCESSES)
        .map(|i| d.json(&["card", "show", &format!("c{i}.se"), "--json"])["serial"].as_str().unwrap().to_owned())
        .collect();
    // Beijing's issuer (the key file's default): city code 1000, sequence numbers 1 to 20.
    let expected: BTreeSet<String> = (1..=PROCESSES).map(|n| format!("1000{n:016}")).collect();
    assert_eq!(serials, expected);
    let register: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path("yitong-serials.json")).unwrap()).unwrap();
    assert_eq!(register["next_sequence"]["0000100000000001"], PROCESSES + 1);
}
