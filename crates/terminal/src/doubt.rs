//! Settling a transaction in doubt from the card's evidence, shared by gates and top-up
//! terminals (profile: a commit must never go unrecorded, a purse never be charged twice).
//!
//! When the card comes back, the terminal asks GET TRANSACTION PROVE for the pending counter:
//! - a proof that belongs to the pending session (the caller checks its MAC2) means committed;
//! - any other proof, or `9406` (no proof), sends the terminal to the card's EF18 log, newest
//!   first, judged by `judge_log_record`: the pending counter found with the same terminal,
//!   time, amount and type means committed; with other details, or below an older record of the
//!   same counter family, means not committed — if a second read of every record it was read
//!   from answers the same bytes (card answers carry no MAC: one garbled answer must not drop a
//!   doubt), and if no newer record of the family was seen above (an honest log has no gap); a
//!   log that no longer reaches back that far means unknown;
//! - a log that says nothing about the counter's family leaves it to the counter INITIALIZE
//!   returns next ([`judge_counter`]): unchanged means not committed — taken as proven only once
//!   a MAC bound to that counter verified (the load host's check of MAC1; the card's acceptance
//!   of the gate's MAC1 with a good MAC2) — moved means unknown.
//!
//! Unknown ends as an unconfirmed record, never as "it did not happen". [`Inquiry`] runs these
//! exchanges for both kinds of terminal; [`settle`] turns the verdict into a record.

use yitong_profile::apdu::{self, transaction_type, SFI_LOG};
use yitong_profile::files::{LogRecord, LOG_RECORDS_MAX, LOG_RECORD_LEN};
use yitong_profile::StatusWord;

use crate::error::TapError;
use crate::gate::expect_ok;
use crate::record::{RecordStatus, TapRecord};
use crate::state::{GateState, PendingDebit};

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
fn judge_log_record(pending: &PendingDebit, number: u8, log: Option<&LogRecord>, newer_seen: bool) -> Verdict {
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
            // Ours would be newer than this record, and it is not above it — unless a newer
            // record of the family was read above: an honest log has no gap, so one was garbled.
            return if newer_seen { Verdict::Unknown } else { Verdict::NotCommitted };
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

/// The card's evidence being gathered about one doubt: GET TRANSACTION PROVE, then EF18.
#[derive(Debug)]
pub(crate) struct Inquiry {
    pending: PendingDebit,
    step: Step,
}

#[derive(Debug)]
enum Step {
    Prove,
    /// EF18 record `number` is out; whether a newer record of the counter family was seen; the
    /// answers to the records read so far.
    Log {
        number: u8,
        newer_seen: bool,
        read: Vec<Vec<u8>>,
    },
    /// The log said "never committed": every record it was read from is read again, newest
    /// first, and must answer the same bytes; `next` is the one now out.
    Confirm {
        read: Vec<Vec<u8>>,
        next: u8,
    },
}

/// Where an inquiry stands after an answer.
#[derive(Debug)]
pub(crate) enum Inquire {
    /// Send this command and feed its answer to [`Inquiry::on_answer`].
    Ask(Inquiry, Vec<u8>),
    /// The card's verdict (committed, not committed, unknown), with MAC2 and TAC when its proof
    /// gave them.
    Settled(PendingDebit, Verdict, Option<([u8; 4], [u8; 4])>),
    /// The card's log has no word on it: the counter INITIALIZE returns next decides.
    AskCounter(PendingDebit),
}

impl Inquiry {
    /// Starts with GET TRANSACTION PROVE for the pending counter.
    pub(crate) fn start(pending: PendingDebit) -> Inquire {
        let prove =
            apdu::get_transaction_prove(pending.record.transaction_type, pending.counter_before.wrapping_add(1));
        Inquire::Ask(Inquiry { pending, step: Step::Prove }, prove)
    }

    /// Feeds the card's answer. `proof_is_ours` tells whether a proof's MAC2 is the pending
    /// session's. Card answers carry no MAC but the proof's: a proof that is not ours, like
    /// `9406`, sends the inquiry to the log, and the log's "never committed" must read the same
    /// twice — one garbled answer can never drop a doubt.
    pub(crate) fn on_answer(
        self,
        data: &[u8],
        sw: StatusWord,
        proof_is_ours: &mut dyn FnMut(&PendingDebit, [u8; 4]) -> bool,
    ) -> Result<Inquire, TapError> {
        let Inquiry { pending, step } = self;
        Ok(match step {
            Step::Prove => {
                if sw == StatusWord::PROOF_UNAVAILABLE {
                    // Not committed, or committed and its proof since replaced elsewhere: the
                    // card's own log tells.
                    return Ok(read_log(pending, 1, false, Vec::new()));
                }
                expect_ok("GET TRANSACTION PROVE", sw)?;
                let [m0, m1, m2, m3, t0, t1, t2, t3] =
                    <[u8; 8]>::try_from(data).map_err(|_| TapError::BadResponse("GET TRANSACTION PROVE answer"))?;
                let mac2 = [m0, m1, m2, m3];
                if !proof_is_ours(&pending, mac2) {
                    // Another session's proof (another transaction took the counter), or a
                    // garbled one: the log tells which.
                    return Ok(read_log(pending, 1, false, Vec::new()));
                }
                Inquire::Settled(pending, Verdict::Committed, Some((mac2, [t0, t1, t2, t3])))
            }
            Step::Log { number, newer_seen, mut read } => {
                let record = read_log_record(data, sw)?;
                read.push(data.to_vec());
                match judge_log_record(&pending, number, record.as_ref(), newer_seen) {
                    Verdict::ReadNext { newer_seen } => read_log(pending, number + 1, newer_seen, read),
                    Verdict::AskCounter => Inquire::AskCounter(pending),
                    Verdict::NotCommitted => confirm(pending, read, 1),
                    verdict => Inquire::Settled(pending, verdict, None),
                }
            }
            Step::Confirm { read, next } => {
                let expected = read.get(usize::from(next) - 1).map(Vec::as_slice);
                if sw != StatusWord::OK || expected != Some(data) {
                    // The card answered otherwise the second time: one of the reads was garbled.
                    return Ok(Inquire::Settled(pending, Verdict::Unknown, None));
                }
                if usize::from(next) == read.len() {
                    Inquire::Settled(pending, Verdict::NotCommitted, None)
                } else {
                    confirm(pending, read, next + 1)
                }
            }
        })
    }
}

fn read_log(pending: PendingDebit, number: u8, newer_seen: bool, read: Vec<Vec<u8>>) -> Inquire {
    Inquire::Ask(
        Inquiry { pending, step: Step::Log { number, newer_seen, read } },
        apdu::read_record(SFI_LOG, number, LOG_RECORD_LEN as u8),
    )
}

/// Reads EF18 record `next` again, to confirm the log's "never committed" (`read`: every record
/// that verdict was read from, newest first).
fn confirm(pending: PendingDebit, read: Vec<Vec<u8>>, next: u8) -> Inquire {
    Inquire::Ask(
        Inquiry { pending, step: Step::Confirm { read, next } },
        apdu::read_record(SFI_LOG, next, LOG_RECORD_LEN as u8),
    )
}

/// An EF18 record, or `None` past the log's end.
fn read_log_record(data: &[u8], sw: StatusWord) -> Result<Option<LogRecord>, TapError> {
    if sw == StatusWord::RECORD_NOT_FOUND {
        return Ok(None);
    }
    expect_ok("READ RECORD (EF18)", sw)?;
    LogRecord::decode(data).map(Some).map_err(|_| TapError::BadResponse("EF18 record"))
}

/// Ends a doubt by the card's verdict: a recovered record (with the proof's MAC2 and TAC when
/// there was one), an unconfirmed one, or nothing when the card proved it never committed. The
/// record is kept for upload and added to `records`.
pub(crate) fn settle(
    state: &mut GateState,
    records: &mut Vec<TapRecord>,
    pending: &PendingDebit,
    verdict: Verdict,
    proof: Option<([u8; 4], [u8; 4])>,
) -> Option<TapRecord> {
    match verdict {
        Verdict::Committed => {
            let mut record = state.take(pending)?.record;
            record.status = RecordStatus::Recovered;
            if let Some((mac2, tac)) = proof {
                record.mac2 = Some(mac2);
                record.tac = Some(tac);
            }
            state.push(record.clone());
            records.push(record.clone());
            Some(record)
        }
        Verdict::Unknown => {
            let pending = state.take(pending)?;
            let record = state.hand_on_unconfirmed(pending);
            records.push(record.clone());
            Some(record)
        }
        Verdict::NotCommitted | Verdict::ReadNext { .. } | Verdict::AskCounter => {
            state.forget(pending);
            None
        }
    }
}
