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

on_both_backends! {
    racing => racing_batches_of_one_card,
}
