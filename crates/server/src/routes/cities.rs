//! The regions served: issuer, card AIDs, sign-up fee, fare profile, and the fee quote.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_platform::cities::City;
use yitong_platform::pricing::{signup_fee, Channel, Decision, PassedOver, SignupRequest};
use yitong_profile::DateTime;

use crate::error::{optional, required, ApiError, ApiPath, ApiQuery, ErrorBody};
use crate::state::AppState;

/// `/v1/cities…`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(one)).routes(routes!(quote))
}

/// One region.
#[derive(Debug, Serialize, ToSchema)]
pub struct CityInfo {
    /// Lower-case name, the key in paths (`beijing`).
    pub name: String,
    /// Display name (`北京 Beijing`).
    pub display_name: String,
    /// City code, 4 hex digits as on cards (`1000`).
    pub city_code: String,
    /// The card issuer.
    pub issuer: String,
    /// The issuer ID of the city's phone cards, 16 hex digits.
    pub issuer_id: String,
    /// AIDs of the cards its gates accept, hex.
    pub card_aids: Vec<String>,
    /// The standard sign-up fee of a phone card, fen, before promotions.
    pub signup_fee_fen: u32,
    /// The city's own card app, if riders may sign up there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_app: Option<String>,
    /// What its gates charge.
    pub fare_profile: FareProfile,
}

/// A summary of a city's fare profile (the whole is the fare engine's city file).
#[derive(Debug, Serialize, ToSchema)]
pub struct FareProfile {
    /// IANA time zone of its gates.
    pub time_zone: String,
    /// True when the fares are example values, not checked against published rules.
    pub example_values: bool,
    /// Whether it has metro fares.
    pub metro: bool,
    /// The built-in sample metro network, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Bus flat fare, fen.
    pub bus_flat_fare_fen: u32,
    /// Off a bus ride boarded within the transfer window, fen.
    pub bus_transfer_discount_fen: u32,
    /// The bus transfer window, minutes.
    pub bus_transfer_window_minutes: u32,
}

impl From<&City> for CityInfo {
    fn from(city: &City) -> Self {
        let profile = city.fare_profile();
        CityInfo {
            name: city.name().to_owned(),
            display_name: city.display_name().to_owned(),
            city_code: format!("{:04X}", city.city_code()),
            issuer: city.issuer().to_owned(),
            issuer_id: hex::encode_upper(city.issuer_id()),
            card_aids: city.card_aids().iter().map(hex::encode_upper).collect(),
            signup_fee_fen: city.signup_fee_fen(),
            card_app: city.card_app().map(str::to_owned),
            fare_profile: FareProfile {
                time_zone: profile.time_zone.clone(),
                example_values: profile.example_values,
                metro: profile.metro.is_some(),
                network: profile.network.clone(),
                bus_flat_fare_fen: profile.bus.flat_fare_fen,
                bus_transfer_discount_fen: profile.bus.transfer_discount_fen,
                bus_transfer_window_minutes: profile.bus.transfer_window_minutes,
            },
        }
    }
}

/// Every city served.
#[derive(Debug, Serialize, ToSchema)]
pub struct CityList {
    /// The cities, by name.
    pub cities: Vec<CityInfo>,
}

/// The ten regions.
#[utoipa::path(get, path = "/v1/cities", tag = "cities", responses((status = 200, body = CityList)))]
async fn list(State(state): State<AppState>) -> Json<CityList> {
    Json(CityList { cities: state.cities().iter().map(CityInfo::from).collect() })
}

fn city<'s>(state: &'s AppState, name: &str) -> Result<&'s City, ApiError> {
    state.cities().get(name).ok_or_else(|| {
        let known: Vec<&str> = state.cities().names().collect();
        ApiError::NotFound(format!("no city `{}`; the cities are {}", name.trim(), known.join(", ")))
    })
}

/// One city, by name (any case).
#[utoipa::path(get, path = "/v1/cities/{name}", tag = "cities",
    params(("name" = String, Path, description = "the city's name, e.g. beijing")),
    responses((status = 200, body = CityInfo), (status = 404, body = ErrorBody, description = "no such city")))]
async fn one(State(state): State<AppState>, ApiPath(name): ApiPath<String>) -> Result<Json<CityInfo>, ApiError> {
    Ok(Json(CityInfo::from(city(&state, &name)?)))
}

/// The sign-up a fee is quoted for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuoteQuery {
    /// The phone's maker, as in the device catalogue (`Xiaomi`).
    pub maker: Option<String>,
    /// Where the rider signs up: `maker-wallet`, `city-app` or `carrier-hall`.
    pub channel: Option<String>,
    /// When, local time of Asia/Shanghai (`2026-11-25 08:30:00`); default now.
    pub at: Option<String>,
}

/// What a new phone card of a city costs.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeeQuote {
    /// The city.
    pub city: String,
    /// The maker, as the catalogue spells it.
    pub maker: String,
    /// The channel.
    pub channel: &'static str,
    /// The time quoted for, `YYYY-MM-DD HH:MM:SS` Asia/Shanghai.
    pub at: String,
    /// What a new card costs, fen.
    pub fee_fen: u32,
    /// The city's standard fee, fen.
    pub standard_fee_fen: u32,
    /// The promotion that sets the fee, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<String>,
    /// The city's promotions that do not apply, and why.
    pub passed_over: Vec<PassedOverEntry>,
}

/// A promotion that does not apply.
#[derive(Debug, Serialize, ToSchema)]
pub struct PassedOverEntry {
    /// Its id.
    pub promotion: String,
    /// `other-maker`, `other-channel`, `not-started`, `ended`, `cap-reached`, `superseded`.
    pub why: &'static str,
}

pub(crate) fn parse_channel(text: &str) -> Result<(&'static str, Channel), ApiError> {
    Channel::parse(text).map(|channel| (channel.name(), channel)).ok_or_else(|| ApiError::BadParameter {
        name: "channel",
        message: format!("`{text}` is not maker-wallet, city-app or carrier-hall"),
    })
}

fn passed_over_name(why: PassedOver) -> &'static str {
    match why {
        PassedOver::OtherMaker => "other-maker",
        PassedOver::OtherChannel => "other-channel",
        PassedOver::NotStarted => "not-started",
        PassedOver::Ended => "ended",
        PassedOver::CapReached { .. } => "cap-reached",
        PassedOver::Superseded => "superseded",
    }
}

/// The sign-up fee of a new phone card of the city, by its pricing rules: the standard fee, or
/// a promotion's. No promotions are configured yet, so every quote is the standard fee.
#[utoipa::path(get, path = "/v1/cities/{name}/signup-fee", tag = "cities",
    params(("name" = String, Path, description = "the city's name, e.g. beijing"), QuoteQuery),
    responses(
        (status = 200, body = FeeQuote),
        (status = 400, body = ErrorBody, description = "a parameter is missing or bad: an unknown maker or channel, a malformed time"),
        (status = 404, body = ErrorBody, description = "no such city"),
    ))]
async fn quote(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<QuoteQuery>,
) -> Result<Json<FeeQuote>, ApiError> {
    let city = city(&state, &name)?;
    let maker_text = required("maker", &query.maker)?;
    let maker = state.devices().maker(maker_text).ok_or_else(|| {
        let known: Vec<&str> = state.devices().makers().map(|m| m.name.as_str()).collect();
        ApiError::BadParameter {
            name: "maker",
            message: format!("`{maker_text}` is not in the device catalogue; its makers are {}", known.join(", ")),
        }
    })?;
    let (channel_name, channel) = parse_channel(required("channel", &query.channel)?)?;
    let at = match optional("at", &query.at)? {
        Some(text) => DateTime::parse(text).map_err(|_| ApiError::BadParameter {
            name: "at",
            message: format!("`{text}` is not a local time like 2026-11-25 08:30:00"),
        })?,
        None => state.now(),
    };
    let rules = state
        .pricing(city.name())
        .ok_or_else(|| ApiError::NotFound(format!("city `{}` has no sign-up pricing", city.name())))?;
    let request = SignupRequest { maker: &maker.name, channel, at };
    // A quote for a new card: the promotion counters live with issuance (not built yet); with no
    // promotions configured they are never read.
    let quote = match signup_fee(rules, &request, |_| 0, false) {
        Decision::NewCard(quote) => quote,
        Decision::ExistingCard => unreachable!("asked for a phone without a card of the city"),
    };
    Ok(Json(FeeQuote {
        city: city.name().to_owned(),
        maker: maker.name.clone(),
        channel: channel_name,
        at: at.to_string(),
        fee_fen: quote.fee_fen,
        standard_fee_fen: quote.standard_fee_fen,
        promotion: quote.promotion,
        passed_over: quote
            .passed_over
            .into_iter()
            .map(|(promotion, why)| PassedOverEntry { promotion, why: passed_over_name(why) })
            .collect(),
    }))
}
