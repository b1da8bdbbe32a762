//! A city's gate policy, and the built-in sample network of the demo.

use std::collections::BTreeMap;

use yitong_profile::files::StationId;

use crate::fare::{Band, DistanceBandFare};

/// What a gate needs to know of its city besides the fare table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CityPolicy {
    /// Name, lower case (`beijing`).
    pub name: String,
    /// City code (BCD, `1000` for Beijing), written into trip records.
    pub city_code: u16,
    /// The metro operator's acceptor institution code, written into EF1E.
    pub institution: [u8; 8],
    /// Charged at metro entry (0 in Beijing; exit charges the rest of the fare).
    pub metro_entry_charge_fen: u32,
    /// Balance (plus overdraft) a card needs to enter the metro.
    pub metro_min_entry_balance_fen: u32,
    /// Flat bus fare.
    pub bus_fare_fen: u32,
}

/// A station of a sample network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleStation {
    /// Chinese name.
    pub name: &'static str,
    /// English name.
    pub alias: &'static str,
    /// Line and station number.
    pub id: StationId,
    /// Position along the line, metres from its first station.
    pub position_m: u32,
}

/// A city with a small hand-written network, for the demo and tests: not real network data.
#[derive(Clone, Debug)]
pub struct SampleCity {
    /// The gate policy.
    pub policy: CityPolicy,
    /// Stations.
    pub stations: Vec<SampleStation>,
    /// Fare bands.
    pub fare: DistanceBandFare,
}

impl SampleCity {
    /// The sample city named `name` (`beijing` is the only one so far).
    pub fn named(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "beijing" | "北京" => Some(Self::beijing()),
            _ => None,
        }
    }

    /// Names of the sample cities.
    pub const NAMES: &'static [&'static str] = &["beijing"];

    /// Beijing: Line 1 west of Guomao, positions written by hand (approximate, a SAMPLE — real
    /// networks are imported by the fare engine), with Beijing's published distance bands.
    pub fn beijing() -> Self {
        const LINE_1: [(&str, &str, u32); 12] = [
            ("苹果园", "Pingguoyuan", 0),
            ("八宝山", "Babaoshan", 5_900),
            ("五棵松", "Wukesong", 9_100),
            ("公主坟", "Gongzhufen", 11_800),
            ("军事博物馆", "Military Museum", 13_100),
            ("复兴门", "Fuxingmen", 16_100),
            ("西单", "Xidan", 17_700),
            ("天安门西", "Tian'anmen West", 18_100),
            ("王府井", "Wangfujing", 19_800),
            ("东单", "Dongdan", 20_500),
            ("建国门", "Jianguomen", 21_800),
            ("国贸", "Guomao", 23_900),
        ];
        let stations: Vec<SampleStation> = LINE_1
            .iter()
            .zip(101u16..)
            .map(|(&(name, alias, position_m), number)| SampleStation {
                name,
                alias,
                id: StationId { line: 1, station: number },
                position_m,
            })
            .collect();
        let positions = stations.iter().map(|s| (s.id, s.position_m)).collect::<BTreeMap<_, _>>();
        let bands = [(6_099, 300), (12_099, 400), (22_099, 500), (32_099, 600)]
            .map(|(max_distance_m, fare_fen)| Band { max_distance_m, fare_fen })
            .to_vec();
        SampleCity {
            policy: CityPolicy {
                name: "beijing".into(),
                city_code: 0x1000,
                institution: *b"BJMETRO\0",
                metro_entry_charge_fen: 0,
                metro_min_entry_balance_fen: 300,
                bus_fare_fen: 100,
            },
            stations,
            fare: DistanceBandFare::new(positions, bands, 20_000, 100),
        }
    }

    /// The station called `name` (Chinese or English, case-insensitive).
    pub fn station(&self, name: &str) -> Option<&SampleStation> {
        self.stations.iter().find(|s| s.name == name || s.alias.eq_ignore_ascii_case(name))
    }

    /// The station with this ID.
    pub fn station_by_id(&self, id: StationId) -> Option<&SampleStation> {
        self.stations.iter().find(|s| s.id == id)
    }
}
