//! The service as the phone sees it: [`WalletApi`], one method per endpoint, with typed requests
//! and answers. Commands for the card arrive as bytes (the hex is parsed here, at the edge);
//! answers of the card go back as bytes. [`crate::HttpApi`] implements it over HTTP; tests may
//! implement it in memory. The endpoints are listed in `docs/platform.md`, "HTTP API".

use serde::{Deserialize, Serialize};

use crate::error::WalletError;
use crate::token::Token;

/// The phone's identity, as registered (`POST /v1/phones`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The phone's device ID.
    pub device_id: String,
    /// The secure element's ID (an embedded SE's CPLC serial, or an NFC-SIM's ICCID).
    pub se_id: String,
    /// Maker, as in the device catalogue.
    pub maker: String,
    /// Model, as in the device catalogue.
    pub model: String,
    /// The NFC-SIM's carrier; absent for an embedded SE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
}

/// A registered phone: its ID and token (`POST /v1/phones`, 201).
#[derive(Debug, Clone, Deserialize)]
pub struct Registration {
    /// The service's ID of the phone.
    pub phone_id: String,
    /// The device ID registered.
    pub device_id: String,
    /// The phone's bearer token, shown once.
    pub token: Token,
}

/// How a phone gets a card of a city (`GET /v1/devices/eligibility`).
#[derive(Debug, Clone, Deserialize)]
pub struct Eligibility {
    /// `embedded-se`, `nfc-sim` or `not-supported`.
    pub path: String,
    /// Why, for the rider.
    pub reason: String,
    /// The maker's wallet app (`embedded-se`).
    #[serde(default)]
    pub wallet_app: Option<String>,
    /// The city's own card app, if any (`embedded-se`).
    #[serde(default)]
    pub city_app: Option<String>,
}

impl Eligibility {
    /// The sign-up channel of this path: the maker's wallet for an embedded SE, the carrier's
    /// service hall for an NFC-SIM; `None` when not supported.
    pub fn channel(&self) -> Option<&'static str> {
        match self.path.as_str() {
            "embedded-se" => Some("maker-wallet"),
            "nfc-sim" => Some("carrier-hall"),
            _ => None,
        }
    }
}

/// A payment order (a fee, a top-up, a transfer load, a refund).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInfo {
    /// The order ID.
    pub order_id: String,
    /// `top_up`, `sign_up_fee`, …
    pub kind: String,
    /// Amount, fen.
    pub amount_fen: i64,
    /// `created`, `paid`, `loading`, `loaded`, `refund_pending`, `refunded`, …
    pub state: String,
    /// The card it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    /// The payment provider.
    #[serde(default)]
    pub provider: String,
}

/// A card issued to a phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardInfo {
    /// The application serial, 20 hex digits (the service's card ID).
    pub serial: String,
    /// The printed card number.
    pub card_number: String,
    /// The city.
    pub city: String,
    /// The phone it was issued to.
    pub device_id: String,
    /// The issuer's key version.
    pub key_version: u8,
    /// First valid day, `YYYYMMDD`.
    pub valid_from: String,
    /// Last valid day, `YYYYMMDD`.
    pub valid_to: String,
    /// The sign-up fee charged, fen.
    pub fee_fen: i64,
    /// The promotion that set the fee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_id: Option<String>,
    /// The fee order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_order_id: Option<String>,
    /// When, Unix milliseconds.
    pub issued_at_ms: i64,
}

/// `POST /v1/cards`'s body.
#[derive(Debug, Clone, Serialize)]
pub struct CardRequest {
    /// The city.
    pub city: String,
    /// `maker-wallet`, `city-app` or `carrier-hall`.
    pub channel: String,
    /// The fee order's ID, made by the phone and repeated with the request.
    pub fee_order_id: String,
}

/// `POST /v1/cards`'s answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CardAnswer {
    /// The card and its image for the SE.
    Issued {
        /// The card.
        card: CardInfo,
        /// The personalized image (`YTSE…`).
        #[serde(rename = "image_hex", with = "hex_bytes")]
        image: Vec<u8>,
        /// The phone had it already.
        existing: bool,
    },
    /// Pay this fee order first, then repeat the request.
    PaymentRequired {
        /// The fee order.
        order: OrderInfo,
        /// The city's standard fee, fen.
        standard_fee_fen: i64,
    },
}

/// `POST /v1/topups`'s body.
#[derive(Debug, Clone, Serialize)]
pub struct TopUpRequest {
    /// The card's serial.
    pub card: String,
    /// Fen.
    pub amount_fen: i64,
    /// The order ID, made by the phone.
    pub order_id: String,
}

/// An opened top-up.
#[derive(Debug, Clone, Deserialize)]
pub struct TopUpOrder {
    /// The order.
    pub order: OrderInfo,
    /// INITIALIZE FOR LOAD, to send once the order is paid.
    #[serde(with = "hex_bytes")]
    pub initialize_command: Vec<u8>,
}

/// MAC1 verified: the CREDIT FOR LOAD to send.
#[derive(Debug, Clone, Deserialize)]
pub struct Authorization {
    /// The load record's ID.
    pub tap_id: String,
    /// The load host's terminal ID, hex.
    pub terminal_id: String,
    /// CREDIT FOR LOAD.
    #[serde(with = "hex_bytes")]
    pub credit_command: Vec<u8>,
}

/// TAC verified: loaded.
#[derive(Debug, Clone, Deserialize)]
pub struct Loaded {
    /// The order, `loaded`.
    pub order: OrderInfo,
    /// The load record's ID.
    pub tap_id: String,
    /// The card's balance after the load, fen.
    pub balance_after_fen: i64,
    /// The card's online counter of the load.
    pub counter: u16,
    /// The TAC, hex.
    pub tac: String,
}

/// The commands that gather the card's evidence about a load in doubt.
#[derive(Debug, Clone, Deserialize)]
pub struct EvidenceCommands {
    /// GET TRANSACTION PROVE for the pending counter.
    #[serde(default, with = "hex_bytes_opt")]
    pub prove: Option<Vec<u8>>,
    /// READ RECORD of EF18, newest first.
    #[serde(with = "hex_bytes_list")]
    pub log: Vec<Vec<u8>>,
    /// A fresh INITIALIZE FOR LOAD, sent last (its session is the one a new load would use).
    #[serde(with = "hex_bytes")]
    pub initialize: Vec<u8>,
}

/// What to do with a load the card proves it never got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenNotLoaded {
    /// Load it again now.
    LoadAgain,
    /// Refund the order.
    Refund,
}

/// The card's answers to [`EvidenceCommands`], whole (data and status word).
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// The answer to GET TRANSACTION PROVE, when it was asked.
    #[serde(with = "hex_bytes_opt")]
    pub prove: Option<Vec<u8>>,
    /// The answers to READ RECORD, in the order asked.
    #[serde(with = "hex_bytes_list")]
    pub log: Vec<Vec<u8>>,
    /// The answer to INITIALIZE FOR LOAD.
    #[serde(with = "hex_bytes_opt")]
    pub initialize: Option<Vec<u8>>,
    /// Load again or refund, if the card proves the load never happened.
    pub when_not_loaded: WhenNotLoaded,
}

/// The service's verdict on a load in doubt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconcileStatus {
    /// The card has the load.
    Loaded,
    /// The card never got it: send `credit_command`, then complete.
    LoadAgain,
    /// The card never got it: refunded.
    Refunded,
    /// The card can no longer tell: handed to the back office, neither loaded again nor refunded.
    Unconfirmed,
    /// Nothing was in doubt.
    NothingInDoubt,
}

/// `POST /v1/topups/{id}/reconcile`'s answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Reconciled {
    /// The verdict.
    pub status: ReconcileStatus,
    /// The order.
    pub order: OrderInfo,
    /// `load_again`: the CREDIT FOR LOAD to send.
    #[serde(default, with = "hex_bytes_opt")]
    pub credit_command: Option<Vec<u8>>,
    /// `loaded`: the card's balance after the load.
    #[serde(default)]
    pub balance_after_fen: Option<i64>,
}

/// An entry of a card's history on the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// `fee`, `load`, `refund`, …
    pub kind: String,
    /// The order.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Fen.
    pub amount_fen: i64,
    /// The order's state.
    #[serde(default)]
    pub state: String,
    /// When, Unix milliseconds.
    #[serde(default)]
    pub at_ms: i64,
}

/// A card as the service sees it: the card, the balance its records show, its state, history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardView {
    /// The card.
    #[serde(flatten)]
    pub card: CardInfo,
    /// The balance the service believes (its loads; gate fares are not reported to it).
    pub balance_fen: i64,
    /// `active`, `closing`, `closed`.
    pub state: String,
    /// Newest first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

/// `GET /v1/phones/me`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneView {
    /// The service's ID of the phone.
    pub phone_id: String,
    /// Its device ID.
    pub device_id: String,
    /// Its cards.
    #[serde(default)]
    pub cards: Vec<CardView>,
}

/// Why a card is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Emptied and blocked; its balance moves to a new phone.
    Transfer,
    /// Emptied and blocked; its balance is refunded.
    Delete,
}

impl Purpose {
    /// `transfer` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Transfer => "transfer",
            Purpose::Delete => "delete",
        }
    }
}

/// A step of a card's closure: the next command for the card, or the end.
#[derive(Debug, Clone, Deserialize)]
pub struct ClosureStep {
    /// The closure's ID.
    pub closure_id: String,
    /// Why.
    pub purpose: Purpose,
    /// `open` or `closed`.
    pub state: String,
    /// The next command for the card; `None` once closed.
    #[serde(default, with = "hex_bytes_opt")]
    pub command: Option<Vec<u8>>,
    /// What the card's proven debit moved off it, fen.
    #[serde(default)]
    pub moved_fen: Option<i64>,
    /// Transfer: the code the new phone claims the balance with.
    #[serde(default)]
    pub transfer_code: Option<String>,
    /// Delete: the refund of the balance.
    #[serde(default)]
    pub refund_order: Option<OrderInfo>,
    /// A debit the card could no longer prove or disprove, handed to the back office, fen.
    #[serde(default)]
    pub unconfirmed_fen: Option<i64>,
    /// Delete: the refund of the sign-up fee, where the city's rules refund it.
    #[serde(default)]
    pub fee_refund_order: Option<OrderInfo>,
}

/// `POST /v1/transfers/claim`'s answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Claimed {
    /// The new phone's card.
    pub card: CardInfo,
    /// Its image for the SE.
    #[serde(rename = "image_hex", with = "hex_bytes")]
    pub image: Vec<u8>,
    /// The funded order that loads the moved balance; none when the old card was empty.
    #[serde(default)]
    pub load_order: Option<OrderInfo>,
    /// INITIALIZE FOR LOAD of the load order.
    #[serde(default, with = "hex_bytes_opt")]
    pub initialize_command: Option<Vec<u8>>,
}

/// The service, one method per endpoint. Methods that act for a phone take its token.
pub trait WalletApi {
    /// The service's base URL, for messages and the phone file.
    fn server(&self) -> &str;
    /// `POST /v1/phones`.
    fn register_phone(&self, device: &Device) -> Result<Registration, WalletError>;
    /// `POST /v1/phones` with the reset code an operator gave and the phone's own new token: the
    /// same device and SE, that token.
    fn register_phone_again(
        &self,
        device: &Device,
        reset_code: &str,
        token: &Token,
    ) -> Result<Registration, WalletError>;
    /// `POST /v1/phones/me/token`: `new` (the phone's own) becomes the phone's token in place of
    /// `token`, which works no more.
    fn rotate_token(&self, token: &Token, new: &Token) -> Result<(), WalletError>;
    /// `GET /v1/devices/eligibility`.
    fn eligibility(&self, maker: &str, model: &str, city: &str) -> Result<Eligibility, WalletError>;
    /// `POST /v1/cards`.
    fn request_card(&self, token: &Token, request: &CardRequest) -> Result<CardAnswer, WalletError>;
    /// `POST /v1/dev/orders/{id}/pay`: DEVELOPMENT ONLY, the simulated provider's rider pays.
    fn dev_pay(&self, order_id: &str) -> Result<OrderInfo, WalletError>;
    /// `POST /v1/topups`.
    fn open_topup(&self, token: &Token, request: &TopUpRequest) -> Result<TopUpOrder, WalletError>;
    /// `POST /v1/topups/{id}/authorize` with INITIALIZE FOR LOAD's answer.
    fn authorize(&self, token: &Token, order_id: &str, answer: &[u8]) -> Result<Authorization, WalletError>;
    /// `POST /v1/topups/{id}/complete` with CREDIT FOR LOAD's answer.
    fn complete(&self, token: &Token, order_id: &str, answer: &[u8]) -> Result<Loaded, WalletError>;
    /// `GET /v1/topups/{id}/evidence`.
    fn evidence(&self, token: &Token, order_id: &str) -> Result<EvidenceCommands, WalletError>;
    /// `POST /v1/topups/{id}/reconcile`.
    fn reconcile(&self, token: &Token, order_id: &str, evidence: &Evidence) -> Result<Reconciled, WalletError>;
    /// `GET /v1/phones/me`.
    fn me(&self, token: &Token) -> Result<PhoneView, WalletError>;
    /// `GET /v1/cards/{serial}`.
    fn card(&self, token: &Token, serial: &str) -> Result<CardView, WalletError>;
    /// `POST /v1/cards/{serial}/closure`: starts or resumes the card's closure.
    fn start_closure(&self, token: &Token, serial: &str, purpose: Purpose) -> Result<ClosureStep, WalletError>;
    /// `POST /v1/closures/{id}/answer` with the card's answer to the last command.
    fn closure_answer(&self, token: &Token, closure_id: &str, answer: &[u8]) -> Result<ClosureStep, WalletError>;
    /// `POST /v1/transfers/claim` with the code and the new phone's token.
    fn claim_transfer(&self, token: &Token, code: &str, channel: &str) -> Result<Claimed, WalletError>;
}

/// Bytes as hex strings (upper case out, either case in).
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode_upper(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text.trim()).map_err(serde::de::Error::custom)
    }
}

/// Optional bytes as a hex string or `null`.
pub(crate) mod hex_bytes_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => serializer.serialize_some(&hex::encode_upper(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| hex::decode(text.trim()).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A list of byte strings as hex strings.
pub(crate) mod hex_bytes_list {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(list: &[Vec<u8>], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(list.iter().map(hex::encode_upper))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| hex::decode(text.trim()).map_err(serde::de::Error::custom))
            .collect()
    }
}
