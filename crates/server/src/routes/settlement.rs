//! `GET /v1/operator/settlement`: a business day's clearing report (who owes whom among the
//! cities' issuers and operators, the totals, the reconciliation) as JSON or CSV, and `GET
//! /v1/operator/ridership`: the day's taps per station per hour, origin–destination journeys and
//! revenue per line and operator — for the clearing house's key (a city's is 403): they span
//! every participant.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_clearing::settlement::{BusinessDay, CutOver};
use yitong_platform::settlement::{ridership_day, settle_day, SettlementError};

use crate::auth::ClearingHouse;
use crate::error::{optional, required, ApiError, ApiQuery, ErrorBody};
use crate::state::AppState;

/// `/v1/operator/settlement`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(settlement)).routes(routes!(ridership))
}

/// The day asked about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SettlementQuery {
    /// The business day, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// When a business day starts, local time `HH:MM` (default `04:00`).
    pub cut_over: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// The day's clearing report (docs/backoffice.md, "Clearing and settlement").
#[utoipa::path(get, path = "/v1/operator/settlement", tag = "operator", params(SettlementQuery),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "the report: JSON (`format=json`) or CSV with a section column (`format=csv`)",
            content((Object = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody, description = "`date`, `cut_over` or `format` is missing or malformed"),
        (status = 401, body = ErrorBody, description = "no valid operator key"),
        (status = 403, body = ErrorBody, description = "a city's key: this reads across cities (the clearing house's key)"),
    ))]
async fn settlement(
    State(state): State<AppState>,
    ClearingHouse(_): ClearingHouse,
    ApiQuery(query): ApiQuery<SettlementQuery>,
) -> Result<Response, ApiError> {
    let day = business_day(&query.date, &query.cut_over)?;
    let csv = match optional("format", &query.format)? {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::BadParameter { name: "format", message: format!("`{other}` is not json or csv") })
        }
    };
    super::clearing::feed_platform_records(&state).await;
    let report = settle_day(state.store(), state.cities(), day).await.map_err(settlement_error)?;
    Ok(if csv {
        ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], report.to_csv()).into_response()
    } else {
        Json(report).into_response()
    })
}

/// The day asked about.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RidershipQuery {
    /// The business day, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// When a business day starts, local time `HH:MM` (default `04:00`).
    pub cut_over: Option<String>,
}

/// The day's ridership from its cleared rides (docs/backoffice.md, "Ridership").
#[utoipa::path(get, path = "/v1/operator/ridership", tag = "operator", params(RidershipQuery),
    security(("operator_key" = [])),
    responses(
        (status = 200, body = Object, description = "`{station_hours: [{city_code, station_code, station, hour, entries, exits}], journeys: [{city_code, from_code, from, to_code, to, journeys, fares_fen}], unmatched_exits, lines: [{operator, line, rides, amount_fen}], operators: [{operator, rides, amount_fen}]}`"),
        (status = 400, body = ErrorBody, description = "`date` or `cut_over` is missing or malformed"),
        (status = 401, body = ErrorBody, description = "no valid operator key"),
        (status = 403, body = ErrorBody, description = "a city's key: this reads across cities (the clearing house's key)"),
    ))]
async fn ridership(
    State(state): State<AppState>,
    ClearingHouse(_): ClearingHouse,
    ApiQuery(query): ApiQuery<RidershipQuery>,
) -> Result<Response, ApiError> {
    let day = business_day(&query.date, &query.cut_over)?;
    let stats = ridership_day(state.store(), state.cities(), day).await.map_err(settlement_error)?;
    Ok(Json(stats).into_response())
}

/// The business day of the `date` and `cut_over` parameters.
fn business_day(date: &Option<String>, cut_over: &Option<String>) -> Result<BusinessDay, ApiError> {
    let cut_over = match optional("cut_over", cut_over)? {
        Some(text) => {
            text.parse::<CutOver>().map_err(|e| ApiError::BadParameter { name: "cut_over", message: e.to_string() })?
        }
        None => CutOver::default(),
    };
    let date = required("date", date)?;
    BusinessDay::parse(date, cut_over).map_err(|e| ApiError::BadParameter { name: "date", message: e.to_string() })
}

fn settlement_error(error: SettlementError) -> ApiError {
    match error {
        SettlementError::Store(inner) => ApiError::Store(inner),
        other => {
            tracing::error!(error = %other, "settlement");
            ApiError::Refused {
                status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
                code: "cannot_settle",
                message: other.to_string(),
            }
        }
    }
}
