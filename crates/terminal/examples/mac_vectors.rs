//! Writes MAC/TAC test vectors for an independent checker (`tools/check_mac_vectors.py`).
//!
//! Personalizes cards with random master keys (DES and SM4 in turn), runs loads, bus purchases
//! (type `06`) and metro entries and exits (composite purchases, type `09`) through the real
//! top-up terminal, gates and in-process card, and prints one JSON line per transaction with
//! the master keys and every value the checker needs to recompute MAC1, MAC2 and TAC. The values
//! (the algorithm ID included) are taken from the APDUs as they crossed the channel, not from
//! the crates' own MAC code.
//!
//! ```text
//! cargo run -q -p yitong-terminal --features in-process --example mac_vectors -- --count 200 --seed 7
//! ```

use std::error::Error;
use std::sync::Arc;

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use yitong_card::{Card, CardSpec, MemStore};
use yitong_crypto::{Algorithm, MasterKeys};
use yitong_fare::City;
use yitong_profile::files::{IssuerData, StationId};
use yitong_profile::DateTime;
use yitong_terminal::{
    run_load, run_tap, CardChannel, Direction, Gate, GateConfig, GateMode, GateState, InProcessChannel, IssuerKeys,
    SoftwareLoadHost, SoftwarePsam, TapOutcome, TapResult, TopUpTerminal,
};

type Channel = InProcessChannel<MemStore, ChaCha20Rng>;
type Failure = Box<dyn Error>;

/// Transactions one card makes at most, so that the vectors span many keys.
const CARD_TRANSACTIONS_MAX: u32 = 12;
/// Below 30 yuan the card is loaded first, so that every tap completes: Beijing's entry needs
/// 3 yuan, and no exit fare (airport lines included) is higher.
const BALANCE_LOW_FEN: i64 = 3_000;
/// The card's balance limit (the personalization default).
const BALANCE_LIMIT_FEN: i64 = yitong_card::BALANCE_LIMIT_FEN_DEFAULT as i64;
const KEY_VERSION: u8 = 1;
const SELECT_TUNION: &str = "00A4040008A000000632010105";

fn main() {
    if let Err(e) = run() {
        eprintln!("mac_vectors: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Failure> {
    let (count, seed) = arguments()?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let beijing = Arc::new(City::builtin("beijing").map_err(|e| format!("the Beijing city profile: {e:?}"))?);
    let stations = metro_stations(&beijing)?;
    let mut written = 0u32;
    let mut cards = 0u32;
    while written < count {
        let algorithm = if cards % 2 == 0 { Algorithm::Des } else { Algorithm::Sm4 };
        cards += 1;
        let mut card = TestCard::new(&mut rng, algorithm, &beijing, &stations)?;
        let transactions = 1 + rng.next_u32() % CARD_TRANSACTIONS_MAX;
        for _ in 0..transactions.min(count - written) {
            let vector = card.next_transaction(&mut rng)?;
            println!("{vector}");
            written += 1;
        }
    }
    Ok(())
}

fn arguments() -> Result<(u32, u64), Failure> {
    let usage = "usage: mac_vectors [--count N] [--seed N]";
    let (mut count, mut seed) = (200u32, 1u64);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value; {usage}"))?;
        match flag.as_str() {
            "--count" => count = value.parse().map_err(|e| format!("--count {value:?}: {e}"))?,
            "--seed" => seed = value.parse().map_err(|e| format!("--seed {value:?}: {e}"))?,
            _ => return Err(format!("unknown argument {flag:?}; {usage}").into()),
        }
    }
    Ok((count, seed))
}

fn metro_stations(city: &City) -> Result<Vec<(StationId, String)>, Failure> {
    let network = city.engine().ok_or("Beijing has no metro network")?.network();
    network
        .stations()
        .iter()
        .map(|s| yitong_terminal::city::station_id(city, &s.name).map_err(|e| format!("{}: {e:?}", s.name).into()))
        .collect()
}

fn random_bytes<const N: usize>(rng: &mut ChaCha20Rng) -> [u8; N] {
    let mut bytes = [0u8; N];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// A uniformly random value in `low..=high` (the tiny modulo bias does not matter here).
fn between(rng: &mut ChaCha20Rng, low: u32, high: u32) -> u32 {
    low + rng.next_u32() % (high - low + 1)
}

/// A random terminal transaction number, high bytes included, so that the checker sees the
/// purchase session key take only its low two bytes.
fn random_transaction_number(rng: &mut ChaCha20Rng) -> u32 {
    rng.next_u32() % 0xF000_0000
}

/// One card with its own issuer, keys, terminals and clock.
struct TestCard {
    master: MasterKeys,
    issuer: IssuerData,
    image: Vec<u8>,
    topup: TopUpTerminal,
    bus: Gate,
    metro: Vec<Gate>,
    /// The gate of the open metro trip, if any.
    entered_at: Option<usize>,
    now: DateTime,
}

impl TestCard {
    fn new(
        rng: &mut ChaCha20Rng,
        algorithm: Algorithm,
        city: &Arc<City>,
        stations: &[(StationId, String)],
    ) -> Result<Self, Failure> {
        let master = MasterKeys::new(
            algorithm,
            random_bytes(rng),
            random_bytes(rng),
            random_bytes(rng),
            random_bytes(rng),
            random_bytes(rng),
        );
        let mut issuer_id: [u8; 8] = random_bytes(rng);
        // Bytes 2-3 are the city code; a Beijing card, so that Beijing gates take it.
        issuer_id[2..4].copy_from_slice(&[0x10, 0x00]);
        let issuer = IssuerData {
            issuer_id,
            app_type: 0x02,
            app_version: 0x01,
            serial: random_bytes(rng),
            valid_from: [0x20, 0x26, 0x01, 0x01],
            valid_to: [0x20, 0x30, 0x12, 0x31],
        };
        let keys = IssuerKeys { key_version: KEY_VERSION, master: master.clone() };
        let psam = |rng: &mut ChaCha20Rng| {
            let mut psam = SoftwarePsam::new(random_bytes(rng), random_transaction_number(rng));
            psam.add_issuer(issuer_id, keys.clone());
            psam
        };
        let gate = |rng: &mut ChaCha20Rng, mode, station: StationId, station_name: String| {
            let config = GateConfig {
                city: city.profile().into(),
                mode,
                direction: Direction::Both,
                station,
                station_name,
                hotlist: Default::default(),
            };
            Gate::new(config, Box::new(psam(rng)), Box::new(Arc::clone(city)), GateState::default())
        };
        // Two metro gates at different stations of one line (not every pair of Beijing stations
        // is connected), one bus validator.
        let pair = loop {
            let (a, a_name) = &stations[rng.next_u32() as usize % stations.len()];
            let same_line: Vec<_> =
                stations.iter().filter(|(b, _)| b.line == a.line && b.station != a.station).collect();
            if let Some(&(b, b_name)) = same_line.get(rng.next_u32() as usize % same_line.len().max(1)) {
                break [(*a, a_name.clone()), (*b, b_name.clone())];
            }
        };
        let metro = pair.into_iter().map(|(station, name)| gate(rng, GateMode::Metro, station, name)).collect();
        let bus = gate(rng, GateMode::Bus, StationId { line: 300, station: 1 }, String::new());
        let mut host = SoftwareLoadHost::new();
        host.add_issuer(issuer_id, keys.clone());
        let topup = TopUpTerminal::new(random_bytes(rng), random_transaction_number(rng), "beijing", Box::new(host));
        let now = DateTime::new(
            2026 + (rng.next_u32() % 4) as u16,
            between(rng, 1, 12) as u8,
            between(rng, 1, 28) as u8,
            between(rng, 6, 12) as u8,
            between(rng, 0, 59) as u8,
            between(rng, 0, 59) as u8,
        )?;
        let image = CardSpec::new(issuer, master.clone(), KEY_VERSION).personalize();
        Ok(TestCard { master, issuer, image, topup, bus, metro, entered_at: None, now })
    }

    /// Runs the next transaction the card's state allows and returns its vector.
    fn next_transaction(&mut self, rng: &mut ChaCha20Rng) -> Result<Value, Failure> {
        self.now = self.now.plus_seconds(i64::from(between(rng, 60, 1_800)))?;
        let card = Card::power_on(MemStore::new(self.image.clone()), ChaCha20Rng::from_seed(random_bytes(rng)))
            .map_err(|e| format!("card does not power on: {e:?}"))?;
        let mut channel = InProcessChannel::new(card);
        channel.record_trace();
        let balance = get_balance(&mut channel)?;
        channel.take_trace();
        let now = self.now;
        let (what, outcome) = if let Some(entry) = self.entered_at.take() {
            ("metro exit", run_tap(&mut self.metro[1 - entry], &mut channel, now, &mut |_| Ok(())))
        } else if balance < BALANCE_LOW_FEN || (balance < BALANCE_LIMIT_FEN && rng.next_u32() % 3 == 0) {
            let headroom = u32::try_from(BALANCE_LIMIT_FEN - balance.max(0))?;
            let amount = between(rng, 1, headroom.min(20_000));
            ("load", run_load(&mut self.topup, &mut channel, now, amount, &mut |_| Ok(())))
        } else if rng.next_u32() % 2 == 0 {
            ("bus", run_tap(&mut self.bus, &mut channel, now, &mut |_| Ok(())))
        } else {
            let entry = (rng.next_u32() % 2) as usize;
            self.entered_at = Some(entry);
            ("metro entry", run_tap(&mut self.metro[entry], &mut channel, now, &mut |_| Ok(())))
        };
        let outcome: TapOutcome = outcome.map_err(|e| format!("{what} at {now}: {e}"))?;
        if !matches!(outcome.result, TapResult::Completed(_)) {
            return Err(format!("{what} at {now} did not complete: {:?}", outcome.result).into());
        }
        let trace = channel.take_trace();
        let balance_after = get_balance(&mut channel)?;
        self.image = channel.into_card().into_store().into_bytes();
        let mut vector = from_trace(&trace)?;
        let master = &self.master;
        let keys = [
            ("dlk", *master.load().expose_bytes()),
            ("dpk", *master.purchase().expose_bytes()),
            ("dtk", *master.tac().expose_bytes()),
        ];
        let fields = vector.as_object_mut().ok_or("a vector is an object")?;
        for (name, key) in keys {
            fields.insert(name.into(), hex::encode_upper(key).into());
        }
        fields.insert("issuer_id".into(), hex::encode_upper(self.issuer.issuer_id).into());
        fields.insert("serial".into(), hex::encode_upper(self.issuer.serial).into());
        fields.insert("balance_before".into(), balance.into());
        fields.insert("balance_after".into(), balance_after.into());
        fields.insert("gate".into(), what.into());
        Ok(vector)
    }
}

/// GET BALANCE after selecting the application.
fn get_balance(channel: &mut Channel) -> Result<i64, Failure> {
    expect_ok(&channel.transmit(&hex::decode(SELECT_TUNION)?)?)?;
    let answer = channel.transmit(&hex::decode("805C000204")?)?;
    let data: [u8; 4] = expect_ok(&answer)?.try_into().map_err(|_| "GET BALANCE answered no 4 bytes")?;
    Ok(i64::from(i32::from_be_bytes(data)))
}

/// The data of a `9000` (or `6283`-free) answer.
fn expect_ok(answer: &[u8]) -> Result<&[u8], Failure> {
    match answer.split_last_chunk::<2>() {
        Some((data, [0x90, 0x00])) => Ok(data),
        _ => Err(format!("card answered {}", hex::encode_upper(answer)).into()),
    }
}

/// Reads the transaction from the exchanged APDUs: INITIALIZE (command and answer), then
/// CREDIT FOR LOAD or DEBIT FOR PURCHASE (command and answer).
fn from_trace(trace: &[(Vec<u8>, Vec<u8>)]) -> Result<Value, Failure> {
    let find = |header: &[u8]| {
        trace
            .iter()
            .rev()
            .find(|(command, _)| command.starts_with(header))
            .ok_or_else(|| format!("no {} in the trace", hex::encode_upper(header)))
    };
    let field = |bytes: &[u8], at: usize, len: usize| -> Result<Vec<u8>, Failure> {
        Ok(bytes.get(at..at + len).ok_or("an APDU is shorter than the profile says")?.to_vec())
    };
    let number = |bytes: Vec<u8>| bytes.iter().fold(0u64, |n, &b| n << 8 | u64::from(b));
    let hex = |bytes: Vec<u8>| hex::encode_upper(bytes);
    if let Ok((init, init_answer)) = find(&[0x80, 0x50, 0x00, 0x02]) {
        // INITIALIZE FOR LOAD: key index · amount · terminal ID → balance · online counter ·
        // key version · algorithm · random · MAC1. CREDIT: date · time · MAC2 → TAC.
        let (credit, credit_answer) = find(&[0x80, 0x52])?;
        let answer = expect_ok(init_answer)?;
        return Ok(json!({
            "kind": "load",
            "type": 0x02,
            "amount": number(field(init, 6, 4)?),
            "terminal_id": hex(field(init, 10, 6)?),
            "counter": number(field(answer, 4, 2)?),
            "key_version": number(field(answer, 6, 1)?),
            "algorithm": number(field(answer, 7, 1)?),
            "card_random": hex(field(answer, 8, 4)?),
            "mac1": hex(field(answer, 12, 4)?),
            "date": hex(field(credit, 5, 4)?),
            "time": hex(field(credit, 9, 3)?),
            "mac2": hex(field(credit, 12, 4)?),
            "tac": hex(field(expect_ok(credit_answer)?, 0, 4)?),
        }));
    }
    // INITIALIZE FOR (CAPP) PURCHASE → balance · offline counter · overdraft · key version ·
    // algorithm · random. DEBIT: transaction number · date · time · MAC1 → TAC · MAC2.
    let (init, init_answer) = find(&[0x80, 0x50, 0x01, 0x02]).or_else(|_| find(&[0x80, 0x50, 0x03, 0x02]))?;
    let composite = init[2] == 0x03;
    let (debit, debit_answer) = find(&[0x80, 0x54, 0x01, 0x00])?;
    let answer = expect_ok(init_answer)?;
    let debit_data = expect_ok(debit_answer)?;
    Ok(json!({
        "kind": if composite { "composite purchase" } else { "purchase" },
        "type": if composite { 0x09 } else { 0x06 },
        "amount": number(field(init, 6, 4)?),
        "terminal_id": hex(field(init, 10, 6)?),
        "counter": number(field(answer, 4, 2)?),
        "key_version": number(field(answer, 9, 1)?),
        "algorithm": number(field(answer, 10, 1)?),
        "card_random": hex(field(answer, 11, 4)?),
        "terminal_transaction_number": number(field(debit, 5, 4)?),
        "date": hex(field(debit, 9, 4)?),
        "time": hex(field(debit, 13, 3)?),
        "mac1": hex(field(debit, 16, 4)?),
        "tac": hex(field(debit_data, 0, 4)?),
        "mac2": hex(field(debit_data, 4, 4)?),
    }))
}
