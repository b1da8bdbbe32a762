//! Checkpoints of SQLite's write-ahead log, off the writer's turn.
//!
//! SQLite copies the WAL back into the database file (a checkpoint) in the connection whose
//! commit took the WAL past `wal_autocheckpoint` pages: that was the writer, which held the writer
//! turn through tens of milliseconds of copying while every other writer waited. The writer's
//! automatic checkpoints are off instead, and a task of the store checkpoints on a connection of
//! its own, every [`SQLITE_CHECKPOINT_INTERVAL_MS`] when something was committed meanwhile:
//!
//! 1. a `PASSIVE` checkpoint beside the writer (it blocks no reader and no writer): the bulk of
//!    the copying, while writes go on;
//! 2. then, holding the writer turn, another one, which copies only the frames committed during
//!    the first. With no writer appending, it leaves the whole WAL copied, so the next write
//!    starts the WAL over from its beginning; a checkpoint that always ran beside a busy writer
//!    would never catch up, and the WAL would grow for as long as the writes went on.
//!
//! Durability is unchanged: a checkpoint syncs the WAL before copying and the database after
//! (the connection's `synchronous` is the store's), and a commit is durable once its WAL frames
//! are synced, whether or not it was copied yet. A checkpoint that fails is tried again at the
//! next tick; until then the WAL keeps every commit.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyConnection, Executor};
use tokio::task::JoinHandle;

use super::WriterSlot;

/// How often the WAL is copied back into the database while writes go on, milliseconds.
pub const SQLITE_CHECKPOINT_INTERVAL_MS: u64 = 500;

/// The store's checkpointing task; stopped when dropped.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    counts: Arc<Counts>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Commits of the writer.
    commits: AtomicU64,
    /// Checkpoints run to the end (both steps).
    done: AtomicU64,
}

impl Checkpoints {
    /// Starts checkpointing with `connection` (one of the store's, kept for this), taking turns
    /// with the writer in `writer`.
    pub(crate) fn start(mut connection: AnyConnection, writer: WriterSlot) -> Checkpoints {
        let counts = Arc::new(Counts::default());
        let seen = counts.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(SQLITE_CHECKPOINT_INTERVAL_MS));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut checkpointed = 0;
            loop {
                ticks.tick().await;
                let commits = seen.commits.load(Ordering::SeqCst);
                if commits == checkpointed {
                    continue;
                }
                if let Err(error) = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                    tracing::warn!(%error, "checkpoint of the SQLite write-ahead log failed; tried again later");
                    continue;
                }
                let turn = writer.lock().await;
                if turn.is_none() {
                    // The store was closed.
                    return;
                }
                let tail = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").await;
                drop(turn);
                match tail {
                    Ok(_) => {
                        checkpointed = commits;
                        seen.done.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "checkpoint of the SQLite write-ahead log failed; tried again later")
                    }
                }
            }
        });
        Checkpoints { counts, task }
    }

    /// The writer committed.
    pub(crate) fn committed(&self) {
        self.counts.commits.fetch_add(1, Ordering::SeqCst);
    }

    /// Checkpoints run to the end so far.
    #[cfg(test)]
    pub(crate) fn done(&self) -> u64 {
        self.counts.done.load(Ordering::SeqCst)
    }

    /// Stops the task (its connection is closed with it).
    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.task.abort();
    }
}
