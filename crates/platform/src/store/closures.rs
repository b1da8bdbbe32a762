//! Card closures: the card's state, each closure's stage, its debits (recorded in doubt before
//! MAC1 leaves), transfers waiting for their new phone, and balance refunds' parts.

use yitong_record::TapRecord;

use super::sql::{query, Db, Row};
use super::{column, Store, StoreError};
use crate::closure::{Closure, ClosureDebit, ClosureState, DebitState, Purpose, RefundPart, Stage, Transfer};
use crate::ledger::{CardId, Fen};
use crate::payments::MerchantOrderId;

/// Most paid orders a balance refund is spread over.
pub const REFUND_PARTS_MAX: usize = 64;

const CLOSURE_COLUMNS: &str = "closure_id, card_id, purpose, state, stage, moved_fen, unconfirmed_fen, rounds, \
                               created_at_ms, updated_at_ms, version";
const DEBIT_COLUMNS: &str = "tap_id, closure_id, state, counter_before, record, created_at_ms, updated_at_ms";
const TRANSFER_COLUMNS: &str = "code_sha256, closure_id, from_card_id, from_device_id, city, amount_fen, \
                                to_device_id, to_card_id, load_order_id, created_at_ms, claimed_at_ms";

impl Store {
    /// The closure of card `card`, if one was started.
    pub async fn closure_of_card(&self, card: &CardId) -> Result<Option<Closure>, StoreError> {
        let mut connection = self.reader().await?;
        closure_of_card_in(&mut connection.db(), card).await
    }

    /// Closure `id` (the HTTP layer checks that its card is the calling phone's).
    pub async fn closure(&self, id: &str) -> Result<Option<Closure>, StoreError> {
        let mut connection = self.reader().await?;
        closure_in(&mut connection.db(), id).await
    }

    /// Every debit closure `id` handed out, oldest first.
    pub async fn closure_debits(&self, id: &str) -> Result<Vec<ClosureDebit>, StoreError> {
        let rows = query(format!(
            "SELECT {DEBIT_COLUMNS} FROM closure_debits WHERE closure_id = $1 ORDER BY created_at_ms, tap_id"
        ))
        .bind(id)
        .fetch_all(&mut self.reader().await?.db())
        .await?;
        rows.iter().map(debit_from_row).collect()
    }

    /// The card's stored state (`active`, `closing`, `closed`), if the card exists.
    pub async fn card_state(&self, card: &CardId) -> Result<Option<String>, StoreError> {
        let mut connection = self.reader().await?;
        card_state_in(&mut connection.db(), card).await
    }

    /// The parts of balance refund order `id`.
    pub async fn refund_parts(&self, id: &MerchantOrderId) -> Result<Vec<RefundPart>, StoreError> {
        let rows = query(
            "SELECT refund_id, paid_order_id, amount_fen, refunded FROM balance_refund_parts \
             WHERE merchant_order_id = $1 ORDER BY refund_id",
        )
        .bind(id.as_str())
        .fetch_all(&mut self.reader().await?.db())
        .await?;
        rows.iter()
            .map(|row| {
                let refund_id: String = column(row, 0)?;
                let bad =
                    |why: String| StoreError::Corrupt { table: "balance_refund_parts", key: refund_id.clone(), why };
                let paid: String = column(row, 1)?;
                let amount: i64 = column(row, 2)?;
                let refunded: i64 = column(row, 3)?;
                Ok(RefundPart {
                    paid_order_id: MerchantOrderId::parse(&paid).map_err(|e| bad(e.to_string()))?,
                    amount: Fen::new(amount).ok_or_else(|| bad(format!("amount {amount}")))?,
                    refunded: refunded != 0,
                    refund_id,
                })
            })
            .collect()
    }
}

/// The card's stored state.
pub(crate) async fn card_state_in(connection: &mut Db<'_>, card: &CardId) -> Result<Option<String>, StoreError> {
    let row = query("SELECT state FROM phone_cards WHERE card_id = $1")
        .bind(card.as_str())
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(|row| column(row, 0)).transpose()
}

/// Moves the card from `from` to `to`; `false` if it was not in `from` (nothing written). On
/// PostgreSQL the row stays locked to the transaction, so that a load and a closure of one card
/// are ordered: with `from == to == "active"` it is how a load holds the card open.
pub(crate) async fn move_card_in(
    connection: &mut Db<'_>,
    card: &CardId,
    from: &str,
    to: &str,
) -> Result<bool, StoreError> {
    let updated = query("UPDATE phone_cards SET state = $1 WHERE card_id = $2 AND state = $3")
        .bind(to)
        .bind(card.as_str())
        .bind(from)
        .execute(&mut *connection)
        .await?;
    Ok(updated == 1)
}

/// Records a new closure; `false` if the card has one (nothing written).
pub(crate) async fn insert_closure_in(connection: &mut Db<'_>, closure: &Closure) -> Result<bool, StoreError> {
    let inserted = query(format!(
        "INSERT INTO card_closures ({CLOSURE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT DO NOTHING"
    ))
    .bind(closure.closure_id.as_str())
    .bind(closure.card_id.as_str())
    .bind(closure.purpose.name())
    .bind(closure.state.name())
    .bind(stage_text(&closure.stage)?)
    .bind(closure.moved.get())
    .bind(closure.unconfirmed.get())
    .bind(i64::from(closure.rounds))
    .bind(closure.created_at_ms)
    .bind(closure.updated_at_ms)
    .bind(closure.version)
    .execute(&mut *connection)
    .await?;
    Ok(inserted == 1)
}

/// Closure `id`.
pub(crate) async fn closure_in(connection: &mut Db<'_>, id: &str) -> Result<Option<Closure>, StoreError> {
    let row = query(format!("SELECT {CLOSURE_COLUMNS} FROM card_closures WHERE closure_id = $1"))
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(closure_from_row).transpose()
}

/// The closure of card `card`.
pub(crate) async fn closure_of_card_in(connection: &mut Db<'_>, card: &CardId) -> Result<Option<Closure>, StoreError> {
    let row = query(format!("SELECT {CLOSURE_COLUMNS} FROM card_closures WHERE card_id = $1"))
        .bind(card.as_str())
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(closure_from_row).transpose()
}

/// Saves `closure` (its version bumped) if it is still at `closure.version`; `false` if another
/// writer moved it first (nothing written).
pub(crate) async fn save_closure_in(connection: &mut Db<'_>, closure: &Closure) -> Result<bool, StoreError> {
    let updated = query(
        "UPDATE card_closures SET state = $1, stage = $2, moved_fen = $3, unconfirmed_fen = $4, rounds = $5, \
         updated_at_ms = $6, version = version + 1 WHERE closure_id = $7 AND version = $8",
    )
    .bind(closure.state.name())
    .bind(stage_text(&closure.stage)?)
    .bind(closure.moved.get())
    .bind(closure.unconfirmed.get())
    .bind(i64::from(closure.rounds))
    .bind(closure.updated_at_ms)
    .bind(closure.closure_id.as_str())
    .bind(closure.version)
    .execute(&mut *connection)
    .await?;
    Ok(updated == 1)
}

/// Records a debit (in doubt).
pub(crate) async fn insert_debit_in(connection: &mut Db<'_>, debit: &ClosureDebit) -> Result<(), StoreError> {
    query(format!("INSERT INTO closure_debits ({DEBIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
        .bind(debit.record.tap_id().to_string())
        .bind(debit.closure_id.as_str())
        .bind(debit.state.name())
        .bind(i64::from(debit.counter_before))
        .bind(record_text(&debit.record)?)
        .bind(debit.created_at_ms)
        .bind(debit.updated_at_ms)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// The debit of closure `id` in doubt (at most one: a unique index).
pub(crate) async fn debit_in_doubt_in(connection: &mut Db<'_>, id: &str) -> Result<Option<ClosureDebit>, StoreError> {
    let row = query(format!("SELECT {DEBIT_COLUMNS} FROM closure_debits WHERE closure_id = $1 AND state = 'in_doubt'"))
        .bind(id)
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(debit_from_row).transpose()
}

/// Settles a debit in doubt to `to` with `record`; `false` if it was not in doubt any more.
pub(crate) async fn settle_debit_in(
    connection: &mut Db<'_>,
    debit: &ClosureDebit,
    to: DebitState,
    record: &TapRecord,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let updated = query(
        "UPDATE closure_debits SET state = $1, record = $2, updated_at_ms = $3 WHERE tap_id = $4 AND state = 'in_doubt'",
    )
    .bind(to.name())
    .bind(record_text(record)?)
    .bind(now_ms)
    .bind(debit.record.tap_id().to_string())
    .execute(&mut *connection)
    .await?;
    Ok(updated == 1)
}

/// Records a transfer waiting for its new phone.
pub(crate) async fn insert_transfer_in(connection: &mut Db<'_>, transfer: &Transfer) -> Result<(), StoreError> {
    query(format!(
        "INSERT INTO card_transfers ({TRANSFER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(transfer.code_sha256.as_str())
    .bind(transfer.closure_id.as_str())
    .bind(transfer.from_card_id.as_str())
    .bind(transfer.from_device_id.as_str())
    .bind(transfer.city.as_str())
    .bind(transfer.amount.get())
    .bind(transfer.to_device_id.clone())
    .bind(transfer.to_card_id.as_ref().map(|c| c.as_str().to_owned()))
    .bind(transfer.load_order_id.as_ref().map(|o| o.as_str().to_owned()))
    .bind(transfer.created_at_ms)
    .bind(transfer.claimed_at_ms)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The transfer whose code hashes to `code_sha256`.
pub(crate) async fn transfer_in(connection: &mut Db<'_>, code_sha256: &str) -> Result<Option<Transfer>, StoreError> {
    let row = query(format!("SELECT {TRANSFER_COLUMNS} FROM card_transfers WHERE code_sha256 = $1"))
        .bind(code_sha256)
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(transfer_from_row).transpose()
}

/// Binds an unclaimed transfer to phone `device_id`; `false` if it was claimed already.
pub(crate) async fn claim_transfer_in(
    connection: &mut Db<'_>,
    code_sha256: &str,
    device_id: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let updated = query(
        "UPDATE card_transfers SET to_device_id = $1, claimed_at_ms = $2 \
         WHERE code_sha256 = $3 AND to_device_id IS NULL",
    )
    .bind(device_id)
    .bind(now_ms)
    .bind(code_sha256)
    .execute(&mut *connection)
    .await?;
    Ok(updated == 1)
}

/// Releases a transfer phone `device_id` claimed but could not take (no card issued): another
/// phone may claim it.
pub(crate) async fn unclaim_transfer_in(
    connection: &mut Db<'_>,
    code_sha256: &str,
    device_id: &str,
) -> Result<bool, StoreError> {
    let updated = query(
        "UPDATE card_transfers SET to_device_id = NULL, claimed_at_ms = NULL \
         WHERE code_sha256 = $1 AND to_device_id = $2 AND to_card_id IS NULL",
    )
    .bind(code_sha256)
    .bind(device_id)
    .execute(&mut *connection)
    .await?;
    Ok(updated == 1)
}

/// Records the new card and its load order; `false` if the transfer has them already.
pub(crate) async fn bind_transfer_in(
    connection: &mut Db<'_>,
    code_sha256: &str,
    card: &CardId,
    order: Option<&MerchantOrderId>,
) -> Result<bool, StoreError> {
    let updated = query(
        "UPDATE card_transfers SET to_card_id = $1, load_order_id = $2 WHERE code_sha256 = $3 AND to_card_id IS NULL",
    )
    .bind(card.as_str())
    .bind(order.map(|o| o.as_str().to_owned()))
    .bind(code_sha256)
    .execute(&mut *connection)
    .await?;
    Ok(updated == 1)
}

/// Replaces the code of closure `id`'s transfer while no phone has claimed it; `false` once one has.
pub(crate) async fn replace_transfer_code_in(
    connection: &mut Db<'_>,
    id: &str,
    code_sha256: &str,
) -> Result<bool, StoreError> {
    let updated = query("UPDATE card_transfers SET code_sha256 = $1 WHERE closure_id = $2 AND to_device_id IS NULL")
        .bind(code_sha256)
        .bind(id)
        .execute(&mut *connection)
        .await?;
    Ok(updated == 1)
}

/// The card `card`'s balance came from by transfer, if it did.
pub(crate) async fn transferred_from_in(connection: &mut Db<'_>, card: &CardId) -> Result<Option<CardId>, StoreError> {
    let row = query("SELECT from_card_id FROM card_transfers WHERE to_card_id = $1")
        .bind(card.as_str())
        .fetch_optional(&mut *connection)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let id: String = column(&row, 0)?;
    CardId::parse(&id).map(Some).map_err(StoreError::Ledger)
}

/// The loaded top-up orders of `card` not refunded in part yet, newest first: (order, amount).
pub(crate) async fn refundable_top_ups_in(
    connection: &mut Db<'_>,
    card: &CardId,
) -> Result<Vec<(MerchantOrderId, Fen)>, StoreError> {
    let rows = query(
        "SELECT merchant_order_id, amount_fen FROM payment_orders o WHERE card_id = $1 AND kind = 'top_up' \
         AND state = 'loaded' AND NOT EXISTS (SELECT 1 FROM balance_refund_parts p \
         WHERE p.paid_order_id = o.merchant_order_id) ORDER BY created_at_ms DESC, merchant_order_id DESC LIMIT $2",
    )
    .bind(card.as_str())
    .bind(REFUND_PARTS_MAX as i64)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| {
            let id: String = column(row, 0)?;
            let amount: i64 = column(row, 1)?;
            let bad = |why: String| StoreError::Corrupt { table: "payment_orders", key: id.clone(), why };
            Ok((
                MerchantOrderId::parse(&id).map_err(|e| bad(e.to_string()))?,
                Fen::new(amount).ok_or_else(|| bad(format!("amount {amount}")))?,
            ))
        })
        .collect()
}

/// Records one part of balance refund `order`.
pub(crate) async fn insert_refund_part_in(
    connection: &mut Db<'_>,
    order: &MerchantOrderId,
    part: &RefundPart,
) -> Result<(), StoreError> {
    query(
        "INSERT INTO balance_refund_parts (refund_id, merchant_order_id, paid_order_id, amount_fen, refunded) \
         VALUES ($1, $2, $3, $4, 0)",
    )
    .bind(part.refund_id.as_str())
    .bind(order.as_str())
    .bind(part.paid_order_id.as_str())
    .bind(part.amount.get())
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Marks a part refunded by the provider (through the writer: on SQLite a write on a reading
/// connection would wait in SQLite's busy handler, holding its thread, for the writers' group).
pub(crate) async fn part_refunded(store: &Store, refund_id: &str) -> Result<(), StoreError> {
    let mut transaction = store.begin_write().await?;
    query("UPDATE balance_refund_parts SET refunded = 1 WHERE refund_id = $1")
        .bind(refund_id)
        .execute(&mut transaction.db())
        .await?;
    transaction.commit().await
}

fn stage_text(stage: &Stage) -> Result<String, StoreError> {
    serde_json::to_string(stage).map_err(|e| StoreError::Corrupt {
        table: "card_closures",
        key: String::new(),
        why: e.to_string(),
    })
}

fn record_text(record: &TapRecord) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|e| StoreError::Corrupt {
        table: "closure_debits",
        key: record.tap_id().to_string(),
        why: e.to_string(),
    })
}

fn closure_from_row(row: &Row) -> Result<Closure, StoreError> {
    let id: String = column(row, 0)?;
    let bad = |why: String| StoreError::Corrupt { table: "card_closures", key: id.clone(), why };
    let card: String = column(row, 1)?;
    let purpose: String = column(row, 2)?;
    let state: String = column(row, 3)?;
    let stage: String = column(row, 4)?;
    let moved: i64 = column(row, 5)?;
    let unconfirmed: i64 = column(row, 6)?;
    let rounds: i64 = column(row, 7)?;
    Ok(Closure {
        card_id: CardId::parse(&card).map_err(|e| bad(e.to_string()))?,
        purpose: Purpose::parse(&purpose).ok_or_else(|| bad(format!("purpose {purpose:?}")))?,
        state: ClosureState::parse(&state).ok_or_else(|| bad(format!("state {state:?}")))?,
        stage: serde_json::from_str(&stage).map_err(|e| bad(e.to_string()))?,
        moved: Fen::new(moved).ok_or_else(|| bad(format!("moved {moved}")))?,
        unconfirmed: Fen::new(unconfirmed).ok_or_else(|| bad(format!("unconfirmed {unconfirmed}")))?,
        rounds: u32::try_from(rounds).map_err(|_| bad(format!("rounds {rounds}")))?,
        created_at_ms: column(row, 8)?,
        updated_at_ms: column(row, 9)?,
        version: column(row, 10)?,
        closure_id: id.clone(),
    })
}

fn debit_from_row(row: &Row) -> Result<ClosureDebit, StoreError> {
    let tap_id: String = column(row, 0)?;
    let bad = |why: String| StoreError::Corrupt { table: "closure_debits", key: tap_id.clone(), why };
    let state: String = column(row, 2)?;
    let counter: i64 = column(row, 3)?;
    let record: String = column(row, 4)?;
    Ok(ClosureDebit {
        closure_id: column(row, 1)?,
        state: DebitState::parse(&state).ok_or_else(|| bad(format!("state {state:?}")))?,
        counter_before: u16::try_from(counter).map_err(|_| bad(format!("counter {counter}")))?,
        record: serde_json::from_str(&record).map_err(|e| bad(e.to_string()))?,
        created_at_ms: column(row, 5)?,
        updated_at_ms: column(row, 6)?,
    })
}

fn transfer_from_row(row: &Row) -> Result<Transfer, StoreError> {
    let code_sha256: String = column(row, 0)?;
    let bad = |why: String| StoreError::Corrupt { table: "card_transfers", key: code_sha256.clone(), why };
    let from: String = column(row, 2)?;
    let amount: i64 = column(row, 5)?;
    let to_card: Option<String> = column(row, 7)?;
    let order: Option<String> = column(row, 8)?;
    Ok(Transfer {
        code_sha256: code_sha256.clone(),
        closure_id: column(row, 1)?,
        from_card_id: CardId::parse(&from).map_err(|e| bad(e.to_string()))?,
        from_device_id: column(row, 3)?,
        city: column(row, 4)?,
        amount: Fen::new(amount).ok_or_else(|| bad(format!("amount {amount}")))?,
        to_device_id: column(row, 6)?,
        to_card_id: to_card.map(|c| CardId::parse(&c)).transpose().map_err(|e| bad(e.to_string()))?,
        load_order_id: order.map(|o| MerchantOrderId::parse(&o)).transpose().map_err(|e| bad(e.to_string()))?,
        created_at_ms: column(row, 9)?,
        claimed_at_ms: column(row, 10)?,
    })
}
