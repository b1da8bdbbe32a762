//! The wallet SDK: the phone's side of the wallet platform — register the phone, sign up for a
//! city's card, top it up over the air, show it, move it to a new phone, delete it — talking to
//! the secure element through `yitong_terminal`'s [`CardChannel`](yitong_terminal::CardChannel)
//! and to the service through [`WalletApi`] ([`HttpApi`] over HTTP).
//!
//! The principal type is [`Wallet`]: one phone (its locked [`PhoneFile`]: identity, token, one
//! card image per city, flows in flight) and the service. Every step whose outcome could be lost
//! — CREDIT FOR LOAD, a closure's commands — is written to the phone file before it is sent, and
//! the card's memory after, so that the next command on the phone finds the flow and settles it
//! from the card's evidence ([`Wallet::recover`]): a top-up the card proves it never got is loaded
//! again, one it has is confirmed, one it can no longer tell about is handed on `unconfirmed`;
//! one payment never loads twice.
//!
//! It does not judge money: MACs, TACs and the card's evidence are the service's to verify; the
//! wallet carries commands and answers. Payments go through the service's DEVELOPMENT-ONLY pay
//! endpoint (the stand-in for the rider paying in a payment app).
//!
//! ```no_run
//! use yitong_wallet::{Device, HttpApi, Phone, PhoneFile, Wallet};
//! # fn main() -> Result<(), yitong_wallet::WalletError> {
//! let api = HttpApi::new("http://127.0.0.1:8080")?;
//! let device = Device { device_id: "d1".into(), se_id: "SE1".into(), maker: "Xiaomi".into(), model: "Mi 6".into(), carrier: None };
//! let mut file = PhoneFile::create("phone.json".as_ref(), Phone::new(device), false)?;
//! let mut wallet = Wallet::new(&api, &mut file);
//! wallet.enroll("beijing", None)?;
//! let done = wallet.top_up("beijing", 5_000, None)?;
//! println!("balance {} fen", done.balance_after_fen);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
mod error;
mod http;
pub mod phone;
pub mod se;
mod token;
mod wallet;

pub use api::{Device, WalletApi};
pub use error::WalletError;
pub use http::{routes, HttpApi, SERVER_DEFAULT, SERVER_ENV};
pub use phone::{InFlight, Phone, PhoneCard, PhoneFile, RetiredCard, TopUpStep};
pub use se::SoftSe;
pub use token::Token;
pub use wallet::{
    Closed, Enrolled, PhoneReport, Recovered, SeCard, Tear, ToppedUp, Wallet, CLOSURE_STEPS_MAX, TOPUP_FEN_MAX,
};
