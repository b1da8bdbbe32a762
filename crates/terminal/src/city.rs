//! What a gate needs of its city besides the fare engine, and how stations become card codes.

use yitong_fare::{BusRules, City, CityProfile, QuoteError};
use yitong_profile::files::StationId;

/// A city's gate policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CityPolicy {
    /// Name, lower case (`beijing`).
    pub name: String,
    /// City code (BCD, `1000` for Beijing), written into trip records.
    pub city_code: u16,
    /// The metro operator's acceptor institution code, written into EF1E.
    pub institution: [u8; 8],
    /// Charged at metro entry (0 in Beijing; exit charges the rest of the fare).
    pub metro_entry_charge_fen: u32,
    /// Balance (plus overdraft) a card needs to enter the metro.
    pub metro_min_entry_balance_fen: u32,
    /// Bus fares: flat, with a transfer discount where the city has one.
    pub bus: BusRules,
}

impl From<&CityProfile> for CityPolicy {
    fn from(p: &CityProfile) -> Self {
        CityPolicy {
            name: p.name.clone(),
            city_code: p.city_code,
            institution: p.institution,
            metro_entry_charge_fen: p.metro.as_ref().map_or(0, |m| m.entry_charge_fen),
            metro_min_entry_balance_fen: p.metro.as_ref().map_or(0, |m| m.min_entry_balance_fen),
            bus: p.bus.clone(),
        }
    }
}

/// A metro station as gates write it: the code of its first line and its station code, with its
/// name.
pub fn station_id(city: &City, name: &str) -> Result<(StationId, String), QuoteError> {
    let engine = city.engine().ok_or_else(|| QuoteError::NoFare(format!("{} has no metro", city.profile().name)))?;
    let network = engine.network();
    let index = network.lookup(name)?;
    let station = &network.stations()[index];
    let line = station.lines.first().map_or(0, |&l| network.lines()[l].code);
    Ok((StationId { line, station: station.code }, station.name.clone()))
}
