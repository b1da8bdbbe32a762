//! Importers: networks in the Beijing-Subway-Tools layout, and GTFS feeds with Fares v2.

pub mod bst;
pub mod gtfs;
