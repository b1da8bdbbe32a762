//! Importers for `yitong-fare`: networks from the files operators and open-data projects publish.
//!
//! [`bst::load_dir`] reads a Beijing-Subway-Tools city folder (the project's per-line JSON5 files
//! with `metadata.json5`, or one `network.json`; the early-morning discount's stations from
//! `fare_rules.json5`); [`gtfs::Feed`] reads a GTFS feed — every stop pattern of every route —
//! and its Fares v2 tables, and prices journeys with them as the GTFS reference states. Both give
//! a [`yitong_fare::Network`] for [`yitong_fare::City::new`].
//!
//! Station and line codes come from the data where it has them (a numeric GTFS `stop_code`) and
//! are otherwise derived from each station's own name or ID ([`yitong_fare::derived_code`]); a
//! `codes.toml` beside the network ([`yitong_fare::CodeTable`]) overrides both.
//!
//! This crate is apart from `yitong-fare` so that gates, which only price trips over a network
//! they are given, do not link the JSON5 and CSV readers. It reads the files it is pointed at
//! and does nothing else.
//!
//! ```no_run
//! use yitong_fare::{City, CityProfile};
//! let (network, off_peak) = yitong_fare_import::bst::load_dir("beijing-subway".as_ref())?;
//! let profile = CityProfile::builtin("beijing").expect("built in")?;
//! let city = City::new(profile, Some(network), off_peak)?;
//! # Ok::<(), yitong_fare::LoadError>(())
//! ```
#![forbid(unsafe_code)]

pub mod bst;
pub mod gtfs;

use std::path::Path;

use yitong_fare::{CodeTable, LoadError, Network};

/// The file beside a network that sets station and line codes by hand.
pub const CODES_FILE: &str = "codes.toml";

/// `network` with the codes of `dir/codes.toml` applied, when that file is there.
fn apply_codes_beside(dir: &Path, network: Network) -> Result<Network, LoadError> {
    let path = dir.join(CODES_FILE);
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(network),
        Err(e) => return Err(LoadError::new(file, e.to_string())),
    };
    let table = CodeTable::parse(&text, &file)?;
    network.apply_codes(&table).map_err(|e| LoadError::new(file, e))
}
