//! TAC verification: the back office's proof that a record is what the card committed.

use std::collections::BTreeMap;

use yitong_crypto::inputs::{self, Transaction};
use yitong_crypto::{mac_matches, IssuerTacKey, Mac4, SessionKey, TacMasterKey};
use yitong_profile::apdu::transaction_type;

use crate::record::TapRecord;

/// The issuers' TAC master keys (master DTK), per issuer ID and key version, as only the back
/// office holds them — each kept diversified by its issuer ID ([`IssuerTacKey`]), the step every
/// card of the issuer shares.
#[derive(Default)]
pub struct TacKeys {
    keys: BTreeMap<([u8; 8], u8), IssuerTacKey>,
}

impl std::fmt::Debug for TacKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material stays out of logs.
        f.debug_list().entries(self.keys.keys().map(|(issuer, version)| (hex::encode_upper(issuer), version))).finish()
    }
}

impl TacKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an issuer's master TAC key (DTK) of one key version.
    pub fn add(&mut self, issuer_id: [u8; 8], key_version: u8, master: TacMasterKey) {
        self.keys.insert((issuer_id, key_version), master.for_issuer(issuer_id));
    }
}

/// Why a record's TAC does not prove it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TacError {
    /// The record carries no TAC (recovered from the card's log, or unconfirmed).
    Missing,
    /// No TAC key for the record's issuer.
    UnknownIssuer,
    /// The issuer's keys of the record's key version or algorithm are not held.
    KeyMismatch,
    /// A transaction type that carries no TAC of the profile.
    UnknownTransactionType(u8),
    /// The TAC does not match: a forged or altered record, or a card of other keys.
    Mismatch,
}

impl std::fmt::Display for TacError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TacError::Missing => f.write_str("the record carries no TAC"),
            TacError::UnknownIssuer => f.write_str("no TAC key for the card's issuer"),
            TacError::KeyMismatch => f.write_str("no TAC key of the card's key version and algorithm"),
            TacError::UnknownTransactionType(t) => write!(f, "transaction type {t:02X} has no TAC"),
            TacError::Mismatch => f.write_str("TAC mismatch: the record is not what the card committed"),
        }
    }
}

impl std::error::Error for TacError {}

/// Recomputes the TAC of `record` with the card's TAC key (diversified from the issuer's master
/// DTK) and compares it in constant time with the record's.
pub fn verify_tac(record: &TapRecord, keys: &TacKeys) -> Result<(), TacError> {
    let tac = record.tac.ok_or(TacError::Missing)?;
    let issuer_key = keys.keys.get(&(record.issuer_id, record.key_version)).ok_or_else(|| {
        if keys.keys.keys().any(|(issuer, _)| *issuer == record.issuer_id) {
            TacError::KeyMismatch
        } else {
            TacError::UnknownIssuer
        }
    })?;
    if issuer_key.algorithm().id() != record.algorithm_id {
        return Err(TacError::KeyMismatch);
    }
    let key = issuer_key.card_tac_key(record.asn8());
    let expected = card_tac(record, &key)?;
    if mac_matches(&expected, &tac) {
        Ok(())
    } else {
        Err(TacError::Mismatch)
    }
}

/// The TAC a card holding `card_key` (its TAC key, diversified from the issuer's DTK) computes
/// when it commits the transaction `record` describes: for a load over its balance after and the
/// online counter INITIALIZE returned (the record's counter minus one), for a purchase over the
/// terminal's transaction number; both over amount, type, terminal ID, date and time.
pub fn card_tac(record: &TapRecord, card_key: &SessionKey) -> Result<Mac4, TacError> {
    let t = Transaction {
        amount_fen: record.amount_fen,
        transaction_type: record.transaction_type,
        terminal_id: record.terminal_id,
        date: record.at.date_bcd(),
        time: record.at.time_bcd(),
    };
    match record.transaction_type {
        transaction_type::EP_LOAD => {
            // The card's balance is 4 bytes.
            let balance_after = i32::try_from(record.balance_after_fen).map_err(|_| TacError::Mismatch)?;
            Ok(inputs::load_tac(card_key, balance_after as u32, record.counter.wrapping_sub(1), &t))
        }
        transaction_type::EP_PURCHASE | transaction_type::CAPP_PURCHASE => {
            Ok(inputs::purchase_tac(card_key, record.terminal_transaction_number, &t))
        }
        other => Err(TacError::UnknownTransactionType(other)),
    }
}
