//! A city's fare rules as data: distance bands, special lines, same-station and overstay
//! charges, monthly discounts and the off-peak discount.

use yitong_profile::DateTime;

use crate::codes::CodeTable;

/// Fares by distance: the first band whose upper edge is at least the distance; past the last
/// edge, either an open-ended band or a step per further distance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BandTable {
    /// (upper edge in metres inclusive, or `None` for the open-ended last band; fare in fen).
    pub bands: Vec<(Option<u32>, u32)>,
    /// Past the last edge: every further `.0` metres or part of them cost `.1` fen more.
    pub beyond: Option<(u32, u32)>,
}

impl BandTable {
    /// Checks that edges increase, fares do not decrease, and every distance has a fare.
    pub fn validate(&self) -> Result<(), String> {
        let Some(&(last_edge, _)) = self.bands.last() else { return Err("no band".into()) };
        for (i, w) in self.bands.windows(2).enumerate() {
            match (w[0].0, w[1].0) {
                (None, _) => return Err(format!("band {} has no upper edge but is not the last", i + 1)),
                (Some(a), Some(b)) if a >= b => {
                    return Err(format!("band {} does not end after band {}", i + 2, i + 1))
                }
                _ => {}
            }
            if w[1].1 < w[0].1 {
                return Err(format!("band {} is cheaper than band {}", i + 2, i + 1));
            }
        }
        match (last_edge, self.beyond) {
            (None, Some(_)) => Err("an open-ended last band and a step beyond it".into()),
            (Some(_), None) => Err("the last band has an edge but nothing covers longer trips".into()),
            (_, Some((0, _))) => Err("a step of 0 m".into()),
            _ => Ok(()),
        }
    }

    /// The fare for `distance_m`.
    pub fn fare_fen(&self, distance_m: u32) -> u32 {
        for &(edge, fare) in &self.bands {
            match edge {
                Some(edge) if distance_m <= edge => return fare,
                None => return fare,
                _ => {}
            }
        }
        let (Some(last_edge), last_fare) = self.bands[self.bands.len() - 1] else { unreachable!("validated") };
        let (every_m, step_fen) = self.beyond.expect("validated: a step follows an edged last band");
        let steps = (distance_m - last_edge).div_ceil(every_m);
        last_fare.saturating_add(steps.saturating_mul(step_fen))
    }
}

/// How a fare rule prices a ride.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pricing {
    /// The same fare for any ride.
    Flat(u32),
    /// By shortest distance on the rule's lines.
    Distance(BandTable),
}

impl Pricing {
    /// The fare of a ride of `distance_m`.
    pub fn fare_fen(&self, distance_m: u32) -> u32 {
        match self {
            Pricing::Flat(fen) => *fen,
            Pricing::Distance(t) => t.fare_fen(distance_m),
        }
    }
}

/// Lines priced apart from the main network (a tram, an airport express).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRule {
    /// The rule's name.
    pub name: String,
    /// Line names it covers.
    pub lines: Vec<String>,
    /// Its pricing.
    pub pricing: Pricing,
    /// Whether rides on it get the monthly discount and count towards the monthly spend.
    pub monthly: bool,
}

/// A monthly discount tier: rides starting when the month's spend is at least `from_spent_fen`
/// cost `percent` % of their fare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonthlyTier {
    /// Spend in the calendar month before the ride, in fen.
    pub from_spent_fen: u32,
    /// Percentage of the fare to pay.
    pub percent: u8,
}

/// A discount for early entries on weekdays at listed stations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffPeak {
    /// Percentage of the main-network fare to pay.
    pub percent: u8,
    /// Entries strictly before this hour and minute, Monday to Friday.
    pub before: (u8, u8),
    /// Station names.
    pub stations: Vec<String>,
}

impl OffPeak {
    /// Whether an entry at `at` is in the discounted window (public holidays are not modelled).
    pub fn applies_at(&self, at: &DateTime) -> bool {
        at.weekday() < 5 && (at.hour, at.minute) < self.before
    }
}

/// The surcharge for staying long inside the paid area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overstay {
    /// Free minutes between entry and exit.
    pub after_minutes: u32,
    /// Charged once past them, in fen.
    pub surcharge_fen: u32,
}

/// A city's metro fare rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetroRules {
    /// Charged by the entry gate (the exit charges the rest).
    pub entry_charge_fen: u32,
    /// Balance (plus overdraft) needed to enter.
    pub min_entry_balance_fen: u32,
    /// Fare when entering and leaving at the same station (else the shortest band's).
    pub same_station_fare_fen: Option<u32>,
    /// Overstay surcharge.
    pub overstay: Option<Overstay>,
    /// The main network's distance bands.
    pub main: BandTable,
    /// Lines priced apart.
    pub lines: Vec<LineRule>,
    /// Monthly discount tiers, by increasing spend.
    pub monthly: Vec<MonthlyTier>,
    /// Early-entry discount.
    pub off_peak: Option<OffPeak>,
    /// Seconds after an entry within which a second tap at an entry gate of the same station is
    /// refused as a double tap rather than charged as a same-station exit.
    pub double_tap_window_s: u32,
    /// What an exit charges when the card's entry is of another city or of a station this
    /// network does not know; `None`: the exit is refused and the rider sent to the service desk.
    pub incomplete_trip_fare_fen: Option<u32>,
    /// Station and line codes set by hand (the city file's `[metro.codes]`), applied over the
    /// network's when the city loads.
    pub codes: CodeTable,
}

/// `double_tap_window_s` when the city file gives none.
pub const DOUBLE_TAP_WINDOW_S_DEFAULT: u32 = 300;
/// The longest double-tap window a city file may set: longer would refuse riders who really
/// come back to the station they left.
pub const DOUBLE_TAP_WINDOW_S_MAX: u32 = 3_600;

impl MetroRules {
    /// The percentage a ride pays after `month_spent_fen` in the month (100 without a tier).
    pub fn monthly_percent(&self, month_spent_fen: u32) -> u8 {
        self.monthly.iter().rev().find(|t| month_spent_fen >= t.from_spent_fen).map_or(100, |t| t.percent)
    }
}

/// `percent` % of `fen`, rounded half up to a whole fen.
pub fn percent_of(fen: u32, percent: u8) -> u32 {
    let v = (u64::from(fen) * u64::from(percent) + 50) / 100;
    u32::try_from(v).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_ended_and_stepped_band_tables() {
        let daxing =
            BandTable { bands: vec![(Some(20_000), 1_000), (Some(30_000), 2_500), (None, 3_500)], beyond: None };
        daxing.validate().unwrap();
        assert_eq!(
            [0, 20_000, 20_001, 30_000, 30_001, 90_000].map(|d| daxing.fare_fen(d)),
            [1_000, 1_000, 2_500, 2_500, 3_500, 3_500]
        );
        let bad = BandTable { bands: vec![(Some(100), 300)], beyond: None };
        assert!(bad.validate().is_err());
        let bad = BandTable { bands: vec![(Some(100), 300), (Some(100), 400)], beyond: Some((10, 1)) };
        assert!(bad.validate().is_err());
        let bad = BandTable { bands: vec![(Some(100), 300), (Some(200), 200)], beyond: Some((10, 1)) };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn percent_rounds_half_up() {
        assert_eq!(percent_of(300, 80), 240);
        assert_eq!(percent_of(1, 50), 1);
        assert_eq!(percent_of(3, 50), 2);
        assert_eq!(percent_of(999, 90), 899);
    }
}
