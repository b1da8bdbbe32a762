//! Over-the-air top-up: the platform is the card's load host (terminal `TOPUP_OVER_THE_AIR` of
//! the card's city) and the phone carries the APDUs to its secure element.
//!
//! Call order for one paid top-up order:
//! 1. [`OtaService::initialize_command`]: the INITIALIZE FOR LOAD the phone sends its card
//!    (the order's amount, our terminal ID).
//! 2. [`OtaService::authorize`] with the card's answer (balance, online counter, key version,
//!    algorithm, card random, MAC1): MAC1 is checked with the card's load key
//!    (`yitong_terminal::SoftwareLoadHost`), MAC2 is made with our terminal ID and time, and the
//!    load is recorded *in doubt* (order `loading`) before MAC2 leaves, with the CREDIT FOR LOAD
//!    command for the phone.
//! 3. [`OtaService::complete`] with CREDIT FOR LOAD's answer: the TAC is verified
//!    (`yitong_record::verify_tac`) and the typed load record becomes `confirmed`, the order
//!    `loaded` (posting the money to the card's liability).
//!
//! A phone that vanished between 2 and 3 is asked at its next contact for the card's evidence
//! ([`CardEvidence`]: GET TRANSACTION PROVE for the pending counter, the EF18 log, a fresh
//! INITIALIZE FOR LOAD) and [`OtaService::reconcile`] judges it:
//! - the proof carries our MAC2 and a TAC that verifies, or the log holds our load (counter,
//!   terminal, time, amount): **loaded** → the record is `recovered`, the order `loaded`;
//! - a fresh INITIALIZE whose MAC1 verifies shows the online counter unchanged: **not loaded**,
//!   proven by a MAC bound to that counter → load again (a new MAC2 for this session) or refund,
//!   as the caller chooses; the old session's MAC2 is void (the card's new INITIALIZE replaced it);
//! - the verified counter moved and nothing shows our load: **unknown** → the record is
//!   `unconfirmed`, the order stays `loading` (its money in `payments_unapplied`), neither
//!   loaded again nor refunded: the back office settles it from the card's later counters.
//!
//! The phone is not trusted to say "not loaded": only the card's MAC does. Evidence that proves
//! nothing (no fresh INITIALIZE, a MAC1 that does not verify) changes nothing.
//!
//! One payment never loads twice: the store keeps at most one load per order that is not proven
//! not loaded, and at most one load in doubt per card (unique indexes); the order's state machine
//! refuses a second delivery.

use std::fmt;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use yitong_issuer::{TerminalSite, TOPUP_OVER_THE_AIR};
use yitong_profile::apdu::{self, transaction_type, LoadInit};
use yitong_profile::files::LogRecord;
use yitong_profile::{DateTime, StatusWord};
use yitong_record::{verify_tac, RecordStatus, TacError, TacKeys, TapKind, TapRecord};

use crate::card_answer::{ok_data, BadAnswer};
use yitong_terminal::{LoadKeyHolder, LoadRequest, SamError, SoftwareLoadHost};

use crate::cities::{Cities, City};
use crate::issuance::PhoneCard;
use crate::issuer_keys::IssuerKeyring;
use crate::ledger::{CardId, Fen};
use crate::payments::{
    apply_to_read_in, MerchantOrderId, Order, OrderEvent, OrderKind, OrderState, PaymentProvider, PaymentService,
    ServiceError, Step,
};
use crate::store::{self, StoreError};

/// EF18 records a phone may send as evidence (the card keeps ten).
pub const EVIDENCE_LOG_RECORDS_MAX: usize = 10;
/// Attempts at the order's compare-and-swap when other writers keep winning.
const ATTEMPTS_MAX: u32 = 16;

/// Where one over-the-air load is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadState {
    /// MAC2 handed out; the card's TAC not seen.
    InDoubt,
    /// The TAC verified.
    Confirmed,
    /// Found on the card at a later contact (its proof or its log).
    Recovered,
    /// Proven not loaded by the card's unchanged online counter (under a verified MAC1).
    NotLoaded,
    /// The card could no longer tell; the back office settles it.
    Unconfirmed,
}

const LOAD_STATES: [LoadState; 5] =
    [LoadState::InDoubt, LoadState::Confirmed, LoadState::Recovered, LoadState::NotLoaded, LoadState::Unconfirmed];

impl LoadState {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            LoadState::InDoubt => "in_doubt",
            LoadState::Confirmed => "confirmed",
            LoadState::Recovered => "recovered",
            LoadState::NotLoaded => "not_loaded",
            LoadState::Unconfirmed => "unconfirmed",
        }
    }

    /// Reads a stored name back.
    pub fn parse(name: &str) -> Option<LoadState> {
        LOAD_STATES.into_iter().find(|state| state.name() == name)
    }
}

/// One MAC2 handed out, with its typed load record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtaLoad {
    /// The top-up order it delivers.
    pub merchant_order_id: MerchantOrderId,
    /// The card.
    pub card_id: CardId,
    /// Where it is.
    pub state: LoadState,
    /// The online counter INITIALIZE FOR LOAD returned.
    pub counter_before: u16,
    /// The load record (status `confirmed` as drafted, then as settled; MAC2 always, TAC once seen).
    pub record: TapRecord,
    /// When MAC2 was handed out, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last change, Unix milliseconds.
    pub updated_at_ms: i64,
}

/// What the phone sends its card next: CREDIT FOR LOAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadAuthorization {
    /// The load's record ID (`<terminal ID>-<number>`).
    pub tap_id: String,
    /// Our terminal ID, as the card got it in INITIALIZE FOR LOAD.
    pub terminal_id: [u8; 6],
    /// The load's local date and time, as in the CREDIT command.
    pub at: DateTime,
    /// MAC2.
    pub mac2: [u8; 4],
    /// The CREDIT FOR LOAD command, byte for byte.
    pub credit_command: Vec<u8>,
}

/// The card's evidence about a load in doubt, gathered by the phone at its next contact. Each is
/// the card's whole answer (data and status word).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardEvidence {
    /// The answer to GET TRANSACTION PROVE for the pending counter ([`OtaService::evidence_commands`]).
    pub prove: Option<Vec<u8>>,
    /// Answers to READ RECORD of EF18, newest first (at most [`EVIDENCE_LOG_RECORDS_MAX`]).
    pub log: Vec<Vec<u8>>,
    /// The answer to a fresh INITIALIZE FOR LOAD ([`OtaService::initialize_command`]); required to
    /// prove "not loaded".
    pub initialize: Option<Vec<u8>>,
}

/// What to do with a load proven not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenNotLoaded {
    /// Load again in the session of the fresh INITIALIZE.
    LoadAgain,
    /// Refund the order.
    Refund,
}

/// What [`OtaService::reconcile`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The card has the load: recorded `recovered`, the order `loaded`.
    Loaded {
        /// The load record.
        record: Box<TapRecord>,
        /// The order.
        order: Box<Order>,
    },
    /// Proven not loaded; loading again: send this CREDIT FOR LOAD.
    LoadAgain(LoadAuthorization),
    /// Proven not loaded; the order is refunded (or its refund pending at the provider).
    Refunded(Box<Order>),
    /// The card can no longer tell: the record is `unconfirmed`, the order stays `loading`.
    Unconfirmed(Box<TapRecord>),
    /// Nothing was in doubt (completed before, or never authorized).
    NothingInDoubt(Box<Order>),
}

/// What a completed load gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The load record, TAC verified.
    pub record: TapRecord,
    /// The order, `loaded`.
    pub order: Order,
}

/// Why a top-up step was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum TopUpError {
    /// No such order, or not a top-up.
    NotATopUp(MerchantOrderId),
    /// The order's card was not issued here.
    UnknownCard(CardId),
    /// The card is being closed (transfer or deletion) or closed: it takes no load.
    CardClosed(CardId),
    /// The order is not in a state that can load (not paid, refunded, closed).
    NotPayable {
        /// The order.
        order: MerchantOrderId,
        /// Its state.
        state: OrderState,
    },
    /// The order is loaded already: it never loads twice.
    AlreadyLoaded(MerchantOrderId),
    /// A load of this order, or another load of this card, is in doubt: reconcile it first.
    LoadInDoubt {
        /// The card.
        card: CardId,
        /// The load in doubt.
        tap_id: String,
    },
    /// The order's load was handed on unconfirmed: the back office settles it.
    LoadUnconfirmed(MerchantOrderId),
    /// No load of this order was authorized.
    NoLoad(MerchantOrderId),
    /// A card answer that is malformed or not a success; names the command.
    BadAnswer {
        /// The command answered.
        command: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The card's MAC1 did not verify (not this card, a forged or corrupted answer).
    Mac1Invalid,
    /// The load host holds no key of the card's issuer, key version or algorithm.
    Keys(SamError),
    /// The TAC did not verify: nothing is recorded; the load stays in doubt.
    Tac(TacError),
    /// The evidence proves nothing: a fresh INITIALIZE FOR LOAD whose MAC1 verifies is needed.
    EvidenceIncomplete(&'static str),
    /// The payment step failed.
    Payment(ServiceError),
    /// Storage failed; nothing of the step was written.
    Store(StoreError),
}

impl fmt::Display for TopUpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopUpError::NotATopUp(id) => write!(f, "order {id} is not a top-up order"),
            TopUpError::UnknownCard(card) => write!(f, "card {card} was not issued here"),
            TopUpError::CardClosed(card) => write!(f, "card {card} is closing or closed and takes no top-up"),
            TopUpError::NotPayable { order, state } => write!(f, "order {order} is {} and cannot load", state.name()),
            TopUpError::AlreadyLoaded(id) => write!(f, "order {id} is loaded already"),
            TopUpError::LoadInDoubt { card, tap_id } => {
                write!(f, "card {card} has load {tap_id} in doubt: send the card's evidence first")
            }
            TopUpError::LoadUnconfirmed(id) => {
                write!(f, "the load of order {id} is unconfirmed; the issuer settles it")
            }
            TopUpError::NoLoad(id) => write!(f, "no load of order {id} was authorized"),
            TopUpError::BadAnswer { command, why } => write!(f, "{command} answer: {why}"),
            TopUpError::Mac1Invalid => f.write_str("the card's MAC1 did not verify"),
            TopUpError::Keys(error) => write!(f, "load keys: {error}"),
            TopUpError::Tac(error) => write!(f, "{error}"),
            TopUpError::EvidenceIncomplete(why) => write!(f, "evidence proves nothing: {why}"),
            TopUpError::Payment(error) => write!(f, "{error}"),
            TopUpError::Store(error) => write!(f, "{error}"),
        }
    }
}

impl From<BadAnswer> for TopUpError {
    fn from(bad: BadAnswer) -> TopUpError {
        TopUpError::BadAnswer { command: bad.command, why: bad.why }
    }
}

impl std::error::Error for TopUpError {}

impl From<StoreError> for TopUpError {
    fn from(error: StoreError) -> TopUpError {
        TopUpError::Store(error)
    }
}

impl From<sqlx::Error> for TopUpError {
    fn from(error: sqlx::Error) -> TopUpError {
        TopUpError::Store(StoreError::Database(error))
    }
}

impl From<ServiceError> for TopUpError {
    fn from(error: ServiceError) -> TopUpError {
        TopUpError::Payment(error)
    }
}

/// The platform's over-the-air load host: the issuers' load keys (MAC1, MAC2) and TAC keys.
pub struct OtaService {
    cities: Cities,
    host: Mutex<SoftwareLoadHost>,
    tac: TacKeys,
}

impl fmt::Debug for OtaService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtaService").field("tac_keys", &self.tac).finish_non_exhaustive()
    }
}

/// A top-up order (or a transfer's funded load order) read with its card, as a route reads them
/// to check that the caller owns them: the steps' `_for` forms take it instead of reading both
/// again ([`OtaService::order_with_card`] reads them).
#[derive(Clone, Debug)]
pub struct OrderWithCard {
    /// The order.
    pub order: Order,
    /// Its card.
    pub card: PhoneCard,
}

/// The order, its card and city, checked to be a top-up of a card issued here.
struct Context<'c> {
    order: Order,
    card: PhoneCard,
    city: &'c City,
    amount_fen: u32,
}

impl OtaService {
    /// A load host for `cities` with the load and TAC keys of `keys`.
    pub fn new(cities: Cities, keys: &IssuerKeyring) -> OtaService {
        OtaService { cities, host: Mutex::new(keys.load_host()), tac: keys.tac_keys_of_few_cards() }
    }

    /// Our terminal ID in `city`: `TOPUP_OVER_THE_AIR` (`city · FFFF · 0002`).
    pub fn terminal_id(city: &City) -> [u8; 6] {
        TerminalSite::TopUp { number: TOPUP_OVER_THE_AIR }
            .terminal_id(city.city_code())
            .expect("a city's code is BCD and top-up sites are always valid")
    }

    /// Step 1: the INITIALIZE FOR LOAD the phone sends its card for order `id`.
    pub async fn initialize_command<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        id: &MerchantOrderId,
    ) -> Result<Vec<u8>, TopUpError> {
        self.initialize_command_for(self.order_with_card(payments, id).await?)
    }

    /// [`initialize_command`](Self::initialize_command) of an order read with its card.
    pub fn initialize_command_for(&self, read: OrderWithCard) -> Result<Vec<u8>, TopUpError> {
        let context = self.context(read)?;
        Ok(apdu::initialize_for_load(context.amount_fen, OtaService::terminal_id(context.city)))
    }

    /// The commands that gather evidence about order `id`'s load in doubt: GET TRANSACTION
    /// PROVE for its counter and READ RECORD of EF18 1..=10 (newest first), then a fresh
    /// INITIALIZE FOR LOAD ([`initialize_command`](Self::initialize_command)).
    pub async fn evidence_commands<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        id: &MerchantOrderId,
    ) -> Result<(Vec<u8>, Vec<Vec<u8>>), TopUpError> {
        let mut connection = payments.store().reader().await?;
        let load =
            store::live_load_in(&mut connection.db(), id).await?.ok_or_else(|| TopUpError::NoLoad(id.clone()))?;
        let prove = apdu::get_transaction_prove(transaction_type::EP_LOAD, load.record.counter);
        let log = (1..=EVIDENCE_LOG_RECORDS_MAX as u8)
            .map(|n| apdu::read_record(apdu::SFI_LOG, n, yitong_profile::files::LOG_RECORD_LEN as u8))
            .collect();
        Ok((prove, log))
    }

    /// Step 2: checks the card's INITIALIZE FOR LOAD `answer` (data and status word), records the
    /// load in doubt and answers the CREDIT FOR LOAD to send, at local time `at`. Repeating it
    /// with the same answer returns the same authorization.
    pub async fn authorize<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        id: &MerchantOrderId,
        answer: &[u8],
        at: DateTime,
        now_ms: i64,
    ) -> Result<LoadAuthorization, TopUpError> {
        self.authorize_for(payments, self.order_with_card(payments, id).await?, answer, at, now_ms).await
    }

    /// [`authorize`](Self::authorize) of an order read with its card.
    pub async fn authorize_for<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        read: OrderWithCard,
        answer: &[u8],
        at: DateTime,
        now_ms: i64,
    ) -> Result<LoadAuthorization, TopUpError> {
        let context = self.context(read)?;
        let init = parse_initialize(answer)?;
        self.hand_out(payments, &context, &init, at, None, now_ms).await
    }

    /// Step 3: verifies CREDIT FOR LOAD's `answer` (TAC and status word) and records the load:
    /// the record `confirmed`, the order `loaded`. Repeating it is a no-op.
    pub async fn complete<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        id: &MerchantOrderId,
        answer: &[u8],
        now_ms: i64,
    ) -> Result<Loaded, TopUpError> {
        self.complete_for(payments, self.order_with_card(payments, id).await?, answer, now_ms).await
    }

    /// [`complete`](Self::complete) of an order read with its card.
    pub async fn complete_for<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        read: OrderWithCard,
        answer: &[u8],
        now_ms: i64,
    ) -> Result<Loaded, TopUpError> {
        let context = self.context(read)?;
        let id = &context.order.merchant_order_id;
        // The load is read, its TAC verified, the load settled and its order loaded in one
        // transaction.
        let mut transaction = payments.store().begin_write().await?;
        let load =
            store::live_load_in(&mut transaction.db(), id).await?.ok_or_else(|| TopUpError::NoLoad(id.clone()))?;
        match load.state {
            LoadState::InDoubt => {}
            LoadState::Confirmed | LoadState::Recovered => {
                transaction.rollback().await?;
                return self.finish(payments, &context, load.record, now_ms).await;
            }
            LoadState::Unconfirmed => return Err(TopUpError::LoadUnconfirmed(id.clone())),
            LoadState::NotLoaded => unreachable!("a live load is never not_loaded"),
        }
        let record = self.credited(&load, answer)?;
        let step = Step {
            event: OrderEvent::DeliveryConfirmed,
            provider_transaction_id: None,
            payment: None,
            card_balance_after: balance_after(&record).ok(),
            now_ms,
        };
        if store::settle_load_in(&mut transaction.db(), &load, LoadState::Confirmed, &record, now_ms).await? {
            match apply_to_read_in(&mut transaction, &context.order, &step).await {
                Ok(Some(applied)) => {
                    transaction.commit().await?;
                    return Ok(Loaded { record, order: applied.order });
                }
                Ok(None) => {}
                // Said here: the steps below answer for the order, and may not repeat this.
                Err(error) => tracing::warn!(order = %id, %error, "a confirmed load's order refused its step"),
            }
        }
        // Another writer settled the load or moved the order first (PostgreSQL), or the order
        // refuses the step: the load's own step, then the order's, so that the card's proof is
        // kept whatever the order says.
        transaction.rollback().await?;
        self.settle(payments, &load, LoadState::Confirmed, &record, now_ms).await?;
        self.finish(payments, &context, record, now_ms).await
    }

    /// The load record of `load` in doubt with the TAC of the card's CREDIT FOR LOAD `answer`,
    /// verified.
    fn credited(&self, load: &OtaLoad, answer: &[u8]) -> Result<TapRecord, TopUpError> {
        let data = ok_data(answer, "CREDIT FOR LOAD")?;
        let tac = <[u8; 4]>::try_from(data).map_err(|_| TopUpError::BadAnswer {
            command: "CREDIT FOR LOAD",
            why: format!("{} data bytes, expected the 4-byte TAC", data.len()),
        })?;
        let mut record = load.record.clone();
        record.tac = Some(tac);
        record.status = RecordStatus::Confirmed;
        verify_tac(&record, &self.tac).map_err(TopUpError::Tac)?;
        Ok(record)
    }

    /// Settles order `id`'s load in doubt from the card's `evidence` at the phone's next contact
    /// (see the module documentation); `when_not_loaded` chooses between loading again (at local
    /// time `at`) and a refund.
    pub async fn reconcile<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        id: &MerchantOrderId,
        evidence: &CardEvidence,
        when_not_loaded: WhenNotLoaded,
        at: DateTime,
        now_ms: i64,
    ) -> Result<Reconciled, TopUpError> {
        let context = self.context(self.order_with_card(payments, id).await?)?;
        let mut connection = payments.store().reader().await?;
        let live = store::live_load_in(&mut connection.db(), id).await?;
        drop(connection);
        let load = match live {
            Some(load) if load.state == LoadState::InDoubt => load,
            Some(load) if matches!(load.state, LoadState::Confirmed | LoadState::Recovered) => {
                let loaded = self.finish(payments, &context, load.record, now_ms).await?;
                return Ok(Reconciled::NothingInDoubt(Box::new(loaded.order)));
            }
            Some(_) => return Err(TopUpError::LoadUnconfirmed(id.clone())),
            // `loading` with no MAC2 outstanding (the last one proven not loaded, then a stop
            // before the refund or the next load): nothing can be on the card for it.
            None if context.order.state == OrderState::Loading => {
                return match when_not_loaded {
                    WhenNotLoaded::Refund => Ok(Reconciled::Refunded(Box::new(payments.refund(id, now_ms).await?))),
                    WhenNotLoaded::LoadAgain => {
                        let answer = evidence
                            .initialize
                            .as_deref()
                            .ok_or(TopUpError::EvidenceIncomplete("loading again needs a fresh INITIALIZE FOR LOAD"))?;
                        let init = parse_initialize(answer)?;
                        Ok(Reconciled::LoadAgain(self.hand_out(payments, &context, &init, at, None, now_ms).await?))
                    }
                };
            }
            None => return Ok(Reconciled::NothingInDoubt(Box::new(context.order))),
        };
        if evidence.log.len() > EVIDENCE_LOG_RECORDS_MAX {
            return Err(TopUpError::BadAnswer {
                command: "READ RECORD (EF18)",
                why: format!("{} records, at most {EVIDENCE_LOG_RECORDS_MAX}", evidence.log.len()),
            });
        }
        // Loaded: our proof (MAC2 ours, TAC verified), else our record in the card's log.
        if let Some(record) =
            self.proof_of(&load, evidence.prove.as_deref()).or_else(|| log_shows(&load, &evidence.log))
        {
            self.settle(payments, &load, LoadState::Recovered, &record, now_ms).await?;
            let loaded = self.finish(payments, &context, record, now_ms).await?;
            return Ok(Reconciled::Loaded { record: Box::new(loaded.record), order: Box::new(loaded.order) });
        }
        // Not loaded or unknown: only the card's counter under a verified MAC1 tells.
        let answer = evidence
            .initialize
            .as_deref()
            .ok_or(TopUpError::EvidenceIncomplete("no proof or log of the load, and no fresh INITIALIZE FOR LOAD"))?;
        let init = parse_initialize(answer)?;
        match self.mac2(&context, &init, at) {
            Ok(_) => {}
            Err(TopUpError::Mac1Invalid) => {
                return Err(TopUpError::EvidenceIncomplete("the fresh INITIALIZE FOR LOAD's MAC1 did not verify"))
            }
            Err(error) => return Err(error),
        }
        if init.online_counter != load.counter_before {
            let mut unconfirmed = load.record.clone();
            unconfirmed.status = RecordStatus::Unconfirmed;
            self.settle(payments, &load, LoadState::Unconfirmed, &unconfirmed, now_ms).await?;
            return Ok(Reconciled::Unconfirmed(Box::new(unconfirmed)));
        }
        match when_not_loaded {
            WhenNotLoaded::LoadAgain => {
                Ok(Reconciled::LoadAgain(self.hand_out(payments, &context, &init, at, Some(&load), now_ms).await?))
            }
            WhenNotLoaded::Refund => {
                self.settle(payments, &load, LoadState::NotLoaded, &load.record, now_ms).await?;
                Ok(Reconciled::Refunded(Box::new(payments.refund(id, now_ms).await?)))
            }
        }
    }

    /// Order `id`, a top-up of a card issued here (or a transfer's load), read with its card.
    pub async fn order_with_card<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        id: &MerchantOrderId,
    ) -> Result<OrderWithCard, TopUpError> {
        let (order, card) = match payments.store().order_with_card(id).await? {
            Some((order, card)) if matches!(order.kind, OrderKind::TopUp | OrderKind::Transfer) => (order, card),
            Some(_) | None => return Err(TopUpError::NotATopUp(id.clone())),
        };
        let card_id = order.card_id.clone().ok_or_else(|| TopUpError::NotATopUp(id.clone()))?;
        let card = card.ok_or(TopUpError::UnknownCard(card_id))?;
        Ok(OrderWithCard { order, card })
    }

    /// The order checked to be a top-up (or a transfer's load) of its card, a card issued here,
    /// with its city.
    fn context(&self, read: OrderWithCard) -> Result<Context<'_>, TopUpError> {
        let OrderWithCard { order, card } = read;
        let id = &order.merchant_order_id;
        if !matches!(order.kind, OrderKind::TopUp | OrderKind::Transfer)
            || order.card_id.as_ref() != Some(&card.card_id)
        {
            return Err(TopUpError::NotATopUp(id.clone()));
        }
        let city = self.cities.get(&card.city).ok_or_else(|| TopUpError::UnknownCard(card.card_id.clone()))?;
        let amount_fen = u32::try_from(order.amount.get()).map_err(|_| TopUpError::NotATopUp(id.clone()))?;
        Ok(Context { order, card, city, amount_fen })
    }

    /// Checks MAC1 of `init` with the card's load key and makes MAC2: the load record as it will
    /// be once the card commits (TAC not known yet), numbered later.
    fn mac2(&self, context: &Context<'_>, init: &LoadInit, at: DateTime) -> Result<(TapRecord, [u8; 4]), TopUpError> {
        let serial = context.card.serial().map_err(|_| TopUpError::UnknownCard(context.card.card_id.clone()))?;
        let terminal_id = OtaService::terminal_id(context.city);
        let request = LoadRequest {
            issuer_id: context.city.issuer_id(),
            asn8: serial.asn8(),
            card_random: init.card_random,
            online_counter: init.online_counter,
            balance_before_fen: init.balance_fen,
            amount_fen: context.amount_fen,
            terminal_id,
            at,
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
            mac1: init.mac1,
        };
        let mut host = self.host.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mac2 = match host.authorize_load(&request) {
            Ok(mac2) => mac2,
            Err(SamError::MacMismatch) => return Err(TopUpError::Mac1Invalid),
            Err(error) => return Err(TopUpError::Keys(error)),
        };
        drop(host);
        let balance_before = i64::from(init.balance_fen);
        let record = TapRecord {
            status: RecordStatus::Confirmed,
            kind: TapKind::Load,
            transaction_type: transaction_type::EP_LOAD,
            card_serial: serial.0,
            issuer_id: context.city.issuer_id(),
            counter: init.online_counter.wrapping_add(1),
            amount_fen: context.amount_fen,
            balance_before_fen: balance_before,
            balance_after_fen: balance_before + i64::from(context.amount_fen),
            terminal_id,
            terminal_transaction_number: 0,
            at,
            city: context.city.name().to_owned(),
            city_code: context.city.city_code(),
            station: String::new(),
            line: 0,
            station_code: 0,
            card_random: init.card_random,
            key_version: init.key_version,
            algorithm_id: init.algorithm_id,
            mac2: Some(mac2),
            tac: None,
        };
        Ok((record, mac2))
    }

    /// One transaction: the order `paid` → `loading` (or kept `loading`), the replaced doubt (if
    /// any) `not_loaded`, a transaction number, the new load in doubt. MAC2 leaves only after it
    /// commits. The card's answer of a load in doubt already handed out for the order (a repeated
    /// request) gets that load's authorization again, nothing written.
    async fn hand_out<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        context: &Context<'_>,
        init: &LoadInit,
        at: DateTime,
        replacing: Option<&OtaLoad>,
        now_ms: i64,
    ) -> Result<LoadAuthorization, TopUpError> {
        let id = &context.order.merchant_order_id;
        // MAC1 checked and MAC2 made before the writer's turn (they depend on the card's answer
        // and the time only); a failure is made again, and answered, where the checks below put
        // it.
        let made = self.mac2(context, init, at).ok();
        for attempt in 0..ATTEMPTS_MAX {
            let mut transaction = payments.store().begin_write().await?;
            if let Some(old) = replacing {
                if !store::settle_load_in(&mut transaction.db(), old, LoadState::NotLoaded, &old.record, now_ms).await?
                {
                    transaction.rollback().await?;
                    return Err(in_doubt(old));
                }
            }
            if let Some(live) = store::live_load_in(&mut transaction.db(), id).await? {
                transaction.rollback().await?;
                return match live.state {
                    // The same card answer again (a repeated request): the same authorization.
                    LoadState::InDoubt
                        if replacing.is_none()
                            && (live.record.card_random, live.counter_before)
                                == (init.card_random, init.online_counter) =>
                    {
                        Ok(authorization(&live.record))
                    }
                    LoadState::InDoubt => Err(in_doubt(&live)),
                    LoadState::Unconfirmed => Err(TopUpError::LoadUnconfirmed(id.clone())),
                    _ => Err(TopUpError::AlreadyLoaded(id.clone())),
                };
            }
            let (mut record, _) = match &made {
                Some(made) => made.clone(),
                None => self.mac2(context, init, at)?,
            };
            // The order as read before, on the first attempt, if it was paid: its move to loading
            // is a compare-and-swap that fails (and the next attempt reads it) if it moved since.
            // Any other state is read again here: `loading` is kept without a swap, so it must be
            // the order's state now.
            let order = match &context.order {
                read if attempt == 0 && read.state == OrderState::Paid => read.clone(),
                _ => store::order_in(&mut transaction.db(), id)
                    .await?
                    .ok_or_else(|| TopUpError::NotATopUp(id.clone()))?,
            };
            match order.state {
                OrderState::Paid => {
                    let to = order.state.apply(order.kind, OrderEvent::DeliveryStarted).map_err(ServiceError::from)?;
                    if !store::transition_in(&mut transaction.db(), &order, to, None, now_ms).await? {
                        transaction.rollback().await?;
                        continue;
                    }
                }
                OrderState::Loading => {}
                OrderState::Loaded => return Err(TopUpError::AlreadyLoaded(id.clone())),
                state => return Err(TopUpError::NotPayable { order: id.clone(), state }),
            }
            // The card stays open until the commit (a closure waits, or this waits and refuses).
            if !store::closures::move_card_in(&mut transaction.db(), &context.card.card_id, "active", "active").await? {
                transaction.rollback().await?;
                return Err(TopUpError::CardClosed(context.card.card_id.clone()));
            }
            if let Some(other) = store::doubt_of_card_in(&mut transaction.db(), &context.card.card_id).await? {
                transaction.rollback().await?;
                return Err(in_doubt(&other));
            }
            record.terminal_transaction_number =
                store::next_transaction_number_in(&mut transaction.db(), record.terminal_id).await?;
            let load = OtaLoad {
                merchant_order_id: id.clone(),
                card_id: context.card.card_id.clone(),
                state: LoadState::InDoubt,
                counter_before: record.counter.wrapping_sub(1),
                record,
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
            };
            match store::insert_load_in(&mut transaction.db(), &load).await {
                Ok(()) => {}
                // PostgreSQL: a concurrent writer took the order's or the card's one slot.
                Err(error) if error.is_unique_violation() => {
                    transaction.rollback().await?;
                    return Err(TopUpError::LoadInDoubt {
                        card: context.card.card_id.clone(),
                        tap_id: String::from("(another request's)"),
                    });
                }
                Err(error) => return Err(error.into()),
            }
            transaction.commit().await?;
            return Ok(authorization(&load.record));
        }
        Err(TopUpError::Store(StoreError::Contended(ATTEMPTS_MAX)))
    }

    /// Moves a load in doubt to `to` with `record`; another writer that settled it first wins
    /// (its outcome is the same card evidence read twice).
    async fn settle<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        load: &OtaLoad,
        to: LoadState,
        record: &TapRecord,
        now_ms: i64,
    ) -> Result<(), TopUpError> {
        let mut transaction = payments.store().begin_write().await?;
        let settled = store::settle_load_in(&mut transaction.db(), load, to, record, now_ms).await?;
        transaction.commit().await?;
        if settled {
            return Ok(());
        }
        let mut connection = payments.store().reader().await?;
        match store::live_load_in(&mut connection.db(), &load.merchant_order_id).await? {
            Some(now) if now.state == to => Ok(()),
            Some(now) if now.state == LoadState::InDoubt => Err(in_doubt(&now)),
            _ => Err(TopUpError::NotPayable { order: load.merchant_order_id.clone(), state: OrderState::Loading }),
        }
    }

    /// The order `loaded` with the card's balance after the load (idempotent).
    async fn finish<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        context: &Context<'_>,
        record: TapRecord,
        now_ms: i64,
    ) -> Result<Loaded, TopUpError> {
        let balance = balance_after(&record)?;
        let order = payments.confirm_delivery(&context.order.merchant_order_id, Some(balance), now_ms).await?;
        Ok(Loaded { record, order })
    }

    /// The load record with the proof's TAC, if GET TRANSACTION PROVE's answer carries our MAC2
    /// and a TAC that verifies.
    fn proof_of(&self, load: &OtaLoad, answer: Option<&[u8]>) -> Option<TapRecord> {
        let (data, sw) = StatusWord::split(answer?)?;
        let proof = <[u8; 8]>::try_from(data).ok().filter(|_| sw == StatusWord::OK)?;
        let (mac2, tac) = proof.split_at(4);
        if load.record.mac2.as_ref().map(|m| m.as_slice()) != Some(mac2) {
            return None;
        }
        let mut record = load.record.clone();
        record.tac = Some(<[u8; 4]>::try_from(tac).ok()?);
        record.status = RecordStatus::Recovered;
        verify_tac(&record, &self.tac).ok().map(|()| record)
    }
}

/// The load record, recovered without TAC, if one of the EF18 answers is our load: its counter,
/// our terminal, its date, time and amount.
fn log_shows(load: &OtaLoad, log: &[Vec<u8>]) -> Option<TapRecord> {
    let ours = &load.record;
    let found = log.iter().filter_map(|answer| {
        let (data, sw) = StatusWord::split(answer)?;
        (sw == StatusWord::OK).then(|| LogRecord::decode(data).ok()).flatten()
    });
    let mut found = found.filter(|entry| {
        entry.transaction_type == transaction_type::EP_LOAD
            && entry.counter == ours.counter
            && entry.terminal_id == ours.terminal_id
            && entry.amount_fen == ours.amount_fen
            && entry.date == ours.at.date_bcd()
            && entry.time == ours.at.time_bcd()
    });
    found.next().map(|_| TapRecord { status: RecordStatus::Recovered, ..ours.clone() })
}

/// The card's balance after the load `record`.
fn balance_after(record: &TapRecord) -> Result<Fen, TopUpError> {
    Fen::new(record.balance_after_fen).ok_or_else(|| TopUpError::BadAnswer {
        command: "INITIALIZE FOR LOAD",
        why: format!("balance after the load {} fen is negative", record.balance_after_fen),
    })
}

fn parse_initialize(answer: &[u8]) -> Result<LoadInit, TopUpError> {
    let data = ok_data(answer, "INITIALIZE FOR LOAD")?;
    LoadInit::decode(data).map_err(|_| TopUpError::BadAnswer {
        command: "INITIALIZE FOR LOAD",
        why: format!("{} data bytes, expected 16", data.len()),
    })
}

fn authorization(record: &TapRecord) -> LoadAuthorization {
    let mac2 = record.mac2.expect("a load in doubt carries the MAC2 handed out");
    LoadAuthorization {
        tap_id: record.tap_id().to_string(),
        terminal_id: record.terminal_id,
        at: record.at,
        mac2,
        credit_command: apdu::credit_for_load(record.at.date_bcd(), record.at.time_bcd(), mac2),
    }
}

fn in_doubt(load: &OtaLoad) -> TopUpError {
    TopUpError::LoadInDoubt { card: load.card_id.clone(), tap_id: load.record.tap_id().to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load() -> OtaLoad {
        let at = DateTime::new(2026, 11, 25, 10, 30, 0).unwrap();
        OtaLoad {
            merchant_order_id: MerchantOrderId::parse("T00000001").unwrap(),
            card_id: CardId::parse("10000000000000000001").unwrap(),
            state: LoadState::InDoubt,
            counter_before: 4,
            record: TapRecord {
                status: RecordStatus::Confirmed,
                kind: TapKind::Load,
                transaction_type: transaction_type::EP_LOAD,
                card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1],
                counter: 5,
                amount_fen: 5_000,
                balance_before_fen: 0,
                balance_after_fen: 5_000,
                terminal_id: [0x10, 0, 0xFF, 0xFF, 0, 2],
                terminal_transaction_number: 9,
                at,
                city: "beijing".into(),
                city_code: 0x1000,
                station: String::new(),
                line: 0,
                station_code: 0,
                card_random: [1, 2, 3, 4],
                key_version: 1,
                algorithm_id: 0,
                mac2: Some([9, 9, 9, 9]),
                tac: None,
            },
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    /// An EF18 answer as the card gives it: 23 bytes and `9000`.
    fn entry(change: impl FnOnce(&mut LogRecord)) -> Vec<u8> {
        let mut record = LogRecord {
            counter: 5,
            overdraft_limit_fen: 0,
            amount_fen: 5_000,
            transaction_type: transaction_type::EP_LOAD,
            terminal_id: [0x10, 0, 0xFF, 0xFF, 0, 2],
            date: [0x20, 0x26, 0x11, 0x25],
            time: [0x10, 0x30, 0x00],
        };
        change(&mut record);
        let mut answer = record.encode().to_vec();
        answer.extend_from_slice(&[0x90, 0x00]);
        answer
    }

    #[test]
    fn only_a_log_record_of_our_load_shows_it() {
        let ours = entry(|_| {});
        let found = log_shows(&load(), &[entry(|r| r.transaction_type = 6), ours.clone()]).expect("found");
        assert_eq!((found.status, found.tac), (RecordStatus::Recovered, None));
        let others: [(&str, Vec<u8>); 6] = [
            ("another counter", entry(|r| r.counter = 6)),
            ("another terminal", entry(|r| r.terminal_id[5] = 1)),
            ("another amount", entry(|r| r.amount_fen = 4_999)),
            ("another second", entry(|r| r.time[2] = 1)),
            ("a purchase", entry(|r| r.transaction_type = 9)),
            ("not a success", {
                let mut answer = ours.clone();
                let end = answer.len() - 2;
                answer[end..].copy_from_slice(&[0x6A, 0x83]);
                answer
            }),
        ];
        for (why, answer) in others {
            assert_eq!(log_shows(&load(), &[answer]), None, "{why}");
        }
        assert_eq!(log_shows(&load(), &[vec![0x90], vec![]]), None, "garbled answers show nothing");
    }

    #[test]
    fn card_answers_are_parsed_not_indexed() {
        assert!(matches!(parse_initialize(&[0x69, 0x85]), Err(TopUpError::BadAnswer { .. })));
        assert!(matches!(parse_initialize(&[0; 15 + 2]), Err(TopUpError::BadAnswer { .. })));
        let mut answer = vec![0; 16];
        answer.extend_from_slice(&[0x90, 0x00]);
        assert_eq!(parse_initialize(&answer).unwrap().online_counter, 0);
        assert!(matches!(
            ok_data(&[0x90], "CREDIT FOR LOAD").map_err(TopUpError::from),
            Err(TopUpError::BadAnswer { .. })
        ));
    }

    #[test]
    fn load_states_read_back() {
        for state in LOAD_STATES {
            assert_eq!(LoadState::parse(state.name()), Some(state));
        }
        assert_eq!(LoadState::parse("loaded"), None);
    }
}
