//! The shadow journal on SQLite (`shadow_journal`): groups' shadows kept there until a fold, read
//! the same before and after it, left by a store that stopped and folded at the next opening, and
//! never read stale — by another store on the same files, or by one whose cache lost a card.

use rusqlite::Connection;

use super::backoffice_file::backoffice_path;
use super::ingest_group::{prepare, write, Reads};
use super::ingest_group_tests::{batch, counters, purchase, store_after_a, upload, verified};
use yitong_clearing::shadow::CardId;

use super::{Store, SQLITE_FILE_NAME};

/// Rows of `table` in the back office's file of the store in `dir`.
fn rows(dir: &std::path::Path, table: &str) -> i64 {
    let connection = Connection::open(backoffice_path(&dir.join(SQLITE_FILE_NAME))).expect("the file opens");
    connection.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| row.get(0)).expect("counted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadows_wait_in_the_journal_and_reach_their_rows_at_a_fold() {
    let (dir, store) = store_after_a().await;
    let b = batch("B", vec![purchase(1, 2, 600, 200), purchase(2, 1, 500, 300)]);
    store.ingest_checked(&[upload(&b)], &[&verified(&b)], &mut None).await.expect("B ingested");
    // One journal row per group; no card's row yet.
    assert_eq!((rows(dir.path(), "shadow_journal"), rows(dir.path(), "card_shadows")), (2, 0));
    // A read of the shadows folds first: the newest of each card in its row, the journal empty.
    assert_eq!(store.shadow_totals().await.expect("totals"), (2, 200 + 300));
    assert_eq!((rows(dir.path(), "shadow_journal"), rows(dir.path(), "card_shadows")), (0, 2));
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2]));
    // And the next group goes on from the folded rows (and the cache).
    let c = batch("C", vec![purchase(1, 3, 200, 100)]);
    store.ingest_checked(&[upload(&c)], &[&verified(&c)], &mut None).await.expect("C ingested");
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2, 3]));
    // Closing folds what is left.
    let d = batch("D", vec![purchase(2, 2, 300, 250)]);
    store.ingest_checked(&[upload(&d)], &[&verified(&d)], &mut None).await.expect("D ingested");
    assert_eq!(rows(dir.path(), "shadow_journal"), 1);
    store.close().await;
    assert_eq!(rows(dir.path(), "shadow_journal"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stopped_leaves_its_journal_to_the_next_opening() {
    let (dir, store) = store_after_a().await;
    let b = batch("B", vec![purchase(1, 2, 600, 200)]);
    store.ingest_checked(&[upload(&b)], &[&verified(&b)], &mut None).await.expect("B ingested");
    // Stopped without closing (its connections dropped, as by a crash after the commits).
    drop(store);
    assert_eq!(rows(dir.path(), "shadow_journal"), 2);
    let reopened = Store::open_data_dir(dir.path()).await.expect("opens again");
    assert_eq!(rows(dir.path(), "shadow_journal"), 0, "folded at opening");
    assert_eq!(counters(&reopened, 1).await, Some(vec![1, 2]));
    let c = batch("C", vec![purchase(1, 3, 200, 100)]);
    let answers = reopened.ingest_checked(&[upload(&c)], &[&verified(&c)], &mut None).await.expect("C ingested");
    assert_eq!((answers[0].answer.accepted, answers[0].answer.flags.len()), (1, 0), "C follows B: no gap");
    reopened.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_folds_the_journal_once_the_store_journaled_enough_cards() {
    let (dir, store) = store_after_a().await;
    store.journal.set_entries(store.journal.fold_entries());
    let b = batch("B", vec![purchase(1, 2, 600, 200), purchase(2, 1, 500, 300)]);
    store.ingest_checked(&[upload(&b)], &[&verified(&b)], &mut None).await.expect("B ingested");
    // B's write folded A's entry and wrote its own shadows to their rows: the journal is empty.
    assert_eq!((rows(dir.path(), "shadow_journal"), rows(dir.path(), "card_shadows")), (0, 2));
    let connection = Connection::open(backoffice_path(&dir.path().join(SQLITE_FILE_NAME))).expect("opens");
    let balances: Vec<i64> = connection
        .prepare("SELECT balance_fen FROM card_shadows ORDER BY card_serial")
        .expect("prepared")
        .query_map([], |row| row.get(0))
        .expect("read")
        .collect::<Result<_, _>>()
        .expect("balances");
    assert_eq!(balances, [200, 300]);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journaled_card_the_cache_lost_is_not_read_from_its_stale_row() {
    let (dir, store) = store_after_a().await;
    // Card 1's shadow is in the journal only; the cache loses it.
    store.forget_all_shadows();
    let b = batch("B", vec![purchase(1, 2, 600, 200)]);
    let answers = store.ingest_checked(&[upload(&b)], &[&verified(&b)], &mut None).await.expect("B ingested");
    // Read as a new card (no row yet), B's record would show a counter gap before it.
    assert_eq!((answers[0].answer.accepted, answers[0].answer.flags.len()), (1, 0), "{:?}", answers[0].answer);
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2]));
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_database_take_turns_on_a_card_and_neither_loses_the_others_records() {
    let (dir, first) = store_after_a().await;
    let second = Store::open_data_dir(dir.path()).await.expect("a second store opens");
    // Each takes a record of card 1 in turn, from the balance the other left: each write finds
    // the other's, reads the card again and goes on from it.
    let mut before = 600;
    for counter in 2..=7u16 {
        let store = if counter % 2 == 0 { &second } else { &first };
        let group = batch(&format!("G{counter}"), vec![purchase(1, counter, before, before - 50)]);
        let answers = store.ingest_checked(&[upload(&group)], &[&verified(&group)], &mut None).await.expect("ingested");
        let answer = &answers[0].answer;
        assert_eq!((answer.accepted, answer.flags.len()), (1, 0), "G{counter}: {answer:?}");
        before -= 50;
    }
    // Counted: the first store's three writes after its opening one, the second's after its first.
    assert_eq!((first.ingest_retries(), second.ingest_retries()), (3, 2));
    for store in [&first, &second] {
        assert_eq!(counters(store, 1).await, Some((1..=7).collect()));
        assert_eq!(store.shadow_totals().await.expect("totals"), (1, 300));
    }
    first.close().await;
    second.close().await;
}

/// Card 1's id in these tests.
fn card_1() -> CardId {
    CardId::of(&purchase(1, 1, 1_000, 600))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_built_on_one_still_to_commit_does_not_write_first() {
    let (_dir, store) = store_after_a().await;
    // Folded: card 1 is not among the cards journaled since, whose last entries are checked.
    store.fold_shadow_journal().await.expect("folded");
    // Y is prepared on X's cached shadow of card 1 and writes before X: refused.
    let x = batch("X", vec![purchase(1, 2, 600, 200)]);
    let y = batch("Y", vec![purchase(1, 3, 200, 100)]);
    let prepared_x = prepare(&store, &[upload(&x)], &[&verified(&x)], Reads::Cache).await.expect("X prepared");
    let prepared_y = prepare(&store, &[upload(&y)], &[&verified(&y)], Reads::Cache).await.expect("Y prepared");
    let packed_y = [y.pack().expect("packs")];
    let written_y = write(&store, &[upload(&y)], &packed_y, prepared_y, &mut None, None).await.expect("no error");
    assert!(written_y.is_none(), "Y wrote X's record before X did");
    // X then lands, and Y, taken again, on X's.
    let packed_x = [x.pack().expect("packs")];
    let written_x = write(&store, &[upload(&x)], &packed_x, prepared_x, &mut None, None).await.expect("X written");
    assert!(written_x.is_some(), "X was refused");
    let answers = store.ingest_checked(&[upload(&y)], &[&verified(&y)], &mut None).await.expect("Y ingested");
    assert_eq!((answers[0].answer.accepted, answers[0].answer.flags.len()), (1, 0), "{:?}", answers[0].answer);
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2, 3]));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_read_a_card_before_another_caller_wrote_it_is_refused() {
    let (_dir, store) = store_after_a().await;
    // Card 1 folded into its row, and cached under A's token.
    store.fold_shadow_journal().await.expect("folded");
    // X takes card 1 from the cache; while X has it, Y (another caller of the store: the
    // platform's feed) finds the cache without it and reads its row; Y writes first.
    let x = batch("X", vec![purchase(1, 2, 600, 200)]);
    let y = batch("Y", vec![purchase(1, 3, 200, 100)]);
    let prepared_x = prepare(&store, &[upload(&x)], &[&verified(&x)], Reads::Cache).await.expect("X prepared");
    store.shadows.forget(&[card_1()]);
    let prepared_y = prepare(&store, &[upload(&y)], &[&verified(&y)], Reads::Cache).await.expect("Y prepared");
    let packed_y = [y.pack().expect("packs")];
    let written_y = write(&store, &[upload(&y)], &packed_y, prepared_y, &mut None, None).await.expect("Y written");
    assert!(written_y.is_some());
    // X's shadow of card 1 does not know Y's record: refused, then taken again on Y's.
    let packed_x = [x.pack().expect("packs")];
    let written_x = write(&store, &[upload(&x)], &packed_x, prepared_x, &mut None, None).await.expect("no error");
    assert!(written_x.is_none(), "X was written over Y's record");
    let answers = store.ingest_checked(&[upload(&x)], &[&verified(&x)], &mut None).await.expect("X ingested");
    assert_eq!((answers[0].answer.accepted, answers[0].new), (1, true), "{:?}", answers[0].answer);
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2, 3]));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_whose_read_folded_another_stores_writes_forgets_what_it_cached() {
    let (dir, first) = store_after_a().await;
    let second = Store::open_data_dir(dir.path()).await.expect("a second store opens");
    // The second store takes card 1's counter 2; the first still caches card 1 as A left it.
    let b = batch("B", vec![purchase(1, 2, 600, 200)]);
    second.ingest_checked(&[upload(&b)], &[&verified(&b)], &mut None).await.expect("B ingested");
    // A read on the first folds the second's journal (and finds the epoch moved).
    assert_eq!(first.shadow_totals().await.expect("totals"), (1, 200));
    // The first's next record of card 1 follows B's, not the cached shadow without it.
    let c = batch("C", vec![purchase(1, 3, 200, 100)]);
    let answers = first.ingest_checked(&[upload(&c)], &[&verified(&c)], &mut None).await.expect("C ingested");
    assert_eq!((answers[0].answer.accepted, answers[0].answer.flags.len()), (1, 0), "{:?}", answers[0].answer);
    for store in [&first, &second] {
        assert_eq!(counters(store, 1).await, Some(vec![1, 2, 3]));
    }
    first.close().await;
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_read_a_stale_row_is_refused_though_another_store_folded_the_journal() {
    let (dir, store) = store_after_a().await;
    // G finds card 1 gone from the cache and reads its row (none yet: A's entry is journaled).
    store.forget_all_shadows();
    let g = batch("G", vec![purchase(1, 2, 600, 200)]);
    let prepared = prepare(&store, &[upload(&g)], &[&verified(&g)], Reads::Cache).await.expect("G prepared");
    // Another store opens (folding A's entry into the row), then a fold on this one (a retry's,
    // say) finds nothing to fold and the epoch where this store left it.
    let other = Store::open_data_dir(dir.path()).await.expect("another store opens");
    store.fold_shadow_journal().await.expect("nothing to fold");
    assert_eq!(store.shadow_totals().await.expect("totals"), (1, 600));
    // G, built on no shadow of card 1, is still refused: this store remembers A's token.
    let packed = [g.pack().expect("packs")];
    let written = write(&store, &[upload(&g)], &packed, prepared, &mut None, None).await.expect("no error");
    assert!(written.is_none(), "G was written over A's record");
    let answers = store.ingest_checked(&[upload(&g)], &[&verified(&g)], &mut None).await.expect("G ingested");
    assert_eq!((answers[0].answer.accepted, answers[0].answer.flags.len()), (1, 0), "{:?}", answers[0].answer);
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2]));
    other.close().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_prepared_while_another_folds_the_journal_writes_after_it_on_its_shadows() {
    let (dir, store) = store_after_a().await;
    store.journal.set_entries(store.journal.fold_entries());
    // C is prepared on B's shadows before B writes (as the upload queue feeds the next group
    // beside a write that folds); B's write folds A's entry and its own into the rows.
    let b = batch("B", vec![purchase(1, 2, 600, 200), purchase(2, 1, 500, 300)]);
    let c = batch("C", vec![purchase(1, 3, 200, 100), purchase(3, 1, 900, 800)]);
    let prepared_b = prepare(&store, &[upload(&b)], &[&verified(&b)], Reads::Cache).await.expect("B prepared");
    let prepared_c = prepare(&store, &[upload(&c)], &[&verified(&c)], Reads::Cache).await.expect("C prepared");
    let packed_b = [b.pack().expect("packs")];
    let written_b = write(&store, &[upload(&b)], &packed_b, prepared_b, &mut None, None).await.expect("B written");
    assert!(written_b.is_some());
    assert_eq!((rows(dir.path(), "shadow_journal"), rows(dir.path(), "card_shadows")), (0, 2), "B folded");
    // C took card 1 from the cache under B's token, which the fold wrote to the row: not refused.
    let packed_c = [c.pack().expect("packs")];
    let written_c = write(&store, &[upload(&c)], &packed_c, prepared_c, &mut None, None).await.expect("no error");
    assert!(written_c.is_some(), "C, built on B, was refused after B's fold");
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2, 3]));
    assert_eq!(store.shadow_totals().await.expect("totals"), (3, 100 + 300 + 800));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_queued_while_a_group_folds_are_fed_beside_it_and_lose_nothing() {
    use std::sync::Arc;
    use yitong_clearing::batch::{Batch, BatchHeader};
    use yitong_record::{RecordStatus, TacKeys};

    let (_dir, store) = store_after_a().await;
    // Thousands of cards journaled, and the next group's write folds them: long enough that the
    // uploads coming meanwhile are fed beside it (the rule it relies on is pinned by the test
    // above; this one runs the queue's path and counts what lands).
    const JOURNALED: u32 = 3_000;
    let cards = (0..JOURNALED).map(|n| {
        let mut record = purchase(0, 1, 1_000, 900);
        record.card_serial[6..].copy_from_slice(&(100_000 + n).to_be_bytes());
        record
    });
    let journaled = batch("J", cards.collect());
    store.ingest_checked(&[upload(&journaled)], &[&verified(&journaled)], &mut None).await.expect("J ingested");
    store.journal.set_entries(store.journal.fold_entries());
    let queue = Arc::new(super::IngestQueue::new(store.clone()));
    let tac = Arc::new(TacKeys::new());
    const GATES: u8 = 16;
    const TAPS: u16 = 8;
    let mut gates = tokio::task::JoinSet::new();
    for gate in 0..GATES {
        let (queue, tac) = (queue.clone(), tac.clone());
        gates.spawn(async move {
            // Gate `gate` uploads its card's taps (card 10 + gate) one batch each, in order;
            // found in the cards' logs (no TAC needed).
            for counter in 1..=TAPS {
                let before = 10_000 - 100 * i64::from(counter - 1);
                let mut record = purchase(10 + gate, counter, before, before - 100);
                (record.status, record.tac) = (RecordStatus::Recovered, None);
                let header = BatchHeader {
                    batch_id: format!("G{gate}-{counter}"),
                    gate: [0x10, 0, 0, 0x0C, 1, gate],
                    operator: "beijing-metro".into(),
                };
                let batch = Arc::new(Batch { header, records: vec![record] });
                let at = yitong_profile::DateTime::new(2026, 11, 25, 9, 0, 0).expect("a time");
                let answer = queue.ingest(batch, &tac, "key-1", at, 0).await.expect("ingested");
                assert_eq!((answer.answer.accepted, answer.answer.flags.len()), (1, 0), "{:?}", answer.answer);
            }
        });
    }
    while let Some(done) = gates.join_next().await {
        done.expect("a gate's uploads");
    }
    let stats = queue.stats();
    assert_eq!((stats.batches, stats.failed, stats.retries), (u64::from(GATES) * u64::from(TAPS), 0, 0), "{stats:?}");
    for gate in 0..GATES {
        assert_eq!(counters(&store, 10 + gate).await, Some((1..=TAPS).collect()), "card {}", 10 + gate);
    }
    let last = 10_000 - 100 * i64::from(TAPS);
    let (cards, total) = (1 + i64::from(GATES) + i64::from(JOURNALED), 600 + i64::from(GATES) * last);
    assert_eq!(store.shadow_totals().await.expect("totals"), (cards, total + 900 * i64::from(JOURNALED)));
    store.close().await;
}

/// A fresh SQLite store keeping `cards` shadows in memory that took batch X: cards 1 to 5 at
/// counter 1, 1,000 → 900 fen each, in one group (journaled, not folded).
async fn store_with_cache_after_x(cards: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = super::StoreOptions { shadow_cache_cards: cards, ..super::StoreOptions::default() };
    let store = Store::open_data_dir_with(dir.path(), options).await.expect("SQLite opens");
    let x = batch("X", (1..=5).map(|card| purchase(card, 1, 1_000, 900)).collect());
    store.ingest_checked(&[upload(&x)], &[&verified(&x)], &mut None).await.expect("X ingested");
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_folds_at_half_the_cache_it_was_opened_with() {
    // Five cards journaled by one group: the next group's write folds them with its own.
    let (dir, store) = store_with_cache_after_x(8).await;
    assert_eq!(store.journal.fold_cards(), 4);
    assert_eq!((rows(dir.path(), "shadow_journal"), rows(dir.path(), "card_shadows")), (1, 0));
    let y = batch("Y", vec![purchase(1, 2, 900, 700), purchase(6, 1, 1_000, 900)]);
    store.ingest_checked(&[upload(&y)], &[&verified(&y)], &mut None).await.expect("Y ingested");
    assert_eq!((rows(dir.path(), "shadow_journal"), rows(dir.path(), "card_shadows")), (0, 6), "Y folded");
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2]));
    assert_eq!(store.shadow_totals().await.expect("totals"), (6, 700 + 5 * 900));
    store.close().await;
    // The default store journals far more before a group folds.
    let default = Store::open_data_dir(dir.path()).await.expect("opens");
    assert_eq!(default.journal.fold_cards(), super::SHADOW_CACHE_CARDS / 2);
    default.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_with_more_cards_than_half_the_cache_is_taken_again_and_loses_nothing() {
    // X's five cards: its own put keeps the last ones only (two generations of 2: card 1 is
    // pushed out), and its write folded nothing yet (the journal was empty).
    let (_dir, store) = store_with_cache_after_x(4).await;
    assert!(store.shadows.len() <= 4, "{} cards cached", store.shadows.len());
    // Y's card 1 was journaled by X but is no longer cached: read from its row (none yet), Y is
    // refused, then taken again from the database after a fold, on X's record.
    let before = store.ingest_retries();
    let y = batch("Y", vec![purchase(1, 2, 900, 700)]);
    let answers = store.ingest_checked(&[upload(&y)], &[&verified(&y)], &mut None).await.expect("Y ingested");
    assert_eq!((answers[0].answer.accepted, answers[0].answer.flags.len()), (1, 0), "{:?}", answers[0].answer);
    assert_eq!(store.ingest_retries(), before + 1);
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2]));
    assert_eq!(store.shadow_totals().await.expect("totals"), (5, 700 + 4 * 900));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fold_after_another_store_folded_this_stores_rows_takes_each_cards_last_entry() {
    // Folds at 6 cards: X's five are journaled, not folded.
    let (dir, store) = store_with_cache_after_x(12).await;
    // Another store opening on the same files folds X's row (which this store wrote) away.
    let other = Store::open_data_dir(dir.path()).await.expect("opens beside");
    assert_eq!((rows(dir.path(), "shadow_journal"), rows(dir.path(), "card_shadows")), (0, 5));
    other.close().await;
    // This store journals Z and W (a fold moves no epoch: nothing tells it of the other's), then
    // V's write folds: cards 1 and 2 from Z's row, 6 and 7 from W's, 3 to 5 as the other store
    // folded them (their last entries' row is gone), 8 V's own.
    let z = batch("Z", vec![purchase(1, 2, 900, 800), purchase(2, 2, 900, 800)]);
    store.ingest_checked(&[upload(&z)], &[&verified(&z)], &mut None).await.expect("Z ingested");
    let w = batch("W", vec![purchase(6, 1, 1_000, 900), purchase(7, 1, 1_000, 900)]);
    store.ingest_checked(&[upload(&w)], &[&verified(&w)], &mut None).await.expect("W ingested");
    assert_eq!(rows(dir.path(), "shadow_journal"), 2);
    let v = batch("V", vec![purchase(8, 1, 1_000, 900)]);
    store.ingest_checked(&[upload(&v)], &[&verified(&v)], &mut None).await.expect("V ingested");
    assert_eq!((rows(dir.path(), "shadow_journal"), rows(dir.path(), "card_shadows")), (0, 8), "V folded");
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2]));
    assert_eq!(counters(&store, 3).await, Some(vec![1]));
    assert_eq!(counters(&store, 7).await, Some(vec![1]));
    assert_eq!(store.shadow_totals().await.expect("totals"), (8, 2 * 800 + 6 * 900));
    store.close().await;
}
