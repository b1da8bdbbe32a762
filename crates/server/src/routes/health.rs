//! Liveness and the metrics exposition.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_platform::ledger::Account;
use yitong_platform::store::Backend;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// `/healthz`, `/metrics`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(metrics))
}

/// The service is up and its database answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` (an unreachable database is a 503 instead).
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub database: &'static str,
}

/// Liveness: answers 200 once the database answers a query.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody, description = "the database does not answer")))]
async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    // The cheapest read that goes through the pool to the database: an account balance.
    state.store().balance(&Account::FeeRevenue).await?;
    let database = match state.store().backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    Ok(Json(Health { status: "ok", database }))
}

/// Request counters per method, route and status, and the back office's upload queue, Prometheus
/// text format.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, content_type = "text/plain; version=0.0.4", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics().render() + &crate::metrics::render_ingest(&state.uploads().stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text)
}
