//! Station and line codes from imported data: GTFS `stop_code`, the derived fallback, a
//! `codes.toml` beside the network, and the real Beijing network (`../shared/data/beijing-subway/`,
//! skipped with the reason printed where it is not there). Expected derived codes were worked out
//! apart from this code, with Python: `zlib.crc32(name.encode()) % 65535 + 1`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use yitong_fare::{CodeOrigin, Network};
use yitong_fare_import::gtfs::Feed;

/// The hand-written `transfers` feed copied to a temporary folder, with `stops.txt` replaced and
/// `extra` files added.
fn feed_with(stops: &str, extra: &[(&str, &str)]) -> (tempfile::TempDir, Result<Feed, yitong_fare::LoadError>) {
    let dir = tempfile::tempdir().unwrap();
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/feeds/transfers");
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    std::fs::write(dir.path().join("stops.txt"), stops).unwrap();
    for (name, text) in extra {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let feed = Feed::load_dir(dir.path());
    (dir, feed)
}

fn code_of(n: &Network, name: &str) -> (u16, CodeOrigin) {
    let s = &n.stations()[n.lookup(name).unwrap()];
    (s.code, s.code_origin)
}

const STOPS: &str = "stop_id,stop_code,stop_name\nX,101,Xiyuan\nY,0102,Yuquan\nZ,,Zhongxin\nW,W1,Wangjing\n";

#[test]
fn gtfs_stop_code_else_derived_from_the_stop_id() {
    let (_dir, feed) = feed_with(STOPS, &[]);
    let feed = feed.unwrap();
    let n = feed.network();
    assert_eq!(code_of(n, "Xiyuan"), (101, CodeOrigin::Data));
    assert_eq!(code_of(n, "Yuquan"), (102, CodeOrigin::Data));
    // No stop_code, and one that is not a number: derived from the stop_id, not the name.
    assert_eq!(code_of(n, "Zhongxin"), (45_348, CodeOrigin::Derived));
    assert_eq!(code_of(n, "Wangjing"), (21_224, CodeOrigin::Derived));
    assert_eq!(n.station_by_code(101), n.lookup("Xiyuan").ok());
    // Route short names `Local` and `Express` are not numbers: derived from the names.
    let lines: Vec<(u16, CodeOrigin)> = n.lines().iter().map(|l| (l.code, l.code_origin)).collect();
    assert!(lines.iter().all(|&(_, o)| o == CodeOrigin::Derived), "{lines:?}");
}

#[test]
fn gtfs_numeric_route_short_name_is_the_line_code() {
    let routes = "route_id,route_short_name,route_type,network_id\nR,7,1,local\nE,Express,1,express\n";
    let (_dir, feed) = feed_with(STOPS, &[("routes.txt", routes)]);
    let feed = feed.unwrap();
    let n = feed.network();
    let seven = &n.lines()[n.line_index("7").unwrap()];
    assert_eq!((seven.code, seven.code_origin), (7, CodeOrigin::Data));
    let express = &n.lines()[n.line_index("Express").unwrap()];
    // zlib.crc32(b"Express") % 65535 + 1
    assert_eq!((express.code, express.code_origin), (22_902, CodeOrigin::Derived));
}

#[test]
fn gtfs_stop_added_moves_no_code() {
    let (_dir, before) = feed_with(STOPS, &[]);
    let before = before.unwrap();
    let grown =
        "stop_id,stop_code,stop_name\nV,,Vanke\nX,101,Xiyuan\nU,7,Uptown\nY,0102,Yuquan\nZ,,Zhongxin\nW,W1,Wangjing\n";
    let (_dir, after) = feed_with(grown, &[]);
    let after = after.unwrap();
    for s in before.network().stations() {
        assert_eq!(code_of(after.network(), &s.name).0, s.code, "{}", s.name);
    }
    assert_eq!(after.network().stations().len(), before.network().stations().len() + 2);
}

#[test]
fn gtfs_stop_code_shared_by_stations_is_no_code() {
    // The GTFS reference does not make stop_code unique (the Zakroczym feed gives `01` to the
    // first post of every stop): a code several stations carry identifies none of them, so they
    // derive theirs from their stop IDs; a code only one station carries is still its code.
    let (_dir, feed) =
        feed_with("stop_id,stop_code,stop_name\nX,101,Xiyuan\nY,101,Yuquan\nZ,7,Zhongxin\nW,,Wangjing\n", &[]);
    let feed = feed.unwrap();
    let n = feed.network();
    assert_eq!(code_of(n, "Xiyuan"), (yitong_fare::derived_code("X"), CodeOrigin::Derived));
    assert_eq!(code_of(n, "Yuquan"), (yitong_fare::derived_code("Y"), CodeOrigin::Derived));
    assert_eq!(code_of(n, "Zhongxin"), (7, CodeOrigin::Data));
    // A shared code is no alias either: it would name one of them at random.
    assert!(n.lookup("101").is_err());
}

#[test]
fn codes_toml_beside_the_feed_overrides() {
    let table = "[stations]\nZhongxin = 103\nW = 104\n[lines]\nLocal = 1\n";
    let (_dir, feed) = feed_with(STOPS, &[("codes.toml", table)]);
    let feed = feed.unwrap();
    let n = feed.network();
    assert_eq!(code_of(n, "Zhongxin"), (103, CodeOrigin::Table));
    // A stop ID names the station as well as its name does.
    assert_eq!(code_of(n, "Wangjing"), (104, CodeOrigin::Table));
    assert_eq!(code_of(n, "Xiyuan"), (101, CodeOrigin::Data));
    assert_eq!(n.lines()[n.line_index("Local").unwrap()].code, 1);
    let (dir, feed) = feed_with(STOPS, &[("codes.toml", "[stations]\nZhongxin = 101\n")]);
    let e = feed.unwrap_err();
    assert_eq!(e.file, dir.path().join("codes.toml").display().to_string());
    assert!(e.message.contains("`Xiyuan` and `Zhongxin` share code 101"), "{e}");
    let (_dir, feed) = feed_with(STOPS, &[("codes.toml", "[stations]\nNowhere = 5\n")]);
    assert!(feed.unwrap_err().message.contains("no station `Nowhere`"));
}

fn beijing_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/beijing-subway");
    if dir.join("network.json").exists() {
        Some(dir)
    } else {
        eprintln!("skipped: no Beijing reference data at {}", dir.display());
        None
    }
}

fn beijing_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("network.json")).unwrap()).unwrap()
}

fn codes(n: &Network) -> HashMap<String, u16> {
    n.stations().iter().map(|s| (s.name.clone(), s.code)).collect()
}

#[test]
fn beijing_codes_are_unique_and_from_the_names() {
    let Some(dir) = beijing_dir() else { return };
    let (n, _) = yitong_fare_import::bst::load_dir(&dir).unwrap();
    // The build refuses shared codes; check it here too, over every station and line.
    let mut seen = HashMap::new();
    for s in n.stations() {
        assert_eq!(s.code_origin, CodeOrigin::Derived, "{}", s.name);
        assert!(s.code != 0);
        assert_eq!(seen.insert(s.code, &s.name), None, "code {} twice", s.code);
        assert_eq!(n.station_by_code(s.code), n.lookup(&s.name).ok());
    }
    assert_eq!(seen.len(), 425);
    let c = codes(&n);
    assert_eq!((c["西单"], c["国贸"], c["3号航站楼"]), (64_835, 55_094, 25_301));
    let lines: HashMap<&str, (u16, CodeOrigin)> =
        n.lines().iter().map(|l| (l.name.as_str(), (l.code, l.code_origin))).collect();
    assert_eq!(lines["1号线"], (1, CodeOrigin::Data));
    assert_eq!(lines["首都机场线"], (34, CodeOrigin::Data), "alias Line 34");
    assert_eq!(lines["燕房线"], (4_211, CodeOrigin::Derived), "alias Line 25B is no number");
    let mut line_codes: Vec<u16> = n.lines().iter().map(|l| l.code).collect();
    line_codes.sort_unstable();
    line_codes.dedup();
    assert_eq!(line_codes.len(), n.lines().len());
}

/// Adds a station in the middle of 1号线 and a new line at the front: every other station keeps
/// its code (positions all move), and so it does with the lines in reverse order.
#[test]
fn beijing_codes_do_not_move_when_the_network_grows_or_is_reordered() {
    let Some(dir) = beijing_dir() else { return };
    let text = std::fs::read_to_string(dir.join("network.json")).unwrap();
    let before = yitong_fare::network_file::parse_network(&text, "beijing", "network.json").unwrap();

    let mut grown = beijing_json(&dir);
    let lines = grown["lines"].as_array_mut().unwrap();
    let line1 = lines.iter_mut().find(|l| l["name"] == "1号线").unwrap();
    let stations = line1["stations"].as_array_mut().unwrap();
    stations.insert(5, serde_json::json!({ "name": "新站", "dist_m": 700 }));
    lines.insert(
        0,
        serde_json::json!({ "name": "新线", "stations": [
        { "name": "新线东" }, { "name": "西单", "dist_m": 1500 } ] }),
    );
    let grown = yitong_fare::network_file::parse_network(&grown.to_string(), "beijing", "grown.json").unwrap();

    let mut reversed = beijing_json(&dir);
    reversed["lines"].as_array_mut().unwrap().reverse();
    let reversed = yitong_fare::network_file::parse_network(&reversed.to_string(), "beijing", "rev.json").unwrap();

    let (old, new, rev) = (codes(&before), codes(&grown), codes(&reversed));
    assert_eq!(new.len(), old.len() + 2);
    for (name, code) in &old {
        assert_eq!(new[name], *code, "{name} moved when a station was added");
        assert_eq!(rev[name], *code, "{name} moved when the lines were reordered");
    }
    assert_ne!(before.stations()[before.lookup("西单").unwrap()].code, 0);
}
