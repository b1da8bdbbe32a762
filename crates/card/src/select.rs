//! SELECT: the PPSE directory, the ADF by AID or FID, and their FCIs.

use alloc::vec::Vec;

use rand_core::Rng;
use yitong_profile::apdu::{Command, AID_TUNION, FID_ADF, FID_MF, LABEL_TUNION, PPSE};
use yitong_profile::StatusWord;

use crate::card::{Card, Failure, Reply, Selected};
use crate::error::CardError;
use crate::layout;
use crate::store::Store;

/// Shortest AID prefix accepted for a partial SELECT (ISO 7816-5 RID length).
const PARTIAL_AID_MIN: usize = 5;

impl<S: Store, R: Rng> Card<S, R> {
    pub(crate) fn select(&mut self, cmd: &Command<'_>) -> Result<Reply, Failure> {
        let with_fci = match cmd.p2 {
            0x00 => true,
            0x0C => false,
            _ => return Err(CardError::WrongP1P2.into()),
        };
        let reply = match cmd.p1 {
            0x04 => {
                if cmd.data.is_empty() || cmd.data.len() > 16 {
                    return Err(CardError::WrongLength.into());
                }
                if cmd.data == PPSE {
                    self.selected = Selected::Ppse;
                    Reply::ok(&ppse_fci())
                } else if cmd.data.len() >= PARTIAL_AID_MIN && AID_TUNION.starts_with(cmd.data) {
                    self.select_app()
                } else {
                    return Err(CardError::FileNotFound.into());
                }
            }
            0x00 => {
                let fid: [u8; 2] = cmd.data.try_into().map_err(|_| CardError::WrongLength)?;
                match u16::from_be_bytes(fid) {
                    FID_MF => {
                        self.selected = Selected::None;
                        Reply::ok(&[])
                    }
                    FID_ADF => self.select_app(),
                    _ => return Err(CardError::FileNotFound.into()),
                }
            }
            _ => return Err(CardError::WrongP1P2.into()),
        };
        Ok(if with_fci { reply } else { Reply { data: Vec::new(), sw: reply.sw } })
    }

    fn select_app(&mut self) -> Reply {
        self.selected = Selected::App;
        let sw = if self.purse().lock.is_locked() { StatusWord::APPLICATION_LOCKED } else { StatusWord::OK };
        Reply { data: self.adf_fci(), sw }
    }

    /// `6F { 84 AID, A5 { 9F0C EF15 } }`: the terminal learns serial, issuer and validity here.
    fn adf_fci(&self) -> Vec<u8> {
        let ef15 = &self.image()[layout::ISSUER..layout::HOLDER];
        let mut prop = Vec::new();
        tlv(&mut prop, &[0x9F, 0x0C], ef15);
        let mut body = Vec::new();
        tlv(&mut body, &[0x84], &AID_TUNION);
        tlv(&mut body, &[0xA5], &prop);
        let mut fci = Vec::new();
        tlv(&mut fci, &[0x6F], &body);
        fci
    }
}

/// `6F { 84 PPSE, A5 { BF0C { 61 { 4F AID, 50 label, 87 priority } } } }`.
fn ppse_fci() -> Vec<u8> {
    let mut entry = Vec::new();
    tlv(&mut entry, &[0x4F], &AID_TUNION);
    tlv(&mut entry, &[0x50], LABEL_TUNION);
    tlv(&mut entry, &[0x87], &[0x01]);
    let mut dir = Vec::new();
    tlv(&mut dir, &[0x61], &entry);
    let mut prop = Vec::new();
    tlv(&mut prop, &[0xBF, 0x0C], &dir);
    let mut body = Vec::new();
    tlv(&mut body, &[0x84], PPSE);
    tlv(&mut body, &[0xA5], &prop);
    let mut fci = Vec::new();
    tlv(&mut fci, &[0x6F], &body);
    fci
}

/// Appends a BER-TLV with a one-byte length; every FCI of the profile is shorter than 128 bytes.
fn tlv(out: &mut Vec<u8>, tag: &[u8], value: &[u8]) {
    let len = u8::try_from(value.len()).ok().filter(|l| *l < 0x80).expect("FCI values are short");
    out.extend_from_slice(tag);
    out.push(len);
    out.extend_from_slice(value);
}
