//! The gate's security module (PSAM) and the top-up host's load-key holder.
//!
//! Only these hold keys. A gate asks the [`SecurityModule`] for MAC1 and to check MAC2; a top-up
//! machine asks a [`LoadKeyHolder`] (in the field, the issuer's online host) to check the card's
//! MAC1 and make MAC2. The software implementations here serve development and tests; a
//! hardware PSAM or an HSM implements the same traits.

use std::collections::BTreeMap;

use yitong_crypto::inputs::{self, Transaction};
use yitong_crypto::{Algorithm, Mac4, MasterKeys, SessionKey};
use yitong_profile::DateTime;

use crate::record::TapRecord;

/// Why a security module refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamError {
    /// No master key for the card's issuer.
    UnknownIssuer,
    /// The card announces a key version or algorithm the module does not hold.
    KeyMismatch,
    /// MAC2 (or a load's MAC1) asked to be checked without a MAC1 session before it.
    NoSession,
    /// The card's MAC did not verify: not a genuine card, or a corrupted answer.
    MacMismatch,
    /// The terminal transaction number cannot count further.
    TransactionNumberExhausted,
}

impl std::fmt::Display for SamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SamError::UnknownIssuer => "no master key for the card's issuer",
            SamError::KeyMismatch => "card key version or algorithm not held by the security module",
            SamError::NoSession => "no MAC1 session to check MAC2 against",
            SamError::MacMismatch => "the card's MAC did not verify",
            SamError::TransactionNumberExhausted => "terminal transaction number exhausted",
        })
    }
}

impl std::error::Error for SamError {}

/// What the gate gives its PSAM to compute a purchase MAC1 (the PSAM's `80 70` command data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mac1Request {
    /// From INITIALIZE FOR PURCHASE.
    pub card_random: [u8; 4],
    /// Offline counter from INITIALIZE FOR PURCHASE.
    pub offline_counter: u16,
    /// Amount to debit, in fen.
    pub amount_fen: u32,
    /// `06` purchase or `09` composite purchase.
    pub transaction_type: u8,
    /// The gate's date and time.
    pub at: DateTime,
    /// Key version from INITIALIZE.
    pub key_version: u8,
    /// Algorithm ID from INITIALIZE.
    pub algorithm_id: u8,
    /// Last 8 bytes of the card's application serial.
    pub asn8: [u8; 8],
    /// The card's issuer ID.
    pub issuer_id: [u8; 8],
}

/// The terminal's security module: holds the purchase master keys, numbers transactions.
pub trait SecurityModule {
    /// The terminal ID (the PSAM's own number, its EF16).
    fn terminal_id(&self) -> [u8; 6];
    /// Allocates the next terminal transaction number and computes MAC1 for it.
    fn purchase_mac1(&mut self, request: &Mac1Request) -> Result<(u32, Mac4), SamError>;
    /// Checks the card's MAC2 for the session of the last MAC1.
    fn verify_purchase_mac2(&mut self, mac2: Mac4) -> Result<(), SamError>;
    /// Checks that a proof's MAC2 (from GET TRANSACTION PROVE) belongs to the session of
    /// `record`, a purchase this module made MAC1 for: the session key is derived again from the
    /// record's card random, counter and terminal transaction number.
    fn check_proof_mac2(&mut self, record: &TapRecord, mac2: Mac4) -> Result<(), SamError>;
    /// The number the next MAC1 will use. A hardware PSAM keeps it itself; a software module's
    /// owner saves it with the gate state.
    fn next_transaction_number(&self) -> u32;
}

/// One issuer's keys as a security module holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IssuerKeys {
    /// The version cards of this issuer report.
    pub key_version: u8,
    /// The master keys.
    pub master: MasterKeys,
}

/// A security module in software, with master purchase keys for several issuers (T-Union
/// interoperability). Its next transaction number is state the gate must persist
/// ([`SoftwarePsam::next_transaction_number`]).
pub struct SoftwarePsam {
    terminal_id: [u8; 6],
    next_transaction_number: u32,
    issuers: BTreeMap<[u8; 8], IssuerKeys>,
    session: Option<(SessionKey, u32)>,
}

impl SoftwarePsam {
    /// A module with this terminal ID, numbering from `next_transaction_number`.
    pub fn new(terminal_id: [u8; 6], next_transaction_number: u32) -> Self {
        SoftwarePsam { terminal_id, next_transaction_number, issuers: BTreeMap::new(), session: None }
    }

    /// Adds (or replaces) an issuer's master keys.
    pub fn add_issuer(&mut self, issuer_id: [u8; 8], keys: IssuerKeys) {
        self.issuers.insert(issuer_id, keys);
    }

    fn card_keys(
        &self,
        issuer_id: [u8; 8],
        asn8: [u8; 8],
        key_version: u8,
        algorithm_id: u8,
    ) -> Result<(Algorithm, yitong_crypto::CardKeys), SamError> {
        let keys = self.issuers.get(&issuer_id).ok_or(SamError::UnknownIssuer)?;
        if keys.key_version != key_version || keys.master.algorithm.id() != algorithm_id {
            return Err(SamError::KeyMismatch);
        }
        Ok((keys.master.algorithm, keys.master.for_card(issuer_id, asn8)))
    }
}

impl SecurityModule for SoftwarePsam {
    fn terminal_id(&self) -> [u8; 6] {
        self.terminal_id
    }

    fn purchase_mac1(&mut self, r: &Mac1Request) -> Result<(u32, Mac4), SamError> {
        self.session = None;
        let (algorithm, card) = self.card_keys(r.issuer_id, r.asn8, r.key_version, r.algorithm_id)?;
        let ttn = self.next_transaction_number;
        self.next_transaction_number = ttn.checked_add(1).ok_or(SamError::TransactionNumberExhausted)?;
        let key = SessionKey::purchase(algorithm, &card.dpk, r.card_random, r.offline_counter, ttn);
        let t = Transaction {
            amount_fen: r.amount_fen,
            transaction_type: r.transaction_type,
            terminal_id: self.terminal_id,
            date: r.at.date_bcd(),
            time: r.at.time_bcd(),
        };
        self.session = Some((key, r.amount_fen));
        Ok((ttn, inputs::purchase_mac1(&key, &t)))
    }

    fn next_transaction_number(&self) -> u32 {
        self.next_transaction_number
    }

    fn verify_purchase_mac2(&mut self, mac2: Mac4) -> Result<(), SamError> {
        let (key, amount) = self.session.take().ok_or(SamError::NoSession)?;
        mac_matches(&inputs::purchase_mac2(&key, amount), &mac2)
    }

    fn check_proof_mac2(&mut self, r: &TapRecord, mac2: Mac4) -> Result<(), SamError> {
        let (algorithm, card) = self.card_keys(r.issuer_id, r.asn8(), r.key_version, r.algorithm_id)?;
        let counter_before = r.counter.wrapping_sub(1);
        let key =
            SessionKey::purchase(algorithm, &card.dpk, r.card_random, counter_before, r.terminal_transaction_number);
        mac_matches(&inputs::purchase_mac2(&key, r.amount_fen), &mac2)
    }
}

/// Compares MACs in constant time.
fn mac_matches(expected: &Mac4, received: &Mac4) -> Result<(), SamError> {
    if bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], &received[..])) {
        Ok(())
    } else {
        Err(SamError::MacMismatch)
    }
}

/// What a top-up terminal sends its load-key holder after INITIALIZE FOR LOAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadRequest {
    /// The card's issuer ID.
    pub issuer_id: [u8; 8],
    /// Last 8 bytes of the card's application serial.
    pub asn8: [u8; 8],
    /// From INITIALIZE FOR LOAD.
    pub card_random: [u8; 4],
    /// Online counter from INITIALIZE FOR LOAD.
    pub online_counter: u16,
    /// Balance before, as the card reported it.
    pub balance_before_fen: i32,
    /// Amount to load, in fen.
    pub amount_fen: u32,
    /// The top-up terminal's ID.
    pub terminal_id: [u8; 6],
    /// The terminal's date and time.
    pub at: DateTime,
    /// Key version from INITIALIZE FOR LOAD.
    pub key_version: u8,
    /// Algorithm ID from INITIALIZE FOR LOAD.
    pub algorithm_id: u8,
    /// The card's MAC1.
    pub mac1: Mac4,
}

/// Authorizes loads: checks the card's MAC1, answers MAC2. In the field, the issuer's host.
pub trait LoadKeyHolder {
    /// MAC2 for CREDIT FOR LOAD, once the card's MAC1 verified.
    fn authorize_load(&mut self, request: &LoadRequest) -> Result<Mac4, SamError>;
}

/// A load-key holder in software, for several issuers.
#[derive(Default)]
pub struct SoftwareLoadHost {
    issuers: BTreeMap<[u8; 8], IssuerKeys>,
}

impl SoftwareLoadHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an issuer's master keys.
    pub fn add_issuer(&mut self, issuer_id: [u8; 8], keys: IssuerKeys) {
        self.issuers.insert(issuer_id, keys);
    }
}

impl LoadKeyHolder for SoftwareLoadHost {
    fn authorize_load(&mut self, r: &LoadRequest) -> Result<Mac4, SamError> {
        let keys = self.issuers.get(&r.issuer_id).ok_or(SamError::UnknownIssuer)?;
        if keys.key_version != r.key_version || keys.master.algorithm.id() != r.algorithm_id {
            return Err(SamError::KeyMismatch);
        }
        let card = keys.master.for_card(r.issuer_id, r.asn8);
        let key = SessionKey::load(keys.master.algorithm, &card.dlk, r.card_random, r.online_counter);
        let t = Transaction {
            amount_fen: r.amount_fen,
            transaction_type: yitong_profile::apdu::transaction_type::EP_LOAD,
            terminal_id: r.terminal_id,
            date: r.at.date_bcd(),
            time: r.at.time_bcd(),
        };
        mac_matches(&inputs::load_mac1(&key, r.balance_before_fen as u32, &t), &r.mac1)?;
        Ok(inputs::load_mac2(&key, &t))
    }
}
