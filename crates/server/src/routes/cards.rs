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
use yitong_platform::issuance::{CardApplication, Issuance, IssuanceError, IssuedCard, Phone};
use yitong_platform::payments::{MerchantOrderId, Order};

use crate::error::{field, ApiError, ApiJson, ErrorBody};
use crate::routes::cities::parse_channel;
use crate::routes::topups::{payment_error, OrderInfo};
use crate::state::AppState;

/// `/v1/cards`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(request_card))
}

/// The phone asking.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PhoneFields {
    /// The phone's device ID.
    pub device_id: String,
    /// The secure element's ID (the embedded SE's CPLC, or the NFC-SIM's ICCID).
    pub se_id: String,
    /// Maker, as in the device catalogue (`Xiaomi`).
    pub maker: String,
    /// Model, as in the device catalogue (`Mi 6`).
    pub model: String,
    /// The NFC-SIM's carrier; absent for an embedded SE.
    #[serde(default)]
    pub carrier: Option<String>,
}

/// A request for a card.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CardRequestBody {
    /// Who asks.
    pub phone: PhoneFields,
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

/// Issues a card of `city` to the phone, or answers the fee order to pay first.
#[utoipa::path(post, path = "/v1/cards", tag = "cards", request_body = CardRequestBody,
    responses(
        (status = 201, body = CardAnswer, description = "a new card (`status: issued`)"),
        (status = 200, body = CardAnswer, description = "the phone's existing card (`status: issued`, `existing: true`)"),
        (status = 202, body = CardAnswer, description = "the fee order to pay (`status: payment_required`)"),
        (status = 400, body = ErrorBody, description = "a field is missing, empty, too long or malformed"),
        (status = 404, body = ErrorBody, description = "no such city"),
        (status = 409, body = ErrorBody, description = "the fee order ID is another request's, or can no longer pay"),
        (status = 422, body = ErrorBody, description = "the phone cannot carry a card of the city (`not_eligible`, with the reason)"),
    ))]
async fn request_card(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CardRequestBody>,
) -> Result<(StatusCode, Json<CardAnswer>), ApiError> {
    let application = application(&body)?;
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

fn application(body: &CardRequestBody) -> Result<CardApplication, ApiError> {
    let phone = &body.phone;
    let carrier = match phone.carrier.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(carrier) => Some(field("phone.carrier", carrier)?.to_owned()),
        None => None,
    };
    let (_, channel) = parse_channel(field("channel", &body.channel)?).map_err(|_| ApiError::BadField {
        name: "channel",
        message: format!("`{}` is not maker-wallet, city-app or carrier-hall", body.channel.trim()),
    })?;
    Ok(CardApplication {
        phone: Phone {
            device_id: field("phone.device_id", &phone.device_id)?.to_owned(),
            se_id: field("phone.se_id", &phone.se_id)?.to_owned(),
            maker: field("phone.maker", &phone.maker)?.to_owned(),
            model: field("phone.model", &phone.model)?.to_owned(),
            carrier,
        },
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
    let card = &issued.card;
    let serial = card.serial().map_err(issuance_error)?;
    Ok(CardAnswer::Issued {
        card: CardInfo {
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
        },
        image_hex: hex::encode_upper(&issued.image),
        existing: issued.existing,
    })
}

/// The one place issuance errors become statuses.
fn issuance_error(error: IssuanceError) -> ApiError {
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
