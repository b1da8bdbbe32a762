//! Write transactions, and SQLite's one writing connection shared by writers in groups.
//!
//! On SQLite, writers take turns on one connection ([`Store::begin_write`]), in arrival order.
//! Each writes inside a savepoint of a transaction that several writers share (a *group*): a
//! writer that commits while others wait for the turn releases its savepoint into the group and
//! hands the turn on; the group's transaction is committed by the first writer that finds no one
//! waiting, or by a writer of the group that takes the turn back first (so a group ends within
//! the queue it found). A page that several writers of a group changed goes to the WAL once, not
//! once each, and readers' page caches are dropped once a group, not once a writer. A writer that
//! is to begin a group first lets the runtime run the tasks ready to run (one `yield_now`, the turn
//! held, SQLite's write lock not yet taken): requests that are ready reach their `begin_write` and
//! queue behind it, and join its group instead of beginning the next one (a top-up's WAL writes
//! fell by a quarter, its readers' page re-reads by a third).
//!
//! A writer's commit returns only once its group's COMMIT did (and, with the group commit of
//! [`Durable`], once that is synced): no answer is given for a write that could still be rolled
//! back. A writer that rolls back undoes its own savepoint only, then commits the group and waits
//! until every commit so far is durable: it may have read them and answer from them. A writer
//! that goes away while queued commits the group it may have been handed. A group whose COMMIT
//! fails, or whose transaction ended under it (SQLite rolls a transaction back on a disk error),
//! fails every writer in it: their commits and rollbacks return an error, and nothing is kept.
//!
//! A bulk writer commits its own transaction, as before groups: writers grouped with it would
//! wait for the whole of it. The back office's writes are all bulk (the clearing's ingest groups,
//! hotlist changes), on the writer of their own file ([`Store::begin_backoffice_write`],
//! `backoffice_file`).
//!
//! [`Store::begin_write`]: super::Store::begin_write
//! [`Store::begin_backoffice_write`]: super::Store::begin_backoffice_write

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::{Any, Transaction};
use tokio::sync::{watch, OwnedMutexGuard};

use super::checkpoints::Checkpointing;
use super::durable::Durable;
use super::{Db, StoreError};

/// Most writers in one group: its transaction is committed when this many have committed into it.
pub const WRITE_GROUP_MAX: usize = 32;

/// The savepoint a grouped writer writes in.
const SAVEPOINT: &str = "SAVEPOINT writer";
const RELEASE: &[&str] = &["RELEASE writer"];
const UNDO: &[&str] = &["ROLLBACK TO writer", "RELEASE writer"];

/// The SQLite writer's connection and the group transaction open on it. A transaction open on
/// the connection without a group is left over (a writer dropped half-way, a COMMIT that
/// failed): the next writer rolls it back first.
#[derive(Debug)]
pub(super) struct Writer {
    connection: rusqlite::Connection,
    /// The WAL's group commit, with full durability.
    durable: Option<Arc<Durable>>,
    /// Commits so far (read by the checkpoints task).
    commits: Arc<AtomicU64>,
    group: Option<Group>,
    /// The next group's number.
    next_group: u64,
    backstop: Backstop,
}

/// SQLite's own checkpoints, run in the connection whose commit took the WAL past a bound: off in
/// the writer while the store's checkpoints task is at work ([`Checkpointing`]), which copies the
/// WAL outside the writer's turn — a fold's commit of a whole day's cards (a gigabyte of WAL) no
/// longer copies it back in the writer's turn, every writer waiting — and on, at `frames`, from
/// the writer's first commit after the task is gone or silent (off again should it come back).
#[derive(Debug)]
pub(super) struct Backstop {
    frames: u32,
    checkpointing: Arc<Checkpointing>,
    on: bool,
    /// A failure to set it was logged (once: it is tried again at every commit).
    warned: bool,
}

impl Backstop {
    /// Off on `connection` while `checkpointing` is at work; on at `frames` otherwise.
    pub(super) fn new(
        connection: &rusqlite::Connection,
        frames: u32,
        checkpointing: Arc<Checkpointing>,
    ) -> Result<Backstop, StoreError> {
        let mut backstop = Backstop { frames, checkpointing, on: true, warned: false };
        backstop.set(connection, false)?;
        backstop.check(connection);
        Ok(backstop)
    }

    fn set(&mut self, connection: &rusqlite::Connection, on: bool) -> Result<(), StoreError> {
        let frames = if on { self.frames } else { 0 };
        connection.execute_batch(&format!("PRAGMA wal_autocheckpoint = {frames};"))?;
        self.on = on;
        Ok(())
    }

    /// SQLite's checkpoints on when the checkpoints task is not at work, off when it is.
    fn check(&mut self, connection: &rusqlite::Connection) {
        let at_work = self.checkpointing.at_work();
        if self.on == at_work {
            if let Err(error) = self.set(connection, !at_work) {
                if !std::mem::replace(&mut self.warned, true) {
                    tracing::warn!(%error, "SQLite's automatic checkpoints could not be turned on or off");
                }
            }
        }
    }
}

/// A transaction shared by writers.
#[derive(Debug)]
struct Group {
    number: u64,
    /// Writers that committed into it.
    members: usize,
    outcome: watch::Sender<Outcome>,
}

/// What became of a group, as its members learn it.
#[derive(Debug, Clone)]
enum Outcome {
    Open,
    /// Committed; the group commit's ticket for it.
    Committed(Option<u64>),
    /// Rolled back (why): nothing of it was kept.
    Failed(String),
}

impl Writer {
    pub(super) fn new(
        connection: rusqlite::Connection,
        durable: Option<Arc<Durable>>,
        commits: Arc<AtomicU64>,
        backstop: Backstop,
    ) -> Writer {
        Writer { connection, durable, commits, group: None, next_group: 1, backstop }
    }

    /// Begins a writer's transaction: its savepoint in the open group, or in a new one.
    fn begin_grouped(&mut self) -> Result<(), StoreError> {
        self.check_group();
        if self.group.is_none() {
            self.begin_alone()?;
            let (outcome, _) = watch::channel(Outcome::Open);
            self.group = Some(Group { number: self.next_group, members: 0, outcome });
            self.next_group += 1;
        }
        Ok(self.run(SAVEPOINT)?)
    }

    /// Runs a statement of the writer's own (a transaction's begin or end), prepared once.
    fn run(&self, sql: &str) -> rusqlite::Result<()> {
        super::sql::run_cached(&self.connection, sql)
    }

    /// Begins a transaction of its own (any open group committed first: should that fail, the
    /// group's writers are told so and this one goes on, on a connection rolled back clean).
    fn begin_alone(&mut self) -> Result<(), StoreError> {
        if let Err(error) = self.close_group() {
            tracing::warn!(%error, "commit of a group of SQLite writes failed");
        }
        if !self.connection.is_autocommit() {
            // A transaction left open (its rollback failed): roll it back.
            self.run("ROLLBACK")?;
        }
        Ok(self.run("BEGIN IMMEDIATE")?)
    }

    /// Fails the group if its transaction is gone (SQLite rolled it back, or a statement ended it).
    fn check_group(&mut self) {
        if self.group.is_some() && self.connection.is_autocommit() {
            self.fail_group("the shared transaction ended before it was committed");
        }
    }

    fn fail_group(&mut self, why: &str) {
        if let Some(group) = self.group.take() {
            if group.members > 0 {
                tracing::warn!(members = group.members, why, "a group of SQLite writes was lost");
            }
            group.outcome.send_replace(Outcome::Failed(why.to_owned()));
        }
    }

    /// Releases a writer's savepoint into the group; the group's number and a receiver of its
    /// outcome.
    fn release(&mut self) -> Result<(u64, watch::Receiver<Outcome>), StoreError> {
        self.end_savepoint(RELEASE)?;
        let group = self.group.as_mut().ok_or(StoreError::Database(sqlx::Error::PoolClosed))?;
        group.members += 1;
        Ok((group.number, group.outcome.subscribe()))
    }

    /// Undoes a writer's savepoint; ends the group's transaction when no one had committed into
    /// it.
    fn undo(&mut self) -> Result<(), StoreError> {
        self.end_savepoint(UNDO)?;
        if self.group.as_ref().is_some_and(|group| group.members == 0) {
            self.group = None;
            self.run("ROLLBACK")?;
        }
        Ok(())
    }

    /// Releases or undoes the savepoint. Should that fail, the whole group is rolled back and
    /// failed: a savepoint left on the stack would nest the next writers in it, and the group's
    /// COMMIT would keep writes whose writer was told otherwise.
    fn end_savepoint(&mut self, statements: &[&str]) -> Result<(), StoreError> {
        let ended = statements.iter().try_for_each(|sql| self.run(sql));
        self.check_group();
        if let Err(error) = ended {
            if !self.connection.is_autocommit() {
                let _ = self.run("ROLLBACK");
            }
            self.fail_group(&error.to_string());
            return Err(error.into());
        }
        Ok(())
    }

    /// Commits the open group (if any): its ticket for the group commit. A COMMIT that fails
    /// fails the group.
    fn close_group(&mut self) -> Result<Option<u64>, StoreError> {
        self.check_group();
        let Some(group) = self.group.take() else { return Ok(None) };
        match self.commit() {
            Ok(ticket) => {
                group.outcome.send_replace(Outcome::Committed(ticket));
                Ok(ticket)
            }
            Err(error) => {
                self.group = Some(group);
                self.fail_group(&error.to_string());
                Err(error)
            }
        }
    }

    /// Commits the transaction open on the connection (rolled back if the COMMIT fails): the group
    /// commit's ticket for it.
    fn commit(&mut self) -> Result<Option<u64>, StoreError> {
        self.backstop.check(&self.connection);
        if let Err(error) = self.run("COMMIT") {
            if !self.connection.is_autocommit() {
                let _ = self.run("ROLLBACK");
            }
            return Err(error.into());
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
        // The ticket is taken before the turn is given up.
        Ok(self.durable.as_ref().map(|durable| durable.ticket()))
    }

    /// Commits the group `number` if it is still open (by one of its members).
    fn close_group_numbered(&mut self, number: u64) {
        if self.group.as_ref().is_some_and(|group| group.number == number) {
            if let Err(error) = self.close_group() {
                tracing::warn!(%error, "commit of a group of SQLite writes failed");
            }
        }
    }
}

/// The SQLite writer, shared by the store's clones.
#[derive(Debug)]
pub(super) struct Turn {
    /// `None` once the store is closed.
    slot: Arc<tokio::sync::Mutex<Option<Writer>>>,
    /// Writers waiting to begin a transaction.
    waiting: AtomicUsize,
    /// The writer's commits (for tests).
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
    /// The writer's group commit.
    durable: Option<Arc<Durable>>,
}

pub(super) type WriterSlot = Arc<Turn>;

impl Turn {
    pub(super) fn new(writer: Writer) -> WriterSlot {
        let (commits, durable) = (writer.commits.clone(), writer.durable.clone());
        let slot = Arc::new(tokio::sync::Mutex::new(Some(writer)));
        Arc::new(Turn { slot, waiting: AtomicUsize::new(0), commits, durable })
    }

    /// The writer's group commit (`None` with `Durability::Os`).
    #[cfg(test)]
    pub(super) fn durable(&self) -> Option<Arc<Durable>> {
        self.durable.clone()
    }

    /// Waits until every commit so far is durable (at once without a group commit: then each
    /// commit synced itself, or `Durability::Os` promises no more).
    pub(super) async fn durable_now(&self) -> Result<(), StoreError> {
        match &self.durable {
            Some(durable) => Ok(durable.wait(durable.committed()).await?),
            None => Ok(()),
        }
    }

    /// Writers waiting to begin a transaction.
    #[cfg(test)]
    pub(super) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Transactions committed on the writer.
    #[cfg(test)]
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// The writer connection, held (`None` inside once the store is closed).
    pub(super) async fn hold(&self) -> OwnedMutexGuard<Option<Writer>> {
        self.slot.clone().lock_owned().await
    }

    /// Begins a write transaction: grouped, or alone.
    pub(super) async fn begin(self: &Arc<Turn>, grouped: bool) -> Result<WriteTransaction, StoreError> {
        // Waiting as long as SQLite's busy handler would.
        let wait = std::time::Duration::from_millis(u64::from(super::SQLITE_BUSY_TIMEOUT_MS));
        // Should this future be dropped while it waits, the awaited lock is dropped first (it
        // hands back a turn it was given), then `waiting` (which commits a group left open).
        let mut waiting = Waiting::count(self);
        let mut turn = tokio::time::timeout(wait, self.hold())
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))?;
        waiting.began = true;
        drop(waiting);
        if grouped && turn.as_ref().is_some_and(|writer| writer.group.is_none()) {
            tokio::task::yield_now().await;
        }
        let writer = turn.as_mut().ok_or(StoreError::Database(sqlx::Error::PoolClosed))?;
        if let Some(durable) = &writer.durable {
            durable.check()?;
        }
        match grouped {
            true => writer.begin_grouped()?,
            false => writer.begin_alone()?,
        }
        let sync = writer.durable.clone();
        Ok(WriteTransaction { inner: Inner::Sqlite { turn: Some(turn), writers: self.clone(), grouped }, sync })
    }

    /// Commits any open group, and takes the writer away: the store is closing.
    pub(super) async fn close(&self) {
        let mut turn = self.hold().await;
        if let Some(writer) = turn.as_mut() {
            if let Err(error) = writer.close_group() {
                tracing::warn!(%error, "commit of a group of SQLite writes failed at closing");
            }
        }
        drop(turn.take());
    }

    /// Commits any open group while `turn` is held (the checkpoints' turn: a WAL it copies whole).
    pub(super) fn close_group_in(turn: &mut OwnedMutexGuard<Option<Writer>>) {
        if let Some(writer) = turn.as_mut() {
            if let Err(error) = writer.close_group() {
                tracing::warn!(%error, "commit of a group of SQLite writes failed");
            }
        }
    }
}

/// Counts a writer waiting for the turn while it lives. A writer that goes away before it begins
/// (cancelled, timed out) may have been the one a group's members handed the turn to: the group is
/// committed then, unless someone holds the turn (and will).
struct Waiting<'a> {
    turn: &'a Turn,
    began: bool,
}

impl<'a> Waiting<'a> {
    fn count(turn: &'a Turn) -> Waiting<'a> {
        turn.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting { turn, began: false }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.turn.waiting.fetch_sub(1, Ordering::SeqCst);
        if !self.began {
            if let Ok(mut held) = self.turn.slot.try_lock() {
                if let Some(writer) = held.as_mut() {
                    if let Err(error) = writer.close_group() {
                        tracing::warn!(%error, "commit of a group of SQLite writes failed");
                    }
                }
            }
        }
    }
}

/// A write transaction ([`Store::begin_write`](super::Store::begin_write)): on SQLite the writer
/// connection, held until the transaction commits or rolls back (or is dropped, which rolls back);
/// on PostgreSQL a pooled transaction.
pub(crate) struct WriteTransaction {
    inner: Inner,
    /// SQLite with full durability: the commit waits for a sync of the WAL.
    sync: Option<Arc<Durable>>,
}

enum Inner {
    Sqlite {
        /// `None` once committed or rolled back.
        turn: Option<OwnedMutexGuard<Option<Writer>>>,
        writers: Arc<Turn>,
        grouped: bool,
    },
    Postgres(Option<Transaction<'static, Any>>),
}

impl WriteTransaction {
    /// A transaction on PostgreSQL.
    pub(super) fn postgres(transaction: Transaction<'static, Any>) -> WriteTransaction {
        WriteTransaction { inner: Inner::Postgres(Some(transaction)), sync: None }
    }

    /// The transaction's connection, to run statements on.
    pub(crate) fn db(&mut self) -> Db<'_> {
        match &mut self.inner {
            Inner::Sqlite { turn: Some(turn), .. } => match turn.as_mut() {
                Some(writer) => Db::Sqlite(&mut writer.connection),
                None => unreachable!("a transaction is begun only on an open store"),
            },
            Inner::Postgres(Some(transaction)) => Db::Any(transaction),
            Inner::Sqlite { turn: None, .. } | Inner::Postgres(None) => {
                unreachable!("the transaction lives until consumed")
            }
        }
    }

    /// Commits, and returns once the commit is durable.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.commit_unsynced().await?.synced().await
    }

    /// Commits and gives up the writer turn; the commit is durable once [`Committed::synced`]
    /// returns (at once on PostgreSQL, or without the group commit). A grouped writer's commit
    /// is not yet visible to other connections either until then.
    pub(crate) async fn commit_unsynced(mut self) -> Result<Committed, StoreError> {
        let sync = self.sync.take();
        match &mut self.inner {
            Inner::Sqlite { turn, writers, grouped } => {
                let mut held = turn.take().ok_or(StoreError::Database(sqlx::Error::PoolClosed))?;
                let writer = held.as_mut().ok_or(StoreError::Database(sqlx::Error::PoolClosed))?;
                let wait = if *grouped {
                    let (number, outcome) = writer.release()?;
                    let members = writer.group.as_ref().map_or(0, |group| group.members);
                    if writers.waiting.load(Ordering::SeqCst) == 0 || members >= WRITE_GROUP_MAX {
                        Wait::Ticket(writer.close_group()?)
                    } else {
                        Wait::Group { number, outcome, writers: writers.clone() }
                    }
                } else {
                    Wait::Ticket(writer.commit()?)
                };
                drop(held);
                Ok(Committed { wait, sync })
            }
            Inner::Postgres(transaction) => {
                if let Some(transaction) = transaction.take() {
                    transaction.commit().await?;
                }
                Ok(Committed { wait: Wait::Ticket(None), sync: None })
            }
        }
    }

    /// Rolls back. A writer may have read what was committed before it and not yet synced, or
    /// what others of its group wrote, and may answer from it (a repeated request finds the first
    /// one's work): its rollback commits its group and returns once every commit so far is
    /// durable, or fails as the group's commits do.
    pub(crate) async fn rollback(mut self) -> Result<(), StoreError> {
        let sync = self.sync.take();
        match &mut self.inner {
            Inner::Sqlite { turn, grouped, .. } => {
                let mut held = turn.take().ok_or(StoreError::Database(sqlx::Error::PoolClosed))?;
                let writer = held.as_mut().ok_or(StoreError::Database(sqlx::Error::PoolClosed))?;
                roll_back(writer, *grouped)?;
                drop(held);
                match sync {
                    // At once when already synced.
                    Some(durable) => Ok(durable.wait(durable.committed()).await?),
                    None => Ok(()),
                }
            }
            Inner::Postgres(transaction) => match transaction.take() {
                Some(transaction) => Ok(transaction.rollback().await?),
                None => Ok(()),
            },
        }
    }
}

/// Rolls a writer's transaction back: a grouped writer's savepoint, then its group is committed
/// (a writer rolls back on a conflict or a row found already there, and reads next what others
/// wrote, on other connections too).
fn roll_back(writer: &mut Writer, grouped: bool) -> Result<(), StoreError> {
    if !grouped {
        return Ok(writer.run("ROLLBACK")?);
    }
    writer.undo()?;
    writer.close_group().map(drop)
}

impl Drop for WriteTransaction {
    fn drop(&mut self) {
        // A transaction still open is rolled back while the turn is held, so the next writer
        // starts clean (should this fail, the next writer rolls it back). A writer dropped
        // unfinished answers with an error, which may name what it read (an order loaded
        // already) before that was synced: an error is not a promise.
        if let Inner::Sqlite { turn: Some(held), grouped, .. } = &mut self.inner {
            if let Some(writer) = held.as_mut() {
                if !writer.connection.is_autocommit() {
                    let _ = roll_back(writer, *grouped);
                }
            }
        }
    }
}

/// A commit done, perhaps not yet durable ([`WriteTransaction::commit_unsynced`]).
#[must_use = "a commit is durable only once `synced` returns"]
pub(crate) struct Committed {
    wait: Wait,
    sync: Option<Arc<Durable>>,
}

enum Wait {
    /// Committed; the group commit's ticket, if there is one.
    Ticket(Option<u64>),
    /// Released into a group still open.
    Group { number: u64, outcome: watch::Receiver<Outcome>, writers: Arc<Turn> },
}

impl Committed {
    /// Waits until the commit is on disk.
    pub(crate) async fn synced(self) -> Result<(), StoreError> {
        let ticket = match self.wait {
            Wait::Ticket(ticket) => ticket,
            Wait::Group { number, mut outcome, writers } => group_outcome(number, &mut outcome, &writers).await?,
        };
        match (ticket, self.sync) {
            (Some(ticket), Some(durable)) => Ok(durable.wait(ticket).await?),
            _ => Ok(()),
        }
    }
}

/// Waits for group `number` to end, taking the turn to commit it should no one else: its ticket.
async fn group_outcome(
    number: u64,
    outcome: &mut watch::Receiver<Outcome>,
    writers: &Turn,
) -> Result<Option<u64>, StoreError> {
    loop {
        let ended = tokio::select! {
            biased;
            ended = outcome.wait_for(|outcome| !matches!(outcome, Outcome::Open)) => {
                ended.map(|ended| ended.clone()).map_err(|_| "the store was closed".to_owned())
            }
            mut turn = writers.hold() => match turn.as_mut() {
                Some(writer) => {
                    writer.close_group_numbered(number);
                    continue;
                }
                None => Err("the store was closed".to_owned()),
            },
        };
        return match ended {
            Ok(Outcome::Committed(ticket)) => Ok(ticket),
            Ok(Outcome::Open) => continue,
            Ok(Outcome::Failed(why)) | Err(why) => Err(StoreError::Database(sqlx::Error::Io(std::io::Error::other(
                format!("the write was not committed: {why}"),
            )))),
        };
    }
}
