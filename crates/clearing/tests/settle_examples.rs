//! Hand-computed days: who owes whom, the totals, the positions and the reconciliation.

mod settle_support;

use settle_support::{entry, participants, record, BEIJING, SHANGHAI};
use yitong_clearing::settlement::{
    settle, BusinessDay, Counted, CutOver, DayReport, DaySettlement, PlatformEntry, PlatformEntryKind, SettleError,
    Tally,
};
use yitong_record::{TapKind, TapRecord};

const SHANGHAI_GATE: &str = "290000120001";
const BEIJING_GATE: &str = "100000040002";
const BEIJING_BUS: &str = "10000001B001";
const BEIJING_OTA_HOST: &str = "1000FFFF0002";
const BEIJING_SERVICE_DESK: &str = "1000FFFF0003";
const SHANGHAI_CLI_TOPUP: &str = "2900FFFF0001";

fn day(text: &str) -> BusinessDay {
    BusinessDay::parse(text, CutOver::DEFAULT).unwrap()
}

fn settle_day(text: &str, cleared: &[TapRecord], pending: &[TapRecord], entries: &[PlatformEntry]) -> DayReport {
    settle(day(text), cleared, pending, entries, &participants()).unwrap()
}

/// (kind, payer, payee, records, amount).
fn lines(report: &DayReport) -> Vec<(&'static str, String, String, u64, i64)> {
    report
        .obligations
        .iter()
        .map(|l| (l.kind.as_str(), l.payer.id.to_string(), l.payee.id.to_string(), l.records, l.amount_fen))
        .collect()
}

/// (participant, receivable, payable, net).
fn positions(report: &DayReport) -> Vec<(String, i64, i64, i64)> {
    report
        .positions
        .iter()
        .map(|p| (p.participant.id.to_string(), p.receivable_fen, p.payable_fen, p.net_fen))
        .collect()
}

fn tally(records: u64, amount_fen: i64) -> Tally {
    Tally { records, amount_fen }
}

fn s(text: &str) -> String {
    text.to_owned()
}

#[test]
fn a_beijing_card_in_shanghais_metro_puts_the_fare_on_beijings_issuer_owing_shanghais_metro() {
    let exit = record(TapKind::Exit, BEIJING, SHANGHAI_GATE, 7, 500, "2026-11-25 18:10:00");
    let report = settle_day("2026-11-25", &[exit], &[], &[]);

    assert_eq!(lines(&report), [("purchase", s("issuer:0000100000000001"), s("metro:2900"), 1, 500)]);
    assert_eq!(report.obligations[0].payer.name, "Beijing Card");
    assert_eq!(report.obligations[0].payee.name, "上海 Shanghai metro");
    assert_eq!(positions(&report), [(s("issuer:0000100000000001"), 0, 500, -500), (s("metro:2900"), 500, 0, 500)]);
    assert_eq!(report.operators.len(), 1);
    assert_eq!(report.operators[0].operator.id.to_string(), "metro:2900");
    assert_eq!(report.operators[0].purchases, tally(1, 500));
    assert_eq!(report.issuers.len(), 1);
    assert_eq!(report.issuers[0].card_debits, tally(1, 500));
    assert_eq!(report.reconciliation.debits_cleared, tally(1, 500));
    assert_eq!(report.reconciliation.debit_lines, tally(1, 500));
}

#[test]
fn rides_in_the_cards_own_city_still_owe_its_operator_and_entries_of_0_fen_count_as_taps() {
    let cleared = [
        record(TapKind::Entry, BEIJING, BEIJING_GATE, 1, 0, "2026-11-25 08:00:00"),
        record(TapKind::Exit, BEIJING, BEIJING_GATE, 2, 400, "2026-11-25 08:40:00"),
        record(TapKind::Exit, SHANGHAI, SHANGHAI_GATE, 3, 300, "2026-11-25 09:00:00"),
    ];
    let report = settle_day("2026-11-25", &cleared, &[], &[]);

    assert_eq!(
        lines(&report),
        [
            ("purchase", s("issuer:0000100000000001"), s("metro:1000"), 2, 400),
            ("purchase", s("issuer:0000290000000001"), s("metro:2900"), 1, 300),
        ]
    );
    let beijing_metro = &report.operators[0];
    assert_eq!(beijing_metro.operator.id.to_string(), "metro:1000");
    assert_eq!((beijing_metro.purchases, beijing_metro.zero_fen_taps), (tally(1, 400), 1));
    assert_eq!((report.issuers[0].card_debits, report.issuers[0].card_zero_fen_taps), (tally(1, 400), 1));
    assert_eq!(report.reconciliation.debits_cleared, tally(3, 700));
}

#[test]
fn a_bus_ride_is_owed_to_the_citys_bus_operator() {
    let ride = record(TapKind::Single, SHANGHAI, BEIJING_BUS, 9, 100, "2026-11-25 12:00:00");
    let report = settle_day("2026-11-25", &[ride], &[], &[]);

    assert_eq!(lines(&report), [("purchase", s("issuer:0000290000000001"), s("bus:1000"), 1, 100)]);
    assert_eq!(report.obligations[0].payee.name, "北京 Beijing bus");
    assert_eq!(positions(&report), [(s("issuer:0000290000000001"), 0, 100, -100), (s("bus:1000"), 100, 0, 100)]);
}

#[test]
fn a_load_at_the_ota_host_is_checked_against_the_platforms_paid_loads() {
    let load = record(TapKind::Load, BEIJING, BEIJING_OTA_HOST, 31, 5_000, "2026-11-25 20:00:00");
    // The second load was paid at 03:58 and reached the card at 04:01: a day later.
    let late_load = record(TapKind::Load, BEIJING, BEIJING_OTA_HOST, 32, 2_000, "2026-11-26 04:01:00");
    let entries = [
        entry(PlatformEntryKind::LoadPaid, BEIJING, 5_000, "2026-11-25 20:00:00"),
        entry(PlatformEntryKind::LoadPaid, BEIJING, 2_000, "2026-11-26 03:58:00"),
        entry(PlatformEntryKind::Fee, BEIJING, 2_900, "2026-11-25 10:00:00"),
        entry(PlatformEntryKind::Refund, BEIJING, 1_000, "2026-11-25 11:00:00"),
    ];
    let report = settle_day("2026-11-25", &[load.clone(), late_load.clone()], &[], &entries);

    // The issuer took the rider's money at its own host and owes itself the stored value.
    assert_eq!(lines(&report), [("load", s("issuer:0000100000000001"), s("issuer:0000100000000001"), 1, 5_000)]);
    assert_eq!(positions(&report), [(s("issuer:0000100000000001"), 5_000, 5_000, 0)]);
    let beijing = &report.issuers[0];
    assert_eq!(beijing.card_loads, tally(1, 5_000));
    assert_eq!(beijing.host_loads, tally(1, 5_000));
    assert_eq!(beijing.platform_loads, tally(2, 7_000));
    assert_eq!(beijing.platform_fees, tally(1, 2_900));
    assert_eq!(beijing.platform_refunds, tally(1, 1_000));
    assert_eq!(beijing.platform_load_difference_fen, 2_000);
    let r = &report.reconciliation;
    assert_eq!((r.loads_cleared, r.load_lines), (tally(1, 5_000), tally(1, 5_000)));
    assert_eq!((r.host_loads, r.platform_loads), (tally(1, 5_000), tally(2, 7_000)));
    assert_eq!(r.platform_load_difference_fen, 2_000);
    assert_eq!(r.outside_day.cleared_records, 1);

    // The next day shows the card's side of it: −2,000 there, so the two days add up.
    let next = settle_day("2026-11-26", &[load, late_load], &[], &entries);
    assert_eq!(next.reconciliation.platform_load_difference_fen, -2_000);
    assert_eq!(next.reconciliation.outside_day.platform_entries, 4);
}

#[test]
fn a_load_at_another_citys_terminal_is_owed_by_that_citys_issuer_and_is_not_the_platforms() {
    let load = record(TapKind::Load, BEIJING, SHANGHAI_CLI_TOPUP, 4, 3_000, "2026-11-25 15:00:00");
    let report = settle_day("2026-11-25", &[load], &[], &[]);

    assert_eq!(lines(&report), [("load", s("issuer:0000290000000001"), s("issuer:0000100000000001"), 1, 3_000)]);
    assert_eq!(
        positions(&report),
        [(s("issuer:0000100000000001"), 3_000, 0, 3_000), (s("issuer:0000290000000001"), 0, 3_000, -3_000)]
    );
    assert_eq!(report.issuers[0].card_loads, tally(1, 3_000));
    assert_eq!(report.reconciliation.host_loads, tally(0, 0));
}

#[test]
fn a_service_desk_debit_is_owed_to_the_desks_issuer() {
    let debit = record(TapKind::Single, SHANGHAI, BEIJING_SERVICE_DESK, 5, 1_234, "2026-11-25 16:00:00");
    let report = settle_day("2026-11-25", &[debit], &[], &[]);

    assert_eq!(
        lines(&report),
        [("service_desk", s("issuer:0000290000000001"), s("issuer:0000100000000001"), 1, 1_234)]
    );
    assert!(report.operators.is_empty());
    assert_eq!(report.reconciliation.debits_cleared, tally(1, 1_234));
}

#[test]
fn the_cut_over_puts_0359_on_the_day_before_and_0400_on_the_day() {
    let before = record(TapKind::Exit, BEIJING, BEIJING_GATE, 1, 300, "2026-11-26 03:59:59");
    let after = record(TapKind::Exit, BEIJING, BEIJING_GATE, 2, 700, "2026-11-26 04:00:00");
    let cleared = [before, after];

    let first = settle_day("2026-11-25", &cleared, &[], &[]);
    assert_eq!(lines(&first), [("purchase", s("issuer:0000100000000001"), s("metro:1000"), 1, 300)]);
    assert_eq!(first.reconciliation.outside_day.cleared_records, 1);
    let second = settle_day("2026-11-26", &cleared, &[], &[]);
    assert_eq!(lines(&second), [("purchase", s("issuer:0000100000000001"), s("metro:1000"), 1, 700)]);

    // With a midnight cut-over both are the 26th's.
    let midnight = BusinessDay::parse("2026-11-26", CutOver::new(0, 0).unwrap()).unwrap();
    let report = settle(midnight, &cleared, [], [], &participants()).unwrap();
    assert_eq!(lines(&report), [("purchase", s("issuer:0000100000000001"), s("metro:1000"), 2, 1_000)]);
}

#[test]
fn nets_sum_to_zero_across_cities() {
    let cleared = [
        record(TapKind::Exit, BEIJING, SHANGHAI_GATE, 1, 500, "2026-11-25 07:00:00"),
        record(TapKind::Single, SHANGHAI, BEIJING_BUS, 2, 100, "2026-11-25 08:00:00"),
        record(TapKind::Exit, SHANGHAI, BEIJING_GATE, 3, 300, "2026-11-25 09:00:00"),
        record(TapKind::Exit, BEIJING, BEIJING_GATE, 4, 400, "2026-11-25 10:00:00"),
        record(TapKind::Load, SHANGHAI, BEIJING_OTA_HOST, 5, 2_000, "2026-11-25 11:00:00"),
    ];
    let report = settle_day("2026-11-25", &cleared, &[], &[]);

    // Beijing's issuer owes its cards' fares (500 + 400) and the 2,000 its host took for the
    // Shanghai card to Shanghai's issuer, which holds that stored value and owes 100 + 300.
    // Participants come issuers first, then operators by city, metro before bus.
    assert_eq!(
        positions(&report),
        [
            (s("issuer:0000100000000001"), 0, 500 + 400 + 2_000, -2_900),
            (s("issuer:0000290000000001"), 2_000, 100 + 300, 1_600),
            (s("metro:1000"), 300 + 400, 0, 700),
            (s("bus:1000"), 100, 0, 100),
            (s("metro:2900"), 500, 0, 500),
        ]
    );
    assert_eq!(-2_900 + 1_600 + 700 + 500 + 100, 0);
    assert_eq!(report.reconciliation.net_positions_sum_fen, 0);
}

#[test]
fn pending_records_are_totalled_apart_and_on_no_line() {
    let cleared = [record(TapKind::Exit, BEIJING, BEIJING_GATE, 1, 400, "2026-11-25 08:00:00")];
    let pending = [
        record(TapKind::Exit, BEIJING, BEIJING_GATE, 2, 300, "2026-11-25 09:00:00"),
        record(TapKind::Load, BEIJING, BEIJING_OTA_HOST, 3, 1_000, "2026-11-25 10:00:00"),
        record(TapKind::Exit, BEIJING, BEIJING_GATE, 4, 600, "2026-11-27 09:00:00"),
    ];
    let report = settle_day("2026-11-25", &cleared, &pending, &[]);

    assert_eq!(lines(&report), [("purchase", s("issuer:0000100000000001"), s("metro:1000"), 1, 400)]);
    let r = &report.reconciliation;
    assert_eq!((r.pending_debits, r.pending_loads), (tally(1, 300), tally(1, 1_000)));
    assert_eq!(r.outside_day.pending_records, 1);
    assert_eq!(r.debits_cleared, tally(1, 400));
}

#[test]
fn a_repeated_tap_is_an_error_naming_it() {
    let exit = record(TapKind::Exit, BEIJING, BEIJING_GATE, 8, 400, "2026-11-25 08:00:00");
    let error = settle(day("2026-11-25"), [&exit, &exit], [], [], &participants()).unwrap_err();
    assert_eq!(error, SettleError::RepeatedTap { tap_id: exit.tap_id() });
    assert!(error.to_string().contains("100000040002-8"), "{error}");

    // Cleared and pending at once, and outside the day too.
    let error = settle(day("2026-11-25"), [&exit], [&exit], [], &participants()).unwrap_err();
    assert_eq!(error, SettleError::RepeatedTap { tap_id: exit.tap_id() });
    let error = settle(day("2026-11-20"), [&exit, &exit], [], [], &participants()).unwrap_err();
    assert_eq!(error, SettleError::RepeatedTap { tap_id: exit.tap_id() });
}

#[test]
fn a_terminal_of_no_known_layout_or_a_load_at_a_gate_is_refused_and_changes_nothing() {
    let participants = participants();
    let mut settlement = DaySettlement::new(day("2026-11-25"), &participants);
    let strange = record(TapKind::Exit, BEIJING, "100000047701", 1, 400, "2026-11-25 08:00:00");
    let error = settlement.add_cleared(&strange).unwrap_err();
    assert_eq!(error, SettleError::UnknownTerminal { tap_id: strange.tap_id() });
    assert!(error.to_string().contains("100000047701-1"), "{error}");
    let load_at_gate = record(TapKind::Load, BEIJING, BEIJING_GATE, 2, 400, "2026-11-25 08:00:00");
    assert_eq!(settlement.add_cleared(&load_at_gate), Err(SettleError::LoadAtGate { tap_id: load_at_gate.tap_id() }));

    // Refused records were not remembered (given again, they are not repeats) nor counted.
    assert_eq!(settlement.add_cleared(&strange), Err(SettleError::UnknownTerminal { tap_id: strange.tap_id() }));
    let good = record(TapKind::Exit, BEIJING, BEIJING_GATE, 1, 400, "2026-11-25 08:00:00");
    assert_eq!(settlement.add_cleared(&good), Ok(Counted::InDay));
    let report = settlement.report();
    assert_eq!(report.reconciliation.debits_cleared, tally(1, 400));
    assert_eq!(lines(&report), [("purchase", s("issuer:0000100000000001"), s("metro:1000"), 1, 400)]);
}

#[test]
fn a_city_missing_from_the_table_settles_under_a_name_saying_so() {
    let wuxi_card = [0, 0, 0x21, 0x40, 0, 0, 0, 1];
    let cleared = [
        record(TapKind::Exit, wuxi_card, SHANGHAI_GATE, 1, 500, "2026-11-25 08:00:00"),
        record(TapKind::Exit, BEIJING, "214000010001", 2, 300, "2026-11-25 09:00:00"),
        record(TapKind::Load, BEIJING, "2140FFFF0001", 3, 1_000, "2026-11-25 10:00:00"),
    ];
    let report = settle_day("2026-11-25", &cleared, &[], &[]);

    let names: Vec<(String, &str)> =
        report.positions.iter().map(|p| (p.participant.id.to_string(), p.participant.name.as_str())).collect();
    assert_eq!(
        names,
        [
            (s("issuer:0000100000000001"), "Beijing Card"),
            (s("issuer:0000214000000001"), "issuer 0000214000000001 (not in the participant table)"),
            (s("metro:2140"), "metro of city 2140 (not in the participant table)"),
            (s("metro:2900"), "上海 Shanghai metro"),
        ]
    );
    // The unknown city's top-up terminal is its conventional issuer's.
    assert!(lines(&report).contains(&("load", s("issuer:0000214000000001"), s("issuer:0000100000000001"), 1, 1_000)));
}

#[test]
fn the_json_names_fields_and_writes_ids_days_and_times_as_text() {
    let exit = record(TapKind::Exit, BEIJING, SHANGHAI_GATE, 7, 500, "2026-11-25 18:10:00");
    let report = settle_day("2026-11-25", &[exit], &[], &[]);
    let json = serde_json::to_value(&report).unwrap();

    assert_eq!(json["day"], "2026-11-25");
    assert_eq!(json["cut_over"], "04:00");
    assert_eq!(json["from"], "2026-11-25 04:00:00");
    assert_eq!(json["until"], "2026-11-26 04:00:00");
    assert_eq!(
        json["obligations"][0],
        serde_json::json!({
            "kind": "purchase",
            "payer": { "id": "issuer:0000100000000001", "name": "Beijing Card" },
            "payee": { "id": "metro:2900", "name": "上海 Shanghai metro" },
            "records": 1,
            "amount_fen": 500,
        })
    );
    assert_eq!(json["positions"][1]["net_fen"], 500);
    assert_eq!(json["reconciliation"]["debits_cleared"], serde_json::json!({ "records": 1, "amount_fen": 500 }));
    assert_eq!(json["reconciliation"]["outside_day"]["platform_entries"], 0);
}
