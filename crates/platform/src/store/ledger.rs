//! Postings, balances and the ledger check in the database.

use std::collections::BTreeMap;

use super::sql::{query, Db};
use super::{column, Store, StoreError};
use crate::ledger::{Account, BalanceMismatch, CardId, Fen, LedgerCheck, LedgerError, Posting};
use crate::payments::OrderState;

/// Most unbalanced postings or mismatched accounts a check lists (it still counts them all in
/// its verdict).
pub const CHECK_LISTED_MAX: usize = 100;

/// What [`Store::post`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostOutcome {
    /// The posting was stored now.
    Posted,
    /// A posting with the same ID and the same lines was already stored: nothing changed.
    AlreadyPosted,
}

impl Store {
    /// Stores `posting` in its own transaction, once: the same ID again is
    /// [`PostOutcome::AlreadyPosted`]; the same ID with other lines is
    /// [`LedgerError::PostingIdReused`].
    pub async fn post(&self, posting: &Posting) -> Result<PostOutcome, StoreError> {
        let mut transaction = self.begin_write().await?;
        let outcome = post_in(&mut transaction.db(), posting).await?;
        transaction.commit().await?;
        Ok(outcome)
    }

    /// The account's balance in fen, debits positive (a liability in credit is negative).
    pub async fn balance(&self, account: &Account) -> Result<i64, StoreError> {
        balance_in(&mut self.reader().await?.db(), account).await
    }

    /// The balance the service believes `card` holds, if it has seen the card's answer.
    pub async fn card_balance(&self, card: &CardId) -> Result<Option<Fen>, StoreError> {
        let row = query("SELECT balance_fen FROM card_balances WHERE card_id = $1")
            .bind(card.as_str())
            .fetch_optional(&mut self.reader().await?.db())
            .await?;
        row.map(|row| fen(column(&row, 0)?, "card_balances", card.as_str())).transpose()
    }

    /// Proves the ledger: every posting balances, all debits equal all credits, each card's
    /// liability equals the balance the service believes the card holds, and the accounts
    /// backed by orders equal the sums of the orders in the matching states (money paid and
    /// not delivered is in `payments_unapplied`, decided refunds in `refunds_payable`, and so
    /// on). Reads one consistent snapshot.
    pub async fn check_ledger(&self) -> Result<LedgerCheck, StoreError> {
        let mut transaction = self.begin_snapshot().await?;
        let connection: &mut Db<'_> = &mut transaction.db();
        let mut check = LedgerCheck::default();

        let row = query("SELECT COUNT(*) FROM ledger_postings").fetch_one(&mut *connection).await?;
        check.postings = count(column(&row, 0)?)?;
        let row = query(
            "SELECT COUNT(*), \
             CAST(COALESCE(SUM(CASE WHEN amount_fen > 0 THEN amount_fen ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN amount_fen < 0 THEN -amount_fen ELSE 0 END), 0) AS BIGINT) \
             FROM ledger_lines",
        )
        .fetch_one(&mut *connection)
        .await?;
        check.lines = count(column(&row, 0)?)?;
        check.debit_fen = column(&row, 1)?;
        check.credit_fen = column(&row, 2)?;

        // A posting with lines that do not sum to zero, or with fewer than two lines.
        let rows = query(
            "SELECT p.posting_id FROM ledger_postings p LEFT JOIN ledger_lines l ON l.posting_id = p.posting_id \
             GROUP BY p.posting_id HAVING COALESCE(SUM(l.amount_fen), 0) <> 0 OR COUNT(l.posting_id) < 2 \
             ORDER BY p.posting_id",
        )
        .fetch_all(&mut *connection)
        .await?;
        for row in rows.iter().take(CHECK_LISTED_MAX) {
            check.unbalanced_postings.push(column(row, 0)?);
        }
        if rows.len() > CHECK_LISTED_MAX {
            check.unbalanced_postings.push(format!("… and {} more", rows.len() - CHECK_LISTED_MAX));
        }

        let balances = account_balances(connection).await?;
        check.card_mismatches = card_mismatches(connection, &balances).await?;
        check.order_mismatches = order_mismatches(connection, &balances).await?;
        let row = query("SELECT CAST(COALESCE(SUM(balance_fen), 0) AS BIGINT) FROM card_balances")
            .fetch_one(&mut *connection)
            .await?;
        check.card_balances_fen = column(&row, 0)?;
        check.accounts = balances;
        transaction.commit().await?;
        Ok(check)
    }
}

/// Stores `posting` inside the caller's transaction (see [`Store::post`]).
pub(crate) async fn post_in(connection: &mut Db<'_>, posting: &Posting) -> Result<PostOutcome, StoreError> {
    let inserted = query(
        "INSERT INTO ledger_postings (posting_id, memo, at_ms) VALUES ($1, $2, $3) ON CONFLICT (posting_id) DO NOTHING",
    )
    .bind(posting.id().as_str())
    .bind(posting.memo())
    .bind(posting.at_ms())
    .execute(&mut *connection)
    .await?;
    if inserted == 0 {
        // Posted before (a retry, a duplicate notification, a racing writer): the same lines
        // are a no-op, other lines under the same ID are a bug somewhere and refused.
        let rows = query("SELECT account, amount_fen FROM ledger_lines WHERE posting_id = $1 ORDER BY line_number")
            .bind(posting.id().as_str())
            .fetch_all(&mut *connection)
            .await?;
        let stored: Vec<(String, i64)> =
            rows.iter().map(|row| Ok((column(row, 0)?, column(row, 1)?))).collect::<Result<_, StoreError>>()?;
        let wanted: Vec<(String, i64)> =
            posting.lines().iter().map(|line| (line.account.name(), line.signed_fen())).collect();
        if stored != wanted {
            return Err(LedgerError::PostingIdReused(posting.id().to_string()).into());
        }
        return Ok(PostOutcome::AlreadyPosted);
    }
    for (line_number, line) in (0i64..).zip(posting.lines()) {
        query("INSERT INTO ledger_lines (posting_id, line_number, account, amount_fen) VALUES ($1, $2, $3, $4)")
            .bind(posting.id().as_str())
            .bind(line_number)
            .bind(line.account.name())
            .bind(line.signed_fen())
            .execute(&mut *connection)
            .await?;
    }
    Ok(PostOutcome::Posted)
}

/// Records the balance a card proved at `at_ms`, unless a later one is already recorded.
pub(crate) async fn record_card_balance_in(
    connection: &mut Db<'_>,
    card: &CardId,
    balance: Fen,
    at_ms: i64,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO card_balances (card_id, balance_fen, updated_at_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (card_id) DO UPDATE SET balance_fen = excluded.balance_fen, updated_at_ms = excluded.updated_at_ms \
         WHERE card_balances.updated_at_ms <= excluded.updated_at_ms",
    )
    .bind(card.as_str())
    .bind(balance.get())
    .bind(at_ms)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Every account's balance, debits positive.
async fn account_balances(connection: &mut Db<'_>) -> Result<BTreeMap<String, i64>, StoreError> {
    let rows = query("SELECT account, CAST(SUM(amount_fen) AS BIGINT) FROM ledger_lines GROUP BY account")
        .fetch_all(&mut *connection)
        .await?;
    rows.iter().map(|row| Ok((column(row, 0)?, column(row, 1)?))).collect()
}

/// Cards whose liability (credit, counted positive) differs from the believed balance; a card
/// with one and not the other counts the missing side as zero.
async fn card_mismatches(
    connection: &mut Db<'_>,
    balances: &BTreeMap<String, i64>,
) -> Result<Vec<BalanceMismatch>, StoreError> {
    let rows = query("SELECT card_id, balance_fen FROM card_balances").fetch_all(&mut *connection).await?;
    let mut believed: BTreeMap<String, i64> = BTreeMap::new();
    for row in &rows {
        let card: String = column(row, 0)?;
        let card = CardId::parse(&card).map_err(|error| corrupt("card_balances", &card, error))?;
        believed.insert(Account::CardLiability(card).name(), column(row, 1)?);
    }
    let ledger = balances.iter().filter(|(account, _)| account.starts_with("card_liability/"));
    let mut accounts: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for (account, &debit_fen) in ledger {
        accounts.entry(account).or_default().1 = -debit_fen;
    }
    for (account, &fen) in &believed {
        accounts.entry(account).or_default().0 = fen;
    }
    Ok(mismatches(accounts))
}

/// The order-backed accounts against the orders.
async fn order_mismatches(
    connection: &mut Db<'_>,
    balances: &BTreeMap<String, i64>,
) -> Result<Vec<BalanceMismatch>, StoreError> {
    let rows = query(
        "SELECT provider, kind, state, CAST(SUM(amount_fen) AS BIGINT) FROM payment_orders GROUP BY provider, kind, state",
    )
    .fetch_all(&mut *connection)
    .await?;
    // (expected, ledger), liabilities and revenue as credit balances counted positive.
    let mut accounts: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for name in [Account::PaymentsUnapplied, Account::RefundsPayable, Account::FeeRevenue].map(|a| a.name()) {
        let ledger = -balances.get(&name).copied().unwrap_or(0);
        accounts.insert(name, (0, ledger));
    }
    for (account, &debit_fen) in balances.iter().filter(|(account, _)| account.starts_with("provider_clearing/")) {
        accounts.insert(account.clone(), (0, debit_fen));
    }
    for row in &rows {
        let provider: String = column(row, 0)?;
        let kind: String = column(row, 1)?;
        let state_name: String = column(row, 2)?;
        let sum: i64 = column(row, 3)?;
        let state = OrderState::parse(&state_name)
            .ok_or_else(|| corrupt("payment_orders", &state_name, "unknown order state"))?;
        let clearing =
            Account::provider_clearing(&provider).map_err(|error| corrupt("payment_orders", &provider, error))?;
        let mut expect = |account: String| accounts.entry(account).or_default().0 += sum;
        // A balance refund pays back money the card's loaded top-ups brought in (counted there).
        if kind == "balance_refund" {
            match state {
                OrderState::RefundPending => expect(Account::RefundsPayable.name()),
                OrderState::Refunded => accounts.entry(clearing.name()).or_default().0 -= sum,
                _ => {}
            }
            continue;
        }
        if state.holds_unapplied_money() {
            expect(Account::PaymentsUnapplied.name());
        }
        if state == OrderState::RefundPending {
            expect(Account::RefundsPayable.name());
        }
        if state == OrderState::Issued && kind == "sign_up_fee" {
            expect(Account::FeeRevenue.name());
        }
        // Paid and not (yet) refunded: the provider holds the money for us (a transfer's money
        // came from the old card, counted by its top-ups).
        if kind != "transfer" && !matches!(state, OrderState::Created | OrderState::Closed | OrderState::Refunded) {
            expect(clearing.name());
        }
    }
    // Transfers closed and not yet funded (a claim funds its load order once bound) are owed.
    let row = query(
        "SELECT CAST(COALESCE(SUM(t.amount_fen), 0) AS BIGINT) FROM card_transfers t \
         LEFT JOIN payment_orders o ON o.merchant_order_id = t.load_order_id \
         WHERE t.load_order_id IS NULL OR o.state = 'created'",
    )
    .fetch_one(&mut *connection)
    .await?;
    let payable = Account::TransfersPayable.name();
    let ledger = -balances.get(&payable).copied().unwrap_or(0);
    accounts.insert(payable, (column(&row, 0)?, ledger));
    Ok(mismatches(accounts.iter().map(|(account, &both)| (account.as_str(), both)).collect()))
}

fn mismatches(accounts: BTreeMap<&str, (i64, i64)>) -> Vec<BalanceMismatch> {
    accounts
        .into_iter()
        .filter(|(_, (expected, ledger))| expected != ledger)
        .map(|(account, (expected_fen, ledger_fen))| BalanceMismatch {
            account: account.to_owned(),
            expected_fen,
            ledger_fen,
        })
        .take(CHECK_LISTED_MAX)
        .collect()
}

fn count(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt("ledger", "COUNT", "negative count"))
}

fn fen(value: i64, table: &'static str, key: &str) -> Result<Fen, StoreError> {
    Fen::new(value).ok_or_else(|| corrupt(table, key, "negative amount"))
}

fn corrupt(table: &'static str, key: &str, why: impl ToString) -> StoreError {
    StoreError::Corrupt { table, key: key.to_owned(), why: why.to_string() }
}

/// `account`'s balance, debits positive ([`Store::balance`] on `connection`).
pub(crate) async fn balance_in(connection: &mut Db<'_>, account: &Account) -> Result<i64, StoreError> {
    let row = query("SELECT CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) FROM ledger_lines WHERE account = $1")
        .bind(account.name())
        .fetch_one(&mut *connection)
        .await?;
    column(&row, 0)
}
