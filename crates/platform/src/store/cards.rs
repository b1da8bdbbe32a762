//! Phone cards, serial allocation, promotional sign-up counts and sign-up fee orders.

use std::collections::BTreeMap;

use super::orders::order_in;
use super::sql::{query, Db, Row};
use super::{column, Store, StoreError};
use crate::issuance::{PhoneCard, SignupOrder};
use crate::ledger::{CardId, Fen};
use crate::payments::{MerchantOrderId, Order};

pub(super) const CARD_COLUMNS: &str =
    "card_id, city, device_id, se_id, maker, model, carrier, key_version, valid_from, valid_to, \
                            fee_fen, promotion_id, fee_order_id, issued_at_ms";

impl Store {
    /// The phone card `card_id`, if issued.
    pub async fn phone_card(&self, card_id: &CardId) -> Result<Option<PhoneCard>, StoreError> {
        card_by_id_in(&mut self.reader().await?.db(), card_id).await
    }

    /// Order `id` with the card it names (`None` when it names none, or one not issued here),
    /// both from one snapshot.
    pub async fn order_with_card(
        &self,
        id: &MerchantOrderId,
    ) -> Result<Option<(Order, Option<PhoneCard>)>, StoreError> {
        let mut snapshot = self.begin_read().await?;
        // Returned early, the snapshot is rolled back.
        let Some(order) = order_in(&mut snapshot.db(), id).await? else { return Ok(None) };
        let card = match &order.card_id {
            Some(card_id) => card_by_id_in(&mut snapshot.db(), card_id).await?,
            None => None,
        };
        snapshot.commit().await?;
        Ok(Some((order, card)))
    }

    /// How many sign-ups each promotion of `city` has granted.
    pub async fn promotion_signups(&self, city: &str) -> Result<BTreeMap<String, u32>, StoreError> {
        let rows = query("SELECT promotion_id, signups FROM promotion_signups WHERE city = $1")
            .bind(city)
            .fetch_all(&mut self.reader().await?.db())
            .await?;
        rows.iter()
            .map(|row| {
                let id: String = column(row, 0)?;
                let count: i64 = column(row, 1)?;
                let count = u32::try_from(count).map_err(|_| StoreError::Corrupt {
                    table: "promotion_signups",
                    key: id.clone(),
                    why: format!("count {count}"),
                })?;
                Ok((id, count))
            })
            .collect()
    }
}

/// Card `card_id`, if issued.
pub(crate) async fn card_by_id_in(connection: &mut Db<'_>, card_id: &CardId) -> Result<Option<PhoneCard>, StoreError> {
    let row = query(format!("SELECT {CARD_COLUMNS} FROM phone_cards WHERE card_id = $1"))
        .bind(card_id.as_str())
        .fetch_optional(&mut *connection)
        .await?;
    row.as_ref().map(card_from_row).transpose()
}

/// The card of phone `device_id` in `city` that is not closed, if it has one.
pub(crate) async fn card_of_device_in(
    connection: &mut Db<'_>,
    device_id: &str,
    city: &str,
) -> Result<Option<PhoneCard>, StoreError> {
    let row = query(format!(
        "SELECT {CARD_COLUMNS} FROM phone_cards WHERE device_id = $1 AND city = $2 AND state <> 'closed'"
    ))
    .bind(device_id)
    .bind(city)
    .fetch_optional(&mut *connection)
    .await?;
    row.as_ref().map(card_from_row).transpose()
}

/// Counts one sign-up of promotion `id` unless it has granted `cap` already; `false` when the
/// cap is reached (nothing written).
pub(crate) async fn count_promotion_in(
    connection: &mut Db<'_>,
    city: &str,
    id: &str,
    cap: Option<u32>,
) -> Result<bool, StoreError> {
    query("INSERT INTO promotion_signups (city, promotion_id, signups) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING")
        .bind(city)
        .bind(id)
        .execute(&mut *connection)
        .await?;
    let cap = cap.map_or(i64::MAX, i64::from);
    let updated = query(
        "UPDATE promotion_signups SET signups = signups + 1 WHERE city = $1 AND promotion_id = $2 AND signups < $3",
    )
    .bind(city)
    .bind(id)
    .bind(cap)
    .execute(&mut *connection)
    .await?;
    Ok(updated == 1)
}

/// Takes the next serial sequence number of `city` (from 1); rolled back with its transaction.
pub(crate) async fn allocate_sequence_in(connection: &mut Db<'_>, city: &str) -> Result<u64, StoreError> {
    query("INSERT INTO serial_allocations (city, next_sequence) VALUES ($1, 1) ON CONFLICT DO NOTHING")
        .bind(city)
        .execute(&mut *connection)
        .await?;
    let row = query(
        "UPDATE serial_allocations SET next_sequence = next_sequence + 1 WHERE city = $1 RETURNING next_sequence",
    )
    .bind(city)
    .fetch_one(&mut *connection)
    .await?;
    let next: i64 = column(&row, 0)?;
    next.checked_sub(1).and_then(|n| u64::try_from(n).ok()).filter(|&n| n > 0).ok_or_else(|| StoreError::Corrupt {
        table: "serial_allocations",
        key: city.to_owned(),
        why: format!("next sequence {next}"),
    })
}

/// Records an issued card; `false` if the phone already has a card of the city that is not
/// closed (nothing written).
pub(crate) async fn insert_card_in(connection: &mut Db<'_>, card: &PhoneCard) -> Result<bool, StoreError> {
    let inserted = query(format!(
        "INSERT INTO phone_cards ({CARD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
         ON CONFLICT (device_id, city) WHERE state <> 'closed' DO NOTHING"
    ))
    .bind(card.card_id.as_str())
    .bind(card.city.as_str())
    .bind(card.device_id.as_str())
    .bind(card.se_id.as_str())
    .bind(card.maker.as_str())
    .bind(card.model.as_str())
    .bind(card.carrier.clone())
    .bind(i64::from(card.key_version))
    .bind(hex::encode_upper(card.valid_from))
    .bind(hex::encode_upper(card.valid_to))
    .bind(card.fee.get())
    .bind(card.promotion_id.clone())
    .bind(card.fee_order_id.as_ref().map(|id| id.as_str().to_owned()))
    .bind(card.issued_at_ms)
    .execute(&mut *connection)
    .await?;
    Ok(inserted == 1)
}

/// Records what fee order `order.merchant_order_id` was quoted for; `false` if it was recorded
/// before (nothing written: compare with [`signup_order_in`]).
pub(crate) async fn insert_signup_order_in(connection: &mut Db<'_>, order: &SignupOrder) -> Result<bool, StoreError> {
    let inserted = query(
        "INSERT INTO signup_orders (merchant_order_id, device_id, city, fee_fen, promotion_id) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(order.merchant_order_id.as_str())
    .bind(order.device_id.as_str())
    .bind(order.city.as_str())
    .bind(order.fee.get())
    .bind(order.promotion_id.clone())
    .execute(&mut *connection)
    .await?;
    Ok(inserted == 1)
}

/// What fee order `id` was quoted for.
pub(crate) async fn signup_order_in(
    connection: &mut Db<'_>,
    id: &MerchantOrderId,
) -> Result<Option<SignupOrder>, StoreError> {
    let row = query(
        "SELECT merchant_order_id, device_id, city, fee_fen, promotion_id FROM signup_orders WHERE merchant_order_id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let fee: i64 = column(&row, 3)?;
    Ok(Some(SignupOrder {
        merchant_order_id: id.clone(),
        device_id: column(&row, 1)?,
        city: column(&row, 2)?,
        fee: Fen::new(fee).ok_or_else(|| StoreError::Corrupt {
            table: "signup_orders",
            key: id.to_string(),
            why: format!("fee {fee}"),
        })?,
        promotion_id: column(&row, 4)?,
    }))
}

pub(super) fn card_from_row(row: &Row) -> Result<PhoneCard, StoreError> {
    let id: String = column(row, 0)?;
    let bad = |why: String| StoreError::Corrupt { table: "phone_cards", key: id.clone(), why };
    let card_id = CardId::parse(&id).map_err(|error| bad(error.to_string()))?;
    let key_version: i64 = column(row, 7)?;
    let key_version = u8::try_from(key_version).map_err(|_| bad(format!("key version {key_version}")))?;
    let day = |index: usize| -> Result<[u8; 4], StoreError> {
        let text: String = column(row, index)?;
        let mut day = [0u8; 4];
        hex::decode_to_slice(&text, &mut day).map_err(|_| bad(format!("date {text:?}")))?;
        Ok(day)
    };
    let fee: i64 = column(row, 10)?;
    let fee_order_id: Option<String> = column(row, 12)?;
    let fee_order_id =
        fee_order_id.map(|id| MerchantOrderId::parse(&id)).transpose().map_err(|error| bad(error.to_string()))?;
    Ok(PhoneCard {
        card_id,
        city: column(row, 1)?,
        device_id: column(row, 2)?,
        se_id: column(row, 3)?,
        maker: column(row, 4)?,
        model: column(row, 5)?,
        carrier: column(row, 6)?,
        key_version,
        valid_from: day(8)?,
        valid_to: day(9)?,
        fee: Fen::new(fee).ok_or_else(|| bad(format!("fee {fee}")))?,
        promotion_id: column(row, 11)?,
        fee_order_id,
        issued_at_ms: column(row, 13)?,
    })
}
