//! The day `yitong bench clearing` uploads: riders of several cities' cards loading at ticket
//! offices, entering and leaving metro stations and riding buses, some in another city's network
//! (T-Union), every record signed with the TAC its card would make (the issuer's DTK diversified
//! for the card, as the card's personalization holds it). Deterministic from a seed.
//!
//! A few taps are torn, as gates meet them: 1 in 100 exits committed on the card but their answer
//! lost (an `unconfirmed` record the card's next purchase settles as charged), 1 in 200 not
//! committed (an `unconfirmed` record; the rider taps again at the next gate, which reuses the
//! counter and so voids it). The generator keeps each card's true balance: what the back office's
//! shadows must come to.

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use yitong_clearing::batch::{Batch, BatchHeader};
use yitong_crypto::SessionKey;
use yitong_platform::cities::City;
use yitong_platform::issuer_keys::IssuerKeyring;
use yitong_profile::apdu::transaction_type;
use yitong_profile::DateTime;
use yitong_record::{card_tac, RecordStatus, TapKind, TapRecord};

/// Stations of each city's (synthetic) network, and bus routes.
const STATIONS: u32 = 80;
const ROUTES: u32 = 40;
/// Gates per station.
const GATES: u32 = 4;
/// A card is loaded with 50 yuan when it holds less than 10.
const LOAD_FEN: u32 = 5_000;
const LOW_FEN: i64 = 1_000;
const BUS_FARE_FEN: u32 = 200;

/// The day and what it must come to.
pub struct Day {
    /// Every gate's uploads, in the order they reach the back office (by their first tap's time).
    pub batches: Vec<Batch>,
    pub records: usize,
    pub cards: usize,
    /// Cards of one city's issuer used in another's network.
    pub visiting_cards: usize,
    /// The cards' balances before the day and at its end, added up.
    pub initial_balances_fen: i64,
    pub final_balances_fen: i64,
    /// Money loaded, and purchases the cards committed.
    pub loaded_fen: i64,
    pub purchased_fen: i64,
    /// Torn taps: committed (to be charged) and not (to be voided).
    pub torn_committed: usize,
    pub torn_voided: usize,
}

/// One tap before its gate numbers it and its card signs it.
struct Draft {
    record: TapRecord,
    /// The card's TAC key, `None` for an unconfirmed record (its proof lost).
    tac_key: Option<usize>,
}

struct Rider {
    city: usize,
    serial: [u8; 10],
    issuer: usize,
    tac_key: usize,
    balance: i64,
    online: u16,
    offline: u16,
}

fn below(rng: &mut ChaCha8Rng, n: u32) -> u32 {
    rng.next_u32() % n.max(1)
}

fn chance(rng: &mut ChaCha8Rng, one_in: u32) -> bool {
    below(rng, one_in) == 0
}

/// A popular station more often: the product of two uniform draws leans to low numbers.
fn station(rng: &mut ChaCha8Rng) -> u32 {
    (u64::from(below(rng, STATIONS)) * u64::from(below(rng, STATIONS)) / u64::from(STATIONS)) as u32 + 1
}

/// Generates about `taps` records of `cities` (their issuers' keys in `keyring`) on 2026-11-25,
/// in batches of at most `batch_records` per gate upload.
pub fn generate(
    cities: &[&City],
    keyring: &IssuerKeyring,
    taps: usize,
    batch_records: usize,
    seed: u64,
) -> anyhow::Result<Day> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let day = DateTime::new(2026, 11, 25, 0, 0, 0)?;
    let mut keys: Vec<SessionKey> = Vec::new();
    let mut drafts: Vec<Draft> = Vec::with_capacity(taps + taps / 8);
    let mut summary = Day {
        batches: Vec::new(),
        records: 0,
        cards: 0,
        visiting_cards: 0,
        initial_balances_fen: 0,
        final_balances_fen: 0,
        loaded_fen: 0,
        purchased_fen: 0,
        torn_committed: 0,
        torn_voided: 0,
    };
    while drafts.len() < taps {
        let issuer = below(&mut rng, cities.len() as u32) as usize;
        // One card in twelve rides in another city's network.
        let visiting = cities.len() > 1 && chance(&mut rng, 12);
        let city = if visiting {
            (issuer + 1 + below(&mut rng, cities.len() as u32 - 1) as usize) % cities.len()
        } else {
            issuer
        };
        let number = summary.cards as u64;
        let mut serial = [0u8; 10];
        serial[..2].copy_from_slice(&cities[issuer].city_code().to_be_bytes());
        serial[2..].copy_from_slice(&number.to_be_bytes());
        let master = keyring
            .for_issuing(cities[issuer])
            .ok_or_else(|| anyhow::anyhow!("no keys of {}", cities[issuer].name()))?;
        keys.push(master.master.tac().card_tac_key(cities[issuer].issuer_id(), yitong_profile::files::asn8(&serial)));
        let mut rider = Rider {
            city,
            serial,
            issuer,
            tac_key: keys.len() - 1,
            // Its history predates the day: any counters and balance.
            balance: i64::from(below(&mut rng, 8_000)),
            online: below(&mut rng, 200) as u16,
            offline: below(&mut rng, 2_000) as u16,
        };
        summary.cards += 1;
        summary.initial_balances_fen += rider.balance;
        summary.visiting_cards += usize::from(visiting);
        ride_a_day(&mut rng, cities, &day, &mut rider, &mut drafts, &mut summary)?;
        summary.final_balances_fen += rider.balance;
    }
    summary.records = drafts.len();
    summary.batches = upload(cities, drafts, &keys, batch_records)?;
    Ok(summary)
}

/// A rider's day: a morning and an evening trip, sometimes one at midday; metro or bus; a load
/// before a trip when the card runs low.
fn ride_a_day(
    rng: &mut ChaCha8Rng,
    cities: &[&City],
    day: &DateTime,
    rider: &mut Rider,
    drafts: &mut Vec<Draft>,
    summary: &mut Day,
) -> anyhow::Result<()> {
    let trips = 2 + usize::from(chance(rng, 4));
    let starts = [7 * 3_600 + below(rng, 9_000), 12 * 3_600 + below(rng, 3_600), 17 * 3_600 + below(rng, 9_000)];
    for trip in 0..trips {
        let start = i64::from(if trips == 2 && trip == 1 { starts[2] } else { starts[trip] });
        let last = trip + 1 == trips;
        let from = station(rng);
        if rider.balance < LOW_FEN {
            // At a ticket office some time before (a load just before the trip leaves a torn exit
            // before it undecided: its stamp is within the clocks' tolerance of the next tap).
            let at = day.plus_seconds(start - 600 - i64::from(below(rng, 1_200)))?;
            let terminal = terminal_id(cities[rider.city], 0xFE, from, 1);
            drafts.push(tap(cities, rider, TapKind::Load, LOAD_FEN, terminal, at, from, true));
            summary.loaded_fen += i64::from(LOAD_FEN);
        }
        if chance(rng, 5) {
            let route = 1 + below(rng, ROUTES);
            let terminal = terminal_id(cities[rider.city], 0xB0, route, 1 + below(rng, 3));
            let at = day.plus_seconds(start)?;
            drafts.push(tap(cities, rider, TapKind::Single, BUS_FARE_FEN, terminal, at, route, true));
            summary.purchased_fen += i64::from(BUS_FARE_FEN);
            continue;
        }
        let to = station(rng) % STATIONS + 1;
        let entry = terminal_id(cities[rider.city], 0, from, 1 + below(rng, GATES));
        drafts.push(tap(cities, rider, TapKind::Entry, 0, entry, day.plus_seconds(start)?, from, true));
        let fare = 300 + 100 * (from.abs_diff(to) / 12).min(6);
        let mut exit_at = start + 900 + i64::from(below(rng, 3_000));
        let here = cities[rider.city];
        let exit = |rng: &mut ChaCha8Rng| terminal_id(here, 0, to, 1 + below(rng, GATES));
        // Torn exits, only where the card's next purchase of the day follows.
        if !last && chance(rng, 200) {
            let gate = exit(rng);
            let mut torn = tap(cities, rider, TapKind::Exit, fare, gate, day.plus_seconds(exit_at)?, to, false);
            torn.record.status = RecordStatus::Unconfirmed;
            torn.tac_key = None;
            drafts.push(torn);
            summary.torn_voided += 1;
            exit_at += 20;
        } else if !last && chance(rng, 100) {
            let gate = exit(rng);
            let mut torn = tap(cities, rider, TapKind::Exit, fare, gate, day.plus_seconds(exit_at)?, to, true);
            torn.record.status = RecordStatus::Unconfirmed;
            torn.tac_key = None;
            drafts.push(torn);
            summary.torn_committed += 1;
            summary.purchased_fen += i64::from(fare);
            continue;
        }
        let gate = exit(rng);
        drafts.push(tap(cities, rider, TapKind::Exit, fare, gate, day.plus_seconds(exit_at)?, to, true));
        summary.purchased_fen += i64::from(fare);
    }
    Ok(())
}

/// A gate's (or bus validator's, or ticket office's) terminal ID: city code, kind, place, number.
fn terminal_id(city: &City, kind: u8, place: u32, number: u32) -> [u8; 6] {
    let code = city.city_code().to_be_bytes();
    [code[0], code[1], kind, place as u8, (place >> 8) as u8, number as u8]
}

/// The card's side of a tap: its counters and balance move when it `commits`.
#[allow(clippy::too_many_arguments)]
fn tap(
    cities: &[&City],
    rider: &mut Rider,
    kind: TapKind,
    amount_fen: u32,
    terminal_id: [u8; 6],
    at: DateTime,
    place: u32,
    commits: bool,
) -> Draft {
    let city = cities[rider.city];
    let load = kind.is_load();
    let counter = if load { &mut rider.online } else { &mut rider.offline };
    let before = rider.balance;
    let after = if load { before + i64::from(amount_fen) } else { before - i64::from(amount_fen) };
    let number = counter.wrapping_add(1);
    if commits {
        *counter = number;
        rider.balance = after;
    }
    let transaction_type = match kind {
        TapKind::Load => transaction_type::EP_LOAD,
        TapKind::Single => transaction_type::EP_PURCHASE,
        TapKind::Entry | TapKind::Exit => transaction_type::CAPP_PURCHASE,
    };
    let metro = matches!(kind, TapKind::Entry | TapKind::Exit | TapKind::Load);
    Draft {
        record: TapRecord {
            status: RecordStatus::Confirmed,
            kind,
            transaction_type,
            card_serial: rider.serial,
            issuer_id: cities[rider.issuer].issuer_id(),
            counter: number,
            amount_fen,
            balance_before_fen: before,
            balance_after_fen: after,
            terminal_id,
            terminal_transaction_number: 0,
            at,
            city: city.name().to_owned(),
            city_code: city.city_code(),
            station: if metro { format!("S{place:02}") } else { String::new() },
            line: if metro { 1 + (place % 12) as u16 } else { place as u16 },
            station_code: if metro { place as u16 } else { 0 },
            card_random: (number as u32 ^ place).to_be_bytes(),
            key_version: 1,
            algorithm_id: 0,
            mac2: None,
            tac: None,
        },
        tac_key: Some(rider.tac_key),
    }
}

/// Numbers each terminal's taps by time, signs them, and cuts each terminal's day into uploads.
fn upload(
    cities: &[&City],
    mut drafts: Vec<Draft>,
    keys: &[SessionKey],
    batch_records: usize,
) -> anyhow::Result<Vec<Batch>> {
    drafts.sort_by_key(|d| (d.record.at, d.record.terminal_id));
    let mut by_terminal: BTreeMap<[u8; 6], Vec<TapRecord>> = BTreeMap::new();
    for Draft { mut record, tac_key } in drafts {
        let records = by_terminal.entry(record.terminal_id).or_default();
        record.terminal_transaction_number = records.len() as u32 + 1;
        if let Some(key) = tac_key {
            record.tac = Some(card_tac(&record, &keys[key])?);
        }
        records.push(record);
    }
    let mut batches = Vec::new();
    for (terminal, records) in by_terminal {
        let city = cities
            .iter()
            .find(|c| c.city_code().to_be_bytes() == terminal[..2])
            .ok_or_else(|| anyhow::anyhow!("a terminal of no city"))?;
        let operator = match terminal[2] {
            0xB0 => format!("{}-bus", city.name()),
            0xFE => format!("{}-card", city.name()),
            _ => format!("{}-metro", city.name()),
        };
        for (n, chunk) in records.chunks(batch_records.max(1)).enumerate() {
            batches.push(Batch {
                header: BatchHeader {
                    batch_id: format!("{}-20261125-{}", hex::encode_upper(terminal), n + 1),
                    gate: terminal,
                    operator: operator.clone(),
                },
                records: chunk.to_vec(),
            });
        }
    }
    // Gates upload through the day: by the time of each batch's first tap.
    batches.sort_by_key(|b| (b.records.first().map(|r| r.at), b.header.gate));
    Ok(batches)
}
