//! `yitong ledger check`, `yitong ledger agreement` and `yitong settle` on the database a spawned
//! `yitong serve` wrote: a rider's top-up, transfer and deletion prove out (exit 0), wait for the
//! back office card by card, and clear as the day's figures;
//! money posted with no order behind it does not prove out (exit 1, the account named); a
//! database that cannot be opened names the flag (exit 2).
#![cfg(unix)]

mod support;

use support::server::start;
use support::Dir;
use yitong_platform::ledger::{Account, Fen, Line, Posting, PostingId, Side};
use yitong_platform::store::Store;

fn phone(dir: &Dir, address: &str, args: &[&str]) {
    let out = dir
        .command(&[&["phone"], args].concat())
        .env("YITONG_SERVER", format!("http://{address}"))
        .output()
        .expect("yitong runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn check(dir: &Dir, extra: &[&str]) -> std::process::Output {
    let data = dir.path("data");
    dir.run(&[&["ledger", "check", "--data-dir", data.to_str().expect("UTF-8")], extra].concat())
}

#[test]
fn the_ledger_of_a_riders_day_proves_out_and_money_without_an_order_does_not() {
    let dir = Dir::new();
    let server = start(&[], &dir.path("data"), "warn");
    phone(&dir, &server.address, &["new", "--maker", "Xiaomi", "--model", "Mi 6", "--out", "p.json"]);
    phone(&dir, &server.address, &["enroll", "p.json", "--city", "beijing"]);
    phone(&dir, &server.address, &["topup", "p.json", "--city", "beijing", "--amount", "30"]);

    // Read while the service runs (SQLite WAL: a reader beside the writer).
    let out = check(&dir, &["--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["card_balances_fen"], 3_000, "the one card's 30 yuan: {json}");
    assert_eq!(json["debit_fen"], json["credit_fen"], "{json}");
    // The rider paid 29 yuan of fee and 30 of top-up: the provider holds it all.
    assert_eq!(json["accounts"]["provider_clearing/simulated"], 5_900, "{json}");
    assert_eq!(json["accounts"]["fee_revenue"], -2_900, "{json}");

    let day_before = business_day_now();
    phone(&dir, &server.address, &["new", "--maker", "Huawei", "--model", "P10", "--out", "q.json"]);
    phone(&dir, &server.address, &["transfer", "p.json", "--to", "q.json", "--city", "beijing"]);
    phone(&dir, &server.address, &["delete", "q.json", "--city", "beijing"]);
    let day_after = business_day_now();

    // The day's clearing: the top-up and the transfer's load at the load host (Beijing's issuer
    // owes itself: all Beijing), the two service-desk debits that emptied the cards, one fee,
    // the deleted card's 30 yuan refunded. A run across the 04:00 cut-over adds both days.
    let mut figures = [0i64; 5];
    let mut days = vec![day_before.clone()];
    if day_after != day_before {
        days.push(day_after);
    }
    for day in &days {
        let data = dir.path("data");
        let out = dir.run(&["settle", "--date", day, "--format", "json", "--data-dir", data.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(report["reconciliation"]["net_positions_sum_fen"], 0, "{report}");
        for issuer in report["issuers"].as_array().expect("issuers") {
            assert_eq!(issuer["issuer"]["id"], "issuer:0000100000000001", "{report}");
            for (i, key) in
                ["host_loads", "platform_loads", "card_debits", "platform_fees", "platform_refunds"].iter().enumerate()
            {
                figures[i] += issuer[key]["amount_fen"].as_i64().expect("fen");
            }
        }
    }
    assert_eq!(figures, [6_000, 6_000, 6_000, 2_900, 3_000]);
    let data = dir.path("data");
    let csv = dir.run(&["settle", "--date", &day_before, "--data-dir", data.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&csv.stdout).starts_with(yitong_clearing::settlement::CSV_HEADER));
    let bad = dir.run(&["settle", "--date", "2026-13-01", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--date: "));
    let (status, _, _) = server.interrupt();
    assert!(status.success());
    let out = check(&dir, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("ledger of sqlite:"), "{text}");
    // The ledger against the clearing: the service fed nothing to the back office (no operator
    // asked it), so both cards wait for their platform records — undecided, not "agreeing".
    let out = dir.run(&["ledger", "agreement", "--data-dir", data.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("cards: 2 (0 agree, 0 differ, 2 undecided)"), "{text}");
    assert!(text.contains("not fed to the back office yet"), "{text}");

    // 1 yuan "paid" that no order backs, posted behind the service's back.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    runtime.block_on(async {
        let store = Store::open_data_dir(&dir.path("data")).await.expect("opens");
        let amount = Fen::new(100).expect("positive");
        let posting = Posting::new(
            PostingId::parse("test/unbacked").expect("an ID"),
            "money no order backs",
            0,
            vec![
                Line {
                    account: Account::provider_clearing("simulated").expect("a provider"),
                    side: Side::Debit,
                    amount,
                },
                Line { account: Account::PaymentsUnapplied, side: Side::Credit, amount },
            ],
        )
        .expect("balanced");
        store.post(&posting).await.expect("posted");
        store.close().await;
    });
    let out = check(&dir, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("payments_unapplied"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not prove out"));
}

#[test]
fn a_database_that_cannot_be_opened_names_the_flag() {
    let dir = Dir::new();
    let out = dir.run(&["ledger", "check", "--db", "sqlite:/nonexistent/yitong/platform.sqlite"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--db: cannot open sqlite:/nonexistent/yitong/platform.sqlite"), "{stderr}");
}

/// The business day of now: Asia/Shanghai time less the 04:00 cut-over, as a date.
fn business_day_now() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(8 - 4)).format("%Y-%m-%d").to_string()
}
