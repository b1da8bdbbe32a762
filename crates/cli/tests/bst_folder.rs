//! `yitong fare quote --network` on a folder laid out as the Beijing-Subway-Tools project keeps
//! its cities (`data/beijing/`: one JSON5 file per line, `metadata.json5`), written here with
//! two real Line 1 distances from that project.

mod support;

use support::Dir;

#[test]
fn quote_on_a_beijing_subway_tools_city_folder() {
    let d = Dir::new();
    let city = d.path("beijing");
    std::fs::create_dir(&city).unwrap();
    std::fs::write(
        city.join("line1.json5"),
        "{name: \"1号线\", aliases: [\"Line 1\"], stations: [{name: \"古城\"}, {name: \"八角游乐园\", dist: 1921}, \
         {name: \"八宝山\", dist: 1953}, {name: \"玉泉路\", dist: 1479}, {name: \"五棵松\", dist: 1810}]}",
    )
    .unwrap();
    std::fs::write(city.join("metadata.json5"), "{city_name: \"北京\", virtual_transfers: []}").unwrap();
    let network = city.display().to_string();
    // 古城 - 五棵松: 7,163 m, 4 yuan under Beijing's bands (over 6 km, up to 12 km).
    let v = d.json(&["fare", "quote", "--network", &network, "--from", "古城", "--to", "五棵松", "--json"]);
    assert_eq!((v["distance_m"].as_u64(), v["fare_fen"].as_u64()), (Some(7_163), Some(400)));
    let text = d.ok(&["fare", "stations", "--network", &network]);
    assert_eq!(text.lines().count(), 5);
}
