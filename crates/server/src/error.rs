//! The service's one error type and its mapping to HTTP, written once: every error leaves as
//! JSON `{code, message}`; bad input is a 4xx naming the field, never a 5xx.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;
use yitong_platform::store::StoreError;

/// Longest value accepted for any query parameter: names are short, and a bound keeps a
/// hostile request from making the service work on megabytes.
pub const PARAMETER_CHARS_MAX: usize = 200;

/// Why a request failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApiError {
    /// A required query parameter is absent or empty. `400 Bad Request`.
    MissingParameter {
        /// The parameter.
        name: &'static str,
    },
    /// A parameter whose value cannot be used. `400 Bad Request`.
    BadParameter {
        /// The parameter.
        name: &'static str,
        /// Why, with what is accepted.
        message: String,
    },
    /// The query string does not parse. `400 Bad Request`.
    BadQuery(String),
    /// A path segment does not parse (not UTF-8). `400 Bad Request`.
    BadPath(String),
    /// The named thing does not exist. `404 Not Found`.
    NotFound(String),
    /// No route of this path. `404 Not Found`.
    NoRoute,
    /// The path exists, but not for this method. `405 Method Not Allowed`.
    MethodNotAllowed,
    /// The JSON body does not parse, lacks a field or has one of the wrong type. `400 Bad Request`
    /// (`415` when it is not declared `application/json`).
    BadBody {
        /// `400` or `415`.
        status: StatusCode,
        /// Why.
        message: String,
    },
    /// A body field whose value cannot be used (bad hex, a malformed ID). `400 Bad Request`.
    BadField {
        /// The field.
        name: &'static str,
        /// Why, with what is accepted.
        message: String,
    },
    /// The request is well formed but the domain refuses it: not eligible (`422`), a card answer
    /// that does not verify (`422`), an order in the wrong state or an ID taken (`409`), the
    /// payment provider failing (`502`). The code says which.
    Refused {
        /// The status.
        status: StatusCode,
        /// The stable code.
        code: &'static str,
        /// Why, for a person.
        message: String,
    },
    /// No credentials, malformed ones, unknown or revoked ones, or the wrong kind (a phone token
    /// on an operator route, an operator key on a phone route). `401 Unauthorized` with
    /// `WWW-Authenticate: Bearer`.
    Unauthorized(String),
    /// A valid credential whose scope does not reach the request (403).
    Forbidden(String),
    /// The database failed. `503 Service Unavailable`; the detail is logged, not shown.
    Store(StoreError),
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code: `missing_parameter`, `bad_parameter`, `bad_query`,
    /// `bad_path`, `bad_body`, `bad_field`, `unauthorized`, `not_found`, `method_not_allowed`, `unavailable`, and
    /// the refusals of cards and top-ups (`not_eligible`, `order_conflict`, `card_answer_rejected`,
    /// … — docs/platform.md lists them).
    pub code: &'static str,
    /// What went wrong, for a person, naming the field.
    pub message: String,
}

impl ApiError {
    /// The status and the code of this error: the one place they are chosen.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::MissingParameter { .. } => (StatusCode::BAD_REQUEST, "missing_parameter"),
            ApiError::BadParameter { .. } => (StatusCode::BAD_REQUEST, "bad_parameter"),
            ApiError::BadQuery(_) => (StatusCode::BAD_REQUEST, "bad_query"),
            ApiError::BadPath(_) => (StatusCode::BAD_REQUEST, "bad_path"),
            ApiError::NotFound(_) | ApiError::NoRoute => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::BadBody { status, .. } => (*status, "bad_body"),
            ApiError::BadField { .. } => (StatusCode::BAD_REQUEST, "bad_field"),
            ApiError::Refused { status, code, .. } => (*status, code),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::MissingParameter { name } => format!("query parameter `{name}` is required"),
            ApiError::BadParameter { name, message } => format!("query parameter `{name}`: {message}"),
            ApiError::BadQuery(why) => format!("the query string does not parse: {why}"),
            ApiError::BadPath(why) => format!("the path does not parse: {why}"),
            ApiError::NotFound(what) => what.clone(),
            ApiError::NoRoute => "no such endpoint; GET /openapi.json lists them".into(),
            ApiError::MethodNotAllowed => "this endpoint does not take this method".into(),
            ApiError::BadBody { message, .. } => format!("the JSON body: {message}"),
            ApiError::BadField { name, message } => format!("field `{name}`: {message}"),
            ApiError::Refused { message, .. } => message.clone(),
            ApiError::Unauthorized(why) | ApiError::Forbidden(why) => why.clone(),
            ApiError::Store(_) => "the database is unavailable; try again".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Store(error) = &self {
            tracing::error!(%error, "database");
        }
        let body = Json(ErrorBody { code, message: self.message() });
        if let ApiError::Unauthorized(_) = &self {
            // RFC 6750: the scheme to use.
            return (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
        }
        (status, body).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Store(error)
    }
}

/// A query string of `T`, whose rejection is an [`ApiError`] (axum's own is plain text).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::BadQuery(query_rejection_text(&rejection))),
        }
    }
}

/// Path parameters of `T`, whose rejection is an [`ApiError`] (axum's own is plain text).
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::BadPath(rejection.body_text())),
        }
    }
}

/// A JSON body of `T`, whose rejection is an [`ApiError`] (axum's own is plain text).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::BadBody {
                status: if rejection.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                } else {
                    StatusCode::BAD_REQUEST
                },
                message: rejection.body_text(),
            }),
        }
    }
}

/// The body field `name`: trimmed, not empty, at most [`PARAMETER_CHARS_MAX`] characters.
pub fn field<'a>(name: &'static str, value: &'a str) -> Result<&'a str, ApiError> {
    let text = value.trim();
    if text.is_empty() {
        return Err(ApiError::BadField { name, message: "is empty".into() });
    }
    if text.chars().count() > PARAMETER_CHARS_MAX {
        return Err(ApiError::BadField { name, message: format!("longer than {PARAMETER_CHARS_MAX} characters") });
    }
    Ok(text)
}

/// The bytes of the hex body field `name` (a card's answer): at most [`PARAMETER_CHARS_MAX`] hex digits.
pub fn hex_field(name: &'static str, value: &str) -> Result<Vec<u8>, ApiError> {
    let text = field(name, value)?;
    hex::decode(text).map_err(|e| ApiError::BadField { name, message: format!("not hex: {e}") })
}

fn query_rejection_text(rejection: &QueryRejection) -> String {
    match rejection {
        QueryRejection::FailedToDeserializeQueryString(e) => e.body_text(),
        other => other.body_text(),
    }
}

/// The value of the required parameter `name`: trimmed, not empty, at most
/// [`PARAMETER_CHARS_MAX`] characters.
pub fn required<'a>(name: &'static str, value: &'a Option<String>) -> Result<&'a str, ApiError> {
    optional(name, value)?.ok_or(ApiError::MissingParameter { name })
}

/// The value of the optional parameter `name`, checked as [`required`] does; empty is absent.
pub fn optional<'a>(name: &'static str, value: &'a Option<String>) -> Result<Option<&'a str>, ApiError> {
    let Some(text) = value.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > PARAMETER_CHARS_MAX {
        return Err(ApiError::BadParameter { name, message: format!("longer than {PARAMETER_CHARS_MAX} characters") });
    }
    Ok(Some(text))
}
