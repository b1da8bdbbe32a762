//! Importers for `yitong-fare`: networks from the files operators and open-data projects publish.
//!
//! [`bst::load_dir`] reads a Beijing-Subway-Tools folder (`network.json`, and the early-morning
//! discount's stations from `fare_rules.json5`); [`gtfs::Feed`] reads a GTFS feed, its network
//! and its Fares v2 tables, and prices journeys with them. Both give a [`yitong_fare::Network`]
//! for [`yitong_fare::City::new`].
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
