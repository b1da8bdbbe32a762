//! A top-up terminal: INITIALIZE FOR LOAD, the load-key holder's MAC2, CREDIT FOR LOAD.
//!
//! Call order as for a gate tap: [`TopUpTerminal::start_load`], then
//! [`TopUpTerminal::handle_response`] for each answer until [`Next::Done`]; save
//! [`TopUpTerminal::state`] when a `Send` says `persist_first`. A load whose CREDIT answer was
//! lost stays pending; the card's next tap at this terminal resolves it with GET TRANSACTION
//! PROVE (and then loads nothing more: the rider paid once).

use yitong_profile::apdu::{self, transaction_type, LoadInit};
use yitong_profile::files::IssuerData;
use yitong_profile::{tlv, DateTime, StatusWord};

use crate::error::TapError;
use crate::gate::{GateState, Next, PendingDebit, Refusal, TapOutcome, TapResult};
use crate::psam::{LoadKeyHolder, LoadRequest, SamError};
use crate::record::{TapKind, TapRecord};

/// A machine that loads cards, paid by whatever the rider used (cash, a mobile payment).
pub struct TopUpTerminal {
    terminal_id: [u8; 6],
    next_transaction_number: u32,
    city: String,
    host: Box<dyn LoadKeyHolder>,
    state: GateState,
}

#[derive(Debug)]
enum Stage {
    Select,
    Prove { pending: Box<PendingDebit>, issuer: IssuerData },
    Initialize { issuer: IssuerData },
    Credit { record: Box<TapRecord> },
    Finished,
}

/// One load in progress.
#[derive(Debug)]
pub struct Load {
    now: DateTime,
    amount_fen: u32,
    stage: Stage,
    apdus: u32,
}

impl TopUpTerminal {
    /// A terminal with this ID, numbering its loads from `next_transaction_number`.
    pub fn new(terminal_id: [u8; 6], next_transaction_number: u32, city: &str, host: Box<dyn LoadKeyHolder>) -> Self {
        TopUpTerminal { terminal_id, next_transaction_number, city: city.into(), host, state: GateState::default() }
    }

    /// Restores the state saved before a restart.
    pub fn with_state(mut self, state: GateState) -> Self {
        self.state = state;
        self
    }

    /// Loads in doubt and records not yet uploaded: save it when asked.
    pub fn state(&self) -> &GateState {
        &self.state
    }

    /// Takes the completed records for upload.
    pub fn drain_records(&mut self) -> Vec<TapRecord> {
        std::mem::take(&mut self.state.outbox)
    }

    /// The number the next load will use; persist it.
    pub fn next_transaction_number(&self) -> u32 {
        self.next_transaction_number
    }

    /// Starts loading `amount_fen` at local time `now`.
    pub fn start_load(&mut self, now: DateTime, amount_fen: u32) -> (Load, Next) {
        let load = Load { now, amount_fen, stage: Stage::Select, apdus: 1 };
        (load, Next::Send { apdu: apdu::select_by_name(&apdu::AID_TUNION), persist_first: false })
    }

    /// Feeds the card's answer to the last command.
    pub fn handle_response(&mut self, load: &mut Load, response: &[u8]) -> Result<Next, TapError> {
        let (data, sw) =
            StatusWord::split(response).ok_or(TapError::BadResponse("answer shorter than a status word"))?;
        let refuse = |why, apdus| Next::Done(refused(why, apdus));
        match std::mem::replace(&mut load.stage, Stage::Finished) {
            Stage::Select => {
                if sw == StatusWord::APPLICATION_LOCKED {
                    return Ok(refuse(Refusal::Locked, load.apdus));
                }
                if sw != StatusWord::OK {
                    return Ok(refuse(Refusal::NotATransitCard, load.apdus));
                }
                let ef15 = tlv::find(data, &[&[0x6F], &[0xA5], &[0x9F, 0x0C]])
                    .ok_or(TapError::BadResponse("FCI without 9F0C"))?;
                let issuer = IssuerData::decode(ef15).map_err(|_| TapError::BadResponse("EF15 in the FCI"))?;
                if !issuer.is_valid_on(&load.now) {
                    return Ok(refuse(Refusal::Expired, load.apdus));
                }
                load.apdus += 1;
                let serial = hex::encode_upper(issuer.serial);
                if let Some(pending) = self.state.pending_for(&serial) {
                    let counter = pending.counter_before.wrapping_add(1);
                    load.stage = Stage::Prove { pending: Box::new(pending.clone()), issuer };
                    return Ok(Next::Send {
                        apdu: apdu::get_transaction_prove(transaction_type::EP_LOAD, counter),
                        persist_first: false,
                    });
                }
                Ok(self.initialize(load, issuer))
            }
            Stage::Prove { pending, issuer } => {
                if sw == StatusWord::PROOF_UNAVAILABLE {
                    // Not committed (only loads move the online counter, and only here): load anew.
                    self.state.forget(&pending.record.card_serial);
                    load.apdus += 1;
                    return Ok(self.initialize(load, issuer));
                }
                if sw != StatusWord::OK {
                    return Err(TapError::UnexpectedStatus { command: "GET TRANSACTION PROVE", status: sw });
                }
                let proof =
                    <[u8; 8]>::try_from(data).map_err(|_| TapError::BadResponse("GET TRANSACTION PROVE answer"))?;
                self.state.forget(&pending.record.card_serial);
                let mut record = pending.record;
                record.tac = Some(hex::encode_upper(&proof[4..]));
                record.recovered = true;
                Ok(Next::Done(self.completed(record, load.apdus)))
            }
            Stage::Initialize { issuer } => {
                match sw {
                    StatusWord::APPLICATION_LOCKED => return Ok(refuse(Refusal::Locked, load.apdus)),
                    // Over the card's balance limit.
                    StatusWord::CONDITIONS_NOT_SATISFIED => return Ok(refuse(Refusal::BalanceLimit, load.apdus)),
                    StatusWord::OK => {}
                    status => return Err(TapError::UnexpectedStatus { command: "INITIALIZE FOR LOAD", status }),
                }
                let init = LoadInit::decode(data).map_err(|_| TapError::BadResponse("INITIALIZE FOR LOAD answer"))?;
                let request = LoadRequest {
                    issuer_id: issuer.issuer_id,
                    asn8: issuer.asn8(),
                    card_random: init.card_random,
                    online_counter: init.online_counter,
                    balance_before_fen: init.balance_fen,
                    amount_fen: load.amount_fen,
                    terminal_id: self.terminal_id,
                    at: load.now,
                    key_version: init.key_version,
                    algorithm_id: init.algorithm_id,
                    mac1: init.mac1,
                };
                let mac2 = match self.host.authorize_load(&request) {
                    Ok(mac2) => mac2,
                    Err(SamError::UnknownIssuer | SamError::KeyMismatch) => {
                        return Ok(refuse(Refusal::IssuerNotAccepted, load.apdus))
                    }
                    Err(e) => return Err(TapError::Sam(e)),
                };
                let ttn = self.next_transaction_number;
                self.next_transaction_number =
                    ttn.checked_add(1).ok_or(TapError::Sam(SamError::TransactionNumberExhausted))?;
                let record = TapRecord {
                    tap_id: format!("{}-{ttn}", hex::encode_upper(self.terminal_id)),
                    kind: TapKind::Load,
                    transaction_type: transaction_type::EP_LOAD,
                    card_number: issuer.card_number(),
                    card_serial: hex::encode_upper(issuer.serial),
                    issuer_id: hex::encode_upper(issuer.issuer_id),
                    counter: init.online_counter.wrapping_add(1),
                    amount_fen: load.amount_fen,
                    balance_before_fen: i64::from(init.balance_fen),
                    balance_after_fen: i64::from(init.balance_fen) + i64::from(load.amount_fen),
                    terminal_id: hex::encode_upper(self.terminal_id),
                    terminal_transaction_number: ttn,
                    at: load.now.to_string(),
                    city: self.city.clone(),
                    city_code: format!("{:04X}", issuer.city_code()),
                    station: String::new(),
                    line: 0,
                    station_code: 0,
                    card_random: hex::encode_upper(init.card_random),
                    key_version: init.key_version,
                    algorithm_id: init.algorithm_id,
                    mac2: Some(hex::encode_upper(mac2)),
                    tac: None,
                    recovered: false,
                };
                self.state.remember(PendingDebit { counter_before: init.online_counter, record: record.clone() });
                load.stage = Stage::Credit { record: Box::new(record) };
                load.apdus += 1;
                Ok(Next::Send {
                    apdu: apdu::credit_for_load(load.now.date_bcd(), load.now.time_bcd(), mac2),
                    persist_first: true,
                })
            }
            Stage::Credit { mut record } => {
                // As for a gate's DEBIT: only a well-formed success settles the doubt.
                let answer = <[u8; 4]>::try_from(data).ok().filter(|_| sw == StatusWord::OK);
                let Some(tac) = answer else {
                    return Err(TapError::AnswerInDoubt { command: "CREDIT FOR LOAD", status: sw });
                };
                self.state.forget(&record.card_serial);
                record.tac = Some(hex::encode_upper(tac));
                Ok(Next::Done(self.completed(*record, load.apdus)))
            }
            Stage::Finished => Err(TapError::BadResponse("answer after the load ended")),
        }
    }

    fn initialize(&mut self, load: &mut Load, issuer: IssuerData) -> Next {
        load.stage = Stage::Initialize { issuer };
        Next::Send { apdu: apdu::initialize_for_load(load.amount_fen, self.terminal_id), persist_first: false }
    }

    fn completed(&mut self, record: TapRecord, apdus: u32) -> TapOutcome {
        self.state.outbox.push(record.clone());
        TapOutcome {
            result: TapResult::Completed(TapKind::Load),
            amount_fen: record.amount_fen,
            balance_fen: Some(record.balance_after_fen),
            card_number: Some(record.card_number.clone()),
            records: vec![record],
            apdus,
            alarm: None,
        }
    }

    /// The card went silent; with CREDIT sent, the load is in doubt until the card's next read.
    pub fn card_lost(&mut self, load: Load) -> TapError {
        TapError::CardLost { debit_in_doubt: matches!(load.stage, Stage::Credit { .. }) }
    }
}

fn refused(why: Refusal, apdus: u32) -> TapOutcome {
    TapOutcome {
        result: TapResult::Refused(why),
        amount_fen: 0,
        balance_fen: None,
        card_number: None,
        records: Vec::new(),
        apdus,
        alarm: None,
    }
}
