//! Honest cards, uploaded in any order with duplicates: the shadow accepts every transaction
//! once, raises no flag but transient gaps, settles every unconfirmed record the way the card
//! went, and its balance is the card's — every fen accounted for once.

use std::collections::BTreeMap;

use proptest::prelude::*;
use yitong_clearing::shadow::{CardId, Disposition, Flag, Sequence, Shadow, ShadowBook, TacCheck, Verdict};
use yitong_record::{DateTime, RecordStatus, TapId, TapKind, TapRecord};

const ISSUER: [u8; 8] = [0, 0, 0x10, 0, 0, 0, 0, 1];
const GATE: [u8; 6] = [0x10, 0, 0, 0x0C, 0, 1];
const TOP_UP: [u8; 6] = [0x10, 0, 0xFF, 0xFF, 0, 2];

/// How the gate ended a transaction.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Confirmed,
    /// Recovered by GET TRANSACTION PROVE, with its TAC.
    Proved,
    /// Recovered from the card's log, without a TAC.
    Logged,
    /// The card committed it; the gate could not tell.
    UnconfirmedCommitted,
    /// The card did not commit it; the gate could not tell. The rider taps again.
    UnconfirmedFailed,
}

#[derive(Clone, Copy, Debug)]
enum Resend {
    None,
    Again,
    /// A `recovered` copy with a TAC: of a confirmed record a duplicate, of an unconfirmed one
    /// that committed the proof that upgrades it.
    Recovered,
}

#[derive(Clone, Debug)]
struct Step {
    kind: TapKind,
    amount_fen: u32,
    ending: Ending,
    /// Seconds since the previous transaction.
    pause_s: i64,
    /// The gate's clock error.
    skew_s: i64,
    copy: Resend,
}

#[derive(Clone, Debug)]
struct Plan {
    balance_fen: i64,
    online: u16,
    offline: u16,
    steps: Vec<Step>,
}

/// A card's true history.
#[derive(Clone, Debug)]
struct Card {
    id: CardId,
    initial_fen: i64,
    final_fen: i64,
    /// Every record the gates made, and whether the card committed it.
    records: Vec<(TapRecord, bool)>,
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        6 => Just(Ending::Confirmed),
        1 => Just(Ending::Proved),
        1 => Just(Ending::Logged),
        2 => Just(Ending::UnconfirmedCommitted),
        2 => Just(Ending::UnconfirmedFailed),
    ]
}

fn resend() -> impl Strategy<Value = Resend> {
    prop_oneof![4 => Just(Resend::None), 1 => Just(Resend::Again), 1 => Just(Resend::Recovered)]
}

fn step(pause_s: std::ops::RangeInclusive<i64>, skew_s: std::ops::RangeInclusive<i64>) -> impl Strategy<Value = Step> {
    let kind = prop_oneof![Just(TapKind::Entry), Just(TapKind::Exit), Just(TapKind::Single)];
    (prop::bool::weighted(0.3), kind, 0u32..2_000, ending(), pause_s, skew_s, resend()).prop_map(
        |(load, kind, amount_fen, ending, pause_s, skew_s, copy)| Step {
            kind: if load { TapKind::Load } else { kind },
            amount_fen,
            ending,
            pause_s,
            skew_s,
            copy,
        },
    )
}

fn plans(
    pause_s: std::ops::RangeInclusive<i64>,
    skew_s: std::ops::RangeInclusive<i64>,
) -> impl Strategy<Value = Vec<Plan>> {
    let plan = (0i64..5_000, 0u16..500, 0u16..500, prop::collection::vec(step(pause_s, skew_s), 1..25))
        .prop_map(|(balance_fen, online, offline, steps)| Plan { balance_fen, online, offline, steps });
    prop::collection::vec(plan, 1..=3)
}

struct Maker {
    id: CardId,
    balance_fen: i64,
    online: u16,
    offline: u16,
    true_s: i64,
    records: Vec<(TapRecord, bool)>,
}

impl Maker {
    fn tap(
        &mut self,
        kind: TapKind,
        amount_fen: u32,
        status: RecordStatus,
        commits: bool,
        skew_s: i64,
        number: &mut u32,
    ) {
        *number += 1;
        let load = kind.is_load();
        let counter = if load { self.online + 1 } else { self.offline + 1 };
        let delta = if load { i64::from(amount_fen) } else { -i64::from(amount_fen) };
        let record = TapRecord {
            status,
            kind,
            transaction_type: match kind {
                TapKind::Load => 2,
                TapKind::Single => 6,
                TapKind::Entry | TapKind::Exit => 9,
            },
            card_serial: self.id.card_serial,
            issuer_id: self.id.issuer_id,
            counter,
            amount_fen,
            balance_before_fen: self.balance_fen,
            balance_after_fen: self.balance_fen + delta,
            terminal_id: if load { TOP_UP } else { GATE },
            terminal_transaction_number: *number,
            at: DateTime::from_seconds_since_epoch(self.true_s + skew_s).unwrap(),
            city: "beijing".into(),
            city_code: 0x1000,
            station: String::new(),
            line: 1,
            station_code: 1,
            card_random: [0; 4],
            key_version: 1,
            algorithm_id: 0,
            mac2: None,
            tac: matches!(status, RecordStatus::Confirmed).then_some([0xAA; 4]),
        };
        if commits {
            self.balance_fen += delta;
            if load {
                self.online = counter;
            } else {
                self.offline = counter;
            }
        }
        self.records.push((record, commits));
    }
}

/// The cards' histories and the uploads: every record once, plus the copies.
fn histories(plans: &[Plan]) -> (Vec<Card>, Vec<TapRecord>) {
    let start_s = DateTime::new(2026, 11, 2, 6, 0, 0).unwrap().seconds_since_epoch();
    let mut number = 0;
    let mut cards = Vec::new();
    let mut uploads = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let mut serial = [0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        serial[9] = i as u8;
        let id = CardId { issuer_id: ISSUER, card_serial: serial };
        let mut m = Maker {
            id,
            balance_fen: plan.balance_fen,
            online: plan.online,
            offline: plan.offline,
            true_s: start_s,
            records: Vec::new(),
        };
        let mut copies = Vec::new();
        for s in &plan.steps {
            m.true_s += s.pause_s;
            // Entries move no money; the card holds no overdraft here.
            let amount_fen = match s.kind {
                TapKind::Load => s.amount_fen * 10 + 1,
                TapKind::Entry => 0,
                TapKind::Exit | TapKind::Single => s.amount_fen.min(u32::try_from(m.balance_fen).unwrap_or(0)),
            };
            let (status, commits) = match s.ending {
                Ending::Confirmed => (RecordStatus::Confirmed, true),
                Ending::Proved | Ending::Logged => (RecordStatus::Recovered, true),
                Ending::UnconfirmedCommitted => (RecordStatus::Unconfirmed, true),
                Ending::UnconfirmedFailed => (RecordStatus::Unconfirmed, false),
            };
            m.tap(s.kind, amount_fen, status, commits, s.skew_s, &mut number);
            let last = m.records.len() - 1;
            if matches!(s.ending, Ending::Proved) {
                m.records[last].0.tac = Some([0xBB; 4]);
            }
            let made = m.records[last].0.clone();
            match (s.copy, s.ending) {
                (Resend::None, _) => {}
                (Resend::Again, _) => copies.push(made),
                (Resend::Recovered, Ending::Confirmed | Ending::UnconfirmedCommitted) => {
                    copies.push(TapRecord { status: RecordStatus::Recovered, tac: Some([0xCC; 4]), ..made })
                }
                (Resend::Recovered, _) => copies.push(made),
            }
            if matches!(s.ending, Ending::UnconfirmedFailed) {
                m.true_s += s.pause_s;
                m.tap(s.kind, amount_fen, RecordStatus::Confirmed, true, -s.skew_s, &mut number);
            }
        }
        // The card is used again later: a load, then an entry.
        m.true_s += 3_600;
        m.tap(TapKind::Load, 100, RecordStatus::Confirmed, true, 0, &mut number);
        m.true_s += 3_600;
        m.tap(TapKind::Entry, 0, RecordStatus::Confirmed, true, 0, &mut number);
        uploads.extend(m.records.iter().map(|(r, _)| r.clone()));
        uploads.extend(copies);
        cards.push(Card { id, initial_fen: plan.balance_fen, final_fen: m.balance_fen, records: m.records });
    }
    (cards, uploads)
}

fn tac_check(record: &TapRecord) -> TacCheck {
    if record.tac.is_some() {
        TacCheck::Verified
    } else {
        TacCheck::Absent
    }
}

/// Feeds every upload; checks no flag but a gap is ever raised; returns how often each record
/// was accepted.
fn upload(book: &mut ShadowBook, uploads: &[TapRecord]) -> Result<BTreeMap<(CardId, TapId), u32>, TestCaseError> {
    let mut accepted = BTreeMap::new();
    for record in uploads {
        let answer = book
            .handle_record(record, tac_check(record), record.at.plus_seconds(60).unwrap())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!matches!(answer.disposition, Disposition::Rejected { .. }), "{:?}", answer.disposition);
        if answer.disposition == Disposition::Accepted {
            *accepted.entry((CardId::of(record), record.tap_id())).or_insert(0) += 1;
        }
        for flag in &answer.raised {
            prop_assert!(matches!(flag, Flag::CounterGap { .. }), "an honest card flagged: {flag}");
        }
    }
    Ok(accepted)
}

/// Initial balance + charged loads − charged purchases.
fn conserved(shadow: &Shadow, initial_fen: i64) -> i64 {
    shadow
        .transactions()
        .iter()
        .filter(|t| t.verdict == Verdict::Charged)
        .map(|t| match t.sequence {
            Sequence::Online => i64::from(t.amount_fen),
            Sequence::Offline => -i64::from(t.amount_fen),
        })
        .sum::<i64>()
        + initial_fen
}

fn histories_and_order(
    pause_s: std::ops::RangeInclusive<i64>,
    skew_s: std::ops::RangeInclusive<i64>,
) -> impl Strategy<Value = (Vec<Card>, Vec<TapRecord>)> {
    plans(pause_s, skew_s).prop_flat_map(|plans| {
        let (cards, uploads) = histories(&plans);
        (Just(cards), Just(uploads).prop_shuffle())
    })
}

proptest! {
    /// Transactions stamped further apart than the clock tolerance: everything is decided.
    #[test]
    fn an_honest_history_in_any_order_adds_up(
        (cards, uploads) in histories_and_order(301..=7_200, 0..=0),
    ) {
        let mut book = ShadowBook::new();
        let accepted = upload(&mut book, &uploads)?;
        for card in &cards {
            let shadow = book.shadow(&card.id).expect("the card was fed");
            prop_assert_eq!(shadow.flags().count(), 0, "gaps close once all records are in: {:?}", shadow.flags().collect::<Vec<_>>());
            let standing: BTreeMap<TapId, Verdict> = shadow.transactions().iter().map(|t| (t.tap_id, t.verdict)).collect();
            prop_assert_eq!(standing.len(), card.records.len());
            for (record, committed) in &card.records {
                prop_assert_eq!(accepted.get(&(card.id, record.tap_id())), Some(&1), "accepted once: {}", record.tap_id());
                let expected = if *committed { Verdict::Charged } else { Verdict::Voided };
                prop_assert_eq!(standing.get(&record.tap_id()), Some(&expected), "{:?}", record);
            }
            prop_assert_eq!(shadow.balance_fen(), Some(card.final_fen));
            prop_assert_eq!(conserved(shadow, card.initial_fen), card.final_fen);
            // Stored packed and read back, the same shadow.
            let packed = shadow.pack();
            let back = Shadow::unpack(&packed).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back.transactions(), shadow.transactions());
            prop_assert_eq!((back.balance_fen(), back.pending()), (shadow.balance_fen(), shadow.pending()));
            prop_assert_eq!(back.pack(), packed);
        }
    }

    /// Transactions close together, clocks off by up to half the tolerance: some records may stay
    /// pending, but no flag is raised and nothing is settled the wrong way.
    #[test]
    fn close_taps_and_skewed_clocks_never_settle_wrong(
        (cards, uploads) in histories_and_order(0..=900, -150..=150),
    ) {
        let mut book = ShadowBook::new();
        let accepted = upload(&mut book, &uploads)?;
        for card in &cards {
            let shadow = book.shadow(&card.id).expect("the card was fed");
            prop_assert_eq!(shadow.flags().count(), 0, "{:?}", shadow.flags().collect::<Vec<_>>());
            let standing: BTreeMap<TapId, Verdict> = shadow.transactions().iter().map(|t| (t.tap_id, t.verdict)).collect();
            for (record, committed) in &card.records {
                prop_assert_eq!(accepted.get(&(card.id, record.tap_id())), Some(&1));
                let verdict = standing.get(&record.tap_id()).copied();
                let right = if *committed { Verdict::Charged } else { Verdict::Voided };
                prop_assert!(verdict == Some(right) || verdict == Some(Verdict::Pending), "{:?}: {:?}", verdict, record);
            }
            if shadow.pending().is_empty() {
                prop_assert_eq!(conserved(shadow, card.initial_fen), card.final_fen);
            }
        }
    }
}
