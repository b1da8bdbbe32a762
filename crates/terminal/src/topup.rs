//! A top-up terminal: INITIALIZE FOR LOAD, the load-key holder's MAC2, CREDIT FOR LOAD.
//!
//! Call order as for a gate tap: [`TopUpTerminal::start_load`], then
//! [`TopUpTerminal::handle_response`] for each answer until [`Next::Done`]; save
//! [`TopUpTerminal::state`] when a `Send` says `persist_first` (and call
//! [`TopUpTerminal::money_command_unsent`] if saving fails). A load whose CREDIT answer was lost
//! stays pending; the card's next visit here settles it from the card's evidence, as a gate does
//! (`crate::doubt`): found committed, the rider paid once and nothing more is loaded; proven not
//! committed, the load runs anew; unknown, the load is handed on unconfirmed and nothing is
//! loaded — the back office settles it from the card's later counters.

use std::collections::BTreeSet;

use yitong_profile::apdu::{self, transaction_type, LoadInit};
use yitong_profile::files::IssuerData;
use yitong_profile::{DateTime, StatusWord};

use crate::doubt::{judge_counter, settle, Inquire, Inquiry};
use crate::error::TapError;
use crate::gate::within_recovery_window;
use crate::outcome::{send, Gathered, Next, Refusal};
use crate::psam::{LoadKeyHolder, LoadRequest, SamError};
use crate::record::{Draft, RecordStatus, TapId, TapKind, TapRecord};
use crate::state::{CardId, GateState, PendingDebit};

/// A machine that loads cards, paid by whatever the rider used (cash, a mobile payment).
pub struct TopUpTerminal {
    terminal_id: [u8; 6],
    next_transaction_number: u32,
    city: String,
    host: Box<dyn LoadKeyHolder>,
    state: GateState,
    hotlist: BTreeSet<[u8; 10]>,
}

#[derive(Debug)]
enum Stage {
    Select,
    Inquire {
        issuer: IssuerData,
        inquiry: Box<Inquiry>,
    },
    Initialize {
        issuer: IssuerData,
    },
    /// The load was refused at the limit: the balance, then the limit, give the headroom.
    ReadBalance,
    ReadLimit {
        balance_fen: i64,
    },
    Credit,
    Finished,
}

/// One load in progress.
#[derive(Debug)]
pub struct Load {
    now: DateTime,
    amount_fen: u32,
    stage: Stage,
    gathered: Gathered,
    undecided: Vec<PendingDebit>,
    asked: Vec<TapId>,
    draft: Option<Box<PendingDebit>>,
}

impl TopUpTerminal {
    /// A terminal with this ID, numbering its loads from `next_transaction_number`.
    pub fn new(terminal_id: [u8; 6], next_transaction_number: u32, city: &str, host: Box<dyn LoadKeyHolder>) -> Self {
        TopUpTerminal {
            terminal_id,
            next_transaction_number,
            city: city.into(),
            host,
            state: GateState::default(),
            hotlist: BTreeSet::new(),
        }
    }

    /// Restores the state saved before a restart.
    pub fn with_state(mut self, state: GateState) -> Self {
        self.state = state;
        self
    }

    /// Replaces the hotlist: listed cards are not loaded.
    pub fn set_hotlist(&mut self, serials: BTreeSet<[u8; 10]>) {
        self.hotlist = serials;
    }

    /// Loads in doubt and records not yet uploaded: save it when asked.
    pub fn state(&self) -> &GateState {
        &self.state
    }

    /// Takes the records for upload.
    pub fn drain_records(&mut self) -> Vec<TapRecord> {
        std::mem::take(&mut self.state.outbox)
    }

    /// The number the next load will use; persist it.
    pub fn next_transaction_number(&self) -> u32 {
        self.next_transaction_number
    }

    /// Starts loading `amount_fen` at local time `now`.
    pub fn start_load(&mut self, now: DateTime, amount_fen: u32) -> (Load, Next) {
        self.state.hand_on_stale(&now);
        let load = Load {
            now,
            amount_fen,
            stage: Stage::Select,
            gathered: Gathered::new(),
            undecided: Vec::new(),
            asked: Vec::new(),
            draft: None,
        };
        (load, send(apdu::select_by_name(&apdu::AID_TUNION)))
    }

    /// The card went silent; with CREDIT sent, the load is in doubt until the card's next visit.
    pub fn card_lost(&mut self, load: Load) -> TapError {
        TapError::CardLost { debit_in_doubt: matches!(load.stage, Stage::Credit) }
    }

    /// The state could not be saved before CREDIT, which is therefore not sent.
    pub fn money_command_unsent(&mut self, load: &mut Load) {
        if let Some(draft) = load.draft.take() {
            self.state.forget(&draft);
        }
        load.stage = Stage::Finished;
    }

    /// Feeds the card's answer to the last command.
    pub fn handle_response(&mut self, load: &mut Load, response: &[u8]) -> Result<Next, TapError> {
        let (data, sw) =
            StatusWord::split(response).ok_or(TapError::BadResponse("answer shorter than a status word"))?;
        let next = match std::mem::replace(&mut load.stage, Stage::Finished) {
            Stage::Select => self.on_select(load, data, sw),
            Stage::Inquire { issuer, inquiry } => {
                // A load's proof carries the MAC2 the card accepted: ours, or another load's that
                // took the counter after ours failed.
                let mut proof_is_ours = |pending: &PendingDebit, mac2| pending.record.mac2 == Some(mac2);
                let next = inquiry.on_answer(data, sw, &mut proof_is_ours)?;
                self.inquire(load, issuer, next)
            }
            Stage::Initialize { issuer } => self.on_initialize(load, issuer, data, sw),
            Stage::ReadBalance => match <[u8; 4]>::try_from(data).ok().filter(|_| sw == StatusWord::OK) {
                Some(balance) => {
                    load.stage = Stage::ReadLimit { balance_fen: i64::from(i32::from_be_bytes(balance)) };
                    Ok(send(apdu::get_balance_limit()))
                }
                None => Ok(load.gathered.refuse(Refusal::BalanceLimit { balance_and_limit_fen: None })),
            },
            Stage::ReadLimit { balance_fen } => {
                let limit = <[u8; 4]>::try_from(data).ok().filter(|_| sw == StatusWord::OK).map(u32::from_be_bytes);
                let balance_and_limit_fen = limit.map(|limit| (balance_fen, limit));
                Ok(load.gathered.refuse(Refusal::BalanceLimit { balance_and_limit_fen }))
            }
            Stage::Credit => self.on_credit(load, data, sw),
            Stage::Finished => Err(TapError::BadResponse("answer after the load ended")),
        }?;
        if let Next::Send { .. } = next {
            load.gathered.apdus += 1;
        }
        Ok(next)
    }

    fn on_select(&mut self, load: &mut Load, data: &[u8], sw: StatusWord) -> Result<Next, TapError> {
        let issuer = match crate::fci::read(data, sw)? {
            Ok(issuer) => issuer,
            Err(why) => return Ok(load.gathered.refuse(why)),
        };
        load.gathered.card_number = Some(issuer.card_number());
        if self.state.outbox_full() {
            return Ok(load.gathered.refuse(Refusal::OutboxFull));
        }
        self.settle_doubts_or_go_on(load, issuer)
    }

    /// Doubts first (the inquiry only reads, and a card refused below might never be asked
    /// again), then whether the card may be loaded.
    fn settle_doubts_or_go_on(&mut self, load: &mut Load, issuer: IssuerData) -> Result<Next, TapError> {
        let id = CardId::new(issuer.issuer_id, &issuer.serial);
        if let Some(pending) = self.state.pending_for_except(&id, &load.asked).cloned() {
            load.asked.push(pending.record.tap_id());
            return self.inquire(load, issuer, Inquiry::start(pending));
        }
        Ok(self.checked_initialize(load, issuer))
    }

    fn checked_initialize(&mut self, load: &mut Load, issuer: IssuerData) -> Next {
        match crate::fci::check(&issuer, &self.hotlist, &load.now) {
            Ok(()) => self.initialize(load, issuer),
            Err(why) => load.gathered.refuse(why),
        }
    }

    /// Goes on with the inquiry into a doubt, and with the load once it is settled.
    fn inquire(&mut self, load: &mut Load, issuer: IssuerData, inquire: Inquire) -> Result<Next, TapError> {
        match inquire {
            Inquire::Ask(inquiry, command) => {
                load.stage = Stage::Inquire { issuer, inquiry: Box::new(inquiry) };
                Ok(send(command))
            }
            Inquire::AskCounter(pending) => {
                load.undecided.push(pending);
                self.settle_doubts_or_go_on(load, issuer)
            }
            // Within the recovery window this visit retries the load the rider paid for: found
            // committed, nothing more is loaded; one the card can no longer tell about is handed
            // on and nothing more is loaded either. Later, or proven never committed, the load
            // runs (after any other doubt of the card).
            Inquire::Settled(pending, verdict, proof) => {
                match settle(&mut self.state, &mut load.gathered.records, &pending, verdict, proof) {
                    Some(record) if within_recovery_window(&record, &load.now) => {
                        if record.status == RecordStatus::Recovered {
                            Ok(load.gathered.complete(&record, None, None))
                        } else {
                            Ok(load.gathered.refuse(Refusal::PreviousLoadUnconfirmed))
                        }
                    }
                    _ => self.settle_doubts_or_go_on(load, issuer),
                }
            }
        }
    }

    fn on_initialize(
        &mut self,
        load: &mut Load,
        issuer: IssuerData,
        data: &[u8],
        sw: StatusWord,
    ) -> Result<Next, TapError> {
        match sw {
            StatusWord::APPLICATION_LOCKED => return Ok(load.gathered.refuse(Refusal::Locked)),
            // Over the card's balance limit: ask the card for its headroom, to say it.
            StatusWord::CONDITIONS_NOT_SATISFIED => {
                load.stage = Stage::ReadBalance;
                return Ok(send(apdu::get_balance()));
            }
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
            Err(SamError::UnknownIssuer) => return Ok(load.gathered.refuse(Refusal::IssuerNotAccepted)),
            Err(SamError::KeyMismatch) => {
                let why = Refusal::KeyMismatch { key_version: init.key_version, algorithm_id: init.algorithm_id };
                return Ok(load.gathered.refuse(why));
            }
            Err(e) => return Err(TapError::Sam(e)),
        };
        // The host verified MAC1, whose session key is bound to the online counter: the counter
        // is the card's own, and decides a doubt the log had no word on.
        let mut unconfirmed_now = false;
        for pending in std::mem::take(&mut load.undecided) {
            let verdict = judge_counter(&pending, init.online_counter);
            let settled = settle(&mut self.state, &mut load.gathered.records, &pending, verdict, None);
            unconfirmed_now |= settled.is_some_and(|r| within_recovery_window(&r, &load.now));
        }
        if unconfirmed_now {
            return Ok(load.gathered.refuse(Refusal::PreviousLoadUnconfirmed));
        }
        let ttn = self.next_transaction_number;
        self.next_transaction_number = ttn.checked_add(1).ok_or(TapError::Sam(SamError::TransactionNumberExhausted))?;
        let balance_before = i64::from(init.balance_fen);
        let mut record = Draft {
            kind: TapKind::Load,
            transaction_type: transaction_type::EP_LOAD,
            issuer: &issuer,
            counter_before: init.online_counter,
            amount_fen: load.amount_fen,
            balance_before_fen: balance_before,
            balance_after_fen: balance_before + i64::from(load.amount_fen),
            terminal_id: self.terminal_id,
            terminal_transaction_number: ttn,
            at: load.now,
            city: &self.city,
            city_code: issuer.city_code(),
            station: "",
            line: 0,
            station_code: 0,
            card_random: init.card_random,
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
        }
        .record();
        record.mac2 = Some(mac2);
        // CREDIT is the money command: from here the load is in doubt until its answer.
        let pending = PendingDebit { counter_before: init.online_counter, record };
        self.state.remember(pending.clone());
        load.draft = Some(Box::new(pending));
        load.stage = Stage::Credit;
        Ok(Next::Send {
            apdu: apdu::credit_for_load(load.now.date_bcd(), load.now.time_bcd(), mac2),
            persist_first: true,
        })
    }

    fn on_credit(&mut self, load: &mut Load, data: &[u8], sw: StatusWord) -> Result<Next, TapError> {
        let pending = load.draft.take().ok_or(TapError::BadResponse("CREDIT answer without a CREDIT"))?;
        if sw == StatusWord::MAC_ERROR {
            // The card refused the host's MAC2 and committed nothing — but a status word carries no
            // MAC (a forged 9302 after a commit would be a free load), so the record is handed on
            // unconfirmed for the back office to void from the card's counters.
            if let Some(pending) = self.state.take(&pending) {
                self.state.hand_on_unconfirmed(pending);
            }
            return Err(TapError::MacRejected { command: "CREDIT FOR LOAD" });
        }
        // As for a gate's DEBIT: only a well-formed success settles the doubt.
        let answer = <[u8; 4]>::try_from(data).ok().filter(|_| sw == StatusWord::OK);
        let Some(tac) = answer else {
            return Err(TapError::AnswerInDoubt { command: "CREDIT FOR LOAD", status: sw });
        };
        self.state.forget(&pending);
        let mut record = pending.record;
        record.tac = Some(tac);
        self.state.push(record.clone());
        load.gathered.records.push(record.clone());
        Ok(load.gathered.complete(&record, None, None))
    }

    fn initialize(&mut self, load: &mut Load, issuer: IssuerData) -> Next {
        load.stage = Stage::Initialize { issuer };
        send(apdu::initialize_for_load(load.amount_fen, self.terminal_id))
    }
}
