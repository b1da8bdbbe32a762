//! The back office's domain: where the money gates charged offline becomes real.
//!
//! Gates and the wallet platform produce [`yitong_record::TapRecord`]s; this crate decides what
//! they prove. It does no I/O: the service (`yitong-server`) stores what it returns and feeds it
//! records, so that every rule here is tested without a database.
//!
//! - [`batch`]: what a gate uploads — its identity, the batch ID and its records — in JSON Lines
//!   or a compact binary encoding.
//! - [`shadow`]: a shadow balance per card — the sequences of its online (load) and offline
//!   (purchase) counters with the balances each transaction left — fed records after their TAC
//!   is verified. It recognises duplicates, settles the gates' unconfirmed records from later
//!   evidence (charged, voided, or pending with an age) and flags what does not add up: a counter
//!   gap, a balance that does not follow, two transactions with one counter (a clone), repeated
//!   TAC failures.
//! - [`hotlist`]: versioned lists of refused card serials per issuer, with deltas for gates.
//! - [`ridership`]: taps per station per hour, the origin–destination matrix and revenue per line
//!   and per operator, for the operators' console.
//! - [`settlement`]: a business day with a cut-over, per-operator and per-issuer totals, and the
//!   positions between issuers and operators across cities, netted per participant.
//!
//! Money is integer fen throughout; every fen of an accepted record lands on exactly one line of
//! a day's report.
#![forbid(unsafe_code)]

pub mod batch;
mod bytes;
mod hex_serde;
pub mod hotlist;
pub mod ridership;
pub mod settlement;
pub mod shadow;

pub use settlement::{
    settle, BusinessDay, CutOver, DayReport, DaySettlement, Participants, PlatformEntry, SettleError,
};
