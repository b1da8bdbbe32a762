//! The platform's own card transactions in the back office: its over-the-air loads and its
//! service desk's debits reach the cards' shadows as if their terminals had uploaded them —
//! without an upload. Each final record (`confirmed`, `recovered` or `unconfirmed`; not one in
//! doubt, nor one proven not to have happened) is taken as a batch of its own, `platform:<tap
//! ID>` from its terminal, so that feeding is idempotent and kept for audit like any upload; a
//! record a gate also uploaded is a duplicate to the shadow.

use yitong_clearing::batch::{Batch, BatchHeader};
use yitong_profile::DateTime;
use yitong_record::{TacKeys, TapRecord};

use super::sql::query;
use super::{column, IngestError, Store, Upload};

/// The batch ID prefix of the platform's records.
pub const PLATFORM_BATCH_PREFIX: &str = "platform:";
/// The operator named on the platform's batches.
pub const PLATFORM_OPERATOR: &str = "platform";
/// Records fed per group.
const FEED_GROUP: i64 = 5_000;

/// How far before a feed began a record may have been changed and still be found by the next
/// feed from [`PlatformFeed::next_since_ms`] (clocks of several service processes, transactions
/// committed after the feed began), in milliseconds.
pub const FEED_MARGIN_MS: i64 = 600_000;

/// What a feed did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlatformFeed {
    /// Records fed now.
    pub fed: usize,
    /// Records that could not be fed (tap ID, why): left for the next feed.
    pub failed: Vec<(String, String)>,
    /// Where the next feed may start (its `since_ms`): [`FEED_MARGIN_MS`] before this feed
    /// began, or the first record that could not be fed, whichever is earlier.
    pub next_since_ms: i64,
}

impl Store {
    /// Feeds every final platform record changed since `since_ms` (Unix milliseconds; `i64::MIN`
    /// for all) and not fed yet to the back office (TACs verified with `tac_keys`, received at
    /// `received`, the feed beginning at `now_ms`), in groups; a group that fails is fed record
    /// by record, and a record that still fails is reported and left for the next feed.
    pub async fn feed_platform_records(
        &self,
        tac_keys: &TacKeys,
        received: DateTime,
        now_ms: i64,
        since_ms: i64,
    ) -> Result<PlatformFeed, IngestError> {
        let mut feed = PlatformFeed { next_since_ms: now_ms.saturating_sub(FEED_MARGIN_MS), ..PlatformFeed::default() };
        for table in ["ota_loads", "closure_debits"] {
            // Pages in (update time, tap ID) order, each after the last row seen.
            let mut after: (i64, String) = (since_ms, String::new());
            loop {
                // The batch's gate is the tap ID's terminal (its first 12 hex digits).
                let sql = format!(
                    "SELECT t.tap_id, t.record, t.updated_at_ms FROM {table} AS t \
                     WHERE t.state IN ('confirmed', 'recovered', 'unconfirmed') \
                     AND (t.updated_at_ms > $1 OR (t.updated_at_ms = $1 AND t.tap_id > $2)) AND NOT EXISTS ( \
                     SELECT 1 FROM clearing_batches AS b WHERE b.gate = substr(t.tap_id, 1, 12) \
                     AND b.batch_id = '{PLATFORM_BATCH_PREFIX}' || t.tap_id) \
                     ORDER BY t.updated_at_ms, t.tap_id LIMIT {FEED_GROUP}"
                );
                // Paging through every platform record: a report's read.
                let mut reader = self.reader().await?;
                let rows = query(&sql).bind(after.0).bind(after.1.as_str()).fetch_all(&mut reader.report_db()).await?;
                drop(reader);
                let Some(last) = rows.last() else { break };
                after = (column(last, 2)?, column(last, 0)?);
                let mut batches = Vec::with_capacity(rows.len());
                let mut changed_ms = std::collections::BTreeMap::new();
                for row in &rows {
                    let tap_id: String = column(row, 0)?;
                    let text: String = column(row, 1)?;
                    let updated_ms: i64 = column(row, 2)?;
                    match serde_json::from_str::<TapRecord>(&text) {
                        Ok(record) => {
                            changed_ms.insert(tap_id.clone(), updated_ms);
                            batches.push(platform_batch(&tap_id, record));
                        }
                        Err(error) => {
                            feed.next_since_ms = feed.next_since_ms.min(updated_ms);
                            feed.failed.push((tap_id, format!("{table}: the stored record: {error}")));
                        }
                    }
                }
                let uploads: Vec<Upload<'_>> = batches
                    .iter()
                    .map(|batch| Upload { batch, operator_key_id: PLATFORM_OPERATOR, received, now_ms })
                    .collect();
                // What was read is on disk before the back office keeps what follows from it.
                self.store_file_durable().await?;
                match self.ingest_batches(&uploads, tac_keys).await {
                    Ok(answers) => feed.fed += answers.iter().filter(|a| a.new).count(),
                    Err(_) => {
                        for upload in &uploads {
                            match self.ingest_batches(std::slice::from_ref(upload), tac_keys).await {
                                Ok(answers) => feed.fed += answers.iter().filter(|a| a.new).count(),
                                Err(error) => {
                                    let tap_id = tap_id_of(upload.batch);
                                    let updated_ms = changed_ms.get(&tap_id).copied().unwrap_or(i64::MIN);
                                    feed.next_since_ms = feed.next_since_ms.min(updated_ms);
                                    feed.failed.push((tap_id, error.to_string()));
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(feed)
    }
}

/// The batch a platform record is fed as.
fn platform_batch(tap_id: &str, record: TapRecord) -> Batch {
    Batch {
        header: BatchHeader {
            batch_id: format!("{PLATFORM_BATCH_PREFIX}{tap_id}"),
            gate: record.terminal_id,
            operator: PLATFORM_OPERATOR.to_owned(),
        },
        records: vec![record],
    }
}

fn tap_id_of(batch: &Batch) -> String {
    batch.header.batch_id.trim_start_matches(PLATFORM_BATCH_PREFIX).to_owned()
}
