//! Over-the-air loads: each MAC2 handed out, as a typed load record, and the load host's
//! transaction numbers.

use std::collections::HashMap;

use yitong_record::TapRecord;

use super::orders::{CARD_ORDERS_LISTED_MAX, CARD_ORDER_IDS};
use super::sql::{query, Db, Row};
use super::{column, Store, StoreError};
use crate::ledger::CardId;
use crate::ota::{LoadState, OtaLoad};
use crate::payments::MerchantOrderId;

/// Most loads one [`Store::ota_loads_in_state`] call returns.
pub const LOADS_LISTED_MAX: u32 = 1_000;

const LOAD_COLUMNS: &str =
    "tap_id, merchant_order_id, card_id, state, counter_before, record, created_at_ms, updated_at_ms";

impl Store {
    /// Every load of order `id`, oldest first (a load proven not loaded may be followed by another).
    pub async fn ota_loads(&self, id: &MerchantOrderId) -> Result<Vec<OtaLoad>, StoreError> {
        let rows = query(loads_of_order_sql()).bind(id.as_str()).fetch_all(&mut self.reader().await?.db()).await?;
        rows.iter().map(load_from_row).collect()
    }

    /// The load of `card` in doubt, if any: what to ask the phone about at its next contact
    /// (`OtaService::evidence_commands` for its order).
    pub async fn ota_load_in_doubt(&self, card: &CardId) -> Result<Option<OtaLoad>, StoreError> {
        let mut connection = self.reader().await?;
        doubt_of_card_in(&mut connection.db(), card).await
    }

    /// Loads in `state`, oldest first, at most `limit` (at most [`LOADS_LISTED_MAX`]): the doubts to ask the
    /// phones about, or the unconfirmed loads the back office settles.
    pub async fn ota_loads_in_state(&self, state: LoadState, limit: u32) -> Result<Vec<OtaLoad>, StoreError> {
        let rows = query(format!(
            "SELECT {LOAD_COLUMNS} FROM ota_loads WHERE state = $1 ORDER BY updated_at_ms, tap_id LIMIT $2"
        ))
        .bind(state.name())
        .bind(i64::from(limit.min(LOADS_LISTED_MAX)))
        .fetch_all(&mut self.reader().await?.db())
        .await?;
        rows.iter().map(load_from_row).collect()
    }
}

/// Every load of order `$1`, oldest first.
pub(super) fn loads_of_order_sql() -> String {
    format!("SELECT {LOAD_COLUMNS} FROM ota_loads WHERE merchant_order_id = $1 ORDER BY created_at_ms, tap_id")
}

/// The loads on `card` (`confirmed` or `recovered`) of its orders that
/// [`orders_of_card_in`](super::orders::orders_of_card_in) lists, by order: one read for a card's
/// history.
pub(crate) async fn loads_on_card_in(
    connection: &mut Db<'_>,
    card: &CardId,
) -> Result<HashMap<MerchantOrderId, OtaLoad>, StoreError> {
    let rows = query(loads_on_card_sql())
        .bind(card.as_str())
        .bind(i64::from(CARD_ORDERS_LISTED_MAX))
        .fetch_all(&mut *connection)
        .await?;
    rows.iter().map(|row| load_from_row(row).map(|load| (load.merchant_order_id.clone(), load))).collect()
}

/// The loads on card `$1` of its newest `$2` orders.
pub(super) fn loads_on_card_sql() -> String {
    format!(
        "SELECT {LOAD_COLUMNS} FROM ota_loads WHERE state IN ('confirmed', 'recovered') \
         AND merchant_order_id IN ({CARD_ORDER_IDS})"
    )
}

/// The load of order `id` that is not proven not loaded (at most one: a unique index).
pub(crate) async fn live_load_in(connection: &mut Db<'_>, id: &MerchantOrderId) -> Result<Option<OtaLoad>, StoreError> {
    let row =
        query(format!("SELECT {LOAD_COLUMNS} FROM ota_loads WHERE merchant_order_id = $1 AND state <> 'not_loaded'"))
            .bind(id.as_str())
            .fetch_optional(&mut *connection)
            .await?;
    row.as_ref().map(load_from_row).transpose()
}

/// The load of `card` in doubt (at most one: a unique index).
pub(crate) async fn doubt_of_card_in(connection: &mut Db<'_>, card: &CardId) -> Result<Option<OtaLoad>, StoreError> {
    let row = query(format!("SELECT {LOAD_COLUMNS} FROM ota_loads WHERE card_id = $1 AND state = 'in_doubt'"))
        .bind(card.as_str())
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(load_from_row).transpose()
}

/// Records a load; a unique index refuses a second live load of one order or a second doubt of
/// one card (a database error).
pub(crate) async fn insert_load_in(connection: &mut Db<'_>, load: &OtaLoad) -> Result<(), StoreError> {
    query(format!("INSERT INTO ota_loads ({LOAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
        .bind(load.record.tap_id().to_string())
        .bind(load.merchant_order_id.as_str())
        .bind(load.card_id.as_str())
        .bind(load.state.name())
        .bind(i64::from(load.counter_before))
        .bind(record_text(&load.record)?)
        .bind(load.created_at_ms)
        .bind(load.updated_at_ms)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Moves `load` from its state to `to` with `record`, if nobody moved it since it was read;
/// `false` if somebody did (nothing written).
pub(crate) async fn settle_load_in(
    connection: &mut Db<'_>,
    load: &OtaLoad,
    to: LoadState,
    record: &TapRecord,
    at_ms: i64,
) -> Result<bool, StoreError> {
    let updated =
        query("UPDATE ota_loads SET state = $1, record = $2, updated_at_ms = $3 WHERE tap_id = $4 AND state = $5")
            .bind(to.name())
            .bind(record_text(record)?)
            .bind(at_ms)
            .bind(load.record.tap_id().to_string())
            .bind(load.state.name())
            .execute(&mut *connection)
            .await?;
    Ok(updated == 1)
}

/// Takes the next transaction number of the load host `terminal_id` (from 1).
pub(crate) async fn next_transaction_number_in(
    connection: &mut Db<'_>,
    terminal_id: [u8; 6],
) -> Result<u32, StoreError> {
    let terminal = hex::encode_upper(terminal_id);
    let take = || {
        query(
            "UPDATE ota_terminals SET next_transaction_number = next_transaction_number + 1 WHERE terminal_id = $1 \
             RETURNING next_transaction_number",
        )
        .bind(terminal.as_str())
    };
    // The terminal's row is made by its first load only.
    let row = match take().fetch_optional(&mut *connection).await? {
        Some(row) => row,
        None => {
            query("INSERT INTO ota_terminals (terminal_id, next_transaction_number) VALUES ($1, 1) ON CONFLICT DO NOTHING")
                .bind(terminal.as_str())
                .execute(&mut *connection)
                .await?;
            take().fetch_one(&mut *connection).await?
        }
    };
    let next: i64 = column(&row, 0)?;
    next.checked_sub(1).and_then(|n| u32::try_from(n).ok()).ok_or(StoreError::Corrupt {
        table: "ota_terminals",
        key: terminal,
        why: format!("next transaction number {next}"),
    })
}

fn record_text(record: &TapRecord) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|error| StoreError::Corrupt {
        table: "ota_loads",
        key: record.tap_id().to_string(),
        why: error.to_string(),
    })
}

fn load_from_row(row: &Row) -> Result<OtaLoad, StoreError> {
    let tap_id: String = column(row, 0)?;
    let bad = |why: String| StoreError::Corrupt { table: "ota_loads", key: tap_id.clone(), why };
    let order: String = column(row, 1)?;
    let card: String = column(row, 2)?;
    let state: String = column(row, 3)?;
    let counter: i64 = column(row, 4)?;
    let record: String = column(row, 5)?;
    let record: TapRecord = serde_json::from_str(&record).map_err(|error| bad(error.to_string()))?;
    if record.tap_id().to_string() != tap_id {
        return Err(bad("record of another tap".to_owned()));
    }
    Ok(OtaLoad {
        merchant_order_id: MerchantOrderId::parse(&order).map_err(|error| bad(error.to_string()))?,
        card_id: CardId::parse(&card).map_err(|error| bad(error.to_string()))?,
        state: LoadState::parse(&state).ok_or_else(|| bad(format!("unknown state {state:?}")))?,
        counter_before: u16::try_from(counter).map_err(|_| bad(format!("counter {counter}")))?,
        record,
        created_at_ms: column(row, 6)?,
        updated_at_ms: column(row, 7)?,
    })
}
