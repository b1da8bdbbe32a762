//! SQLite's WAL is copied back into the database beside the writer, and starts over even while
//! writers keep writing (`checkpoints`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::sql::query;
use super::{column, Store};

/// The store's file (its writers grouped) or the back office's (each writer alone).
#[derive(Clone, Copy, PartialEq, Eq)]
enum File {
    Store,
    BackOffice,
}

async fn begin(store: &Store, file: File) -> super::WriteTransaction {
    match file {
        File::Store => store.begin_write().await,
        File::BackOffice => store.begin_backoffice_write().await,
    }
    .expect("a writer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_while_writers_keep_writing() {
    the_wal_of_a_file_starts_over_while_writers_keep_writing(File::Store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_back_offices_wal_starts_over_while_writers_keep_writing() {
    the_wal_of_a_file_starts_over_while_writers_keep_writing(File::BackOffice).await;
}

async fn the_wal_of_a_file_starts_over_while_writers_keep_writing(file: File) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
    // Made on the file's own writer: in that file.
    let mut t = begin(&store, file).await;
    t.db().batch("CREATE TABLE probe (n BIGINT NOT NULL, filler BLOB NOT NULL)").await.expect("created");
    t.commit().await.expect("committed");
    let (checkpoints, schema) = match file {
        File::Store => (store.checkpoints[0].clone(), "main"),
        File::BackOffice => (store.checkpoints[1].clone(), super::BACKOFFICE_SCHEMA),
    };

    // Writers one after the other, without a pause: each commit appends a page or more to the WAL.
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (store, stop, commits) = (store.clone(), stop.clone(), commits.clone());
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let mut t = begin(&store, file).await;
                t.db().batch("INSERT INTO probe VALUES (1, zeroblob(3000))").await.expect("inserted");
                t.commit().await.expect("committed");
                commits.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Until the WAL was copied whole twice in the writer's turn (at most 20 s of writes).
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while checkpoints.in_turn() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.expect("the writer ran");
    }

    // Every commit appended at least a frame; a WAL that never started over would hold them all
    // (its file keeps its largest size: the frames it holds are counted instead).
    let row = query(format!("PRAGMA {schema}.wal_checkpoint(PASSIVE)"))
        .fetch_one(&mut store.reader().await.expect("a reader").db())
        .await
        .expect("the WAL's frames");
    let frames: i64 = column(&row, 1).expect("a count");
    let commits = commits.load(Ordering::SeqCst);
    assert!(commits > 0);
    assert!(
        (frames as u64) < commits,
        "the WAL started over: it holds {frames} frames, fewer than the {commits} commits appended to it"
    );
    let rows: i64 = column(
        &query("SELECT COUNT(*) FROM probe")
            .fetch_one(&mut store.reader().await.expect("a reader").db())
            .await
            .expect("counted"),
        0,
    )
    .expect("a count");
    assert_eq!(rows as u64, commits, "every commit kept");
    store.close().await;
}

/// SQLite's automatic checkpoint of the writer's connection, read in a write transaction on it.
async fn autocheckpoint(store: &Store, file: File) -> i64 {
    let mut t = begin(store, file).await;
    let row = query("PRAGMA wal_autocheckpoint").fetch_one(&mut t.db()).await.expect("read");
    let frames: i64 = column(&row, 0).expect("a number");
    t.commit().await.expect("committed");
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_checkpoints_itself_only_once_the_checkpoints_task_is_gone() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
    // Four times the task's bound of frames (of the file's own page size).
    let backstop =
        |page_bytes: u32| i64::from(4 * super::SQLITE_CHECKPOINT_PAGES * super::SQLITE_PAGE_BYTES / page_bytes);
    for (index, file, page_bytes) in [
        (0, File::Store, super::SQLITE_PAGE_BYTES),
        (1, File::BackOffice, super::backoffice_file::SQLITE_BACKOFFICE_PAGE_BYTES),
    ] {
        // While the task runs, a commit however large leaves the WAL to it.
        assert_eq!(autocheckpoint(&store, file).await, 0);
        store.checkpoints[index].stop().await;
        // The first commit after it is gone turns SQLite's own back on (the pragma is read in the
        // transaction after it).
        let t = begin(&store, file).await;
        t.commit().await.expect("committed");
        assert_eq!(autocheckpoint(&store, file).await, backstop(page_bytes));
    }
}

#[test]
fn a_checkpoints_task_silent_too_long_is_not_at_work() {
    let checkpointing = super::checkpoints::Checkpointing::new(50);
    assert!(checkpointing.at_work());
    std::thread::sleep(Duration::from_millis(120));
    assert!(!checkpointing.at_work(), "silent for longer than its bound");
    checkpointing.beat();
    assert!(checkpointing.at_work(), "back at work once its loop turns");
    checkpointing.stopped();
    assert!(!checkpointing.at_work(), "gone");
}
