//! Beijing-Subway-Tools folders: either the project's own city folder (`data/beijing/` of
//! <https://github.com/Mick235711/Beijing-Subway-Tools>: one JSON5 file per line, with its
//! stations in order and `dist` in metres from the previous one, `loop` lines whose first
//! station's `dist` is from the last, and `virtual_transfers` in `metadata.json5`), or a folder
//! with one `network.json` (parsed by [`yitong_fare::network_file`]); in both, optionally
//! `fare_rules.json5`, of which the early-morning discount's `starting_stations` are read, and
//! optionally `codes.toml` (a [`yitong_fare::CodeTable`]).
//!
//! Beijing-Subway-Tools names lines and stations but gives them no numeric IDs (its line files
//! carry a name, aliases such as `Line 34` and the stations' names): line codes are the number in
//! `N号线` or an alias `Line N`, and every other code is derived from the name.

use std::path::Path;

use serde::Deserialize;
use yitong_fare::network_file::parse_network;
use yitong_fare::{LoadError, Network, NetworkBuilder};

/// Line files a city folder may hold.
pub const LINE_FILES_MAX: usize = 500;

/// The early-morning discount's starting stations from a `fare_rules.json5`.
pub fn parse_off_peak_stations(text: &str, file: &str) -> Result<Vec<String>, LoadError> {
    #[derive(Deserialize)]
    struct Rules {
        rule_groups: Vec<Group>,
    }
    #[derive(Deserialize)]
    struct Group {
        #[serde(default)]
        starting_stations: Vec<String>,
    }
    let rules: Rules = json5::from_str(text).map_err(|e| LoadError::new(file, e.to_string()))?;
    Ok(rules.rule_groups.into_iter().flat_map(|g| g.starting_stations).collect())
}

/// Reads a Beijing-Subway-Tools folder: its network (with the codes of `codes.toml` when it is
/// there), and the off-peak stations when `fare_rules.json5` is there.
pub fn load_dir(dir: &Path) -> Result<(Network, Option<Vec<String>>), LoadError> {
    let path = dir.join("network.json");
    let file = path.display().to_string();
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let network = if !path.exists() && dir.join("metadata.json5").exists() {
        load_line_files(dir, &name)?
    } else {
        let text = std::fs::read_to_string(&path).map_err(|e| LoadError::new(&file, e.to_string()))?;
        parse_network(&text, &name, &file)?
    };
    let network = crate::apply_codes_beside(dir, network)?;
    let rules = dir.join("fare_rules.json5");
    let off_peak = match std::fs::read_to_string(&rules) {
        Ok(text) => Some(parse_off_peak_stations(&text, &rules.display().to_string())?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(LoadError::new(rules.display().to_string(), e.to_string())),
    };
    Ok((network, off_peak))
}

/// A Beijing-Subway-Tools city folder as the project keeps it: every `*.json5` whose top level
/// has a `name` and a `stations` list is a line (others — metadata, fare rules, maps, carriage
/// types — are skipped); `metadata.json5` lists the out-of-station `virtual_transfers`.
fn load_line_files(dir: &Path, name: &str) -> Result<Network, LoadError> {
    let read = |path: &Path| -> Result<serde_json::Value, LoadError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::new(&file, e.to_string()))?;
        json5::from_str(&text).map_err(|e| LoadError::new(&file, e.to_string()))
    };
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LoadError::new(dir.display().to_string(), e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json5"))
        .filter(|p| !p.file_name().is_some_and(|n| n == "metadata.json5" || n == "fare_rules.json5"))
        .collect();
    // File order never sets a code, but it does set station indices: keep it stable.
    files.sort();
    if files.len() > LINE_FILES_MAX {
        return Err(LoadError::new(dir.display().to_string(), format!("more than {LINE_FILES_MAX} JSON5 files")));
    }
    let mut b = NetworkBuilder::new(name, false);
    for path in &files {
        let file = path.display().to_string();
        let value = read(path)?;
        let (Some(line), Some(stations)) =
            (value.get("name").and_then(|n| n.as_str()), value.get("stations").and_then(|s| s.as_array()))
        else {
            continue;
        };
        let strings = |v: Option<&serde_json::Value>| -> Vec<String> {
            v.and_then(|a| a.as_array())
                .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let is_loop = value.get("loop").and_then(|l| l.as_bool()).unwrap_or(false);
        let mut stops = Vec::with_capacity(stations.len());
        let mut dists = Vec::with_capacity(stations.len());
        for (i, s) in stations.iter().enumerate() {
            let field = format!("stations[{i}]");
            let station = s
                .get("name")
                .and_then(|n| n.as_str())
                .ok_or_else(|| LoadError::new(&file, "a station without a name").in_field(&field))?;
            let index = b
                .station(station, &strings(s.get("aliases")), None)
                .map_err(|e| LoadError::new(&file, e).in_field(&field))?;
            stops.push(index);
            let dist = match s.get("dist") {
                None => None,
                Some(d) => Some(
                    d.as_u64()
                        .and_then(|d| u32::try_from(d).ok())
                        .filter(|d| *d > 0)
                        .ok_or_else(|| LoadError::new(&file, format!("dist `{d}` is not metres")).in_field(&field))?,
                ),
            };
            dists.push(dist);
        }
        // `dist` is from the previous station; on a loop the first station's is from the last.
        let mut segments = Vec::with_capacity(stations.len());
        for (i, d) in dists.iter().enumerate().skip(1) {
            segments.push(d.ok_or_else(|| LoadError::new(&file, "dist missing").in_field(format!("stations[{i}]")))?);
        }
        if is_loop {
            segments.push(dists.first().copied().flatten().ok_or_else(|| {
                LoadError::new(&file, "a loop's first station needs its dist from the last").in_field("stations[0]")
            })?);
        }
        b.line(line, &strings(value.get("aliases")), None, is_loop, stops, segments)
            .map_err(|e| LoadError::new(&file, e))?;
    }
    let metadata = dir.join("metadata.json5");
    let meta_file = metadata.display().to_string();
    let meta = read(&metadata)?;
    if let Some(transfers) = meta.get("virtual_transfers").and_then(|t| t.as_array()) {
        for (i, t) in transfers.iter().enumerate() {
            let end = |key: &str| {
                t.get(key).and_then(|s| s.as_str()).and_then(|s| b.find(s)).ok_or_else(|| {
                    LoadError::new(&meta_file, format!("{key}: no such station"))
                        .in_field(format!("virtual_transfers[{i}]"))
                })
            };
            let (from, to) = (end("from_station")?, end("to_station")?);
            b.transfer(from, to);
        }
    }
    b.build().map_err(|e| LoadError::new(dir.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The project's own layout: per-line files, a loop, a virtual transfer, other JSON5 files.
    #[test]
    fn reads_a_city_folder_of_line_files() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "line1.json5",
            "// comment\n{name: \"1号线\", aliases: [\"Line 1\"], stations: [{name: \"古城\"}, \
             {name: \"八角游乐园\", dist: 1921}, {name: \"木樨地(1号线)\", dist: 1000}], timetable: {}}",
        );
        write(
            "line2.json5",
            "{name: \"2号线\", loop: true, stations: [{name: \"西直门\", dist: 1899}, {name: \"车公庄\", dist: 910}, \
             {name: \"八角游乐园\", dist: 960}]}",
        );
        write(
            "line16.json5",
            "{name: \"16号线\", stations: [{name: \"木樨地(16号线)\"}, {name: \"达官营\", dist: 2004}]}",
        );
        write("carriage_types.json5", "{\"B-\": {length: 19}}");
        write(
            "metadata.json5",
            "{city_name: \"北京\", virtual_transfers: [{from_station: \"木樨地(1号线)\", to_station: \"木樨地(16号线)\", times: []}]}",
        );
        let (n, off_peak) = load_dir(dir.path()).unwrap();
        assert!(off_peak.is_none());
        let names: Vec<&str> = n.lines().iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["1号线", "16号线", "2号线"]);
        let two = &n.lines()[n.line_index("2号线").unwrap()];
        assert!(two.is_loop);
        // The first station's dist closes the loop.
        assert_eq!(two.segments_m, [910, 960, 1_899]);
        assert_eq!(n.lines()[0].segments_m, [1_921, 1_000]);
        assert_eq!(n.lines()[0].code, 1, "from the name");
        assert_eq!(n.transfers().len(), 1);
        assert_eq!(n.lookup("Line 1").ok(), None, "a line alias is not a station");
        write("line3.json5", "{name: \"3号线\", stations: [{name: \"A\"}, {name: \"B\"}]}");
        let e = load_dir(dir.path()).unwrap_err();
        assert!(e.to_string().ends_with("line3.json5: stations[1]: dist missing"), "{e}");
    }
}
