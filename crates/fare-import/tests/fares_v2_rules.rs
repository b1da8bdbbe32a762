//! One test per Fares v2 rule of the GTFS reference the importer follows, each on a small feed
//! written here: a base network (zone 1: A, B; zone 2: C, D; E served by no trip; routes R1
//! A-B-C and back on network n1, R2 C-D on n2) and the fare files of the rule under test.

use std::path::Path;

use yitong_fare::QuoteError;
use yitong_fare_import::gtfs::{Feed, JourneyLeg, QuoteOptions};
use yitong_profile::DateTime;

const BASE: &[(&str, &str)] = &[
    (
        "stops.txt",
        "stop_id,stop_name,stop_lat,stop_lon\nA,Alder,45.0,-75.0\nB,Birch,45.01,-75.0\nC,Cedar,45.02,-75.0\n\
         D,Dogwood,45.03,-75.0\nE,Elm,45.04,-75.0\n",
    ),
    ("routes.txt", "route_id,route_short_name,network_id\nR1,1,n1\nR2,2,n2\n"),
    ("trips.txt", "route_id,service_id,trip_id\nR1,all,t1\nR1,all,t1r\nR2,all,t2\n"),
    (
        "stop_times.txt",
        "trip_id,stop_sequence,stop_id,arrival_time,departure_time\nt1,1,A,08:00:00,08:00:00\n\
         t1,2,B,08:05:00,08:05:00\nt1,3,C,08:10:00,08:10:00\nt1r,1,C,09:00:00,09:00:00\nt1r,2,B,09:05:00,09:05:00\n\
         t1r,3,A,09:10:00,09:10:00\nt2,1,C,08:20:00,08:20:00\nt2,2,D,08:30:00,08:30:00\n",
    ),
    (
        "calendar.txt",
        "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n\
         all,1,1,1,1,1,1,1,20260101,20261231\n",
    ),
    ("calendar_dates.txt", "service_id,date,exception_type\nall,20261225,2\n"),
    ("areas.txt", "area_id\nzone1\nzone2\n"),
    ("stop_areas.txt", "area_id,stop_id\nzone1,A\nzone1,B\nzone2,C\nzone2,D\n"),
    ("networks.txt", "network_id\nn1\nn2\n"),
];

/// A zone fare table used by several tests: 2.00 within a zone, 3.00 across.
const ZONE_RULES: &str =
    "leg_group_id,from_area_id,to_area_id,fare_product_id\nin,zone1,zone1,two\nin,zone2,zone2,two\n\
                          across,zone1,zone2,three\nacross,zone2,zone1,three\n";
const PRODUCTS: &str = "fare_product_id,amount,currency\ntwo,2.00,CAD\nthree,3.00,CAD\nhalf,0.50,CAD\n";

fn feed_with(files: &[(&str, &str)]) -> Result<Feed, yitong_fare::LoadError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in BASE.iter().chain(files) {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    Feed::load_dir(dir.path()).map_err(|mut e| {
        e.file = Path::new(&e.file).file_name().unwrap().to_string_lossy().into_owned();
        e
    })
}

fn at(time: &str) -> DateTime {
    DateTime::parse(&format!("2026-11-25 {time}")).unwrap()
}

fn leg(from: &str, to: &str, departure: &str, arrival: &str) -> JourneyLeg {
    JourneyLeg::new(from, to, at(departure), at(arrival))
}

fn total(feed: &Feed, legs: &[JourneyLeg]) -> Result<i64, QuoteError> {
    feed.quote_journey(legs).map(|q| q.total)
}

#[test]
fn stops_no_trip_serves_are_reported_and_have_no_ride() {
    let f = feed_with(&[("fare_leg_rules.txt", ZONE_RULES), ("fare_products.txt", PRODUCTS)]).unwrap();
    assert_eq!(f.unserved_stops(), ["E"]);
    assert!(f.network().lookup("Elm").is_ok(), "kept on the network");
    assert!(matches!(total(&f, &[leg("A", "E", "08:00", "08:10")]), Err(QuoteError::NoRoute { .. })));
}

#[test]
fn a_leg_is_a_ride_on_one_route_priced_without_a_path() {
    let f = feed_with(&[("fare_leg_rules.txt", ZONE_RULES), ("fare_products.txt", PRODUCTS)]).unwrap();
    // Both directions of R1 are on the network (t1r has its own pattern).
    assert_eq!(total(&f, &[leg("C", "A", "09:00", "09:10")]), Ok(300));
    assert_eq!(total(&f, &[leg("A", "B", "08:00", "08:05").on_route("R1")]), Ok(200));
    assert_eq!(total(&f, &[leg("A", "B", "08:00", "08:05").on_route("1")]), Ok(200), "by short name");
    let e = total(&f, &[leg("A", "C", "08:00", "08:10").on_route("R2")]).unwrap_err().to_string();
    assert_eq!(e, "no fare: route R2 does not run from A to C");
    let e = total(&f, &[leg("A", "C", "08:00", "08:10").on_trip("t1r")]).unwrap_err().to_string();
    assert_eq!(e, "no fare: trip t1r does not run from A to C");
    let e = total(&f, &[leg("A", "C", "08:00", "08:10").on_trip("t9")]).unwrap_err().to_string();
    assert_eq!(e, "no fare: no trip `t9` in trips.txt");
    // A to D needs two routes on two networks: not one leg.
    assert!(matches!(total(&f, &[leg("A", "D", "08:00", "08:30")]), Err(QuoteError::NoRoute { .. })));
}

#[test]
fn network_rules_match_the_route_network_and_empty_matches_the_rest() {
    // No rule_priority column: the empty network_id matches networks no rule names (n2 here).
    let rules = "network_id,fare_product_id\nn1,three\n,two\n";
    let f = feed_with(&[("fare_leg_rules.txt", rules), ("fare_products.txt", PRODUCTS)]).unwrap();
    assert_eq!(total(&f, &[leg("A", "B", "08:00", "08:05")]), Ok(300));
    assert_eq!(total(&f, &[leg("C", "D", "08:20", "08:30")]), Ok(200));
    // With the column, empty matches every network; the higher priority wins.
    let rules = "network_id,fare_product_id,rule_priority\nn1,three,\n,two,\n";
    let f = feed_with(&[("fare_leg_rules.txt", rules), ("fare_products.txt", PRODUCTS)]).unwrap();
    assert_eq!(total(&f, &[leg("A", "B", "08:00", "08:05")]), Ok(200), "both match, the cheaper is taken");
    let rules = "network_id,fare_product_id,rule_priority\nn1,three,1\n,two,0\n";
    let f = feed_with(&[("fare_leg_rules.txt", rules), ("fare_products.txt", PRODUCTS)]).unwrap();
    assert_eq!(total(&f, &[leg("A", "B", "08:00", "08:05")]), Ok(300), "priority 1 beats 0");
}

#[test]
fn timeframes_hold_only_on_their_service_dates_and_empty_never_restricts() {
    let frames = "timeframe_group_id,start_time,end_time,service_id\npeak,07:00:00,09:00:00,all\n";
    // Without rule_priority: the empty timeframe rule still matches in the peak (it never
    // restricts), so the cheaper of the two is taken.
    let rules = "from_timeframe_group_id,fare_product_id\npeak,three\n,two\n";
    let f = feed_with(&[("timeframes.txt", frames), ("fare_leg_rules.txt", rules), ("fare_products.txt", PRODUCTS)])
        .unwrap();
    assert_eq!(total(&f, &[leg("A", "B", "08:00", "08:05")]), Ok(200));
    // With a priority the peak rule wins in the peak only.
    let rules = "from_timeframe_group_id,fare_product_id,rule_priority\npeak,three,1\n,two,0\n";
    let f = feed_with(&[("timeframes.txt", frames), ("fare_leg_rules.txt", rules), ("fare_products.txt", PRODUCTS)])
        .unwrap();
    assert_eq!(total(&f, &[leg("A", "B", "08:00", "08:05")]), Ok(300));
    assert_eq!(total(&f, &[leg("A", "B", "09:00", "09:05")]), Ok(200), "end_time is exclusive");
    // 2026-12-25 is removed from the service (calendar_dates.txt), 2027 is past its end_date.
    let on = |date: &str| {
        let t = |time: &str| DateTime::parse(&format!("{date} {time}")).unwrap();
        total(&f, &[JourneyLeg::new("A", "B", t("08:00"), t("08:05"))])
    };
    assert_eq!(on("2026-12-25"), Ok(200));
    assert_eq!(on("2027-01-05"), Ok(200));
    // A tariff whose every rule has a timeframe gives no fare outside its service dates.
    let rules = "from_timeframe_group_id,fare_product_id\nday,two\n";
    let frames = "timeframe_group_id,start_time,end_time,service_id\nday,,,all\n";
    let f = feed_with(&[("timeframes.txt", frames), ("fare_leg_rules.txt", rules), ("fare_products.txt", PRODUCTS)])
        .unwrap();
    let t = |date: &str| DateTime::parse(&format!("{date} 08:00")).unwrap();
    assert_eq!(f.quote_journey(&[JourneyLeg::new("A", "B", t("2026-11-25"), t("2026-11-25"))]).unwrap().total, 200);
    let e = f.quote_journey(&[JourneyLeg::new("A", "B", t("2027-01-05"), t("2027-01-05"))]).unwrap_err();
    assert_eq!(e.to_string(), "no fare: no fare leg rule matches A to B on 2027-01-05");
    // A timeframe's service must exist.
    let frames = "timeframe_group_id,start_time,end_time,service_id\nday,,,nope\n";
    let e = feed_with(&[("timeframes.txt", frames), ("fare_leg_rules.txt", rules), ("fare_products.txt", PRODUCTS)])
        .unwrap_err();
    assert_eq!(e.to_string(), "timeframes.txt:2: service_id: no service `nope` in calendar.txt or calendar_dates.txt");
}

#[test]
fn rider_categories_default_and_named() {
    let categories = "rider_category_id,rider_category_name,is_default_fare_category\nadult,Adult,1\nchild,Child,0\n";
    let products = "fare_product_id,amount,currency,rider_category_id\nride,3.00,CAD,adult\nride,1.50,CAD,child\n\
                    any,2.50,CAD,\n";
    let rules = "leg_group_id,network_id,fare_product_id\nr,n1,ride\ns,n2,any\n";
    let f = feed_with(&[
        ("rider_categories.txt", categories),
        ("fare_products.txt", products),
        ("fare_leg_rules.txt", rules),
    ])
    .unwrap();
    let with = |category: Option<&str>, l: JourneyLeg| {
        let options = QuoteOptions { rider_category: category.map(str::to_string), fare_media: None };
        f.quote_journey_with(&[l], &options).map(|q| q.total)
    };
    assert_eq!(with(None, leg("A", "B", "08:00", "08:05")), Ok(300), "the default category");
    assert_eq!(with(Some("child"), leg("A", "B", "08:00", "08:05")), Ok(150));
    // A product row with no category is for every category.
    assert_eq!(with(Some("child"), leg("C", "D", "08:20", "08:30")), Ok(250));
    let e = feed_with(&[("fare_products.txt", "fare_product_id,amount,currency,rider_category_id\nx,1,CAD,senior\n")])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "fare_products.txt:2: rider_category_id: no rider category `senior` in rider_categories.txt"
    );
}

#[test]
fn fare_media_preferred_card_or_named() {
    let media = "fare_media_id,fare_media_name,fare_media_type\ncash,Cash,0\ncard,Card,2\napp,App,4\n";
    let products = "fare_product_id,amount,currency,fare_media_id\nride,3.00,CAD,cash\nride,2.50,CAD,card\n\
                    ride,2.25,CAD,app\n";
    let rules = "fare_product_id\nride\n";
    let f = feed_with(&[("fare_media.txt", media), ("fare_products.txt", products), ("fare_leg_rules.txt", rules)])
        .unwrap();
    let with = |m: Option<&str>| {
        let options = QuoteOptions { rider_category: None, fare_media: m.map(str::to_string) };
        f.quote_journey_with(&[leg("A", "B", "08:00", "08:05")], &options).map(|q| q.total)
    };
    assert_eq!(with(None), Ok(250), "a transit card where the product offers one");
    assert_eq!(with(Some("cash")), Ok(300));
    assert_eq!(with(Some("app")), Ok(225));
    assert_eq!(
        with(Some("coin")).unwrap_err().to_string(),
        "no fare: no fare medium `coin`; the feed has: app, card, cash"
    );
}

#[test]
fn negative_transfer_product_is_a_discount() {
    let products = format!("{PRODUCTS}discount,-1.00,CAD\n");
    let transfers = "from_leg_group_id,to_leg_group_id,transfer_count,fare_transfer_type,fare_product_id\n\
                     in,in,-1,1,discount\n";
    let f = feed_with(&[
        ("fare_leg_rules.txt", ZONE_RULES),
        ("fare_products.txt", &products),
        ("fare_transfer_rules.txt", transfers),
    ])
    .unwrap();
    // A + AB + B: 2.00 - 1.00 + 2.00.
    let q = f.quote_journey(&[leg("A", "B", "08:00", "08:05"), leg("B", "A", "09:05", "09:10")]).unwrap();
    assert_eq!((q.total, q.legs[1].transfer_adjustment), (300, -100));
}

#[test]
fn join_rules_make_one_effective_leg() {
    let routes = "route_id,route_short_name,network_id\nR1,1,n1\nR2,2,n1\n";
    let joins = "from_network_id,to_network_id,from_stop_id,to_stop_id\nn1,n1,C,C\n";
    let legs = [leg("A", "C", "08:00", "08:10"), leg("C", "D", "08:20", "08:30")];
    let f = feed_with(&[("routes.txt", routes), ("fare_leg_rules.txt", ZONE_RULES), ("fare_products.txt", PRODUCTS)])
        .unwrap();
    // Apart: zone 1 to 2, then within zone 2.
    assert_eq!(total(&f, &legs), Ok(500));
    let f = feed_with(&[
        ("routes.txt", routes),
        ("fare_leg_rules.txt", ZONE_RULES),
        ("fare_products.txt", PRODUCTS),
        ("fare_leg_join_rules.txt", joins),
    ])
    .unwrap();
    // Joined at C: one effective leg from zone 1 to zone 2.
    let q = f.quote_journey(&legs).unwrap();
    assert_eq!((q.total, q.legs.len(), q.legs[0].journey_legs), (300, 1, 2));
    // The join names its transfer stop: a transfer elsewhere is not joined.
    let joins = "from_network_id,to_network_id,from_stop_id,to_stop_id\nn1,n1,B,B\n";
    let f = feed_with(&[
        ("routes.txt", routes),
        ("fare_leg_rules.txt", ZONE_RULES),
        ("fare_products.txt", PRODUCTS),
        ("fare_leg_join_rules.txt", joins),
    ])
    .unwrap();
    assert_eq!(total(&f, &legs), Ok(500));
}

#[test]
fn transfer_duration_limit_types_over_a_journey() {
    // Leg 1 08:00-08:10 (3.00), leg 2 08:20-08:30 (2.00), a 20-minute limit, A + AB with AB
    // 0.50. Type 0 measures departure to arrival: 30 min, no transfer, 5.00. Type 1 departure to
    // departure: 20 min, on the limit, 3.50. Type 2 arrival to departure: 10 min. Type 3 arrival
    // to arrival: 20 min.
    let legs = [leg("A", "C", "08:00", "08:10"), leg("C", "D", "08:20", "08:30")];
    let expected = [(0, 500), (1, 350), (2, 350), (3, 350)];
    for (kind, fare) in expected {
        let transfers = format!(
            "from_leg_group_id,to_leg_group_id,duration_limit,duration_limit_type,fare_transfer_type,fare_product_id\n\
             across,in,1200,{kind},0,half\n"
        );
        let f = feed_with(&[
            ("fare_leg_rules.txt", ZONE_RULES),
            ("fare_products.txt", PRODUCTS),
            ("fare_transfer_rules.txt", &transfers),
        ])
        .unwrap();
        assert_eq!(total(&f, &legs), Ok(fare), "duration_limit_type {kind}");
    }
    let e = feed_with(&[
        ("fare_leg_rules.txt", ZONE_RULES),
        ("fare_products.txt", PRODUCTS),
        (
            "fare_transfer_rules.txt",
            "from_leg_group_id,to_leg_group_id,duration_limit,fare_transfer_type\nacross,in,1200,0\n",
        ),
    ])
    .unwrap_err();
    assert_eq!(e.to_string(), "fare_transfer_rules.txt:2: duration_limit_type: required with duration_limit");
}

#[test]
fn transfer_count_type_and_inverse_matching_of_empty_groups() {
    // Empty groups match the groups no other rule names: `in` here, not `across`.
    let transfers = "from_leg_group_id,to_leg_group_id,transfer_count,fare_transfer_type,fare_product_id\n\
                     ,,,2,three\nacross,across,1,1,half\n";
    let f = feed_with(&[
        ("fare_leg_rules.txt", ZONE_RULES),
        ("fare_products.txt", PRODUCTS),
        ("fare_transfer_rules.txt", transfers),
    ])
    .unwrap();
    // in then in: type 2 (AB) covers both, 3.00 instead of 4.00.
    assert_eq!(total(&f, &[leg("A", "B", "08:00", "08:05"), leg("B", "A", "09:05", "09:10")]), Ok(300));
    // across, across, across: the first transfer A + AB + B (3 + 0.5 + 3), transfer_count 1
    // allows no second: 3.00 more.
    let legs = [leg("A", "C", "08:00", "08:10"), leg("C", "A", "09:00", "09:10"), leg("A", "C", "09:20", "09:30")];
    let q = f.quote_journey(&legs).unwrap();
    assert_eq!(q.total, 950);
    assert_eq!(q.legs.iter().map(|l| l.transfer_adjustment).collect::<Vec<_>>(), [0, 50, 0]);
}

#[test]
fn errors_give_the_real_line_in_crlf_files() {
    let stop_times = "trip_id,stop_sequence,stop_id,arrival_time,departure_time\r\nt1,1,A,08:00:00,08:00:00\r\n\
                      t1,2,B,08:05:00,08:05:00\r\nt1,x,C,08:10:00,08:10:00\r\n";
    let e = feed_with(&[("stop_times.txt", stop_times)]).unwrap_err();
    assert_eq!(e.to_string(), "stop_times.txt:4: stop_sequence: `x` is not a valid value");
    let rules = "fare_product_id\r\ntwo\r\n\"three\"\r\nnine\r\n";
    let e = feed_with(&[("fare_products.txt", PRODUCTS), ("fare_leg_rules.txt", rules)]).unwrap_err();
    assert_eq!(e.to_string(), "fare_leg_rules.txt:4: fare_product_id: unknown `nine`");
}
