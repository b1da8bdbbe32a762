//! Payment orders in the database.

use super::sql::{query, Db, Row};
use super::{column, Store, StoreError};
use crate::ledger::{CardId, Fen};
use crate::payments::{MerchantOrderId, Order, OrderKind, OrderState};

/// Most orders one [`Store::orders_waiting`] call returns.
pub const ORDERS_LISTED_MAX: u32 = 1_000;
/// Most orders of one card a history lists (`Store::card_view`, newest first).
pub const CARD_ORDERS_LISTED_MAX: u32 = 200;
/// The IDs of the orders of card `$1` that a history lists: the newest `$2`.
pub(super) const CARD_ORDER_IDS: &str = "SELECT merchant_order_id FROM payment_orders WHERE card_id = $1 \
                                         ORDER BY created_at_ms DESC, merchant_order_id DESC LIMIT $2";

const ORDER_COLUMNS: &str = "merchant_order_id, kind, provider, card_id, amount_fen, state, provider_transaction_id, \
                             created_at_ms, updated_at_ms, version";

impl Store {
    /// The order `id`, if there is one.
    pub async fn order(&self, id: &MerchantOrderId) -> Result<Option<Order>, StoreError> {
        let mut connection = self.reader().await?;
        order_in(&mut connection.db(), id).await
    }

    /// Orders of one of `kinds` in one of `states` last changed before `updated_before_ms`,
    /// oldest first (by last change, then ID), after the order `after` names (its last change
    /// and ID: the last one of the page before), at most `limit` (itself at most
    /// [`ORDERS_LISTED_MAX`]): the orders whose notification is late or whose refund has not
    /// been confirmed, a page at a time.
    pub async fn orders_waiting(
        &self,
        states: &[OrderState],
        kinds: &[OrderKind],
        updated_before_ms: i64,
        after: Option<(i64, &MerchantOrderId)>,
        limit: u32,
    ) -> Result<Vec<Order>, StoreError> {
        if states.is_empty() || kinds.is_empty() {
            return Ok(Vec::new());
        }
        let listed =
            |first: usize, count: usize| (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM payment_orders WHERE updated_at_ms < $1 \
             AND updated_at_ms >= $3 AND (updated_at_ms > $3 OR merchant_order_id > $4) \
             AND state IN ({}) AND kind IN ({}) ORDER BY updated_at_ms, merchant_order_id LIMIT $2",
            listed(5, states.len()),
            listed(5 + states.len(), kinds.len()),
        );
        let (after_ms, after_id) = after.map_or((i64::MIN, ""), |(at, id)| (at, id.as_str()));
        let mut query = query(&sql)
            .bind(updated_before_ms)
            .bind(i64::from(limit.min(ORDERS_LISTED_MAX)))
            .bind(after_ms)
            .bind(after_id);
        for state in states {
            query = query.bind(state.name());
        }
        for kind in kinds {
            query = query.bind(kind.name());
        }
        let rows = query.fetch_all(&mut self.reader().await?.db()).await?;
        rows.iter().map(order_from_row).collect()
    }
}

/// Inserts a new order; `false` if one with the same ID exists (nothing written).
pub(crate) async fn insert_order_in(connection: &mut Db<'_>, order: &Order) -> Result<bool, StoreError> {
    let inserted = query(format!(
        "INSERT INTO payment_orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (merchant_order_id) DO NOTHING"
    ))
    .bind(order.merchant_order_id.as_str())
    .bind(order.kind.name())
    .bind(order.provider.as_str())
    .bind(order.card_id.as_ref().map(|card| card.as_str().to_owned()))
    .bind(order.amount.get())
    .bind(order.state.name())
    .bind(order.provider_transaction_id.clone())
    .bind(order.created_at_ms)
    .bind(order.updated_at_ms)
    .bind(order.version)
    .execute(&mut *connection)
    .await?;
    Ok(inserted == 1)
}

/// Reads order `id` inside a transaction.
pub(crate) async fn order_in(connection: &mut Db<'_>, id: &MerchantOrderId) -> Result<Option<Order>, StoreError> {
    let row = query(format!("SELECT {ORDER_COLUMNS} FROM payment_orders WHERE merchant_order_id = $1"))
        .bind(id.as_str())
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(order_from_row).transpose()
}

/// The orders naming `card` (its top-ups), newest first, at most
/// [`CARD_ORDERS_LISTED_MAX`].
pub(crate) async fn orders_of_card_in(connection: &mut Db<'_>, card: &CardId) -> Result<Vec<Order>, StoreError> {
    let rows = query(orders_of_card_sql())
        .bind(card.as_str())
        .bind(i64::from(CARD_ORDERS_LISTED_MAX))
        .fetch_all(&mut *connection)
        .await?;
    rows.iter().map(order_from_row).collect()
}

/// The newest `$2` orders of card `$1`, newest first.
pub(super) fn orders_of_card_sql() -> String {
    format!(
        "SELECT {ORDER_COLUMNS} FROM payment_orders WHERE merchant_order_id IN ({CARD_ORDER_IDS}) \
         ORDER BY created_at_ms DESC, merchant_order_id DESC"
    )
}

/// Moves `order` to `to` if nobody moved it since it was read (same state and version), and
/// records the transition; `false` if somebody did (nothing written: read again).
pub(crate) async fn transition_in(
    connection: &mut Db<'_>,
    order: &Order,
    to: OrderState,
    provider_transaction_id: Option<&str>,
    at_ms: i64,
) -> Result<bool, StoreError> {
    let version = order.version.checked_add(1).ok_or_else(|| corrupt(order, "version overflow"))?;
    let updated = query(
        "UPDATE payment_orders SET state = $1, version = $2, updated_at_ms = $3, \
         provider_transaction_id = COALESCE($4, provider_transaction_id) \
         WHERE merchant_order_id = $5 AND state = $6 AND version = $7",
    )
    .bind(to.name())
    .bind(version)
    .bind(at_ms)
    .bind(provider_transaction_id.map(str::to_owned))
    .bind(order.merchant_order_id.as_str())
    .bind(order.state.name())
    .bind(order.version)
    .execute(&mut *connection)
    .await?;
    if updated == 0 {
        return Ok(false);
    }
    query(
        "INSERT INTO payment_order_transitions (merchant_order_id, version, from_state, to_state, at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(order.merchant_order_id.as_str())
    .bind(version)
    .bind(order.state.name())
    .bind(to.name())
    .bind(at_ms)
    .execute(&mut *connection)
    .await?;
    Ok(true)
}

/// The states order `id` went through, oldest first (the audit trail).
pub(crate) async fn transitions(store: &Store, id: &MerchantOrderId) -> Result<Vec<OrderState>, StoreError> {
    let rows = query("SELECT to_state FROM payment_order_transitions WHERE merchant_order_id = $1 ORDER BY version")
        .bind(id.as_str())
        .fetch_all(&mut store.reader().await?.db())
        .await?;
    rows.iter()
        .map(|row| {
            let name: String = column(row, 0)?;
            OrderState::parse(&name).ok_or_else(|| StoreError::Corrupt {
                table: "payment_order_transitions",
                key: id.to_string(),
                why: format!("unknown state {name:?}"),
            })
        })
        .collect()
}

fn order_from_row(row: &Row) -> Result<Order, StoreError> {
    let id: String = column(row, 0)?;
    let bad = |why: String| StoreError::Corrupt { table: "payment_orders", key: id.clone(), why };
    let merchant_order_id = MerchantOrderId::parse(&id).map_err(|error| bad(error.to_string()))?;
    let kind: String = column(row, 1)?;
    let kind = OrderKind::parse(&kind).ok_or_else(|| bad(format!("unknown kind {kind:?}")))?;
    let card_id: Option<String> = column(row, 3)?;
    let card_id = card_id.map(|card| CardId::parse(&card)).transpose().map_err(|error| bad(error.to_string()))?;
    let amount: i64 = column(row, 4)?;
    let amount = Fen::new(amount).ok_or_else(|| bad(format!("negative amount {amount}")))?;
    let state: String = column(row, 5)?;
    let state = OrderState::parse(&state).ok_or_else(|| bad(format!("unknown state {state:?}")))?;
    Ok(Order {
        merchant_order_id,
        kind,
        provider: column(row, 2)?,
        card_id,
        amount,
        state,
        provider_transaction_id: column(row, 6)?,
        created_at_ms: column(row, 7)?,
        updated_at_ms: column(row, 8)?,
        version: column(row, 9)?,
    })
}

fn corrupt(order: &Order, why: &str) -> StoreError {
    StoreError::Corrupt { table: "payment_orders", key: order.merchant_order_id.to_string(), why: why.to_owned() }
}
