//! Card shadows kept in memory between ingest groups, each with the write token it was stored
//! under: a group takes a cached shadow (no copy) instead of reading and parsing the stored one.
//!
//! A group puts its shadows here as soon as it has fed them, before its write commits, so that
//! the next group can be prepared while this one writes. (The put runs beside the write,
//! [`ShadowCache::put_beside`]; every take waits for the puts begun, and the write for its own
//! before it commits: a group that reads what it committed puts after it, so an entry never goes
//! back to an older shadow.) That is safe because of what an entry claims: "if the database
//! holds this card under this token, it holds this shadow". A token is
//! unique to one write, so a write that never commits leaves entries that can never match, and
//! a group built on one fails its compare-and-swap. The stored token decides every write, so a
//! shadow another process or service wrote meanwhile fails the write too; the group forgets its
//! cards here and tries again from the database.
//!
//! It also remembers the tokens of the last [`COMMITTED_TOKENS`] writes that committed: a card
//! cached under one of them has its row in the database, which lets the write use an upsert.
//! (That is PostgreSQL's compare-and-swap; on SQLite the cached tokens are checked against the
//! shadow journal's own record of them: `shadow_journal`.)

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

use yitong_clearing::shadow::{CardId, Shadow};
use yitong_record::generations::Generations;

/// Cards kept at most by default ([`StoreOptions::shadow_cache_cards`](super::StoreOptions)): two
/// generations of half as many. The cards put last are never the ones dropped — a group's shadows
/// stay until the next group has taken them — however full the cache is, as long as a group's
/// cards are fewer than half the bound (else its own put pushes its first cards out).
///
/// A million: a day of a million taps (some 236,000 cards) then neither reads a card back nor
/// folds the journal before half a million cards were journaled (on the bench, 179,000–212,000
/// taps/s counting the last fold against 133,000–174,000 with 262,144). Full of cards of four
/// transactions it holds some 600 MB (measured: 578 bytes a card, the tables' share included);
/// each transaction more a card holds adds about 56 bytes, so cards of a month's history take
/// several times that (docs/operations.md, "Memory of the back office").
pub const SHADOW_CACHE_CARDS: usize = 1_048_576;
/// The most a store may be asked to keep.
pub const SHADOW_CACHE_CARDS_MAX: usize = 16_777_216;

/// Tokens of committed writes remembered.
pub(crate) const COMMITTED_TOKENS: usize = 1_024;

/// Boxed: a table's entry stays small (its card, token and pointer), so tables of a million cards
/// grow and fault in about a quarter of the memory, and a shadow moves by pointer into a group
/// and back.
type Entries = Generations<CardId, (i64, Box<Shadow>)>;

/// Shadows by card, with their write tokens: the cards put since the last turn-over, and those
/// of the generation before (dropped at the next one).
#[derive(Debug)]
pub(crate) struct ShadowCache {
    generations: Mutex<Entries>,
    /// Puts begun beside their callers ([`ShadowCache::put_beside`]) and not done: every take
    /// waits for them, so a group prepared after another finds its shadows as if put at once.
    putting: Mutex<usize>,
    put_done: Condvar,
    /// The last tokens whose writes committed: in the order they came, and as a set.
    committed: Mutex<(VecDeque<i64>, HashSet<i64>)>,
    /// The bound asked for.
    cards: usize,
}

impl ShadowCache {
    /// A cache keeping at most `cards` cards.
    pub(crate) fn new(cards: usize) -> ShadowCache {
        ShadowCache {
            generations: Mutex::new(Generations::new(cards)),
            putting: Mutex::new(0),
            put_done: Condvar::new(),
            committed: Mutex::default(),
            cards,
        }
    }

    /// Cards kept at most.
    pub(crate) fn cards(&self) -> usize {
        self.cards
    }

    fn map(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Plain inserts and removals: a panic elsewhere leaves a usable map.
        self.generations.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the shadows of `cards` (in their order) and their tokens out, where cached: the
    /// group that takes them puts its own back ([`ShadowCache::put_beside`]); one that fails leaves
    /// them to be read again. (Two groups of one store at once: the second reads the stored ones
    /// and one of them fails its compare-and-swap.)
    pub(crate) fn take_all(&self, cards: &[CardId]) -> Vec<Option<(i64, Box<Shadow>)>> {
        self.wait_for_puts();
        let mut map = self.map();
        cards.iter().map(|card| map.remove(card)).collect()
    }

    /// Keeps shadows under the tokens they are (or are being) written with.
    pub(crate) fn put(&self, written: impl IntoIterator<Item = (CardId, (i64, Box<Shadow>))>) {
        let mut map = self.map();
        for (card, entry) in written {
            map.insert(card, entry);
        }
    }

    /// [`ShadowCache::put`] on a blocking thread of the runtime (a group's put took a tenth of
    /// its preparing, in the next group's way); every take, forget and clear waits for it, as
    /// does [`ShadowCache::wait_for_puts`].
    pub(crate) fn put_beside(self: &Arc<Self>, written: Vec<(CardId, (i64, Box<Shadow>))>) {
        if written.is_empty() {
            return;
        }
        /// Counts a put until it is done, run or not (a runtime shutting down drops it).
        struct Putting(Arc<ShadowCache>);
        impl Drop for Putting {
            fn drop(&mut self) {
                let mut putting = self.0.putting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                *putting -= 1;
                self.0.put_done.notify_all();
            }
        }
        *self.putting.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        let putting = Putting(self.clone());
        // Not awaited: the count says when it is done (a put that panicked left some cards, under
        // a token no write of a group built on them gets past unless its group commits).
        drop(tokio::task::spawn_blocking(move || {
            let putting = putting;
            putting.0.put(written);
        }));
    }

    /// Waits, blocking this thread, for the puts begun beside their callers (each takes
    /// milliseconds, on threads of their own).
    pub(crate) fn wait_for_puts(&self) {
        let mut putting = self.putting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *putting > 0 {
            putting = self.put_done.wait(putting).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Drops cards whose stored shadow may have changed behind the cache (once the puts begun
    /// are done).
    pub(crate) fn forget<'a>(&self, cards: impl IntoIterator<Item = &'a CardId>) {
        self.wait_for_puts();
        let mut map = self.map();
        for card in cards {
            map.remove(card);
        }
    }

    /// Drops every card (once the puts begun are done): another store may have changed any of
    /// them.
    pub(crate) fn clear(&self) {
        self.wait_for_puts();
        self.map().clear();
    }

    /// The write of `token` committed.
    pub(crate) fn committed(&self, token: i64) {
        let mut committed = self.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (order, set) = &mut *committed;
        if order.len() >= COMMITTED_TOKENS {
            if let Some(oldest) = order.pop_front() {
                set.remove(&oldest);
            }
        }
        order.push_back(token);
        set.insert(token);
    }

    /// Whether the write of `token` is known to have committed (one of the last ones).
    pub(crate) fn is_committed(&self, token: i64) -> bool {
        self.committed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).1.contains(&token)
    }

    /// Cards cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(n: u32) -> CardId {
        let mut serial = [0u8; 10];
        serial[6..].copy_from_slice(&n.to_be_bytes());
        CardId { issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1], card_serial: serial }
    }

    #[test]
    fn the_cards_put_last_stay_however_many_came_before() {
        const BOUND: usize = 4_096;
        let cache = ShadowCache::new(BOUND);
        let total = BOUND as u32 * 5 / 2;
        cache.put((0..total).map(|n| (card(n), (i64::from(n), Box::new(Shadow::new(card(n)))))));
        assert!(cache.len() <= BOUND, "{} cards kept", cache.len());
        // The last half of the bound is all there, with its tokens.
        for n in total - BOUND as u32 / 2..total {
            let [taken] = cache.take_all(&[card(n)]).try_into().expect("one answer");
            let (token, shadow) = taken.expect("a card put last");
            assert_eq!((token, shadow.card()), (i64::from(n), card(n)));
        }
        assert!(cache.take_all(&[card(0)])[0].is_none(), "the oldest card was dropped");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_take_after_a_put_beside_finds_every_shadow_put() {
        let cache = Arc::new(ShadowCache::new(SHADOW_CACHE_CARDS));
        let cards: Vec<CardId> = (0..20_000).map(card).collect();
        cache.put_beside(cards.iter().map(|&c| (c, (7, Box::new(Shadow::new(c))))).collect());
        // Not awaited: the take waits for the put on its other thread.
        let taken: Vec<Option<(i64, CardId)>> = cache
            .take_all(&cards)
            .into_iter()
            .map(|taken| taken.map(|(token, shadow)| (token, shadow.card())))
            .collect();
        assert_eq!(taken, cards.iter().map(|&card| Some((7, card))).collect::<Vec<_>>());
        assert!(cache.take_all(&cards[..1])[0].is_none(), "taken once");

        // A failed group's cards forgotten while its put runs: none is left behind by the put.
        cache.put_beside(cards.iter().map(|&c| (c, (8, Box::new(Shadow::new(c))))).collect());
        cache.forget(&cards);
        assert_eq!(cache.len(), 0, "the forget came after the put");
        cache.wait_for_puts();
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_put_its_runtime_never_runs_is_not_waited_for() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let handle = runtime.handle().clone();
        runtime.shutdown_background();
        let _inside = handle.enter();
        let cache = Arc::new(ShadowCache::new(SHADOW_CACHE_CARDS));
        cache.put_beside(vec![(card(1), (1, Box::new(Shadow::new(card(1)))))]);
        // The put was dropped unrun: the takes and forgets after it do not wait for ever.
        cache.wait_for_puts();
        assert!(cache.take_all(&[card(1)])[0].is_none());
        cache.clear();
    }

    #[test]
    fn the_last_committed_tokens_are_remembered() {
        let cache = ShadowCache::new(SHADOW_CACHE_CARDS);
        assert!(!cache.is_committed(7), "none before a commit");
        let total = COMMITTED_TOKENS as i64 + 10;
        for token in 0..total {
            cache.committed(token);
        }
        assert!((total - COMMITTED_TOKENS as i64..total).all(|token| cache.is_committed(token)));
        assert!((0..10).all(|token| !cache.is_committed(token)), "the oldest are forgotten");
    }

    #[test]
    fn a_card_put_again_replaces_its_older_entry() {
        let cache = ShadowCache::new(SHADOW_CACHE_CARDS);
        cache.put([(card(1), (1, Box::new(Shadow::new(card(1)))))]);
        cache.put([(card(1), (2, Box::new(Shadow::new(card(1)))))]);
        assert_eq!(cache.len(), 1);
        let taken = cache.take_all(&[card(1), card(1)]);
        assert_eq!(taken.iter().map(|t| t.as_ref().map(|(token, _)| *token)).collect::<Vec<_>>(), [Some(2), None]);
        cache.put([(card(2), (3, Box::new(Shadow::new(card(2)))))]);
        cache.forget(&[card(2)]);
        assert!(cache.take_all(&[card(2)])[0].is_none());
    }
}
