//! Any batch of records survives both encodings unchanged, and no byte string makes the binary
//! parser panic.

use proptest::prelude::*;
use yitong_clearing::batch::{Batch, BatchHeader};
use yitong_profile::DateTime;
use yitong_record::{RecordStatus, TapKind, TapRecord};

fn record() -> impl Strategy<Value = TapRecord> {
    let ids = (any::<[u8; 10]>(), any::<[u8; 8]>(), any::<[u8; 6]>(), any::<[u8; 4]>());
    let numbers = (any::<u16>(), any::<u32>(), any::<i32>(), any::<i32>(), any::<u32>());
    let time = (2000u16..2100, 1u8..=12, 1u8..=28, 0u8..24, 0u8..60, 0u8..60);
    let place = ("[a-z]{1,12}", any::<u16>(), "[a-z一-龥]{0,6}", any::<u16>(), any::<u16>());
    let kinds = (0..3usize, 0..4usize, any::<u8>(), any::<u8>(), any::<u8>());
    let proofs = (proptest::option::of(any::<[u8; 4]>()), proptest::option::of(any::<[u8; 4]>()));
    (ids, numbers, time, place, kinds, proofs).prop_map(
        |((serial, issuer, terminal, random), (counter, amount, before, after, ttn), t, p, k, (mac2, tac))| TapRecord {
            status: [RecordStatus::Confirmed, RecordStatus::Recovered, RecordStatus::Unconfirmed][k.0],
            kind: [TapKind::Entry, TapKind::Exit, TapKind::Single, TapKind::Load][k.1],
            transaction_type: k.2,
            card_serial: serial,
            issuer_id: issuer,
            counter,
            amount_fen: amount,
            balance_before_fen: i64::from(before),
            balance_after_fen: i64::from(after),
            terminal_id: terminal,
            terminal_transaction_number: ttn,
            at: DateTime::new(t.0, t.1, t.2, t.3, t.4, t.5).expect("a valid time"),
            city: p.0,
            city_code: p.1,
            station: p.2,
            line: p.3,
            station_code: p.4,
            card_random: random,
            key_version: k.3,
            algorithm_id: k.4,
            mac2,
            tac,
        },
    )
}

proptest! {
    #[test]
    fn both_encodings_round_trip(records in proptest::collection::vec(record(), 0..20), gate in any::<[u8; 6]>()) {
        let header = BatchHeader { batch_id: "B-1".into(), gate, operator: "op".into() };
        let batch = Batch { header, records };
        let binary = batch.to_binary().expect("encodes");
        prop_assert_eq!(Batch::from_binary(&binary), Ok(batch.clone()));
        let text = batch.to_json_lines().expect("encodes");
        prop_assert_eq!(Batch::from_json_lines(&text), Ok(batch));
    }

    #[test]
    fn no_bytes_make_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut input = b"YTB1".to_vec();
        input.extend(bytes);
        let _ = Batch::from_binary(&input);
    }
}
