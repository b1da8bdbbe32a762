//! One group of uploads, in two stages, so that the next group can be prepared while this one
//! writes (on PostgreSQL; on SQLite the stages take turns, but while a write folds the shadow
//! journal: [`write`] says why).
//!
//! [`prepare`], outside the writer's turn: the batches stored already found (on a reading
//! connection), the cards' shadows taken from the cache or read, every record fed, the shadows
//! packed and put back in the cache under the group's new write token (`shadow_cache` says why
//! that is safe before the commit; the put runs beside the write, which waits for it before its
//! commit). [`write`], in the writer's turn: the policy's hotlist listings, the batches' rows (on
//! PostgreSQL copied just before the transaction: `staged_batches`), the shadows (on PostgreSQL
//! each a compare-and-swap on the token it was read with; on SQLite one journal row, checked as
//! `shadow_journal` says), the commit. `None` from either: another writer got there first; the
//! group's cards are forgotten (`Uncommitted`) and the caller prepares it again.

use std::collections::BTreeMap;
use std::sync::Arc;

use yitong_clearing::hotlist::{Actor, ChangeKind, HotlistError};
use yitong_clearing::shadow::{hotlist_reason, Answer, CardId, Disposition, Shadow, ShadowError, TacCheck};
use yitong_profile::DateTime;
use yitong_record::TapRecord;

use super::clearing::{
    placeholders, verdict_name, BatchAnswer, IngestError, Ingested, RaisedFlag, Read, RejectedRecord, SettledRecord,
    Upload, SHADOWS_PER_STATEMENT,
};
use super::group_shadows::{load_shadows, GroupShadows, Part, Place, Seating};
use super::hotlist::{append_change_in, HotlistChangeError};
use super::kept_batches::{insert_batches, BatchRow, KeptDisposition};
use super::shadow_cache::ShadowCache;
use super::shadow_journal;
use super::sql::{query, Db, Query};
use super::staged_batches;
use super::{column, Backend, Store, StoreError};

/// Uploads per `SELECT` of answers stored (2 parameters each).
const UPLOADS_PER_STATEMENT: usize = 1_000;
/// Records of a group from which they are fed on two threads, each taking the records of half
/// the cards (feeding a group took longer than writing the one before: the writer waited).
pub const PARALLEL_FEED_RECORDS: usize = 4_096;

/// A group fed, ready to write.
pub(super) struct Prepared {
    /// Per upload: its answer, when the batch is stored already.
    stored: Vec<Option<BatchAnswer>>,
    /// Per upload: the group's earlier upload of the same gate and batch ID.
    repeats: Vec<Option<usize>>,
    /// The new batches, fed.
    fed: Vec<Fed>,
    /// The listings the policy asks for, in the order the flags were raised.
    listings: Vec<Listing>,
    /// The cards' shadows as the group leaves them.
    shadows: Vec<Written>,
    /// The token every shadow of the group is written under.
    token: i64,
    /// SQLite: the shadow journal's generation the group was prepared in, when it took shadows
    /// from the cache.
    generation: Option<u64>,
    /// Until the group commits: its cached shadows are forgotten, and groups prepared on them
    /// refused, should it not.
    uncommitted: Uncommitted,
}

/// A prepared group's shadows, cached before its write commits ([`Prepared`]), and then its ingest
/// turn: when it is dropped before [`Uncommitted::committed`] (the write refused or failed, or
/// never made), the shadow journal marks its token failed, which refuses the groups prepared on
/// its cards meanwhile, and its cards are forgotten — before the turn is given up, so that none
/// of them writes first.
struct Uncommitted {
    cache: Arc<ShadowCache>,
    journal: Arc<shadow_journal::ShadowJournal>,
    token: i64,
    cards: Vec<CardId>,
    /// Committed (or nothing to write).
    done: bool,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Uncommitted {
    /// The group committed (or had nothing to write): its turn given up.
    fn committed(&mut self) {
        if !self.done {
            self.journal.settled(self.token);
        }
        self.done = true;
        self.turn = None;
    }
}

impl Drop for Uncommitted {
    fn drop(&mut self) {
        if !self.done {
            self.journal.failed(self.token);
            // Once they are all put.
            self.cache.forget(&self.cards);
        }
    }
}

/// A new batch's answer and its records' dispositions (letters, in order).
struct Fed {
    upload: usize,
    answer: BatchAnswer,
    dispositions: String,
}

/// A card to list on the hotlist for a flag: `fed[fed].answer.flags[flag]` gets the version.
struct Listing {
    fed: usize,
    flag: usize,
    card: CardId,
    reason: String,
    received: DateTime,
    now_ms: i64,
}

/// A card's shadow to write, over what it was read as.
pub(super) struct Written {
    pub(super) card: CardId,
    pub(super) read: Read,
    pub(super) packed: Vec<u8>,
    /// `None` while the shadow cannot tell.
    pub(super) balance_fen: Option<i64>,
}

/// Where a group's shadows come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reads {
    /// The cache where it holds them (a first attempt).
    Cache,
    /// The database (an attempt after one that lost).
    Database,
}

/// Stage one (see the module documentation).
pub(super) async fn prepare(
    store: &Store,
    uploads: &[Upload<'_>],
    checks: &[&[TacCheck]],
    reads: Reads,
) -> Result<Prepared, IngestError> {
    let mut connection = store.reader().await?;
    let known = stored_answers(store.backend(), &mut connection.db(), uploads).await?;
    let mut stored = Vec::with_capacity(uploads.len());
    let mut repeats = Vec::with_capacity(uploads.len());
    let mut first_of: BTreeMap<(&[u8; 6], &str), usize> = BTreeMap::new();
    let mut fresh = Vec::new();
    for (index, upload) in uploads.iter().enumerate() {
        let key = (&upload.batch.header.gate, upload.batch.header.batch_id.as_str());
        if let Some(&first) = first_of.get(&key) {
            stored.push(None);
            repeats.push(Some(first));
            continue;
        }
        first_of.insert(key, index);
        repeats.push(None);
        let answer = known.get(&(hex::encode_upper(key.0), key.1.to_owned())).cloned();
        if answer.is_none() {
            fresh.push(index);
        }
        stored.push(answer);
    }
    let cards: Vec<CardId> = fresh.iter().flat_map(|&i| uploads[i].batch.records.iter().map(CardId::of)).collect();
    // Before the cards are taken: a failure or a fold from now on refuses a group built on the
    // cache.
    let generation = (reads == Reads::Cache).then(|| store.journal.generation());
    let cache = (reads == Reads::Cache).then_some(&*store.shadows);
    let seating = Seating::of(&cards)?;
    let mut shadows = load_shadows(store.backend(), cache, &mut connection.db(), &seating).await?;
    drop(connection);
    let (outcomes, packed) = handle_records(&mut shadows, uploads, &fresh, checks, &seating.seats)?;
    if packed.len() != shadows.len() {
        return Err(IngestError::Internal(format!("{} shadows, {} packed", shadows.len(), packed.len())));
    }
    let mut outcomes = outcomes.into_iter();
    let mut fed = Vec::with_capacity(fresh.len());
    let mut listings = Vec::new();
    for upload in fresh {
        fed.push(feed(&mut outcomes, upload, &uploads[upload], fed.len(), &mut listings)?);
    }
    let token = write_token()?;
    let mut written = Vec::with_capacity(shadows.len());
    let mut cached = Vec::with_capacity(shadows.len());
    for (held, packed) in shadows.into_iter().zip(packed) {
        written.push(Written { card: held.card, read: held.read, packed, balance_fen: held.shadow.balance_fen() });
        cached.push((held.card, (token, held.shadow)));
    }
    // Pending until the group commits or fails: a group that takes these writes after it.
    store.journal.prepared(token);
    // Put beside the write (which waits for it before its commit; so do the cache's takes).
    store.shadows.put_beside(cached);
    let uncommitted = Uncommitted {
        token,
        done: false,
        turn: None,
        cache: store.shadows.clone(),
        journal: store.journal.clone(),
        cards: written.iter().map(|w| w.card).collect(),
    };
    Ok(Prepared { stored, repeats, fed, listings, shadows: written, token, generation, uncommitted })
}

/// Stage two (see the module documentation), in the store's ingest turn (`turn`, when the caller
/// holds it already): the store's groups write one at a time, in the order they took it. `ready`
/// is told (and taken) once the writer's turn is this group's; the commit is synced to disk
/// before this returns.
pub(super) async fn write(
    store: &Store,
    uploads: &[Upload<'_>],
    packed: &[Vec<u8>],
    prepared: Prepared,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
    turn: Option<tokio::sync::OwnedMutexGuard<()>>,
) -> Result<Option<Vec<Ingested>>, IngestError> {
    let Prepared { stored, repeats, fed, listings, shadows, token, generation, mut uncommitted } = prepared;
    if fed.is_empty() {
        // Every batch was received before: nothing to write (and no shadow cached).
        uncommitted.committed();
        return Ok(Some(answers(stored, repeats, fed)?));
    }
    // Taken before the group says it is ready: the next group, prepared meanwhile on this one's
    // shadows, writes after it.
    uncommitted.turn = Some(match turn {
        Some(turn) => turn,
        None => store.ingest_turn.clone().lock_owned().await,
    });
    // On PostgreSQL, the batches' rows are copied first (`staged_batches`), unless their answers
    // wait for the hotlist's versions.
    let staged = match &store.copier {
        Some(copier) if listings.is_empty() => {
            let rows = batch_rows(uploads, packed, &fed)?;
            copier.stage(token, &rows).await?;
            Some(rows.len())
        }
        _ => None,
    };
    let now_ms = uploads.iter().map(|u| u.now_ms).max().unwrap_or(0);
    // When the next group may be fed (`ready`): on PostgreSQL once this one's write began (its
    // statements wait on the server). On SQLite, whose statements run in this thread and keep it,
    // once it committed: fed beside the write, the next group slowed the runs of 200,000 taps
    // (measured: the two want the same two cores, and groups came smaller). Except a write that
    // folds the shadow journal (most of the shadows' table rewritten: 0.3–0.5 s of one core for a
    // million taps' cards, the other idle), run off the runtime's thread so that the next group
    // is fed meanwhile (a million taps: 148,000–155,000 taps/s against 125,000–134,000 in turn).
    // (Under `block_in_place`, the caller's task polls nothing else meanwhile: a caller that
    // `join!`s this with a future holding the back office's writer would wait for ever.)
    let folds = store.backend() == Backend::Sqlite && store.journal.fold_due();
    // The runtime to run a folding write on, off its thread.
    let aside = if folds { super::sql::multi_threaded_runtime() } else { None };
    let ready_at = match store.backend() {
        Backend::Postgres => ReadyAt::Begin,
        Backend::Sqlite if aside.is_some() => ReadyAt::Begin,
        Backend::Sqlite => ReadyAt::Commit,
    };
    let group =
        Group { uploads, packed, listings: &listings, shadows: &shadows, token, generation, now_ms, staged, folds };
    let written = match aside {
        Some(runtime) => tokio::task::block_in_place(|| {
            runtime.block_on(write_in_turn(store, &group, fed, ready, ready_at, &mut uncommitted))
        }),
        None => write_in_turn(store, &group, fed, ready, ready_at, &mut uncommitted).await,
    };
    // Settled (a failure marked) and the turn given up, before anything else waits.
    drop(uncommitted);
    if let (Some(copier), Some(_), Ok(None) | Err(_)) = (&store.copier, staged, &written) {
        // Not moved: deleted now rather than at a later opening.
        copier.unstage(token).await;
    }
    written?.map(|fed| answers(stored, repeats, fed)).transpose()
}

/// When a group's write tells the next group it may be fed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadyAt {
    /// Once its transaction began.
    Begin,
    /// Once it committed (before the commit's sync).
    Commit,
}

/// What [`write_in_turn`] writes.
struct Group<'a> {
    uploads: &'a [Upload<'a>],
    packed: &'a [Vec<u8>],
    listings: &'a [Listing],
    shadows: &'a [Written],
    token: i64,
    generation: Option<u64>,
    now_ms: i64,
    /// How many batch rows were staged under the token (PostgreSQL), if they were.
    staged: Option<usize>,
    /// SQLite: the shadow journal is folded in this write (decided once the ingest turn is held).
    folds: bool,
}

/// The rest of [`write`], holding the ingest turn (in `uncommitted`, which gives it up once the
/// group commits): its transaction; the group's fed batches
/// back when it committed (`None`: another writer got there first).
async fn write_in_turn(
    store: &Store,
    group: &Group<'_>,
    mut fed: Vec<Fed>,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
    ready_at: ReadyAt,
    uncommitted: &mut Uncommitted,
) -> Result<Option<Vec<Fed>>, IngestError> {
    let mut transaction = store.begin_backoffice_write().await?;
    if ready_at == ReadyAt::Begin {
        tell(ready);
    }
    for listing in group.listings {
        let change = append_change_in(
            &mut transaction.db(),
            listing.card,
            ChangeKind::Added,
            &listing.reason,
            Actor::Policy,
            listing.received,
            listing.now_ms,
        )
        .await;
        match change {
            Ok(Some(change)) => {
                if let Some(flag) = fed.get_mut(listing.fed).and_then(|f| f.answer.flags.get_mut(listing.flag)) {
                    flag.hotlisted_at_version = Some(change.version);
                }
            }
            // Another writer took the hotlist's next version.
            Ok(None) => {
                transaction.rollback().await?;
                return Ok(None);
            }
            // Listed before (by hand, or for another flag): it stays listed.
            Err(HotlistChangeError::Refused(HotlistError::AlreadyListed { .. })) => {}
            Err(HotlistChangeError::Refused(error)) => return Err(IngestError::Shadow(format!("hotlist: {error}"))),
            Err(HotlistChangeError::Store(error)) => return Err(error.into()),
        }
    }
    // One already there means another writer took it.
    let batches_written = match group.staged {
        Some(rows) => staged_batches::take_staged(&mut transaction.db(), group.token, rows).await?,
        None => {
            let rows = batch_rows(group.uploads, group.packed, &fed)?;
            insert_batches(store.backend(), &mut transaction.db(), &rows).await?
        }
    };
    if !batches_written {
        transaction.rollback().await?;
        return Ok(None);
    }
    let (token, now_ms) = (group.token, group.now_ms);
    let journaled = match store.backend() {
        Backend::Sqlite => {
            let written = shadow_journal::write_group_in(
                store,
                &mut transaction.db(),
                group.generation,
                group.shadows,
                (token, now_ms),
                group.folds,
            )
            .await?;
            match written {
                Ok(journaled) => Some(journaled),
                Err(refused) => {
                    transaction.rollback().await?;
                    if refused == shadow_journal::Refused::OtherWriter {
                        store.forget_all_shadows();
                    }
                    return Ok(None);
                }
            }
        }
        Backend::Postgres => {
            if !store_shadows(store.backend(), &store.shadows, &mut transaction.db(), group.shadows, token, now_ms)
                .await?
            {
                transaction.rollback().await?;
                return Ok(None);
            }
            None
        }
    };
    // The group's shadows, put beside its statements, are all cached before it commits: a group
    // that reads what this one commits (from its rows, as a retry does) puts after it, so the
    // cache never goes back to an older shadow. Waited for in this thread, not awaited: the
    // transaction holds SQLite's writer, which a task of this thread could wait on; and nothing
    // may wait between the commit and what is told of it (a caller gone away there would leave a
    // committed group marked failed). (A group fed at this one's start takes the cache after the
    // put too: every take waits for the puts begun.)
    store.shadows.wait_for_puts();
    let committed = transaction.commit_unsynced().await?;
    // The next group is fed while this one tells the journal and the cache what it wrote, before
    // it gives the turn up: the next group writes after.
    tell(ready);
    if let Some(journaled) = journaled {
        shadow_journal::committed(store, group.shadows, journaled);
    }
    store.shadows.committed(token);
    uncommitted.committed();
    // The next group writes while this one's commit is synced to disk.
    committed.synced().await?;
    Ok(Some(fed))
}

/// Tells the next group it may be fed, unless told already.
fn tell(ready: &mut Option<tokio::sync::oneshot::Sender<()>>) {
    if let Some(ready) = ready.take() {
        let _ = ready.send(());
    }
}

/// The rows of the group's new batches, in key order: two writers with the same batches lock them
/// in the same order (no deadlock on PostgreSQL).
fn batch_rows<'a>(
    uploads: &'a [Upload<'a>],
    packed: &'a [Vec<u8>],
    fed: &[Fed],
) -> Result<Vec<BatchRow<'a>>, IngestError> {
    let mut rows = Vec::with_capacity(fed.len());
    for batch in fed {
        rows.push(BatchRow {
            upload: &uploads[batch.upload],
            gate: batch.answer.gate.clone(),
            answer: serde_json::to_string(&batch.answer).map_err(|e| IngestError::Internal(e.to_string()))?,
            packed: &packed[batch.upload],
            dispositions: batch.dispositions.clone(),
        });
    }
    rows.sort_by(|a, b| (&a.gate, &a.upload.batch.header.batch_id).cmp(&(&b.gate, &b.upload.batch.header.batch_id)));
    Ok(rows)
}

/// Every upload's answer: stored before, new, or (a batch named twice in the group) the first's
/// as sent again.
fn answers(
    stored: Vec<Option<BatchAnswer>>,
    repeats: Vec<Option<usize>>,
    fed: Vec<Fed>,
) -> Result<Vec<Ingested>, IngestError> {
    let mut answers: Vec<Option<Ingested>> =
        stored.into_iter().map(|answer| answer.map(|answer| Ingested { answer, new: false })).collect();
    for batch in fed {
        answers[batch.upload] = Some(Ingested { answer: batch.answer, new: true });
    }
    for (index, first) in repeats.into_iter().enumerate() {
        if let Some(first) = first {
            let answer = answers[first].as_ref().map(|first| first.answer.clone());
            answers[index] = answer.map(|answer| Ingested { answer, new: false });
        }
    }
    answers.into_iter().map(|a| a.ok_or_else(|| IngestError::Internal("a batch without an answer".into()))).collect()
}

/// The answers of the uploads' batches received before, by (gate, batch ID).
async fn stored_answers(
    backend: Backend,
    connection: &mut Db<'_>,
    uploads: &[Upload<'_>],
) -> Result<BTreeMap<(String, String), BatchAnswer>, IngestError> {
    let mut answers = BTreeMap::new();
    for chunk in uploads.chunks(UPLOADS_PER_STATEMENT) {
        let sql = format!(
            "SELECT b.gate, b.batch_id, b.answer FROM (VALUES {}) AS wanted \
             JOIN clearing_batches AS b ON b.gate = wanted.column1 AND b.batch_id = wanted.column2",
            placeholders(backend, chunk.len(), 2)
        );
        let mut query = query(&sql);
        for upload in chunk {
            query = query.bind(hex::encode_upper(upload.batch.header.gate)).bind(upload.batch.header.batch_id.as_str());
        }
        for row in query.fetch_all(&mut *connection).await? {
            let (gate, batch_id, text): (String, String, String) =
                (column(&row, 0)?, column(&row, 1)?, column(&row, 2)?);
            let answer = serde_json::from_str::<BatchAnswer>(&text)
                .map_err(|e| IngestError::Shadow(format!("batch {gate}/{batch_id}: {e}")))?;
            answers.insert((gate, batch_id), answer);
        }
    }
    Ok(answers)
}

/// A write token no other write has (random, positive).
pub(super) fn write_token() -> Result<i64, IngestError> {
    let random =
        getrandom::u64().map_err(|e| IngestError::Internal(format!("no randomness for a write token: {e}")))?;
    Ok((random >> 1) as i64)
}

/// What feeding a record to its card's shadow answered.
pub(super) type Outcome = Result<Answer, ShadowError>;

/// Feeds the records of the `fresh` uploads, in order, to their cards' shadows (each upload's
/// `checks` one per record, else an error; `seats` each record's shadow, [`Seating`]); their
/// outcomes in the same order, and the shadows packed, in the cards' order. A large group is fed
/// and packed on two threads, each taking the records of half the cards: a card's records are fed
/// in the same order either way, so the outcomes are the same.
fn handle_records(
    shadows: &mut GroupShadows,
    uploads: &[Upload<'_>],
    fresh: &[usize],
    checks: &[&[TacCheck]],
    seats: &[u32],
) -> Result<(Vec<Outcome>, Vec<Vec<u8>>), IngestError> {
    for &i in fresh {
        if checks.get(i).map(|c| c.len()) != Some(uploads[i].batch.records.len()) {
            let batch = &uploads[i].batch.header.batch_id;
            return Err(IngestError::Internal(format!("batch {batch}: not one TAC check per record")));
        }
    }
    let count: usize = fresh.iter().map(|&i| uploads[i].batch.records.len()).sum();
    if seats.len() != count {
        return Err(IngestError::Internal(format!("{count} records, {} seated", seats.len())));
    }
    let parallel = count >= PARALLEL_FEED_RECORDS && super::cores() > 1;
    handle_records_on(shadows, uploads, fresh, checks, seats, parallel)
}

/// [`handle_records`] on one thread or two.
pub(super) fn handle_records_on(
    shadows: &mut GroupShadows,
    uploads: &[Upload<'_>],
    fresh: &[usize],
    checks: &[&[TacCheck]],
    seats: &[u32],
    parallel: bool,
) -> Result<(Vec<Outcome>, Vec<Vec<u8>>), IngestError> {
    let records = || {
        fresh
            .iter()
            .flat_map(|&i| {
                let upload = &uploads[i];
                upload
                    .batch
                    .records
                    .iter()
                    .zip(checks[i].iter().copied())
                    .map(move |(record, tac)| (record, tac, upload.received))
            })
            .zip(seats.iter().map(|&seat| seat as usize))
    };
    if !parallel {
        let fed = records().map(|((record, tac, received), seat)| (record, tac, received, seat));
        return handle_half(&mut Part::whole(shadows), fed);
    }
    // Each thread its half of the shadows, fed and packed (packing them all took a third as long
    // as feeding them, and the next group waited for it); the shadows stay where they are.
    let (mut first, mut second, places) = Part::halves(shadows, half);
    let place = |seat: usize| places.get(seat).copied().ok_or_else(|| seat_error(seat));
    let mine = |half: u8| {
        let places = &places;
        move |((record, tac, received), seat)| Some((record, tac, received, seated(places, seat, half)?))
    };
    let both = std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("feed".into())
            .spawn_scoped(scope, || handle_half(&mut second, records().filter_map(mine(1))))
            .ok()?;
        let first = handle_half(&mut first, records().filter_map(mine(0)));
        // A panic on the other thread goes on here, as it would have on one thread.
        Some((first, thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))))
    });
    let (first_outcomes, second_outcomes) = match both {
        Some(both) => both,
        // No thread to be had: both halves here, one after the other.
        None => (
            handle_half(&mut first, records().filter_map(mine(0))),
            handle_half(&mut second, records().filter_map(mine(1))),
        ),
    };
    // The shadows are the group's again.
    drop((first, second));
    let ((first, first_packed), (second, second_packed)) = (first_outcomes?, second_outcomes?);
    // Back in the records' order, and the packed shadows in the cards'.
    let (mut first, mut second) = (first.into_iter(), second.into_iter());
    let mut outcomes = Vec::with_capacity(first.len() + second.len());
    for (_, seat) in records() {
        let from = if place(seat)?.half == 0 { &mut first } else { &mut second };
        outcomes.push(from.next().ok_or_else(|| IngestError::Internal("a record without an outcome".into()))?);
    }
    let (mut first, mut second) = (first_packed.into_iter(), second_packed.into_iter());
    let mut packed = Vec::with_capacity(shadows.len());
    for (held, place) in shadows.iter().zip(&places) {
        let from = if place.half == 0 { &mut first } else { &mut second };
        packed.push(from.next().ok_or_else(|| IngestError::Internal(format!("card {}: not packed", held.card)))?);
    }
    if first.next().is_some() || second.next().is_some() {
        return Err(IngestError::Internal("a shadow packed twice".into()));
    }
    Ok((outcomes, packed))
}

/// A record seated at no shadow of its group.
fn seat_error(seat: usize) -> IngestError {
    IngestError::Internal(format!("a record seated at shadow {seat}, which its group does not have"))
}

/// The place in its half's part of the shadow at `seat`, when that half is `half`. (A seat past
/// the shadows is fed to a place no part has, which the feeding thread reports.)
fn seated(places: &[Place], seat: usize, half: u8) -> Option<usize> {
    match places.get(seat) {
        Some(place) if place.half == half => Some(place.at as usize),
        Some(_) => None,
        None => Some(usize::MAX),
    }
}

/// Which of two threads feeds `card`'s records.
pub(super) fn half(card: &CardId) -> usize {
    usize::from(card.card_serial.iter().chain(&card.issuer_id).fold(0u8, |a, b| a ^ b) & 1)
}

/// Feeds `records` to the shadows of `part`, each at its place there, in order; their outcomes,
/// and the shadows packed.
fn handle_half<'r>(
    part: &mut Part<'_>,
    records: impl Iterator<Item = (&'r TapRecord, TacCheck, DateTime, usize)>,
) -> Result<(Vec<Outcome>, Vec<Vec<u8>>), IngestError> {
    let mut outcomes = Vec::new();
    for (record, tac, received, at) in records {
        let card = CardId::of(record);
        let shadow = part
            .at(at, &card)
            .ok_or_else(|| IngestError::Internal(format!("card {card}: its shadow was not read with the batch's")))?;
        outcomes.push(shadow.handle_record(record, tac, received));
    }
    Ok((outcomes, part.shadows().map(Shadow::pack).collect()))
}

/// Upload `index`'s answer and each record's disposition, from its records' outcomes (the next
/// ones of `outcomes`, [`handle_records`]); the listings the policy asks for are added to
/// `listings` (this batch is `fed[position]`).
fn feed(
    outcomes: &mut impl Iterator<Item = Outcome>,
    index: usize,
    upload: &Upload<'_>,
    position: usize,
    listings: &mut Vec<Listing>,
) -> Result<Fed, IngestError> {
    let batch = upload.batch;
    let mut answer = BatchAnswer {
        gate: hex::encode_upper(batch.header.gate),
        batch_id: batch.header.batch_id.clone(),
        records: batch.records.len(),
        accepted: 0,
        duplicates: 0,
        rejected: Vec::new(),
        settled: Vec::new(),
        flags: Vec::new(),
    };
    let mut dispositions = String::with_capacity(batch.records.len());
    for (place, record) in batch.records.iter().enumerate() {
        let card = CardId::of(record);
        let outcome = outcomes.next().ok_or_else(|| IngestError::Internal(format!("card {card}: no outcome")))?;
        let (disposition, reason) = match outcome {
            Ok(fed) => {
                for settlement in &fed.settlements {
                    answer.settled.push(SettledRecord {
                        tap_id: settlement.tap_id.to_string(),
                        verdict: verdict_name(settlement.verdict).to_owned(),
                        previous: verdict_name(settlement.previous).to_owned(),
                        evidence: settlement.evidence.map(|tap| tap.to_string()),
                    });
                }
                for flag in &fed.raised {
                    if let Some(reason) = hotlist_reason(flag) {
                        listings.push(Listing {
                            fed: position,
                            flag: answer.flags.len(),
                            card,
                            reason,
                            received: upload.received,
                            now_ms: upload.now_ms,
                        });
                    }
                    answer.flags.push(RaisedFlag {
                        card: card.to_string(),
                        flag: flag.to_string(),
                        hotlisted_at_version: None,
                    });
                }
                match fed.disposition {
                    Disposition::Accepted => {
                        answer.accepted += 1;
                        (KeptDisposition::Accepted, None)
                    }
                    Disposition::Duplicate { .. } => {
                        answer.duplicates += 1;
                        (KeptDisposition::Duplicate, None)
                    }
                    Disposition::Rejected { reason, .. } => (KeptDisposition::Rejected, Some(reason.to_string())),
                }
            }
            // A record the shadow cannot take (its TAC check does not fit it): rejected, kept.
            Err(error) => (KeptDisposition::Rejected, Some(error.to_string())),
        };
        if let Some(reason) = reason {
            answer.rejected.push(RejectedRecord { position: place, tap_id: record.tap_id().to_string(), reason });
        }
        dispositions.push(disposition.letter());
    }
    Ok(Fed { upload: index, answer, dispositions })
}

/// Writes the group's shadows under `token`: a new card inserted (refused if another writer
/// inserted it meanwhile), a known one upserted or updated where its token is still the one
/// read. `false` when any was changed meanwhile. (Three statements, which cards go in which
/// depending on the store's cache: two services writing the same cards may lock them in
/// different orders, a PostgreSQL deadlock its victim retries.)
async fn store_shadows(
    backend: Backend,
    cache: &ShadowCache,
    connection: &mut Db<'_>,
    shadows: &[Written],
    token: i64,
    now_ms: i64,
) -> Result<bool, IngestError> {
    // A known card whose row is surely there is upserted (about a third faster on SQLite than
    // `UPDATE … FROM (VALUES …)`). Not one cached from a write not known to have committed: its
    // row may never have been inserted, and the upsert would insert it.
    let (mut new, mut there, mut maybe) = (Vec::new(), Vec::new(), Vec::new());
    for written in shadows {
        match written.read {
            Read::New => new.push(written),
            Read::Stored(_) => there.push(written),
            Read::Cached(read) if cache.is_committed(read) => there.push(written),
            Read::Cached(_) => maybe.push(written),
        }
    }
    for (rows, kind) in [(&new, Statement::Insert), (&there, Statement::Upsert), (&maybe, Statement::Update)] {
        for chunk in rows.chunks(SHADOWS_PER_STATEMENT) {
            let sql = match kind {
                Statement::Insert => insert_shadows(backend, chunk.len()),
                Statement::Upsert => upsert_shadows(backend, chunk.len()),
                Statement::Update => update_shadows(backend, chunk.len()),
            };
            let mut query = query(&sql);
            for written in chunk {
                query = bind_shadow(query, &written.card, &written.packed, written.balance_fen);
                query = match kind {
                    Statement::Insert => query.bind(token),
                    Statement::Upsert => query.bind(written.read.token()),
                    Statement::Update => query.bind(written.read.token()).bind(token),
                }
                .bind(now_ms);
            }
            if kind == Statement::Upsert {
                query = query.bind(token);
            }
            if query.execute(&mut *connection).await? != chunk.len() as u64 {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// A card's shadow bound to a row of `card_shadows`: issuer, serial, packed, balance.
pub(super) fn bind_shadow<'q>(
    query: Query<'q>,
    card: &CardId,
    packed: &'q [u8],
    balance_fen: Option<i64>,
) -> Query<'q> {
    query
        .bind(hex::encode_upper(card.issuer_id))
        .bind(hex::encode_upper(card.card_serial))
        .bind(packed)
        .bind(balance_fen)
}

/// The three ways a shadow is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Statement {
    Insert,
    Upsert,
    Update,
}

/// New cards' shadows: (issuer, serial, packed, balance, token, time) per row.
fn insert_shadows(backend: Backend, rows: usize) -> String {
    format!(
        "INSERT INTO card_shadows (issuer_id, card_serial, packed, balance_fen, version, updated_at_ms) \
         VALUES {} ON CONFLICT (issuer_id, card_serial) DO NOTHING",
        placeholders(backend, rows, 6)
    )
}

/// Known cards' shadows whose rows are surely there, where the token is still the one read:
/// (issuer, serial, packed, balance, token read, time) per row, then the new token. (Its insert
/// never runs: shadow rows are never deleted.)
fn upsert_shadows(backend: Backend, rows: usize) -> String {
    let token = match backend {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => format!("${}", rows * 6 + 1),
    };
    format!(
        "INSERT INTO card_shadows (issuer_id, card_serial, packed, balance_fen, version, updated_at_ms) \
         VALUES {} ON CONFLICT (issuer_id, card_serial) DO UPDATE SET state = NULL, packed = excluded.packed, \
         balance_fen = excluded.balance_fen, version = {token}, updated_at_ms = excluded.updated_at_ms \
         WHERE card_shadows.version = excluded.version",
        placeholders(backend, rows, 6)
    )
}

/// Known cards' shadows where the token is still the one read: (issuer, serial, packed,
/// balance, token read, token, time) per row.
fn update_shadows(backend: Backend, rows: usize) -> String {
    format!(
        "UPDATE card_shadows SET state = NULL, packed = v.column3, balance_fen = v.column4, version = v.column6, \
         updated_at_ms = v.column7 FROM (VALUES {}) AS v WHERE card_shadows.issuer_id = v.column1 \
         AND card_shadows.card_serial = v.column2 AND card_shadows.version = v.column5",
        placeholders(backend, rows, 7)
    )
}

/// PostgreSQL chose this transaction as a deadlock's victim (two services' groups updating the
/// same cards or batches in different orders): another writer won, as a lost compare-and-swap.
pub(super) fn deadlocked(error: &IngestError) -> bool {
    let IngestError::Store(StoreError::Database(error)) = error else { return false };
    error.as_database_error().and_then(|e| e.code()).is_some_and(|code| code == "40P01")
}
