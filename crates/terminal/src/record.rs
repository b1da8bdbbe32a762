//! The clearing records terminals write: the types live in `yitong-record`, shared with the back
//! office; this module drafts them from what a transaction learnt.

use yitong_profile::files::IssuerData;
use yitong_profile::DateTime;
pub use yitong_record::{RecordStatus, TapId, TapKind, TapRecord};

/// What a terminal knows of a transaction when it sends the money command.
pub(crate) struct Draft<'a> {
    pub kind: TapKind,
    pub transaction_type: u8,
    pub issuer: &'a IssuerData,
    /// The counter INITIALIZE returned.
    pub counter_before: u16,
    pub amount_fen: u32,
    pub balance_before_fen: i64,
    pub balance_after_fen: i64,
    pub terminal_id: [u8; 6],
    pub terminal_transaction_number: u32,
    pub at: DateTime,
    pub city: &'a str,
    pub city_code: u16,
    pub station: &'a str,
    pub line: u16,
    pub station_code: u16,
    pub card_random: [u8; 4],
    pub key_version: u8,
    pub algorithm_id: u8,
}

impl Draft<'_> {
    /// The record as it will be if the card commits: confirmed once its answer arrives.
    pub fn record(&self) -> TapRecord {
        TapRecord {
            status: RecordStatus::Confirmed,
            kind: self.kind,
            transaction_type: self.transaction_type,
            card_serial: self.issuer.serial,
            issuer_id: self.issuer.issuer_id,
            counter: self.counter_before.wrapping_add(1),
            amount_fen: self.amount_fen,
            balance_before_fen: self.balance_before_fen,
            balance_after_fen: self.balance_after_fen,
            terminal_id: self.terminal_id,
            terminal_transaction_number: self.terminal_transaction_number,
            at: self.at,
            city: self.city.into(),
            city_code: self.city_code,
            station: self.station.into(),
            line: self.line,
            station_code: self.station_code,
            card_random: self.card_random,
            key_version: self.key_version,
            algorithm_id: self.algorithm_id,
            mac2: None,
            tac: None,
        }
    }
}
