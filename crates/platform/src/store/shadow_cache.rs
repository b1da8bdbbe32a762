//! Card shadows kept in memory between ingest groups, each with the stored version it was
//! written at: a group takes a cached shadow (no copy) instead of reading and parsing the stored
//! one. The
//! stored version still decides — every write is a compare-and-swap on it — so a shadow another
//! process or service wrote meanwhile fails the write, the group forgets its cards here and
//! tries again from the database.

use std::collections::HashMap;
use std::sync::Mutex;

use yitong_clearing::shadow::{CardId, Shadow};

/// Cards kept at most; past it, arbitrary cards are dropped (they are read again when needed).
pub(crate) const SHADOW_CACHE_CARDS: usize = 262_144;

/// Shadows by card, with the version stored.
#[derive(Debug, Default)]
pub(crate) struct ShadowCache {
    shadows: Mutex<HashMap<CardId, (i64, Shadow)>>,
}

impl ShadowCache {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<CardId, (i64, Shadow)>> {
        // Plain inserts and removals: a panic elsewhere leaves a usable map.
        self.shadows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the card's shadow and its stored version out, if cached: the group that takes it
    /// puts it back once written ([`ShadowCache::put`]); one that fails leaves it to be read
    /// again. (Two groups of one store at once: the second reads the stored one and one of them
    /// fails its compare-and-swap.)
    pub(crate) fn take(&self, card: &CardId) -> Option<(i64, Shadow)> {
        self.map().remove(card)
    }

    /// Keeps shadows just written at their versions.
    pub(crate) fn put(&self, written: impl IntoIterator<Item = (CardId, (i64, Shadow))>) {
        let mut map = self.map();
        for (card, entry) in written {
            if map.len() >= SHADOW_CACHE_CARDS && !map.contains_key(&card) {
                let Some(&evicted) = map.keys().next() else { break };
                map.remove(&evicted);
            }
            map.insert(card, entry);
        }
    }

    /// Drops cards whose stored shadow may have changed behind the cache.
    pub(crate) fn forget<'a>(&self, cards: impl IntoIterator<Item = &'a CardId>) {
        let mut map = self.map();
        for card in cards {
            map.remove(card);
        }
    }
}
