//! GTFS feeds written by hand (`tests/feeds/`), each table exercised: the network from stops,
//! routes, trips and stop_times, and Fares v2 with distance bands, areas, timeframes, media,
//! rule priorities, the inverse matching of empty fields, and a time-limited transfer.

use std::path::{Path, PathBuf};

use yitong_fare_import::gtfs::{Feed, JourneyLeg};
use yitong_profile::DateTime;

fn feed(name: &str) -> Feed {
    Feed::load_dir(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/feeds").join(name)).unwrap()
}

fn leg(from: &str, to: &str, departure: &str, arrival: &str) -> JourneyLeg {
    let t = |s: &str| DateTime::parse(&format!("2026-11-25 {s}")).unwrap();
    JourneyLeg::new(from, to, t(departure), t(arrival))
}

fn fare(feed: &Feed, legs: &[JourneyLeg]) -> i64 {
    feed.quote_journey(legs).unwrap().total
}

#[test]
fn network_comes_from_the_longest_trip_with_shape_distances() {
    let f = feed("metro_bus");
    let n = f.network();
    let line = &n.lines()[0];
    let names: Vec<&str> = line.stops.iter().map(|&s| n.stations()[s].name.as_str()).collect();
    // R1-full has four stops; its platform SA1 belongs to the parent station Anding.
    assert_eq!(names, ["Anding", "Baishi", "Chengnan", "Donghu"]);
    assert_eq!(line.segments_m, [5_000, 4_000, 7_000]);
    assert_eq!(n.lookup("SA1").unwrap(), n.lookup("Anding").unwrap());
    assert_eq!(n.lookup("A").unwrap(), n.lookup("Anding").unwrap());
    let lp = feed("loop_stops");
    let circle = &lp.network().lines()[0];
    assert!(circle.is_loop);
    assert_eq!(circle.segments_m, [1_000, 1_000, 4_000]);
}

#[test]
fn distance_bands_and_preferred_medium() {
    let f = feed("metro_bus");
    // Anding - Baishi 5,000 m: metro_3, 3.00 on a transit card (3.50 by QR code).
    assert_eq!(fare(&f, &[leg("Anding", "Baishi", "10:00:00", "10:05:00")]), 300);
    // Anding - Chengnan 5,000 + 4,000 = 9,000 m: metro_4.
    assert_eq!(fare(&f, &[leg("Anding", "Chengnan", "10:00:00", "10:09:00")]), 400);
    // Anding - Donghu 16,000 m: metro_5, from 12,100 m on.
    let q = f.quote_journey(&[leg("Anding", "Donghu", "10:00:00", "10:16:00")]).unwrap();
    assert_eq!((q.total, q.legs[0].distance_m, q.currency.as_str()), (500, Some(16_000), "CNY"));
}

#[test]
fn timeframe_and_area_rule_wins_by_priority() {
    let f = feed("metro_bus");
    // From the outer zone in the 07:00-09:00 peak: the priority-1 rule, 6.00.
    assert_eq!(fare(&f, &[leg("Chengnan", "Anding", "08:00:00", "08:09:00")]), 600);
    assert_eq!(fare(&f, &[leg("Chengnan", "Anding", "06:59:59", "07:09:00")]), 400);
    assert_eq!(fare(&f, &[leg("Chengnan", "Anding", "09:00:00", "09:09:00")]), 400, "end_time is exclusive");
    // From the core in the peak: distance fare.
    assert_eq!(fare(&f, &[leg("Anding", "Chengnan", "08:00:00", "08:09:00")]), 400);
}

#[test]
fn metro_to_bus_transfer_within_the_time_limit() {
    let f = feed("metro_bus");
    let metro = leg("Anding", "Donghu", "10:00:00", "10:16:00");
    // Bus boarded 30 minutes after leaving the metro: A + AB = 5.00 + 1.00.
    let q = f.quote_journey(&[metro.clone(), leg("Donghu", "Erli bus stop", "10:46:00", "10:56:00")]).unwrap();
    assert_eq!(q.total, 600);
    assert_eq!(q.legs[1].transfer_adjustment, -100);
    // Exactly 3,600 s after arrival still counts; one second more does not.
    assert_eq!(fare(&f, &[metro.clone(), leg("Donghu", "Erli bus stop", "11:16:00", "11:26:00")]), 600);
    assert_eq!(fare(&f, &[metro, leg("Donghu", "Erli bus stop", "11:16:01", "11:26:00")]), 700);
}

#[test]
fn empty_fields_match_inversely_without_rule_priority() {
    let f = feed("loop_stops");
    // Gate - Market: one stop, `short`.
    assert_eq!(fare(&f, &[leg("Gate", "Market", "10:00:00", "10:02:00")]), 200);
    // Gate - Harbour: 2,000 m via Market (two stops) beats the 4,000 m closing segment: `long`.
    assert_eq!(fare(&f, &[leg("Gate", "Harbour", "10:00:00", "10:04:00")]), 300);
    // Harbour - Airport: not from the airport area, so the empty-area rules match: one stop.
    assert_eq!(fare(&f, &[leg("Harbour", "Airport", "10:00:00", "10:20:00")]), 200);
    // From the airport only the rule naming it matches.
    assert_eq!(fare(&f, &[leg("Airport", "Harbour", "10:00:00", "10:20:00")]), 1_000);
}

fn broken(files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/feeds/metro_bus");
    for entry in std::fs::read_dir(&base).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let err = Feed::load_dir(dir.path()).unwrap_err();
    // Name the file relative to the temporary folder.
    err.to_string().replace(&format!("{}/", dir.path().display()), "")
}

#[test]
fn malformed_rows_name_file_line_and_field() {
    let e = broken(&[(
        "stop_times.txt",
        "trip_id,stop_id,stop_sequence,shape_dist_traveled\nR1-full,SA1,1,0\nR1-full,SB,2,\n",
    )]);
    // Distance rules need a distance: without shape_dist_traveled, coordinates; this feed has none.
    assert_eq!(
        e,
        "stop_times.txt:3: shape_dist_traveled: missing, and a stop has no coordinates: distance-based fares need \
         one or the other"
    );
    let e = broken(&[(
        "stop_times.txt",
        "trip_id,stop_id,stop_sequence,shape_dist_traveled\nR1-full,SA1,1,500\nR1-full,SB,2,100\n",
    )]);
    assert_eq!(e, "stop_times.txt:3: shape_dist_traveled: decreases along the trip");
    let e = broken(&[("fare_products.txt", "fare_product_id,amount,currency\nmetro_3,three,CNY\n")]);
    assert!(e.starts_with("fare_products.txt:2: amount: `three`"), "{e}");
    let e = broken(&[("fare_leg_rules.txt", "network_id,fare_product_id\nmetro,metro_9\n")]);
    assert_eq!(e, "fare_leg_rules.txt:2: fare_product_id: unknown `metro_9`");
    let e = broken(&[("stop_areas.txt", "area_id,stop_id\ncore,SZ\n")]);
    assert_eq!(e, "stop_areas.txt:2: stop_id: no stop `SZ`");
    let e = broken(&[("timeframes.txt", "timeframe_group_id,start_time,end_time\npeak,9:00,10:00:00\n")]);
    assert!(e.starts_with("timeframes.txt:2: start_time"), "{e}");
    let e = broken(&[("trips.txt", "route_id,service_id,trip_id\nR9,daily,R1-full\n")]);
    assert_eq!(e, "trips.txt:2: route_id: no route `R9`");
    let e =
        broken(&[("fare_transfer_rules.txt", "from_leg_group_id,to_leg_group_id,fare_transfer_type\nmetro,ferry,0\n")]);
    assert_eq!(e, "fare_transfer_rules.txt:2: to_leg_group_id: no leg group `ferry` in fare_leg_rules.txt");
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/feeds/metro_bus/stops.txt").exists());
}

#[test]
fn unknown_stations_and_unmatched_legs_are_errors() {
    let f = feed("metro_bus");
    let e = f.quote_journey(&[leg("Andng", "Baishi", "10:00:00", "10:05:00")]).unwrap_err().to_string();
    assert!(e.contains("did you mean Anding"), "{e}");
    assert!(f.quote_journey(&[]).is_err());
}

#[test]
fn transfer_types_and_counts() {
    let f = feed("transfers");
    // Three local rides: the first transfer costs A + AB + B (2.00 + 0.50 + 2.00); transfer_count 1
    // allows no second one, so the third ride is a plain 2.00.
    let legs = [
        leg("Xiyuan", "Yuquan", "08:00:00", "08:02:00"),
        leg("Yuquan", "Zhongxin", "08:05:00", "08:07:00"),
        leg("Zhongxin", "Yuquan", "08:10:00", "08:12:00"),
    ];
    let q = f.quote_journey(&legs).unwrap();
    assert_eq!(q.total, 650);
    assert_eq!(q.legs.iter().map(|l| l.transfer_adjustment).collect::<Vec<_>>(), [0, 50, 0]);
    // Local then express: type 2, the combination product replaces both fares (6.00, not 7.00).
    let q = f
        .quote_journey(&[
            leg("Xiyuan", "Zhongxin", "08:00:00", "08:04:00"),
            leg("Zhongxin", "Wangjing", "08:10:00", "08:20:00"),
        ])
        .unwrap();
    assert_eq!((q.total, q.legs[1].network_id.as_deref()), (600, Some("express")));
}
