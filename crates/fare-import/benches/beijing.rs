//! Benchmarks on the real Beijing network from `../shared/data/beijing-subway/`: building the
//! all-pairs distance tables when a city loads, and one quote.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use yitong_fare::{CityProfile, FareEngine, Trip};
use yitong_profile::DateTime;

fn beijing(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/beijing-subway");
    let Ok((network, _)) = yitong_fare_import::bst::load_dir(&dir) else {
        eprintln!("skipped: no Beijing reference data at {}", dir.display());
        return;
    };
    let rules = CityProfile::builtin("beijing").unwrap().unwrap().metro.unwrap();
    c.bench_function("beijing all-pairs tables (every fare group)", |b| {
        b.iter(|| FareEngine::new(black_box(network.clone()), rules.clone(), "beijing").unwrap())
    });
    let engine = FareEngine::new(network, rules, "beijing").unwrap();
    let n = engine.network();
    let at = DateTime::parse("2026-11-25 10:00").unwrap();
    let trip = |from: &str, to: &str| Trip {
        from: n.lookup(from).unwrap(),
        to: n.lookup(to).unwrap(),
        entry_at: at,
        exit_at: at.plus_seconds(3_600).unwrap(),
        month_spent_fen: 12_000,
    };
    let network_trip = trip("苹果园", "天宫院");
    c.bench_function("beijing quote (network)", |b| b.iter(|| engine.quote(black_box(&network_trip)).unwrap()));
    let airport_trip = trip("3号航站楼", "西单");
    c.bench_function("beijing quote (airport express + network)", |b| {
        b.iter(|| engine.quote(black_box(&airport_trip)).unwrap())
    });
}

criterion_group!(benches, beijing);
criterion_main!(benches);
