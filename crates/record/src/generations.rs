//! A bounded map of two generations, for caches of what is cheap to make again: entries go into
//! the current generation; once it holds half the bound it becomes the previous one, and the
//! generation before is dropped. An entry used again from the previous generation moves back
//! into the current one, so what is in use stays. The table of the generation dropped is handed
//! to the next one, so a full map's tables stop growing (and being made) after its second
//! turn-over; a map that never fills keeps tables the size of what it holds. The back office
//! keeps its card TAC keys ([`crate::TacKeys`]) and the platform its card shadows this way.

use std::hash::{BuildHasher, Hash, RandomState};

use hashbrown::HashTable;

/// Two generations of at most half the bound each. A key is hashed once an operation (with the
/// standard library's keyed SipHash: keys come from outside), and both tables are probed with
/// that hash: a miss looked in each table, then inserted, and hashed the key five times before.
pub struct Generations<K, V> {
    current: HashTable<(K, V)>,
    previous: HashTable<(K, V)>,
    hasher: RandomState,
    half: usize,
}

impl<K: Hash + Eq, V> Generations<K, V> {
    /// An empty map keeping at most `bound` entries (at least 2).
    pub fn new(bound: usize) -> Generations<K, V> {
        Generations {
            current: HashTable::new(),
            previous: HashTable::new(),
            hasher: RandomState::new(),
            half: (bound / 2).max(1),
        }
    }

    /// Keeps `value` under `key` in the current generation (replacing an older entry of the key),
    /// turning the generations over first when the current one is full.
    pub fn insert(&mut self, key: K, value: V) {
        let hash = self.hasher.hash_one(&key);
        self.insert_hashed(hash, key, value);
    }

    fn insert_hashed(&mut self, hash: u64, key: K, value: V) {
        if let Some(entry) = self.current.find_mut(hash, |(k, _)| *k == key) {
            entry.1 = value;
            return;
        }
        if self.current.len() >= self.half {
            // The generation dropped (which may hold the key) lends its table to the next one:
            // from the third generation on, no table grows (growing moved every entry into new
            // memory, faulted in).
            let mut recycled = std::mem::take(&mut self.previous);
            recycled.clear();
            self.previous = std::mem::replace(&mut self.current, recycled);
        } else if let Ok(older) = self.previous.find_entry(hash, |(k, _)| *k == key) {
            older.remove();
        }
        let hasher = &self.hasher;
        self.current.insert_unique(hash, (key, value), |(k, _)| hasher.hash_one(k));
    }

    /// The entry of `key`, moved into the current generation when it was in the previous one.
    pub fn get(&mut self, key: &K) -> Option<&V> {
        let hash = self.hasher.hash_one(key);
        if self.current.find(hash, |(k, _)| k == key).is_none() {
            let ((key, value), _) = self.previous.find_entry(hash, |(k, _)| k == key).ok()?.remove();
            self.insert_hashed(hash, key, value);
        }
        self.current.find(hash, |(k, _)| k == key).map(|(_, value)| value)
    }

    /// Takes the entry of `key` out.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let hash = self.hasher.hash_one(key);
        let entry = match self.current.find_entry(hash, |(k, _)| k == key) {
            Ok(entry) => entry,
            Err(_) => self.previous.find_entry(hash, |(k, _)| k == key).ok()?,
        };
        Some(entry.remove().0 .1)
    }

    /// Forgets every entry.
    pub fn clear(&mut self) {
        self.current.clear();
        self.previous.clear();
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K, V> std::fmt::Debug for Generations<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generations")
            .field("current", &self.current.len())
            .field("previous", &self.previous.len())
            .field("half", &self.half)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Generations;

    #[test]
    fn the_entries_put_last_stay_and_the_oldest_go() {
        let mut map = Generations::new(8);
        for n in 0..20 {
            map.insert(n, n * 10);
            assert!(map.len() <= 8, "{} kept", map.len());
        }
        // The last half of the bound is there; the first ones are gone.
        assert!((16..20).all(|n| map.get(&n) == Some(&(n * 10))));
        assert_eq!(map.get(&0), None);
    }

    #[test]
    fn a_full_map_s_tables_are_handed_on_not_made_again() {
        let mut map = Generations::new(64);
        // Two turn-overs: both tables have held a whole generation.
        for n in 0..70 {
            map.insert(n, n);
        }
        let capacities = |map: &Generations<i32, i32>| {
            let mut both = [map.current.capacity(), map.previous.capacity()];
            both.sort_unstable();
            both
        };
        let settled = capacities(&map);
        assert!(settled[0] >= 32, "each table holds a generation: {settled:?}");
        for n in 70..1_000 {
            map.insert(n, n);
            assert_eq!(capacities(&map), settled, "no table grows or is made again");
        }
    }

    #[test]
    fn an_entry_used_again_survives_the_next_turn_over() {
        let mut map = Generations::new(4);
        map.insert(1, "one");
        map.insert(2, "two");
        map.insert(3, "three"); // turn-over: 1 and 2 are the previous generation
        assert_eq!(map.get(&1), Some(&"one"), "used again: back in the current generation");
        map.insert(4, "four"); // turn-over: 3 and 1 previous, 2 dropped
        assert_eq!(map.get(&1), Some(&"one"));
        assert_eq!(map.get(&2), None);
        assert_eq!(map.remove(&1), Some("one"));
        assert_eq!(map.remove(&1), None);
        map.insert(4, "FOUR");
        assert_eq!(map.get(&4), Some(&"FOUR"), "a key put again replaces its entry");
        map.clear();
        assert!(map.is_empty());
    }
}
