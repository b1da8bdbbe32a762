//! Property test: random records across cities and days. For every business day, the report's
//! lines are the ones each record's own description names (computed here from the description,
//! not from terminal IDs), the lines add up to the day's cleared money, the nets sum to zero;
//! over all days, every record is on exactly one day's line and the days add up to the input.

mod settle_support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use settle_support::record;
use yitong_clearing::settlement::{
    settle, BusinessDay, CityParticipants, CutOver, Participants, PlatformEntry, PlatformEntryKind,
};
use yitong_profile::DateTime;
use yitong_record::{TapKind, TapRecord};

/// City codes: three in the table, one (2140) not.
const CITIES: [u16; 4] = [0x1000, 0x2900, 0x5840, 0x2140];
/// Shenzhen's issuer ID in the table does not follow the `…00000001` convention, so that the
/// table, not the convention, must name a top-up terminal's issuer.
const SHENZHEN: [u8; 8] = [0, 0, 0x58, 0x40, 0, 0, 0, 2];
const DAYS: i64 = 4;

fn issuer_of(city: u16) -> [u8; 8] {
    match city {
        0x5840 => SHENZHEN,
        _ => {
            let [c0, c1] = city.to_be_bytes();
            [0, 0, c0, c1, 0, 0, 0, 1]
        }
    }
}

fn participants() -> Participants {
    Participants::new([
        CityParticipants::new(0x1000, "北京 Beijing", issuer_of(0x1000), "Beijing Card"),
        CityParticipants::new(0x2900, "上海 Shanghai", issuer_of(0x2900), "Shanghai Card"),
        CityParticipants::new(0x5840, "深圳 Shenzhen", SHENZHEN, "Shenzhen Tong"),
    ])
    .unwrap()
}

#[derive(Clone, Copy, Debug)]
enum Place {
    Metro,
    Bus,
    ServiceDesk,
    OverTheAirLoad,
    CliLoad,
}

#[derive(Clone, Debug)]
struct Spec {
    card_city: u16,
    site_city: u16,
    place: Place,
    amount_fen: u32,
    /// Seconds after 2026-11-24 00:00:00.
    offset_s: i64,
    pending: bool,
}

fn offset_s() -> impl Strategy<Value = i64> {
    prop_oneof![
        (0..DAYS * 86_400),
        // Around a cut-over: 03:59:57 to 04:00:02.
        ((0..DAYS), (-3i64..3)).prop_map(|(day, s)| day * 86_400 + 4 * 3_600 + s),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let place = prop_oneof![
        5 => Just(Place::Metro),
        2 => Just(Place::Bus),
        1 => Just(Place::ServiceDesk),
        2 => Just(Place::OverTheAirLoad),
        1 => Just(Place::CliLoad),
    ];
    let amount = prop_oneof![1 => Just(0u32), 4 => 1u32..5_000];
    (
        prop::sample::select(&CITIES[..]),
        prop::sample::select(&CITIES[..]),
        place,
        amount,
        offset_s(),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(card_city, site_city, place, amount_fen, offset_s, pending)| Spec {
            card_city,
            site_city,
            place,
            amount_fen,
            offset_s,
            pending,
        })
}

fn platform_entry() -> impl Strategy<Value = PlatformEntry> {
    let kind =
        prop_oneof![Just(PlatformEntryKind::LoadPaid), Just(PlatformEntryKind::Fee), Just(PlatformEntryKind::Refund)];
    (kind, prop::sample::select(&CITIES[..]), 1u32..5_000, offset_s()).prop_map(|(kind, city, amount_fen, s)| {
        PlatformEntry { kind, issuer_id: issuer_of(city), amount_fen, at: base().plus_seconds(s).unwrap() }
    })
}

fn base() -> DateTime {
    DateTime::new(2026, 11, 24, 0, 0, 0).unwrap()
}

fn issuer_text(city: u16) -> String {
    format!("issuer:{}", hex::encode_upper(issuer_of(city)))
}

impl Spec {
    fn is_load(&self) -> bool {
        matches!(self.place, Place::OverTheAirLoad | Place::CliLoad)
    }

    fn record(&self, number: u32) -> TapRecord {
        let [c0, c1] = self.site_city.to_be_bytes();
        let (kind, terminal) = match self.place {
            Place::Metro if self.amount_fen == 0 => (TapKind::Entry, [c0, c1, 0, 0x12, 0x00, 1]),
            Place::Metro => (TapKind::Exit, [c0, c1, 0, 0x12, 0x00, 1]),
            Place::Bus => (TapKind::Single, [c0, c1, 0, 0x07, 0xB0, 2]),
            Place::ServiceDesk => (TapKind::Single, [c0, c1, 0xFF, 0xFF, 0, 3]),
            Place::OverTheAirLoad => (TapKind::Load, [c0, c1, 0xFF, 0xFF, 0, 2]),
            Place::CliLoad => (TapKind::Load, [c0, c1, 0xFF, 0xFF, 0, 1]),
        };
        let at = base().plus_seconds(self.offset_s).unwrap().to_string();
        record(kind, issuer_of(self.card_city), &hex::encode_upper(terminal), number, self.amount_fen, &at)
    }

    /// (kind, payer, payee) as the module documentation's table says, from the description.
    fn line(&self) -> (String, String, String) {
        let card = issuer_text(self.card_city);
        let site = self.site_city;
        let (kind, payer, payee) = match self.place {
            Place::Metro => ("purchase", card, format!("metro:{site:04X}")),
            Place::Bus => ("purchase", card, format!("bus:{site:04X}")),
            Place::ServiceDesk => ("service_desk", card, issuer_text(site)),
            Place::OverTheAirLoad | Place::CliLoad => ("load", issuer_text(site), card),
        };
        (kind.to_owned(), payer, payee)
    }

    /// The business day, as the rule says it: before 04:00, the calendar day before.
    fn day(&self) -> String {
        day_of(&base().plus_seconds(self.offset_s).unwrap())
    }
}

fn day_of(at: &DateTime) -> String {
    let date = if (at.hour, at.minute, at.second) < (4, 0, 0) {
        DateTime::from_seconds_since_epoch((at.days_since_epoch() - 1) * 86_400).unwrap()
    } else {
        *at
    };
    format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
}

#[derive(Default, Debug, PartialEq, Eq)]
struct Sum {
    records: u64,
    amount_fen: i64,
}

impl Sum {
    fn add(&mut self, amount_fen: i64) {
        self.records += 1;
        self.amount_fen += amount_fen;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_fen_of_every_record_is_on_exactly_one_line_of_its_day(
        specs in prop::collection::vec(spec(), 0..120),
        entries in prop::collection::vec(platform_entry(), 0..20),
    ) {
        let participants = participants();
        let records: Vec<TapRecord> = specs.iter().zip(1u32..).map(|(s, n)| s.record(n)).collect();
        let cleared: Vec<&TapRecord> = records.iter().zip(&specs).filter(|(_, s)| !s.pending).map(|(r, _)| r).collect();
        let pending: Vec<&TapRecord> = records.iter().zip(&specs).filter(|(_, s)| s.pending).map(|(r, _)| r).collect();

        // Every business day the records and entries can fall in: 2026-11-23 to 2026-11-27.
        let mut day = BusinessDay::parse("2026-11-23", CutOver::DEFAULT).unwrap();
        let (mut records_on_lines, mut fen_on_lines, mut pending_seen) = (0u64, 0i64, 0u64);
        for _ in 0..=DAYS {
            let text = day.to_string();
            let report = settle(day, cleared.iter().copied(), pending.iter().copied(), &entries, &participants).unwrap();

            let mut expected: BTreeMap<(String, String, String), Sum> = BTreeMap::new();
            let (mut debits, mut loads, mut host_loads) = (Sum::default(), Sum::default(), 0i64);
            let (mut pending_debits, mut pending_loads) = (Sum::default(), Sum::default());
            for spec in specs.iter().filter(|s| s.day() == text) {
                let amount = i64::from(spec.amount_fen);
                match (spec.pending, spec.is_load()) {
                    (true, false) => pending_debits.add(amount),
                    (true, true) => pending_loads.add(amount),
                    (false, is_load) => {
                        expected.entry(spec.line()).or_default().add(amount);
                        if is_load { loads.add(amount) } else { debits.add(amount) }
                        if matches!(spec.place, Place::OverTheAirLoad) { host_loads += amount }
                    }
                }
            }
            let actual: BTreeMap<(String, String, String), Sum> = report.obligations.iter().map(|l| {
                ((l.kind.as_str().to_owned(), l.payer.id.to_string(), l.payee.id.to_string()),
                 Sum { records: l.records, amount_fen: l.amount_fen })
            }).collect();
            prop_assert_eq!(actual.len(), report.obligations.len(), "one line per (kind, payer, payee)");
            prop_assert_eq!(&actual, &expected, "lines of {}", text);

            let r = &report.reconciliation;
            prop_assert_eq!((r.debits_cleared.records, r.debits_cleared.amount_fen), (debits.records, debits.amount_fen));
            prop_assert_eq!(r.debit_lines, r.debits_cleared);
            prop_assert_eq!((r.loads_cleared.records, r.loads_cleared.amount_fen), (loads.records, loads.amount_fen));
            prop_assert_eq!(r.load_lines, r.loads_cleared);
            prop_assert_eq!((r.pending_debits.records, r.pending_debits.amount_fen), (pending_debits.records, pending_debits.amount_fen));
            prop_assert_eq!((r.pending_loads.records, r.pending_loads.amount_fen), (pending_loads.records, pending_loads.amount_fen));
            prop_assert_eq!(r.outside_day.cleared_records + debits.records + loads.records, cleared.len() as u64);

            let platform_loads: i64 = entries.iter()
                .filter(|e| e.kind == PlatformEntryKind::LoadPaid && day_of(&e.at) == text)
                .map(|e| i64::from(e.amount_fen)).sum();
            prop_assert_eq!(r.host_loads.amount_fen, host_loads);
            prop_assert_eq!(r.platform_load_difference_fen, platform_loads - host_loads);

            // Positions: nets sum to zero; receivables and payables each total the lines.
            let lines_fen: i64 = report.obligations.iter().map(|l| l.amount_fen).sum();
            prop_assert_eq!(lines_fen, debits.amount_fen + loads.amount_fen);
            prop_assert_eq!(report.positions.iter().map(|p| p.net_fen).sum::<i64>(), 0);
            prop_assert_eq!(report.positions.iter().map(|p| p.receivable_fen).sum::<i64>(), lines_fen);
            prop_assert_eq!(report.positions.iter().map(|p| p.payable_fen).sum::<i64>(), lines_fen);

            // Operators total their purchase lines, 0-fen taps apart.
            let purchase_lines = report.obligations.iter().filter(|l| l.kind.as_str() == "purchase");
            let (purchase_records, purchase_fen) = purchase_lines.fold((0, 0), |(n, f), l| (n + l.records, f + l.amount_fen));
            let operator_records: u64 = report.operators.iter().map(|o| o.purchases.records + o.zero_fen_taps).sum();
            let operator_fen: i64 = report.operators.iter().map(|o| o.purchases.amount_fen).sum();
            prop_assert_eq!((operator_records, operator_fen), (purchase_records, purchase_fen));

            records_on_lines += report.obligations.iter().map(|l| l.records).sum::<u64>();
            fen_on_lines += lines_fen;
            pending_seen += r.pending_debits.records + r.pending_loads.records;
            day = day.next().unwrap();
        }
        // The union over the days is the input: each record on one day's line, once.
        prop_assert_eq!(records_on_lines, cleared.len() as u64);
        prop_assert_eq!(fen_on_lines, cleared.iter().map(|r| i64::from(r.amount_fen)).sum::<i64>());
        prop_assert_eq!(pending_seen, pending.len() as u64);
    }
}
