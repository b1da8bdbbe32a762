//! Settling a transaction in doubt from the card's evidence, shared by gates and top-up
//! terminals (profile: a commit must never go unrecorded, a purse never be charged twice).
//!
//! When the card comes back, the terminal asks GET TRANSACTION PROVE for the pending counter:
//! - a proof that belongs to the pending session (the caller checks its MAC2) means committed;
//!   a proof of another session means another transaction took that counter: not committed;
//! - `9406` (no proof) sends the terminal to the card's EF18 log, newest first, judged by
//!   [`judge_log_record`]: the pending counter found with the same terminal, time, amount and
//!   type means committed, with other details or below an older record of the same counter means
//!   not committed; a log that no longer reaches back that far means unknown;
//! - a log that says nothing about the counter's family leaves it to the counter INITIALIZE
//!   returns next ([`judge_counter`]): unchanged means not committed, moved means unknown.
//!
//! Unknown ends as an unconfirmed record, never as "it did not happen".

use yitong_profile::apdu::transaction_type;
use yitong_profile::files::{LogRecord, LOG_RECORDS_MAX};

use crate::state::PendingDebit;

/// What the card's evidence says about a transaction in doubt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It committed; from the log, with this counter.
    Committed,
    /// It never committed.
    NotCommitted,
    /// The card can no longer tell.
    Unknown,
    /// Read the next log record; whether a record of the same counter family above the pending
    /// counter was seen so far.
    ReadNext {
        /// Carried to the next record's judgement.
        newer_seen: bool,
    },
    /// The log has no word on it: the counter INITIALIZE returns decides.
    AskCounter,
}

/// Whether `transaction_type` moves the same counter as the pending transaction (loads the online
/// counter; purchases and composite purchases the offline one).
fn same_counter(pending: &PendingDebit, transaction_type: u8) -> bool {
    let load = pending.record.transaction_type == transaction_type::EP_LOAD;
    (transaction_type == transaction_type::EP_LOAD) == load
        && matches!(
            transaction_type,
            transaction_type::EP_LOAD | transaction_type::EP_PURCHASE | transaction_type::CAPP_PURCHASE
        )
}

/// Judges EF18 record number `number` (1 = newest; `None` past the log's end). `newer_seen`:
/// a record of the same counter family above the pending counter was read before.
pub(crate) fn judge_log_record(
    pending: &PendingDebit,
    number: u8,
    log: Option<&LogRecord>,
    newer_seen: bool,
) -> Verdict {
    let p = &pending.record;
    let counter = pending.counter_before.wrapping_add(1);
    let end = |newer_seen| if newer_seen { Verdict::Unknown } else { Verdict::AskCounter };
    let Some(l) = log else { return end(newer_seen) };
    if same_counter(pending, l.transaction_type) {
        if l.counter == counter {
            let same = l.terminal_id == p.terminal_id
                && l.at().ok() == Some(p.at)
                && l.amount_fen == p.amount_fen
                && l.transaction_type == p.transaction_type;
            return if same { Verdict::Committed } else { Verdict::NotCommitted };
        }
        if l.counter < counter {
            // Ours would be newer than this record, and it is not above it.
            return Verdict::NotCommitted;
        }
    }
    let newer_seen = newer_seen || (same_counter(pending, l.transaction_type) && l.counter > counter);
    if usize::from(number) >= LOG_RECORDS_MAX {
        end(newer_seen)
    } else {
        Verdict::ReadNext { newer_seen }
    }
}

/// Judges the counter INITIALIZE returned now, when the log had no word on the doubt.
pub(crate) fn judge_counter(pending: &PendingDebit, counter_now: u16) -> Verdict {
    if counter_now == pending.counter_before {
        Verdict::NotCommitted
    } else {
        Verdict::Unknown
    }
}
