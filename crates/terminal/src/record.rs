//! The clearing record every completed transaction yields.

use serde::{Deserialize, Serialize};

/// What a transaction was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

/// A completed transaction with everything the back office needs to verify its TAC and clear
/// it: TAC inputs (amount, type, terminal ID, terminal transaction number, date and time), the
/// card's identity (issuer ID and serial, which diversify the TAC key), its counter, balances and
/// where it happened.
///
/// `tap_id` (terminal ID and terminal transaction number) is unique per gate and makes uploads
/// idempotent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapRecord {
    /// `<terminal ID hex>-<terminal transaction number>`.
    pub tap_id: String,
    /// What the transaction was.
    pub kind: TapKind,
    /// EF18 type: `2` load, `6` purchase, `9` composite purchase.
    pub transaction_type: u8,
    /// The printed card number.
    pub card_number: String,
    /// Application serial, 20 hex digits.
    pub card_serial: String,
    /// Issuer ID, 16 hex digits.
    pub issuer_id: String,
    /// The transaction's number on the card: the counter INITIALIZE returned, plus one.
    pub counter: u16,
    /// Amount moved, in fen.
    pub amount_fen: u32,
    /// Balance before, in fen.
    pub balance_before_fen: i64,
    /// Balance after, in fen.
    pub balance_after_fen: i64,
    /// Terminal ID, 12 hex digits.
    pub terminal_id: String,
    /// Terminal transaction number (PSAM numbering; for loads, the top-up terminal's).
    pub terminal_transaction_number: u32,
    /// Local date and time, `YYYY-MM-DD HH:MM:SS`.
    pub at: String,
    /// City name.
    pub city: String,
    /// City code, 4 hex (BCD) digits.
    pub city_code: String,
    /// Station name (empty for buses and top-ups).
    pub station: String,
    /// Line number.
    pub line: u16,
    /// Station number.
    pub station_code: u16,
    /// Card random of the session, 8 hex digits.
    pub card_random: String,
    /// Key version the card reported.
    pub key_version: u8,
    /// Algorithm ID the card reported.
    pub algorithm_id: u8,
    /// MAC2, 8 hex digits, when known.
    pub mac2: Option<String>,
    /// TAC, 8 hex digits; `None` only when the card committed but its proof was already gone.
    pub tac: Option<String>,
    /// Completed at a later tap from GET TRANSACTION PROVE, after the answer to DEBIT was lost.
    pub recovered: bool,
}
