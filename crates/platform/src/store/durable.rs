//! Group commit of SQLite's writes: one fsync for the transactions that commit together.
//!
//! The writer connection commits with `synchronous = NORMAL` (its WAL frames written, not yet
//! synced), takes a ticket and gives the writer turn to the next transaction; then it waits until
//! a *barrier* made its ticket durable. The first waiter runs the barrier: with the writer turn, a
//! one-row write committed with `synchronous = FULL`, whose fsync of the WAL carries every frame
//! before it — the frames of every ticket handed out so far. Waiters that arrive while it runs
//! share the next one. A write is answered only once durable, as with `synchronous = FULL` per
//! transaction: a power loss loses no write that was answered. (Another connection may read a
//! committed write in the millisecond before its barrier: a read is not a promise.)

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Executor;

use super::WriterSlot;

/// Tickets handed out and made durable.
#[derive(Debug, Default)]
pub(crate) struct Durable {
    /// The last ticket handed out (one per commit).
    committed: AtomicU64,
    /// Every ticket up to this one is on disk.
    durable: AtomicU64,
    /// One barrier at a time.
    flushing: tokio::sync::Mutex<()>,
}

impl Durable {
    /// A ticket for a commit that just returned, taken while still holding the writer turn (so
    /// that a barrier which takes the turn next covers it).
    pub(crate) fn ticket(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Waits until `ticket` is durable, running the barrier when no other waiter is.
    pub(crate) async fn wait(&self, ticket: u64, writer: &WriterSlot) -> Result<(), sqlx::Error> {
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let _flushing = self.flushing.lock().await;
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let mut turn = writer.clone().lock_owned().await;
        let held = turn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        if held.open {
            // A writer cancelled mid-transaction left it open (see `begin_write`).
            let _ = held.connection.execute("ROLLBACK").await;
            held.open = false;
        }
        // Every ticket so far was taken before this turn: the barrier's fsync covers them.
        let covered = self.committed.load(Ordering::SeqCst);
        held.open = true;
        let barrier = barrier(&mut held.connection).await;
        held.open = barrier.is_err();
        barrier?;
        self.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}

/// One row changed and committed under `synchronous = FULL`, then back to `NORMAL`.
async fn barrier(connection: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    connection.execute("PRAGMA synchronous = FULL").await?;
    let written = async {
        connection.execute("BEGIN IMMEDIATE").await?;
        connection.execute("UPDATE store_sync SET barriers = barriers + 1 WHERE id = 1").await?;
        connection.execute("COMMIT").await
    }
    .await;
    if written.is_err() {
        let _ = connection.execute("ROLLBACK").await;
    }
    connection.execute("PRAGMA synchronous = NORMAL").await?;
    written.map(|_| ())
}
