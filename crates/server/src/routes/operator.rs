//! Operator routes: a card with its phone (a city's key: its city's cards, another city's is "not
//! found", as an unknown one; the clearing house's key: every city's), the ledger check and the
//! ledger's agreement with the clearing (global, one ledger for every city: the clearing house's
//! key; a city's is 403), and a phone's registration reset (the clearing house's key).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_platform::access;

use crate::auth::{ClearingHouse, OperatorCaller};
use crate::error::{field, ApiError, ApiPath, ErrorBody};
use crate::routes::cards::{path_card_id, CardViewBody};
use crate::routes::phones::access_error;
use crate::state::AppState;

/// `/v1/operator/…`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(operator_card))
        .routes(routes!(ledger_check))
        .routes(routes!(ledger_agreement))
        .routes(routes!(reset_phone))
}

/// A card as its issuer's operator sees it: the rider's view and the phone it lives on.
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorCardView {
    /// The rider's view (its `device_id` is the phone's).
    #[serde(flatten)]
    pub card: CardViewBody,
    /// The secure element it was issued to.
    pub se_id: String,
    /// The phone's maker.
    pub maker: String,
    /// The phone's model.
    pub model: String,
    /// The NFC-SIM's carrier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
}

/// One account whose ledger balance differs from what the service believes.
#[derive(Debug, Serialize, ToSchema)]
pub struct MismatchBody {
    /// The account.
    pub account: String,
    /// What the orders or cards say, fen.
    pub expected_fen: i64,
    /// What the ledger says, fen.
    pub ledger_fen: i64,
}

/// The ledger check.
#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerCheckBody {
    /// Every posting balances, debits equal credits, and the accounts agree with the cards and
    /// the orders.
    pub balanced: bool,
    /// Postings stored.
    pub postings: u64,
    /// Lines stored.
    pub lines: u64,
    /// All debits, fen.
    pub debit_fen: i64,
    /// All credits, fen (positive).
    pub credit_fen: i64,
    /// Each account's balance, fen, debits positive (liabilities and revenue negative).
    pub accounts: BTreeMap<String, i64>,
    /// The sum of the balances the service believes the cards hold, fen.
    pub card_balances_fen: i64,
    /// Postings whose lines do not sum to zero.
    pub unbalanced_postings: Vec<String>,
    /// Cards whose liability differs from their believed balance.
    pub card_mismatches: Vec<MismatchBody>,
    /// Order-backed accounts that differ from the orders.
    pub order_mismatches: Vec<MismatchBody>,
}

/// A card of the operator's city (of any city for the clearing house's key).
#[utoipa::path(get, path = "/v1/operator/cards/{serial}", tag = "operator",
    security(("operator_key" = [])),
    params(("serial" = String, Path, description = "the card's serial, 20 hex digits")),
    responses(
        (status = 200, body = OperatorCardView, description = "the card, its phone, believed balance and history"),
        (status = 400, body = ErrorBody, description = "the serial is malformed"),
        (status = 401, body = ErrorBody, description = "no valid operator key"),
        (status = 404, body = ErrorBody, description = "no such card of the key's city"),
    ))]
async fn operator_card(
    State(state): State<AppState>,
    OperatorCaller(key): OperatorCaller,
    ApiPath(serial): ApiPath<String>,
) -> Result<Json<OperatorCardView>, ApiError> {
    let id = path_card_id(&serial)?;
    let card = match state.store().phone_card(&id).await? {
        Some(card) if key.reads_city(&card.city) => card,
        _ if key.is_clearing_house() => return Err(ApiError::NotFound(format!("no card {id}"))),
        _ => return Err(ApiError::NotFound(format!("no card {id} of {}", key.city))),
    };
    let (se_id, maker, model, carrier) =
        (card.se_id.clone(), card.maker.clone(), card.model.clone(), card.carrier.clone());
    let view = state.store().card_view(card).await?;
    Ok(Json(OperatorCardView { card: CardViewBody::of(&view)?, se_id, maker, model, carrier }))
}

/// A phone's registration reset.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneReset {
    /// The device whose registration was reset.
    pub device_id: String,
    /// The one-time code (`ytr_` and 64 hex digits) that lets the same device and SE register
    /// again (`POST /v1/phones` with `reset_code`), shown this once: give it to the rider.
    pub reset_code: String,
    /// Until when the code may be used, Unix milliseconds.
    pub valid_until_ms: i64,
}

/// Resets a phone's registration, for a rider who lost its token, once the support desk has
/// checked who asks: the token in use works no more, and the code answered registers the same
/// device and SE again. A phone is not one city's: the clearing house's key.
#[utoipa::path(post, path = "/v1/operator/phones/{device_id}/reset", tag = "operator",
    security(("operator_key" = [])),
    params(("device_id" = String, Path, description = "the phone's device ID, as registered")),
    responses(
        (status = 200, body = PhoneReset, description = "reset; the code is shown this once"),
        (status = 400, body = ErrorBody, description = "the device ID is empty, too long or not printable"),
        (status = 401, body = ErrorBody, description = "no valid operator key"),
        (status = 403, body = ErrorBody, description = "a city's key: phones are the clearing house's"),
        (status = 404, body = ErrorBody, description = "no phone of that device ID"),
    ))]
async fn reset_phone(
    State(state): State<AppState>,
    ClearingHouse(key): ClearingHouse,
    ApiPath(device_id): ApiPath<String>,
) -> Result<Json<PhoneReset>, ApiError> {
    let device_id = field("device_id", &device_id)?.to_owned();
    let code = access::reset_phone(state.store(), &device_id, state.now_ms())
        .await
        .map_err(|error| access_error(error, "phone reset"))?;
    let (code, valid_until_ms) = code.ok_or_else(|| ApiError::NotFound(format!("no phone of device {device_id}")))?;
    tracing::info!(key_id = %key.key_id, %device_id, "phone registration reset");
    Ok(Json(PhoneReset { device_id, reset_code: code.expose().to_owned(), valid_until_ms }))
}

/// Proves the ledger (`Store::check_ledger`): global, the clearing house's key.
#[utoipa::path(get, path = "/v1/operator/ledger/check", tag = "operator",
    security(("operator_key" = [])),
    responses(
        (status = 200, body = LedgerCheckBody, description = "the check; `balanced` is the verdict"),
        (status = 401, body = ErrorBody, description = "no valid operator key"),
        (status = 403, body = ErrorBody, description = "a city's key: this reads across cities (the clearing house's key)"),
    ))]
async fn ledger_check(
    State(state): State<AppState>,
    ClearingHouse(_): ClearingHouse,
) -> Result<Json<LedgerCheckBody>, ApiError> {
    let check = state.store().check_ledger().await?;
    let mismatch = |m: &yitong_platform::ledger::BalanceMismatch| MismatchBody {
        account: m.account.clone(),
        expected_fen: m.expected_fen,
        ledger_fen: m.ledger_fen,
    };
    Ok(Json(LedgerCheckBody {
        balanced: check.is_ok(),
        postings: check.postings,
        lines: check.lines,
        debit_fen: check.debit_fen,
        credit_fen: check.credit_fen,
        accounts: check.accounts.clone(),
        card_balances_fen: check.card_balances_fen,
        unbalanced_postings: check.unbalanced_postings.clone(),
        card_mismatches: check.card_mismatches.iter().map(mismatch).collect(),
        order_mismatches: check.order_mismatches.iter().map(mismatch).collect(),
    }))
}

/// One card whose ledger and clearing differ.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardAgreementBody {
    /// The card's serial.
    pub card_id: String,
    /// `active`, `closing` or `closed`.
    pub state: String,
    /// The ledger's side: the card's liability plus what its closure left in `fares_unsettled`.
    pub ledger_fen: i64,
    /// The clearing's side: shadow balance + gate debits − other terminals' loads.
    pub cleared_fen: i64,
    /// The card's shadow balance.
    pub shadow_fen: i64,
    /// Gate debits the card committed, cleared.
    pub gate_debits_fen: i64,
    /// Loads at terminals other than the platform's, cleared.
    pub other_loads_fen: i64,
}

/// A card not decided yet, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct UndecidedCardBody {
    /// The card's serial.
    pub card_id: String,
    /// Records pending, a flag standing, platform records not decided or not fed.
    pub why: String,
}

/// The ledger's agreement with the clearing, card by card.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementBody {
    /// Every decided card's ledger and clearing agree.
    pub agree: bool,
    /// The platform's cards.
    pub cards: u64,
    /// Cards that agree.
    pub agreeing: u64,
    /// Cards whose two sides differ.
    pub mismatch_count: u64,
    /// Cards not decided yet.
    pub undecided_count: u64,
    /// The decided cards' ledger side, summed.
    pub ledger_fen: i64,
    /// The decided cards' clearing side, summed.
    pub cleared_fen: i64,
    /// Gate debits of the decided cards, cleared.
    pub gate_debits_fen: i64,
    /// The `fares_unsettled` account (credit positive).
    pub fares_unsettled_fen: i64,
    /// The same as the closed cards' cleared records show it.
    pub fares_unsettled_cleared_fen: i64,
    /// Cards whose two sides differ (at most 100 listed).
    pub mismatches: Vec<CardAgreementBody>,
    /// Cards not decided (at most 100 listed).
    pub undecided: Vec<UndecidedCardBody>,
}

/// Checks the ledger against the clearing, card by card (`Store::check_clearing_agreement`),
/// after feeding the platform's own records to the back office: global, the clearing house's key.
#[utoipa::path(get, path = "/v1/operator/ledger/agreement", tag = "operator",
    security(("operator_key" = [])),
    responses(
        (status = 200, body = AgreementBody, description = "the check; `agree` is the verdict"),
        (status = 401, body = ErrorBody, description = "no valid operator key"),
        (status = 403, body = ErrorBody, description = "a city's key: this reads across cities (the clearing house's key)"),
    ))]
async fn ledger_agreement(
    State(state): State<AppState>,
    ClearingHouse(_): ClearingHouse,
) -> Result<Json<AgreementBody>, ApiError> {
    super::clearing::feed_platform_records(&state).await;
    let check =
        state.store().check_clearing_agreement(state.cities()).await.map_err(super::clearing::shadow_read_error)?;
    Ok(Json(AgreementBody {
        agree: check.is_ok(),
        cards: check.cards,
        agreeing: check.agreeing,
        mismatch_count: check.mismatch_count,
        undecided_count: check.undecided_count,
        ledger_fen: check.ledger_fen,
        cleared_fen: check.cleared_fen,
        gate_debits_fen: check.gate_debits_fen,
        fares_unsettled_fen: check.fares_unsettled_fen,
        fares_unsettled_cleared_fen: check.fares_unsettled_cleared_fen,
        mismatches: check
            .mismatches
            .iter()
            .map(|m| CardAgreementBody {
                card_id: m.card_id.clone(),
                state: m.state.clone(),
                ledger_fen: m.ledger_fen,
                cleared_fen: m.cleared_fen(),
                shadow_fen: m.shadow_fen,
                gate_debits_fen: m.gate_debits_fen,
                other_loads_fen: m.other_loads_fen,
            })
            .collect(),
        undecided: check
            .undecided
            .iter()
            .map(|u| UndecidedCardBody { card_id: u.card_id.clone(), why: u.why.clone() })
            .collect(),
    }))
}
