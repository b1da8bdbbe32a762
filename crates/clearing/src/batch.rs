//! Upload batches: what a gate sends the back office — its identity, the batch's ID and its
//! records — in JSON Lines (readable) or a compact binary encoding (for gates on slow links).
//!
//! **JSON Lines**: the first line is the header `{"batch_id": "...", "gate": "<terminal ID hex>",
//! "operator": "..."}`, every further non-blank line one [`TapRecord`] as the gates write them.
//!
//! **Binary** (`application/vnd.yitong.batch`, all integers big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `YTB1` |
//! | 1 + n | batch ID: length n (1–64), UTF-8 |
//! | 6 | gate terminal ID |
//! | 1 + n | operator: length n (1–64), UTF-8 |
//! | 4 | record count |
//! | … | each record: status (0 confirmed, 1 recovered, 2 unconfirmed), kind (0 entry, 1 exit, 2 single, 3 load), transaction type, serial (10), issuer ID (8), counter (2), amount (4), balance before (8, signed), balance after (8, signed), terminal ID (6), terminal transaction number (4), time (7, BCD `YYYYMMDDhhmmss`), city code (2), line (2), station code (2), card random (4), key version, algorithm ID, presence (bit 0 MAC2, bit 1 TAC), MAC2 (4), TAC (4), city name (1 + n), station name (1 + n) |
//!
//! A batch is refused whole when it does not parse, naming the line or byte offset; what the
//! records prove is decided record by record afterwards (TAC, duplicates: see [`crate::shadow`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use yitong_record::{RecordStatus, TapRecord};

use crate::bytes::{kind_byte, BytesError, Reader};

/// Most records in one batch: a gate uploads at least daily; a bound on what one request makes
/// the service parse.
pub const BATCH_RECORDS_MAX: usize = 100_000;
/// Longest batch ID and operator name, bytes.
pub const NAME_BYTES_MAX: usize = 64;
/// The binary encoding's first bytes.
pub const BINARY_MAGIC: &[u8; 4] = b"YTB1";
/// The binary encoding's media type.
pub const BINARY_MEDIA_TYPE: &str = "application/vnd.yitong.batch";

/// Who sent a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchHeader {
    /// The gate's ID of the batch, unique per gate: a batch sent again is recognised by it.
    pub batch_id: String,
    /// The gate's terminal ID.
    #[serde(with = "crate::hex_serde")]
    pub gate: [u8; 6],
    /// The operator running the gate.
    pub operator: String,
}

/// A parsed batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Who sent it.
    pub header: BatchHeader,
    /// Its records, in the gate's order.
    pub records: Vec<TapRecord>,
}

/// Why a batch was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    /// A JSON line that does not parse (1-based line number).
    Line {
        /// The line.
        line: usize,
        /// Why.
        why: String,
    },
    /// Binary input that does not parse at `offset`.
    Binary {
        /// The byte offset.
        offset: usize,
        /// Why.
        why: String,
    },
    /// No header, or a header field out of bounds.
    Header(String),
    /// More than [`BATCH_RECORDS_MAX`] records.
    TooManyRecords(usize),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Line { line, why } => write!(f, "line {line}: {why}"),
            BatchError::Binary { offset, why } => write!(f, "byte {offset}: {why}"),
            BatchError::Header(why) => write!(f, "batch header: {why}"),
            BatchError::TooManyRecords(n) => write!(f, "{n} records: at most {BATCH_RECORDS_MAX} per batch"),
        }
    }
}

impl std::error::Error for BatchError {}

impl From<BytesError> for BatchError {
    fn from(error: BytesError) -> Self {
        BatchError::Binary { offset: error.offset, why: error.why }
    }
}

impl BatchHeader {
    fn check(self) -> Result<BatchHeader, BatchError> {
        for (name, value) in [("batch_id", &self.batch_id), ("operator", &self.operator)] {
            let good =
                !value.trim().is_empty() && value.len() <= NAME_BYTES_MAX && value.chars().all(|c| !c.is_control());
            if !good {
                return Err(BatchError::Header(format!("{name}: 1 to {NAME_BYTES_MAX} bytes of printable text")));
            }
        }
        Ok(self)
    }
}

impl Batch {
    /// Parses JSON Lines: the header line, then one record per line (blank lines skipped).
    pub fn from_json_lines(text: &str) -> Result<Batch, BatchError> {
        let mut lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
        let (index, first) = lines.next().ok_or_else(|| BatchError::Header("empty batch".into()))?;
        let header: BatchHeader = serde_json::from_str(first)
            .map_err(|e| BatchError::Line { line: index + 1, why: format!("not a batch header: {e}") })?;
        let header = header.check()?;
        let mut records = Vec::new();
        for (index, line) in lines {
            if records.len() == BATCH_RECORDS_MAX {
                return Err(BatchError::TooManyRecords(records.len() + 1));
            }
            let record =
                serde_json::from_str(line).map_err(|e| BatchError::Line { line: index + 1, why: e.to_string() })?;
            records.push(record);
        }
        Ok(Batch { header, records })
    }

    /// Writes JSON Lines.
    pub fn to_json_lines(&self) -> Result<String, serde_json::Error> {
        let mut out = serde_json::to_string(&self.header)?;
        out.push('\n');
        for record in &self.records {
            out.push_str(&serde_json::to_string(record)?);
            out.push('\n');
        }
        Ok(out)
    }

    /// Parses the binary encoding.
    pub fn from_binary(bytes: &[u8]) -> Result<Batch, BatchError> {
        let mut r = Reader::new(bytes);
        if r.take(4)? != BINARY_MAGIC {
            return Err(BatchError::Binary { offset: 0, why: "not a Yitong batch (magic YTB1)".into() });
        }
        let batch_id = r.text()?;
        let gate = r.array::<6>()?;
        let operator = r.text()?;
        let header = BatchHeader { batch_id, gate, operator }.check()?;
        let count = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
        if count > BATCH_RECORDS_MAX {
            return Err(BatchError::TooManyRecords(count));
        }
        let mut records = Vec::with_capacity(count.min(1_024));
        for _ in 0..count {
            records.push(read_record(&mut r)?);
        }
        r.finish("record")?;
        Ok(Batch { header, records })
    }

    /// Writes the binary encoding. Texts longer than 255 bytes (never from a gate) are an error.
    pub fn to_binary(&self) -> Result<Vec<u8>, BatchError> {
        let mut out = BINARY_MAGIC.to_vec();
        put_text(&mut out, &self.header.batch_id)?;
        out.extend_from_slice(&self.header.gate);
        put_text(&mut out, &self.header.operator)?;
        let count = u32::try_from(self.records.len()).map_err(|_| BatchError::TooManyRecords(self.records.len()))?;
        out.extend_from_slice(&count.to_be_bytes());
        for record in &self.records {
            put_record(&mut out, record)?;
        }
        Ok(out)
    }

    /// The batch as the back office keeps it: the binary encoding, or JSON Lines for a batch the
    /// binary encoding cannot carry (a text over 255 bytes, only ever from JSON input).
    pub fn pack(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self.to_binary() {
            Ok(bytes) => Ok(bytes),
            Err(_) => self.to_json_lines().map(String::into_bytes),
        }
    }

    /// Reads what [`Batch::pack`] wrote.
    pub fn unpack(bytes: &[u8]) -> Result<Batch, BatchError> {
        if bytes.starts_with(BINARY_MAGIC) {
            return Batch::from_binary(bytes);
        }
        let text = std::str::from_utf8(bytes)
            .map_err(|e| BatchError::Binary { offset: e.valid_up_to(), why: "neither binary nor UTF-8".into() })?;
        Batch::from_json_lines(text)
    }
}

fn put_text(out: &mut Vec<u8>, text: &str) -> Result<(), BatchError> {
    let length =
        u8::try_from(text.len()).map_err(|_| BatchError::Header(format!("`{text}` is longer than 255 bytes")))?;
    out.push(length);
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn put_record(out: &mut Vec<u8>, r: &TapRecord) -> Result<(), BatchError> {
    out.push(match r.status {
        RecordStatus::Confirmed => 0,
        RecordStatus::Recovered => 1,
        RecordStatus::Unconfirmed => 2,
    });
    out.push(kind_byte(r.kind));
    out.push(r.transaction_type);
    out.extend_from_slice(&r.card_serial);
    out.extend_from_slice(&r.issuer_id);
    out.extend_from_slice(&r.counter.to_be_bytes());
    out.extend_from_slice(&r.amount_fen.to_be_bytes());
    out.extend_from_slice(&r.balance_before_fen.to_be_bytes());
    out.extend_from_slice(&r.balance_after_fen.to_be_bytes());
    out.extend_from_slice(&r.terminal_id);
    out.extend_from_slice(&r.terminal_transaction_number.to_be_bytes());
    out.extend_from_slice(&r.at.bcd7());
    out.extend_from_slice(&r.city_code.to_be_bytes());
    out.extend_from_slice(&r.line.to_be_bytes());
    out.extend_from_slice(&r.station_code.to_be_bytes());
    out.extend_from_slice(&r.card_random);
    out.push(r.key_version);
    out.push(r.algorithm_id);
    out.push(u8::from(r.mac2.is_some()) | (u8::from(r.tac.is_some()) << 1));
    out.extend_from_slice(&r.mac2.unwrap_or_default());
    out.extend_from_slice(&r.tac.unwrap_or_default());
    put_text(out, &r.city)?;
    put_text(out, &r.station)
}

fn read_record(r: &mut Reader<'_>) -> Result<TapRecord, BatchError> {
    let start = r.offset();
    let status = match r.u8()? {
        0 => RecordStatus::Confirmed,
        1 => RecordStatus::Recovered,
        2 => RecordStatus::Unconfirmed,
        _ => return Err(Reader::error(start, "unknown record status").into()),
    };
    let kind = r.kind()?;
    let transaction_type = r.u8()?;
    let card_serial = r.array()?;
    let issuer_id = r.array()?;
    let counter = r.u16()?;
    let amount_fen = r.u32()?;
    let balance_before_fen = r.i64()?;
    let balance_after_fen = r.i64()?;
    let terminal_id = r.array()?;
    let terminal_transaction_number = r.u32()?;
    let at = r.time()?;
    let city_code = r.u16()?;
    let line = r.u16()?;
    let station_code = r.u16()?;
    let card_random = r.array()?;
    let key_version = r.u8()?;
    let algorithm_id = r.u8()?;
    let presence_offset = r.offset();
    let presence = r.u8()?;
    if presence > 0b11 {
        return Err(Reader::error(presence_offset, "unknown presence bits").into());
    }
    let mac2: [u8; 4] = r.array()?;
    let tac: [u8; 4] = r.array()?;
    let city = r.text()?;
    let station = r.text()?;
    Ok(TapRecord {
        status,
        kind,
        transaction_type,
        card_serial,
        issuer_id,
        counter,
        amount_fen,
        balance_before_fen,
        balance_after_fen,
        terminal_id,
        terminal_transaction_number,
        at,
        city,
        city_code,
        station,
        line,
        station_code,
        card_random,
        key_version,
        algorithm_id,
        mac2: (presence & 1 != 0).then_some(mac2),
        tac: (presence & 2 != 0).then_some(tac),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use yitong_profile::DateTime;
    use yitong_record::TapKind;

    /// The record of the `yitong-record` crate's documentation example.
    fn exit() -> TapRecord {
        TapRecord {
            status: RecordStatus::Confirmed,
            kind: TapKind::Exit,
            transaction_type: 9,
            card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56],
            issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1],
            counter: 3,
            amount_fen: 400,
            balance_before_fen: 5_000,
            balance_after_fen: 4_600,
            terminal_id: [0x10, 0, 0, 0x0C, 0, 1],
            terminal_transaction_number: 7,
            at: DateTime::new(2026, 11, 20, 8, 30, 0).expect("valid"),
            city: "beijing".into(),
            city_code: 0x1000,
            station: "国贸".into(),
            line: 1,
            station_code: 12,
            card_random: [1, 2, 3, 4],
            key_version: 1,
            algorithm_id: 0,
            mac2: Some([0xAA, 0xBB, 0xCC, 0xDD]),
            tac: Some([0x11, 0x22, 0x33, 0x44]),
        }
    }

    fn batch() -> Batch {
        let header = BatchHeader {
            batch_id: "G1-20261120-1".into(),
            gate: [0x10, 0, 0, 0x0C, 0, 1],
            operator: "beijing-metro".into(),
        };
        let mut unconfirmed = exit();
        unconfirmed.status = RecordStatus::Unconfirmed;
        unconfirmed.terminal_transaction_number = 8;
        unconfirmed.mac2 = None;
        unconfirmed.tac = None;
        Batch { header, records: vec![exit(), unconfirmed] }
    }

    #[test]
    fn json_lines_round_trip() {
        let text = batch().to_json_lines().expect("writes");
        let header = text.lines().next().expect("a header line");
        assert_eq!(header, r#"{"batch_id":"G1-20261120-1","gate":"1000000C0001","operator":"beijing-metro"}"#);
        assert_eq!(Batch::from_json_lines(&text), Ok(batch()));
    }

    #[test]
    fn the_binary_encoding_round_trips_at_its_documented_size() {
        let bytes = batch().to_binary().expect("writes");
        // magic 4, batch ID 1+13, gate 6, operator 1+13, count 4; each record 81 fixed bytes,
        // city 1+7, station 1+6 (国贸 is 6 bytes of UTF-8).
        let fixed = 3 + 10 + 8 + 2 + 4 + 8 + 8 + 6 + 4 + 7 + 2 + 2 + 2 + 4 + 1 + 1 + 1 + 4 + 4;
        assert_eq!(fixed, 81);
        assert_eq!(bytes.len(), 4 + 14 + 6 + 14 + 4 + 2 * (fixed + 8 + 7));
        assert_eq!(&bytes[..5], b"YTB1\x0D");
        assert_eq!(Batch::from_binary(&bytes), Ok(batch()));
    }

    #[test]
    fn packed_batches_are_binary_unless_a_text_does_not_fit() {
        let packed = batch().pack().expect("packs");
        assert_eq!(packed, batch().to_binary().expect("writes"));
        assert_eq!(Batch::unpack(&packed), Ok(batch()));
        // A station name of 256 bytes (JSON input allows it; a byte of length cannot say it).
        let mut long = batch();
        long.records[0].station = "站".repeat(86);
        assert!(long.to_binary().is_err());
        let packed = long.pack().expect("packs");
        assert_eq!(packed, long.to_json_lines().expect("writes").into_bytes());
        assert_eq!(Batch::unpack(&packed), Ok(long));
        assert!(matches!(Batch::unpack(b"\xFF\xFE"), Err(BatchError::Binary { offset: 0, .. })));
    }

    #[test]
    fn bad_input_names_the_line_or_byte() {
        let text = batch().to_json_lines().expect("writes");
        let broken = text.replacen("\"counter\":3", "\"counter\":\"three\"", 1);
        assert!(matches!(Batch::from_json_lines(&broken), Err(BatchError::Line { line: 2, .. })));
        assert!(matches!(Batch::from_json_lines(""), Err(BatchError::Header(_))));
        let no_operator = "{\"batch_id\":\"b\",\"gate\":\"100000000001\",\"operator\":\" \"}\n";
        assert!(matches!(Batch::from_json_lines(no_operator), Err(BatchError::Header(_))));

        let bytes = batch().to_binary().expect("writes");
        assert!(matches!(Batch::from_binary(&bytes[..bytes.len() - 1]), Err(BatchError::Binary { .. })));
        assert!(matches!(Batch::from_binary(b"NOPE"), Err(BatchError::Binary { offset: 0, .. })));
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(
            Batch::from_binary(&extra),
            Err(BatchError::Binary { offset: bytes.len(), why: "bytes after the last record".into() })
        );
        let mut status = bytes.clone();
        let first_record = 4 + 14 + 6 + 14 + 4;
        status[first_record] = 9;
        assert_eq!(
            Batch::from_binary(&status),
            Err(BatchError::Binary { offset: first_record, why: "unknown record status".into() })
        );
        let mut count = bytes;
        count[first_record - 4..first_record].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(Batch::from_binary(&count), Err(BatchError::TooManyRecords(_))));
    }
}
