//! `POST /v1/phones`: a phone registers once and gets its token (shown once, stored hashed,
//! bound to the device); `GET /v1/phones/me`: the calling phone and its cards;
//! `POST /v1/phones/me/token`: the calling phone's new token (its own), the old one dead at once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_platform::access::{self, AccessError};
use yitong_platform::issuance::Phone;

use crate::auth::{PhoneCaller, PhoneWithToken};
use crate::error::{field, ApiError, ApiJson, ErrorBody};
use crate::routes::cards::CardViewBody;
use crate::state::AppState;

/// `/v1/phones`, `/v1/phones/me`, `/v1/phones/me/token`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register)).routes(routes!(me)).routes(routes!(rotate_token))
}

/// The phone registering.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PhoneFields {
    /// The phone's device ID (1 to 64 bytes of printable text).
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
    /// For a device registered before whose registration an operator reset: the reset code
    /// (`ytr_` and 64 hex digits) the operator gave the rider, with `token`. The same device and
    /// SE then have that token; the code is used up.
    #[serde(default)]
    pub reset_code: Option<String>,
    /// With `reset_code`: the phone's own new token (`ytp_` and 64 lower-case hex digits of its
    /// randomness), kept before it is sent, so that an answer lost on the way loses nothing.
    #[serde(default)]
    pub token: Option<String>,
}

/// A registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// The registration's ID.
    pub phone_id: String,
    /// The device ID registered.
    pub device_id: String,
    /// The phone's bearer token (`ytp_` and 64 hex digits), shown this once: keep it.
    pub token: String,
}

/// The calling phone and its cards.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneView {
    /// The registration's ID.
    pub phone_id: String,
    /// The device ID.
    pub device_id: String,
    /// The secure element's ID.
    pub se_id: String,
    /// Maker, as registered.
    pub maker: String,
    /// Model, as registered.
    pub model: String,
    /// The NFC-SIM's carrier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// Its cards, one per city, with balance and history.
    pub cards: Vec<CardViewBody>,
}

/// Registers a phone and answers its token, once; or, with the reset code an operator gave, the
/// same device and SE again, with a new token.
#[utoipa::path(post, path = "/v1/phones", tag = "phones", request_body = PhoneFields,
    responses(
        (status = 201, body = Registered, description = "registered; the token is shown this once"),
        (status = 400, body = ErrorBody, description = "a field is missing, empty, too long or not printable; with a reset code, a missing or unusable `token`"),
        (status = 409, body = ErrorBody, description = "the device is registered already (`phone_registered`), and no valid reset code of this device and SE came with it"),
    ))]
async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PhoneFields>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let carrier = match body.carrier.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(carrier) => Some(field("carrier", carrier)?.to_owned()),
        None => None,
    };
    let phone = Phone {
        device_id: field("device_id", &body.device_id)?.to_owned(),
        se_id: field("se_id", &body.se_id)?.to_owned(),
        maker: field("maker", &body.maker)?.to_owned(),
        model: field("model", &body.model)?.to_owned(),
        carrier,
    };
    let (registered, token) =
        match (access::register_phone(state.store(), &phone, state.now_ms()).await, &body.reset_code) {
            (Err(AccessError::PhoneRegistered(_)), Some(code)) => {
                let proposed = body.token.as_deref().map(str::trim).ok_or_else(|| ApiError::BadField {
                    name: "token",
                    message: "a phone registering again with a reset code proposes its own new token".into(),
                })?;
                let registered =
                    access::register_phone_again(state.store(), &phone, code.trim(), proposed, state.now_ms())
                        .await
                        .map_err(|error| access_error(error, "phone registration"))?;
                tracing::info!(phone_id = %registered.phone_id, "phone registered again after a reset");
                (registered, proposed.to_owned())
            }
            (registered, _) => {
                let (registered, token) = registered.map_err(|error| access_error(error, "phone registration"))?;
                tracing::info!(phone_id = %registered.phone_id, "phone registered");
                (registered, token.expose().to_owned())
            }
        };
    Ok((
        StatusCode::CREATED,
        Json(Registered { phone_id: registered.phone_id, device_id: registered.phone.device_id, token }),
    ))
}

/// The phone's new token, of its own making.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewToken {
    /// The new bearer token: `ytp_` and 64 lower-case hex digits of the phone's own randomness,
    /// kept by the phone before it sends it.
    pub token: String,
}

/// Makes the token in the body the calling phone's, in place of the one presented (a phone
/// rotates it from time to time, or when it may have leaked), which stops working at once. The
/// phone makes the new token itself and keeps it before sending: should the answer be lost, it
/// finds out which of its two tokens is taken (`GET /v1/phones/me` with the new one, or this
/// request again with the old). Of two rotations from the same token, one wins; the other is
/// `401`.
#[utoipa::path(post, path = "/v1/phones/me/token", tag = "phones", request_body = NewToken,
    security(("phone_token" = [])),
    responses(
        (status = 204, description = "the new token is the phone's; the one presented works no more"),
        (status = 400, body = ErrorBody, description = "`token` is missing or not a phone token (`ytp_` and 64 lower-case hex digits), or is the one in use"),
        (status = 401, body = ErrorBody, description = "no valid phone token, or it was replaced meanwhile"),
    ))]
async fn rotate_token(
    State(state): State<AppState>,
    caller: PhoneWithToken,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<StatusCode, ApiError> {
    let rotated = access::rotate_phone_token(state.store(), &caller.phone, &caller.token_sha256, &body.token).await;
    rotated.map_err(|error| access_error(error, "phone token rotation"))?;
    tracing::info!(phone_id = %caller.phone.phone_id, "phone token rotated");
    Ok(StatusCode::NO_CONTENT)
}

/// The calling phone, as registered, with its cards.
#[utoipa::path(get, path = "/v1/phones/me", tag = "phones",
    security(("phone_token" = [])),
    responses(
        (status = 200, body = PhoneView, description = "the phone and its cards"),
        (status = 401, body = ErrorBody, description = "no valid phone token"),
    ))]
async fn me(State(state): State<AppState>, PhoneCaller(caller): PhoneCaller) -> Result<Json<PhoneView>, ApiError> {
    let mut cards = Vec::new();
    for card in state.store().cards_of_device(&caller.phone.device_id).await? {
        cards.push(CardViewBody::of(&state.store().card_view(card).await?)?);
    }
    let phone = caller.phone;
    Ok(Json(PhoneView {
        phone_id: caller.phone_id,
        device_id: phone.device_id,
        se_id: phone.se_id,
        maker: phone.maker,
        model: phone.model,
        carrier: phone.carrier,
        cards,
    }))
}

/// The one place access errors become statuses; `doing` names the step in the log of a failure
/// that is the service's (no randomness).
pub(crate) fn access_error(error: AccessError, doing: &'static str) -> ApiError {
    let message = error.to_string();
    match error {
        AccessError::BadField { field, why } => ApiError::BadField { name: field, message: why },
        AccessError::PhoneRegistered(_) => {
            ApiError::Refused { status: StatusCode::CONFLICT, code: "phone_registered", message }
        }
        AccessError::TokenReplaced => ApiError::Unauthorized(message),
        AccessError::Store(inner) => ApiError::Store(inner),
        _ => {
            tracing::error!(%message, "{doing}");
            ApiError::Refused { status: StatusCode::SERVICE_UNAVAILABLE, code: "unavailable", message }
        }
    }
}
