//! PostgreSQL's bulk path for an ingest group's batch rows: `COPY … FROM STDIN` in PostgreSQL's
//! binary format, on a connection of the store's own (sqlx's `Any` connections cannot copy).
//!
//! Before its transaction, a group copies its rows into `clearing_batches_staged` under its write
//! token (migration 9); the transaction moves them into `clearing_batches` with one `INSERT …
//! SELECT` and deletes them, so the rows land with the group's shadows or not at all. The copy
//! runs outside the ingest turn, while the group before may still write. A group whose write
//! never happened deletes its staged rows; rows left by a process that died are deleted when a
//! store opens, once [`STAGED_KEPT_MS`] old. A group that lists cards on the hotlist writes its
//! rows with the statements of `kept_batches` instead: their answers carry the hotlist's versions,
//! known only inside the transaction.

use sqlx::postgres::{PgPool, PgPoolCopyExt};

use super::kept_batches::{time_span, BatchRow};
use super::IngestError;

/// How long staged rows of a group that never wrote are kept before a store opening deletes them.
pub const STAGED_KEPT_MS: i64 = 3_600_000;

/// The columns copied, in order.
const COLUMNS: &str = "token, staged_at_ms, gate, batch_id, operator, operator_key_id, records, answer, \
                       received_at_ms, records_packed, dispositions, first_at, last_at";

/// The columns moved into `clearing_batches`.
const MOVED: &str = "gate, batch_id, operator, operator_key_id, records, answer, received_at_ms, records_packed, \
                     dispositions, first_at, last_at";

/// Copies `rows` into the staging table under `token`.
pub(super) async fn stage(pool: &PgPool, token: i64, rows: &[BatchRow<'_>]) -> Result<(), IngestError> {
    let data = encode(token, rows, wall_clock_ms());
    let mut copy =
        pool.copy_in_raw(&format!("COPY clearing_batches_staged ({COLUMNS}) FROM STDIN (FORMAT binary)")).await?;
    if let Err(error) = copy.send(data).await {
        let _ = copy.abort("the rows could not be sent").await;
        return Err(error.into());
    }
    let copied = copy.finish().await?;
    if copied != rows.len() as u64 {
        return Err(IngestError::Shadow(format!("{copied} batch rows staged of {}", rows.len())));
    }
    Ok(())
}

/// Moves the rows staged under `token` into `clearing_batches`, in key order (two writers with the
/// same batches lock them in the same order), and deletes them: `false` when one was there
/// already (another writer took it: the caller rolls back) or fewer than `rows` were staged.
pub(super) async fn take_staged(
    connection: &mut sqlx::AnyConnection,
    token: i64,
    rows: usize,
) -> Result<bool, IngestError> {
    let moved = sqlx::query(&format!(
        "INSERT INTO clearing_batches ({MOVED}) SELECT {MOVED} FROM clearing_batches_staged WHERE token = $1 \
         ORDER BY gate, batch_id ON CONFLICT (gate, batch_id) DO NOTHING"
    ))
    .bind(token)
    .execute(&mut *connection)
    .await?
    .rows_affected();
    if moved != rows as u64 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM clearing_batches_staged WHERE token = $1").bind(token).execute(&mut *connection).await?;
    Ok(true)
}

/// Deletes the rows staged under `token` (its group did not write them).
pub(super) async fn unstage(pool: &PgPool, token: i64) -> Result<(), IngestError> {
    sqlx::query("DELETE FROM clearing_batches_staged WHERE token = $1").bind(token).execute(pool).await?;
    Ok(())
}

/// Deletes rows staged more than [`STAGED_KEPT_MS`] ago (left by a process that died before its
/// write).
pub(super) async fn sweep(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let swept = sqlx::query("DELETE FROM clearing_batches_staged WHERE staged_at_ms < $1")
        .bind(wall_clock_ms().saturating_sub(STAGED_KEPT_MS))
        .execute(pool)
        .await?
        .rows_affected();
    Ok(swept)
}

/// The machine's clock, for the staging table's housekeeping only (not a business time).
fn wall_clock_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// The rows in PostgreSQL's binary `COPY` format: a signature, a tuple per row (its field
/// count, then each field's length and bytes in the type's binary form: `TEXT` its UTF-8,
/// `BYTEA` its bytes, `BIGINT` 8 bytes big-endian; −1 for NULL), and −1 at the end.
fn encode(token: i64, rows: &[BatchRow<'_>], staged_at_ms: i64) -> Vec<u8> {
    let size: usize = rows.iter().map(|row| 256 + row.packed.len() + row.answer.len() + row.dispositions.len()).sum();
    let mut out = Vec::with_capacity(19 + size + 2);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    // Flags, header extension length.
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    for row in rows {
        let batch = row.upload.batch;
        let (first_at, last_at) = time_span(&batch.records);
        out.extend_from_slice(&13u16.to_be_bytes());
        bigint(&mut out, token);
        bigint(&mut out, staged_at_ms);
        field(&mut out, Some(row.gate.as_bytes()));
        field(&mut out, Some(batch.header.batch_id.as_bytes()));
        field(&mut out, Some(batch.header.operator.as_bytes()));
        field(&mut out, Some(row.upload.operator_key_id.as_bytes()));
        bigint(&mut out, i64::try_from(batch.records.len()).unwrap_or(i64::MAX));
        field(&mut out, Some(row.answer.as_bytes()));
        bigint(&mut out, row.upload.now_ms);
        field(&mut out, Some(row.packed));
        field(&mut out, Some(row.dispositions.as_bytes()));
        field(&mut out, first_at.as_deref().map(str::as_bytes));
        field(&mut out, last_at.as_deref().map(str::as_bytes));
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

fn bigint(out: &mut Vec<u8>, value: i64) {
    field(out, Some(&value.to_be_bytes()));
}

fn field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        // A field is at most 1 GiB in PostgreSQL; a batch is at most 32 MiB.
        Some(bytes) => {
            out.extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}
