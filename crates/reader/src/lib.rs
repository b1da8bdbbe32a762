//! Real readers at the edges of the sans-IO card and gate.
//!
//! - [`vpcd`]: the software card as a contactless card in the vsmartcard virtual reader driver,
//!   so that pcscd shows it in "Virtual PCD 00 00" and any PC/SC application talks to it.
//! - [`foreign`]: reading a real transit card without keys, as card-reading apps do: T-Union,
//!   City Union, Shenzhen Tong, Wuhan Tong, Lingnan Pass and Beijing's FID 1001 layout.
//! - `pcsc` (cargo feature `pcsc`, which links libpcsclite): a PC/SC `CardChannel` for the gate
//!   and the reader, reader listing and waiting for a card.
//!
//! The card logic stays in `yitong-card`, the gate logic in `yitong-terminal`; this crate only
//! moves bytes.
#![forbid(unsafe_code)]

pub mod foreign;
#[cfg(feature = "pcsc")]
pub mod pcsc_channel;
pub mod vpcd;
