//! Card transfer and deletion on HTTP: the phone starts its card's closure, carries the
//! service desk's commands to its SE and the card's answers back until the card is empty and
//! blocked; a transfer then waits for the new phone's claim, a deletion's balance is refunded.
//! The domain is the platform's `ClosureService`; this module parses, checks ownership, calls
//! and maps errors.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_platform::closure::{ClosureError, ClosureStep, Purpose};
use yitong_platform::ledger::CardId;

use crate::auth::PhoneCaller;
use crate::error::{field, hex_field, ApiError, ApiJson, ApiPath, ErrorBody, PARAMETER_CHARS_MAX};
use crate::routes::cards::{card_info, issuance_error, own_card, path_card_id, CardInfo};
use crate::routes::cities::parse_channel;
use crate::routes::topups::{payment_error, CardAnswerBody, OrderInfo};
use crate::state::AppState;

/// `/v1/cards/{serial}/closure`, `/v1/closures/{id}/answer`, `/v1/transfers/claim`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start_closure)).routes(routes!(closure_answer)).routes(routes!(claim_transfer))
}

/// Why the card is closed.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClosureRequest {
    /// `transfer` (the balance moves to a new phone) or `delete` (the balance is refunded).
    pub purpose: String,
}

/// Where a closure is and what the phone sends its card next.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClosureAnswer {
    /// The closure (`C` and the card's serial).
    pub closure_id: String,
    /// `transfer` or `delete`.
    pub purpose: &'static str,
    /// `open` (send `command`, then answer) or `closed` (the card is empty and blocked for good).
    pub state: &'static str,
    /// The APDU to send the card, hex; null once closed.
    pub command: Option<String>,
    /// What the card's verified TACs (or its log) prove was debited, fen.
    pub moved_fen: i64,
    /// Debits the card could no longer prove or disprove, fen: not moved, handed to the back
    /// office.
    pub unconfirmed_fen: i64,
    /// Transfer, once closed: the code the new phone claims the balance with (a bearer
    /// capability: show it to the rider only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_code: Option<String>,
    /// Deletion, once closed: the refund of the balance (absent for a zero balance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_order: Option<OrderInfo>,
    /// Deletion, once closed: the refund of the sign-up fee, where the city's rules refund it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_refund_order: Option<OrderInfo>,
}

impl From<&ClosureStep> for ClosureAnswer {
    fn from(step: &ClosureStep) -> Self {
        ClosureAnswer {
            closure_id: step.closure_id.clone(),
            purpose: step.purpose.name(),
            state: step.state.name(),
            command: step.command.as_ref().map(hex::encode_upper),
            moved_fen: step.moved.get(),
            unconfirmed_fen: step.unconfirmed.get(),
            transfer_code: step.transfer_code.clone(),
            refund_order: step.refund_order.as_ref().map(OrderInfo::from),
            fee_refund_order: step.fee_refund_order.as_ref().map(OrderInfo::from),
        }
    }
}

/// The new phone's claim of a transfer. The code travels in the body, never in a URL that
/// proxies and access logs keep.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClaimRequest {
    /// The transfer code the old phone was given, 32 hex digits.
    pub code: String,
    /// Where the rider takes the card: `maker-wallet`, `city-app` or `carrier-hall`.
    pub channel: String,
}

/// The new card and the load of the moved balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimAnswer {
    /// The new card (issued without a fee: a transfer is not a sign-up).
    pub card: CardInfo,
    /// The personalized card image for a software SE, hex (it holds the card's keys).
    pub image_hex: String,
    /// The funded load order (kind `transfer`, `paid`): load it with `POST
    /// /v1/topups/{id}/authorize` and `/complete`, as a top-up; null when the old card was empty.
    pub load_order: Option<OrderInfo>,
    /// The INITIALIZE FOR LOAD of the load order, hex; null when there is nothing to load.
    pub initialize_command: Option<String>,
}

/// Starts closing one of the phone's cards, or resumes its closure (a closed one answers its
/// outcome again).
#[utoipa::path(post, path = "/v1/cards/{serial}/closure", tag = "closures", request_body = ClosureRequest,
    security(("phone_token" = [])),
    params(("serial" = String, Path, description = "the card's serial, 20 hex digits")),
    responses(
        (status = 201, body = ClosureAnswer, description = "the closure began: send `command` to the card"),
        (status = 200, body = ClosureAnswer, description = "the card's closure resumed from the card's evidence, or its outcome once closed"),
        (status = 400, body = ErrorBody, description = "the serial or `purpose` is malformed"),
        (status = 401, body = ErrorBody, description = "no valid phone token"),
        (status = 404, body = ErrorBody, description = "no such card of this phone"),
        (status = 409, body = ErrorBody, description = "the card is being closed for the other purpose, a top-up of it is in doubt, another request moved the closure, or the card kept a balance after the rounds allowed"),
        (status = 422, body = ErrorBody, description = "the service desk holds no key of the card"),
    ))]
async fn start_closure(
    State(state): State<AppState>,
    PhoneCaller(caller): PhoneCaller,
    ApiPath(serial): ApiPath<String>,
    ApiJson(body): ApiJson<ClosureRequest>,
) -> Result<(StatusCode, Json<ClosureAnswer>), ApiError> {
    let card = path_card_id(&serial)?;
    let purpose = Purpose::parse(field("purpose", &body.purpose)?).ok_or_else(|| ApiError::BadField {
        name: "purpose",
        message: format!("`{}` is not transfer or delete", body.purpose.trim()),
    })?;
    own_card(&state, &caller, &card).await?;
    let services = state.services();
    let step =
        services.closures.start(&services.payments, &card, purpose, state.now_ms()).await.map_err(closure_error)?;
    let status = if step.started { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ClosureAnswer::from(&step))))
}

/// The card's answer to the closure's last command; answers the next command, or the outcome.
#[utoipa::path(post, path = "/v1/closures/{id}/answer", tag = "closures", request_body = CardAnswerBody,
    security(("phone_token" = [])),
    params(("id" = String, Path, description = "the closure ID")),
    responses(
        (status = 200, body = ClosureAnswer, description = "the next command, or `closed` with the outcome"),
        (status = 400, body = ErrorBody, description = "the answer is not hex"),
        (status = 401, body = ErrorBody, description = "no valid phone token"),
        (status = 404, body = ErrorBody, description = "no such closure of this phone's cards"),
        (status = 409, body = ErrorBody, description = "another request moved the closure meanwhile (start it again to resume), or the card kept a balance after the rounds allowed"),
        (status = 422, body = ErrorBody, description = "the card's answer is malformed, a failure, or its MAC2 or TAC does not verify (nothing recorded)"),
    ))]
async fn closure_answer(
    State(state): State<AppState>,
    PhoneCaller(caller): PhoneCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CardAnswerBody>,
) -> Result<Json<ClosureAnswer>, ApiError> {
    let id = own_closure(&state, &caller, &id).await?;
    let answer = hex_field("answer", &body.answer)?;
    let services = state.services();
    let step = services
        .closures
        .answer(&services.payments, &id, &answer, state.now(), state.now_ms())
        .await
        .map_err(closure_error)?;
    Ok(Json(ClosureAnswer::from(&step)))
}

/// The new phone claims a transferred balance: a card of the city issued to it and the load
/// order of the balance.
#[utoipa::path(post, path = "/v1/transfers/claim", tag = "closures", request_body = ClaimRequest,
    security(("phone_token" = [])),
    responses(
        (status = 201, body = ClaimAnswer, description = "the new card and its load order"),
        (status = 200, body = ClaimAnswer, description = "the same, for a repeated claim of this phone"),
        (status = 400, body = ErrorBody, description = "the code or `channel` is malformed"),
        (status = 401, body = ErrorBody, description = "no valid phone token"),
        (status = 404, body = ErrorBody, description = "no transfer has this code"),
        (status = 409, body = ErrorBody, description = "claimed by another phone, the old phone's own transfer, or the phone has a card of the city"),
        (status = 422, body = ErrorBody, description = "the phone cannot carry a card of the city (`not_eligible`)"),
    ))]
async fn claim_transfer(
    State(state): State<AppState>,
    PhoneCaller(caller): PhoneCaller,
    ApiJson(body): ApiJson<ClaimRequest>,
) -> Result<(StatusCode, Json<ClaimAnswer>), ApiError> {
    let code = field("code", &body.code)?;
    if !code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::BadField { name: "code", message: "not hex digits".into() });
    }
    let (_, channel) = parse_channel(field("channel", &body.channel)?).map_err(|_| ApiError::BadField {
        name: "channel",
        message: format!("`{}` is not maker-wallet, city-app or carrier-hall", body.channel.trim()),
    })?;
    let services = state.services();
    let claim = services
        .closures
        .claim_transfer(
            &services.payments,
            &code.to_ascii_uppercase(),
            &caller.phone,
            channel,
            state.now(),
            state.now_ms(),
        )
        .await
        .map_err(closure_error)?;
    let status = if claim.card.existing { StatusCode::OK } else { StatusCode::CREATED };
    Ok((
        status,
        Json(ClaimAnswer {
            card: card_info(&claim.card.card)?,
            image_hex: hex::encode_upper(&claim.card.image),
            load_order: claim.load_order.as_ref().map(OrderInfo::from),
            initialize_command: claim.initialize_command.as_ref().map(hex::encode_upper),
        }),
    ))
}

/// The closure `text` of one of the calling phone's cards: another phone's is "not found", as
/// an unknown one.
async fn own_closure(
    state: &AppState,
    caller: &yitong_platform::access::RegisteredPhone,
    text: &str,
) -> Result<String, ApiError> {
    let id = text.trim();
    let not_found = || ApiError::NotFound(format!("no closure {id} of this phone"));
    // A closure ID is `C` and a card ID: anything else names no closure (and never reaches SQL).
    if id.len() > PARAMETER_CHARS_MAX || id.strip_prefix('C').is_none_or(|card| CardId::parse(card).is_err()) {
        return Err(not_found());
    }
    let closure = state.store().closure(id).await?.ok_or_else(not_found)?;
    match state.store().phone_card(&closure.card_id).await? {
        Some(card) if card.device_id == caller.phone.device_id => Ok(closure.closure_id),
        _ => Err(not_found()),
    }
}

/// The one place closure errors become statuses.
fn closure_error(error: ClosureError) -> ApiError {
    let message = error.to_string();
    let refused = |status, code| ApiError::Refused { status, code, message: message.clone() };
    match error {
        ClosureError::UnknownCard(_) | ClosureError::UnknownClosure(_) | ClosureError::UnknownTransferCode => {
            ApiError::NotFound(message)
        }
        ClosureError::PurposeMismatch { .. } => refused(StatusCode::CONFLICT, "closing_for_other_purpose"),
        ClosureError::LoadInDoubt(_) => refused(StatusCode::CONFLICT, "load_in_doubt"),
        ClosureError::Contended(_) => refused(StatusCode::CONFLICT, "closure_contended"),
        ClosureError::ClaimedByAnotherPhone | ClosureError::OwnTransfer => {
            refused(StatusCode::CONFLICT, "transfer_not_claimable")
        }
        ClosureError::PhoneHasCard(_) => refused(StatusCode::CONFLICT, "phone_has_card"),
        // The card kept showing a balance (loaded meanwhile, or its answers are not what they
        // seem): not the service's fault.
        ClosureError::TooManyRounds(_) => refused(StatusCode::CONFLICT, "closure_rounds_exhausted"),
        ClosureError::BadAnswer { .. } | ClosureError::Mac2Invalid | ClosureError::Tac(_) => {
            refused(StatusCode::UNPROCESSABLE_ENTITY, "card_answer_rejected")
        }
        ClosureError::Keys(_) => refused(StatusCode::UNPROCESSABLE_ENTITY, "unknown_card_key"),
        ClosureError::Issuance(inner) => issuance_error(inner),
        ClosureError::Payment(inner) => payment_error(inner),
        ClosureError::Store(inner) => ApiError::Store(inner),
        _ => {
            tracing::error!(%message, "closure");
            refused(StatusCode::SERVICE_UNAVAILABLE, "cannot_close")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yitong_platform::closure::ClosureState;

    #[test]
    fn a_closed_step_has_no_command_and_shows_its_outcome() {
        let step = ClosureStep {
            closure_id: "C1000000000000000001".into(),
            purpose: Purpose::Transfer,
            state: ClosureState::Closed,
            command: None,
            moved: yitong_platform::ledger::Fen::new(1_500).expect("positive"),
            unconfirmed: yitong_platform::ledger::Fen::ZERO,
            transfer_code: Some("00112233445566778899AABBCCDDEEFF".into()),
            refund_order: None,
            fee_refund_order: None,
            started: false,
        };
        let json = serde_json::to_value(ClosureAnswer::from(&step)).expect("serializes");
        assert_eq!(json["state"], "closed");
        assert_eq!(json["purpose"], "transfer");
        assert!(json["command"].is_null());
        assert_eq!(json["moved_fen"], 1_500);
        assert_eq!(json["transfer_code"], "00112233445566778899AABBCCDDEEFF");
        assert!(json.get("refund_order").is_none());
    }
}
