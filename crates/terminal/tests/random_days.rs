//! Property test: random days of loads, metro taps, bus rides, taps whose DEBIT answer is lost
//! and taps cut by a power loss. Whatever happens, the card's balance equals loads minus debits
//! in the clearing records, its counters equal the number of records of each kind, and its EF18
//! log shows the newest records, newest first.

mod support;

use proptest::prelude::*;
use support::{at, Fault, World};
use yitong_profile::files::LogRecord;
use yitong_terminal::{TapKind, TapResult};

#[derive(Clone, Debug)]
enum Step {
    Load(u32),
    Metro(usize),
    Bus,
    /// A metro tap whose DEBIT answer is lost; the rider taps the same gate again.
    LostAnswer(usize),
    /// A tap cut at some write, then tapped again.
    PowerCut(usize, usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (1u32..3_000).prop_map(Step::Load),
        5 => (0usize..20).prop_map(Step::Metro),
        1 => Just(Step::Bus),
        1 => (0usize..20).prop_map(Step::LostAnswer),
        1 => ((0usize..20), (0usize..20)).prop_map(|(g, w)| Step::PowerCut(g, w)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn balance_is_loads_minus_debits_with_matching_logs(steps in prop::collection::vec(step(), 1..40)) {
        let mut w = World::new();
        let mut now = at("2026-11-20 06:00:00");
        for s in &steps {
            now = now.plus_seconds(7 * 60).unwrap();
            match *s {
                Step::Load(fen) => { let _ = w.load(fen, now, Fault::None).unwrap(); }
                Step::Metro(g) => { w.tap_gate(g, now, Fault::None).unwrap(); }
                Step::Bus => { w.tap_gate(usize::MAX, now, Fault::None).unwrap(); }
                Step::LostAnswer(g) => {
                    if let Ok(o) = w.tap_gate(g, now, Fault::DropDebitAnswer) {
                        // Refused before DEBIT: nothing was lost.
                        prop_assert!(matches!(o.result, TapResult::Refused(_)));
                    }
                    w.tap_gate(g, now.plus_seconds(5).unwrap(), Fault::None).unwrap();
                }
                Step::PowerCut(g, write) => {
                    let _ = w.tap_gate(g, now, Fault::CutAtWrite(write, 1));
                    w.tap_gate(g, now.plus_seconds(5).unwrap(), Fault::None).unwrap();
                }
            }
        }
        let loaded: i64 = w.records.iter().filter(|r| r.kind == TapKind::Load).map(|r| i64::from(r.amount_fen)).sum();
        let spent: i64 = w.records.iter().filter(|r| r.kind != TapKind::Load).map(|r| i64::from(r.amount_fen)).sum();
        prop_assert_eq!(w.balance(), loaded - spent);
        prop_assert!(w.balance() >= 0);
        let loads = w.records.iter().filter(|r| r.kind == TapKind::Load).count() as u16;
        let purchases = w.records.iter().filter(|r| r.kind != TapKind::Load).count() as u16;
        prop_assert_eq!(w.counters(), (loads, purchases));
        for r in &w.records {
            prop_assert!(r.tac.is_some(), "every record here resolved with its TAC: {:?}", r);
        }
        // EF18, newest first, against the records in the order they committed.
        let log = w.read(&(1..=10).map(|n| format!("00B2{n:02X}C417")).collect::<Vec<_>>().iter().map(String::as_str).collect::<Vec<_>>());
        let newest: Vec<_> = w.records.iter().rev().take(10).collect();
        for (answer, record) in log.iter().zip(&newest) {
            let entry = LogRecord::decode(&answer[..23]).unwrap();
            prop_assert_eq!((entry.counter, entry.amount_fen, entry.transaction_type), (record.counter, record.amount_fen, record.transaction_type));
        }
        prop_assert_eq!(log.iter().filter(|a| a.len() == 25).count(), newest.len());
    }
}
