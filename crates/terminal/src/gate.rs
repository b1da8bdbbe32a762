//! The gate: configuration and the tap state machine.
//!
//! Call order for one tap: [`Gate::start_tap`] gives the first command; send each
//! [`Next::Send`] to the card and feed its answer to [`Gate::handle_response`] until
//! [`Next::Done`]; if the card goes away, call [`Gate::card_lost`] instead. When a `Send` says
//! `persist_first`, save the gate ([`Gate::state`]) before sending: it is the DEBIT, and the gate
//! must remember it if the answer never comes; if saving fails, call
//! [`Gate::money_command_unsent`] and do not send it. [`crate::run_tap`] does all of this over a
//! [`crate::CardChannel`].

use std::collections::BTreeSet;

use yitong_profile::apdu::{self, transaction_type, PurchaseInit, SFI_TRANSIT, SFI_TRIP_LOG};
use yitong_profile::files::{
    industry, trip_type, IssuerData, StationId, TransitRecord, TripLogRecord, TripPoint, TRANSIT_RECORD_BUS,
    TRANSIT_RECORD_LEN, TRANSIT_RECORD_METRO,
};
use yitong_profile::{DateTime, StatusWord};

use crate::city::CityPolicy;
use crate::doubt::{judge_counter, settle, Inquire, Inquiry, Verdict};
use crate::error::TapError;
use crate::fare::{FarePolicy, MetroFare, MetroTrip};
use crate::outcome::{send, Gathered, Next, Refusal};
use crate::psam::{Mac1Request, SamError, SecurityModule};
use crate::record::{Draft, RecordStatus, TapId, TapKind, TapRecord};
use crate::state::{CardId, GateState, PendingDebit};

/// What the gate does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GateMode {
    /// A metro gate: entry or exit by the card's trip state, composite purchase.
    Metro,
    /// A bus validator: single purchase of the flat fare.
    Bus,
}

/// Which way a metro gate lets riders through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Into the paid area only.
    In,
    /// Out of the paid area only.
    Out,
    /// Either way, by the card's trip state.
    #[default]
    Both,
}

/// A gate's fixed configuration.
#[derive(Clone, Debug)]
pub struct GateConfig {
    /// The city's policy.
    pub city: CityPolicy,
    /// Metro or bus.
    pub mode: GateMode,
    /// Which way a metro gate lets riders through (ignored by bus validators).
    pub direction: Direction,
    /// Where the gate stands (line and station; for a bus, the route as line).
    pub station: StationId,
    /// The station's name, for records.
    pub station_name: String,
    /// Application serials refused at the gate.
    pub hotlist: BTreeSet<[u8; 10]>,
}

/// Seconds after an interrupted DEBIT within which the card's next tap at the gate completes that
/// passage (the barrier opens for it); later taps settle it and go on as new taps.
pub const RECOVERY_WINDOW_S: i64 = 120;

/// Whether a settled transaction is recent enough that this visit is its retry: the rider is
/// finishing that passage (a gate) or that paid load (a top-up terminal).
pub(crate) fn within_recovery_window(record: &TapRecord, now: &DateTime) -> bool {
    now.seconds_since_epoch().saturating_sub(record.at.seconds_since_epoch()) <= RECOVERY_WINDOW_S
}

/// What the gate will charge, decided from the card's state.
#[derive(Clone, Debug)]
struct Plan {
    kind: TapKind,
    amount_fen: u32,
    /// What the metro month accumulator adds.
    month_counted_fen: u32,
    transit: Option<TransitRecord>,
    fare: Option<MetroFare>,
}

#[derive(Debug)]
enum Stage {
    Select,
    Challenge { card: IssuerData },
    Block,
    Inquire { card: IssuerData, inquiry: Inquiry },
    ReadTransit { card: IssuerData },
    Initialize { card: IssuerData, plan: Plan },
    UpdateTransit { trip_log: Vec<u8>, debit: Vec<u8>, fare: Option<MetroFare> },
    UpdateTripLog { debit: Vec<u8>, fare: Option<MetroFare> },
    Debit { fare: Option<MetroFare> },
    Finished,
}

/// One tap in progress; see the module documentation for the call order.
#[derive(Debug)]
pub struct Tap {
    now: DateTime,
    stage: Stage,
    gathered: Gathered,
    /// Doubts the card's log could not settle: the counter INITIALIZE returns decides them.
    undecided: Vec<PendingDebit>,
    /// Doubts of this card asked about in this tap.
    asked: Vec<TapId>,
    /// The DEBIT under way, to finish with its TAC.
    draft: Option<PendingDebit>,
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

    /// Takes the records for upload (oldest first); save the state afterwards.
    pub fn drain_records(&mut self) -> Vec<TapRecord> {
        std::mem::take(&mut self.state.outbox)
    }

    /// Starts a tap at local time `now`.
    pub fn start_tap(&mut self, now: DateTime) -> (Tap, Next) {
        self.state.hand_on_stale(&now);
        let tap = Tap {
            now,
            stage: Stage::Select,
            gathered: Gathered::new(),
            undecided: Vec::new(),
            asked: Vec::new(),
            draft: None,
        };
        (tap, send(apdu::select_by_name(&apdu::AID_TUNION)))
    }

    /// The card went silent. Returns the error to report; a DEBIT in doubt stays pending.
    pub fn card_lost(&mut self, tap: Tap) -> TapError {
        TapError::CardLost { debit_in_doubt: matches!(tap.stage, Stage::Debit { .. }) }
    }

    /// The state could not be saved before DEBIT, which is therefore not sent: no doubt starts.
    pub fn money_command_unsent(&mut self, tap: &mut Tap) {
        if let Some(draft) = tap.draft.take() {
            self.state.forget(&draft);
        }
        tap.stage = Stage::Finished;
    }

    /// Feeds the card's answer to the last command.
    pub fn handle_response(&mut self, tap: &mut Tap, response: &[u8]) -> Result<Next, TapError> {
        let (data, sw) =
            StatusWord::split(response).ok_or(TapError::BadResponse("answer shorter than a status word"))?;
        let stage = std::mem::replace(&mut tap.stage, Stage::Finished);
        let next = match stage {
            Stage::Select => self.on_select(tap, data, sw),
            Stage::Challenge { card } => self.on_challenge(tap, card, data, sw),
            Stage::Block => Ok(tap.gathered.refuse(Refusal::Hotlisted { blocked: sw == StatusWord::OK })),
            Stage::Inquire { card, inquiry } => self.on_inquiry(tap, card, inquiry, data, sw),
            Stage::ReadTransit { card } => self.on_transit(tap, card, data, sw),
            Stage::Initialize { card, plan } => self.on_initialize(tap, card, plan, data, sw),
            Stage::UpdateTransit { trip_log, debit, fare } => {
                expect_ok("UPDATE CAPP DATA CACHE (EF1A)", sw)?;
                tap.stage = Stage::UpdateTripLog { debit, fare };
                Ok(send(trip_log))
            }
            Stage::UpdateTripLog { debit, fare } => {
                expect_ok("UPDATE CAPP DATA CACHE (EF1E)", sw)?;
                self.send_debit(tap, debit, fare)
            }
            Stage::Debit { fare } => self.on_debit(tap, fare, data, sw),
            Stage::Finished => return Err(TapError::BadResponse("answer after the tap ended")),
        }?;
        if let Next::Send { .. } = next {
            tap.gathered.apdus += 1;
        }
        Ok(next)
    }

    fn on_select(&mut self, tap: &mut Tap, data: &[u8], sw: StatusWord) -> Result<Next, TapError> {
        let card = match crate::fci::read(data, sw)? {
            Ok(card) => card,
            Err(why) => return Ok(tap.gathered.refuse(why)),
        };
        tap.gathered.card_number = Some(card.card_number());
        if self.state.outbox_full() {
            return Ok(tap.gathered.refuse(Refusal::OutboxFull));
        }
        self.settle_doubts_or_go_on(tap, card)
    }

    /// Doubts first (the inquiry only reads, and a card refused below — expired, hotlisted and
    /// blocked — might never be asked again), then whether the card may be used.
    fn settle_doubts_or_go_on(&mut self, tap: &mut Tap, card: IssuerData) -> Result<Next, TapError> {
        // A doubt stays remembered until settled, so that a second loss still knows it.
        let id = CardId::new(card.issuer_id, &card.serial);
        if let Some(pending) = self.state.pending_for_except(&id, &tap.asked).cloned() {
            tap.asked.push(pending.record.tap_id());
            return self.inquire(tap, card, Inquiry::start(pending));
        }
        self.after_select(tap, card)
    }

    /// GET CHALLENGE answered: APPLICATION BLOCK with the security module's MAC, straight after
    /// (any other command would use the challenge up). Without the maintenance key, or without a
    /// challenge, the card is refused unblocked.
    fn on_challenge(&mut self, tap: &mut Tap, card: IssuerData, data: &[u8], sw: StatusWord) -> Result<Next, TapError> {
        let unblocked = Refusal::Hotlisted { blocked: false };
        let Ok(challenge) = <[u8; 4]>::try_from(data) else { return Ok(tap.gathered.refuse(unblocked)) };
        if sw != StatusWord::OK {
            return Ok(tap.gathered.refuse(unblocked));
        }
        match self.sam.application_block_mac(card.issuer_id, card.asn8(), None, challenge) {
            Ok(mac) => {
                tap.stage = Stage::Block;
                Ok(send(apdu::application_block(false, mac)))
            }
            Err(_) => Ok(tap.gathered.refuse(unblocked)),
        }
    }

    fn after_select(&mut self, tap: &mut Tap, card: IssuerData) -> Result<Next, TapError> {
        if let Err(why) = crate::fci::check(&card, &self.config.hotlist, &tap.now) {
            if let Refusal::Hotlisted { .. } = why {
                // As field gates do: block the application, so that no terminal serves it until
                // the service desk unblocks it (docs/card-profile.md, "Blocking").
                tap.stage = Stage::Challenge { card };
                return Ok(send(apdu::get_challenge()));
            }
            return Ok(tap.gathered.refuse(why));
        }
        match self.transit_record() {
            Some(record) => {
                tap.stage = Stage::ReadTransit { card };
                Ok(send(apdu::read_record(SFI_TRANSIT, record, TRANSIT_RECORD_LEN as u8)))
            }
            None => {
                let amount_fen = self.config.city.bus.flat_fare_fen;
                let plan = Plan { kind: TapKind::Single, amount_fen, month_counted_fen: 0, transit: None, fare: None };
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

    fn on_inquiry(
        &mut self,
        tap: &mut Tap,
        card: IssuerData,
        inquiry: Inquiry,
        data: &[u8],
        sw: StatusWord,
    ) -> Result<Next, TapError> {
        let sam = &mut self.sam;
        // The proof of the counter may be another session's, if ours never committed and another
        // gate's took its counter: only our session's MAC2 verifies.
        let mut proof_is_ours = |pending: &PendingDebit, mac2| sam.check_proof_mac2(&pending.record, mac2).is_ok();
        let next = inquiry.on_answer(data, sw, &mut proof_is_ours)?;
        self.inquire(tap, card, next)
    }

    /// Goes on with the inquiry into a doubt, and with the tap once it is settled.
    fn inquire(&mut self, tap: &mut Tap, card: IssuerData, inquire: Inquire) -> Result<Next, TapError> {
        match inquire {
            Inquire::Ask(inquiry, command) => {
                tap.stage = Stage::Inquire { card, inquiry };
                Ok(send(command))
            }
            Inquire::AskCounter(pending) => {
                tap.undecided.push(pending);
                self.settle_doubts_or_go_on(tap, card)
            }
            Inquire::Settled(pending, verdict, proof) => {
                let settled = settle(&mut self.state, &mut tap.gathered.records, &pending, verdict, proof);
                // A rider back within the window is finishing that passage; later, the old
                // transaction is only settled and this tap is a new one.
                match settled {
                    Some(record)
                        if record.status == RecordStatus::Recovered && within_recovery_window(&record, &tap.now) =>
                    {
                        Ok(tap.gathered.complete(&record, None, None))
                    }
                    // The card may have another doubt here (its next tap's DEBIT lost too).
                    _ => self.settle_doubts_or_go_on(tap, card),
                }
            }
        }
    }

    fn on_transit(&mut self, tap: &mut Tap, card: IssuerData, data: &[u8], sw: StatusWord) -> Result<Next, TapError> {
        expect_ok("READ RECORD (EF1A)", sw)?;
        let transit = TransitRecord::decode(data).map_err(|_| TapError::BadResponse("EF1A record"))?;
        if self.config.mode == GateMode::Bus {
            let previous = transit.last_exit.as_ref().map(|p| &p.at);
            let amount_fen = self.config.city.bus.fare_fen(previous, &tap.now);
            let plan =
                Plan { kind: TapKind::Single, amount_fen, month_counted_fen: 0, transit: Some(transit), fare: None };
            return self.initialize(tap, card, plan);
        }
        match self.metro_plan(tap, transit) {
            Ok(plan) => self.initialize(tap, card, plan),
            Err(why) => Ok(tap.gathered.refuse(why)),
        }
    }

    /// Entry or exit, and what it charges, from the card's metro record and the gate's direction.
    fn metro_plan(&self, tap: &Tap, transit: TransitRecord) -> Result<Plan, Refusal> {
        let city = &self.config.city;
        let direction = self.config.direction;
        let Some(entry) = transit.entry else {
            if direction == Direction::Out {
                return Err(Refusal::NoEntry);
            }
            let amount_fen = city.metro_entry_charge_fen;
            return Ok(Plan {
                kind: TapKind::Entry,
                amount_fen,
                month_counted_fen: amount_fen,
                transit: Some(transit),
                fare: None,
            });
        };
        let entry_station = (entry.city == city.city_code).then(|| self.fare.station_name(entry.station)).flatten();
        let Some(entry_name) = entry_station else {
            // Another city's entry, or a station this network does not know: an incomplete trip.
            let label = foreign_label(&entry);
            if direction == Direction::In {
                return Err(Refusal::OpenTrip { entry: label, at: entry.at });
            }
            let Some(fare_fen) = city.incomplete_trip_fare_fen else {
                return Err(Refusal::IncompleteTrip { entry: label });
            };
            let fare = MetroFare { fare_fen, incomplete_trip: true, ..MetroFare::default() };
            return Ok(Plan {
                kind: TapKind::Exit,
                amount_fen: fare_fen,
                month_counted_fen: 0,
                transit: Some(transit),
                fare: Some(fare),
            });
        };
        let elapsed_s = tap.now.seconds_since_epoch() - entry.at.seconds_since_epoch();
        if elapsed_s < 0 {
            return Err(Refusal::TimeBackwards { entry_at: entry.at });
        }
        let double_tap = entry.station.station == self.config.station.station
            && elapsed_s <= i64::from(city.double_tap_window_s)
            && direction != Direction::Out;
        if double_tap {
            return Err(Refusal::AlreadyEntered { station: entry_name, at: entry.at });
        }
        if direction == Direction::In {
            return Err(Refusal::OpenTrip { entry: entry_name, at: entry.at });
        }
        let trip = MetroTrip {
            city_code: city.city_code,
            entry: entry.station,
            entry_at: entry.at,
            exit: self.config.station,
            exit_at: tap.now,
            month_spent_fen: transit.spent_in_month_of(&entry.at).0,
        };
        let mut fare = self.fare.metro_fare(&trip).map_err(|e| Refusal::NoFare(e.0))?;
        // What the entry gate charged counts towards the fare (profile choice).
        fare.entry_charged_fen = entry.amount_fen.min(fare.fare_fen);
        let amount_fen = fare.fare_fen - fare.entry_charged_fen;
        let month_counted_fen = fare.month_counted_fen.min(amount_fen);
        Ok(Plan { kind: TapKind::Exit, amount_fen, month_counted_fen, transit: Some(transit), fare: Some(fare) })
    }

    fn initialize(&mut self, tap: &mut Tap, card: IssuerData, plan: Plan) -> Result<Next, TapError> {
        let capp = plan.transit.is_some();
        let command = apdu::initialize_for_purchase(capp, plan.amount_fen, self.sam.terminal_id());
        tap.stage = Stage::Initialize { card, plan };
        Ok(send(command))
    }

    fn on_initialize(
        &mut self,
        tap: &mut Tap,
        card: IssuerData,
        plan: Plan,
        data: &[u8],
        sw: StatusWord,
    ) -> Result<Next, TapError> {
        match sw {
            StatusWord::INSUFFICIENT_BALANCE => return Ok(tap.gathered.refuse(Refusal::InsufficientBalance)),
            StatusWord::APPLICATION_LOCKED => return Ok(tap.gathered.refuse(Refusal::Locked)),
            _ => expect_ok("INITIALIZE FOR PURCHASE", sw)?,
        }
        let init = PurchaseInit::decode(data).map_err(|_| TapError::BadResponse("INITIALIZE FOR PURCHASE answer"))?;
        let (moved, unchanged): (Vec<_>, Vec<_>) = std::mem::take(&mut tap.undecided)
            .into_iter()
            .partition(|p| judge_counter(p, init.offline_counter) == Verdict::Unknown);
        for pending in moved {
            settle(&mut self.state, &mut tap.gathered.records, &pending, Verdict::Unknown, None);
        }
        tap.undecided = unchanged;
        // An unchanged counter is proven only when the card accepts our MAC1 for it and its MAC2
        // verifies: the doubt stays (undecided) until this tap's DEBIT succeeds.
        let balance_before = i64::from(init.balance_fen);
        if balance_before > i64::from(self.config.city.card_balance_max_fen) {
            return Ok(tap.gathered.refuse(Refusal::Suspect { balance_fen: balance_before }));
        }
        let available = balance_before + i64::from(init.overdraft_limit_fen);
        if plan.kind == TapKind::Entry && available < i64::from(self.config.city.metro_min_entry_balance_fen) {
            return Ok(tap.gathered.refuse(Refusal::BelowMinimumBalance));
        }
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
            asn8: card.asn8(),
            issuer_id: card.issuer_id,
        };
        let (ttn, mac1) = match self.sam.purchase_mac1(&request) {
            Ok(v) => v,
            Err(SamError::UnknownIssuer) => return Ok(tap.gathered.refuse(Refusal::IssuerNotAccepted)),
            Err(SamError::KeyMismatch) => {
                let why = Refusal::KeyMismatch { key_version: init.key_version, algorithm_id: init.algorithm_id };
                return Ok(tap.gathered.refuse(why));
            }
            Err(e) => return Err(TapError::Sam(e)),
        };
        let balance_after = balance_before - i64::from(plan.amount_fen);
        let terminal_id = self.sam.terminal_id();
        let city = &self.config.city;
        let record = Draft {
            kind: plan.kind,
            transaction_type: request.transaction_type,
            issuer: &card,
            counter_before: init.offline_counter,
            amount_fen: plan.amount_fen,
            balance_before_fen: balance_before,
            balance_after_fen: balance_after,
            terminal_id,
            terminal_transaction_number: ttn,
            at: tap.now,
            city: &city.name,
            city_code: city.city_code,
            station: &self.config.station_name,
            line: self.config.station.line,
            station_code: self.config.station.station,
            card_random: init.card_random,
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
        }
        .record();
        let debit = apdu::debit_for_purchase(ttn, tap.now.date_bcd(), tap.now.time_bcd(), mac1);
        tap.draft = Some(PendingDebit { counter_before: init.offline_counter, record });

        let Some(mut transit) = plan.transit else { return self.send_debit(tap, debit, plan.fare) };
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
        tap.stage = Stage::UpdateTransit {
            trip_log: apdu::update_capp_data_cache(SFI_TRIP_LOG, 0, &trip_log.encode()),
            debit,
            fare: plan.fare,
        };
        Ok(send(apdu::update_capp_data_cache(SFI_TRANSIT, record_number, &transit.encode())))
    }

    /// DEBIT is the money command: from here the transaction is in doubt until its answer.
    fn send_debit(&mut self, tap: &mut Tap, debit: Vec<u8>, fare: Option<MetroFare>) -> Result<Next, TapError> {
        let draft = tap.draft.clone().ok_or(TapError::BadResponse("DEBIT without INITIALIZE"))?;
        self.state.remember(draft);
        tap.stage = Stage::Debit { fare };
        Ok(Next::Send { apdu: debit, persist_first: true })
    }

    fn on_debit(
        &mut self,
        tap: &mut Tap,
        fare: Option<MetroFare>,
        data: &[u8],
        sw: StatusWord,
    ) -> Result<Next, TapError> {
        let pending = tap.draft.take().ok_or(TapError::BadResponse("DEBIT answer without a DEBIT"))?;
        if sw == StatusWord::MAC_ERROR {
            // The card refused our MAC1: the keys are not this card's, and it committed nothing —
            // but a status word carries no MAC, so the record is handed on unconfirmed (the back
            // office voids it from the card's counters) rather than kept as a doubt at this gate.
            if let Some(pending) = self.state.take(&pending) {
                self.state.hand_on_unconfirmed(pending);
            }
            return Err(TapError::MacRejected { command: "DEBIT FOR PURCHASE" });
        }
        // Only a well-formed success settles the doubt here: a refusal may be a garbled success,
        // and GET TRANSACTION PROVE at the next tap costs one APDU and never lies.
        let answer = <[u8; 8]>::try_from(data).ok().filter(|_| sw == StatusWord::OK);
        let Some([t0, t1, t2, t3, m0, m1, m2, m3]) = answer else {
            return Err(TapError::AnswerInDoubt { command: "DEBIT FOR PURCHASE", status: sw });
        };
        self.state.forget(&pending);
        let counter_before = pending.counter_before;
        let mut record = pending.record;
        let mac2 = [m0, m1, m2, m3];
        record.tac = Some([t0, t1, t2, t3]);
        record.mac2 = Some(mac2);
        // The money moved whatever MAC2 says: keep the record; clearing checks the TAC.
        let verified = self.sam.verify_purchase_mac2(mac2);
        // The card committed at the counter INITIALIZE gave, proven by its MAC2: every doubt of
        // this card drafted at that same counter never committed.
        let card = CardId::of(&record);
        let same_counter: Vec<PendingDebit> = self
            .state
            .pending
            .iter()
            .filter(|p| CardId::of(&p.record) == card && p.counter_before == counter_before)
            .cloned()
            .collect();
        for undecided in std::mem::take(&mut tap.undecided).into_iter().chain(same_counter) {
            let verdict = if verified.is_ok() { Verdict::NotCommitted } else { Verdict::Unknown };
            settle(&mut self.state, &mut tap.gathered.records, &undecided, verdict, None);
        }
        let alarm = verified.err().map(|e| format!("MAC2 check failed: {e}"));
        self.state.push(record.clone());
        tap.gathered.records.push(record.clone());
        Ok(tap.gathered.complete(&record, fare, alarm))
    }
}

/// An entry this network cannot place, named as the card has it.
fn foreign_label(entry: &TripPoint) -> String {
    let code = entry.station;
    match yitong_fare::City::builtin_by_code(entry.city) {
        Some(city) => {
            let station = crate::fare::FarePolicy::station_name(&city, code)
                .unwrap_or_else(|| format!("station {}-{}", code.line, code.station));
            format!("{} {station}", city.profile().display_name)
        }
        None => format!("city {:04X} station {}-{}", entry.city, code.line, code.station),
    }
}

pub(crate) fn expect_ok(command: &'static str, status: StatusWord) -> Result<(), TapError> {
    if status == StatusWord::OK {
        Ok(())
    } else {
        Err(TapError::UnexpectedStatus { command, status })
    }
}
