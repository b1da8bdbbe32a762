//! Ingestion in the store, on SQLite and PostgreSQL: a load record with the card's real TAC
//! (from an over-the-air load) uploaded in two batches racing from separate pools — one accepts
//! it, the other finds it a duplicate, the card's shadow written once per batch (compare and
//! swap), nothing counted twice; a batch sent again answers as the first time.

#[macro_use]
mod support;

use support::wallet::{at, keyring, SecureElement, Wallet, T0};
use support::TestDb;
use yitong_clearing::batch::{Batch, BatchHeader};
use yitong_clearing::shadow::CardId;
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
    const CARDS: u32 = 2_500;
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

on_both_backends! {
    racing => racing_batches_of_one_card,
    large_batches => batches_larger_than_a_statement,
}
