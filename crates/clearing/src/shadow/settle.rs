//! Settling an unconfirmed record from what the card's other records show (the rules U1–U3 of
//! the module documentation of [`crate::shadow`]).
//!
//! Every record, committed or not, carries a snapshot of the card taken by INITIALIZE before its
//! commit: the counter of its sequence (its own counter minus one) and the balance (its balance
//! before). Those snapshots, and the committed records, are the evidence; settlement reads them
//! only, never another unconfirmed record's settlement, so the rules need no fixed point.

use yitong_record::TapId;

use super::entry::{Entry, Evidence};
use super::timeline::{Between, Timeline};
use super::CLOCK_SKEW_S_MAX;

/// What became of an unconfirmed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// Not decided yet: no later record shows whether the card committed it.
    Pending,
    /// The card committed it: the money moved (debited for a purchase, credited for a load).
    Charged,
    /// The card did not commit it: no money moved.
    Voided,
}

/// A verdict and the record whose counter or balance gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) verdict: Verdict,
    pub(crate) evidence: Option<TapId>,
}

impl Decision {
    const PENDING: Decision = Decision { verdict: Verdict::Pending, evidence: None };

    fn charged(by: &Entry) -> Self {
        Decision { verdict: Verdict::Charged, evidence: Some(by.tap_id()) }
    }

    fn voided(by: &Entry) -> Self {
        Decision { verdict: Verdict::Voided, evidence: Some(by.tap_id()) }
    }
}

/// One sequence's records (any standing) with the lookups settlement needs, each in O(log n).
pub(crate) struct Records<'a> {
    /// By counter, then time (key order).
    by_key: &'a [&'a Entry],
    /// `earliest_from[i]`: the earliest stamp of `by_key[i..]`.
    earliest_from: Vec<i64>,
    /// Stamps, sorted.
    stamps: Vec<i64>,
    /// `lowest_from[j]`: the lowest index into `by_key` of the records of `stamps[j..]`.
    lowest_from: Vec<usize>,
}

impl<'a> Records<'a> {
    /// `by_key`: the sequence's entries in key order.
    pub(crate) fn new(by_key: &'a [&'a Entry]) -> Self {
        let mut earliest_from = vec![i64::MAX; by_key.len() + 1];
        for i in (0..by_key.len()).rev() {
            earliest_from[i] = earliest_from[i + 1].min(by_key[i].at_s());
        }
        let mut by_time: Vec<usize> = (0..by_key.len()).collect();
        by_time.sort_by_key(|&i| (by_key[i].at_s(), i));
        let stamps = by_time.iter().map(|&i| by_key[i].at_s()).collect();
        let mut lowest_from = vec![usize::MAX; by_key.len() + 1];
        for j in (0..by_time.len()).rev() {
            lowest_from[j] = lowest_from[j + 1].min(by_time[j]);
        }
        Records { by_key, earliest_from, stamps, lowest_from }
    }

    /// The records of `counter`, by time.
    fn at_counter(&self, counter: u16) -> &'a [&'a Entry] {
        let by_key: &'a [&'a Entry] = self.by_key;
        let from = by_key.partition_point(|e| e.counter < counter);
        let to = by_key.partition_point(|e| e.counter <= counter);
        &by_key[from..to]
    }

    /// Whether a record is stamped from `from_s` to `to_s`.
    fn any_stamped(&self, from_s: i64, to_s: i64) -> bool {
        self.stamps.partition_point(|&t| t <= to_s) > self.stamps.partition_point(|&t| t < from_s)
    }

    /// Of the records stamped after `at_s`, the one of the lowest counter (then the earliest).
    fn lowest_stamped_after(&self, at_s: i64) -> Option<&'a Entry> {
        let j = self.stamps.partition_point(|&t| t <= at_s);
        self.by_key.get(self.lowest_from[j]).copied()
    }

    /// The earliest stamp of the records of counters above `counter`.
    fn earliest_above(&self, counter: u16) -> Option<i64> {
        let i = self.by_key.partition_point(|e| e.counter <= counter);
        (i < self.by_key.len()).then(|| self.earliest_from[i])
    }
}

/// Settles the unconfirmed `record` from `same` (the records of its sequence) and `other` (the
/// other sequence's); `other_committed` is the other sequence's records that committed for sure
/// (proven or logged).
pub(crate) fn decide(record: &Entry, same: &Records<'_>, other: &Records<'_>, other_committed: &Timeline) -> Decision {
    assert_eq!(record.evidence, Evidence::Unconfirmed);
    counter_taken(record, same)
        .or_else(|| next_counter(record, same, other_committed))
        .or_else(|| other_sequence(record, same, other))
        .unwrap_or(Decision::PENDING)
}

/// U1: another record of the same counter. A committed one took the counter; a later one (by
/// stamp, then tap ID) found the counter not yet moved, after this attempt.
fn counter_taken(record: &Entry, same: &Records<'_>) -> Option<Decision> {
    let key = record.key();
    let rivals = || same.at_counter(record.counter).iter().filter(|e| e.key() != key);
    if let Some(taken) = rivals().find(|e| e.evidence >= Evidence::Logged) {
        return Some(Decision::voided(taken));
    }
    let later = rivals().find(|e| (e.at, e.tap_id()) > (record.at, record.tap_id()))?;
    Some(Decision::voided(later))
}

/// U2: the first record of the next counter, whose snapshot shows the counter moved (by this
/// record, or by an unseen one of this counter) and the balance it left.
fn next_counter(record: &Entry, same: &Records<'_>, other_committed: &Timeline) -> Option<Decision> {
    let next = record.counter.checked_add(1)?;
    let after = same.at_counter(next).iter().min_by_key(|e| (e.at, e.tap_id()))?;
    let found = after.balance_before_fen;
    if found == record.balance_after_fen {
        return Some(Decision::charged(after));
    }
    match other_committed.between(record.at_s(), after.at_s()) {
        Between::Known(moved) if found == record.balance_after_fen + moved => Some(Decision::charged(after)),
        // Had the card committed, `after` would have found exactly this.
        Between::Known(_) => Some(Decision::voided(after)),
        Between::Unknown if record.sequence.other().cannot_explain(found - record.balance_after_fen) => {
            Some(Decision::voided(after))
        }
        // A record of 0 fen moves no money: the counter alone decides.
        Between::Unknown if record.amount_fen == 0 => Some(Decision::charged(after)),
        Between::Unknown => None,
    }
}

/// U3: the first record of the other sequence after this one, when no record of this sequence
/// comes before it: its snapshot's balance shows whether the money moved.
fn other_sequence(record: &Entry, same: &Records<'_>, other: &Records<'_>) -> Option<Decision> {
    let tolerance = CLOCK_SKEW_S_MAX;
    if record.amount_fen == 0 {
        return None;
    }
    let at = record.at_s();
    // A record of the other sequence stamped near this one may be before it or after it.
    if other.any_stamped(at - tolerance, at + tolerance) {
        return None;
    }
    let first = other.lowest_stamped_after(at + tolerance)?;
    if same.earliest_above(record.counter).is_some_and(|t| t <= first.at_s() + tolerance) {
        return None;
    }
    let found = first.balance_before_fen;
    if found == record.balance_after_fen {
        // Unseen transactions of the other sequence only move the balance away from the
        // balance before; only a like amount of this sequence, unseen, could fake it (and its
        // record, when it comes, voids this one under U1).
        return Some(Decision::charged(first));
    }
    // An unseen transaction of the other sequence between them could bring the balance back to
    // the balance before: the void needs the counter below `first` committed before this one.
    let closed = first.counter == 1
        || first.counter.checked_sub(1).is_some_and(|below| {
            other.at_counter(below).iter().any(|e| e.evidence >= Evidence::Logged && e.at_s() + tolerance < at)
        });
    (found == record.balance_before_fen && closed).then(|| Decision::voided(first))
}
