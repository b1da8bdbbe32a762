//! The published check values of the card profile, and independent properties of the primitives.

use yitong_crypto::inputs::{self, Transaction};
use yitong_crypto::{card_key, diversify, mac, tac_key, Algorithm, SessionKey};

fn h<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

const KEY: &str = "11223344556677888877665544332211";

fn profile_transaction() -> Transaction {
    Transaction {
        amount_fen: 0x1000,
        transaction_type: 0x01,
        terminal_id: h("001122334455"),
        date: h("20111221"),
        time: h("214822"),
    }
}

#[test]
fn load_session_key_matches_published_value() {
    let key = SessionKey::load(Algorithm::Des, &h(KEY), h("11223344"), 0x0000);
    assert_eq!(key.as_bytes(), &h::<8>("9B1D924E05595603"));
}

#[test]
fn load_mac1_matches_published_value() {
    let key = SessionKey::load(Algorithm::Des, &h(KEY), h("11223344"), 0x0000);
    assert_eq!(inputs::load_mac1(&key, 0, &profile_transaction()), h("2988AE5A"));
}

#[test]
fn load_mac2_matches_published_value() {
    let key = SessionKey::load(Algorithm::Des, &h(KEY), h("11223344"), 0x0000);
    assert_eq!(inputs::load_mac2(&key, &profile_transaction()), h("3A845BF0"));
}

/// FIPS 46 / NBS SP 500-20 single-DES known answer: key 0123456789ABCDEF encrypts
/// "Now is t" (4E6F772069732074) to 3FA40E8A984D4815. A one-block message with a MAC whose padding
/// block is known lets us check the CBC chaining: ISO 9797-1 alg. 1 over 8 bytes is
/// E(E(M) XOR 8000000000000000).
#[test]
fn des_mac_chains_like_iso9797_algorithm_1() {
    use des::cipher::{BlockCipherEncrypt, KeyInit};
    let key: [u8; 8] = h("0123456789ABCDEF");
    let cipher = des::Des::new(&key.into());
    let mut block = h::<8>("4E6F772069732074").into();
    cipher.encrypt_block(&mut block);
    assert_eq!(block.as_slice(), h::<8>("3FA40E8A984D4815"));
    let mut second: [u8; 8] = block.into();
    second[0] ^= 0x80;
    let mut second = second.into();
    cipher.encrypt_block(&mut second);

    // A session key equal to the DES key: derive one whose bytes we know by using the TAC rule
    // (left XOR right) on a DTK whose right half is zero.
    let mut dtk = [0u8; 16];
    dtk[..8].copy_from_slice(&key);
    let session = tac_key(Algorithm::Des, &dtk);
    assert_eq!(session.as_bytes(), key);
    assert_eq!(mac(&session, &h::<8>("4E6F772069732074")), second[..4]);
}

/// GB/T 32907-2016 appendix A: SM4 key = plaintext = 0123456789ABCDEFFEDCBA9876543210 encrypts to
/// 681EDF34D206965E86B3E94F536E4246. Our SM4 diversification of X = 0123456789ABCDEF is exactly
/// that block (X ‖ NOT X), so it must give the standard's ciphertext.
#[test]
fn sm4_diversification_uses_the_standard_cipher() {
    let key: [u8; 16] = h("0123456789ABCDEFFEDCBA9876543210");
    let out = diversify(Algorithm::Sm4, &key, h("0123456789ABCDEF"));
    assert_eq!(out, h::<16>("681EDF34D206965E86B3E94F536E4246"));
}

#[test]
fn des_diversification_halves_are_complements_of_input() {
    use des::cipher::{BlockCipherDecrypt, KeyInit};
    let key: [u8; 16] = h(KEY);
    let x: [u8; 8] = h("0000000000000001");
    let out = diversify(Algorithm::Des, &key, x);
    let cipher = des::TdesEde2::new(&key.into());
    let mut left: des::cipher::Block<des::TdesEde2> = <[u8; 8]>::try_from(&out[..8]).unwrap().into();
    let mut right: des::cipher::Block<des::TdesEde2> = <[u8; 8]>::try_from(&out[8..]).unwrap().into();
    cipher.decrypt_block(&mut left);
    cipher.decrypt_block(&mut right);
    assert_eq!(left.as_slice(), x);
    assert_eq!(right.as_slice(), x.map(|b| !b));
}

#[test]
fn card_key_diversifies_issuer_first_then_serial() {
    let master: [u8; 16] = h(KEY);
    let issuer: [u8; 8] = h("0000100000000001");
    let asn8: [u8; 8] = h("0000000000012345");
    let expected = diversify(Algorithm::Des, &diversify(Algorithm::Des, &master, issuer), asn8);
    assert_eq!(card_key(Algorithm::Des, &master, issuer, asn8), expected);
    assert_ne!(card_key(Algorithm::Des, &master, asn8, issuer), expected);
}

#[test]
fn purchase_session_key_uses_low_two_bytes_of_terminal_transaction_number() {
    let dpk: [u8; 16] = h(KEY);
    let a = SessionKey::purchase(Algorithm::Des, &dpk, h("11223344"), 7, 0x0001_0203);
    let b = SessionKey::purchase(Algorithm::Des, &dpk, h("11223344"), 7, 0xFFFF_0203);
    assert_eq!(a, b);
    let direct = SessionKey::derive(Algorithm::Des, &dpk, h("1122334400070203"));
    assert_eq!(a, direct);
}

#[test]
fn sm4_session_key_and_mac_have_sm4_sizes_and_differ_from_des() {
    let key: [u8; 16] = h(KEY);
    let sm4 = SessionKey::load(Algorithm::Sm4, &key, h("11223344"), 0);
    assert_eq!(sm4.as_bytes().len(), 16);
    let t = profile_transaction();
    assert_ne!(inputs::load_mac2(&sm4, &t), h("3A845BF0"));
}

/// SM4 CBC-MAC over one block of padding equals SM4 of `80 00…` (IV zero): checked against the
/// cipher directly, so the MAC chains with the standard cipher and pads with method 2.
#[test]
fn sm4_mac_of_empty_input_is_cipher_of_padding_block() {
    use sm4::cipher::{BlockCipherEncrypt, KeyInit};
    let key: [u8; 16] = h(KEY);
    let session = tac_key(Algorithm::Sm4, &key);
    let mut block = [0u8; 16];
    block[0] = 0x80;
    let mut block = block.into();
    sm4::Sm4::new(&key.into()).encrypt_block(&mut block);
    assert_eq!(mac(&session, &[]), block[..4]);
}

#[test]
fn algorithm_ids_round_trip() {
    for a in [Algorithm::Des, Algorithm::Sm4] {
        assert_eq!(Algorithm::from_id(a.id()), Ok(a));
    }
    assert!(Algorithm::from_id(0x01).is_err());
}
