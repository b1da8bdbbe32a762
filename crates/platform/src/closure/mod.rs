//! Card closure over the air: a phone card is emptied (a purchase of its whole balance by the
//! platform's service desk terminal) and blocked for good, each step proven by the card, before
//! its balance moves to a new phone's card ([`Purpose::Transfer`]) or back to the rider
//! ([`Purpose::Delete`]).
//!
//! [`ClosureService`] is a state machine the HTTP layer pumps: [`ClosureService::start`] hands
//! the phone one APDU, [`ClosureService::answer`] takes the card's whole answer and hands the
//! next, until the step says `closed`:
//!
//! ```text
//! GET BALANCE ─ balance > 0 → INITIALIZE FOR PURCHASE (whole balance, our terminal)
//!      │                        → DEBIT FOR PURCHASE (recorded in doubt before MAC1 leaves)
//!      │                        → TAC and MAC2 verified → GET BALANCE again (another round)
//!      └ balance 0 → GET CHALLENGE → APPLICATION BLOCK P2 01 (maintenance-key MAC) → 9000: closed
//! ```
//!
//! A phone that vanished is resumed by `start` again, from the card's evidence about a debit in
//! doubt: GET TRANSACTION PROVE for its counter (MAC2 and TAC verified), else the EF18 log (our
//! terminal, counter, amount, time), else a fresh GET BALANCE + INITIALIZE: an unchanged offline
//! counter proves the debit never committed (the new INITIALIZE voided its session); a moved
//! counter with nothing proving our debit makes it `unconfirmed` (handed to the back office,
//! never moved). Money moves only as far as the card's verified TACs prove it left the card.
//!
//! At `closed`, one posting: the card's liability is emptied into `transfers_payable` (transfer)
//! or `refunds_payable` (deletion) by the proven amount, and whatever the liability held beyond
//! it into `fares_unsettled` (spent at gates; the gates' uploads clear it). A transfer then waits
//! for [`ClosureService::claim_transfer`]; a deletion's [`OrderKind::BalanceRefund`] order is
//! paid back as partial refunds of the card's top-ups, newest first.

mod machine;
mod refund;
mod transfer;

use std::fmt;
use std::sync::Mutex;

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use yitong_record::{TacError, TacKeys, TapRecord};
use yitong_terminal::SamError;

use crate::issuance::{IssuanceError, IssuanceService};
use crate::issuer_keys::IssuerKeyring;
use crate::ledger::{CardId, Fen};
use crate::payments::{MerchantOrderId, Order, ServiceError};
use crate::store::StoreError;

pub use machine::ROUNDS_MAX;
pub use transfer::TransferClaim;

#[cfg(doc)]
use crate::payments::OrderKind;

/// Why a card is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Moved to a new phone: the balance waits under a transfer code.
    Transfer,
    /// Deleted: the balance is refunded (and the fee where the city's rules say so).
    Delete,
}

impl Purpose {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Transfer => "transfer",
            Purpose::Delete => "delete",
        }
    }

    /// Reads a name back (`transfer`, `delete`).
    pub fn parse(name: &str) -> Option<Purpose> {
        [Purpose::Transfer, Purpose::Delete].into_iter().find(|p| p.name() == name)
    }
}

/// Whether a closure is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosureState {
    /// Commands still to run.
    Open,
    /// The card answered `9000` to APPLICATION BLOCK P2 `01`: empty and blocked for good.
    Closed,
}

impl ClosureState {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            ClosureState::Open => "open",
            ClosureState::Closed => "closed",
        }
    }

    /// Reads a stored name back.
    pub fn parse(name: &str) -> Option<ClosureState> {
        [ClosureState::Open, ClosureState::Closed].into_iter().find(|s| s.name() == name)
    }
}

/// The command the phone was handed last, whose answer the closure waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "awaiting")]
pub enum Stage {
    /// GET BALANCE.
    Balance,
    /// INITIALIZE FOR PURCHASE of `amount_fen`.
    Initialize {
        /// The amount asked (the balance GET BALANCE answered).
        amount_fen: u32,
    },
    /// DEBIT FOR PURCHASE (the debit in doubt).
    Debit {
        /// The command, hex.
        command: String,
    },
    /// GET TRANSACTION PROVE for the debit in doubt.
    Prove,
    /// READ RECORD of EF18 record `record` (1 newest), looking for the debit in doubt.
    Log {
        /// The record asked.
        record: u8,
    },
    /// GET CHALLENGE.
    Challenge,
    /// APPLICATION BLOCK P2 `01`.
    Block {
        /// The command, hex.
        command: String,
    },
    /// Nothing: closed.
    Done,
}

/// One closure of one card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closure {
    /// `C` and the card ID: one closure per card.
    pub closure_id: String,
    /// The card.
    pub card_id: CardId,
    /// Why.
    pub purpose: Purpose,
    /// Open or closed.
    pub state: ClosureState,
    /// What it waits for.
    pub stage: Stage,
    /// What the card's verified TACs (or its log) prove was debited.
    pub moved: Fen,
    /// Debits neither proven nor disproven: the back office settles them.
    pub unconfirmed: Fen,
    /// Debits handed out.
    pub rounds: u32,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds.
    pub updated_at_ms: i64,
    /// Compare-and-swap version.
    pub version: i64,
}

/// Where one closure debit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DebitState {
    /// MAC1 handed out; the card's TAC not seen.
    InDoubt,
    /// TAC and MAC2 verified.
    Confirmed,
    /// Found on the card later (its proof, or its log).
    Recovered,
    /// The card's offline counter was unchanged under a fresh INITIALIZE: never committed.
    NotDebited,
    /// The card could no longer tell.
    Unconfirmed,
}

const DEBIT_STATES: [DebitState; 5] = [
    DebitState::InDoubt,
    DebitState::Confirmed,
    DebitState::Recovered,
    DebitState::NotDebited,
    DebitState::Unconfirmed,
];

impl DebitState {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            DebitState::InDoubt => "in_doubt",
            DebitState::Confirmed => "confirmed",
            DebitState::Recovered => "recovered",
            DebitState::NotDebited => "not_debited",
            DebitState::Unconfirmed => "unconfirmed",
        }
    }

    /// Reads a stored name back.
    pub fn parse(name: &str) -> Option<DebitState> {
        DEBIT_STATES.into_iter().find(|s| s.name() == name)
    }
}

/// One DEBIT FOR PURCHASE a closure handed out, as a typed purchase record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureDebit {
    /// The closure.
    pub closure_id: String,
    /// Where it is.
    pub state: DebitState,
    /// The offline counter INITIALIZE returned.
    pub counter_before: u16,
    /// The purchase record (TAC once seen).
    pub record: TapRecord,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds.
    pub updated_at_ms: i64,
}

/// A transferred balance and who claimed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The SHA-256 (hex) of the code, a bearer capability handed to the old phone only: the
    /// code itself is never stored.
    pub code_sha256: String,
    /// The closure that emptied the old card.
    pub closure_id: String,
    /// The old card.
    pub from_card_id: CardId,
    /// The old phone.
    pub from_device_id: String,
    /// The city.
    pub city: String,
    /// The moved balance.
    pub amount: Fen,
    /// The new phone, once claimed.
    pub to_device_id: Option<String>,
    /// The new card, once issued.
    pub to_card_id: Option<CardId>,
    /// Its funded load order (none for a zero balance).
    pub load_order_id: Option<MerchantOrderId>,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds.
    pub claimed_at_ms: Option<i64>,
}

/// One provider refund of a balance refund: part of a paid top-up order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPart {
    /// The provider's idempotent refund ID.
    pub refund_id: String,
    /// The top-up order refunded in part.
    pub paid_order_id: MerchantOrderId,
    /// How much.
    pub amount: Fen,
    /// The provider confirmed it.
    pub refunded: bool,
}

/// What the phone does next (the HTTP answer's body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureStep {
    /// The closure.
    pub closure_id: String,
    /// Why.
    pub purpose: Purpose,
    /// Open or closed.
    pub state: ClosureState,
    /// The APDU to send the card; `None` once closed.
    pub command: Option<Vec<u8>>,
    /// What the card proved was debited so far.
    pub moved: Fen,
    /// Debits the card could not prove or disprove (not moved; the back office settles them).
    pub unconfirmed: Fen,
    /// The transfer code, once a transfer closure is closed.
    pub transfer_code: Option<String>,
    /// The balance refund order, once a deletion is closed (none for a zero balance).
    pub refund_order: Option<Order>,
    /// The fee order refunded by the city's rule, if it was.
    pub fee_refund_order: Option<Order>,
    /// `true` when `start` began this closure (HTTP 201); `false` when it resumed one (200).
    pub started: bool,
}

/// Why a closure step was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClosureError {
    /// No such card, or not issued here.
    UnknownCard(CardId),
    /// No such closure.
    UnknownClosure(String),
    /// The card's closure has the other purpose.
    PurposeMismatch {
        /// The card.
        card: CardId,
        /// The closure's purpose.
        purpose: Purpose,
    },
    /// An over-the-air load of the card is in doubt: reconcile it first.
    LoadInDoubt(CardId),
    /// The card answered with something malformed or a failure; names the command.
    BadAnswer {
        /// The command answered.
        command: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The card's MAC2 did not verify: a forged or corrupted DEBIT answer. Nothing recorded.
    Mac2Invalid,
    /// The TAC did not verify: nothing recorded, the debit stays in doubt.
    Tac(TacError),
    /// The service desk holds no key of the card's issuer, version or algorithm.
    Keys(SamError),
    /// The card kept a balance after [`ROUNDS_MAX`] debits.
    TooManyRounds(CardId),
    /// Another request moved the closure meanwhile: start it again to resume.
    Contended(String),
    /// No transfer has this code.
    UnknownTransferCode,
    /// The transfer was claimed by another phone.
    ClaimedByAnotherPhone,
    /// The old phone cannot claim its own transfer.
    OwnTransfer,
    /// The new phone already has a card of the city.
    PhoneHasCard(CardId),
    /// Issuing the new card failed (not eligible, bad field, keys).
    Issuance(IssuanceError),
    /// The payment step failed.
    Payment(ServiceError),
    /// Storage failed; nothing of the step was written.
    Store(StoreError),
}

impl fmt::Display for ClosureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClosureError::UnknownCard(card) => write!(f, "card {card} was not issued here"),
            ClosureError::UnknownClosure(id) => write!(f, "no closure {id}"),
            ClosureError::PurposeMismatch { card, purpose } => {
                write!(f, "card {card} is being closed for {} already", purpose.name())
            }
            ClosureError::LoadInDoubt(card) => {
                write!(f, "card {card} has a top-up in doubt: reconcile it before closing the card")
            }
            ClosureError::BadAnswer { command, why } => write!(f, "{command} answer: {why}"),
            ClosureError::Mac2Invalid => f.write_str("the card's MAC2 did not verify"),
            ClosureError::Tac(error) => write!(f, "{error}"),
            ClosureError::Keys(error) => write!(f, "service desk keys: {error}"),
            ClosureError::TooManyRounds(card) => {
                write!(f, "card {card} still holds a balance after {ROUNDS_MAX} debits")
            }
            ClosureError::Contended(id) => write!(f, "closure {id} moved meanwhile: start it again"),
            ClosureError::UnknownTransferCode => f.write_str("no transfer has this code"),
            ClosureError::ClaimedByAnotherPhone => f.write_str("the transfer was claimed by another phone"),
            ClosureError::OwnTransfer => f.write_str("a phone cannot claim its own transfer"),
            ClosureError::PhoneHasCard(card) => write!(f, "the phone has card {card} of the city already"),
            ClosureError::Issuance(error) => write!(f, "{error}"),
            ClosureError::Payment(error) => write!(f, "{error}"),
            ClosureError::Store(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ClosureError {}

impl From<crate::card_answer::BadAnswer> for ClosureError {
    fn from(bad: crate::card_answer::BadAnswer) -> ClosureError {
        ClosureError::BadAnswer { command: bad.command, why: bad.why }
    }
}

impl From<StoreError> for ClosureError {
    fn from(error: StoreError) -> ClosureError {
        ClosureError::Store(error)
    }
}

impl From<sqlx::Error> for ClosureError {
    fn from(error: sqlx::Error) -> ClosureError {
        ClosureError::Store(StoreError::Database(error))
    }
}

impl From<ServiceError> for ClosureError {
    fn from(error: ServiceError) -> ClosureError {
        ClosureError::Payment(error)
    }
}

impl From<IssuanceError> for ClosureError {
    fn from(error: IssuanceError) -> ClosureError {
        ClosureError::Issuance(error)
    }
}

impl From<crate::ledger::LedgerError> for ClosureError {
    fn from(error: crate::ledger::LedgerError) -> ClosureError {
        ClosureError::Store(StoreError::Ledger(error))
    }
}

/// The platform's service desk over the air: closes cards, hands out transfers, refunds
/// balances. Holds the issuers' purchase, maintenance and TAC keys (never the load keys).
pub struct ClosureService {
    issuance: IssuanceService,
    keys: IssuerKeyring,
    tac: TacKeys,
    rng: Mutex<ChaCha20Rng>,
}

impl fmt::Debug for ClosureService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClosureService").finish_non_exhaustive()
    }
}

impl ClosureService {
    /// The service over `issuance` (its cities, pricing rules — set them first — and issuing
    /// of the new card of a transfer) with `keys`; `rng_seed` seeds the transfer codes (from the
    /// operating system's random source in a server; fixed in tests).
    pub fn new(issuance: IssuanceService, keys: &IssuerKeyring, rng_seed: [u8; 32]) -> ClosureService {
        ClosureService {
            issuance,
            keys: keys.clone(),
            tac: keys.tac_keys_of_few_cards(),
            rng: Mutex::new(ChaCha20Rng::from_seed(rng_seed)),
        }
    }

    /// A fresh transfer code: 128 random bits, 32 hex digits.
    fn transfer_code(&self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner).fill_bytes(&mut bytes);
        hex::encode_upper(bytes)
    }
}

/// What the store keeps of a transfer code: its SHA-256, hex. A 128-bit random secret needs no
/// salt or slow hash; codes are read in either case.
pub(crate) fn code_sha256(code: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(code.trim().to_ascii_uppercase().as_bytes()))
}
