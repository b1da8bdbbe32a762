//! Storage: the payment orders and the ledger in SQLite (the embedded default: one file under a
//! data directory, in WAL mode) or PostgreSQL (by URL), through one code path (the same SQL run
//! by [`sql::query`]: natively on SQLite, through `sqlx`'s `any` driver on PostgreSQL) and the
//! same migrations (`crates/platform/migrations/`, embedded in the binary, run by `sqlx`).
//!
//! Every write that moves money is one transaction: the order's compare-and-swap transition and
//! its ledger posting commit together or not at all. Concurrent writers are safe on both back
//! ends: SQLite transactions that write start with `BEGIN IMMEDIATE` (one writer at a time,
//! others wait up to [`SQLITE_BUSY_TIMEOUT_MS`]); on PostgreSQL the compare-and-swap `UPDATE`
//! and the posting's primary key decide, and the loser retries or finds the work done.

mod access;
mod agreement;
mod backoffice_file;
#[cfg(test)]
mod backoffice_file_tests;
mod cards;
#[cfg(test)]
mod checkpoint_tests;
mod checkpoints;
mod clearing;
pub(crate) mod closures;
mod durable;
mod group_shadows;
mod hotlist;
mod ingest_group;
#[cfg(test)]
mod ingest_group_tests;
mod ingest_queue;
mod kept_batches;
mod ledger;
mod loads;
mod orders;
mod platform_feed;
#[cfg(test)]
mod query_plan_tests;
mod readers;
mod settlement;
mod shadow_cache;
mod shadow_journal;
#[cfg(test)]
mod shadow_journal_tests;
pub(crate) mod sql;
mod staged_batches;
mod writer;
#[cfg(test)]
mod writer_tests;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Any, AnyPool, ConnectOptions, Connection, Transaction};

pub use access::OPERATOR_KEYS_LISTED_MAX;
pub use backoffice_file::{backoffice_path, BACKOFFICE_SCHEMA, SQLITE_BACKOFFICE_PAGE_BYTES};
pub use checkpoints::SQLITE_CHECKPOINT_INTERVAL_MS;
pub use clearing::{
    BatchAnswer, IngestError, Ingested, RaisedFlag, RejectedRecord, SettledRecord, ShadowCensus, Upload,
};
pub use closures::REFUND_PARTS_MAX;
pub use hotlist::HotlistChangeError;
pub use ingest_group::PARALLEL_FEED_RECORDS;
pub use ingest_queue::{IngestQueue, IngestStats, GROUP_RECORDS_MAX, QUEUED_RECORDS_MAX};
pub use kept_batches::{KeptDisposition, KeptRecord};
pub use ledger::{PostOutcome, CHECK_LISTED_MAX};
pub use loads::LOADS_LISTED_MAX;
pub use orders::{CARD_ORDERS_LISTED_MAX, ORDERS_LISTED_MAX};
pub use platform_feed::{PlatformFeed, FEED_MARGIN_MS, PLATFORM_BATCH_PREFIX, PLATFORM_OPERATOR};
pub use settlement::PlatformDay;
pub use shadow_cache::{SHADOW_CACHE_CARDS, SHADOW_CACHE_CARDS_MAX};
pub use staged_batches::{STAGED_KEPT_MS, SWEEP_EVERY};

pub(crate) use cards::{
    allocate_sequence_in, card_by_id_in, card_of_device_in, count_promotion_in, insert_card_in, insert_signup_order_in,
    signup_order_in,
};
pub(crate) use ledger::{balance_in, post_in, record_card_balance_in};
pub(crate) use loads::{
    doubt_of_card_in, insert_load_in, live_load_in, loads_on_card_in, next_transaction_number_in, settle_load_in,
};
pub(crate) use orders::{insert_order_in, order_in, orders_of_card_in, transition_in, transitions};

pub(crate) use sql::{column, Db};

use crate::ledger::LedgerError;
use checkpoints::{Checkpointing, Checkpoints, CHECKPOINTS_SILENT_MS};
use durable::Durable;
use readers::{Attach, Readers};
use shadow_cache::ShadowCache;
pub(crate) use writer::WriteTransaction;
pub use writer::WRITE_GROUP_MAX;
use writer::{Backstop, Turn, Writer, WriterSlot};

/// Connections per pool by default. SQLite has one writer at a time anyway; PostgreSQL's
/// default limit is 100 connections, shared by every service and test.
pub const STORE_CONNECTIONS_DEFAULT: u32 = 4;
/// Most connections a pool may be given.
pub const STORE_CONNECTIONS_MAX: u32 = 64;
/// PostgreSQL connections kept for `COPY`, beside the pool.
pub const COPIER_CONNECTIONS: u32 = 2;
/// How long a SQLite writer waits for another's transaction before giving up.
pub const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
/// SQLite's page size for a new database (an existing one keeps its own). A commit writes
/// each page it changed whole into the WAL: a top-up's few rows dirty a handful of pages, so
/// smaller pages write less; 2 KiB made top-ups about 8% faster than SQLite's 4 KiB default with
/// no loss to clearing's bulk writes, which 1 KiB slowed by a fifth (`yitong bench`). The back
/// office's file has larger pages ([`SQLITE_BACKOFFICE_PAGE_BYTES`]).
pub const SQLITE_PAGE_BYTES: u32 = 2_048;
/// SQLite's page cache of the writer connection, KiB: the pages it rewrites stay in memory from
/// one write to the next.
pub const SQLITE_CACHE_KIB: u32 = 65_536;
/// SQLite's page cache of each reading connection of the pool, KiB (up to
/// [`STORE_CONNECTIONS_MAX`] of them: not the writer's 64 MiB each).
pub const SQLITE_READER_CACHE_KIB: u32 = 8_192;
/// WAL pages after which a commit of a connection other than the writer copies the WAL back into
/// the database (SQLite's default: 1,000), and the store's checkpoints task starts the WAL over
/// ([`SQLITE_CHECKPOINT_INTERVAL_MS`]; the writer's own commits copy it back only while that task
/// is not at work, at four times as many).
pub const SQLITE_CHECKPOINT_PAGES: u32 = 10_000;
/// The SQLite file in a data directory.
pub const SQLITE_FILE_NAME: &str = "platform.sqlite";

/// A SQLite writer on `connection` (the database file `file` opened alone), with its group
/// commit and its checkpoints.
fn writer_of(
    connection: rusqlite::Connection,
    file: &Path,
    synchronous: &'static str,
    durability: Durability,
) -> Result<(WriterSlot, Checkpoints), StoreError> {
    // As many bytes of WAL as [`SQLITE_CHECKPOINT_PAGES`] pages of [`SQLITE_PAGE_BYTES`], whatever
    // the file's page size.
    let page_bytes = readers::page_bytes(&connection)?;
    let frames = (u64::from(SQLITE_CHECKPOINT_PAGES) * u64::from(SQLITE_PAGE_BYTES) / u64::from(page_bytes.max(1)))
        .clamp(1, u64::from(SQLITE_CHECKPOINT_PAGES)) as u32;
    // The group commit, where the WAL is where it should be (the migrations wrote through it).
    let durable =
        Some(Durable::new(file)).filter(|_| durability == Durability::Full).and_then(Durable::found).map(Arc::new);
    if durable.is_some() {
        // Synced by the group commit instead (`durable`).
        connection.execute_batch("PRAGMA synchronous = NORMAL;")?;
    }
    // Checkpointed by `checkpoints` instead, outside the writer's turn; SQLite's own only once
    // that task is gone (`Backstop`), at four times as many frames.
    let checkpointing = Checkpointing::new(CHECKPOINTS_SILENT_MS);
    let backstop = Backstop::new(&connection, 4 * frames, checkpointing.clone())?;
    let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer: WriterSlot = Turn::new(Writer::new(connection, durable, commits.clone(), backstop));
    let checkpointer = readers::open(file, synchronous, SQLITE_READER_CACHE_KIB, Attach::No)?;
    let checkpoints = Checkpoints::start(checkpointer, writer.clone(), commits, frames, checkpointing);
    Ok((writer, checkpoints))
}

/// The migrations, in order; the same SQL runs on SQLite and PostgreSQL, after the back end's own
/// half where it has one ([`BACKEND_HALVES`]).
const MIGRATIONS: [(i64, &str, &str); 12] = [
    (1, "orders and ledger", include_str!("../../migrations/0001_orders_and_ledger.sql")),
    (2, "cards and loads", include_str!("../../migrations/0002_cards_and_loads.sql")),
    (3, "closures", include_str!("../../migrations/0003_closures.sql")),
    (4, "phones and operators", include_str!("../../migrations/0004_phones_and_operators.sql")),
    (5, "hotlist", include_str!("../../migrations/0005_hotlist.sql")),
    (6, "clearing", include_str!("../../migrations/0006_clearing.sql")),
    (7, "platform feed", include_str!("../../migrations/0007_platform_feed.sql")),
    (8, "packed batches", include_str!("../../migrations/0008_packed_batches.sql")),
    (9, "staged batches", include_str!("../../migrations/0009_staged_batches.sql")),
    (10, "loads by order", include_str!("../../migrations/0010_loads_by_order.sql")),
    (11, "phone resets", include_str!("../../migrations/0011_phone_resets.sql")),
    (12, "shadows packed v2", include_str!("../../migrations/0012_shadows_packed_v2.sql")),
];

/// (version, SQLite, PostgreSQL): what a migration spells differently on each back end (SQLite
/// cannot drop a constraint; a binary column is `BLOB` on one, `BYTEA` on the other), run first in the migration's transaction.
const BACKEND_HALVES: [(i64, &str, &str); 3] = [
    (
        3,
        include_str!("../../migrations/0003_closures.sqlite.sql"),
        include_str!("../../migrations/0003_closures.postgres.sql"),
    ),
    (
        8,
        include_str!("../../migrations/0008_packed_batches.sqlite.sql"),
        include_str!("../../migrations/0008_packed_batches.postgres.sql"),
    ),
    (
        9,
        include_str!("../../migrations/0009_staged_batches.sqlite.sql"),
        include_str!("../../migrations/0009_staged_batches.postgres.sql"),
    ),
];

/// How hard SQLite works to keep a commit across a power loss (PostgreSQL keeps its own
/// server settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Every commit is on disk before it returns (on SQLite by the store's group commit, else
    /// `synchronous = FULL`): the default.
    #[default]
    Full,
    /// Commits survive a crash of the process but the last ones may be lost at a power loss
    /// (`synchronous = NORMAL` in WAL mode, never a corrupt file); about three times the
    /// commits per second. Safe only because every step can be redone: paid orders are polled
    /// again from the provider, and a load is reconciled from the card's counter and log.
    Os,
}

/// How to open a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Connections in the pool, 1 to [`STORE_CONNECTIONS_MAX`].
    pub connections: u32,
    /// SQLite's durability.
    pub durability: Durability,
    /// Card shadows the back office keeps in memory between ingest groups, 2 to
    /// [`SHADOW_CACHE_CARDS_MAX`] (default [`SHADOW_CACHE_CARDS`]). On SQLite the shadow journal
    /// is folded into the cards' rows each time half as many were journaled. A day with more
    /// cards than this reads the ones dropped again from their rows and folds more often; each
    /// cached card holds its shadow (the card's transactions) in memory.
    pub shadow_cache_cards: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            connections: STORE_CONNECTIONS_DEFAULT,
            durability: Durability::Full,
            shadow_cache_cards: SHADOW_CACHE_CARDS,
        }
    }
}

/// Which database a [`Store`] is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// What can go wrong in storage.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// A database URL that is neither `sqlite:PATH` nor `postgres://…`.
    BadUrl(String),
    /// The database answered with an error (connection lost, constraint, …).
    Database(sqlx::Error),
    /// SQLite answered with an error (busy, constraint, disk, …).
    Sqlite(rusqlite::Error),
    /// The migrations could not be applied (for example a database changed by a newer version).
    Migrate(sqlx::migrate::MigrateError),
    /// A stored row that does not parse: the database was changed outside this code.
    Corrupt {
        /// The table.
        table: &'static str,
        /// The row's key.
        key: String,
        /// What is wrong.
        why: String,
    },
    /// A posting refused by the ledger (unbalanced, or its ID reused for other lines).
    Ledger(LedgerError),
    /// Another writer kept changing the same row; gave up after this many attempts.
    Contended(u32),
    /// A SQLite file that SQLite did not switch to WAL: the store reads beside its writer and
    /// syncs its commits as the WAL's appends, and does not run on another journal mode.
    NotWal {
        /// The file.
        file: String,
        /// The journal mode SQLite answered it is in.
        mode: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::BadUrl(url) => {
                write!(f, "bad database URL {url:?}: expected sqlite:PATH or postgres://USER@HOST:PORT/DATABASE")
            }
            StoreError::Database(error) => write!(f, "database: {error}"),
            StoreError::Sqlite(error) => write!(f, "database: {error}"),
            StoreError::Migrate(error) => write!(f, "database migration: {error}"),
            StoreError::Corrupt { table, key, why } => write!(f, "corrupt row in {table} ({key}): {why}"),
            StoreError::Ledger(error) => write!(f, "ledger: {error}"),
            StoreError::Contended(attempts) => {
                write!(f, "the row kept changing under {attempts} attempts; try again")
            }
            StoreError::NotWal { file, mode } => write!(
                f,
                "{file}: SQLite could not switch it to WAL and left it in journal mode {mode:?} (the file's \
                 VFS offers no shared memory: a `vfs=` or `immutable` option of the URL, or a network mount \
                 on some systems)"
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Database(error) => Some(error),
            StoreError::Sqlite(error) => Some(error),
            StoreError::Migrate(error) => Some(error),
            StoreError::Ledger(error) => Some(error),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        StoreError::Database(error)
    }
}

impl StoreError {
    /// A unique or primary key refused the row (on either back end).
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(error) => error.as_database_error().is_some_and(|e| e.is_unique_violation()),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => matches!(
                error.extended_code,
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            ),
            _ => false,
        }
    }
}

impl From<LedgerError> for StoreError {
    fn from(error: LedgerError) -> StoreError {
        StoreError::Ledger(error)
    }
}

/// The embedded migrations for one back end as a `sqlx` migration source.
#[derive(Debug)]
struct EmbeddedMigrations(Backend);

type BoxDynError = Box<dyn std::error::Error + Send + Sync>;

impl<'s> MigrationSource<'s> for EmbeddedMigrations {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>> {
        Box::pin(async move {
            let migrations = MIGRATIONS
                .iter()
                .map(|&(version, description, sql)| {
                    let half = BACKEND_HALVES.iter().find(|half| half.0 == version).map(|&(_, sqlite, postgres)| {
                        match self.0 {
                            Backend::Sqlite => sqlite,
                            Backend::Postgres => postgres,
                        }
                    });
                    let sql = match half {
                        Some(half) => Cow::Owned(format!("{half}\n{sql}")),
                        None => Cow::Borrowed(sql),
                    };
                    Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, sql, false)
                })
                .collect();
            Ok(migrations)
        })
    }
}

/// The cores this process may run on, read once: `available_parallelism` reads the cgroup's
/// files on Linux each time it is asked.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// The platform's database: orders, ledger postings, believed card balances. Cheap to clone
/// (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    backend: Backend,
    /// SQLite's one writing connection, kept out of the pool: writers queue for it here, in
    /// arrival order, rather than in SQLite's busy handler (which sleeps in growing steps and
    /// makes a long tail of waits), and its page cache stays warm from one write to the next
    /// (a pooled connection's cache is dropped whenever another connection wrote). This one
    /// writes the store's file, the next one the back office's; `None` on PostgreSQL (`None`
    /// inside once closed).
    writer: Option<WriterSlot>,
    /// SQLite's writer of the back office's file (`backoffice_file`), as the one above.
    backoffice_writer: Option<WriterSlot>,
    /// Card shadows between ingest groups (shared by the store's clones).
    shadows: Arc<ShadowCache>,
    /// SQLite: what this store journaled of the shadows since it last folded (`shadow_journal`).
    journal: Arc<shadow_journal::ShadowJournal>,
    /// Ingest attempts prepared again from the database (refused, or lost to another writer).
    ingest_retries: Arc<std::sync::atomic::AtomicU64>,
    /// Ingest groups write one at a time, in the order they took it (`ingest_group`): on
    /// PostgreSQL too, where a group prepared on another's shadows would otherwise race it.
    pub(super) ingest_turn: Arc<tokio::sync::Mutex<()>>,
    /// SQLite's checkpoints, off the writers' turns: the store's file's, then the back office's
    /// (none on PostgreSQL).
    checkpoints: Vec<Arc<Checkpoints>>,
    /// PostgreSQL: native connections, for `COPY` (`staged_batches`).
    copier: Option<Arc<staged_batches::Copier>>,
}

/// The connections that read (and write outside the writer's turn).
#[derive(Debug, Clone)]
enum Pool {
    /// SQLite's native reading connections.
    Sqlite(Arc<Readers>),
    /// PostgreSQL's pool (every connection, writers too).
    Postgres(AnyPool),
}

/// A connection for reads outside a write transaction ([`Store::reader`]).
pub(crate) enum Reader {
    Sqlite(readers::Lease),
    Postgres(sqlx::pool::PoolConnection<Any>),
}

impl Reader {
    /// The connection, to run statements on.
    pub(crate) fn db(&mut self) -> Db<'_> {
        match self {
            Reader::Sqlite(lease) => lease.db(),
            Reader::Postgres(connection) => Db::Any(connection),
        }
    }

    /// The connection, for a report's reads, which may run long ([`Db::SqliteReport`]).
    pub(crate) fn report_db(&mut self) -> Db<'_> {
        report(self.db())
    }
}

/// `db` for a report's reads.
fn report(db: Db<'_>) -> Db<'_> {
    match db {
        Db::Sqlite(connection) => Db::SqliteReport(connection),
        other => other,
    }
}

/// A read-only transaction that sees one consistent snapshot ([`Store::begin_snapshot`]); rolled
/// back when dropped.
pub(crate) enum Snapshot {
    /// `report`: its statements may run long ([`Db::SqliteReport`]).
    Sqlite {
        lease: readers::Lease,
        report: bool,
    },
    Postgres(Transaction<'static, Any>),
}

impl Snapshot {
    /// Ends the transaction.
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Snapshot::Sqlite { mut lease, .. } => lease.db().batch("COMMIT").await,
            Snapshot::Postgres(transaction) => Ok(transaction.commit().await?),
        }
    }

    /// The transaction's connection, to run statements on.
    pub(crate) fn db(&mut self) -> Db<'_> {
        match self {
            Snapshot::Sqlite { lease, report: true } => report(lease.db()),
            Snapshot::Sqlite { lease, report: false } => lease.db(),
            Snapshot::Postgres(transaction) => Db::Any(transaction),
        }
    }
}

impl Store {
    /// Opens `url` — `sqlite:PATH` (the file is created, in WAL mode) or `postgres://…` — and
    /// applies the migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, StoreOptions::default()).await
    }

    /// [`Store::open`] with other [`StoreOptions`].
    pub async fn open_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        let connections = options.connections.clamp(1, STORE_CONNECTIONS_MAX);
        let cards = options.shadow_cache_cards.clamp(2, SHADOW_CACHE_CARDS_MAX);
        if url.starts_with("sqlite:") {
            Store::open_sqlite(url, options.durability, connections, cards).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Store::open_postgres(url, connections, cards).await
        } else {
            Err(StoreError::BadUrl(url.to_owned()))
        }
    }

    async fn open_sqlite(
        url: &str,
        durability: Durability,
        connections: u32,
        cards: usize,
    ) -> Result<Store, StoreError> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            // Each connection would get its own empty database.
            return Err(StoreError::BadUrl(url.to_owned()));
        }
        // WAL is a property of the file: set it once, every later connection inherits it.
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|_| StoreError::BadUrl(url.to_owned()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .page_size(SQLITE_PAGE_BYTES)
            .busy_timeout(std::time::Duration::from_millis(u64::from(SQLITE_BUSY_TIMEOUT_MS)));
        let mut migrating = options.connect().await?;
        // The WALs are synced by path (`durable`), and SQLite keeps a WAL beside the file a
        // symbolic link leads to: the paths made absolute and real, once the file is there.
        let real = |file: &Path| std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
        let file = real(options.get_filename());
        // The back office's file made, if it is not there yet (its page size, WAL), by attaching it.
        backoffice_file::attach(&mut migrating, &file).await?;
        let migrator = Migrator::new(EmbeddedMigrations(Backend::Sqlite)).await.map_err(StoreError::Migrate)?;
        migrator.run(&mut migrating).await.map_err(StoreError::Migrate)?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Os => "NORMAL",
        };
        // One writer per file (`backoffice_file`): each opens its file alone, as its main
        // database, so that a write of one never locks the other.
        let backoffice = real(&backoffice_file::backoffice_path(&file));
        let connections_of_writers = [
            readers::open(&file, synchronous, SQLITE_CACHE_KIB, Attach::No)?,
            readers::open(&backoffice, synchronous, SQLITE_CACHE_KIB, Attach::No)?,
        ];
        // SQLite deletes a WAL when the last connection that used it closes: the writers use
        // theirs (a read) before the migrations' connection closes.
        for (connection, path) in connections_of_writers.iter().zip([&file, &backoffice]) {
            connection.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |_| Ok(()))?;
            // Read first: the mode answered is then the file's.
            readers::require_wal(connection, path)?;
        }
        migrating.close().await?;
        backoffice_file::split(&readers::open(&file, synchronous, SQLITE_READER_CACHE_KIB, Attach::Yes)?)?;
        let [connection, backoffice_connection] = connections_of_writers;
        shadow_journal::make_tables(&backoffice_connection)?;
        let (writer, checkpoints) = writer_of(connection, &file, synchronous, durability)?;
        let (backoffice_writer, backoffice_checkpoints) =
            writer_of(backoffice_connection, &backoffice, synchronous, durability)?;
        let store = Store {
            pool: Pool::Sqlite(Arc::new(Readers::new(file, synchronous, connections))),
            backend: Backend::Sqlite,
            writer: Some(writer),
            backoffice_writer: Some(backoffice_writer),
            shadows: Arc::new(ShadowCache::new(cards)),
            journal: Arc::new(shadow_journal::ShadowJournal::new(cards)),
            ingest_retries: Arc::default(),
            ingest_turn: Arc::default(),
            checkpoints: vec![Arc::new(checkpoints), Arc::new(backoffice_checkpoints)],
            copier: None,
        };
        store.move_record_rows().await?;
        // What a store left in the journal (it stopped, or closed without folding) to the rows.
        store.fold_shadow_journal().await?;
        Ok(store)
    }

    async fn open_postgres(url: &str, connections: u32, cards: usize) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(connections).connect(url).await?;
        let migrator = Migrator::new(EmbeddedMigrations(Backend::Postgres)).await.map_err(StoreError::Migrate)?;
        migrator.run(&pool).await.map_err(StoreError::Migrate)?;
        let copier = staged_batches::Copier::connect(url, COPIER_CONNECTIONS).await?;
        let store = Store {
            pool: Pool::Postgres(pool),
            backend: Backend::Postgres,
            writer: None,
            backoffice_writer: None,
            shadows: Arc::new(ShadowCache::new(cards)),
            journal: Arc::new(shadow_journal::ShadowJournal::new(cards)),
            ingest_retries: Arc::default(),
            ingest_turn: Arc::default(),
            checkpoints: Vec::new(),
            copier: Some(Arc::new(copier)),
        };
        store.move_record_rows().await?;
        Ok(store)
    }

    /// Opens (or creates) the SQLite database [`SQLITE_FILE_NAME`] (and the back office's file
    /// beside it, `backoffice_file`) in `data_dir`, creating the
    /// directory if needed.
    pub async fn open_data_dir(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_data_dir_with(data_dir, StoreOptions::default()).await
    }

    /// [`Store::open_data_dir`] with other [`StoreOptions`].
    pub async fn open_data_dir_with(data_dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            StoreError::BadUrl(format!("{}: cannot create the data directory: {error}", data_dir.display()))
        })?;
        let path = data_dir.join(SQLITE_FILE_NAME);
        let path = path.to_str().ok_or_else(|| StoreError::BadUrl(path.display().to_string()))?;
        // The URL's path is percent-decoded: keep `%`, `?` and `#` in a directory name literal.
        let path = path.replace('%', "%25").replace('?', "%3F").replace('#', "%23");
        Store::open_with(&format!("sqlite://{path}"), options).await
    }

    /// Ingest attempts prepared again from the database since the store was opened.
    pub(crate) fn ingest_retries(&self) -> u64 {
        self.ingest_retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Card shadows the store keeps in memory at most ([`StoreOptions::shadow_cache_cards`]): the
    /// cards of a day, which the back office's card TAC keys are kept for too.
    pub fn shadow_cache_cards(&self) -> usize {
        self.shadows.cards()
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection (waits for those in use), the shadow journal folded first (the next
    /// opening would fold it otherwise).
    pub async fn close(&self) {
        if let Err(error) = self.fold_shadow_journal().await {
            tracing::warn!(%error, "the shadow journal was not folded at closing");
        }
        for checkpoints in &self.checkpoints {
            checkpoints.stop().await;
        }
        for writer in [&self.writer, &self.backoffice_writer].into_iter().flatten() {
            writer.close().await;
        }
        if let Some(copier) = &self.copier {
            copier.close().await;
        }
        match &self.pool {
            Pool::Sqlite(readers) => readers.close(),
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    /// A connection for reads outside a transaction (writes go through [`Store::begin_write`]).
    pub(crate) async fn reader(&self) -> Result<Reader, StoreError> {
        match &self.pool {
            Pool::Sqlite(readers) => Ok(Reader::Sqlite(readers.lease().await?)),
            Pool::Postgres(pool) => Ok(Reader::Postgres(pool.acquire().await?)),
        }
    }

    /// PostgreSQL's pool (`None` on SQLite).
    pub(crate) fn postgres_pool(&self) -> Option<&AnyPool> {
        match &self.pool {
            Pool::Sqlite(_) => None,
            Pool::Postgres(pool) => Some(pool),
        }
    }

    /// A transaction that will write: on SQLite it takes the write lock at once, so a read
    /// followed by a write cannot fail on a snapshot another writer made stale. On SQLite it
    /// shares its commit with the writers queued behind it (`writer`): for short writes.
    pub(crate) async fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        self.begin(self.writer.as_ref(), true).await
    }

    /// [`Store::begin_write`] for a bulk write, which commits on its own on SQLite: writers
    /// grouped with it would wait for the whole of it.
    #[cfg(test)]
    pub(crate) async fn begin_write_alone(&self) -> Result<WriteTransaction, StoreError> {
        self.begin(self.writer.as_ref(), false).await
    }

    /// Waits until every commit of the store's file so far is durable. A write of the back
    /// office's file derived from what was read in the store's (the platform's feed) must not
    /// outlive it at a power loss: the two files are synced apart, and a commit is visible
    /// before its sync.
    pub(crate) async fn store_file_durable(&self) -> Result<(), StoreError> {
        match &self.writer {
            Some(writer) => writer.durable_now().await,
            None => Ok(()),
        }
    }

    /// A transaction that writes the back office's tables, and only those (`backoffice_file`):
    /// on SQLite, on the writer of their file, committing on its own (they are bulk writes).
    pub(crate) async fn begin_backoffice_write(&self) -> Result<WriteTransaction, StoreError> {
        self.begin(self.backoffice_writer.as_ref(), false).await
    }

    async fn begin(&self, writer: Option<&WriterSlot>, grouped: bool) -> Result<WriteTransaction, StoreError> {
        match writer {
            Some(writer) => writer.begin(grouped).await,
            None => {
                let pool = self.postgres_pool().ok_or(StoreError::Database(sqlx::Error::PoolClosed))?;
                Ok(WriteTransaction::postgres(pool.begin().await?))
            }
        }
    }

    /// A read-only transaction that sees one consistent snapshot (for the ledger check).
    pub(crate) async fn begin_snapshot(&self) -> Result<Snapshot, StoreError> {
        self.snapshot(true).await
    }

    /// A snapshot for a few short reads that belong together (an order and its card, a card's
    /// history): its statements run inline. On SQLite also one look at the WAL instead of one per
    /// statement.
    pub(crate) async fn begin_read(&self) -> Result<Snapshot, StoreError> {
        self.snapshot(false).await
    }

    async fn snapshot(&self, report: bool) -> Result<Snapshot, StoreError> {
        match &self.pool {
            Pool::Sqlite(readers) => {
                let mut lease = readers.lease().await?;
                lease.db().batch("BEGIN").await?;
                Ok(Snapshot::Sqlite { lease, report })
            }
            Pool::Postgres(pool) => {
                Ok(Snapshot::Postgres(pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?))
            }
        }
    }
}
