//! Property test: one card's random days across several gates, a bus and two top-up terminals,
//! with lost answers, power cuts, failed state saves, gate restarts and crashes, and returns to
//! any terminal at any later time. However the transactions end, every counter the card used is
//! on exactly one record once the back office settles the unconfirmed ones, and the records'
//! amounts are the money the card moved.

mod support;

use std::collections::BTreeSet;

use proptest::prelude::*;
use support::{at, Fault, World};

/// The gates the rider uses (sample Beijing stations).
const STATIONS: [&str; 4] = ["Xidan", "Guomao", "Fuxingmen", "Dongdan"];

#[derive(Clone, Copy, Debug)]
enum Step {
    Load { terminal: usize, fen: u32, fault: Fault },
    Tap { gate: usize, fault: Fault },
    Bus { fault: Fault },
    Restart { gate: usize },
    TapAndCrash { gate: usize },
    Wait { minutes: i64 },
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        6 => Just(Fault::None),
        2 => Just(Fault::DropDebitAnswer),
        2 => ((0usize..8), (0usize..4)).prop_map(|(w, b)| Fault::CutAtWrite(w, b)),
        1 => Just(Fault::PersistFails),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => ((0usize..2), (1u32..3_000), fault()).prop_map(|(terminal, fen, fault)| Step::Load { terminal, fen, fault }),
        6 => ((0usize..STATIONS.len()), fault()).prop_map(|(gate, fault)| Step::Tap { gate, fault }),
        2 => fault().prop_map(|fault| Step::Bus { fault }),
        1 => (0usize..STATIONS.len()).prop_map(|gate| Step::Restart { gate }),
        1 => (0usize..STATIONS.len()).prop_map(|gate| Step::TapAndCrash { gate }),
        2 => (1i64..2_000).prop_map(|minutes| Step::Wait { minutes }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_commit_is_on_exactly_one_record(steps in prop::collection::vec(step(), 1..50)) {
        let mut w = World::new();
        let gates: Vec<usize> = STATIONS.iter().map(|s| w.gate_index(s)).collect();
        let mut now = at("2026-11-20 06:00:00");
        for s in &steps {
            now = now.plus_seconds(20).unwrap();
            // Errors are outcomes here: lost cards, failed saves.
            match *s {
                Step::Load { terminal, fen, fault } => { let _ = w.load_at(terminal, fen, now, fault); }
                Step::Tap { gate, fault } => { let _ = w.tap_gate(gates[gate], now, fault); }
                Step::Bus { fault } => { let _ = w.tap_gate(usize::MAX, now, fault); }
                Step::Restart { gate } => w.restart_gate(gates[gate]),
                Step::TapAndCrash { gate } => { let _ = w.tap_and_crash(gates[gate], now, Fault::None); }
                Step::Wait { minutes } => now = now.plus_seconds(minutes * 60).unwrap(),
            }
        }
        // The rider comes back to every terminal, a day later, until none holds a doubt.
        for _ in 0..3 {
            now = now.plus_seconds(86_400).unwrap();
            for &g in &gates {
                if !w.gates[g].state().pending.is_empty() {
                    let _ = w.tap_gate(g, now, Fault::None);
                }
            }
            if !w.bus.state().pending.is_empty() {
                let _ = w.tap_gate(usize::MAX, now, Fault::None);
            }
            for t in 0..w.topups.len() {
                if !w.topups[t].state().pending.is_empty() {
                    let _ = w.load_at(t, 1, now, Fault::None);
                }
            }
        }
        for &g in &gates {
            prop_assert!(w.gates[g].state().pending.is_empty(), "gate {} still in doubt", g);
        }
        prop_assert!(w.bus.state().pending.is_empty());
        for t in &w.topups {
            prop_assert!(t.state().pending.is_empty());
        }

        let ids: BTreeSet<_> = w.records.iter().map(|r| r.tap_id()).collect();
        prop_assert_eq!(ids.len(), w.records.len(), "a tap ID used twice");
        let (online, offline) = w.counters();
        let settled = support::settle(&w.records, online, offline);
        let counters = |load: bool| {
            let mut c: Vec<u16> = settled.iter().filter(|r| r.kind.is_load() == load).map(|r| r.counter).collect();
            c.sort_unstable();
            c
        };
        prop_assert_eq!(counters(true), (1..=online).collect::<Vec<_>>());
        prop_assert_eq!(counters(false), (1..=offline).collect::<Vec<_>>());
        let moved: i64 = settled.iter().map(|r| if r.kind.is_load() { i64::from(r.amount_fen) } else { -i64::from(r.amount_fen) }).sum();
        let summary: Vec<String> = w.records.iter().map(|r| format!("{:?} {:?} c{} {} {}->{} {}", r.status, r.kind, r.counter, r.amount_fen, r.balance_before_fen, r.balance_after_fen, r.at)).collect();
        prop_assert_eq!(moved, w.balance(), "{:#?}", summary);
    }
}
