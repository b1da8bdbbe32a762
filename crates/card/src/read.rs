//! READ BINARY, READ RECORD and GET BALANCE: what any reader may see without keys.

use rand_core::Rng;
use yitong_profile::apdu::{Command, SFI_HOLDER, SFI_ISSUER, SFI_LOG, SFI_MANAGEMENT, SFI_TRANSIT, SFI_TRIP_LOG};
use yitong_profile::files::{TRANSIT_RECORDS_MAX, TRANSIT_RECORD_LEN};

use crate::card::{Card, Failure, Reply};
use crate::error::CardError;
use crate::layout;
use crate::state::Ring;
use crate::store::Store;

impl<S: Store, R: Rng> Card<S, R> {
    pub(crate) fn read_binary(&mut self, cmd: &Command<'_>) -> Result<Reply, Failure> {
        if cmd.p1 & 0x80 == 0 || cmd.p1 & 0x60 != 0 {
            return Err(CardError::WrongP1P2.into());
        }
        if !cmd.data.is_empty() {
            return Err(CardError::WrongLength.into());
        }
        self.require_app()?;
        let file = match cmd.p1 & 0x1F {
            SFI_ISSUER => layout::ISSUER..layout::HOLDER,
            SFI_HOLDER => layout::HOLDER..layout::MANAGEMENT,
            SFI_MANAGEMENT => layout::MANAGEMENT..layout::KEYS,
            SFI_LOG | SFI_TRANSIT | SFI_TRIP_LOG => return Err(CardError::IncompatibleFile.into()),
            _ => return Err(CardError::FileNotFound.into()),
        };
        let bytes = &self.image()[file];
        let offset = usize::from(cmd.p2);
        let rest = bytes.get(offset..).ok_or(CardError::WrongOffset)?;
        let le = usize::from(cmd.le.unwrap_or(256));
        Ok(Reply::ok(&rest[..rest.len().min(le)]))
    }

    pub(crate) fn read_record(&mut self, cmd: &Command<'_>) -> Result<Reply, Failure> {
        if cmd.p2 & 0x07 != 0x04 || cmd.p1 == 0 {
            return Err(CardError::WrongP1P2.into());
        }
        if !cmd.data.is_empty() {
            return Err(CardError::WrongLength.into());
        }
        self.require_app()?;
        let image = self.image();
        let record = match cmd.p2 >> 3 {
            SFI_LOG => Ring::LOG.record(image, cmd.p1),
            SFI_TRIP_LOG => Ring::TRIP_LOG.record(image, cmd.p1),
            SFI_TRANSIT if usize::from(cmd.p1) <= TRANSIT_RECORDS_MAX => {
                let at = layout::TRANSIT + (usize::from(cmd.p1) - 1) * TRANSIT_RECORD_LEN;
                Some(&image[at..at + TRANSIT_RECORD_LEN])
            }
            SFI_TRANSIT => None,
            SFI_ISSUER | SFI_HOLDER | SFI_MANAGEMENT => return Err(CardError::IncompatibleFile.into()),
            _ => return Err(CardError::FileNotFound.into()),
        };
        let record = record.ok_or(CardError::RecordNotFound)?;
        Self::check_le(cmd, record.len())?;
        Ok(Reply::ok(record))
    }

    pub(crate) fn get_balance(&mut self, cmd: &Command<'_>) -> Result<Reply, Failure> {
        if cmd.p2 != 0x02 || cmd.p1 > 0x02 {
            return Err(CardError::WrongP1P2.into());
        }
        if !cmd.data.is_empty() {
            return Err(CardError::WrongLength.into());
        }
        Self::check_le(cmd, 4)?;
        self.require_app()?;
        let purse = self.purse();
        // P1 02, the balance limit, is a profile choice: it tells a refused load its headroom.
        let value = match cmd.p1 {
            0x00 => purse.balance_fen.to_be_bytes(),
            0x01 => purse.overdraft_limit_fen.to_be_bytes(),
            _ => purse.balance_limit_fen.to_be_bytes(),
        };
        Ok(Reply::ok(&value))
    }
}
