//! Fraud through the store, on SQLite and PostgreSQL, with records signed by the card's TAC key
//! (Beijing's development DTK diversified for the card, as its personalization holds it): a
//! cloned card (two images of one serial spending the same counter at two gates) is flagged,
//! listed by policy and reaches a gate's copy of the hotlist; a missing upload shows as a counter
//! gap and clears when the batch arrives late; forged records are rejected one by one with their
//! reason, the rest of the batch taken, and the third TAC failure lists the card.

#[macro_use]
mod support;

use support::wallet::{at, beijing_keys, T0};
use support::TestDb;
use yitong_clearing::batch::{Batch, BatchHeader};
use yitong_clearing::hotlist::GateHotlist;
use yitong_clearing::shadow::CardId;
use yitong_record::{card_tac, RecordStatus, TacKeys, TapKind, TapRecord};

const BEIJING: [u8; 8] = [0, 0, 0x10, 0, 0, 0, 0, 1];

fn tac_keys() -> TacKeys {
    let mut keys = TacKeys::new();
    keys.add(BEIJING, 1, beijing_keys().master.tac().clone());
    keys
}

/// A bus ride of card `card` (serial ending in it) at validator `validator`: counter `counter`,
/// `amount` fen from `before`, signed with the card's TAC key.
fn ride(card: u8, validator: u8, number: u32, counter: u16, amount: u32, before: i64, minute: u8) -> TapRecord {
    let mut record = TapRecord {
        status: RecordStatus::Confirmed,
        kind: TapKind::Single,
        transaction_type: 6,
        card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0, 0x77, card],
        issuer_id: BEIJING,
        counter,
        amount_fen: amount,
        balance_before_fen: before,
        balance_after_fen: before - i64::from(amount),
        terminal_id: [0x10, 0, 0xB0, 0x01, 0, validator],
        terminal_transaction_number: number,
        at: at(8, minute, 0),
        city: "beijing".into(),
        city_code: 0x1000,
        station: String::new(),
        line: 1,
        station_code: 0,
        card_random: [1, 2, 3, 4],
        key_version: 1,
        algorithm_id: 0,
        mac2: None,
        tac: None,
    };
    let key = beijing_keys().master.tac().card_tac_key(BEIJING, record.asn8());
    record.tac = Some(card_tac(&record, &key).expect("a purchase"));
    record
}

fn batch(id: &str, gate: u8, records: Vec<TapRecord>) -> Batch {
    Batch {
        header: BatchHeader {
            batch_id: id.into(),
            gate: [0x10, 0, 0xB0, 0x01, 0, gate],
            operator: "beijing-bus".into(),
        },
        records,
    }
}

async fn a_clone_is_listed_and_reaches_the_gates(db: &TestDb) {
    let tac = tac_keys();
    // Two images of card 1 spend counter 8 at two validators.
    let original = ride(1, 1, 40, 8, 200, 1_000, 10);
    let copy = ride(1, 2, 70, 8, 300, 1_000, 20);
    let first = db.store.ingest_batch(&batch("V1-1", 1, vec![original]), &tac, "k", at(9, 0, 0), T0).await.unwrap();
    assert!(first.answer.flags.is_empty());
    let second = db.store.ingest_batch(&batch("V2-1", 2, vec![copy]), &tac, "k", at(9, 5, 0), T0 + 1).await.unwrap();
    assert_eq!(second.answer.accepted, 1, "{:?}", second.answer);
    let flag = second.answer.flags.first().expect("a flag");
    assert!(flag.flag.contains("clone"), "{flag:?}");
    assert_eq!(flag.hotlisted_at_version, Some(1), "listed by policy");

    // A gate syncing from nothing learns the card and refuses its serial.
    let mut gate = GateHotlist::default();
    let delta = db.store.hotlist_delta(0, |_| true).await.unwrap().unwrap();
    assert_eq!(gate.apply(&delta), Ok(1));
    assert!(gate.serials().contains(&[0x10, 0, 0, 0, 0, 0, 0, 0, 0x77, 1]));
}

async fn a_missing_upload_is_a_gap_until_it_arrives(db: &TestDb) {
    let tac = tac_keys();
    let card = CardId { issuer_id: BEIJING, card_serial: [0x10, 0, 0, 0, 0, 0, 0, 0, 0x77, 2] };
    // Counters 5 and 7 arrive; 6 (at validator 3) does not, yet.
    let early = vec![ride(2, 1, 1, 5, 200, 2_000, 10), ride(2, 1, 3, 7, 200, 1_600, 30)];
    let answer = db.store.ingest_batch(&batch("V1-2", 1, early), &tac, "k", at(9, 0, 0), T0).await.unwrap();
    let flags: Vec<&str> = answer.answer.flags.iter().map(|f| f.flag.as_str()).collect();
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert!(flags[0].contains("gap"), "{flags:?}");
    assert_eq!(answer.answer.flags[0].hotlisted_at_version, None, "a gap is chased, not listed");
    let shadow = db.store.card_shadow(card).await.unwrap().expect("a shadow");
    assert_eq!(shadow.flags().count(), 1);

    let late = vec![ride(2, 3, 9, 6, 200, 1_800, 20)];
    db.store.ingest_batch(&batch("V3-1", 3, late), &tac, "k", at(12, 0, 0), T0 + 1).await.unwrap();
    let shadow = db.store.card_shadow(card).await.unwrap().expect("a shadow");
    assert_eq!(shadow.flags().count(), 0, "the gap closed");
    assert_eq!(shadow.balance_fen(), Some(1_400));
}

async fn forged_records_are_rejected_one_by_one(db: &TestDb) {
    let tac = tac_keys();
    let honest = ride(3, 1, 1, 5, 200, 2_000, 10);
    let mut records = vec![honest];
    // Three forgeries of later rides: an amount lowered, a terminal number changed, a TAC invented.
    let mut cheaper = ride(3, 1, 2, 6, 200, 1_800, 20);
    cheaper.amount_fen = 100;
    cheaper.balance_after_fen = 1_700;
    let mut renumbered = ride(3, 1, 3, 7, 200, 1_600, 30);
    renumbered.terminal_transaction_number = 99;
    let mut invented = ride(3, 1, 4, 8, 200, 1_400, 40);
    invented.tac = Some([0, 0, 0, 0]);
    records.extend([cheaper, renumbered, invented]);
    let answer = db.store.ingest_batch(&batch("V1-3", 1, records), &tac, "k", at(9, 0, 0), T0).await.unwrap();
    assert_eq!(answer.answer.accepted, 1, "the honest ride is taken");
    let positions: Vec<usize> = answer.answer.rejected.iter().map(|r| r.position).collect();
    assert_eq!(positions, [1, 2, 3]);
    assert!(answer.answer.rejected.iter().all(|r| r.reason.contains("TAC")), "{:?}", answer.answer.rejected);
    let listed: Vec<_> = answer.answer.flags.iter().filter_map(|f| f.hotlisted_at_version).collect();
    assert_eq!(listed, [1], "the third TAC failure lists the card");
    let kept = db.store.batch_records("1000B0010001", "V1-3").await.unwrap().expect("the batch is kept");
    let dispositions: Vec<_> = kept.iter().map(|k| k.disposition.name()).collect();
    assert_eq!(dispositions, ["accepted", "rejected", "rejected", "rejected"], "every record kept for audit");
    assert_eq!(kept[3].record.tac, Some([0, 0, 0, 0]), "the forged record kept as it came");
}

on_both_backends! {
    clone => a_clone_is_listed_and_reaches_the_gates,
    gap => a_missing_upload_is_a_gap_until_it_arrives,
    forged => forged_records_are_rejected_one_by_one,
}
