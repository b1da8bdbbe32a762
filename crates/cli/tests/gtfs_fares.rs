//! `yitong fare quote` and `yitong fare stations` on the two real GTFS Fares v2 feeds kept by
//! `yitong-fare-import` (`crates/fare-import/tests/feeds/`, sources and licences there).

mod support;

use std::path::PathBuf;

use support::Dir;

fn feed(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fare-import/tests/feeds").join(name).display().to_string()
}

#[test]
fn quote_on_the_zakroczym_feed() {
    let d = Dir::new();
    let z = feed("zakroczym");
    let base = ["fare", "quote", "--network", &z, "--from", "Czarna", "--to", "125", "--at", "2026-11-25 04:05"];
    let v = d.json(&[&base[..], &["--json"]].concat());
    assert_eq!(v["fare_fen"], 500);
    assert_eq!(v["currency"], "PLN");
    assert_eq!(v["route_id"], "Z1");
    assert_eq!(v["fare_product_id"], "single_ride_zones13_normal");
    assert_eq!(v["rider_category"], "0");
    let text = d.ok(&[&base[..], &["--trip", "10-1"]].concat());
    assert!(text.starts_with("5.00 PLN: product single_ride_zones13_normal, route Z1"), "{text}");
    // Children have only a monthly ticket in this feed.
    let out = d.run(&[&base[..], &["--rider-category", "2"]].concat());
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("no fare leg rule matches Czarna to 125") && e.contains("rider category 2"), "{e}");
    let out = d.run(&[&base[..], &["--route", "Z2"]].concat());
    assert!(String::from_utf8_lossy(&out.stderr).contains("route Z2 does not run from Czarna to 125"));
}

#[test]
fn quote_on_the_transcollines_feed() {
    let d = Dir::new();
    let t = feed("transcollines");
    let quote = |at: &str, extra: &[&str]| {
        let mut args = vec!["fare", "quote", "--network", &t, "--from", "F134-01", "--to", "F912-51", "--at", at];
        args.extend_from_slice(extra);
        d.run(&args)
    };
    let out = quote("2025-11-25 05:17", &["--route", "910", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["fare_fen"].as_i64(), v["currency"].as_str(), v["network_id"].as_str()),
        (Some(2_000), Some("CAD"), Some("REG"))
    );
    // The tariff's timeframe runs until 2025-12-30.
    let out = quote("2026-01-06 05:17", &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no fare leg rule matches F134-01 to F912-51 on 2026-01-06"));
    // GTFS flags are refused for city fare rules.
    let out = d.run(&["fare", "quote", "--from", "Xidan", "--to", "Guomao", "--rider-category", "0"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rider-category applies to a GTFS feed"));
}

#[test]
fn stations_of_both_feeds() {
    let d = Dir::new();
    let v = d.json(&["fare", "stations", "--network", &feed("transcollines"), "--json"]);
    let stations = v.as_array().unwrap();
    assert_eq!(stations.len(), 204);
    let gabrielle = stations.iter().find(|s| s["name"] == "Cégep Gabrielle-Roy").unwrap();
    assert_eq!(gabrielle["lines"], serde_json::json!(["910", "910 #2"]));
    let text = d.ok(&["fare", "stations", "--network", &feed("zakroczym")]);
    assert_eq!(text.lines().count(), 62);
    assert!(text.contains("Czarna (100)  [Z1, Z1 #2, Z1 #3, Z1 #4]"), "{text}");
}
