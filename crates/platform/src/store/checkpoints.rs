//! Checkpoints of SQLite's write-ahead log, off the writer's turn.
//!
//! SQLite copies the WAL back into the database file (a checkpoint) in the connection whose
//! commit took the WAL past `wal_autocheckpoint` pages: that was the writer, which held the writer
//! turn through tens of milliseconds of copying while every other writer waited (a second or more
//! after a fold of a large day's shadows). The writer's automatic checkpoints are now off while a
//! task of the store checkpoints on a connection of its own (on again, at a WAL four times as long,
//! from the writer's first commit after that task is gone or silent: `writer::Backstop`), every
//! [`SQLITE_CHECKPOINT_INTERVAL_MS`] when something was committed meanwhile:
//!
//! 1. a `PASSIVE` checkpoint beside the writer (it blocks no reader and no writer): the bulk of
//!    the copying, while writes go on; one that found another checkpoint running is tried again
//!    at the next tick;
//! 2. then, once the WAL holds [`SQLITE_CHECKPOINT_PAGES`] frames (of 2 KiB pages: as many bytes
//!    in the back office's file of larger pages), another one holding the writer
//!    turn, which copies only the frames committed during the first. With no writer appending, it
//!    leaves the whole WAL copied, so the next write starts the WAL over from its beginning
//!    (unless a reading transaction still holds an older snapshot: then a later one does). A
//!    checkpoint that always ran beside a busy writer would never catch up, and the WAL would
//!    grow for as long as the writes went on.
//!
//! Durability is unchanged: a checkpoint syncs the WAL before copying and the database after
//! (the connection's `synchronous` is the store's), and a commit is durable once its WAL frames
//! are synced, whether or not it was copied yet. A checkpoint that fails is tried again at the
//! next tick; until then the WAL keeps every commit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::task::JoinHandle;

use super::writer::{Turn, WriterSlot};

/// How often the WAL is copied back into the database while writes go on, milliseconds.
pub const SQLITE_CHECKPOINT_INTERVAL_MS: u64 = 500;

/// Whether the store's checkpoints task is at work, for the writer's `Backstop`: running, and
/// its loop turned lately.
#[derive(Debug)]
pub(crate) struct Checkpointing {
    running: AtomicBool,
    /// Milliseconds from `since` to the task's last turn of its loop.
    beat_ms: AtomicU64,
    since: std::time::Instant,
    silent_ms: u64,
}

/// A checkpoints task silent this long (its loop not turning: starved, or stuck waiting) is taken
/// for gone: its longest checkpoint, of a fold's gigabyte of WAL, takes seconds. (One stuck inside
/// a checkpoint holds SQLite's checkpoint lock: the writer's own would find it busy too.)
pub(crate) const CHECKPOINTS_SILENT_MS: u64 = 60_000;

impl Checkpointing {
    /// A task at work from now, taken for gone once silent for `silent_ms`.
    pub(crate) fn new(silent_ms: u64) -> Arc<Checkpointing> {
        Arc::new(Checkpointing {
            running: AtomicBool::new(true),
            beat_ms: AtomicU64::new(0),
            since: std::time::Instant::now(),
            silent_ms,
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.since.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The task's loop turned.
    pub(crate) fn beat(&self) {
        self.beat_ms.store(self.now_ms(), Ordering::SeqCst);
    }

    /// The task ended.
    pub(crate) fn stopped(&self) {
        self.running.store(false, Ordering::SeqCst);
    }

    pub(crate) fn at_work(&self) -> bool {
        self.running.load(Ordering::SeqCst)
            && self.now_ms().saturating_sub(self.beat_ms.load(Ordering::SeqCst)) <= self.silent_ms
    }
}

/// The store's checkpointing task; stopped when dropped.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    /// Read by tests.
    #[cfg_attr(not(test), allow(dead_code))]
    counts: Arc<Counts>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Second steps run (in the writer's turn).
    in_turn: AtomicU64,
}

/// A `PASSIVE` checkpoint: the WAL's frames, or `None` when it did nothing — another checkpoint
/// was running, or it failed (logged) — and is tried again at the next tick. It runs on a
/// blocking thread (it copies pages for milliseconds), and gives the connection back (`None`
/// when that thread could not run: the runtime is shutting down).
async fn checkpoint(connection: Connection) -> Option<(Connection, Option<i64>)> {
    let ran = tokio::task::spawn_blocking(move || {
        let answer = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(0)? != 0, row.get::<_, i64>(1)?))
        });
        (connection, answer)
    })
    .await;
    let (connection, answer) = ran.ok()?;
    Some(match answer {
        Ok((false, frames)) => (connection, Some(frames)),
        Ok((true, _)) => (connection, None),
        Err(error) => {
            tracing::warn!(%error, "checkpoint of the SQLite write-ahead log failed; tried again later");
            (connection, None)
        }
    })
}

impl Checkpoints {
    /// Starts checkpointing with `connection` (one of the store's, kept for this), taking turns
    /// with the writer in `writer`, whose commits are counted in `commits`, once the WAL holds
    /// `frames` frames. The task tells `checkpointing` that it is at work (each turn of its
    /// loop) and when it is gone: the writer turns SQLite's own checkpoints on meanwhile
    /// (`writer::Backstop`).
    pub(crate) fn start(
        mut connection: Connection,
        writer: WriterSlot,
        commits: Arc<AtomicU64>,
        frames_max: u32,
        checkpointing: Arc<Checkpointing>,
    ) -> Checkpoints {
        /// Tells the writer the task is gone, however it ends (returned, aborted, panicked).
        struct Running(Arc<Checkpointing>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.stopped();
            }
        }
        checkpointing.beat();
        let running = Running(checkpointing);
        let counts = Arc::new(Counts::default());
        let seen = counts.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(SQLITE_CHECKPOINT_INTERVAL_MS));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut checkpointed = 0;
            loop {
                ticks.tick().await;
                running.0.beat();
                let commits = commits.load(Ordering::SeqCst);
                if commits == checkpointed {
                    continue;
                }
                let Some((kept, frames)) = checkpoint(connection).await else { return };
                running.0.beat();
                connection = kept;
                let Some(frames) = frames else { continue };
                if frames >= i64::from(frames_max) {
                    let mut turn = writer.hold().await;
                    if turn.is_none() {
                        // The store was closed.
                        return;
                    }
                    // The writers' open group committed: the WAL is then copied whole.
                    Turn::close_group_in(&mut turn);
                    let Some((kept, tail)) = checkpoint(connection).await else { return };
                    running.0.beat();
                    connection = kept;
                    drop(turn);
                    if tail.is_none() {
                        continue;
                    }
                    seen.in_turn.fetch_add(1, Ordering::SeqCst);
                }
                checkpointed = commits;
            }
        });
        Checkpoints { counts, task: std::sync::Mutex::new(Some(task)) }
    }

    /// Second steps run so far (each copied the WAL whole, in the writer's turn).
    #[cfg(test)]
    pub(crate) fn in_turn(&self) -> u64 {
        self.counts.in_turn.load(Ordering::SeqCst)
    }

    fn task(&self) -> Option<JoinHandle<()>> {
        self.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    /// Stops the task and waits until it is gone (a checkpoint already running on its blocking
    /// thread finishes there, and closes its connection then).
    pub(crate) async fn stop(&self) {
        if let Some(task) = self.task() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        if let Some(task) = self.task() {
            task.abort();
        }
    }
}
