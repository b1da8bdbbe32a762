//! A card's transactions in key order, in one vector: a card holds a few a day, and a
//! `BTreeMap`'s first node keeps room for eleven (a shadow of four transactions took about
//! 1,080 bytes of memory that way, 376 this way, against about 160 packed). The back office keeps
//! up to a million shadows in memory (`yitong_platform`'s shadow cache), so their size bounds how
//! many it can.

use super::entry::{Entry, EntryKey};

/// Transactions sorted by [`Entry::key`], each key once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Entries(Vec<Entry>);

impl Entries {
    /// Room for `n` transactions (a stored shadow's, read back).
    pub(crate) fn with_capacity(n: usize) -> Self {
        Entries(Vec::with_capacity(n))
    }

    fn position(&self, key: &EntryKey) -> Result<usize, usize> {
        self.0.binary_search_by(|entry| entry.key().cmp(key))
    }

    pub(crate) fn get(&self, key: &EntryKey) -> Option<&Entry> {
        self.position(key).ok().map(|at| &self.0[at])
    }

    /// Adds `entry` in its place; `Err` gives it back, with the one held, when its key is there
    /// already.
    pub(crate) fn insert(&mut self, entry: Entry) -> Result<(), (Entry, &mut Entry)> {
        let key = entry.key();
        // Mostly the card's newest, appended: checked before a search.
        if self.0.last().is_none_or(|last| last.key() < key) {
            self.0.push(entry);
            return Ok(());
        }
        match self.position(&key) {
            Ok(at) => Err((entry, &mut self.0[at])),
            Err(at) => {
                self.0.insert(at, entry);
                Ok(())
            }
        }
    }

    /// In key order.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Entry> {
        self.0.iter()
    }

    pub(crate) fn into_vec(self) -> Vec<Entry> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::entry::{Evidence, Sequence};
    use yitong_profile::DateTime;

    fn entry(sequence: Sequence, counter: u16, hour: u8) -> Entry {
        let time = |hour| DateTime::new(2026, 12, 7, hour, 0, 0).expect("a time");
        Entry::purchase_for_tests(sequence, counter, time(hour), time(23))
    }

    #[test]
    fn entries_keep_key_order_whatever_order_they_come_in() {
        let all = [
            entry(Sequence::Offline, 5, 9),
            entry(Sequence::Online, 2, 8),
            entry(Sequence::Offline, 3, 7),
            entry(Sequence::Offline, 3, 6),
            entry(Sequence::Offline, 9, 10),
        ];
        let mut entries = Entries::default();
        for e in &all {
            assert!(entries.insert(e.clone()).is_ok());
        }
        // Online before offline; by counter, then time.
        let keys: Vec<EntryKey> = entries.iter().map(Entry::key).collect();
        let mut sorted: Vec<EntryKey> = all.iter().map(Entry::key).collect();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(
            entries.iter().map(|e| (e.counter, e.at.hour)).collect::<Vec<_>>(),
            [(2, 8), (3, 6), (3, 7), (5, 9), (9, 10)]
        );
        // A key there already is given back, with the one held (unchanged by the insert).
        let mut again = entry(Sequence::Offline, 3, 7);
        again.evidence = Evidence::Unconfirmed;
        match entries.insert(again.clone()) {
            Err((back, held)) => {
                assert_eq!((&back, held.evidence), (&again, Evidence::Proven));
                held.evidence = Evidence::Logged;
            }
            Ok(()) => panic!("a key held twice"),
        }
        assert_eq!(entries.get(&again.key()).map(|e| e.evidence), Some(Evidence::Logged));
        assert!(entries.get(&entry(Sequence::Online, 3, 7).key()).is_none());
        assert_eq!(entries.into_vec().len(), 5);
    }
}
