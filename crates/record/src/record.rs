//! The clearing record and its parts.

use serde::{Deserialize, Serialize};
use yitong_profile::DateTime;

/// What a transaction was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TapKind {
    /// Metro entry (composite purchase, usually of 0 fen).
    Entry,
    /// Metro exit (composite purchase of the fare).
    Exit,
    /// A single-fare ride (bus).
    Single,
    /// A load at a top-up terminal.
    Load,
}

impl TapKind {
    /// Whether the transaction moves the card's online counter (loads) rather than its offline
    /// counter (purchases).
    pub fn is_load(self) -> bool {
        self == TapKind::Load
    }
}

/// How sure the record is that the card committed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordStatus {
    /// The card answered DEBIT/CREDIT at the tap; the terminal holds its TAC.
    Confirmed,
    /// The answer was lost; a later tap found the commit, by GET TRANSACTION PROVE (with TAC) or
    /// in the card's EF18 log (without).
    Recovered,
    /// The answer was lost and the card could no longer tell (its proof replaced, its log
    /// scrolled past the counter): the back office settles the record from the card's later
    /// counters and balances.
    Unconfirmed,
}

/// A terminal's ID and its transaction number: unique per transaction, the idempotency key of
/// uploads. Written `<terminal ID hex>-<number>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TapId {
    /// The terminal (PSAM) ID.
    pub terminal_id: [u8; 6],
    /// The terminal transaction number.
    pub number: u32,
}

impl std::fmt::Display for TapId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", hex::encode_upper(self.terminal_id), self.number)
    }
}

/// A card transaction with everything the back office needs to verify its TAC and clear it:
/// TAC inputs (amount, type, terminal ID, terminal transaction number, date and time), the card's
/// identity (issuer ID and serial, which diversify the TAC key), its counter, balances and where
/// it happened.
///
/// In JSON, IDs are upper-case hex, `at` is `YYYY-MM-DD HH:MM:SS` local time, and `tap_id` and
/// `card_number` are written for readers (and checked on reading).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "crate::text::RecordText", into = "crate::text::RecordText")]
pub struct TapRecord {
    /// How sure the record is of the commit.
    pub status: RecordStatus,
    /// What the transaction was.
    pub kind: TapKind,
    /// EF18 type: `2` load, `6` purchase, `9` composite purchase.
    pub transaction_type: u8,
    /// Application serial.
    pub card_serial: [u8; 10],
    /// Issuer ID.
    pub issuer_id: [u8; 8],
    /// The transaction's number on the card: the counter INITIALIZE returned, plus one (online
    /// counter for loads, offline counter for purchases).
    pub counter: u16,
    /// Amount moved, in fen.
    pub amount_fen: u32,
    /// Balance before, in fen.
    pub balance_before_fen: i64,
    /// Balance after, in fen (what it is if the transaction committed).
    pub balance_after_fen: i64,
    /// Terminal ID.
    pub terminal_id: [u8; 6],
    /// Terminal transaction number (PSAM numbering; for loads, the top-up terminal's).
    pub terminal_transaction_number: u32,
    /// Local date and time of the transaction, as sent to the card.
    pub at: DateTime,
    /// City name.
    pub city: String,
    /// City code (BCD, `0x1000` for Beijing).
    pub city_code: u16,
    /// Station name (empty for buses and top-ups).
    pub station: String,
    /// Line code (bus: route).
    pub line: u16,
    /// Station code.
    pub station_code: u16,
    /// Card random of the session.
    pub card_random: [u8; 4],
    /// Key version the card reported.
    pub key_version: u8,
    /// Algorithm ID the card reported.
    pub algorithm_id: u8,
    /// MAC2, when known.
    pub mac2: Option<[u8; 4]>,
    /// TAC; `None` when the proof was gone (recovered from the log, or unconfirmed).
    pub tac: Option<[u8; 4]>,
}

impl TapRecord {
    /// The record's unique ID.
    pub fn tap_id(&self) -> TapId {
        TapId { terminal_id: self.terminal_id, number: self.terminal_transaction_number }
    }

    /// The printed card number: the serial in hex without its first nibble.
    pub fn card_number(&self) -> String {
        let mut text = hex::encode_upper(self.card_serial);
        text.remove(0);
        text
    }

    /// The serial as 20 hex digits.
    pub fn card_serial_hex(&self) -> String {
        hex::encode_upper(self.card_serial)
    }

    /// The last 8 bytes of the serial, which diversify the card's keys.
    pub fn asn8(&self) -> [u8; 8] {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.card_serial[2..]);
        a
    }
}
