//! Cryptography of the transit e-purse: key diversification, session keys, MACs and TACs.
//!
//! Both ends of a transaction use this crate: the card (`yitong-card`) to make MAC1/MAC2/TAC,
//! the terminal's security module and the back office to check them. It implements the rules of
//! the card profile (`docs/card-profile.md`) for the two algorithm families a card announces in
//! its algorithm ID byte: DES/3DES (`00`) and SM4 (`04`, profile choice). Ciphers and the CBC-MAC
//! come from RustCrypto (`des`, `sm4`, `cbc-mac`); nothing here implements a cipher.
//!
//! The principal types are [`Algorithm`], the purpose-typed [`MasterKey`]s (load, purchase, TAC,
//! maintenance: each terminal role holds only its own), [`SessionKey`] and the MAC input builders
//! in [`inputs`]; [`IssuerTacKey`] keeps the issuer's step of a card's TAC key for the back office,
//! which checks the TACs of many cards. Key material is zeroized on drop and never `Copy`; MACs are compared in constant
//! time with [`mac_matches`].
//! The crate does no I/O and is `no_std`.
//!
//! ```
//! use yitong_crypto::{Algorithm, SessionKey};
//! let dlk = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
//!            0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11];
//! let key = SessionKey::load(Algorithm::Des, &dlk, [0x11, 0x22, 0x33, 0x44], 0);
//! assert_eq!(key.as_bytes(), &[0x9B, 0x1D, 0x92, 0x4E, 0x05, 0x59, 0x56, 0x03]);
//! ```
#![no_std]
#![forbid(unsafe_code)]

mod algorithm;
pub mod inputs;
mod issuer_tac;
mod keys;
mod mac;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use issuer_tac::IssuerTacKey;
pub use keys::{
    card_key, diversify, mac_matches, purpose, tac_key, CardKeys, Key16, LoadMasterKey, MaintenanceMasterKey,
    MasterKey, MasterKeys, PurchaseMasterKey, Purpose, SessionKey, TacMasterKey, UnblockMasterKey,
};
pub use mac::{mac, maintenance_mac, Mac4};
pub use zeroize::Zeroizing;
