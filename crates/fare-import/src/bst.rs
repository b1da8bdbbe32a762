//! Beijing-Subway-Tools folders: `network.json` (parsed by [`yitong_fare::network_file`]),
//! optionally `fare_rules.json5`, of which the early-morning discount's `starting_stations` are
//! read, and optionally `codes.toml` (a [`yitong_fare::CodeTable`]).
//!
//! Beijing-Subway-Tools names lines and stations but gives them no numeric IDs (its line files
//! carry a name, aliases such as `Line 34` and the stations' names): line codes are the number in
//! `N号线` or an alias `Line N`, and every other code is derived from the name.

use std::path::Path;

use serde::Deserialize;
use yitong_fare::network_file::parse_network;
use yitong_fare::{LoadError, Network};

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
    let text = std::fs::read_to_string(&path).map_err(|e| LoadError::new(&file, e.to_string()))?;
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let network = crate::apply_codes_beside(dir, parse_network(&text, &name, &file)?)?;
    let rules = dir.join("fare_rules.json5");
    let off_peak = match std::fs::read_to_string(&rules) {
        Ok(text) => Some(parse_off_peak_stations(&text, &rules.display().to_string())?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(LoadError::new(rules.display().to_string(), e.to_string())),
    };
    Ok((network, off_peak))
}
