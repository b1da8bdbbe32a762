//! `yitong bench topup` as a process: its own service in process, and a spawned `yitong serve`
//! reached with --server; the counts, the latencies' order and the conservation proof (no
//! timing assertions); bad input naming the flag.
#![cfg(unix)]

mod support;

use std::process::{Command, Output};

use serde_json::Value;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_yitong")).args(["bench", "topup"]).args(args).output().expect("yitong runs")
}

fn json(args: &[&str]) -> Value {
    let out = bench(&[args, &["--json"]].concat());
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Every top-up done, latencies ordered, the ledger balanced and the cards holding `loaded`.
fn assert_run(run: &Value, topups: u64, loaded: i64, ledger_checked: bool) {
    assert_eq!(run["topups"], topups, "{run}");
    assert_eq!(run["failures"], Value::Array(Vec::new()), "{run}");
    let ms = |q: &str| run["latency_ms"][q].as_f64().unwrap_or_else(|| panic!("latency {q}: {run}"));
    assert!(0.0 < ms("p50") && ms("p50") <= ms("p90") && ms("p90") <= ms("p99") && ms("p99") <= ms("max"), "{run}");
    assert_eq!(run["se_card_balances_fen"], loaded, "{run}");
    assert_eq!(run["service_card_balances_fen"], loaded, "{run}");
    if ledger_checked {
        assert_eq!(run["ledger_balanced"], true, "{run}");
    }
}

#[test]
fn two_phones_top_up_three_times_over_http_and_the_ledger_balances() {
    let v = json(&["--phones", "2", "--topups", "3"]);
    let amount = v["amount_fen"].as_i64().expect("amount_fen");
    assert_eq!((&v["phones"], &v["topups_per_phone"], &v["in_process_server"]), (&2.into(), &3.into(), &true.into()));
    assert_eq!(v["loaded_fen"], 2 * 3 * amount, "{v}");
    assert_run(&v["http"], 6, 2 * 3 * amount, true);
    assert_run(&v["baseline"], 6, 2 * 3 * amount, true);
    // A fresh database: the ledger's cards are exactly this run's.
    assert_eq!(v["http"]["ledger"]["card_balances_fen"], 2 * 3 * amount, "{v}");
    assert_eq!(v["conserved"], true);
    assert!(v["http_over_baseline"]["time_per_topup"].as_f64().expect("a ratio") > 0.0, "{v}");
    assert!(v["database"].as_str().expect("a database").starts_with("sqlite:"), "{v}");
}

#[test]
fn a_running_service_is_benchmarked_with_server_and_its_database_checked() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = format!("sqlite:{}", dir.path().join("service.sqlite").display());
    let server = support::server::start(&["--db", &db], &dir.path().join("data"), "warn");
    let url = format!("http://{}", server.address);
    let v = json(&["--phones", "2", "--topups", "2", "--server", &url, "--db", &db]);
    let amount = v["amount_fen"].as_i64().expect("amount_fen");
    assert_eq!((&v["server"], &v["in_process_server"]), (&url.as_str().into(), &false.into()), "{v}");
    assert_run(&v["http"], 4, 4 * amount, true);
    assert_eq!(v["http"]["service_card_balances_from"], "card view");
    let (status, _, stderr) = server.interrupt();
    assert!(status.success(), "{status}: {stderr}");
}

#[test]
fn phones_that_cannot_reach_the_service_fail_the_run() {
    // Port 9 (discard) on loopback: nothing listens there in a test environment.
    let out = bench(&["--phones", "2", "--topups", "1", "--server", "http://127.0.0.1:9", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HTTP: 2 phone(s) stopped"), "{stderr}");
    assert!(stderr.contains("cannot reach the service at http://127.0.0.1:9"), "{stderr}");
    // The figures are printed all the same: the baseline ran, the HTTP run did nothing.
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!((&v["baseline"]["topups"], &v["http"]["topups"]), (&2.into(), &0.into()), "{v}");
    assert_eq!(v["http_over_baseline"]["time_per_topup"], Value::Null, "{v}");
}

#[test]
fn bad_input_names_the_flag() {
    for (args, flag) in [
        (&["--phones", "0"][..], "--phones"),
        (&["--topups", "0"][..], "--topups"),
        (&["--topups", "1001"][..], "--topups"),
        (&["--server", "localhost:8080"][..], "--server"),
        // The bench's phones speak plain HTTP: refused before any phone enrolls.
        (&["--server", "https://127.0.0.1:9"][..], "--server"),
    ] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(&format!("yitong: {flag}")), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
