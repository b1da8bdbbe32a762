//! `yitong fare quote` and `yitong fare stations`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::json;
use yitong_fare::Trip;
use yitong_fare_import::gtfs::{Feed, JourneyLeg, QuoteOptions};

use crate::{cities, money, time};

/// Where the network and the rules come from.
#[derive(Args)]
pub struct NetworkArgs {
    /// City (a built-in profile: beijing, shanghai, shenzhen, guangzhou, wuhan, jilin, tianjin,
    /// chengdu, hangzhou, chongqing).
    #[arg(long, default_value = "beijing")]
    pub city: String,
    /// A city file (TOML) instead of the built-in profile.
    #[arg(long)]
    pub city_file: Option<PathBuf>,
    /// A Beijing-Subway-Tools folder (network.json, fare_rules.json5) or a GTFS feed folder;
    /// default: the city's built-in sample network.
    #[arg(long)]
    pub network: Option<PathBuf>,
}

impl NetworkArgs {
    /// The city these arguments name.
    pub fn load(&self) -> anyhow::Result<std::sync::Arc<yitong_fare::City>> {
        cities::load(&self.city, self.city_file.as_deref(), self.network.as_deref())
    }
}

#[derive(Args)]
pub struct QuoteArgs {
    #[command(flatten)]
    pub source: NetworkArgs,
    /// Entry station (Chinese or English name, or a GTFS stop ID).
    #[arg(long)]
    pub from: String,
    /// Exit station.
    #[arg(long)]
    pub to: String,
    /// Entry time, "YYYY-MM-DD HH:MM" (default: now, Asia/Shanghai).
    #[arg(long)]
    pub at: Option<String>,
    /// Exit time (default: the entry time), for the overstay surcharge.
    #[arg(long)]
    pub exit_at: Option<String>,
    /// Yuan paid on the card's metro rides this calendar month, for the monthly discount.
    #[arg(long, default_value = "0")]
    pub month_spent: String,
    /// GTFS: the route ridden (route_id or short name); default: every route that serves the two
    /// stops in that order, the cheapest fare.
    #[arg(long)]
    pub route: Option<String>,
    /// GTFS: the trip ridden (trip_id); fixes the route and its stop pattern.
    #[arg(long)]
    pub trip: Option<String>,
    /// GTFS: the rider category (rider_category_id); default: the feed's default category.
    #[arg(long)]
    pub rider_category: Option<String>,
    /// GTFS: the fare medium (fare_media_id); default: a transit card where a product offers
    /// one, else the cheapest medium.
    #[arg(long)]
    pub fare_media: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct StationsArgs {
    #[command(flatten)]
    pub source: NetworkArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn quote(args: &QuoteArgs) -> anyhow::Result<()> {
    let entry_at = time::at_or_now(args.at.as_deref())?;
    let exit_at = match &args.exit_at {
        Some(t) => time::at_or_now(Some(t)).context("--exit-at")?,
        None => entry_at,
    };
    let month_spent_fen = money::parse_yuan(&args.month_spent, "--month-spent")?;
    if let Some(feed) = gtfs_with_fares(&args.source)? {
        return quote_gtfs(args, &feed, entry_at, exit_at);
    }
    for (flag, given) in [
        ("--route", args.route.is_some()),
        ("--trip", args.trip.is_some()),
        ("--rider-category", args.rider_category.is_some()),
        ("--fare-media", args.fare_media.is_some()),
    ] {
        if given {
            bail!("{flag} applies to a GTFS feed with Fares v2 (--network FEED), not to city fare rules");
        }
    }
    let city = args.source.load()?;
    let Some(engine) = city.engine() else { bail!("--city: {} has no metro", city.profile().name) };
    let network = engine.network();
    let from = network.lookup(&args.from).map_err(|e| anyhow::anyhow!("--from: {e}"))?;
    let to = network.lookup(&args.to).map_err(|e| anyhow::anyhow!("--to: {e}"))?;
    let q = engine.quote(&Trip { from, to, entry_at, exit_at, month_spent_fen }).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = engine.path(&q);
    let station = |i: usize| network.stations()[i].name.clone();
    let line = |l: Option<usize>| l.map(|l| network.lines()[l].name.clone());
    if args.json {
        let v = json!({
            "fare_fen": q.fare_fen,
            "distance_m": q.distance_m,
            "base_fare_fen": q.base_fare_fen,
            "monthly_percent": q.monthly_percent,
            "off_peak": q.off_peak,
            "overstay_fen": q.overstay_fen,
            "month_counted_fen": q.month_counted_fen,
            "legs": q.legs().map(|l| json!({ "rule": engine.group_name(l.group), "from": station(l.from), "to": station(l.to),
                "distance_m": l.distance_m, "fare_fen": l.fare_fen })).collect::<Vec<_>>(),
            "path": path.iter().map(|h| json!({ "station": station(h.station), "line": line(h.line) })).collect::<Vec<_>>(),
            "sample_network": network.is_sample(),
            "example_values": city.profile().example_values,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{} yuan, {:.1} km", money::yuan(q.fare_fen.into()), f64::from(q.distance_m) / 1000.0);
    let mut route = String::new();
    let mut current: Option<String> = None;
    for hop in &path {
        let l = line(hop.line);
        if l.is_some() && l != current {
            route.push_str(&format!(" —{}→ ", l.clone().unwrap_or_default()));
            current = l;
        } else if !route.is_empty() {
            route.push_str(" → ");
        }
        route.push_str(&station(hop.station));
    }
    println!("  {route}");
    for l in q.legs() {
        println!("  {}: {} m, {} yuan", engine.group_name(l.group), l.distance_m, money::yuan(l.fare_fen.into()));
    }
    if q.off_peak {
        println!("  early-morning discount");
    }
    if q.monthly_percent != 100 {
        println!("  monthly discount: {} % of the fare", q.monthly_percent);
    }
    if q.overstay_fen > 0 {
        println!("  overstay: {} yuan more", money::yuan(q.overstay_fen.into()));
    }
    if network.is_sample() {
        println!("  (sample network: import a real one with --network)");
    }
    if city.profile().example_values {
        println!("  ({}'s fares are example values, not checked against the published rules)", city.profile().name);
        println!("  {}", city.profile().notes);
    }
    Ok(())
}

/// One leg priced by a feed's own Fares v2 rules.
fn quote_gtfs(
    args: &QuoteArgs,
    feed: &Feed,
    entry_at: yitong_profile::DateTime,
    exit_at: yitong_profile::DateTime,
) -> anyhow::Result<()> {
    let mut leg = JourneyLeg::new(&args.from, &args.to, entry_at, exit_at);
    leg.route = args.route.clone();
    leg.trip = args.trip.clone();
    let options = QuoteOptions { rider_category: args.rider_category.clone(), fare_media: args.fare_media.clone() };
    let q = feed.quote_journey_with(&[leg], &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let l = &q.legs[0];
    if args.json {
        // `fare_fen`: hundredths of the feed's currency (fen for CNY), as for city fares.
        let v = json!({ "fare_fen": q.total, "currency": q.currency, "route_id": l.route_id, "network_id": l.network_id,
            "distance_m": l.distance_m, "stops": l.stops, "fare_product_id": l.fare_product_id,
            "leg_group_id": l.leg_group_id, "rider_category": q.rider_category });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let amount = money::yuan(q.total);
    let route = l.route_id.as_ref().map(|r| format!(", route {r}")).unwrap_or_default();
    let network = l.network_id.as_ref().map(|n| format!(", network {n}")).unwrap_or_default();
    println!("{amount} {}: product {}{route}{network}", q.currency, l.fare_product_id);
    if let (Some(d), Some(s)) = (l.distance_m, l.stops) {
        println!("  {d} m, {s} stops");
    }
    if let Some(r) = &q.rider_category {
        println!("  rider category {r}");
    }
    Ok(())
}

/// A GTFS feed that prices journeys itself, when `--network` points at one.
fn gtfs_with_fares(source: &NetworkArgs) -> anyhow::Result<Option<Feed>> {
    match &source.network {
        Some(dir) if dir.join("stops.txt").exists() => {
            let feed = Feed::load_dir(dir)?;
            Ok(feed.has_fares().then_some(feed))
        }
        _ => Ok(None),
    }
}

pub fn stations(args: &StationsArgs) -> anyhow::Result<()> {
    // A GTFS feed is listed as the feed has it (with the stops no trip serves), whatever its fares.
    if let Some(dir) = args.source.network.as_ref().filter(|d| d.join("stops.txt").exists()) {
        let feed = Feed::load_dir(dir)?;
        print_stations(feed.network(), args.json)?;
        if !feed.unserved_stops().is_empty() {
            eprintln!(
                "note: {} stop(s) no trip serves: {}",
                feed.unserved_stops().len(),
                feed.unserved_stops().join(", ")
            );
        }
        return Ok(());
    }
    let city = args.source.load()?;
    let Some(engine) = city.engine() else { bail!("--city: {} has no metro", city.profile().name) };
    print_stations(engine.network(), args.json)
}

fn print_stations(network: &yitong_fare::Network, json_out: bool) -> anyhow::Result<()> {
    let rows: Vec<_> = network
        .stations()
        .iter()
        .map(|s| {
            let lines: Vec<&str> = s.lines.iter().map(|&l| network.lines()[l].name.as_str()).collect();
            (s, lines)
        })
        .collect();
    if json_out {
        let v: Vec<_> = rows
            .iter()
            .map(|(s, lines)| {
                // Where the code comes from: the network data, a code table, or derived from the name.
                let origin = format!("{:?}", s.code_origin).to_lowercase();
                json!({ "code": s.code, "code_origin": origin, "name": s.name, "aliases": s.aliases, "lines": lines })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for (s, lines) in rows {
            let alias = s.aliases.first().map(|a| format!(" ({a})")).unwrap_or_default();
            println!("{:>5}  {}{alias}  [{}]", s.code, s.name, lines.join(", "));
        }
    }
    Ok(())
}
