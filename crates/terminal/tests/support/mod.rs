//! A card, gates at every sample station, a bus validator and a top-up machine in one process:
//! the card keeps its image between taps, as a phone's secure element does.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use yitong_card::testing::CountingRng;
use yitong_card::{Card, CardSpec, MasterKeys, MemStore, TearingStore};
use yitong_crypto::Algorithm;
use yitong_profile::files::{IssuerData, StationId};
use yitong_profile::DateTime;

use yitong_fare::City;
use yitong_terminal::{
    run_load, run_tap, Gate, GateConfig, GateMode, GateState, InProcessChannel, IssuerKeys, RecordStatus,
    SoftwareLoadHost, SoftwarePsam, TapError, TapOutcome, TapRecord, TopUpTerminal,
};

pub const ISSUER_ID: [u8; 8] = [0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01];
pub const SERIAL: [u8; 10] = [0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56];

pub fn master() -> MasterKeys {
    MasterKeys::new(Algorithm::Des, [0x4C; 16], [0x50; 16], [0x54; 16], [0x4D; 16])
}

pub fn issuer() -> IssuerData {
    IssuerData {
        issuer_id: ISSUER_ID,
        app_type: 0x02,
        app_version: 0x01,
        serial: SERIAL,
        valid_from: [0x20, 0x26, 0x01, 0x01],
        valid_to: [0x20, 0x30, 0x12, 0x31],
    }
}

pub fn card_image(issuer: IssuerData) -> Vec<u8> {
    CardSpec::new(issuer, master(), 1).personalize()
}

pub fn at(s: &str) -> DateTime {
    DateTime::parse(s).unwrap()
}

pub type Channel = InProcessChannel<TearingStore, CountingRng>;

/// How the next exchange with the card goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The card commits DEBIT, its answer is lost.
    DropDebitAnswer,
    /// Power is cut at this write (0-based), the write landing this many bytes.
    CutAtWrite(usize, usize),
    /// The terminal cannot save its state before the money command.
    PersistFails,
}

pub struct World {
    pub city: Arc<City>,
    /// Every station of the sample network, in network order, with its gate in `gates`.
    pub stations: Vec<(StationId, String)>,
    pub gates: Vec<Gate>,
    pub bus: Gate,
    /// Top-up terminals: `load` uses the first.
    pub topups: Vec<TopUpTerminal>,
    /// What each gate last saved (state, next transaction number), for restarts.
    pub saved: Vec<(GateState, u32)>,
    pub card: Vec<u8>,
    pub records: Vec<TapRecord>,
    randoms: u32,
    /// Card writes of the last exchange.
    pub last_writes: usize,
}

pub fn psam(n: u8) -> SoftwarePsam {
    psam_from(n, 1)
}

pub fn psam_from(n: u8, next_transaction_number: u32) -> SoftwarePsam {
    let mut psam = SoftwarePsam::new([0x10, 0x00, 0x00, 0x00, 0x00, n], next_transaction_number);
    psam.add_issuer(ISSUER_ID, IssuerKeys { key_version: 1, master: master() });
    psam
}

pub fn gate(city: &Arc<City>, mode: GateMode, station: StationId, name: &str, n: u8) -> Gate {
    restarted_gate(city, mode, station, name, n, (GateState::default(), 1))
}

/// A gate restarting from what it saved.
pub fn restarted_gate(
    city: &Arc<City>,
    mode: GateMode,
    station: StationId,
    name: &str,
    n: u8,
    saved: (GateState, u32),
) -> Gate {
    let config = GateConfig {
        city: city.profile().into(),
        mode,
        direction: Default::default(),
        station,
        station_name: name.into(),
        hotlist: Default::default(),
    };
    Gate::new(config, Box::new(psam_from(n, saved.1)), Box::new(Arc::clone(city)), saved.0)
}

pub fn topup(n: u8) -> TopUpTerminal {
    let mut host = SoftwareLoadHost::new();
    host.add_issuer(ISSUER_ID, IssuerKeys { key_version: 1, master: master() });
    TopUpTerminal::new([0x20, 0, 0, 0, 0, n], 1, "beijing", Box::new(host))
}

impl World {
    pub fn new() -> Self {
        Self::with_card(card_image(issuer()))
    }

    pub fn with_card(card: Vec<u8>) -> Self {
        let city = Arc::new(City::builtin("beijing").unwrap());
        let network = city.engine().unwrap().network();
        let stations: Vec<(StationId, String)> =
            network.stations().iter().map(|s| yitong_terminal::city::station_id(&city, &s.name).unwrap()).collect();
        let gates =
            stations.iter().zip(1u8..).map(|((id, name), n)| gate(&city, GateMode::Metro, *id, name, n)).collect();
        let bus = gate(&city, GateMode::Bus, StationId { line: 300, station: 1 }, "", 0xB0);
        let saved = vec![(GateState::default(), 1); stations.len()];
        let topups = vec![topup(1), topup(2)];
        World { city, stations, gates, bus, topups, saved, card, records: Vec::new(), randoms: 0x1000, last_writes: 0 }
    }

    pub fn gate_index(&self, name: &str) -> usize {
        self.city.engine().unwrap().network().lookup(name).unwrap()
    }

    /// Powers the card on from its image, runs `f`, keeps the image the run left.
    pub fn with_channel<T>(&mut self, fault: Fault, f: impl FnOnce(&mut World, &mut Channel) -> T) -> T {
        let cut = match fault {
            Fault::CutAtWrite(n, prefix) => Some((n, prefix)),
            _ => None,
        };
        let tearing =
            |image: Vec<u8>| TearingStore::new(MemStore::new(image), cut.map(|c| c.0), cut.map_or(0, |c| c.1));
        self.randoms += 0x100;
        let card = Card::power_on(tearing(self.card.clone()), CountingRng(self.randoms)).or_else(|_| {
            // Power was cut while the card finished an earlier commit: the next field finishes it,
            // and the cut counts from there.
            let recovered = Card::power_on(MemStore::new(self.card.clone()), CountingRng(self.randoms))
                .expect("card powers on")
                .into_store()
                .into_bytes();
            Card::power_on(tearing(recovered), CountingRng(self.randoms))
        });
        let card = card.expect("card powers on");
        let mut channel = InProcessChannel::new(card);
        if fault == Fault::DropDebitAnswer {
            channel.drop_next_money_answer();
        }
        let result = f(self, &mut channel);
        let store = channel.into_card().into_store();
        self.last_writes = store.writes_done();
        self.card = store.into_inner().into_bytes();
        result
    }

    /// Taps gate `gate` (`usize::MAX`: the bus). A metro gate saves its state before DEBIT and
    /// after the tap, as a real one does.
    pub fn tap_gate(&mut self, gate: usize, now: DateTime, fault: Fault) -> Result<TapOutcome, TapError> {
        self.with_channel(fault, |w, ch| {
            let World { bus, gates, saved, records, .. } = w;
            let (g, mut slot) =
                if gate == usize::MAX { (bus, None) } else { (&mut gates[gate], Some(&mut saved[gate])) };
            let result = run_tap(g, ch, now, &mut |g| {
                if fault == Fault::PersistFails {
                    return Err("disk full".into());
                }
                if let Some(slot) = slot.as_deref_mut() {
                    *slot = (g.state().clone(), g.security_module().next_transaction_number());
                }
                Ok(())
            });
            records.extend(g.drain_records());
            if let Some(slot) = slot {
                *slot = (g.state().clone(), g.security_module().next_transaction_number());
            }
            result
        })
    }

    /// Gate `gate` restarts from what it saved last.
    pub fn restart_gate(&mut self, gate: usize) {
        let (id, name) = self.stations[gate].clone();
        let n = u8::try_from(gate + 1).expect("fewer than 255 sample stations");
        self.gates[gate] = restarted_gate(&self.city, GateMode::Metro, id, &name, n, self.saved[gate].clone());
    }

    /// Gate `gate` restarts with a changed configuration.
    pub fn reconfigure(&mut self, gate: usize, change: impl FnOnce(&mut GateConfig)) {
        let mut config = self.gates[gate].config().clone();
        change(&mut config);
        let n = u8::try_from(gate + 1).expect("fewer than 255 sample stations");
        let (state, ttn) = self.saved[gate].clone();
        self.gates[gate] = Gate::new(config, Box::new(psam_from(n, ttn)), Box::new(Arc::clone(&self.city)), state);
    }

    /// Taps `gate`, a gate of another city that shares nothing with this world but the card.
    pub fn tap_other(&mut self, gate: &mut Gate, now: DateTime) -> Result<TapOutcome, TapError> {
        self.with_channel(Fault::None, |w, ch| {
            let result = run_tap(gate, ch, now, &mut |_| Ok(()));
            w.records.extend(gate.drain_records());
            result
        })
    }

    /// Gate `gate` crashes after a tap, before it saved: what the tap changed is lost but for
    /// the state saved before DEBIT.
    pub fn tap_and_crash(&mut self, gate: usize, now: DateTime, fault: Fault) -> Result<TapOutcome, TapError> {
        let before = self.records.len();
        let result = self.with_channel(fault, |w, ch| {
            let World { gates, saved, .. } = w;
            let slot = &mut saved[gate];
            run_tap(&mut gates[gate], ch, now, &mut |g| {
                *slot = (g.state().clone(), g.security_module().next_transaction_number());
                Ok(())
            })
        });
        assert_eq!(self.records.len(), before);
        self.restart_gate(gate);
        result
    }

    pub fn tap(&mut self, station: &str, now: DateTime) -> Result<TapOutcome, TapError> {
        let i = self.gate_index(station);
        self.tap_gate(i, now, Fault::None)
    }

    pub fn bus(&mut self, now: DateTime) -> Result<TapOutcome, TapError> {
        self.tap_gate(usize::MAX, now, Fault::None)
    }

    pub fn load(&mut self, amount_fen: u32, now: DateTime, fault: Fault) -> Result<TapOutcome, TapError> {
        self.load_at(0, amount_fen, now, fault)
    }

    /// Loads at top-up terminal `terminal`.
    pub fn load_at(
        &mut self,
        terminal: usize,
        amount_fen: u32,
        now: DateTime,
        fault: Fault,
    ) -> Result<TapOutcome, TapError> {
        self.with_channel(fault, |w, ch| {
            let t = &mut w.topups[terminal];
            let outcome = run_load(t, ch, now, amount_fen, &mut |_| {
                if fault == Fault::PersistFails {
                    Err("disk full".into())
                } else {
                    Ok(())
                }
            });
            w.records.extend(t.drain_records());
            outcome
        })
    }

    /// Sends raw APDUs to the card (after selecting it) and returns the answers.
    pub fn read(&mut self, apdus: &[&str]) -> Vec<Vec<u8>> {
        self.with_channel(Fault::None, |_, ch| {
            use yitong_terminal::CardChannel;
            ch.transmit(&hex::decode("00A4040008A000000632010105").unwrap()).unwrap();
            apdus.iter().map(|a| ch.transmit(&hex::decode(a).unwrap()).unwrap()).collect()
        })
    }

    pub fn balance(&mut self) -> i64 {
        let r = &self.read(&["805C000204"])[0];
        i64::from(i32::from_be_bytes(r[..4].try_into().unwrap()))
    }

    /// (online counter, offline counter), read through INITIALIZE with amount 0, which commits
    /// nothing.
    pub fn counters(&mut self) -> (u16, u16) {
        let r = self.read(&["805000020B0100000000000000000000", "805001020B0100000000000000000000"]);
        (u16::from_be_bytes([r[0][4], r[0][5]]), u16::from_be_bytes([r[1][4], r[1][5]]))
    }

    /// Everything a reader can see, but card randoms and MACs.
    pub fn visible_state(&mut self) -> Vec<Vec<u8>> {
        let mut apdus: Vec<String> = vec!["805C000204".into()];
        apdus.extend((1..=10).map(|n| format!("00B2{n:02X}C417")));
        apdus.extend((1..=3).map(|n| format!("00B2{n:02X}D480")));
        apdus.extend((1..=30).map(|n| format!("00B2{n:02X}F430")));
        let refs: Vec<&str> = apdus.iter().map(String::as_str).collect();
        let mut state = self.read(&refs);
        let (online, offline) = self.counters();
        state.push([online.to_be_bytes(), offline.to_be_bytes()].concat());
        state
    }
}

/// The back office's settlement of one card's records (the rule the back-office issue builds,
/// simplified): a confirmed or recovered record of a counter voids unconfirmed ones of that
/// counter; an unconfirmed record past the card's counter never committed; of several
/// unconfirmed records of one counter, the one that closes a gap in the card's balances stands
/// (when none does, they move no money: the first stands).
pub fn settle(records: &[TapRecord], online: u16, offline: u16) -> Vec<TapRecord> {
    let key = |r: &TapRecord| (r.kind.is_load(), r.counter);
    let proven: BTreeSet<_> = records.iter().filter(|r| r.status != RecordStatus::Unconfirmed).map(key).collect();
    let candidates: Vec<&TapRecord> = records
        .iter()
        .filter(|r| r.status != RecordStatus::Unconfirmed || !proven.contains(&key(r)))
        .filter(|r| r.counter <= if r.kind.is_load() { online } else { offline })
        .collect();
    let mut per_counter: BTreeMap<(bool, u16), Vec<&TapRecord>> = BTreeMap::new();
    for r in &candidates {
        per_counter.entry(key(r)).or_default().push(r);
    }
    let mut fixed: Vec<&TapRecord> = candidates.iter().copied().filter(|r| per_counter[&key(r)].len() == 1).collect();
    fixed.sort_by_key(|r| r.at);
    let closes_gap = |r: &TapRecord| {
        let before = fixed.iter().rev().find(|f| f.at < r.at).map_or(0, |f| f.balance_after_fen);
        let after = fixed.iter().find(|f| f.at > r.at).map(|f| f.balance_before_fen);
        after.is_some_and(|a| a != before) && r.balance_before_fen == before && Some(r.balance_after_fen) == after
    };
    let mut settled: Vec<TapRecord> = fixed.iter().map(|r| (*r).clone()).collect();
    for group in per_counter.values().filter(|g| g.len() > 1) {
        let chosen = group.iter().find(|r| closes_gap(r)).unwrap_or(&group[0]);
        settled.push((*chosen).clone());
    }
    settled
}
