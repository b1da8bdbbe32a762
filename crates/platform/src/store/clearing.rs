//! Ingestion of gates' upload batches: every record's TAC verified with the issuer's key, fed to
//! its card's shadow (`yitong_clearing::shadow`), kept for audit with what it was (accepted,
//! duplicate, rejected with the reason: `kept_batches`), and proven fraud listed on the hotlist
//! by the policy — one write transaction per batch (or per group of batches: `ingest_queue`). A
//! batch sent again (same gate and batch ID) is answered as the first time, counting nothing
//! twice; a record sent again in another batch is a duplicate to its card's shadow.
//!
//! Card shadows are stored packed (`Shadow::pack`; JSON in rows written before migration 8, read
//! as they are) under a write token unique to the write, and kept in memory between groups
//! (`shadow_cache`): two batches of one card racing on PostgreSQL (or two processes on one
//! SQLite file) — the second's compare-and-swap on the token fails and its whole group is tried
//! again on the shadows as the first left them, read from the database. A group is prepared
//! outside the writer's turn and written in it (`ingest_group`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use yitong_clearing::batch::Batch;
use yitong_clearing::shadow::{CardId, Evidence, Shadow, TacCheck, Verdict};
use yitong_profile::DateTime;
use yitong_record::{verify_tac, TacKeys, TapRecord};

use super::ingest_group;
use super::sql::{query, Db, Row};
use super::{column, Backend, Store, StoreError};

/// Attempts at a batch before giving up under contention.
const ATTEMPTS: u32 = 5;

/// A record not kept as a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRecord {
    /// Its place in the batch, from 0.
    pub position: usize,
    /// Its tap ID.
    pub tap_id: String,
    /// Why.
    pub reason: String,
}

/// An unconfirmed record the batch decided (or re-decided).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledRecord {
    /// The unconfirmed record.
    pub tap_id: String,
    /// `pending`, `charged` or `voided`.
    pub verdict: String,
    /// Its verdict before.
    pub previous: String,
    /// The record that decided it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// A flag the batch raised on a card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaisedFlag {
    /// The card (`issuer ID/serial`).
    pub card: String,
    /// What was found.
    pub flag: String,
    /// The hotlist version that listed the card for it, when the policy listed it now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hotlisted_at_version: Option<u64>,
}

/// What a batch came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchAnswer {
    /// The gate.
    pub gate: String,
    /// The batch.
    pub batch_id: String,
    /// Records in it.
    pub records: usize,
    /// New transactions.
    pub accepted: usize,
    /// Transactions seen before (not counted twice).
    pub duplicates: usize,
    /// Records not kept as transactions, with why (kept for audit).
    pub rejected: Vec<RejectedRecord>,
    /// Unconfirmed records whose verdict changed.
    pub settled: Vec<SettledRecord>,
    /// Flags raised.
    pub flags: Vec<RaisedFlag>,
}

/// A batch's answer and whether it was the batch's first sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingested {
    /// The answer (the same for a batch sent again).
    pub answer: BatchAnswer,
    /// `false` when the batch was received before.
    pub new: bool,
}

/// What the cards' shadows hold ([`Store::shadow_census`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShadowCensus {
    /// Cards with a shadow.
    pub cards: u64,
    /// Unconfirmed records by verdict (`pending`, `charged`, `voided`).
    pub unconfirmed: BTreeMap<&'static str, u64>,
    /// Cards with a flag standing.
    pub flagged_cards: u64,
}

/// Why a batch could not be taken.
#[derive(Debug)]
#[non_exhaustive]
pub enum IngestError {
    /// A stored shadow that does not read back (its records were changed outside this code), or a
    /// batch the store cannot keep.
    Shadow(String),
    /// This code or the system failed (no randomness, a worker thread gone, an answer missing).
    /// The batch may have been written (an answer lost after its commit): send it again, and a
    /// batch taken before is answered as it was the first time.
    Internal(String),
    /// The database failed, or stayed contended.
    Store(StoreError),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Shadow(why) => write!(f, "card shadow: {why}"),
            IngestError::Internal(why) => write!(f, "internal error: {why}"),
            IngestError::Store(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for IngestError {}

impl From<StoreError> for IngestError {
    fn from(error: StoreError) -> Self {
        IngestError::Store(error)
    }
}

impl From<sqlx::Error> for IngestError {
    fn from(error: sqlx::Error) -> Self {
        IngestError::Store(StoreError::Database(error))
    }
}

pub(super) fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pending => "pending",
        Verdict::Charged => "charged",
        Verdict::Voided => "voided",
    }
}

impl Store {
    /// Takes `batch` from the operator key `operator_key_id`, received at local time `received`
    /// (`now_ms` Unix milliseconds), with the back office's TAC keys.
    pub async fn ingest_batch(
        &self,
        batch: &Batch,
        tac_keys: &TacKeys,
        operator_key_id: &str,
        received: DateTime,
        now_ms: i64,
    ) -> Result<Ingested, IngestError> {
        let upload = Upload { batch, operator_key_id, received, now_ms };
        let mut answers = self.ingest_batches(&[upload], tac_keys).await?;
        answers.pop().ok_or_else(|| IngestError::Internal("a batch without an answer".into()))
    }

    /// Takes several uploads in one write transaction — one commit for all, each card's shadow
    /// read and written once — each answered as it would be alone, in order (a batch named twice
    /// is taken once; the second answers as a batch sent again).
    pub async fn ingest_batches(
        &self,
        uploads: &[Upload<'_>],
        tac_keys: &TacKeys,
    ) -> Result<Vec<Ingested>, IngestError> {
        // The TACs first, outside the writer's turn: CPU work, the same on every attempt.
        let records: Vec<&TapRecord> = uploads.iter().flat_map(|u| &u.batch.records).collect();
        let mut checks = verify_tacs(&records, tac_keys, super::cores()).into_iter();
        let checks: Vec<Vec<TacCheck>> =
            uploads.iter().map(|u| checks.by_ref().take(u.batch.records.len()).collect()).collect();
        let checks: Vec<&[TacCheck]> = checks.iter().map(Vec::as_slice).collect();
        self.ingest_checked(uploads, &checks, &mut None).await
    }

    /// [`Store::ingest_batches`] with each record's TAC check done (`checks[i][j]`: upload `i`'s
    /// record `j`); `ready` is told (and taken) once the group is prepared and the next group may
    /// be: when its write began, or on SQLite once it committed unless it folds the journal
    /// (`ingest_group::write`).
    pub(crate) async fn ingest_checked(
        &self,
        uploads: &[Upload<'_>],
        checks: &[&[TacCheck]],
        ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Result<Vec<Ingested>, IngestError> {
        let packed = uploads
            .iter()
            .map(|u| u.batch.pack().map_err(|e| IngestError::Shadow(format!("batch {}: {e}", u.batch.header.batch_id))))
            .collect::<Result<Vec<_>, _>>()?;
        // The first attempt is prepared on the cache, while the group before may still write;
        // the others hold the store's ingest turn from their reads to their commit and read the
        // database, so that they can lose only to another process, not to a group of this one
        // built on the attempt that failed.
        for attempt in 0..ATTEMPTS {
            let (turn, reads) = match attempt {
                0 => (None, ingest_group::Reads::Cache),
                _ => {
                    self.ingest_retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let turn = self.ingest_turn.clone().lock_owned().await;
                    // SQLite: the rows made current (`shadow_journal`).
                    self.fold_in_turn().await?;
                    (Some(turn), ingest_group::Reads::Database)
                }
            };
            let prepared = ingest_group::prepare(self, uploads, checks, reads).await?;
            // A group that does not commit forgets its cards' cached shadows itself.
            match ingest_group::write(self, uploads, &packed, prepared, ready, turn).await {
                Ok(Some(ingested)) => return Ok(ingested),
                // Another writer changed a shadow, the hotlist or took a batch (or, on
                // PostgreSQL, won a deadlock): read them again.
                Ok(None) => {}
                Err(error) if ingest_group::deadlocked(&error) => {}
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Contended(ATTEMPTS).into())
    }

    /// The cards the back office has shadows of, and their shadow balances added up, fen.
    pub async fn shadow_totals(&self) -> Result<(i64, i64), IngestError> {
        let mut snapshot = self.begin_shadow_snapshot().await?;
        let row = query("SELECT COUNT(*), CAST(COALESCE(SUM(balance_fen), 0) AS BIGINT) FROM card_shadows")
            .fetch_one(&mut snapshot.db())
            .await?;
        snapshot.commit().await?;
        Ok((column(&row, 0)?, column(&row, 1)?))
    }

    /// Every card's shadow read (in pages of [`SHADOWS_PER_STATEMENT`]) and counted: its
    /// unconfirmed records by verdict, and the cards with flags standing.
    pub async fn shadow_census(&self) -> Result<ShadowCensus, IngestError> {
        let mut census = ShadowCensus::default();
        let mut snapshot = self.begin_shadow_snapshot().await?;
        let mut after = (String::new(), String::new());
        loop {
            let rows = query(
                "SELECT issuer_id, card_serial, state, packed FROM card_shadows WHERE (issuer_id, card_serial) > ($1, $2) \
                 ORDER BY issuer_id, card_serial LIMIT $3",
            )
            .bind(after.0.as_str())
            .bind(after.1.as_str())
            .bind(SHADOWS_PER_STATEMENT as i64)
            .fetch_all(&mut snapshot.db())
            .await?;
            for row in &rows {
                let card = format!("{}/{}", column::<String>(row, 0)?, column::<String>(row, 1)?);
                let shadow = stored_shadow(row, 2, &card)?;
                census.cards += 1;
                census.flagged_cards += u64::from(shadow.flags().next().is_some());
                for transaction in shadow.transactions() {
                    if transaction.evidence == Evidence::Unconfirmed {
                        *census.unconfirmed.entry(verdict_name(transaction.verdict)).or_default() += 1;
                    }
                }
            }
            match rows.last() {
                Some(last) if rows.len() == SHADOWS_PER_STATEMENT => after = (column(last, 0)?, column(last, 1)?),
                _ => return Ok(census),
            }
        }
    }

    /// The card's shadow as stored, if the back office has seen it.
    pub async fn card_shadow(&self, card: CardId) -> Result<Option<Shadow>, IngestError> {
        let mut snapshot = self.begin_shadow_snapshot().await?;
        let (version, shadow) = load_shadow(&mut snapshot.db(), card).await?;
        snapshot.commit().await?;
        Ok(version.map(|_| shadow))
    }
}

/// The stored shadow and its version (`None`: a card not seen yet, a fresh shadow).
pub(super) async fn load_shadow(connection: &mut Db<'_>, card: CardId) -> Result<(Option<i64>, Shadow), IngestError> {
    let row = query("SELECT state, packed, version FROM card_shadows WHERE issuer_id = $1 AND card_serial = $2")
        .bind(hex::encode_upper(card.issuer_id))
        .bind(hex::encode_upper(card.card_serial))
        .fetch_optional(&mut *connection)
        .await?;
    match row {
        None => Ok((None, Shadow::new(card))),
        Some(row) => {
            let version: i64 = column(&row, 2)?;
            let shadow = stored_shadow(&row, 0, &card)?;
            Ok((Some(version), shadow))
        }
    }
}

/// A gate's batch to take ([`Store::ingest_batches`]): the operator key it came with, and when it
/// was received (local time for the shadows, Unix milliseconds for the rows).
#[derive(Clone, Copy, Debug)]
pub struct Upload<'a> {
    /// The batch.
    pub batch: &'a Batch,
    /// The operator key's ID.
    pub operator_key_id: &'a str,
    /// Local time of receipt.
    pub received: DateTime,
    /// Unix milliseconds of receipt.
    pub now_ms: i64,
}

/// Cards per shadow `SELECT` (2 parameters each) and per shadow upsert (6 each), well under
/// SQLite's 32,766 and PostgreSQL's 65,535 parameters per statement.
pub(super) const SHADOWS_PER_STATEMENT: usize = 1_000;
/// Records from which the TACs are checked on several threads (each thread at least as many).
pub(super) const PARALLEL_TAC_RECORDS: usize = 256;

/// A record's TAC check, as its shadow takes it.
pub(crate) fn tac_check(record: &TapRecord, keys: &TacKeys) -> TacCheck {
    TacCheck::from(verify_tac(record, keys))
}

/// Every record's TAC check, on up to `threads` threads for a large batch (each record's check
/// is DES or SM4 work on its own), in the records' order.
pub(crate) fn verify_tacs<R>(records: &[R], keys: &TacKeys, threads: usize) -> Vec<TacCheck>
where
    R: std::borrow::Borrow<TapRecord> + Sync,
{
    let check = |record: &R| tac_check(record.borrow(), keys);
    let threads = threads.min(records.len() / PARALLEL_TAC_RECORDS);
    if threads < 2 {
        return records.iter().map(check).collect();
    }
    let chunk = records.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> =
            records.chunks(chunk).map(|part| scope.spawn(move || part.iter().map(check).collect::<Vec<_>>())).collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    })
}

/// `(…), (…)`: `rows` groups of `columns` placeholders — `?` on SQLite (a `$N` is bound there by
/// looking its name up in a list, quadratic in a statement's parameters), `$N` on PostgreSQL.
pub(super) fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let mut text = String::with_capacity(rows * columns * 6);
    for row in 0..rows {
        text.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            if column > 0 {
                text.push_str(", ");
            }
            match backend {
                Backend::Sqlite => text.push('?'),
                Backend::Postgres => text.push_str(&format!("${}", row * columns + column + 1)),
            }
        }
        text.push(')');
    }
    text
}

/// Where a group found a card's shadow, and the token it was written under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// Not stored yet.
    New,
    /// Read from the database: the card's row is there.
    Stored(i64),
    /// Taken from the cache: the card's row is there once the write of that token committed.
    Cached(i64),
}

impl Read {
    /// The token the shadow was (or is being) written under, `None` when new.
    pub(super) fn token(self) -> Option<i64> {
        match self {
            Read::New => None,
            Read::Stored(token) | Read::Cached(token) => Some(token),
        }
    }
}

/// `bytes` in upper-case hex, as the shadows' rows are keyed, written in `buffer` (twice as long):
/// no allocation for a key read or written tens of thousands of times a group.
pub(super) fn upper_hex<'b>(bytes: &[u8], buffer: &'b mut [u8]) -> Result<&'b str, StoreError> {
    let bad = |why: String| StoreError::Database(sqlx::Error::Protocol(why));
    hex::encode_to_slice(bytes, buffer).map_err(|error| bad(format!("hex: {error}")))?;
    buffer.make_ascii_uppercase();
    std::str::from_utf8(buffer).map_err(|error| bad(format!("hex: {error}")))
}

/// A stored shadow from `row`'s columns `state` (JSON, written before migration 8) and
/// `state + 1` (packed), of `card`.
pub(super) fn stored_shadow(row: &Row, state: usize, card: &dyn std::fmt::Display) -> Result<Shadow, IngestError> {
    let packed: Option<Vec<u8>> = column(row, state + 1)?;
    let shadow = match packed {
        Some(bytes) => Shadow::unpack(&bytes).map_err(|e| e.to_string()),
        None => {
            let text: Option<String> = column(row, state)?;
            serde_json::from_str(text.as_deref().unwrap_or_default()).map_err(|e| e.to_string())
        }
    };
    shadow.map_err(|why| IngestError::Shadow(format!("card {card}: {why}")))
}

impl Store {
    /// Each record's verdict in its card's shadow (`None`: not held there), in one snapshot.
    pub async fn shadow_verdicts(&self, records: &[TapRecord]) -> Result<Vec<Option<Verdict>>, IngestError> {
        let mut transaction = self.begin_shadow_snapshot().await?;
        let mut verdicts = Verdicts::default();
        let mut found = Vec::with_capacity(records.len());
        for record in records {
            found.push(verdicts.of(&mut transaction.db(), record).await?);
        }
        transaction.commit().await?;
        Ok(found)
    }
}

/// Cards' verdicts by tap ID, each card's shadow read once.
#[derive(Default)]
pub(super) struct Verdicts(BTreeMap<CardId, BTreeMap<String, Verdict>>);

impl Verdicts {
    pub(super) async fn of(
        &mut self,
        connection: &mut Db<'_>,
        record: &TapRecord,
    ) -> Result<Option<Verdict>, IngestError> {
        let card = CardId::of(record);
        if let std::collections::btree_map::Entry::Vacant(slot) = self.0.entry(card) {
            let (_, shadow) = load_shadow(connection, card).await?;
            slot.insert(shadow.transactions().into_iter().map(|t| (t.tap_id.to_string(), t.verdict)).collect());
        }
        Ok(self.0.get(&card).and_then(|by_tap| by_tap.get(&record.tap_id().to_string())).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::upper_hex;

    #[test]
    fn keys_are_upper_case_hex() {
        let mut buffer = [0; 16];
        assert_eq!(upper_hex(&[0, 0, 0x10, 0, 0xab, 0, 0, 1], &mut buffer).expect("fits"), "00001000AB000001");
        assert!(upper_hex(&[1, 2], &mut [0; 3]).is_err(), "a buffer of the wrong length is refused");
    }
}
