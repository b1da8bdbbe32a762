//! The record as text: what JSON Lines carry. Parsing checks every field, so a record read back
//! is as typed as one made at the gate.

use serde::{Deserialize, Serialize};
use yitong_profile::DateTime;

use crate::record::{RecordStatus, TapKind, TapRecord};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordText {
    tap_id: String,
    status: RecordStatus,
    kind: TapKind,
    transaction_type: u8,
    card_number: String,
    card_serial: String,
    issuer_id: String,
    counter: u16,
    amount_fen: u32,
    balance_before_fen: i64,
    balance_after_fen: i64,
    terminal_id: String,
    terminal_transaction_number: u32,
    at: String,
    city: String,
    city_code: String,
    station: String,
    line: u16,
    station_code: u16,
    card_random: String,
    key_version: u8,
    algorithm_id: u8,
    mac2: Option<String>,
    tac: Option<String>,
}

impl From<TapRecord> for RecordText {
    fn from(r: TapRecord) -> Self {
        RecordText {
            tap_id: r.tap_id().to_string(),
            status: r.status,
            kind: r.kind,
            transaction_type: r.transaction_type,
            card_number: r.card_number(),
            card_serial: hex::encode_upper(r.card_serial),
            issuer_id: hex::encode_upper(r.issuer_id),
            counter: r.counter,
            amount_fen: r.amount_fen,
            balance_before_fen: r.balance_before_fen,
            balance_after_fen: r.balance_after_fen,
            terminal_id: hex::encode_upper(r.terminal_id),
            terminal_transaction_number: r.terminal_transaction_number,
            at: r.at.to_string(),
            city: r.city,
            city_code: format!("{:04X}", r.city_code),
            station: r.station,
            line: r.line,
            station_code: r.station_code,
            card_random: hex::encode_upper(r.card_random),
            key_version: r.key_version,
            algorithm_id: r.algorithm_id,
            mac2: r.mac2.map(hex::encode_upper),
            tac: r.tac.map(hex::encode_upper),
        }
    }
}

fn bytes<const N: usize>(field: &str, text: &str) -> Result<[u8; N], String> {
    let bytes = hex::decode(text).map_err(|_| format!("{field}: `{text}` is not hexadecimal"))?;
    bytes.try_into().map_err(|_| format!("{field}: `{text}` must be {} hex digits", N * 2))
}

impl TryFrom<RecordText> for TapRecord {
    type Error = String;

    fn try_from(t: RecordText) -> Result<Self, String> {
        let city_code = u16::from_str_radix(&t.city_code, 16)
            .ok()
            .filter(|_| t.city_code.len() == 4)
            .ok_or_else(|| format!("city_code: `{}` must be 4 hex digits", t.city_code))?;
        let record = TapRecord {
            status: t.status,
            kind: t.kind,
            transaction_type: t.transaction_type,
            card_serial: bytes("card_serial", &t.card_serial)?,
            issuer_id: bytes("issuer_id", &t.issuer_id)?,
            counter: t.counter,
            amount_fen: t.amount_fen,
            balance_before_fen: t.balance_before_fen,
            balance_after_fen: t.balance_after_fen,
            terminal_id: bytes("terminal_id", &t.terminal_id)?,
            terminal_transaction_number: t.terminal_transaction_number,
            at: DateTime::parse(&t.at).map_err(|_| format!("at: `{}` is not YYYY-MM-DD HH:MM:SS", t.at))?,
            city: t.city,
            city_code,
            station: t.station,
            line: t.line,
            station_code: t.station_code,
            card_random: bytes("card_random", &t.card_random)?,
            key_version: t.key_version,
            algorithm_id: t.algorithm_id,
            mac2: t.mac2.as_deref().map(|m| bytes("mac2", m)).transpose()?,
            tac: t.tac.as_deref().map(|m| bytes("tac", m)).transpose()?,
        };
        if record.tap_id().to_string() != t.tap_id {
            return Err(format!("tap_id: `{}` does not match terminal_id and terminal_transaction_number", t.tap_id));
        }
        if record.card_number() != t.card_number {
            return Err(format!("card_number: `{}` does not match card_serial", t.card_number));
        }
        Ok(record)
    }
}
