//! The persistent state of the application, read from and staged into the image.

use yitong_crypto::{Algorithm, Key16};
use yitong_profile::files::{LOG_RECORDS_MAX, LOG_RECORD_LEN, TRIP_LOG_RECORDS_MAX, TRIP_LOG_RECORD_LEN};
use yitong_profile::Reader;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::journal::Journal;
use crate::layout::{self, IMAGE_LEN, KEYS, KEYS_LEN, LOG, PURSE, PURSE_LEN, TRIP_LOG};

/// Why an image cannot be powered up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Not a card image of this project, or of another layout version.
    NotAnImage,
    /// The right header, but a field holds a value this code never writes.
    Corrupt(&'static str),
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ImageError::NotAnImage => write!(f, "not a Yitong card image (layout version {})", layout::VERSION),
            ImageError::Corrupt(what) => write!(f, "damaged card image: {what}"),
        }
    }
}

/// Checks what the card relies on before it trusts an image.
pub fn validate(image: &[u8]) -> Result<(), ImageError> {
    if image.len() != IMAGE_LEN || image[..4] != layout::MAGIC || image[4] != layout::VERSION {
        return Err(ImageError::NotAnImage);
    }
    Keys::read(image)?;
    let purse = Purse::read(image);
    if purse.overdraft_limit_fen > 0xFF_FFFF || Lock::from_byte(image[PURSE + 12]).is_none() {
        return Err(ImageError::Corrupt("purse"));
    }
    for ring in [Ring::LOG, Ring::TRIP_LOG] {
        let (newest, count) = ring.head(image);
        if newest >= ring.max || count > ring.max {
            return Err(ImageError::Corrupt("ring head"));
        }
    }
    Ok(())
}

/// The application's keys, diversified for this card; wiped from RAM when dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Keys {
    #[zeroize(skip)]
    pub algorithm: Algorithm,
    pub key_version: u8,
    pub dlk: Key16,
    pub dpk: Key16,
    pub dtk: Key16,
    /// Application maintenance key (profile choice): APPLICATION BLOCK MACs.
    pub damk: Key16,
    /// Application unblock key (profile choice): APPLICATION UNBLOCK MACs.
    pub dauk: Key16,
}

impl Keys {
    pub fn read(image: &[u8]) -> Result<Self, ImageError> {
        let mut r = Reader::new(&image[KEYS..KEYS + KEYS_LEN]);
        let bad = |_| ImageError::Corrupt("keys");
        let algorithm = Algorithm::from_id(r.u8().map_err(bad)?).map_err(|_| ImageError::Corrupt("algorithm ID"))?;
        Ok(Keys {
            algorithm,
            key_version: r.u8().map_err(bad)?,
            dlk: r.array().map_err(bad)?,
            dpk: r.array().map_err(bad)?,
            dtk: r.array().map_err(bad)?,
            damk: r.array().map_err(bad)?,
            dauk: r.array().map_err(bad)?,
        })
    }

    pub fn encode(&self) -> [u8; KEYS_LEN] {
        let mut b = [0u8; KEYS_LEN];
        b[0] = self.algorithm.id();
        b[1] = self.key_version;
        b[2..18].copy_from_slice(&self.dlk);
        b[18..34].copy_from_slice(&self.dpk);
        b[34..50].copy_from_slice(&self.dtk);
        b[50..66].copy_from_slice(&self.damk);
        b[66..].copy_from_slice(&self.dauk);
        b
    }
}

/// Balance, counters and limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Purse {
    /// Signed: negative while the overdraft is in use.
    pub balance_fen: i32,
    pub overdraft_limit_fen: u32,
    pub online_counter: u16,
    pub offline_counter: u16,
    pub lock: Lock,
    /// Highest balance a load may reach.
    pub balance_limit_fen: u32,
}

impl Purse {
    pub fn read(image: &[u8]) -> Self {
        let b = &image[PURSE..PURSE + PURSE_LEN];
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Purse {
            balance_fen: i32::from_be_bytes(word(0)),
            overdraft_limit_fen: u32::from_be_bytes(word(4)),
            online_counter: u16::from_be_bytes([b[8], b[9]]),
            offline_counter: u16::from_be_bytes([b[10], b[11]]),
            // validate() refused any other byte before the card started.
            lock: Lock::from_byte(b[12]).unwrap_or(Lock::BlockedForGood),
            balance_limit_fen: u32::from_be_bytes(word(13)),
        }
    }

    pub fn encode(&self) -> [u8; PURSE_LEN] {
        let mut b = [0u8; PURSE_LEN];
        b[..4].copy_from_slice(&self.balance_fen.to_be_bytes());
        b[4..8].copy_from_slice(&self.overdraft_limit_fen.to_be_bytes());
        b[8..10].copy_from_slice(&self.online_counter.to_be_bytes());
        b[10..12].copy_from_slice(&self.offline_counter.to_be_bytes());
        b[12] = self.lock as u8;
        b[13..].copy_from_slice(&self.balance_limit_fen.to_be_bytes());
        b
    }

    /// What a purchase may take: balance plus the overdraft limit.
    pub fn available_fen(&self) -> i64 {
        i64::from(self.balance_fen) + i64::from(self.overdraft_limit_fen)
    }

    pub fn stage(&self, journal: &mut Journal) {
        journal.stage(PURSE, &self.encode());
    }
}

/// Whether the issuer blocked the application (APPLICATION BLOCK).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Lock {
    /// In use.
    Open = 0,
    /// Blocked until APPLICATION UNBLOCK.
    Blocked = 1,
    /// Blocked for good (APPLICATION BLOCK with P2 `01`).
    BlockedForGood = 2,
}

impl Lock {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Lock::Open),
            1 => Some(Lock::Blocked),
            2 => Some(Lock::BlockedForGood),
            _ => None,
        }
    }

    /// Whether the application refuses money commands.
    pub fn is_locked(self) -> bool {
        self != Lock::Open
    }
}

/// The proof of the last transaction of one counter, for GET TRANSACTION PROVE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    pub transaction_type: u8,
    /// The transaction's number: the counter INITIALIZE returned, plus one.
    pub counter: u16,
    pub mac2: [u8; 4],
    pub tac: [u8; 4],
}

impl Proof {
    pub fn read(image: &[u8], at: usize) -> Option<Self> {
        let b = &image[at..at + layout::PROOF_LEN];
        (b[0] == 1).then(|| Proof {
            transaction_type: b[1],
            counter: u16::from_be_bytes([b[2], b[3]]),
            mac2: [b[4], b[5], b[6], b[7]],
            tac: [b[8], b[9], b[10], b[11]],
        })
    }

    pub fn stage(&self, journal: &mut Journal, at: usize) {
        let mut b = [0u8; layout::PROOF_LEN];
        b[0] = 1;
        b[1] = self.transaction_type;
        b[2..4].copy_from_slice(&self.counter.to_be_bytes());
        b[4..8].copy_from_slice(&self.mac2);
        b[8..].copy_from_slice(&self.tac);
        journal.stage(at, &b);
    }
}

/// A cyclic file: a newest-record index and a count, then the records.
#[derive(Clone, Copy)]
pub struct Ring {
    base: usize,
    record_len: usize,
    max: u8,
}

impl Ring {
    pub const LOG: Ring = Ring { base: LOG, record_len: LOG_RECORD_LEN, max: LOG_RECORDS_MAX as u8 };
    pub const TRIP_LOG: Ring =
        Ring { base: TRIP_LOG, record_len: TRIP_LOG_RECORD_LEN, max: TRIP_LOG_RECORDS_MAX as u8 };

    fn head(&self, image: &[u8]) -> (u8, u8) {
        (image[self.base], image[self.base + 1])
    }

    fn slot(&self, index: u8) -> usize {
        self.base + 2 + usize::from(index) * self.record_len
    }

    /// Record `n`, 1 being the newest; `None` past the records written.
    pub fn record<'a>(&self, image: &'a [u8], n: u8) -> Option<&'a [u8]> {
        let (newest, count) = self.head(image);
        if n == 0 || n > count {
            return None;
        }
        let index = (u16::from(newest) + u16::from(self.max) - u16::from(n - 1)) % u16::from(self.max);
        let at = self.slot(index as u8);
        Some(&image[at..at + self.record_len])
    }

    /// Stages `record` as the new newest record, overwriting the oldest when full.
    pub fn stage_append(&self, image: &[u8], journal: &mut Journal, record: &[u8]) {
        assert_eq!(record.len(), self.record_len);
        let (newest, count) = self.head(image);
        let index = if count == 0 { 0 } else { (newest + 1) % self.max };
        journal.stage(self.slot(index), record);
        journal.stage(self.base, &[index, (count + 1).min(self.max)]);
    }
}
