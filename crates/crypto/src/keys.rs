use core::fmt;
use core::marker::PhantomData;

use des::cipher::{BlockCipherEncrypt, KeyInit};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

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
    let issuer_key = Zeroizing::new(diversify(algorithm, master, issuer_id));
    diversify(algorithm, &issuer_key, asn8)
}

/// What a master key is for. Each purpose is its own type, so that a gate's purchase key can never
/// be handed to code that wants the load key.
pub trait Purpose: purpose::Sealed {
    /// The purpose's name, for `Debug` and messages.
    const NAME: &'static str;
}

/// The purposes of the issuer's master keys (profile: DLK, DPK, DTK; DAMK and DAUK are profile
/// choices).
pub mod purpose {
    /// Loads (DLK): the load host holds it.
    #[derive(Clone, Copy, Debug)]
    pub enum Load {}
    /// Purchases (DPK): gates' security modules hold it.
    #[derive(Clone, Copy, Debug)]
    pub enum Purchase {}
    /// TACs (DTK): only the back office holds it.
    #[derive(Clone, Copy, Debug)]
    pub enum Tac {}
    /// Application maintenance (DAMK, profile choice): APPLICATION BLOCK; gates hold it.
    #[derive(Clone, Copy, Debug)]
    pub enum Maintenance {}
    /// Application unblock (DAUK, profile choice): APPLICATION UNBLOCK; only the service desk
    /// holds it, so that a gate's key file can block cards but never unblock one.
    #[derive(Clone, Copy, Debug)]
    pub enum Unblock {}

    /// Keeps the purposes to the five the profile defines.
    pub trait Sealed {}
    impl Sealed for Load {}
    impl Sealed for Purchase {}
    impl Sealed for Tac {}
    impl Sealed for Maintenance {}
    impl Sealed for Unblock {}
}

impl Purpose for purpose::Load {
    const NAME: &'static str = "load";
}
impl Purpose for purpose::Purchase {
    const NAME: &'static str = "purchase";
}
impl Purpose for purpose::Tac {
    const NAME: &'static str = "TAC";
}
impl Purpose for purpose::Maintenance {
    const NAME: &'static str = "maintenance";
}
impl Purpose for purpose::Unblock {
    const NAME: &'static str = "unblock";
}

/// One master key of an issuer, for one purpose `P`. Zeroized on drop, never `Copy`, and its
/// `Debug` shows no key bytes.
pub struct MasterKey<P: Purpose> {
    algorithm: Algorithm,
    key: Key16,
    purpose: PhantomData<P>,
}

/// Master load key (DLK): the load host's.
pub type LoadMasterKey = MasterKey<purpose::Load>;
/// Master purchase key (DPK): the gates' security modules'.
pub type PurchaseMasterKey = MasterKey<purpose::Purchase>;
/// Master TAC key (DTK): the back office's alone.
pub type TacMasterKey = MasterKey<purpose::Tac>;
/// Master application maintenance key (DAMK, profile choice): blocks cards.
pub type MaintenanceMasterKey = MasterKey<purpose::Maintenance>;
/// Master application unblock key (DAUK, profile choice): unblocks cards.
pub type UnblockMasterKey = MasterKey<purpose::Unblock>;

impl<P: Purpose> MasterKey<P> {
    /// A master key of `algorithm`'s family.
    pub fn new(algorithm: Algorithm, key: Key16) -> Self {
        MasterKey { algorithm, key, purpose: PhantomData }
    }

    /// The cipher family.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key bytes, to write a key file or hand to an HSM. Named so that every use stands out.
    pub fn expose_bytes(&self) -> &Key16 {
        &self.key
    }

    /// The card's key of this purpose, diversified with [`card_key`].
    pub fn for_card(&self, issuer_id: [u8; 8], asn8: [u8; 8]) -> Zeroizing<Key16> {
        Zeroizing::new(card_key(self.algorithm, &self.key, issuer_id, asn8))
    }
}

impl TacMasterKey {
    /// The key the card with this issuer ID and ASN8 signs its TACs with: [`tac_key`] of its
    /// diversified DTK. The back office checks a TAC by recomputing it under this key with
    /// [`crate::inputs::load_tac`] / [`crate::inputs::purchase_tac`] and comparing with
    /// [`mac_matches`].
    pub fn card_tac_key(&self, issuer_id: [u8; 8], asn8: [u8; 8]) -> SessionKey {
        tac_key(self.algorithm, &self.for_card(issuer_id, asn8))
    }
}

impl MaintenanceMasterKey {
    /// The MAC of an APPLICATION BLOCK command `header` (CLA INS P1 P2 Lc) for the card with this
    /// issuer ID and ASN8, after it answered GET CHALLENGE with `challenge`
    /// ([`crate::maintenance_mac`] under the card's diversified DAMK).
    pub fn command_mac(&self, issuer_id: [u8; 8], asn8: [u8; 8], challenge: [u8; 4], header: [u8; 5]) -> crate::Mac4 {
        crate::maintenance_mac(self.algorithm, &self.for_card(issuer_id, asn8), challenge, header)
    }
}

impl UnblockMasterKey {
    /// The MAC of an APPLICATION UNBLOCK command `header`, as [`MaintenanceMasterKey::command_mac`]
    /// but under the card's diversified DAUK.
    pub fn command_mac(&self, issuer_id: [u8; 8], asn8: [u8; 8], challenge: [u8; 4], header: [u8; 5]) -> crate::Mac4 {
        crate::maintenance_mac(self.algorithm, &self.for_card(issuer_id, asn8), challenge, header)
    }
}

impl<P: Purpose> Clone for MasterKey<P> {
    fn clone(&self) -> Self {
        MasterKey::new(self.algorithm, self.key)
    }
}

impl<P: Purpose> PartialEq for MasterKey<P> {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && bool::from(self.key.ct_eq(&other.key))
    }
}

impl<P: Purpose> Eq for MasterKey<P> {}

impl<P: Purpose> fmt::Debug for MasterKey<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key material stays out of logs.
        f.debug_struct("MasterKey")
            .field("purpose", &P::NAME)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl<P: Purpose> Zeroize for MasterKey<P> {
    fn zeroize(&mut self) {
        self.key.zeroize();
    }
}

impl<P: Purpose> Drop for MasterKey<P> {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl<P: Purpose> ZeroizeOnDrop for MasterKey<P> {}

/// An issuer's full set of master keys, one per purpose, all of one algorithm. Only personalization
/// and development tools hold the whole set; each terminal role holds its part (see
/// `docs/architecture.md`, "Keys by purpose").
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKeys {
    load: LoadMasterKey,
    purchase: PurchaseMasterKey,
    tac: TacMasterKey,
    maintenance: MaintenanceMasterKey,
    unblock: UnblockMasterKey,
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeys").field("algorithm", &self.algorithm()).finish_non_exhaustive()
    }
}

/// One card's keys, diversified from the issuer's master keys. Zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct CardKeys {
    /// Load key.
    pub dlk: Key16,
    /// Purchase key.
    pub dpk: Key16,
    /// TAC key.
    pub dtk: Key16,
    /// Application maintenance key (profile choice): APPLICATION BLOCK.
    pub damk: Key16,
    /// Application unblock key (profile choice): APPLICATION UNBLOCK.
    pub dauk: Key16,
}

impl fmt::Debug for CardKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardKeys").finish_non_exhaustive()
    }
}

impl MasterKeys {
    /// The set of `algorithm` from the five master keys' bytes: DLK, DPK, DTK, DAMK, DAUK.
    pub fn new(algorithm: Algorithm, dlk: Key16, dpk: Key16, dtk: Key16, damk: Key16, dauk: Key16) -> Self {
        MasterKeys {
            load: MasterKey::new(algorithm, dlk),
            purchase: MasterKey::new(algorithm, dpk),
            tac: MasterKey::new(algorithm, dtk),
            maintenance: MasterKey::new(algorithm, damk),
            unblock: MasterKey::new(algorithm, dauk),
        }
    }

    /// The cipher family of every key of the set.
    pub fn algorithm(&self) -> Algorithm {
        self.load.algorithm
    }

    /// Master load key (DLK).
    pub fn load(&self) -> &LoadMasterKey {
        &self.load
    }

    /// Master purchase key (DPK).
    pub fn purchase(&self) -> &PurchaseMasterKey {
        &self.purchase
    }

    /// Master TAC key (DTK).
    pub fn tac(&self) -> &TacMasterKey {
        &self.tac
    }

    /// Master application maintenance key (DAMK).
    pub fn maintenance(&self) -> &MaintenanceMasterKey {
        &self.maintenance
    }

    /// Master application unblock key (DAUK).
    pub fn unblock(&self) -> &UnblockMasterKey {
        &self.unblock
    }

    /// The keys of the card with this issuer ID and application serial tail (ASN8).
    pub fn for_card(&self, issuer_id: [u8; 8], asn8: [u8; 8]) -> CardKeys {
        CardKeys {
            dlk: *self.load.for_card(issuer_id, asn8),
            dpk: *self.purchase.for_card(issuer_id, asn8),
            dtk: *self.tac.for_card(issuer_id, asn8),
            damk: *self.maintenance.for_card(issuer_id, asn8),
            dauk: *self.unblock.for_card(issuer_id, asn8),
        }
    }
}

/// Whether two MACs (or TACs) are equal, in constant time: a MAC check must not tell an attacker
/// how many leading bytes of a forged MAC were right. Every MAC check of the project uses it.
pub fn mac_matches(expected: &crate::Mac4, received: &crate::Mac4) -> bool {
    expected.ct_eq(received).into()
}

/// The key a card signs TACs with: the left 8 bytes of DTK XOR its right 8 bytes under DES;
/// DTK itself under SM4 (profile choice).
pub fn tac_key(algorithm: Algorithm, dtk: &Key16) -> SessionKey {
    match algorithm {
        Algorithm::Des => {
            let mut k = Zeroizing::new([0u8; 8]);
            for (i, b) in k.iter_mut().enumerate() {
                *b = dtk[i] ^ dtk[i + 8];
            }
            SessionKey::des(&k)
        }
        Algorithm::Sm4 => SessionKey::sm4(dtk),
    }
}

/// A transaction's session key: 8 bytes for single DES, 16 bytes for SM4. Cheap to clone, not
/// `Copy`, zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey {
    algorithm: Algorithm,
    bytes: [u8; 16],
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key material stays out of logs.
        f.debug_struct("SessionKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl Zeroize for SessionKey {
    fn zeroize(&mut self) {
        self.bytes.zeroize();
    }
}

impl Drop for SessionKey {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for SessionKey {}

impl SessionKey {
    fn des(key: &[u8; 8]) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(key);
        SessionKey { algorithm: Algorithm::Des, bytes }
    }

    fn sm4(key: &[u8; 16]) -> Self {
        SessionKey { algorithm: Algorithm::Sm4, bytes: *key }
    }

    /// Derives a session key from 8 input bytes under a card key: 3DES_K(input) for DES; for SM4
    /// (profile choice) SM4_K(input ‖ `80 00 00 00 00 00 00 00`).
    pub fn derive(algorithm: Algorithm, card_key: &Key16, input: [u8; 8]) -> Self {
        match algorithm {
            Algorithm::Des => Self::des(&Zeroizing::new(tdes_encrypt(card_key, input))),
            Algorithm::Sm4 => {
                let mut block = [0u8; 16];
                block[..8].copy_from_slice(&input);
                block[8] = 0x80;
                Self::sm4(&Zeroizing::new(sm4_encrypt(card_key, block)))
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
