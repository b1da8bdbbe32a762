//! A group prepared on the shadows another group left in the cache before writing them is
//! written only if that write committed: here it never does, and the shadows stored hold no
//! trace of it — not even a card first seen in it. When it does, the second group's write waits
//! for the first's (on PostgreSQL too, where nothing else would order them).

use yitong_clearing::batch::{Batch, BatchHeader};
use yitong_clearing::shadow::{CardId, TacCheck};
use yitong_profile::DateTime;
use yitong_record::{RecordStatus, TapKind, TapRecord};

use super::clearing::Upload;
use super::ingest_group::{prepare, write, write_token, Reads};
use super::Store;

pub(super) const ISSUER: [u8; 8] = [0, 0, 0x10, 0, 0, 0, 0, 1];

/// A purchase of card `card` at its `counter`, leaving `after` fen of `before`.
pub(super) fn purchase(card: u8, counter: u16, before: i64, after: i64) -> TapRecord {
    TapRecord {
        status: RecordStatus::Confirmed,
        kind: TapKind::Exit,
        transaction_type: 9,
        card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0, 0, card],
        issuer_id: ISSUER,
        counter,
        amount_fen: u32::try_from(before - after).expect("a debit"),
        balance_before_fen: before,
        balance_after_fen: after,
        terminal_id: [0x10, 0, 0, 0x0C, 0, 1],
        terminal_transaction_number: u32::from(counter) * 100 + u32::from(card),
        at: DateTime::new(2026, 11, 25, 8, 0, counter as u8).expect("a time"),
        city: "beijing".into(),
        city_code: 0x1000,
        station: String::new(),
        line: 1,
        station_code: 12,
        card_random: [1, 2, 3, 4],
        key_version: 1,
        algorithm_id: 0,
        mac2: None,
        // Taken as verified below: these tests are about the shadows' writes, not TACs.
        tac: Some([1, 2, 3, 4]),
    }
}

pub(super) fn batch(id: &str, records: Vec<TapRecord>) -> Batch {
    Batch {
        header: BatchHeader { batch_id: id.into(), gate: [0x10, 0, 0, 0x0C, 0, 1], operator: "test".into() },
        records,
    }
}

pub(super) fn upload(batch: &Batch) -> Upload<'_> {
    let received = DateTime::new(2026, 11, 26, 1, 0, 0).expect("a time");
    Upload { batch, operator_key_id: "test", received, now_ms: 1 }
}

pub(super) fn verified(batch: &Batch) -> Vec<TacCheck> {
    vec![TacCheck::Verified; batch.records.len()]
}

pub(super) async fn counters(store: &Store, card: u8) -> Option<Vec<u16>> {
    let id = CardId { issuer_id: ISSUER, card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0, 0, card] };
    let shadow = store.card_shadow(id).await.expect("the shadow reads")?;
    Some(shadow.transactions().iter().map(|t| t.counter).collect())
}

/// A fresh SQLite store that took batch A: card 1's purchase at counter 1, 1,000 → 600 fen.
pub(super) async fn store_after_a() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
    let a = batch("A", vec![purchase(1, 1, 1_000, 600)]);
    store.ingest_checked(&[upload(&a)], &[&verified(&a)], &mut None).await.expect("A ingested");
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_built_on_a_write_that_never_committed_is_refused_and_taken_again() {
    let (_dir, store) = store_after_a().await;

    // B is prepared (its shadows cached under its token); C is prepared on B's shadow of card 2
    // (new in B), D on B's shadow of card 1; then B is dropped, never written. Each write is
    // refused (for card 2, an insert would have gone through).
    let b = batch("B", vec![purchase(1, 2, 600, 200), purchase(2, 1, 500, 300)]);
    let prepared_b = prepare(&store, &[upload(&b)], &[&verified(&b)], Reads::Cache).await.expect("B prepared");
    let c = batch("C", vec![purchase(2, 2, 300, 200)]);
    let d = batch("D", vec![purchase(1, 3, 200, 100)]);
    let mut prepared = Vec::new();
    for group in [&c, &d] {
        prepared.push(prepare(&store, &[upload(group)], &[&verified(group)], Reads::Cache).await.expect("prepared"));
    }
    drop(prepared_b);
    for (group, prepared) in [&c, &d].into_iter().zip(prepared) {
        let packed = [group.pack().expect("it packs")];
        let written =
            write(&store, &[upload(group)], &packed, prepared, &mut None, None).await.expect("no database error");
        assert!(written.is_none(), "{}: a write on B's uncommitted shadows went through", group.header.batch_id);
    }
    assert_eq!(counters(&store, 1).await, Some(vec![1]), "card 1 holds A's record only");
    assert_eq!(counters(&store, 2).await, None, "card 2, first seen in B, was never stored");
    let (batches, _) = store.clearing_counts().await.expect("counted");
    assert_eq!(batches, 1, "only A's batch is kept");

    // Taken the service's way, they read the stored shadows again and land on A's, not B's.
    for group in [&c, &d] {
        let answers = store.ingest_checked(&[upload(group)], &[&verified(group)], &mut None).await.expect("ingested");
        assert_eq!((answers[0].answer.accepted, answers[0].new), (1, true));
    }
    assert_eq!(counters(&store, 1).await, Some(vec![1, 3]));
    assert_eq!(counters(&store, 2).await, Some(vec![2]));

    // A group prepared after one that was dropped reads what the database holds, not the dropped
    // one's shadows.
    let e = batch("E", vec![purchase(1, 4, 100, 50)]);
    drop(prepare(&store, &[upload(&e)], &[&verified(&e)], Reads::Cache).await.expect("E prepared"));
    let f = batch("F", vec![purchase(1, 5, 50, 40)]);
    let answers = store.ingest_checked(&[upload(&f)], &[&verified(&f)], &mut None).await.expect("F ingested");
    assert_eq!((answers[0].answer.accepted, answers[0].new), (1, true));
    assert_eq!(counters(&store, 1).await, Some(vec![1, 3, 5]), "E's record is not in card 1's shadow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_built_on_a_committed_write_goes_through_without_reading_again() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
    // B prepared, then C prepared on B's cached shadows, then both written in order: the next
    // group fed while one writes, as the upload queue runs them.
    let b = batch("B", vec![purchase(1, 1, 1_000, 600), purchase(2, 1, 500, 300)]);
    let c = batch("C", vec![purchase(1, 2, 600, 200), purchase(2, 2, 300, 200)]);
    let (packed_b, packed_c) = ([b.pack().expect("B packs")], [c.pack().expect("C packs")]);
    let prepared_b = prepare(&store, &[upload(&b)], &[&verified(&b)], Reads::Cache).await.expect("B prepared");
    let prepared_c = prepare(&store, &[upload(&c)], &[&verified(&c)], Reads::Cache).await.expect("C prepared");
    let written_b = write(&store, &[upload(&b)], &packed_b, prepared_b, &mut None, None).await.expect("B written");
    assert!(written_b.is_some());
    let written_c = write(&store, &[upload(&c)], &packed_c, prepared_c, &mut None, None).await.expect("C written");
    assert!(written_c.is_some(), "C, built on B as committed, was refused");
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2]));
    assert_eq!(counters(&store, 2).await, Some(vec![1, 2]));
}

/// Both groups' writes at once, the first one's first: on SQLite and, when `YITONG_TEST_PG_URL`
/// names a server, on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_prepared_on_one_writing_waits_for_its_commit() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
    writes_in_turn(&sqlite).await;
    let Ok(server) = std::env::var("YITONG_TEST_PG_URL") else {
        assert!(
            std::env::var_os("YITONG_REQUIRE_EXTERNAL").is_none_or(|v| v != "1"),
            "YITONG_TEST_PG_URL is not set (YITONG_REQUIRE_EXTERNAL=1 makes a skip a failure)"
        );
        eprintln!("skipped on PostgreSQL: YITONG_TEST_PG_URL is not set");
        return;
    };
    use sqlx::{Connection, Executor};
    let schema = format!("yitong_unit_{}_{}", std::process::id(), write_token().expect("randomness"));
    let mut admin = sqlx::PgConnection::connect(&server).await.expect("YITONG_TEST_PG_URL connects");
    admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.expect("a fresh schema");
    let separator = if server.contains('?') { '&' } else { '?' };
    let postgres =
        Store::open(&format!("{server}{separator}options[search_path]={schema}")).await.expect("PostgreSQL opens");
    writes_in_turn(&postgres).await;
    postgres.close().await;
    admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await.expect("dropped");
}

async fn writes_in_turn(store: &Store) {
    // Cards 1 and 2 are new in B; C is prepared on B's shadows before B writes them.
    let b = batch("B", vec![purchase(1, 1, 1_000, 600), purchase(2, 1, 500, 300)]);
    let c = batch("C", vec![purchase(1, 2, 600, 200), purchase(2, 2, 300, 200)]);
    let (packed_b, packed_c) = ([b.pack().expect("B packs")], [c.pack().expect("C packs")]);
    let prepared_b = prepare(store, &[upload(&b)], &[&verified(&b)], Reads::Cache).await.expect("B prepared");
    let prepared_c = prepare(store, &[upload(&c)], &[&verified(&c)], Reads::Cache).await.expect("C prepared");
    let (uploads_b, uploads_c) = ([upload(&b)], [upload(&c)]);
    let (mut ready_b, mut ready_c) = (None, None);
    let (written_b, written_c) = tokio::join!(
        write(store, &uploads_b, &packed_b, prepared_b, &mut ready_b, None),
        write(store, &uploads_c, &packed_c, prepared_c, &mut ready_c, None),
    );
    assert!(written_b.expect("B written").is_some());
    assert!(written_c.expect("C written").is_some(), "C did not wait for B's commit");
    assert_eq!(counters(store, 1).await, Some(vec![1, 2]));
    assert_eq!(counters(store, 2).await, Some(vec![1, 2]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_that_lost_to_another_process_are_taken_again_and_land() {
    let (_dir, store) = store_after_a().await;
    // G2 is prepared on G1's shadow; then another process writes card 1 behind the cache.
    let g1 = batch("G1", vec![purchase(1, 2, 600, 200)]);
    let g2 = batch("G2", vec![purchase(1, 3, 200, 100)]);
    let prepared_1 = prepare(&store, &[upload(&g1)], &[&verified(&g1)], Reads::Cache).await.expect("G1 prepared");
    let prepared_2 = prepare(&store, &[upload(&g2)], &[&verified(&g2)], Reads::Cache).await.expect("G2 prepared");
    let mut other = store.begin_backoffice_write().await.expect("a writer");
    // (Every store's write of the shadows moves the epoch: `shadow_journal`.)
    other.db().batch("UPDATE card_shadows SET version = version + 1").await.expect("changed");
    other.db().batch("UPDATE shadow_epoch SET n = n + 1").await.expect("moved");
    other.commit().await.expect("committed");
    let (packed_1, packed_2) = ([g1.pack().expect("packs")], [g2.pack().expect("packs")]);
    let lost_1 = write(&store, &[upload(&g1)], &packed_1, prepared_1, &mut None, None).await.expect("no error");
    let lost_2 = write(&store, &[upload(&g2)], &packed_2, prepared_2, &mut None, None).await.expect("no error");
    assert!(lost_1.is_none() && lost_2.is_none(), "both lost to the other process");

    // The service's way, both at once: each attempt after the first reads the database in turn.
    let (uploads_1, uploads_2) = ([upload(&g1)], [upload(&g2)]);
    let (checks_1, checks_2) = (verified(&g1), verified(&g2));
    let (checks_1, checks_2) = ([checks_1.as_slice()], [checks_2.as_slice()]);
    let (mut ready_1, mut ready_2) = (None, None);
    let (taken_1, taken_2) = tokio::join!(
        store.ingest_checked(&uploads_1, &checks_1, &mut ready_1),
        store.ingest_checked(&uploads_2, &checks_2, &mut ready_2),
    );
    for taken in [taken_1, taken_2] {
        let answers = taken.expect("taken");
        assert_eq!((answers[0].answer.accepted, answers[0].new), (1, true));
    }
    assert_eq!(counters(&store, 1).await, Some(vec![1, 2, 3]));
    // G1 sent again: its first answer.
    let again = store.ingest_checked(&[upload(&g1)], &[&verified(&g1)], &mut None).await.expect("taken");
    assert_eq!((again[0].answer.accepted, again[0].new), (1, false));
}

/// A group large enough to be fed on two threads: the same outcome for every record, in the
/// same order, and the same shadows as fed on one — with gaps filled late, duplicates and
/// records without a TAC among them.
#[test]
fn a_large_group_is_fed_on_two_threads_as_on_one() {
    use super::group_shadows::{GroupShadows, Seating};
    use super::ingest_group::{handle_records_on, PARALLEL_FEED_RECORDS};
    use yitong_clearing::shadow::Disposition;

    // 250 cards × 20 purchases of 100 fen, uploaded counter by counter, the odd ones first (gaps
    // at the even ones, then filled); every seventh without its TAC.
    let mut batches = Vec::new();
    for counter in (1..=20u16).step_by(2).chain((2..=20).step_by(2)) {
        // The cards in another order in every batch, so that neither thread's records alternate
        // with the other's by position.
        let records: Vec<TapRecord> = (0..250u16)
            .map(|n| ((n * 37 + counter * 11) % 250) as u8)
            .map(|card| {
                let before = 10_000 - 100 * i64::from(counter - 1);
                let mut record = purchase(card, counter, before, before - 100);
                if (u16::from(card) + counter) % 7 == 0 {
                    record.status = RecordStatus::Unconfirmed;
                    record.tac = None;
                }
                record
            })
            .collect();
        batches.push(batch(&format!("C{counter}"), records));
    }
    // The first batch again under another ID: duplicates.
    batches.push(batch("AGAIN", batches[0].records.clone()));
    let uploads: Vec<Upload<'_>> = batches.iter().map(upload).collect();
    let checks: Vec<Vec<TacCheck>> = batches
        .iter()
        .map(|b| {
            b.records.iter().map(|r| if r.tac.is_some() { TacCheck::Verified } else { TacCheck::Absent }).collect()
        })
        .collect();
    let checks: Vec<&[TacCheck]> = checks.iter().map(Vec::as_slice).collect();
    let records: usize = batches.iter().map(|b| b.records.len()).sum();
    assert!(records >= PARALLEL_FEED_RECORDS, "{records} records: large enough for two threads");
    let halves: std::collections::BTreeSet<usize> =
        batches[0].records.iter().map(|r| super::ingest_group::half(&CardId::of(r))).collect();
    assert_eq!(halves.len(), 2, "both threads have cards");
    let fresh: Vec<usize> = (0..uploads.len()).collect();
    let cards: Vec<CardId> = uploads.iter().flat_map(|u| u.batch.records.iter().map(CardId::of)).collect();
    let seating = Seating::of(&cards).expect("seated");
    assert_eq!(seating.cards.len(), 250);
    // Each record at its own card's shadow.
    assert!(cards.iter().zip(&seating.seats).all(|(card, &seat)| seating.cards[seat as usize] == *card));
    let (mut one, mut two) = (GroupShadows::new_for(&seating), GroupShadows::new_for(&seating));
    let seats = &seating.seats;
    let (on_one, packed_on_one) =
        handle_records_on(&mut one, &uploads, &fresh, &checks, seats, false).expect("fed on one thread");
    let (on_two, packed_on_two) =
        handle_records_on(&mut two, &uploads, &fresh, &checks, seats, true).expect("fed on two threads");
    assert_eq!(on_one.len(), records);
    assert_eq!(on_one, on_two);
    // The packed shadows handed back are the shadows as fed, in the cards' order, both ways.
    let packed = |shadows: &GroupShadows| -> Vec<Vec<u8>> { shadows.iter().map(|held| held.shadow.pack()).collect() };
    assert_eq!(packed(&one), packed(&two));
    assert_eq!(packed_on_one, packed(&one));
    assert_eq!(packed_on_two, packed(&two));
    assert_eq!(packed_on_one.len(), 250);
    // What the outcomes say: settlements and flags came and went as records filled the gaps.
    assert!(on_one.iter().any(|o| o.as_ref().is_ok_and(|a| !a.settlements.is_empty())));
    assert!(on_one.iter().any(|o| o.as_ref().is_ok_and(|a| !a.raised.is_empty())));
    assert!(on_one.iter().any(|o| o.as_ref().is_ok_and(|a| !a.cleared.is_empty())));
    let duplicates =
        on_one.iter().filter(|o| o.as_ref().is_ok_and(|a| matches!(a.disposition, Disposition::Duplicate { .. })));
    assert_eq!(duplicates.count(), 250, "the batch sent again");
}

#[test]
fn tacs_checked_on_several_threads_come_back_in_the_records_order() {
    use yitong_crypto::{Algorithm, TacMasterKey};
    let dtk = [0x0F, 0x1E, 0x2D, 0x3C, 0x4B, 0x5A, 0x69, 0x78, 0x87, 0x96, 0xA5, 0xB4, 0xC3, 0xD2, 0xE1, 0xF0];
    let master = TacMasterKey::new(Algorithm::Des, dtk);
    let mut keys = yitong_record::TacKeys::new();
    keys.add(ISSUER, 1, TacMasterKey::new(Algorithm::Des, dtk));
    // 1,200 records of 40 cards, signed as their cards sign them; every seventh altered after.
    let records: Vec<TapRecord> = (0..1_200_u16)
        .map(|n| {
            let mut record = purchase((n % 40) as u8, n / 40 + 1, 1_000, 800);
            record.algorithm_id = master.algorithm().id();
            let key = master.card_tac_key(ISSUER, record.asn8());
            record.tac = Some(yitong_record::card_tac(&record, &key).expect("signed"));
            if n % 7 == 3 {
                record.amount_fen += 1;
            }
            record
        })
        .collect();
    let one = super::clearing::verify_tacs(&records, &keys, 1);
    let four = super::clearing::verify_tacs(&records, &keys, 4);
    let forged: Vec<usize> = (0..records.len()).filter(|n| n % 7 == 3).collect();
    let failed = |checks: &[TacCheck]| -> Vec<usize> {
        checks.iter().enumerate().filter(|(_, check)| **check != TacCheck::Verified).map(|(n, _)| n).collect()
    };
    assert_eq!(failed(&one), forged, "each altered record, and only those, fails its TAC");
    assert_eq!(four, one, "the same verdicts, record for record, on four threads");
}
