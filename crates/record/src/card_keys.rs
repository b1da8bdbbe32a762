//! The card TAC keys the back office derived lately, so that a card's later records (the same
//! day's exit after its entry, tomorrow's commute) skip the diversification: two triple-DES
//! blocks (or an SM4 block) of the ten or so a record's check costs.
//!
//! Bounded: two generations of [`CARD_KEYS_CACHED`]` / 2` cards; a key derived again is as good.
//! Keys are zeroized when dropped ([`SessionKey`]).

use std::sync::Mutex;

use yitong_crypto::SessionKey;

use crate::generations::Generations;

/// Card keys kept at most by default: a day's cards of a large network (the bench's million taps
/// come from 235,914 cards; with 262,144 kept, two generations of half that, a card's evening
/// records found its key dropped and derived it again, about a quarter of the day's DES time).
/// Full, the two tables take some 73 MB (1,048,576 slots each for 524,288 keys, 35 bytes a slot
/// with its control byte), about 92 MB for a moment while the second one first grows.
pub const CARD_KEYS_CACHED: usize = 1_048_576;

/// Issuer ID, key version and ASN8, in one array (hashed in two writes, its length and its
/// bytes, not five).
pub(crate) type CardKeyId = [u8; 17];

/// The key of a card's TAC key.
pub(crate) fn card_key_id(issuer_id: [u8; 8], key_version: u8, asn8: [u8; 8]) -> CardKeyId {
    let mut id = [0; 17];
    id[..8].copy_from_slice(&issuer_id);
    id[8] = key_version;
    id[9..].copy_from_slice(&asn8);
    id
}

/// The cache: the keys derived since the last turn-over, and those of the generation before.
pub(crate) struct CardKeys {
    generations: Mutex<Generations<CardKeyId, SessionKey>>,
}

impl Default for CardKeys {
    fn default() -> CardKeys {
        CardKeys::with_bound(CARD_KEYS_CACHED)
    }
}

impl CardKeys {
    /// A cache keeping at most `keys` keys.
    pub(crate) fn with_bound(keys: usize) -> CardKeys {
        CardKeys { generations: Mutex::new(Generations::new(keys)) }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, Generations<CardKeyId, SessionKey>> {
        // Plain inserts and removals: a panic elsewhere leaves a usable map.
        self.generations.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The card's key: kept, or made by `derive` and kept.
    pub(crate) fn get_or_derive(&self, id: CardKeyId, derive: impl FnOnce() -> SessionKey) -> SessionKey {
        if let Some(key) = self.map().get(&id) {
            return key.clone();
        }
        // Derived outside the lock: the other checking threads go on meanwhile.
        let key = derive();
        self.map().insert(id, key.clone());
        key
    }

    /// Forgets every key (the master keys changed).
    pub(crate) fn clear(&self) {
        self.map().clear();
    }

    /// Keys kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map().len()
    }
}
