//! Ingestion in the store, on SQLite and PostgreSQL: a load record with the card's real TAC
//! (from an over-the-air load) uploaded in two batches racing from separate pools — one accepts
//! it, the other finds it a duplicate, the card's shadow written once per batch (compare and
//! swap), nothing counted twice; a batch sent again answers as the first time. Batches larger
//! than a statement; uploads at once committed in groups, a bad one refused alone.

#[macro_use]
mod support;

use std::sync::Arc;
use support::wallet::{at, keyring, SecureElement, Wallet, T0};
use support::TestDb;
use yitong_clearing::batch::{Batch, BatchHeader};

use yitong_clearing::shadow::CardId;
use yitong_platform::store::{Backend, IngestError, IngestQueue};
use yitong_record::{RecordStatus, TapKind, TapRecord};

const HOST: [u8; 6] = [0x10, 0x00, 0xFF, 0xFF, 0x00, 0x02];

async fn racing_batches_of_one_card(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let issued = wallet.issue("phone-A", "F-phone-A").await;
    let mut se = SecureElement::new(&issued.image, 0);
    let order = wallet.paid_top_up("TOP-0001", &issued.card.card_id, 5_000, T0).await;
    let answer = se.send(&wallet.ota.initialize_command(&wallet.payments, &order).await.unwrap());
    let auth = wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, 30, 0), T0 + 10_000).await.unwrap();
    let credit = se.send(&auth.credit_command);
    wallet.ota.complete(&wallet.payments, &order, &credit, T0 + 11_000).await.unwrap();
    let record = wallet.store().ota_loads(&order).await.unwrap()[0].record.clone();
    let tac = keyring(wallet.issuance.cities()).tac_keys();
    let batch = |id: &str| Batch {
        header: BatchHeader { batch_id: id.into(), gate: HOST, operator: "beijing-card".into() },
        records: vec![record.clone()],
    };
    let (a, b) = (batch("A"), batch("B"));
    let other = db.open_again().await;
    let (first, second) = tokio::join!(
        db.store.ingest_batch(&a, &tac, "key-1", at(11, 0, 0), T0 + 60_000),
        other.ingest_batch(&b, &tac, "key-2", at(11, 0, 0), T0 + 60_000),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut counts =
        [(first.answer.accepted, first.answer.duplicates), (second.answer.accepted, second.answer.duplicates)];
    counts.sort_unstable();
    assert_eq!(counts, [(0, 1), (1, 0)], "accepted once, a duplicate the other time");
    let shadow = db.store.card_shadow(CardId::of(&record)).await.unwrap().expect("a shadow");
    assert_eq!(shadow.balance_fen(), Some(5_000));
    assert_eq!(shadow.transactions().len(), 1);
    // Sent again: the first answer, nothing new.
    let again = db.store.ingest_batch(&a, &tac, "key-1", at(12, 0, 0), T0 + 70_000).await.unwrap();
    assert!(!again.new);
    assert_eq!(again.answer, first.answer);
}

/// A purchase of card `n` found in its log (no TAC: accepted as logged): counter `counter`,
/// 300 fen from `before`, at the gate `1000 · 000C · 0001`.
fn logged_purchase(n: u32, counter: u16, before: i64) -> TapRecord {
    let mut card_serial = [0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    card_serial[6..].copy_from_slice(&n.to_be_bytes());
    TapRecord {
        status: RecordStatus::Recovered,
        kind: TapKind::Single,
        transaction_type: 6,
        card_serial,
        issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1],
        counter,
        amount_fen: 300,
        balance_before_fen: before,
        balance_after_fen: before - 300,
        terminal_id: [0x10, 0, 0, 0x0C, 0, 1],
        terminal_transaction_number: n * 10 + u32::from(counter),
        at: at(8, 0, 0).plus_seconds(i64::from(counter) * 3_600).unwrap(),
        city: "beijing".into(),
        city_code: 0x1000,
        station: String::new(),
        line: 1,
        station_code: 0,
        card_random: [0; 4],
        key_version: 1,
        algorithm_id: 0,
        mac2: None,
        tac: None,
    }
}

/// Batches larger than one statement's worth of records and of cards (the store writes them in
/// chunks): every record kept, every card's shadow inserted and then replaced once per batch.
async fn batches_larger_than_a_statement(db: &TestDb) {
    // Over `PARALLEL_FEED_RECORDS` too: each batch is fed on two threads.
    const CARDS: u32 = 5_000;
    const { assert!(CARDS as usize >= yitong_platform::store::PARALLEL_FEED_RECORDS) };
    let tac = yitong_record::TacKeys::new();
    let batch = |id: &str, counter: u16, before: i64| Batch {
        header: BatchHeader { batch_id: id.into(), gate: [0x10, 0, 0, 0x0C, 0, 1], operator: "beijing-metro".into() },
        records: (0..CARDS).map(|n| logged_purchase(n, counter, before)).collect(),
    };
    let first = db.store.ingest_batch(&batch("L1", 5, 1_000), &tac, "key-1", at(20, 0, 0), T0).await.unwrap();
    assert_eq!((first.answer.accepted, first.answer.rejected.len()), (CARDS as usize, 0));
    // Each card's next purchase: 700 fen before, 400 after.
    let second = db.store.ingest_batch(&batch("L2", 6, 700), &tac, "key-1", at(21, 0, 0), T0 + 1).await.unwrap();
    assert_eq!((second.answer.accepted, second.answer.duplicates), (CARDS as usize, 0));
    assert!(second.answer.flags.is_empty(), "{:?}", &second.answer.flags[..1]);
    assert_eq!(db.store.shadow_totals().await.unwrap(), (i64::from(CARDS), i64::from(CARDS) * 400));
    let last = CardId::of(&logged_purchase(CARDS - 1, 6, 700));
    let shadow = db.store.card_shadow(last).await.unwrap().expect("the last card's shadow");
    assert_eq!(shadow.transactions().len(), 2);
    // Records of the first batch again, in a batch of another ID: duplicates, nothing moves.
    let again = db.store.ingest_batch(&batch("L3", 5, 1_000), &tac, "key-1", at(22, 0, 0), T0 + 2).await.unwrap();
    assert_eq!((again.answer.accepted, again.answer.duplicates), (0, CARDS as usize));
    assert_eq!(db.store.shadow_totals().await.unwrap(), (i64::from(CARDS), i64::from(CARDS) * 400));
}

/// Uploads sent at once through the queue: committed in groups, each answered as alone — a batch
/// sent twice at once counted once, and a batch that cannot be taken (its card's stored shadow
/// corrupted behind the store's back) refused alone while the others land.
async fn concurrent_uploads_commit_in_groups(db: &TestDb) {
    let tac = Arc::new(yitong_record::TacKeys::new());
    let gate = [0x10, 0, 0, 0x0C, 0, 1];
    let batch = |id: &str, records: Vec<TapRecord>| {
        Arc::new(Batch { header: BatchHeader { batch_id: id.into(), gate, operator: "beijing-metro".into() }, records })
    };
    // Card 7 is known, then its stored shadow is broken.
    db.store
        .ingest_batch(&batch("P0", vec![logged_purchase(7, 5, 1_000)]), &tac, "key-1", at(9, 0, 0), T0)
        .await
        .unwrap();
    // (Its row written first: on SQLite the shadow is in the store's journal until folded. And
    // changed as another store would change it, with a new version and, on SQLite, the shadows'
    // epoch moved: a row changed otherwise is not looked at again while the service holds the
    // card's shadow in memory.)
    db.store.shadow_totals().await.unwrap();
    db.execute(
        "UPDATE card_shadows SET state = '{\"card\": 1}', packed = NULL, version = version + 1 \
         WHERE card_serial LIKE '%00000007'",
    )
    .await;
    if db.store.backend() == Backend::Sqlite {
        db.execute("UPDATE shadow_epoch SET n = n + 1").await;
    }

    let queue = Arc::new(IngestQueue::new(db.store.clone()));
    let mut uploads = tokio::task::JoinSet::new();
    let mut sent: Vec<Arc<Batch>> =
        (0..10u32).map(|n| batch(&format!("B{n}"), vec![logged_purchase(100 + n, 5, 1_000)])).collect();
    sent.push(sent[3].clone());
    sent.push(batch("BAD", vec![logged_purchase(7, 6, 700)]));
    for b in sent {
        let (queue, tac) = (queue.clone(), tac.clone());
        uploads.spawn(async move {
            let answer = queue.ingest(b.clone(), &tac, "key-1", at(10, 0, 0), T0 + 1).await;
            (b.header.batch_id.clone(), answer)
        });
    }
    let mut new_b3 = Vec::new();
    while let Some(done) = uploads.join_next().await {
        let (id, answer) = done.expect("an upload task");
        match id.as_str() {
            "BAD" => assert!(matches!(answer, Err(IngestError::Shadow(_))), "{answer:?}"),
            _ => {
                let answer = answer.unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_eq!((answer.answer.records, answer.answer.accepted), (1, 1), "{id}");
                if id == "B3" {
                    new_b3.push(answer.new);
                }
            }
        }
    }
    new_b3.sort_unstable();
    assert_eq!(new_b3, [false, true], "B3 taken once, answered twice");
    // Card 7 and the ten new cards; the ten hold 700 fen each (card 7's broken row keeps its 700).
    assert_eq!(db.store.shadow_totals().await.unwrap(), (11, 11 * 700));
    let kept = db.texts("SELECT batch_id FROM clearing_batches ORDER BY batch_id").await;
    assert_eq!(kept.len(), 11, "P0 and B0–B9, not BAD: {kept:?}");
}

/// Uploads at once, each with a new card's first tap and the previous upload's card's second:
/// the queue prepares a group on the shadows of the group still writing before it — cards it is
/// inserting among them — and every record lands in its card's shadow once: no upload refused
/// for contention, no flag left standing.
async fn uploads_building_on_each_other_all_land(db: &TestDb) {
    const UPLOADS: u32 = 600;
    let tac = Arc::new(yitong_record::TacKeys::new());
    let queue = Arc::new(IngestQueue::new(db.store.clone()));
    let gate = [0x10, 0, 0, 0x0C, 0, 1];
    // Gates uploading one batch after another, as the service sees them: many groups in a row.
    const GATES: u32 = 24;
    let mut gates = tokio::task::JoinSet::new();
    for first in 0..GATES {
        let (queue, tac) = (queue.clone(), tac.clone());
        gates.spawn(async move {
            for n in (first..UPLOADS).step_by(GATES as usize) {
                let mut records = vec![logged_purchase(1_000 + n, 1, 10_000)];
                if n > 0 {
                    records.push(logged_purchase(1_000 + n - 1, 2, 9_700));
                }
                let header = BatchHeader { batch_id: format!("U{n}"), gate, operator: "beijing-metro".into() };
                let batch = Arc::new(Batch { header, records });
                let answer = queue.ingest(batch, &tac, "key-1", at(23, 0, 0), T0).await;
                let answer = answer.unwrap_or_else(|e| panic!("upload {n}: {e}"));
                assert_eq!(
                    (answer.answer.accepted, answer.answer.duplicates),
                    (answer.answer.records, 0),
                    "upload {n}"
                );
            }
        });
    }
    while let Some(done) = gates.join_next().await {
        done.expect("a gate's uploads");
    }
    let stats = queue.stats();
    assert_eq!((stats.batches, stats.failed), (u64::from(UPLOADS), 0), "{stats:?}");
    assert!(stats.commits < stats.batches, "grouped: {stats:?}");
    // Every card at 9,400 fen after its two taps, the last one at 9,700 after its first.
    let total = i64::from(UPLOADS - 1) * 9_400 + 9_700;
    assert_eq!(db.store.shadow_totals().await.unwrap(), (i64::from(UPLOADS), total));
    for n in [0, UPLOADS / 2, UPLOADS - 1] {
        let shadow = db.store.card_shadow(CardId::of(&logged_purchase(1_000 + n, 1, 10_000))).await.unwrap();
        let counters: Vec<u16> = shadow.expect("a shadow").transactions().iter().map(|t| t.counter).collect();
        assert_eq!(counters, if n == UPLOADS - 1 { vec![1] } else { vec![1, 2] }, "card {n}");
    }
    assert_eq!(db.store.shadow_census().await.unwrap().flagged_cards, 0);
}

/// The platform's own over-the-air loads reach the card's shadow without an upload, once; a
/// stored record that does not read back is reported and skipped, the others fed.
async fn platform_loads_are_fed(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let issued = wallet.issue("phone-A", "F-phone-A").await;
    let mut se = SecureElement::new(&issued.image, 0);
    let mut orders = Vec::new();
    for (n, amount) in [(1u8, 5_000), (2, 2_000)] {
        let ms = T0 + i64::from(n) * 100_000;
        let order = wallet.paid_top_up(&format!("TOP-000{n}"), &issued.card.card_id, amount, ms).await;
        let answer = se.send(&wallet.ota.initialize_command(&wallet.payments, &order).await.unwrap());
        let auth = wallet.ota.authorize(&wallet.payments, &order, &answer, at(10, 30, n), ms + 10_000).await.unwrap();
        let credit = se.send(&auth.credit_command);
        wallet.ota.complete(&wallet.payments, &order, &credit, ms + 11_000).await.unwrap();
        orders.push(order);
    }
    let tac = keyring(wallet.issuance.cities()).tac_keys();
    let first = wallet.store().ota_loads(&orders[0]).await.unwrap()[0].record.clone();
    let second = wallet.store().ota_loads(&orders[1]).await.unwrap()[0].record.clone();
    // The first load's stored record broken behind the store's back: reported, the second fed.
    db.execute("UPDATE ota_loads SET record = '{}' WHERE merchant_order_id = 'TOP-0001'").await;
    let feed = db.store.feed_platform_records(&tac, at(11, 0, 0), T0 + 600_000, i64::MIN).await.unwrap();
    assert_eq!(feed.fed, 1);
    assert_eq!(feed.failed.iter().map(|(tap, _)| tap.clone()).collect::<Vec<_>>(), [first.tap_id().to_string()]);
    // The next feed starts no later than the broken record's last change (T0 + 100,000 + 11,000).
    assert!(feed.next_since_ms <= T0 + 111_000, "{}", feed.next_since_ms);
    let again = db.store.feed_platform_records(&tac, at(11, 0, 0), T0 + 601_000, feed.next_since_ms).await.unwrap();
    assert_eq!((again.fed, again.failed.len()), (0, 1), "fed once; the broken one still reported");
    // From after every change: nothing looked at.
    let later = db.store.feed_platform_records(&tac, at(11, 0, 0), T0 + 602_000, T0 + 500_000).await.unwrap();
    assert_eq!((later.fed, later.failed.len()), (0, 0));
    let shadow = db.store.card_shadow(CardId::of(&second)).await.unwrap().expect("a shadow");
    assert_eq!((shadow.balance_fen(), shadow.transactions().len()), (Some(7_000), 1));
    let batches = db.texts("SELECT batch_id FROM clearing_batches").await;
    assert_eq!(batches, [format!("platform:{}", second.tap_id())]);
}

/// A card's shadow held in memory by one store and changed through another (a second service on
/// the same database): the first store's next batch finds the stored version moved, reads the
/// shadow again and adds to it — the other's record neither lost nor taken for a gap.
async fn a_shadow_changed_through_another_store_is_read_again(db: &TestDb) {
    let tac = yitong_record::TacKeys::new();
    let batch = |id: &str, record: TapRecord| Batch {
        header: BatchHeader { batch_id: id.into(), gate: [0x10, 0, 0, 0x0C, 0, 1], operator: "beijing-metro".into() },
        records: vec![record],
    };
    db.store.ingest_batch(&batch("S1", logged_purchase(9, 5, 1_000)), &tac, "key-1", at(9, 0, 0), T0).await.unwrap();
    let other = db.open_again().await;
    other.ingest_batch(&batch("S2", logged_purchase(9, 6, 700)), &tac, "key-1", at(10, 0, 0), T0 + 1).await.unwrap();
    let third = db
        .store
        .ingest_batch(&batch("S3", logged_purchase(9, 7, 400)), &tac, "key-1", at(11, 0, 0), T0 + 2)
        .await
        .unwrap();
    assert_eq!(third.answer.accepted, 1);
    assert!(third.answer.flags.is_empty(), "counter 6 is there, no gap: {:?}", third.answer.flags);
    let shadow = db.store.card_shadow(CardId::of(&logged_purchase(9, 5, 1_000))).await.unwrap().expect("a shadow");
    assert_eq!((shadow.transactions().len(), shadow.balance_fen()), (3, Some(100)));
    other.close().await;
}

/// Records kept a row each and shadows kept as JSON (before migration 8): the records are moved
/// into their batches when the store opens — the same records with the same dispositions, in the
/// same business day, the old table left empty — and the shadows read as they are until written.
async fn record_rows_from_before_are_moved_into_their_batches(db: &TestDb) {
    let tac = yitong_record::TacKeys::new();
    let records = vec![logged_purchase(11, 5, 1_000), logged_purchase(11, 5, 1_000), logged_purchase(12, 5, 1_000)];
    let batch = Batch {
        header: BatchHeader {
            batch_id: "OLD".into(),
            gate: [0x10, 0, 0, 0x0C, 0, 1],
            operator: "beijing-metro".into(),
        },
        records,
    };
    let answer = db.store.ingest_batch(&batch, &tac, "key-1", at(20, 0, 0), T0).await.unwrap();
    assert_eq!((answer.answer.accepted, answer.answer.duplicates), (2, 1));
    let kept = db.store.batch_records("1000000C0001", "OLD").await.unwrap().expect("kept");
    // Back to the form a database from before migration 8 holds.
    db.execute(
        "UPDATE clearing_batches SET records_packed = NULL, dispositions = NULL, first_at = NULL, last_at = NULL",
    )
    .await;
    for (position, k) in kept.iter().enumerate() {
        let r = &k.record;
        let json = serde_json::to_string(r).unwrap().replace('\'', "''");
        db.execute(&format!(
            "INSERT INTO clearing_records (gate, batch_id, position, tap_id, issuer_id, card_serial, disposition, \
             reason, at, record) VALUES ('1000000C0001', 'OLD', {position}, '{}', '{}', '{}', '{}', NULL, '{}', '{json}')",
            r.tap_id(),
            hex::encode_upper(r.issuer_id),
            hex::encode_upper(r.card_serial),
            k.disposition.name(),
            r.at,
        ))
        .await;
    }
    // And the shadows back to JSON.
    for serial in [11u32, 12] {
        let card = CardId::of(&logged_purchase(serial, 5, 1_000));
        let shadow = db.store.card_shadow(card).await.unwrap().expect("a shadow");
        let json = serde_json::to_string(&shadow).unwrap();
        let serial = hex::encode_upper(card.card_serial);
        db.execute(&format!("UPDATE card_shadows SET state = '{json}', packed = NULL WHERE card_serial = '{serial}'"))
            .await;
    }
    let reopened = db.open_again().await;
    assert_eq!(reopened.batch_records("1000000C0001", "OLD").await.unwrap(), Some(kept.clone()));
    assert!(db.texts("SELECT gate FROM clearing_records").await.is_empty(), "the old rows are gone");
    let (batches, counts) = reopened.clearing_counts().await.unwrap();
    assert_eq!((batches, counts.get("accepted"), counts.get("duplicate")), (1, Some(&2), Some(&1)));
    let (cleared, pending) = reopened.ingested_day(at(0, 0, 0), at(23, 59, 59)).await.unwrap();
    assert_eq!((cleared, pending.len()), (vec![kept[0].record.clone(), kept[2].record.clone()], 0));
    // The next purchase of card 11 follows from its JSON shadow, which is then written packed.
    let next = Batch {
        records: vec![logged_purchase(11, 6, 700)],
        header: BatchHeader { batch_id: "NEW".into(), ..batch.header },
    };
    let answer = reopened.ingest_batch(&next, &tac, "key-1", at(21, 0, 0), T0 + 1).await.unwrap();
    assert_eq!((answer.answer.accepted, answer.answer.flags.len()), (1, 0));
    reopened.shadow_totals().await.unwrap(); // (SQLite: the journal folded into the rows.)
    let packed = db.texts("SELECT card_serial FROM card_shadows WHERE packed IS NOT NULL AND state IS NULL").await;
    assert_eq!(packed, [hex::encode_upper(logged_purchase(11, 5, 1_000).card_serial)]);
    reopened.close().await;
}

/// A gate's batch whose ID starts like the platform's in another case is a gate's: its records
/// are in the day (SQLite's `LIKE` would have ignored the case).
async fn a_gate_batch_named_like_the_platforms_is_in_the_day(db: &TestDb) {
    let tac = yitong_record::TacKeys::new();
    let batch = Batch {
        header: BatchHeader {
            batch_id: "PLATFORM:1".into(),
            gate: [0x10, 0, 0, 0x0C, 0, 1],
            operator: "beijing-metro".into(),
        },
        records: vec![logged_purchase(21, 5, 1_000)],
    };
    db.store.ingest_batch(&batch, &tac, "key-1", at(20, 0, 0), T0).await.unwrap();
    let (cleared, pending) = db.store.ingested_day(at(0, 0, 0), at(23, 59, 59)).await.unwrap();
    assert_eq!((cleared, pending.len()), (batch.records, 0));
}

/// A queue holding at most 3 records at once: uploads of 2 wait their turn, and every one is
/// taken (an upload larger than the bound takes the whole of it).
async fn a_bounded_queue_takes_every_upload_in_turn(db: &TestDb) {
    let tac = Arc::new(yitong_record::TacKeys::new());
    let queue = Arc::new(IngestQueue::with_limit(db.store.clone(), 3));
    let mut uploads = tokio::task::JoinSet::new();
    for n in 0..6u32 {
        let records = if n == 5 {
            (0..4).map(|k| logged_purchase(300 + k, 5, 1_000)).collect()
        } else {
            vec![logged_purchase(200 + 2 * n, 5, 1_000), logged_purchase(201 + 2 * n, 5, 1_000)]
        };
        let batch = Arc::new(Batch {
            header: BatchHeader {
                batch_id: format!("Q{n}"),
                gate: [0x10, 0, 0, 0x0C, 0, 1],
                operator: "beijing-metro".into(),
            },
            records,
        });
        let (queue, tac) = (queue.clone(), tac.clone());
        uploads.spawn(async move { queue.ingest(batch, &tac, "key-1", at(10, 0, 0), T0).await });
    }
    let mut accepted = 0;
    while let Some(done) = uploads.join_next().await {
        accepted += done.expect("an upload task").expect("taken").answer.accepted;
    }
    assert_eq!(accepted, 5 * 2 + 4);
    assert_eq!(db.store.shadow_totals().await.unwrap(), (14, 14 * 700));
    let stats = queue.stats();
    assert_eq!((stats.batches, stats.records, stats.failed, stats.records_held), (6, 14, 0, 0), "{stats:?}");
}

/// One batch uploaded through two stores at once (two services on one database): kept once with
/// its records as sent, both answered alike; on PostgreSQL, where a group's rows are copied into
/// a staging table before its transaction, the loser's staged rows are gone too, and rows a dead
/// process left there an hour ago are deleted when a store opens.
async fn one_batch_from_two_stores_at_once(db: &TestDb) {
    let tac = yitong_record::TacKeys::new();
    let batch = Batch {
        header: BatchHeader {
            batch_id: "TWICE".into(),
            gate: [0x10, 0, 0, 0x0C, 0, 1],
            operator: "beijing-metro".into(),
        },
        records: (0..40).map(|n| logged_purchase(n, 5, 1_000)).collect(),
    };
    let other = db.open_again().await;
    let (first, second) = tokio::join!(
        db.store.ingest_batch(&batch, &tac, "key-1", at(20, 0, 0), T0),
        other.ingest_batch(&batch, &tac, "key-1", at(20, 0, 0), T0),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.answer, second.answer);
    assert_eq!([first.new, second.new].iter().filter(|&&new| new).count(), 1, "taken once");
    assert_eq!(first.answer.accepted, 40);
    let kept = db.store.batch_records("1000000C0001", "TWICE").await.unwrap().expect("kept");
    assert_eq!(kept.iter().map(|k| k.record.clone()).collect::<Vec<_>>(), batch.records);
    assert!(kept.iter().all(|k| k.disposition == yitong_platform::store::KeptDisposition::Accepted));
    assert_eq!(db.store.shadow_totals().await.unwrap(), (40, 40 * 700));
    if db.store.backend() == yitong_platform::store::Backend::Postgres {
        assert!(db.texts("SELECT gate FROM clearing_batches_staged").await.is_empty(), "nothing left staged");
        // A dead process's rows: one staged two hours ago, one just now (another process's,
        // about to be moved).
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        for (token, staged_at_ms) in [(1, now_ms - 7_200_000), (2, now_ms)] {
            db.execute(&format!(
                "INSERT INTO clearing_batches_staged (token, staged_at_ms, gate, batch_id, operator, operator_key_id, \
                 records, answer, received_at_ms, records_packed, dispositions) \
                 VALUES ({token}, {staged_at_ms}, '1000000C0001', 'LEFT', 'm', 'k', 0, '{{}}', 0, '\\x00', '')"
            ))
            .await;
        }
        drop(db.open_again().await);
        assert_eq!(db.texts("SELECT CAST(token AS TEXT) FROM clearing_batches_staged").await, ["2"]);
    }
    other.close().await;
}

on_both_backends! {
    one_batch_twice => one_batch_from_two_stores_at_once,
    bounded_queue => a_bounded_queue_takes_every_upload_in_turn,
    platform_like => a_gate_batch_named_like_the_platforms_is_in_the_day,
    moved_rows => record_rows_from_before_are_moved_into_their_batches,
    shadow_changed_elsewhere => a_shadow_changed_through_another_store_is_read_again,
    racing => racing_batches_of_one_card,
    platform_loads => platform_loads_are_fed,
    large_batches => batches_larger_than_a_statement,
    group_commit => concurrent_uploads_commit_in_groups,
    building_on_each_other => uploads_building_on_each_other_all_land,
}
