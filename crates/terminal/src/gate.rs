//! The gate: configuration, the transactions it must resolve, and the tap state machine.
//!
//! Call order for one tap: [`Gate::start_tap`] gives the first command; send each
//! [`Next::Send`] to the card and feed its answer to [`Gate::handle_response`] until
//! [`Next::Done`]; if the card goes away, call [`Gate::card_lost`] instead. When a `Send` says
//! `persist_first`, save the gate ([`Gate::state`]) before sending: it is the DEBIT, and the gate
//! must remember it if the answer never comes. [`crate::run_tap`] does all of this over a
//! [`crate::CardChannel`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use yitong_profile::apdu::{self, transaction_type, PurchaseInit, SFI_LOG, SFI_TRANSIT, SFI_TRIP_LOG};
use yitong_profile::files::{
    industry, trip_type, IssuerData, LogRecord, StationId, TransitRecord, TripLogRecord, TripPoint, LOG_RECORDS_MAX,
    LOG_RECORD_LEN, TRANSIT_RECORD_BUS, TRANSIT_RECORD_LEN, TRANSIT_RECORD_METRO,
};
use yitong_profile::{tlv, DateTime, StatusWord};

use crate::city::CityPolicy;
use crate::error::TapError;
use crate::fare::{FarePolicy, MetroTrip};
use crate::psam::{Mac1Request, SamError, SecurityModule};
use crate::record::{TapKind, TapRecord};

/// Interrupted transactions a gate remembers; the oldest is forgotten past this (its card has
/// surely left, and the back office still sees the commit in the card's next records).
pub const PENDING_MAX: usize = 64;

/// What the gate does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateMode {
    /// A metro gate: entry or exit by the card's trip state, composite purchase.
    Metro,
    /// A bus validator: single purchase of the flat fare.
    Bus,
}

/// A gate's fixed configuration.
#[derive(Clone, Debug)]
pub struct GateConfig {
    /// The city's policy.
    pub city: CityPolicy,
    /// Metro or bus.
    pub mode: GateMode,
    /// Where the gate stands (line and station; for a bus, the route as line).
    pub station: StationId,
    /// The station's name, for records.
    pub station_name: String,
    /// Application serials refused at the gate.
    pub hotlist: BTreeSet<[u8; 10]>,
}

/// A DEBIT sent whose answer never came.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDebit {
    /// The offline counter INITIALIZE returned.
    pub counter_before: u16,
    /// The record, complete but for MAC2 and TAC.
    pub record: TapRecord,
}

/// Seconds after an interrupted DEBIT within which the card's next tap at the gate completes that
/// passage (the barrier opens for it); later taps settle it and go on as new taps.
pub const RECOVERY_WINDOW_S: i64 = 120;

/// Clearing records a gate holds before they are uploaded; past this it refuses taps.
pub const OUTBOX_MAX: usize = 100_000;

/// What a gate must keep across restarts besides its security module's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateState {
    /// Interrupted transactions, oldest first.
    pub pending: Vec<PendingDebit>,
    /// Completed records not yet handed to the uploader, oldest first.
    #[serde(default)]
    pub outbox: Vec<TapRecord>,
}

impl GateState {
    /// The transaction in doubt for this card, if any.
    pub fn pending_for(&self, card_serial: &str) -> Option<&PendingDebit> {
        self.pending.iter().find(|p| p.record.card_serial == card_serial)
    }

    /// Remembers a transaction in doubt (one per card), forgetting the oldest past
    /// [`PENDING_MAX`].
    pub fn remember(&mut self, pending: PendingDebit) {
        self.forget(&pending.record.card_serial);
        if self.pending.len() == PENDING_MAX {
            self.pending.remove(0);
        }
        self.pending.push(pending);
        assert!(self.pending.len() <= PENDING_MAX);
    }

    /// The doubt about this card is settled.
    pub fn forget(&mut self, card_serial: &str) {
        self.pending.retain(|p| p.record.card_serial != card_serial);
    }
}

/// Why a gate kept its barrier closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The application is locked (`6283`).
    Locked,
    /// The card is on the hotlist.
    Hotlisted,
    /// Past its last valid day.
    Expired,
    /// Before its first valid day.
    NotYetValid,
    /// Not enough balance for the fare (`9401`).
    InsufficientBalance,
    /// Below the minimum balance to enter.
    BelowMinimumBalance,
    /// The gate holds no keys for the card's issuer.
    IssuerNotAccepted,
    /// No transit application answered.
    NotATransitCard,
    /// No fare could be computed for the trip.
    NoFare(String),
    /// The gate's record store is full: upload before charging more.
    OutboxFull,
    /// The load would take the balance past the card's limit.
    BalanceLimit,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Locked => f.write_str("card locked"),
            Refusal::Hotlisted => f.write_str("card on the hotlist"),
            Refusal::Expired => f.write_str("card expired"),
            Refusal::NotYetValid => f.write_str("card not yet valid"),
            Refusal::InsufficientBalance => f.write_str("insufficient balance"),
            Refusal::BelowMinimumBalance => f.write_str("balance below the minimum to enter"),
            Refusal::IssuerNotAccepted => f.write_str("card issuer not accepted here"),
            Refusal::NotATransitCard => f.write_str("not a transit card"),
            Refusal::NoFare(why) => write!(f, "no fare: {why}"),
            Refusal::OutboxFull => f.write_str("gate record store full"),
            Refusal::BalanceLimit => f.write_str("the load would pass the card's balance limit"),
        }
    }
}

/// How a tap ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TapResult {
    /// The transaction committed (or was found committed): the barrier opens.
    Completed(TapKind),
    /// The barrier stays closed; nothing was charged.
    Refused(Refusal),
}

/// The end of a tap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapOutcome {
    /// What happened.
    pub result: TapResult,
    /// Charged by this tap, in fen.
    pub amount_fen: u32,
    /// The card's balance afterwards, when the gate learnt it.
    pub balance_fen: Option<i64>,
    /// The printed card number, when the card was read.
    pub card_number: Option<String>,
    /// Clearing records produced: this tap's, and any interrupted one resolved on the way.
    pub records: Vec<TapRecord>,
    /// Card APDUs exchanged.
    pub apdus: u32,
    /// Something the operator must see though the tap completed (a MAC2 that did not verify).
    pub alarm: Option<String>,
}

/// The next thing to do in a tap.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Send this APDU to the card; with `persist_first`, save [`Gate::state`] before.
    Send {
        /// The command APDU.
        apdu: Vec<u8>,
        /// The command moves money: make the gate's state durable first.
        persist_first: bool,
    },
    /// The tap is over.
    Done(TapOutcome),
}

/// The card as the FCI showed it.
#[derive(Clone, Debug)]
struct CardInfo {
    issuer: IssuerData,
}

/// What the gate will charge, decided from the card's state.
#[derive(Clone, Debug)]
struct Plan {
    kind: TapKind,
    amount_fen: u32,
    /// What the metro month accumulator adds.
    month_counted_fen: u32,
    transit: Option<TransitRecord>,
}

#[derive(Debug)]
enum Stage {
    Select,
    Prove { card: CardInfo, pending: PendingDebit },
    SearchLog { card: CardInfo, pending: PendingDebit, record: u8 },
    ReadTransit { card: CardInfo },
    Initialize { card: CardInfo, plan: Plan },
    UpdateTransit { trip_log: Vec<u8>, debit: Vec<u8> },
    UpdateTripLog { debit: Vec<u8> },
    Debit,
    Finished,
}

/// One tap in progress; see the module documentation for the call order.
#[derive(Debug)]
pub struct Tap {
    now: DateTime,
    stage: Stage,
    apdus: u32,
    card_number: Option<String>,
    records: Vec<TapRecord>,
    /// The record of the DEBIT under way, to finish with its TAC.
    draft: Option<TapRecord>,
}

/// A metro gate or bus validator with its security module and fare policy.
pub struct Gate {
    config: GateConfig,
    sam: Box<dyn SecurityModule>,
    fare: Box<dyn FarePolicy>,
    state: GateState,
}

impl Gate {
    /// A gate restarting with `state` (default for a new gate).
    pub fn new(config: GateConfig, sam: Box<dyn SecurityModule>, fare: Box<dyn FarePolicy>, state: GateState) -> Self {
        Gate { config, sam, fare, state }
    }

    /// What must survive a restart of the gate.
    pub fn state(&self) -> &GateState {
        &self.state
    }

    /// The security module, e.g. to persist its transaction number.
    pub fn security_module(&self) -> &dyn SecurityModule {
        self.sam.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    /// Replaces the hotlist (as the back office distributes a new one).
    pub fn set_hotlist(&mut self, serials: BTreeSet<[u8; 10]>) {
        self.config.hotlist = serials;
    }

    /// Takes the completed records for upload (oldest first); save the state afterwards.
    pub fn drain_records(&mut self) -> Vec<TapRecord> {
        std::mem::take(&mut self.state.outbox)
    }

    /// Starts a tap at local time `now`.
    pub fn start_tap(&mut self, now: DateTime) -> (Tap, Next) {
        let tap = Tap { now, stage: Stage::Select, apdus: 1, card_number: None, records: Vec::new(), draft: None };
        (tap, send(apdu::select_by_name(&apdu::AID_TUNION)))
    }

    /// The card went silent. Returns the error to report; a DEBIT in doubt stays pending.
    pub fn card_lost(&mut self, tap: Tap) -> TapError {
        TapError::CardLost { debit_in_doubt: matches!(tap.stage, Stage::Debit) }
    }

    /// Feeds the card's answer to the last command.
    pub fn handle_response(&mut self, tap: &mut Tap, response: &[u8]) -> Result<Next, TapError> {
        let (data, sw) =
            StatusWord::split(response).ok_or(TapError::BadResponse("answer shorter than a status word"))?;
        let stage = std::mem::replace(&mut tap.stage, Stage::Finished);
        let next = match stage {
            Stage::Select => self.on_select(tap, data, sw),
            Stage::Prove { card, pending } => self.on_prove(tap, card, pending, data, sw),
            Stage::SearchLog { card, pending, record } => self.on_log_record(tap, card, pending, record, data, sw),
            Stage::ReadTransit { card } => self.on_transit(tap, card, data, sw),
            Stage::Initialize { card, plan } => self.on_initialize(tap, card, plan, data, sw),
            Stage::UpdateTransit { trip_log, debit } => {
                expect_ok("UPDATE CAPP DATA CACHE (EF1A)", sw)?;
                tap.stage = Stage::UpdateTripLog { debit };
                Ok(send(trip_log))
            }
            Stage::UpdateTripLog { debit } => {
                expect_ok("UPDATE CAPP DATA CACHE (EF1E)", sw)?;
                self.send_debit(tap, debit)
            }
            Stage::Debit => self.on_debit(tap, data, sw),
            Stage::Finished => return Err(TapError::BadResponse("answer after the tap ended")),
        }?;
        if let Next::Send { .. } = next {
            tap.apdus += 1;
        }
        Ok(next)
    }

    fn on_select(&mut self, tap: &mut Tap, data: &[u8], sw: StatusWord) -> Result<Next, TapError> {
        if sw == StatusWord::APPLICATION_LOCKED {
            return Ok(tap.refuse(Refusal::Locked));
        }
        if sw != StatusWord::OK {
            return Ok(tap.refuse(Refusal::NotATransitCard));
        }
        let ef15 =
            tlv::find(data, &[&[0x6F], &[0xA5], &[0x9F, 0x0C]]).ok_or(TapError::BadResponse("FCI without 9F0C"))?;
        let issuer = IssuerData::decode(ef15).map_err(|_| TapError::BadResponse("EF15 in the FCI"))?;
        tap.card_number = Some(issuer.card_number());
        if self.state.outbox.len() >= OUTBOX_MAX {
            return Ok(tap.refuse(Refusal::OutboxFull));
        }
        if self.config.hotlist.contains(&issuer.serial) {
            return Ok(tap.refuse(Refusal::Hotlisted));
        }
        let today = tap.now.date_bcd();
        if today < issuer.valid_from {
            return Ok(tap.refuse(Refusal::NotYetValid));
        }
        if today > issuer.valid_to {
            return Ok(tap.refuse(Refusal::Expired));
        }
        let card = CardInfo { issuer };
        let serial = hex::encode_upper(issuer.serial);
        // The doubt stays remembered until settled, so that a second loss still knows it.
        if let Some(pending) = self.state.pending_for(&serial).cloned() {
            let prove =
                apdu::get_transaction_prove(pending.record.transaction_type, pending.counter_before.wrapping_add(1));
            tap.stage = Stage::Prove { card, pending };
            return Ok(send(prove));
        }
        self.after_select(tap, card)
    }

    fn after_select(&mut self, tap: &mut Tap, card: CardInfo) -> Result<Next, TapError> {
        match self.transit_record() {
            Some(record) => {
                tap.stage = Stage::ReadTransit { card };
                Ok(send(apdu::read_record(SFI_TRANSIT, record, TRANSIT_RECORD_LEN as u8)))
            }
            None => {
                let amount_fen = self.config.city.bus.flat_fare_fen;
                let plan = Plan { kind: TapKind::Single, amount_fen, month_counted_fen: 0, transit: None };
                self.initialize(tap, card, plan)
            }
        }
    }

    /// The EF1A record this gate keeps: the metro's, or the bus's where the city's transfer
    /// discount needs the last boarding (profile choice; else a bus is a single purchase).
    fn transit_record(&self) -> Option<u8> {
        match self.config.mode {
            GateMode::Metro => Some(TRANSIT_RECORD_METRO),
            GateMode::Bus if self.config.city.bus.transfer_window_minutes > 0 => Some(TRANSIT_RECORD_BUS),
            GateMode::Bus => None,
        }
    }

    fn on_prove(
        &mut self,
        tap: &mut Tap,
        card: CardInfo,
        pending: PendingDebit,
        data: &[u8],
        sw: StatusWord,
    ) -> Result<Next, TapError> {
        if sw == StatusWord::PROOF_UNAVAILABLE {
            // Not committed, or committed and its proof since replaced by later transactions
            // elsewhere: the card's own log tells.
            tap.stage = Stage::SearchLog { card, pending, record: 1 };
            return Ok(send(apdu::read_record(SFI_LOG, 1, LOG_RECORD_LEN as u8)));
        }
        expect_ok("GET TRANSACTION PROVE", sw)?;
        let [m0, m1, m2, m3, t0, t1, t2, t3] =
            <[u8; 8]>::try_from(data).map_err(|_| TapError::BadResponse("GET TRANSACTION PROVE answer"))?;
        self.state.forget(&pending.record.card_serial);
        let mut record = pending.record;
        record.mac2 = Some(hex::encode_upper([m0, m1, m2, m3]));
        record.tac = Some(hex::encode_upper([t0, t1, t2, t3]));
        record.recovered = true;
        self.state.outbox.push(record.clone());
        // A rider back within the window is finishing that passage; later, the old transaction is
        // only settled and this tap is a new one.
        let started = DateTime::parse(&record.at).map(|t| t.seconds_since_epoch()).unwrap_or(i64::MIN);
        if tap.now.seconds_since_epoch().saturating_sub(started) > RECOVERY_WINDOW_S {
            tap.records.push(record);
            return self.after_select(tap, card);
        }
        let outcome = TapOutcome {
            result: TapResult::Completed(record.kind),
            amount_fen: record.amount_fen,
            balance_fen: Some(record.balance_after_fen),
            card_number: tap.card_number.clone(),
            records: vec![record],
            apdus: tap.apdus,
            alarm: None,
        };
        Ok(Next::Done(outcome))
    }

    /// Looks for the doubtful transaction in EF18, newest first: found (same terminal, time,
    /// amount and type), it committed and is recorded without its TAC; past it or the log's end,
    /// it never committed. Either way this tap then goes on as a new one.
    fn on_log_record(
        &mut self,
        tap: &mut Tap,
        card: CardInfo,
        pending: PendingDebit,
        record: u8,
        data: &[u8],
        sw: StatusWord,
    ) -> Result<Next, TapError> {
        let log = match sw {
            StatusWord::RECORD_NOT_FOUND => None,
            _ => {
                expect_ok("READ RECORD (EF18)", sw)?;
                Some(LogRecord::decode(data).map_err(|_| TapError::BadResponse("EF18 record"))?)
            }
        };
        let p = &pending.record;
        let matches = |l: &LogRecord| {
            hex::encode_upper(l.terminal_id) == p.terminal_id
                && l.at().map(|t| t.to_string()).as_deref() == Ok(p.at.as_str())
                && l.amount_fen == p.amount_fen
                && l.transaction_type == p.transaction_type
        };
        match log {
            Some(l) if matches(&l) => {
                self.state.forget(&p.card_serial);
                let mut found = pending.record;
                found.counter = l.counter;
                found.recovered = true;
                self.state.outbox.push(found.clone());
                tap.records.push(found);
                self.after_select(tap, card)
            }
            Some(l) if l.counter > pending.counter_before && usize::from(record) < LOG_RECORDS_MAX => {
                tap.stage = Stage::SearchLog { card, pending, record: record + 1 };
                Ok(send(apdu::read_record(SFI_LOG, record + 1, LOG_RECORD_LEN as u8)))
            }
            _ => {
                self.state.forget(&p.card_serial);
                self.after_select(tap, card)
            }
        }
    }

    fn on_transit(&mut self, tap: &mut Tap, card: CardInfo, data: &[u8], sw: StatusWord) -> Result<Next, TapError> {
        expect_ok("READ RECORD (EF1A)", sw)?;
        let transit = TransitRecord::decode(data).map_err(|_| TapError::BadResponse("EF1A record"))?;
        if self.config.mode == GateMode::Bus {
            let previous = transit.last_exit.as_ref().map(|p| &p.at);
            let amount_fen = self.config.city.bus.fare_fen(previous, &tap.now);
            let plan = Plan { kind: TapKind::Single, amount_fen, month_counted_fen: 0, transit: Some(transit) };
            return self.initialize(tap, card, plan);
        }
        let plan = match transit.entry {
            None => {
                let amount_fen = self.config.city.metro_entry_charge_fen;
                Plan { kind: TapKind::Entry, amount_fen, month_counted_fen: amount_fen, transit: Some(transit) }
            }
            Some(entry) => {
                let trip = MetroTrip {
                    city_code: self.config.city.city_code,
                    entry: entry.station,
                    entry_at: entry.at,
                    exit: self.config.station,
                    exit_at: tap.now,
                    month_spent_fen: transit.spent_in_month_of(&entry.at).0,
                };
                let fare = match self.fare.metro_fare(&trip) {
                    Ok(fare) => fare,
                    Err(e) => return Ok(tap.refuse(Refusal::NoFare(e.0))),
                };
                // What the entry gate charged counts towards the fare (profile choice).
                let amount_fen = fare.fare_fen.saturating_sub(entry.amount_fen);
                let month_counted_fen = fare.month_counted_fen.min(amount_fen);
                Plan { kind: TapKind::Exit, amount_fen, month_counted_fen, transit: Some(transit) }
            }
        };
        self.initialize(tap, card, plan)
    }

    fn initialize(&mut self, tap: &mut Tap, card: CardInfo, plan: Plan) -> Result<Next, TapError> {
        let capp = plan.transit.is_some();
        let command = apdu::initialize_for_purchase(capp, plan.amount_fen, self.sam.terminal_id());
        tap.stage = Stage::Initialize { card, plan };
        Ok(send(command))
    }

    fn on_initialize(
        &mut self,
        tap: &mut Tap,
        card: CardInfo,
        plan: Plan,
        data: &[u8],
        sw: StatusWord,
    ) -> Result<Next, TapError> {
        match sw {
            StatusWord::INSUFFICIENT_BALANCE => return Ok(tap.refuse(Refusal::InsufficientBalance)),
            StatusWord::APPLICATION_LOCKED => return Ok(tap.refuse(Refusal::Locked)),
            _ => expect_ok("INITIALIZE FOR PURCHASE", sw)?,
        }
        let init = PurchaseInit::decode(data).map_err(|_| TapError::BadResponse("INITIALIZE FOR PURCHASE answer"))?;
        let available = i64::from(init.balance_fen) + i64::from(init.overdraft_limit_fen);
        if plan.kind == TapKind::Entry && available < i64::from(self.config.city.metro_min_entry_balance_fen) {
            return Ok(tap.refuse(Refusal::BelowMinimumBalance));
        }
        let issuer = card.issuer;
        let request = Mac1Request {
            card_random: init.card_random,
            offline_counter: init.offline_counter,
            amount_fen: plan.amount_fen,
            transaction_type: if plan.transit.is_some() {
                transaction_type::CAPP_PURCHASE
            } else {
                transaction_type::EP_PURCHASE
            },
            at: tap.now,
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
            asn8: issuer.asn8(),
            issuer_id: issuer.issuer_id,
        };
        let (ttn, mac1) = match self.sam.purchase_mac1(&request) {
            Ok(v) => v,
            Err(SamError::UnknownIssuer | SamError::KeyMismatch) => return Ok(tap.refuse(Refusal::IssuerNotAccepted)),
            Err(e) => return Err(TapError::Sam(e)),
        };
        let balance_after = i64::from(init.balance_fen) - i64::from(plan.amount_fen);
        let terminal_id = self.sam.terminal_id();
        let city = self.config.city.clone();
        let record = TapRecord {
            tap_id: format!("{}-{ttn}", hex::encode_upper(terminal_id)),
            kind: plan.kind,
            transaction_type: request.transaction_type,
            card_number: issuer.card_number(),
            card_serial: hex::encode_upper(issuer.serial),
            issuer_id: hex::encode_upper(issuer.issuer_id),
            counter: init.offline_counter.wrapping_add(1),
            amount_fen: plan.amount_fen,
            balance_before_fen: i64::from(init.balance_fen),
            balance_after_fen: balance_after,
            terminal_id: hex::encode_upper(terminal_id),
            terminal_transaction_number: ttn,
            at: tap.now.to_string(),
            city: city.name.clone(),
            city_code: format!("{:04X}", city.city_code),
            station: self.config.station_name.clone(),
            line: self.config.station.line,
            station_code: self.config.station.station,
            card_random: hex::encode_upper(init.card_random),
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
            mac2: None,
            tac: None,
            recovered: false,
        };
        let debit = apdu::debit_for_purchase(ttn, tap.now.date_bcd(), tap.now.time_bcd(), mac1);
        self.state.remember(PendingDebit { counter_before: init.offline_counter, record: record.clone() });
        tap.draft = Some(record);

        let Some(mut transit) = plan.transit else { return self.send_debit(tap, debit) };
        let point = TripPoint {
            city: city.city_code,
            station: self.config.station,
            terminal_id,
            at: tap.now,
            amount_fen: plan.amount_fen,
        };
        let record_number = self.transit_record().expect("a transit record was read");
        transit.mode = record_number;
        let trip_type = match plan.kind {
            TapKind::Single => {
                // The bus record keeps the last boarding for the next transfer.
                transit.last_exit = Some(point);
                transit.add_to_month(&tap.now, plan.amount_fen, 1);
                trip_type::SINGLE
            }
            TapKind::Entry => {
                transit.entry = Some(point);
                if plan.month_counted_fen > 0 {
                    transit.add_to_month(&tap.now, plan.month_counted_fen, 0);
                }
                trip_type::ENTRY
            }
            _ => {
                transit.entry = None;
                transit.last_exit = Some(point);
                transit.add_to_month(&tap.now, plan.month_counted_fen, 1);
                trip_type::EXIT
            }
        };
        let trip_log = TripLogRecord {
            trip_type,
            terminal_id,
            industry: if self.config.mode == GateMode::Bus { industry::BUS } else { industry::METRO },
            station: self.config.station,
            amount_fen: plan.amount_fen,
            balance_after_fen: i32::try_from(balance_after)
                .map_err(|_| TapError::BadResponse("balance out of range"))?,
            at: tap.now,
            city: city.city_code,
            institution: city.institution,
        };
        tap.stage =
            Stage::UpdateTransit { trip_log: apdu::update_capp_data_cache(SFI_TRIP_LOG, 0, &trip_log.encode()), debit };
        Ok(send(apdu::update_capp_data_cache(SFI_TRANSIT, record_number, &transit.encode())))
    }

    fn send_debit(&mut self, tap: &mut Tap, debit: Vec<u8>) -> Result<Next, TapError> {
        tap.stage = Stage::Debit;
        Ok(Next::Send { apdu: debit, persist_first: true })
    }

    fn on_debit(&mut self, tap: &mut Tap, data: &[u8], sw: StatusWord) -> Result<Next, TapError> {
        let mut record = tap.draft.take().ok_or(TapError::BadResponse("DEBIT answer without a DEBIT"))?;
        // Only a well-formed success settles the doubt here: a refusal may be a garbled success,
        // and GET TRANSACTION PROVE at the next tap costs one APDU and never lies.
        let answer = <[u8; 8]>::try_from(data).ok().filter(|_| sw == StatusWord::OK);
        let Some([t0, t1, t2, t3, m0, m1, m2, m3]) = answer else {
            return Err(TapError::AnswerInDoubt { command: "DEBIT FOR PURCHASE", status: sw });
        };
        self.state.forget(&record.card_serial);
        let mac2 = [m0, m1, m2, m3];
        record.tac = Some(hex::encode_upper([t0, t1, t2, t3]));
        record.mac2 = Some(hex::encode_upper(mac2));
        // The money moved whatever MAC2 says: keep the record; clearing checks the TAC.
        let alarm = self.sam.verify_purchase_mac2(mac2).err().map(|e| format!("MAC2 check failed: {e}"));
        self.state.outbox.push(record.clone());
        tap.records.push(record.clone());
        Ok(Next::Done(TapOutcome {
            result: TapResult::Completed(record.kind),
            amount_fen: record.amount_fen,
            balance_fen: Some(record.balance_after_fen),
            card_number: tap.card_number.clone(),
            records: std::mem::take(&mut tap.records),
            apdus: tap.apdus,
            alarm,
        }))
    }
}

impl Tap {
    fn refuse(&mut self, why: Refusal) -> Next {
        Next::Done(TapOutcome {
            result: TapResult::Refused(why),
            amount_fen: 0,
            balance_fen: None,
            card_number: self.card_number.clone(),
            records: std::mem::take(&mut self.records),
            apdus: self.apdus,
            alarm: None,
        })
    }
}

fn send(apdu: Vec<u8>) -> Next {
    Next::Send { apdu, persist_first: false }
}

fn expect_ok(command: &'static str, status: StatusWord) -> Result<(), TapError> {
    if status == StatusWord::OK {
        Ok(())
    } else {
        Err(TapError::UnexpectedStatus { command, status })
    }
}
