//! The issuers' master keys as the platform holds them: personalization of new cards (all five
//! keys), the over-the-air load host (load keys) and TAC verification (TAC keys). Loaded from key
//! files or the environment by the caller; never returned, never logged (`MasterKeys`' `Debug`
//! shows no key material).

use std::collections::BTreeMap;

use yitong_record::TacKeys;
use yitong_terminal::{IssuerKeys, SoftwareLoadHost, SoftwarePsam};

use crate::cities::City;

/// Each city issuer's master keys, by city code; the newest version issues new cards.
#[derive(Clone, Debug, Default)]
pub struct IssuerKeyring {
    /// (city code, key version) → (issuer ID, keys).
    keys: BTreeMap<(u16, u8), ([u8; 8], IssuerKeys)>,
}

impl IssuerKeyring {
    /// No keys.
    pub fn new() -> IssuerKeyring {
        IssuerKeyring::default()
    }

    /// Adds (or replaces) the keys of `city`'s issuer of one version.
    pub fn add(&mut self, city: &City, keys: IssuerKeys) {
        self.keys.insert((city.city_code(), keys.key_version), (city.issuer_id(), keys));
    }

    /// The keys new cards of `city` are personalized with: its newest version.
    pub fn for_issuing(&self, city: &City) -> Option<&IssuerKeys> {
        let code = city.city_code();
        self.keys.range((code, 0)..=(code, u8::MAX)).next_back().map(|(_, (_, keys))| keys)
    }

    /// A load host with every issuer's load keys (and nothing else).
    pub fn load_host(&self) -> SoftwareLoadHost {
        let mut host = SoftwareLoadHost::new();
        for (issuer_id, keys) in self.keys.values() {
            host.add_keys(*issuer_id, keys.key_version, keys.master.load().clone());
        }
        host
    }

    /// The service desk's security module for closing cards: every issuer's purchase and
    /// maintenance keys (and nothing else), terminal `terminal_id`, numbering from
    /// `next_transaction_number` (the platform keeps the number in its database).
    pub fn service_desk_psam(&self, terminal_id: [u8; 6], next_transaction_number: u32) -> SoftwarePsam {
        let mut psam = SoftwarePsam::new(terminal_id, next_transaction_number);
        for (issuer_id, keys) in self.keys.values() {
            psam.add_issuer(*issuer_id, keys.clone());
        }
        psam
    }

    /// Every issuer's TAC keys.
    pub fn tac_keys(&self) -> TacKeys {
        let mut tac = TacKeys::new();
        for (issuer_id, keys) in self.keys.values() {
            tac.add(*issuer_id, keys.key_version, keys.master.tac().clone());
        }
        tac
    }
}
