//! Whether the platform's ledger and the back office's clearing agree, card by card.
//!
//! The ledger hears of a card's loads over the air and of its closure; it never hears of what
//! gates charged. The back office's shadow of the card holds everything the card proved: the
//! platform's loads and debits (fed without an upload) and the gates' purchases and other
//! terminals' loads (uploaded). For a card issued by the platform (balance 0 at issuance) the two
//! agree when
//!
//! ```text
//! ledger  = what the card's liability holds + what its closure left in `fares_unsettled`
//! cleared = shadow balance + gate debits cleared − other terminals' loads cleared
//! ledger  = cleared
//! ```
//!
//! An open card's liability holds its platform loads; its shadow balance is those loads, plus
//! other loads, less the debits. A closed card's liability is 0: the closure moved what the card
//! proved it held and left the rest — the fares gates charged, net of other loads — in
//! `fares_unsettled` for the clearing, which is exactly what the cleared records show.
//!
//! Evidence, not assumption: a card being closed, or whose shadow still has a pending record, a
//! counter gap or a fraud flag, or whose platform loads or debits are not all decided and fed,
//! is *undecided* (with the reason), neither agreeing nor not.

use std::fmt;

use serde::Serialize;

use crate::store::CHECK_LISTED_MAX;

/// One card's two sides, fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardAgreement {
    /// The platform's card ID (its serial).
    pub card_id: String,
    /// `closed` when the card was closed, else `active` or `closing`.
    pub state: String,
    /// The ledger's side: the card liability's credit balance plus what its closure left in
    /// `fares_unsettled`.
    pub ledger_fen: i64,
    /// The shadow's balance (0 for a card with no transaction).
    pub shadow_fen: i64,
    /// Gate (and other non-platform) debits the card committed, cleared.
    pub gate_debits_fen: i64,
    /// Loads the card committed at terminals other than the platform's, cleared.
    pub other_loads_fen: i64,
}

impl CardAgreement {
    /// The clearing's side: shadow + gate debits − other loads.
    pub fn cleared_fen(&self) -> i64 {
        self.shadow_fen + self.gate_debits_fen - self.other_loads_fen
    }

    /// Both sides equal.
    pub fn agrees(&self) -> bool {
        self.ledger_fen == self.cleared_fen()
    }
}

/// A card the check could not decide, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UndecidedCard {
    /// The platform's card ID.
    pub card_id: String,
    /// Why: records pending, a flag standing, platform records not decided or not fed.
    pub why: String,
}

/// What [`crate::store::Store::check_clearing_agreement`] found. [`ClearingAgreement::is_ok`] is
/// the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ClearingAgreement {
    /// The platform's cards looked at.
    pub cards: u64,
    /// Cards whose two sides agree.
    pub agreeing: u64,
    /// Over the decided cards: the ledger's side, summed.
    pub ledger_fen: i64,
    /// Over the decided cards: the clearing's side, summed.
    pub cleared_fen: i64,
    /// Gate debits of the decided cards, cleared (what the platform's riders paid operators).
    pub gate_debits_fen: i64,
    /// The `fares_unsettled` account's balance (credit positive): fares on closed cards the
    /// ledger waits for the clearing to show.
    pub fares_unsettled_fen: i64,
    /// The same as the closed cards' cleared records show it (decided cards only).
    pub fares_unsettled_cleared_fen: i64,
    /// Cards whose two sides differ (at most a bounded number listed).
    pub mismatches: Vec<CardAgreement>,
    /// Cards whose two sides differ, all of them counted.
    pub mismatch_count: u64,
    /// Cards not decided (at most a bounded number listed).
    pub undecided: Vec<UndecidedCard>,
    /// Cards not decided, all of them counted.
    pub undecided_count: u64,
}

impl ClearingAgreement {
    /// Every decided card agrees (undecided ones wait for their evidence).
    pub fn is_ok(&self) -> bool {
        self.mismatch_count == 0
    }

    /// Counts one card: its two sides, or why it is undecided (lists bounded by
    /// [`CHECK_LISTED_MAX`]).
    pub fn add(&mut self, card_id: &str, judged: Result<CardAgreement, String>) {
        self.cards += 1;
        let agreement = match judged {
            Ok(agreement) => agreement,
            Err(why) => {
                self.undecided_count += 1;
                if self.undecided.len() < CHECK_LISTED_MAX {
                    self.undecided.push(UndecidedCard { card_id: card_id.to_owned(), why });
                }
                return;
            }
        };
        self.ledger_fen += agreement.ledger_fen;
        self.cleared_fen += agreement.cleared_fen();
        self.gate_debits_fen += agreement.gate_debits_fen;
        if agreement.state == "closed" {
            self.fares_unsettled_cleared_fen += agreement.gate_debits_fen - agreement.other_loads_fen;
        }
        if agreement.agrees() {
            self.agreeing += 1;
        } else {
            self.mismatch_count += 1;
            if self.mismatches.len() < CHECK_LISTED_MAX {
                self.mismatches.push(agreement);
            }
        }
    }
}

impl fmt::Display for ClearingAgreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cards: {} ({} agree, {} differ, {} undecided)",
            self.cards, self.agreeing, self.mismatch_count, self.undecided_count
        )?;
        writeln!(f, "ledger {} fen = cleared {} fen", self.ledger_fen, self.cleared_fen)?;
        writeln!(
            f,
            "gate debits cleared: {} fen; fares_unsettled {} fen, cleared on closed cards {} fen",
            self.gate_debits_fen, self.fares_unsettled_fen, self.fares_unsettled_cleared_fen
        )?;
        for m in &self.mismatches {
            writeln!(
                f,
                "  differs: card {} ({}): ledger {} fen, cleared {} fen (shadow {}, gate debits {}, other loads {})",
                m.card_id,
                m.state,
                m.ledger_fen,
                m.cleared_fen(),
                m.shadow_fen,
                m.gate_debits_fen,
                m.other_loads_fen
            )?;
        }
        for u in &self.undecided {
            writeln!(f, "  undecided: card {}: {}", u.card_id, u.why)?;
        }
        writeln!(f, "{}", if self.is_ok() { "agree" } else { "DO NOT AGREE" })
    }
}
