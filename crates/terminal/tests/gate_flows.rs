//! Metro entry and exit, bus, top-up and recovery through the real card, byte for byte.

mod support;

use support::{at, Fault, World};
use yitong_profile::files::{StationId, TransitRecord};
use yitong_record::{verify_tac, RecordStatus, TacKeys};
use yitong_terminal::{Refusal, TapError, TapKind, TapRecord, TapResult};

/// Checks a record's TAC with the issuer's master DTK, as the back office will.
fn tac_verifies(record: &TapRecord) -> bool {
    let mut keys = TacKeys::new();
    keys.add(support::ISSUER_ID, 1, support::master().tac().clone());
    verify_tac(record, &keys).is_ok()
}

#[test]
fn entry_then_exit_charges_the_distance_band() {
    let mut w = World::new();
    w.load(5_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    let entry = w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap();
    assert_eq!(entry.result, TapResult::Completed(TapKind::Entry));
    assert_eq!((entry.amount_fen, entry.balance_fen), (0, Some(5_000)));
    // Xidan (17,700 m) to Guomao (23,900 m): 6,200 m, past the 6,099 m edge: 4 yuan.
    let exit = w.tap("Guomao", at("2026-11-25 08:20:00")).unwrap();
    assert_eq!(exit.result, TapResult::Completed(TapKind::Exit));
    assert_eq!((exit.amount_fen, exit.balance_fen), (400, Some(4_600)));
    assert_eq!(w.balance(), 4_600);
    assert_eq!(
        w.records.iter().map(|r| (r.kind, r.amount_fen)).collect::<Vec<_>>(),
        [(TapKind::Load, 5_000), (TapKind::Entry, 0), (TapKind::Exit, 400)]
    );

    // The exit's trip log record, written out by hand from the profile's EF1E layout.
    let expected_exit = hex::decode(concat!(
        "04",               // exit
        "10000000000C0000", // terminal ID of gate 12 (Guomao), padded to 8
        "01",               // metro
        "0001000C000000",   // line 1, station 12 (国贸 is the 12th station of networks/beijing.json)
        "00000190",         // 400 fen
        "000011F8",         // balance after: 4,600 fen
        "20261125082000",   // date and time
        "1000",             // Beijing
        "424A4D4554524F00", // "BJMETRO"
        "000000000000",
        "9000"
    ))
    .unwrap();
    let answers = w.read(&["00B201F430", "00B202F430", "00B202D480", "00B201C417"]);
    assert_eq!(answers[0], expected_exit);
    assert_eq!(&answers[1][..1], &[0x03], "the entry is the older trip log record");
    let transit = TransitRecord::decode(&answers[2][..128]).unwrap();
    assert_eq!(transit.entry, None);
    assert_eq!(transit.last_exit.unwrap().station, StationId { line: 1, station: 12 });
    assert_eq!((transit.month, transit.month_spent_fen, transit.month_rides), (Some((2026, 11)), 400, 1));
    // EF18: counter 2, no overdraft, 400 fen, composite purchase, at the exit gate.
    assert_eq!(
        answers[3],
        hex::decode("0002000000000001900910000000000C20261125082000 9000".replace(' ', "")).unwrap()
    );
}

#[test]
fn every_record_carries_a_tac_the_back_office_can_verify() {
    let mut w = World::new();
    w.load(2_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    w.tap("Pingguoyuan", at("2026-11-25 08:00:00")).unwrap();
    w.tap("Guomao", at("2026-11-25 08:45:00")).unwrap();
    w.bus(at("2026-11-25 09:10:00")).unwrap();
    assert_eq!(w.records.len(), 4);
    for r in &w.records {
        assert!(tac_verifies(r), "{r:?}");
    }
    let mut forged = w.records[2].clone();
    forged.amount_fen -= 1;
    assert!(!tac_verifies(&forged));
    // Pingguoyuan to Guomao is 23,900 m: 6 yuan; the bus is flat 1 yuan.
    assert_eq!(w.records[2].amount_fen, 600);
    assert_eq!((w.records[3].kind, w.records[3].amount_fen, w.records[3].transaction_type), (TapKind::Single, 100, 6));
    assert_eq!(w.balance(), 2_000 - 600 - 100);
}

#[test]
fn apdu_budget_is_six_card_commands_per_metro_tap() {
    let mut w = World::new();
    w.load(1_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    for (station, time) in [("Xidan", "08:00:00"), ("Dongdan", "08:10:00")] {
        let i = w.gate_index(station);
        let (outcome, sent) = w.with_channel(Fault::None, |w, ch| {
            let o = yitong_terminal::run_tap(&mut w.gates[i], ch, at(&format!("2026-11-25 {time}")), &mut |_| Ok(()));
            (o.unwrap(), ch.apdus())
        });
        assert_eq!((outcome.apdus, sent), (6, 6), "{station}");
    }
    let bus = w.bus(at("2026-11-25 09:00:00")).unwrap();
    assert_eq!(bus.apdus, 3);
}

#[test]
fn lost_debit_answer_is_recovered_at_the_next_tap_without_a_second_charge() {
    let mut w = World::new();
    w.load(1_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap();
    let guomao = w.gate_index("Guomao");
    let lost = w.tap_gate(guomao, at("2026-11-25 08:20:00"), Fault::DropDebitAnswer);
    assert_eq!(lost, Err(TapError::CardLost { debit_in_doubt: true }));
    assert_eq!(w.balance(), 600, "the card committed the exit");
    assert_eq!(w.gates[guomao].state().pending.len(), 1);
    assert_eq!(w.records.len(), 2, "no record until the doubt is resolved");

    let again = w.tap_gate(guomao, at("2026-11-25 08:20:05"), Fault::None).unwrap();
    assert_eq!(again.result, TapResult::Completed(TapKind::Exit));
    assert_eq!((again.amount_fen, again.balance_fen, again.apdus), (400, Some(600), 2));
    assert_eq!(w.balance(), 600, "not charged twice");
    assert!(w.gates[guomao].state().pending.is_empty());
    let exit = w.records.last().unwrap();
    assert!(exit.status == RecordStatus::Recovered && tac_verifies(exit));
    assert_eq!(exit.counter, 2);
    // The next tap there is a fresh entry.
    let entry = w.tap("Guomao", at("2026-11-25 18:00:00")).unwrap();
    assert_eq!(entry.result, TapResult::Completed(TapKind::Entry));
}

#[test]
fn debit_that_never_committed_is_charged_once_at_the_next_tap() {
    let mut w = World::new();
    w.load(1_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap();
    let guomao = w.gate_index("Guomao");
    // Power lost at the first write of the exit's commit: nothing committed.
    let lost = w.tap_gate(guomao, at("2026-11-25 08:20:00"), Fault::CutAtWrite(0, 3));
    assert_eq!(lost, Err(TapError::CardLost { debit_in_doubt: true }));
    assert_eq!(w.balance(), 1_000);
    let again = w.tap_gate(guomao, at("2026-11-25 08:20:05"), Fault::None).unwrap();
    assert_eq!((again.result, again.amount_fen), (TapResult::Completed(TapKind::Exit), 400));
    assert_eq!(w.balance(), 600);
    assert_eq!(w.records.iter().filter(|r| r.kind == TapKind::Exit).count(), 1);
}

#[test]
fn proof_overwritten_elsewhere_still_yields_a_record() {
    let mut w = World::new();
    w.load(2_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    let xidan = w.gate_index("Xidan");
    w.tap_gate(xidan, at("2026-11-25 08:00:00"), Fault::DropDebitAnswer).unwrap_err();
    // The rider walks to another gate: it exits there (same station, 3 yuan), then takes a bus.
    w.tap("Fuxingmen", at("2026-11-25 08:30:00")).unwrap();
    w.bus(at("2026-11-25 09:00:00")).unwrap();
    let back = w.tap_gate(xidan, at("2026-11-25 18:00:00"), Fault::None).unwrap();
    assert_eq!(back.result, TapResult::Completed(TapKind::Entry));
    let entries: Vec<_> = w.records.iter().filter(|r| r.kind == TapKind::Entry).collect();
    assert_eq!(entries.len(), 2);
    assert!(entries[0].status == RecordStatus::Recovered && entries[0].tac.is_none() && entries[0].counter == 1);
    let debits: i64 = w.records.iter().filter(|r| r.kind != TapKind::Load).map(|r| i64::from(r.amount_fen)).sum();
    assert_eq!(w.balance(), 2_000 - debits);
}

#[test]
fn gates_refuse_without_charging() {
    // Below the 3 yuan needed to enter.
    let mut w = World::new();
    w.load(200, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    let r = w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap();
    assert_eq!(r.result, TapResult::Refused(Refusal::BelowMinimumBalance));

    // Enough to enter, not to exit: refused, still inside; a top-up lets it out.
    let mut w = World::new();
    w.load(300, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    w.tap("Pingguoyuan", at("2026-11-25 08:00:00")).unwrap();
    let r = w.tap("Guomao", at("2026-11-25 08:45:00")).unwrap();
    assert_eq!(r.result, TapResult::Refused(Refusal::InsufficientBalance));
    assert_eq!(w.balance(), 300);
    w.load(500, at("2026-11-25 08:46:00"), Fault::None).unwrap();
    let r = w.tap("Guomao", at("2026-11-25 08:47:00")).unwrap();
    assert_eq!((r.result, r.amount_fen, r.balance_fen), (TapResult::Completed(TapKind::Exit), 600, Some(200)));

    // Outside the validity dates.
    let mut w = World::new();
    w.load(1_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    assert_eq!(w.tap("Xidan", at("2031-01-01 08:00:00")).unwrap().result, TapResult::Refused(Refusal::Expired));
    assert_eq!(w.tap("Xidan", at("2025-12-31 08:00:00")).unwrap().result, TapResult::Refused(Refusal::NotYetValid));

    // Hotlisted.
    let mut w = World::new();
    let i = w.gate_index("Xidan");
    let city = w.city.clone();
    let mut hot = support::gate(&city, yitong_terminal::GateMode::Metro, w.stations[i].0, "西单", 9);
    let mut config = hot.config().clone();
    config.hotlist.insert(support::SERIAL);
    hot = yitong_terminal::Gate::new(config, Box::new(support::psam(9)), Box::new(city), Default::default());
    w.gates[i] = hot;
    let hotlisted = w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap();
    assert_eq!((hotlisted.result, hotlisted.apdus), (TapResult::Refused(Refusal::Hotlisted { blocked: true }), 3));
    // Blocked: every terminal now refuses it, hotlist or not.
    assert_eq!(w.tap("Guomao", at("2026-11-25 08:01:00")).unwrap().result, TapResult::Refused(Refusal::Locked));
    let load = w.load(100, at("2026-11-25 08:02:00"), Fault::None).unwrap();
    assert_eq!(load.result, TapResult::Refused(Refusal::Locked));

    // Locked application.
    let mut image = support::card_image(support::issuer());
    let mut card =
        yitong_card::Card::power_on(yitong_card::MemStore::new(image.clone()), yitong_card::testing::CountingRng(0))
            .unwrap();
    card.block_application().unwrap();
    image = card.into_store().into_bytes();
    let mut w = World::with_card(image);
    assert_eq!(w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap().result, TapResult::Refused(Refusal::Locked));

    // A card of an issuer the gate holds no keys for.
    // (An overdraft lets it pass the minimum-balance check without a load.)
    let mut other = support::issuer();
    other.issuer_id = [0, 0, 0x29, 0, 0, 0, 0, 9];
    let spec =
        yitong_card::CardSpec { overdraft_limit_fen: 1_000, ..yitong_card::CardSpec::new(other, support::master(), 1) };
    let mut w = World::with_card(spec.personalize());
    assert_eq!(
        w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap().result,
        TapResult::Refused(Refusal::IssuerNotAccepted)
    );
    assert!(w.records.is_empty());
}

#[test]
fn same_station_exit_and_month_accumulator() {
    let mut w = World::new();
    w.load(10_000, at("2026-11-30 07:00:00"), Fault::None).unwrap();
    w.tap("Xidan", at("2026-11-30 08:00:00")).unwrap();
    assert_eq!(w.tap("Xidan", at("2026-11-30 08:10:00")).unwrap().amount_fen, 300);
    w.tap("Wukesong", at("2026-11-30 18:00:00")).unwrap();
    // Wukesong (9,100 m) to Fuxingmen (16,100 m): 7,000 m, 4 yuan.
    assert_eq!(w.tap("Fuxingmen", at("2026-11-30 18:30:00")).unwrap().amount_fen, 400);
    let rec = TransitRecord::decode(&w.read(&["00B202D480"])[0][..128]).unwrap();
    assert_eq!((rec.month, rec.month_spent_fen, rec.month_rides), (Some((2026, 11)), 700, 2));
    // A new month starts the accumulator again.
    w.tap("Xidan", at("2026-12-01 08:00:00")).unwrap();
    w.tap("Guomao", at("2026-12-01 08:30:00")).unwrap();
    let rec = TransitRecord::decode(&w.read(&["00B202D480"])[0][..128]).unwrap();
    assert_eq!((rec.month, rec.month_spent_fen, rec.month_rides), (Some((2026, 12)), 400, 1));
}

#[test]
fn top_up_refuses_loads_past_the_balance_limit() {
    let mut w = World::new();
    w.load(99_000, at("2026-11-25 07:00:00"), Fault::None).unwrap();
    let r = w.load(2_000, at("2026-11-25 07:01:00"), Fault::None).unwrap();
    assert!(matches!(r.result, TapResult::Refused(_)));
    assert_eq!(w.balance(), 99_000);
    assert!(tac_verifies(&w.records[0]));
}

#[test]
fn records_serialize_as_json_lines() {
    let mut w = World::new();
    w.load(1_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap();
    let line = serde_json::to_string(&w.records[1]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["kind"], "entry");
    assert_eq!(v["station"], "西单");
    assert_eq!(v["card_serial"], "10000000000000123456");
    assert_eq!(v["terminal_id"], "100000000007");
    let back: TapRecord = serde_json::from_str(&line).unwrap();
    assert_eq!(back, w.records[1]);
}

#[test]
fn exits_are_priced_by_the_city_fare_engine_with_the_cards_month_spend() {
    let mut w = World::new();
    w.load(30_000, at("2026-11-02 06:00:00"), Fault::None).unwrap();
    // Sample network: 3号航站楼 - 东直门 on the airport express (28,000 + 3,000 m: 25 yuan), then
    // 东直门 - 朝阳门 - 建国门 (2,800 + 1,700) and Line 1 建国门 - 东单 - 王府井 - 天安门西 - 西单
    // (1,300 + 700 + 1,700 + 400): 8,600 m, 4 yuan. Only the 4 yuan count towards the month.
    w.tap("PEK T3", at("2026-11-02 07:00:00")).unwrap();
    let exit = w.tap("Xidan", at("2026-11-02 08:00:00")).unwrap();
    assert_eq!(exit.amount_fen, 2_900);
    let rec = TransitRecord::decode(&w.read(&["00B202D480"])[0][..128]).unwrap();
    assert_eq!((rec.month_spent_fen, rec.month_rides), (400, 1));
    // Pingguoyuan - Guomao, 23,900 m, 6 yuan, until the month's spend reaches 100 yuan:
    // 400 + 16 × 600 = 10,000 fen; the 17th ride then costs 80 %: 4.80 yuan.
    let mut now = at("2026-11-03 09:00:00");
    for ride in 1..=17 {
        w.tap("Pingguoyuan", now).unwrap();
        let exit = w.tap("Guomao", now.plus_seconds(1_800).unwrap()).unwrap();
        assert_eq!(exit.amount_fen, if ride <= 16 { 600 } else { 480 }, "ride {ride}");
        now = now.plus_seconds(86_400).unwrap();
    }
    assert_eq!(w.balance(), 30_000 - 2_900 - 16 * 600 - 480);
}

#[test]
fn a_late_return_settles_the_old_transaction_and_taps_anew() {
    let mut w = World::new();
    w.load(1_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    let xidan = w.gate_index("Xidan");
    // The entry committed but its answer was lost; the rider comes back to this gate in the
    // ten minutes later, past the recovery and double-tap windows: the entry is settled with its proof, and this tap is
    // the exit (same station, 3 yuan).
    w.tap_gate(xidan, at("2026-11-25 08:00:00"), Fault::DropDebitAnswer).unwrap_err();
    let later = w.tap_gate(xidan, at("2026-11-25 08:10:00"), Fault::None).unwrap();
    assert_eq!((later.result, later.amount_fen), (TapResult::Completed(TapKind::Exit), 300));
    assert_eq!(later.records.len(), 2);
    assert!(later.records[0].status == RecordStatus::Recovered && tac_verifies(&later.records[0]));
    assert_eq!(w.balance(), 700);
}

#[test]
fn bus_transfer_discount_where_the_city_has_one() {
    use std::sync::Arc;
    let mut w = World::new();
    w.load(1_000, at("2026-11-25 07:00:00"), Fault::None).unwrap();
    // Shanghai's file: 2 yuan, 1 yuan off a bus boarded within 120 minutes of the last one.
    let shanghai = Arc::new(yitong_fare::City::builtin("shanghai").unwrap());
    w.bus = support::gate(&shanghai, yitong_terminal::GateMode::Bus, StationId { line: 71, station: 0 }, "", 0xB1);
    let first = w.bus(at("2026-11-25 08:00:00")).unwrap();
    assert_eq!((first.amount_fen, first.apdus), (200, 6));
    assert_eq!(w.bus(at("2026-11-25 10:00:00")).unwrap().amount_fen, 100, "120 minutes after");
    assert_eq!(w.bus(at("2026-11-25 12:00:01")).unwrap().amount_fen, 200, "past the window");
    assert_eq!(w.balance(), 1_000 - 500);
    // EF1A record 1 keeps the last boarding; EF1E logs single rides on a bus.
    let answers = w.read(&["00B201D480", "00B201F430"]);
    let bus = TransitRecord::decode(&answers[0][..128]).unwrap();
    assert_eq!((bus.mode, bus.last_exit.unwrap().at, bus.month_rides), (1, at("2026-11-25 12:00:01"), 3));
    assert_eq!((answers[1][0], answers[1][9]), (0x06, 0x02));
    for r in &w.records[1..] {
        assert!(tac_verifies(r), "{r:?}");
    }
}

#[test]
fn a_load_past_the_limit_is_refused_with_the_headroom() {
    let mut w = World::new();
    w.load(99_000, at("2026-11-25 07:00:00"), Fault::None).unwrap();
    let refused = w.load(2_000, at("2026-11-25 07:01:00"), Fault::None).unwrap();
    assert_eq!(refused.card_number.as_deref(), Some("0000000000000123456"));
    assert_eq!(
        refused.result,
        TapResult::Refused(Refusal::BalanceLimit { balance_and_limit_fen: Some((99_000, 100_000)) })
    );
    let TapResult::Refused(why) = refused.result else { unreachable!() };
    assert_eq!(
        why.to_string(),
        "the load would pass the card's balance limit of 1000.00 yuan: balance 990.00 yuan, at most 10.00 yuan more"
    );
    assert_eq!(w.balance(), 99_000);
    // Dates as at a gate: not yet valid is not "expired".
    let early = w.load(100, at("2025-12-31 23:59:59"), Fault::None).unwrap();
    assert_eq!(early.result, TapResult::Refused(Refusal::NotYetValid));
}

#[test]
fn a_card_above_any_issuers_limit_is_refused_as_suspect() {
    // A card whose own limit was raised past the issuers' 1,000 yuan, and loaded past it.
    let spec = yitong_card::CardSpec {
        balance_limit_fen: 500_000,
        ..yitong_card::CardSpec::new(support::issuer(), support::master(), 1)
    };
    let mut w = World::with_card(spec.personalize());
    w.load(150_000, at("2026-11-25 07:00:00"), Fault::None).unwrap();
    let tap = w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap();
    assert_eq!(tap.result, TapResult::Refused(Refusal::Suspect { balance_fen: 150_000 }));
    assert_eq!(w.balance(), 150_000);
}

#[test]
fn verify_tac_proves_records_and_names_what_is_wrong() {
    use yitong_crypto::{Algorithm, TacMasterKey};
    use yitong_record::TacError;
    let mut w = World::new();
    w.load(2_000, at("2026-11-25 07:00:00"), Fault::None).unwrap();
    w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap();
    w.tap("Guomao", at("2026-11-25 08:30:00")).unwrap();
    let mut keys = TacKeys::new();
    keys.add(support::ISSUER_ID, 1, support::master().tac().clone());
    for record in &w.records {
        assert_eq!(verify_tac(record, &keys), Ok(()), "{record:?}");
    }
    let exit = w.records.last().unwrap().clone();
    let altered = |change: &dyn Fn(&mut TapRecord)| {
        let mut r = exit.clone();
        change(&mut r);
        verify_tac(&r, &keys)
    };
    assert_eq!(altered(&|r| r.amount_fen -= 1), Err(TacError::Mismatch));
    assert_eq!(altered(&|r| r.terminal_transaction_number += 1), Err(TacError::Mismatch));
    assert_eq!(altered(&|r| r.at = at("2026-11-25 08:30:01")), Err(TacError::Mismatch));
    assert_eq!(altered(&|r| r.card_serial[9] ^= 1), Err(TacError::Mismatch));
    assert_eq!(altered(&|r| r.tac = None), Err(TacError::Missing));
    assert_eq!(altered(&|r| r.key_version = 2), Err(TacError::KeyMismatch));
    assert_eq!(altered(&|r| r.issuer_id[7] ^= 1), Err(TacError::UnknownIssuer));
    // The TAC key of another issuer's master proves nothing.
    let mut other = TacKeys::new();
    other.add(support::ISSUER_ID, 1, TacMasterKey::new(Algorithm::Des, [0x77; 16]));
    assert_eq!(verify_tac(&exit, &other), Err(TacError::Mismatch));
}
