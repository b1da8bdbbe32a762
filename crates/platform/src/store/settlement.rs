//! What the platform itself contributes to a day's clearing: its over-the-air loads and its
//! service desk's debits (typed records, cleared once the card proved them, pending while in
//! doubt or unconfirmed), and the figures of its ledger the cards never show — fees earned,
//! refunds paid, loads paid for — as `yitong_clearing` platform entries. Gate uploads come with
//! ingestion.

use yitong_clearing::settlement::{PlatformEntry, PlatformEntryKind};
use yitong_profile::DateTime;
use yitong_record::{RecordStatus, TapRecord};

use super::sql::query;
use super::{column, Store, StoreError};
use crate::cities::Cities;

/// Milliseconds Asia/Shanghai is ahead of UTC.
const SHANGHAI_OFFSET_MS: i64 = 8 * 3_600 * 1_000;

/// The platform's records and ledger figures of a time window.
#[derive(Debug, Default)]
pub struct PlatformDay {
    /// Loads and debits the cards proved (confirmed, or recovered later).
    pub cleared: Vec<TapRecord>,
    /// Loads and debits still in doubt, or handed on unconfirmed.
    pub pending: Vec<TapRecord>,
    /// Fees earned, refunds paid and loads paid for.
    pub entries: Vec<PlatformEntry>,
}

/// How far a platform record's stamp (the time sent to the card) may be from when the platform
/// made it (the same clock, read within one request), in milliseconds: the window searched for a
/// day's records around the day.
const STAMP_MARGIN_MS: i64 = 3_600_000;

impl Store {
    /// The platform's records stamped from `from` to `until` (local time, end excluded; the way
    /// the gates' records are dated, so that a record falls on one day whoever reports it), and
    /// its ledger figures posted from `from_ms` to `to_ms` (Unix milliseconds, end excluded);
    /// issuers by the cards' cities in `cities`.
    pub async fn platform_day(
        &self,
        cities: &Cities,
        (from, until): (DateTime, DateTime),
        from_ms: i64,
        to_ms: i64,
    ) -> Result<PlatformDay, StoreError> {
        // One snapshot: a load confirmed meanwhile is either cleared and paid, or neither.
        let mut transaction = self.begin_snapshot().await?;
        let mut db = transaction.db();
        let connection = &mut db;
        let mut day = PlatformDay::default();
        for (table, proven) in [("ota_loads", "recovered"), ("closure_debits", "recovered")] {
            let rows = query(format!(
                "SELECT tap_id, state, record FROM {table} WHERE created_at_ms >= $1 AND created_at_ms < $2 \
                 AND state IN ('confirmed', '{proven}', 'in_doubt', 'unconfirmed') ORDER BY tap_id"
            ))
            .bind(from_ms.saturating_sub(STAMP_MARGIN_MS))
            .bind(to_ms.saturating_add(STAMP_MARGIN_MS))
            .fetch_all(&mut *connection)
            .await?;
            for row in &rows {
                let tap_id: String = column(row, 0)?;
                let state: String = column(row, 1)?;
                let text: String = column(row, 2)?;
                let mut record: TapRecord = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    table,
                    key: tap_id.clone(),
                    why: e.to_string(),
                })?;
                if record.at < from || record.at >= until {
                    continue;
                }
                match state.as_str() {
                    "confirmed" => {
                        record.status = RecordStatus::Confirmed;
                        day.cleared.push(record);
                    }
                    "recovered" => {
                        record.status = RecordStatus::Recovered;
                        day.cleared.push(record);
                    }
                    _ => {
                        record.status = RecordStatus::Unconfirmed;
                        day.pending.push(record);
                    }
                }
            }
        }
        // Each order's move into `issued` (a fee earned), `refunded` or `loaded`, with its city: the
        // card's, or for a fee order the city its sign-up was quoted for. A paid load is dated as
        // its load record is (when the MAC2 left), so that the two fall on the same day.
        let rows = query(
            "SELECT t.merchant_order_id, o.kind, t.to_state, o.amount_fen, \
                    CASE WHEN t.to_state = 'loaded' THEN COALESCE(l.created_at_ms, t.at_ms) ELSE t.at_ms END AS at_ms, \
                    COALESCE(c.city, s.city) \
             FROM payment_order_transitions t \
             JOIN payment_orders o ON o.merchant_order_id = t.merchant_order_id \
             LEFT JOIN phone_cards c ON c.card_id = o.card_id \
             LEFT JOIN signup_orders s ON s.merchant_order_id = o.merchant_order_id \
             LEFT JOIN ota_loads l ON l.merchant_order_id = o.merchant_order_id \
                  AND l.state IN ('confirmed', 'recovered') AND t.to_state = 'loaded' \
             WHERE t.to_state IN ('issued', 'refunded', 'loaded') \
               AND CASE WHEN t.to_state = 'loaded' THEN COALESCE(l.created_at_ms, t.at_ms) ELSE t.at_ms END >= $1 \
               AND CASE WHEN t.to_state = 'loaded' THEN COALESCE(l.created_at_ms, t.at_ms) ELSE t.at_ms END < $2 \
             ORDER BY at_ms, t.merchant_order_id",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&mut *connection)
        .await?;
        for row in &rows {
            let order: String = column(row, 0)?;
            let bad = |why: String| StoreError::Corrupt { table: "payment_orders", key: order.clone(), why };
            let kind: String = column(row, 1)?;
            let to: String = column(row, 2)?;
            let amount: i64 = column(row, 3)?;
            let at_ms: i64 = column(row, 4)?;
            let city: Option<String> = column(row, 5)?;
            let city = city.ok_or_else(|| bad("no card or sign-up city".to_owned()))?;
            let kind = match (kind.as_str(), to.as_str()) {
                ("sign_up_fee", "issued") => PlatformEntryKind::Fee,
                (_, "refunded") => PlatformEntryKind::Refund,
                (_, "loaded") => PlatformEntryKind::LoadPaid,
                _ => continue,
            };
            let issuer_id = cities.get(&city).ok_or_else(|| bad(format!("city {city:?} is not served")))?.issuer_id();
            let amount_fen = u32::try_from(amount).map_err(|_| bad(format!("amount {amount}")))?;
            let at = DateTime::from_seconds_since_epoch(at_ms.saturating_add(SHANGHAI_OFFSET_MS).div_euclid(1_000))
                .map_err(|_| bad(format!("time {at_ms}")))?;
            day.entries.push(PlatformEntry { kind, issuer_id, amount_fen, at });
        }
        transaction.commit().await?;
        Ok(day)
    }
}
