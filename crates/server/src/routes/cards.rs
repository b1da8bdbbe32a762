//! `POST /v1/cards`: a phone asks for a card of a city (the trusted-service-manager role). The
//! platform's `IssuanceService` checks eligibility, takes the sign-up fee through a fee order
//! and personalizes the card; the answer is the card with its image for a software SE, or the
//! fee order to pay first. Repeating the request returns the same card and never charges twice.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_platform::access::RegisteredPhone;
use yitong_platform::card_view::CardView;
use yitong_platform::issuance::{CardApplication, Issuance, IssuanceError, IssuedCard, PhoneCard};
use yitong_platform::ledger::CardId;
use yitong_platform::payments::{MerchantOrderId, Order};

use crate::auth::PhoneCaller;
use crate::error::{field, ApiError, ApiJson, ApiPath, ErrorBody};
use crate::routes::cities::parse_channel;
use crate::routes::topups::{payment_error, OrderInfo};
use crate::state::AppState;

/// `/v1/cards`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(request_card)).routes(routes!(show_card))
}

/// A request for a card.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CardRequestBody {
    /// The city's name (`beijing`).
    pub city: String,
    /// Where the rider signs up: `maker-wallet`, `city-app` or `carrier-hall`.
    pub channel: String,
    /// The fee order's ID, made by the phone (6 to 32 of `A-Z a-z 0-9 _ -`) and the same
    /// in a repeated request.
    pub fee_order_id: String,
}

/// A card issued to the phone.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardInfo {
    /// The application serial, 20 hex digits (the platform's card ID).
    pub serial: String,
    /// The card number printed for the rider.
    pub card_number: String,
    /// The city.
    pub city: String,
    /// The phone it was issued to.
    pub device_id: String,
    /// The issuer's key version the card carries.
    pub key_version: u8,
    /// First valid day, `YYYYMMDD`.
    pub valid_from: String,
    /// Last valid day, `YYYYMMDD`.
    pub valid_to: String,
    /// The sign-up fee charged, fen.
    pub fee_fen: i64,
    /// The promotion that set the fee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_id: Option<String>,
    /// The fee order (absent when the fee was waived).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_order_id: Option<String>,
    /// When, Unix milliseconds.
    pub issued_at_ms: i64,
}

/// What a card request answers: `issued` (201 new, 200 the phone's existing card) or
/// `payment_required` (202: pay `order`, then repeat the same request).
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CardAnswer {
    /// The card.
    Issued {
        /// The card.
        card: CardInfo,
        /// The personalized card image for a software SE, hex. It holds the card's diversified
        /// keys: for this phone only.
        image_hex: String,
        /// True when the phone had the card already: nothing was charged now.
        existing: bool,
    },
    /// The fee order to pay first.
    PaymentRequired {
        /// The fee order.
        order: OrderInfo,
        /// The city's standard fee, fen (the order's amount may be less in a promotion).
        standard_fee_fen: u32,
    },
}

/// Issues a card of `city` to the calling phone (device, SE, maker, model and carrier as it
/// registered), or answers the fee order to pay first.
#[utoipa::path(post, path = "/v1/cards", tag = "cards", request_body = CardRequestBody,
    security(("phone_token" = [])),
    responses(
        (status = 201, body = CardAnswer, description = "a new card (`status: issued`)"),
        (status = 200, body = CardAnswer, description = "the phone's existing card (`status: issued`, `existing: true`)"),
        (status = 202, body = CardAnswer, description = "the fee order to pay (`status: payment_required`)"),
        (status = 400, body = ErrorBody, description = "a field is missing, empty, too long or malformed"),
        (status = 401, body = ErrorBody, description = "no valid phone token"),
        (status = 404, body = ErrorBody, description = "no such city"),
        (status = 409, body = ErrorBody, description = "the fee order ID is another request's, or can no longer pay"),
        (status = 422, body = ErrorBody, description = "the phone cannot carry a card of the city (`not_eligible`, with the reason)"),
    ))]
async fn request_card(
    State(state): State<AppState>,
    PhoneCaller(caller): PhoneCaller,
    ApiJson(body): ApiJson<CardRequestBody>,
) -> Result<(StatusCode, Json<CardAnswer>), ApiError> {
    let application = application(&caller, &body)?;
    let services = state.services();
    let answer = services
        .issuance
        .request_card(&services.payments, &application, state.now(), state.now_ms())
        .await
        .map_err(issuance_error)?;
    Ok(match answer {
        Issuance::Issued(issued) => {
            let status = if issued.existing { StatusCode::OK } else { StatusCode::CREATED };
            (status, Json(issued_answer(&issued)?))
        }
        Issuance::PaymentRequired { order, quote } => (
            StatusCode::ACCEPTED,
            Json(CardAnswer::PaymentRequired {
                order: OrderInfo::from(order.as_ref() as &Order),
                standard_fee_fen: quote.standard_fee_fen,
            }),
        ),
    })
}

fn application(caller: &RegisteredPhone, body: &CardRequestBody) -> Result<CardApplication, ApiError> {
    let (_, channel) = parse_channel(field("channel", &body.channel)?).map_err(|_| ApiError::BadField {
        name: "channel",
        message: format!("`{}` is not maker-wallet, city-app or carrier-hall", body.channel.trim()),
    })?;
    Ok(CardApplication {
        phone: caller.phone.clone(),
        city: field("city", &body.city)?.to_ascii_lowercase(),
        channel,
        fee_order_id: order_id("fee_order_id", &body.fee_order_id)?,
    })
}

/// The merchant order ID in body field `name`.
pub(crate) fn order_id(name: &'static str, text: &str) -> Result<MerchantOrderId, ApiError> {
    MerchantOrderId::parse(field(name, text)?).map_err(|e| ApiError::BadField { name, message: e.to_string() })
}

fn issued_answer(issued: &IssuedCard) -> Result<CardAnswer, ApiError> {
    Ok(CardAnswer::Issued {
        card: card_info(&issued.card)?,
        image_hex: hex::encode_upper(&issued.image),
        existing: issued.existing,
    })
}

/// The card as the API shows it.
pub(crate) fn card_info(card: &PhoneCard) -> Result<CardInfo, ApiError> {
    let serial = card.serial().map_err(issuance_error)?;
    Ok(CardInfo {
        serial: card.card_id.as_str().to_owned(),
        card_number: serial.card_number(),
        city: card.city.clone(),
        device_id: card.device_id.clone(),
        key_version: card.key_version,
        valid_from: hex::encode(card.valid_from),
        valid_to: hex::encode(card.valid_to),
        fee_fen: card.fee.get(),
        promotion_id: card.promotion_id.clone(),
        fee_order_id: card.fee_order_id.as_ref().map(|id| id.as_str().to_owned()),
        issued_at_ms: card.issued_at_ms,
    })
}

/// One entry of a card's history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    /// `fee`, `load`, `refund` (a top-up whose money is returned), `transfer_in` (the balance
    /// moved from the phone's earlier card) or `balance_refund` (the balance returned at deletion).
    pub kind: &'static str,
    /// The order.
    pub order_id: String,
    /// Its amount, fen.
    pub amount_fen: i64,
    /// The order's state.
    pub state: String,
    /// When the order was made, Unix milliseconds.
    pub at_ms: i64,
    /// The load record's ID, when the load is on the card (TAC verified or recovered).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tap_id: Option<String>,
    /// The card's online counter of the load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter: Option<u16>,
    /// The load's verified TAC, hex (absent when recovered from the card's log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tac: Option<String>,
}

/// A card with the platform's view of its balance and its history.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardViewBody {
    /// The card as issued.
    #[serde(flatten)]
    pub card: CardInfo,
    /// `active`, `closing` (its closure began) or `closed` (empty and blocked for good).
    pub state: String,
    /// The balance the platform's ledger believes the card holds, fen: loads confirmed or
    /// recovered minus what it knows left the card. Gate fares do not reach the platform, so
    /// the phone's secure element holds the true balance.
    pub balance_fen: i64,
    /// Fees, loads and refunds, newest first.
    pub history: Vec<HistoryItem>,
}

impl CardViewBody {
    /// The answer of `view`.
    pub(crate) fn of(view: &CardView) -> Result<CardViewBody, ApiError> {
        let history = view
            .history
            .iter()
            .map(|entry| HistoryItem {
                kind: entry.kind.name(),
                order_id: entry.order.merchant_order_id.as_str().to_owned(),
                amount_fen: entry.order.amount.get(),
                state: entry.order.state.name().to_owned(),
                at_ms: entry.order.created_at_ms,
                tap_id: entry.load.as_ref().map(|l| l.tap_id.clone()),
                counter: entry.load.as_ref().map(|l| l.counter),
                tac: entry.load.as_ref().and_then(|l| l.tac).map(hex::encode_upper),
            })
            .collect();
        Ok(CardViewBody {
            card: card_info(&view.card)?,
            state: view.state.to_owned(),
            balance_fen: view.balance_fen,
            history,
        })
    }
}

/// The card serial in the path.
pub(crate) fn path_card_id(text: &str) -> Result<CardId, ApiError> {
    CardId::parse(text.trim()).map_err(|e| ApiError::BadPath(format!("card serial: {e}")))
}

/// The calling phone's card `serial`: a card of another phone is "not found", as an unknown one.
pub(crate) async fn own_card(state: &AppState, caller: &RegisteredPhone, card: &CardId) -> Result<PhoneCard, ApiError> {
    match state.store().phone_card(card).await? {
        Some(found) if found.device_id == caller.phone.device_id => Ok(found),
        _ => Err(ApiError::NotFound(format!("no card {card} of this phone"))),
    }
}

/// One of the calling phone's cards: balance (the platform's view) and history.
#[utoipa::path(get, path = "/v1/cards/{serial}", tag = "cards",
    security(("phone_token" = [])),
    params(("serial" = String, Path, description = "the card's serial, 20 hex digits")),
    responses(
        (status = 200, body = CardViewBody, description = "the card, its believed balance and its history"),
        (status = 400, body = ErrorBody, description = "the serial is malformed"),
        (status = 401, body = ErrorBody, description = "no valid phone token"),
        (status = 404, body = ErrorBody, description = "no such card of this phone (another phone's card is not shown)"),
    ))]
async fn show_card(
    State(state): State<AppState>,
    PhoneCaller(caller): PhoneCaller,
    ApiPath(serial): ApiPath<String>,
) -> Result<Json<CardViewBody>, ApiError> {
    let card = own_card(&state, &caller, &path_card_id(&serial)?).await?;
    Ok(Json(CardViewBody::of(&state.store().card_view(card).await?)?))
}

/// The one place issuance errors become statuses.
pub(crate) fn issuance_error(error: IssuanceError) -> ApiError {
    let message = error.to_string();
    let refused = |status, code| ApiError::Refused { status, code, message: message.clone() };
    match error {
        IssuanceError::UnknownCity(_) => ApiError::NotFound(message.clone()),
        IssuanceError::NotEligible(_) => refused(StatusCode::UNPROCESSABLE_ENTITY, "not_eligible"),
        IssuanceError::BadField { field, why } => ApiError::BadField { name: field, message: why },
        IssuanceError::FeeOrderMismatch(_) | IssuanceError::FeeOrderNotPayable { .. } => {
            refused(StatusCode::CONFLICT, "order_conflict")
        }
        IssuanceError::PromotionEnded(_) => refused(StatusCode::CONFLICT, "promotion_ended"),
        IssuanceError::Payment(inner) => payment_error(inner),
        IssuanceError::Store(inner) => ApiError::Store(inner),
        // No keys, serials exhausted, unusable pricing: the service's fault, not the request's.
        _ => {
            tracing::error!(%message, "issuance");
            refused(StatusCode::SERVICE_UNAVAILABLE, "cannot_issue")
        }
    }
}
