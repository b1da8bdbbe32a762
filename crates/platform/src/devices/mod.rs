//! The device registry: phone makers and models, whether each has NFC, which secure element
//! carries the card (embedded, an NFC-SIM from the carrier, or none), and the cities each
//! supports — and the eligibility answer for a rider's phone in a city.
//!
//! The catalogue ships as CSV (`data/makers.csv`, `data/devices.csv`, parsed with the `csv`
//! crate, see [`catalogue`]); operators import more rows the same way.

pub mod catalogue;
mod eligibility;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use catalogue::{CatalogueError, ImportSummary};
pub use eligibility::{Eligibility, NotSupported, SignupPath};

/// Which secure element would carry the phone's transit card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecureElementKind {
    /// An embedded SE: the rider signs up in the maker's wallet app or the city's card app.
    Embedded,
    /// No usable embedded SE, but the phone routes NFC to the SIM: an NFC-SIM from the
    /// carrier's service hall carries the card.
    NfcSim,
    /// Nothing can carry a card.
    None,
}

impl SecureElementKind {
    /// The name in the catalogue's CSV: `ese`, `nfc-sim`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            SecureElementKind::Embedded => "ese",
            SecureElementKind::NfcSim => "nfc-sim",
            SecureElementKind::None => "none",
        }
    }

    /// Parses a CSV name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ese" => Some(SecureElementKind::Embedded),
            "nfc-sim" => Some(SecureElementKind::NfcSim),
            "none" => Some(SecureElementKind::None),
            _ => None,
        }
    }
}

impl fmt::Display for SecureElementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cities in which a model can carry a card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CitySupport {
    /// Every city the platform serves, present and future.
    All,
    /// These cities (lower-case names).
    Only(BTreeSet<String>),
}

impl CitySupport {
    /// Whether the city named `city` (lower case) is supported.
    pub fn includes(&self, city: &str) -> bool {
        match self {
            CitySupport::All => true,
            CitySupport::Only(cities) => cities.contains(city),
        }
    }
}

/// Where a row of the catalogue comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Named by the product brief.
    Brief,
    /// Example values of a realistic catalogue, or imported by an operator.
    Example,
}

/// A phone maker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Maker {
    /// The maker's name (`Xiaomi`).
    pub name: String,
    /// The wallet app in which its embedded-SE phones sign up (`Mi Wallet (小米钱包)`).
    pub wallet_app: String,
    /// Where the row comes from.
    pub source: Source,
}

/// A phone model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceModel {
    /// The maker's name, as in its [`Maker`].
    pub maker: String,
    /// The model's name (`Mi 6`).
    pub model: String,
    /// Other spellings riders use (`Galaxy S8 Plus`, `S8 Plus`).
    pub aliases: Vec<String>,
    /// Whether it has NFC at all.
    pub nfc: bool,
    /// What would carry the card.
    pub secure_element: SecureElementKind,
    /// Where it can carry a card.
    pub cities: CitySupport,
    /// Where the row comes from.
    pub source: Source,
}

/// The key a name is looked up by: lower case, letters, digits and `+` only, so that `Mi6`,
/// `mi 6` and `Mi 6` are one model.
pub(crate) fn lookup_key(name: &str) -> String {
    name.chars().filter(|c| c.is_alphanumeric() || *c == '+').flat_map(char::to_lowercase).collect()
}

/// Makers and models, looked up by any spelling of their names.
#[derive(Clone, Debug, Default)]
pub struct DeviceRegistry {
    makers: BTreeMap<String, Maker>,
    models: BTreeMap<(String, String), DeviceModel>,
    /// (maker key, alias key) → the model's key.
    aliases: BTreeMap<(String, String), String>,
}

impl DeviceRegistry {
    /// The shipped catalogue (`data/makers.csv`, `data/devices.csv`), validated against `cities`.
    pub fn builtin(cities: &crate::cities::Cities) -> Result<Self, CatalogueError> {
        let mut registry = DeviceRegistry::default();
        registry.import_makers_csv(catalogue::MAKERS_CSV, "data/makers.csv")?;
        registry.import_models_csv(catalogue::DEVICES_CSV, "data/devices.csv", cities)?;
        Ok(registry)
    }

    /// The maker of any spelling of `name`.
    pub fn maker(&self, name: &str) -> Option<&Maker> {
        self.makers.get(&lookup_key(name))
    }

    /// The model `model` of `maker`, by its name or an alias, in any spelling.
    pub fn model(&self, maker: &str, model: &str) -> Option<&DeviceModel> {
        let maker_key = lookup_key(maker);
        let model_key = lookup_key(model);
        let key = self.aliases.get(&(maker_key.clone(), model_key.clone())).cloned().unwrap_or(model_key);
        self.models.get(&(maker_key, key))
    }

    /// Every maker, by name.
    pub fn makers(&self) -> impl Iterator<Item = &Maker> {
        self.makers.values()
    }

    /// Every model, by maker and name.
    pub fn models(&self) -> impl Iterator<Item = &DeviceModel> {
        self.models.values()
    }

    /// How many models.
    pub fn model_count(&self) -> usize {
        self.models.len()
    }

    /// Adds or replaces a maker.
    fn upsert_maker(&mut self, maker: Maker) -> bool {
        self.makers.insert(lookup_key(&maker.name), maker).is_some()
    }

    /// Adds or replaces a model (under its maker's canonical name); true if it replaced one.
    fn upsert_model(&mut self, mut model: DeviceModel) -> bool {
        let maker_key = lookup_key(&model.maker);
        if let Some(maker) = self.makers.get(&maker_key) {
            model.maker = maker.name.clone();
        }
        let model_key = lookup_key(&model.model);
        self.aliases.retain(|(m, _), target| !(m == &maker_key && target == &model_key));
        for alias in &model.aliases {
            self.aliases.insert((maker_key.clone(), lookup_key(alias)), model_key.clone());
        }
        self.models.insert((maker_key, model_key), model).is_some()
    }
}

#[cfg(test)]
mod tests;
