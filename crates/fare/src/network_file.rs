//! The `network.json` layout of Beijing-Subway-Tools, as `../shared/data/beijing-subway/` holds
//! it (lines with stations in order, `dist_m` from the previous station, `loop`, aliases,
//! `virtual_transfers`), which the built-in sample networks use too, with one extension: an
//! optional `code` on a line or a station, the code cards carry (the samples give every one;
//! Beijing-Subway-Tools gives none, so its codes are derived, see [`crate::derived_code`]).
//! Reading a whole folder (with `fare_rules.json5`) is `yitong-fare-import`'s job; this parser
//! stays here because gates load the samples.

use serde::Deserialize;

use crate::error::LoadError;
use crate::network::{Network, NetworkBuilder};

#[derive(Deserialize)]
struct NetworkFile {
    #[serde(default)]
    sample: bool,
    lines: Vec<LineFile>,
    #[serde(default)]
    virtual_transfers: Vec<TransferFile>,
}

#[derive(Deserialize)]
struct LineFile {
    name: String,
    /// The line code cards carry (an extension of the layout; the samples give one).
    code: Option<u16>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default, rename = "loop")]
    is_loop: bool,
    stations: Vec<StationFile>,
}

#[derive(Deserialize)]
struct StationFile {
    name: String,
    /// The station code cards carry (an extension of the layout; the samples give one).
    code: Option<u16>,
    dist_m: Option<u32>,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
struct TransferFile {
    from_station: String,
    to_station: String,
}

/// Parses a `network.json`; `file` names it in errors.
pub fn parse_network(text: &str, name: &str, file: &str) -> Result<Network, LoadError> {
    let raw: NetworkFile =
        serde_json::from_str(text).map_err(|e| LoadError::new(file, e.to_string()).at_line(e.line()))?;
    let at = |what: String| LoadError::new(file, what);
    let mut b = NetworkBuilder::new(name, raw.sample);
    for (li, line) in raw.lines.iter().enumerate() {
        let field = |f: &str| format!("lines[{li}] ({}).{f}", line.name);
        let mut stops = Vec::with_capacity(line.stations.len());
        let mut segments = Vec::with_capacity(line.stations.len());
        for (si, s) in line.stations.iter().enumerate() {
            stops.push(
                b.station(&s.name, &s.aliases, s.code)
                    .map_err(|e| at(e).in_field(field(&format!("stations[{si}].name"))))?,
            );
            match (si, s.dist_m, line.is_loop) {
                (0, Some(_), false) => {
                    return Err(at("the first station of a line that is not a loop has no distance".into())
                        .in_field(field("stations[0].dist_m")))
                }
                (0, None, true) | (1.., None, _) => {
                    return Err(at("missing distance from the previous station".into())
                        .in_field(field(&format!("stations[{si}].dist_m"))))
                }
                (0, Some(d), true) => segments.push((line.stations.len() - 1, d)),
                (_, Some(d), _) => segments.push((si - 1, d)),
                (0, None, false) => {}
            }
        }
        // On a loop the first station's distance closes the ring: store it last.
        segments.sort_by_key(|(i, _)| *i);
        let segments: Vec<u32> = segments.into_iter().map(|(_, d)| d).collect();
        b.line(&line.name, &line.aliases, line.code, line.is_loop, stops, segments)
            .map_err(|e| at(e).in_field(field("stations")))?;
    }
    for (i, t) in raw.virtual_transfers.iter().enumerate() {
        let find = |n: &str, f: &str| {
            b.find(n).ok_or_else(|| at(format!("no station `{n}`")).in_field(format!("virtual_transfers[{i}].{f}")))
        };
        let (a, c) = (find(&t.from_station, "from_station")?, find(&t.to_station, "to_station")?);
        b.transfer(a, c);
    }
    b.build().map_err(at)
}

/// The built-in sample networks, by name.
pub const SAMPLE_NETWORKS: &[(&str, &str)] = &[
    ("beijing", include_str!("../networks/beijing.json")),
    ("shanghai", include_str!("../networks/shanghai.json")),
    ("shenzhen", include_str!("../networks/shenzhen.json")),
    ("guangzhou", include_str!("../networks/guangzhou.json")),
    ("wuhan", include_str!("../networks/wuhan.json")),
    ("tianjin", include_str!("../networks/tianjin.json")),
    ("chengdu", include_str!("../networks/chengdu.json")),
    ("hangzhou", include_str!("../networks/hangzhou.json")),
    ("chongqing", include_str!("../networks/chongqing.json")),
];

/// A built-in sample network.
pub fn sample(name: &str) -> Option<Result<Network, LoadError>> {
    SAMPLE_NETWORKS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| parse_network(text, n, &format!("networks/{n}.json")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_load_and_are_marked_samples() {
        for (name, _) in SAMPLE_NETWORKS {
            let n = sample(name).unwrap().unwrap();
            assert!(n.is_sample(), "{name}");
            // Sample codes are written in the files, so that editing a sample moves none.
            let derived = n
                .stations()
                .iter()
                .map(|s| (&s.name, s.code_origin))
                .chain(n.lines().iter().map(|l| (&l.name, l.code_origin)));
            for (what, origin) in derived {
                assert_eq!(origin, crate::CodeOrigin::Data, "{name}: {what} has no code in its file");
            }
        }
    }

    #[test]
    fn loop_distance_closes_the_ring() {
        let text = r#"{"lines": [{"name": "2号线", "loop": true, "stations": [
            {"name": "A", "dist_m": 900}, {"name": "B", "dist_m": 100}, {"name": "C", "dist_m": 200}]}]}"#;
        let n = parse_network(text, "t", "t.json").unwrap();
        assert_eq!(n.lines()[0].segments_m, [100, 200, 900]);
        assert!(n.lines()[0].is_loop);
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = parse_network("{\"lines\": [\n  {\"name\": 5}]}", "t", "t.json").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("t.json", Some(2)));
        let text = r#"{"lines": [{"name": "L", "stations": [{"name": "A"}, {"name": "B"}]}]}"#;
        let e = parse_network(text, "t", "t.json").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("lines[0] (L).stations[1].dist_m"));
        let text =
            r#"{"lines": [{"name": "L", "stations": [{"name": "A", "dist_m": 3}, {"name": "B", "dist_m": 5}]}]}"#;
        let e = parse_network(text, "t", "t.json").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("lines[0] (L).stations[0].dist_m"));
    }
}
