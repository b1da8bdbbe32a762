//! The back office's TAC key for one issuer: the issuer's DTK diversified by its issuer ID — the
//! half of every card's diversification ([`crate::card_key`]) that is the same for all the
//! issuer's cards — done once, its cipher's key schedule ready. Checking a record's TAC then
//! diversifies only by the card's ASN8.

use des::cipher::{BlockCipherEncrypt, KeyInit};
use zeroize::Zeroizing;

use crate::keys::{diversify, tac_key};
use crate::{Algorithm, SessionKey, TacMasterKey};

/// An issuer's DTK diversified by its issuer ID, as a keyed cipher (zeroized on drop).
pub struct IssuerTacKey {
    cipher: IssuerCipher,
}

enum IssuerCipher {
    Des(des::TdesEde2),
    Sm4(sm4::Sm4),
}

impl core::fmt::Debug for IssuerTacKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Key material stays out of logs.
        f.debug_struct("IssuerTacKey").field("algorithm", &self.algorithm()).finish_non_exhaustive()
    }
}

impl TacMasterKey {
    /// The issuer's step of [`TacMasterKey::card_tac_key`], kept for its cards.
    pub fn for_issuer(&self, issuer_id: [u8; 8]) -> IssuerTacKey {
        let issuer_key = Zeroizing::new(diversify(self.algorithm(), self.expose_bytes(), issuer_id));
        let key = (&*issuer_key).into();
        let cipher = match self.algorithm() {
            Algorithm::Des => IssuerCipher::Des(des::TdesEde2::new(key)),
            Algorithm::Sm4 => IssuerCipher::Sm4(sm4::Sm4::new(key)),
        };
        IssuerTacKey { cipher }
    }
}

impl IssuerTacKey {
    /// The cipher family.
    pub fn algorithm(&self) -> Algorithm {
        match self.cipher {
            IssuerCipher::Des(_) => Algorithm::Des,
            IssuerCipher::Sm4(_) => Algorithm::Sm4,
        }
    }

    /// The TAC key of the issuer's card with this ASN8: the same key as
    /// [`TacMasterKey::card_tac_key`] gives.
    pub fn card_tac_key(&self, asn8: [u8; 8]) -> SessionKey {
        let mut not_x = asn8;
        not_x.iter_mut().for_each(|b| *b = !*b);
        let mut dtk = Zeroizing::new([0u8; 16]);
        match &self.cipher {
            IssuerCipher::Des(cipher) => {
                for (half, input) in [(0, asn8), (8, not_x)] {
                    let mut block = input.into();
                    cipher.encrypt_block(&mut block);
                    dtk[half..half + 8].copy_from_slice(&block);
                }
            }
            IssuerCipher::Sm4(cipher) => {
                dtk[..8].copy_from_slice(&asn8);
                dtk[8..].copy_from_slice(&not_x);
                let mut block = (*dtk).into();
                cipher.encrypt_block(&mut block);
                dtk.copy_from_slice(&block);
            }
        }
        tac_key(self.algorithm(), &dtk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_step_kept_gives_every_card_the_same_key_as_the_whole_diversification() {
        let dtk = [0x0F, 0x1E, 0x2D, 0x3C, 0x4B, 0x5A, 0x69, 0x78, 0x87, 0x96, 0xA5, 0xB4, 0xC3, 0xD2, 0xE1, 0xF0];
        let issuer = [0, 0, 0x10, 0, 0, 0, 0, 1];
        for algorithm in [Algorithm::Des, Algorithm::Sm4] {
            let master = TacMasterKey::new(algorithm, dtk);
            let kept = master.for_issuer(issuer);
            assert_eq!(kept.algorithm(), algorithm);
            for n in 0..50u64 {
                let asn8 = (n * 0x0101_0101_0101).to_be_bytes();
                let whole = master.card_tac_key(issuer, asn8);
                assert_eq!(kept.card_tac_key(asn8).as_bytes(), whole.as_bytes(), "{algorithm:?} card {n}");
            }
        }
    }
}
