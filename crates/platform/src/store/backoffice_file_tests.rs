//! The back office's tables in their own file: where a new store keeps them, and how an older
//! database's are moved there, with their rows, however the move was cut short.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::backoffice_file::{backoffice_path, BACKOFFICE_SCHEMA, SQLITE_BACKOFFICE_PAGE_BYTES};
use super::ingest_group_tests::{batch, counters, purchase, store_after_a, upload, verified};
use super::{Store, SQLITE_FILE_NAME, SQLITE_PAGE_BYTES};

const TABLES: [&str; 4] = ["hotlist_changes", "clearing_batches", "clearing_records", "card_shadows"];

/// The tables and indexes of one file (opened alone, nothing attached), by name.
fn objects(file: &Path) -> Vec<String> {
    let connection = Connection::open(file).expect("the file opens");
    let mut statement =
        connection.prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'index') ORDER BY name").expect("");
    statement.query_map([], |row| row.get(0)).expect("read").collect::<Result<_, _>>().expect("names")
}

fn page_size(file: &Path) -> u32 {
    Connection::open(file).expect("the file opens").query_row("PRAGMA page_size", [], |row| row.get(0)).expect("read")
}

fn count(connection: &Connection, table: &str) -> i64 {
    connection.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0)).expect("counted")
}

/// The back office's tables put back in the main file, as an older database had them: made from
/// their own definitions, their rows copied; `keep_copy` leaves them in the back office's file
/// too (a move cut between its two commits), else that file is deleted.
fn as_before_the_split(main: &Path, keep_copy: bool) {
    let connection = Connection::open(main).expect("the database opens");
    let attached = backoffice_path(main);
    connection
        .execute_batch(&format!("ATTACH DATABASE '{}' AS {BACKOFFICE_SCHEMA}", attached.display()))
        .expect("attached");
    for table in TABLES {
        let mut statement = connection
            .prepare(&format!(
                "SELECT sql FROM {BACKOFFICE_SCHEMA}.sqlite_schema WHERE tbl_name = ?1 AND sql IS NOT NULL \
                 ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END"
            ))
            .expect("prepared");
        let definitions: Vec<String> =
            statement.query_map([table], |row| row.get(0)).expect("read").collect::<Result<_, _>>().expect("sql");
        for sql in definitions {
            // Stored without their schema: made in the main file.
            connection.execute_batch(&sql).expect("made in the main file");
        }
        connection
            .execute_batch(&format!("INSERT INTO main.{table} SELECT * FROM {BACKOFFICE_SCHEMA}.{table}"))
            .expect("copied");
    }
    if !keep_copy {
        for table in TABLES.iter().rev() {
            connection.execute_batch(&format!("DROP TABLE {BACKOFFICE_SCHEMA}.{table}")).expect("dropped");
        }
    }
    connection.execute_batch(&format!("DETACH DATABASE {BACKOFFICE_SCHEMA}")).expect("detached");
    drop(connection);
    if !keep_copy {
        remove_database(&attached);
    }
}

/// A SQLite file gone, with its WAL and shared memory.
fn remove_database(file: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(path));
    }
}

/// After the move: the main file holds none of the back office's tables, its file holds them
/// with one batch (A) and card 1's shadow; the store reads them and goes on ingesting.
async fn moved_and_whole(dir: &Path) {
    let main = dir.join(SQLITE_FILE_NAME);
    let store = Store::open_data_dir(dir).await.expect("the database opens again");
    assert!(TABLES.iter().all(|table| !objects(&main).contains(&table.to_string())), "{:?}", objects(&main));
    let attached = Connection::open(backoffice_path(&main)).expect("the back office's file opens");
    assert_eq!((count(&attached, "clearing_batches"), count(&attached, "card_shadows")), (1, 1), "no row twice");
    assert_eq!(counters(&store, 1).await, Some(vec![1]));
    // A sent again is recognised; B goes on from A's shadow.
    let a = batch("A", vec![purchase(1, 1, 1_000, 600)]);
    let again = store.ingest_checked(&[upload(&a)], &[&verified(&a)], &mut None).await.expect("A again");
    assert!(!again[0].new, "A was received before the move");
    let b = batch("B", vec![purchase(1, 2, 600, 200)]);
    store.ingest_checked(&[upload(&b)], &[&verified(&b)], &mut None).await.expect("B ingested");
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2]));
    assert_eq!(count(&attached, "clearing_batches"), 2);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_store_keeps_the_back_offices_tables_in_their_own_file_with_larger_pages() {
    let (dir, store) = store_after_a().await;
    let main = dir.path().join(SQLITE_FILE_NAME);
    let attached = backoffice_path(&main);
    let (in_main, in_backoffice) = (objects(&main), objects(&attached));
    for table in TABLES {
        assert!(!in_main.contains(&table.to_string()), "{table} in the main file: {in_main:?}");
        assert!(in_backoffice.contains(&table.to_string()), "{table} not in the back office's: {in_backoffice:?}");
    }
    assert!(in_main.contains(&"payment_orders".to_string()), "the platform's tables stay: {in_main:?}");
    // Their indexes went with them.
    for index in ["clearing_batches_last_at", "clearing_batches_unpacked"] {
        assert!(in_backoffice.contains(&index.to_string()), "{index}: {in_backoffice:?}");
    }
    assert_eq!((page_size(&main), page_size(&attached)), (SQLITE_PAGE_BYTES, SQLITE_BACKOFFICE_PAGE_BYTES));
    // A's batch and shadow were written there (the shadow's row once the journal is folded).
    store.fold_shadow_journal().await.expect("folded");
    let connection = Connection::open(&attached).expect("opens");
    assert_eq!((count(&connection, "clearing_batches"), count(&connection, "card_shadows")), (1, 1));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_databases_tables_are_moved_with_their_rows() {
    let (dir, store) = store_after_a().await;
    store.close().await;
    as_before_the_split(&dir.path().join(SQLITE_FILE_NAME), false);
    assert!(!backoffice_path(&dir.path().join(SQLITE_FILE_NAME)).exists(), "an older database had no such file");
    moved_and_whole(dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_cut_between_its_two_commits_is_finished_at_the_next_opening() {
    let (dir, store) = store_after_a().await;
    store.close().await;
    let main = dir.path().join(SQLITE_FILE_NAME);
    // Copied, not yet dropped from the main file: the rows are in both. Then the main file's
    // went on changing (an older binary started again in between): its rows are the ones kept.
    as_before_the_split(&main, true);
    let connection = Connection::open(backoffice_path(&main)).expect("opens");
    connection
        .execute_batch("UPDATE clearing_batches SET answer = 'stale'; DELETE FROM card_shadows;")
        .expect("the copy made stale");
    drop(connection);
    moved_and_whole(dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_opening_an_older_database_at_once_move_its_tables_once() {
    let (dir, store) = store_after_a().await;
    store.close().await;
    as_before_the_split(&dir.path().join(SQLITE_FILE_NAME), false);
    // Each its own connections: one moves, the other waits for the lock and finds it done (or
    // copies the same rows again before either drops them).
    let (first, second) = tokio::join!(Store::open_data_dir(dir.path()), Store::open_data_dir(dir.path()));
    for store in [first.expect("the first opens"), second.expect("the second opens")] {
        assert_eq!(counters(&store, 1).await, Some(vec![1]));
        store.close().await;
    }
    moved_and_whole(dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_back_office_file_gone_missing_is_named_rather_than_made_again_empty() {
    let (dir, store) = store_after_a().await;
    store.close().await;
    remove_database(&backoffice_path(&dir.path().join(SQLITE_FILE_NAME)));
    let error = Store::open_data_dir(dir.path()).await.expect_err("a database without its back office");
    let text = error.to_string();
    assert!(text.contains("platform-backoffice.sqlite") && text.contains("card_shadows"), "{text}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_reached_through_a_symbolic_link_keeps_its_back_office_beside_the_real_file() {
    let (real, linked) = (tempfile::tempdir().expect("a directory"), tempfile::tempdir().expect("another"));
    let target = real.path().join(SQLITE_FILE_NAME);
    std::fs::write(&target, b"").expect("an empty database file");
    let link = linked.path().join(SQLITE_FILE_NAME);
    std::os::unix::fs::symlink(&target, &link).expect("linked");
    let url = format!("sqlite://{}", link.display());
    for _ in 0..2 {
        let store = Store::open(&url).await.expect("opens through the link");
        let a = batch("A", vec![purchase(1, 1, 1_000, 600)]);
        store.ingest_checked(&[upload(&a)], &[&verified(&a)], &mut None).await.expect("A ingested");
        assert_eq!(counters(&store, 1).await, Some(vec![1]));
        store.close().await;
    }
    assert!(backoffice_path(&target).is_file(), "beside the real file");
    assert!(!backoffice_path(&link).exists(), "not beside the link");
}
