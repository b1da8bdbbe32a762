//! The device catalogue and eligibility: "can my phone carry a card of this city, and how?"

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use yitong_platform::devices::{CitySupport, DeviceModel, Eligibility, NotSupported, Source};

use crate::error::{required, ApiError, ApiQuery, ErrorBody};
use crate::state::AppState;

/// `/v1/devices/…`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(eligibility)).routes(routes!(makers))
}

/// The phone and the city asked about (any case and spacing: `Mi6`, `mi 6`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EligibilityQuery {
    /// The phone's maker (`Xiaomi`).
    pub maker: Option<String>,
    /// The model (`Mi 6`).
    pub model: Option<String>,
    /// The city (`beijing`).
    pub city: Option<String>,
}

/// How a phone gets a card of a city.
#[derive(Debug, Serialize, ToSchema)]
pub struct EligibilityAnswer {
    /// `embedded-se` (the maker's wallet app or the city's card app), `nfc-sim` (the carrier's
    /// service hall), or `not-supported`.
    pub path: &'static str,
    /// Why, for the rider.
    pub reason: String,
    /// The maker: the catalogue's spelling when known, else as asked.
    pub maker: String,
    /// The model: the catalogue's spelling when known, else as asked.
    pub model: String,
    /// The city: its lower-case name when known, else as asked.
    pub city: String,
    /// The maker's wallet app (path `embedded-se`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet_app: Option<String>,
    /// The city's own card app, if it has one (path `embedded-se`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city_app: Option<String>,
    /// Why not, as a code (path `not-supported`): `unknown-city`, `unknown-maker`,
    /// `unknown-model`, `no-nfc`, `no-secure-element`, `city-not-offered`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_supported: Option<&'static str>,
    /// The cities the phone does carry cards of (`city-not-offered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_cities: Option<Vec<String>>,
}

impl EligibilityAnswer {
    fn new(answer: &Eligibility, asked: [&str; 3]) -> Self {
        let [maker, model, city] = asked.map(str::to_owned);
        let mut out = EligibilityAnswer {
            path: answer.path().as_str(),
            reason: answer.reason(),
            maker,
            model,
            city,
            wallet_app: None,
            city_app: None,
            not_supported: None,
            supported_cities: None,
        };
        let known = |out: &mut EligibilityAnswer, maker: &String, model: Option<&String>, city: Option<&String>| {
            out.maker.clone_from(maker);
            if let Some(model) = model {
                out.model.clone_from(model);
            }
            if let Some(city) = city {
                out.city.clone_from(city);
            }
        };
        match answer {
            Eligibility::EmbeddedSe { maker, model, city, wallet_app, city_app } => {
                known(&mut out, maker, Some(model), Some(city));
                out.wallet_app = Some(wallet_app.clone());
                out.city_app.clone_from(city_app);
            }
            Eligibility::NfcSim { maker, model, city } => known(&mut out, maker, Some(model), Some(city)),
            Eligibility::NotSupported(why) => {
                out.not_supported = Some(match why {
                    NotSupported::UnknownCity { .. } => "unknown-city",
                    NotSupported::UnknownMaker { .. } => "unknown-maker",
                    NotSupported::UnknownModel { maker, .. } => {
                        known(&mut out, maker, None, None);
                        "unknown-model"
                    }
                    NotSupported::NoNfc { maker, model } => {
                        known(&mut out, maker, Some(model), None);
                        "no-nfc"
                    }
                    NotSupported::NoSecureElement { maker, model } => {
                        known(&mut out, maker, Some(model), None);
                        "no-secure-element"
                    }
                    NotSupported::CityNotOffered { maker, model, city, cities } => {
                        known(&mut out, maker, Some(model), Some(city));
                        out.supported_cities = Some(cities.clone());
                        "city-not-offered"
                    }
                });
            }
        }
        out
    }
}

/// How the phone `maker` `model` gets a card of `city`: an unknown maker, model or city is an
/// answer (`not-supported`, with the reason), not an error.
#[utoipa::path(get, path = "/v1/devices/eligibility", tag = "devices", params(EligibilityQuery),
    responses(
        (status = 200, body = EligibilityAnswer),
        (status = 400, body = ErrorBody, description = "a parameter is missing, empty or too long"),
    ))]
async fn eligibility(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<EligibilityQuery>,
) -> Result<Json<EligibilityAnswer>, ApiError> {
    let maker = required("maker", &query.maker)?;
    let model = required("model", &query.model)?;
    let city = required("city", &query.city)?;
    let answer = state.devices().eligibility(maker, model, city, state.cities());
    Ok(Json(EligibilityAnswer::new(&answer, [maker, model, city])))
}

/// The catalogue: every maker and its models.
#[derive(Debug, Serialize, ToSchema)]
pub struct Catalogue {
    /// The makers, by name.
    pub makers: Vec<MakerEntry>,
    /// Models in all.
    pub model_count: usize,
}

/// A maker and its models.
#[derive(Debug, Serialize, ToSchema)]
pub struct MakerEntry {
    /// The maker's name.
    pub name: String,
    /// The wallet app its embedded-SE phones sign up in.
    pub wallet_app: String,
    /// `brief` (the product brief's fact) or `example` (example values).
    pub source: &'static str,
    /// Its models, by name.
    pub models: Vec<ModelEntry>,
}

/// A phone model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    /// The model's name.
    pub model: String,
    /// Other spellings.
    pub aliases: Vec<String>,
    /// Whether it has NFC.
    pub nfc: bool,
    /// `ese`, `nfc-sim` or `none`.
    pub secure_element: &'static str,
    /// The cities it carries cards of; `["all"]` for every city served.
    pub cities: Vec<String>,
    /// `brief` or `example`.
    pub source: &'static str,
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Brief => "brief",
        Source::Example => "example",
    }
}

impl From<&DeviceModel> for ModelEntry {
    fn from(model: &DeviceModel) -> Self {
        ModelEntry {
            model: model.model.clone(),
            aliases: model.aliases.clone(),
            nfc: model.nfc,
            secure_element: model.secure_element.as_str(),
            cities: match &model.cities {
                CitySupport::All => vec!["all".to_owned()],
                CitySupport::Only(names) => names.iter().cloned().collect(),
            },
            source: source_name(model.source),
        }
    }
}

/// Every maker and model of the device catalogue.
#[utoipa::path(get, path = "/v1/devices/makers", tag = "devices", responses((status = 200, body = Catalogue)))]
async fn makers(State(state): State<AppState>) -> Json<Catalogue> {
    let devices = state.devices();
    let makers = devices
        .makers()
        .map(|maker| MakerEntry {
            name: maker.name.clone(),
            wallet_app: maker.wallet_app.clone(),
            source: source_name(maker.source),
            models: devices.models().filter(|m| m.maker == maker.name).map(ModelEntry::from).collect(),
        })
        .collect();
    Json(Catalogue { makers, model_count: devices.model_count() })
}
