//! The card issuer's rules, shared by the command line and the wallet platform: what a new card
//! of an issuer carries (EF15 issuer data, EF16 holder, EF17 management), how it is personalized
//! with keys diversified from the issuer's master keys, how serials and printed card numbers are
//! allocated, and how terminals are numbered.
//!
//! The principal types are [`CardRequest`] (one card to personalize: [`CardRequest::image`]),
//! [`SerialAllocator`] (hands out each serial of an issuer once) and [`TerminalSite`] (a
//! terminal's place, whose [`TerminalSite::terminal_id`] is its 6-byte ID).
//!
//! This crate does no I/O and keeps no state of its own: a caller that allocates serials keeps the
//! allocator's [`SerialAllocator::next_sequence`] (the CLI in its files, the platform in its
//! database). Key files, payments and storage are somebody else's.
//!
//! ```
//! use yitong_crypto::Algorithm;
//! use yitong_issuer::{CardRequest, IssuerIdentity, SerialAllocator};
//! use yitong_card::MasterKeys;
//!
//! let issuer = IssuerIdentity { issuer_id: [0, 0, 0x10, 0, 0, 0, 0, 1], key_version: 1 };
//! let mut serials = SerialAllocator::new(issuer.city_code()).unwrap();
//! let serial = serials.allocate().unwrap();
//! assert_eq!(serial.card_number(), "0000000000000000001");
//! let request = CardRequest::anonymous(issuer, serial, [0x20, 0x26, 0x11, 0x25], [0x20, 0x36, 0x12, 0x31]);
//! let keys = MasterKeys::new(Algorithm::Des, [1; 16], [2; 16], [3; 16], [4; 16], [5; 16]);
//! assert_eq!(request.image(keys).unwrap().len(), yitong_card::IMAGE_LEN);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod card;
mod error;
mod serial;
mod terminal_id;

pub use card::{default_valid_to, holder_file, management_file, CardRequest, IssuerIdentity, APP_TYPE_EP, APP_VERSION};
pub use error::IssueError;
pub use serial::{Serial, SerialAllocator, SEQUENCE_MAX};
pub use terminal_id::{TerminalSite, SERVICE_DESK_OVER_THE_AIR, TOPUP_CLI, TOPUP_OVER_THE_AIR};
