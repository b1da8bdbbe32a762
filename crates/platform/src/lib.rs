//! The wallet platform: what a rider meets in the wallet app and what the card issuer runs behind
//! it — device eligibility, the cities and their fees, sign-up pricing and promotions, card
//! issuance to phones ([`issuance::IssuanceService`]), over-the-air top-up
//! ([`ota::OtaService`]), card transfer to a new phone and deletion with a refund
//! ([`closure::ClosureService`]), payments from mobile payment providers, and the double-entry ledger
//! with its storage (SQLite by default, PostgreSQL by URL).
//!
//! The domain is testable without HTTP: the HTTP service (a crate above this one) and the CLI
//! drive it. Card-side rules (EF15/EF16/EF17 content, serials, terminal IDs) live in
//! `yitong-issuer`; typed load records are `yitong-record`'s.
#![forbid(unsafe_code)]

pub mod access;
mod card_answer;
pub mod card_view;
pub mod cities;
pub mod closure;
pub mod devices;
pub mod issuance;
pub mod issuer_keys;
pub mod keyfile;
pub mod ledger;
pub mod ota;
pub mod payments;
pub mod pricing;
pub mod pricing_file;
pub mod settlement;
pub mod store;
