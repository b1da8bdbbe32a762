//! The book of shadows: one [`Shadow`] per card, fed one record at a time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use yitong_profile::DateTime;
use yitong_record::{TacError, TapId, TapKind, TapRecord};

use super::entries::Entries;
use super::entry::{self, CardId, Entry, EntryKey, Evidence, RejectedKey, Rejection, Sequence, TacCheck};
use super::flag::Flag;
use super::settle::Verdict;
use super::view::{self, View};

/// What a record is, to the book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// A new transaction of the card.
    Accepted,
    /// The same transaction again (same sequence, counter, terminal ID, terminal transaction
    /// number, amount and time): not counted twice.
    Duplicate {
        /// The copy carries stronger evidence than the one held (a TAC, or the card's log, for an
        /// unconfirmed record) and replaces it.
        upgraded: bool,
        /// The copy's balances differ from the held one's (the TAC of a purchase covers neither
        /// counter nor balances): kept for audit; the held balances stand unless `upgraded`.
        altered: bool,
    },
    /// Not kept as a transaction (the caller keeps it for audit, with the reason).
    Rejected {
        /// Why.
        reason: Rejection,
        /// The same record was rejected before: not counted again.
        again: bool,
    },
}

/// An unconfirmed record's verdict changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settlement {
    /// The unconfirmed record.
    pub tap_id: TapId,
    /// Its sequence.
    pub sequence: Sequence,
    /// Its counter.
    pub counter: u16,
    /// Its amount, in fen.
    pub amount_fen: u32,
    /// The verdict before this record (`Pending` for a record just accepted). A `Charged` record
    /// becomes `Voided` when a committed record of its counter arrives after the balance had
    /// made it look charged: the clearing books the correction.
    pub previous: Verdict,
    /// The verdict now.
    pub verdict: Verdict,
    /// The record whose counter or balance decided it (the record itself when a TAC or the card's
    /// log now proves it).
    pub evidence: Option<TapId>,
}

/// The book's answer to a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// What the record is.
    pub disposition: Disposition,
    /// Unconfirmed records whose verdict the record changed (itself included).
    pub settlements: Vec<Settlement>,
    /// Flags the record raised.
    pub raised: Vec<Flag>,
    /// Flags the record cleared.
    pub cleared: Vec<Flag>,
}

/// An unconfirmed record not yet settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingRecord {
    /// The record.
    pub tap_id: TapId,
    /// Its sequence.
    pub sequence: Sequence,
    /// Its counter.
    pub counter: u16,
    /// Its amount, in fen.
    pub amount_fen: u32,
    /// When the card was tapped.
    pub at: DateTime,
    /// When the back office received it.
    pub received: DateTime,
}

impl PendingRecord {
    /// Its age when the back office received it, in seconds.
    pub fn age_at_receipt_s(&self) -> i64 {
        self.received.seconds_since_epoch() - self.at.seconds_since_epoch()
    }

    /// Its age at `now`, in seconds.
    pub fn age_s(&self, now: &DateTime) -> i64 {
        now.seconds_since_epoch() - self.at.seconds_since_epoch()
    }
}

/// A transaction the book holds for a card, with its standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// The record.
    pub tap_id: TapId,
    /// Its sequence.
    pub sequence: Sequence,
    /// What it was.
    pub kind: TapKind,
    /// Its counter.
    pub counter: u16,
    /// Its amount, in fen.
    pub amount_fen: u32,
    /// Balance before, in fen.
    pub balance_before_fen: i64,
    /// Balance after, in fen (if committed).
    pub balance_after_fen: i64,
    /// When.
    pub at: DateTime,
    /// What proves it.
    pub evidence: Evidence,
    /// `Charged` for a proven or logged one; the settlement for an unconfirmed one.
    pub verdict: Verdict,
}

/// What is wrong with a call, or with a stored shadow.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShadowError {
    /// The record is another card's.
    WrongCard {
        /// The shadow's card.
        shadow: CardId,
        /// The record's card.
        record: CardId,
    },
    /// The TAC check given does not fit the record: verified or failed (other than
    /// [`TacError::Missing`]) for a record without a TAC, or absent for one with a TAC.
    TacCheckMismatch {
        /// The record.
        tap_id: TapId,
    },
    /// A stored transaction does not pass a record's checks.
    StoredTransaction {
        /// The stored transaction.
        tap_id: TapId,
        /// What is wrong with it.
        reason: Rejection,
    },
    /// A stored shadow holds one transaction twice.
    StoredDuplicate {
        /// The transaction.
        tap_id: TapId,
    },
    /// A packed shadow ([`Shadow::pack`]) that does not read at byte `offset`.
    Packed {
        /// The byte offset.
        offset: usize,
        /// Why.
        why: String,
    },
}

impl std::fmt::Display for ShadowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShadowError::WrongCard { shadow, record } => {
                write!(f, "the record is card {record}'s, fed to card {shadow}'s shadow")
            }
            ShadowError::TacCheckMismatch { tap_id } => write!(
                f,
                "record {tap_id}: the TAC check does not fit the record (verified or failed without a TAC, or absent \
                 with one); pass `verify_tac`'s result through `TacCheck::from`"
            ),
            ShadowError::StoredTransaction { tap_id, reason } => write!(f, "stored transaction {tap_id}: {reason}"),
            ShadowError::StoredDuplicate { tap_id } => write!(f, "stored transaction {tap_id} is held twice"),
            ShadowError::Packed { offset, why } => write!(f, "packed shadow, byte {offset}: {why}"),
        }
    }
}

impl std::error::Error for ShadowError {}

/// The TAC check normalized, or the mismatch.
fn fit(record: &TapRecord, tac: TacCheck) -> Result<TacCheck, ShadowError> {
    match (tac, record.tac.is_some()) {
        (TacCheck::Failed(TacError::Missing), false) => Ok(TacCheck::Absent),
        (TacCheck::Verified | TacCheck::Failed(_), true) | (TacCheck::Absent, false) => Ok(tac),
        _ => Err(ShadowError::TacCheckMismatch { tap_id: record.tap_id() }),
    }
}

/// One card's shadow: its accepted transactions (both sequences), the records rejected for it,
/// and what they add up to — settlements, flags, the balance.
///
/// Storage: a `Shadow` serializes (serde) to its card, its transactions and its rejected records'
/// identities; what they add up to is derived again on reading. It is equally the result of
/// feeding the same records in any order: the derived state depends on the set of records only.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "StoredShadow", try_from = "StoredShadow")]
pub struct Shadow {
    card: CardId,
    entries: Entries,
    /// Rejected records, and whether each counts as a TAC failure.
    rejected: BTreeMap<RejectedKey, bool>,
    view: View,
}

impl Shadow {
    /// A card the book has no record of.
    pub fn new(card: CardId) -> Self {
        Shadow { card, entries: Entries::default(), rejected: BTreeMap::new(), view: View::default() }
    }

    /// The card.
    pub fn card(&self) -> CardId {
        self.card
    }

    /// Feeds one record with the outcome of its TAC check and the time the back office received
    /// it; answers what the record is and what it changed.
    pub fn handle_record(
        &mut self,
        record: &TapRecord,
        tac: TacCheck,
        received: DateTime,
    ) -> Result<Answer, ShadowError> {
        let card = CardId::of(record);
        if card != self.card {
            return Err(ShadowError::WrongCard { shadow: self.card, record: card });
        }
        let tac = fit(record, tac)?;
        let disposition = match entry::admit(record, tac, received) {
            Err(reason) => {
                let key = RejectedKey::of(record);
                let again = self.rejected.contains_key(&key);
                if !again {
                    self.rejected.insert(key, reason.is_tac_failure());
                }
                Disposition::Rejected { reason, again }
            }
            Ok(entry) => match self.entries.insert(entry) {
                Ok(()) => Disposition::Accepted,
                Err((entry, held)) => {
                    let altered = (held.balance_before_fen, held.balance_after_fen)
                        != (entry.balance_before_fen, entry.balance_after_fen);
                    let upgraded = entry.evidence > held.evidence;
                    if upgraded {
                        // The stronger copy replaces the held one; its age still counts from the first.
                        *held = Entry { received: held.received, ..entry };
                    }
                    Disposition::Duplicate { upgraded, altered }
                }
            },
        };
        let changed = match disposition {
            Disposition::Accepted | Disposition::Duplicate { upgraded: true, .. } => true,
            Disposition::Rejected { again: false, reason } => reason.is_tac_failure(),
            Disposition::Duplicate { upgraded: false, .. } | Disposition::Rejected { again: true, .. } => false,
        };
        if !changed {
            return Ok(Answer { disposition, settlements: Vec::new(), raised: Vec::new(), cleared: Vec::new() });
        }
        let view = view::derive(&self.entries, self.tac_failures());
        let previous = std::mem::replace(&mut self.view, view);
        Ok(Answer {
            disposition,
            settlements: self.settlements_since(&previous),
            raised: self.view.flags.difference(&previous.flags).cloned().collect(),
            cleared: previous.flags.difference(&self.view.flags).cloned().collect(),
        })
    }

    /// The unconfirmed records whose verdict differs from `previous`'s.
    fn settlements_since(&self, previous: &View) -> Vec<Settlement> {
        let keys: std::collections::BTreeSet<&EntryKey> =
            previous.decisions.keys().chain(self.view.decisions.keys()).collect();
        let mut settlements = Vec::new();
        for key in keys {
            let Some(entry) = self.entries.get(key) else { continue };
            let before = previous.decisions.get(key).map_or(Verdict::Pending, |d| d.verdict);
            let (verdict, evidence) = match self.view.decisions.get(key) {
                Some(d) => (d.verdict, d.evidence),
                // No longer unconfirmed: proven or logged now.
                None => (Verdict::Charged, Some(entry.tap_id())),
            };
            if verdict != before {
                settlements.push(Settlement {
                    tap_id: entry.tap_id(),
                    sequence: entry.sequence,
                    counter: entry.counter,
                    amount_fen: entry.amount_fen,
                    previous: before,
                    verdict,
                    evidence,
                });
            }
        }
        settlements
    }

    /// The balance after the card's latest committed transaction, in fen (`None` before any).
    pub fn balance_fen(&self) -> Option<i64> {
        self.view.balance_fen
    }

    /// The flags standing on the card.
    pub fn flags(&self) -> impl Iterator<Item = &Flag> {
        self.view.flags.iter()
    }

    /// The card's unconfirmed records not yet settled, by sequence and counter.
    pub fn pending(&self) -> Vec<PendingRecord> {
        self.entries
            .iter()
            .filter(|e| self.view.decisions.get(&e.key()).is_some_and(|d| d.verdict == Verdict::Pending))
            .map(|e| PendingRecord {
                tap_id: e.tap_id(),
                sequence: e.sequence,
                counter: e.counter,
                amount_fen: e.amount_fen,
                at: e.at,
                received: e.received,
            })
            .collect()
    }

    /// The card's transactions, by sequence and counter.
    pub fn transactions(&self) -> Vec<Transaction> {
        self.entries
            .iter()
            .map(|e| Transaction {
                tap_id: e.tap_id(),
                sequence: e.sequence,
                kind: e.kind,
                counter: e.counter,
                amount_fen: e.amount_fen,
                balance_before_fen: e.balance_before_fen,
                balance_after_fen: e.balance_after_fen,
                at: e.at,
                evidence: e.evidence,
                verdict: self.view.decisions.get(&e.key()).map_or(Verdict::Charged, |d| d.verdict),
            })
            .collect()
    }

    /// What the shadow is derived from: its transactions, in key order, and its rejected
    /// records with whether each was a TAC failure.
    pub(super) fn inputs(&self) -> (Vec<&Entry>, &BTreeMap<RejectedKey, bool>) {
        (self.entries.iter().collect(), &self.rejected)
    }

    /// The card's records rejected for a TAC failure (each counted once).
    pub fn tac_failures(&self) -> u32 {
        let count = self.rejected.values().filter(|&&counted| counted).count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }
}

/// A shadow as stored: its inputs only.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoredShadow {
    pub(super) card: CardId,
    pub(super) transactions: Vec<Entry>,
    pub(super) rejected: Vec<StoredRejection>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoredRejection {
    pub(super) record: RejectedKey,
    pub(super) tac_failure: bool,
}

impl From<Shadow> for StoredShadow {
    fn from(shadow: Shadow) -> Self {
        StoredShadow {
            card: shadow.card,
            transactions: shadow.entries.into_vec(),
            rejected: shadow
                .rejected
                .into_iter()
                .map(|(record, tac_failure)| StoredRejection { record, tac_failure })
                .collect(),
        }
    }
}

impl TryFrom<StoredShadow> for Shadow {
    type Error = ShadowError;

    fn try_from(stored: StoredShadow) -> Result<Self, ShadowError> {
        let mut entries = Entries::with_capacity(stored.transactions.len());
        for entry in stored.transactions {
            entry.check().map_err(|reason| ShadowError::StoredTransaction { tap_id: entry.tap_id(), reason })?;
            if let Err((entry, _)) = entries.insert(entry) {
                return Err(ShadowError::StoredDuplicate { tap_id: entry.tap_id() });
            }
        }
        let rejected = stored.rejected.into_iter().map(|r| (r.record, r.tac_failure)).collect();
        let mut shadow = Shadow { card: stored.card, entries, rejected, view: View::default() };
        shadow.view = view::derive(&shadow.entries, shadow.tac_failures());
        Ok(shadow)
    }
}

/// The back office's shadows, one per card. The service may equally keep one [`Shadow`] per card
/// in its store and feed it directly.
#[derive(Clone, Debug, Default)]
pub struct ShadowBook {
    cards: BTreeMap<CardId, Shadow>,
}

impl ShadowBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one record to its card's shadow (see [`Shadow::handle_record`]).
    pub fn handle_record(
        &mut self,
        record: &TapRecord,
        tac: TacCheck,
        received: DateTime,
    ) -> Result<Answer, ShadowError> {
        let tac = fit(record, tac)?;
        let card = CardId::of(record);
        self.cards.entry(card).or_insert_with(|| Shadow::new(card)).handle_record(record, tac, received)
    }

    /// A card's shadow.
    pub fn shadow(&self, card: &CardId) -> Option<&Shadow> {
        self.cards.get(card)
    }

    /// Puts a shadow (read back from storage) in the book, returning the one it replaces.
    pub fn insert(&mut self, shadow: Shadow) -> Option<Shadow> {
        self.cards.insert(shadow.card, shadow)
    }

    /// Every card's shadow, by card.
    pub fn shadows(&self) -> impl Iterator<Item = &Shadow> {
        self.cards.values()
    }
}
