//! GTFS (placeholder).
