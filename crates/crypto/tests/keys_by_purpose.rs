//! Purpose-typed master keys, the TAC key a back office derives, the maintenance MAC of
//! APPLICATION BLOCK / UNBLOCK, and the constant-time MAC comparison, each checked against values
//! computed here straight from the block ciphers.

use des::cipher::{BlockCipherEncrypt, KeyInit};
use yitong_crypto::inputs::{self, Transaction};
use yitong_crypto::{
    card_key, mac_matches, maintenance_mac, tac_key, Algorithm, MaintenanceMasterKey, MasterKeys, SessionKey,
    TacMasterKey,
};

fn h<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

const ISSUER: &str = "0000100000000001";
const ASN8: &str = "0000000000012345";
const HEADER_BLOCK: [u8; 5] = [0x84, 0x1E, 0x00, 0x00, 0x04];

/// One padded block: the MAC of a 5-byte header is one cipher call on (IV XOR header ‖ 80 00…).
fn first_block(challenge: [u8; 4], len: usize) -> Vec<u8> {
    let mut block = vec![0u8; len];
    block[..5].copy_from_slice(&HEADER_BLOCK);
    block[5] = 0x80;
    for i in 0..4 {
        block[i] ^= challenge[i];
    }
    block
}

#[test]
fn des_maintenance_mac_is_the_retail_mac_with_the_challenge_as_iv() {
    let damk: [u8; 16] = h("11223344556677888877665544332211");
    let challenge = h("A1B2C3D4");
    // ISO 9797-1 algorithm 3 over a single block is E_K1(D_K2(E_K1(x))), i.e. two-key 3DES.
    let tdes = des::TdesEde2::new(&damk.into());
    let mut b: [u8; 8] = first_block(challenge, 8).try_into().unwrap();
    let mut block = b.into();
    tdes.encrypt_block(&mut block);
    b = block.into();
    assert_eq!(maintenance_mac(Algorithm::Des, &damk, challenge, HEADER_BLOCK), b[..4]);
    // A different challenge gives a different MAC: the challenge really is in the IV.
    assert_ne!(maintenance_mac(Algorithm::Des, &damk, h("A1B2C3D5"), HEADER_BLOCK), b[..4]);
}

#[test]
fn sm4_maintenance_mac_is_the_cbc_mac_with_the_challenge_as_iv() {
    let damk: [u8; 16] = h("0123456789ABCDEFFEDCBA9876543210");
    let challenge = h("00000001");
    let sm4 = sm4::Sm4::new(&damk.into());
    let b: [u8; 16] = first_block(challenge, 16).try_into().unwrap();
    let mut block = b.into();
    sm4.encrypt_block(&mut block);
    let out: [u8; 16] = block.into();
    assert_eq!(maintenance_mac(Algorithm::Sm4, &damk, challenge, HEADER_BLOCK), out[..4]);
}

#[test]
fn maintenance_master_key_macs_under_the_cards_diversified_key() {
    let master: [u8; 16] = [0x4D; 16];
    let key = MaintenanceMasterKey::new(Algorithm::Des, master);
    let damk = card_key(Algorithm::Des, &master, h(ISSUER), h(ASN8));
    assert_eq!(
        key.command_mac(h(ISSUER), h(ASN8), h("01020304"), HEADER_BLOCK),
        maintenance_mac(Algorithm::Des, &damk, h("01020304"), HEADER_BLOCK)
    );
}

#[test]
fn back_office_tac_key_verifies_a_purchase_tac() {
    for algorithm in [Algorithm::Des, Algorithm::Sm4] {
        let dtk_master = [0x54; 16];
        let back_office = TacMasterKey::new(algorithm, dtk_master);
        let card_dtk = card_key(algorithm, &dtk_master, h(ISSUER), h(ASN8));
        let t = Transaction {
            amount_fen: 300,
            transaction_type: 0x09,
            terminal_id: h("001122334455"),
            date: h("20261125"),
            time: h("083000"),
        };
        let card_tac = inputs::purchase_tac(&tac_key(algorithm, &card_dtk), 7, &t);
        let checked = inputs::purchase_tac(&back_office.card_tac_key(h(ISSUER), h(ASN8)), 7, &t);
        assert!(mac_matches(&checked, &card_tac));
    }
}

#[test]
fn mac_matches_only_equal_macs() {
    assert!(mac_matches(&[1, 2, 3, 4], &[1, 2, 3, 4]));
    assert!(!mac_matches(&[1, 2, 3, 4], &[1, 2, 3, 5]));
    assert!(!mac_matches(&[1, 2, 3, 4], &[0, 2, 3, 4]));
}

#[test]
fn key_debug_output_shows_no_key_bytes() {
    let set = MasterKeys::new(Algorithm::Des, [0xAB; 16], [0xAB; 16], [0xAB; 16], [0xAB; 16], [0xAB; 16]);
    let session = SessionKey::load(Algorithm::Des, &[0xAB; 16], [0; 4], 0);
    for text in [
        format!("{set:?}"),
        format!("{:?}", set.purchase()),
        format!("{:?}", set.for_card([0; 8], [0; 8])),
        format!("{session:?}"),
    ] {
        assert!(!text.contains("171") && !text.to_lowercase().contains("ab,"), "{text}");
    }
    assert_eq!(format!("{:?}", set.tac()), "MasterKey { purpose: \"TAC\", algorithm: Des, .. }");
}

#[test]
fn the_full_set_diversifies_each_purpose_with_its_own_key() {
    let set = MasterKeys::new(Algorithm::Sm4, [1; 16], [2; 16], [3; 16], [4; 16], [5; 16]);
    let card = set.for_card(h(ISSUER), h(ASN8));
    assert_eq!(card.dlk, card_key(Algorithm::Sm4, &[1; 16], h(ISSUER), h(ASN8)));
    assert_eq!(card.dpk, card_key(Algorithm::Sm4, &[2; 16], h(ISSUER), h(ASN8)));
    assert_eq!(card.dtk, card_key(Algorithm::Sm4, &[3; 16], h(ISSUER), h(ASN8)));
    assert_eq!(card.damk, card_key(Algorithm::Sm4, &[4; 16], h(ISSUER), h(ASN8)));
    assert_eq!(set.algorithm(), Algorithm::Sm4);
}
