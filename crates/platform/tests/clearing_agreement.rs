//! The platform's ledger and the back office's clearing, card by card, on SQLite and
//! PostgreSQL: real cards loaded over the air, charged at a gate (real TACs), one deleted. Before
//! the gates upload, the deleted card's closure shows a purchase counter the back office has not
//! seen (undecided, not "no fares"); after, every card agrees — the ledger's 200 fen of
//! `fares_unsettled` are the deleted card's cleared gate fare — a pending record leaves its card
//! undecided, and a ledger credit the card never shows is a mismatch.

#[macro_use]
mod support;

use support::wallet::{at, closures, gate_purchase, keyring, loaded_card, pump, Wallet, T0};
use support::TestDb;
use yitong_clearing::batch::{Batch, BatchHeader};
use yitong_platform::closure::Purpose;
use yitong_platform::ledger::{Account, Fen, Posting, PostingId};
use yitong_record::RecordStatus;

async fn the_ledger_and_the_clearing_agree_card_by_card(db: &TestDb) {
    let wallet = Wallet::new(db.store.clone());
    let cities = wallet.issuance.cities().clone();
    let tac = keyring(&cities).tac_keys();
    let (a, mut se_a) = loaded_card(&wallet, "phone-A", 3_000).await;
    let (b, mut se_b) = loaded_card(&wallet, "phone-B", 5_000).await;
    let ride_a = gate_purchase(&wallet, &mut se_a, &a, 200, 0);
    let ride_b = gate_purchase(&wallet, &mut se_b, &b, 500, 1);
    // Card A deleted: the 2,800 fen it proved refunded, the gate's 200 left in fares_unsettled.
    let service = closures(&wallet);
    let step = service.start(&wallet.payments, &a, Purpose::Delete, T0 + 50_000).await.unwrap();
    assert_eq!(pump(&service, &wallet, &mut se_a, step).await.moved.get(), 2_800);
    let feed = db.store.feed_platform_records(&tac, at(12, 0, 0), T0 + 100_000, i64::MIN).await.unwrap();
    assert_eq!((feed.fed, feed.failed.len()), (3, 0), "two loads and the closure's debit");

    let before = db.store.check_clearing_agreement(&cities).await.unwrap();
    assert_eq!((before.cards, before.agreeing, before.undecided_count), (2, 1, 1), "{before}");
    assert_eq!(before.undecided[0].card_id, a.as_str());
    assert!(before.undecided[0].why.contains("purchase counters below 2 not uploaded"), "{before}");

    let gate = Batch {
        header: BatchHeader { batch_id: "G-1".into(), gate: ride_a.terminal_id, operator: "beijing-metro".into() },
        records: vec![ride_a, ride_b],
    };
    let answer = db.store.ingest_batch(&gate, &tac, "key-1", at(12, 5, 0), T0 + 110_000).await.unwrap();
    assert_eq!(answer.answer.accepted, 2, "{:?}", answer.answer);
    let after = db.store.check_clearing_agreement(&cities).await.unwrap();
    assert!(after.is_ok(), "{after}");
    assert_eq!((after.agreeing, after.undecided_count), (2, 0), "{after}");
    // A: 0 held + 200 unsettled = 0 + 200 at the gate; B: 5,000 = 4,500 + 500 at the gate.
    assert_eq!((after.ledger_fen, after.cleared_fen, after.gate_debits_fen), (5_200, 5_200, 700));
    assert_eq!((after.fares_unsettled_fen, after.fares_unsettled_cleared_fen), (200, 200));

    // Card C: a gate's unconfirmed record (its answer lost) still pending.
    let (c, mut se_c) = loaded_card(&wallet, "phone-C", 1_000).await;
    let mut torn = gate_purchase(&wallet, &mut se_c, &c, 300, 2);
    (torn.status, torn.tac, torn.mac2) = (RecordStatus::Unconfirmed, None, None);
    let torn_batch =
        Batch { header: BatchHeader { batch_id: "G-2".into(), ..gate.header.clone() }, records: vec![torn] };
    db.store.ingest_batch(&torn_batch, &tac, "key-1", at(12, 10, 0), T0 + 120_000).await.unwrap();
    // And card B credited 100 fen in the ledger with no load on the card.
    let credit = Posting::transfer(
        PostingId::parse("test/goodwill-B").unwrap(),
        "a credit the card never shows",
        T0 + 130_000,
        Account::provider_clearing("simulated").unwrap(),
        Account::CardLiability(b.clone()),
        Fen::new(100).unwrap(),
    )
    .unwrap();
    db.store.post(&credit).await.unwrap();
    db.store.feed_platform_records(&tac, at(12, 15, 0), T0 + 140_000, i64::MIN).await.unwrap();
    let last = db.store.check_clearing_agreement(&cities).await.unwrap();
    assert!(!last.is_ok(), "{last}");
    assert_eq!((last.cards, last.agreeing, last.mismatch_count, last.undecided_count), (3, 1, 1, 1), "{last}");
    assert_eq!(last.undecided[0].card_id, c.as_str());
    assert!(last.undecided[0].why.contains("1 record(s) pending"), "{last}");
    let differs = &last.mismatches[0];
    assert_eq!((differs.card_id.as_str(), differs.ledger_fen, differs.cleared_fen()), (b.as_str(), 5_100, 5_000));
}

on_both_backends! {
    agreement => the_ledger_and_the_clearing_agree_card_by_card,
}
