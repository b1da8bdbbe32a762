//! What the wallet platform's ledger says happened: fees, refunds and paid loads per issuer.
//! Cards never see fees or refunds, so the day's report takes them from here; paid loads are
//! checked against the loads the cards show.

use serde::Serialize;
use yitong_profile::DateTime;

/// The kind of a platform entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformEntryKind {
    /// A sign-up fee earned (the platform's `fee_revenue`).
    Fee,
    /// Money paid back to a rider (a top-up or fee refunded, a closed card's balance).
    Refund,
    /// A paid load the platform's ledger put on a card (an over-the-air top-up order `loaded`):
    /// the card should show it as a load at the platform's load host.
    LoadPaid,
}

/// One figure of the platform's ledger, for one issuer's cards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformEntry {
    /// Fee, refund or paid load.
    pub kind: PlatformEntryKind,
    /// The issuer of the card (the city's issuer).
    pub issuer_id: [u8; 8],
    /// The amount, fen.
    pub amount_fen: u32,
    /// When the ledger posted it (local time): the business day it falls in counts it.
    pub at: DateTime,
}
