//! What a metro exit charges: the [`FarePolicy`] trait, implemented by a `yitong-fare` city.

use std::sync::Arc;

use serde::Serialize;
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

/// The fare of a metro trip, with how it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetroFare {
    /// The full fare, in fen (before what the entry gate already charged).
    pub fare_fen: u32,
    /// The part that counts towards the card's monthly spend (airport lines do not).
    pub month_counted_fen: u32,
    /// Shortest distance, in metres.
    pub distance_m: u32,
    /// The fare by distance, before discounts and surcharges.
    pub base_fare_fen: u32,
    /// Overstay surcharge added.
    pub overstay_fen: u32,
    /// Percentage of the counted fare the monthly discount left to pay (100: none).
    pub monthly_percent: u8,
    /// Whether the early-morning discount applied.
    pub off_peak: bool,
    /// Already charged at the entry gate, deducted at the exit.
    pub entry_charged_fen: u32,
    /// The city's fare for an incomplete trip (entry of another city or an unknown station).
    pub incomplete_trip: bool,
}

impl std::fmt::Display for MetroFare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let yuan = |fen: u32| yuan(i64::from(fen));
        if self.incomplete_trip {
            return write!(f, "incomplete-trip fare {}", yuan(self.fare_fen));
        }
        write!(f, "base {} for {:.1} km", yuan(self.base_fare_fen), f64::from(self.distance_m) / 1000.0)?;
        if self.off_peak {
            f.write_str(", early-morning discount")?;
        }
        if self.monthly_percent != 100 {
            write!(f, ", monthly discount (pay {} %)", self.monthly_percent)?;
        }
        if self.overstay_fen > 0 {
            write!(f, ", overstay +{}", yuan(self.overstay_fen))?;
        }
        if self.entry_charged_fen > 0 {
            write!(f, ", {} paid at entry", yuan(self.entry_charged_fen))?;
        }
        write!(f, " = {}", yuan(self.fare_fen))
    }
}

/// Fen as yuan with two decimals, for messages.
pub(crate) fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.unsigned_abs() / 100, fen.unsigned_abs() % 100)
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
    /// The name of the station with this code, `None` when the network does not know it.
    fn station_name(&self, station: StationId) -> Option<String>;
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
        Ok(MetroFare {
            fare_fen: quote.fare_fen,
            month_counted_fen: quote.month_counted_fen,
            distance_m: quote.distance_m,
            base_fare_fen: quote.base_fare_fen,
            overstay_fen: quote.overstay_fen,
            monthly_percent: quote.monthly_percent,
            off_peak: quote.off_peak,
            entry_charged_fen: 0,
            incomplete_trip: false,
        })
    }

    fn station_name(&self, station: StationId) -> Option<String> {
        let network = self.engine()?.network();
        network.station_by_code(station.station).map(|i| network.stations()[i].name.clone())
    }
}

impl<T: FarePolicy + ?Sized> FarePolicy for Arc<T> {
    fn metro_fare(&self, trip: &MetroTrip) -> Result<MetroFare, FareError> {
        (**self).metro_fare(trip)
    }

    fn station_name(&self, station: StationId) -> Option<String> {
        (**self).station_name(station)
    }
}
