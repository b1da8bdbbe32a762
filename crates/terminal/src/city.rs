//! What a gate needs of its city besides the fare engine, and how stations become card codes.

use yitong_fare::{BusRules, City, CityProfile, QuoteError, DOUBLE_TAP_WINDOW_S_DEFAULT};
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
    /// Seconds after an entry within which another entry tap at the same station is a double tap
    /// (the city file's `metro.double_tap_window_s`).
    pub double_tap_window_s: u32,
    /// What an exit charges when the entry is of another city or an unknown station; `None`
    /// refuses the exit (the city file's `metro.incomplete_trip_fare_fen`).
    pub incomplete_trip_fare_fen: Option<u32>,
    /// The highest balance any card may hold; a card reporting more is refused as suspect.
    pub card_balance_max_fen: u32,
}

/// Default of [`CityPolicy::card_balance_max_fen`]: 1,000 yuan, the limit T-Union issuers set
/// (and the card's personalization default).
pub const CARD_BALANCE_MAX_FEN_DEFAULT: u32 = 100_000;

impl From<&CityProfile> for CityPolicy {
    fn from(p: &CityProfile) -> Self {
        CityPolicy {
            name: p.name.clone(),
            city_code: p.city_code,
            institution: p.institution,
            metro_entry_charge_fen: p.metro.as_ref().map_or(0, |m| m.entry_charge_fen),
            metro_min_entry_balance_fen: p.metro.as_ref().map_or(0, |m| m.min_entry_balance_fen),
            bus: p.bus.clone(),
            double_tap_window_s: p.metro.as_ref().map_or(DOUBLE_TAP_WINDOW_S_DEFAULT, |m| m.double_tap_window_s),
            incomplete_trip_fare_fen: p.metro.as_ref().and_then(|m| m.incomplete_trip_fare_fen),
            card_balance_max_fen: CARD_BALANCE_MAX_FEN_DEFAULT,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_copies_the_double_tap_window_and_the_incomplete_trip_fare() {
        let beijing = CityPolicy::from(City::builtin("beijing").unwrap().profile());
        assert_eq!((beijing.double_tap_window_s, beijing.incomplete_trip_fare_fen), (300, None));
        let (_, text) = yitong_fare::BUILTIN_CITIES[0];
        let text =
            text.replace("double_tap_window_s = 300", "double_tap_window_s = 60\nincomplete_trip_fare_fen = 800");
        let policy = CityPolicy::from(&CityProfile::parse(&text, "b.toml").unwrap());
        assert_eq!((policy.double_tap_window_s, policy.incomplete_trip_fare_fen), (60, Some(800)));
        // A city without metro keeps the default window.
        let jilin = CityPolicy::from(City::builtin("jilin").unwrap().profile());
        assert_eq!((jilin.double_tap_window_s, jilin.incomplete_trip_fare_fen), (300, None));
    }
}
