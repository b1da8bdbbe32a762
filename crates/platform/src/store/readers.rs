//! SQLite's reading connections: native (`rusqlite`), opened on demand up to the store's
//! connection count, kept idle between uses, with the back office's file attached
//! (`backoffice_file`). They read beside the writer (WAL), and refuse to
//! write (`query_only`): SQLite's write lock is held by the writers' shared transaction between
//! their turns (`writer`), and a write here would wait for it in SQLite's busy handler, holding
//! its thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::backoffice_file::{attach_sql, BACKOFFICE_SCHEMA};
use super::sql::{Db, SQLITE_STATEMENTS_CACHED};
use super::{StoreError, SQLITE_BUSY_TIMEOUT_MS, SQLITE_CHECKPOINT_PAGES, SQLITE_READER_CACHE_KIB};

/// How long a read waits for a free connection before it fails (as `sqlx`'s pools do).
pub const READER_WAIT_MS: u64 = 30_000;

/// Whether a connection attaches the back office's file (`backoffice_file`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Attach {
    /// A reading connection: it reads the tables of both files.
    Yes,
    /// A writer or a checkpointer: its one file only.
    No,
}

/// Opens a native connection to the database file `path` with the settings every connection
/// shares (for each of its files, with `attach`).
pub(crate) fn open(path: &Path, synchronous: &str, cache_kib: u32, attach: Attach) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.set_prepared_statement_cache_capacity(SQLITE_STATEMENTS_CACHED);
    // Foreign keys checked (SQLite's default is off, unless built otherwise); pages stay in
    // memory between transactions (the writer keeps more); a multi-row statement's undo journal
    // stays in memory, not a temporary file; the WAL is copied back in fewer, larger checkpoints
    // (pages rewritten by many commits are copied once). `synchronous` and the cache are each
    // file's own settings.
    connection.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA temp_store = MEMORY; \
         PRAGMA wal_autocheckpoint = {SQLITE_CHECKPOINT_PAGES};"
    ))?;
    let mut schemas = vec!["main"];
    if attach == Attach::Yes {
        connection.execute_batch(&attach_sql(path)?)?;
        schemas.push(BACKOFFICE_SCHEMA);
    }
    for schema in schemas {
        connection.execute_batch(&format!(
            "PRAGMA {schema}.synchronous = {synchronous}; PRAGMA {schema}.cache_size = -{cache_kib};"
        ))?;
    }
    Ok(connection)
}

/// Refuses the file `connection` opened as its main database (at `path`) unless it is in WAL
/// mode. Setting the mode (`PRAGMA journal_mode = WAL`, at the store's opening) answers the mode
/// SQLite could set, which is not always the one asked for.
pub(crate) fn require_wal(connection: &Connection, path: &Path) -> Result<(), StoreError> {
    let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(StoreError::NotWal { file: path.display().to_string(), mode })
    }
}

/// The page size of the file `connection` opened as its main database.
pub(crate) fn page_bytes(connection: &Connection) -> Result<u32, StoreError> {
    Ok(connection.query_row("PRAGMA page_size", [], |row| row.get(0))?)
}

/// The reading connections of one store.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    synchronous: &'static str,
    idle: Mutex<Option<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, synchronous: &'static str, connections: u32) -> Readers {
        let permits = Arc::new(Semaphore::new(connections as usize));
        Readers { path, synchronous, idle: Mutex::new(Some(Vec::new())), permits }
    }

    /// A connection, once one of the store's is free.
    pub(crate) async fn lease(self: &Arc<Readers>) -> Result<Lease, StoreError> {
        let wait = std::time::Duration::from_millis(READER_WAIT_MS);
        let permit = tokio::time::timeout(wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))?
            .map_err(|_| closed())?;
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).as_mut().ok_or_else(closed)?.pop();
        let connection = match idle {
            Some(connection) => connection,
            None => {
                let connection = open(&self.path, self.synchronous, SQLITE_READER_CACHE_KIB, Attach::Yes)?;
                // A write here is refused at once, rather than waiting for the writers' lock.
                connection.execute_batch("PRAGMA query_only = ON")?;
                connection
            }
        };
        Ok(Lease { connection: Some(connection), readers: self.clone(), _permit: permit })
    }

    /// Closes the idle connections; those leased close when given back.
    pub(crate) fn close(&self) {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.permits.close();
    }
}

fn closed() -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}

/// A reading connection, given back when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    connection: Option<Connection>,
    readers: Arc<Readers>,
    _permit: OwnedSemaphorePermit,
}

impl Lease {
    pub(crate) fn db(&mut self) -> Db<'_> {
        match self.connection.as_mut() {
            Some(connection) => Db::Sqlite(connection),
            None => unreachable!("a lease holds its connection until dropped"),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(connection) = self.connection.take() else { return };
        // A transaction left open (a reader dropped half-way) is rolled back before reuse.
        if !connection.is_autocommit() && connection.execute_batch("ROLLBACK").is_err() {
            return;
        }
        if let Some(idle) = self.readers.idle.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            idle.push(connection);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_not_in_wal_mode_is_refused_by_name_and_mode() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("rollback.sqlite");
        let connection = Connection::open(&path).expect("opened");
        connection.execute_batch("PRAGMA journal_mode = TRUNCATE; CREATE TABLE t (n)").expect("made");
        match require_wal(&connection, &path) {
            Err(StoreError::NotWal { file, mode }) => {
                assert_eq!((file.as_str(), mode.as_str()), (path.to_str().expect("a UTF-8 path"), "truncate"));
            }
            other => panic!("not refused: {other:?}"),
        }
        let refusal = require_wal(&connection, &path).expect_err("refused").to_string();
        assert!(refusal.contains("rollback.sqlite") && refusal.contains("\"truncate\""), "{refusal}");
        connection.execute_batch("PRAGMA journal_mode = WAL").expect("switched");
        require_wal(&connection, &path).expect("a WAL file is taken");
    }
}
