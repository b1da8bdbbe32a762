//! The application's files and records, byte for byte (`docs/card-profile.md`).

use alloc::string::String;
use core::fmt::Write;

use crate::{DateTime, InvalidDateTime, Reader, Truncated};

/// Size of EF15, the issuer data file.
pub const ISSUER_LEN: usize = 30;
/// Size of EF16, the holder file.
pub const HOLDER_LEN: usize = 55;
/// Size of EF17, the management file.
pub const MANAGEMENT_LEN: usize = 60;
/// Size of one EF18 transaction log record.
pub const LOG_RECORD_LEN: usize = 23;
/// Records in the cyclic EF18.
pub const LOG_RECORDS_MAX: usize = 10;
/// Size of one EF1A transit record.
pub const TRANSIT_RECORD_LEN: usize = 128;
/// Records in the linear EF1A (profile choice: 1 bus, 2 metro, 3 reserved).
pub const TRANSIT_RECORDS_MAX: usize = 3;
/// EF1A record a bus validator writes.
pub const TRANSIT_RECORD_BUS: u8 = 1;
/// EF1A record a metro gate writes (`80 DC 02 D0 80`).
pub const TRANSIT_RECORD_METRO: u8 = 2;
/// Size of one EF1E trip log record.
pub const TRIP_LOG_RECORD_LEN: usize = 48;
/// Records in the cyclic EF1E.
pub const TRIP_LOG_RECORDS_MAX: usize = 30;

/// A record or file whose bytes do not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the record's size.
    Truncated,
    /// A date or time that is not valid BCD.
    DateTime,
    /// A code byte outside the values the profile defines.
    UnknownCode(u8),
}

impl From<Truncated> for DecodeError {
    fn from(_: Truncated) -> Self {
        DecodeError::Truncated
    }
}

impl From<InvalidDateTime> for DecodeError {
    fn from(_: InvalidDateTime) -> Self {
        DecodeError::DateTime
    }
}

/// EF15: issuer ID, application type and version, serial and validity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IssuerData {
    /// Issuer ID; the city code is at bytes 2-3.
    pub issuer_id: [u8; 8],
    /// Application type: `01` ED, `02` EP, `03` both.
    pub app_type: u8,
    /// Application version.
    pub app_version: u8,
    /// Application serial; its last 8 bytes diversify the card keys.
    pub serial: [u8; 10],
    /// First valid day, BCD `YYYYMMDD`.
    pub valid_from: [u8; 4],
    /// Last valid day, BCD `YYYYMMDD`.
    pub valid_to: [u8; 4],
}

/// The last 8 bytes of an application serial (ASN8), which diversify the card keys.
pub fn asn8(serial: &[u8; 10]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&serial[2..]);
    a
}

/// The printed card number of an application serial: its hex without the first nibble.
pub fn card_number(serial: &[u8; 10]) -> String {
    let mut s = String::with_capacity(20);
    for b in serial {
        let _ = write!(s, "{b:02X}");
    }
    s.split_off(1)
}

impl IssuerData {
    /// The 30 bytes of EF15.
    pub fn encode(&self) -> [u8; ISSUER_LEN] {
        let mut b = [0u8; ISSUER_LEN];
        b[..8].copy_from_slice(&self.issuer_id);
        b[8] = self.app_type;
        b[9] = self.app_version;
        b[10..20].copy_from_slice(&self.serial);
        b[20..24].copy_from_slice(&self.valid_from);
        b[24..28].copy_from_slice(&self.valid_to);
        b
    }

    /// Parses the 30 bytes of EF15.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        Ok(IssuerData {
            issuer_id: r.array()?,
            app_type: r.u8()?,
            app_version: r.u8()?,
            serial: r.array()?,
            valid_from: r.array()?,
            valid_to: r.array()?,
        })
    }

    /// The last 8 bytes of the serial, which diversify the card keys.
    pub fn asn8(&self) -> [u8; 8] {
        asn8(&self.serial)
    }

    /// The city code at bytes 2-3 of the issuer ID (BCD, e.g. `1000` for Beijing).
    pub fn city_code(&self) -> u16 {
        u16::from_be_bytes([self.issuer_id[2], self.issuer_id[3]])
    }

    /// The printed card number: the serial in hex without its first nibble.
    pub fn card_number(&self) -> String {
        card_number(&self.serial)
    }

    /// Whether `day` lies within the validity dates (inclusive). Dates compare as BCD bytes,
    /// which orders them like the calendar.
    pub fn is_valid_on(&self, day: &DateTime) -> bool {
        let d = day.date_bcd();
        self.valid_from <= d && d <= self.valid_to
    }
}

/// A line and station as gates write them (7 bytes: line (2) · station (2) · reserved (3),
/// profile choice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StationId {
    /// Line number.
    pub line: u16,
    /// Station number within the network.
    pub station: u16,
}

impl StationId {
    /// The 7 bytes on the card.
    pub fn encode(&self) -> [u8; 7] {
        let [l0, l1] = self.line.to_be_bytes();
        let [s0, s1] = self.station.to_be_bytes();
        [l0, l1, s0, s1, 0, 0, 0]
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, Truncated> {
        let line = r.u16()?;
        let station = r.u16()?;
        r.take(3)?;
        Ok(StationId { line, station })
    }
}

/// An EF18 transaction log record, which the card writes at every commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The transaction's number: the counter INITIALIZE returned, plus one.
    pub counter: u16,
    /// Overdraft limit at the time, in fen (3 bytes).
    pub overdraft_limit_fen: u32,
    /// Amount in fen.
    pub amount_fen: u32,
    /// Transaction type (`02` load, `06` purchase, `09` composite purchase, …).
    pub transaction_type: u8,
    /// The terminal's ID.
    pub terminal_id: [u8; 6],
    /// BCD `YYYYMMDD` as the terminal sent it.
    pub date: [u8; 4],
    /// BCD `hhmmss` as the terminal sent it.
    pub time: [u8; 3],
}

impl LogRecord {
    /// The 23 record bytes.
    pub fn encode(&self) -> [u8; LOG_RECORD_LEN] {
        let mut b = [0u8; LOG_RECORD_LEN];
        b[..2].copy_from_slice(&self.counter.to_be_bytes());
        b[2..5].copy_from_slice(&self.overdraft_limit_fen.to_be_bytes()[1..]);
        b[5..9].copy_from_slice(&self.amount_fen.to_be_bytes());
        b[9] = self.transaction_type;
        b[10..16].copy_from_slice(&self.terminal_id);
        b[16..20].copy_from_slice(&self.date);
        b[20..23].copy_from_slice(&self.time);
        b
    }

    /// Parses 23 record bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        Ok(LogRecord {
            counter: r.u16()?,
            overdraft_limit_fen: r.u24()?,
            amount_fen: r.u32()?,
            transaction_type: r.u8()?,
            terminal_id: r.array()?,
            date: r.array()?,
            time: r.array()?,
        })
    }

    /// The record's date and time.
    pub fn at(&self) -> Result<DateTime, InvalidDateTime> {
        DateTime::from_bcd(self.date, self.time)
    }
}

/// Trip log record types (first byte of an EF1E record).
pub mod trip_type {
    /// Metro entry.
    pub const ENTRY: u8 = 0x03;
    /// Metro exit.
    pub const EXIT: u8 = 0x04;
    /// Single-fare ride (bus).
    pub const SINGLE: u8 = 0x06;
}

/// Industry codes of the trip log.
pub mod industry {
    /// Metro.
    pub const METRO: u8 = 0x01;
    /// Bus.
    pub const BUS: u8 = 0x02;
}

/// An EF1E trip log record, appended by the gate through UPDATE CAPP DATA CACHE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TripLogRecord {
    /// `03` entry, `04` exit, `06` single.
    pub trip_type: u8,
    /// The terminal's 6-byte ID (8 bytes on the card, left-aligned, zero padded).
    pub terminal_id: [u8; 6],
    /// `01` metro, `02` bus.
    pub industry: u8,
    /// Line and station.
    pub station: StationId,
    /// Amount charged, in fen.
    pub amount_fen: u32,
    /// Balance after, in fen.
    pub balance_after_fen: i32,
    /// When.
    pub at: DateTime,
    /// Acceptor city code.
    pub city: u16,
    /// Acceptor institution (the operator).
    pub institution: [u8; 8],
}

impl TripLogRecord {
    /// The 48 record bytes.
    pub fn encode(&self) -> [u8; TRIP_LOG_RECORD_LEN] {
        let mut b = [0u8; TRIP_LOG_RECORD_LEN];
        b[0] = self.trip_type;
        b[1..7].copy_from_slice(&self.terminal_id);
        b[9] = self.industry;
        b[10..17].copy_from_slice(&self.station.encode());
        b[17..21].copy_from_slice(&self.amount_fen.to_be_bytes());
        b[21..25].copy_from_slice(&self.balance_after_fen.to_be_bytes());
        b[25..32].copy_from_slice(&self.at.bcd7());
        b[32..34].copy_from_slice(&self.city.to_be_bytes());
        b[34..42].copy_from_slice(&self.institution);
        b
    }

    /// Parses 48 record bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let trip_type = r.u8()?;
        let terminal_id = r.array()?;
        r.take(2)?;
        Ok(TripLogRecord {
            trip_type,
            terminal_id,
            industry: r.u8()?,
            station: StationId::read(&mut r)?,
            amount_fen: r.u32()?,
            balance_after_fen: r.u32()? as i32,
            at: DateTime::from_bcd7(r.take(7)?)?,
            city: r.u16()?,
            institution: r.array()?,
        })
    }
}

/// One end of a metro trip as EF1A keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TripPoint {
    /// City code of the gate.
    pub city: u16,
    /// Line and station.
    pub station: StationId,
    /// The gate's terminal ID.
    pub terminal_id: [u8; 6],
    /// When.
    pub at: DateTime,
    /// Amount charged there, in fen.
    pub amount_fen: u32,
}

const TRIP_POINT_LEN: usize = 2 + 7 + 6 + 7 + 4;

impl TripPoint {
    fn write(point: Option<&TripPoint>, out: &mut [u8]) {
        let Some(p) = point else { return };
        out[..2].copy_from_slice(&p.city.to_be_bytes());
        out[2..9].copy_from_slice(&p.station.encode());
        out[9..15].copy_from_slice(&p.terminal_id);
        out[15..22].copy_from_slice(&p.at.bcd7());
        out[22..26].copy_from_slice(&p.amount_fen.to_be_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Option<Self>, DecodeError> {
        let bytes = r.take(TRIP_POINT_LEN)?;
        if bytes.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let mut r = Reader::new(bytes);
        Ok(Some(TripPoint {
            city: r.u16()?,
            station: StationId::read(&mut r)?,
            terminal_id: r.array()?,
            at: DateTime::from_bcd7(r.take(7)?)?,
            amount_fen: r.u32()?,
        }))
    }
}

/// The EF1A transit record of one transport mode (128 bytes, layout a profile choice):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | mode: `00` never written, `01` bus, `02` metro |
/// | 1 | 1 | trip state: `00` no open trip, `01` entered |
/// | 2 | 26 | entry: city (2) · station (7) · terminal (6) · date+time (7) · amount (4) |
/// | 28 | 26 | last exit, same layout |
/// | 54 | 3 | accumulator month, BCD `YYYYMM` |
/// | 57 | 4 | fen paid in that month on this mode |
/// | 61 | 2 | rides in that month |
/// | 63 | 65 | reserved, zero |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransitRecord {
    /// `0` never written, `1` bus, `2` metro.
    pub mode: u8,
    /// The open trip's entry, when the card is inside the paid area.
    pub entry: Option<TripPoint>,
    /// The last completed exit.
    pub last_exit: Option<TripPoint>,
    /// The month the accumulator counts, as (year, month).
    pub month: Option<(u16, u8)>,
    /// Fen paid in that month on this mode.
    pub month_spent_fen: u32,
    /// Rides in that month.
    pub month_rides: u16,
}

impl TransitRecord {
    /// The 128 record bytes.
    pub fn encode(&self) -> [u8; TRANSIT_RECORD_LEN] {
        let mut b = [0u8; TRANSIT_RECORD_LEN];
        b[0] = self.mode;
        b[1] = u8::from(self.entry.is_some());
        TripPoint::write(self.entry.as_ref(), &mut b[2..28]);
        TripPoint::write(self.last_exit.as_ref(), &mut b[28..54]);
        if let Some((year, month)) = self.month {
            let d = DateTime { year, month, day: 1, hour: 0, minute: 0, second: 0 }.date_bcd();
            b[54..57].copy_from_slice(&d[..3]);
        }
        b[57..61].copy_from_slice(&self.month_spent_fen.to_be_bytes());
        b[61..63].copy_from_slice(&self.month_rides.to_be_bytes());
        b
    }

    /// Parses 128 record bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let mode = r.u8()?;
        let state = r.u8()?;
        let entry = TripPoint::read(&mut r)?;
        let last_exit = TripPoint::read(&mut r)?;
        let entry = match (state, entry) {
            (0, _) => None,
            (1, Some(e)) => Some(e),
            (other, _) => return Err(DecodeError::UnknownCode(other)),
        };
        let month = match r.array::<3>()? {
            [0, 0, 0] => None,
            [a, b, c] => {
                let d = DateTime::from_bcd([a, b, c, 0x01], [0, 0, 0])?;
                Some((d.year, d.month))
            }
        };
        let month_spent_fen = r.u32()?;
        let month_rides = r.u16()?;
        r.take(TRANSIT_RECORD_LEN - 63)?;
        Ok(TransitRecord { mode, entry, last_exit, month, month_spent_fen, month_rides })
    }

    /// The month-to-date spend as of `now`: zero once the calendar month has changed.
    pub fn spent_in_month_of(&self, now: &DateTime) -> (u32, u16) {
        if self.month == Some((now.year, now.month)) {
            (self.month_spent_fen, self.month_rides)
        } else {
            (0, 0)
        }
    }

    /// Adds `amount_fen` and `rides` to the accumulator of `now`'s month, restarting it in a new
    /// month.
    pub fn add_to_month(&mut self, now: &DateTime, amount_fen: u32, rides: u16) {
        let (spent, counted) = self.spent_in_month_of(now);
        self.month = Some((now.year, now.month));
        self.month_spent_fen = spent.saturating_add(amount_fen);
        self.month_rides = counted.saturating_add(rides);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime {
        DateTime::parse(s).unwrap()
    }

    #[test]
    fn issuer_data_layout() {
        let d = IssuerData {
            issuer_id: [0x00, 0x00, 0x10, 0x00, 0, 0, 0, 0x01],
            app_type: 0x02,
            app_version: 0x01,
            serial: [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x23, 0x45],
            valid_from: [0x20, 0x26, 0x01, 0x01],
            valid_to: [0x20, 0x35, 0x12, 0x31],
        };
        let b = d.encode();
        assert_eq!(b.len(), 30);
        assert_eq!(&b[10..20], &d.serial);
        assert_eq!(IssuerData::decode(&b), Ok(d));
        assert_eq!(d.city_code(), 0x1000);
        assert_eq!(d.card_number(), "1000000000000012345");
        assert_eq!(d.asn8(), [0, 0, 0, 0, 0, 0x01, 0x23, 0x45]);
        assert!(d.is_valid_on(&at("2035-12-31 23:59")));
        assert!(!d.is_valid_on(&at("2036-01-01 00:00")));
        assert!(!d.is_valid_on(&at("2025-12-31 12:00")));
    }

    #[test]
    fn log_record_layout() {
        let r = LogRecord {
            counter: 0x0102,
            overdraft_limit_fen: 0x030405,
            amount_fen: 0x0607_0809,
            transaction_type: 0x09,
            terminal_id: [0x10, 0x11, 0x12, 0x13, 0x14, 0x15],
            date: [0x20, 0x26, 0x11, 0x25],
            time: [0x08, 0x30, 0x00],
        };
        let expected = [
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x09, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x20, 0x26,
            0x11, 0x25, 0x08, 0x30, 0x00,
        ];
        assert_eq!(r.encode(), expected);
        assert_eq!(LogRecord::decode(&expected), Ok(r));
        assert_eq!(r.at(), Ok(at("2026-11-25 08:30:00")));
    }

    #[test]
    fn trip_log_layout_places_each_field() {
        let r = TripLogRecord {
            trip_type: trip_type::EXIT,
            terminal_id: [1, 2, 3, 4, 5, 6],
            industry: industry::METRO,
            station: StationId { line: 1, station: 0x0102 },
            amount_fen: 500,
            balance_after_fen: -20,
            at: at("2026-11-25 18:05:09"),
            city: 0x1000,
            institution: *b"BJMETRO\0",
        };
        let b = r.encode();
        assert_eq!(b[0], 0x04);
        assert_eq!(&b[1..9], &[1, 2, 3, 4, 5, 6, 0, 0]);
        assert_eq!(b[9], 0x01);
        assert_eq!(&b[10..17], &[0, 1, 1, 2, 0, 0, 0]);
        assert_eq!(&b[17..21], &[0, 0, 0x01, 0xF4]);
        assert_eq!(&b[21..25], &[0xFF, 0xFF, 0xFF, 0xEC]);
        assert_eq!(&b[25..32], &[0x20, 0x26, 0x11, 0x25, 0x18, 0x05, 0x09]);
        assert_eq!(&b[32..34], &[0x10, 0x00]);
        assert_eq!(&b[42..], &[0; 6]);
        assert_eq!(TripLogRecord::decode(&b), Ok(r));
    }

    #[test]
    fn transit_record_round_trips_and_empty_is_default() {
        assert_eq!(TransitRecord::decode(&[0; 128]), Ok(TransitRecord::default()));
        let entry = TripPoint {
            city: 0x1000,
            station: StationId { line: 1, station: 3 },
            terminal_id: [9; 6],
            at: at("2026-11-25 08:00:00"),
            amount_fen: 0,
        };
        let mut rec = TransitRecord { mode: 2, entry: Some(entry), ..Default::default() };
        rec.add_to_month(&at("2026-11-25 09:00:00"), 400, 1);
        let b = rec.encode();
        assert_eq!(b[1], 1);
        assert_eq!(&b[54..57], &[0x20, 0x26, 0x11]);
        assert_eq!(TransitRecord::decode(&b), Ok(rec));
        let mut bad = b;
        bad[1] = 7;
        assert_eq!(TransitRecord::decode(&bad), Err(DecodeError::UnknownCode(7)));
    }

    #[test]
    fn month_accumulator_restarts_in_a_new_month() {
        let mut rec = TransitRecord::default();
        rec.add_to_month(&at("2026-11-30 23:00:00"), 600, 1);
        rec.add_to_month(&at("2026-11-30 23:30:00"), 300, 1);
        assert_eq!(rec.spent_in_month_of(&at("2026-11-30 23:59:00")), (900, 2));
        assert_eq!(rec.spent_in_month_of(&at("2026-12-01 00:00:00")), (0, 0));
        rec.add_to_month(&at("2026-12-01 07:00:00"), 500, 1);
        assert_eq!((rec.month, rec.month_spent_fen, rec.month_rides), (Some((2026, 12)), 500, 1));
    }
}
