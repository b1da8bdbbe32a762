//! GET CHALLENGE, APPLICATION BLOCK and APPLICATION UNBLOCK: the issuer's maintenance commands,
//! protected by a MAC under the card's maintenance key (DAMK) over the command header, with the
//! challenge as IV (`docs/card-profile.md`, "Blocking and unblocking").

use rand_core::Rng;
use yitong_crypto::{mac_matches, maintenance_mac};
use yitong_profile::apdu::Command;

use crate::card::{Card, Failure, Pending, Reply};
use crate::error::CardError;
use crate::state::{Keys, Lock};
use crate::store::Store;

/// Bytes of GET CHALLENGE's answer and of the secure-messaging MAC.
const CHALLENGE_LEN: u8 = 4;

impl<S: Store, R: Rng> Card<S, R> {
    /// `00 84 00 00 04`: four random bytes, kept in RAM for the next command only.
    pub(crate) fn get_challenge(&mut self, cmd: &Command<'_>) -> Result<Reply, Failure> {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(CardError::WrongP1P2.into());
        }
        if !cmd.data.is_empty() || cmd.le != Some(u16::from(CHALLENGE_LEN)) {
            return Err(CardError::WrongLength.into());
        }
        let challenge = self.card_random();
        self.set_pending(Pending::Challenge(challenge));
        Ok(Reply::ok(&challenge))
    }

    /// `84 1E 00 <P2> 04 <MAC>`: P2 `00` blocks until APPLICATION UNBLOCK, `01` for good.
    pub(crate) fn application_block(&mut self, cmd: &Command<'_>, pending: Pending) -> Result<Reply, Failure> {
        let lock = match (cmd.p1, cmd.p2) {
            (0x00, 0x00) => Lock::Blocked,
            (0x00, 0x01) => Lock::BlockedForGood,
            _ => return Err(CardError::WrongP1P2.into()),
        };
        self.check_command_mac(cmd, pending, |keys| keys.damk)?;
        let current = self.purse().lock;
        // Blocking again changes nothing, and never turns a block for good into a temporary one.
        if current != lock && current != Lock::BlockedForGood {
            self.set_lock(lock)?;
        }
        Ok(Reply::ok(&[]))
    }

    /// `84 18 00 00 04 <MAC>`: lifts a temporary block.
    pub(crate) fn application_unblock(&mut self, cmd: &Command<'_>, pending: Pending) -> Result<Reply, Failure> {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(CardError::WrongP1P2.into());
        }
        // Under the unblock key (DAUK), which gates do not hold: a gate blocks, only the service
        // desk unblocks (profile choice).
        self.check_command_mac(cmd, pending, |keys| keys.dauk)?;
        match self.purse().lock {
            Lock::Open => {}
            Lock::Blocked => self.set_lock(Lock::Open)?,
            Lock::BlockedForGood => return Err(CardError::ConditionsNotSatisfied.into()),
        }
        Ok(Reply::ok(&[]))
    }

    /// Checks the command's MAC, under the card key `key` picks, against the challenge the
    /// previous command answered. A missing challenge or a wrong MAC changes nothing; either way
    /// the challenge is spent.
    fn check_command_mac(
        &self,
        cmd: &Command<'_>,
        pending: Pending,
        key: impl FnOnce(&Keys) -> yitong_crypto::Key16,
    ) -> Result<(), CardError> {
        let (Ok(mac), None) = (<[u8; 4]>::try_from(cmd.data), cmd.le) else {
            return Err(CardError::WrongLength);
        };
        self.require_app()?;
        let Pending::Challenge(challenge) = pending else {
            return Err(CardError::ConditionsNotSatisfied);
        };
        let keys = Keys::read(self.image()).map_err(|_| CardError::ConditionsNotSatisfied)?;
        let header = [cmd.cla, cmd.ins, cmd.p1, cmd.p2, CHALLENGE_LEN];
        let key = yitong_crypto::Zeroizing::new(key(&keys));
        if mac_matches(&maintenance_mac(keys.algorithm, &key, challenge, header), &mac) {
            Ok(())
        } else {
            Err(CardError::SecureMessagingWrong)
        }
    }
}
