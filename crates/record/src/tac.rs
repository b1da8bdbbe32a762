//! TAC verification: the back office's proof that a record is what the card committed.

use std::collections::BTreeMap;

use yitong_crypto::inputs::{self, Transaction};
use yitong_crypto::{mac_matches, IssuerTacKey, Mac4, SessionKey, TacMasterKey};
use yitong_profile::apdu::transaction_type;

use crate::card_keys::{card_key_id, CardKeys};
use crate::record::TapRecord;

/// The issuers' TAC master keys (master DTK), per issuer ID and key version, as only the back
/// office holds them — each kept diversified by its issuer ID ([`IssuerTacKey`]), the step every
/// card of the issuer shares — and the card keys derived lately (`card_keys`).
#[derive(Default)]
pub struct TacKeys {
    keys: BTreeMap<([u8; 8], u8), IssuerTacKey>,
    cards: CardKeys,
}

impl std::fmt::Debug for TacKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material stays out of logs.
        f.debug_list().entries(self.keys.keys().map(|(issuer, version)| (hex::encode_upper(issuer), version))).finish()
    }
}

impl TacKeys {
    /// No keys; keeps up to [`CARD_KEYS_CACHED`](crate::CARD_KEYS_CACHED) card keys derived (a
    /// day's cards of a large network).
    pub fn new() -> Self {
        Self::default()
    }

    /// No keys; keeps up to `cards` card keys derived (at least 2): the back office, a day's cards
    /// (as many as it keeps shadows of); a service that checks a card's TAC once or twice (an
    /// over-the-air load, a closure), a few thousand.
    pub fn keeping(cards: usize) -> Self {
        TacKeys { keys: BTreeMap::new(), cards: CardKeys::with_bound(cards.max(2)) }
    }

    /// Adds (or replaces) an issuer's master TAC key (DTK) of one key version.
    pub fn add(&mut self, issuer_id: [u8; 8], key_version: u8, master: TacMasterKey) {
        self.keys.insert((issuer_id, key_version), master.for_issuer(issuer_id));
        self.cards.clear();
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
    let asn8 = record.asn8();
    let key = keys
        .cards
        .get_or_derive(card_key_id(record.issuer_id, record.key_version, asn8), || issuer_key.card_tac_key(asn8));
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

#[cfg(test)]
mod tests {
    use yitong_crypto::{Algorithm, TacMasterKey};

    use super::*;
    use crate::RecordStatus;

    const ISSUER: [u8; 8] = [0, 0, 0x10, 0, 0, 0, 0, 1];
    const DTK: [u8; 16] =
        [0x0F, 0x1E, 0x2D, 0x3C, 0x4B, 0x5A, 0x69, 0x78, 0x87, 0x96, 0xA5, 0xB4, 0xC3, 0xD2, 0xE1, 0xF0];

    /// The crate's sample exit (`record::tests::record`) of card `n`, signed with the TAC the
    /// card computes (its key diversified from the master in one go, not through the back
    /// office's kept issuer step nor its cache).
    fn signed(n: u8, master: &TacMasterKey) -> TapRecord {
        let mut record = crate::record::tests::record();
        record.status = RecordStatus::Confirmed;
        record.card_serial[9] = n;
        record.algorithm_id = master.algorithm().id();
        record.tac = Some(card_tac(&record, &master.card_tac_key(ISSUER, record.asn8())).unwrap());
        record
    }

    #[test]
    fn a_cards_kept_key_proves_its_records_and_only_its_own() {
        for algorithm in [Algorithm::Des, Algorithm::Sm4] {
            let master = TacMasterKey::new(algorithm, DTK);
            let mut keys = TacKeys::new();
            keys.add(ISSUER, 1, TacMasterKey::new(algorithm, DTK));
            let (first, second) = (signed(1, &master), signed(2, &master));
            // Derived, then kept: the same verdicts.
            for _ in 0..2 {
                assert_eq!(verify_tac(&first, &keys), Ok(()), "{algorithm:?}");
                assert_eq!(verify_tac(&second, &keys), Ok(()), "{algorithm:?}");
            }
            assert_eq!(keys.cards.len(), 2);
            // Card 2's record claimed by card 1: card 1's kept key does not prove it.
            let claimed = TapRecord { card_serial: first.card_serial, ..second.clone() };
            assert_eq!(verify_tac(&claimed, &keys), Err(TacError::Mismatch), "{algorithm:?}");
            let altered = TapRecord { amount_fen: 1, ..first.clone() };
            assert_eq!(verify_tac(&altered, &keys), Err(TacError::Mismatch), "{algorithm:?}");
            // New master keys: the kept card keys go with the old ones.
            keys.add(ISSUER, 1, TacMasterKey::new(algorithm, [0x77; 16]));
            assert_eq!(keys.cards.len(), 0);
            assert_eq!(verify_tac(&first, &keys), Err(TacError::Mismatch), "{algorithm:?}");
        }
    }

    #[test]
    fn keys_keeping_few_cards_keep_few() {
        let mut keys = TacKeys::keeping(8);
        keys.add(ISSUER, 1, TacMasterKey::new(Algorithm::Des, DTK));
        let issuer = keys.keys[&(ISSUER, 1)].card_tac_key([0; 8]);
        for n in 0..100u64 {
            keys.cards.get_or_derive(card_key_id(ISSUER, 1, n.to_be_bytes()), || issuer.clone());
        }
        assert!(keys.cards.len() <= 8, "{} keys kept", keys.cards.len());
        // Master keys replaced: the bound stays.
        keys.add(ISSUER, 2, TacMasterKey::new(Algorithm::Des, DTK));
        for n in 0..100u64 {
            keys.cards.get_or_derive(card_key_id(ISSUER, 2, n.to_be_bytes()), || issuer.clone());
        }
        assert!(keys.cards.len() <= 8, "{} keys kept", keys.cards.len());
    }

    #[test]
    fn the_kept_card_keys_are_bounded() {
        // The default bound's logic on a small one (a million keys would be a million inserts
        // and ~73 MB in a debug test).
        const BOUND: usize = 1_024;
        let cards = CardKeys::with_bound(BOUND);
        let master = TacMasterKey::new(Algorithm::Des, DTK);
        let (one, other) = (master.card_tac_key(ISSUER, [1; 8]), master.card_tac_key(ISSUER, [2; 8]));
        let derived = std::cell::Cell::new(0);
        let derive = |key: &SessionKey| {
            derived.set(derived.get() + 1);
            key.clone()
        };
        let total = BOUND as u64 + 1_000;
        for n in 0..total {
            cards.get_or_derive(card_key_id(ISSUER, 1, n.to_be_bytes()), || derive(&one));
        }
        assert_eq!(derived.get(), total);
        assert!(cards.len() <= BOUND, "{} keys kept", cards.len());
        // The latest card is kept: not derived again.
        let kept = cards.get_or_derive(card_key_id(ISSUER, 1, (total - 1).to_be_bytes()), || derive(&other));
        assert_eq!((derived.get(), kept.as_bytes()), (total, one.as_bytes()));
        // The first one is gone: derived again.
        let again = cards.get_or_derive(card_key_id(ISSUER, 1, 0u64.to_be_bytes()), || derive(&other));
        assert_eq!((derived.get(), again.as_bytes()), (total + 1, other.as_bytes()));
        // Keys of the older generation used again, round after round: still bounded.
        for n in (0..total).rev().step_by(3) {
            cards.get_or_derive(card_key_id(ISSUER, 1, n.to_be_bytes()), || derive(&one));
            assert!(cards.len() <= BOUND, "{} keys kept", cards.len());
        }
    }
}
