//! Records and a participant table for the settlement tests.

#![allow(dead_code)]

use yitong_clearing::settlement::{CityParticipants, Participants, PlatformEntry, PlatformEntryKind};
use yitong_profile::DateTime;
use yitong_record::{RecordStatus, TapKind, TapRecord};

/// Beijing's issuer ID, `0000 · 1000 · 00000001`.
pub const BEIJING: [u8; 8] = [0, 0, 0x10, 0, 0, 0, 0, 1];
/// Shanghai's issuer ID, `0000 · 2900 · 00000001`.
pub const SHANGHAI: [u8; 8] = [0, 0, 0x29, 0, 0, 0, 0, 1];

/// Beijing (1000) and Shanghai (2900).
pub fn participants() -> Participants {
    Participants::new([
        CityParticipants::new(0x1000, "北京 Beijing", BEIJING, "Beijing Card"),
        CityParticipants::new(0x2900, "上海 Shanghai", SHANGHAI, "Shanghai Card"),
    ])
    .unwrap()
}

pub fn at(text: &str) -> DateTime {
    DateTime::parse(text).unwrap()
}

pub fn terminal(hex_text: &str) -> [u8; 6] {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

/// A confirmed record of a card of `issuer_id` at `terminal_hex`, transaction `number`.
pub fn record(
    kind: TapKind,
    issuer_id: [u8; 8],
    terminal_hex: &str,
    number: u32,
    amount_fen: u32,
    when: &str,
) -> TapRecord {
    let terminal_id = terminal(terminal_hex);
    let [_, _, c0, c1, ..] = issuer_id;
    TapRecord {
        status: RecordStatus::Confirmed,
        kind,
        transaction_type: match kind {
            TapKind::Load => 2,
            TapKind::Single => 6,
            TapKind::Entry | TapKind::Exit => 9,
        },
        card_serial: [c0, c1, 0, 0, 0, 0, 0, 0, 0x12, 0x34],
        issuer_id,
        counter: 1,
        amount_fen,
        balance_before_fen: 10_000,
        balance_after_fen: if kind == TapKind::Load {
            10_000 + i64::from(amount_fen)
        } else {
            10_000 - i64::from(amount_fen)
        },
        terminal_id,
        terminal_transaction_number: number,
        at: at(when),
        city: String::new(),
        city_code: u16::from_be_bytes([terminal_id[0], terminal_id[1]]),
        station: String::new(),
        line: 0,
        station_code: 0,
        card_random: [1, 2, 3, 4],
        key_version: 1,
        algorithm_id: 0,
        mac2: None,
        tac: Some([0x11, 0x22, 0x33, 0x44]),
    }
}

pub fn entry(kind: PlatformEntryKind, issuer_id: [u8; 8], amount_fen: u32, when: &str) -> PlatformEntry {
    PlatformEntry { kind, issuer_id, amount_fen, at: at(when) }
}
