use alloc::vec;
use alloc::vec::Vec;

use yitong_crypto::MasterKeys;
use yitong_profile::files::{IssuerData, HOLDER_LEN, MANAGEMENT_LEN};

use crate::layout::{self, IMAGE_LEN};
use crate::state::{Keys, Lock, Purse};

/// Everything written into a new card at issuance.
#[derive(Clone)]
pub struct CardSpec {
    /// EF15.
    pub issuer: IssuerData,
    /// EF16 (zeros on an anonymous card).
    pub holder: [u8; HOLDER_LEN],
    /// EF17.
    pub management: [u8; MANAGEMENT_LEN],
    /// The issuer's master keys; the card receives its diversified keys (load, purchase, TAC and
    /// maintenance).
    pub master_keys: MasterKeys,
    /// Version of the keys, reported by INITIALIZE.
    pub key_version: u8,
    /// Overdraft limit in fen (at most `FFFFFF`).
    pub overdraft_limit_fen: u32,
    /// Highest balance a load may reach, in fen.
    pub balance_limit_fen: u32,
}

/// Default balance limit: 1,000 yuan, as city cards commonly cap it (profile choice).
pub const BALANCE_LIMIT_FEN_DEFAULT: u32 = 100_000;
/// Largest overdraft limit the 3-byte field carries.
pub const OVERDRAFT_LIMIT_FEN_MAX: u32 = 0xFF_FFFF;

impl CardSpec {
    /// An anonymous card of `issuer` with no overdraft and the default balance limit.
    pub fn new(issuer: IssuerData, master_keys: MasterKeys, key_version: u8) -> Self {
        CardSpec {
            issuer,
            holder: [0; HOLDER_LEN],
            management: [0; MANAGEMENT_LEN],
            master_keys,
            key_version,
            overdraft_limit_fen: 0,
            balance_limit_fen: BALANCE_LIMIT_FEN_DEFAULT,
        }
    }

    /// A new card's image: zero balance and counters, empty logs, no open trip.
    ///
    /// # Panics
    /// When the overdraft limit exceeds [`OVERDRAFT_LIMIT_FEN_MAX`]; callers check it.
    pub fn personalize(&self) -> Vec<u8> {
        assert!(self.overdraft_limit_fen <= OVERDRAFT_LIMIT_FEN_MAX);
        let mut image = vec![0u8; IMAGE_LEN];
        image[..4].copy_from_slice(&layout::MAGIC);
        image[4] = layout::VERSION;
        image[layout::ISSUER..layout::HOLDER].copy_from_slice(&self.issuer.encode());
        image[layout::HOLDER..layout::MANAGEMENT].copy_from_slice(&self.holder);
        image[layout::MANAGEMENT..layout::KEYS].copy_from_slice(&self.management);
        let k = self.master_keys.for_card(self.issuer.issuer_id, self.issuer.asn8());
        let keys = Keys {
            algorithm: self.master_keys.algorithm(),
            key_version: self.key_version,
            dlk: k.dlk,
            dpk: k.dpk,
            dtk: k.dtk,
            damk: k.damk,
            dauk: k.dauk,
        };
        image[layout::KEYS..layout::PURSE].copy_from_slice(&keys.encode());
        let purse = Purse {
            balance_fen: 0,
            overdraft_limit_fen: self.overdraft_limit_fen,
            online_counter: 0,
            offline_counter: 0,
            lock: Lock::Open,
            balance_limit_fen: self.balance_limit_fen,
        };
        image[layout::PURSE..layout::LOG].copy_from_slice(&purse.encode());
        image
    }
}
