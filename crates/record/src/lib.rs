//! Clearing records: what every completed (or possibly completed) card transaction leaves for
//! the back office, and the TAC check that proves it.
//!
//! The principal type is [`TapRecord`]: typed fields inside (IDs as byte arrays, time as a
//! [`DateTime`], MAC2 and TAC as 4 bytes, amounts in fen), hex and ISO text only at the
//! serialization edge, so that JSON Lines stay readable. Each record carries a [`RecordStatus`]:
//! `confirmed` at the gate, `recovered` later from the card's proof or log, or `unconfirmed` when
//! the card could no longer tell whether it committed — the back office settles those from the
//! card's later counters and balances.
//!
//! [`verify_tac`] recomputes a record's TAC with the issuer's TAC master key, diversified for the
//! card ([`TacKeys`] holds them per issuer and key version, and keeps up to [`CARD_KEYS_CACHED`]
//! card keys it derived, or as many as [`TacKeys::keeping`] says, in a
//! [`generations::Generations`] map: two bounded generations, which the platform's cache of card
//! shadows shares). Only the back office holds TAC keys, and the platform's services that check a
//! load's or a closure's TAC.
//!
//! This crate does no I/O. Gates (`yitong-terminal`) make records; the back office consumes them.
//!
//! ```
//! use yitong_record::{RecordStatus, TapRecord};
//! let line = r#"{"tap_id":"100000010001-7","status":"confirmed","kind":"exit","transaction_type":9,
//!   "card_number":"0000000000000123456","card_serial":"10000000000000123456","issuer_id":"0000100000000001",
//!   "counter":3,"amount_fen":400,"balance_before_fen":5000,"balance_after_fen":4600,
//!   "terminal_id":"100000010001","terminal_transaction_number":7,"at":"2026-11-20 08:30:00",
//!   "city":"beijing","city_code":"1000","station":"国贸","line":1,"station_code":12,
//!   "card_random":"01020304","key_version":1,"algorithm_id":0,"mac2":"AABBCCDD","tac":"11223344"}"#;
//! let record: TapRecord = serde_json::from_str(line).unwrap();
//! assert_eq!(record.status, RecordStatus::Confirmed);
//! assert_eq!(record.tac, Some([0x11, 0x22, 0x33, 0x44]));
//! assert_eq!(record.tap_id().to_string(), "100000010001-7");
//! ```
#![forbid(unsafe_code)]

mod card_keys;
pub mod generations;
mod record;
mod tac;
mod text;

pub use card_keys::CARD_KEYS_CACHED;
pub use record::{RecordStatus, TapId, TapKind, TapRecord};
pub use tac::{card_tac, verify_tac, TacError, TacKeys};
pub use yitong_profile::DateTime;
