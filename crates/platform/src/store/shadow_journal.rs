//! On SQLite, an ingest group's card shadows go to a journal, one row for the whole group, and
//! reach their cards' rows in `card_shadows` later, many groups at once (a *fold*).
//!
//! Writing each card's row in every group was most of a group's write: a group's cards are spread
//! over the whole table, and each row is a B-tree update of its own (measured: 200,000 taps
//! ingested at 118,000–160,000 taps/s with the rows written per group, 197,000–213,000 without).
//! A group's journal row is one insert at the table's end, in the same transaction as its batches
//! (so as durable and as atomic).
//!
//! The journal holds the newest state of the cards it names: a card's shadow is its last journal
//! entry (by `seq`), else its row. So everything that reads the rows folds first
//! ([`Store::fold_shadow_journal`]: the newest entry of each card written to its row, the journal
//! emptied, in one transaction), except the ingest's own reads of the cards its cache does not
//! hold, which are checked instead:
//!
//! - **This store's groups.** The store remembers the cards it journaled since its last fold. A
//!   card read from its row that is one of them was read stale (taken from the cache by a group
//!   at once, or dropped from it), and the group's write is refused (`None`: it is read again
//!   after a fold). The cache keeps every card put in the last half of its bound, and the store
//!   folds once its groups journaled [`FOLD_CARDS`] (that half): a journaled card stays cached
//!   until it is folded. A fold, and a group that failed (whose shadows other groups
//!   may have been prepared on), start a new *generation*: a group prepared in an earlier one is
//!   refused.
//! - **Other stores on the same files** (another process, or another `Store` of this one). Every
//!   group's write advances `shadow_epoch` from the number its store last left there, or is
//!   refused: a store that finds it moved by another writer folds, forgets its whole cache and
//!   reads the database again.
//!
//! An opening folds what a store left (it crashed, or closed without folding). PostgreSQL writes
//! the rows per group, each a compare-and-swap on the token it was read with (`ingest_group`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use yitong_clearing::shadow::CardId;

use super::ingest_group::Written;
use super::shadow_cache::SHADOW_CACHE_CARDS;
use super::sql::{query, Db};
use super::{column, Backend, Store, StoreError};

/// Cards (counted once per group) journaled by a store before it folds: half the cache's bound,
/// so that a journaled card is still cached when a group wants it (the cache drops none of the
/// last half of its bound put). A fold writes each card it finds once, however many groups
/// journaled it, and the table's pages once, not once a group.
pub const FOLD_CARDS: usize = SHADOW_CACHE_CARDS / 2;

/// Rows per statement of a fold (6 parameters each, under SQLite's 32,766).
const FOLDED_PER_STATEMENT: usize = 5_000;

/// The journal's tables, made in the back office's file (on its writer's connection, after
/// `backoffice_file::split`).
pub(crate) fn make_tables(connection: &rusqlite::Connection) -> Result<(), StoreError> {
    Ok(connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS shadow_journal (
             seq INTEGER PRIMARY KEY,
             token BIGINT NOT NULL,
             at_ms BIGINT NOT NULL,
             entries BLOB NOT NULL
         );
         CREATE TABLE IF NOT EXISTS shadow_epoch (
             id INTEGER PRIMARY KEY CHECK (id = 1),
             n BIGINT NOT NULL
         );
         INSERT OR IGNORE INTO shadow_epoch (id, n) VALUES (1, 0);",
    )?)
}

/// What a store knows of the journal: its own writes since its last fold.
#[derive(Debug, Default)]
pub(crate) struct ShadowJournal {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    generation: u64,
    /// The epoch this store's last write or fold left.
    epoch: i64,
    /// The cards this store journaled since its last fold.
    journaled: HashSet<CardId>,
    /// Entries journaled since the last fold.
    entries: usize,
}

/// Why a group's shadows may not be journaled.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A card read stale, or a group prepared before a fold or a failure: read them again.
    Stale,
    /// Another store wrote: fold, forget the cache, read again.
    OtherWriter,
}

impl ShadowJournal {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The generation a group is prepared in (taken before its cards are).
    pub(crate) fn generation(&self) -> u64 {
        self.state().generation
    }

    /// A group failed: the groups prepared on its shadows are refused.
    pub(crate) fn failed(&self) {
        self.state().generation += 1;
    }

    /// Whether a fold is due (this store's groups journaled [`FOLD_CARDS`]).
    pub(crate) fn fold_due(&self) -> bool {
        self.state().entries >= FOLD_CARDS
    }

    /// As if this store had journaled `entries` cards since its last fold.
    #[cfg(test)]
    pub(crate) fn set_entries(&self, entries: usize) {
        self.state().entries = entries;
    }

    /// Checks a group's shadows before they are journaled, in the ingest turn.
    fn check(&self, generation: u64, shadows: &[Written]) -> Result<i64, Refused> {
        let state = self.state();
        let stale = generation != state.generation
            || shadows.iter().any(|written| !written.read.is_cached() && state.journaled.contains(&written.card));
        match stale {
            true => Err(Refused::Stale),
            false => Ok(state.epoch),
        }
    }

    /// A group's journal row committed, leaving the epoch at `epoch`.
    fn journaled(&self, shadows: &[Written], epoch: i64) {
        let mut state = self.state();
        state.epoch = epoch;
        state.entries += shadows.len();
        state.journaled.extend(shadows.iter().map(|written| written.card));
    }

    /// A fold committed (the epoch read in it): a new generation.
    fn folded(&self, epoch: i64) {
        let mut state = self.state();
        state.epoch = epoch;
        state.entries = 0;
        state.journaled.clear();
        state.generation += 1;
    }
}

/// A group's shadows journaled in its transaction `connection` (in the ingest turn), or folded
/// with the journal into their rows when a fold is due. `Err(Refused)`: nothing written, the
/// caller rolls back.
pub(super) async fn write_group_in(
    store: &Store,
    connection: &mut Db<'_>,
    generation: u64,
    shadows: &[Written],
    token: i64,
    now_ms: i64,
) -> Result<Result<Journaled, Refused>, StoreError> {
    let epoch = match store.journal.check(generation, shadows) {
        Ok(epoch) => epoch,
        Err(refused) => return Ok(Err(refused)),
    };
    let moved = query("UPDATE shadow_epoch SET n = n + 1 WHERE id = 1 AND n = $1")
        .bind(epoch)
        .execute(&mut *connection)
        .await?;
    if moved != 1 {
        return Ok(Err(Refused::OtherWriter));
    }
    let ours = shadows.iter().map(|written| Entry::of(written, token, now_ms));
    if store.journal.fold_due() {
        fold_in(connection, ours).await?;
        return Ok(Ok(Journaled { epoch: epoch + 1, folded: true }));
    }
    let mut entries = Vec::new();
    for entry in ours {
        entry.encode(&mut entries);
    }
    query("INSERT INTO shadow_journal (token, at_ms, entries) VALUES ($1, $2, $3)")
        .bind(token)
        .bind(now_ms)
        .bind(entries)
        .execute(&mut *connection)
        .await?;
    Ok(Ok(Journaled { epoch: epoch + 1, folded: false }))
}

/// What [`write_group_in`] did, for [`committed`] once the transaction commits.
pub(super) struct Journaled {
    epoch: i64,
    folded: bool,
}

/// The group's transaction committed.
pub(super) fn committed(store: &Store, shadows: &[Written], journaled: Journaled) {
    match journaled.folded {
        true => store.journal.folded(journaled.epoch),
        false => store.journal.journaled(shadows, journaled.epoch),
    }
}

impl Store {
    /// Writes the journal's newest shadows to their cards' rows and empties it (SQLite; nothing
    /// on PostgreSQL, or when the journal is empty). Every read of the shadows does it first; an
    /// ingest group does it once its store journaled [`FOLD_CARDS`]. Waits for the store's
    /// ingest groups to write.
    pub async fn fold_shadow_journal(&self) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let turn = self.ingest_turn.clone().lock_owned().await;
        self.fold_in_turn().await?;
        drop(turn);
        Ok(())
    }

    /// [`Store::fold_shadow_journal`] by a caller holding the ingest turn.
    pub(super) async fn fold_in_turn(&self) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let mut transaction = self.begin_backoffice_write().await?;
        let empty = query("SELECT NOT EXISTS (SELECT 1 FROM shadow_journal)").fetch_one(&mut transaction.db()).await?;
        if column::<i64>(&empty, 0)? == 0 {
            fold_in(&mut transaction.db(), std::iter::empty()).await?;
        }
        let epoch = query("SELECT n FROM shadow_epoch WHERE id = 1").fetch_one(&mut transaction.db()).await?;
        let epoch: i64 = column(&epoch, 0)?;
        transaction.commit().await?;
        self.journal.folded(epoch);
        Ok(())
    }

    /// Forgets every cached shadow: another store wrote.
    pub(super) fn forget_all_shadows(&self) {
        self.shadows.clear();
    }
}

/// The journal's newest entry of each card, then `newer` (newest of all), written to the cards'
/// rows; the journal emptied.
async fn fold_in(connection: &mut Db<'_>, newer: impl Iterator<Item = Entry>) -> Result<(), StoreError> {
    let mut newest: BTreeMap<CardId, Entry> = BTreeMap::new();
    let rows =
        query("SELECT seq, token, at_ms, entries FROM shadow_journal ORDER BY seq").fetch_all(&mut *connection).await?;
    for row in &rows {
        let (seq, token, at_ms, entries): (i64, i64, i64, Vec<u8>) =
            (column(row, 0)?, column(row, 1)?, column(row, 2)?, column(row, 3)?);
        let mut rest = entries.as_slice();
        while !rest.is_empty() {
            let entry = Entry::decode(&mut rest, token, at_ms).ok_or_else(|| StoreError::Corrupt {
                table: "shadow_journal",
                key: seq.to_string(),
                why: "an entry is cut short".into(),
            })?;
            newest.insert(entry.card, entry);
        }
    }
    for entry in newer {
        newest.insert(entry.card, entry);
    }
    let entries: Vec<Entry> = newest.into_values().collect();
    for chunk in entries.chunks(FOLDED_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO card_shadows (issuer_id, card_serial, packed, balance_fen, version, updated_at_ms) \
             VALUES {} ON CONFLICT (issuer_id, card_serial) DO UPDATE SET state = NULL, packed = excluded.packed, \
             balance_fen = excluded.balance_fen, version = excluded.version, updated_at_ms = excluded.updated_at_ms",
            super::clearing::placeholders(Backend::Sqlite, chunk.len(), 6)
        );
        let mut statement = query(&sql);
        for entry in chunk {
            statement = statement
                .bind(hex::encode_upper(entry.card.issuer_id))
                .bind(hex::encode_upper(entry.card.card_serial))
                .bind(entry.packed.as_slice())
                .bind(entry.balance_fen)
                .bind(entry.token)
                .bind(entry.at_ms);
        }
        statement.execute(&mut *connection).await?;
    }
    query("DELETE FROM shadow_journal").execute(&mut *connection).await?;
    Ok(())
}

/// A card's shadow as journaled: in a row's `entries`, the card (8 + 10 bytes), its balance (a
/// byte 0 or 1, then 8 bytes little-endian), the packed shadow's length (4 bytes little-endian)
/// and the packed shadow (`Shadow::pack`); the token and time are the row's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    card: CardId,
    balance_fen: Option<i64>,
    packed: Vec<u8>,
    token: i64,
    at_ms: i64,
}

impl Entry {
    fn of(written: &Written, token: i64, at_ms: i64) -> Entry {
        Entry { card: written.card, balance_fen: written.balance_fen, packed: written.packed.clone(), token, at_ms }
    }

    fn encode(&self, into: &mut Vec<u8>) {
        into.extend_from_slice(&self.card.issuer_id);
        into.extend_from_slice(&self.card.card_serial);
        into.push(u8::from(self.balance_fen.is_some()));
        into.extend_from_slice(&self.balance_fen.unwrap_or_default().to_le_bytes());
        // A packed shadow is far below 4 GiB (a card's day of taps is a few hundred bytes).
        into.extend_from_slice(&u32::try_from(self.packed.len()).unwrap_or(u32::MAX).to_le_bytes());
        into.extend_from_slice(&self.packed);
    }

    /// The next entry of `rest` (advanced past it); `None` when it is cut short.
    fn decode(rest: &mut &[u8], token: i64, at_ms: i64) -> Option<Entry> {
        let issuer_id: [u8; 8] = take(rest, 8)?.try_into().ok()?;
        let card_serial: [u8; 10] = take(rest, 10)?.try_into().ok()?;
        let has_balance = take(rest, 1)?[0];
        let balance = i64::from_le_bytes(take(rest, 8)?.try_into().ok()?);
        let length = u32::from_le_bytes(take(rest, 4)?.try_into().ok()?);
        let packed = take(rest, usize::try_from(length).ok()?)?.to_vec();
        Some(Entry {
            card: CardId { issuer_id, card_serial },
            balance_fen: (has_balance == 1).then_some(balance),
            packed,
            token,
            at_ms,
        })
    }
}

/// The first `n` bytes of `rest`, which is advanced past them.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(n: u8) -> CardId {
        CardId { issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1], card_serial: [0, 0, 0, 0, 0, 0, 0, 0, 0, n] }
    }

    #[test]
    fn entries_read_back_as_written_and_a_cut_one_is_told() {
        let written = [
            Entry { card: card(1), balance_fen: Some(-7), packed: vec![1, 2, 3], token: 9, at_ms: 5 },
            Entry { card: card(2), balance_fen: None, packed: Vec::new(), token: 9, at_ms: 5 },
        ];
        let mut bytes = Vec::new();
        for entry in &written {
            entry.encode(&mut bytes);
        }
        // 8 + 10 + 1 + 8 + 4 bytes before each packed shadow.
        assert_eq!(bytes.len(), 2 * 31 + 3);
        let mut rest = bytes.as_slice();
        let read: Vec<Entry> = std::iter::from_fn(|| Entry::decode(&mut rest, 9, 5)).collect();
        assert_eq!(read, written);
        assert!(rest.is_empty());
        for cut in [1, 20, 31, 33] {
            let mut rest = &bytes[..cut];
            assert_eq!(Entry::decode(&mut rest, 9, 5), None, "cut at {cut}");
        }
    }

    #[test]
    fn a_fold_or_a_failure_starts_a_generation_and_a_fold_forgets_the_cards() {
        let journal = ShadowJournal::default();
        let generation = journal.generation();
        journal.failed();
        assert_ne!(journal.generation(), generation);
        journal.state().journaled.insert(card(1));
        journal.state().entries = FOLD_CARDS;
        assert!(journal.fold_due());
        let before = journal.generation();
        journal.folded(12);
        let state = journal.state();
        assert_eq!((state.epoch, state.entries, state.journaled.len()), (12, 0, 0));
        assert_eq!(state.generation, before + 1);
    }
}
