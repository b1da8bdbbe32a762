//! The result of checking a stored ledger.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// One account whose ledger balance differs from what the service believes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceMismatch {
    /// The account's stored name.
    pub account: String,
    /// What the service's other records say the balance should be, fen (credit balances of
    /// liabilities counted positive).
    pub expected_fen: i64,
    /// What the ledger's lines add up to, same sign convention.
    pub ledger_fen: i64,
}

/// What [`crate::store::Store::check_ledger`] found. [`LedgerCheck::is_ok`] is the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct LedgerCheck {
    /// Postings stored.
    pub postings: u64,
    /// Lines stored.
    pub lines: u64,
    /// Sum of all debit lines, fen.
    pub debit_fen: i64,
    /// Sum of all credit lines, fen (positive).
    pub credit_fen: i64,
    /// Each account's balance, fen, debits positive (liabilities and revenue in credit are
    /// negative).
    pub accounts: BTreeMap<String, i64>,
    /// The sum of the balances the service believes the cards hold, fen.
    pub card_balances_fen: i64,
    /// Postings whose own lines do not sum to zero (IDs; at most a bounded number listed).
    pub unbalanced_postings: Vec<String>,
    /// Cards whose liability account differs from the balance the service believes they hold.
    pub card_mismatches: Vec<BalanceMismatch>,
    /// Order-backed accounts (`payments_unapplied`, `refunds_payable`, provider clearing) that
    /// differ from the sum of the orders in the matching states, and `transfers_payable` that
    /// differs from the transfers closed and not yet claimed.
    pub order_mismatches: Vec<BalanceMismatch>,
}

impl LedgerCheck {
    /// The ledger balances, every posting balances, and the balances agree with the cards and
    /// the orders.
    pub fn is_ok(&self) -> bool {
        self.debit_fen == self.credit_fen
            && self.unbalanced_postings.is_empty()
            && self.card_mismatches.is_empty()
            && self.order_mismatches.is_empty()
    }
}

impl fmt::Display for LedgerCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} postings, {} lines, debits {} fen, credits {} fen: {}",
            self.postings,
            self.lines,
            self.debit_fen,
            self.credit_fen,
            if self.is_ok() { "balanced" } else { "NOT BALANCED" }
        )?;
        for id in &self.unbalanced_postings {
            writeln!(f, "unbalanced posting {id}")?;
        }
        for m in self.card_mismatches.iter().chain(&self.order_mismatches) {
            writeln!(f, "{}: expected {} fen, ledger {} fen", m.account, m.expected_fen, m.ledger_fen)?;
        }
        Ok(())
    }
}
