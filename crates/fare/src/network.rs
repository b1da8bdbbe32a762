//! The network model: lines with stations in order and the distance between neighbours, transfer
//! stations (one station on several lines), out-of-station transfers, names, and the codes cards
//! carry.
//!
//! Codes are written on cards at entry and looked up at exit, so a code must not move when the
//! network changes elsewhere: they come from the network data (or a code table) and, where the
//! data has none, from the station's own name ([`derived_code`]), never from positions in a file.
//! Two stations (or two lines) with one code are refused.

use std::collections::HashMap;

use crate::codes::CodeTable;
use crate::error::QuoteError;

/// Index of a station in its network.
pub type StationIndex = usize;
/// Index of a line in its network.
pub type LineIndex = usize;

/// Stations a network may hold (station codes are 16-bit on the card).
pub const STATIONS_MAX: usize = 4_000;

/// A station: one per name, shared by every line that stops there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Station {
    /// Chinese name, as the network file writes it (may carry a line suffix, `木樨地(1号线)`).
    pub name: String,
    /// Other names (English, codes).
    pub aliases: Vec<String>,
    /// Lines that stop here.
    pub lines: Vec<LineIndex>,
    /// Station code written on cards (1 to 65535; unique in the network).
    pub code: u16,
    /// Where the code comes from.
    pub code_origin: CodeOrigin,
}

/// Where a station's or a line's code comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeOrigin {
    /// The network data: a `code` in `network.json`, a numeric GTFS `stop_code` or route short
    /// name, a line number in the name (`12号线`, alias `Line 12`).
    Data,
    /// A code table: the city file's `[metro.codes]` or `codes.toml` beside the network.
    Table,
    /// Derived from the name alone ([`derived_code`]), because the data gives none.
    Derived,
}

/// A line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Name (`1号线`).
    pub name: String,
    /// Other names (`Line 1`).
    pub aliases: Vec<String>,
    /// Line code written on cards (unique in the network).
    pub code: u16,
    /// Where the code comes from.
    pub code_origin: CodeOrigin,
    /// Whether the last station connects back to the first.
    pub is_loop: bool,
    /// Stations in order.
    pub stops: Vec<StationIndex>,
    /// Metres between `stops[i]` and `stops[i + 1]`; on a loop one more, last to first.
    pub segments_m: Vec<u32>,
}

/// A metro network.
#[derive(Clone, Debug)]
pub struct Network {
    name: String,
    sample: bool,
    stations: Vec<Station>,
    lines: Vec<Line>,
    transfers: Vec<(StationIndex, StationIndex)>,
    names: HashMap<String, StationIndex>,
    by_code: HashMap<u16, StationIndex>,
}

/// Builds a [`Network`] from lines in file order.
#[derive(Debug, Default)]
pub struct NetworkBuilder {
    name: String,
    sample: bool,
    stations: Vec<Station>,
    /// The data's code of each station, when it gives one.
    station_codes: Vec<Option<u16>>,
    /// What a derived code is computed from, when not the name (a GTFS `stop_id`).
    code_keys: Vec<Option<String>>,
    lines: Vec<Line>,
    transfers: Vec<(StationIndex, StationIndex)>,
    by_name: HashMap<String, StationIndex>,
}

impl NetworkBuilder {
    /// An empty network called `name`; `sample` marks hand-written sample data.
    pub fn new(name: &str, sample: bool) -> Self {
        NetworkBuilder { name: name.into(), sample, ..Default::default() }
    }

    /// The station called `name`, created on first use; `aliases` are added to it. `code` is the
    /// data's code for it, if any (every mention that gives one must give the same).
    pub fn station(&mut self, name: &str, aliases: &[String], code: Option<u16>) -> Result<StationIndex, String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("empty station name".into());
        }
        if code == Some(0) {
            return Err(format!("station {name}: code 0 is reserved (no station)"));
        }
        let index = match self.by_name.get(name) {
            Some(&i) => i,
            None => {
                if self.stations.len() >= STATIONS_MAX {
                    return Err(format!("more than {STATIONS_MAX} stations"));
                }
                let i = self.stations.len();
                // The code is settled in `build`, once every mention has been seen.
                let station = Station {
                    name: name.into(),
                    aliases: Vec::new(),
                    lines: Vec::new(),
                    code: 0,
                    code_origin: CodeOrigin::Derived,
                };
                self.stations.push(station);
                self.station_codes.push(None);
                self.code_keys.push(None);
                self.by_name.insert(name.into(), i);
                i
            }
        };
        match (code, self.station_codes[index]) {
            (Some(new), Some(old)) if new != old => {
                return Err(format!("station {name} is given two codes, {old} and {new}"))
            }
            (Some(new), _) => self.station_codes[index] = Some(new),
            (None, _) => {}
        }
        for a in aliases {
            if !self.stations[index].aliases.contains(a) {
                self.stations[index].aliases.push(a.clone());
            }
        }
        Ok(index)
    }

    /// Derives the station's code, when the data gives none, from `key` (a stable identifier such
    /// as a GTFS `stop_id`) rather than from its name.
    pub fn derive_code_from(&mut self, station: StationIndex, key: &str) {
        self.code_keys[station] = Some(key.into());
    }

    /// The station called `name`, if it exists.
    pub fn find(&self, name: &str) -> Option<StationIndex> {
        self.by_name.get(name.trim()).copied()
    }

    /// Adds a line: `stops` in order, `segments_m` between neighbours (one more on a loop, from
    /// the last station back to the first). `code` is the data's code for it; without one, the
    /// number in `12号线` or an alias `Line 12`, else [`derived_code`] of the name.
    pub fn line(
        &mut self,
        name: &str,
        aliases: &[String],
        code: Option<u16>,
        is_loop: bool,
        stops: Vec<StationIndex>,
        segments_m: Vec<u32>,
    ) -> Result<(), String> {
        if stops.len() < 2 {
            return Err(format!("line {name} has fewer than two stations"));
        }
        let expected = stops.len() - 1 + usize::from(is_loop);
        if segments_m.len() != expected {
            return Err(format!("line {name}: {} distances for {} stations", segments_m.len(), stops.len()));
        }
        if let Some(i) = segments_m.iter().position(|d| *d == 0) {
            return Err(format!("line {name}: zero distance after station {}", self.stations[stops[i]].name));
        }
        if self.lines.iter().any(|l| l.name == name) {
            return Err(format!("line {name} appears twice"));
        }
        let (code, code_origin) = match code.or_else(|| line_number(name, aliases)) {
            Some(0) => return Err(format!("line {name}: code 0 is reserved (no line)")),
            Some(code) => (code, CodeOrigin::Data),
            None => (derived_code(name), CodeOrigin::Derived),
        };
        let index = self.lines.len();
        for &s in &stops {
            if !self.stations[s].lines.contains(&index) {
                self.stations[s].lines.push(index);
            }
        }
        self.lines.push(Line {
            name: name.into(),
            aliases: aliases.to_vec(),
            code,
            code_origin,
            is_loop,
            stops,
            segments_m,
        });
        Ok(())
    }

    /// An out-of-station transfer: riders walk between `a` and `b`, the fare goes on.
    pub fn transfer(&mut self, a: StationIndex, b: StationIndex) {
        self.transfers.push((a, b));
    }

    /// The network; refused when two stations, or two lines, share a code.
    pub fn build(mut self) -> Result<Network, String> {
        if self.lines.is_empty() {
            return Err("the network has no line".into());
        }
        for ((station, code), key) in self.stations.iter_mut().zip(&self.station_codes).zip(&self.code_keys) {
            (station.code, station.code_origin) = match code {
                Some(code) => (*code, CodeOrigin::Data),
                None => (derived_code(key.as_deref().unwrap_or(&station.name)), CodeOrigin::Derived),
            };
        }
        let mut names = HashMap::new();
        for (i, s) in self.stations.iter().enumerate() {
            names.insert(s.name.clone(), i);
        }
        for (i, s) in self.stations.iter().enumerate() {
            for a in &s.aliases {
                names.entry(a.to_lowercase()).or_insert(i);
            }
        }
        Network {
            name: self.name,
            sample: self.sample,
            stations: self.stations,
            lines: self.lines,
            transfers: self.transfers,
            names,
            by_code: HashMap::new(),
        }
        .with_checked_codes()
    }
}

/// The code of a station or line whose data gives none: the CRC-32 (IEEE 802.3, as zlib
/// computes it) of its name in UTF-8 (or of the stable ID an importer names, a GTFS `stop_id`),
/// modulo 65535, plus 1. It depends on that name alone, so it does not move when other stations
/// are added, removed or reordered; a rename moves it (pin the old code in a code table to keep
/// it). Two names may share a derived code (a new station meets one of a thousand others with a
/// chance of about 1 in 65): the network is then refused, naming both, and a code table entry
/// settles it.
pub fn derived_code(name: &str) -> u16 {
    let code = crc32fast::hash(name.as_bytes()) % 65_535 + 1;
    u16::try_from(code).expect("1..=65535")
}

/// `12号线` or an alias `Line 12` gives 12.
fn line_number(name: &str, aliases: &[String]) -> Option<u16> {
    let number = |n: &str| n.parse::<u16>().ok().filter(|&n| n != 0);
    name.strip_suffix("号线")
        .and_then(number)
        .or_else(|| aliases.iter().find_map(|a| a.strip_prefix("Line ").and_then(number)))
}

impl Network {
    /// The network's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a hand-written sample rather than imported data.
    pub fn is_sample(&self) -> bool {
        self.sample
    }

    /// Stations, by index.
    pub fn stations(&self) -> &[Station] {
        &self.stations
    }

    /// Lines, by index.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Out-of-station transfers.
    pub fn transfers(&self) -> &[(StationIndex, StationIndex)] {
        &self.transfers
    }

    /// The station with this code.
    pub fn station_by_code(&self, code: u16) -> Option<StationIndex> {
        self.by_code.get(&code).copied()
    }

    /// Sets the codes a code table gives (overriding the data's and derived ones); refused when
    /// the table names a station or line the network does not have, gives code 0, or leaves two
    /// stations or two lines with one code.
    pub fn apply_codes(mut self, table: &CodeTable) -> Result<Network, String> {
        for (name, &code) in &table.stations {
            let index = self.lookup(name).map_err(|e| format!("code table: {e}"))?;
            if code == 0 {
                return Err(format!("code table: station {name}: code 0 is reserved (no station)"));
            }
            (self.stations[index].code, self.stations[index].code_origin) = (code, CodeOrigin::Table);
        }
        for (name, &code) in &table.lines {
            let index = self.line_index(name).ok_or_else(|| format!("code table: no line `{name}`"))?;
            if code == 0 {
                return Err(format!("code table: line {name}: code 0 is reserved (no line)"));
            }
            (self.lines[index].code, self.lines[index].code_origin) = (code, CodeOrigin::Table);
        }
        self.with_checked_codes()
    }

    /// Indexes the station codes, refusing a code held twice (by stations, or by lines).
    fn with_checked_codes(mut self) -> Result<Network, String> {
        let mut by_code: HashMap<u16, StationIndex> = HashMap::with_capacity(self.stations.len());
        for (i, s) in self.stations.iter().enumerate() {
            assert!(s.code != 0, "every station has a code by now");
            if let Some(&other) = by_code.get(&s.code) {
                return Err(collision("stations", &self.stations[other].name, &s.name, s.code));
            }
            by_code.insert(s.code, i);
        }
        let mut line_codes: HashMap<u16, &str> = HashMap::with_capacity(self.lines.len());
        for l in &self.lines {
            if let Some(other) = line_codes.insert(l.code, &l.name) {
                return Err(collision("lines", other, &l.name, l.code));
            }
        }
        self.by_code = by_code;
        Ok(self)
    }

    /// The line called `name` (or an alias).
    pub fn line_index(&self, name: &str) -> Option<LineIndex> {
        self.lines.iter().position(|l| l.name == name || l.aliases.iter().any(|a| a.eq_ignore_ascii_case(name)))
    }

    /// Every track segment: (from, to, metres, line), each once.
    pub fn segments(&self) -> impl Iterator<Item = (StationIndex, StationIndex, u32, LineIndex)> + '_ {
        self.lines.iter().enumerate().flat_map(|(li, l)| {
            l.segments_m.iter().enumerate().map(move |(i, &m)| (l.stops[i], l.stops[(i + 1) % l.stops.len()], m, li))
        })
    }

    /// The station a rider means by `name`: its name, an alias (any case), or a name without its
    /// line suffix when only one station carries it.
    pub fn lookup(&self, name: &str) -> Result<StationIndex, QuoteError> {
        let name = name.trim();
        if let Some(&i) = self.names.get(name).or_else(|| self.names.get(&name.to_lowercase())) {
            return Ok(i);
        }
        let suffixed: Vec<StationIndex> = (0..self.stations.len())
            .filter(|&i| self.stations[i].name.split(['(', '（']).next() == Some(name))
            .collect();
        match suffixed.as_slice() {
            [one] => return Ok(*one),
            [] => {}
            many => {
                return Err(QuoteError::AmbiguousStation {
                    name: name.into(),
                    candidates: many.iter().map(|&i| self.stations[i].name.clone()).collect(),
                })
            }
        }
        Err(QuoteError::UnknownStation { name: name.into(), suggestions: self.suggest(name) })
    }

    /// Up to three known names closest to `name` (edit distance).
    fn suggest(&self, name: &str) -> Vec<String> {
        let wanted = name.to_lowercase();
        let limit = (wanted.chars().count() / 3).max(2);
        let mut scored: Vec<(usize, &str)> = self
            .stations
            .iter()
            .flat_map(|s| std::iter::once(&s.name).chain(&s.aliases))
            .map(|n| (strsim::levenshtein(&wanted, &n.to_lowercase()), n.as_str()))
            .filter(|(d, _)| *d <= limit)
            .collect();
        scored.sort();
        scored.dedup_by(|a, b| a.1 == b.1);
        scored.into_iter().take(3).map(|(_, n)| n.to_string()).collect()
    }
}

fn collision(what: &str, a: &str, b: &str, code: u16) -> String {
    format!(
        "{what} `{a}` and `{b}` share code {code}; give one of them its own code in a code table \
         ([metro.codes] in the city file, or codes.toml beside the network)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Network {
        let mut b = NetworkBuilder::new("tiny", true);
        let a = b.station("甲", &["Jia".into()], None).unwrap();
        let x = b.station("乙(1号线)", &[], None).unwrap();
        let c = b.station("丙", &["Bing".into()], Some(3)).unwrap();
        b.line("1号线", &["Line 1".into()], None, false, vec![a, x, c], vec![1_000, 2_000]).unwrap();
        let y = b.station("乙(2号线)", &[], None).unwrap();
        b.line("2号线", &[], None, false, vec![y, c], vec![500]).unwrap();
        b.build().unwrap()
    }

    #[test]
    fn lookup_by_name_alias_and_suffixless_name() {
        let n = tiny();
        assert_eq!(n.lookup("甲"), Ok(0));
        assert_eq!(n.lookup("jia"), Ok(0));
        assert_eq!(n.lookup("BING"), Ok(2));
        assert!(
            matches!(n.lookup("乙"), Err(QuoteError::AmbiguousStation { candidates, .. }) if candidates.len() == 2)
        );
        match n.lookup("Bingg") {
            Err(QuoteError::UnknownStation { suggestions, .. }) => assert_eq!(suggestions, ["Bing"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(n.stations()[2].lines, [0, 1]);
    }

    #[test]
    fn codes_come_from_the_data_else_from_the_name() {
        let n = tiny();
        // Derived codes: zlib.crc32(name.encode()) % 65535 + 1, worked out in Python.
        let codes: Vec<(u16, CodeOrigin)> = n.stations().iter().map(|s| (s.code, s.code_origin)).collect();
        assert_eq!(
            codes,
            [
                (58_936, CodeOrigin::Derived),
                (42_185, CodeOrigin::Derived),
                (3, CodeOrigin::Data),
                (9_325, CodeOrigin::Derived)
            ]
        );
        assert_eq!(derived_code("西单"), 64_835);
        assert_eq!((n.lines()[0].code, n.lines()[0].code_origin), (1, CodeOrigin::Data));
        assert_eq!(n.station_by_code(3), Some(2));
        assert_eq!(n.station_by_code(58_936), Some(0));
        assert_eq!(n.station_by_code(1), None);
        assert_eq!(n.station_by_code(0), None);
    }

    #[test]
    fn adding_a_station_moves_no_other_code() {
        let before = tiny();
        let mut b = NetworkBuilder::new("tiny", true);
        // A new first station, on a new first line: every position shifts.
        let d = b.station("丁", &[], None).unwrap();
        let a = b.station("甲", &["Jia".into()], None).unwrap();
        b.line("3号线", &[], None, false, vec![d, a], vec![800]).unwrap();
        let a = b.station("甲", &[], None).unwrap();
        let x = b.station("乙(1号线)", &[], None).unwrap();
        let c = b.station("丙", &[], Some(3)).unwrap();
        b.line("1号线", &["Line 1".into()], None, false, vec![a, x, c], vec![1_000, 2_000]).unwrap();
        let y = b.station("乙(2号线)", &[], None).unwrap();
        b.line("2号线", &[], None, false, vec![y, c], vec![500]).unwrap();
        let after = b.build().unwrap();
        for s in before.stations() {
            let moved = &after.stations()[after.lookup(&s.name).unwrap()];
            assert_eq!(moved.code, s.code, "{}", s.name);
            assert_eq!(after.station_by_code(s.code), after.lookup(&s.name).ok());
        }
        for l in before.lines() {
            assert_eq!(after.lines()[after.line_index(&l.name).unwrap()].code, l.code, "{}", l.name);
        }
    }

    #[test]
    fn a_shared_code_is_refused_naming_both() {
        let mut b = NetworkBuilder::new("bad", false);
        let a = b.station("Anding", &[], Some(7)).unwrap();
        let c = b.station("Baishi", &[], Some(7)).unwrap();
        b.line("L", &[], None, false, vec![a, c], vec![900]).unwrap();
        let e = b.build().unwrap_err();
        assert!(e.starts_with("stations `Anding` and `Baishi` share code 7;"), "{e}");
        // Two names whose derived codes meet (zlib.crc32 in Python: both 49736).
        let mut b = NetworkBuilder::new("bad", false);
        let a = b.station("Station 119", &[], None).unwrap();
        let c = b.station("Station 364", &[], None).unwrap();
        b.line("L", &[], None, false, vec![a, c], vec![900]).unwrap();
        let e = b.build().unwrap_err();
        assert!(e.starts_with("stations `Station 119` and `Station 364` share code 49736;"), "{e}");
        // Lines too.
        let mut b = NetworkBuilder::new("bad", false);
        let a = b.station("A", &[], None).unwrap();
        let c = b.station("C", &[], None).unwrap();
        b.line("1号线", &[], None, false, vec![a, c], vec![900]).unwrap();
        b.line("Batong", &[], Some(1), false, vec![a, c], vec![900]).unwrap();
        let e = b.build().unwrap_err();
        assert!(e.starts_with("lines `1号线` and `Batong` share code 1;"), "{e}");
        // A station given two codes.
        let mut b = NetworkBuilder::new("bad", false);
        b.station("A", &[], Some(4)).unwrap();
        assert_eq!(b.station("A", &[], Some(5)), Err("station A is given two codes, 4 and 5".into()));
        assert!(b.station("Z", &[], Some(0)).is_err());
    }

    #[test]
    fn a_code_table_overrides_and_is_checked() {
        let mut table = CodeTable::default();
        table.stations.insert("Jia".into(), 11);
        table.lines.insert("2号线".into(), 20);
        let n = tiny().apply_codes(&table).unwrap();
        assert_eq!((n.stations()[0].code, n.stations()[0].code_origin), (11, CodeOrigin::Table));
        assert_eq!((n.station_by_code(11), n.station_by_code(58_936)), (Some(0), None));
        assert_eq!(n.lines()[1].code, 20);
        table.stations.insert("丙".into(), 11);
        let e = tiny().apply_codes(&table).unwrap_err();
        assert!(e.starts_with("stations `甲` and `丙` share code 11;"), "{e}");
        let mut unknown = CodeTable::default();
        unknown.stations.insert("戊".into(), 5);
        assert!(tiny().apply_codes(&unknown).unwrap_err().contains("no station `戊`"));
        let mut unknown = CodeTable::default();
        unknown.lines.insert("9号线".into(), 9);
        assert_eq!(tiny().apply_codes(&unknown).unwrap_err(), "code table: no line `9号线`");
    }

    #[test]
    fn builder_rejects_inconsistent_lines() {
        let mut b = NetworkBuilder::new("bad", true);
        let a = b.station("A", &[], None).unwrap();
        let c = b.station("C", &[], None).unwrap();
        assert!(b.line("L", &[], None, false, vec![a, c], vec![]).is_err());
        assert!(b.line("L", &[], None, false, vec![a, c], vec![0]).is_err());
        assert!(b.line("L", &[], None, true, vec![a, c], vec![5]).is_err());
        assert!(b.line("L", &[], None, false, vec![a], vec![]).is_err());
        assert!(b.line("L", &[], Some(0), false, vec![a, c], vec![5]).is_err());
        assert!(b.station(" ", &[], None).is_err());
    }
}
