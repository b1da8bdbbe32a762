//! Ridership statistics for the operators' console, from the transactions the back office
//! cleared: taps per station per hour, the origin–destination matrix of metro journeys, and
//! revenue per line and per operator. Pure: the caller gives the records (a business day's
//! cleared purchases); loads and top-up terminals' debits are not rides and are left out.
//!
//! A journey is an exit whose card's previous purchase (its offline counter one lower) is an
//! entry in the same city: origin the entry's station, destination the exit's. An exit without
//! such an entry among the records (its entry on another day, or not uploaded) is counted as
//! unmatched, never guessed.

use std::collections::BTreeMap;

use serde::Serialize;
use yitong_record::{TapKind, TapRecord};

use crate::settlement::{Mode, Participant, Site};
use crate::shadow::CardId;

/// Taps at one station in one hour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StationHour {
    /// City code of the station's gates.
    pub city_code: u16,
    /// Station code.
    pub station_code: u16,
    /// Station name, as the gates wrote it.
    pub station: String,
    /// The hour, local time `YYYY-MM-DD HH:00`.
    pub hour: String,
    /// Entries.
    pub entries: u64,
    /// Exits.
    pub exits: u64,
}

/// Metro journeys from one station to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OdPair {
    /// City code.
    pub city_code: u16,
    /// Origin station code and name.
    pub from_code: u16,
    /// Origin name.
    pub from: String,
    /// Destination station code.
    pub to_code: u16,
    /// Destination name.
    pub to: String,
    /// Journeys.
    pub journeys: u64,
    /// The fares paid, fen.
    pub fares_fen: i64,
}

/// Revenue of one line (a bus line is its route).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineRevenue {
    /// The operator (`metro:1000`, `bus:1000`).
    pub operator: String,
    /// The line code (for a metro fare, the exit station's line; for a bus, the route).
    pub line: u16,
    /// Paying rides.
    pub rides: u64,
    /// Fares, fen.
    pub amount_fen: i64,
}

/// Revenue of one operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OperatorRevenue {
    /// The operator (`metro:1000`, `bus:1000`).
    pub operator: String,
    /// Paying rides.
    pub rides: u64,
    /// Fares, fen.
    pub amount_fen: i64,
}

/// The statistics of a set of records.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ridership {
    /// Taps per station per hour, by city, station and hour.
    pub station_hours: Vec<StationHour>,
    /// The origin–destination matrix, as its non-zero cells.
    pub journeys: Vec<OdPair>,
    /// Exits whose entry is not among the records.
    pub unmatched_exits: u64,
    /// Revenue per line.
    pub lines: Vec<LineRevenue>,
    /// Revenue per operator.
    pub operators: Vec<OperatorRevenue>,
}

/// The statistics of `records` (any order; loads and top-up terminals' debits are skipped).
pub fn ridership<'a>(records: impl IntoIterator<Item = &'a TapRecord>) -> Ridership {
    let mut hours: BTreeMap<(u16, u16, String), StationHour> = BTreeMap::new();
    let mut lines: BTreeMap<(Participant, u16), (u64, i64)> = BTreeMap::new();
    let mut operators: BTreeMap<Participant, (u64, i64)> = BTreeMap::new();
    let mut purchases: BTreeMap<(CardId, u16), &TapRecord> = BTreeMap::new();
    for record in records {
        let (mode, city_code) = match Site::of(record.terminal_id) {
            Some(Site::MetroGate { city_code }) => (Mode::Metro, city_code),
            Some(Site::BusValidator { city_code }) => (Mode::Bus, city_code),
            _ => continue,
        };
        if record.kind.is_load() {
            continue;
        }
        if mode == Mode::Metro {
            let hour = format!("{}:00", &record.at.to_string()[..13]);
            let cell = hours.entry((city_code, record.station_code, hour.clone())).or_insert_with(|| StationHour {
                city_code,
                station_code: record.station_code,
                station: record.station.clone(),
                hour,
                entries: 0,
                exits: 0,
            });
            match record.kind {
                TapKind::Entry => cell.entries += 1,
                TapKind::Exit => cell.exits += 1,
                _ => {}
            }
            purchases.insert((CardId::of(record), record.counter), record);
        }
        if record.amount_fen > 0 {
            let operator = Participant::Operator { city_code, mode };
            let amount = i64::from(record.amount_fen);
            let line = lines.entry((operator, record.line)).or_default();
            *line = (line.0 + 1, line.1 + amount);
            let total = operators.entry(operator).or_default();
            *total = (total.0 + 1, total.1 + amount);
        }
    }
    let mut pairs: BTreeMap<(u16, u16, u16), OdPair> = BTreeMap::new();
    let mut unmatched_exits = 0;
    for ((card, counter), exit) in &purchases {
        if exit.kind != TapKind::Exit {
            continue;
        }
        let entry = counter
            .checked_sub(1)
            .and_then(|previous| purchases.get(&(*card, previous)))
            .filter(|entry| entry.kind == TapKind::Entry && entry.city_code == exit.city_code);
        let Some(entry) = entry else {
            unmatched_exits += 1;
            continue;
        };
        let pair = pairs.entry((exit.city_code, entry.station_code, exit.station_code)).or_insert_with(|| OdPair {
            city_code: exit.city_code,
            from_code: entry.station_code,
            from: entry.station.clone(),
            to_code: exit.station_code,
            to: exit.station.clone(),
            journeys: 0,
            fares_fen: 0,
        });
        pair.journeys += 1;
        pair.fares_fen += i64::from(exit.amount_fen) + i64::from(entry.amount_fen);
    }
    Ridership {
        station_hours: hours.into_values().collect(),
        journeys: pairs.into_values().collect(),
        unmatched_exits,
        lines: lines
            .into_iter()
            .map(|((operator, line), (rides, amount_fen))| LineRevenue {
                operator: operator.to_string(),
                line,
                rides,
                amount_fen,
            })
            .collect(),
        operators: operators
            .into_iter()
            .map(|(operator, (rides, amount_fen))| OperatorRevenue {
                operator: operator.to_string(),
                rides,
                amount_fen,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yitong_profile::DateTime;
    use yitong_record::RecordStatus;

    /// A purchase of card `last` at Beijing station `station` (gate 1) or bus route `route`.
    fn tap(last: u8, kind: TapKind, counter: u16, station: u16, amount: u32, at: (u8, u8)) -> TapRecord {
        let [s0, s1] = station.to_be_bytes();
        let terminal_id = match kind {
            TapKind::Single => [0x10, 0x00, s0, s1, 0xB0, 1],
            _ => [0x10, 0x00, s0, s1, 0x00, 1],
        };
        TapRecord {
            status: RecordStatus::Confirmed,
            kind,
            transaction_type: if kind == TapKind::Single { 6 } else { 9 },
            card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0, 0, last],
            issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1],
            counter,
            amount_fen: amount,
            balance_before_fen: 10_000,
            balance_after_fen: 10_000 - i64::from(amount),
            terminal_id,
            terminal_transaction_number: u32::from(counter),
            at: DateTime::new(2026, 11, 25, at.0, at.1, 0).expect("valid"),
            city: "beijing".into(),
            city_code: 0x1000,
            station: format!("S{station}"),
            line: if kind == TapKind::Single { station } else { station / 100 },
            station_code: station,
            card_random: [0; 4],
            key_version: 1,
            algorithm_id: 0,
            mac2: None,
            tac: Some([0; 4]),
        }
    }

    #[test]
    fn journeys_taps_and_revenue() {
        let records = [
            // Card 1: 101 → 205 (4 yuan) at 8 o'clock; card 2: the same trip at 8:50 and 9:10.
            tap(1, TapKind::Entry, 1, 101, 0, (8, 0)),
            tap(1, TapKind::Exit, 2, 205, 400, (8, 30)),
            tap(2, TapKind::Entry, 7, 101, 0, (8, 50)),
            tap(2, TapKind::Exit, 8, 205, 400, (9, 10)),
            // Card 3: an exit whose entry is not here; then a bus ride on route 300.
            tap(3, TapKind::Exit, 4, 101, 300, (9, 20)),
            tap(3, TapKind::Single, 5, 300, 200, (9, 40)),
        ];
        let stats = ridership(&records);
        assert_eq!(stats.journeys.len(), 1);
        let pair = &stats.journeys[0];
        assert_eq!((pair.from_code, pair.to_code, pair.journeys, pair.fares_fen), (101, 205, 2, 800));
        assert_eq!(stats.unmatched_exits, 1);
        let cells: Vec<(u16, &str, u64, u64)> =
            stats.station_hours.iter().map(|h| (h.station_code, h.hour.as_str(), h.entries, h.exits)).collect();
        assert_eq!(
            cells,
            [
                (101, "2026-11-25 08:00", 2, 0),
                (101, "2026-11-25 09:00", 0, 1),
                (205, "2026-11-25 08:00", 0, 1),
                (205, "2026-11-25 09:00", 0, 1),
            ]
        );
        let lines: Vec<(&str, u16, u64, i64)> =
            stats.lines.iter().map(|l| (l.operator.as_str(), l.line, l.rides, l.amount_fen)).collect();
        assert_eq!(lines, [("metro:1000", 1, 1, 300), ("metro:1000", 2, 2, 800), ("bus:1000", 300, 1, 200)]);
        let operators: Vec<(&str, i64)> = stats.operators.iter().map(|o| (o.operator.as_str(), o.amount_fen)).collect();
        assert_eq!(operators, [("metro:1000", 1_100), ("bus:1000", 200)]);
        // Every fen of the purchases is on one operator's total.
        let fares: i64 = records.iter().map(|r| i64::from(r.amount_fen)).sum();
        assert_eq!(stats.operators.iter().map(|o| o.amount_fen).sum::<i64>(), fares);
    }
}
