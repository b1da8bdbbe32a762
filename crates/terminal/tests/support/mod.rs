//! A card, gates at every sample station, a bus validator and a top-up machine in one process:
//! the card keeps its image between taps, as a phone's secure element does.
#![allow(dead_code)]

use std::sync::Arc;
use yitong_card::testing::CountingRng;
use yitong_card::{Card, CardSpec, MasterKeys, MemStore, TearingStore};
use yitong_crypto::Algorithm;
use yitong_profile::files::{IssuerData, StationId};
use yitong_profile::DateTime;

use yitong_fare::City;
use yitong_terminal::{
    run_load, run_tap, Gate, GateConfig, GateMode, GateState, InProcessChannel, IssuerKeys, SoftwareLoadHost,
    SoftwarePsam, TapError, TapOutcome, TapRecord, TopUpTerminal,
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
}

pub struct World {
    pub city: Arc<City>,
    /// Every station of the sample network, in network order, with its gate in `gates`.
    pub stations: Vec<(StationId, String)>,
    pub gates: Vec<Gate>,
    pub bus: Gate,
    pub topup: TopUpTerminal,
    pub card: Vec<u8>,
    pub records: Vec<TapRecord>,
    randoms: u32,
    /// Card writes of the last exchange.
    pub last_writes: usize,
}

pub fn psam(n: u8) -> SoftwarePsam {
    let mut psam = SoftwarePsam::new([0x10, 0x00, 0x00, 0x00, 0x00, n], 1);
    psam.add_issuer(ISSUER_ID, IssuerKeys { key_version: 1, master: master() });
    psam
}

pub fn gate(city: &Arc<City>, mode: GateMode, station: StationId, name: &str, n: u8) -> Gate {
    let config = GateConfig {
        city: city.profile().into(),
        mode,
        station,
        station_name: name.into(),
        hotlist: Default::default(),
    };
    Gate::new(config, Box::new(psam(n)), Box::new(Arc::clone(city)), GateState::default())
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
        let mut host = SoftwareLoadHost::new();
        host.add_issuer(ISSUER_ID, IssuerKeys { key_version: 1, master: master() });
        let topup = TopUpTerminal::new([0x20, 0, 0, 0, 0, 1], 1, "beijing", Box::new(host));
        World { city, stations, gates, bus, topup, card, records: Vec::new(), randoms: 0x1000, last_writes: 0 }
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
        let store = TearingStore::new(MemStore::new(self.card.clone()), cut.map(|c| c.0), cut.map_or(0, |c| c.1));
        self.randoms += 0x100;
        let card = Card::power_on(store, CountingRng(self.randoms)).expect("card powers on");
        let mut channel = InProcessChannel::new(card);
        if fault == Fault::DropDebitAnswer {
            channel.drop_next_debit_answer();
        }
        let result = f(self, &mut channel);
        let store = channel.into_card().into_store();
        self.last_writes = store.writes_done();
        self.card = store.into_inner().into_bytes();
        result
    }

    pub fn tap_gate(&mut self, gate: usize, now: DateTime, fault: Fault) -> Result<TapOutcome, TapError> {
        self.with_channel(fault, |w, ch| {
            let g = if gate == usize::MAX { &mut w.bus } else { &mut w.gates[gate] };
            let result = run_tap(g, ch, now, &mut |_| Ok(()));
            w.records.extend(g.drain_records());
            result
        })
    }

    pub fn tap(&mut self, station: &str, now: DateTime) -> Result<TapOutcome, TapError> {
        let i = self.gate_index(station);
        self.tap_gate(i, now, Fault::None)
    }

    pub fn bus(&mut self, now: DateTime) -> Result<TapOutcome, TapError> {
        self.tap_gate(usize::MAX, now, Fault::None)
    }

    pub fn load(&mut self, amount_fen: u32, now: DateTime, fault: Fault) -> Result<TapOutcome, TapError> {
        self.with_channel(fault, |w, ch| {
            let outcome = run_load(&mut w.topup, ch, now, amount_fen, &mut |_| Ok(()));
            w.records.extend(w.topup.drain_records());
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
