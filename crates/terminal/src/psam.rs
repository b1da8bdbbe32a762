//! The gate's security module (PSAM) and the top-up host's load-key holder.
//!
//! Only these hold keys. A gate asks the [`SecurityModule`] for MAC1 and to check MAC2; a top-up
//! machine asks a [`LoadKeyHolder`] (in the field, the issuer's online host) to check the card's
//! MAC1 and make MAC2. The software implementations here serve development and tests; a
//! hardware PSAM or an HSM implements the same traits.
//!
//! Keys by purpose: a gate's module holds the purchase key and the maintenance key (to block
//! hotlisted cards) and nothing else; a load host holds the load key only; the TAC key stays in
//! the back office. Both hold keys per (issuer ID, key version), so that cards of the old and
//! the new version both work during a key rollover.

use std::collections::BTreeMap;

use yitong_crypto::inputs::{self, Transaction};
use yitong_crypto::{
    mac_matches, Algorithm, LoadMasterKey, Mac4, MaintenanceMasterKey, MasterKeys, PurchaseMasterKey, SessionKey,
};
use yitong_profile::apdu::application_block_header;
use yitong_profile::DateTime;

use crate::record::TapRecord;

/// Why a security module refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamError {
    /// No master key for the card's issuer, of any version: the issuer is not accepted here.
    UnknownIssuer,
    /// The module holds keys of the card's issuer, but not of the key version or algorithm the
    /// card announces (a key rollover the module has not received, or a key file of the other
    /// algorithm). Not the same as [`SamError::UnknownIssuer`]: the issuer is accepted.
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
            SamError::UnknownIssuer => "no master key for the card's issuer: issuer not accepted",
            SamError::KeyMismatch => "the card's key version or algorithm does not match the keys held for its issuer",
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

/// The terminal's security module: holds the purchase and maintenance master keys, numbers
/// transactions.
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
    /// The MAC of APPLICATION BLOCK (P2 `00`, a block the service desk can lift) for the card with
    /// this issuer ID and ASN8, which just answered GET CHALLENGE with `challenge`. `key_version`
    /// is the card's (from INITIALIZE) when the gate knows it; `None` takes the newest version the
    /// module holds for the issuer (a gate blocking right after SELECT).
    fn application_block_mac(
        &self,
        issuer_id: [u8; 8],
        asn8: [u8; 8],
        key_version: Option<u8>,
        challenge: [u8; 4],
    ) -> Result<Mac4, SamError>;
}

/// One issuer's full key set of one version, for development setups that give every terminal the
/// whole set: [`SoftwarePsam::add_issuer`] and [`SoftwareLoadHost::add_issuer`] keep only their part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerKeys {
    /// The version cards of this issuer report.
    pub key_version: u8,
    /// The master keys.
    pub master: MasterKeys,
}

/// What a gate's security module holds for one (issuer, key version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PsamKeys {
    /// Master purchase key: MAC1, MAC2.
    pub purchase: PurchaseMasterKey,
    /// Master maintenance key: APPLICATION BLOCK of hotlisted cards.
    pub maintenance: MaintenanceMasterKey,
}

/// Keys per (issuer ID, key version).
type KeyTable<K> = BTreeMap<([u8; 8], u8), K>;

/// The key of `issuer_id` and `key_version` whose algorithm the card announced: `UnknownIssuer`
/// when no version of the issuer is held, `KeyMismatch` when others are.
fn find<K>(
    table: &KeyTable<K>,
    algorithm_of: impl Fn(&K) -> Algorithm,
    issuer_id: [u8; 8],
    key_version: u8,
    algorithm_id: u8,
) -> Result<&K, SamError> {
    match table.get(&(issuer_id, key_version)) {
        Some(k) if algorithm_of(k).id() == algorithm_id => Ok(k),
        Some(_) => Err(SamError::KeyMismatch),
        None if holds_issuer(table, issuer_id) => Err(SamError::KeyMismatch),
        None => Err(SamError::UnknownIssuer),
    }
}

fn holds_issuer<K>(table: &KeyTable<K>, issuer_id: [u8; 8]) -> bool {
    table.range((issuer_id, 0)..=(issuer_id, u8::MAX)).next().is_some()
}

/// A security module in software, with master purchase and maintenance keys for several issuers
/// (T-Union interoperability) and key versions. Its next transaction number is state the gate
/// must persist ([`SoftwarePsam::next_transaction_number`]).
pub struct SoftwarePsam {
    terminal_id: [u8; 6],
    next_transaction_number: u32,
    keys: KeyTable<PsamKeys>,
    session: Option<(SessionKey, u32)>,
}

impl SoftwarePsam {
    /// A module with this terminal ID, numbering from `next_transaction_number`.
    pub fn new(terminal_id: [u8; 6], next_transaction_number: u32) -> Self {
        SoftwarePsam { terminal_id, next_transaction_number, keys: BTreeMap::new(), session: None }
    }

    /// Adds (or replaces) the keys of one issuer and key version.
    pub fn add_keys(&mut self, issuer_id: [u8; 8], key_version: u8, keys: PsamKeys) {
        self.keys.insert((issuer_id, key_version), keys);
    }

    /// Adds an issuer's purchase and maintenance keys from its full set (development).
    pub fn add_issuer(&mut self, issuer_id: [u8; 8], keys: IssuerKeys) {
        let psam_keys =
            PsamKeys { purchase: keys.master.purchase().clone(), maintenance: keys.master.maintenance().clone() };
        self.add_keys(issuer_id, keys.key_version, psam_keys);
    }

    /// The MAC of APPLICATION BLOCK with P2 `01` (`permanently`: blocked for good, as the
    /// platform closes a card) or `00`; otherwise as [`SecurityModule::application_block_mac`].
    pub fn application_block_mac_p2(
        &self,
        issuer_id: [u8; 8],
        asn8: [u8; 8],
        key_version: Option<u8>,
        challenge: [u8; 4],
        permanently: bool,
    ) -> Result<Mac4, SamError> {
        let keys = match key_version {
            Some(v) => self.keys.get(&(issuer_id, v)),
            None => self.keys.range((issuer_id, 0)..=(issuer_id, u8::MAX)).next_back().map(|(_, k)| k),
        };
        let keys = match keys {
            Some(k) => k,
            None if holds_issuer(&self.keys, issuer_id) => return Err(SamError::KeyMismatch),
            None => return Err(SamError::UnknownIssuer),
        };
        Ok(keys.maintenance.command_mac(issuer_id, asn8, challenge, application_block_header(permanently)))
    }
}

impl SecurityModule for SoftwarePsam {
    fn terminal_id(&self) -> [u8; 6] {
        self.terminal_id
    }

    fn purchase_mac1(&mut self, r: &Mac1Request) -> Result<(u32, Mac4), SamError> {
        self.session = None;
        let keys = find(&self.keys, |k| k.purchase.algorithm(), r.issuer_id, r.key_version, r.algorithm_id)?;
        let dpk = keys.purchase.for_card(r.issuer_id, r.asn8);
        let ttn = self.next_transaction_number;
        let next = ttn.checked_add(1).ok_or(SamError::TransactionNumberExhausted)?;
        let key = SessionKey::purchase(keys.purchase.algorithm(), &dpk, r.card_random, r.offline_counter, ttn);
        self.next_transaction_number = next;
        let t = Transaction {
            amount_fen: r.amount_fen,
            transaction_type: r.transaction_type,
            terminal_id: self.terminal_id,
            date: r.at.date_bcd(),
            time: r.at.time_bcd(),
        };
        let mac1 = inputs::purchase_mac1(&key, &t);
        self.session = Some((key, r.amount_fen));
        Ok((ttn, mac1))
    }

    fn next_transaction_number(&self) -> u32 {
        self.next_transaction_number
    }

    fn verify_purchase_mac2(&mut self, mac2: Mac4) -> Result<(), SamError> {
        let (key, amount) = self.session.take().ok_or(SamError::NoSession)?;
        if mac_matches(&inputs::purchase_mac2(&key, amount), &mac2) {
            Ok(())
        } else {
            Err(SamError::MacMismatch)
        }
    }

    fn check_proof_mac2(&mut self, r: &TapRecord, mac2: Mac4) -> Result<(), SamError> {
        let keys = find(&self.keys, |k| k.purchase.algorithm(), r.issuer_id, r.key_version, r.algorithm_id)?;
        let dpk = keys.purchase.for_card(r.issuer_id, r.asn8());
        let counter_before = r.counter.wrapping_sub(1);
        let key = SessionKey::purchase(
            keys.purchase.algorithm(),
            &dpk,
            r.card_random,
            counter_before,
            r.terminal_transaction_number,
        );
        if mac_matches(&inputs::purchase_mac2(&key, r.amount_fen), &mac2) {
            Ok(())
        } else {
            Err(SamError::MacMismatch)
        }
    }

    fn application_block_mac(
        &self,
        issuer_id: [u8; 8],
        asn8: [u8; 8],
        key_version: Option<u8>,
        challenge: [u8; 4],
    ) -> Result<Mac4, SamError> {
        self.application_block_mac_p2(issuer_id, asn8, key_version, challenge, false)
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

/// A load-key holder in software: master load keys (and nothing else) for several issuers and key
/// versions.
#[derive(Default)]
pub struct SoftwareLoadHost {
    keys: KeyTable<LoadMasterKey>,
}

impl SoftwareLoadHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the load key of one issuer and key version.
    pub fn add_keys(&mut self, issuer_id: [u8; 8], key_version: u8, load: LoadMasterKey) {
        self.keys.insert((issuer_id, key_version), load);
    }

    /// Adds an issuer's load key from its full set (development).
    pub fn add_issuer(&mut self, issuer_id: [u8; 8], keys: IssuerKeys) {
        self.add_keys(issuer_id, keys.key_version, keys.master.load().clone());
    }
}

impl LoadKeyHolder for SoftwareLoadHost {
    fn authorize_load(&mut self, r: &LoadRequest) -> Result<Mac4, SamError> {
        let master = find(&self.keys, |k| k.algorithm(), r.issuer_id, r.key_version, r.algorithm_id)?;
        let dlk = master.for_card(r.issuer_id, r.asn8);
        let key = SessionKey::load(master.algorithm(), &dlk, r.card_random, r.online_counter);
        let t = Transaction {
            amount_fen: r.amount_fen,
            transaction_type: yitong_profile::apdu::transaction_type::EP_LOAD,
            terminal_id: r.terminal_id,
            date: r.at.date_bcd(),
            time: r.at.time_bcd(),
        };
        if !mac_matches(&inputs::load_mac1(&key, r.balance_before_fen as u32, &t), &r.mac1) {
            return Err(SamError::MacMismatch);
        }
        Ok(inputs::load_mac2(&key, &t))
    }
}
