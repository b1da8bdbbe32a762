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
use yitong_platform::access::RegisteredPhone;
use yitong_platform::ledger::{CardId, Fen};
use yitong_platform::ota::{
    CardEvidence, OrderWithCard, Reconciled, TopUpError, WhenNotLoaded, EVIDENCE_LOG_RECORDS_MAX,
};
use yitong_platform::payments::{MerchantOrderId, NewOrder, Order, OrderKind, PayOutcome, PaymentError, ServiceError};

use crate::auth::PhoneCaller;
use crate::error::{field, hex_field, ApiError, ApiJson, ApiPath, ErrorBody};
use crate::routes::cards::{order_id, own_card};
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
        .routes(routes!(evidence))
        .routes(routes!(reconcile))
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
    security(("phone_token" = [])),
    responses(
        (status = 201, body = TopUpOrder, description = "the order (state `created`) and the INITIALIZE FOR LOAD to send once it is paid"),
        (status = 400, body = ErrorBody, description = "a field is missing or malformed, or the amount is out of range"),
        (status = 401, body = ErrorBody, description = "no valid phone token"),
        (status = 404, body = ErrorBody, description = "no such card of this phone"),
        (status = 409, body = ErrorBody, description = "the order ID is taken by another order"),
        (status = 502, body = ErrorBody, description = "the payment provider failed; repeat the request"),
    ))]
async fn open_topup(
    State(state): State<AppState>,
    PhoneCaller(caller): PhoneCaller,
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
    let phone_card = own_card(&state, &caller, &card).await?;
    let new = NewOrder {
        merchant_order_id: id.clone(),
        kind: OrderKind::TopUp,
        card_id: Some(card.clone()),
        amount,
        description: format!("top-up of card {card}"),
    };
    let order = services.payments.open_order(new, state.now_ms()).await.map_err(payment_error)?;
    let read = OrderWithCard { order: order.clone(), card: phone_card };
    let command = services.ota.initialize_command_for(read).map_err(topup_error)?;
    Ok((
        StatusCode::CREATED,
        Json(TopUpOrder { order: OrderInfo::from(&order), initialize_command: hex::encode_upper(command) }),
    ))
}

/// Step 2: the card's INITIALIZE FOR LOAD answer; answers the CREDIT FOR LOAD to send.
#[utoipa::path(post, path = "/v1/topups/{id}/authorize", tag = "topups", request_body = CardAnswerBody,
    security(("phone_token" = [])),
    params(("id" = String, Path, description = "the top-up order ID")),
    responses(
        (status = 200, body = Authorization, description = "MAC1 verified; the load is recorded in doubt until `complete`"),
        (status = 400, body = ErrorBody, description = "the answer is not hex, or the ID malformed"),
        (status = 401, body = ErrorBody, description = "no valid phone token"),
        (status = 404, body = ErrorBody, description = "no such top-up order of this phone's cards"),
        (status = 409, body = ErrorBody, description = "the order is not paid, is loaded already, or a load of the card is in doubt"),
        (status = 422, body = ErrorBody, description = "the card's answer is malformed, not a success, or its MAC1 does not verify"),
    ))]
async fn authorize(
    State(state): State<AppState>,
    PhoneCaller(caller): PhoneCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CardAnswerBody>,
) -> Result<Json<Authorization>, ApiError> {
    let read = own_order(&state, &caller, &id).await?;
    let answer = hex_field("answer", &body.answer)?;
    let services = state.services();
    let authorization = services
        .ota
        .authorize_for(&services.payments, read, &answer, state.now(), state.now_ms())
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
    security(("phone_token" = [])),
    params(("id" = String, Path, description = "the top-up order ID")),
    responses(
        (status = 200, body = LoadedAnswer, description = "TAC verified: the order is `loaded` (repeating answers the same)"),
        (status = 400, body = ErrorBody, description = "the answer is not hex, or the ID malformed"),
        (status = 401, body = ErrorBody, description = "no valid phone token"),
        (status = 404, body = ErrorBody, description = "no such top-up order of this phone's cards"),
        (status = 409, body = ErrorBody, description = "no load of the order was authorized, or it is unconfirmed"),
        (status = 422, body = ErrorBody, description = "the answer is malformed or its TAC does not verify (the load stays in doubt)"),
    ))]
async fn complete(
    State(state): State<AppState>,
    PhoneCaller(caller): PhoneCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<CardAnswerBody>,
) -> Result<Json<LoadedAnswer>, ApiError> {
    let read = own_order(&state, &caller, &id).await?;
    let answer = hex_field("answer", &body.answer)?;
    let services = state.services();
    let loaded =
        services.ota.complete_for(&services.payments, read, &answer, state.now_ms()).await.map_err(topup_error)?;
    Ok(Json(LoadedAnswer {
        order: OrderInfo::from(&loaded.order),
        tap_id: loaded.record.tap_id().to_string(),
        balance_after_fen: loaded.record.balance_after_fen,
        counter: loaded.record.counter,
        tac: loaded.record.tac.map(hex::encode_upper).unwrap_or_default(),
    }))
}

/// The commands that gather the card's evidence about the order's load: GET TRANSACTION PROVE
/// for its counter and READ RECORD of EF18 (null and empty when no MAC2 of the order is
/// outstanding or settled), and a fresh INITIALIZE FOR LOAD.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceCommands {
    /// GET TRANSACTION PROVE for the load's counter, hex; null when no load was authorized.
    pub prove: Option<String>,
    /// READ RECORD of EF18, records 1 to 10 (newest first), hex.
    pub log: Vec<String>,
    /// INITIALIZE FOR LOAD of the order's amount with our terminal ID, hex.
    pub initialize: String,
}

/// The card's answers to the evidence commands, each whole (data and status word), hex.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ReconcileRequest {
    /// The answer to GET TRANSACTION PROVE (any status word), or null.
    #[serde(default)]
    pub prove: Option<String>,
    /// The answers to READ RECORD of EF18, in the order sent (at most 10).
    #[serde(default)]
    pub log: Vec<String>,
    /// The answer to the fresh INITIALIZE FOR LOAD, or null; needed to prove "not loaded".
    #[serde(default)]
    pub initialize: Option<String>,
    /// What to do if the card proves the load did not happen: `load_again` or `refund`.
    pub when_not_loaded: String,
}

/// What the card's evidence decided.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ReconcileAnswer {
    /// The card has the load (its proof's TAC verified, or its log shows it): the order is `loaded`.
    Loaded {
        /// The order, `loaded`.
        order: OrderInfo,
        /// The load record's ID.
        tap_id: String,
        /// The card's balance after the load, fen.
        balance_after_fen: i64,
        /// The card's online counter of the load.
        counter: u16,
        /// The verified TAC, hex; empty when the load was found in the card's log.
        tac: String,
    },
    /// Proven not loaded (the card's counter, under a verified MAC1): send this CREDIT FOR LOAD,
    /// then `complete` as after `authorize`.
    LoadAgain {
        /// The order, `loading`.
        order: OrderInfo,
        /// The new load's record ID.
        tap_id: String,
        /// Our terminal ID, hex.
        terminal_id: String,
        /// The CREDIT FOR LOAD command, hex.
        credit_command: String,
    },
    /// Proven not loaded: the order is refunded (or its refund pending at the provider).
    Refunded {
        /// The order.
        order: OrderInfo,
    },
    /// The card can no longer tell (its counter moved, nothing shows our load): the load is
    /// handed on `unconfirmed`, the order stays `loading`, its money held; the issuer settles it.
    Unconfirmed {
        /// The order, `loading`.
        order: OrderInfo,
        /// The unconfirmed load record's ID.
        tap_id: String,
    },
    /// Nothing of the order was in doubt (completed before, or never authorized).
    NothingInDoubt {
        /// The order.
        order: OrderInfo,
    },
}

/// The commands the phone sends its card to settle the order's load in doubt.
#[utoipa::path(get, path = "/v1/topups/{id}/evidence", tag = "topups",
    security(("phone_token" = [])),
    params(("id" = String, Path, description = "the top-up order ID")),
    responses(
        (status = 200, body = EvidenceCommands, description = "the APDUs to send, hex"),
        (status = 400, body = ErrorBody, description = "the ID is malformed"),
        (status = 401, body = ErrorBody, description = "no valid phone token"),
        (status = 404, body = ErrorBody, description = "no such top-up order of this phone's cards"),
    ))]
async fn evidence(
    State(state): State<AppState>,
    PhoneCaller(caller): PhoneCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EvidenceCommands>, ApiError> {
    let read = own_order(&state, &caller, &id).await?;
    let id = read.order.merchant_order_id.clone();
    let services = state.services();
    let (prove, log) = match services.ota.evidence_commands(&services.payments, &id).await {
        Ok((prove, log)) => (Some(hex::encode_upper(prove)), log.iter().map(hex::encode_upper).collect()),
        Err(TopUpError::NoLoad(_)) => (None, Vec::new()),
        Err(error) => return Err(topup_error(error)),
    };
    let initialize = services.ota.initialize_command_for(read).map_err(topup_error)?;
    Ok(Json(EvidenceCommands { prove, log, initialize: hex::encode_upper(initialize) }))
}

/// Settles the order's load from the card's evidence (see docs/platform.md, "Over-the-air top-up").
#[utoipa::path(post, path = "/v1/topups/{id}/reconcile", tag = "topups", request_body = ReconcileRequest,
    security(("phone_token" = [])),
    params(("id" = String, Path, description = "the top-up order ID")),
    responses(
        (status = 200, body = ReconcileAnswer, description = "`loaded`, `load_again`, `refunded`, `unconfirmed` or `nothing_in_doubt`"),
        (status = 400, body = ErrorBody, description = "an answer is not hex, more than 10 log answers, or `when_not_loaded` unknown"),
        (status = 401, body = ErrorBody, description = "no valid phone token"),
        (status = 404, body = ErrorBody, description = "no such top-up order of this phone's cards"),
        (status = 409, body = ErrorBody, description = "the load was handed on unconfirmed before, or another load of the card is in doubt"),
        (status = 422, body = ErrorBody, description = "the evidence proves nothing (`evidence_incomplete`: no proof or log of the load and no fresh INITIALIZE whose MAC1 verifies), or an answer is malformed"),
    ))]
async fn reconcile(
    State(state): State<AppState>,
    PhoneCaller(caller): PhoneCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReconcileRequest>,
) -> Result<Json<ReconcileAnswer>, ApiError> {
    let id = own_order(&state, &caller, &id).await?.order.merchant_order_id;
    let when_not_loaded = match body.when_not_loaded.trim() {
        "load_again" => WhenNotLoaded::LoadAgain,
        "refund" => WhenNotLoaded::Refund,
        other => {
            return Err(ApiError::BadField {
                name: "when_not_loaded",
                message: format!("`{other}` is not load_again or refund"),
            })
        }
    };
    if body.log.len() > EVIDENCE_LOG_RECORDS_MAX {
        return Err(ApiError::BadField {
            name: "log",
            message: format!("{} answers, at most {EVIDENCE_LOG_RECORDS_MAX}", body.log.len()),
        });
    }
    let optional = |name, value: &Option<String>| match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(text) => hex_field(name, text).map(Some),
        None => Ok(None),
    };
    let evidence = CardEvidence {
        prove: optional("prove", &body.prove)?,
        log: body.log.iter().map(|answer| hex_field("log", answer)).collect::<Result<_, _>>()?,
        initialize: optional("initialize", &body.initialize)?,
    };
    let services = state.services();
    let reconciled = services
        .ota
        .reconcile(&services.payments, &id, &evidence, when_not_loaded, state.now(), state.now_ms())
        .await
        .map_err(topup_error)?;
    Ok(Json(match reconciled {
        Reconciled::Loaded { record, order } => ReconcileAnswer::Loaded {
            order: OrderInfo::from(order.as_ref()),
            tap_id: record.tap_id().to_string(),
            balance_after_fen: record.balance_after_fen,
            counter: record.counter,
            tac: record.tac.map(hex::encode_upper).unwrap_or_default(),
        },
        Reconciled::LoadAgain(authorization) => ReconcileAnswer::LoadAgain {
            order: OrderInfo::from(&services.payments.order(&id).await.map_err(payment_error)?),
            tap_id: authorization.tap_id,
            terminal_id: hex::encode_upper(authorization.terminal_id),
            credit_command: hex::encode_upper(&authorization.credit_command),
        },
        Reconciled::Refunded(order) => ReconcileAnswer::Refunded { order: OrderInfo::from(order.as_ref()) },
        Reconciled::Unconfirmed(record) => ReconcileAnswer::Unconfirmed {
            order: OrderInfo::from(&services.payments.order(&id).await.map_err(payment_error)?),
            tap_id: record.tap_id().to_string(),
        },
        Reconciled::NothingInDoubt(order) => ReconcileAnswer::NothingInDoubt { order: OrderInfo::from(order.as_ref()) },
    }))
}

/// The top-up order `text` of one of the calling phone's cards: another phone's order is "not
/// found", as an unknown one.
async fn own_order(state: &AppState, caller: &RegisteredPhone, text: &str) -> Result<OrderWithCard, ApiError> {
    let id = path_order_id(text)?;
    let services = state.services();
    // A transfer's funded load order is loaded by the same steps as a top-up.
    match services.ota.order_with_card(&services.payments, &id).await {
        Ok(read) if read.card.device_id == caller.phone.device_id => Ok(read),
        Ok(_) | Err(TopUpError::NotATopUp(_) | TopUpError::UnknownCard(_)) => {
            Err(ApiError::NotFound(format!("no top-up order {id} of this phone")))
        }
        Err(error) => Err(topup_error(error)),
    }
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
    let (outcome, order) = services.payments.pay_simulated(&id, state.now_ms()).await.map_err(payment_error)?;
    match outcome {
        PayOutcome::Paid { .. } => Ok(Json(OrderInfo::from(&order))),
        PayOutcome::Declined | PayOutcome::NotPayable => Err(ApiError::Refused {
            status: StatusCode::CONFLICT,
            code: "order_conflict",
            message: format!("order {id} is {} and cannot be paid", order.state.name()),
        }),
    }
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
        TopUpError::BadAnswer { .. } | TopUpError::Mac1Invalid | TopUpError::Tac(_) => {
            refused(StatusCode::UNPROCESSABLE_ENTITY, "card_answer_rejected")
        }
        TopUpError::EvidenceIncomplete(_) => refused(StatusCode::UNPROCESSABLE_ENTITY, "evidence_incomplete"),
        TopUpError::Keys(_) => refused(StatusCode::UNPROCESSABLE_ENTITY, "unknown_card_key"),
        TopUpError::Payment(inner) => payment_error(inner),
        TopUpError::Store(inner) => ApiError::Store(inner),
        _ => {
            tracing::error!(%message, "top-up");
            refused(StatusCode::SERVICE_UNAVAILABLE, "cannot_load")
        }
    }
}
