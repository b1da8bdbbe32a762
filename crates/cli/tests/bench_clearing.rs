//! `yitong bench clearing` as a process: the day's records all accepted, the torn taps settled as
//! the cards did them, the shadows adding up to the cards' balances; the same seed gives the same
//! day; bad flags named. No timing assertions.

use std::process::{Command, Output};

use serde_json::Value;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yitong")).args(["bench", "clearing"]).args(args).output().expect("yitong runs")
}

fn json(args: &[&str]) -> Value {
    let out = bench(&[args, &["--json"]].concat());
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn a_day_of_taps_is_ingested_settled_and_adds_up() {
    let v = json(&["--taps", "3000", "--baseline-taps", "100", "--seed", "7"]);
    let day = &v["day"];
    let records = day["records"].as_u64().expect("records");
    assert!(records >= 3_000, "{v}");
    let (ingest, baseline) = (&v["ingest"], &v["baseline"]);
    assert_eq!((&ingest["records"], &ingest["accepted"]), (&records.into(), &records.into()), "{v}");
    assert_eq!((&ingest["duplicates"], &ingest["rejected"]), (&0.into(), &0.into()), "{v}");
    // What the database keeps: every batch, every record accepted; no flag, no hotlist change.
    assert_eq!(ingest["stored"]["batches"], day["batches"], "{v}");
    assert_eq!(ingest["stored"]["records"], serde_json::json!({ "accepted": records }), "{v}");
    assert_eq!((&ingest["flagged_cards"], &ingest["hotlist_version"]), (&0.into(), &0.into()), "{v}");
    // Every batch was committed in some group: at least one, at most one each.
    let groups = ingest["groups"].as_u64().expect("groups");
    assert!((1..=day["batches"].as_u64().expect("batches")).contains(&groups), "{v}");
    // A small day alone on its database: no group loses its write and is prepared again.
    assert_eq!(ingest["retries"].as_u64(), Some(0), "{v}");
    // Conservation of the generated day, then the back office's view of it.
    let fen = |key: &str| day[key].as_i64().unwrap_or_else(|| panic!("{key}: {v}"));
    assert_eq!(
        fen("initial_balances_fen") + fen("loaded_fen") - fen("purchased_fen"),
        fen("final_balances_fen"),
        "{v}"
    );
    assert_eq!(v["shadows"]["balances_fen"], day["final_balances_fen"], "{v}");
    assert_eq!(v["shadows"]["cards"], day["cards"], "{v}");
    let verdicts = &ingest["unconfirmed_verdicts"];
    assert!(day["torn_committed"].as_u64().expect("torn") + day["torn_voided"].as_u64().expect("torn") > 0, "{v}");
    assert_eq!(verdicts["charged"].as_u64().unwrap_or(0), day["torn_committed"].as_u64().unwrap(), "{v}");
    assert_eq!(verdicts["voided"].as_u64().unwrap_or(0), day["torn_voided"].as_u64().unwrap(), "{v}");
    assert!(verdicts.get("pending").is_none(), "{v}");
    assert_eq!(baseline["records"], 100, "{v}");
    assert_eq!(baseline["accepted"].as_u64().unwrap() + baseline["rejected"].as_u64().unwrap(), 100, "{v}");
    assert!(v["ratio"].as_f64().expect("a ratio") > 0.0, "{v}");
    // The CPU the ingest took is measured (how much is the machine's business).
    #[cfg(unix)]
    for key in ["cpu_s", "cores_busy", "cpu_us_per_record"] {
        let value = ingest[key].as_f64().unwrap_or_else(|| panic!("{key}: {v}"));
        assert!(value.is_finite() && value > 0.0, "{key}: {v}");
    }
    assert!(day["visiting_cards"].as_u64().expect("visitors") > 0, "{v}");

    // The same seed, the same day; another seed, another.
    let again = json(&["--taps", "3000", "--baseline-taps", "10", "--seed", "7"]);
    assert_eq!(again["day"], v["day"]);
    let other = json(&["--taps", "3000", "--baseline-taps", "10", "--seed", "8"]);
    assert_ne!(other["day"], v["day"]);
}

#[test]
fn a_cache_far_smaller_than_the_days_cards_loses_nothing() {
    // 64 cards kept, folds at 32, a day of 710 cards: the run proves itself all the same (what
    // it goes through depends on the groups' timing: folds, cards read again, groups refused and
    // prepared again; `store::shadow_journal_tests` pins each).
    let v = json(&["--taps", "3000", "--baseline-taps", "1", "--seed", "7", "--shadow-cache-cards", "64"]);
    let (day, ingest) = (&v["day"], &v["ingest"]);
    assert!(day["cards"].as_u64().expect("cards") > 64, "{v}");
    assert_eq!((&ingest["accepted"], &ingest["rejected"]), (&day["records"], &0.into()), "{v}");
    assert_eq!(v["shadows"]["balances_fen"], day["final_balances_fen"], "{v}");
    assert_eq!(v["shadows"]["cards"], day["cards"], "{v}");
    let verdicts = &ingest["unconfirmed_verdicts"];
    assert_eq!(verdicts["charged"].as_u64().unwrap_or(0), day["torn_committed"].as_u64().unwrap(), "{v}");
    assert_eq!(verdicts["voided"].as_u64().unwrap_or(0), day["torn_voided"].as_u64().unwrap(), "{v}");
    assert_eq!(ingest["flagged_cards"], 0, "{v}");
}

#[test]
fn bad_flags_are_named() {
    for (args, named) in [
        (&["--taps", "0"][..], "--taps"),
        (&["--batch", "100001"][..], "--batch"),
        (&["--cities", "beijing,atlantis"][..], "--cities"),
        (&["--cities", "beijing,beijing"][..], "--cities"),
        (&["--uploaders", "0"][..], "--uploaders"),
        (&["--shadow-cache-cards", "1"][..], "--shadow-cache-cards"),
        (&["--shadow-cache-cards", "many"][..], "--shadow-cache-cards"),
    ] {
        let out = bench(args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
}
