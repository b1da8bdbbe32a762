//! What a card's records add up to: the settlement of each unconfirmed record, the card's
//! committed transactions (one per counter), its flags and its balance. A function of the set of
//! records alone, so the order they came in does not matter.

use std::collections::{BTreeMap, BTreeSet};

use super::entries::Entries;
use super::entry::{Entry, EntryKey, Evidence, Sequence};
use super::flag::Flag;
use super::settle::{self, Decision, Records, Verdict};
use super::timeline::{Between, Point, Timeline};
use super::{CLOCK_SKEW_S_MAX, TAC_FAILURE_THRESHOLD};

/// The derived state of a card.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct View {
    /// The decision on every unconfirmed entry.
    pub(crate) decisions: BTreeMap<EntryKey, Decision>,
    pub(crate) flags: BTreeSet<Flag>,
    /// The balance after the card's latest committed transaction.
    pub(crate) balance_fen: Option<i64>,
}

/// The committed transactions of one counter: the one kept in the sequence, and any others
/// (clones or conflicts).
struct Slot<'a> {
    kept: &'a Entry,
    others: Vec<&'a Entry>,
}

/// One value per sequence.
struct Both<T> {
    online: T,
    offline: T,
}

impl<T> Both<T> {
    fn new(mut f: impl FnMut(Sequence) -> T) -> Self {
        Both { online: f(Sequence::Online), offline: f(Sequence::Offline) }
    }

    fn of(&self, sequence: Sequence) -> &T {
        match sequence {
            Sequence::Online => &self.online,
            Sequence::Offline => &self.offline,
        }
    }
}

const SEQUENCES: [Sequence; 2] = [Sequence::Online, Sequence::Offline];

pub(crate) fn derive(entries: &Entries, tac_failures: u32) -> View {
    // In key order: by counter, then time.
    let all = Both::new(|s| entries.iter().filter(|e| e.sequence == s).collect::<Vec<&Entry>>());

    // Settlement reads records only: committed for sure = proven or logged. (Most cards have no
    // unconfirmed record to settle: nothing of it is built for them.)
    let surely = |e: &Entry| e.evidence >= Evidence::Logged;
    let unconfirmed = |e: &Entry| e.evidence == Evidence::Unconfirmed;
    let mut decisions = BTreeMap::new();
    if entries.iter().any(unconfirmed) {
        let sure = Both::new(|s| timeline(&slots(all.of(s), surely), all.of(s), unconfirmed));
        let records = Both::new(|s| Records::new(all.of(s)));
        for sequence in SEQUENCES {
            for record in all.of(sequence).iter().filter(|e| unconfirmed(e)) {
                let other = sequence.other();
                let decision = settle::decide(record, records.of(sequence), records.of(other), sure.of(other));
                decisions.insert(record.key(), decision);
            }
        }
    }
    let verdict = |e: &Entry| decisions.get(&e.key()).map(|d| d.verdict);
    let committed = |e: &Entry| surely(e) || verdict(e) == Some(Verdict::Charged);
    let pending = |e: &Entry| verdict(e) == Some(Verdict::Pending);

    let kept = Both::new(|s| slots(all.of(s), committed));
    let known = Both::new(|s| timeline(kept.of(s), all.of(s), pending));
    let mut flags = BTreeSet::new();
    for sequence in SEQUENCES {
        let slots = kept.of(sequence);
        flags.extend(shared_counters(sequence, slots));
        let covered: BTreeSet<u16> = slots
            .iter()
            .map(|s| s.kept.counter)
            .chain(all.of(sequence).iter().filter(|e| pending(e)).map(|e| e.counter))
            .collect();
        flags.extend(gaps(sequence, all.of(sequence), &covered));
        flags.extend(breaks(sequence, slots, known.of(sequence.other())));
    }
    if tac_failures >= TAC_FAILURE_THRESHOLD {
        flags.insert(Flag::TacFailures);
    }
    let latest_of = |s: Sequence| kept.of(s).last().map(|slot| slot.kept);
    let balance_fen = latest(latest_of(Sequence::Online), latest_of(Sequence::Offline)).map(|e| e.balance_after_fen);
    View { decisions, flags, balance_fen }
}

/// The committed entries of a sequence (in key order) grouped by counter; the kept one is the
/// strongest evidence, then the first by time and tap ID.
fn slots<'a>(entries: &[&'a Entry], committed: impl Fn(&Entry) -> bool) -> Vec<Slot<'a>> {
    let mut slots: Vec<Slot<'a>> = Vec::new();
    for &e in entries.iter().filter(|e| committed(e)) {
        match slots.last_mut() {
            Some(slot) if slot.kept.counter == e.counter => {
                if e.evidence > slot.kept.evidence {
                    slot.others.push(std::mem::replace(&mut slot.kept, e));
                } else {
                    slot.others.push(e);
                }
            }
            _ => slots.push(Slot { kept: e, others: Vec::new() }),
        }
    }
    slots
}

/// The sequence as the other one sees it: its committed slots, and the stamps of its records
/// that are `uncertain`.
fn timeline(slots: &[Slot<'_>], entries: &[&Entry], uncertain: impl Fn(&Entry) -> bool) -> Timeline {
    let points: Vec<Point> = slots
        .iter()
        .map(|s| Point {
            counter: s.kept.counter,
            at_s: s.kept.at_s(),
            delta_fen: s.kept.sequence.delta_fen(s.kept.amount_fen),
        })
        .collect();
    Timeline::new(&points, entries.iter().filter(|e| uncertain(e)).map(|e| e.at_s()).collect())
}

/// Clones and conflicts: more than one committed transaction on a counter.
fn shared_counters(sequence: Sequence, slots: &[Slot<'_>]) -> Vec<Flag> {
    let mut flags = Vec::new();
    for slot in slots {
        for other in &slot.others {
            let (counter, first, second) = (slot.kept.counter, slot.kept.tap_id(), other.tap_id());
            flags.push(if slot.kept.evidence == Evidence::Proven && other.evidence == Evidence::Proven {
                Flag::Clone { sequence, counter, first, second }
            } else {
                Flag::CounterConflict { sequence, counter, first, second }
            });
        }
    }
    flags
}

/// Counters used but not covered: below a record of a higher counter (whose snapshot shows the
/// counter moved past them), at or above the lowest record, with no committed or pending record.
/// One flag per run of missing counters.
fn gaps(sequence: Sequence, entries: &[&Entry], covered: &BTreeSet<u16>) -> Vec<Flag> {
    // In key order: by counter.
    let mut counters: Vec<u16> = entries.iter().map(|e| e.counter).collect();
    counters.dedup();
    let mut runs: Vec<(u16, u16)> = Vec::new();
    let mut missing = |first: u16, last: u16| match runs.last_mut() {
        Some(run) if run.1.checked_add(1) == Some(first) => run.1 = last,
        _ => runs.push((first, last)),
    };
    for w in counters.windows(2) {
        let (here, above) = (w[0], w[1]);
        if !covered.contains(&here) {
            missing(here, here);
        }
        if above > here + 1 {
            missing(here + 1, above - 1);
        }
    }
    runs.into_iter().map(|(first, last)| Flag::CounterGap { sequence, first, last }).collect()
}

/// Balance breaks between transactions of consecutive counters (the rule B of the module
/// documentation).
fn breaks(sequence: Sequence, slots: &[Slot<'_>], other: &Timeline) -> Vec<Flag> {
    let mut flags = Vec::new();
    for w in slots.windows(2) {
        let (previous, next) = (w[0].kept, w[1].kept);
        if previous.counter.checked_add(1) != Some(next.counter) {
            continue;
        }
        let (left_fen, found_fen) = (previous.balance_after_fen, next.balance_before_fen);
        let between_fen = match other.between(previous.at_s(), next.at_s()) {
            Between::Known(moved) if found_fen != left_fen + moved => Some(moved),
            Between::Unknown if sequence.other().cannot_explain(found_fen - left_fen) => None,
            Between::Known(_) | Between::Unknown => continue,
        };
        flags.push(Flag::BalanceBreak {
            sequence,
            counter: next.counter,
            tap_id: next.tap_id(),
            left_fen,
            between_fen,
            found_fen,
        });
    }
    flags
}

/// The later of the two sequences' latest transactions: the one whose balance before is what the
/// other left (when only one way round chains), else the later stamp (at one stamp, the purchase).
/// A chain against the clocks — the follower stamped surely before the other — does not count: a
/// card loaded from 0 and later emptied would otherwise chain the load after the emptying.
fn latest<'a>(online: Option<&'a Entry>, offline: Option<&'a Entry>) -> Option<&'a Entry> {
    let may_follow = |next: &Entry, first: &Entry| {
        next.at.seconds_since_epoch() >= first.at.seconds_since_epoch() - CLOCK_SKEW_S_MAX
    };
    match (online, offline) {
        (Some(load), Some(purchase)) => {
            let purchase_follows = purchase.balance_before_fen == load.balance_after_fen && may_follow(purchase, load);
            let load_follows = load.balance_before_fen == purchase.balance_after_fen && may_follow(load, purchase);
            Some(match (purchase_follows, load_follows) {
                (true, false) => purchase,
                (false, true) => load,
                _ if load.at > purchase.at => load,
                _ => purchase,
            })
        }
        (one, other) => one.or(other),
    }
}
