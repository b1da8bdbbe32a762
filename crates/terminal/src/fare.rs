//! What a metro exit charges: the [`FarePolicy`] trait, and a simple distance-band policy that
//! serves until a city's full fare engine is plugged in.

use std::collections::BTreeMap;

use yitong_profile::files::StationId;
use yitong_profile::DateTime;

/// A metro trip as the exit gate knows it from the card's EF1A record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetroTrip {
    /// City code of the network (BCD, `1000` for Beijing).
    pub city_code: u16,
    /// Entry station.
    pub entry: StationId,
    /// Entry time.
    pub entry_at: DateTime,
    /// Exit station.
    pub exit: StationId,
    /// Exit time.
    pub exit_at: DateTime,
    /// Fen paid on this card's metro trips in the calendar month of the entry, before this trip.
    pub month_spent_fen: u32,
}

/// Why no fare could be computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FareError(pub String);

impl std::fmt::Display for FareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FareError {}

/// The city's fare rules for metro trips.
pub trait FarePolicy {
    /// The full fare of `trip` in fen (before what the entry gate already charged).
    fn metro_fare(&self, trip: &MetroTrip) -> Result<u32, FareError>;
}

/// One distance band: up to `max_distance_m` (inclusive) the fare is `fare_fen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Band {
    /// Upper edge of the band, in metres, inclusive.
    pub max_distance_m: u32,
    /// Fare of the band, in fen.
    pub fare_fen: u32,
}

/// Fares by distance bands on stations placed along a line: distance is the difference of
/// positions. A stand-in for a real network fare engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistanceBandFare {
    positions_m: BTreeMap<StationId, u32>,
    bands: Vec<Band>,
    beyond_step_m: u32,
    beyond_step_fen: u32,
}

impl DistanceBandFare {
    /// A policy over `positions_m`; past the last band each further `beyond_step_m` metres or part
    /// of them cost `beyond_step_fen` more.
    ///
    /// # Panics
    /// When `bands` is empty or not increasing, or `beyond_step_m` is zero: the policy's author
    /// wrote it wrong.
    pub fn new(
        positions_m: BTreeMap<StationId, u32>,
        bands: Vec<Band>,
        beyond_step_m: u32,
        beyond_step_fen: u32,
    ) -> Self {
        assert!(!bands.is_empty() && beyond_step_m > 0);
        assert!(bands.windows(2).all(|w| w[0].max_distance_m < w[1].max_distance_m && w[0].fare_fen <= w[1].fare_fen));
        DistanceBandFare { positions_m, bands, beyond_step_m, beyond_step_fen }
    }

    /// The fare for a distance.
    pub fn fare_for_distance(&self, distance_m: u32) -> u32 {
        if let Some(band) = self.bands.iter().find(|b| distance_m <= b.max_distance_m) {
            return band.fare_fen;
        }
        let last = self.bands[self.bands.len() - 1];
        let steps = (distance_m - last.max_distance_m).div_ceil(self.beyond_step_m);
        last.fare_fen.saturating_add(steps.saturating_mul(self.beyond_step_fen))
    }

    fn position(&self, station: &StationId) -> Result<u32, FareError> {
        self.positions_m
            .get(station)
            .copied()
            .ok_or_else(|| FareError(format!("station {}/{} is not on this network", station.line, station.station)))
    }
}

impl FarePolicy for DistanceBandFare {
    fn metro_fare(&self, trip: &MetroTrip) -> Result<u32, FareError> {
        let distance_m = self.position(&trip.entry)?.abs_diff(self.position(&trip.exit)?);
        Ok(self.fare_for_distance(distance_m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Beijing's published bands: 3 yuan to 6 km, 4 to 12, 5 to 22, 6 to 32, then 1 yuan per
    /// further 20 km, each edge with 100 m of grace.
    fn beijing_bands() -> DistanceBandFare {
        let bands = [(6_099, 300), (12_099, 400), (22_099, 500), (32_099, 600)]
            .map(|(m, f)| Band { max_distance_m: m, fare_fen: f })
            .to_vec();
        DistanceBandFare::new(BTreeMap::new(), bands, 20_000, 100)
    }

    #[test]
    fn band_edges_with_grace() {
        let p = beijing_bands();
        for (m, fen) in [(0, 300), (6_099, 300), (6_100, 400), (12_099, 400), (22_100, 600), (32_099, 600)] {
            assert_eq!(p.fare_for_distance(m), fen, "{m} m");
        }
        // 32,100 m starts the first 20 km step (7 yuan) up to 52,099 m.
        assert_eq!(p.fare_for_distance(32_100), 700);
        assert_eq!(p.fare_for_distance(52_099), 700);
        assert_eq!(p.fare_for_distance(52_100), 800);
    }

    #[test]
    fn unknown_station_is_an_error() {
        let p = beijing_bands();
        let at = DateTime::parse("2026-11-25 08:00").unwrap();
        let s = StationId { line: 1, station: 1 };
        let trip = MetroTrip { city_code: 0x1000, entry: s, entry_at: at, exit: s, exit_at: at, month_spent_fen: 0 };
        assert!(p.metro_fare(&trip).is_err());
    }
}
