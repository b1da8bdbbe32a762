//! GTFS feeds: stops, routes, trips and stop_times make the network; the Fares v2 tables price
//! journeys (`areas`, `stop_areas`, `networks` / `route_networks`, `timeframes` with their
//! `calendar` / `calendar_dates` service, `rider_categories`, `fare_media`, `fare_products`,
//! `fare_leg_rules`, `fare_leg_join_rules` and `fare_transfer_rules`).
//!
//! The network holds every stop pattern of every route (both directions, short variants): each
//! distinct sequence of stops is a line. Distances come from `shape_dist_traveled` (metres) where
//! a trip gives it on every stop, otherwise from the stops' coordinates along the pattern (great
//! circle between consecutive stops: an approximation, shorter than the road); only
//! distance-based rules use them. Stops no trip serves are kept and listed by
//! [`Feed::unserved_stops`].
//!
//! A leg is priced from what the specification needs: the stops' areas, the route's network and
//! the times; a path is looked up only for a distance-based rule. The rider may name the route or
//! trip taken ([`JourneyLeg::route`], [`JourneyLeg::trip`]); otherwise every route that serves the
//! two stops in that order is considered and the cheapest fare is given. Choices where the
//! specification leaves room are listed in `docs/fares.md`.

mod calendar;
mod fares;
mod table;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::OnceLock;

use yitong_fare::{DistanceTable, LoadError, Network, NetworkBuilder, StationIndex};
use yitong_profile::DateTime;

pub use fares::{JourneyQuote, PricedLeg, QuoteOptions};

use calendar::Services;
use fares::Fares;
use table::Table;

/// Legs a journey may have.
pub const JOURNEY_LEGS_MAX: usize = 16;
/// Distinct stop patterns a feed may have (each is a line of the network).
pub const PATTERNS_MAX: usize = 20_000;

/// A leg of a journey: one ride on one route, from boarding to alighting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JourneyLeg {
    /// Boarding stop (name, alias or stop ID).
    pub from: String,
    /// Alighting stop.
    pub to: String,
    /// Departure (boarding) time.
    pub departure: DateTime,
    /// Arrival (alighting) time.
    pub arrival: DateTime,
    /// The route ridden (`route_id` or its short name), when the rider names it.
    pub route: Option<String>,
    /// The trip ridden (`trip_id`), when known; it fixes the route and the stop pattern.
    pub trip: Option<String>,
}

impl JourneyLeg {
    /// A leg from `from` to `to` on whatever route serves them.
    pub fn new(from: &str, to: &str, departure: DateTime, arrival: DateTime) -> Self {
        JourneyLeg { from: from.into(), to: to.into(), departure, arrival, route: None, trip: None }
    }

    /// The same leg on the route `route`.
    pub fn on_route(mut self, route: &str) -> Self {
        self.route = Some(route.into());
        self
    }

    /// The same leg on the trip `trip`.
    pub fn on_trip(mut self, trip: &str) -> Self {
        self.trip = Some(trip.into());
        self
    }
}

#[derive(Clone, Debug)]
struct Route {
    id: String,
    name: String,
    network_id: Option<String>,
}

/// One distinct sequence of stops of a route: a line of the network.
#[derive(Clone, Debug)]
struct Pattern {
    route: usize,
    stops: Vec<StationIndex>,
    /// Metres from the first stop to each stop; `None` when the feed gives no way to measure.
    cumulative_m: Option<Vec<u32>>,
    /// The stop_times.txt line where measuring failed, for the error.
    unmeasured_line: Option<usize>,
}

impl Pattern {
    /// Positions (i, j), i < j, of a ride from `from` to `to`, the shortest such ride first.
    fn ride(&self, from: StationIndex, to: StationIndex) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        for (i, &s) in self.stops.iter().enumerate() {
            if s != from {
                continue;
            }
            if let Some(k) = self.stops[i + 1..].iter().position(|&t| t == to) {
                let j = i + 1 + k;
                if best.is_none_or(|(a, b)| j - i < b - a) {
                    best = Some((i, j));
                }
            }
        }
        best
    }
}

/// A GTFS feed: its network and, when present, its Fares v2 rules.
#[derive(Clone, Debug)]
pub struct Feed {
    network: Network,
    routes: Vec<Route>,
    route_index: HashMap<String, usize>,
    patterns: Vec<Pattern>,
    trip_pattern: HashMap<String, usize>,
    unserved_stops: Vec<String>,
    station_areas: Vec<BTreeSet<String>>,
    /// The network of each line of `network`, in line order.
    line_networks: Vec<Option<String>>,
    /// One distance table per network (key `None`: routes without a network), built on first
    /// use: only distance rules and rides over several routes of a network need them.
    tables: OnceLock<BTreeMap<Option<String>, DistanceTable>>,
    fares: Fares,
}

/// Great-circle metres between two points (haversine, mean Earth radius).
fn great_circle_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    const EARTH_RADIUS_M: f64 = 6_371_008.8;
    let (lat1, lat2) = (a.0.to_radians(), b.0.to_radians());
    let (dlat, dlon) = ((b.0 - a.0).to_radians(), (b.1 - a.1).to_radians());
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Metres as a whole number, at least 1 (the network has no zero-length segment).
fn whole_metres(m: f64) -> u32 {
    if m.is_finite() && m >= 1.0 {
        // In range: checked by the caller's bounds (under 1e9 m).
        m.round().min(1e9) as u32
    } else {
        1
    }
}

struct StopRow<'a> {
    sequence: u32,
    line: usize,
    stop: &'a str,
    shape_dist: Option<f64>,
}

impl Feed {
    /// Reads a feed folder.
    pub fn load_dir(dir: &Path) -> Result<Feed, LoadError> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stops = Table::read(dir, "stops.txt", true)?.expect("required");
        let routes_t = Table::read(dir, "routes.txt", true)?.expect("required");
        let trips = Table::read(dir, "trips.txt", true)?.expect("required");
        let stop_times = Table::read(dir, "stop_times.txt", true)?.expect("required");

        // Stations: parents, and stops without a parent.
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut stop_rows: HashMap<&str, (usize, &[String])> = HashMap::new();
        let mut code_uses: HashMap<&str, usize> = HashMap::new();
        for (line, row) in &stops.rows {
            let id = stops.req(*line, row, "stop_id")?;
            if stop_rows.insert(id, (*line, row)).is_some() {
                return Err(stops.err(*line, "stop_id", format!("`{id}` appears twice")));
            }
            if let Some(p) = stops.get(row, "parent_station") {
                parent.insert(id, p);
            }
            if let Some(c) = stops.get(row, "stop_code").filter(|_| stops.get(row, "parent_station").is_none()) {
                *code_uses.entry(c).or_default() += 1;
            }
        }
        let mut b = NetworkBuilder::new(&name, false);
        let mut station_of: HashMap<&str, StationIndex> = HashMap::new();
        let mut station_id_of: Vec<&str> = Vec::new();
        let mut coordinates: HashMap<&str, (f64, f64)> = HashMap::new();
        let mut names_seen: HashMap<String, &str> = HashMap::new();
        for (line, row) in &stops.rows {
            let id = stops.req(*line, row, "stop_id")?;
            let coordinate = |c: &str, limit: f64| -> Result<Option<f64>, LoadError> {
                match stops.parse_field::<f64>(*line, row, c)? {
                    Some(v) if !(v.is_finite() && v.abs() <= limit) => {
                        Err(stops.err(*line, c, format!("`{v}` is out of range")))
                    }
                    v => Ok(v),
                }
            };
            if let (Some(lat), Some(lon)) = (coordinate("stop_lat", 90.0)?, coordinate("stop_lon", 180.0)?) {
                coordinates.insert(id, (lat, lon));
            }
            let station_id = parent.get(id).copied().unwrap_or(id);
            let &(sline, srow) = stop_rows
                .get(station_id)
                .ok_or_else(|| stops.err(*line, "parent_station", format!("no stop `{station_id}`")))?;
            let mut name = stops.req(sline, srow, "stop_name")?.to_string();
            // Two stations with one name (the two sides of a street) stay two stations.
            match names_seen.get(&name) {
                Some(other) if *other != station_id => name = format!("{name} ({station_id})"),
                _ => {
                    names_seen.insert(name.clone(), station_id);
                }
            }
            let mut aliases = vec![station_id.to_string()];
            if id != station_id {
                aliases.push(id.to_string());
            }
            // A stop_code names one station only when no other station has it (feeds reuse
            // codes such as `01` for the first post of every stop).
            let stop_code = stops.get(srow, "stop_code").filter(|c| code_uses.get(c) == Some(&1));
            aliases.extend(stop_code.map(str::to_string));
            let code = stop_code.and_then(|c| c.parse::<u16>().ok()).filter(|&c| c != 0);
            let index = b.station(&name, &aliases, code).map_err(|e| stops.err(sline, "stop_code", e))?;
            b.derive_code_from(index, station_id);
            station_of.insert(id, index);
            if index == station_id_of.len() {
                station_id_of.push(station_id);
            }
        }

        // Routes and their networks.
        let mut routes = Vec::new();
        let mut route_index: HashMap<String, usize> = HashMap::new();
        for (line, row) in &routes_t.rows {
            let id = routes_t.req(*line, row, "route_id")?;
            let name = routes_t.get(row, "route_short_name").or(routes_t.get(row, "route_long_name")).unwrap_or(id);
            if route_index.insert(id.to_string(), routes.len()).is_some() {
                return Err(routes_t.err(*line, "route_id", format!("`{id}` appears twice")));
            }
            let network_id = routes_t.get(row, "network_id").map(str::to_string);
            routes.push(Route { id: id.to_string(), name: name.to_string(), network_id });
        }
        if let Some(rn) = Table::read(dir, "route_networks.txt", false)? {
            for (line, row) in &rn.rows {
                let route = rn.req(*line, row, "route_id")?;
                let &r =
                    route_index.get(route).ok_or_else(|| rn.err(*line, "route_id", format!("no route `{route}`")))?;
                routes[r].network_id = Some(rn.req(*line, row, "network_id")?.to_string());
            }
        }

        // Trips and their stops, in sequence order.
        let mut trip_route: HashMap<&str, usize> = HashMap::new();
        for (line, row) in &trips.rows {
            let route = trips.req(*line, row, "route_id")?;
            let &r =
                route_index.get(route).ok_or_else(|| trips.err(*line, "route_id", format!("no route `{route}`")))?;
            let trip = trips.req(*line, row, "trip_id")?;
            if trip_route.insert(trip, r).is_some() {
                return Err(trips.err(*line, "trip_id", format!("`{trip}` appears twice")));
            }
        }
        let mut trip_stops: BTreeMap<&str, Vec<StopRow>> = BTreeMap::new();
        for (line, row) in &stop_times.rows {
            let trip = stop_times.req(*line, row, "trip_id")?;
            if !trip_route.contains_key(trip) {
                return Err(stop_times.err(*line, "trip_id", format!("no trip `{trip}`")));
            }
            // GTFS-Flex rows name a location or location group instead of a stop: not a fixed stop.
            let Some(stop) = stop_times.get(row, "stop_id") else {
                if stop_times.get(row, "location_id").is_some() || stop_times.get(row, "location_group_id").is_some() {
                    continue;
                }
                return Err(stop_times.err(*line, "stop_id", "missing"));
            };
            if !station_of.contains_key(stop) {
                return Err(stop_times.err(*line, "stop_id", format!("no stop `{stop}`")));
            }
            let sequence = stop_times
                .parse_field::<u32>(*line, row, "stop_sequence")?
                .ok_or_else(|| stop_times.err(*line, "stop_sequence", "missing"))?;
            let shape_dist = match stop_times.get(row, "shape_dist_traveled") {
                None => None,
                Some(v) => Some(v.parse::<f64>().ok().filter(|d| d.is_finite() && (0.0..1e9).contains(d)).ok_or_else(
                    || stop_times.err(*line, "shape_dist_traveled", format!("`{v}` is not a distance in metres")),
                )?),
            };
            trip_stops.entry(trip).or_default().push(StopRow { sequence, line: *line, stop, shape_dist });
        }

        // Distinct stop patterns per route, each a line.
        let mut patterns: Vec<Pattern> = Vec::new();
        let mut pattern_of: HashMap<(usize, Vec<StationIndex>), usize> = HashMap::new();
        let mut trip_pattern: HashMap<String, usize> = HashMap::new();
        for (trip, rows) in &mut trip_stops {
            rows.sort_by_key(|r| r.sequence);
            if let Some(w) = rows.windows(2).find(|w| w[0].sequence == w[1].sequence) {
                return Err(stop_times.err(w[1].line, "stop_sequence", format!("{} appears twice", w[1].sequence)));
            }
            let r = trip_route[trip];
            // Consecutive stops of one station (two platforms) are one stop of the pattern.
            let mut stops_idx: Vec<StationIndex> = Vec::new();
            let mut cumulative: Vec<f64> = Vec::new();
            let shapes = rows.iter().all(|row| row.shape_dist.is_some());
            let mut unmeasured_line = None;
            let mut along = 0.0;
            for (i, row) in rows.iter().enumerate() {
                if i > 0 {
                    let prev = &rows[i - 1];
                    along += match (shapes, prev.shape_dist, row.shape_dist) {
                        (true, Some(a), Some(b)) if b < a => {
                            return Err(stop_times.err(row.line, "shape_dist_traveled", "decreases along the trip"))
                        }
                        (true, Some(a), Some(b)) => b - a,
                        _ => match (coordinates.get(prev.stop), coordinates.get(row.stop)) {
                            (Some(&a), Some(&b)) => great_circle_m(a, b),
                            _ => {
                                unmeasured_line = unmeasured_line.or(Some(row.line));
                                0.0
                            }
                        },
                    };
                }
                let s = station_of[row.stop];
                if stops_idx.last() != Some(&s) {
                    stops_idx.push(s);
                    cumulative.push(along);
                }
            }
            if stops_idx.len() < 2 {
                continue;
            }
            let key = (r, stops_idx.clone());
            let p = match pattern_of.get(&key) {
                Some(&p) => p,
                None => {
                    if patterns.len() >= PATTERNS_MAX {
                        return Err(LoadError::new(
                            &stop_times.file,
                            format!("more than {PATTERNS_MAX} stop patterns"),
                        ));
                    }
                    // Whole metres, each segment at least one.
                    let cumulative_m = unmeasured_line.is_none().then(|| {
                        let mut total = 0u32;
                        let mut out = vec![0];
                        for w in cumulative.windows(2) {
                            total = total.saturating_add(whole_metres(w[1] - w[0]));
                            out.push(total);
                        }
                        out
                    });
                    pattern_of.insert(key, patterns.len());
                    patterns.push(Pattern { route: r, stops: stops_idx, cumulative_m, unmeasured_line });
                    patterns.len() - 1
                }
            };
            trip_pattern.insert(trip.to_string(), p);
        }
        // Lines: a route's patterns, the one with most stops first, named after the route.
        let mut order: Vec<usize> = (0..patterns.len()).collect();
        order.sort_by_key(|&p| (patterns[p].route, std::cmp::Reverse(patterns[p].stops.len()), p));
        let mut line_names: BTreeSet<String> = BTreeSet::new();
        let mut per_route: HashMap<usize, usize> = HashMap::new();
        let mut line_networks = Vec::new();
        for &p in &order {
            let pattern = &patterns[p];
            let route = &routes[pattern.route];
            let k = per_route.entry(pattern.route).or_default();
            *k += 1;
            let mut name = if *k == 1 { route.name.clone() } else { format!("{} #{k}", route.name) };
            if !line_names.insert(name.clone()) {
                name = format!("{name} ({})", route.id);
                line_names.insert(name.clone());
            }
            let alias = if *k == 1 { route.id.clone() } else { format!("{} #{k}", route.id) };
            // A numeric route_short_name is the first pattern's line code; others derive theirs.
            let code = if *k == 1 { route.name.parse::<u16>().ok().filter(|&c| c != 0) } else { None };
            let mut stops_idx = pattern.stops.clone();
            let cumulative = pattern.cumulative_m.clone().unwrap_or_else(|| (0..stops_idx.len() as u32).collect());
            let segments: Vec<u32> = cumulative.windows(2).map(|w| (w[1] - w[0]).max(1)).collect();
            let is_loop = stops_idx.len() > 2 && stops_idx.first() == stops_idx.last();
            if is_loop {
                stops_idx.pop();
            }
            b.line(&name, &[alias], code, is_loop, stops_idx, segments)
                .map_err(|e| LoadError::new(&stop_times.file, format!("route {}: {e}", route.id)))?;
            line_networks.push(route.network_id.clone());
        }
        if let Some(t) = Table::read(dir, "transfers.txt", false)? {
            for (line, row) in &t.rows {
                let (Some(a), Some(c)) = (t.get(row, "from_stop_id"), t.get(row, "to_stop_id")) else {
                    // Trip- or route-to-route transfers name no stops: nothing for the network.
                    continue;
                };
                let a = *station_of.get(a).ok_or_else(|| t.err(*line, "from_stop_id", format!("no stop `{a}`")))?;
                let c = *station_of.get(c).ok_or_else(|| t.err(*line, "to_stop_id", format!("no stop `{c}`")))?;
                if a != c {
                    b.transfer(a, c);
                }
            }
        }
        let network = b.build().map_err(|e| LoadError::new(dir.display().to_string(), e))?;
        let network = crate::apply_codes_beside(dir, network)?;
        let served: BTreeSet<StationIndex> = patterns.iter().flat_map(|p| p.stops.iter().copied()).collect();
        let unserved_stops = (0..network.stations().len())
            .filter(|s| !served.contains(s))
            .map(|s| station_id_of[s].to_string())
            .collect();
        let services = Services::load(dir)?;
        let known_networks: BTreeSet<String> = routes.iter().filter_map(|r| r.network_id.clone()).collect();
        let station_count = network.stations().len();
        let (fares, station_areas) = Fares::load(dir, &station_of, station_count, known_networks, services)?;
        let feed = Feed {
            network,
            route_index: route_index.into_iter().collect(),
            routes,
            patterns,
            trip_pattern,
            unserved_stops,
            station_areas,
            line_networks,
            tables: OnceLock::new(),
            fares,
        };
        if feed.fares.needs_distances() {
            if let Some(line) = feed.patterns.iter().find_map(|p| p.unmeasured_line) {
                return Err(stop_times.err(
                    line,
                    "shape_dist_traveled",
                    "missing, and a stop has no coordinates: distance-based fares need one or the other",
                ));
            }
        }
        Ok(feed)
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Whether the feed prices journeys itself (it has fare leg rules).
    pub fn has_fares(&self) -> bool {
        self.fares.has_rules()
    }

    /// Stop IDs (stations) no trip serves: on the network, but no ride reaches them.
    pub fn unserved_stops(&self) -> &[String] {
        &self.unserved_stops
    }

    /// The distance table of each network, built on first use.
    fn tables(&self) -> &BTreeMap<Option<String>, DistanceTable> {
        self.tables.get_or_init(|| {
            let keys: BTreeSet<Option<String>> = self.line_networks.iter().cloned().collect();
            keys.into_iter()
                .map(|key| {
                    let allowed: Vec<bool> = self.line_networks.iter().map(|n| *n == key).collect();
                    let table = DistanceTable::build(&self.network, &allowed);
                    (key, table)
                })
                .collect()
        })
    }

    /// Prices a journey with the feed's Fares v2 rules for the default rider category and the
    /// preferred fare medium.
    pub fn quote_journey(&self, legs: &[JourneyLeg]) -> Result<JourneyQuote, yitong_fare::QuoteError> {
        self.quote_journey_with(legs, &QuoteOptions::default())
    }

    /// Prices a journey for a rider category and fare medium.
    pub fn quote_journey_with(
        &self,
        legs: &[JourneyLeg],
        options: &QuoteOptions,
    ) -> Result<JourneyQuote, yitong_fare::QuoteError> {
        fares::quote(self, legs, options)
    }
}
