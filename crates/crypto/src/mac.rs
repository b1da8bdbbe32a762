use cbc_mac::{CbcMac, Mac};
use des::cipher::KeyInit;

use retail_mac::RetailMac;

use crate::{Algorithm, Key16, SessionKey};

/// A 4-byte MAC or TAC as it travels in APDUs.
pub type Mac4 = [u8; 4];

/// Longest MAC input of the profile (load TAC: 4+2+4+1+6+4+3 = 24 bytes), with room for padding.
const MAC_INPUT_MAX: usize = 48;

/// ISO/IEC 9797-1 MAC algorithm 1 with padding method 2 (`80 00…`, always added), IV zero, truncated
/// to the first 4 bytes: single DES under an 8-byte key, or SM4 under a 16-byte key.
///
/// # Panics
/// If `data` is longer than the longest MAC input of the profile: callers build inputs from
/// fixed-size fields, so a longer one is a programming error.
pub fn mac(key: &SessionKey, data: &[u8]) -> Mac4 {
    let block_len = match key.algorithm() {
        Algorithm::Des => 8,
        Algorithm::Sm4 => 16,
    };
    assert!(data.len() < MAC_INPUT_MAX - block_len, "MAC input too long");
    let mut padded = [0u8; MAC_INPUT_MAX];
    padded[..data.len()].copy_from_slice(data);
    padded[data.len()] = 0x80;
    let padded_len = (data.len() / block_len + 1) * block_len;
    let padded = &padded[..padded_len];

    let tag = match key.algorithm() {
        Algorithm::Des => {
            let mut m =
                <CbcMac<des::Des> as KeyInit>::new_from_slice(key.as_bytes()).expect("a DES session key is 8 bytes");
            m.update(padded);
            first4(&m.finalize().into_bytes())
        }
        Algorithm::Sm4 => {
            let mut m =
                <CbcMac<sm4::Sm4> as KeyInit>::new_from_slice(key.as_bytes()).expect("an SM4 session key is 16 bytes");
            m.update(padded);
            first4(&m.finalize().into_bytes())
        }
    };
    tag
}

fn first4(bytes: &[u8]) -> Mac4 {
    [bytes[0], bytes[1], bytes[2], bytes[3]]
}

/// The MAC of an APPLICATION BLOCK / UNBLOCK command (profile choice, after PBOC secure
/// messaging): over the command header CLA INS P1 P2 Lc, padding method 2, with the IV
/// challenge ‖ zeros (the 4 bytes GET CHALLENGE answered just before), first 4 bytes.
///
/// The key is the card's diversified maintenance key (DAMK) itself, no session key: the challenge
/// already makes each MAC single-use. DES cards use ISO/IEC 9797-1 MAC algorithm 3 (the "retail
/// MAC": single DES under the left half, 3DES on the last block) under the 16-byte DAMK, as PBOC
/// secure messaging does; SM4 cards the SM4 CBC-MAC under DAMK.
pub fn maintenance_mac(algorithm: Algorithm, card_damk: &Key16, challenge: [u8; 4], header: [u8; 5]) -> Mac4 {
    // A CBC-MAC with IV v over blocks M1 ‖ M2 … equals the zero-IV CBC-MAC over (v XOR M1) ‖ M2 …,
    // so the challenge goes into the first block and the MAC crates run with their zero IV.
    let mut block = [0u8; 16];
    block[..5].copy_from_slice(&header);
    block[5] = 0x80;
    block[..4].iter_mut().zip(challenge).for_each(|(b, c)| *b ^= c);
    match algorithm {
        Algorithm::Des => {
            let mut m = <RetailMac<des::Des> as KeyInit>::new_from_slice(card_damk)
                .expect("a retail MAC key is two DES keys, 16 bytes");
            m.update(&block[..8]);
            first4(&m.finalize().into_bytes())
        }
        Algorithm::Sm4 => {
            let mut m = <CbcMac<sm4::Sm4> as KeyInit>::new_from_slice(card_damk).expect("an SM4 key is 16 bytes");
            m.update(&block);
            first4(&m.finalize().into_bytes())
        }
    }
}
