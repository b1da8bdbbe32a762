//! What a metro exit charges: the [`FarePolicy`] trait, implemented by a `yitong-fare` city.

use std::sync::Arc;

use yitong_fare::{City, Trip};
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
    /// Fen paid on this card's counted metro rides in the calendar month of the entry, before
    /// this trip.
    pub month_spent_fen: u32,
}

/// The fare of a metro trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetroFare {
    /// The full fare, in fen (before what the entry gate already charged).
    pub fare_fen: u32,
    /// The part that counts towards the card's monthly spend (airport lines do not).
    pub month_counted_fen: u32,
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
    /// The fare of `trip`.
    fn metro_fare(&self, trip: &MetroTrip) -> Result<MetroFare, FareError>;
}

impl FarePolicy for City {
    fn metro_fare(&self, trip: &MetroTrip) -> Result<MetroFare, FareError> {
        let engine = self.engine().ok_or_else(|| FareError(format!("{} has no metro", self.profile().name)))?;
        let network = engine.network();
        let station = |s: StationId| {
            network.station_by_code(s.station).ok_or_else(|| {
                FareError(format!("station code {} is not on the {} network", s.station, network.name()))
            })
        };
        let quote = engine
            .quote(&Trip {
                from: station(trip.entry)?,
                to: station(trip.exit)?,
                entry_at: trip.entry_at,
                exit_at: trip.exit_at,
                month_spent_fen: trip.month_spent_fen,
            })
            .map_err(|e| FareError(e.to_string()))?;
        Ok(MetroFare { fare_fen: quote.fare_fen, month_counted_fen: quote.month_counted_fen })
    }
}

impl<T: FarePolicy + ?Sized> FarePolicy for Arc<T> {
    fn metro_fare(&self, trip: &MetroTrip) -> Result<MetroFare, FareError> {
        (**self).metro_fare(trip)
    }
}
