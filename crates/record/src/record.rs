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
        yitong_profile::files::card_number(&self.card_serial)
    }

    /// The serial as 20 hex digits.
    pub fn card_serial_hex(&self) -> String {
        hex::encode_upper(self.card_serial)
    }

    /// The last 8 bytes of the serial, which diversify the card's keys.
    pub fn asn8(&self) -> [u8; 8] {
        yitong_profile::files::asn8(&self.card_serial)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An unconfirmed exit of a Beijing card at Guomao (no TAC): the crate's tests' sample.
    pub(crate) fn record() -> TapRecord {
        TapRecord {
            status: RecordStatus::Unconfirmed,
            kind: TapKind::Exit,
            transaction_type: 9,
            card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56],
            issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1],
            counter: 7,
            amount_fen: 400,
            balance_before_fen: 1_000,
            balance_after_fen: 600,
            terminal_id: [0x10, 0, 0, 0x0C, 0, 1],
            terminal_transaction_number: 42,
            at: DateTime::new(2026, 11, 25, 8, 30, 0).unwrap(),
            city: "beijing".into(),
            city_code: 0x1000,
            station: "国贸".into(),
            line: 1,
            station_code: 12,
            card_random: [1, 2, 3, 4],
            key_version: 1,
            algorithm_id: 0,
            mac2: None,
            tac: None,
        }
    }

    #[test]
    fn json_lines_are_readable_and_read_back_typed() {
        let r = record();
        let text = serde_json::to_string(&r).unwrap();
        for field in [
            r#""tap_id":"1000000C0001-42""#,
            r#""card_number":"0000000000000123456""#,
            r#""at":"2026-11-25 08:30:00""#,
            r#""city_code":"1000""#,
            r#""status":"unconfirmed""#,
            r#""tac":null"#,
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
        assert_eq!(serde_json::from_str::<TapRecord>(&text).unwrap(), r);
    }

    #[test]
    fn a_bad_field_is_named() {
        let text = serde_json::to_string(&record()).unwrap();
        let cases = [
            (text.replace("\"01020304\"", "\"0102\""), "card_random: `0102` must be 8 hex digits"),
            (text.replace("2026-11-25 08:30:00", "2026-13-25 08:30:00"), "at: `2026-13-25 08:30:00`"),
            (text.replace("1000000C0001-42", "1000000C0001-43"), "tap_id: `1000000C0001-43` does not match"),
            (
                text.replace(r#""card_number":"0000000000000123456""#, r#""card_number":"0000000000000123457""#),
                "card_number: `0000000000000123457`",
            ),
            (text.replace("\"city_code\":\"1000\"", "\"city_code\":\"10\""), "city_code: `10` must be 4 hex digits"),
        ];
        for (bad, message) in cases {
            let error = serde_json::from_str::<TapRecord>(&bad).unwrap_err().to_string();
            assert!(error.contains(message), "{error} should say {message}");
        }
    }
}
