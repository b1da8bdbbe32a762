//! Power cut at every single write of every command of the load, entry, exit and bus flows.
//!
//! For each flow and each write it makes (and for torn writes that land nothing, one byte, or
//! half their bytes), the card restarts from what the cut left, and the test proves: everything
//! a reader sees (balance, counters, EF18, EF1A, EF1E) is exactly the state before or exactly
//! the state after the flow; the card keeps working (the same tap again completes, recovering
//! the interrupted one when it had committed); and no fen is created or lost.

mod support;

use support::{at, Fault, World};
use yitong_terminal::{TapError, TapKind, TapOutcome};

type Flow = fn(&mut World, Fault) -> Result<TapOutcome, TapError>;

fn load(w: &mut World, f: Fault) -> Result<TapOutcome, TapError> {
    w.load(800, at("2026-11-25 12:00:00"), f)
}

fn entry(w: &mut World, f: Fault) -> Result<TapOutcome, TapError> {
    let i = w.gate_index("Xidan");
    w.tap_gate(i, at("2026-11-25 12:00:00"), f)
}

fn exit(w: &mut World, f: Fault) -> Result<TapOutcome, TapError> {
    let i = w.gate_index("Guomao");
    w.tap_gate(i, at("2026-11-25 12:30:00"), f)
}

fn bus(w: &mut World, f: Fault) -> Result<TapOutcome, TapError> {
    w.tap_gate(usize::MAX, at("2026-11-25 12:00:00"), f)
}

/// A world with a loaded card, inside the metro when `entered`.
fn setup(entered: bool) -> World {
    let mut w = World::new();
    w.load(2_000, at("2026-11-25 07:00:00"), Fault::None).unwrap();
    w.tap("Dongdan", at("2026-11-25 08:00:00")).unwrap();
    w.tap("Guomao", at("2026-11-25 08:20:00")).unwrap();
    if entered {
        entry(&mut w, Fault::None).unwrap();
    }
    w
}

fn assert_conserved(w: &mut World) {
    let loaded: i64 = w.records.iter().filter(|r| r.kind == TapKind::Load).map(|r| i64::from(r.amount_fen)).sum();
    let spent: i64 = w.records.iter().filter(|r| r.kind != TapKind::Load).map(|r| i64::from(r.amount_fen)).sum();
    assert_eq!(w.balance(), loaded - spent, "fen created or lost");
    let purchases = w.records.iter().filter(|r| r.kind != TapKind::Load).count();
    let loads = w.records.iter().filter(|r| r.kind == TapKind::Load).count();
    assert_eq!(w.counters(), (loads as u16, purchases as u16), "a commit went unrecorded or was recorded twice");
}

fn tear_every_write(name: &str, entered: bool, flow: Flow, kind: TapKind) {
    tear_every_write_from(name, &|| setup(entered), flow, kind);
}

fn tear_every_write_from(name: &str, setup: &dyn Fn() -> World, flow: Flow, kind: TapKind) {
    let mut clean = setup();
    let before = clean.visible_state();
    flow(&mut clean, Fault::None).unwrap();
    let writes = clean.last_writes;
    let after = clean.visible_state();
    assert_ne!(before, after);
    assert!(writes >= 4, "{name}: a commit takes journal, flag, data and clear writes");

    let mut committed = 0;
    for cut in 0..writes {
        for prefix in [0, 1, 64] {
            let mut w = setup();
            let result = flow(&mut w, Fault::CutAtWrite(cut, prefix));
            assert!(
                matches!(result, Err(TapError::CardLost { debit_in_doubt: true })),
                "{name}: cut {cut}: {result:?}"
            );
            let state = w.visible_state();
            if state == after {
                committed += 1;
            } else {
                assert_eq!(state, before, "{name}: cut at write {cut} (prefix {prefix}) left a mixed state");
            }
            // The card keeps working: the same tap again completes exactly once.
            let retry = flow(&mut w, Fault::None).unwrap();
            assert_eq!(retry.result, yitong_terminal::TapResult::Completed(kind), "{name}: cut {cut}");
            assert_eq!(
                w.records.iter().filter(|r| r.status == yitong_terminal::RecordStatus::Recovered).count(),
                usize::from(state == after)
            );
            assert_conserved(&mut w);
        }
    }
    // Cuts before the commit flag keep the old state; cuts after it the new one.
    assert!(committed > 0 && committed < writes * 3, "{name}: {committed} of {} cuts committed", writes * 3);
}

#[test]
fn load_survives_every_cut() {
    tear_every_write("load", false, load, TapKind::Load);
}

#[test]
fn entry_survives_every_cut() {
    tear_every_write("entry", false, entry, TapKind::Entry);
}

#[test]
fn exit_survives_every_cut() {
    tear_every_write("exit", true, exit, TapKind::Exit);
}

#[test]
fn bus_survives_every_cut() {
    tear_every_write("bus", false, bus, TapKind::Single);
}

/// A bus validator of a city with a transfer discount: a composite purchase updating EF1A's bus
/// record and EF1E in the same commit.
#[test]
fn bus_with_transfer_record_survives_every_cut() {
    let setup = || {
        let mut w = setup(false);
        let shanghai = std::sync::Arc::new(yitong_fare::City::builtin("shanghai").unwrap());
        let route = yitong_profile::files::StationId { line: 71, station: 0 };
        w.bus = support::gate(&shanghai, yitong_terminal::GateMode::Bus, route, "", 0xB1);
        w
    };
    tear_every_write_from("bus with transfer record", &setup, bus, TapKind::Single);
}
