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
//!
//! A sync that fails is final: the kernel may have dropped the pages it could not write and a
//! later sync would not say so, so every later write of this file is refused (its commit may have
//! landed; its answer is an error) until the service is restarted and SQLite reads the WAL back.
//! (Each of the store's files has its own group commit: `backoffice_file`.)

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
    /// The first sync that failed: every later wait fails with it.
    failed: std::sync::Mutex<Option<String>>,
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
            failed: std::sync::Mutex::new(None),
        }
    }

    /// The write-ahead log synced by path; `None` when SQLite's is not there (then the writer
    /// syncs its own commits, and this is not used).
    pub(crate) fn found(self) -> Option<Durable> {
        self.wal.is_file().then_some(self)
    }

    /// Refuses when a sync has failed before.
    pub(crate) fn check(&self) -> Result<(), sqlx::Error> {
        let failed = self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match failed.as_ref() {
            None => Ok(()),
            Some(why) => Err(sqlx::Error::Io(std::io::Error::other(format!(
                "an earlier sync of the database's write-ahead log failed ({why}): writes refused until restart"
            )))),
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

    /// Tickets handed out so far: the last one (waiting for it waits for every commit so far).
    pub(crate) fn committed(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    /// The write-ahead log it syncs.
    #[cfg(test)]
    pub(crate) fn wal(&self) -> &std::path::Path {
        &self.wal
    }

    /// Marks a sync failed (as a disk error would).
    #[cfg(test)]
    pub(crate) fn fail_for_test(&self) {
        *self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some("a test's disk error".into());
    }

    /// Holds syncs back (as a slow disk would) while the guard lives.
    #[cfg(test)]
    pub(crate) async fn hold_syncs(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.flushing.lock().await
    }

    /// Waits until `ticket` is durable, syncing the WAL when no other waiter is.
    pub(crate) async fn wait(&self, ticket: u64) -> Result<(), sqlx::Error> {
        self.check()?;
        if self.durable.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let _flushing = self.flushing.lock().await;
        self.check()?;
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
        .map_err(std::io::Error::other)
        .and_then(|synced| synced);
        if let Err(error) = synced {
            let mut failed = self.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            failed.get_or_insert_with(|| error.to_string());
            return Err(sqlx::Error::Io(error));
        }
        self.syncs.fetch_add(1, Ordering::SeqCst);
        self.durable.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }
}
