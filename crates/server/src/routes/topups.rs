//! Over-the-air top-up on HTTP: open a top-up order, then the phone carries the platform's
//! commands to its SE and the card's answers back — INITIALIZE FOR LOAD's answer to
//! `authorize` (MAC1 checked, MAC2 made: the CREDIT FOR LOAD command), CREDIT's answer to
//! `complete` (TAC verified: loaded). The domain is the platform's `OtaService`; this module
//! parses, calls and maps errors. Also the DEVELOPMENT-ONLY endpoint that makes the simulated
//! provider pay an order.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_platform::ledger::{CardId, Fen};
use yitong_platform::ota::TopUpError;
use yitong_platform::payments::{MerchantOrderId, NewOrder, Order, OrderKind, PayOutcome, PaymentError, ServiceError};

use crate::error::{field, hex_field, ApiError, ApiJson, ApiPath, ErrorBody};
use crate::routes::cards::order_id;
use crate::state::AppState;

/// Largest top-up accepted, fen (10,000 yuan): a bound on input; the card itself refuses a load
/// over its balance limit.
pub const TOPUP_FEN_MAX: i64 = 1_000_000;

/// `/v1/topups…` and `/v1/dev/orders/{id}/pay`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_topup))
        .routes(routes!(authorize))
        .routes(routes!(complete))
        .routes(routes!(dev_pay))
}

/// A payment order as the phone sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderInfo {
    /// The order ID.
    pub order_id: String,
    /// `top_up` or `sign_up_fee`.
    pub kind: String,
    /// What the rider pays, fen.
    pub amount_fen: i64,
    /// `created`, `paid`, `loading`, `loaded`, `issuing`, `issued`, `refund_pending`,
    /// `refunded` or `closed`.
    pub state: String,
    /// The card it loads or was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    /// The payment provider.
    pub provider: String,
}

impl From<&Order> for OrderInfo {
    fn from(order: &Order) -> Self {
        OrderInfo {
            order_id: order.merchant_order_id.as_str().to_owned(),
            kind: order.kind.name().to_owned(),
            amount_fen: order.amount.get(),
            state: order.state.name().to_owned(),
            card: order.card_id.as_ref().map(|c| c.as_str().to_owned()),
            provider: order.provider.clone(),
        }
    }
}

/// A top-up to open.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TopUpRequest {
    /// The card's serial, 20 hex digits (as `POST /v1/cards` answered).
    pub card: String,
    /// Amount, fen, 1 to 1,000,000.
    pub amount_fen: i64,
    /// The order ID, made by the phone (6 to 32 of `A-Z a-z 0-9 _ -`); a repeated request with
    /// the same ID, card and amount answers the same order.
    pub order_id: String,
}

/// An opened top-up order.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopUpOrder {
    /// The order to pay.
    pub order: OrderInfo,
    /// The INITIALIZE FOR LOAD the phone sends its card once the order is paid, hex.
    pub initialize_command: String,
}

/// A card's answer, hex: data and status word.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CardAnswerBody {
    /// The card's whole answer, hex (data then `9000`).
    pub answer: String,
}

/// What the phone sends its card next.
#[derive(Debug, Serialize, ToSchema)]
pub struct Authorization {
    /// The load's record ID (`<terminal ID>-<number>`).
    pub tap_id: String,
    /// Our terminal ID, hex.
    pub terminal_id: String,
    /// The CREDIT FOR LOAD command, hex.
    pub credit_command: String,
}

/// A load done.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoadedAnswer {
    /// The order, `loaded`.
    pub order: OrderInfo,
    /// The load record's ID.
    pub tap_id: String,
    /// The card's balance after the load, fen.
    pub balance_after_fen: i64,
    /// The card's online counter of the load.
    pub counter: u16,
    /// The verified TAC, hex.
    pub tac: String,
}

/// Opens a top-up order of a card issued here.
#[utoipa::path(post, path = "/v1/topups", tag = "topups", request_body = TopUpRequest,
    responses(
        (status = 201, body = TopUpOrder, description = "the order (state `created`) and the INITIALIZE FOR LOAD to send once it is paid"),
        (status = 400, body = ErrorBody, description = "a field is missing or malformed, or the amount is out of range"),
        (status = 404, body = ErrorBody, description = "no such card"),
        (status = 409, body = ErrorBody, description = "the order ID is taken by another order"),
        (status = 502, body = ErrorBody, description = "the payment provider failed; repeat the request"),
    ))]
async fn open_topup(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<TopUpRequest>,
) -> Result<(StatusCode, Json<TopUpOrder>), ApiError> {
    let id = order_id("order_id", &body.order_id)?;
    let card = CardId::parse(field("card", &body.card)?)
        .map_err(|e| ApiError::BadField { name: "card", message: e.to_string() })?;
    if !(1..=TOPUP_FEN_MAX).contains(&body.amount_fen) {
        return Err(ApiError::BadField {
            name: "amount_fen",
            message: format!("{} is not 1 to {TOPUP_FEN_MAX} fen", body.amount_fen),
        });
    }
    let amount = Fen::new(body.amount_fen)
        .ok_or_else(|| ApiError::BadField { name: "amount_fen", message: "negative".into() })?;
    let services = state.services();
    if state.store().phone_card(&card).await?.is_none() {
        return Err(ApiError::NotFound(format!("no card {card} was issued here")));
    }
    let new = NewOrder {
        merchant_order_id: id.clone(),
        kind: OrderKind::TopUp,
        card_id: Some(card.clone()),
        amount,
        description: format!("top-up of card {card}"),
    };
    let order = services.payments.open_order(new, state.now_ms()).await.map_err(payment_error)?;
    let command = services.ota.initialize_command(&services.payments, &id).await.map_err(topup_error)?;
    Ok((
        StatusCode::CREATED,
        Json(TopUpOrder { order: OrderInfo::from(&order), initialize_command: hex::encode_upper(command) }),
    ))
}

/// Step 2: the card's INITIALIZE FOR LOAD answer; answers the CREDIT FOR LOAD to send.
#[utoipa::path(post, path = "/v1/topups/{id}/authorize", tag = "topups", request_body = CardAnswerBody,
    params(("id" = String, Path, description = "the top-up order ID")),
    responses(
        (status = 200, body = Authorization, description = "MAC1 verified; the load is recorded in doubt until `complete`"),
        (status = 400, body = ErrorBody, description = "the answer is not hex, or the ID malformed"),
        (status = 404, body = ErrorBody, description = "no such top-up order, or its card is unknown"),
        (status = 409, body = ErrorBody, description = "the order is not paid, is loaded already, or a load of the card is in doubt"),
        (status = 422, body = ErrorBody, description = "the card's answer is malformed, not a success, or its MAC1 does not verify"),
    ))]
async fn authorize(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CardAnswerBody>,
) -> Result<Json<Authorization>, ApiError> {
    let id = path_order_id(&id)?;
    let answer = hex_field("answer", &body.answer)?;
    let services = state.services();
    let authorization = services
        .ota
        .authorize(&services.payments, &id, &answer, state.now(), state.now_ms())
        .await
        .map_err(topup_error)?;
    Ok(Json(Authorization {
        tap_id: authorization.tap_id,
        terminal_id: hex::encode_upper(authorization.terminal_id),
        credit_command: hex::encode_upper(&authorization.credit_command),
    }))
}

/// Step 3: the card's CREDIT FOR LOAD answer (TAC); records the load.
#[utoipa::path(post, path = "/v1/topups/{id}/complete", tag = "topups", request_body = CardAnswerBody,
    params(("id" = String, Path, description = "the top-up order ID")),
    responses(
        (status = 200, body = LoadedAnswer, description = "TAC verified: the order is `loaded` (repeating answers the same)"),
        (status = 400, body = ErrorBody, description = "the answer is not hex, or the ID malformed"),
        (status = 404, body = ErrorBody, description = "no such top-up order"),
        (status = 409, body = ErrorBody, description = "no load of the order was authorized, or it is unconfirmed"),
        (status = 422, body = ErrorBody, description = "the answer is malformed or its TAC does not verify (the load stays in doubt)"),
    ))]
async fn complete(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CardAnswerBody>,
) -> Result<Json<LoadedAnswer>, ApiError> {
    let id = path_order_id(&id)?;
    let answer = hex_field("answer", &body.answer)?;
    let services = state.services();
    let loaded = services.ota.complete(&services.payments, &id, &answer, state.now_ms()).await.map_err(topup_error)?;
    Ok(Json(LoadedAnswer {
        order: OrderInfo::from(&loaded.order),
        tap_id: loaded.record.tap_id().to_string(),
        balance_after_fen: loaded.record.balance_after_fen,
        counter: loaded.record.counter,
        tac: loaded.record.tac.map(hex::encode_upper).unwrap_or_default(),
    }))
}

/// DEVELOPMENT ONLY: the simulated payment provider's rider pays the order, and its signed
/// paid-notification is delivered to the service, as a real provider's callback would be.
/// A real provider has no such endpoint.
#[utoipa::path(post, path = "/v1/dev/orders/{id}/pay", tag = "development",
    description = "DEVELOPMENT ONLY: makes the built-in simulated payment provider pay the order \
                   and delivers its signed paid-notification. Not part of a production API.",
    params(("id" = String, Path, description = "the order ID (a top-up or a sign-up fee)")),
    responses(
        (status = 200, body = OrderInfo, description = "the order, now `paid`"),
        (status = 400, body = ErrorBody, description = "the ID is malformed"),
        (status = 404, body = ErrorBody, description = "no such order"),
        (status = 409, body = ErrorBody, description = "the order was paid, declined or closed already"),
    ))]
async fn dev_pay(State(state): State<AppState>, ApiPath(id): ApiPath<String>) -> Result<Json<OrderInfo>, ApiError> {
    let id = path_order_id(&id)?;
    let services = state.services();
    services.payments.order(&id).await.map_err(payment_error)?;
    let now_ms = state.now_ms();
    match services.provider.pay(&id, now_ms) {
        PayOutcome::Paid { .. } => {}
        PayOutcome::Declined | PayOutcome::NotPayable => {
            let order = services.payments.order(&id).await.map_err(payment_error)?;
            return Err(ApiError::Refused {
                status: StatusCode::CONFLICT,
                code: "order_conflict",
                message: format!("order {id} is {} and cannot be paid", order.state.name()),
            });
        }
    }
    // The callback: every queued notification (another order's too, as a provider would send it).
    while let Some(notification) = services.provider.poll_notification() {
        services.payments.handle_notification(&notification, now_ms).await.map_err(payment_error)?;
    }
    // A lost notification (none with the fault-free provider) is found by polling the order.
    let order = services.payments.reconcile(&id, now_ms).await.map_err(payment_error)?;
    Ok(Json(OrderInfo::from(&order)))
}

fn path_order_id(text: &str) -> Result<MerchantOrderId, ApiError> {
    MerchantOrderId::parse(text.trim()).map_err(|e| ApiError::BadPath(format!("order ID: {e}")))
}

/// The one place payment errors become statuses.
pub(crate) fn payment_error(error: ServiceError) -> ApiError {
    let message = error.to_string();
    let refused = |status, code| ApiError::Refused { status, code, message: message.clone() };
    match error {
        ServiceError::Store(inner) => ApiError::Store(inner),
        ServiceError::OrderNotFound(_) => ApiError::NotFound(message),
        ServiceError::OrderIdConflict(_) | ServiceError::Provider(PaymentError::OrderIdConflict(_)) => {
            refused(StatusCode::CONFLICT, "order_id_taken")
        }
        ServiceError::Transition(_) | ServiceError::WrongProvider(_) => refused(StatusCode::CONFLICT, "order_conflict"),
        ServiceError::BadOrder(_) => refused(StatusCode::BAD_REQUEST, "bad_order"),
        ServiceError::Provider(PaymentError::BadOrderId(_)) => refused(StatusCode::BAD_REQUEST, "bad_order"),
        ServiceError::Provider(_) => refused(StatusCode::BAD_GATEWAY, "provider_failed"),
        _ => {
            tracing::error!(%message, "payment");
            refused(StatusCode::BAD_GATEWAY, "provider_failed")
        }
    }
}

/// The one place top-up errors become statuses.
fn topup_error(error: TopUpError) -> ApiError {
    let message = error.to_string();
    let refused = |status, code| ApiError::Refused { status, code, message: message.clone() };
    match error {
        TopUpError::NotATopUp(_) | TopUpError::UnknownCard(_) => ApiError::NotFound(message),
        TopUpError::NotPayable { .. } => refused(StatusCode::CONFLICT, "order_not_paid"),
        TopUpError::AlreadyLoaded(_) => refused(StatusCode::CONFLICT, "already_loaded"),
        TopUpError::LoadInDoubt { .. } => refused(StatusCode::CONFLICT, "load_in_doubt"),
        TopUpError::LoadUnconfirmed(_) => refused(StatusCode::CONFLICT, "load_unconfirmed"),
        TopUpError::NoLoad(_) => refused(StatusCode::CONFLICT, "no_load"),
        TopUpError::BadAnswer { .. }
        | TopUpError::Mac1Invalid
        | TopUpError::Tac(_)
        | TopUpError::EvidenceIncomplete(_) => refused(StatusCode::UNPROCESSABLE_ENTITY, "card_answer_rejected"),
        TopUpError::Keys(_) => refused(StatusCode::UNPROCESSABLE_ENTITY, "unknown_card_key"),
        TopUpError::Payment(inner) => payment_error(inner),
        TopUpError::Store(inner) => ApiError::Store(inner),
        _ => {
            tracing::error!(%message, "top-up");
            refused(StatusCode::SERVICE_UNAVAILABLE, "cannot_load")
        }
    }
}
