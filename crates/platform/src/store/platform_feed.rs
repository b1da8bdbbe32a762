//! The platform's own card transactions in the back office: its over-the-air loads and its
//! service desk's debits reach the cards' shadows as if their terminals had uploaded them —
//! without an upload. Each final record (`confirmed`, `recovered` or `unconfirmed`; not one in
//! doubt, nor one proven not to have happened) is taken as a batch of its own, `platform:<tap
//! ID>` from its terminal, so that feeding is idempotent and kept for audit like any upload; a
//! record a gate also uploaded is a duplicate to the shadow.

use yitong_clearing::batch::{Batch, BatchHeader};
use yitong_profile::DateTime;
use yitong_record::{TacKeys, TapRecord};

use super::{column, IngestError, Store, Upload};

/// The batch ID prefix of the platform's records.
pub const PLATFORM_BATCH_PREFIX: &str = "platform:";
/// The operator named on the platform's batches.
pub const PLATFORM_OPERATOR: &str = "platform";
/// Records fed per group.
const FEED_GROUP: i64 = 5_000;

impl Store {
    /// Feeds every final platform record not fed yet to the back office (TACs verified with
    /// `tac_keys`, received at `received`): the number fed.
    pub async fn feed_platform_records(
        &self,
        tac_keys: &TacKeys,
        received: DateTime,
        now_ms: i64,
    ) -> Result<usize, IngestError> {
        let mut fed = 0;
        for table in ["ota_loads", "closure_debits"] {
            loop {
                // The batch's gate is the tap ID's terminal (its first 12 hex digits).
                let sql = format!(
                    "SELECT t.tap_id, t.record FROM {table} AS t \
                     WHERE t.state IN ('confirmed', 'recovered', 'unconfirmed') AND NOT EXISTS ( \
                     SELECT 1 FROM clearing_batches AS b WHERE b.gate = substr(t.tap_id, 1, 12) \
                     AND b.batch_id = '{PLATFORM_BATCH_PREFIX}' || t.tap_id) \
                     ORDER BY t.updated_at_ms, t.tap_id LIMIT {FEED_GROUP}"
                );
                let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
                if rows.is_empty() {
                    break;
                }
                let mut batches = Vec::with_capacity(rows.len());
                for row in &rows {
                    let tap_id: String = column(row, 0)?;
                    let text: String = column(row, 1)?;
                    let record: TapRecord = serde_json::from_str(&text)
                        .map_err(|e| IngestError::Shadow(format!("{table} {tap_id}: {e}")))?;
                    batches.push(Batch {
                        header: BatchHeader {
                            batch_id: format!("{PLATFORM_BATCH_PREFIX}{tap_id}"),
                            gate: record.terminal_id,
                            operator: PLATFORM_OPERATOR.to_owned(),
                        },
                        records: vec![record],
                    });
                }
                let uploads: Vec<Upload<'_>> = batches
                    .iter()
                    .map(|batch| Upload { batch, operator_key_id: PLATFORM_OPERATOR, received, now_ms })
                    .collect();
                let answers = self.ingest_batches(&uploads, tac_keys).await?;
                let new = answers.iter().filter(|a| a.new).count();
                fed += new;
                if new == 0 {
                    // Nothing new although the rows were found: a record whose tap ID and terminal
                    // disagree (its batch is kept under the terminal); stop rather than loop.
                    break;
                }
            }
        }
        Ok(fed)
    }
}
