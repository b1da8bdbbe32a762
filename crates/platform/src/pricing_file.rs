//! The operator's pricing file (`yitong serve --pricing FILE`): each city's sign-up promotions
//! and fee-refund rule, in TOML. A city the file does not name charges its standard fee.
//!
//! ```toml
//! [beijing]
//! fee_refund_within_days = 7            # a deleted card's fee comes back within 7 days of issue
//!
//! [[beijing.promotions]]
//! id = "mi-launch"                      # unique in the city; sign-ups are counted per id
//! makers = ["Xiaomi"]                   # catalogue makers; absent: every maker
//! channels = ["maker-wallet"]           # maker-wallet, city-app, carrier-hall; absent: every one
//! starts = "2026-11-01 00:00"           # local time, inclusive
//! ends = "2026-12-01 00:00"             # exclusive
//! fee_fen = 0                           # 0 waives the fee
//! cap = 10000                           # promotional sign-ups granted; absent: no cap
//! ```
//!
//! Every error names the city, the promotion and the field.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use yitong_profile::DateTime;

use crate::cities::Cities;
use crate::devices::DeviceRegistry;
use crate::pricing::{Channel, PricingError, PricingRules, Promotion, Window};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CityEntry {
    fee_refund_within_days: Option<u32>,
    #[serde(default)]
    promotions: Vec<PromotionEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromotionEntry {
    id: String,
    #[serde(default)]
    makers: Vec<String>,
    #[serde(default)]
    channels: Vec<String>,
    starts: String,
    ends: String,
    fee_fen: u32,
    cap: Option<u32>,
}

/// Why a pricing file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PricingFileError {
    /// Not TOML of this shape (an unknown key, a missing field, a wrong type); the parser's
    /// message names the line.
    Syntax(String),
    /// A table of a city we do not serve.
    UnknownCity {
        /// The name given.
        city: String,
        /// The cities served.
        known: Vec<String>,
    },
    /// A field of a promotion that cannot be used.
    BadField {
        /// The city.
        city: String,
        /// The promotion.
        promotion: String,
        /// The field.
        field: &'static str,
        /// Why.
        why: String,
    },
    /// The city's promotions together cannot be used (a duplicate id, an empty window, a fee
    /// above the standard, a cap of 0, too many).
    Rules {
        /// The city.
        city: String,
        /// What is wrong.
        error: PricingError,
    },
}

impl fmt::Display for PricingFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PricingFileError::Syntax(message) => write!(f, "{message}"),
            PricingFileError::UnknownCity { city, known } => {
                write!(f, "[{city}]: no such city (the cities: {})", known.join(", "))
            }
            PricingFileError::BadField { city, promotion, field, why } => {
                write!(f, "[{city}] promotion `{promotion}`, `{field}`: {why}")
            }
            PricingFileError::Rules { city, error } => write!(f, "[{city}]: {error}"),
        }
    }
}

impl std::error::Error for PricingFileError {}

/// The pricing rules of every city in `cities`: those `text` gives, the standard fee alone for
/// the others. Makers must be in `devices`' catalogue (a misspelt maker would never match).
pub fn read_pricing(
    text: &str,
    cities: &Cities,
    devices: &DeviceRegistry,
) -> Result<BTreeMap<String, PricingRules>, PricingFileError> {
    let entries: BTreeMap<String, CityEntry> =
        toml::from_str(text).map_err(|error| PricingFileError::Syntax(error.to_string()))?;
    let mut rules = standard_pricing(cities).map_err(|(city, error)| PricingFileError::Rules { city, error })?;
    let mut seen = std::collections::BTreeMap::new();
    for (name, entry) in entries {
        if let Some(first) = seen.insert(name.to_ascii_lowercase(), name.clone()) {
            return Err(PricingFileError::Syntax(format!("[{first}] and [{name}] are the same city: give it once")));
        }
        let Some(city) = cities.get(&name.to_ascii_lowercase()) else {
            return Err(PricingFileError::UnknownCity {
                city: name,
                known: cities.names().map(str::to_owned).collect(),
            });
        };
        let city_name = city.name().to_owned();
        let promotions = entry
            .promotions
            .into_iter()
            .map(|promotion| promotion.check(&city_name, devices))
            .collect::<Result<Vec<_>, _>>()?;
        let city_rules = PricingRules::for_city(city, promotions)
            .map_err(|error| PricingFileError::Rules { city: city_name.clone(), error })?
            .with_fee_refund_within_days(entry.fee_refund_within_days);
        rules.insert(city_name, city_rules);
    }
    Ok(rules)
}

/// Every city's standard fee and no promotions (what a service without a pricing file charges).
pub fn standard_pricing(cities: &Cities) -> Result<BTreeMap<String, PricingRules>, (String, PricingError)> {
    cities
        .iter()
        .map(|city| {
            PricingRules::for_city(city, Vec::new())
                .map(|rules| (city.name().to_owned(), rules))
                .map_err(|error| (city.name().to_owned(), error))
        })
        .collect()
}

impl PromotionEntry {
    fn check(self, city: &str, devices: &DeviceRegistry) -> Result<Promotion, PricingFileError> {
        let bad = |field: &'static str, why: String| PricingFileError::BadField {
            city: city.to_owned(),
            promotion: self.id.clone(),
            field,
            why,
        };
        let makers = self
            .makers
            .iter()
            .map(|maker| match devices.maker(maker) {
                Some(found) => Ok(found.name.clone()),
                None => Err(bad("makers", format!("`{maker}` is not in the device catalogue"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let channels = self
            .channels
            .iter()
            .map(|channel| {
                Channel::parse(channel).ok_or_else(|| {
                    bad("channels", format!("`{channel}` is not maker-wallet, city-app or carrier-hall"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let time = |field: &'static str, text: &str| {
            DateTime::parse(text.trim())
                .map_err(|_| bad(field, format!("`{text}` is not a local time YYYY-MM-DD HH:MM[:SS]")))
        };
        let window = Window { starts: time("starts", &self.starts)?, ends: time("ends", &self.ends)? };
        Ok(Promotion { id: self.id, makers, channels, window, fee_fen: self.fee_fen, cap: self.cap })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> (Cities, DeviceRegistry) {
        let cities = Cities::builtin().expect("the built-in cities");
        let devices = DeviceRegistry::builtin(&cities).expect("the built-in catalogue");
        (cities, devices)
    }

    const MI_LAUNCH: &str = r#"
[Beijing]
fee_refund_within_days = 7

[[Beijing.promotions]]
id = "mi-launch"
makers = ["xiaomi"]
channels = ["maker-wallet"]
starts = "2026-11-01 00:00"
ends = "2026-12-01 00:00"
fee_fen = 0
cap = 2
"#;

    #[test]
    fn a_city_gets_its_promotions_and_the_others_their_standard_fee() {
        let (cities, devices) = parts();
        let rules = read_pricing(MI_LAUNCH, &cities, &devices).expect("reads");
        assert_eq!(rules.len(), cities.len());
        let beijing = &rules["beijing"];
        assert_eq!(beijing.standard_fee_fen(), 2_900, "Beijing's city file: 29 yuan");
        let promotion = &beijing.promotions()[0];
        assert_eq!((promotion.id.as_str(), promotion.fee_fen, promotion.cap), ("mi-launch", 0, Some(2)));
        assert_eq!(promotion.makers, ["Xiaomi"], "the catalogue's spelling");
        assert_eq!(promotion.channels, [Channel::MakerWallet]);
        assert_eq!(promotion.window.starts, DateTime::new(2026, 11, 1, 0, 0, 0).expect("valid"));
        let day_ms = 24 * 3_600 * 1_000;
        assert!(beijing.refunds_fee(0, 7 * day_ms) && !beijing.refunds_fee(0, 7 * day_ms + 1));
        assert!(rules["shanghai"].promotions().is_empty());
        assert!(!rules["shanghai"].refunds_fee(0, 1));
    }

    #[test]
    fn errors_name_the_city_the_promotion_and_the_field() {
        let (cities, devices) = parts();
        let error = |text: &str| read_pricing(text, &cities, &devices).expect_err("refused").to_string();
        assert!(error("[atlantis]\n").starts_with("[atlantis]: no such city (the cities: "));
        let maker = MI_LAUNCH.replace("\"xiaomi\"", "\"Nokla\"");
        assert_eq!(error(&maker), "[beijing] promotion `mi-launch`, `makers`: `Nokla` is not in the device catalogue");
        let channel = MI_LAUNCH.replace("maker-wallet", "post-office");
        assert!(error(&channel).contains("`channels`: `post-office` is not maker-wallet"), "{}", error(&channel));
        let time = MI_LAUNCH.replace("2026-12-01 00:00", "December");
        assert!(error(&time).contains("`ends`: `December` is not a local time"), "{}", error(&time));
        let window = MI_LAUNCH.replace("2026-12-01 00:00", "2026-10-01 00:00");
        assert_eq!(error(&window), "[beijing]: promotion `mi-launch`: its window ends before it starts");
        let fee = MI_LAUNCH.replace("fee_fen = 0", "fee_fen = 3000");
        assert!(error(&fee).contains("more than the standard fee of 2900 fen"), "{}", error(&fee));
        let twice = format!("{MI_LAUNCH}\n[beijing]\nfee_refund_within_days = 1\n");
        assert_eq!(error(&twice), "[Beijing] and [beijing] are the same city: give it once");
        let unknown = MI_LAUNCH.replace("cap = 2", "cap = 2\ncolour = \"red\"");
        assert!(error(&unknown).contains("colour"), "{}", error(&unknown));
        let negative = MI_LAUNCH.replace("fee_fen = 0", "fee_fen = -1");
        assert!(error(&negative).contains("fee_fen"), "{}", error(&negative));
    }
}
