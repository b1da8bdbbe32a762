//! The money commands: INITIALIZE, CREDIT FOR LOAD, UPDATE CAPP DATA CACHE, DEBIT FOR (CAPP)
//! PURCHASE and GET TRANSACTION PROVE.

use rand_core::Rng;
use yitong_crypto::inputs::{self, Transaction};
use yitong_crypto::{mac_matches, tac_key, SessionKey};
use yitong_profile::apdu::{transaction_type, Command, LoadInit, PurchaseInit, KEY_INDEX, SFI_TRANSIT, SFI_TRIP_LOG};
use yitong_profile::files::{LogRecord, TRANSIT_RECORDS_MAX, TRANSIT_RECORD_LEN};
use yitong_profile::Reader;

use crate::card::{Card, Failure, LoadPending, Pending, PurchasePending, Reply};
use crate::error::CardError;
use crate::journal::Journal;
use crate::layout;
use crate::state::{Keys, Proof, Purse, Ring};
use crate::store::Store;

impl<S: Store, R: Rng> Card<S, R> {
    pub(crate) fn initialize(&mut self, cmd: &Command<'_>) -> Result<Reply, Failure> {
        if cmd.p2 != 0x02 || !matches!(cmd.p1, 0x00 | 0x01 | 0x03) {
            return Err(CardError::WrongP1P2.into());
        }
        let mut r = Reader::new(cmd.data);
        let (Ok(key_index), Ok(amount_fen), Ok(terminal_id), true) =
            (r.u8(), r.u32(), r.array::<6>(), cmd.data.len() == 11)
        else {
            return Err(CardError::WrongLength.into());
        };
        self.require_app()?;
        let purse = self.purse();
        if purse.lock.is_locked() {
            return Err(CardError::Locked.into());
        }
        if key_index != KEY_INDEX {
            return Err(CardError::KeyIndexNotSupported.into());
        }
        let keys = Keys::read(self.image()).map_err(|_| CardError::ConditionsNotSatisfied)?;
        let card_random = self.card_random();
        if cmd.p1 == 0x00 {
            Self::check_le(cmd, 16)?;
            if purse.online_counter == u16::MAX {
                return Err(CardError::CounterAtMaximum.into());
            }
            if i64::from(purse.balance_fen) + i64::from(amount_fen) > i64::from(purse.balance_limit_fen) {
                return Err(CardError::ConditionsNotSatisfied.into());
            }
            let session_key = SessionKey::load(keys.algorithm, &keys.dlk, card_random, purse.online_counter);
            let t = Transaction {
                amount_fen,
                transaction_type: transaction_type::EP_LOAD,
                terminal_id,
                date: [0; 4],
                time: [0; 3],
            };
            let mac1 = inputs::load_mac1(&session_key, purse.balance_fen as u32, &t);
            self.set_pending(Pending::Load(LoadPending {
                amount_fen,
                terminal_id,
                session_key,
                online_counter: purse.online_counter,
            }));
            let answer = LoadInit {
                balance_fen: purse.balance_fen,
                online_counter: purse.online_counter,
                key_version: keys.key_version,
                algorithm_id: keys.algorithm.id(),
                card_random,
                mac1,
            };
            return Ok(Reply::ok(&answer.encode()));
        }
        Self::check_le(cmd, 15)?;
        if purse.offline_counter == u16::MAX {
            return Err(CardError::CounterAtMaximum.into());
        }
        if purse.available_fen() < i64::from(amount_fen) {
            return Err(CardError::InsufficientBalance.into());
        }
        self.set_pending(Pending::Purchase(PurchasePending {
            capp: cmd.p1 == 0x03,
            amount_fen,
            terminal_id,
            card_random,
            offline_counter: purse.offline_counter,
            transit: None,
            trip_log: None,
        }));
        let answer = PurchaseInit {
            balance_fen: purse.balance_fen,
            offline_counter: purse.offline_counter,
            overdraft_limit_fen: purse.overdraft_limit_fen,
            key_version: keys.key_version,
            algorithm_id: keys.algorithm.id(),
            card_random,
        };
        Ok(Reply::ok(&answer.encode()))
    }

    pub(crate) fn credit_for_load(&mut self, cmd: &Command<'_>, pending: Pending) -> Result<Reply, Failure> {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(CardError::WrongP1P2.into());
        }
        let mut r = Reader::new(cmd.data);
        let (Ok(date), Ok(time), Ok(mac2), true) =
            (r.array::<4>(), r.array::<3>(), r.array::<4>(), cmd.data.len() == 11)
        else {
            return Err(CardError::WrongLength.into());
        };
        Self::check_le(cmd, 4)?;
        let Pending::Load(load) = pending else {
            return Err(CardError::ConditionsNotSatisfied.into());
        };
        let t = Transaction {
            amount_fen: load.amount_fen,
            transaction_type: transaction_type::EP_LOAD,
            terminal_id: load.terminal_id,
            date,
            time,
        };
        if !mac_matches(&inputs::load_mac2(&load.session_key, &t), &mac2) {
            return Err(CardError::MacError.into());
        }
        let image = self.image();
        let keys = Keys::read(image).map_err(|_| CardError::ConditionsNotSatisfied)?;
        let mut purse = self.purse();
        assert_eq!(purse.online_counter, load.online_counter, "counter moved inside a transaction");
        let balance_after = purse
            .balance_fen
            .checked_add_unsigned(load.amount_fen)
            .filter(|b| i64::from(*b) <= i64::from(purse.balance_limit_fen))
            .ok_or(CardError::ConditionsNotSatisfied)?;
        let tac = inputs::load_tac(&tac_key(keys.algorithm, &keys.dtk), balance_after as u32, load.online_counter, &t);
        let counter = load.online_counter + 1;
        purse.balance_fen = balance_after;
        purse.online_counter = counter;

        let log = LogRecord {
            counter,
            overdraft_limit_fen: purse.overdraft_limit_fen,
            amount_fen: load.amount_fen,
            transaction_type: transaction_type::EP_LOAD,
            terminal_id: load.terminal_id,
            date,
            time,
        };
        let proof = Proof { transaction_type: transaction_type::EP_LOAD, counter, mac2, tac };
        let journal = stage_commit(image, &purse, &log, &proof, layout::PROOF_ONLINE);
        self.commit(journal)?;
        Ok(Reply::ok(&tac))
    }

    pub(crate) fn update_capp_data_cache(&mut self, cmd: &Command<'_>, pending: Pending) -> Result<Reply, Failure> {
        if cmd.p2 & 0x07 != 0 {
            return Err(CardError::WrongP1P2.into());
        }
        let Pending::Purchase(mut purchase) = pending else {
            return Err(CardError::ConditionsNotSatisfied.into());
        };
        if !purchase.capp {
            return Err(CardError::ConditionsNotSatisfied.into());
        }
        match cmd.p2 >> 3 {
            SFI_TRANSIT => {
                if cmd.p1 == 0 || usize::from(cmd.p1) > TRANSIT_RECORDS_MAX {
                    return Err(CardError::RecordNotFound.into());
                }
                let record: [u8; TRANSIT_RECORD_LEN] = cmd.data.try_into().map_err(|_| CardError::WrongLength)?;
                purchase.transit = Some((cmd.p1, record));
            }
            SFI_TRIP_LOG => {
                if cmd.p1 != 0 {
                    return Err(CardError::WrongP1P2.into());
                }
                purchase.trip_log = Some(cmd.data.try_into().map_err(|_| CardError::WrongLength)?);
            }
            _ => return Err(CardError::FileNotFound.into()),
        }
        self.set_pending(Pending::Purchase(purchase));
        Ok(Reply::ok(&[]))
    }

    pub(crate) fn debit_for_purchase(&mut self, cmd: &Command<'_>, pending: Pending) -> Result<Reply, Failure> {
        if cmd.p1 != 0x01 || cmd.p2 != 0x00 {
            return Err(CardError::WrongP1P2.into());
        }
        let mut r = Reader::new(cmd.data);
        let (Ok(ttn), Ok(date), Ok(time), Ok(mac1), true) =
            (r.u32(), r.array::<4>(), r.array::<3>(), r.array::<4>(), cmd.data.len() == 15)
        else {
            return Err(CardError::WrongLength.into());
        };
        Self::check_le(cmd, 8)?;
        let Pending::Purchase(purchase) = pending else {
            return Err(CardError::ConditionsNotSatisfied.into());
        };
        let image = self.image();
        let keys = Keys::read(image).map_err(|_| CardError::ConditionsNotSatisfied)?;
        let session_key =
            SessionKey::purchase(keys.algorithm, &keys.dpk, purchase.card_random, purchase.offline_counter, ttn);
        let transaction_type =
            if purchase.capp { transaction_type::CAPP_PURCHASE } else { transaction_type::EP_PURCHASE };
        let t = Transaction {
            amount_fen: purchase.amount_fen,
            transaction_type,
            terminal_id: purchase.terminal_id,
            date,
            time,
        };
        if !mac_matches(&inputs::purchase_mac1(&session_key, &t), &mac1) {
            return Err(CardError::MacError.into());
        }
        let mut purse = self.purse();
        assert_eq!(purse.offline_counter, purchase.offline_counter, "counter moved inside a transaction");
        let balance_after = purse
            .balance_fen
            .checked_sub_unsigned(purchase.amount_fen)
            .filter(|b| i64::from(*b) >= -i64::from(purse.overdraft_limit_fen))
            .ok_or(CardError::InsufficientBalance)?;
        let mac2 = inputs::purchase_mac2(&session_key, purchase.amount_fen);
        let tac = inputs::purchase_tac(&tac_key(keys.algorithm, &keys.dtk), ttn, &t);
        let counter = purchase.offline_counter + 1;
        purse.balance_fen = balance_after;
        purse.offline_counter = counter;

        let log = LogRecord {
            counter,
            overdraft_limit_fen: purse.overdraft_limit_fen,
            amount_fen: purchase.amount_fen,
            transaction_type,
            terminal_id: purchase.terminal_id,
            date,
            time,
        };
        let proof = Proof { transaction_type, counter, mac2, tac };
        let mut journal = stage_commit(image, &purse, &log, &proof, layout::PROOF_OFFLINE);
        // The composite purchase's cached records commit with the debit.
        if let Some((record, bytes)) = purchase.transit {
            journal.stage(layout::TRANSIT + (usize::from(record) - 1) * TRANSIT_RECORD_LEN, &bytes);
        }
        if let Some(bytes) = purchase.trip_log {
            Ring::TRIP_LOG.stage_append(image, &mut journal, &bytes);
        }
        self.commit(journal)?;
        let mut answer = [0u8; 8];
        answer[..4].copy_from_slice(&tac);
        answer[4..].copy_from_slice(&mac2);
        Ok(Reply::ok(&answer))
    }

    pub(crate) fn get_transaction_prove(&mut self, cmd: &Command<'_>) -> Result<Reply, Failure> {
        let proof_at = match (cmd.p1, cmd.p2) {
            (0x00, transaction_type::EP_LOAD) => layout::PROOF_ONLINE,
            (0x00, transaction_type::EP_PURCHASE | transaction_type::CAPP_PURCHASE) => layout::PROOF_OFFLINE,
            _ => return Err(CardError::WrongP1P2.into()),
        };
        let counter: [u8; 2] = cmd.data.try_into().map_err(|_| CardError::WrongLength)?;
        Self::check_le(cmd, 8)?;
        self.require_app()?;
        let proof = Proof::read(self.image(), proof_at)
            .filter(|p| p.transaction_type == cmd.p2 && p.counter == u16::from_be_bytes(counter))
            .ok_or(CardError::ProofUnavailable)?;
        let mut answer = [0u8; 8];
        answer[..4].copy_from_slice(&proof.mac2);
        answer[4..].copy_from_slice(&proof.tac);
        Ok(Reply::ok(&answer))
    }
}

/// Stages what every money commit writes: the purse, its EF18 record, and the proof GET
/// TRANSACTION PROVE will answer.
fn stage_commit(image: &[u8], purse: &Purse, log: &LogRecord, proof: &Proof, proof_at: usize) -> Journal {
    let mut journal = Journal::new();
    purse.stage(&mut journal);
    Ring::LOG.stage_append(image, &mut journal, &log.encode());
    proof.stage(&mut journal, proof_at);
    journal
}
