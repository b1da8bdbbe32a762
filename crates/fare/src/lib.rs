//! The fare engine: metro networks, shortest-path distances and the fare rules of the cities.
//!
//! The principal type is [`City`]: a [`CityProfile`] (issuer, card AIDs, time zone, metro and bus
//! rules, read from a documented TOML file) with a [`FareEngine`] over its network. The engine
//! computes the shortest network distance between every pair of stations once, when the city
//! loads ([`DistanceTable`], Dijkstra from every station), then prices a trip with the city's
//! rules: distance bands with grace, lines priced apart (a tram, airport expresses), same-station
//! and overstay charges, the monthly discount from the spend the card carries, and the
//! early-morning discount. Networks come from the built-in samples ([`network_file`]) or from
//! `yitong-fare-import`, which reads Beijing-Subway-Tools folders and GTFS feeds (whose Fares v2
//! tables price journeys themselves); gates link this crate without those readers.
//!
//! The crate does no I/O; it knows nothing of cards. The gate plugs a [`City`] into its
//! `FarePolicy` (`yitong-terminal`).
//!
//! ```
//! use yitong_fare::{City, Trip};
//! use yitong_profile::DateTime;
//! let beijing = City::builtin("beijing").unwrap();
//! let engine = beijing.engine().unwrap();
//! let at = DateTime::parse("2026-11-25 08:00").unwrap();
//! let from = engine.network().lookup("Xidan").unwrap();
//! let to = engine.network().lookup("国贸").unwrap();
//! let quote = engine.quote(&Trip { from, to, entry_at: at, exit_at: at, month_spent_fen: 0 }).unwrap();
//! assert_eq!((quote.distance_m, quote.fare_fen), (6_200, 400));
//! ```
#![forbid(unsafe_code)]

mod city;
mod codes;
mod distance;
mod engine;
mod error;
mod network;
pub mod network_file;
mod rules;

pub use city::{BusRules, CityProfile, BUILTIN_CITIES};
pub use codes::CodeTable;
pub use distance::{DistanceTable, Hop};
pub use engine::{FareEngine, Leg, Quote, Trip, LEGS_MAX};
pub use error::{LoadError, QuoteError};
pub use network::{
    derived_code, CodeOrigin, Line, LineIndex, Network, NetworkBuilder, Station, StationIndex, STATIONS_MAX,
};
pub use rules::{
    percent_of, BandTable, LineRule, MetroRules, MonthlyTier, OffPeak, Overstay, Pricing, DOUBLE_TAP_WINDOW_S_DEFAULT,
    DOUBLE_TAP_WINDOW_S_MAX,
};

/// A city ready to price trips: its profile and, when it has a metro, the fare engine over its
/// network.
#[derive(Clone, Debug)]
pub struct City {
    profile: CityProfile,
    engine: Option<FareEngine>,
}

impl City {
    /// A built-in city with its sample network.
    pub fn builtin(name: &str) -> Result<Self, LoadError> {
        let profile = CityProfile::builtin(name).ok_or_else(|| {
            let known: Vec<&str> = BUILTIN_CITIES.iter().map(|(n, _)| *n).collect();
            LoadError::new(name, format!("unknown city; known: {}", known.join(", ")))
        })??;
        let network = match &profile.network {
            Some(n) => Some(network_file::sample(n).ok_or_else(|| LoadError::new(n, "no such sample network"))??),
            None => None,
        };
        Self::new(profile, network, None)
    }

    /// The built-in city whose cards carry `city_code`, with its sample network.
    pub fn builtin_by_code(city_code: u16) -> Option<Self> {
        // Only the matching city's network is built: the city files alone tell the codes.
        let name = BUILTIN_CITIES
            .iter()
            .map(|(name, _)| *name)
            .find(|name| CityProfile::builtin(name).and_then(Result::ok).is_some_and(|p| p.city_code == city_code))?;
        City::builtin(name).ok()
    }

    /// A city over `network` (its own sample, or an imported one). `off_peak_stations`, when
    /// given (from reference data), replaces the city file's list. The city file's code table
    /// (`[metro.codes]`) is applied over the network's codes; a station it names that the network
    /// does not have, or a code it makes shared, refuses the city.
    pub fn new(
        mut profile: CityProfile,
        network: Option<Network>,
        off_peak_stations: Option<Vec<String>>,
    ) -> Result<Self, LoadError> {
        let file = format!("cities/{}.toml", profile.name);
        let engine = match (profile.metro.as_mut(), network) {
            (Some(rules), Some(network)) => {
                if let (Some(o), Some(stations)) = (rules.off_peak.as_mut(), off_peak_stations) {
                    o.stations = stations;
                }
                let network =
                    network.apply_codes(&rules.codes).map_err(|e| LoadError::new(&file, e).in_field("metro.codes"))?;
                Some(FareEngine::new(network, rules.clone(), &file)?)
            }
            (None, Some(_)) => return Err(LoadError::new(file, "this city has no metro rules for a network")),
            (_, None) => None,
        };
        Ok(City { profile, engine })
    }

    /// The profile.
    pub fn profile(&self) -> &CityProfile {
        &self.profile
    }

    /// The fare engine, when the city has a metro.
    pub fn engine(&self) -> Option<&FareEngine> {
        self.engine.as_ref()
    }
}
