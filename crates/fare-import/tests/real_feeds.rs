//! Two real agency feeds with Fares v2 (`tests/feeds/zakroczym`, `tests/feeds/transcollines`,
//! sources and licences in their READMEs), imported whole; every real ride of their trips
//! (boarding at one stop, alighting at any later one, at the trip's own times) is priced by the
//! importer and by `tools/gtfs_fares_reference.py`, an independent calculator written from the
//! GTFS reference alone. At least 98 % must agree on each feed.

use std::path::{Path, PathBuf};
use std::process::Command;

use yitong_fare::QuoteError;
use yitong_fare_import::gtfs::{Feed, JourneyLeg};
use yitong_profile::DateTime;

fn feed_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/feeds").join(name)
}

fn at(text: &str) -> DateTime {
    DateTime::parse(text).unwrap()
}

/// The reference calculator's rows, or `None` (with the reason printed) when python3 is absent.
fn reference_fares(feed: &Path, dates: &[&str]) -> Option<Vec<Vec<String>>> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/gtfs_fares_reference.py");
    let output = match Command::new("python3").arg(&script).arg(feed).args(dates).output() {
        Ok(o) => o,
        Err(e) if std::env::var_os("YITONG_REQUIRE_EXTERNAL").is_none() => {
            eprintln!("skipped: python3 is needed to run the independent calculator ({e})");
            return None;
        }
        Err(e) => panic!("python3: {e}"),
    };
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    Some(reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect())
}

/// Prices every reference row with the importer; returns (rows, agreeing rows).
fn agreement(name: &str, dates: &[&str]) -> Option<(usize, usize)> {
    let dir = feed_dir(name);
    let feed = Feed::load_dir(&dir).unwrap();
    let rows = reference_fares(&dir, dates)?;
    let mut agree = 0;
    let mut shown = 0;
    for row in &rows {
        let [trip, from, to, departure, arrival, expected] = row.as_slice() else { panic!("row {row:?}") };
        let leg = JourneyLeg::new(from, to, at(departure), at(arrival)).on_trip(trip);
        let got = match feed.quote_journey(&[leg]) {
            Ok(q) => q.total.to_string(),
            Err(QuoteError::NoFare(_)) => "none".to_string(),
            Err(e) => format!("error: {e}"),
        };
        if &got == expected {
            agree += 1;
        } else if shown < 10 {
            shown += 1;
            eprintln!("{name}: {trip} {from} -> {to} at {departure}: importer {got}, reference {expected}");
        }
    }
    Some((rows.len(), agree))
}

fn assert_agreement(name: &str, dates: &[&str], rows_min: usize) {
    let Some((rows, agree)) = agreement(name, dates) else { return };
    eprintln!("{name}: {agree} of {rows} real rides agree");
    assert!(rows >= rows_min, "{name}: only {rows} rides sampled");
    assert!(agree * 100 >= rows * 98, "{name}: {agree} of {rows} agree, under 98 %");
}

#[test]
fn zakroczym_every_real_ride_agrees_with_the_reference() {
    // No timeframes: one date is enough (a Wednesday in the feed's service period).
    assert_agreement("zakroczym", &["2026-11-25"], 2_500);
}

#[test]
fn transcollines_every_real_ride_agrees_with_the_reference() {
    // Inside the tariff's service dates, and after them (no fare at all).
    assert_agreement("transcollines", &["2025-11-25", "2026-01-06"], 14_000);
}

#[test]
fn both_directions_and_every_variant_are_on_the_network() {
    // Transcollines 910 and 921: each direction uses its own stop IDs; all 204 stops are served.
    let t = Feed::load_dir(&feed_dir("transcollines")).unwrap();
    assert!(t.unserved_stops().is_empty(), "{:?}", t.unserved_stops());
    let lines: Vec<&str> = t.network().lines().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(lines, ["910", "910 #2", "921", "921 #2"]);
    // Zakroczym: eleven stop patterns on three routes, each a line.
    let z = Feed::load_dir(&feed_dir("zakroczym")).unwrap();
    assert_eq!(z.network().lines().len(), 11);
    assert!(z.unserved_stops().is_empty(), "{:?}", z.unserved_stops());
}

#[test]
fn distances_from_shape_dist_traveled_else_from_coordinates() {
    // Transcollines gives shape_dist_traveled (metres): the whole trip is 153,002.22 m.
    let t = Feed::load_dir(&feed_dir("transcollines")).unwrap();
    let leg = JourneyLeg::new("F134-01", "F912-51", at("2025-11-25 05:17"), at("2025-11-25 07:31"))
        .on_trip("20250407-Semaine-01-910-0-0517");
    let q = t.quote_journey(&[leg]).unwrap();
    assert_eq!((q.legs[0].distance_m, q.legs[0].stops), (Some(153_002), Some(81)));
    // Zakroczym has none: great-circle metres between the stops' coordinates (776 m and
    // 1,909 m, computed apart with the haversine formula, mean Earth radius 6,371,008.8 m).
    let z = Feed::load_dir(&feed_dir("zakroczym")).unwrap();
    let leg = JourneyLeg::new("100", "102", at("2026-11-25 04:05"), at("2026-11-25 04:08")).on_trip("10-1");
    let q = z.quote_journey(&[leg]).unwrap();
    assert_eq!((q.legs[0].distance_m, q.legs[0].stops), (Some(776 + 1_909), Some(2)));
}

#[test]
fn area_fares_of_real_rides() {
    let z = Feed::load_dir(&feed_dir("zakroczym")).unwrap();
    let ride = |from: &str, to: &str, trip: &str| {
        let leg = JourneyLeg::new(from, to, at("2026-11-25 08:00"), at("2026-11-25 08:30")).on_trip(trip);
        z.quote_journey(&[leg]).map(|q| (q.total, q.currency, q.legs[0].fare_product_id.clone()))
    };
    // Zakroczym (1) to Nowy Dwór Mazowiecki (3): 5.00 PLN; to Modlin (2): 4.00; within zone 1: free.
    assert_eq!(ride("100", "125", "10-1").unwrap(), (500, "PLN".into(), "single_ride_zones13_normal".into()));
    assert_eq!(ride("126", "117", "11-1").unwrap().0, 400);
    assert_eq!(ride("113-2", "100", "11S-1").unwrap().0, 0);
    // A trip does not run backwards.
    assert!(matches!(ride("125", "100", "10-1"), Err(QuoteError::NoFare(_))));
    // Transcollines: Pontiac (PNT) to Gatineau (GAT) 20.00 CAD; within Gatineau no rule (STO's
    // territory); after 2025-12-30 the tariff's timeframe has no service date: no fare.
    let t = Feed::load_dir(&feed_dir("transcollines")).unwrap();
    let trip = "20250407-Semaine-01-910-0-0517";
    let quote = |from: &str, to: &str, date: &str| {
        let leg = JourneyLeg::new(from, to, at(&format!("{date} 06:00")), at(&format!("{date} 07:00"))).on_trip(trip);
        t.quote_journey(&[leg]).map(|q| q.total)
    };
    assert_eq!(quote("F134-01", "F912-51", "2025-11-25").unwrap(), 2_000);
    assert_eq!(quote("F102-13", "F912-51", "2025-11-25").unwrap(), 500, "COL to GAT");
    assert!(matches!(quote("F910-07", "F912-51", "2025-11-25"), Err(QuoteError::NoFare(_))));
    assert!(matches!(quote("F134-01", "F912-51", "2026-01-06"), Err(QuoteError::NoFare(_))));
}

#[test]
fn rider_categories_of_a_real_feed() {
    use yitong_fare_import::gtfs::QuoteOptions;
    let z = Feed::load_dir(&feed_dir("zakroczym")).unwrap();
    let leg = JourneyLeg::new("100", "125", at("2026-11-25 04:05"), at("2026-11-25 04:56")).on_trip("10-1");
    // The default category (0, "Bilet normalny") is priced when none is named.
    let q = z.quote_journey(std::slice::from_ref(&leg)).unwrap();
    assert_eq!((q.total, q.rider_category.as_deref()), (500, Some("0")));
    // Category 2 (children) has only a monthly ticket in this feed: no single-ride fare.
    let child = QuoteOptions { rider_category: Some("2".into()), fare_media: None };
    let e = z.quote_journey_with(std::slice::from_ref(&leg), &child).unwrap_err().to_string();
    assert!(e.contains("for rider category 2"), "{e}");
    let unknown = QuoteOptions { rider_category: Some("9".into()), fare_media: None };
    let e = z.quote_journey_with(&[leg], &unknown).unwrap_err().to_string();
    assert_eq!(e, "no fare: no rider category `9`; the feed has: 0, 1, 2, 3");
}
