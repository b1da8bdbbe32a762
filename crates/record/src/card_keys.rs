//! The card TAC keys the back office derived lately, so that a card's later records (the same
//! day's exit after its entry, tomorrow's commute) skip the diversification: two triple-DES
//! blocks (or an SM4 block) of the ten or so a record's check costs.
//!
//! Bounded: two generations of [`CARD_KEYS_CACHED`]` / 2` cards; a key derived again is as good.
//! Keys are zeroized when dropped ([`SessionKey`]).

use std::collections::HashMap;
use std::sync::Mutex;

use yitong_crypto::SessionKey;

/// Card keys kept at most.
pub const CARD_KEYS_CACHED: usize = 262_144;

/// (issuer ID, key version, ASN8).
pub(crate) type CardKeyId = ([u8; 8], u8, [u8; 8]);

type Keys = HashMap<CardKeyId, SessionKey>;

/// The cache: the keys derived since the last turn-over, and those of the generation before.
#[derive(Default)]
pub(crate) struct CardKeys {
    generations: Mutex<(Keys, Keys)>,
}

impl CardKeys {
    fn map(&self) -> std::sync::MutexGuard<'_, (Keys, Keys)> {
        // Plain inserts and removals: a panic elsewhere leaves a usable map.
        self.generations.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The card's key: kept, or made by `derive` and kept.
    pub(crate) fn get_or_derive(&self, id: CardKeyId, derive: impl FnOnce() -> SessionKey) -> SessionKey {
        if let Some(key) = self.lookup(&id) {
            return key;
        }
        // Derived outside the lock: the other checking threads go on meanwhile.
        let key = derive();
        keep(&mut self.map(), id, key.clone());
        key
    }

    fn lookup(&self, id: &CardKeyId) -> Option<SessionKey> {
        let mut map = self.map();
        if let Some(key) = map.0.get(id) {
            return Some(key.clone());
        }
        // Used again: into the current generation.
        let key = map.1.remove(id)?;
        keep(&mut map, *id, key.clone());
        Some(key)
    }

    /// Forgets every key (the master keys changed).
    pub(crate) fn clear(&self) {
        let mut map = self.map();
        map.0.clear();
        map.1.clear();
    }

    /// Keys kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let map = self.map();
        map.0.len() + map.1.len()
    }
}

/// Puts a key in the current generation, turning the generations over when it is full.
fn keep((current, previous): &mut (Keys, Keys), id: CardKeyId, key: SessionKey) {
    if current.len() >= CARD_KEYS_CACHED / 2 {
        *previous = std::mem::take(current);
    }
    current.insert(id, key);
}
