//! What a terminal keeps across restarts: the transactions in doubt and the records not yet
//! uploaded. Nothing leaves it silently: a doubt ends as a record (confirmed, recovered or
//! unconfirmed) or is dropped only when the card proved it never committed.

use serde::{Deserialize, Serialize};

use yitong_profile::DateTime;

use crate::record::{RecordStatus, TapId, TapRecord};

/// Transactions in doubt a terminal remembers; past this the oldest is handed on as an
/// unconfirmed record (its card has surely left; the back office settles it).
pub const PENDING_MAX: usize = 64;

/// Clearing records a terminal holds before they are uploaded; past this it refuses taps.
pub const OUTBOX_MAX: usize = 100_000;

/// A doubt older than this is handed on unconfirmed at the terminal's next transaction: its card
/// may never come back (lost, expired, blocked), and the back office must see the commit.
pub const DOUBT_AGE_MAX_S: i64 = 7 * 24 * 3600;

/// A card as its keys know it: issuer ID and ASN8, the two inputs of its key diversification.
/// Doubts are matched by this, not by the whole serial: the first two bytes of the serial are in
/// no MAC, so a garbled SELECT answer can change them while the card still commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardId {
    /// Issuer ID.
    pub issuer_id: [u8; 8],
    /// The last 8 bytes of the application serial.
    pub asn8: [u8; 8],
}

impl CardId {
    /// The card of this issuer and serial.
    pub fn new(issuer_id: [u8; 8], serial: &[u8; 10]) -> Self {
        CardId { issuer_id, asn8: yitong_profile::files::asn8(serial) }
    }

    /// The card of a record.
    pub fn of(record: &TapRecord) -> Self {
        CardId::new(record.issuer_id, &record.card_serial)
    }
}

/// A DEBIT or CREDIT sent whose answer never came.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDebit {
    /// The counter INITIALIZE returned (offline for purchases, online for loads).
    pub counter_before: u16,
    /// The record, complete but for MAC2 (purchases) and TAC.
    pub record: TapRecord,
}

/// What a gate or top-up terminal must keep across restarts besides its security module's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateState {
    /// Transactions in doubt, oldest first (a card may have two: one whose card's counter is
    /// still to be proven, and the DEBIT of the tap proving it).
    pub pending: Vec<PendingDebit>,
    /// Records not yet handed to the uploader, oldest first.
    #[serde(default)]
    pub outbox: Vec<TapRecord>,
}

impl GateState {
    /// The oldest transaction in doubt for this card, if any.
    pub fn pending_for(&self, card: &CardId) -> Option<&PendingDebit> {
        self.pending_for_except(card, &[])
    }

    /// The oldest doubt of this card not among `seen` (tap IDs already asked about this tap).
    pub(crate) fn pending_for_except(&self, card: &CardId, seen: &[TapId]) -> Option<&PendingDebit> {
        self.pending.iter().find(|p| CardId::of(&p.record) == *card && !seen.contains(&p.record.tap_id()))
    }

    /// Remembers a money command sent. The oldest doubt past [`PENDING_MAX`] goes to the outbox
    /// as an unconfirmed record.
    pub fn remember(&mut self, pending: PendingDebit) {
        if self.pending.len() == PENDING_MAX {
            let oldest = self.pending.remove(0);
            self.hand_on_unconfirmed(oldest);
        }
        self.pending.push(pending);
        assert!(self.pending.len() <= PENDING_MAX);
    }

    /// Hands on, unconfirmed, every doubt older than [`DOUBT_AGE_MAX_S`] at `now`.
    pub fn hand_on_stale(&mut self, now: &DateTime) {
        let now_s = now.seconds_since_epoch();
        let (stale, fresh): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| now_s - p.record.at.seconds_since_epoch() > DOUBT_AGE_MAX_S);
        self.pending = fresh;
        for p in stale {
            self.hand_on_unconfirmed(p);
        }
    }

    /// Takes a doubt out of the table: it is being settled. Doubts are matched whole (card,
    /// counter, tap ID): a transaction number reused after a restart from a stale number must not
    /// settle another card's doubt.
    pub(crate) fn take(&mut self, pending: &PendingDebit) -> Option<PendingDebit> {
        let i = self.pending.iter().position(|p| p == pending)?;
        Some(self.pending.remove(i))
    }

    /// The card proved the transaction never committed (or its answer arrived).
    pub(crate) fn forget(&mut self, pending: &PendingDebit) {
        if let Some(i) = self.pending.iter().position(|p| p == pending) {
            self.pending.remove(i);
        }
    }

    /// The card can no longer tell: the record goes on, unconfirmed, for the back office.
    pub(crate) fn hand_on_unconfirmed(&mut self, pending: PendingDebit) -> TapRecord {
        let mut record = pending.record;
        record.status = RecordStatus::Unconfirmed;
        record.tac = None;
        self.outbox.push(record.clone());
        record
    }

    /// A record to upload.
    pub(crate) fn push(&mut self, record: TapRecord) {
        self.outbox.push(record);
    }

    /// Whether the outbox has room for another tap's records.
    pub(crate) fn outbox_full(&self) -> bool {
        self.outbox.len() >= OUTBOX_MAX
    }
}
