//! The double-entry ledger: every money movement of the platform is a [`Posting`] of balanced
//! lines (debits equal credits, integer [`Fen`]) between [`Account`]s, idempotent by its
//! [`PostingId`].
//!
//! This module only builds and validates postings; [`crate::store::Store::post`] writes them (in
//! the same transaction as the order transition they belong to) and
//! [`crate::store::Store::check_ledger`] proves the stored ledger balances;
//! [`crate::store::Store::check_clearing_agreement`] that it agrees with the back office's
//! clearing, card by card ([`ClearingAgreement`]).
//!
//! Accounts and the sign of their balances (debit positive):
//!
//! | account | kind | balance means |
//! |---|---|---|
//! | `provider_clearing/<provider>` | asset | money the provider holds for us (paid, not yet refunded) |
//! | `payments_unapplied` | liability | paid by riders, not yet loaded onto a card nor earned as a fee |
//! | `card_liability/<card>` | liability | the stored value the card holds, owed to its rider |
//! | `fee_revenue` | revenue | sign-up fees earned |
//! | `refunds_payable` | liability | refunds decided, not yet confirmed by the provider |

mod account;
mod agreement;
mod check;
mod fen;
mod posting;

pub use account::{Account, CardId};
pub use agreement::{CardAgreement, ClearingAgreement, UndecidedCard};
pub use check::{BalanceMismatch, LedgerCheck};
pub use fen::Fen;
pub use posting::{Line, Posting, PostingId, Side, POSTING_LINES_MAX};

use std::fmt;

/// Why a posting or an account name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedgerError {
    /// Debits and credits of a posting differ (each in fen).
    Unbalanced {
        /// Sum of the debit lines.
        debit_fen: i64,
        /// Sum of the credit lines.
        credit_fen: i64,
    },
    /// A posting needs at least one debit and one credit line.
    TooFewLines,
    /// More than [`POSTING_LINES_MAX`] lines.
    TooManyLines,
    /// A line of zero fen moves nothing and is refused.
    ZeroLine,
    /// A sum overflowed `i64` fen.
    Overflow,
    /// An account name that is not one of the ledger's accounts.
    BadAccount(String),
    /// A card ID that is empty, too long or not made of ASCII letters and digits.
    BadCardId(String),
    /// A posting ID that is empty, too long or has characters outside `[A-Za-z0-9_./:-]`.
    BadPostingId(String),
    /// The posting ID was already used for different lines: the second posting is refused.
    PostingIdReused(String),
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Unbalanced { debit_fen, credit_fen } => {
                write!(f, "posting unbalanced: debits {debit_fen} fen, credits {credit_fen} fen")
            }
            LedgerError::TooFewLines => f.write_str("a posting needs a debit and a credit line"),
            LedgerError::TooManyLines => {
                write!(f, "a posting has at most {POSTING_LINES_MAX} lines")
            }
            LedgerError::ZeroLine => f.write_str("a ledger line of 0 fen"),
            LedgerError::Overflow => f.write_str("ledger amount overflow"),
            LedgerError::BadAccount(name) => write!(f, "not a ledger account: {name:?}"),
            LedgerError::BadCardId(id) => {
                write!(f, "bad card ID {id:?}: 1 to 32 ASCII letters or digits")
            }
            LedgerError::BadPostingId(id) => {
                write!(f, "bad posting ID {id:?}: 1 to 128 characters of A-Z a-z 0-9 _ . / : -")
            }
            LedgerError::PostingIdReused(id) => {
                write!(f, "posting ID {id:?} was already used for a different posting")
            }
        }
    }
}

impl std::error::Error for LedgerError {}
