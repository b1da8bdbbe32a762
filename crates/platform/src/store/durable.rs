//! Group commit of SQLite's writes: one fsync for the transactions that commit together.
//!
//! The writer connection commits with `synchronous = NORMAL` — its WAL frames written to the
//! file, not yet synced — takes a ticket and gives the writer turn to the next transaction; then
//! it waits until a sync made its ticket durable. The first waiter syncs the WAL file (`fdatasync`
//! on the file, beside SQLite, while the writer goes on writing): that carries every frame written
//! before it, so every ticket handed out before the sync began. Waiters that arrive meanwhile
//! share the next sync. A write is answered only once durable, as with `synchronous = FULL` per
//! transaction: a power loss loses no write that was answered. (Another connection may read a
//! committed write in the millisecond before its sync: a read is not a promise.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Tickets handed out and made durable.
#[derive(Debug)]
pub(crate) struct Durable {
    /// The database's write-ahead log.
    wal: PathBuf,
    /// The last ticket handed out (one per commit).
    committed: AtomicU64,
    /// Every ticket up to this one is on disk.
    durable: AtomicU64,
    /// One sync at a time.
    flushing: tokio::sync::Mutex<()>,
    /// Syncs run.
    syncs: AtomicU64,
}

impl Durable {
    /// Group commit for the SQLite database file `database`.
    pub(crate) fn new(database: &std::path::Path) -> Durable {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        Durable {
            wal: PathBuf::from(wal),
            committed: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            flushing: tokio::sync::Mutex::new(()),
            syncs: AtomicU64::new(0),
        }
    }

    /// A ticket for a commit that just returned (its frames are in the file).
    pub(crate) fn ticket(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Syncs run so far.
    #[cfg(test)]
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// Tickets handed out so far.
    #[cfg(test)]
    pub(crate) fn committed(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    /// Holds syncs back (as a slow disk would) while the guard lives.
    #[cfg(test)]
    pub(crate) async fn hold_syncs(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.flushing.lock().await
    }

    /// Waits until `ticket` is durable, syncing the WAL when no other waiter is.
    pub(crate) async fn wait(&self, ticket: u64) -> Result<(), sqlx::Error> {
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let _flushing = self.flushing.lock().await;
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Every ticket so far was taken after its frames were written: this sync carries them.
        let covered = self.committed.load(Ordering::SeqCst);
        let wal = self.wal.clone();
        let synced = tokio::task::spawn_blocking(move || match std::fs::File::open(&wal) {
            Ok(file) => file.sync_data(),
            // No WAL: SQLite copied it into the database and synced that before removing it.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(error),
        })
        .await
        .map_err(|error| sqlx::Error::Io(std::io::Error::other(error)))?;
        synced.map_err(sqlx::Error::Io)?;
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}
