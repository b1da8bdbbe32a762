//! The fare engine: a network, a city's metro rules, and the distance tables built once when
//! the city loads. [`FareEngine::quote`] prices a trip without allocating.

use yitong_profile::DateTime;

use crate::distance::{DistanceTable, Hop};
use crate::error::{LoadError, QuoteError};
use crate::network::{Network, StationIndex};
use crate::rules::{percent_of, MetroRules, Pricing};

/// Fare rules partition the lines: the main network, and each special rule's lines.
#[derive(Clone, Debug)]
struct Group {
    name: String,
    pricing: Pricing,
    monthly: bool,
    table: DistanceTable,
    /// For special groups: their stations that are also on the main network.
    connectors: Vec<StationIndex>,
}

/// One priced part of a trip, on one fare group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leg {
    /// Fare group (0 is the main network).
    pub group: u8,
    /// From.
    pub from: StationIndex,
    /// To.
    pub to: StationIndex,
    /// Shortest distance on the group's lines.
    pub distance_m: u32,
    /// The group's fare for it, before discounts.
    pub fare_fen: u32,
}

/// Legs of a trip: a special line, the main network, a special line, at most.
pub const LEGS_MAX: usize = 3;

/// A priced trip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    /// What the rider pays, in fen.
    pub fare_fen: u32,
    /// Total shortest distance, in metres.
    pub distance_m: u32,
    /// The part of the fare that counts towards the monthly spend.
    pub month_counted_fen: u32,
    /// Fare before discounts and surcharges.
    pub base_fare_fen: u32,
    /// Percentage the monthly discount left to pay (100: none).
    pub monthly_percent: u8,
    /// Whether the early-morning discount applied.
    pub off_peak: bool,
    /// Overstay surcharge added.
    pub overstay_fen: u32,
    legs: [Option<Leg>; LEGS_MAX],
}

impl Quote {
    /// The legs, in travel order.
    pub fn legs(&self) -> impl Iterator<Item = &Leg> {
        self.legs.iter().flatten()
    }
}

/// A trip to price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trip {
    /// Entry station.
    pub from: StationIndex,
    /// Exit station.
    pub to: StationIndex,
    /// Entry time.
    pub entry_at: DateTime,
    /// Exit time.
    pub exit_at: DateTime,
    /// Fen paid on counted metro rides in the calendar month of the entry, before this trip.
    pub month_spent_fen: u32,
}

/// A network priced by a city's rules.
#[derive(Clone, Debug)]
pub struct FareEngine {
    network: Network,
    rules: MetroRules,
    groups: Vec<Group>,
    off_peak_station: Vec<bool>,
}

impl FareEngine {
    /// Builds the distance tables of every fare group. `file` names the rules in errors.
    pub fn new(network: Network, rules: MetroRules, file: &str) -> Result<Self, LoadError> {
        let line_count = network.lines().len();
        let mut claimed = vec![false; line_count];
        let mut specials = Vec::new();
        for (i, rule) in rules.lines.iter().enumerate() {
            let mut allowed = vec![false; line_count];
            for name in &rule.lines {
                // A city's rules may name lines a small network does not have.
                if let Some(l) = network.line_index(name) {
                    if claimed[l] {
                        return Err(LoadError::new(file, format!("line {name} is in two fare rules"))
                            .in_field(format!("metro.lines[{i}].lines")));
                    }
                    claimed[l] = true;
                    allowed[l] = true;
                }
            }
            if allowed.iter().any(|a| *a) {
                specials.push((rule.clone(), allowed));
            }
        }
        let main_allowed: Vec<bool> = claimed.iter().map(|c| !c).collect();
        let main = DistanceTable::build(&network, &main_allowed);
        let mut groups = vec![Group {
            name: "network".into(),
            pricing: Pricing::Distance(rules.main.clone()),
            monthly: true,
            table: main,
            connectors: Vec::new(),
        }];
        for (rule, allowed) in specials {
            let table = DistanceTable::build(&network, &allowed);
            let connectors =
                (0..network.stations().len()).filter(|&s| table.contains(s) && groups[0].table.contains(s)).collect();
            groups.push(Group { name: rule.name, pricing: rule.pricing, monthly: rule.monthly, table, connectors });
        }
        assert!(groups.len() <= usize::from(u8::MAX));
        let mut off_peak_station = vec![false; network.stations().len()];
        if let Some(off_peak) = &rules.off_peak {
            for name in &off_peak.stations {
                if let Ok(s) = network.lookup(name) {
                    off_peak_station[s] = true;
                }
            }
        }
        Ok(FareEngine { network, rules, groups, off_peak_station })
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The rules.
    pub fn rules(&self) -> &MetroRules {
        &self.rules
    }

    /// The name of a fare group.
    pub fn group_name(&self, group: u8) -> &str {
        &self.groups[usize::from(group)].name
    }

    /// Prices a trip.
    pub fn quote(&self, trip: &Trip) -> Result<Quote, QuoteError> {
        let n = self.network.stations().len();
        if trip.from >= n || trip.to >= n {
            return Err(self.no_route(trip));
        }
        let legs = if trip.from == trip.to { self.same_station(trip.from) } else { self.cheapest_route(trip) }
            .ok_or_else(|| self.no_route(trip))?;
        Ok(self.price(trip, legs))
    }

    /// The stations and lines of the quote's route.
    pub fn path(&self, quote: &Quote) -> Vec<Hop> {
        let mut hops: Vec<Hop> = Vec::new();
        for leg in quote.legs() {
            let table = &self.groups[usize::from(leg.group)].table;
            let path = table.path(leg.from, leg.to).unwrap_or_else(|| vec![Hop { station: leg.from, line: None }]);
            // Legs meet at a station: do not repeat it.
            let skip = usize::from(hops.last().is_some_and(|h| h.station == leg.from));
            hops.extend(path.into_iter().skip(skip));
        }
        hops
    }

    fn no_route(&self, trip: &Trip) -> QuoteError {
        let name = |s: StationIndex| self.network.stations().get(s).map_or_else(|| format!("#{s}"), |s| s.name.clone());
        QuoteError::NoRoute { from: name(trip.from), to: name(trip.to) }
    }

    fn same_station(&self, station: StationIndex) -> Option<[Option<Leg>; LEGS_MAX]> {
        let group = self.groups.iter().position(|g| g.table.contains(station))?;
        let fare_fen = self.rules.same_station_fare_fen.unwrap_or_else(|| self.groups[group].pricing.fare_fen(0));
        Some([Some(Leg { group: group as u8, from: station, to: station, distance_m: 0, fare_fen }), None, None])
    }

    fn leg(&self, group: usize, from: StationIndex, to: StationIndex) -> Option<Leg> {
        let g = &self.groups[group];
        let distance_m = g.table.distance_m(from, to)?;
        Some(Leg { group: group as u8, from, to, distance_m, fare_fen: g.pricing.fare_fen(distance_m) })
    }

    /// The cheapest way through the fare groups (ties: the shorter), with a special line at
    /// either end at most: riders pass a gate between an airport express or a tram and the
    /// main network.
    fn cheapest_route(&self, trip: &Trip) -> Option<[Option<Leg>; LEGS_MAX]> {
        let (from, to) = (trip.from, trip.to);
        let mut best: Option<[Option<Leg>; LEGS_MAX]> = None;
        let mut consider = |legs: [Option<Leg>; LEGS_MAX]| {
            let key = |l: &[Option<Leg>; LEGS_MAX]| {
                l.iter()
                    .flatten()
                    .fold((0u64, 0u64), |(f, d), leg| (f + u64::from(leg.fare_fen), d + u64::from(leg.distance_m)))
            };
            if best.as_ref().is_none_or(|b| key(&legs) < key(b)) {
                best = Some(legs);
            }
        };
        for g in 0..self.groups.len() {
            if let Some(leg) = self.leg(g, from, to) {
                consider([Some(leg), None, None]);
            }
        }
        let main = &self.groups[0].table;
        for s in 1..self.groups.len() {
            let special = &self.groups[s];
            for &x in &special.connectors {
                // Special line first, then the network.
                if special.table.contains(from) && main.contains(to) && x != from && x != to {
                    if let (Some(a), Some(b)) = (self.leg(s, from, x), self.leg(0, x, to)) {
                        consider([Some(a), Some(b), None]);
                    }
                }
                // The network, then the special line.
                if main.contains(from) && special.table.contains(to) && x != from && x != to {
                    if let (Some(a), Some(b)) = (self.leg(0, from, x), self.leg(s, x, to)) {
                        consider([Some(a), Some(b), None]);
                    }
                }
            }
            // Special lines at both ends.
            for t in 1..self.groups.len() {
                if t == s || !special.table.contains(from) || !self.groups[t].table.contains(to) {
                    continue;
                }
                for &x in &special.connectors {
                    for &y in &self.groups[t].connectors {
                        if let (Some(a), Some(b), Some(c)) =
                            (self.leg(s, from, x), self.leg(0, x, y), self.leg(t, y, to))
                        {
                            consider([Some(a), Some(b), Some(c)]);
                        }
                    }
                }
            }
        }
        best
    }

    fn price(&self, trip: &Trip, legs: [Option<Leg>; LEGS_MAX]) -> Quote {
        let rules = &self.rules;
        let off_peak =
            rules.off_peak.as_ref().filter(|o| self.off_peak_station[trip.from] && o.applies_at(&trip.entry_at));
        let monthly_percent = rules.monthly_percent(trip.month_spent_fen);
        let (mut base, mut distance_m, mut counted, mut not_counted) = (0u32, 0u32, 0u32, 0u32);
        for leg in legs.iter().flatten() {
            base = base.saturating_add(leg.fare_fen);
            distance_m = distance_m.saturating_add(leg.distance_m);
            let group = &self.groups[usize::from(leg.group)];
            let mut fen = leg.fare_fen;
            if leg.group == 0 {
                if let Some(o) = off_peak {
                    fen = percent_of(fen, o.percent);
                }
            }
            if group.monthly {
                counted = counted.saturating_add(fen);
            } else {
                not_counted = not_counted.saturating_add(fen);
            }
        }
        // The monthly discount applies to what counts towards the month, rounded once.
        let counted = percent_of(counted, monthly_percent);
        let stayed_s = trip.exit_at.seconds_since_epoch() - trip.entry_at.seconds_since_epoch();
        let overstay_fen =
            rules.overstay.filter(|o| stayed_s > i64::from(o.after_minutes) * 60).map_or(0, |o| o.surcharge_fen);
        let month_counted_fen = counted.saturating_add(overstay_fen);
        Quote {
            fare_fen: month_counted_fen.saturating_add(not_counted),
            distance_m,
            month_counted_fen,
            base_fare_fen: base,
            monthly_percent,
            off_peak: off_peak.is_some(),
            overstay_fen,
            legs,
        }
    }
}
