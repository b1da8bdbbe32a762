//! The gates' uploads as the back office keeps them: one row per batch, its records packed in the
//! gates' binary encoding (`Batch::pack`) with one disposition letter per record and the span of
//! the records' local times — written in the ingest's transaction, read back for a business day,
//! for audit and for counts. Rows of the per-record table from before migration 8 are moved into
//! their batches when the store opens.

use std::collections::{BTreeMap, BTreeSet};

use yitong_clearing::batch::{Batch, BatchHeader};
use yitong_clearing::shadow::Verdict;
use yitong_profile::DateTime;
use yitong_record::TapRecord;

use super::clearing::{placeholders, Verdicts};
use super::sql::{query, Db};
use super::{column, Backend, IngestError, Store, StoreError, Upload, PLATFORM_BATCH_PREFIX};

/// What the back office made of a kept record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeptDisposition {
    /// A new transaction of its card.
    Accepted,
    /// A transaction seen before: not counted twice.
    Duplicate,
    /// Not taken as a transaction (the reason is in the batch's answer).
    Rejected,
}

impl KeptDisposition {
    /// Its name: `accepted`, `duplicate` or `rejected`.
    pub fn name(self) -> &'static str {
        match self {
            KeptDisposition::Accepted => "accepted",
            KeptDisposition::Duplicate => "duplicate",
            KeptDisposition::Rejected => "rejected",
        }
    }

    pub(crate) fn letter(self) -> char {
        match self {
            KeptDisposition::Accepted => 'a',
            KeptDisposition::Duplicate => 'd',
            KeptDisposition::Rejected => 'r',
        }
    }

    fn of_letter(letter: char) -> Option<KeptDisposition> {
        match letter {
            'a' => Some(KeptDisposition::Accepted),
            'd' => Some(KeptDisposition::Duplicate),
            'r' => Some(KeptDisposition::Rejected),
            _ => None,
        }
    }

    fn of_name(name: &str) -> Option<KeptDisposition> {
        [KeptDisposition::Accepted, KeptDisposition::Duplicate, KeptDisposition::Rejected]
            .into_iter()
            .find(|d| d.name() == name)
    }
}

/// A batch's row to write: its records packed, their dispositions, their time span.
pub(crate) struct BatchRow<'a> {
    pub(crate) upload: &'a Upload<'a>,
    pub(crate) gate: String,
    pub(crate) answer: String,
    pub(crate) packed: &'a [u8],
    pub(crate) dispositions: String,
}

/// The earliest and latest local times of `records` (`None` for none).
pub(super) fn time_span(records: &[TapRecord]) -> (Option<String>, Option<String>) {
    let first = records.iter().map(|r| r.at).min();
    let last = records.iter().map(|r| r.at).max();
    (first.map(|at| at.to_string()), last.map(|at| at.to_string()))
}

/// The columns of a batch's row written at ingestion, in the order `insert_batches` binds them
/// and `staged_batches::encode` writes them.
pub(super) const BATCH_COLUMNS: &str = "gate, batch_id, operator, operator_key_id, records, answer, received_at_ms, \
                                        records_packed, dispositions, first_at, last_at";
/// How many [`BATCH_COLUMNS`] there are.
pub(super) const BATCH_COLUMN_COUNT: usize = 11;

/// Batches' rows per `INSERT` ([`BATCH_COLUMN_COUNT`] parameters each; a row's records are up to
/// a few hundred KiB).
const BATCHES_PER_STATEMENT: usize = 64;

/// Writes the batches' rows, a few dozen per statement; `false` when one is there already
/// (another writer took it: the caller rolls back).
pub(crate) async fn insert_batches(
    backend: Backend,
    connection: &mut Db<'_>,
    rows: &[BatchRow<'_>],
) -> Result<bool, IngestError> {
    for chunk in rows.chunks(BATCHES_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO clearing_batches ({BATCH_COLUMNS}) VALUES {} ON CONFLICT (gate, batch_id) DO NOTHING",
            placeholders(backend, chunk.len(), BATCH_COLUMN_COUNT)
        );
        let mut query = query(&sql);
        for row in chunk {
            let batch = row.upload.batch;
            let (first_at, last_at) = time_span(&batch.records);
            query = query
                .bind(row.gate.as_str())
                .bind(batch.header.batch_id.as_str())
                .bind(batch.header.operator.as_str())
                .bind(row.upload.operator_key_id)
                .bind(i64::try_from(batch.records.len()).unwrap_or(i64::MAX))
                .bind(row.answer.as_str())
                .bind(row.upload.now_ms)
                .bind(row.packed)
                .bind(row.dispositions.as_str())
                .bind(first_at)
                .bind(last_at);
        }
        if query.execute(&mut *connection).await? != chunk.len() as u64 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A kept batch's records with their dispositions, from its stored row.
fn unpack(gate: &str, batch_id: &str, packed: &[u8], dispositions: &str) -> Result<Batch, StoreError> {
    let corrupt =
        |why: String| StoreError::Corrupt { table: "clearing_batches", key: format!("{gate}/{batch_id}"), why };
    let batch = Batch::unpack(packed).map_err(|e| corrupt(e.to_string()))?;
    if dispositions.chars().count() != batch.records.len()
        || dispositions.chars().any(|c| KeptDisposition::of_letter(c).is_none())
    {
        return Err(corrupt(format!("{} records, dispositions `{dispositions}`", batch.records.len())));
    }
    Ok(batch)
}

/// A record kept from a gate's batch ([`Store::batch_records`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptRecord {
    /// The record as uploaded.
    pub record: TapRecord,
    /// What it was.
    pub disposition: KeptDisposition,
}

impl Store {
    /// The records of the gate's (terminal ID, hex) batch as kept, in the batch's order (`None`:
    /// no such batch). The rejected ones' reasons are in the batch's answer.
    pub async fn batch_records(&self, gate: &str, batch_id: &str) -> Result<Option<Vec<KeptRecord>>, IngestError> {
        let row = query("SELECT records_packed, dispositions FROM clearing_batches WHERE gate = $1 AND batch_id = $2")
            .bind(gate)
            .bind(batch_id)
            .fetch_optional(&mut self.reader().await?.db())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let packed: Vec<u8> = column(&row, 0)?;
        let dispositions: String = column(&row, 1)?;
        let batch = unpack(gate, batch_id, &packed, &dispositions)?;
        let kept = batch
            .records
            .into_iter()
            .zip(dispositions.chars().filter_map(KeptDisposition::of_letter))
            .map(|(record, disposition)| KeptRecord { record, disposition })
            .collect();
        Ok(Some(kept))
    }

    /// The batches kept, and the records kept by disposition (`accepted`, `duplicate`,
    /// `rejected`).
    pub async fn clearing_counts(&self) -> Result<(i64, BTreeMap<String, i64>), IngestError> {
        let mut connection = self.reader().await?;
        let mut records = BTreeMap::new();
        let (mut batches, mut after) = (0_i64, (String::new(), String::new()));
        loop {
            let rows = query(
                "SELECT gate, batch_id, dispositions FROM clearing_batches WHERE (gate, batch_id) > ($1, $2) \
                 ORDER BY gate, batch_id LIMIT 1000",
            )
            .bind(after.0.as_str())
            .bind(after.1.as_str())
            .fetch_all(&mut connection.report_db())
            .await?;
            for row in &rows {
                batches += 1;
                let dispositions: String = column(row, 2)?;
                for letter in dispositions.chars() {
                    let name = KeptDisposition::of_letter(letter).map_or("unknown", KeptDisposition::name);
                    *records.entry(name.to_owned()).or_default() += 1;
                }
            }
            match rows.last() {
                Some(last) if rows.len() == 1000 => after = (column(last, 0)?, column(last, 1)?),
                _ => return Ok((batches, records)),
            }
        }
    }

    /// The transactions gates uploaded with local times from `from` to `until` (excluded), by
    /// their cards' verdicts: charged ones (proven, logged, or unconfirmed and since shown
    /// committed) to clear, undecided ones pending; voided ones are neither. The platform's own
    /// loads and debits are left out, fed or uploaded: they are [`Store::platform_day`]'s to
    /// report (by when the platform made them, which may be another day than their stamp).
    pub async fn ingested_day(
        &self,
        from: DateTime,
        until: DateTime,
    ) -> Result<(Vec<TapRecord>, Vec<TapRecord>), IngestError> {
        let (from_text, until_text) = (from.to_string(), until.to_string());
        let mut transaction = self.begin_shadow_snapshot().await?;
        // The platform's fed batches hold only its own records (compared byte for byte: SQLite's
        // LIKE ignores case, and a gate's `PLATFORM:…` batch is a gate's).
        let sql = format!(
            "SELECT gate, batch_id, records_packed, dispositions FROM clearing_batches \
             WHERE last_at >= $1 AND first_at < $2 AND substr(batch_id, 1, {}) <> '{PLATFORM_BATCH_PREFIX}'",
            PLATFORM_BATCH_PREFIX.len()
        );
        let rows =
            query(&sql).bind(from_text.as_str()).bind(until_text.as_str()).fetch_all(&mut transaction.db()).await?;
        let mut accepted = Vec::new();
        for row in &rows {
            let (gate, batch_id): (String, String) = (column(row, 0)?, column(row, 1)?);
            let packed: Vec<u8> = column(row, 2)?;
            let dispositions: String = column(row, 3)?;
            let batch = unpack(&gate, &batch_id, &packed, &dispositions)?;
            for (record, letter) in batch.records.into_iter().zip(dispositions.chars()) {
                if letter == KeptDisposition::Accepted.letter() && record.at >= from && record.at < until {
                    accepted.push(record);
                }
            }
        }
        let platform = platform_tap_ids(self, &mut transaction.db(), &accepted).await?;
        accepted.retain(|record| !platform.contains(&record.tap_id().to_string()));
        accepted.sort_by_cached_key(|record| (record.at, record.tap_id().to_string()));
        let mut verdicts = Verdicts::default();
        let (mut cleared, mut pending) = (Vec::new(), Vec::new());
        for record in accepted {
            match verdicts.of(&mut transaction.db(), &record).await? {
                Some(Verdict::Charged) => cleared.push(record),
                Some(Verdict::Pending) => pending.push(record),
                // Voided, or replaced in the shadow by a stronger copy of the same transaction.
                _ => {}
            }
        }
        transaction.commit().await?;
        Ok((cleared, pending))
    }

    /// Moves rows of the per-record table (before migration 8) into their batches' rows, a
    /// hundred batches per transaction, until every batch is packed. Another service opening the
    /// database at once may move a batch first: a batch is written only while still unpacked.
    pub(crate) async fn move_record_rows(&self) -> Result<(), StoreError> {
        let unpacked = query("SELECT 1 FROM clearing_batches WHERE records_packed IS NULL LIMIT 1")
            .fetch_optional(&mut self.reader().await?.db())
            .await?;
        if unpacked.is_none() {
            return Ok(());
        }
        loop {
            let mut transaction = self.begin_backoffice_write().await?;
            let batches = query(
                "SELECT gate, batch_id, operator FROM clearing_batches WHERE records_packed IS NULL \
                 ORDER BY gate, batch_id LIMIT 100",
            )
            .fetch_all(&mut transaction.db())
            .await?;
            if batches.is_empty() {
                transaction.rollback().await?;
                return Ok(());
            }
            for row in &batches {
                let (gate, batch_id, operator): (String, String, String) =
                    (column(row, 0)?, column(row, 1)?, column(row, 2)?);
                let corrupt = |why: String| StoreError::Corrupt {
                    table: "clearing_records",
                    key: format!("{gate}/{batch_id}"),
                    why,
                };
                let records = query(
                    "SELECT disposition, record FROM clearing_records WHERE gate = $1 AND batch_id = $2 ORDER BY position",
                )
                .bind(gate.as_str())
                .bind(batch_id.as_str())
                .fetch_all(&mut transaction.db())
                .await?;
                let mut batch = Batch {
                    header: BatchHeader { batch_id: batch_id.clone(), gate: [0; 6], operator },
                    records: Vec::with_capacity(records.len()),
                };
                hex::decode_to_slice(&gate, &mut batch.header.gate).map_err(|e| corrupt(format!("gate: {e}")))?;
                let mut dispositions = String::with_capacity(records.len());
                for record in &records {
                    let name: String = column(record, 0)?;
                    let text: String = column(record, 1)?;
                    let disposition =
                        KeptDisposition::of_name(&name).ok_or_else(|| corrupt(format!("disposition `{name}`")))?;
                    dispositions.push(disposition.letter());
                    batch.records.push(serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?);
                }
                let packed = batch.pack().map_err(|e| corrupt(e.to_string()))?;
                let (first_at, last_at) = time_span(&batch.records);
                let moved = query(
                    "UPDATE clearing_batches SET records_packed = $1, dispositions = $2, first_at = $3, last_at = $4 \
                     WHERE gate = $5 AND batch_id = $6 AND records_packed IS NULL",
                )
                .bind(packed)
                .bind(dispositions)
                .bind(first_at)
                .bind(last_at)
                .bind(gate.as_str())
                .bind(batch_id.as_str())
                .execute(&mut transaction.db())
                .await?;
                if moved == 0 {
                    // Moved by another service meanwhile (its rows may already be gone).
                    continue;
                }
                query("DELETE FROM clearing_records WHERE gate = $1 AND batch_id = $2")
                    .bind(gate.as_str())
                    .bind(batch_id.as_str())
                    .execute(&mut transaction.db())
                    .await?;
            }
            transaction.commit().await?;
        }
    }
}

/// Which of `records` are the platform's own loads and debits (by tap ID).
async fn platform_tap_ids(
    store: &Store,
    connection: &mut Db<'_>,
    records: &[TapRecord],
) -> Result<BTreeSet<String>, IngestError> {
    let tap_ids: BTreeSet<String> = records.iter().map(|r| r.tap_id().to_string()).collect();
    let tap_ids: Vec<&String> = tap_ids.iter().collect();
    let mut found = BTreeSet::new();
    for chunk in tap_ids.chunks(500) {
        for table in ["ota_loads", "closure_debits"] {
            let sql =
                format!("SELECT tap_id FROM {table} WHERE tap_id IN {}", placeholders(store.backend(), 1, chunk.len()));
            let mut query = query(&sql);
            for tap_id in chunk {
                query = query.bind(tap_id.as_str());
            }
            for row in query.fetch_all(&mut *connection).await? {
                found.insert(column(&row, 0)?);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::{BATCH_COLUMNS, BATCH_COLUMN_COUNT};

    #[test]
    fn the_column_count_counts_the_columns() {
        assert_eq!(BATCH_COLUMNS.split(',').count(), BATCH_COLUMN_COUNT);
    }
}
