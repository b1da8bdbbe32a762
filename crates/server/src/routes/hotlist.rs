//! The hotlist on HTTP: gates (with their operator's key) fetch what changed since the version
//! they hold; an operator lists or unlists a card of its own city's issuer, with a reason. The
//! list and its rules are `yitong_clearing::hotlist`; the store keeps every change.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_clearing::hotlist::{Actor, Change, ChangeKind, Delta, HotlistError};
use yitong_clearing::shadow::CardId;
use yitong_platform::access::OperatorKey;
use yitong_platform::store::HotlistChangeError;

use crate::auth::{CityOperator, OperatorCaller};
use crate::error::{field, optional, ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use crate::state::AppState;

/// `/v1/hotlist` and `/v1/operator/hotlist…`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(hotlist_delta)).routes(routes!(add_card)).routes(routes!(remove_card))
}

/// The version a gate holds.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HotlistQuery {
    /// The version the gate's copy is at; 0 or absent: the whole list.
    pub since: Option<String>,
}

/// A card.
#[derive(Debug, Serialize, ToSchema)]
pub struct CardKeyBody {
    /// The issuer ID, 16 hex digits.
    pub issuer_id: String,
    /// The application serial, 20 hex digits.
    pub serial: String,
}

impl From<&CardId> for CardKeyBody {
    fn from(card: &CardId) -> Self {
        CardKeyBody { issuer_id: hex::encode_upper(card.issuer_id), serial: hex::encode_upper(card.card_serial) }
    }
}

/// One change of the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeBody {
    /// The version it made.
    pub version: u64,
    /// The card.
    #[serde(flatten)]
    pub card: CardKeyBody,
    /// `added` or `removed`.
    pub kind: &'static str,
    /// Why.
    pub reason: String,
    /// `policy`, or the operator key's name.
    pub by: String,
    /// When, local time `YYYY-MM-DD HH:MM:SS`.
    pub at: String,
}

impl From<&Change> for ChangeBody {
    fn from(change: &Change) -> Self {
        ChangeBody {
            version: change.version,
            card: CardKeyBody::from(&change.card),
            kind: match change.kind {
                ChangeKind::Added => "added",
                ChangeKind::Removed => "removed",
            },
            reason: change.reason.clone(),
            by: match &change.by {
                Actor::Policy => "policy".to_owned(),
                Actor::Operator { name } => name.clone(),
            },
            at: change.at.to_string(),
        }
    }
}

/// What changed since the gate's version.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeltaBody {
    /// The version the delta starts from (the gate's).
    pub from: u64,
    /// The version it reaches: the gate's next `since`.
    pub to: u64,
    /// Cards to refuse, with the change that listed each.
    pub added: Vec<ChangeBody>,
    /// Cards to accept again.
    pub removed: Vec<CardKeyBody>,
}

impl From<&Delta> for DeltaBody {
    fn from(delta: &Delta) -> Self {
        DeltaBody {
            from: delta.from,
            to: delta.to,
            added: delta.added.iter().map(ChangeBody::from).collect(),
            removed: delta.removed.iter().map(CardKeyBody::from).collect(),
        }
    }
}

/// A card to list.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ListRequest {
    /// The card's application serial, 20 hex digits (a card of the key's city's issuer).
    pub serial: String,
    /// Why (1–500 bytes), kept in the list's history.
    pub reason: String,
}

/// Why a card is taken off the list.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UnlistRequest {
    /// Why (1–500 bytes), kept in the list's history.
    pub reason: String,
}

/// What changed in the hotlist since the version the gate holds (every issuer's cards: a gate
/// accepts every T-Union card).
#[utoipa::path(get, path = "/v1/hotlist", tag = "hotlist", params(HotlistQuery),
    security(("operator_key" = [])),
    responses(
        (status = 200, body = DeltaBody, description = "the cards added and removed since `since`, and the version reached"),
        (status = 400, body = ErrorBody, description = "`since` is not a version, or is ahead of the list"),
        (status = 401, body = ErrorBody, description = "no valid operator key"),
    ))]
async fn hotlist_delta(
    State(state): State<AppState>,
    OperatorCaller(_): OperatorCaller,
    ApiQuery(query): ApiQuery<HotlistQuery>,
) -> Result<Json<DeltaBody>, ApiError> {
    let since = match optional("since", &query.since)? {
        Some(text) => text.parse::<u64>().map_err(|_| ApiError::BadParameter {
            name: "since",
            message: format!("`{text}` is not a version (0, 1, 2, …)"),
        })?,
        None => 0,
    };
    let delta = state
        .store()
        .hotlist_delta(since, |_| true)
        .await?
        .map_err(|error| ApiError::BadParameter { name: "since", message: error.to_string() })?;
    Ok(Json(DeltaBody::from(&delta)))
}

/// Lists a card of the key's city's issuer: gates refuse it (and block it) after their next sync.
#[utoipa::path(post, path = "/v1/operator/hotlist", tag = "hotlist", request_body = ListRequest,
    security(("operator_key" = [])),
    responses(
        (status = 201, body = ChangeBody, description = "listed: the change and its version"),
        (status = 400, body = ErrorBody, description = "the serial or the reason is malformed"),
        (status = 401, body = ErrorBody, description = "no valid operator key"),
        (status = 403, body = ErrorBody, description = "the clearing house's key: this acts for one city"),
        (status = 409, body = ErrorBody, description = "the card is listed already (`already_listed`)"),
    ))]
async fn add_card(
    State(state): State<AppState>,
    CityOperator(key): CityOperator,
    ApiJson(body): ApiJson<ListRequest>,
) -> Result<(StatusCode, Json<ChangeBody>), ApiError> {
    let card = card_of(&state, &key, field("serial", &body.serial)?)?;
    let change = change(&state, &key, card, ChangeKind::Added, &body.reason).await?;
    Ok((StatusCode::CREATED, Json(ChangeBody::from(&change))))
}

/// Takes a card of the key's city's issuer off the list.
#[utoipa::path(post, path = "/v1/operator/hotlist/{serial}/remove", tag = "hotlist", request_body = UnlistRequest,
    security(("operator_key" = [])),
    params(("serial" = String, Path, description = "the card's application serial, 20 hex digits")),
    responses(
        (status = 200, body = ChangeBody, description = "removed: the change and its version"),
        (status = 400, body = ErrorBody, description = "the serial or the reason is malformed"),
        (status = 401, body = ErrorBody, description = "no valid operator key"),
        (status = 403, body = ErrorBody, description = "the clearing house's key: this acts for one city"),
        (status = 409, body = ErrorBody, description = "the card is not listed (`not_listed`)"),
    ))]
async fn remove_card(
    State(state): State<AppState>,
    CityOperator(key): CityOperator,
    ApiPath(serial): ApiPath<String>,
    ApiJson(body): ApiJson<UnlistRequest>,
) -> Result<Json<ChangeBody>, ApiError> {
    let card = card_of(&state, &key, serial.trim()).map_err(|error| match error {
        ApiError::BadField { message, .. } => ApiError::BadPath(format!("serial: {message}")),
        other => other,
    })?;
    let change = change(&state, &key, card, ChangeKind::Removed, &body.reason).await?;
    Ok(Json(ChangeBody::from(&change)))
}

/// The card `serial` of the key's city's issuer: an operator acts on its own issuer's cards only.
fn card_of(state: &AppState, key: &OperatorKey, serial: &str) -> Result<CardId, ApiError> {
    let bad = || ApiError::BadField { name: "serial", message: format!("`{serial}` is not 20 hex digits") };
    let serial = hex::decode(serial).ok().and_then(|b| <[u8; 10]>::try_from(b).ok()).ok_or_else(bad)?;
    let city = state
        .cities()
        .get(&key.city)
        .ok_or_else(|| ApiError::NotFound(format!("the key's city {} is not served", key.city)))?;
    Ok(CardId { issuer_id: city.issuer_id(), card_serial: serial })
}

async fn change(
    state: &AppState,
    key: &OperatorKey,
    card: CardId,
    kind: ChangeKind,
    reason: &str,
) -> Result<Change, ApiError> {
    let by = Actor::Operator { name: key.name.clone() };
    let change = state.store().change_hotlist(card, kind, reason, by, state.now(), state.now_ms()).await;
    change.map_err(|error| {
        let message = error.to_string();
        match error {
            HotlistChangeError::Refused(HotlistError::AlreadyListed { .. }) => {
                ApiError::Refused { status: StatusCode::CONFLICT, code: "already_listed", message }
            }
            HotlistChangeError::Refused(HotlistError::NotListed(_)) => {
                ApiError::Refused { status: StatusCode::CONFLICT, code: "not_listed", message }
            }
            HotlistChangeError::Refused(_) => ApiError::BadField { name: "reason", message },
            HotlistChangeError::Store(inner) => ApiError::Store(inner),
            _ => ApiError::Refused { status: StatusCode::SERVICE_UNAVAILABLE, code: "unavailable", message },
        }
    })
}
