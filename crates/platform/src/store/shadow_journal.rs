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
//! entry (by `seq`), else its row. A *fold* writes the newest entry of each card to its row and
//! empties the journal, in one transaction ([`Store::fold_shadow_journal`]): when the store's
//! groups have journaled half their cache's bound of cards, each counted once, or four times as
//! many entries ([`ShadowJournal::new`]; in that group's transaction), at closing and at opening
//! (what a store that stopped left). Every read
//! of the rows takes a snapshot in which the journal is empty ([`Store::begin_shadow_snapshot`]:
//! it folds first, and takes the snapshot again should another store's group commit in
//! between). The ingest reads the rows of the cards its
//! cache does not hold without folding; a group's write is refused (`None`: the caller reads it
//! again after a fold) unless:
//!
//! - **every card this store journaled is read as its last entry**: a row is older (unless
//!   folded: its version is then that token), and a cached shadow under another token was read
//!   before another caller of the store (the upload queue, the platform's feed) took the row and
//!   wrote first. The cache keeps every card put in the last half of its bound, and a store
//!   folds once it journaled that many, so a journaled card is normally still cached when a
//!   group wants it (not when a group's cards outnumber half the bound: its own put drops some;
//!   refused, the group is taken again from the database, as a test shows);
//! - **no shadow comes from the cache under the token of a group still to commit** (this one would
//!   write before the group it is built on) **or of one that failed** (refused, failed, or dropped
//!   before its write: its cached cards are forgotten then);
//! - **a group built on the cache was prepared since the store last forgot those tokens** (a
//!   *generation*: at a fold made by a group's write, which keeps the store's memory bounded, or
//!   when another store wrote); a fold made for a read keeps them, since a folded row's version
//!   is its last entry's token. A group prepared in the generation just before, beside the write
//!   that folded (the upload queue feeds the next group then), is checked against the tokens as
//!   they stood at that fold too, kept until the store's groups' next fold;
//! - **no other store wrote since this one's last write**: every write advances `shadow_epoch`
//!   from the number its store last left there. A store that finds it moved by another (another
//!   process, or another `Store` on the same files) — at a write or at a fold — forgets its whole
//!   cache and reads the rows again.
//!
//! Writers that do not follow this (an older binary, a row edited by hand) are not seen: stop
//! every service before either. PostgreSQL writes the rows per group, each a compare-and-swap on
//! the token it was read with (`ingest_group`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use yitong_clearing::shadow::CardId;

use super::clearing::{upper_hex, Read};
use super::ingest_group::Written;
use super::ingest_queue::GROUP_RECORDS_MAX;
use super::sql::{query, Db};
use super::{column, Backend, Snapshot, Store, StoreError};

/// Snapshots taken before [`Store::begin_shadow_snapshot`] gives up (each time another store's
/// group committed between its fold and its snapshot).
const SNAPSHOT_ATTEMPTS: u32 = 8;

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
#[derive(Debug)]
pub(crate) struct ShadowJournal {
    state: Mutex<State>,
    /// Cards journaled (each counted once) before a group's write folds.
    fold_cards: usize,
    /// Entries journaled (a card a group) before a group's write folds.
    fold_entries: usize,
}

/// Entries a store journals before a group's write folds, for each card it may journal: a card
/// rides several times a day, and each fold writes it once however many groups journaled it.
const ENTRIES_A_CARD: usize = 4;

#[derive(Debug, Default)]
struct State {
    generation: u64,
    /// The epoch this store's last write or fold left.
    epoch: i64,
    /// The cards this store journaled since its last fold, each with its last entry.
    journaled: HashMap<CardId, Last>,
    /// The same as they were at the last fold made by a group's write (that group's cards
    /// included), for the groups prepared in the generation before it; `None` when such groups are
    /// refused (another store wrote, or no such fold yet).
    before_fold: Option<HashMap<CardId, Last>>,
    /// The tokens of the rows this store journaled since the journal was last emptied by its
    /// folds: when every row is one of them, a fold reads each card's last entry where it lies.
    rows: HashSet<i64>,
    /// Entries (a card a group) journaled since the last fold.
    entries: usize,
    /// The tokens of groups prepared (their shadows cached) and not yet committed or failed.
    pending: HashSet<i64>,
    /// The tokens of the last [`FAILED_TOKENS`] groups that did not commit, oldest first: the
    /// groups prepared on their shadows meanwhile are refused.
    failed: VecDeque<i64>,
}

/// A card's last entry: its group's token, and where the entry starts in that group's row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Last {
    token: i64,
    offset: usize,
}

/// Tokens of failed groups remembered: far more than the groups prepared at once.
const FAILED_TOKENS: usize = 1_024;

/// Why a group's shadows may not be journaled.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A card read stale, or a group prepared before a fold or a failure: read them again.
    Stale,
    /// Another store wrote: fold, forget the cache, read again.
    OtherWriter,
}

impl ShadowJournal {
    /// The journal of a store whose cache keeps `cache_cards`: a group's write folds it once
    /// half as many cards were journaled (at least 1; [`ShadowJournal::fold_due`]), so that a
    /// journaled card is normally still
    /// cached when a group wants it (the cache drops none of the last half of its bound put; but
    /// groups that did not commit put cards too, and a journaled card read from its row is
    /// refused and read again after a fold). A fold writes each card it finds once, however many
    /// groups journaled it, and the table's pages once, not once a group.
    pub(crate) fn new(cache_cards: usize) -> ShadowJournal {
        let fold_cards = (cache_cards / 2).max(1);
        ShadowJournal { state: Mutex::default(), fold_cards, fold_entries: fold_cards.saturating_mul(ENTRIES_A_CARD) }
    }

    /// Cards journaled (each counted once) before a group's write folds.
    pub(crate) fn fold_cards(&self) -> usize {
        self.fold_cards
    }

    /// Entries journaled (a card a group) before a group's write folds.
    #[cfg(test)]
    pub(crate) fn fold_entries(&self) -> usize {
        self.fold_entries
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The generation a group is prepared in (taken before its cards are).
    pub(crate) fn generation(&self) -> u64 {
        self.state().generation
    }

    /// A group of `token` is prepared: its shadows are about to be cached.
    pub(crate) fn prepared(&self, token: i64) {
        self.state().pending.insert(token);
    }

    /// The group of `token` committed.
    pub(crate) fn settled(&self, token: i64) {
        self.state().pending.remove(&token);
    }

    /// The group of `token` did not commit: the groups prepared on its shadows are refused.
    pub(crate) fn failed(&self, token: i64) {
        let mut state = self.state();
        state.pending.remove(&token);
        if state.failed.len() >= FAILED_TOKENS {
            state.failed.pop_front();
        }
        state.failed.push_back(token);
    }

    /// Whether a group's write should fold: this store remembers [`ShadowJournal::fold_cards`]
    /// cards' last tokens (folds by reads keep them), or the journal holds [`ENTRIES_A_CARD`] times
    /// as many of this store's entries (its size on disk, and a fold's reading, stay bounded).
    pub(crate) fn fold_due(&self) -> bool {
        let state = self.state();
        state.journaled.len() >= self.fold_cards || state.entries >= self.fold_entries
    }

    /// As if this store had journaled `entries` entries (a card a group) since its last fold.
    #[cfg(test)]
    pub(crate) fn set_entries(&self, entries: usize) {
        self.state().entries = entries;
    }

    /// Checks a group's shadows before they are journaled, in the ingest turn: a group built on
    /// the cache (`generation`) in the generation it was prepared in (no fold since); no shadow
    /// taken from the cache under the token of a group still to commit (this one would write
    /// first) or one that failed; every card this store journaled since its last fold read as
    /// its last entry (cached under that entry's token: a row is older, and another cached token
    /// is another group's).
    ///
    /// A group prepared in the generation before (while a group's write folded) is checked against
    /// the cards' last tokens as they were at that fold too: a row it read before the fold
    /// committed is older than the token the fold wrote, and one read after is that token.
    fn check(&self, generation: Option<u64>, shadows: &[Written]) -> Result<i64, Refused> {
        let state = self.state();
        let before_fold = match generation {
            Some(generation) if generation == state.generation => None,
            Some(generation) if generation.wrapping_add(1) == state.generation && state.before_fold.is_some() => {
                state.before_fold.as_ref()
            }
            Some(_) => return Err(Refused::Stale),
            None => None,
        };
        let last =
            |card: &CardId| state.journaled.get(card).or_else(|| before_fold.and_then(|tokens| tokens.get(card)));
        let stale = shadows.iter().any(|written| {
            matches!(written.read, Read::Cached(token)
                if state.pending.contains(&token) || state.failed.contains(&token))
                || last(&written.card).is_some_and(|last| written.read.token() != Some(last.token))
        });
        match stale {
            true => Err(Refused::Stale),
            false => Ok(state.epoch),
        }
    }

    /// A group's journal row (its shadows under `token`, each entry at its offset in `offsets`)
    /// committed, leaving the epoch at `epoch`.
    fn journaled(&self, shadows: &[Written], offsets: &[usize], token: i64, epoch: i64) {
        let mut state = self.state();
        state.epoch = epoch;
        state.entries += shadows.len();
        state.rows.insert(token);
        state
            .journaled
            .extend(shadows.iter().zip(offsets).map(|(written, &offset)| (written.card, Last { token, offset })));
    }

    /// A group's write (`shadows` under `token`) folded the journal, leaving the epoch at `epoch`:
    /// the cards' last tokens are kept for the groups prepared meanwhile and forgotten at the
    /// next such fold (the store's memory stays bounded); a generation starts.
    fn folded_in_group(&self, shadows: &[Written], token: i64, epoch: i64) {
        let mut state = self.state();
        state.epoch = epoch;
        state.entries = 0;
        state.rows.clear();
        let mut last = std::mem::take(&mut state.journaled);
        // Folded: the offset is never read.
        last.extend(shadows.iter().map(|written| (written.card, Last { token, offset: 0 })));
        state.before_fold = Some(last);
        state.generation += 1;
    }

    /// A fold outside a group's write (for a read, a retry, an opening or a closing; perhaps
    /// of nothing) committed, the epoch read in it being `epoch`. The cards' last tokens are
    /// kept: a folded row's version is its last entry's token, so they still tell a stale read.
    /// An epoch other than the one this store left means another store wrote since: its tokens
    /// may be stale too, they are forgotten, a generation starts, and `true` is answered (the
    /// caller forgets its whole cache).
    fn folded_by_look(&self, epoch: i64) -> bool {
        let mut state = self.state();
        state.entries = 0;
        state.rows.clear();
        let moved = epoch != state.epoch;
        if moved {
            state.epoch = epoch;
            state.journaled.clear();
            state.before_fold = None;
            state.generation += 1;
        }
        moved
    }

    /// Where the last entries of the journal's cards lie, when this store wrote every row of it
    /// (`tokens`: the rows' tokens, in the order the fold reads them): per card not among `ours`
    /// (sorted by card), the index of its row in `tokens` and the entry's offset there, in the
    /// rows' order. `None` when a row is another's (another store's, or left by a store that
    /// stopped): the fold then reads every entry.
    fn newest_entries(&self, tokens: &[i64], ours: &[Written]) -> Option<Vec<(usize, usize, CardId)>> {
        let state = self.state();
        let index: HashMap<i64, usize> = tokens.iter().enumerate().map(|(index, &token)| (token, index)).collect();
        if index.keys().any(|token| !state.rows.contains(token)) {
            return None;
        }
        let mut wanted: Vec<(usize, usize, CardId)> = state
            .journaled
            .iter()
            .filter(|(card, _)| ours.binary_search_by(|written| written.card.cmp(card)).is_err())
            // A card whose last entry's row is gone was folded with it.
            .filter_map(|(card, last)| Some((*index.get(&last.token)?, last.offset, *card)))
            .collect();
        drop(state);
        wanted.sort_unstable();
        Some(wanted)
    }
}

/// A group's shadows journaled in its transaction `connection` (in the ingest turn), or folded
/// with the journal into their rows when `fold` (the caller read [`ShadowJournal::fold_due`] in
/// the same turn). `Err(Refused)`: nothing written, the caller rolls back.
pub(super) async fn write_group_in(
    store: &Store,
    connection: &mut Db<'_>,
    generation: Option<u64>,
    shadows: &[Written],
    (token, now_ms): (i64, i64),
    fold: bool,
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
    if fold {
        fold_in(connection, Some(Ours { shadows, token, at_ms: now_ms }), &store.journal)?;
        return Ok(Ok(Journaled { token, epoch: epoch + 1, folded: true, offsets: Vec::new() }));
    }
    // Sized once: a group's entries are megabytes.
    let mut entries = Vec::with_capacity(shadows.iter().map(|written| ENTRY_HEAD + written.packed.len()).sum());
    let mut offsets = Vec::with_capacity(shadows.len());
    for written in shadows {
        offsets.push(entries.len());
        encode_entry(&mut entries, &written.card, written.balance_fen, &written.packed)?;
    }
    query("INSERT INTO shadow_journal (token, at_ms, entries) VALUES ($1, $2, $3)")
        .bind(token)
        .bind(now_ms)
        .bind(entries)
        .execute(&mut *connection)
        .await?;
    Ok(Ok(Journaled { token, epoch: epoch + 1, folded: false, offsets }))
}

/// What [`write_group_in`] did, for [`committed`] once the transaction commits.
pub(super) struct Journaled {
    token: i64,
    epoch: i64,
    folded: bool,
    /// Where each shadow's entry starts in the row (none when folded).
    offsets: Vec<usize>,
}

/// The group's transaction committed.
pub(super) fn committed(store: &Store, shadows: &[Written], journaled: Journaled) {
    match journaled.folded {
        true => store.journal.folded_in_group(shadows, journaled.token, journaled.epoch),
        false => store.journal.journaled(shadows, &journaled.offsets, journaled.token, journaled.epoch),
    }
}

impl Store {
    /// Writes the journal's newest shadows to their cards' rows and empties it (SQLite; nothing
    /// on PostgreSQL, or when the journal is empty), as openings, closings and reads of the rows
    /// do (an ingest group does it in its own write once its store journaled
    /// [`ShadowJournal::fold_cards`]).
    /// Waits for the store's ingest groups to write.
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
        let folded = column::<i64>(&empty, 0)? == 0;
        if folded {
            fold_in(&mut transaction.db(), None, &self.journal)?;
        }
        let epoch = query("SELECT n FROM shadow_epoch WHERE id = 1").fetch_one(&mut transaction.db()).await?;
        let epoch: i64 = column(&epoch, 0)?;
        match folded {
            true => transaction.commit().await?,
            false => transaction.rollback().await?,
        }
        if self.journal.folded_by_look(epoch) {
            // Another store wrote since this one's last write: any card cached may be stale.
            self.forget_all_shadows();
        }
        Ok(())
    }

    /// A snapshot in which every card's shadow is in its row, for the reads of the rows: on
    /// SQLite taken (at its first read) while this store's groups wait, with the journal found
    /// empty in it; else the journal is folded and it is taken again (another store's group may
    /// commit between the two). On PostgreSQL a snapshot.
    pub(crate) async fn begin_shadow_snapshot(&self) -> Result<Snapshot, StoreError> {
        if self.backend != Backend::Sqlite {
            return self.begin_snapshot().await;
        }
        for _ in 0..SNAPSHOT_ATTEMPTS {
            let turn = self.ingest_turn.clone().lock_owned().await;
            let mut snapshot = self.begin_snapshot().await?;
            let row = query("SELECT EXISTS (SELECT 1 FROM shadow_journal)").fetch_one(&mut snapshot.db()).await?;
            if column::<i64>(&row, 0)? == 0 {
                return Ok(snapshot);
            }
            drop(snapshot);
            self.fold_in_turn().await?;
            drop(turn);
        }
        Err(StoreError::Contended(SNAPSHOT_ATTEMPTS))
    }

    /// Forgets every cached shadow: another store wrote.
    pub(super) fn forget_all_shadows(&self) {
        self.shadows.clear();
    }
}

/// A group's own shadows, folded with the journal in its write (newest of all).
struct Ours<'a> {
    shadows: &'a [Written],
    token: i64,
    at_ms: i64,
}

/// A card's newest shadow found by a fold; its packed bytes in the fold's buffer.
struct Folded {
    card: CardId,
    balance_fen: Option<i64>,
    token: i64,
    at_ms: i64,
    packed: std::ops::Range<usize>,
}

/// The newest shadows a fold found: their packed bytes in one buffer, reserved at once (it never
/// moves, and only the pages it uses are touched).
struct Collected {
    packed: Vec<u8>,
    folded: Vec<Folded>,
    /// The cards kept, when entries of a card may come more than once (every entry read).
    seen: Option<HashSet<CardId>>,
}

impl Collected {
    /// Keeps a card's shadow unless one of it was kept already.
    fn keep(&mut self, card: CardId, balance_fen: Option<i64>, token: i64, at_ms: i64, bytes: &[u8]) {
        if self.seen.as_mut().is_some_and(|seen| !seen.insert(card)) {
            return;
        }
        let start = self.packed.len();
        self.packed.extend_from_slice(bytes);
        self.folded.push(Folded { card, balance_fen, token, at_ms, packed: start..self.packed.len() });
    }
}

/// Writes the newest shadow of each card — `ours`, then the journal's — to the cards' rows, in
/// the cards' order, and empties the journal. Natively on SQLite's connection: a fold writes most
/// of the table, and copies no more than each card's newest packed shadow, once. When this store
/// wrote every row of the journal it knows where each card's last entry lies and reads those
/// alone ([`ShadowJournal::newest_entries`]); else it reads every entry, newest row first,
/// keeping a card's first. Measured: reading the rows as owned values and each entry into a map
/// of its own was most of a fold's time; writing each entry from the row it lies in, with no
/// copy, was slower than this (the cards out of order); on the peak day, looking every entry up
/// in a set of the cards kept was a sixth of the fold.
fn fold_in(connection: &mut Db<'_>, ours: Option<Ours<'_>>, journal: &ShadowJournal) -> Result<(), StoreError> {
    let (Db::Sqlite(connection) | Db::SqliteReport(connection)) = connection else {
        return Err(StoreError::Database(sqlx::Error::Protocol("the shadow journal is SQLite's".into())));
    };
    // The rows' tokens, newest first (their entries are not read: a row's pages beyond its first
    // are not touched).
    let tokens = connection
        .prepare_cached("SELECT token FROM shadow_journal ORDER BY seq DESC")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<Vec<i64>, _>>()?;
    let ours_shadows = ours.as_ref().map_or(&[][..], |ours| ours.shadows);
    if let Some(wanted) = journal.newest_entries(&tokens, ours_shadows) {
        match collect(connection, ours.as_ref(), Some(&wanted), journal.fold_cards())? {
            Some(collected) => return write_folded(connection, collected),
            None => tracing::warn!("a card's last journal entry was not where this store wrote it; every entry read"),
        }
    }
    let collected = collect(connection, ours.as_ref(), None, journal.fold_cards())?
        .ok_or_else(|| StoreError::Corrupt { table: "shadow_journal", key: String::new(), why: "not read".into() })?;
    write_folded(connection, collected)
}

/// The newest shadow of each card: `ours`, then the journal's — the entries at `wanted` (row
/// index in the rows newest first, offset; in that order), or every entry. `None` when a wanted
/// entry is not there.
fn collect(
    connection: &rusqlite::Connection,
    ours: Option<&Ours<'_>>,
    wanted: Option<&[(usize, usize, CardId)]>,
    fold_cards: usize,
) -> Result<Option<Collected>, StoreError> {
    // Room for every entry (SQLite tells a blob's length without reading it).
    let journal: i64 = connection
        .prepare_cached("SELECT COALESCE(SUM(length(entries)), 0) FROM shadow_journal")?
        .query_row([], |row| row.get(0))?;
    let journal_bytes = usize::try_from(journal).unwrap_or(0);
    let ours_bytes = ours.map_or(0, |ours| ours.shadows.iter().map(|written| written.packed.len()).sum());
    // As many cards as are wanted, or as the entries can hold (each at least its head) up to a
    // group's fold (the cards journaled, the last group's beyond the bound, and ours): a read's
    // fold of one row reserves little.
    let ours_cards = ours.map_or(0, |ours| ours.shadows.len());
    let cards = match wanted {
        Some(wanted) => wanted.len() + ours_cards,
        None => (journal_bytes / ENTRY_HEAD + ours_cards).min(fold_cards + GROUP_RECORDS_MAX + ours_cards),
    };
    let mut collected = Collected {
        packed: Vec::with_capacity(journal_bytes.saturating_add(ours_bytes)),
        folded: Vec::with_capacity(cards),
        seen: wanted.is_none().then(|| HashSet::with_capacity(cards)),
    };
    if let Some(ours) = ours {
        for written in ours.shadows {
            collected.keep(written.card, written.balance_fen, ours.token, ours.at_ms, &written.packed);
        }
    }
    let mut rows =
        connection.prepare_cached("SELECT seq, token, at_ms, entries FROM shadow_journal ORDER BY seq DESC")?;
    let mut rows = rows.raw_query();
    let (mut index, mut next) = (0, 0);
    while let Some(row) = rows.next()? {
        let (seq, token, at_ms): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let corrupt = |why: String| StoreError::Corrupt { table: "shadow_journal", key: seq.to_string(), why };
        let entries = row.get_ref(3)?.as_blob().map_err(|error| corrupt(format!("entries: {error}")))?;
        match wanted {
            Some(wanted) => {
                while let Some(&(_, offset, card)) = wanted.get(next).filter(|(row, _, _)| *row == index) {
                    next += 1;
                    let mut rest = entries.get(offset..).unwrap_or_default();
                    match EntryRef::decode(&mut rest) {
                        Some(entry) if entry.card == card => {
                            collected.keep(entry.card, entry.balance_fen, token, at_ms, entry.packed)
                        }
                        _ => return Ok(None),
                    }
                }
            }
            None => {
                let mut rest = entries;
                while !rest.is_empty() {
                    let entry = EntryRef::decode(&mut rest)
                        .ok_or_else(|| corrupt("an entry is cut short or malformed".into()))?;
                    collected.keep(entry.card, entry.balance_fen, token, at_ms, entry.packed);
                }
            }
        }
        index += 1;
    }
    if wanted.is_some_and(|wanted| next != wanted.len()) {
        return Ok(None);
    }
    Ok(Some(collected))
}

/// Writes the shadows a fold collected to their cards' rows, in the cards' order, and empties
/// the journal.
fn write_folded(connection: &rusqlite::Connection, collected: Collected) -> Result<(), StoreError> {
    let Collected { packed, mut folded, .. } = collected;
    folded.sort_unstable_by_key(|folded| folded.card);
    let mut upsert = connection.prepare_cached(
        "INSERT INTO card_shadows (issuer_id, card_serial, packed, balance_fen, version, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (issuer_id, card_serial) DO UPDATE SET state = NULL, \
         packed = excluded.packed, balance_fen = excluded.balance_fen, version = excluded.version, \
         updated_at_ms = excluded.updated_at_ms",
    )?;
    let (mut issuer, mut serial) = ([0; 16], [0; 20]);
    for card in &folded {
        let bytes = packed.get(card.packed.clone()).ok_or_else(|| StoreError::Corrupt {
            table: "shadow_journal",
            key: card.card.to_string(),
            why: "an entry outside the fold's buffer".into(),
        })?;
        upsert.execute(rusqlite::params![
            upper_hex(&card.card.issuer_id, &mut issuer)?,
            upper_hex(&card.card.card_serial, &mut serial)?,
            bytes,
            card.balance_fen,
            card.token,
            card.at_ms,
        ])?;
    }
    connection.prepare_cached("DELETE FROM shadow_journal")?.execute([])?;
    Ok(())
}

/// Bytes of a journal entry before its packed shadow.
const ENTRY_HEAD: usize = 8 + 10 + 1 + 8 + 4;

/// Appends a card's journal entry to a row's `entries`: the card (8 + 10 bytes), its balance (a
/// byte 0 or 1, then 8 bytes little-endian), the packed shadow's length (4 bytes little-endian)
/// and the packed shadow (`Shadow::pack`); the token and time are the row's.
fn encode_entry(into: &mut Vec<u8>, card: &CardId, balance_fen: Option<i64>, packed: &[u8]) -> Result<(), StoreError> {
    let length = u32::try_from(packed.len()).map_err(|_| StoreError::Corrupt {
        table: "shadow_journal",
        key: card.to_string(),
        why: format!("a packed shadow of {} bytes", packed.len()),
    })?;
    into.extend_from_slice(&card.issuer_id);
    into.extend_from_slice(&card.card_serial);
    into.push(u8::from(balance_fen.is_some()));
    into.extend_from_slice(&balance_fen.unwrap_or_default().to_le_bytes());
    into.extend_from_slice(&length.to_le_bytes());
    into.extend_from_slice(packed);
    Ok(())
}

/// A journal entry read in place ([`encode_entry`]).
#[derive(Debug, PartialEq, Eq)]
struct EntryRef<'a> {
    card: CardId,
    balance_fen: Option<i64>,
    packed: &'a [u8],
}

impl<'a> EntryRef<'a> {
    /// The next entry of `rest` (advanced past it); `None` when it is cut short or malformed.
    fn decode(rest: &mut &'a [u8]) -> Option<EntryRef<'a>> {
        let issuer_id: [u8; 8] = take(rest, 8)?.try_into().ok()?;
        let card_serial: [u8; 10] = take(rest, 10)?.try_into().ok()?;
        let has_balance = *take(rest, 1)?.first().filter(|&&flag| flag <= 1)?;
        let balance = i64::from_le_bytes(take(rest, 8)?.try_into().ok()?);
        let length = u32::from_le_bytes(take(rest, 4)?.try_into().ok()?);
        let packed = take(rest, usize::try_from(length).ok()?)?;
        Some(EntryRef {
            card: CardId { issuer_id, card_serial },
            balance_fen: (has_balance == 1).then_some(balance),
            packed,
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
    use crate::store::shadow_cache::SHADOW_CACHE_CARDS;

    fn card(n: u8) -> CardId {
        CardId { issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1], card_serial: [0, 0, 0, 0, 0, 0, 0, 0, 0, n] }
    }

    #[test]
    fn entries_read_back_as_written_and_a_cut_one_is_told() {
        let written = [
            EntryRef { card: card(1), balance_fen: Some(-7), packed: &[1, 2, 3] },
            EntryRef { card: card(2), balance_fen: None, packed: &[] },
        ];
        let mut bytes = Vec::new();
        for entry in &written {
            encode_entry(&mut bytes, &entry.card, entry.balance_fen, entry.packed).expect("encodes");
        }
        // 8 + 10 + 1 + 8 + 4 bytes before each packed shadow.
        assert_eq!(bytes.len(), 2 * 31 + 3);
        let mut rest = bytes.as_slice();
        let read: Vec<EntryRef<'_>> = std::iter::from_fn(|| EntryRef::decode(&mut rest)).collect();
        assert_eq!(read, written);
        assert!(rest.is_empty());
        for cut in [1, 20, 31, 33] {
            let mut rest = &bytes[..cut];
            assert_eq!(EntryRef::decode(&mut rest), None, "cut at {cut}");
        }
        // A balance flag other than 0 or 1 is no entry.
        let mut bad = bytes.clone();
        bad[18] = 2;
        assert_eq!(EntryRef::decode(&mut bad.as_slice()), None);
    }

    #[test]
    fn a_group_folds_at_half_the_cache_s_cards_or_four_times_as_many_entries() {
        // A cache of 8: 4 cards, 16 entries.
        let journal = ShadowJournal::new(8);
        assert_eq!((journal.fold_cards(), journal.fold_entries()), (4, 16));
        // Three cards journaled by 15 groups between them: not yet.
        journal.state().journaled.extend((1..=3).map(|n| (card(n), Last { token: 5, offset: 0 })));
        journal.state().entries = 15;
        assert!(!journal.fold_due());
        journal.state().entries = 16;
        assert!(journal.fold_due(), "the sixteenth entry");
        // A fourth card, whatever the entries.
        journal.state().entries = 4;
        journal.state().journaled.insert(card(4), Last { token: 6, offset: 0 });
        assert!(journal.fold_due(), "the fourth card");
    }

    #[test]
    fn a_failed_token_is_remembered_and_only_a_groups_fold_or_another_stores_write_forgets_the_tokens() {
        let journal = ShadowJournal::new(SHADOW_CACHE_CARDS);
        let generation = journal.generation();
        journal.prepared(7);
        journal.failed(7);
        assert_eq!(journal.generation(), generation, "a failure is told by its token");
        let state = journal.state();
        assert!(state.pending.is_empty() && state.failed.contains(&7));
        drop(state);
        journal.state().journaled.insert(card(1), Last { token: 5, offset: 0 });
        journal.state().entries = journal.fold_entries();
        assert!(journal.fold_due());
        let before = journal.generation();
        // A fold by a look, the epoch where this store left it: the last tokens are kept.
        assert!(!journal.folded_by_look(0));
        let state = journal.state();
        assert_eq!((state.entries, state.journaled.len(), state.generation), (0, 1, before));
        drop(state);
        // The epoch moved: another store wrote; the tokens are forgotten, a generation starts.
        assert!(journal.folded_by_look(12));
        let state = journal.state();
        assert_eq!((state.epoch, state.journaled.len(), state.generation), (12, 0, before + 1));
        drop(state);
        // A group's fold starts a generation too, its tokens kept aside for the groups prepared
        // before it.
        journal.state().journaled.insert(card(1), Last { token: 5, offset: 0 });
        journal.folded_in_group(&[], 6, 13);
        let state = journal.state();
        assert_eq!((state.epoch, state.journaled.len(), state.generation), (13, 0, before + 2));
        assert_eq!(state.before_fold.as_ref().map(|tokens| tokens.get(&card(1)).map(|last| last.token)), Some(Some(5)));
    }

    fn written(card: CardId, read: Read) -> Written {
        Written { card, read, packed: Vec::new(), balance_fen: None }
    }

    #[test]
    fn a_group_prepared_before_a_groups_fold_is_checked_against_the_tokens_the_fold_wrote() {
        let journal = ShadowJournal::new(SHADOW_CACHE_CARDS);
        journal.journaled(&[written(card(1), Read::New)], &[0], 5, 1);
        let before = journal.generation();
        // Group 9 folds; its card 2 and the journal's card 1 are written to their rows.
        journal.folded_in_group(&[written(card(2), Read::New)], 9, 2);
        // Card 1 read from its row after the fold (token 5), card 2 from the cache (token 9), card 3
        // never journaled: the group prepared before the fold may write.
        let fresh = [written(card(1), Read::Stored(5)), written(card(2), Read::Cached(9)), written(card(3), Read::New)];
        assert_eq!(journal.check(Some(before), &fresh), Ok(2));
        // Card 1's row read before the fold committed (token 4), or card 2 as new: refused.
        assert_eq!(journal.check(Some(before), &[written(card(1), Read::Stored(4))]), Err(Refused::Stale));
        assert_eq!(journal.check(Some(before), &[written(card(2), Read::New)]), Err(Refused::Stale));
        // A card journaled since the fold is checked against its newer token.
        journal.journaled(&[written(card(1), Read::Stored(5))], &[0], 11, 3);
        assert_eq!(journal.check(Some(before), &[written(card(1), Read::Stored(5))]), Err(Refused::Stale));
        assert_eq!(journal.check(Some(before), &[written(card(1), Read::Cached(11))]), Ok(3));
        // Two folds later, or once another store wrote, such a group is refused whatever it read.
        journal.folded_in_group(&[], 12, 4);
        assert_eq!(journal.check(Some(before), &[written(card(3), Read::New)]), Err(Refused::Stale));
        let now = journal.generation();
        assert_eq!(journal.check(Some(now - 1), &[written(card(3), Read::New)]), Ok(4));
        assert!(journal.folded_by_look(40));
        assert_eq!(journal.check(Some(now), &[written(card(3), Read::New)]), Err(Refused::Stale));
        assert_eq!(journal.check(Some(journal.generation()), &[written(card(3), Read::New)]), Ok(40));
    }

    /// A journal table holding `groups` (token, shadows) as their writes journal them, and where
    /// each group's entries start in its row.
    fn journal_of(groups: &[(i64, Vec<Written>)]) -> (rusqlite::Connection, Vec<Vec<usize>>) {
        let connection = rusqlite::Connection::open_in_memory().expect("opens");
        make_tables(&connection).expect("tables");
        let mut all_offsets = Vec::new();
        for (token, shadows) in groups {
            let (mut entries, mut offsets) = (Vec::new(), Vec::new());
            for written in shadows {
                offsets.push(entries.len());
                encode_entry(&mut entries, &written.card, written.balance_fen, &written.packed).expect("encodes");
            }
            all_offsets.push(offsets);
            connection
                .execute(
                    "INSERT INTO shadow_journal (token, at_ms, entries) VALUES (?1, ?2, ?3)",
                    rusqlite::params![token, token * 10, entries],
                )
                .expect("journaled");
        }
        (connection, all_offsets)
    }

    fn shadow(n: u8, version: u8) -> Written {
        // Packed shadows of different lengths, so that offsets differ from row to row.
        let packed = vec![version; usize::from(n % 5 + version)];
        Written { card: card(n), read: Read::New, packed, balance_fen: Some(i64::from(n) * 100 + i64::from(version)) }
    }

    /// (card, token, at, balance, packed) of a shadow collected.
    type Kept = (CardId, i64, i64, Option<i64>, Vec<u8>);

    /// Each shadow collected, in the cards' order.
    fn folded(collected: &Collected) -> Vec<Kept> {
        let mut folded: Vec<_> = collected
            .folded
            .iter()
            .map(|f| (f.card, f.token, f.at_ms, f.balance_fen, collected.packed[f.packed.clone()].to_vec()))
            .collect();
        folded.sort_unstable_by_key(|f| f.0);
        folded
    }

    #[test]
    fn a_fold_of_this_stores_rows_reads_each_cards_last_entry_where_it_lies_as_reading_every_entry_finds_it() {
        // Three groups: cards 1–4, then 2–3 again, then 4–6; card 7 is the folding group's own.
        let groups = vec![
            (5, (1..=4).map(|n| shadow(n, 1)).collect::<Vec<_>>()),
            (6, vec![shadow(2, 2), shadow(3, 2)]),
            (7, (4..=6).map(|n| shadow(n, 3)).collect()),
        ];
        let (connection, offsets) = journal_of(&groups);
        let journal = ShadowJournal::new(SHADOW_CACHE_CARDS);
        for (epoch, ((token, shadows), offsets)) in groups.iter().zip(&offsets).enumerate() {
            journal.journaled(shadows, offsets, *token, epoch as i64 + 1);
        }
        let ours = [shadow(7, 4), shadow(3, 4)];
        let mut ours_sorted: Vec<Written> = ours.into_iter().collect();
        ours_sorted.sort_unstable_by_key(|w| w.card);
        let ours = Ours { shadows: &ours_sorted, token: 8, at_ms: 80 };
        // Newest row first, as the fold reads them.
        let wanted = journal.newest_entries(&[7, 6, 5], ours.shadows).expect("every row is this store's");
        // Card 3's entries are all older than ours; each other card once.
        assert_eq!(wanted.iter().map(|w| w.2).collect::<Vec<_>>().len(), 5);
        assert!(wanted.windows(2).all(|w| w[0] < w[1]), "in the rows' order");
        let at_places = collect(&connection, Some(&ours), Some(&wanted), 1_000).expect("read").expect("all there");
        let every = collect(&connection, Some(&ours), None, 1_000).expect("read").expect("read");
        assert_eq!(folded(&at_places), folded(&every));
        let expected: Vec<(CardId, i64)> =
            vec![(card(1), 5), (card(2), 6), (card(3), 8), (card(4), 7), (card(5), 7), (card(6), 7), (card(7), 8)];
        assert_eq!(folded(&every).iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(), expected);
        assert_eq!(folded(&every)[1].4, shadow(2, 2).packed, "card 2's second shadow");

        // A row this store did not write: every entry is read.
        assert_eq!(journal.newest_entries(&[9, 7, 6, 5], ours.shadows), None);
        // An entry not where the plan says: told, not taken.
        let mut wrong = wanted.clone();
        wrong[0].1 += 1;
        assert!(collect(&connection, Some(&ours), Some(&wrong), 1_000).expect("read").is_none());
        // A row planned that is not there.
        let mut beyond = wanted.clone();
        beyond.push((3, 0, card(9)));
        assert!(collect(&connection, Some(&ours), Some(&beyond), 1_000).expect("read").is_none());
        // Once the journal is emptied by a fold, its rows are forgotten: a later fold of one new
        // row plans that row alone (the cards' older tokens name rows that are gone).
        assert!(!journal.folded_by_look(3));
        journal.journaled(&[shadow(1, 5)], &[0], 10, 4);
        let after = journal.newest_entries(&[10], &[]).expect("this store's row");
        assert_eq!(after, vec![(0, 0, card(1))]);
    }
}
