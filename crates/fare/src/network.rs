//! The network model: lines with stations in order and the distance between neighbours, transfer
//! stations (one station on several lines), out-of-station transfers, and names.

use std::collections::HashMap;

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
    /// Station code written on cards: its position in the network file, from 1.
    pub code: u16,
}

/// A line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Name (`1号线`).
    pub name: String,
    /// Other names (`Line 1`).
    pub aliases: Vec<String>,
    /// Line code written on cards.
    pub code: u16,
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
}

/// Builds a [`Network`] from lines in file order.
#[derive(Debug, Default)]
pub struct NetworkBuilder {
    name: String,
    sample: bool,
    stations: Vec<Station>,
    lines: Vec<Line>,
    transfers: Vec<(StationIndex, StationIndex)>,
    by_name: HashMap<String, StationIndex>,
}

impl NetworkBuilder {
    /// An empty network called `name`; `sample` marks hand-written sample data.
    pub fn new(name: &str, sample: bool) -> Self {
        NetworkBuilder { name: name.into(), sample, ..Default::default() }
    }

    /// The station called `name`, created on first use; `aliases` are added to it.
    pub fn station(&mut self, name: &str, aliases: &[String]) -> Result<StationIndex, String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("empty station name".into());
        }
        let index = match self.by_name.get(name) {
            Some(&i) => i,
            None => {
                if self.stations.len() >= STATIONS_MAX {
                    return Err(format!("more than {STATIONS_MAX} stations"));
                }
                let i = self.stations.len();
                let code = u16::try_from(i + 1).expect("STATIONS_MAX fits u16");
                self.stations.push(Station { name: name.into(), aliases: Vec::new(), lines: Vec::new(), code });
                self.by_name.insert(name.into(), i);
                i
            }
        };
        for a in aliases {
            if !self.stations[index].aliases.contains(a) {
                self.stations[index].aliases.push(a.clone());
            }
        }
        Ok(index)
    }

    /// The station called `name`, if it exists.
    pub fn find(&self, name: &str) -> Option<StationIndex> {
        self.by_name.get(name.trim()).copied()
    }

    /// Adds a line: `stops` in order, `segments_m` between neighbours (one more on a loop, from
    /// the last station back to the first).
    pub fn line(
        &mut self,
        name: &str,
        aliases: &[String],
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
        let index = self.lines.len();
        for &s in &stops {
            if !self.stations[s].lines.contains(&index) {
                self.stations[s].lines.push(index);
            }
        }
        let code = line_code(name, aliases).filter(|c| !self.lines.iter().any(|l| l.code == *c));
        let code = code.unwrap_or(100 + index as u16);
        self.lines.push(Line { name: name.into(), aliases: aliases.to_vec(), code, is_loop, stops, segments_m });
        Ok(())
    }

    /// An out-of-station transfer: riders walk between `a` and `b`, the fare goes on.
    pub fn transfer(&mut self, a: StationIndex, b: StationIndex) {
        self.transfers.push((a, b));
    }

    /// The network.
    pub fn build(self) -> Result<Network, String> {
        if self.lines.is_empty() {
            return Err("the network has no line".into());
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
        Ok(Network {
            name: self.name,
            sample: self.sample,
            stations: self.stations,
            lines: self.lines,
            transfers: self.transfers,
            names,
        })
    }
}

/// `12号线` or an alias `Line 12` gives 12.
fn line_code(name: &str, aliases: &[String]) -> Option<u16> {
    if let Some(n) = name.strip_suffix("号线").and_then(|n| n.parse().ok()) {
        return Some(n);
    }
    aliases.iter().find_map(|a| a.strip_prefix("Line ").and_then(|n| n.parse().ok()))
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
        let i = usize::from(code).checked_sub(1)?;
        (i < self.stations.len()).then_some(i)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Network {
        let mut b = NetworkBuilder::new("tiny", true);
        let a = b.station("甲", &["Jia".into()]).unwrap();
        let x = b.station("乙(1号线)", &[]).unwrap();
        let c = b.station("丙", &["Bing".into()]).unwrap();
        b.line("1号线", &["Line 1".into()], false, vec![a, x, c], vec![1_000, 2_000]).unwrap();
        let y = b.station("乙(2号线)", &[]).unwrap();
        b.line("2号线", &[], false, vec![y, c], vec![500]).unwrap();
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
        assert_eq!(n.lines()[0].code, 1);
        assert_eq!(n.stations()[2].lines, [0, 1]);
        assert_eq!(n.station_by_code(3), Some(2));
        assert_eq!(n.station_by_code(0), None);
    }

    #[test]
    fn builder_rejects_inconsistent_lines() {
        let mut b = NetworkBuilder::new("bad", true);
        let a = b.station("A", &[]).unwrap();
        let c = b.station("C", &[]).unwrap();
        assert!(b.line("L", &[], false, vec![a, c], vec![]).is_err());
        assert!(b.line("L", &[], false, vec![a, c], vec![0]).is_err());
        assert!(b.line("L", &[], true, vec![a, c], vec![5]).is_err());
        assert!(b.line("L", &[], false, vec![a], vec![]).is_err());
        assert!(b.station(" ", &[]).is_err());
    }
}
