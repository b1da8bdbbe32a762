//! GET CHALLENGE, APPLICATION BLOCK and APPLICATION UNBLOCK, byte-exact, with the MACs computed
//! here straight from the block ciphers (a one-block retail MAC is one two-key 3DES call; a
//! one-block SM4 CBC-MAC is one SM4 call), not through the card's or the crate's MAC code.

extern crate std;

use alloc::vec::Vec;

use des::cipher::{BlockCipherEncrypt, KeyInit};
use yitong_crypto::{card_key, Algorithm, MasterKeys};
use yitong_profile::files::IssuerData;

use crate::layout;
use crate::testing::CountingRng;
use crate::{Card, CardSpec, MemStore, PowerLoss, Store, TearingStore};

const EF15: &str = "000010000000000102011000000000000001234520260101203512310000";
const DAMK_MASTER: [u8; 16] = [0x4D; 16];
const DAUK_MASTER: [u8; 16] = [0x55; 16];
const SELECT: &str = "00A4040008A000000632010105";
/// The first challenge a card seeded with `CountingRng(0x0102_0304)` answers.
const CHALLENGE: [u8; 4] = [0x01, 0x02, 0x03, 0x04];

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn spec(algorithm: Algorithm) -> CardSpec {
    let issuer = IssuerData::decode(&h(EF15)).unwrap();
    CardSpec::new(issuer, MasterKeys::new(algorithm, [0x11; 16], [0x22; 16], [0x33; 16], DAMK_MASTER, DAUK_MASTER), 1)
}

fn selected<S: Store>(store: S) -> Card<S, CountingRng> {
    let mut card = Card::power_on(store, CountingRng(0x0102_0304)).unwrap();
    card.process(&h(SELECT)).unwrap();
    card
}

/// The command's MAC: cipher(challenge ‖ 0… XOR header ‖ 80 0…), first 4 bytes, under the card's
/// DAMK for APPLICATION BLOCK and its DAUK for APPLICATION UNBLOCK.
fn command_mac(spec: &CardSpec, challenge: [u8; 4], header: [u8; 5]) -> [u8; 4] {
    let master = if header[1] == 0x18 { DAUK_MASTER } else { DAMK_MASTER };
    command_mac_under(spec, &master, challenge, header)
}

fn command_mac_under(spec: &CardSpec, master: &[u8; 16], challenge: [u8; 4], header: [u8; 5]) -> [u8; 4] {
    let algorithm = spec.master_keys.algorithm();
    let damk = card_key(algorithm, master, spec.issuer.issuer_id, spec.issuer.asn8());
    let mut b = [0u8; 16];
    b[..5].copy_from_slice(&header);
    b[5] = 0x80;
    for (x, c) in b.iter_mut().zip(challenge) {
        *x ^= c;
    }
    match algorithm {
        Algorithm::Des => {
            let mut block: [u8; 8] = b[..8].try_into().unwrap();
            let mut blk = block.into();
            des::TdesEde2::new(&damk.into()).encrypt_block(&mut blk);
            block = blk.into();
            block[..4].try_into().unwrap()
        }
        Algorithm::Sm4 => {
            let mut blk = b.into();
            sm4::Sm4::new(&damk.into()).encrypt_block(&mut blk);
            let out: [u8; 16] = blk.into();
            out[..4].try_into().unwrap()
        }
    }
}

fn with_mac(header: [u8; 5], mac: [u8; 4]) -> Vec<u8> {
    let mut apdu = header.to_vec();
    apdu.extend_from_slice(&mac);
    apdu
}

const BLOCK: [u8; 5] = [0x84, 0x1E, 0x00, 0x00, 0x04];
const BLOCK_FOR_GOOD: [u8; 5] = [0x84, 0x1E, 0x00, 0x01, 0x04];
const UNBLOCK: [u8; 5] = [0x84, 0x18, 0x00, 0x00, 0x04];

fn send<S: Store>(card: &mut Card<S, CountingRng>, apdu: &[u8]) -> Vec<u8> {
    card.process(apdu).unwrap()
}

#[test]
fn get_challenge_answers_four_card_random_bytes() {
    let mut card = selected(MemStore::new(spec(Algorithm::Des).personalize()));
    assert_eq!(send(&mut card, &h("0084000004")), h("01020304 9000"));
    assert_eq!(send(&mut card, &h("0084000008")), h("6700"));
    assert_eq!(send(&mut card, &h("0084000104")), h("6A86"));
}

#[test]
fn block_locks_money_commands_and_unblock_lifts_it() {
    for algorithm in [Algorithm::Des, Algorithm::Sm4] {
        let s = spec(algorithm);
        let mut card = selected(MemStore::new(s.personalize()));
        assert_eq!(send(&mut card, &h("0084000004")), h("01020304 9000"));
        let block = with_mac(BLOCK, command_mac(&s, CHALLENGE, BLOCK));
        assert_eq!(send(&mut card, &block), h("9000"), "{algorithm:?}");

        let fci = send(&mut card, &h(SELECT));
        assert_eq!(fci[fci.len() - 2..], h("6283"));
        assert_eq!(send(&mut card, &h("805C000204")), h("00000000 9000"), "balance still readable");
        assert_eq!(send(&mut card, &h("805001020B0100000000112233445566")), h("6283"));
        assert_eq!(send(&mut card, &h("805000020B0100000064112233445566")), h("6283"));

        // The card's second random is 01020305, its third 01020306.
        assert_eq!(send(&mut card, &h("0084000004")), h("01020305 9000"));
        let unblock = with_mac(UNBLOCK, command_mac(&s, [1, 2, 3, 5], UNBLOCK));
        assert_eq!(send(&mut card, &unblock), h("9000"));
        assert_eq!(send(&mut card, &h(SELECT))[..][fci.len() - 2..], h("9000"));
        let init = send(&mut card, &h("805000020B0100000064112233445566"));
        assert_eq!(init[init.len() - 2..], h("9000"));
    }
}

#[test]
fn a_wrong_or_unchallenged_mac_changes_nothing_and_spends_the_challenge() {
    let s = spec(Algorithm::Des);
    let mut card = selected(MemStore::new(s.personalize()));
    let before = card.store().image().to_vec();
    let good = command_mac(&s, CHALLENGE, BLOCK);

    assert_eq!(send(&mut card, &with_mac(BLOCK, good)), h("6985"), "no challenge yet");
    send(&mut card, &h("0084000004"));
    let mut bad = good;
    bad[3] ^= 1;
    assert_eq!(send(&mut card, &with_mac(BLOCK, bad)), h("6988"));
    // The challenge is spent: even the right MAC for it no longer works.
    assert_eq!(send(&mut card, &with_mac(BLOCK, good)), h("6985"));
    // Another command between GET CHALLENGE and the block also spends it.
    send(&mut card, &h("0084000004"));
    send(&mut card, &h("805C000204"));
    assert_eq!(send(&mut card, &with_mac(BLOCK, command_mac(&s, [1, 2, 3, 5], BLOCK))), h("6985"));
    // A MAC over another header (P2 01) does not block for good, nor at all.
    send(&mut card, &h("0084000004"));
    assert_eq!(send(&mut card, &with_mac(BLOCK_FOR_GOOD, command_mac(&s, [1, 2, 3, 6], BLOCK))), h("6988"));
    assert_eq!(send(&mut card, &with_mac([0x84, 0x1E, 0x00, 0x00, 0x05], good)[..9]), h("6700"));
    assert_eq!(card.store().image(), &before[..]);
}

#[test]
fn block_needs_the_application_selected() {
    let s = spec(Algorithm::Des);
    let mut card = Card::power_on(MemStore::new(s.personalize()), CountingRng(0x0102_0304)).unwrap();
    send(&mut card, &h("0084000004"));
    assert_eq!(send(&mut card, &with_mac(BLOCK, command_mac(&s, CHALLENGE, BLOCK))), h("6985"));
}

#[test]
fn a_block_for_good_cannot_be_lifted() {
    let s = spec(Algorithm::Des);
    let mut card = selected(MemStore::new(s.personalize()));
    send(&mut card, &h("0084000004"));
    assert_eq!(send(&mut card, &with_mac(BLOCK_FOR_GOOD, command_mac(&s, CHALLENGE, BLOCK_FOR_GOOD))), h("9000"));
    assert_eq!(card.store().image()[layout::PURSE + 12], 2);
    send(&mut card, &h("0084000004"));
    assert_eq!(send(&mut card, &with_mac(UNBLOCK, command_mac(&s, [1, 2, 3, 5], UNBLOCK))), h("6985"));
    // Nor weakened into a temporary block.
    send(&mut card, &h("0084000004"));
    assert_eq!(send(&mut card, &with_mac(BLOCK, command_mac(&s, [1, 2, 3, 6], BLOCK))), h("9000"));
    assert_eq!(card.store().image()[layout::PURSE + 12], 2);
    let fci = send(&mut card, &h(SELECT));
    assert_eq!(fci[fci.len() - 2..], h("6283"));
}

/// A power cut at every write of the block leaves exactly the open or exactly the blocked card,
/// and a block that answered `9000` has committed.
#[test]
fn block_is_tear_safe() {
    let s = spec(Algorithm::Des);
    let open = s.personalize();
    let block = with_mac(BLOCK, command_mac(&s, CHALLENGE, BLOCK));
    for cut in 0.. {
        for prefix in [0, 1, 7] {
            let store = TearingStore::new(MemStore::new(open.clone()), Some(cut), prefix);
            let mut card = selected(store);
            send(&mut card, &h("0084000004"));
            let answered = card.process(&block);
            let store = card.into_store();
            let was_cut = store.was_cut();
            let mut card = selected(store.into_inner());
            let sw = send(&mut card, &h(SELECT));
            let sw = &sw[sw.len() - 2..];
            match answered {
                Ok(r) => {
                    assert_eq!(r, h("9000"));
                    assert_eq!(sw, h("6283"), "cut {cut}: answered 9000, so the block committed");
                }
                Err(PowerLoss) => assert!(sw == h("9000").as_slice() || sw == h("6283").as_slice(), "cut {cut}"),
            }
            if sw == h("9000").as_slice() {
                assert_eq!(card.store().image()[..layout::JOURNAL], open[..layout::JOURNAL], "cut {cut}");
            }
            if !was_cut {
                // The block wrote `cut` times, and every one of those writes was cut above.
                assert!(cut > 0);
                return;
            }
        }
    }
}

#[test]
fn the_block_key_cannot_unblock() {
    // A gate holds DAMK only: its MAC on APPLICATION UNBLOCK is refused, and the card stays blocked.
    let s = spec(Algorithm::Des);
    let mut card = selected(MemStore::new(s.personalize()));
    assert_eq!(send(&mut card, &h("0084000004")), [&CHALLENGE[..], &[0x90, 0x00]].concat());
    assert_eq!(send(&mut card, &with_mac(BLOCK, command_mac(&s, CHALLENGE, BLOCK))), h("9000"));
    let challenge: [u8; 4] = send(&mut card, &h("0084000004"))[..4].try_into().unwrap();
    let by_gate = command_mac_under(&s, &DAMK_MASTER, challenge, UNBLOCK);
    assert_eq!(send(&mut card, &with_mac(UNBLOCK, by_gate)), h("6988"));
    assert!(send(&mut card, &h(SELECT)).ends_with(&[0x62, 0x83]), "still blocked");
}
