//! The SQLite writer connection after writes that end badly: dropped unfinished, its COMMIT
//! landed but unrecorded, its transaction rolled back by SQLite behind it — the next writer
//! always starts clean, and nothing unfinished is kept. Writers queued together share one
//! transaction, each in its savepoint (`writer`); writes committed together are made durable by
//! shared syncs of the WAL (group commit); with `Durability::Os` none runs.

use super::sql::query;
use super::{column, Store};

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
    let mut t = store.begin_write().await.expect("a writer");
    t.db().batch("CREATE TABLE probe (n BIGINT NOT NULL)").await.expect("created");
    t.commit().await.expect("committed");
    (dir, store)
}

async fn rows(store: &Store) -> Vec<i64> {
    let rows = query("SELECT n FROM probe ORDER BY n")
        .fetch_all(&mut store.reader().await.expect("a reader").db())
        .await
        .expect("read");
    rows.iter().map(|row| column(row, 0).expect("a number")).collect()
}

/// A write begun that inserted `n`.
async fn begun_with(store: &Store, n: i64) -> super::WriteTransaction {
    let mut t = store.begin_write().await.expect("a writer");
    t.db().batch(format!("INSERT INTO probe VALUES ({n})").as_str()).await.expect("inserted");
    t
}

async fn insert(store: &Store, n: i64) {
    begun_with(store, n).await.commit().await.expect("committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_write_is_rolled_back_and_the_next_writer_begins() {
    let (_dir, store) = store().await;
    let t = begun_with(&store, 1).await;
    drop(t);
    insert(&store, 2).await;
    assert_eq!(rows(&store).await, [2], "the dropped write was not kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_landed_unrecorded_does_not_stop_the_next_writer() {
    let (_dir, store) = store().await;
    // As if the COMMIT ran but its caller went away before hearing so.
    let mut t = begun_with(&store, 1).await;
    t.db().batch("COMMIT").await.expect("committed behind the transaction's back");
    drop(t);
    insert(&store, 2).await;
    assert_eq!(rows(&store).await, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_rolled_back_by_sqlite_does_not_stop_the_next_writer() {
    let (_dir, store) = store().await;
    let mut t = begun_with(&store, 1).await;
    t.db().batch("ROLLBACK").await.expect("rolled back behind the transaction's back");
    assert!(t.commit().await.is_err(), "no transaction to commit");
    insert(&store, 2).await;
    assert_eq!(rows(&store).await, [2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_back_offices_file_has_a_writer_and_a_group_commit_of_its_own() {
    let (_dir, store) = store().await;
    let (main, backoffice) = (turn(&store).durable().expect("group commit"), backoffice_turn(&store).durable());
    let backoffice = backoffice.expect("the back office's group commit");
    assert!(backoffice.wal().ends_with("platform-backoffice.sqlite-wal"), "{}", backoffice.wal().display());
    assert!(backoffice.wal().is_file(), "SQLite's own WAL: {}", backoffice.wal().display());
    let mut t = store.begin_backoffice_write().await.expect("a writer");
    t.db().batch("CREATE TABLE probe_of_the_back_office (n BIGINT NOT NULL)").await.expect("created");
    t.commit().await.expect("committed");
    let before = (main.syncs(), backoffice.syncs());
    // The store's file only (as a top-up): its own sync.
    insert(&store, 1).await;
    assert_eq!((main.syncs(), backoffice.syncs()), (before.0 + 1, before.1));
    // The back office's only (as a clearing group): that file's sync, while a write of the
    // store's file is open on the other writer.
    let open = begun_with(&store, 2).await;
    let mut t = store.begin_backoffice_write().await.expect("not held up by the store's writer");
    t.db().batch("INSERT INTO probe_of_the_back_office VALUES (1)").await.expect("inserted");
    t.commit().await.expect("committed");
    assert_eq!((main.syncs(), backoffice.syncs()), (before.0 + 1, before.1 + 1));
    open.commit().await.expect("committed");
    // Each file holds its own table; a reading connection reads both.
    let tables = |schema: &str| format!("SELECT COUNT(*) FROM {schema}.sqlite_schema WHERE name LIKE 'probe%'");
    let mut reader = store.reader().await.expect("a reader");
    for (schema, count) in [("main", 1), (super::BACKOFFICE_SCHEMA, 1)] {
        let row = query(tables(schema)).fetch_one(&mut reader.db()).await.expect("read");
        assert_eq!(column::<i64>(&row, 0).expect("a count"), count, "{schema}");
    }
    let row = query("SELECT COUNT(*) FROM probe_of_the_back_office").fetch_one(&mut reader.db()).await.expect("read");
    assert_eq!(column::<i64>(&row, 0).expect("a count"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_the_store_files_commits_waits_for_their_sync() {
    let (_dir, store) = store().await;
    let durable = turn(&store).durable().expect("group commit");
    let held = durable.hold_syncs().await;
    // Committed (readers see it), not yet synced: its writer waits.
    let writer = tokio::spawn({
        let store = store.clone();
        async move { insert(&store, 1).await }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rows(&store).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the write did not commit");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let waiting = tokio::spawn({
        let store = store.clone();
        async move { store.store_file_durable().await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "answered before the commit it saw was synced");
    drop(held);
    waiting.await.expect("ran").expect("durable");
    writer.await.expect("the writer ran");
}

fn backoffice_turn(store: &Store) -> &super::WriterSlot {
    store.backoffice_writer.as_ref().expect("SQLite's writer of the back office")
}

fn syncs(store: &Store) -> u64 {
    turn(store).durable().map_or(0, |durable| durable.syncs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_committed_together_share_one_sync() {
    let (_dir, store) = store().await;
    let durable = turn(&store).durable().expect("full durability: group commit");
    assert!(durable.wal().is_file(), "the WAL synced is SQLite's: {}", durable.wal().display());
    let before = durable.syncs();
    insert(&store, 0).await;
    assert_eq!(durable.syncs(), before + 1, "a write alone is made durable by a sync of its own");
    // A slow disk: the sync held back while 64 writers commit, each then waiting for it.
    let held = durable.hold_syncs().await;
    let start = durable.committed();
    let mut writers = tokio::task::JoinSet::new();
    for n in 1..=64 {
        let store = store.clone();
        writers.spawn(async move { insert(&store, n).await });
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // Committed (other connections read them) but not yet synced.
    while rows(&store).await.len() < 65 {
        assert!(std::time::Instant::now() < deadline, "the writers did not commit");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert!(durable.committed() > start, "committed, in one group or more");
    assert!(writers.try_join_next().is_none(), "no write answered before its sync");
    drop(held);
    while let Some(done) = writers.join_next().await {
        done.expect("a writer");
    }
    assert_eq!(rows(&store).await, (0..=64).collect::<Vec<i64>>(), "every write kept");
    assert_eq!(durable.syncs(), before + 2, "the 64 writes made durable by one sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_os_durability_no_sync_runs() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite:{}", dir.path().join("os.sqlite").display());
    let options = super::StoreOptions { durability: super::Durability::Os, ..super::StoreOptions::default() };
    let store = Store::open_with(&url, options).await.expect("SQLite opens");
    let mut t = store.begin_write().await.expect("a writer");
    t.db().batch("CREATE TABLE probe (n BIGINT NOT NULL)").await.expect("created");
    t.commit().await.expect("committed");
    insert(&store, 1).await;
    assert_eq!((rows(&store).await, syncs(&store)), (vec![1], 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_sync_every_write_is_refused() {
    let (_dir, store) = store().await;
    insert(&store, 1).await;
    turn(&store).durable().expect("group commit").fail_for_test();
    let refused = store.begin_write().await.err().expect("a write refused");
    assert!(refused.to_string().contains("writes refused until restart"), "{refused}");
    assert_eq!(rows(&store).await, [1], "reads go on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_are_checked_on_the_writer_and_the_readers_write_nothing() {
    let (_dir, store) = store().await;
    let orphan = "INSERT INTO signup_orders (merchant_order_id, device_id, city, fee_fen) \
                  VALUES ('no-such-order', 'device', 'beijing', 2900)";
    let mut t = store.begin_write().await.expect("a writer");
    assert!(t.db().batch(orphan).await.is_err(), "a sign-up for an order that does not exist");
    t.rollback().await.expect("rolled back");
    let mut reader = store.reader().await.expect("a reader");
    assert!(reader.db().batch(orphan).await.is_err(), "the same outside the writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_reading_connection_is_refused_at_once() {
    let (_dir, store) = store().await;
    // Writers sharing a group meanwhile (SQLite's write lock held between their turns).
    let first = begun_with(&store, 1).await;
    let second = {
        let store = store.clone();
        tokio::spawn(async move { begun_with(&store, 2).await.commit().await })
    };
    queued(&store, 1).await;
    let committed = first.commit_unsynced().await.expect("released into the group");
    let started = std::time::Instant::now();
    let mut reader = store.reader().await.expect("a reader");
    let refused = reader.db().batch("INSERT INTO probe VALUES (3)").await.expect_err("refused");
    assert!(refused.to_string().contains("readonly"), "{refused}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "not left in the busy handler");
    drop(reader);
    second.await.expect("the second writer").expect("committed");
    committed.synced().await.expect("committed");
    assert_eq!(rows(&store).await, [1, 2]);
}

async fn page_size(store: &Store) -> i64 {
    let row =
        query("PRAGMA page_size").fetch_one(&mut store.reader().await.expect("a reader").db()).await.expect("read");
    column(&row, 0).expect("a number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_database_gets_the_stores_page_size_and_an_old_one_keeps_its_own() {
    let (dir, store) = store().await;
    assert_eq!(page_size(&store).await, i64::from(super::SQLITE_PAGE_BYTES));
    store.close().await;
    // A database made before, with SQLite's default page size.
    let old = dir.path().join("old");
    std::fs::create_dir(&old).expect("a directory");
    let connection = rusqlite::Connection::open(old.join(super::SQLITE_FILE_NAME)).expect("created");
    connection.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (n)").expect("made");
    drop(connection);
    let store = Store::open_data_dir(&old).await.expect("opens");
    assert_eq!(page_size(&store).await, 4096);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_is_built_for_many_connections_in_one_process() {
    // `.cargo/config.toml` sets LIBSQLITE3_FLAGS for the bundled build; a build without it would
    // share one page cache between every connection, behind a mutex.
    let (_dir, store) = store().await;
    let rows = query("PRAGMA compile_options").fetch_all(&mut store.reader().await.expect("a reader").db()).await;
    let options: Vec<String> = rows.expect("read").iter().map(|row| column(row, 0).expect("text")).collect();
    assert!(!options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"), "{options:?}");
    assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
    store.close().await;
}

fn turn(store: &Store) -> &super::WriterSlot {
    store.writer.as_ref().expect("SQLite's writer")
}

/// Waits until `n` writers queue for the turn.
async fn queued(store: &Store, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while turn(store).waiting() < n {
        assert!(std::time::Instant::now() < deadline, "{n} writers did not queue");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_queued_together_share_one_commit_and_one_sync() {
    let (_dir, store) = store().await;
    let durable = turn(&store).durable().expect("group commit");
    let (commits, syncs) = (turn(&store).commits(), durable.syncs());
    let first = begun_with(&store, 0).await;
    let mut writers = tokio::task::JoinSet::new();
    for n in 1..=8 {
        let store = store.clone();
        writers.spawn(async move { insert(&store, n).await });
    }
    queued(&store, 8).await;
    first.commit().await.expect("committed with the writers queued behind it");
    while let Some(done) = writers.join_next().await {
        done.expect("a writer");
    }
    assert_eq!(rows(&store).await, (0..=8).collect::<Vec<i64>>(), "every write kept");
    // The first released its savepoint into the group, each queued writer joined it, and the last
    // (no one waiting behind it) committed the nine writes at once.
    assert_eq!((turn(&store).commits() - commits, durable.syncs() - syncs), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grouped_writer_that_rolls_back_undoes_only_its_own_writes() {
    let (_dir, store) = store().await;
    let first = begun_with(&store, 1).await;
    let second = {
        let store = store.clone();
        tokio::spawn(async move {
            let t = begun_with(&store, 2).await;
            t.rollback().await.expect("rolled back");
        })
    };
    queued(&store, 1).await;
    let committed = first.commit_unsynced().await.expect("released into the group");
    second.await.expect("the second writer");
    committed.synced().await.expect("committed by the second writer's rollback");
    insert(&store, 3).await;
    assert_eq!(rows(&store).await, [1, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_whose_transaction_is_lost_fails_every_writer_in_it() {
    let (_dir, store) = store().await;
    let first = begun_with(&store, 1).await;
    let second = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut t = begun_with(&store, 2).await;
            // As SQLite does on a disk error: the whole transaction rolled back.
            t.db().batch("ROLLBACK").await.expect("rolled back behind the writers");
            t.commit().await
        })
    };
    queued(&store, 1).await;
    let first = first.commit().await;
    let second = second.await.expect("the second writer");
    assert!(first.is_err() && second.is_err(), "neither write was kept: {first:?} {second:?}");
    assert!(first.err().is_some_and(|e| e.to_string().contains("not committed")));
    insert(&store, 3).await;
    assert_eq!(rows(&store).await, [3], "the next writer starts clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_writer_commits_the_open_group_before_it_begins() {
    let (_dir, store) = store().await;
    let first = begun_with(&store, 1).await;
    let bulk = store.clone();
    let bulk = tokio::spawn(async move { bulk.begin_write_alone().await.expect("a bulk writer") });
    queued(&store, 1).await;
    let committed = first.commit_unsynced().await.expect("released into the group");
    let mut bulk = bulk.await.expect("the bulk writer");
    // The bulk writer holds the turn; the group was committed when it began.
    committed.synced().await.expect("committed");
    assert_eq!(rows(&store).await, [1]);
    bulk.db().batch("INSERT INTO probe VALUES (2)").await.expect("inserted");
    bulk.commit().await.expect("committed alone");
    assert_eq!(rows(&store).await, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_released_into_a_group_is_committed_when_the_writer_it_waited_for_goes_away() {
    let (_dir, store) = store().await;
    let first = begun_with(&store, 1).await;
    // A second writer queues for the turn (polled once), then goes away before it begins.
    let mut second = Box::pin(store.begin_write());
    tokio::select! {
        biased;
        _ = &mut second => panic!("the turn is held by the first writer"),
        _ = std::future::ready(()) => {}
    }
    assert_eq!(turn(&store).waiting(), 1);
    let commits = turn(&store).commits();
    let committed = first.commit_unsynced().await.expect("released into the group");
    assert_eq!(turn(&store).commits(), commits, "the group is left open for the writer waiting");
    drop(second);
    assert_eq!(turn(&store).commits(), commits + 1, "committed as the waiting writer went away");
    committed.synced().await.expect("committed");
    assert_eq!(rows(&store).await, [1]);
}

/// One thread: the second writer's task runs only when the first yields.
#[tokio::test(flavor = "current_thread")]
async fn a_writer_beginning_a_group_lets_a_ready_writer_queue_and_join_it() {
    let (_dir, store) = store().await;
    let commits = turn(&store).commits();
    let second = {
        let store = store.clone();
        tokio::spawn(async move { insert(&store, 2).await })
    };
    // The first writer yields before it begins; the second begins, finds the turn held, queues,
    // and is handed the group.
    let first = begun_with(&store, 1).await;
    assert_eq!(turn(&store).waiting(), 1);
    first.commit().await.expect("committed");
    second.await.expect("the second writer");
    assert_eq!(rows(&store).await, [1, 2]);
    assert_eq!(turn(&store).commits() - commits, 1, "one commit for both");
    // Alone, a writer commits at once.
    insert(&store, 3).await;
    assert_eq!(turn(&store).commits() - commits, 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_writer_that_goes_away_while_it_yields_leaves_nothing_open() {
    let (_dir, store) = store().await;
    let mut beginning = Box::pin(store.begin_write());
    tokio::select! {
        biased;
        _ = &mut beginning => panic!("the writer yields before it begins"),
        _ = std::future::ready(()) => {}
    }
    drop(beginning);
    assert_eq!(turn(&store).waiting(), 0);
    insert(&store, 1).await;
    assert_eq!(rows(&store).await, [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_read_a_group_whose_commit_fails_fails_with_it() {
    let (_dir, store) = store().await;
    let mut t = store.begin_write().await.expect("a writer");
    t.db().batch("CREATE TABLE parent (n BIGINT PRIMARY KEY)").await.expect("created");
    t.db()
        .batch("CREATE TABLE child (n BIGINT REFERENCES parent (n) DEFERRABLE INITIALLY DEFERRED)")
        .await
        .expect("created");
    t.commit().await.expect("committed");
    // A row whose foreign key is checked only at COMMIT, where it fails.
    let mut first = store.begin_write().await.expect("a writer");
    first.db().batch("INSERT INTO child VALUES (7)").await.expect("inserted, checked at COMMIT");
    let second = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut t = store.begin_write().await.expect("a writer");
            let seen = query("SELECT n FROM child").fetch_all(&mut t.db()).await.expect("read");
            assert_eq!(seen.len(), 1, "the first writer's row, released into the group");
            // As a writer that finds its work done by another, and answers from what it read.
            t.rollback().await
        })
    };
    queued(&store, 1).await;
    let first = first.commit().await;
    let second = second.await.expect("the second writer");
    assert!(first.as_ref().is_err_and(|e| e.to_string().contains("FOREIGN KEY")), "{first:?}");
    assert!(second.as_ref().is_err_and(|e| e.to_string().contains("FOREIGN KEY")), "{second:?}");
    let rows = query("SELECT n FROM child").fetch_all(&mut store.reader().await.expect("a reader").db()).await;
    assert!(rows.expect("read").is_empty(), "nothing of the group kept");
    insert(&store, 3).await;
    assert_eq!(self::rows(&store).await, [3], "the next writer starts clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_store_commits_the_open_group() {
    let (_dir, store) = store().await;
    let first = begun_with(&store, 1).await;
    let closing = store.clone();
    let closing = tokio::spawn(async move {
        let _t = closing.begin_write().await;
        std::future::pending::<()>().await
    });
    queued(&store, 1).await;
    let committed = first.commit_unsynced().await.expect("released into the group");
    closing.abort();
    store.close().await;
    // Committed by the waiting writer going away, or by the closing: never lost.
    let synced = committed.synced().await;
    assert!(synced.is_ok(), "{synced:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_returns_only_once_what_it_read_is_durable() {
    let (_dir, store) = store().await;
    let durable = turn(&store).durable().expect("group commit");
    // A slow disk: the first write is committed, its sync held back.
    let held = durable.hold_syncs().await;
    let first = {
        let store = store.clone();
        tokio::spawn(async move { insert(&store, 1).await })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rows(&store).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the first write did not commit");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    // A repeat finds the first write's row and rolls back, to answer from it.
    let second = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut t = store.begin_write().await.expect("a writer");
            let seen = query("SELECT n FROM probe").fetch_all(&mut t.db()).await.expect("read");
            t.rollback().await.expect("rolled back");
            seen.len()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!second.is_finished() && !first.is_finished(), "neither answered before the sync");
    drop(held);
    assert_eq!(second.await.expect("the second writer"), 1);
    first.await.expect("the first writer");
}
