//! Byte-exact tests of every command and of every status word, against a personalized card.
//!
//! Expected FCIs and records are written out by hand from the profile; expected MACs and TACs are
//! computed with `yitong-crypto` (itself checked against the profile's published values) from the
//! card's diversified keys, independently of the card's code paths.

extern crate std;

use alloc::vec::Vec;

use yitong_crypto::inputs::{self, Transaction};
use yitong_crypto::{tac_key, Algorithm, SessionKey};
use yitong_profile::files::IssuerData;

use crate::layout;
use crate::testing::CountingRng;
use crate::{Card, CardSpec, MasterKeys, MemStore, Store};

const TERMINAL: [u8; 6] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
const EF15: &str = "0000100000000001020110000000000000012345202601012035123100 00";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn spec(algorithm: Algorithm, overdraft_limit_fen: u32) -> CardSpec {
    CardSpec {
        issuer: IssuerData::decode(&h(EF15)).unwrap(),
        holder: [0; 55],
        management: [0; 60],
        master_keys: MasterKeys::new(algorithm, [0x11; 16], [0x22; 16], [0x33; 16], [0x44; 16], [0x55; 16]),
        key_version: 0x01,
        overdraft_limit_fen,
        balance_limit_fen: 100_000,
    }
}

type TestCard = Card<MemStore, CountingRng>;

fn card_with(spec: &CardSpec) -> TestCard {
    Card::power_on(MemStore::new(spec.personalize()), CountingRng(0x0102_0304)).unwrap()
}

fn selected(spec: &CardSpec) -> TestCard {
    let mut card = card_with(spec);
    assert_eq!(sw(&send(&mut card, "00A4040008A000000632010105")), "9000");
    card
}

fn send(card: &mut TestCard, apdu: &str) -> Vec<u8> {
    card.process(&h(apdu)).unwrap()
}

fn sw(r: &[u8]) -> std::string::String {
    hex::encode_upper(&r[r.len() - 2..])
}

fn keys(spec: &CardSpec) -> [[u8; 16]; 3] {
    let k = spec.master_keys.for_card(spec.issuer.issuer_id, spec.issuer.asn8());
    [k.dlk, k.dpk, k.dtk]
}

fn date() -> ([u8; 4], [u8; 3]) {
    ([0x20, 0x26, 0x11, 0x25], [0x08, 0x30, 0x00])
}

/// Loads `amount` through INITIALIZE / CREDIT FOR LOAD with a correct MAC2; returns the TAC.
fn load(card: &mut TestCard, spec: &CardSpec, amount: u32) -> Vec<u8> {
    let mut init = h("805000020B01");
    init.extend_from_slice(&amount.to_be_bytes());
    init.extend_from_slice(&TERMINAL);
    init.push(0x10);
    let r = card.process(&init).unwrap();
    assert_eq!(sw(&r), "9000");
    let [dlk, _, _] = keys(spec);
    let sk = SessionKey::load(
        spec.master_keys.algorithm(),
        &dlk,
        r[8..12].try_into().unwrap(),
        u16::from_be_bytes([r[4], r[5]]),
    );
    let (d, t) = date();
    let tx = Transaction { amount_fen: amount, transaction_type: 0x02, terminal_id: TERMINAL, date: d, time: t };
    let mut credit = h("805200000B");
    credit.extend_from_slice(&d);
    credit.extend_from_slice(&t);
    credit.extend_from_slice(&inputs::load_mac2(&sk, &tx));
    credit.push(0x04);
    let r = card.process(&credit).unwrap();
    assert_eq!(sw(&r), "9000");
    r[..4].to_vec()
}

fn init_purchase(card: &mut TestCard, p1: u8, amount: u32) -> Vec<u8> {
    let mut init = alloc::vec![0x80, 0x50, p1, 0x02, 0x0B, 0x01];
    init.extend_from_slice(&amount.to_be_bytes());
    init.extend_from_slice(&TERMINAL);
    init.push(0x0F);
    card.process(&init).unwrap()
}

fn debit_apdu(spec: &CardSpec, init: &[u8], amount: u32, transaction_type: u8, ttn: u32, good_mac: bool) -> Vec<u8> {
    let [_, dpk, _] = keys(spec);
    let sk = SessionKey::purchase(
        spec.master_keys.algorithm(),
        &dpk,
        init[11..15].try_into().unwrap(),
        u16::from_be_bytes([init[4], init[5]]),
        ttn,
    );
    let (d, t) = date();
    let tx = Transaction { amount_fen: amount, transaction_type, terminal_id: TERMINAL, date: d, time: t };
    let mut mac1 = inputs::purchase_mac1(&sk, &tx);
    if !good_mac {
        mac1[0] ^= 1;
    }
    let mut debit = h("805401000F");
    debit.extend_from_slice(&ttn.to_be_bytes());
    debit.extend_from_slice(&d);
    debit.extend_from_slice(&t);
    debit.extend_from_slice(&mac1);
    debit.push(0x08);
    debit
}

#[test]
fn ppse_fci_lists_the_tunion_adf() {
    let mut card = card_with(&spec(Algorithm::Des, 0));
    let r = send(&mut card, "00A404000E325041592E5359532E444446303100");
    let expected = h(
        "6F2E 840E325041592E5359532E4444463031 A51C BF0C19 6117 4F08A000000632010105 50084D4F545F545F4550 870101 9000",
    );
    assert_eq!(r, expected);
}

#[test]
fn adf_fci_carries_ef15_under_9f0c() {
    let mut card = card_with(&spec(Algorithm::Des, 0));
    let expected = h(&std::format!("6F2D 8408A000000632010105 A521 9F0C1E {EF15} 9000"));
    assert_eq!(send(&mut card, "00A4040008A00000063201010500"), expected);
    // By FID 1001 and by a partial AID (the RID) the same application answers.
    assert_eq!(send(&mut card, "00A40000021001"), expected);
    assert_eq!(send(&mut card, "00A4040005A000000632"), expected);
    // P2 0C: no FCI.
    assert_eq!(send(&mut card, "00A4040C08A000000632010105"), h("9000"));
    assert_eq!(sw(&send(&mut card, "00A4040008A000000632010106")), "6A82");
    assert_eq!(sw(&send(&mut card, "00A40000020015")), "6A82");
    assert_eq!(sw(&send(&mut card, "00A400000110")), "6700");
    assert_eq!(sw(&send(&mut card, "00A4080008A000000632010105")), "6A86");
}

#[test]
fn read_binary_serves_ef15_16_17_by_sfi() {
    let s = spec(Algorithm::Des, 0);
    let mut card = card_with(&s);
    assert_eq!(send(&mut card, "00B0950000"), h("6985"), "no application selected");
    let mut card = selected(&s);
    assert_eq!(send(&mut card, "00B0950000"), h(&std::format!("{EF15} 9000")));
    assert_eq!(send(&mut card, "00B095140A"), h("20260101203512310000 9000"));
    assert_eq!(send(&mut card, "00B0960000").len(), 55 + 2);
    assert_eq!(send(&mut card, "00B0970000").len(), 60 + 2);
    assert_eq!(send(&mut card, "00B0951F00"), h("6B00"));
    assert_eq!(send(&mut card, "00B0980000"), h("6981"));
    assert_eq!(send(&mut card, "00B0850000"), h("6A82"));
    assert_eq!(send(&mut card, "00B0150000"), h("6A86"));
}

#[test]
fn load_answers_mac1_and_tac_and_logs_the_load() {
    let s = spec(Algorithm::Des, 0);
    let mut card = selected(&s);
    let [dlk, _, dtk] = keys(&s);
    let r = send(&mut card, "805000020B0100002710112233445566 10");
    // balance 0, online counter 0, key version 01, algorithm 00, card random 01020304.
    assert_eq!(&r[..12], &h("00000000 0000 01 00 01020304")[..]);
    let sk = SessionKey::load(Algorithm::Des, &dlk, [1, 2, 3, 4], 0);
    let tx =
        Transaction { amount_fen: 10_000, transaction_type: 0x02, terminal_id: TERMINAL, date: [0; 4], time: [0; 3] };
    assert_eq!(&r[12..16], &inputs::load_mac1(&sk, 0, &tx));
    assert_eq!(sw(&r), "9000");

    let tx = Transaction { date: [0x20, 0x26, 0x11, 0x25], time: [0x08, 0x30, 0x00], ..tx };
    let mac2 = inputs::load_mac2(&sk, &tx);
    let r = card.process(&[&h("805200000B 20261125 083000")[..], &mac2, &[0x04]].concat()).unwrap();
    let tac = inputs::load_tac(&tac_key(Algorithm::Des, &dtk), 10_000, 0, &tx);
    assert_eq!(r, [&tac[..], &[0x90, 0x00]].concat());

    assert_eq!(send(&mut card, "805C000204"), h("00002710 9000"));
    // The balance limit (P1 02, profile choice): 1,000 yuan.
    assert_eq!(send(&mut card, "805C020204"), h("000186A0 9000"));
    assert_eq!(send(&mut card, "00B201C417"), h("0001 000000 00002710 02 112233445566 20261125 083000 9000"));
    assert_eq!(send(&mut card, "00B202C417"), h("6A83"));
    // The proof of that load: MAC2 ‖ TAC for online counter 1.
    assert_eq!(send(&mut card, "805A0002020001 08"), [&mac2[..], &tac, &[0x90, 0x00]].concat());
    assert_eq!(send(&mut card, "805A0002020002 08"), h("9406"));
}

#[test]
fn purchase_debits_and_answers_tac_and_mac2() {
    let s = spec(Algorithm::Des, 0);
    let mut card = selected(&s);
    load(&mut card, &s, 1_000);
    let init = init_purchase(&mut card, 0x01, 300);
    // balance 1000 (0x3E8), offline counter 0, overdraft 0, key version 1, algorithm 0, random.
    assert_eq!(&init[..11], &h("000003E8 0000 000000 01 00")[..]);
    assert_eq!(sw(&init), "9000");
    let debit = debit_apdu(&s, &init, 300, 0x06, 0x0000_0042, true);
    let r = card.process(&debit).unwrap();

    let [_, dpk, dtk] = keys(&s);
    let sk = SessionKey::purchase(Algorithm::Des, &dpk, init[11..15].try_into().unwrap(), 0, 0x42);
    let (d, t) = date();
    let tx = Transaction { amount_fen: 300, transaction_type: 0x06, terminal_id: TERMINAL, date: d, time: t };
    let tac = inputs::purchase_tac(&tac_key(Algorithm::Des, &dtk), 0x42, &tx);
    let mac2 = inputs::purchase_mac2(&sk, 300);
    assert_eq!(r, [&tac[..], &mac2, &[0x90, 0x00]].concat());
    assert_eq!(send(&mut card, "805C000204"), h("000002BC 9000"));
    assert_eq!(send(&mut card, "00B201C417"), h("0001 000000 0000012C 06 112233445566 20261125 083000 9000"));
    assert_eq!(send(&mut card, "805A0006020001"), [&mac2[..], &tac, &[0x90, 0x00]].concat());
    assert_eq!(send(&mut card, "805A0009020001"), h("9406"), "a single purchase is not a composite one");
}

#[test]
fn capp_purchase_commits_cached_records_with_the_debit() {
    let s = spec(Algorithm::Des, 0);
    let mut card = selected(&s);
    load(&mut card, &s, 1_000);
    let transit = [0xAB; 128];
    let trip = [0xCD; 48];
    let init = init_purchase(&mut card, 0x03, 0);
    assert_eq!(sw(&init), "9000");
    let update_1a = [&h("80DC02D080")[..], &transit].concat();
    let update_1e = [&h("80DC00F030")[..], &trip].concat();
    assert_eq!(card.process(&update_1a).unwrap(), h("9000"));
    assert_eq!(card.process(&update_1e).unwrap(), h("9000"));
    // A wrong MAC1: 9302, and neither the purse nor the cached records change.
    let before = card.store().image().to_vec();
    assert_eq!(card.process(&debit_apdu(&s, &init, 0, 0x09, 7, false)).unwrap(), h("9302"));
    assert_eq!(card.store().image(), &before[..]);
    assert_eq!(send(&mut card, "00B202D480"), [&[0u8; 128][..], &[0x90, 0x00]].concat());

    let init = init_purchase(&mut card, 0x03, 0);
    card.process(&update_1a).unwrap();
    card.process(&update_1e).unwrap();
    let r = card.process(&debit_apdu(&s, &init, 0, 0x09, 7, true)).unwrap();
    assert_eq!(sw(&r), "9000");
    assert_eq!(send(&mut card, "00B202D480"), [&transit[..], &[0x90, 0x00]].concat());
    assert_eq!(send(&mut card, "00B201F430"), [&trip[..], &[0x90, 0x00]].concat());
    assert_eq!(send(&mut card, "00B201C417"), h("0001 000000 00000000 09 112233445566 20261125 083000 9000"));
}

#[test]
fn capp_cache_rejects_bad_updates() {
    let s = spec(Algorithm::Des, 0);
    let mut card = selected(&s);
    load(&mut card, &s, 1_000);
    let record = |apdu: &str, len: usize| [&h(apdu)[..], &alloc::vec![0u8; len]].concat();
    assert_eq!(card.process(&record("80DC02D080", 128)).unwrap(), h("6985"), "no purchase under way");
    init_purchase(&mut card, 0x01, 0);
    assert_eq!(card.process(&record("80DC02D080", 128)).unwrap(), h("6985"), "single purchase has no cache");
    for (apdu, len, expected) in [
        ("80DC02D07F", 127, "6700"),
        ("80DC04D080", 128, "6A83"),
        ("80DC00F030", 48, "9000"),
        ("80DC01F030", 48, "6A86"),
        ("80DC00C017", 23, "6A82"),
        ("80DC02D480", 128, "6A86"),
    ] {
        init_purchase(&mut card, 0x03, 0);
        assert_eq!(sw(&card.process(&record(apdu, len)).unwrap()), expected, "{apdu}");
    }
}

#[test]
fn transaction_is_dropped_by_any_other_command() {
    let s = spec(Algorithm::Des, 0);
    let mut card = selected(&s);
    load(&mut card, &s, 1_000);
    let init = init_purchase(&mut card, 0x01, 100);
    assert_eq!(send(&mut card, "805C000204"), h("000003E8 9000"));
    assert_eq!(card.process(&debit_apdu(&s, &init, 100, 0x06, 1, true)).unwrap(), h("6985"));
    assert_eq!(send(&mut card, "805C000204"), h("000003E8 9000"));
}

#[test]
fn every_refusal_has_its_status_word_and_changes_nothing() {
    let s = spec(Algorithm::Des, 0);
    let mut card = selected(&s);
    load(&mut card, &s, 500);
    let before = card.store().image().to_vec();
    for (apdu, expected) in [
        ("805401000F00000001202611250830000102030408", "6985"), // DEBIT without INITIALIZE
        ("805200000B2026112508300001020304", "6985"),           // CREDIT without INITIALIZE
        ("805001020B0100000259112233445566", "9401"),           // 601 fen > 500
        ("805001020B0200000001112233445566", "9403"),           // key index 2
        ("805001020A01000000011122334455", "6700"),             // short data
        ("805002020B0100000001112233445566", "6A86"),           // P1 02
        ("805C000304", "6A86"),
        ("805C030204", "6A86"),
        ("805C000202", "6700"),
        ("80FF000000", "6D00"),
        ("90B0950000", "6E00"),
        ("00B0", "6700"),
        ("805A000302000108", "6A86"),
        ("805A00090100", "6700"),
        ("00B200C417", "6A86"),
        ("00B201C410", "6700"),
        ("00B204D480", "6A83"),
        ("00B201AC17", "6981"),
        ("00B2010C17", "6A82"),
        ("805000020B0100030D41112233445566", "6985"), // load over the 1,000 yuan limit
    ] {
        assert_eq!(sw(&send(&mut card, apdu)), expected, "{apdu}");
        assert_eq!(card.store().image(), &before[..], "{apdu} changed the card");
    }
    // A wrong MAC2 on CREDIT FOR LOAD.
    assert_eq!(sw(&send(&mut card, "805000020B0100000064112233445566")), "9000");
    assert_eq!(send(&mut card, "805200000B2026112508300001020304"), h("9302"));
    assert_eq!(card.store().image(), &before[..]);
}

#[test]
fn counters_at_maximum_refuse_with_9402() {
    let s = spec(Algorithm::Des, 0);
    let mut image = s.personalize();
    // Online and offline counters at FFFF (purse bytes 8-11).
    image[layout::PURSE + 8..layout::PURSE + 12].copy_from_slice(&[0xFF; 4]);
    image[layout::PURSE..layout::PURSE + 4].copy_from_slice(&1_000i32.to_be_bytes());
    let mut card = Card::power_on(MemStore::new(image), CountingRng(0)).unwrap();
    send(&mut card, "00A4040008A000000632010105");
    assert_eq!(send(&mut card, "805001020B0100000001112233445566"), h("9402"));
    assert_eq!(send(&mut card, "805000020B0100000001112233445566"), h("9402"));
}

#[test]
fn overdraft_lets_the_balance_go_negative_down_to_its_limit() {
    let s = spec(Algorithm::Des, 500);
    let mut card = selected(&s);
    load(&mut card, &s, 100);
    assert_eq!(send(&mut card, "805C010204"), h("000001F4 9000"));
    assert_eq!(sw(&init_purchase(&mut card, 0x01, 601)), "9401");
    let init = init_purchase(&mut card, 0x01, 550);
    assert_eq!(&init[6..9], &h("0001F4")[..]);
    assert_eq!(sw(&card.process(&debit_apdu(&s, &init, 550, 0x06, 1, true)).unwrap()), "9000");
    // -450 fen in two's complement.
    assert_eq!(send(&mut card, "805C000204"), h("FFFFFE3E 9000"));
    assert_eq!(sw(&init_purchase(&mut card, 0x01, 51)), "9401");
}

#[test]
fn locked_application_still_selects_and_reads_but_refuses_money() {
    let s = spec(Algorithm::Des, 0);
    let mut card = card_with(&s);
    card.block_application().unwrap();
    let r = send(&mut card, "00A4040008A000000632010105");
    assert_eq!(sw(&r), "6283");
    assert_eq!(r.len(), 47 + 2);
    assert_eq!(send(&mut card, "805C000204"), h("00000000 9000"));
    assert_eq!(send(&mut card, "805001020B0100000000112233445566"), h("6283"));
    assert_eq!(send(&mut card, "805000020B0100000064112233445566"), h("6283"));
}

#[test]
fn sm4_card_announces_algorithm_04_and_verifies_sm4_macs() {
    let s = spec(Algorithm::Sm4, 0);
    let mut card = selected(&s);
    load(&mut card, &s, 800);
    let init = init_purchase(&mut card, 0x01, 200);
    assert_eq!(init[10], 0x04);
    assert_eq!(sw(&card.process(&debit_apdu(&s, &init, 200, 0x06, 9, true)).unwrap()), "9000");
    assert_eq!(send(&mut card, "805C000204"), h("00000258 9000"));
}

#[test]
fn logs_are_cyclic_newest_first() {
    let s = spec(Algorithm::Des, 0);
    let mut card = selected(&s);
    for i in 1..=12u32 {
        load(&mut card, &s, i);
    }
    // Record 1 is load 12 (counter 12), record 10 is load 3; load 1 and 2 were overwritten.
    let r = send(&mut card, "00B201C417");
    assert_eq!(&r[..9], &h("000C 000000 0000000C")[..]);
    let r = send(&mut card, "00B20AC417");
    assert_eq!(&r[..9], &h("0003 000000 00000003")[..]);
    assert_eq!(send(&mut card, "00B20BC417"), h("6A83"));
}

#[test]
fn damaged_images_do_not_power_on() {
    let s = spec(Algorithm::Des, 0);
    let good = s.personalize();
    assert!(Card::power_on(MemStore::new(good[..100].to_vec()), CountingRng(0)).is_err());
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(Card::power_on(MemStore::new(bad), CountingRng(0)).is_err());
    let mut bad = good.clone();
    bad[layout::KEYS] = 0x07;
    assert!(Card::power_on(MemStore::new(bad), CountingRng(0)).is_err());
    let mut bad = good;
    bad[layout::LOG] = 10;
    assert!(Card::power_on(MemStore::new(bad), CountingRng(0)).is_err());
}

#[test]
fn reset_drops_the_transaction_and_deselects() {
    let s = spec(Algorithm::Des, 0);
    let mut card = selected(&s);
    load(&mut card, &s, 1_000);
    let init = init_purchase(&mut card, 0x01, 100);
    card.reset().unwrap();
    assert_eq!(send(&mut card, "805C000204"), h("6985"), "nothing selected after a reset");
    send(&mut card, "00A4040008A000000632010105");
    assert_eq!(card.process(&debit_apdu(&s, &init, 100, 0x06, 1, true)).unwrap(), h("6985"));
    assert_eq!(send(&mut card, "805C000204"), h("000003E8 9000"));
}
