//! PostgreSQL's bulk path for an ingest group's batch rows: `COPY … FROM STDIN` in PostgreSQL's
//! binary format, on connections of the store's own (sqlx's `Any` connections cannot copy).
//!
//! In its ingest turn, before its transaction, a group copies its rows into
//! `clearing_batches_staged` under its write token (migration 9); the transaction moves them into
//! `clearing_batches` with one `INSERT … SELECT` and deletes them, so the rows land with the
//! group's shadows or not at all. A group whose write did not happen deletes its staged rows;
//! rows left by a process that died (or whose delete failed) are deleted once [`STAGED_KEPT_MS`]
//! old, by the server's clock, when a store opens and every [`SWEEP_EVERY`] of copying. A group
//! that lists cards on the hotlist writes its rows with the statements of `kept_batches`
//! instead: their answers carry the hotlist's versions, known only inside the transaction.

use std::time::{Duration, Instant};

use sqlx::postgres::{PgPool, PgPoolCopyExt};

use super::kept_batches::{time_span, BatchRow, BATCH_COLUMNS, BATCH_COLUMN_COUNT};
use super::sql::{query, Db};
use super::{IngestError, StoreError};

/// How long staged rows of a group that never wrote are kept before a sweep deletes them.
pub const STAGED_KEPT_MS: i64 = 3_600_000;
/// How often a store copying batches sweeps the staging table.
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// The server's clock, in milliseconds since 1970.
const SERVER_NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// A PostgreSQL store's connections for `COPY`, and when it last swept.
#[derive(Debug)]
pub(crate) struct Copier {
    pool: PgPool,
    swept: std::sync::Mutex<Instant>,
}

impl Copier {
    /// Connects (`connections` of them at most) and sweeps what dead processes left.
    pub(crate) async fn connect(url: &str, connections: u32) -> Result<Copier, StoreError> {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(connections).connect(url).await?;
        sweep(&pool).await?;
        Ok(Copier { pool, swept: std::sync::Mutex::new(Instant::now()) })
    }

    /// Closes the connections.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Copies `rows` into the staging table under `token`.
    pub(super) async fn stage(&self, token: i64, rows: &[BatchRow<'_>]) -> Result<(), IngestError> {
        self.sweep_when_due();
        let data = encode(token, rows)?;
        let statement = format!("COPY clearing_batches_staged (token, {BATCH_COLUMNS}) FROM STDIN (FORMAT binary)");
        let mut copy = self.pool.copy_in_raw(&statement).await?;
        if let Err(error) = copy.send(data).await {
            let _ = copy.abort("the rows could not be sent").await;
            return Err(error.into());
        }
        let copied = match copy.finish().await {
            Ok(copied) => copied,
            Err(error) => {
                // It may have landed all the same.
                self.unstage(token).await;
                return Err(error.into());
            }
        };
        if copied != rows.len() as u64 {
            self.unstage(token).await;
            let why = format!("COPY took {copied} batch rows of {}", rows.len());
            return Err(sqlx::Error::Protocol(why).into());
        }
        Ok(())
    }

    /// Deletes the rows staged under `token` (its group did not write them); a failure is logged
    /// and left to a sweep.
    pub(super) async fn unstage(&self, token: i64) {
        let deleted =
            sqlx::query("DELETE FROM clearing_batches_staged WHERE token = $1").bind(token).execute(&self.pool).await;
        if let Err(error) = deleted {
            tracing::warn!(%error, token, "staged batch rows not deleted; a sweep will");
        }
    }

    fn sweep_when_due(&self) {
        {
            let mut swept = self.swept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if swept.elapsed() < SWEEP_EVERY {
                return;
            }
            *swept = Instant::now();
        }
        // On a task of its own: the group staging now holds the ingest turn.
        let pool = self.pool.clone();
        tokio::spawn(async move {
            if let Err(error) = sweep(&pool).await {
                tracing::warn!(%error, "the staging table's sweep failed; tried again later");
            }
        });
    }
}

/// Moves the rows staged under `token` into `clearing_batches`, in the bytes' order of their keys
/// (the order the statements of `kept_batches` insert in, so that two writers with the same
/// batches lock them in the same order), and deletes them: `false` when one was there already
/// (another writer took it: the caller rolls back) or fewer than `rows` were staged.
pub(super) async fn take_staged(connection: &mut Db<'_>, token: i64, rows: usize) -> Result<bool, IngestError> {
    let moved = query(format!(
        "INSERT INTO clearing_batches ({BATCH_COLUMNS}) SELECT {BATCH_COLUMNS} FROM clearing_batches_staged \
         WHERE token = $1 ORDER BY gate COLLATE \"C\", batch_id COLLATE \"C\" ON CONFLICT (gate, batch_id) DO NOTHING"
    ))
    .bind(token)
    .execute(&mut *connection)
    .await?;
    if moved != rows as u64 {
        return Ok(false);
    }
    query("DELETE FROM clearing_batches_staged WHERE token = $1").bind(token).execute(&mut *connection).await?;
    Ok(true)
}

/// Deletes rows staged more than [`STAGED_KEPT_MS`] ago by the server's clock.
async fn sweep(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let swept = sqlx::query(&format!("DELETE FROM clearing_batches_staged WHERE staged_at_ms < {SERVER_NOW_MS} - $1"))
        .bind(STAGED_KEPT_MS)
        .execute(pool)
        .await?;
    Ok(swept.rows_affected())
}

/// The rows in PostgreSQL's binary `COPY` format: a signature, a tuple per row (its field
/// count, then each field's length and bytes in the type's binary form: `TEXT` its UTF-8,
/// `BYTEA` its bytes, `BIGINT` 8 bytes big-endian; −1 for NULL), and −1 at the end. The fields
/// are the token, then [`BATCH_COLUMNS`].
fn encode(token: i64, rows: &[BatchRow<'_>]) -> Result<Vec<u8>, IngestError> {
    let size: usize = rows.iter().map(|row| 256 + row.packed.len() + row.answer.len() + row.dispositions.len()).sum();
    let mut out = Vec::with_capacity(19 + size + 2);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    // Flags, header extension length.
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    for row in rows {
        let batch = row.upload.batch;
        let (first_at, last_at) = time_span(&batch.records);
        // The token, then the batch's columns.
        out.extend_from_slice(&(1 + BATCH_COLUMN_COUNT as u16).to_be_bytes());
        field(&mut out, Some(&token.to_be_bytes()))?;
        field(&mut out, Some(row.gate.as_bytes()))?;
        field(&mut out, Some(batch.header.batch_id.as_bytes()))?;
        field(&mut out, Some(batch.header.operator.as_bytes()))?;
        field(&mut out, Some(row.upload.operator_key_id.as_bytes()))?;
        field(&mut out, Some(&i64::try_from(batch.records.len()).unwrap_or(i64::MAX).to_be_bytes()))?;
        field(&mut out, Some(row.answer.as_bytes()))?;
        field(&mut out, Some(&row.upload.now_ms.to_be_bytes()))?;
        field(&mut out, Some(row.packed))?;
        field(&mut out, Some(row.dispositions.as_bytes()))?;
        field(&mut out, first_at.as_deref().map(str::as_bytes))?;
        field(&mut out, last_at.as_deref().map(str::as_bytes))?;
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    Ok(out)
}

fn field(out: &mut Vec<u8>, value: Option<&[u8]>) -> Result<(), IngestError> {
    match value {
        Some(bytes) => {
            let length = i32::try_from(bytes.len()).map_err(|_| {
                IngestError::Shadow(format!("a batch's field of {} bytes is beyond PostgreSQL's", bytes.len()))
            })?;
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(bytes);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
    Ok(())
}
