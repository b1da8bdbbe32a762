//! `yitong bench tap`: APDUs and microseconds per metro tap, card and gate in one process.
//!
//! Figures, not a pass/fail test: the DES card is the baseline, and the SM4 card's time is given
//! as a ratio of it, both measured in this run. The card's share of each tap is timed inside the
//! channel, so the rest is the gate and its software PSAM.

use std::time::{Duration, Instant};

use clap::Args;
use yitong_card::{Card, MemStore};
use yitong_crypto::Algorithm;
use yitong_profile::DateTime;
use yitong_terminal::{run_load, run_tap, CardChannel, ChannelError, Gate, InProcessChannel, TapResult, TopUpTerminal};

use crate::cardfile;
use crate::cmd_gate::{build_gate, build_topup, GatePlace};
use crate::keys::KeySet;
use crate::terminals::TerminalEntry;

/// The benchmarks' card: valid through the century.
const BENCH_SERIAL: [u8; 10] = [0x10, 0, 0, 0, 0, 0, 0, 0, 0x99, 0x99];
const BENCH_VALID_FROM: [u8; 4] = [0x20, 0x20, 0x01, 0x01];
const BENCH_VALID_TO: [u8; 4] = [0x20, 0x99, 0x12, 0x31];

#[derive(Args)]
pub struct TapBenchArgs {
    /// Metro trips (an entry and an exit each) per card algorithm.
    #[arg(long, default_value_t = 20_000)]
    pub trips: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Times the card's side of each exchange.
struct TimedChannel<C> {
    inner: C,
    card_time: Duration,
}

impl<C: CardChannel> CardChannel for TimedChannel<C> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let start = Instant::now();
        let r = self.inner.transmit(command);
        self.card_time += start.elapsed();
        r
    }
}

struct Figures {
    taps: u32,
    apdus_entry: u32,
    apdus_exit: u32,
    total: Duration,
    card: Duration,
}

impl Figures {
    fn per_tap_us(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1e6 / f64::from(self.taps)
    }
}

/// The benchmarks' terminals: an entry gate at 西单, an exit gate at 国贸 (6.2 km, 4 yuan on the
/// sample network) and a top-up terminal, all holding `keys`.
fn bench_terminals(keys: &KeySet) -> anyhow::Result<(Gate, Gate, TopUpTerminal)> {
    let city = std::sync::Arc::new(yitong_fare::City::builtin("beijing")?);
    let station = |name: &str| yitong_terminal::city::station_id(&city, name).map(|s| s.0);
    let entry = build_gate(&city, keys, &GatePlace::metro(station("Xidan")?, "西单"), TerminalEntry::default())?;
    let exit = build_gate(&city, keys, &GatePlace::metro(station("Guomao")?, "国贸"), TerminalEntry::default())?;
    Ok((entry, exit, build_topup(keys, TerminalEntry::default())?))
}

fn run(algorithm: Algorithm, trips: u32) -> anyhow::Result<Figures> {
    let keys = KeySet::generate([0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01], algorithm)?;
    let image = keys.card_image(BENCH_SERIAL, BENCH_VALID_FROM, BENCH_VALID_TO)?;
    let card = Card::power_on(MemStore::new(image), cardfile::system_rng()?).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut channel = TimedChannel { inner: InProcessChannel::new(card), card_time: Duration::ZERO };
    let (mut entry_gate, mut exit_gate, mut topup) = bench_terminals(&keys)?;

    let mut now = DateTime::parse("2026-11-25 06:00:00").expect("valid time");
    run_load(&mut topup, &mut channel.inner, now, 10_000, &mut |_| Ok(()))?;
    let mut spent_fen = 0u32;
    let mut figures = Figures { taps: 0, apdus_entry: 0, apdus_exit: 0, total: Duration::ZERO, card: Duration::ZERO };
    for _ in 0..trips {
        now = now.plus_seconds(60)?;
        for (gate, is_entry) in [(&mut entry_gate, true), (&mut exit_gate, false)] {
            let card_before = channel.card_time;
            let start = Instant::now();
            let outcome = run_tap(gate, &mut channel, now, &mut |_| Ok(()))?;
            figures.total += start.elapsed();
            figures.card += channel.card_time - card_before;
            figures.taps += 1;
            if let TapResult::Refused(why) = &outcome.result {
                anyhow::bail!("bench tap refused: {why}");
            }
            if is_entry {
                figures.apdus_entry = outcome.apdus;
            } else {
                figures.apdus_exit = outcome.apdus;
            }
            spent_fen += outcome.amount_fen;
            gate.drain_records();
        }
        // Top up what was spent, outside the timed taps.
        if spent_fen >= 5_000 {
            run_load(&mut topup, &mut channel.inner, now, spent_fen, &mut |_| Ok(()))?;
            topup.drain_records();
            spent_fen = 0;
        }
    }
    Ok(figures)
}

pub fn tap(args: &TapBenchArgs) -> anyhow::Result<()> {
    if args.trips == 0 {
        anyhow::bail!("--trips: must be at least 1");
    }
    if cfg!(debug_assertions) {
        eprintln!("note: a debug build; run `cargo run --release -p yitong-cli -- bench tap` for real figures");
    }
    let des = run(Algorithm::Des, args.trips)?;
    let sm4 = run(Algorithm::Sm4, args.trips)?;
    let goal_us = 50.0;
    if args.json {
        let figures = |f: &Figures| {
            serde_json::json!({
                "us_per_tap": f.per_tap_us(f.total),
                "card_us_per_tap": f.per_tap_us(f.card),
                "gate_us_per_tap": f.per_tap_us(f.total) - f.per_tap_us(f.card),
            })
        };
        let v = serde_json::json!({
            "trips": args.trips,
            "apdus_per_entry": des.apdus_entry,
            "apdus_per_exit": des.apdus_exit,
            "psam_apdus_per_tap": 0,
            "des": figures(&des),
            "sm4": figures(&sm4),
            "sm4_over_des": sm4.total.as_secs_f64() / des.total.as_secs_f64(),
            "goal_us_per_tap": goal_us,
            "release_build": !cfg!(debug_assertions),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("metro taps, card and gate in one process ({} trips per algorithm)", args.trips);
    println!(
        "  card APDUs per tap    entry {}, exit {}   (PSAM APDUs: 0, software module)",
        des.apdus_entry, des.apdus_exit
    );
    for (name, f) in [("DES (baseline)", &des), ("SM4", &sm4)] {
        let total = f.per_tap_us(f.total);
        let card = f.per_tap_us(f.card);
        println!(
            "  {name:<15} {total:>7.2} µs/tap   card {card:>6.2} µs ({:>4.1}%)   gate+PSAM {:>6.2} µs   {:.2}× the {goal_us} µs goal",
            100.0 * card / total,
            total - card,
            total / goal_us
        );
    }
    println!("  SM4 / DES             {:.2}×", sm4.total.as_secs_f64() / des.total.as_secs_f64());
    Ok(())
}

/// Arguments of `yitong bench pcsc`.
#[derive(Args)]
pub struct PcscBenchArgs {
    /// The vpcd reader to use.
    #[arg(long, default_value = "Virtual PCD 00 00")]
    pub reader: String,
    /// That reader's vpcd port.
    #[arg(long, default_value_t = yitong_reader::vpcd::PORT_DEFAULT)]
    pub port: u16,
    /// GET BALANCE round trips to time.
    #[arg(long, default_value_t = 2_000)]
    pub apdus: u32,
    /// Metro trips (entry and exit) to time.
    #[arg(long, default_value_t = 100)]
    pub trips: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[cfg(not(feature = "pcsc"))]
pub fn pcsc(_: &PcscBenchArgs) -> anyhow::Result<()> {
    anyhow::bail!(crate::cmd_reader::NO_PCSC)
}

/// `yitong bench pcsc`: a card served to vpcd from a thread of this process, reached through
/// pcscd like any reader: APDU round trips, then entry+exit taps.
#[cfg(feature = "pcsc")]
pub fn pcsc(args: &PcscBenchArgs) -> anyhow::Result<()> {
    use yitong_reader::pcsc_channel::Readers;
    use yitong_reader::vpcd::{self, VirtualCard};

    if args.apdus == 0 || !(1..=200).contains(&args.trips) {
        anyhow::bail!("--apdus: at least 1; --trips: 1 to 200 (the card's balance limit bounds the loads)");
    }
    let keys = KeySet::generate([0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01], Algorithm::Des)?;
    let image = keys.card_image(BENCH_SERIAL, BENCH_VALID_FROM, BENCH_VALID_TO)?;
    let card = Card::power_on(MemStore::new(image), cardfile::system_rng()?).map_err(|e| anyhow::anyhow!("{e}"))?;
    let port = args.port;
    std::thread::spawn(move || {
        let mut virtual_card = VirtualCard::new(card, false);
        vpcd::serve(&mut virtual_card, "127.0.0.1", port, &mut |_| Ok(()), &mut |_| {}, &|| true)
    });
    let readers = Readers::establish()?;
    let name = readers.resolve(&args.reader)?;
    let mut channel = readers.wait_for_card(&name, std::time::Duration::from_secs(10))?;

    channel.transmit(&yitong_profile::apdu::select_by_name(&yitong_profile::apdu::AID_TUNION))?;
    let mut round_trips = Vec::with_capacity(args.apdus as usize);
    for _ in 0..args.apdus {
        let start = Instant::now();
        channel.transmit(&yitong_profile::apdu::get_balance())?;
        round_trips.push(start.elapsed());
    }
    round_trips.sort();
    let median = round_trips[round_trips.len() / 2];
    let p99 = round_trips[(round_trips.len() * 99 / 100).min(round_trips.len() - 1)];

    let (mut entry_gate, mut exit_gate, mut topup) = bench_terminals(&keys)?;
    let mut now = DateTime::parse("2026-11-25 06:00:00").expect("valid time");
    run_load(&mut topup, &mut channel, now, args.trips * 400 + 300, &mut |_| Ok(()))?;
    let mut trip_times = Vec::with_capacity(args.trips as usize);
    for _ in 0..args.trips {
        now = now.plus_seconds(60)?;
        let start = Instant::now();
        for gate in [&mut entry_gate, &mut exit_gate] {
            let outcome = run_tap(gate, &mut channel, now, &mut |_| Ok(()))?;
            if let TapResult::Refused(why) = outcome.result {
                anyhow::bail!("bench tap refused: {why}");
            }
        }
        trip_times.push(start.elapsed());
    }
    trip_times.sort();
    let trip_median = trip_times[trip_times.len() / 2];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    if args.json {
        let v = serde_json::json!({
            "reader": channel.reader(),
            "apdus": args.apdus,
            "apdu_median_us": us(median),
            "apdu_p99_us": us(p99),
            "trips": args.trips,
            "entry_exit_median_us": us(trip_median),
            "goal_apdu_median_us": 200.0,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("through pcscd and vpcd on {} ({} APDUs, {} trips)", channel.reader(), args.apdus, args.trips);
        println!(
            "  APDU round trip   median {:>8.1} µs   p99 {:>8.1} µs   ({:.2}× the 200 µs goal)",
            us(median),
            us(p99),
            us(median) / 200.0
        );
        println!("  entry + exit      median {:>8.1} µs   (12 card APDUs)", us(trip_median));
    }
    Ok(())
}
