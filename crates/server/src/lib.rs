//! The wallet platform's HTTP service: axum routes over the `yitong-platform` domain, one
//! router per module, the state ([`AppState`]: store, cities, device catalogue, pricing, clock)
//! injected once, every error one JSON shape ([`ApiError`] → `{code, message}`, bad input a
//! 4xx naming the field), structured logs (`tracing`), `/healthz`, Prometheus `/metrics`, and an
//! OpenAPI document at `/openapi.json` generated from the handlers.
//!
//! The principal function is [`router`]; [`serve`] runs it on a socket until a shutdown signal.
//! What it serves: device eligibility and the catalogue, the cities and their sign-up fee
//! quotes, card issuance (`routes::cards`) and over-the-air top-up (`routes::topups`) over the
//! built-in simulated payment provider (its signed paid-notification callback at
//! `routes::payments`), with a DEVELOPMENT-ONLY endpoint that pays an order;
//! phones registered with a bearer token (`routes::phones`, [`auth`]) see and act on their own
//! cards only, operators with an API key on their city's. Its issuer keys come from a keys
//! directory or are development keys made once into the data directory ([`KeySource`]),
//! never returned or logged. Beside the routes, [`serve`] runs the payments' reconciliation
//! rounds ([`reconciler`]): late notifications polled, expired orders closed, refunds pushed.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let store = yitong_platform::store::Store::open("sqlite:/tmp/platform.sqlite").await?;
//! let keys = yitong_server::KeySource::Development("/tmp/yitong".into());
//! let state = yitong_server::AppState::builtin(store, Arc::new(yitong_server::SystemClock), keys)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! yitong_server::serve(listener, state, yitong_server::shutdown_signal()).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod auth;
pub mod error;
pub mod metrics;
pub mod reconciler;
pub mod routes;
pub mod services;
pub mod state;

use std::future::Future;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use auth::SecuritySchemes;
pub use error::{ApiError, ErrorBody};
pub use state::{Additions, AppState, Clock, FixedClock, KeySource, StateError, SystemClock};

/// The document's header; the paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Yitong wallet platform",
        description = "Device eligibility, cities, sign-up fees, card issuance, over-the-air top-up, card transfer and deletion of phone transit cards."
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

/// Every route with its OpenAPI description, before the state is given.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::health::router())
        .merge(routes::devices::router())
        .merge(routes::cities::router())
        .merge(routes::cards::router())
        .merge(routes::topups::router())
        .merge(routes::payments::router())
        .merge(routes::closures::router())
        .merge(routes::hotlist::router())
        .merge(routes::clearing::router())
        .merge(routes::settlement::router())
        .merge(routes::phones::router())
        .merge(routes::operator::router())
}

/// The OpenAPI document of every route (what `/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    with_common_responses(routes().into_openapi())
}

/// Adds what every route with a JSON body answers and its own annotation need not repeat:
/// `415` when the body is not sent as `application/json` (`ApiError::BadBody`).
fn with_common_responses(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
    for item in document.paths.paths.values_mut() {
        for operation in [&mut item.post, &mut item.put, &mut item.patch].into_iter().flatten() {
            if operation.request_body.is_some() {
                operation.responses.responses.entry("415".to_owned()).or_insert_with(|| {
                    let body = Content::new(Some(Ref::from_schema_name("ErrorBody")));
                    RefOr::T(
                        ResponseBuilder::new()
                            .description("the body is not sent as `application/json`")
                            .content("application/json", body)
                            .build(),
                    )
                });
            }
        }
    }
    document
}

/// The whole service over `state`: the routes, `/openapi.json`, JSON errors for unknown paths
/// and methods, and the middleware that counts and logs each request.
pub fn router(state: AppState) -> Router {
    let (router, document) = routes().split_for_parts();
    let document = with_common_responses(document).to_pretty_json().expect("the OpenAPI document serializes");
    router
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document.clone()) }),
        )
        .fallback(|| async { ApiError::NoRoute.into_response() })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() })
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` completes; requests in flight finish first.
/// The payments' reconciliation rounds ([`reconciler`]) run beside it, every
/// [`RECONCILE_EVERY`](reconciler::RECONCILE_EVERY), and stop after it.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_rounds(listener, state, shutdown, reconciler::RECONCILE_EVERY).await
}

/// [`serve`] with the reconciliation rounds every `rounds` (tests).
pub async fn serve_with_rounds(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    rounds: std::time::Duration,
) -> std::io::Result<()> {
    // Each answer goes out at once, not held back for more to send with it (Nagle's algorithm).
    let listener = listener.tap_io(|connection| {
        if let Err(error) = connection.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let reconciler = reconciler::Reconciler::start(state.clone(), rounds);
    let served = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await;
    reconciler.stop().await;
    served
}

/// Completes at Ctrl-C (SIGINT) or, on Unix, SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: call it before telling anyone the service is up,
/// so that a signal sent at once stops it gracefully instead of killing it. Must be called
/// inside a tokio runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{signal, SignalKind};
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    };
    async move {
        #[cfg(unix)]
        {
            let wait = |handler: std::io::Result<tokio::signal::unix::Signal>, name: &'static str| async move {
                match handler {
                    Ok(mut handler) => {
                        handler.recv().await;
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot listen for {name}");
                        std::future::pending::<()>().await;
                    }
                }
            };
            let (interrupt, terminate) = handlers;
            tokio::select! {
                () = wait(interrupt, "Ctrl-C") => tracing::info!("Ctrl-C: stopping"),
                () = wait(terminate, "SIGTERM") => tracing::info!("SIGTERM: stopping"),
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(error) = tokio::signal::ctrl_c().await {
                tracing::error!(%error, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
            tracing::info!("Ctrl-C: stopping");
        }
    }
}

/// Logs to stderr, one line per event with its fields; `RUST_LOG` filters (default `info`).
/// Call once, at the start of the binary.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or collector gets plain `key=value` fields.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}
