//! Can this phone carry a card of this city, and how does the rider get one?

use std::fmt;

use super::{CitySupport, DeviceRegistry, SecureElementKind};
use crate::cities::Cities;

/// The way to a card, as the API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupPath {
    /// The maker's wallet app or the city's card app puts the card on the embedded SE.
    EmbeddedSe,
    /// An NFC-SIM from the carrier's service hall carries the card.
    NfcSim,
    /// This phone cannot carry a card of this city.
    NotSupported,
}

impl SignupPath {
    /// `embedded-se`, `nfc-sim`, `not-supported`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignupPath::EmbeddedSe => "embedded-se",
            SignupPath::NfcSim => "nfc-sim",
            SignupPath::NotSupported => "not-supported",
        }
    }
}

/// Why a phone cannot carry a card of a city.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotSupported {
    /// The platform issues no cards of this city.
    UnknownCity {
        /// The city asked for.
        city: String,
    },
    /// The catalogue does not know the maker.
    UnknownMaker {
        /// The maker asked for.
        maker: String,
    },
    /// The catalogue does not know the model.
    UnknownModel {
        /// The maker.
        maker: String,
        /// The model asked for.
        model: String,
    },
    /// The phone has no NFC.
    NoNfc {
        /// The maker.
        maker: String,
        /// The model.
        model: String,
    },
    /// NFC, but neither an embedded SE nor NFC-SIM support.
    NoSecureElement {
        /// The maker.
        maker: String,
        /// The model.
        model: String,
    },
    /// The phone carries cards, but not of this city.
    CityNotOffered {
        /// The maker.
        maker: String,
        /// The model.
        model: String,
        /// The city asked for.
        city: String,
        /// The cities it does support.
        cities: Vec<String>,
    },
}

impl fmt::Display for NotSupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotSupported::UnknownCity { city } => write!(f, "no phone cards are issued for city `{city}`"),
            NotSupported::UnknownMaker { maker } => write!(f, "maker `{maker}` is not in the device catalogue"),
            NotSupported::UnknownModel { maker, model } => {
                write!(f, "{maker} `{model}` is not in the device catalogue")
            }
            NotSupported::NoNfc { maker, model } => write!(f, "the {maker} {model} has no NFC"),
            NotSupported::NoSecureElement { maker, model } => {
                write!(f, "the {maker} {model} has NFC but no secure element to carry a card and cannot use an NFC-SIM")
            }
            NotSupported::CityNotOffered { maker, model, city, cities } => {
                write!(f, "the {maker} {model} carries no {city} card yet; it carries cards of {}", cities.join(", "))
            }
        }
    }
}

/// The answer for a phone in a city.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Eligibility {
    /// The embedded SE carries the card: sign up in the maker's wallet app or the city's app.
    EmbeddedSe {
        /// The maker.
        maker: String,
        /// The model.
        model: String,
        /// The city.
        city: String,
        /// The maker's wallet app.
        wallet_app: String,
        /// The city's own card app, if it has one.
        city_app: Option<String>,
    },
    /// An NFC-SIM from the carrier's service hall carries the card.
    NfcSim {
        /// The maker.
        maker: String,
        /// The model.
        model: String,
        /// The city.
        city: String,
    },
    /// No card for this phone in this city.
    NotSupported(NotSupported),
}

impl Eligibility {
    /// The path.
    pub fn path(&self) -> SignupPath {
        match self {
            Eligibility::EmbeddedSe { .. } => SignupPath::EmbeddedSe,
            Eligibility::NfcSim { .. } => SignupPath::NfcSim,
            Eligibility::NotSupported(_) => SignupPath::NotSupported,
        }
    }

    /// The reason, for the rider.
    pub fn reason(&self) -> String {
        match self {
            Eligibility::EmbeddedSe { maker, model, city, wallet_app, city_app } => {
                let apps = match city_app {
                    Some(app) => format!("{wallet_app} or {app}"),
                    None => wallet_app.clone(),
                };
                format!(
                    "the {maker} {model} has an embedded secure element that carries {city} cards: sign up in {apps}"
                )
            }
            Eligibility::NfcSim { maker, model, city } => format!(
                "the {maker} {model} has NFC but no embedded secure element for cards: exchange the SIM for an \
                 NFC-SIM at the carrier's service hall, which then carries the {city} card"
            ),
            Eligibility::NotSupported(why) => why.to_string(),
        }
    }
}

impl DeviceRegistry {
    /// How the phone `maker` `model` gets a card of `city`, and why (any spelling of the names).
    pub fn eligibility(&self, maker: &str, model: &str, city: &str, cities: &Cities) -> Eligibility {
        let no = Eligibility::NotSupported;
        let Some(city) = cities.get(city) else {
            return no(NotSupported::UnknownCity { city: city.trim().to_owned() });
        };
        let Some(maker_row) = self.maker(maker) else {
            return no(NotSupported::UnknownMaker { maker: maker.trim().to_owned() });
        };
        let Some(device) = self.model(maker, model) else {
            return no(NotSupported::UnknownModel { maker: maker_row.name.clone(), model: model.trim().to_owned() });
        };
        let (maker, model) = (maker_row.name.clone(), device.model.clone());
        if !device.nfc {
            return no(NotSupported::NoNfc { maker, model });
        }
        if device.secure_element == SecureElementKind::None {
            return no(NotSupported::NoSecureElement { maker, model });
        }
        if !device.cities.includes(city.name()) {
            let cities = match &device.cities {
                CitySupport::All => cities.names().map(str::to_owned).collect(),
                CitySupport::Only(names) => names.iter().cloned().collect(),
            };
            return no(NotSupported::CityNotOffered { maker, model, city: city.name().to_owned(), cities });
        }
        let city_name = city.name().to_owned();
        match device.secure_element {
            SecureElementKind::Embedded => Eligibility::EmbeddedSe {
                maker,
                model,
                city: city_name,
                wallet_app: maker_row.wallet_app.clone(),
                city_app: city.card_app().map(str::to_owned),
            },
            SecureElementKind::NfcSim => Eligibility::NfcSim { maker, model, city: city_name },
            SecureElementKind::None => unreachable!("refused above"),
        }
    }
}
