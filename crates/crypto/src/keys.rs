use des::cipher::{BlockCipherEncrypt, KeyInit};

use crate::Algorithm;

/// A 16-byte card or master key: two-key 3DES, or SM4.
pub type Key16 = [u8; 16];

/// Diversifies `key` with the 8 bytes `x`: DIV(K, X) = E_K(X) ‖ E_K(NOT X) under two-key 3DES;
/// under SM4 (profile choice) the single block E_K(X ‖ NOT X).
pub fn diversify(algorithm: Algorithm, key: &Key16, x: [u8; 8]) -> Key16 {
    let mut not_x = x;
    not_x.iter_mut().for_each(|b| *b = !*b);
    let mut out = [0u8; 16];
    match algorithm {
        Algorithm::Des => {
            out[..8].copy_from_slice(&tdes_encrypt(key, x));
            out[8..].copy_from_slice(&tdes_encrypt(key, not_x));
        }
        Algorithm::Sm4 => {
            out[..8].copy_from_slice(&x);
            out[8..].copy_from_slice(&not_x);
            out = sm4_encrypt(key, out);
        }
    }
    out
}

/// The card's own key for one purpose, from the issuer's master key (profile choice: the issuer ID
/// first, then the last 8 bytes of the application serial): DIV(DIV(MK, issuer ID), ASN8).
pub fn card_key(algorithm: Algorithm, master: &Key16, issuer_id: [u8; 8], asn8: [u8; 8]) -> Key16 {
    let issuer_key = diversify(algorithm, master, issuer_id);
    diversify(algorithm, &issuer_key, asn8)
}

/// An issuer's master keys, from which each card's keys are diversified with [`card_key`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKeys {
    /// Cipher family of the issuer's keys.
    pub algorithm: Algorithm,
    /// Master load key.
    pub dlk: Key16,
    /// Master purchase key.
    pub dpk: Key16,
    /// Master TAC key.
    pub dtk: Key16,
}

impl core::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MasterKeys").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// One card's keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CardKeys {
    /// Load key.
    pub dlk: Key16,
    /// Purchase key.
    pub dpk: Key16,
    /// TAC key.
    pub dtk: Key16,
}

impl MasterKeys {
    /// The keys of the card with this issuer ID and application serial tail (ASN8).
    pub fn for_card(&self, issuer_id: [u8; 8], asn8: [u8; 8]) -> CardKeys {
        let div = |mk: &Key16| card_key(self.algorithm, mk, issuer_id, asn8);
        CardKeys { dlk: div(&self.dlk), dpk: div(&self.dpk), dtk: div(&self.dtk) }
    }
}

/// The key a card signs TACs with: the left 8 bytes of DTK XOR its right 8 bytes under DES;
/// DTK itself under SM4 (profile choice).
pub fn tac_key(algorithm: Algorithm, dtk: &Key16) -> SessionKey {
    match algorithm {
        Algorithm::Des => {
            let mut k = [0u8; 8];
            for (i, b) in k.iter_mut().enumerate() {
                *b = dtk[i] ^ dtk[i + 8];
            }
            SessionKey::des(k)
        }
        Algorithm::Sm4 => SessionKey::sm4(*dtk),
    }
}

/// A transaction's session key: 8 bytes for single DES, 16 bytes for SM4.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionKey {
    algorithm: Algorithm,
    bytes: [u8; 16],
}

impl core::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Key material stays out of logs.
        f.debug_struct("SessionKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl SessionKey {
    fn des(key: [u8; 8]) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&key);
        SessionKey { algorithm: Algorithm::Des, bytes }
    }

    fn sm4(key: [u8; 16]) -> Self {
        SessionKey { algorithm: Algorithm::Sm4, bytes: key }
    }

    /// Derives a session key from 8 input bytes under a card key: 3DES_K(input) for DES; for SM4
    /// (profile choice) SM4_K(input ‖ `80 00 00 00 00 00 00 00`).
    pub fn derive(algorithm: Algorithm, card_key: &Key16, input: [u8; 8]) -> Self {
        match algorithm {
            Algorithm::Des => Self::des(tdes_encrypt(card_key, input)),
            Algorithm::Sm4 => {
                let mut block = [0u8; 16];
                block[..8].copy_from_slice(&input);
                block[8] = 0x80;
                Self::sm4(sm4_encrypt(card_key, block))
            }
        }
    }

    /// Load session key: E_DLK(card random ‖ online counter ‖ `8000`).
    pub fn load(algorithm: Algorithm, dlk: &Key16, card_random: [u8; 4], online_counter: u16) -> Self {
        let c = online_counter.to_be_bytes();
        let r = card_random;
        Self::derive(algorithm, dlk, [r[0], r[1], r[2], r[3], c[0], c[1], 0x80, 0x00])
    }

    /// Purchase (and composite purchase) session key: E_DPK(card random ‖ offline counter ‖ the low
    /// 2 bytes of the terminal transaction number).
    pub fn purchase(
        algorithm: Algorithm,
        dpk: &Key16,
        card_random: [u8; 4],
        offline_counter: u16,
        terminal_transaction_number: u32,
    ) -> Self {
        let c = offline_counter.to_be_bytes();
        let t = terminal_transaction_number.to_be_bytes();
        let r = card_random;
        Self::derive(algorithm, dpk, [r[0], r[1], r[2], r[3], c[0], c[1], t[2], t[3]])
    }

    /// The algorithm this key belongs to.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key bytes: 8 for DES, 16 for SM4.
    pub fn as_bytes(&self) -> &[u8] {
        match self.algorithm {
            Algorithm::Des => &self.bytes[..8],
            Algorithm::Sm4 => &self.bytes,
        }
    }
}

fn tdes_encrypt(key: &Key16, block: [u8; 8]) -> [u8; 8] {
    let cipher = des::TdesEde2::new(key.into());
    let mut b = block.into();
    cipher.encrypt_block(&mut b);
    b.into()
}

fn sm4_encrypt(key: &Key16, block: [u8; 16]) -> [u8; 16] {
    let cipher = sm4::Sm4::new(key.into());
    let mut b = block.into();
    cipher.encrypt_block(&mut b);
    b.into()
}
