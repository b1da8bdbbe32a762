//! Ingestion of gates' upload batches: every record's TAC verified with the issuer's key, fed to
//! its card's shadow (`yitong_clearing::shadow`), kept for audit with what it was (accepted,
//! duplicate, rejected with the reason), and proven fraud listed on the hotlist by the policy —
//! one write transaction per batch. A batch sent again (same gate and batch ID) is answered as
//! the first time, counting nothing twice; a record sent again in another batch is a duplicate
//! to its card's shadow.
//!
//! Card shadows are stored as JSON with a version: two batches of one card racing on
//! PostgreSQL — the second's compare-and-swap fails and its whole transaction is tried again on
//! the shadows as the first left them (SQLite's writers take turns anyway).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use yitong_clearing::batch::Batch;
use yitong_clearing::hotlist::{Actor, ChangeKind, HotlistError};
use yitong_clearing::shadow::{hotlist_reason, CardId, Disposition, Shadow, TacCheck, Verdict};
use yitong_profile::DateTime;
use yitong_record::{verify_tac, TacKeys, TapRecord};

use super::hotlist::{append_change_in, HotlistChangeError};
use super::{column, Store, StoreError};

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

/// Why a batch could not be taken.
#[derive(Debug)]
#[non_exhaustive]
pub enum IngestError {
    /// A stored shadow that does not read back (its records were changed outside this code).
    Shadow(String),
    /// The database failed, or stayed contended.
    Store(StoreError),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Shadow(why) => write!(f, "card shadow: {why}"),
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

fn verdict_name(verdict: Verdict) -> &'static str {
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
        for _ in 0..ATTEMPTS {
            if let Some(ingested) = self.try_ingest(batch, tac_keys, operator_key_id, received, now_ms).await? {
                return Ok(ingested);
            }
        }
        Err(StoreError::Contended(ATTEMPTS).into())
    }

    /// One attempt: `None` when another writer changed a shadow or the hotlist meanwhile.
    async fn try_ingest(
        &self,
        batch: &Batch,
        tac_keys: &TacKeys,
        operator_key_id: &str,
        received: DateTime,
        now_ms: i64,
    ) -> Result<Option<Ingested>, IngestError> {
        let gate = hex::encode_upper(batch.header.gate);
        let mut transaction = self.begin_write().await?;
        let stored = sqlx::query("SELECT answer FROM clearing_batches WHERE gate = $1 AND batch_id = $2")
            .bind(gate.as_str())
            .bind(batch.header.batch_id.as_str())
            .fetch_optional(&mut *transaction)
            .await?;
        if let Some(row) = stored {
            transaction.rollback().await?;
            let text: String = column(&row, 0)?;
            let answer = serde_json::from_str::<BatchAnswer>(&text)
                .map_err(|e| IngestError::Shadow(format!("batch {gate}/{}: {e}", batch.header.batch_id)))?;
            return Ok(Some(Ingested { answer, new: false }));
        }
        let mut answer = BatchAnswer {
            gate: gate.clone(),
            batch_id: batch.header.batch_id.clone(),
            records: batch.records.len(),
            accepted: 0,
            duplicates: 0,
            rejected: Vec::new(),
            settled: Vec::new(),
            flags: Vec::new(),
        };
        // The batch's cards: their shadows as stored (with the version read) and as fed.
        let mut shadows: BTreeMap<CardId, (Option<i64>, Shadow)> = BTreeMap::new();
        let mut dispositions = Vec::with_capacity(batch.records.len());
        for (position, record) in batch.records.iter().enumerate() {
            let card = CardId::of(record);
            if let std::collections::btree_map::Entry::Vacant(slot) = shadows.entry(card) {
                slot.insert(load_shadow(&mut transaction, card).await?);
            }
            let Some((_, shadow)) = shadows.get_mut(&card) else { continue };
            let tac = TacCheck::from(verify_tac(record, tac_keys));
            let outcome = shadow.handle_record(record, tac, received);
            let (disposition, reason) = match outcome {
                Ok(fed) => {
                    for settlement in &fed.settlements {
                        answer.settled.push(SettledRecord {
                            tap_id: settlement.tap_id.to_string(),
                            verdict: verdict_name(settlement.verdict).to_owned(),
                            previous: verdict_name(settlement.previous).to_owned(),
                            evidence: settlement.evidence.map(|tap| tap.to_string()),
                        });
                    }
                    for flag in &fed.raised {
                        let mut raised =
                            RaisedFlag { card: card.to_string(), flag: flag.to_string(), hotlisted_at_version: None };
                        if let Some(reason) = hotlist_reason(flag) {
                            match append_change_in(
                                &mut transaction,
                                card,
                                ChangeKind::Added,
                                &reason,
                                Actor::Policy,
                                received,
                                now_ms,
                            )
                            .await
                            {
                                Ok(Some(change)) => raised.hotlisted_at_version = Some(change.version),
                                Ok(None) => {
                                    transaction.rollback().await?;
                                    return Ok(None);
                                }
                                // Listed before (by hand, or for another flag): it stays listed.
                                Err(HotlistChangeError::Refused(HotlistError::AlreadyListed { .. })) => {}
                                Err(HotlistChangeError::Refused(error)) => {
                                    return Err(IngestError::Shadow(format!("hotlist: {error}")))
                                }
                                Err(HotlistChangeError::Store(error)) => return Err(error.into()),
                            }
                        }
                        answer.flags.push(raised);
                    }
                    match fed.disposition {
                        Disposition::Accepted => {
                            answer.accepted += 1;
                            ("accepted", None)
                        }
                        Disposition::Duplicate { .. } => {
                            answer.duplicates += 1;
                            ("duplicate", None)
                        }
                        Disposition::Rejected { reason, .. } => ("rejected", Some(reason.to_string())),
                    }
                }
                // A record the shadow cannot take (its TAC check does not fit it): rejected, kept.
                Err(error) => ("rejected", Some(error.to_string())),
            };
            if let Some(reason) = &reason {
                answer.rejected.push(RejectedRecord {
                    position,
                    tap_id: record.tap_id().to_string(),
                    reason: reason.clone(),
                });
            }
            dispositions.push((disposition, reason));
        }
        let text = serde_json::to_string(&answer).map_err(|e| IngestError::Shadow(e.to_string()))?;
        sqlx::query(
            "INSERT INTO clearing_batches (gate, batch_id, operator, operator_key_id, records, answer, received_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (gate, batch_id) DO NOTHING",
        )
        .bind(gate.as_str())
        .bind(batch.header.batch_id.as_str())
        .bind(batch.header.operator.as_str())
        .bind(operator_key_id)
        .bind(i64::try_from(batch.records.len()).unwrap_or(i64::MAX))
        .bind(text)
        .bind(now_ms)
        .execute(&mut *transaction)
        .await?;
        for (position, (record, (disposition, reason))) in batch.records.iter().zip(dispositions).enumerate() {
            let text = serde_json::to_string(record).map_err(|e| IngestError::Shadow(e.to_string()))?;
            sqlx::query(
                "INSERT INTO clearing_records (gate, batch_id, position, tap_id, issuer_id, card_serial, disposition, \
                 reason, at, record) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(gate.as_str())
            .bind(batch.header.batch_id.as_str())
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(record.tap_id().to_string())
            .bind(hex::encode_upper(record.issuer_id))
            .bind(hex::encode_upper(record.card_serial))
            .bind(disposition)
            .bind(reason)
            .bind(record.at.to_string())
            .bind(text)
            .execute(&mut *transaction)
            .await?;
        }
        for (card, (version, shadow)) in &shadows {
            if !store_shadow(&mut transaction, *card, *version, shadow, now_ms).await? {
                transaction.rollback().await?;
                return Ok(None);
            }
        }
        transaction.commit().await?;
        Ok(Some(Ingested { answer, new: true }))
    }

    /// The card's shadow as stored, if the back office has seen it.
    pub async fn card_shadow(&self, card: CardId) -> Result<Option<Shadow>, IngestError> {
        let mut connection = self.pool().acquire().await?;
        let (version, shadow) = load_shadow(&mut connection, card).await?;
        Ok(version.map(|_| shadow))
    }
}

/// The stored shadow and its version (`None`: a card not seen yet, a fresh shadow).
async fn load_shadow(connection: &mut sqlx::AnyConnection, card: CardId) -> Result<(Option<i64>, Shadow), IngestError> {
    let row = sqlx::query("SELECT state, version FROM card_shadows WHERE issuer_id = $1 AND card_serial = $2")
        .bind(hex::encode_upper(card.issuer_id))
        .bind(hex::encode_upper(card.card_serial))
        .fetch_optional(&mut *connection)
        .await?;
    match row {
        None => Ok((None, Shadow::new(card))),
        Some(row) => {
            let state: String = column(&row, 0)?;
            let version: i64 = column(&row, 1)?;
            let shadow = serde_json::from_str(&state).map_err(|e| IngestError::Shadow(format!("card {card}: {e}")))?;
            Ok((Some(version), shadow))
        }
    }
}

/// Writes the shadow if its stored version is still `version`; `false` when another writer
/// changed it meanwhile.
async fn store_shadow(
    connection: &mut sqlx::AnyConnection,
    card: CardId,
    version: Option<i64>,
    shadow: &Shadow,
    now_ms: i64,
) -> Result<bool, IngestError> {
    let state = serde_json::to_string(shadow).map_err(|e| IngestError::Shadow(format!("card {card}: {e}")))?;
    let (issuer, serial) = (hex::encode_upper(card.issuer_id), hex::encode_upper(card.card_serial));
    let written = match version {
        None => sqlx::query(
            "INSERT INTO card_shadows (issuer_id, card_serial, state, balance_fen, version, updated_at_ms) \
             VALUES ($1, $2, $3, $4, 1, $5) ON CONFLICT (issuer_id, card_serial) DO NOTHING",
        )
        .bind(issuer)
        .bind(serial)
        .bind(state)
        .bind(shadow.balance_fen())
        .bind(now_ms)
        .execute(&mut *connection)
        .await?
        .rows_affected(),
        Some(version) => sqlx::query(
            "UPDATE card_shadows SET state = $1, balance_fen = $2, version = version + 1, updated_at_ms = $3 \
             WHERE issuer_id = $4 AND card_serial = $5 AND version = $6",
        )
        .bind(state)
        .bind(shadow.balance_fen())
        .bind(now_ms)
        .bind(issuer)
        .bind(serial)
        .bind(version)
        .execute(&mut *connection)
        .await?
        .rows_affected(),
    };
    Ok(written == 1)
}

impl Store {
    /// The transactions gates uploaded with local times from `from` to `until` (excluded), by
    /// their cards' verdicts: charged ones (proven, logged, or unconfirmed and since shown
    /// committed) to clear, undecided ones pending; voided ones are neither.
    pub async fn ingested_day(
        &self,
        from: DateTime,
        until: DateTime,
    ) -> Result<(Vec<TapRecord>, Vec<TapRecord>), IngestError> {
        let mut transaction = self.begin_snapshot().await?;
        let rows = sqlx::query(
            "SELECT tap_id, record FROM clearing_records \
             WHERE disposition = 'accepted' AND at >= $1 AND at < $2 ORDER BY at, tap_id",
        )
        .bind(from.to_string())
        .bind(until.to_string())
        .fetch_all(&mut *transaction)
        .await?;
        let mut verdicts: BTreeMap<CardId, BTreeMap<String, Verdict>> = BTreeMap::new();
        let (mut cleared, mut pending) = (Vec::new(), Vec::new());
        for row in &rows {
            let tap_id: String = column(row, 0)?;
            let text: String = column(row, 1)?;
            let record: TapRecord =
                serde_json::from_str(&text).map_err(|e| IngestError::Shadow(format!("record {tap_id}: {e}")))?;
            let card = CardId::of(&record);
            if let std::collections::btree_map::Entry::Vacant(slot) = verdicts.entry(card) {
                let (_, shadow) = load_shadow(&mut transaction, card).await?;
                slot.insert(shadow.transactions().into_iter().map(|t| (t.tap_id.to_string(), t.verdict)).collect());
            }
            match verdicts.get(&card).and_then(|by_tap| by_tap.get(&tap_id)) {
                Some(Verdict::Charged) => cleared.push(record),
                Some(Verdict::Pending) => pending.push(record),
                // Voided, or replaced in the shadow by a stronger copy of the same transaction.
                _ => {}
            }
        }
        transaction.commit().await?;
        Ok((cleared, pending))
    }
}
