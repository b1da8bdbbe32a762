//! The hotlist's changes (`hotlist_changes`): read back as a `yitong_clearing::hotlist::Hotlist`,
//! one change appended per write. Two writers racing for the next version: the primary key lets
//! one in; the other reads the list again and retries (or finds its change refused, e.g. the card
//! listed meanwhile).

use yitong_clearing::hotlist::{Actor, Change, ChangeKind, Delta, Hotlist, HotlistError};
use yitong_clearing::shadow::CardId;
use yitong_profile::DateTime;

use super::sql::{query, Db};
use super::{column, Store, StoreError};

/// Attempts at appending a change before giving up under contention.
const ATTEMPTS: u32 = 8;

/// Why a hotlist change was not made.
#[derive(Debug)]
#[non_exhaustive]
pub enum HotlistChangeError {
    /// The list refuses it (listed already, not listed, a bad reason).
    Refused(HotlistError),
    /// The database failed.
    Store(StoreError),
}

impl std::fmt::Display for HotlistChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HotlistChangeError::Refused(error) => write!(f, "{error}"),
            HotlistChangeError::Store(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for HotlistChangeError {}

impl From<StoreError> for HotlistChangeError {
    fn from(error: StoreError) -> Self {
        HotlistChangeError::Store(error)
    }
}

impl From<sqlx::Error> for HotlistChangeError {
    fn from(error: sqlx::Error) -> Self {
        HotlistChangeError::Store(StoreError::Database(error))
    }
}

impl Store {
    /// The hotlist: its changes replayed and checked.
    pub async fn hotlist(&self) -> Result<Hotlist, StoreError> {
        let mut connection = self.reader().await?;
        read_hotlist(&mut connection.db()).await
    }

    /// What changed after version `since` for the issuers `accepted` keeps: the changes after it
    /// read alone (a gate's poll costs what changed, not the list's history), in one snapshot.
    pub async fn hotlist_delta(
        &self,
        since: u64,
        accepted: impl Fn(&[u8; 8]) -> bool,
    ) -> Result<Result<Delta, HotlistError>, StoreError> {
        let mut transaction = self.begin_snapshot().await?;
        let version: i64 = column(
            &query("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM hotlist_changes")
                .fetch_one(&mut transaction.db())
                .await?,
            0,
        )?;
        let version = u64::try_from(version).map_err(|_| corrupt(0, format!("version {version}")))?;
        if since > version {
            transaction.commit().await?;
            return Ok(Err(HotlistError::AheadOfList { since, version }));
        }
        let from = i64::try_from(since).map_err(|_| corrupt(since, "a version beyond 64 signed bits".into()))?;
        let changes = read_changes(&mut transaction.db(), from).await?;
        transaction.commit().await?;
        // Versions missing among the rows: the table was changed outside this code.
        Delta::after(since, version, &changes, accepted).map(Ok).map_err(|e| corrupt(since, e.to_string()))
    }

    /// Adds (`kind` added) or removes `card` for `reason`: the change made, with its version.
    pub async fn change_hotlist(
        &self,
        card: CardId,
        kind: ChangeKind,
        reason: &str,
        by: Actor,
        at: DateTime,
        now_ms: i64,
    ) -> Result<Change, HotlistChangeError> {
        for _ in 0..ATTEMPTS {
            // Alone: a change replays the whole list in the turn, and grouped writers would wait for it.
            let mut transaction = self.begin_backoffice_write().await?;
            match append_change_in(&mut transaction.db(), card, kind, reason, by.clone(), at, now_ms).await? {
                Some(change) => {
                    transaction.commit().await?;
                    return Ok(change);
                }
                // Another writer took the version: read the list again.
                None => transaction.rollback().await?,
            }
        }
        Err(StoreError::Contended(ATTEMPTS).into())
    }
}

/// Appends the change inside the caller's write transaction: the change, or `None` when another
/// writer took its version meanwhile (the caller retries its transaction).
pub(crate) async fn append_change_in(
    connection: &mut Db<'_>,
    card: CardId,
    kind: ChangeKind,
    reason: &str,
    by: Actor,
    at: DateTime,
    now_ms: i64,
) -> Result<Option<Change>, HotlistChangeError> {
    let mut list = read_hotlist(connection).await?;
    let change = match kind {
        ChangeKind::Added => list.add(card, reason, by, at),
        ChangeKind::Removed => list.remove(card, reason, by, at),
    }
    .map_err(HotlistChangeError::Refused)?
    .clone();
    let inserted = query(
        "INSERT INTO hotlist_changes (version, issuer_id, card_serial, kind, reason, actor, at, recorded_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (version) DO NOTHING",
    )
    .bind(i64::try_from(change.version).map_err(|_| StoreError::Contended(0))?)
    .bind(hex::encode_upper(change.card.issuer_id))
    .bind(hex::encode_upper(change.card.card_serial))
    .bind(kind_name(change.kind))
    .bind(change.reason.as_str())
    .bind(serde_json::to_string(&change.by).map_err(|e| corrupt(change.version, e.to_string()))?)
    .bind(change.at.to_string())
    .bind(now_ms)
    .execute(&mut *connection)
    .await?;
    Ok((inserted == 1).then_some(change))
}

fn kind_name(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "added",
        ChangeKind::Removed => "removed",
    }
}

fn corrupt(version: u64, why: String) -> StoreError {
    StoreError::Corrupt { table: "hotlist_changes", key: version.to_string(), why }
}

pub(crate) async fn read_hotlist(connection: &mut Db<'_>) -> Result<Hotlist, StoreError> {
    let changes = read_changes(connection, 0).await?;
    Hotlist::from_changes(changes).map_err(|e| corrupt(0, e.to_string()))
}

/// The changes after version `since`, in order.
async fn read_changes(connection: &mut Db<'_>, since: i64) -> Result<Vec<Change>, StoreError> {
    let rows = query(
        "SELECT version, issuer_id, card_serial, kind, reason, actor, at FROM hotlist_changes \
         WHERE version > $1 ORDER BY version",
    )
    .bind(since)
    .fetch_all(&mut *connection)
    .await?;
    let mut changes = Vec::with_capacity(rows.len());
    for row in &rows {
        let version: i64 = column(row, 0)?;
        let version = u64::try_from(version).map_err(|_| corrupt(0, format!("version {version}")))?;
        let bad = |why: String| corrupt(version, why);
        let issuer: String = column(row, 1)?;
        let serial: String = column(row, 2)?;
        let kind: String = column(row, 3)?;
        let actor: String = column(row, 5)?;
        let at: String = column(row, 6)?;
        let card = CardId {
            issuer_id: hex::decode(&issuer)
                .ok()
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .ok_or_else(|| bad(format!("issuer_id {issuer:?}")))?,
            card_serial: hex::decode(&serial)
                .ok()
                .and_then(|b| <[u8; 10]>::try_from(b).ok())
                .ok_or_else(|| bad(format!("card_serial {serial:?}")))?,
        };
        changes.push(Change {
            version,
            card,
            kind: match kind.as_str() {
                "added" => ChangeKind::Added,
                "removed" => ChangeKind::Removed,
                _ => return Err(bad(format!("kind {kind:?}"))),
            },
            reason: column(row, 4)?,
            by: serde_json::from_str(&actor).map_err(|e| bad(e.to_string()))?,
            at: DateTime::parse(&at).map_err(|_| bad(format!("at {at:?}")))?,
        });
    }
    Ok(changes)
}
