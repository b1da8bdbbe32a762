//! Gates as they stand in stations: entry-only and exit-only gates, double taps, another
//! city's entry, clocks going backwards, and the exit's fare explained.

mod support;

use std::sync::Arc;

use support::{at, Fault, World};
use yitong_fare::City;
use yitong_terminal::{city, Direction, GateMode, Refusal, TapKind, TapResult};

fn refused(result: &TapResult) -> &Refusal {
    match result {
        TapResult::Refused(why) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn an_entry_gate_refuses_a_double_tap_and_an_open_trip() {
    let mut w = World::new();
    w.load(2_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    let xidan = w.gate_index("Xidan");
    w.reconfigure(xidan, |c| c.direction = Direction::In);
    let entry = w.tap_gate(xidan, at("2026-11-25 08:00:05"), Fault::None).unwrap();
    assert_eq!(entry.result, TapResult::Completed(TapKind::Entry));
    let again = w.tap_gate(xidan, at("2026-11-25 08:00:30"), Fault::None).unwrap();
    assert_eq!(refused(&again.result).to_string(), "already entered at 西单 08:00:05");
    assert_eq!((again.amount_fen, w.balance()), (0, 2_000));
    // Past the window it is still no exit gate: the open trip goes to the service desk.
    let later = w.tap_gate(xidan, at("2026-11-25 09:00:00"), Fault::None).unwrap();
    assert!(matches!(refused(&later.result), Refusal::OpenTrip { .. }), "{:?}", later.result);
    assert_eq!(w.balance(), 2_000);
}

#[test]
fn a_two_way_gate_refuses_a_double_tap_then_charges_a_same_station_exit() {
    let mut w = World::new();
    w.load(2_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap();
    let again = w.tap("Xidan", at("2026-11-25 08:04:59")).unwrap();
    assert!(matches!(refused(&again.result), Refusal::AlreadyEntered { .. }));
    // The window is the city's (Beijing takes the default of 300 s).
    let exit = w.tap("Xidan", at("2026-11-25 08:05:01")).unwrap();
    assert_eq!((exit.result, exit.amount_fen), (TapResult::Completed(TapKind::Exit), 300));
}

#[test]
fn an_exit_gate_lets_out_and_sends_cards_without_entry_to_the_desk() {
    let mut w = World::new();
    w.load(2_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    let xidan = w.gate_index("Xidan");
    w.reconfigure(xidan, |c| c.direction = Direction::Out);
    let outside = w.tap_gate(xidan, at("2026-11-25 08:00:00"), Fault::None).unwrap();
    assert_eq!(refused(&outside.result), &Refusal::NoEntry);
    // An exit gate right after an entry at another gate of its station: the rider changed their
    // mind and pays the same-station fare.
    let (station, name) = w.stations[xidan].clone();
    let mut entry_gate = support::gate(&w.city.clone(), GateMode::Metro, station, &name, 0x70);
    w.tap_other(&mut entry_gate, at("2026-11-25 08:01:00")).unwrap();
    let out = w.tap_gate(xidan, at("2026-11-25 08:02:00"), Fault::None).unwrap();
    assert_eq!((out.result, out.amount_fen), (TapResult::Completed(TapKind::Exit), 300));
}

#[test]
fn another_citys_entry_is_an_incomplete_trip() {
    let mut w = World::new();
    w.load(3_000, at("2026-11-25 07:00:00"), Fault::None).unwrap();
    let shanghai = Arc::new(City::builtin("shanghai").unwrap());
    let (station, name) = city::station_id(&shanghai, "人民广场").unwrap();
    let mut people_square = support::gate(&shanghai, GateMode::Metro, station, &name, 0x50);
    let entry = w.tap_other(&mut people_square, at("2026-11-25 08:00:00")).unwrap();
    assert_eq!(entry.result, TapResult::Completed(TapKind::Entry));

    let guomao = w.gate_index("Guomao");
    let exit = w.tap_gate(guomao, at("2026-11-25 13:00:00"), Fault::None).unwrap();
    let why = refused(&exit.result).to_string();
    assert!(why.contains("上海") && why.contains("人民广场") && why.contains("service desk"), "{why}");
    assert_eq!(w.balance(), 3_000);

    // A city file may charge a fare for incomplete trips instead.
    w.reconfigure(guomao, |c| c.city.incomplete_trip_fare_fen = Some(1_000));
    let exit = w.tap_gate(guomao, at("2026-11-25 13:01:00"), Fault::None).unwrap();
    assert_eq!((exit.result, exit.amount_fen), (TapResult::Completed(TapKind::Exit), 1_000));
    assert!(exit.fare.unwrap().incomplete_trip);
    assert_eq!(w.balance(), 2_000);
}

#[test]
fn an_exit_before_its_entry_is_refused() {
    let mut w = World::new();
    w.load(2_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap();
    let exit = w.tap("Guomao", at("2026-11-25 07:30:00")).unwrap();
    assert!(matches!(refused(&exit.result), Refusal::TimeBackwards { .. }));
    assert_eq!(w.balance(), 2_000);
}

#[test]
fn the_exit_explains_its_fare() {
    let mut w = World::new();
    w.load(5_000, at("2026-11-25 07:50:00"), Fault::None).unwrap();
    w.tap("Xidan", at("2026-11-25 08:00:00")).unwrap();
    // Five hours inside: past Beijing's four-hour limit, 3 yuan more.
    let exit = w.tap("Guomao", at("2026-11-25 13:00:00")).unwrap();
    let fare = exit.fare.unwrap();
    assert_eq!((fare.base_fare_fen, fare.overstay_fen, fare.fare_fen, exit.amount_fen), (400, 300, 700, 700));
    assert_eq!(fare.monthly_percent, 100);
    let text = fare.to_string();
    assert!(text.starts_with("base 4.00 for ") && text.ends_with(", overstay +3.00 = 7.00"), "{text}");
}
