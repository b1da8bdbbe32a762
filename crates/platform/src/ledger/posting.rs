//! A posting: balanced lines, built and validated before anything is stored.

use std::fmt;

use super::{Account, Fen, LedgerError};

/// Most lines in one posting: the platform's movements have two; a split (fee and load in one
/// payment) a few more.
pub const POSTING_LINES_MAX: usize = 8;
/// Longest posting ID.
const POSTING_ID_LENGTH_MAX: usize = 128;

/// The idempotency key of a posting: posting the same ID twice stores it once. The caller makes
/// it from what the movement is for (`order/<merchant order ID>/paid`), so a retry after a crash
/// or a duplicated notification names the same posting.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PostingId(String);

impl PostingId {
    /// 1 to 128 characters of `A-Z a-z 0-9 _ . / : -`.
    pub fn parse(id: &str) -> Result<PostingId, LedgerError> {
        let good = !id.is_empty()
            && id.len() <= POSTING_ID_LENGTH_MAX
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./:-".contains(&b));
        if good {
            Ok(PostingId(id.to_owned()))
        } else {
            Err(LedgerError::BadPostingId(id.to_owned()))
        }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PostingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which side of an account a line is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Increases assets, decreases liabilities and revenue. Stored as a positive amount.
    Debit,
    /// Decreases assets, increases liabilities and revenue. Stored as a negative amount.
    Credit,
}

/// One line of a posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The account moved.
    pub account: Account,
    /// Debit or credit.
    pub side: Side,
    /// How much, more than zero.
    pub amount: Fen,
}

impl Line {
    /// The stored signed amount: debits positive, credits negative.
    pub fn signed_fen(&self) -> i64 {
        match self.side {
            Side::Debit => self.amount.get(),
            Side::Credit => -self.amount.get(),
        }
    }
}

/// A balanced money movement. Only [`Posting::new`] makes one, so every `Posting` balances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    id: PostingId,
    memo: String,
    at_ms: i64,
    lines: Vec<Line>,
}

impl Posting {
    /// A posting of `lines` if they balance: at least one debit and one credit, no zero line, at
    /// most [`POSTING_LINES_MAX`] lines, debits equal credits.
    pub fn new(id: PostingId, memo: &str, at_ms: i64, lines: Vec<Line>) -> Result<Posting, LedgerError> {
        if lines.len() > POSTING_LINES_MAX {
            return Err(LedgerError::TooManyLines);
        }
        let (mut debit_fen, mut credit_fen) = (0i64, 0i64);
        for line in &lines {
            if line.amount == Fen::ZERO {
                return Err(LedgerError::ZeroLine);
            }
            let total = match line.side {
                Side::Debit => &mut debit_fen,
                Side::Credit => &mut credit_fen,
            };
            *total = total.checked_add(line.amount.get()).ok_or(LedgerError::Overflow)?;
        }
        if debit_fen == 0 || credit_fen == 0 {
            return Err(LedgerError::TooFewLines);
        }
        if debit_fen != credit_fen {
            return Err(LedgerError::Unbalanced { debit_fen, credit_fen });
        }
        Ok(Posting { id, memo: memo.to_owned(), at_ms, lines })
    }

    /// The common case: `amount` from `debit` to `credit`.
    pub fn transfer(
        id: PostingId,
        memo: &str,
        at_ms: i64,
        debit: Account,
        credit: Account,
        amount: Fen,
    ) -> Result<Posting, LedgerError> {
        Posting::new(
            id,
            memo,
            at_ms,
            vec![
                Line { account: debit, side: Side::Debit, amount },
                Line { account: credit, side: Side::Credit, amount },
            ],
        )
    }

    /// The idempotency key.
    pub fn id(&self) -> &PostingId {
        &self.id
    }

    /// What the movement is, for people reading the ledger.
    pub fn memo(&self) -> &str {
        &self.memo
    }

    /// When it was posted, Unix milliseconds.
    pub fn at_ms(&self) -> i64 {
        self.at_ms
    }

    /// The lines, in order.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fen(amount: i64) -> Fen {
        Fen::new(amount).expect("not negative")
    }

    fn id() -> PostingId {
        PostingId::parse("order/T1/paid").expect("valid")
    }

    #[test]
    fn a_transfer_balances_and_signs_its_lines() {
        let posting = Posting::transfer(
            id(),
            "paid",
            0,
            Account::provider_clearing("simulated").expect("valid"),
            Account::PaymentsUnapplied,
            fen(5_000),
        )
        .expect("balanced");
        let signed: Vec<i64> = posting.lines().iter().map(Line::signed_fen).collect();
        assert_eq!(signed, [5_000, -5_000]);
    }

    #[test]
    fn unbalanced_zero_and_one_sided_postings_are_refused() {
        let line = |account, side, amount| Line { account, side, amount: fen(amount) };
        let unbalanced =
            vec![line(Account::PaymentsUnapplied, Side::Debit, 100), line(Account::FeeRevenue, Side::Credit, 99)];
        assert_eq!(
            Posting::new(id(), "", 0, unbalanced),
            Err(LedgerError::Unbalanced { debit_fen: 100, credit_fen: 99 })
        );
        let zero = vec![line(Account::PaymentsUnapplied, Side::Debit, 0), line(Account::FeeRevenue, Side::Credit, 0)];
        assert_eq!(Posting::new(id(), "", 0, zero), Err(LedgerError::ZeroLine));
        let one_sided = vec![line(Account::PaymentsUnapplied, Side::Debit, 5)];
        assert_eq!(Posting::new(id(), "", 0, one_sided), Err(LedgerError::TooFewLines));
        let many = (0..=POSTING_LINES_MAX).map(|_| line(Account::FeeRevenue, Side::Debit, 1)).collect();
        assert_eq!(Posting::new(id(), "", 0, many), Err(LedgerError::TooManyLines));
        let overflow = vec![
            line(Account::PaymentsUnapplied, Side::Debit, i64::MAX),
            line(Account::PaymentsUnapplied, Side::Debit, 1),
            line(Account::FeeRevenue, Side::Credit, 1),
        ];
        assert_eq!(Posting::new(id(), "", 0, overflow), Err(LedgerError::Overflow));
    }

    #[test]
    fn posting_ids_are_checked() {
        assert!(PostingId::parse("order/2026-11-25:T0001/refunded").is_ok());
        for bad in ["", "a b", "order/'; DROP TABLE", &"x".repeat(129)] {
            assert!(PostingId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
