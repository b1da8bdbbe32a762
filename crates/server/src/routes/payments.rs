//! `POST /v1/payments/notifications`: the payment provider's paid-notification callback, as
//! WeChat Pay and Alipay call a merchant's. No caller credential: the provider signs the exact
//! body bytes with its key (Ed25519, hex, in the `Yitong-Signature` header) and the service
//! verifies them before reading anything of the body (`PaymentService::handle_notification`). A
//! duplicate is answered as the first, nothing booked twice; a forged, altered or mismatched one
//! changes nothing. A provider retries until it gets a 2xx, so only a notification that can
//! never be booked is answered with a 4xx. (The built-in simulated provider's key comes from a
//! fixed seed, so anyone can sign for it: like `/v1/dev/orders/{id}/pay`, development only. A
//! real provider's key is its own.)

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_platform::payments::{
    NotificationError, NotificationOutcome, ServiceError, SignedNotification, NOTIFICATION_BODY_LENGTH_MAX,
};

use crate::error::{ApiError, ErrorBody};
use crate::routes::topups::{payment_error, OrderInfo};
use crate::state::AppState;

/// The header carrying the signature over the body: 128 hex digits.
pub const SIGNATURE_HEADER: &str = "yitong-signature";

/// `/v1/payments/notifications`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(notification))
        // Room to answer a longer body with the JSON error below, not axum's plain-text one.
        .layer(DefaultBodyLimit::max(16 * NOTIFICATION_BODY_LENGTH_MAX))
}

/// What became of a notification.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationAnswer {
    /// `paid` (booked now) or `duplicate` (booked before: nothing changed).
    pub outcome: String,
    /// The order after it.
    pub order: OrderInfo,
}

/// The provider tells the service an order was paid.
#[utoipa::path(post, path = "/v1/payments/notifications", tag = "payments",
    description = "The payment provider's paid-notification callback: the body exactly as the \
                   provider signed it, the Ed25519 signature over it (hex) in the Yitong-Signature \
                   header. No caller credential: the signature is checked with the provider's key.",
    request_body(content = Object, content_type = "application/json",
        description = "`{notification_id, merchant_order_id, transaction_id, amount_fen, paid_at_ms}`, as signed"),
    params(("Yitong-Signature" = String, Header, description = "128 hex digits: the Ed25519 signature over the body's bytes")),
    responses(
        (status = 200, body = NotificationAnswer, description = "booked, now or before (`duplicate`)"),
        (status = 400, body = ErrorBody, description = "no signature, a signature that is not 128 hex digits, a body that is not UTF-8, longer than 4,096 bytes or not a paid notification"),
        (status = 403, body = ErrorBody, description = "the signature does not verify with the provider's key: forged or altered"),
        (status = 404, body = ErrorBody, description = "no such order"),
        (status = 409, body = ErrorBody, description = "another amount than the order's, another provider's order, or an order closed before it was paid: nothing booked"),
        (status = 413, body = ErrorBody, description = "far longer than a notification (over 64 KiB)"),
        (status = 503, body = ErrorBody, description = "the database failed or was busy: send it again"),
    ))]
async fn notification(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<NotificationAnswer>, ApiError> {
    let bad =
        |message: String| ApiError::Refused { status: StatusCode::BAD_REQUEST, code: "bad_notification", message };
    let body =
        body.map_err(|rejection| ApiError::BadBody { status: rejection.status(), message: rejection.body_text() })?;
    let signature = headers
        .get(SIGNATURE_HEADER)
        .ok_or_else(|| bad("the Yitong-Signature header is missing".into()))?
        .to_str()
        .map_err(|_| bad("the Yitong-Signature header is not text".into()))?
        .trim()
        .to_owned();
    let body = String::from_utf8(body.to_vec()).map_err(|_| bad("the notification is not UTF-8".into()))?;
    let signed = SignedNotification { body, signature };
    let payments = &state.services().payments;
    let outcome = payments.handle_notification(&signed, state.now_ms()).await.map_err(|error| match error {
        ServiceError::Notification(NotificationError::BadSignature) => {
            ApiError::Refused { status: StatusCode::FORBIDDEN, code: "bad_signature", message: error.to_string() }
        }
        ServiceError::Notification(_) => bad(error.to_string()),
        ServiceError::AmountMismatch { .. } => {
            ApiError::Refused { status: StatusCode::CONFLICT, code: "amount_mismatch", message: error.to_string() }
        }
        other => payment_error(other),
    })?;
    let (outcome, order) = match outcome {
        NotificationOutcome::Paid(order) => ("paid", order),
        NotificationOutcome::Duplicate(order) => ("duplicate", order),
    };
    Ok(Json(NotificationAnswer { outcome: outcome.to_owned(), order: OrderInfo::from(&order) }))
}
