//! The Fares v2 tables and the pricing of journeys by them, as the GTFS reference states it.
//!
//! A leg matches a `fare_leg_rules.txt` row on its network, its boarding and alighting areas and
//! the timeframes of its departure and arrival (a timeframe counts only on the dates its
//! `service_id` runs). Without a `rule_priority` column an empty network or area field matches
//! only the values no other row names; with it, an empty field matches anything. An empty
//! timeframe field never restricts a row. Of the rows left, those of the highest priority count
//! and the cheapest product for the rider's category and medium is taken. Consecutive legs that a
//! `fare_leg_join_rules.txt` row joins are priced as one effective leg; `fare_transfer_rules.txt`
//! then prices the transfers between effective legs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use yitong_fare::{LoadError, QuoteError, StationIndex};
use yitong_profile::DateTime;

use super::calendar::Services;
use super::table::Table;
use super::{Feed, JourneyLeg, JOURNEY_LEGS_MAX};

/// `3`, `3.5`, `3.50` or `-1.25` currency units as hundredths.
fn hundredths(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    if fraction.is_empty()
        || fraction.len() > 2
        || whole.is_empty()
        || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    let value = whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(fraction)?;
    Some(if negative { -value } else { value })
}

/// Seconds after midnight from `HH:MM:SS`, at most 24:00:00 (the reference forbids more in
/// timeframes).
fn seconds_of_day(text: &str) -> Option<u32> {
    let mut parts = text.split(':');
    let field = |p: Option<&str>, widths: std::ops::RangeInclusive<usize>| {
        p.filter(|p| widths.contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
    };
    let (h, m, s) = (field(parts.next(), 1..=2)?, field(parts.next(), 2..=2)?, field(parts.next(), 2..=2)?);
    let total = h * 3_600 + m * 60 + s;
    (parts.next().is_none() && m < 60 && s < 60 && total <= 86_400).then_some(total)
}

/// Who rides and with what: picks among a product's rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuoteOptions {
    /// `rider_category_id`; `None`: the feed's default category (`is_default_fare_category`).
    pub rider_category: Option<String>,
    /// `fare_media_id`; `None`: a physical transit card (`fare_media_type` 2) where a product
    /// offers one, else the cheapest medium.
    pub fare_media: Option<String>,
}

/// A priced effective fare leg (one ride, or consecutive rides a join rule makes one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedLeg {
    /// Journey legs it covers (more than one when joined).
    pub journey_legs: usize,
    /// The route ridden, when one route serves the leg.
    pub route_id: Option<String>,
    /// The network of the leg.
    pub network_id: Option<String>,
    /// Metres, when measured (along the trip's pattern, else the shortest path on the network).
    pub distance_m: Option<u32>,
    /// Stops passed, when measured.
    pub stops: Option<u32>,
    /// The matching rule's leg group.
    pub leg_group_id: Option<String>,
    /// The fare product.
    pub fare_product_id: String,
    /// Its amount, hundredths of the currency.
    pub amount: i64,
    /// What a transfer rule added to (negative: took off) this leg.
    pub transfer_adjustment: i64,
}

/// A priced journey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JourneyQuote {
    /// Each effective fare leg.
    pub legs: Vec<PricedLeg>,
    /// Total, hundredths of the currency.
    pub total: i64,
    /// The currency of the products.
    pub currency: String,
    /// The rider category priced, if the feed has categories.
    pub rider_category: Option<String>,
}

#[derive(Clone, Debug)]
struct ProductRow {
    amount: i64,
    currency: String,
    media: Option<String>,
    rider: Option<String>,
}

#[derive(Clone, Debug)]
struct Timeframe {
    start_s: u32,
    end_s: u32,
    service_id: String,
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
struct JoinRule {
    from_network_id: String,
    to_network_id: String,
    from_station: Option<StationIndex>,
    to_station: Option<StationIndex>,
}

#[derive(Clone, Debug)]
struct TransferRule {
    from_leg_group_id: Option<String>,
    to_leg_group_id: Option<String>,
    transfer_count: Option<i32>,
    duration_limit_s: Option<u32>,
    duration_limit_type: Option<u8>,
    fare_transfer_type: u8,
    fare_product_id: Option<String>,
}

/// The feed's fare tables, checked against each other when read.
#[derive(Clone, Debug, Default)]
pub(super) struct Fares {
    services: Services,
    timeframes: BTreeMap<String, Vec<Timeframe>>,
    media_type: BTreeMap<String, u8>,
    rider_categories: BTreeSet<String>,
    default_rider: Option<String>,
    products: BTreeMap<String, Vec<ProductRow>>,
    leg_rules: Vec<LegRule>,
    priority_mode: bool,
    named_networks: BTreeSet<String>,
    named_from_areas: BTreeSet<String>,
    named_to_areas: BTreeSet<String>,
    join_rules: Vec<JoinRule>,
    transfer_rules: Vec<TransferRule>,
    named_from_groups: BTreeSet<String>,
    named_to_groups: BTreeSet<String>,
}

impl Fares {
    /// Reads the fare tables; returns them with each station's areas.
    pub fn load(
        dir: &Path,
        station_of: &HashMap<&str, StationIndex>,
        station_count: usize,
        mut networks: BTreeSet<String>,
        services: Services,
    ) -> Result<(Fares, Vec<BTreeSet<String>>), LoadError> {
        let mut f = Fares { services, ..Fares::default() };
        let mut station_areas = vec![BTreeSet::new(); station_count];
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
                station_areas[s].insert(area.to_string());
            }
        }
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
                        Some(v) => seconds_of_day(v)
                            .ok_or_else(|| t.err(*line, c, format!("`{v}` is not HH:MM:SS up to 24:00:00"))),
                    }
                };
                let (start_s, end_s) = (time("start_time", 0)?, time("end_time", 86_400)?);
                if t.get(row, "start_time").is_some() != t.get(row, "end_time").is_some() {
                    return Err(t.err(*line, "end_time", "start_time and end_time are given together or not at all"));
                }
                if end_s <= start_s {
                    return Err(t.err(*line, "end_time", "must be after start_time"));
                }
                let service_id = t.req(*line, row, "service_id")?;
                if !f.services.contains(service_id) {
                    return Err(t.err(
                        *line,
                        "service_id",
                        format!("no service `{service_id}` in calendar.txt or calendar_dates.txt"),
                    ));
                }
                let frame = Timeframe { start_s, end_s, service_id: service_id.to_string() };
                f.timeframes.entry(group.to_string()).or_default().push(frame);
            }
        }
        if let Some(t) = Table::read(dir, "rider_categories.txt", false)? {
            for (line, row) in &t.rows {
                let id = t.req(*line, row, "rider_category_id")?;
                f.rider_categories.insert(id.to_string());
                match t.get(row, "is_default_fare_category") {
                    None | Some("0") => {}
                    Some("1") if f.default_rider.is_none() => f.default_rider = Some(id.to_string()),
                    Some("1") => return Err(t.err(*line, "is_default_fare_category", "a second default category")),
                    Some(v) => {
                        return Err(t.err(*line, "is_default_fare_category", format!("`{v}` is neither 0 nor 1")))
                    }
                }
            }
        }
        if let Some(t) = Table::read(dir, "fare_media.txt", false)? {
            for (line, row) in &t.rows {
                let kind = t
                    .parse_field::<u8>(*line, row, "fare_media_type")?
                    .filter(|k| *k <= 4)
                    .ok_or_else(|| t.err(*line, "fare_media_type", "missing or not 0-4"))?;
                f.media_type.insert(t.req(*line, row, "fare_media_id")?.to_string(), kind);
            }
        }
        if let Some(t) = Table::read(dir, "fare_products.txt", false)? {
            for (line, row) in &t.rows {
                let id = t.req(*line, row, "fare_product_id")?;
                let amount_text = t.req(*line, row, "amount")?;
                let amount = hundredths(amount_text).ok_or_else(|| {
                    t.err(*line, "amount", format!("`{amount_text}` is not an amount with at most 2 decimals"))
                })?;
                let currency = t.req(*line, row, "currency")?.to_string();
                let media = t.get(row, "fare_media_id").map(str::to_string);
                if let Some(m) = media.as_ref().filter(|m| !f.media_type.contains_key(*m)) {
                    return Err(t.err(*line, "fare_media_id", format!("no fare medium `{m}` in fare_media.txt")));
                }
                let rider = t.get(row, "rider_category_id").map(str::to_string);
                if let Some(r) = rider.as_ref().filter(|r| !f.rider_categories.contains(*r)) {
                    return Err(t.err(
                        *line,
                        "rider_category_id",
                        format!("no rider category `{r}` in rider_categories.txt"),
                    ));
                }
                f.products.entry(id.to_string()).or_default().push(ProductRow { amount, currency, media, rider });
            }
        }
        if let Some(t) = Table::read(dir, "fare_leg_rules.txt", false)? {
            f.priority_mode = t.has("rule_priority");
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
                    rule_priority: t.parse_field(*line, row, "rule_priority")?.unwrap_or(0),
                    min_distance: t.parse_field(*line, row, "min_distance")?,
                    max_distance: t.parse_field(*line, row, "max_distance")?,
                    distance_type: t.parse_field(*line, row, "distance_type")?,
                };
                let check = |field: &str, v: &Option<String>, known: &dyn Fn(&str) -> bool| match v {
                    Some(v) if !known(v) => Err(t.err(*line, field, format!("unknown `{v}`"))),
                    _ => Ok(()),
                };
                check("fare_product_id", &Some(rule.fare_product_id.clone()), &|v| f.products.contains_key(v))?;
                check("network_id", &rule.network_id, &|v| networks.contains(v))?;
                check("from_area_id", &rule.from_area_id, &|v| areas.contains(v))?;
                check("to_area_id", &rule.to_area_id, &|v| areas.contains(v))?;
                check("from_timeframe_group_id", &rule.from_timeframe_group_id, &|v| f.timeframes.contains_key(v))?;
                check("to_timeframe_group_id", &rule.to_timeframe_group_id, &|v| f.timeframes.contains_key(v))?;
                if (rule.min_distance.is_some() || rule.max_distance.is_some())
                    && !matches!(rule.distance_type, Some(0 | 1))
                {
                    return Err(t.err(
                        *line,
                        "distance_type",
                        "0 (stops) or 1 (metres) with min_distance / max_distance",
                    ));
                }
                f.named_networks.extend(rule.network_id.clone());
                f.named_from_areas.extend(rule.from_area_id.clone());
                f.named_to_areas.extend(rule.to_area_id.clone());
                f.leg_rules.push(rule);
            }
        }
        if let Some(t) = Table::read(dir, "fare_leg_join_rules.txt", false)? {
            for (line, row) in &t.rows {
                let network = |c: &str| -> Result<String, LoadError> {
                    let v = t.req(*line, row, c)?;
                    if networks.contains(v) {
                        Ok(v.to_string())
                    } else {
                        Err(t.err(*line, c, format!("unknown network `{v}`")))
                    }
                };
                let stop = |c: &str| -> Result<Option<StationIndex>, LoadError> {
                    match t.get(row, c) {
                        None => Ok(None),
                        Some(v) => station_of
                            .get(v)
                            .copied()
                            .map(Some)
                            .ok_or_else(|| t.err(*line, c, format!("no stop `{v}`"))),
                    }
                };
                let rule = JoinRule {
                    from_network_id: network("from_network_id")?,
                    to_network_id: network("to_network_id")?,
                    from_station: stop("from_stop_id")?,
                    to_station: stop("to_stop_id")?,
                };
                if rule.to_station.is_some() && rule.from_station.is_none() {
                    return Err(t.err(*line, "from_stop_id", "required when to_stop_id is given"));
                }
                f.join_rules.push(rule);
            }
        }
        if let Some(t) = Table::read(dir, "fare_transfer_rules.txt", false)? {
            let groups: BTreeSet<String> = f.leg_rules.iter().filter_map(|r| r.leg_group_id.clone()).collect();
            for (line, row) in &t.rows {
                let opt = |c: &str| t.get(row, c).map(str::to_string);
                let rule = TransferRule {
                    from_leg_group_id: opt("from_leg_group_id"),
                    to_leg_group_id: opt("to_leg_group_id"),
                    transfer_count: t.parse_field(*line, row, "transfer_count")?,
                    duration_limit_s: t.parse_field(*line, row, "duration_limit")?,
                    duration_limit_type: t.parse_field(*line, row, "duration_limit_type")?,
                    fare_transfer_type: t
                        .parse_field(*line, row, "fare_transfer_type")?
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
                if let Some(p) = rule.fare_product_id.as_ref().filter(|p| !f.products.contains_key(*p)) {
                    return Err(t.err(*line, "fare_product_id", format!("unknown `{p}`")));
                }
                if rule.fare_transfer_type > 2 {
                    return Err(t.err(*line, "fare_transfer_type", "0 (A + AB), 1 (A + AB + B) or 2 (AB)"));
                }
                match (rule.duration_limit_s, rule.duration_limit_type) {
                    (Some(_), None) => return Err(t.err(*line, "duration_limit_type", "required with duration_limit")),
                    (_, Some(k)) if k > 3 => return Err(t.err(*line, "duration_limit_type", "0-3")),
                    _ => {}
                }
                if matches!(rule.transfer_count, Some(n) if n == 0 || n < -1) {
                    return Err(t.err(*line, "transfer_count", "-1 (no limit) or at least 1"));
                }
                f.named_from_groups.extend(rule.from_leg_group_id.clone());
                f.named_to_groups.extend(rule.to_leg_group_id.clone());
                f.transfer_rules.push(rule);
            }
        }
        Ok((f, station_areas))
    }

    pub fn has_rules(&self) -> bool {
        !self.leg_rules.is_empty()
    }

    /// Whether a rule prices by distance (only those need distances).
    pub fn needs_distances(&self) -> bool {
        self.leg_rules.iter().any(|r| r.min_distance.is_some() || r.max_distance.is_some())
    }

    /// Whether a timeframe of `group` holds `at` (its service runs that date, the time is in
    /// `[start, end)`).
    fn in_timeframe(&self, group: &str, at: &DateTime) -> bool {
        let seconds = u32::from(at.hour) * 3_600 + u32::from(at.minute) * 60 + u32::from(at.second);
        self.timeframes.get(group).is_some_and(|frames| {
            frames.iter().any(|f| (f.start_s..f.end_s).contains(&seconds) && self.services.runs_on(&f.service_id, at))
        })
    }

    /// The amount and currency of a product for a rider category and medium, if it is sold to
    /// them: the category's own rows before rows for any category; the named medium's rows
    /// before rows of unknown medium; without a medium named, a transit card before others,
    /// then the cheapest.
    fn product(&self, id: &str, rider: Option<&str>, media: Option<&str>) -> Option<(i64, &str)> {
        let rows = self.products.get(id)?;
        let for_rider: Vec<&ProductRow> = match rider {
            Some(c) => {
                let own: Vec<&ProductRow> = rows.iter().filter(|r| r.rider.as_deref() == Some(c)).collect();
                if own.is_empty() {
                    rows.iter().filter(|r| r.rider.is_none()).collect()
                } else {
                    own
                }
            }
            None => rows.iter().filter(|r| r.rider.is_none()).collect(),
        };
        let chosen: Vec<&ProductRow> = match media {
            Some(m) => {
                let own: Vec<&ProductRow> =
                    for_rider.iter().copied().filter(|r| r.media.as_deref() == Some(m)).collect();
                if own.is_empty() {
                    for_rider.into_iter().filter(|r| r.media.is_none()).collect()
                } else {
                    own
                }
            }
            None => {
                let is_card = |r: &ProductRow| r.media.as_ref().and_then(|m| self.media_type.get(m)) == Some(&2);
                let cards: Vec<&ProductRow> = for_rider.iter().copied().filter(|r| is_card(r)).collect();
                if cards.is_empty() {
                    for_rider
                } else {
                    cards
                }
            }
        };
        chosen.into_iter().min_by_key(|r| r.amount).map(|r| (r.amount, r.currency.as_str()))
    }
}

/// One way a leg may have been ridden.
#[derive(Clone, Debug)]
struct Ride {
    route: Option<usize>,
    network_id: Option<String>,
    /// Pattern and positions of boarding and alighting on it.
    on_pattern: Option<(usize, usize, usize)>,
}

/// What a leg rule is matched against.
struct LegFacts<'a> {
    network_id: Option<&'a str>,
    from: StationIndex,
    to: StationIndex,
    departure: DateTime,
    arrival: DateTime,
    distance_m: Option<u32>,
    stops: Option<u32>,
}

/// `YYYY-MM-DD`, for messages.
fn date_text(at: &DateTime) -> String {
    format!("{:04}-{:02}-{:02}", at.year, at.month, at.day)
}

fn no_fare(why: String) -> QuoteError {
    QuoteError::NoFare(why)
}

impl Feed {
    /// The route a rider means: its ID, else its short or long name when one route has it.
    fn find_route(&self, name: &str) -> Result<usize, QuoteError> {
        if let Some(&r) = self.route_index.get(name) {
            return Ok(r);
        }
        let named: Vec<usize> = (0..self.routes.len()).filter(|&r| self.routes[r].name == name).collect();
        match named.as_slice() {
            [one] => Ok(*one),
            [] => Err(no_fare(format!("no route `{name}` in routes.txt"))),
            _ => Err(no_fare(format!("several routes are called `{name}`: name its route_id"))),
        }
    }

    /// The ways `leg` may have been ridden: on its trip, on its route, or on any route that
    /// serves the two stops in that order (one ride per route, the fewest stops); failing
    /// those, on a network that connects them (a ride with transfers inside one network).
    fn rides(&self, leg: &JourneyLeg, from: StationIndex, to: StationIndex) -> Result<Vec<Ride>, QuoteError> {
        let ride_on = |p: usize| -> Option<Ride> {
            let pattern = &self.patterns[p];
            let (i, j) = pattern.ride(from, to)?;
            let route = pattern.route;
            Some(Ride {
                route: Some(route),
                network_id: self.routes[route].network_id.clone(),
                on_pattern: Some((p, i, j)),
            })
        };
        let wanted_route = leg.route.as_deref().map(|r| self.find_route(r)).transpose()?;
        if let Some(trip) = &leg.trip {
            let &p = self.trip_pattern.get(trip).ok_or_else(|| no_fare(format!("no trip `{trip}` in trips.txt")))?;
            if wanted_route.is_some_and(|r| r != self.patterns[p].route) {
                return Err(no_fare(format!("trip {trip} is not on route {}", leg.route.as_deref().unwrap_or(""))));
            }
            return ride_on(p)
                .map(|r| vec![r])
                .ok_or_else(|| no_fare(format!("trip {trip} does not run from {} to {}", leg.from, leg.to)));
        }
        let mut best_per_route: BTreeMap<usize, (usize, Ride)> = BTreeMap::new();
        for p in 0..self.patterns.len() {
            if wanted_route.is_some_and(|r| r != self.patterns[p].route) {
                continue;
            }
            if let Some(ride) = ride_on(p) {
                let (_, i, j) = ride.on_pattern.expect("set by ride_on");
                let route = self.patterns[p].route;
                if best_per_route.get(&route).is_none_or(|(n, _)| j - i < *n) {
                    best_per_route.insert(route, (j - i, ride));
                }
            }
        }
        if !best_per_route.is_empty() {
            return Ok(best_per_route.into_values().map(|(_, r)| r).collect());
        }
        if let Some(route) = &leg.route {
            return Err(no_fare(format!("route {route} does not run from {} to {}", leg.from, leg.to)));
        }
        let rides: Vec<Ride> = self
            .tables()
            .iter()
            .filter(|(_, t)| from != to && t.distance_m(from, to).is_some())
            .map(|(n, _)| Ride { route: None, network_id: n.clone(), on_pattern: None })
            .collect();
        if rides.is_empty() {
            return Err(QuoteError::NoRoute { from: leg.from.clone(), to: leg.to.clone() });
        }
        Ok(rides)
    }

    /// Metres and stops of a ride: along its pattern, else the shortest path on its network.
    fn measure(&self, ride: &Ride, from: StationIndex, to: StationIndex) -> (Option<u32>, Option<u32>) {
        match ride.on_pattern {
            Some((p, i, j)) => {
                let pattern = &self.patterns[p];
                let metres = pattern.cumulative_m.as_ref().map(|c| c[j] - c[i]);
                (metres, u32::try_from(j - i).ok())
            }
            None => match self.tables().get(&ride.network_id) {
                Some(t) => (
                    t.distance_m(from, to),
                    t.path(from, to).and_then(|p| u32::try_from(p.len().saturating_sub(1)).ok()),
                ),
                None => (None, None),
            },
        }
    }

    /// The best rule for the facts: (rule, amount, currency), or `None`.
    fn best_rule(&self, facts: &LegFacts, rider: Option<&str>, media: Option<&str>) -> Option<(&LegRule, i64, String)> {
        let f = &self.fares;
        let areas_of = |s: StationIndex| &self.station_areas[s];
        let area_ok = |rule: &Option<String>, station: StationIndex, named: &BTreeSet<String>| match rule {
            Some(a) => areas_of(station).contains(a),
            None => f.priority_mode || !areas_of(station).iter().any(|a| named.contains(a)),
        };
        let matches = |r: &LegRule| {
            let network_ok = match &r.network_id {
                Some(n) => facts.network_id == Some(n.as_str()),
                None => f.priority_mode || facts.network_id.is_none_or(|n| !f.named_networks.contains(n)),
            };
            let frame_ok = |group: &Option<String>, at: &DateTime| group.as_ref().is_none_or(|g| f.in_timeframe(g, at));
            let distance_ok = if r.min_distance.is_none() && r.max_distance.is_none() {
                true
            } else {
                let measure = if r.distance_type == Some(0) { facts.stops } else { facts.distance_m };
                measure
                    .is_some_and(|m| r.min_distance.is_none_or(|lo| m >= lo) && r.max_distance.is_none_or(|hi| m < hi))
            };
            network_ok
                && area_ok(&r.from_area_id, facts.from, &f.named_from_areas)
                && area_ok(&r.to_area_id, facts.to, &f.named_to_areas)
                && frame_ok(&r.from_timeframe_group_id, &facts.departure)
                && frame_ok(&r.to_timeframe_group_id, &facts.arrival)
                && distance_ok
        };
        let candidates: Vec<(&LegRule, i64, &str)> = f
            .leg_rules
            .iter()
            .filter(|r| matches(r))
            .filter_map(|r| f.product(&r.fare_product_id, rider, media).map(|(a, c)| (r, a, c)))
            .collect();
        let top = candidates.iter().map(|(r, _, _)| r.rule_priority).max()?;
        candidates
            .into_iter()
            .filter(|(r, _, _)| r.rule_priority == top)
            .min_by_key(|(_, amount, _)| *amount)
            .map(|(r, a, c)| (r, a, c.to_string()))
    }
}

/// Prices a journey: legs, joins into effective legs, then transfers.
pub(super) fn quote(feed: &Feed, legs: &[JourneyLeg], options: &QuoteOptions) -> Result<JourneyQuote, QuoteError> {
    if legs.is_empty() || legs.len() > JOURNEY_LEGS_MAX {
        return Err(no_fare(format!("a journey has 1 to {JOURNEY_LEGS_MAX} legs")));
    }
    let f = &feed.fares;
    let rider = match &options.rider_category {
        Some(c) if !f.rider_categories.contains(c) => {
            let known: Vec<&str> = f.rider_categories.iter().map(String::as_str).collect();
            return Err(no_fare(format!("no rider category `{c}`; the feed has: {}", known.join(", "))));
        }
        Some(c) => Some(c.as_str()),
        None => f.default_rider.as_deref(),
    };
    if let Some(m) = options.fare_media.as_ref().filter(|m| !f.media_type.contains_key(*m)) {
        let known: Vec<&str> = f.media_type.keys().map(String::as_str).collect();
        return Err(no_fare(format!("no fare medium `{m}`; the feed has: {}", known.join(", "))));
    }
    let media = options.fare_media.as_deref();

    let mut resolved = Vec::with_capacity(legs.len());
    for leg in legs {
        let from = feed.network.lookup(&leg.from)?;
        let to = feed.network.lookup(&leg.to)?;
        let rides = feed.rides(leg, from, to)?;
        resolved.push((from, to, rides));
    }
    // The network a leg is known to be on: the one all its possible rides share.
    let network_of = |i: usize| -> Option<Option<&str>> {
        let rides = &resolved[i].2;
        let first = rides[0].network_id.as_deref();
        rides.iter().all(|r| r.network_id.as_deref() == first).then_some(first)
    };
    // Effective fare legs: runs of legs each joined to the next by a join rule.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    for i in 0..legs.len() {
        let joined = i + 1 < legs.len()
            && match (network_of(i), network_of(i + 1)) {
                (Some(Some(a)), Some(Some(b))) => f.join_rules.iter().any(|j| {
                    j.from_network_id == a
                        && j.to_network_id == b
                        && j.from_station.is_none_or(|s| s == resolved[i].1)
                        && j.to_station.is_none_or(|s| s == resolved[i + 1].0)
                }),
                _ => false,
            };
        if !joined {
            groups.push((start, i));
            start = i + 1;
        }
    }

    let mut priced: Vec<PricedLeg> = Vec::with_capacity(groups.len());
    let mut currency = String::new();
    for &(a, b) in &groups {
        let mut best: Option<(PricedLeg, String)> = None;
        // A joined run is priced on the shared network and the first ride of each leg.
        let choices: Vec<Vec<&Ride>> = if a == b {
            resolved[a].2.iter().map(|r| vec![r]).collect()
        } else {
            vec![(a..=b).map(|i| &resolved[i].2[0]).collect()]
        };
        for rides in choices {
            let (mut distance_m, mut stops) = (Some(0u32), Some(0u32));
            for (k, ride) in rides.iter().enumerate() {
                let (from, to, _) = &resolved[a + k];
                let (d, s) = feed.measure(ride, *from, *to);
                distance_m = distance_m.zip(d).map(|(x, y)| x.saturating_add(y));
                stops = stops.zip(s).map(|(x, y)| x.saturating_add(y));
            }
            let network_id = rides[0].network_id.as_deref();
            let facts = LegFacts {
                network_id,
                from: resolved[a].0,
                to: resolved[b].1,
                departure: legs[a].departure,
                arrival: legs[b].arrival,
                distance_m,
                stops,
            };
            let Some((rule, amount, cur)) = feed.best_rule(&facts, rider, media) else { continue };
            if best.as_ref().is_none_or(|(l, _)| amount < l.amount) {
                let route_id = if a == b { rides[0].route.map(|r| feed.routes[r].id.clone()) } else { None };
                let leg = PricedLeg {
                    journey_legs: b - a + 1,
                    route_id,
                    network_id: network_id.map(str::to_string),
                    distance_m,
                    stops,
                    leg_group_id: rule.leg_group_id.clone(),
                    fare_product_id: rule.fare_product_id.clone(),
                    amount,
                    transfer_adjustment: 0,
                };
                best = Some((leg, cur));
            }
        }
        let (leg, cur) = best.ok_or_else(|| {
            let rider_note = rider.map(|r| format!(" for rider category {r}")).unwrap_or_default();
            no_fare(format!(
                "no fare leg rule matches {} to {} on {}{rider_note}",
                legs[a].from,
                legs[b].to,
                date_text(&legs[a].departure)
            ))
        })?;
        if currency.is_empty() {
            currency = cur;
        } else if currency != cur {
            return Err(no_fare(format!("the journey mixes currencies {currency} and {cur}")));
        }
        priced.push(leg);
    }

    apply_transfers(feed, legs, &groups, &mut priced, rider, media);
    let total = priced.iter().map(|l| l.amount + l.transfer_adjustment).sum();
    Ok(JourneyQuote { legs: priced, total, currency, rider_category: rider.map(str::to_string) })
}

/// Transfers between consecutive effective legs, each priced by the matching rule that costs
/// least; an empty leg group matches the groups no other rule names (inverse matching).
fn apply_transfers(
    feed: &Feed,
    legs: &[JourneyLeg],
    groups: &[(usize, usize)],
    priced: &mut [PricedLeg],
    rider: Option<&str>,
    media: Option<&str>,
) {
    let f = &feed.fares;
    let mut transfers_in_chain = 0i32;
    for i in 1..priced.len() {
        let (prev, next) = (&priced[i - 1], &priced[i]);
        let (current, following) = (&legs[groups[i - 1].0..=groups[i - 1].1], &legs[groups[i].0..=groups[i].1]);
        let (Some(current_first), Some(current_last), Some(next_first), Some(next_last)) =
            (current.first(), current.last(), following.first(), following.last())
        else {
            continue;
        };
        let group_ok = |rule: &Option<String>, leg: &Option<String>, named: &BTreeSet<String>| match rule {
            Some(g) => leg.as_ref() == Some(g),
            None => leg.as_ref().is_none_or(|g| !named.contains(g)),
        };
        let mut best: Option<i64> = None;
        for r in &f.transfer_rules {
            let count_ok = match r.transfer_count {
                None | Some(-1) => true,
                Some(n) => transfers_in_chain < n,
            };
            let within = match (r.duration_limit_s, r.duration_limit_type) {
                (Some(limit), Some(kind)) => {
                    let start = if kind < 2 { current_first.departure } else { current_last.arrival };
                    let end = if matches!(kind, 0 | 3) { next_last.arrival } else { next_first.departure };
                    let elapsed = end.seconds_since_epoch() - start.seconds_since_epoch();
                    (0..=i64::from(limit)).contains(&elapsed)
                }
                _ => true,
            };
            if !(group_ok(&r.from_leg_group_id, &prev.leg_group_id, &f.named_from_groups)
                && group_ok(&r.to_leg_group_id, &next.leg_group_id, &f.named_to_groups)
                && count_ok
                && within)
            {
                continue;
            }
            let ab = match &r.fare_product_id {
                None => 0,
                Some(p) => match f.product(p, rider, media) {
                    Some((amount, _)) => amount,
                    None => continue,
                },
            };
            let adjustment = match r.fare_transfer_type {
                // A + AB: the transfer product replaces the next leg's fare.
                0 => ab - next.amount,
                // A + AB + B.
                1 => ab,
                // AB: the transfer product covers both legs.
                _ => ab - next.amount - prev.amount - prev.transfer_adjustment,
            };
            if best.is_none_or(|b| adjustment < b) {
                best = Some(adjustment);
            }
        }
        match best {
            Some(adjustment) => {
                transfers_in_chain += 1;
                priced[i].transfer_adjustment = adjustment;
            }
            None => transfers_in_chain = 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_amounts_parse_without_floats() {
        assert_eq!(seconds_of_day("07:00:00"), Some(25_200));
        assert_eq!(seconds_of_day("24:00:00"), Some(86_400));
        assert_eq!(seconds_of_day("25:00:00"), None, "timeframes stop at 24:00:00");
        assert_eq!(seconds_of_day("7:00:00"), Some(25_200), "H:MM:SS is accepted too");
        assert_eq!(seconds_of_day("7:0:00"), None);
        assert_eq!(seconds_of_day("07:60:00"), None);
        assert_eq!(hundredths("3"), Some(300));
        assert_eq!(hundredths("3.5"), Some(350));
        assert_eq!(hundredths("0.05"), Some(5));
        assert_eq!(hundredths("-1.25"), Some(-125));
        assert_eq!(hundredths("3.555"), None);
        assert_eq!(hundredths("3."), None);
        assert_eq!(hundredths("--1"), None);
        assert_eq!(hundredths(""), None);
    }
}
