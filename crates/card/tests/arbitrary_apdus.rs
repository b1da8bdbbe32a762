//! Property tests: no byte string and no sequence of commands makes the card panic, and only a
//! successful CREDIT, DEBIT or APPLICATION BLOCK / UNBLOCK (all MAC-protected) changes its memory.

use proptest::prelude::*;
use yitong_card::testing::CountingRng;
use yitong_card::{Card, CardSpec, MasterKeys, MemStore, Store};
use yitong_crypto::Algorithm;
use yitong_profile::files::IssuerData;

fn card() -> Card<MemStore, CountingRng> {
    let issuer = IssuerData {
        issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1],
        app_type: 2,
        app_version: 1,
        serial: [0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34],
        valid_from: [0x20, 0x26, 1, 1],
        valid_to: [0x20, 0x36, 0x12, 0x31],
    };
    let master = MasterKeys::new(Algorithm::Des, [1; 16], [2; 16], [3; 16], [4; 16], [5; 16]);
    let spec = CardSpec { overdraft_limit_fen: 300, ..CardSpec::new(issuer, master, 1) };
    Card::power_on(MemStore::new(spec.personalize()), CountingRng(7)).unwrap()
}

/// Commands whose headers the card knows, with random parameters and data, so that the
/// sequences reach deep states (selected, initialized, cached) and not only `6D00`.
fn command() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        Just([0x00, 0xA4, 0x04, 0x00]),
        Just([0x00, 0xA4, 0x00, 0x00]),
        Just([0x00, 0xB0, 0x95, 0x00]),
        Just([0x00, 0xB2, 0x01, 0xC4]),
        Just([0x00, 0xB2, 0x02, 0xD4]),
        Just([0x80, 0x5C, 0x00, 0x02]),
        Just([0x80, 0x50, 0x00, 0x02]),
        Just([0x80, 0x50, 0x01, 0x02]),
        Just([0x80, 0x50, 0x03, 0x02]),
        Just([0x80, 0x52, 0x00, 0x00]),
        Just([0x80, 0xDC, 0x02, 0xD0]),
        Just([0x80, 0xDC, 0x00, 0xF0]),
        Just([0x80, 0x54, 0x01, 0x00]),
        Just([0x80, 0x5A, 0x00, 0x09]),
        Just([0x00, 0x84, 0x00, 0x00]),
        Just([0x84, 0x1E, 0x00, 0x00]),
        Just([0x84, 0x1E, 0x00, 0x01]),
        Just([0x84, 0x18, 0x00, 0x00]),
        any::<[u8; 4]>(),
    ];
    let data = prop_oneof![
        Just(vec![0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05]),
        Just(vec![0x10, 0x01]),
        prop::collection::vec(any::<u8>(), 4),
        prop::collection::vec(any::<u8>(), 11),
        prop::collection::vec(any::<u8>(), 15),
        prop::collection::vec(any::<u8>(), 48),
        prop::collection::vec(any::<u8>(), 128),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    (header, data, proptest::option::of(any::<u8>())).prop_map(|(h, d, le)| {
        let mut apdu = h.to_vec();
        if !d.is_empty() {
            apdu.push(d.len() as u8);
            apdu.extend_from_slice(&d);
        }
        apdu.extend(le);
        apdu
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_get_a_status_word(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut card = card();
        card.process(&[0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0, 0, 6, 0x32, 1, 1, 5]).unwrap();
        let before = card.store().image().to_vec();
        let r = card.process(&bytes).unwrap();
        prop_assert!(r.len() >= 2);
        // Without a valid MAC nothing can commit.
        prop_assert_eq!(card.store().image(), &before[..]);
    }

    #[test]
    fn command_sequences_never_change_memory_without_a_mac(commands in prop::collection::vec(command(), 1..40)) {
        let mut card = card();
        let before = card.store().image().to_vec();
        for c in &commands {
            let r = card.process(c).unwrap();
            prop_assert!(r.len() >= 2);
            let sw = u16::from_be_bytes([r[r.len() - 2], r[r.len() - 1]]);
            // A random MAC1/MAC2 verifies with probability 2^-32: treat success as a finding.
            prop_assert!(!(matches!(c[..2], [0x80, 0x52] | [0x80, 0x54] | [0x84, 0x1E] | [0x84, 0x18]) && sw == 0x9000), "random MAC accepted: {:02X?}", c);
        }
        prop_assert_eq!(card.store().image(), &before[..]);
    }
}
