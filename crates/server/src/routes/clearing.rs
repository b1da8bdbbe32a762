//! `POST /v1/clearing/batches`: a gate's upload (its operator's key), in JSON Lines or the
//! compact binary encoding (`yitong_clearing::batch`). Every record is proven with its TAC and
//! fed to its card's shadow; the answer says what each came to. A batch sent again is answered
//! as the first time, nothing counted twice. `GET /v1/operator/cards/{serial}/shadow`: what the
//! back office knows of a card of the key's city.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_clearing::batch::{Batch, BINARY_MEDIA_TYPE};
use yitong_platform::store::{BatchAnswer, IngestError, PLATFORM_BATCH_PREFIX};

use crate::auth::CityOperator;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Largest upload accepted, bytes: a day of a busy gate in JSON Lines.
pub const BATCH_BYTES_MAX: usize = 32 * 1024 * 1024;

/// `/v1/clearing/batches`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .layer(DefaultBodyLimit::max(BATCH_BYTES_MAX))
        .routes(routes!(card_shadow))
}

/// Takes a gate's batch of records: each proven with its TAC, fed to its card's shadow, kept for
/// audit; proven fraud goes on the hotlist.
#[utoipa::path(post, path = "/v1/clearing/batches", tag = "clearing",
    request_body(content = String, content_type = "application/x-ndjson",
        description = "JSON Lines: the header `{batch_id, gate, operator}`, then one record per line; or the binary encoding as `application/vnd.yitong.batch` (docs/backoffice.md)"),
    security(("operator_key" = [])),
    responses(
        (status = 201, body = Object, description = "the batch taken: `{gate, batch_id, records, accepted, duplicates, rejected: [{position, tap_id, reason}], settled: [{tap_id, verdict, previous, evidence}], flags: [{card, flag, hotlisted_at_version}]}`"),
        (status = 200, body = Object, description = "the same batch again: its first answer, nothing counted twice"),
        (status = 400, body = ErrorBody, description = "the batch does not parse (the line or byte named), or its gate is not of the key's city"),
        (status = 401, body = ErrorBody, description = "no valid operator key"),
        (status = 403, body = ErrorBody, description = "the clearing house's key: this acts for one city"),
        (status = 413, body = ErrorBody, description = "larger than 32 MiB"),
        (status = 415, body = ErrorBody, description = "neither application/x-ndjson nor application/vnd.yitong.batch"),
    ))]
async fn upload(
    State(state): State<AppState>,
    CityOperator(key): CityOperator,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<BatchAnswer>), ApiError> {
    // Too large (413) or unreadable: a JSON error as every other.
    let body =
        body.map_err(|rejection| ApiError::BadBody { status: rejection.status(), message: rejection.body_text() })?;
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let bad = |message: String| ApiError::BadBody { status: StatusCode::BAD_REQUEST, message };
    let batch = match media.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/json-lines" => {
            let text = std::str::from_utf8(&body).map_err(|_| bad("the batch is not UTF-8".into()))?;
            Batch::from_json_lines(text).map_err(|e| bad(e.to_string()))?
        }
        m if m == BINARY_MEDIA_TYPE => Batch::from_binary(&body).map_err(|e| bad(e.to_string()))?,
        _ => {
            return Err(ApiError::BadBody {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message: format!("send application/x-ndjson or {BINARY_MEDIA_TYPE}"),
            })
        }
    };
    if batch.header.batch_id.starts_with(PLATFORM_BATCH_PREFIX) {
        return Err(bad(format!(
            "batch_id: `{PLATFORM_BATCH_PREFIX}…` names the platform's own records (fed without an upload)"
        )));
    }
    let city = state
        .cities()
        .get(&key.city)
        .ok_or_else(|| ApiError::NotFound(format!("the key's city {} is not served", key.city)))?;
    if u16::from_be_bytes([batch.header.gate[0], batch.header.gate[1]]) != city.city_code() {
        return Err(bad(format!(
            "gate {} is not a terminal of {} (its ID starts with the city code {:04X})",
            hex::encode_upper(batch.header.gate),
            key.city,
            city.city_code()
        )));
    }
    let ingested = state
        .uploads()
        .ingest(std::sync::Arc::new(batch), &state.services().tac, &key.key_id, state.now(), state.now_ms())
        .await
        .map_err(|error| match error {
            IngestError::Store(inner) => ApiError::Store(inner),
            other => {
                tracing::error!(error = %other, "ingest");
                ApiError::Refused {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "cannot_ingest",
                    message: other.to_string(),
                }
            }
        })?;
    let status = if ingested.new { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ingested.answer)))
}

/// An unconfirmed record not decided yet.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PendingBody {
    /// Its tap ID.
    pub tap_id: String,
    /// `online` (a load) or `offline` (a purchase).
    pub sequence: String,
    /// Its counter.
    pub counter: u16,
    /// Its amount, fen.
    pub amount_fen: u32,
    /// When the card was tapped, local time.
    pub at: String,
    /// How long it has waited, seconds.
    pub age_s: i64,
}

/// What the back office knows of a card.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ShadowBody {
    /// The issuer ID, hex.
    pub issuer_id: String,
    /// The serial, hex.
    pub serial: String,
    /// The balance after the card's latest transaction known, fen (null when undecidable).
    pub balance_fen: Option<i64>,
    /// Transactions held.
    pub transactions: usize,
    /// Unconfirmed records not decided yet, with their age.
    pub pending: Vec<PendingBody>,
    /// What does not add up (counter gaps, balance breaks, clones, TAC failures).
    pub flags: Vec<String>,
    /// Records whose TAC failed.
    pub tac_failures: u32,
}

/// The shadow of a card of the key's city's issuer.
#[utoipa::path(get, path = "/v1/operator/cards/{serial}/shadow", tag = "clearing",
    security(("operator_key" = [])),
    params(("serial" = String, Path, description = "the card's application serial, 20 hex digits")),
    responses(
        (status = 200, body = ShadowBody, description = "the card's shadow balance, pending records and flags"),
        (status = 400, body = ErrorBody, description = "the serial is not 20 hex digits"),
        (status = 401, body = ErrorBody, description = "no valid operator key"),
        (status = 403, body = ErrorBody, description = "the clearing house's key: this acts for one city"),
        (status = 404, body = ErrorBody, description = "no record of the card has been uploaded"),
    ))]
async fn card_shadow(
    State(state): State<AppState>,
    CityOperator(key): CityOperator,
    crate::error::ApiPath(serial): crate::error::ApiPath<String>,
) -> Result<Json<ShadowBody>, ApiError> {
    let serial_text = serial.trim();
    let serial = hex::decode(serial_text)
        .ok()
        .and_then(|b| <[u8; 10]>::try_from(b).ok())
        .ok_or_else(|| ApiError::BadPath(format!("serial: `{serial_text}` is not 20 hex digits")))?;
    let city = state
        .cities()
        .get(&key.city)
        .ok_or_else(|| ApiError::NotFound(format!("the key's city {} is not served", key.city)))?;
    let card = yitong_clearing::shadow::CardId { issuer_id: city.issuer_id(), card_serial: serial };
    feed_platform_records(&state).await;
    let shadow =
        state.store().card_shadow(card).await.map_err(shadow_read_error)?.ok_or_else(|| {
            ApiError::NotFound(format!("no record of card {serial_text} of {} was uploaded", key.city))
        })?;
    let now = state.now();
    Ok(Json(ShadowBody {
        issuer_id: hex::encode_upper(card.issuer_id),
        serial: hex::encode_upper(card.card_serial),
        balance_fen: shadow.balance_fen(),
        transactions: shadow.transactions().len(),
        pending: shadow
            .pending()
            .iter()
            .map(|p| PendingBody {
                tap_id: p.tap_id.to_string(),
                sequence: format!("{:?}", p.sequence).to_lowercase(),
                counter: p.counter,
                amount_fen: p.amount_fen,
                at: p.at.to_string(),
                age_s: p.age_s(&now),
            })
            .collect(),
        flags: shadow.flags().map(ToString::to_string).collect(),
        tac_failures: shadow.tac_failures(),
    }))
}

/// A shadow that could not be read: the database's error as such, a stored shadow that does not
/// read back as `503 cannot_read_shadow`.
pub(crate) fn shadow_read_error(error: IngestError) -> ApiError {
    match error {
        IngestError::Store(inner) => ApiError::Store(inner),
        other => ApiError::Refused {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "cannot_read_shadow",
            message: other.to_string(),
        },
    }
}

/// Feeds the platform's own final card transactions (over-the-air loads, service-desk debits)
/// not fed yet to the back office, so that shadows and reports read them as if uploaded. What
/// cannot be fed now is logged and left for the next feed: the reading goes on.
pub(crate) async fn feed_platform_records(state: &AppState) {
    use std::sync::atomic::Ordering;
    let since = state.platform_fed_since_ms().load(Ordering::Relaxed);
    match state.store().feed_platform_records(&state.services().tac, state.now(), state.now_ms(), since).await {
        Ok(feed) => {
            for (tap_id, why) in &feed.failed {
                tracing::error!(tap_id = %tap_id, why = %why, "a platform record not fed to the back office");
            }
            state.platform_fed_since_ms().store(feed.next_since_ms, Ordering::Relaxed);
        }
        Err(error) => tracing::error!(error = %error, "feeding the platform's records"),
    }
}
