//! Where each piece of card state lives in the non-volatile image (layout version 3).
//!
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 8 | magic `YTSE`, layout version, reserved |
//! | 8 | 30 | EF15 issuer data |
//! | 38 | 55 | EF16 holder |
//! | 93 | 60 | EF17 management |
//! | 153 | 82 | keys: algorithm ID, key version, DLK, DPK, DTK, DAMK, DAUK |
//! | 235 | 17 | purse: balance (i32), overdraft limit, online counter, offline counter, lock (0 open, 1 blocked, 2 blocked for good), balance limit |
//! | 252 | 232 | EF18 ring: newest index, count, 10 × 23 |
//! | 484 | 384 | EF1A: 3 × 128 |
//! | 868 | 1442 | EF1E ring: newest index, count, 30 × 48 |
//! | 2310 | 12 | last online transaction proof |
//! | 2322 | 12 | last offline transaction proof |
//! | 2334 | 643 | journal: flag, body length, body |
//!
//! Version 2 added the maintenance key (DAMK), version 3 the unblock key (DAUK); older images do
//! not power on.

use yitong_profile::files::{
    HOLDER_LEN, ISSUER_LEN, LOG_RECORDS_MAX, LOG_RECORD_LEN, MANAGEMENT_LEN, TRANSIT_RECORDS_MAX, TRANSIT_RECORD_LEN,
    TRIP_LOG_RECORDS_MAX, TRIP_LOG_RECORD_LEN,
};

pub const MAGIC: [u8; 4] = *b"YTSE";
pub const VERSION: u8 = 3;
pub const HEADER_LEN: usize = 8;

pub const ISSUER: usize = HEADER_LEN;
pub const HOLDER: usize = ISSUER + ISSUER_LEN;
pub const MANAGEMENT: usize = HOLDER + HOLDER_LEN;
pub const KEYS: usize = MANAGEMENT + MANAGEMENT_LEN;
pub const KEYS_LEN: usize = 2 + 5 * 16;
pub const PURSE: usize = KEYS + KEYS_LEN;
pub const PURSE_LEN: usize = 4 + 4 + 2 + 2 + 1 + 4;
pub const LOG: usize = PURSE + PURSE_LEN;
pub const LOG_LEN: usize = 2 + LOG_RECORDS_MAX * LOG_RECORD_LEN;
pub const TRANSIT: usize = LOG + LOG_LEN;
pub const TRANSIT_LEN: usize = TRANSIT_RECORDS_MAX * TRANSIT_RECORD_LEN;
pub const TRIP_LOG: usize = TRANSIT + TRANSIT_LEN;
pub const TRIP_LOG_LEN: usize = 2 + TRIP_LOG_RECORDS_MAX * TRIP_LOG_RECORD_LEN;
pub const PROOF_LEN: usize = 12;
pub const PROOF_ONLINE: usize = TRIP_LOG + TRIP_LOG_LEN;
pub const PROOF_OFFLINE: usize = PROOF_ONLINE + PROOF_LEN;
pub const JOURNAL: usize = PROOF_OFFLINE + PROOF_LEN;
/// Journal body capacity: the largest transaction (a composite purchase) stages its purse, an
/// EF18 record and ring head, an EF1A record, an EF1E record and ring head, and a proof.
pub const JOURNAL_BODY_MAX: usize = 640;
pub const JOURNAL_LEN: usize = 1 + 2 + JOURNAL_BODY_MAX;
/// Size of a card image in bytes.
pub const IMAGE_LEN: usize = JOURNAL + JOURNAL_LEN;

/// Bytes a staged write costs in the journal besides its data: offset (2) and length (2).
pub const JOURNAL_ENTRY_OVERHEAD: usize = 4;
const LARGEST_TRANSACTION: usize = 7 * JOURNAL_ENTRY_OVERHEAD
    + PURSE_LEN
    + LOG_RECORD_LEN
    + 2
    + TRANSIT_RECORD_LEN
    + TRIP_LOG_RECORD_LEN
    + 2
    + PROOF_LEN;
const _: () = assert!(LARGEST_TRANSACTION <= JOURNAL_BODY_MAX);
const _: () = assert!(IMAGE_LEN == 2977);
const _: () = assert!(PURSE - KEYS == KEYS_LEN && LOG - PURSE == PURSE_LEN);
// Blocking stages the purse alone: it always fits the journal.
const _: () = assert!(JOURNAL_ENTRY_OVERHEAD + PURSE_LEN <= JOURNAL_BODY_MAX);
const _: () = assert!(LOG_RECORDS_MAX <= u8::MAX as usize);
const _: () = assert!(TRIP_LOG_RECORDS_MAX <= u8::MAX as usize);
