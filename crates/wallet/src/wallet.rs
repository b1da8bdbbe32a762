//! The phone's flows: register, enroll, top up (with tear recovery), show, transfer, delete —
//! each a short sequence of service calls ([`WalletApi`]) and card commands (`CardChannel`, the
//! software SE of the phone file), with the phone file saved before every step whose outcome
//! could be lost.

use serde::Serialize;
use yitong_terminal::{read_card, CardReport};

use crate::api::{
    CardAnswer, CardRequest, ClosureStep, Evidence, Loaded, OrderInfo, PhoneView, Purpose, ReconcileStatus,
    TopUpRequest, WalletApi, WhenNotLoaded,
};
use crate::error::WalletError;
use crate::phone::{InFlight, PhoneCard, PhoneFile, RetiredCard, TopUpStep, RETIRED_MAX};
use crate::se::{self, exchange, success, transmit, SoftSe};
use crate::token::Token;

/// Largest top-up, fen (the service's bound: 10,000 yuan).
pub const TOPUP_FEN_MAX: i64 = 1_000_000;
/// Card commands one closure may take (a balance debit, a block, and retries of either): a bound
/// on the loop against a service that never says closed.
pub const CLOSURE_STEPS_MAX: usize = 32;

/// Test aid: where a flow's money command — a top-up's CREDIT FOR LOAD, a closure's DEBIT FOR
/// PURCHASE — is cut off, as when the phone dies or is pulled away. The flow stops with
/// [`WalletError::Interrupted`]; the next command on the phone recovers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tear {
    /// The phone stops just before the money command reaches the card: the card never commits.
    BeforeMoneyCommand,
    /// The card commits the money command but its answer (TAC and MAC2) is lost.
    MoneyAnswerLost,
}

/// A flow in flight that a command settled before doing its own work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// The city.
    pub city: String,
    /// `top_up` or `closure`.
    pub flow: &'static str,
    /// The order or card concerned.
    pub id: String,
    /// `loaded` (found on the card, or loaded again), `refunded`, `unconfirmed` (the card can
    /// no longer tell: handed to the back office), `not_paid` (dropped), `closed`.
    pub outcome: String,
    /// The card's balance after, fen, when a load told it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_after_fen: Option<i64>,
}

/// A card signed up for.
#[derive(Debug, Clone, Serialize)]
pub struct Enrolled {
    /// The city.
    pub city: String,
    /// The card's serial.
    pub serial: String,
    /// The printed card number.
    pub card_number: String,
    /// The channel.
    pub channel: String,
    /// The fee charged, fen (0 when waived).
    pub fee_fen: i64,
    /// The promotion that set the fee, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_id: Option<String>,
    /// The phone had the card already: nothing was charged.
    pub existing: bool,
    /// Flows settled first.
    pub recovered: Vec<Recovered>,
}

/// A top-up done.
#[derive(Debug, Clone, Serialize)]
pub struct ToppedUp {
    /// The city.
    pub city: String,
    /// The order.
    pub order_id: String,
    /// Fen loaded.
    pub amount_fen: i64,
    /// The card's balance after the load, fen (as its CREDIT answer proved it).
    pub balance_after_fen: i64,
    /// The load record's ID.
    pub tap_id: String,
    /// The TAC, hex.
    pub tac: String,
    /// Flows settled first.
    pub recovered: Vec<Recovered>,
}

/// A card closed (emptied and blocked) for a transfer or a deletion.
#[derive(Debug, Clone, Serialize)]
pub struct Closed {
    /// The city.
    pub city: String,
    /// The closed card.
    pub serial: String,
    /// What the card's proven debit moved off it, fen.
    pub moved_fen: i64,
    /// A debit the card could no longer prove or disprove, handed to the back office, fen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unconfirmed_fen: Option<i64>,
    /// Delete: the refund order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_order: Option<OrderInfo>,
    /// Delete: the sign-up fee's refund, where the city's rules refund it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_refund_order: Option<OrderInfo>,
    /// Transfer: the new phone's card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_serial: Option<String>,
    /// Transfer: the new card's balance after the load, fen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_balance_fen: Option<i64>,
    /// Flows settled first.
    pub recovered: Vec<Recovered>,
}

/// A card as the phone's SE reads it (balance, counters, EF18 log, trips).
#[derive(Debug, Clone, Serialize)]
pub struct SeCard {
    /// The city.
    pub city: String,
    /// The channel it was signed up through.
    pub channel: String,
    /// What the card says.
    pub card: CardReport,
}

/// What `show` reports.
#[derive(Debug, Clone, Serialize)]
pub struct PhoneReport {
    /// The device.
    pub device: crate::api::Device,
    /// The service the phone registered with.
    pub server: Option<String>,
    /// The service's ID of the phone.
    pub phone_id: Option<String>,
    /// The cards, read from the SE.
    pub cards: Vec<SeCard>,
    /// The service's view, when asked and reachable.
    pub service: Option<PhoneView>,
    /// Why there is no service view (offline, unreachable, not registered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_note: Option<String>,
    /// Flows in flight (after recovery), by city.
    pub in_flight: std::collections::BTreeMap<String, InFlight>,
    /// Flows settled first.
    pub recovered: Vec<Recovered>,
}

/// One phone (its locked file) and the service.
pub struct Wallet<'a, A: WalletApi> {
    api: &'a A,
    file: &'a mut PhoneFile,
}

/// What became of a rotation left pending ([`Wallet::rotate_token`]).
enum Settled {
    /// None was pending.
    Nothing,
    /// The new token is the phone's now.
    Taken,
    /// The service refused it for good: the phone keeps its token.
    Refused(WalletError),
}

impl<'a, A: WalletApi> Wallet<'a, A> {
    /// The phone of `file` talking to `api`.
    pub fn new(api: &'a A, file: &'a mut PhoneFile) -> Self {
        Wallet { api, file }
    }

    /// The phone file.
    pub fn file(&self) -> &PhoneFile {
        self.file
    }

    /// Registers the phone with the service unless it is registered; `true` when it registered
    /// now. A phone registered with another service is refused.
    pub fn register(&mut self) -> Result<bool, WalletError> {
        if self.token()?.is_some() {
            return Ok(false);
        }
        let registration = self.api.register_phone(&self.file.phone.device)?;
        let phone = &mut self.file.phone;
        phone.server = Some(self.api.server().to_owned());
        phone.phone_id = Some(registration.phone_id);
        phone.token = Some(registration.token);
        self.file.save()?;
        Ok(true)
    }

    /// Registers the phone again with `reset_code`, after an operator reset its registration (its
    /// token lost or leaked), with a new token of its own making kept in the phone file as
    /// pending before it is sent (as a rotation's): an answer lost on the way loses nothing, the
    /// next command finds the old token refused and the new one taken. A refusal drops the
    /// proposal. The file must be this service's registration, and the service must answer with
    /// the same registration.
    pub fn register_again(&mut self, reset_code: &str) -> Result<(), WalletError> {
        let registered = self.token()?.is_some();
        let pending = Token::generate()?;
        self.file.phone.pending_token = Some(pending.clone());
        self.file.save()?;
        let answer = self.api.register_phone_again(&self.file.phone.device, reset_code.trim(), &pending);
        let registration = match answer {
            Ok(registration) => registration,
            Err(error) if error.is_refusal() => {
                self.file.phone.pending_token = None;
                self.file.save()?;
                return Err(error);
            }
            // Perhaps taken: the next command settles it (when the file was registered here).
            Err(error) => return Err(error),
        };
        let phone = &mut self.file.phone;
        if registered && phone.phone_id.as_deref().is_some_and(|id| id != registration.phone_id) {
            phone.pending_token = None;
            self.file.save()?;
            return Err(WalletError::Usage(format!(
                "the service answered registration {}, not this phone's",
                registration.phone_id
            )));
        }
        phone.server = Some(self.api.server().to_owned());
        phone.phone_id = Some(registration.phone_id);
        phone.token = phone.pending_token.take();
        self.file.save()?;
        Ok(())
    }

    /// Replaces the phone's token with a new one of its own making (from time to time, or when
    /// it may have leaked): kept in the phone file as pending before it is sent, so that a lost
    /// answer loses nothing; the old one works no more once the service took it. A rotation
    /// left pending from before is settled first, then a fresh token is made (the pending one
    /// was in the file too).
    pub fn rotate_token(&mut self) -> Result<(), WalletError> {
        if self.token()?.is_none() {
            return Err(WalletError::Usage(format!("{} is not registered with a service", self.file.path().display())));
        }
        if let Settled::Refused(error) = self.settle_rotation()? {
            return Err(error);
        }
        self.file.phone.pending_token = Some(Token::generate()?);
        self.file.save()?;
        match self.settle_rotation()? {
            Settled::Refused(error) => Err(error),
            Settled::Taken | Settled::Nothing => Ok(()),
        }
    }

    /// Finds out which of the phone's two tokens its service takes when a rotation is pending
    /// (proposing the new one again with the old: whichever request lands, it is this proposal)
    /// and keeps that one. A service that refuses the proposal for good (a 4xx other than 401,
    /// the old token still good) ends it: the phone keeps its token. An answer not heard keeps
    /// it pending (the error).
    fn settle_rotation(&mut self) -> Result<Settled, WalletError> {
        let (Some(pending), Some(old)) = (self.file.phone.pending_token.clone(), self.token()?) else {
            return Ok(Settled::Nothing);
        };
        let unauthorized = |error: &WalletError| error.http_status() == Some(401);
        match self.api.rotate_token(&old, &pending) {
            Ok(()) => {}
            // The old one is dead: the proposal landed before, or something else happened.
            Err(error) if unauthorized(&error) => match self.api.me(&pending) {
                Ok(_) => {}
                Err(again) if unauthorized(&again) => {
                    return Err(WalletError::Usage(format!(
                        "the service takes neither the phone's token nor the one it proposed ({error})"
                    )))
                }
                Err(again) => return Err(again),
            },
            Err(error) if error.is_refusal() => {
                self.file.phone.pending_token = None;
                self.file.save()?;
                return Ok(Settled::Refused(error));
            }
            Err(error) => return Err(error),
        }
        let phone = &mut self.file.phone;
        phone.token = phone.pending_token.take();
        self.file.save()?;
        Ok(Settled::Taken)
    }

    /// The phone's token if registered with this wallet's service.
    fn token(&self) -> Result<Option<Token>, WalletError> {
        match self.file.phone.registration() {
            Some((server, _)) if server != self.api.server() => Err(WalletError::Usage(format!(
                "{} is registered with the service at {server}, not {}; use --server {server}",
                self.file.path().display(),
                self.api.server()
            ))),
            Some((_, token)) => Ok(Some(token.clone())),
            None => Ok(None),
        }
    }

    /// The token, registering first if needed (and settling a rotation left pending).
    fn registered(&mut self) -> Result<Token, WalletError> {
        self.register()?;
        // A proposal refused for good leaves the phone its token: the command goes on.
        self.settle_rotation()?;
        self.token()?.ok_or_else(|| WalletError::Usage("the phone did not register".into()))
    }

    fn card(&self, city: &str) -> Result<&PhoneCard, WalletError> {
        self.file.phone.cards.get(city).ok_or_else(|| WalletError::NoCard { city: city.to_owned() })
    }

    fn se(&self, city: &str) -> Result<SoftSe, WalletError> {
        SoftSe::power_on(&self.card(city)?.image)
    }

    /// Keeps the SE's memory in the file (after every command that may have changed it).
    fn keep_image(&mut self, city: &str, se: &SoftSe) -> Result<(), WalletError> {
        if let Some(card) = self.file.phone.cards.get_mut(city) {
            card.image = se.image();
        }
        self.file.save()
    }

    fn set_in_flight(&mut self, city: &str, flow: Option<InFlight>) -> Result<(), WalletError> {
        match flow {
            Some(flow) => self.file.phone.in_flight.insert(city.to_owned(), flow),
            None => self.file.phone.in_flight.remove(city),
        };
        self.file.save()
    }

    /// Settles the flow in flight for `city`, if any: a top-up is reconciled from the card's
    /// evidence (and loaded again if the card proves it never got it), a closure is resumed. An
    /// enrollment or a transfer waiting for its claim is left to its own command.
    pub fn recover(&mut self, city: &str) -> Result<Option<Recovered>, WalletError> {
        match self.file.phone.in_flight.get(city).cloned() {
            Some(InFlight::TopUp { order_id, .. }) => self.recover_top_up(city, &order_id).map(Some),
            Some(InFlight::Closure { purpose, serial }) => {
                let step = self.run_closure(city, purpose, None)?;
                let outcome = self.finish_closure(city, &serial, &step)?;
                Ok(Some(Recovered {
                    city: city.to_owned(),
                    flow: "closure",
                    id: serial,
                    outcome: outcome.into(),
                    balance_after_fen: None,
                }))
            }
            Some(InFlight::Enroll { .. } | InFlight::Transfer { .. }) | None => Ok(None),
        }
    }

    /// Settles a top-up (or a transfer's load) in flight from the card's evidence.
    fn recover_top_up(&mut self, city: &str, order_id: &str) -> Result<Recovered, WalletError> {
        let token = self.registered()?;
        let recovered = |outcome: &str, balance_after_fen| Recovered {
            city: city.to_owned(),
            flow: "top_up",
            id: order_id.to_owned(),
            outcome: outcome.to_owned(),
            balance_after_fen,
        };
        let commands = match self.api.evidence(&token, order_id) {
            Ok(commands) => commands,
            // The order never reached the service: nothing was paid, nothing can be on the card.
            Err(error) if error.http_status() == Some(404) => {
                self.set_in_flight(city, None)?;
                return Ok(recovered("not_opened", None));
            }
            Err(error) => return Err(error),
        };
        // The card's evidence, INITIALIZE last: its session is the one a new load would use.
        let mut se = self.se(city)?;
        let prove = commands.prove.as_deref().map(|command| transmit(&mut se, command)).transpose()?;
        let log = commands.log.iter().map(|command| transmit(&mut se, command)).collect::<Result<Vec<_>, _>>()?;
        let initialize = transmit(&mut se, &commands.initialize)?;
        let evidence =
            Evidence { prove, log, initialize: Some(initialize.clone()), when_not_loaded: WhenNotLoaded::LoadAgain };
        let verdict = match self.api.reconcile(&token, order_id, &evidence) {
            Ok(verdict) => verdict,
            // Settled before as unconfirmed (the phone stopped before it saved that verdict).
            Err(error) if error.service_code() == Some("load_unconfirmed") => {
                self.set_in_flight(city, None)?;
                return Ok(recovered("unconfirmed", None));
            }
            Err(error) => return Err(error),
        };
        match verdict.status {
            ReconcileStatus::LoadAgain => {
                let credit = verdict.credit_command.ok_or_else(|| WalletError::BadServiceAnswer {
                    request: format!("POST /v1/topups/{order_id}/reconcile"),
                    why: "load_again without credit_command".into(),
                })?;
                let loaded = self.credit_and_complete(city, &mut se, &token, order_id, &credit, None)?;
                Ok(recovered("loaded", Some(loaded.balance_after_fen)))
            }
            // Paid, never authorized (the phone stopped before `authorize`): nothing can be on the
            // card for it; load it now in the session the fresh INITIALIZE opened.
            ReconcileStatus::NothingInDoubt if verdict.order.state == "paid" => {
                let initialize = success(&commands.initialize, initialize)?;
                let authorization = self.api.authorize(&token, order_id, &initialize)?;
                let loaded =
                    self.credit_and_complete(city, &mut se, &token, order_id, &authorization.credit_command, None)?;
                Ok(recovered("loaded", Some(loaded.balance_after_fen)))
            }
            status => {
                self.set_in_flight(city, None)?;
                let outcome = match (status, verdict.order.state.as_str()) {
                    (ReconcileStatus::Loaded, _) | (ReconcileStatus::NothingInDoubt, "loaded") => "loaded",
                    (ReconcileStatus::NothingInDoubt, "created") => "not_paid",
                    (ReconcileStatus::NothingInDoubt, state) => state,
                    (ReconcileStatus::Refunded, _) => "refunded",
                    _ => "unconfirmed",
                };
                Ok(recovered(outcome, verdict.balance_after_fen))
            }
        }
    }

    /// INITIALIZE FOR LOAD, `authorize`, then CREDIT FOR LOAD and `complete`.
    fn load(
        &mut self,
        city: &str,
        se: &mut SoftSe,
        token: &Token,
        order_id: &str,
        initialize: &[u8],
        tear: Option<Tear>,
    ) -> Result<Loaded, WalletError> {
        let answer = exchange(se, initialize)?;
        let authorization = self.api.authorize(token, order_id, &answer)?;
        self.credit_and_complete(city, se, token, order_id, &authorization.credit_command, tear)
    }

    /// Sends CREDIT FOR LOAD — the phone file saying so first — keeps the card's memory whatever
    /// happens, and completes with the TAC.
    fn credit_and_complete(
        &mut self,
        city: &str,
        se: &mut SoftSe,
        token: &Token,
        order_id: &str,
        credit: &[u8],
        tear: Option<Tear>,
    ) -> Result<Loaded, WalletError> {
        if let Some(InFlight::TopUp { step, .. }) = self.file.phone.in_flight.get_mut(city) {
            *step = TopUpStep::CreditSent;
        }
        self.keep_image(city, se)?;
        let interrupted = || WalletError::Interrupted { what: format!("the load of order {order_id} in {city}") };
        match tear {
            Some(Tear::BeforeMoneyCommand) => return Err(interrupted()),
            Some(Tear::MoneyAnswerLost) => se.lose_next_money_answer(),
            None => {}
        }
        let answer = exchange(se, credit);
        // The card may have committed whatever its answer: its memory is kept first.
        self.keep_image(city, se)?;
        let answer = answer.map_err(|error| match error {
            WalletError::Channel { .. } => interrupted(),
            other => other,
        })?;
        let loaded = self.api.complete(token, order_id, &answer)?;
        self.set_in_flight(city, None)?;
        Ok(loaded)
    }

    /// Signs up for a card of `city` (on `channel`, else the one the service's eligibility
    /// answer gives): the fee order paid through the DEVELOPMENT-ONLY pay endpoint (the stand-in
    /// for the rider paying in a payment app), the card's image installed on the SE.
    pub fn enroll(&mut self, city: &str, channel: Option<&str>) -> Result<Enrolled, WalletError> {
        let city = city.trim().to_ascii_lowercase();
        let recovered: Vec<Recovered> = self.recover(&city)?.into_iter().collect();
        if let Some(card) = self.file.phone.cards.get(&city) {
            return Ok(Enrolled {
                city: city.clone(),
                serial: card.serial.clone(),
                card_number: card.card_number.clone(),
                channel: card.channel.clone(),
                fee_fen: 0,
                promotion_id: None,
                existing: true,
                recovered,
            });
        }
        let token = self.registered()?;
        let (fee_order_id, channel) = match self.file.phone.in_flight.get(&city) {
            Some(InFlight::Enroll { fee_order_id, channel }) => (fee_order_id.clone(), channel.clone()),
            _ => {
                let device = &self.file.phone.device;
                let eligibility = self.api.eligibility(&device.maker, &device.model, &city)?;
                let channel = match (channel, eligibility.channel()) {
                    (_, None) => return Err(WalletError::NotEligible { reason: eligibility.reason }),
                    (Some(chosen), Some(_)) => chosen.to_owned(),
                    (None, Some(channel)) => channel.to_owned(),
                };
                let fee_order_id = se::order_id("FEE-")?;
                let flow = InFlight::Enroll { fee_order_id: fee_order_id.clone(), channel: channel.clone() };
                self.set_in_flight(&city, Some(flow))?;
                (fee_order_id, channel)
            }
        };
        let request = CardRequest { city: city.clone(), channel: channel.clone(), fee_order_id };
        let mut paid = false;
        let (card, image, existing) = loop {
            match self.api.request_card(&token, &request)? {
                CardAnswer::Issued { card, image, existing } => break (card, image, existing),
                CardAnswer::PaymentRequired { order, .. } if !paid => {
                    match self.api.dev_pay(&order.order_id) {
                        // Paid before this command (a repeat after a stop): ask again.
                        Err(error) if error.service_code() == Some("order_conflict") => {}
                        other => {
                            other?;
                        }
                    }
                    paid = true;
                }
                CardAnswer::PaymentRequired { order, .. } => {
                    return Err(WalletError::Usage(format!(
                        "the fee order {} is {} after paying it; try again",
                        order.order_id, order.state
                    )))
                }
            }
        };
        // The image must power on before the phone keeps it.
        let se = SoftSe::power_on(&image)?;
        self.file.phone.cards.insert(
            city.clone(),
            PhoneCard {
                serial: card.serial.clone(),
                card_number: card.card_number.clone(),
                channel: channel.clone(),
                image: se.image(),
            },
        );
        self.set_in_flight(&city, None)?;
        Ok(Enrolled {
            city,
            serial: card.serial,
            card_number: card.card_number,
            channel,
            fee_fen: card.fee_fen,
            promotion_id: card.promotion_id,
            existing,
            recovered,
        })
    }

    /// Tops the card of `city` up by `amount_fen`: the order opened, paid through the
    /// DEVELOPMENT-ONLY pay endpoint, loaded over the air. `tear` cuts it short (test aid).
    pub fn top_up(&mut self, city: &str, amount_fen: i64, tear: Option<Tear>) -> Result<ToppedUp, WalletError> {
        if !(1..=TOPUP_FEN_MAX).contains(&amount_fen) {
            return Err(WalletError::Usage(format!("amount: {amount_fen} fen is not 1 to {TOPUP_FEN_MAX} fen")));
        }
        let city = city.trim().to_ascii_lowercase();
        let recovered: Vec<Recovered> = self.recover(&city)?.into_iter().collect();
        self.refuse_in_flight(&city)?;
        let serial = self.card(&city)?.serial.clone();
        let token = self.registered()?;
        let order_id = se::order_id("TU-")?;
        let flow =
            InFlight::TopUp { order_id: order_id.clone(), amount_fen, step: TopUpStep::Opened, claim_code: None };
        self.set_in_flight(&city, Some(flow))?;
        let request = TopUpRequest { card: serial, amount_fen, order_id: order_id.clone() };
        let opened = match self.api.open_topup(&token, &request) {
            Ok(opened) => opened,
            Err(error @ WalletError::Service { .. }) => {
                // Refused: no order was made.
                self.set_in_flight(&city, None)?;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        if opened.order.state == "created" {
            self.api.dev_pay(&order_id)?;
        }
        let mut se = self.se(&city)?;
        let loaded = self.load(&city, &mut se, &token, &order_id, &opened.initialize_command, tear)?;
        Ok(ToppedUp {
            city,
            order_id,
            amount_fen,
            balance_after_fen: loaded.balance_after_fen,
            tap_id: loaded.tap_id,
            tac: loaded.tac,
            recovered,
        })
    }

    /// A flow still in flight after recovery (an enrollment, a transfer waiting for its claim)
    /// blocks other money flows of the city.
    fn refuse_in_flight(&self, city: &str) -> Result<(), WalletError> {
        match self.file.phone.in_flight.get(city) {
            None | Some(InFlight::Enroll { .. }) => Ok(()),
            Some(InFlight::Transfer { code, .. }) => Err(WalletError::Usage(format!(
                "the {city} card was closed for a transfer (code {code}); finish it with `yitong phone transfer`"
            ))),
            Some(other) => Err(WalletError::Usage(format!("a {city} flow is still in flight: {other:?}"))),
        }
    }

    /// Runs (or resumes) the closure of the city's card: the service's commands to the card and
    /// its answers back, until the service says closed.
    fn run_closure(&mut self, city: &str, purpose: Purpose, tear: Option<Tear>) -> Result<ClosureStep, WalletError> {
        let token = self.registered()?;
        let serial = self.card(city)?.serial.clone();
        match self.file.phone.in_flight.get(city) {
            Some(InFlight::Closure { purpose: started, .. }) if *started != purpose => {
                return Err(WalletError::Usage(format!(
                    "a {} of the {city} card is in flight; run `yitong phone {}` to finish it",
                    started.as_str(),
                    started.as_str()
                )))
            }
            _ => self.set_in_flight(city, Some(InFlight::Closure { purpose, serial: serial.clone() }))?,
        }
        let mut se = self.se(city)?;
        let mut step = self.api.start_closure(&token, &serial, purpose)?;
        for _ in 0..CLOSURE_STEPS_MAX {
            let Some(command) = step.command.take() else {
                return Ok(step);
            };
            if command.starts_with(&[0x80, 0x54]) {
                match tear {
                    Some(Tear::BeforeMoneyCommand) => {
                        return Err(WalletError::Interrupted {
                            what: format!("the closure of the {city} card (before DEBIT FOR PURCHASE)"),
                        })
                    }
                    Some(Tear::MoneyAnswerLost) => se.lose_next_money_answer(),
                    None => {}
                }
            }
            let answer = transmit(&mut se, &command);
            self.keep_image(city, &se)?;
            let answer = answer.map_err(|error| match error {
                WalletError::Channel { command, .. } => {
                    WalletError::Interrupted { what: format!("the closure of the {city} card ({command} unanswered)") }
                }
                other => other,
            })?;
            step = self.api.closure_answer(&token, &step.closure_id, &answer)?;
        }
        Err(WalletError::BadServiceAnswer {
            request: format!("POST /v1/closures/{}/answer", step.closure_id),
            why: format!("not closed after {CLOSURE_STEPS_MAX} card commands"),
        })
    }

    /// After a closure: a deleted card leaves the phone; a transferred one leaves it too, its
    /// code waiting in flight for the new phone's claim.
    fn finish_closure(&mut self, city: &str, serial: &str, step: &ClosureStep) -> Result<&'static str, WalletError> {
        let code = match step.purpose {
            Purpose::Delete => None,
            Purpose::Transfer => Some(step.transfer_code.clone().ok_or_else(|| WalletError::BadServiceAnswer {
                request: format!("POST /v1/closures/{}/answer", step.closure_id),
                why: "a closed transfer without transfer_code".into(),
            })?),
        };
        if let Some(card) = self.file.phone.cards.remove(city) {
            let retired = &mut self.file.phone.retired;
            retired.push(RetiredCard { city: city.to_owned(), purpose: step.purpose, card });
            let excess = retired.len().saturating_sub(RETIRED_MAX);
            retired.drain(..excess);
        }
        match code {
            None => {
                self.set_in_flight(city, None)?;
                Ok("closed")
            }
            Some(code) => {
                let flow =
                    InFlight::Transfer { code, serial: serial.to_owned(), moved_fen: step.moved_fen.unwrap_or(0) };
                self.set_in_flight(city, Some(flow))?;
                Ok("closed")
            }
        }
    }

    /// Deletes the city's card: emptied and blocked on the SE (proven by the card's answers),
    /// its balance refunded through the payment provider. `tear` cuts its DEBIT short (test aid).
    pub fn delete(&mut self, city: &str, tear: Option<Tear>) -> Result<Closed, WalletError> {
        let city = city.trim().to_ascii_lowercase();
        let mut recovered = Vec::new();
        if matches!(self.file.phone.in_flight.get(&city), Some(InFlight::TopUp { .. })) {
            recovered.extend(self.recover(&city)?);
        }
        self.refuse_in_flight_except_closure(&city)?;
        let serial = self.card(&city)?.serial.clone();
        let step = self.run_closure(&city, Purpose::Delete, tear)?;
        self.finish_closure(&city, &serial, &step)?;
        Ok(Closed {
            city,
            serial,
            moved_fen: step.moved_fen.unwrap_or(0),
            unconfirmed_fen: step.unconfirmed_fen,
            refund_order: step.refund_order,
            fee_refund_order: step.fee_refund_order,
            new_serial: None,
            new_balance_fen: None,
            recovered,
        })
    }

    fn refuse_in_flight_except_closure(&self, city: &str) -> Result<(), WalletError> {
        match self.file.phone.in_flight.get(city) {
            Some(InFlight::Closure { .. }) => Ok(()),
            _ => self.refuse_in_flight(city),
        }
    }

    /// Moves the city's card to `to`: this phone's card emptied and blocked (proven by its
    /// answers), then the new phone claims the balance — a card of the city issued to it with
    /// no fee, and the balance loaded over the air as a top-up is (no payment: the order is
    /// funded from the old card).
    /// `tear` cuts the old card's DEBIT short (test aid).
    pub fn transfer(&mut self, city: &str, to: &mut Wallet<'_, A>, tear: Option<Tear>) -> Result<Closed, WalletError> {
        let city = city.trim().to_ascii_lowercase();
        if self.file.path() == to.file.path() {
            return Err(WalletError::Usage("--to: the new phone must be another phone file".into()));
        }
        let mut recovered = Vec::new();
        if matches!(self.file.phone.in_flight.get(&city), Some(InFlight::TopUp { .. })) {
            recovered.extend(self.recover(&city)?);
        }
        let (code, serial, moved_fen, unconfirmed_fen) = match self.file.phone.in_flight.get(&city).cloned() {
            // Closed before; the claim did not finish.
            Some(InFlight::Transfer { code, serial, moved_fen }) => (code, serial, moved_fen, None),
            _ => {
                self.refuse_in_flight_except_closure(&city)?;
                let serial = self.card(&city)?.serial.clone();
                let step = self.run_closure(&city, Purpose::Transfer, tear)?;
                self.finish_closure(&city, &serial, &step)?;
                let Some(InFlight::Transfer { code, moved_fen, .. }) = self.file.phone.in_flight.get(&city).cloned()
                else {
                    unreachable!("finish_closure leaves the transfer in flight")
                };
                (code, serial, moved_fen, step.unconfirmed_fen)
            }
        };
        let loaded = to.claim(&city, &code)?;
        self.set_in_flight(&city, None)?;
        Ok(Closed {
            city,
            serial,
            moved_fen,
            unconfirmed_fen,
            refund_order: None,
            fee_refund_order: None,
            new_serial: Some(loaded.0),
            new_balance_fen: loaded.1,
            recovered,
        })
    }

    /// The new phone's side of a transfer: claims `code`, installs the card, loads the balance.
    /// (serial, balance after the load when there was one).
    fn claim(&mut self, city: &str, code: &str) -> Result<(String, Option<i64>), WalletError> {
        let mut recovered = None;
        if matches!(self.file.phone.in_flight.get(city), Some(InFlight::TopUp { .. })) {
            recovered = self.recover(city)?;
        }
        if let Some(card) = self.file.phone.cards.get(city) {
            // A claim finished by the recovery above, or a card the new phone had before (the
            // service refuses the claim then).
            if recovered.is_some() {
                return Ok((card.serial.clone(), recovered.and_then(|r| r.balance_after_fen)));
            }
        }
        self.refuse_in_flight(city)?;
        let token = self.registered()?;
        let device = &self.file.phone.device;
        let eligibility = self.api.eligibility(&device.maker, &device.model, city)?;
        let channel =
            eligibility.channel().ok_or_else(|| WalletError::NotEligible { reason: eligibility.reason.clone() })?;
        let claimed = self.api.claim_transfer(&token, code, channel)?;
        let se = SoftSe::power_on(&claimed.image)?;
        self.file.phone.cards.insert(
            city.to_owned(),
            PhoneCard {
                serial: claimed.card.serial.clone(),
                card_number: claimed.card.card_number.clone(),
                channel: channel.to_owned(),
                image: se.image(),
            },
        );
        let (Some(order), Some(initialize)) = (&claimed.load_order, &claimed.initialize_command) else {
            // The old card was empty: nothing to load.
            self.file.save()?;
            return Ok((claimed.card.serial, None));
        };
        if order.state == "loaded" {
            self.file.save()?;
            return Ok((claimed.card.serial, None));
        }
        let flow = InFlight::TopUp {
            order_id: order.order_id.clone(),
            amount_fen: order.amount_fen,
            step: TopUpStep::Opened,
            claim_code: Some(code.to_owned()),
        };
        self.set_in_flight(city, Some(flow))?;
        let mut se = se;
        let loaded = self.load(city, &mut se, &token, &order.order_id, initialize, None)?;
        Ok((claimed.card.serial, Some(loaded.balance_after_fen)))
    }

    /// What the phone holds: each card as its SE reads it (balance, counters, EF18 log, trips)
    /// and, unless `offline`, the service's view. Flows in flight are recovered first (not
    /// offline).
    pub fn show(&mut self, offline: bool) -> Result<PhoneReport, WalletError> {
        let mut recovered = Vec::new();
        if !offline {
            let cities: Vec<String> = self.file.phone.in_flight.keys().cloned().collect();
            for city in cities {
                match self.recover(&city) {
                    Ok(done) => recovered.extend(done),
                    // No service: show what the SE holds all the same.
                    Err(WalletError::Unreachable { .. }) => break,
                    Err(error) => return Err(error),
                }
            }
        }
        let mut cards = Vec::new();
        for (city, card) in &self.file.phone.cards {
            let mut se = SoftSe::power_on(&card.image)?;
            let report =
                read_card(&mut se).map_err(|e| WalletError::BadCardAnswer { command: "read", why: e.to_string() })?;
            cards.push(SeCard { city: city.clone(), channel: card.channel.clone(), card: report });
        }
        let (service, service_note) = if offline {
            (None, Some("offline: the service was not asked".to_owned()))
        } else {
            // A rotation left pending is settled first (the service then knows one token).
            let settled = self.settle_rotation().and_then(|_| self.token());
            match settled {
                Ok(Some(token)) => match self.api.me(&token) {
                    Ok(view) => (Some(view), None),
                    Err(error @ WalletError::Unreachable { .. }) => (None, Some(error.to_string())),
                    Err(error) => return Err(error),
                },
                Ok(None) => (None, Some("not registered with a service yet".to_owned())),
                Err(error) => (None, Some(error.to_string())),
            }
        };
        let phone = &self.file.phone;
        Ok(PhoneReport {
            device: phone.device.clone(),
            server: phone.server.clone(),
            phone_id: phone.phone_id.clone(),
            cards,
            service,
            service_note,
            in_flight: phone.in_flight.clone(),
            recovered,
        })
    }
}
