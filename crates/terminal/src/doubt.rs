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
//! Unknown ends as an unconfirmed record, never as "it did not happen". [`Inquiry`] runs these
//! exchanges for both kinds of terminal; [`settle`] turns the verdict into a record.

use yitong_profile::apdu::{self, transaction_type, SFI_LOG};
use yitong_profile::files::{LogRecord, LOG_RECORDS_MAX, LOG_RECORD_LEN};
use yitong_profile::StatusWord;

use crate::error::TapError;
use crate::gate::expect_ok;
use crate::record::{RecordStatus, TapRecord};
use crate::state::{CardId, GateState, PendingDebit};

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

/// The card's evidence being gathered about one doubt: GET TRANSACTION PROVE, then EF18.
#[derive(Debug)]
pub(crate) struct Inquiry {
    pending: PendingDebit,
    /// `None` while GET TRANSACTION PROVE is out; else the EF18 record read and whether a newer
    /// record of the counter family was seen.
    log: Option<(u8, bool)>,
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
        Inquire::Ask(Inquiry { pending, log: None }, prove)
    }

    /// Feeds the card's answer. `proof_verdict` tells whether a proof's MAC2 is the pending
    /// session's (committed) or another's (not committed).
    pub(crate) fn on_answer(
        self,
        data: &[u8],
        sw: StatusWord,
        proof_verdict: &mut dyn FnMut(&PendingDebit, [u8; 4]) -> Verdict,
    ) -> Result<Inquire, TapError> {
        let Inquiry { pending, log } = self;
        let Some((number, newer_seen)) = log else {
            if sw == StatusWord::PROOF_UNAVAILABLE {
                // Not committed, or committed and its proof since replaced elsewhere: the
                // card's own log tells.
                return Ok(read_log(pending, 1, false));
            }
            expect_ok("GET TRANSACTION PROVE", sw)?;
            let [m0, m1, m2, m3, t0, t1, t2, t3] =
                <[u8; 8]>::try_from(data).map_err(|_| TapError::BadResponse("GET TRANSACTION PROVE answer"))?;
            let mac2 = [m0, m1, m2, m3];
            let verdict = proof_verdict(&pending, mac2);
            return Ok(Inquire::Settled(pending, verdict, Some((mac2, [t0, t1, t2, t3]))));
        };
        let record = read_log_record(data, sw)?;
        Ok(match judge_log_record(&pending, number, record.as_ref(), newer_seen) {
            Verdict::ReadNext { newer_seen } => read_log(pending, number + 1, newer_seen),
            Verdict::AskCounter => Inquire::AskCounter(pending),
            verdict => Inquire::Settled(pending, verdict, None),
        })
    }
}

fn read_log(pending: PendingDebit, number: u8, newer_seen: bool) -> Inquire {
    Inquire::Ask(
        Inquiry { pending, log: Some((number, newer_seen)) },
        apdu::read_record(SFI_LOG, number, LOG_RECORD_LEN as u8),
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
    let card = CardId::of(&pending.record);
    match verdict {
        Verdict::Committed => {
            let mut record = state.take(&card)?.record;
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
            let pending = state.take(&card)?;
            let record = state.hand_on_unconfirmed(pending);
            records.push(record.clone());
            Some(record)
        }
        Verdict::NotCommitted | Verdict::ReadNext { .. } | Verdict::AskCounter => {
            state.forget(&card);
            None
        }
    }
}
