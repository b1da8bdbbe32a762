//! GTFS feeds: stops, routes, trips and stop_times make the network (distances from
//! `shape_dist_traveled`, in metres); the Fares v2 tables price journeys: `areas`, `stop_areas`,
//! `networks` / `route_networks`, `timeframes`, `fare_media`, `fare_products`, `fare_leg_rules`
//! and `fare_transfer_rules`.
//!
//! Choices where the specification leaves room or is still a draft (see `docs/fares.md`): the
//! line of a route is its trip with the most stops; `fare_leg_rules.txt` may carry the draft
//! distance fields `min_distance` (inclusive), `max_distance` (exclusive) and `distance_type`
//! (`0` stops, `1` metres of `shape_dist_traveled`); timeframes ignore `service_id` (every day
//! runs); amounts are read as decimal strings into hundredths (fen), never floats; among
//! fare media a physical transit card (`fare_media_type` 2) is preferred. A station's code on
//! cards is its numeric `stop_code` (1 to 65535), else derived from its `stop_id`; a line's is a
//! numeric `route_short_name`, else derived from the route's name (see `yitong_fare::derived_code`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use yitong_profile::DateTime;

use yitong_fare::{DistanceTable, LoadError, Network, NetworkBuilder, QuoteError, StationIndex};

/// One CSV file of the feed, kept with line numbers for errors.
struct Table {
    file: String,
    columns: HashMap<String, usize>,
    rows: Vec<(usize, Vec<String>)>,
}

impl Table {
    fn read(dir: &Path, name: &str, required: bool) -> Result<Option<Table>, LoadError> {
        let path = dir.join(name);
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
            Err(e) => return Err(LoadError::new(file, e.to_string())),
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| LoadError::new(&file, e.to_string()).at_line(1))?.clone();
        let columns = headers.iter().enumerate().map(|(i, h)| (h.to_string(), i)).collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, |p| p.line() as usize);
                LoadError::new(&file, e.to_string()).at_line(line)
            })?;
            let line = record.position().map_or(0, |p| p.line() as usize);
            rows.push((line, record.iter().map(str::to_string).collect()));
        }
        Ok(Some(Table { file, columns, rows }))
    }

    fn has(&self, column: &str) -> bool {
        self.columns.contains_key(column)
    }

    fn get<'a>(&self, row: &'a [String], column: &str) -> Option<&'a str> {
        self.columns.get(column).and_then(|&i| row.get(i)).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn req<'a>(&self, line: usize, row: &'a [String], column: &str) -> Result<&'a str, LoadError> {
        self.get(row, column).ok_or_else(|| self.err(line, column, "missing"))
    }

    fn err(&self, line: usize, column: &str, message: impl Into<String>) -> LoadError {
        LoadError::new(&self.file, message).at_line(line).in_field(column)
    }

    fn parse<T: std::str::FromStr>(&self, line: usize, row: &[String], column: &str) -> Result<Option<T>, LoadError> {
        match self.get(row, column) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| self.err(line, column, format!("`{v}` is not a valid value"))),
        }
    }
}

/// Seconds after midnight from `HH:MM:SS` (hours may pass 24, as GTFS allows).
fn seconds_of_day(text: &str) -> Option<u32> {
    let mut parts = text.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    (parts.next().is_none() && m < 60 && s < 60).then_some(h * 3_600 + m * 60 + s)
}

/// `3`, `3.5` or `3.50` currency units as hundredths.
fn hundredths(text: &str) -> Option<u32> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    if fraction.len() > 2 || whole.is_empty() || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction: u32 = format!("{fraction:0<2}").parse().ok()?;
    whole.parse::<u32>().ok()?.checked_mul(100)?.checked_add(fraction)
}

#[derive(Clone, Debug)]
struct LegRule {
    leg_group_id: Option<String>,
    network_id: Option<String>,
    from_area_id: Option<String>,
    to_area_id: Option<String>,
    from_timeframe_group_id: Option<String>,
    to_timeframe_group_id: Option<String>,
    fare_product_id: String,
    rule_priority: i32,
    min_distance: Option<u32>,
    max_distance: Option<u32>,
    distance_type: Option<u8>,
}

#[derive(Clone, Debug)]
struct TransferRule {
    from_leg_group_id: Option<String>,
    to_leg_group_id: Option<String>,
    transfer_count: Option<i32>,
    duration_limit_s: Option<u32>,
    duration_limit_type: u8,
    fare_transfer_type: u8,
    fare_product_id: Option<String>,
}

/// A leg of a journey: one ride between two stations, from gate to gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JourneyLeg {
    /// Boarding station (name, alias or stop ID).
    pub from: String,
    /// Alighting station.
    pub to: String,
    /// Departure (entry) time.
    pub departure: DateTime,
    /// Arrival (exit) time.
    pub arrival: DateTime,
}

/// A priced leg.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedLeg {
    /// The network the leg rode.
    pub network_id: Option<String>,
    /// Shortest distance, metres.
    pub distance_m: u32,
    /// Stops passed (path length in stations, minus one).
    pub stops: u32,
    /// The matching rule's leg group.
    pub leg_group_id: Option<String>,
    /// The fare product.
    pub fare_product_id: String,
    /// Its amount, hundredths of the currency.
    pub amount: u32,
    /// What a transfer rule added to (or took off) this leg.
    pub transfer_adjustment: i64,
}

/// A priced journey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JourneyQuote {
    /// Each leg.
    pub legs: Vec<PricedLeg>,
    /// Total, hundredths of the currency.
    pub total: u32,
    /// The currency of the products.
    pub currency: String,
}

/// A GTFS feed: its network and, when present, its Fares v2 rules.
#[derive(Clone, Debug)]
pub struct Feed {
    network: Network,
    route_networks: Vec<Option<String>>,
    station_areas: Vec<BTreeSet<String>>,
    timeframes: BTreeMap<String, Vec<(u32, u32)>>,
    products: BTreeMap<String, (u32, String)>,
    leg_rules: Vec<LegRule>,
    priority_mode: bool,
    transfer_rules: Vec<TransferRule>,
    tables: BTreeMap<Option<String>, DistanceTable>,
}

/// Legs a journey may have.
pub const JOURNEY_LEGS_MAX: usize = 16;

impl Feed {
    /// Reads a feed folder.
    pub fn load_dir(dir: &Path) -> Result<Feed, LoadError> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stops = Table::read(dir, "stops.txt", true)?.expect("required");
        let routes = Table::read(dir, "routes.txt", true)?.expect("required");
        let trips = Table::read(dir, "trips.txt", true)?.expect("required");
        let stop_times = Table::read(dir, "stop_times.txt", true)?.expect("required");

        // Stations: parents, and platforms without a parent.
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut stop_rows: HashMap<&str, (usize, &[String])> = HashMap::new();
        for (line, row) in &stops.rows {
            let id = stops.req(*line, row, "stop_id")?;
            if stop_rows.insert(id, (*line, row)).is_some() {
                return Err(stops.err(*line, "stop_id", format!("`{id}` appears twice")));
            }
            if let Some(p) = stops.get(row, "parent_station") {
                parent.insert(id, p);
            }
        }
        let mut b = NetworkBuilder::new(&name, false);
        let mut station_of: HashMap<&str, StationIndex> = HashMap::new();
        let mut names_seen: HashMap<String, &str> = HashMap::new();
        for (line, row) in &stops.rows {
            let id = stops.req(*line, row, "stop_id")?;
            let station_id = parent.get(id).copied().unwrap_or(id);
            let &(sline, srow) = stop_rows
                .get(station_id)
                .ok_or_else(|| stops.err(*line, "parent_station", format!("no stop `{station_id}`")))?;
            let mut name = stops.req(sline, srow, "stop_name")?.to_string();
            // Two stations with one name stay two stations.
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
            let stop_code = stops.get(srow, "stop_code");
            aliases.extend(stop_code.map(str::to_string));
            // A numeric stop_code is the code cards carry; without one the code derives from the
            // stop_id, which feeds keep stable (names may repeat).
            let code = stop_code.and_then(|c| c.parse::<u16>().ok()).filter(|&c| c != 0);
            let index = b.station(&name, &aliases, code).map_err(|e| stops.err(sline, "stop_code", e))?;
            b.derive_code_from(index, station_id);
            station_of.insert(id, index);
        }

        // Lines: each route's longest trip.
        let mut route_index: HashMap<&str, usize> = HashMap::new();
        let mut route_names = Vec::new();
        let mut route_networks = Vec::new();
        for (line, row) in &routes.rows {
            let id = routes.req(*line, row, "route_id")?;
            let name = routes.get(row, "route_short_name").or(routes.get(row, "route_long_name")).unwrap_or(id);
            route_index.insert(id, route_names.len());
            route_names.push((id, name));
            route_networks.push(routes.get(row, "network_id").map(str::to_string));
        }
        if let Some(rn) = Table::read(dir, "route_networks.txt", false)? {
            for (line, row) in &rn.rows {
                let route = rn.req(*line, row, "route_id")?;
                let &r =
                    route_index.get(route).ok_or_else(|| rn.err(*line, "route_id", format!("no route `{route}`")))?;
                route_networks[r] = Some(rn.req(*line, row, "network_id")?.to_string());
            }
        }
        let mut trip_route: HashMap<&str, usize> = HashMap::new();
        for (line, row) in &trips.rows {
            let route = trips.req(*line, row, "route_id")?;
            let &r =
                route_index.get(route).ok_or_else(|| trips.err(*line, "route_id", format!("no route `{route}`")))?;
            trip_route.insert(trips.req(*line, row, "trip_id")?, r);
        }
        let mut trip_stops: HashMap<&str, Vec<(u32, usize, &str, u32)>> = HashMap::new();
        for (line, row) in &stop_times.rows {
            let trip = stop_times.req(*line, row, "trip_id")?;
            if !trip_route.contains_key(trip) {
                return Err(stop_times.err(*line, "trip_id", format!("no trip `{trip}`")));
            }
            let stop = stop_times.req(*line, row, "stop_id")?;
            if !station_of.contains_key(stop) {
                return Err(stop_times.err(*line, "stop_id", format!("no stop `{stop}`")));
            }
            let sequence = stop_times
                .parse::<u32>(*line, row, "stop_sequence")?
                .ok_or_else(|| stop_times.err(*line, "stop_sequence", "missing"))?;
            let dist = stop_times.req(*line, row, "shape_dist_traveled")?;
            let dist_m = dist
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite() && *d >= 0.0 && *d < 1e9)
                .map(|d| d.round() as u32)
                .ok_or_else(|| {
                    stop_times.err(*line, "shape_dist_traveled", format!("`{dist}` is not a distance in metres"))
                })?;
            trip_stops.entry(trip).or_default().push((sequence, *line, stop, dist_m));
        }
        let mut best: Vec<Option<&str>> = vec![None; route_names.len()];
        let mut trip_ids: Vec<&&str> = trip_stops.keys().collect();
        trip_ids.sort();
        for trip in trip_ids {
            let r = trip_route[*trip];
            if best[r].is_none_or(|b| trip_stops[b].len() < trip_stops[*trip].len()) {
                best[r] = Some(trip);
            }
        }
        let mut line_networks = Vec::new();
        for (r, trip) in best.iter().enumerate() {
            let Some(trip) = trip else { continue };
            let mut seq = trip_stops[trip].clone();
            seq.sort_by_key(|s| s.0);
            let mut stops_idx: Vec<StationIndex> = seq.iter().map(|s| station_of[s.2]).collect();
            let mut segments = Vec::new();
            for w in seq.windows(2) {
                if w[1].3 <= w[0].3 {
                    return Err(stop_times.err(w[1].1, "shape_dist_traveled", "must increase along the trip"));
                }
                segments.push(w[1].3 - w[0].3);
            }
            let is_loop = stops_idx.len() > 2 && stops_idx.first() == stops_idx.last();
            if is_loop {
                stops_idx.pop();
            }
            let (id, name) = route_names[r];
            // A numeric route_short_name is the line code; else `N号线` / derived from the name.
            let code = name.parse::<u16>().ok().filter(|&c| c != 0);
            b.line(name, &[id.to_string()], code, is_loop, stops_idx, segments)
                .map_err(|e| LoadError::new(&stop_times.file, format!("route {id}: {e}")))?;
            line_networks.push(route_networks[r].clone());
        }
        if let Some(t) = Table::read(dir, "transfers.txt", false)? {
            for (line, row) in &t.rows {
                let stop = |column: &str| -> Result<StationIndex, LoadError> {
                    let id = t.req(*line, row, column)?;
                    station_of.get(id).copied().ok_or_else(|| t.err(*line, column, format!("no stop `{id}`")))
                };
                let (a, c) = (stop("from_stop_id")?, stop("to_stop_id")?);
                if a != c {
                    b.transfer(a, c);
                }
            }
        }
        let network = b.build().map_err(|e| LoadError::new(dir.display().to_string(), e))?;
        let network = crate::apply_codes_beside(dir, network)?;
        let mut feed = Feed {
            station_areas: vec![BTreeSet::new(); network.stations().len()],
            network,
            route_networks: line_networks,
            timeframes: BTreeMap::new(),
            products: BTreeMap::new(),
            leg_rules: Vec::new(),
            priority_mode: false,
            transfer_rules: Vec::new(),
            tables: BTreeMap::new(),
        };
        feed.load_fares(dir, &station_of)?;
        Ok(feed)
    }

    fn load_fares(&mut self, dir: &Path, station_of: &HashMap<&str, StationIndex>) -> Result<(), LoadError> {
        let mut areas = BTreeSet::new();
        if let Some(t) = Table::read(dir, "areas.txt", false)? {
            for (line, row) in &t.rows {
                areas.insert(t.req(*line, row, "area_id")?.to_string());
            }
        }
        if let Some(t) = Table::read(dir, "stop_areas.txt", false)? {
            for (line, row) in &t.rows {
                let area = t.req(*line, row, "area_id")?;
                if !areas.contains(area) {
                    return Err(t.err(*line, "area_id", format!("no area `{area}` in areas.txt")));
                }
                let stop = t.req(*line, row, "stop_id")?;
                let &s = station_of.get(stop).ok_or_else(|| t.err(*line, "stop_id", format!("no stop `{stop}`")))?;
                self.station_areas[s].insert(area.to_string());
            }
        }
        let mut networks: BTreeSet<String> = self.route_networks.iter().flatten().cloned().collect();
        if let Some(t) = Table::read(dir, "networks.txt", false)? {
            for (line, row) in &t.rows {
                networks.insert(t.req(*line, row, "network_id")?.to_string());
            }
        }
        if let Some(t) = Table::read(dir, "timeframes.txt", false)? {
            for (line, row) in &t.rows {
                let group = t.req(*line, row, "timeframe_group_id")?;
                let time = |c: &str, default: u32| -> Result<u32, LoadError> {
                    match t.get(row, c) {
                        None => Ok(default),
                        Some(v) => seconds_of_day(v).ok_or_else(|| t.err(*line, c, format!("`{v}` is not HH:MM:SS"))),
                    }
                };
                let (start, end) = (time("start_time", 0)?, time("end_time", 86_400)?);
                if end <= start {
                    return Err(t.err(*line, "end_time", "must be after start_time"));
                }
                self.timeframes.entry(group.to_string()).or_default().push((start, end));
            }
        }
        let mut media_type: HashMap<String, u8> = HashMap::new();
        if let Some(t) = Table::read(dir, "fare_media.txt", false)? {
            for (line, row) in &t.rows {
                let kind = t
                    .parse::<u8>(*line, row, "fare_media_type")?
                    .ok_or_else(|| t.err(*line, "fare_media_type", "missing"))?;
                media_type.insert(t.req(*line, row, "fare_media_id")?.to_string(), kind);
            }
        }
        if let Some(t) = Table::read(dir, "fare_products.txt", false)? {
            // Per product, the amount for the preferred medium: a transit card (2), else the first.
            let mut chosen: BTreeMap<String, (bool, u32, String)> = BTreeMap::new();
            for (line, row) in &t.rows {
                let id = t.req(*line, row, "fare_product_id")?;
                let amount_text = t.req(*line, row, "amount")?;
                let amount = hundredths(amount_text).ok_or_else(|| {
                    t.err(
                        *line,
                        "amount",
                        format!("`{amount_text}` is not a non-negative amount with at most 2 decimals"),
                    )
                })?;
                let currency = t.req(*line, row, "currency")?.to_string();
                let card = match t.get(row, "fare_media_id") {
                    None => false,
                    Some(m) => {
                        *media_type
                            .get(m)
                            .ok_or_else(|| t.err(*line, "fare_media_id", format!("no fare medium `{m}`")))?
                            == 2
                    }
                };
                let better = chosen.get(id).is_none_or(|(c, _, _)| card && !c);
                if better {
                    chosen.insert(id.to_string(), (card, amount, currency));
                }
            }
            self.products = chosen.into_iter().map(|(id, (_, amount, currency))| (id, (amount, currency))).collect();
        }
        if let Some(t) = Table::read(dir, "fare_leg_rules.txt", false)? {
            self.priority_mode = t.has("rule_priority");
            for (line, row) in &t.rows {
                let opt = |c: &str| t.get(row, c).map(str::to_string);
                let rule = LegRule {
                    leg_group_id: opt("leg_group_id"),
                    network_id: opt("network_id"),
                    from_area_id: opt("from_area_id"),
                    to_area_id: opt("to_area_id"),
                    from_timeframe_group_id: opt("from_timeframe_group_id"),
                    to_timeframe_group_id: opt("to_timeframe_group_id"),
                    fare_product_id: t.req(*line, row, "fare_product_id")?.to_string(),
                    rule_priority: t.parse(*line, row, "rule_priority")?.unwrap_or(0),
                    min_distance: t.parse(*line, row, "min_distance")?,
                    max_distance: t.parse(*line, row, "max_distance")?,
                    distance_type: t.parse(*line, row, "distance_type")?,
                };
                let check = |field: &str, v: &Option<String>, known: &dyn Fn(&str) -> bool| match v {
                    Some(v) if !known(v) => Err(t.err(*line, field, format!("unknown `{v}`"))),
                    _ => Ok(()),
                };
                check("fare_product_id", &Some(rule.fare_product_id.clone()), &|v| self.products.contains_key(v))?;
                check("network_id", &rule.network_id, &|v| networks.contains(v))?;
                check("from_area_id", &rule.from_area_id, &|v| areas.contains(v))?;
                check("to_area_id", &rule.to_area_id, &|v| areas.contains(v))?;
                check("from_timeframe_group_id", &rule.from_timeframe_group_id, &|v| self.timeframes.contains_key(v))?;
                check("to_timeframe_group_id", &rule.to_timeframe_group_id, &|v| self.timeframes.contains_key(v))?;
                if (rule.min_distance.is_some() || rule.max_distance.is_some())
                    && !matches!(rule.distance_type, Some(0 | 1))
                {
                    return Err(t.err(
                        *line,
                        "distance_type",
                        "0 (stops) or 1 (metres) with min_distance / max_distance",
                    ));
                }
                self.leg_rules.push(rule);
            }
        }
        if let Some(t) = Table::read(dir, "fare_transfer_rules.txt", false)? {
            let groups: BTreeSet<String> = self.leg_rules.iter().filter_map(|r| r.leg_group_id.clone()).collect();
            for (line, row) in &t.rows {
                let opt = |c: &str| t.get(row, c).map(str::to_string);
                let rule = TransferRule {
                    from_leg_group_id: opt("from_leg_group_id"),
                    to_leg_group_id: opt("to_leg_group_id"),
                    transfer_count: t.parse(*line, row, "transfer_count")?,
                    duration_limit_s: t.parse(*line, row, "duration_limit")?,
                    duration_limit_type: t.parse(*line, row, "duration_limit_type")?.unwrap_or(0),
                    fare_transfer_type: t
                        .parse(*line, row, "fare_transfer_type")?
                        .ok_or_else(|| t.err(*line, "fare_transfer_type", "missing"))?,
                    fare_product_id: opt("fare_product_id"),
                };
                for (field, v) in
                    [("from_leg_group_id", &rule.from_leg_group_id), ("to_leg_group_id", &rule.to_leg_group_id)]
                {
                    if let Some(v) = v.as_ref().filter(|v| !groups.contains(*v)) {
                        return Err(t.err(*line, field, format!("no leg group `{v}` in fare_leg_rules.txt")));
                    }
                }
                if let Some(p) = rule.fare_product_id.as_ref().filter(|p| !self.products.contains_key(*p)) {
                    return Err(t.err(*line, "fare_product_id", format!("unknown `{p}`")));
                }
                if rule.fare_transfer_type > 2 || rule.duration_limit_type > 3 {
                    return Err(t.err(*line, "fare_transfer_type", "fare_transfer_type 0-2, duration_limit_type 0-3"));
                }
                self.transfer_rules.push(rule);
            }
        }
        // One distance table per network (and one for routes without a network).
        let keys: BTreeSet<Option<String>> = self.route_networks.iter().cloned().collect();
        for key in keys {
            let allowed: Vec<bool> = self.route_networks.iter().map(|n| *n == key).collect();
            self.tables.insert(key, DistanceTable::build(&self.network, &allowed));
        }
        Ok(())
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Whether the feed prices journeys itself (it has fare leg rules).
    pub fn has_fares(&self) -> bool {
        !self.leg_rules.is_empty()
    }

    /// Prices a journey with the feed's Fares v2 rules.
    pub fn quote_journey(&self, legs: &[JourneyLeg]) -> Result<JourneyQuote, QuoteError> {
        if legs.is_empty() || legs.len() > JOURNEY_LEGS_MAX {
            return Err(QuoteError::NoFare(format!("a journey has 1 to {JOURNEY_LEGS_MAX} legs")));
        }
        let mut priced: Vec<PricedLeg> = Vec::with_capacity(legs.len());
        for leg in legs {
            priced.push(self.price_leg(leg)?);
        }
        // Transfers between consecutive legs.
        let mut transfers_in_chain = 0i32;
        for i in 1..priced.len() {
            let (prev, next) = (&priced[i - 1], &priced[i]);
            let (a, b) = (&legs[i - 1], &legs[i]);
            let rule = self.transfer_rules.iter().find(|r| {
                let group_ok = |rule: &Option<String>, leg: &Option<String>| rule.is_none() || rule == leg;
                let count_ok = match r.transfer_count {
                    None | Some(-1) => true,
                    Some(n) => transfers_in_chain < n,
                };
                let within = r.duration_limit_s.is_none_or(|limit| {
                    let start = if r.duration_limit_type < 2 { a.departure } else { a.arrival };
                    let end = if matches!(r.duration_limit_type, 0 | 3) { b.arrival } else { b.departure };
                    let elapsed = end.seconds_since_epoch() - start.seconds_since_epoch();
                    (0..=i64::from(limit)).contains(&elapsed)
                });
                group_ok(&r.from_leg_group_id, &prev.leg_group_id)
                    && group_ok(&r.to_leg_group_id, &next.leg_group_id)
                    && count_ok
                    && within
            });
            match rule {
                Some(r) => {
                    transfers_in_chain += 1;
                    let ab = r.fare_product_id.as_ref().map_or(0, |p| self.products[p].0);
                    let adjustment = match r.fare_transfer_type {
                        // A + AB: the transfer product replaces the next leg's fare.
                        0 => i64::from(ab) - i64::from(next.amount),
                        // A + AB + B.
                        1 => i64::from(ab),
                        // AB: the transfer product covers both legs.
                        _ => i64::from(ab) - i64::from(next.amount) - i64::from(prev.amount) - prev.transfer_adjustment,
                    };
                    priced[i].transfer_adjustment = adjustment;
                }
                None => transfers_in_chain = 0,
            }
        }
        let total: i64 = priced.iter().map(|l| i64::from(l.amount) + l.transfer_adjustment).sum();
        let currency =
            priced.iter().find_map(|l| self.products.get(&l.fare_product_id)).map(|p| p.1.clone()).unwrap_or_default();
        Ok(JourneyQuote { legs: priced, total: u32::try_from(total.max(0)).unwrap_or(u32::MAX), currency })
    }

    fn price_leg(&self, leg: &JourneyLeg) -> Result<PricedLeg, QuoteError> {
        let from = self.network.lookup(&leg.from)?;
        let to = self.network.lookup(&leg.to)?;
        // The leg's network: the first one (in ID order) that connects the two stations.
        let (network_id, table) = self
            .tables
            .iter()
            .find(|(_, t)| t.distance_m(from, to).is_some())
            .ok_or_else(|| QuoteError::NoRoute { from: leg.from.clone(), to: leg.to.clone() })?;
        let distance_m = table.distance_m(from, to).unwrap_or(0);
        let stops = table.path(from, to).map_or(0, |p| p.len().saturating_sub(1) as u32);
        let departure_s = u32::from(leg.departure.hour) * 3_600
            + u32::from(leg.departure.minute) * 60
            + u32::from(leg.departure.second);
        let arrival_s =
            u32::from(leg.arrival.hour) * 3_600 + u32::from(leg.arrival.minute) * 60 + u32::from(leg.arrival.second);
        let in_frame = |group: &str, t: u32| {
            self.timeframes.get(group).is_some_and(|f| f.iter().any(|(s, e)| (*s..*e).contains(&t)))
        };
        let explicit = |f: fn(&LegRule) -> &Option<String>| -> BTreeSet<&String> {
            self.leg_rules.iter().filter_map(|r| f(r).as_ref()).collect()
        };
        let (nets, from_areas, to_areas, from_frames, to_frames) = (
            explicit(|r| &r.network_id),
            explicit(|r| &r.from_area_id),
            explicit(|r| &r.to_area_id),
            explicit(|r| &r.from_timeframe_group_id),
            explicit(|r| &r.to_timeframe_group_id),
        );
        let areas_of = |s: StationIndex| &self.station_areas[s];
        let matches = |r: &LegRule| {
            // Empty fields: any value under rule_priority, else any value no other rule names.
            let net_ok = match &r.network_id {
                Some(n) => network_id.as_ref() == Some(n),
                None => self.priority_mode || network_id.as_ref().is_none_or(|n| !nets.contains(n)),
            };
            let area_ok = |rule: &Option<String>, station: StationIndex, named: &BTreeSet<&String>| match rule {
                Some(a) => areas_of(station).contains(a),
                None => self.priority_mode || !areas_of(station).iter().any(|a| named.contains(a)),
            };
            let frame_ok = |rule: &Option<String>, t: u32, named: &BTreeSet<&String>| match rule {
                Some(g) => in_frame(g, t),
                None => self.priority_mode || !named.iter().any(|g| in_frame(g, t)),
            };
            let measure = if r.distance_type == Some(0) { stops } else { distance_m };
            let distance_ok = r.min_distance.is_none_or(|m| measure >= m) && r.max_distance.is_none_or(|m| measure < m);
            net_ok
                && area_ok(&r.from_area_id, from, &from_areas)
                && area_ok(&r.to_area_id, to, &to_areas)
                && frame_ok(&r.from_timeframe_group_id, departure_s, &from_frames)
                && frame_ok(&r.to_timeframe_group_id, arrival_s, &to_frames)
                && distance_ok
        };
        let candidates: Vec<&LegRule> = self.leg_rules.iter().filter(|r| matches(r)).collect();
        let top = candidates.iter().map(|r| r.rule_priority).max();
        let rule = candidates
            .into_iter()
            .filter(|r| Some(r.rule_priority) == top)
            .min_by_key(|r| self.products[&r.fare_product_id].0)
            .ok_or_else(|| QuoteError::NoFare(format!("no fare leg rule matches {} to {}", leg.from, leg.to)))?;
        Ok(PricedLeg {
            network_id: network_id.clone(),
            distance_m,
            stops,
            leg_group_id: rule.leg_group_id.clone(),
            fare_product_id: rule.fare_product_id.clone(),
            amount: self.products[&rule.fare_product_id].0,
            transfer_adjustment: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_amounts_parse_without_floats() {
        assert_eq!(seconds_of_day("07:00:00"), Some(25_200));
        assert_eq!(seconds_of_day("25:00:00"), Some(90_000));
        assert_eq!(seconds_of_day("7:60:00"), None);
        assert_eq!(hundredths("3"), Some(300));
        assert_eq!(hundredths("3.5"), Some(350));
        assert_eq!(hundredths("0.05"), Some(5));
        assert_eq!(hundredths("3.555"), None);
        assert_eq!(hundredths("-1"), None);
    }
}
