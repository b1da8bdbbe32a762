//! The CSV of a small day, byte for byte, written by hand from the documented columns.

mod settle_support;

use settle_support::{entry, record, BEIJING, SHANGHAI};
use yitong_clearing::settlement::{
    settle, BusinessDay, CityParticipants, CutOver, Participants, PlatformEntryKind, CSV_HEADER,
};
use yitong_record::TapKind;

#[test]
fn a_small_day_as_csv() {
    // Beijing's issuer has a comma in its name: its cells are quoted.
    let participants = Participants::new([
        CityParticipants::new(0x1000, "北京 Beijing", BEIJING, "Beijing Card Co., Ltd."),
        CityParticipants::new(0x2900, "上海 Shanghai", SHANGHAI, "Shanghai Card"),
    ])
    .unwrap();
    let cleared = [
        // A Beijing card enters Shanghai's metro (0 fen) and leaves it (500 fen).
        record(TapKind::Entry, BEIJING, "290000120001", 1, 0, "2026-11-25 10:00:00"),
        record(TapKind::Exit, BEIJING, "290000150002", 2, 500, "2026-11-25 10:30:00"),
        // It is loaded with 1,000 fen over the air.
        record(TapKind::Load, BEIJING, "1000FFFF0002", 3, 1_000, "2026-11-25 20:00:00"),
        // A Shanghai ride of the next business day.
        record(TapKind::Exit, SHANGHAI, "290000120001", 5, 400, "2026-11-26 05:00:00"),
    ];
    let pending = [record(TapKind::Exit, BEIJING, "100000040002", 4, 300, "2026-11-25 21:00:00")];
    let entries = [
        entry(PlatformEntryKind::LoadPaid, BEIJING, 1_000, "2026-11-25 20:00:00"),
        entry(PlatformEntryKind::Fee, BEIJING, 2_900, "2026-11-25 09:00:00"),
    ];
    let day = BusinessDay::parse("2026-11-25", CutOver::DEFAULT).unwrap();
    let report = settle(day, &cleared, &pending, &entries, &participants).unwrap();

    let expected = "\
day,section,item,participant,participant_name,counterparty,counterparty_name,records,amount_fen
2026-11-25,obligation,purchase,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",metro:2900,上海 Shanghai metro,2,500
2026-11-25,obligation,load,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",issuer:0000100000000001,\"Beijing Card Co., Ltd.\",1,1000
2026-11-25,operator,purchases,metro:2900,上海 Shanghai metro,,,1,500
2026-11-25,operator,zero_fen_taps,metro:2900,上海 Shanghai metro,,,1,0
2026-11-25,issuer,card_debits,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",,,1,500
2026-11-25,issuer,card_zero_fen_taps,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",,,1,0
2026-11-25,issuer,card_loads,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",,,1,1000
2026-11-25,issuer,host_loads,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",,,1,1000
2026-11-25,issuer,platform_loads,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",,,1,1000
2026-11-25,issuer,platform_fees,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",,,1,2900
2026-11-25,issuer,platform_refunds,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",,,0,0
2026-11-25,issuer,platform_load_difference,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",,,,0
2026-11-25,position,receivable,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",,,,1000
2026-11-25,position,payable,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",,,,1500
2026-11-25,position,net,issuer:0000100000000001,\"Beijing Card Co., Ltd.\",,,,-500
2026-11-25,position,receivable,metro:2900,上海 Shanghai metro,,,,500
2026-11-25,position,payable,metro:2900,上海 Shanghai metro,,,,0
2026-11-25,position,net,metro:2900,上海 Shanghai metro,,,,500
2026-11-25,reconciliation,debits_cleared,,,,,2,500
2026-11-25,reconciliation,debit_lines,,,,,2,500
2026-11-25,reconciliation,loads_cleared,,,,,1,1000
2026-11-25,reconciliation,load_lines,,,,,1,1000
2026-11-25,reconciliation,host_loads,,,,,1,1000
2026-11-25,reconciliation,platform_loads,,,,,1,1000
2026-11-25,reconciliation,platform_load_difference,,,,,,0
2026-11-25,reconciliation,platform_fees,,,,,1,2900
2026-11-25,reconciliation,platform_refunds,,,,,0,0
2026-11-25,reconciliation,net_positions_sum,,,,,,0
2026-11-25,reconciliation,pending_debits,,,,,1,300
2026-11-25,reconciliation,pending_loads,,,,,0,0
2026-11-25,reconciliation,outside_day_cleared_records,,,,,1,
2026-11-25,reconciliation,outside_day_pending_records,,,,,0,
2026-11-25,reconciliation,outside_day_platform_entries,,,,,0,
";
    let csv = report.to_csv();
    assert_eq!(csv, expected, "\n{csv}");
    assert!(csv.starts_with(&format!("{CSV_HEADER}\n")));
}

#[test]
fn every_row_has_the_nine_columns() {
    let participants = Participants::new([]).unwrap();
    let cleared = [record(TapKind::Exit, BEIJING, "290000120001", 1, 500, "2026-11-25 10:00:00")];
    let day = BusinessDay::parse("2026-11-25", CutOver::DEFAULT).unwrap();
    let csv = settle(day, &cleared, [], [], &participants).unwrap().to_csv();
    // No name here holds a comma or quote, so counting commas counts columns.
    for line in csv.lines() {
        assert_eq!(line.matches(',').count(), 8, "{line}");
    }
    assert!(csv.ends_with('\n'));
}
