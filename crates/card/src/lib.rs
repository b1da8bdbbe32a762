//! The transit e-purse application that a phone's secure element carries, as a state machine fed
//! raw command APDUs.
//!
//! The principal type is [`Card`]: [`Card::process`] takes a C-APDU and returns the R-APDU, per
//! the T-Union / PBOC e-purse profile (`docs/card-profile.md`): PPSE and ADF selection, the
//! EF15/16/17/18/1A/1E files, GET BALANCE, load, purchase, composite purchase, GET
//! TRANSACTION PROVE, and GET CHALLENGE with APPLICATION BLOCK / UNBLOCK under secure messaging,
//! with every status word of the profile. Its state lives in a [`Store`] —
//! the secure element's non-volatile memory — and every money command commits balance,
//! counter, EF18 log and cached EF1A/EF1E records through a journal, so that a power loss at any
//! write leaves exactly the old or exactly the new state.
//!
//! The crate does no I/O, takes its randomness as an input, and is `no_std` (with `alloc`): it
//! could run on the secure element. A reader, a vpcd socket or a file around it is somebody
//! else's job. Cards are made by [`CardSpec::personalize`].
//!
//! ```
//! use yitong_card::{Card, CardSpec, MasterKeys, MemStore};
//! use yitong_crypto::Algorithm;
//! use yitong_profile::files::IssuerData;
//!
//! let spec = CardSpec {
//!     issuer: IssuerData {
//!         issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1], app_type: 2, app_version: 1,
//!         serial: [0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
//!         valid_from: [0x20, 0x26, 1, 1], valid_to: [0x20, 0x36, 0x12, 0x31],
//!     },
//!     holder: [0; 55], management: [0; 60],
//!     master_keys: MasterKeys::new(Algorithm::Des, [1; 16], [2; 16], [3; 16], [4; 16], [5; 16]),
//!     key_version: 1, overdraft_limit_fen: 0, balance_limit_fen: 100_000,
//! };
//! let rng = yitong_card::testing::CountingRng(0); // a real card uses its TRNG
//! let mut card = Card::power_on(MemStore::new(spec.personalize()), rng).unwrap();
//! let fci = card.process(&[0x00, 0xA4, 0x04, 0x00, 0x08, 0xA0, 0, 0, 0x06, 0x32, 1, 1, 5]).unwrap();
//! assert_eq!(fci[fci.len() - 2..], [0x90, 0x00]);
//! assert_eq!(card.process(&[0x80, 0x5C, 0x00, 0x02, 0x04]).unwrap(), [0, 0, 0, 0, 0x90, 0x00]);
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod card;
mod error;
mod journal;
mod layout;
mod maintenance;
mod personalize;
mod read;
mod select;
mod state;
mod store;
pub mod testing;
mod transaction;

#[cfg(test)]
mod maintenance_tests;
#[cfg(test)]
mod tests;

pub use card::{Card, PowerOnError};
pub use error::CardError;
pub use layout::IMAGE_LEN;
pub use personalize::{CardSpec, BALANCE_LIMIT_FEN_DEFAULT, OVERDRAFT_LIMIT_FEN_MAX};
pub use state::ImageError;
pub use store::{MemStore, PowerLoss, Store, TearingStore};
pub use yitong_crypto::MasterKeys;
