//! Who is calling: the `Authorization: Bearer …` header read once, as an extractor per kind of
//! caller. A phone route takes [`PhoneCaller`] (a phone token, `ytp_…`), an operator route
//! [`OperatorCaller`] (an operator API key, `yto_…`); anything else — no header, another
//! scheme, a malformed, unknown or revoked secret, or the other kind's — is `401` with
//! `WWW-Authenticate: Bearer`. Secrets are never logged or echoed. An operator route that acts
//! for one city takes [`CityOperator`], one that reads across cities [`ClearingHouse`]: a key of
//! the other scope is `403`.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::Modify;
use yitong_platform::access::{self, OperatorKey, RegisteredPhone};

use crate::error::ApiError;
use crate::state::AppState;

/// The OpenAPI name of the phone token scheme.
pub const PHONE_TOKEN: &str = "phone_token";
/// The OpenAPI name of the operator key scheme.
pub const OPERATOR_KEY: &str = "operator_key";

/// The registered phone whose token the request carries.
#[derive(Debug, Clone)]
pub struct PhoneCaller(pub RegisteredPhone);

/// The registered phone whose token the request carries, with the token's SHA-256 (for the one
/// route that replaces it; the token itself is not kept).
#[derive(Debug, Clone)]
pub struct PhoneWithToken {
    /// The phone.
    pub phone: RegisteredPhone,
    /// SHA-256 of the token it presented, hex.
    pub token_sha256: String,
}

/// The operator key the request carries (not revoked).
#[derive(Debug, Clone)]
pub struct OperatorCaller(pub OperatorKey);

/// A city's operator key (not the clearing house's): for the routes that act for one city.
#[derive(Debug, Clone)]
pub struct CityOperator(pub OperatorKey);

/// The clearing house's operator key: for the routes that read across cities.
#[derive(Debug, Clone)]
pub struct ClearingHouse(pub OperatorKey);

/// The bearer credential of `parts`.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("an `Authorization: Bearer <token>` header is required".into()))?;
    let text = value.to_str().map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
    let (scheme, credential) = text
        .split_once(' ')
        .ok_or_else(|| ApiError::Unauthorized("the Authorization header is not `Bearer <token>`".into()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized("the Authorization header is not `Bearer <token>`".into()));
    }
    Ok(credential.trim())
}

impl FromRequestParts<AppState> for PhoneCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        match access::phone_by_token(state.store(), token).await? {
            Some(phone) => Ok(PhoneCaller(phone)),
            None => Err(not_a_phone()),
        }
    }
}

fn not_a_phone() -> ApiError {
    ApiError::Unauthorized("not a phone token of a registered phone (POST /v1/phones gives one)".into())
}

impl FromRequestParts<AppState> for PhoneWithToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        match access::phone_by_token(state.store(), token).await? {
            Some(phone) => Ok(PhoneWithToken { phone, token_sha256: access::secret_sha256(token) }),
            None => Err(not_a_phone()),
        }
    }
}

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let key = bearer(parts)?;
        match access::operator_by_key(state.store(), key).await? {
            Some(key) => Ok(OperatorCaller(key)),
            None => Err(ApiError::Unauthorized("not a valid operator API key (unknown, revoked or malformed)".into())),
        }
    }
}

impl FromRequestParts<AppState> for CityOperator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let OperatorCaller(key) = OperatorCaller::from_request_parts(parts, state).await?;
        if key.is_clearing_house() {
            return Err(ApiError::Forbidden(
                "this acts for one city: use a key of the city, not the clearing house's".into(),
            ));
        }
        Ok(CityOperator(key))
    }
}

impl FromRequestParts<AppState> for ClearingHouse {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let OperatorCaller(key) = OperatorCaller::from_request_parts(parts, state).await?;
        if !key.is_clearing_house() {
            return Err(ApiError::Forbidden(format!(
                "this reads across cities: a clearing house's key is needed, not {}'s",
                key.city
            )));
        }
        Ok(ClearingHouse(key))
    }
}

/// Declares the two bearer schemes in the OpenAPI document.
#[derive(Debug)]
pub(crate) struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(description.to_owned());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            PHONE_TOKEN,
            bearer("A phone's token (`ytp_…`), from POST /v1/phones; bound to the registered device."),
        );
        components.add_security_scheme(
            OPERATOR_KEY,
            bearer(
                "An operator API key (`yto_…`), from `yitong operator key new`: scoped to one city's issuer \
                 (`--city`), or the clearing house's (`--clearing-house`: what spans cities, and every city's cards).",
            ),
        );
    }
}
