//! Reading real transit cards without keys, as card-reading apps do. Nothing is written.
//!
//! A T-Union card (and this project's own) is read in full by `yitong_terminal::read_card`.
//! Other city schemes of the PBOC e-purse family are tried in turn: the application is selected
//! (by name, or by FID under the MF), then EF15 (`00B0950000`), the balance (`805C000204`) and the
//! EF18 log (`00B2nnC417`) are read, as far as the card allows.

use serde::Serialize;
use yitong_profile::apdu::{self, SFI_ISSUER, SFI_LOG};
use yitong_profile::files::{IssuerData, LogRecord, LOG_RECORDS_MAX, LOG_RECORD_LEN};
use yitong_profile::StatusWord;
use yitong_terminal::{read_card, CardChannel, CardReport, ChannelError, LogEntry};

/// How to find one scheme's application.
#[derive(Clone, Copy, Debug)]
enum Selector {
    Aid(&'static [u8]),
    /// SELECT the MF (3F00), then this FID.
    Fid(u16),
}

/// The schemes tried, in order (from the card profile's list).
const SCHEMES: &[(&str, Selector)] = &[
    ("City Union", Selector::Aid(&[0xA0, 0x00, 0x00, 0x00, 0x03, 0x86, 0x98, 0x07, 0x01])),
    ("Shenzhen Tong", Selector::Aid(b"PAY.SZT")),
    ("Wuhan Tong", Selector::Aid(b"AP1.WHCTC")),
    ("Lingnan Pass", Selector::Aid(b"PAY.APPY")),
    ("Beijing (FID 1001)", Selector::Fid(0x1001)),
];

/// What a reader learnt of a card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForeignCard {
    /// The scheme that answered.
    pub scheme: String,
    /// The card's ATR, hex.
    pub atr: String,
    /// The full report of a T-Union card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunion: Option<CardReport>,
    /// Card number, when EF15 was readable.
    pub card_number: Option<String>,
    /// Issuer ID, hex.
    pub issuer_id: Option<String>,
    /// City code from the issuer ID.
    pub city_code: Option<String>,
    /// Validity, `YYYYMMDD` each.
    pub valid_from: Option<String>,
    /// Last valid day.
    pub valid_to: Option<String>,
    /// Balance in fen, when the card tells it.
    pub balance_fen: Option<i64>,
    /// EF18, newest first.
    pub log: Vec<LogEntry>,
}

/// No transit application answered, or the reader failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Every scheme was tried; each answered this status word to its SELECT.
    Unknown {
        /// The ATR, hex.
        atr: String,
        /// Scheme and the status word it got.
        tried: Vec<(String, String)>,
    },
    /// The card left or the reader failed.
    Channel(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Unknown { atr, tried } => {
                let tried: Vec<String> = tried.iter().map(|(s, sw)| format!("{s} ({sw})")).collect();
                write!(f, "not a transit card this reader knows (ATR {atr}); tried {}", tried.join(", "))
            }
            ReadError::Channel(e) => write!(f, "reader: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

fn send<C: CardChannel + ?Sized>(c: &mut C, apdu: &[u8]) -> Result<(Vec<u8>, StatusWord), ReadError> {
    let r = c.transmit(apdu).map_err(|e: ChannelError| ReadError::Channel(e.to_string()))?;
    let (data, sw) =
        StatusWord::split(&r).ok_or_else(|| ReadError::Channel("answer shorter than a status word".into()))?;
    Ok((data.to_vec(), sw))
}

/// Reads the card on `channel` (whose ATR is `atr`) with whichever scheme answers.
pub fn read_any<C: CardChannel + ?Sized>(channel: &mut C, atr: &[u8]) -> Result<ForeignCard, ReadError> {
    let atr = hex::encode_upper(atr);
    let mut tried = Vec::new();
    let (_, sw) = send(channel, &apdu::select_by_name(&apdu::AID_TUNION))?;
    if sw == StatusWord::OK || sw == StatusWord::APPLICATION_LOCKED {
        if let Ok(report) = read_card(channel) {
            let mut card = empty("T-Union", &atr);
            card.card_number = Some(report.card_number.clone());
            card.issuer_id = Some(report.issuer_id.clone());
            card.city_code = Some(report.city_code.clone());
            card.valid_from = Some(report.valid_from.clone());
            card.valid_to = Some(report.valid_to.clone());
            card.balance_fen = Some(report.balance_fen);
            card.log = report.log.clone();
            card.tunion = Some(report);
            return Ok(card);
        }
    }
    tried.push(("T-Union".to_string(), sw.to_string()));
    for (scheme, selector) in SCHEMES {
        let sw = match selector {
            Selector::Aid(aid) => send(channel, &apdu::select_by_name(aid))?.1,
            Selector::Fid(fid) => {
                send(channel, &apdu::select_by_fid(apdu::FID_MF))?;
                send(channel, &apdu::select_by_fid(*fid))?.1
            }
        };
        if sw == StatusWord::OK || sw == StatusWord::APPLICATION_LOCKED {
            return read_pboc(channel, scheme, &atr);
        }
        tried.push((scheme.to_string(), sw.to_string()));
    }
    Err(ReadError::Unknown { atr, tried })
}

fn empty(scheme: &str, atr: &str) -> ForeignCard {
    ForeignCard {
        scheme: scheme.into(),
        atr: atr.into(),
        tunion: None,
        card_number: None,
        issuer_id: None,
        city_code: None,
        valid_from: None,
        valid_to: None,
        balance_fen: None,
        log: Vec::new(),
    }
}

/// Reads what a selected PBOC-family e-purse shows without keys.
fn read_pboc<C: CardChannel + ?Sized>(channel: &mut C, scheme: &str, atr: &str) -> Result<ForeignCard, ReadError> {
    let mut card = empty(scheme, atr);
    let (ef15, sw) = send(channel, &apdu::read_binary(SFI_ISSUER, 0, 0))?;
    if let (StatusWord::OK, Ok(issuer)) = (sw, IssuerData::decode(&ef15)) {
        card.card_number = Some(issuer.card_number());
        card.issuer_id = Some(hex::encode_upper(issuer.issuer_id));
        card.city_code = Some(format!("{:04X}", issuer.city_code()));
        card.valid_from = Some(hex::encode_upper(issuer.valid_from));
        card.valid_to = Some(hex::encode_upper(issuer.valid_to));
    }
    let (balance, sw) = send(channel, &apdu::get_balance())?;
    if let (StatusWord::OK, Ok(b)) = (sw, <[u8; 4]>::try_from(balance.as_slice())) {
        card.balance_fen = Some(i64::from(i32::from_be_bytes(b)));
    }
    for n in 1..=LOG_RECORDS_MAX as u8 {
        let (record, sw) = send(channel, &apdu::read_record(SFI_LOG, n, LOG_RECORD_LEN as u8))?;
        let Ok(r) =
            LogRecord::decode(&record).map_err(|_| ()).and_then(|r| if sw == StatusWord::OK { Ok(r) } else { Err(()) })
        else {
            break;
        };
        card.log.push(LogEntry::from(r));
    }
    Ok(card)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A card that knows no transit application.
    struct Blank;

    impl CardChannel for Blank {
        fn transmit(&mut self, c: &[u8]) -> Result<Vec<u8>, ChannelError> {
            Ok(match c {
                [0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00] => vec![0x90, 0x00],
                [0x00, 0xA4, ..] => vec![0x6A, 0x82],
                _ => vec![0x6D, 0x00],
            })
        }
    }

    /// A City Union card: EF15, balance and one log record, all canned answers.
    struct CityUnion;

    impl CardChannel for CityUnion {
        fn transmit(&mut self, c: &[u8]) -> Result<Vec<u8>, ChannelError> {
            let hex = |s: &str| hex::decode(s.replace(' ', "")).unwrap();
            Ok(match hex::encode_upper(c).as_str() {
                "00A4040009A0000000038698070100" => hex("6F00 9000"),
                "00B0950000" => hex("0000290000000007 02 01 10000000000000012345 20200101 20301231 0000 9000"),
                "805C000204" => hex("000004D2 9000"),
                "00B201C417" => hex("0003 000000 000000C8 06 112233445566 20261125 083000 9000"),
                "00B202C417" => hex("6A83"),
                _ => hex("6A82"),
            })
        }
    }

    #[test]
    fn unknown_cards_get_a_clear_message_with_the_atr() {
        let e = read_any(&mut Blank, &[0x3B, 0x8F, 0x80, 0x01]).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("ATR 3B8F8001"), "{text}");
        assert!(text.contains("T-Union (6A82)") && text.contains("Beijing (FID 1001) (6A82)"), "{text}");
    }

    #[test]
    fn city_union_card_is_read_without_keys() {
        let card = read_any(&mut CityUnion, &[0x3B, 0x80, 0x80, 0x01, 0x01]).unwrap();
        assert_eq!(card.scheme, "City Union");
        assert_eq!(card.card_number.as_deref(), Some("0000000000000012345"));
        assert_eq!(card.city_code.as_deref(), Some("2900"));
        assert_eq!(card.balance_fen, Some(1_234));
        assert_eq!(card.log.len(), 1);
        assert_eq!((card.log[0].counter, card.log[0].amount_fen), (3, 200));
    }
}
