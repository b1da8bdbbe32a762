//! Shortest network distances: Dijkstra from every station, computed once when a city loads.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::network::{LineIndex, Network, StationIndex};

const UNREACHABLE: u32 = u32::MAX;
const NO_PREDECESSOR: u32 = u32::MAX;
/// Marks an out-of-station transfer in a predecessor entry's line half.
const TRANSFER: u32 = 0xFFFF;

/// One step of a path: arriving at `station` by `line` (`None`: an out-of-station transfer, or
/// the first station).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The station reached.
    pub station: StationIndex,
    /// The line ridden to reach it.
    pub line: Option<LineIndex>,
}

/// All-pairs shortest distances over a part of a network (the lines one fare rule covers).
#[derive(Clone, Debug)]
pub struct DistanceTable {
    n: usize,
    distance_m: Vec<u32>,
    /// Per (source, station): predecessor station << 16 | line (or [`TRANSFER`]).
    predecessor: Vec<u32>,
    member: Vec<bool>,
}

impl DistanceTable {
    /// Distances over the lines for which `line_allowed` is true; out-of-station transfers count
    /// when both ends are on such lines.
    pub fn build(network: &Network, line_allowed: &[bool]) -> Self {
        let n = network.stations().len();
        assert!(n < usize::from(u16::MAX), "station indices fit the predecessor encoding");
        let mut adjacency: Vec<Vec<(u32, u32, u32)>> = vec![Vec::new(); n];
        let mut member = vec![false; n];
        for (a, b, m, line) in network.segments() {
            if line_allowed.get(line).copied().unwrap_or(false) {
                adjacency[a].push((b as u32, m, line as u32));
                adjacency[b].push((a as u32, m, line as u32));
                member[a] = true;
                member[b] = true;
            }
        }
        for &(a, b) in network.transfers() {
            if member[a] && member[b] {
                adjacency[a].push((b as u32, 0, TRANSFER));
                adjacency[b].push((a as u32, 0, TRANSFER));
            }
        }
        let mut distance_m = vec![UNREACHABLE; n * n];
        let mut predecessor = vec![NO_PREDECESSOR; n * n];
        let mut heap = BinaryHeap::new();
        for source in (0..n).filter(|&s| member[s]) {
            let row = source * n;
            distance_m[row + source] = 0;
            heap.push(Reverse((0u32, source as u32)));
            while let Some(Reverse((d, v))) = heap.pop() {
                let v = v as usize;
                if d > distance_m[row + v] {
                    continue;
                }
                for &(w, m, line) in &adjacency[v] {
                    let nd = d.saturating_add(m);
                    let w = w as usize;
                    if nd < distance_m[row + w] {
                        distance_m[row + w] = nd;
                        predecessor[row + w] = ((v as u32) << 16) | line;
                        heap.push(Reverse((nd, w as u32)));
                    }
                }
            }
        }
        DistanceTable { n, distance_m, predecessor, member }
    }

    /// Whether `station` is on one of the table's lines.
    pub fn contains(&self, station: StationIndex) -> bool {
        self.member.get(station).copied().unwrap_or(false)
    }

    /// Shortest distance in metres, `None` when unreachable.
    pub fn distance_m(&self, from: StationIndex, to: StationIndex) -> Option<u32> {
        if from >= self.n || to >= self.n {
            return None;
        }
        Some(self.distance_m[from * self.n + to]).filter(|d| *d != UNREACHABLE)
    }

    /// The stations and lines of a shortest path, `from` first.
    pub fn path(&self, from: StationIndex, to: StationIndex) -> Option<Vec<Hop>> {
        self.distance_m(from, to)?;
        let row = from * self.n;
        let mut hops = Vec::new();
        let mut at = to;
        while at != from {
            let p = self.predecessor[row + at];
            let line = p & 0xFFFF;
            hops.push(Hop { station: at, line: (line != TRANSFER).then_some(line as usize) });
            at = (p >> 16) as usize;
            assert!(hops.len() <= self.n, "predecessor chain loops");
        }
        hops.push(Hop { station: from, line: None });
        hops.reverse();
        Some(hops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::NetworkBuilder;

    /// A ring A-B-C-D (loop, 1 km each but D-A 5 km) and a line B-E; E-C out-of-station.
    fn ring() -> Network {
        let mut b = NetworkBuilder::new("ring", true);
        let s: Vec<_> = ["A", "B", "C", "D", "E"].iter().map(|n| b.station(n, &[], None).unwrap()).collect();
        b.line("R", &[], None, true, vec![s[0], s[1], s[2], s[3]], vec![1_000, 1_000, 1_000, 5_000]).unwrap();
        b.line("L", &[], None, false, vec![s[1], s[4]], vec![300]).unwrap();
        b.transfer(s[4], s[2]);
        b.build().unwrap()
    }

    #[test]
    fn shortest_paths_use_loops_and_transfers() {
        let n = ring();
        let t = DistanceTable::build(&n, &[true, true]);
        // A to D: A-B (1,000) + B-E (300) + walk E-C (0) + C-D (1,000) = 2,300 m, shorter than
        // A-B-C-D on the ring (3,000 m) or the 5 km closing segment.
        assert_eq!(t.distance_m(0, 3), Some(2_300));
        let ring_only = DistanceTable::build(&n, &[true, false]);
        assert_eq!(ring_only.distance_m(0, 3), Some(3_000));
        // B to C: B-E (300 m) then walk E-C (0 m) beats the 1 km segment.
        assert_eq!(t.distance_m(1, 2), Some(300));
        let path = t.path(1, 2).unwrap();
        assert_eq!(
            path,
            [Hop { station: 1, line: None }, Hop { station: 4, line: Some(1) }, Hop { station: 2, line: None }]
        );
        // Without line L, no transfer either.
        let only_ring = DistanceTable::build(&n, &[true, false]);
        assert_eq!(only_ring.distance_m(1, 2), Some(1_000));
        assert_eq!(only_ring.distance_m(0, 4), None);
        assert!(!only_ring.contains(4));
    }
}
