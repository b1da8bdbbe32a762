//! The wire formats of the transit e-purse card profile, shared by the card and the terminal.
//!
//! Both sides of a tap speak the same bytes: this crate holds them once. It parses and builds
//! ISO 7816-4 command APDUs ([`apdu::Command`]), names the profile's status words
//! ([`StatusWord`]), and encodes the files and records of the application: EF15 issuer data
//! ([`files::IssuerData`]), the EF18 transaction log ([`files::LogRecord`]), the EF1A
//! composite-purchase transit record ([`files::TransitRecord`], a profile choice) and the EF1E trip
//! log ([`files::TripLogRecord`]), with BCD dates and times ([`DateTime`]).
//!
//! It does no I/O and no cryptography (that is `yitong-crypto`), and is `no_std` with `alloc`.
//! The profile itself is described in `docs/card-profile.md`.
//!
//! ```
//! use yitong_profile::apdu::Command;
//! let c = Command::parse(&[0x80, 0x5C, 0x00, 0x02, 0x04]).unwrap();
//! assert_eq!((c.cla, c.ins, c.le), (0x80, 0x5C, Some(4)));
//! ```
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod apdu;
mod datetime;
pub mod files;
mod reader;
mod status;
pub mod tlv;

pub use datetime::{DateTime, InvalidDateTime};
pub use reader::{Reader, Truncated};
pub use status::StatusWord;
