//! Loading a city for the CLI: a built-in profile or a city file, over its sample network or
//! an imported one.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use yitong_fare::{City, CityProfile, BUILTIN_CITIES};

/// The city `name` (or the file `city_file`), over the network in `network_dir` when given.
pub fn load(name: &str, city_file: Option<&Path>, network_dir: Option<&Path>) -> anyhow::Result<Arc<City>> {
    let profile = match city_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--city-file: cannot read {}", path.display()))?;
            CityProfile::parse(&text, &path.display().to_string())?
        }
        None => match CityProfile::builtin(name) {
            Some(p) => p?,
            None => {
                let known: Vec<&str> = BUILTIN_CITIES.iter().map(|(n, _)| *n).collect();
                bail!("--city: unknown city `{name}`; known: {}", known.join(", "))
            }
        },
    };
    let Some(dir) = network_dir else {
        let network = match &profile.network {
            Some(n) => Some(yitong_fare::network_file::sample(n).with_context(|| format!("no sample network {n}"))??),
            None => None,
        };
        return Ok(Arc::new(City::new(profile, network, None)?));
    };
    // A Beijing-Subway-Tools city folder (per-line files and metadata.json5) or its network.json.
    if dir.join("network.json").exists() || dir.join("metadata.json5").exists() {
        let (network, off_peak) = yitong_fare_import::bst::load_dir(dir)?;
        Ok(Arc::new(City::new(profile, Some(network), off_peak)?))
    } else if dir.join("stops.txt").exists() {
        let feed = yitong_fare_import::gtfs::Feed::load_dir(dir)?;
        Ok(Arc::new(City::new(profile, Some(feed.network().clone()), None)?))
    } else {
        bail!(
            "--network: {} holds neither network.json or metadata.json5 (Beijing-Subway-Tools) nor stops.txt (GTFS)",
            dir.display()
        )
    }
}
