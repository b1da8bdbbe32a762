//! Reading a card without keys, as card-reading apps do: identity, validity, balance, counters,
//! trip state and logs. Nothing is written.

use serde::Serialize;
use yitong_profile::apdu::{self, SFI_LOG, SFI_TRANSIT, SFI_TRIP_LOG};
use yitong_profile::files::{
    IssuerData, LogRecord, TransitRecord, TripLogRecord, LOG_RECORDS_MAX, LOG_RECORD_LEN, TRANSIT_RECORD_LEN,
    TRANSIT_RECORD_METRO, TRIP_LOG_RECORDS_MAX, TRIP_LOG_RECORD_LEN,
};
use yitong_profile::{tlv, DateTime, StatusWord};

use crate::channel::CardChannel;
use crate::error::TapError;

/// What a reader sees of a card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardReport {
    /// Printed card number.
    pub card_number: String,
    /// Application serial, 20 hex digits.
    pub serial: String,
    /// Issuer ID, 16 hex digits.
    pub issuer_id: String,
    /// City code from the issuer ID, 4 digits.
    pub city_code: String,
    /// First valid day, `YYYY-MM-DD`.
    pub valid_from: String,
    /// Last valid day, `YYYY-MM-DD`.
    pub valid_to: String,
    /// Whether the application is locked.
    pub locked: bool,
    /// Balance in fen (negative while the overdraft is in use).
    pub balance_fen: i64,
    /// Overdraft limit in fen.
    pub overdraft_limit_fen: u32,
    /// Online (load) counter, when the card would tell (not on locked cards).
    pub online_counter: Option<u16>,
    /// Offline (purchase) counter, when the card would tell.
    pub offline_counter: Option<u16>,
    /// The metro record of EF1A.
    pub metro: MetroState,
    /// EF18, newest first.
    pub log: Vec<LogEntry>,
    /// EF1E, newest first.
    pub trips: Vec<TripEntry>,
}

/// The metro trip state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MetroState {
    /// Inside the paid area.
    pub inside: bool,
    /// Entry line, station and time of the open trip.
    pub entry: Option<StationVisit>,
    /// Last exit.
    pub last_exit: Option<StationVisit>,
    /// Accumulator month, `YYYY-MM`.
    pub month: Option<String>,
    /// Fen paid in that month.
    pub month_spent_fen: u32,
    /// Rides in that month.
    pub month_rides: u16,
}

/// A line and station at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StationVisit {
    /// City code of the gate, 4 digits (an entry may be of another city).
    pub city_code: String,
    /// Line number.
    pub line: u16,
    /// Station number.
    pub station: u16,
    /// Local time.
    pub at: String,
    /// Fen charged there.
    pub amount_fen: u32,
    /// Terminal ID, 12 hex digits.
    pub terminal_id: String,
}

/// An EF18 record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// Transaction number.
    pub counter: u16,
    /// Amount in fen.
    pub amount_fen: u32,
    /// `load`, `purchase`, `composite` or the type code.
    #[serde(rename = "type")]
    pub kind: String,
    /// Terminal ID, 12 hex digits.
    pub terminal_id: String,
    /// Local time, or the raw BCD when it does not decode.
    pub at: String,
}

/// An EF1E record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TripEntry {
    /// `entry`, `exit`, `single` or the type code.
    #[serde(rename = "type")]
    pub kind: String,
    /// Line number.
    pub line: u16,
    /// Station number.
    pub station: u16,
    /// Amount in fen.
    pub amount_fen: u32,
    /// Balance after, in fen.
    pub balance_after_fen: i64,
    /// Local time.
    pub at: String,
    /// City code.
    pub city_code: String,
}

/// Reads everything keyless from the card on `channel`.
pub fn read_card<C: CardChannel + ?Sized>(channel: &mut C) -> Result<CardReport, TapError> {
    let mut send = |apdu: Vec<u8>| -> Result<(Vec<u8>, StatusWord), TapError> {
        let r = channel.transmit(&apdu).map_err(TapError::Channel)?;
        let (data, sw) = StatusWord::split(&r).ok_or(TapError::BadResponse("answer shorter than a status word"))?;
        Ok((data.to_vec(), sw))
    };
    let (fci, sw) = send(apdu::select_by_name(&apdu::AID_TUNION))?;
    if sw != StatusWord::OK && sw != StatusWord::APPLICATION_LOCKED {
        return Err(TapError::UnexpectedStatus { command: "SELECT", status: sw });
    }
    let locked = sw == StatusWord::APPLICATION_LOCKED;
    let ef15 = tlv::find(&fci, &[&[0x6F], &[0xA5], &[0x9F, 0x0C]]).ok_or(TapError::BadResponse("FCI without 9F0C"))?;
    let issuer = IssuerData::decode(ef15).map_err(|_| TapError::BadResponse("EF15"))?;

    let mut word = |p1: u8| -> Result<[u8; 4], TapError> {
        let (d, sw) = send(vec![0x80, 0x5C, p1, 0x02, 0x04])?;
        expect(sw, "GET BALANCE")?;
        d.try_into().map_err(|_| TapError::BadResponse("GET BALANCE answer"))
    };
    let balance_fen = i64::from(i32::from_be_bytes(word(0)?));
    let overdraft_limit_fen = u32::from_be_bytes(word(1)?);

    // INITIALIZE with amount 0 tells the counters and commits nothing; the transaction is
    // dropped by the next command.
    let mut counter = |load: bool| -> Result<Option<u16>, TapError> {
        let command =
            if load { apdu::initialize_for_load(0, [0; 6]) } else { apdu::initialize_for_purchase(false, 0, [0; 6]) };
        let (d, sw) = send(command)?;
        Ok((sw == StatusWord::OK && d.len() >= 6).then(|| u16::from_be_bytes([d[4], d[5]])))
    };
    let online_counter = counter(true)?;
    let offline_counter = counter(false)?;

    let (metro, sw) = send(apdu::read_record(SFI_TRANSIT, TRANSIT_RECORD_METRO, TRANSIT_RECORD_LEN as u8))?;
    expect(sw, "READ RECORD (EF1A)")?;
    let metro = TransitRecord::decode(&metro).map_err(|_| TapError::BadResponse("EF1A metro record"))?;

    let mut records = |sfi: u8, max: usize, len: usize| -> Result<Vec<Vec<u8>>, TapError> {
        let mut out = Vec::new();
        for n in 1..=max as u8 {
            let (d, sw) = send(apdu::read_record(sfi, n, len as u8))?;
            if sw == StatusWord::RECORD_NOT_FOUND {
                break;
            }
            expect(sw, "READ RECORD")?;
            out.push(d);
        }
        Ok(out)
    };
    let log = records(SFI_LOG, LOG_RECORDS_MAX, LOG_RECORD_LEN)?
        .iter()
        .map(|d| LogRecord::decode(d).map(LogEntry::from).map_err(|_| TapError::BadResponse("EF18 record")))
        .collect::<Result<_, _>>()?;
    let trips = records(SFI_TRIP_LOG, TRIP_LOG_RECORDS_MAX, TRIP_LOG_RECORD_LEN)?
        .iter()
        .map(|d| TripLogRecord::decode(d).map(trip_entry).map_err(|_| TapError::BadResponse("EF1E record")))
        .collect::<Result<_, _>>()?;

    Ok(CardReport {
        card_number: issuer.card_number(),
        serial: hex::encode_upper(issuer.serial),
        issuer_id: hex::encode_upper(issuer.issuer_id),
        city_code: format!("{:04X}", issuer.city_code()),
        valid_from: day(issuer.valid_from),
        valid_to: day(issuer.valid_to),
        locked,
        balance_fen,
        overdraft_limit_fen,
        online_counter,
        offline_counter,
        metro: MetroState {
            inside: metro.entry.is_some(),
            entry: metro.entry.map(visit),
            last_exit: metro.last_exit.map(visit),
            month: metro.month.map(|(y, m)| format!("{y:04}-{m:02}")),
            month_spent_fen: metro.month_spent_fen,
            month_rides: metro.month_rides,
        },
        log,
        trips,
    })
}

fn expect(sw: StatusWord, command: &'static str) -> Result<(), TapError> {
    if sw == StatusWord::OK {
        Ok(())
    } else {
        Err(TapError::UnexpectedStatus { command, status: sw })
    }
}

fn day(bcd: [u8; 4]) -> String {
    match DateTime::from_bcd(bcd, [0, 0, 0]) {
        Ok(d) => format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
        Err(_) => hex::encode_upper(bcd),
    }
}

fn visit(p: yitong_profile::files::TripPoint) -> StationVisit {
    StationVisit {
        city_code: format!("{:04X}", p.city),
        line: p.station.line,
        station: p.station.station,
        at: p.at.to_string(),
        amount_fen: p.amount_fen,
        terminal_id: hex::encode_upper(p.terminal_id),
    }
}

impl From<LogRecord> for LogEntry {
    fn from(r: LogRecord) -> Self {
        LogEntry {
            counter: r.counter,
            amount_fen: r.amount_fen,
            kind: match r.transaction_type {
                0x02 => "load".into(),
                0x06 => "purchase".into(),
                0x09 => "composite".into(),
                other => format!("{other:02X}"),
            },
            terminal_id: hex::encode_upper(r.terminal_id),
            at: r.at().map(|t| t.to_string()).unwrap_or_else(|_| hex::encode_upper([&r.date[..], &r.time].concat())),
        }
    }
}

fn trip_entry(r: TripLogRecord) -> TripEntry {
    TripEntry {
        kind: match r.trip_type {
            0x03 => "entry".into(),
            0x04 => "exit".into(),
            0x06 => "single".into(),
            other => format!("{other:02X}"),
        },
        line: r.station.line,
        station: r.station.station,
        amount_fen: r.amount_fen,
        balance_after_fen: i64::from(r.balance_after_fen),
        at: r.at.to_string(),
        city_code: format!("{:04X}", r.city),
    }
}
