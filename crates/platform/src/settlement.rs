//! A business day's clearing report: the transactions gates uploaded (by their cards' shadows'
//! verdicts) and the platform's own money — its over-the-air loads and its service desk's debits
//! as the cards proved them, its fees and refunds — settled by `yitong_clearing::settlement`
//! between the ten regions' issuers and operators.

use yitong_clearing::settlement::{settle, BusinessDay, CityParticipants, DayReport, Participants, SettleError};
use yitong_clearing::shadow::Verdict;
use yitong_record::{RecordStatus, TapRecord};

use crate::cities::Cities;
use yitong_clearing::ridership::{ridership, Ridership};

use crate::store::{PlatformDay, Store, StoreError};

/// Seconds Asia/Shanghai is ahead of UTC.
const SHANGHAI_OFFSET_SECONDS: i64 = 8 * 3_600;

/// Why a day could not be settled.
#[derive(Debug)]
#[non_exhaustive]
pub enum SettlementError {
    /// The settlement refused its input (a record it cannot place).
    Settle(SettleError),
    /// The database failed.
    Store(StoreError),
    /// An ingested record or a card's shadow does not read back.
    Ingest(crate::store::IngestError),
}

impl std::fmt::Display for SettlementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettlementError::Settle(error) => write!(f, "{error}"),
            SettlementError::Store(error) => write!(f, "{error}"),
            SettlementError::Ingest(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for SettlementError {}

/// The participants of the served cities: each city's issuer (by its issuer ID and name) and its
/// metro and bus operators.
pub fn participants(cities: &Cities) -> Result<Participants, SettleError> {
    Participants::new(
        cities
            .iter()
            .map(|city| CityParticipants::new(city.city_code(), city.display_name(), city.issuer_id(), city.issuer())),
    )
}

/// The day's cleared and pending records and the platform's ledger figures: the gates'
/// uploaded transactions by their cards' verdicts and the platform's own records, a platform
/// record uploaded by a gate too counted once.
pub async fn day_inputs(store: &Store, cities: &Cities, day: BusinessDay) -> Result<PlatformDay, SettlementError> {
    let unix_ms = |local_seconds: i64| local_seconds.saturating_sub(SHANGHAI_OFFSET_SECONDS).saturating_mul(1_000);
    let from_ms = unix_ms(day.start().seconds_since_epoch());
    let to_ms = unix_ms(day.end().seconds_since_epoch());
    let stamps = (day.start(), day.end());
    let mut inputs = store.platform_day(cities, stamps, from_ms, to_ms).await.map_err(SettlementError::Store)?;
    // The platform's unconfirmed records, fed to the shadows, may have been settled there since.
    let (unconfirmed, pending): (Vec<TapRecord>, Vec<TapRecord>) =
        inputs.pending.drain(..).partition(|record| record.status == RecordStatus::Unconfirmed);
    inputs.pending = pending;
    let verdicts = store.shadow_verdicts(&unconfirmed).await.map_err(SettlementError::Ingest)?;
    for (record, verdict) in unconfirmed.into_iter().zip(verdicts) {
        match verdict {
            Some(Verdict::Charged) => inputs.cleared.push(record),
            Some(Verdict::Voided) => {}
            Some(Verdict::Pending) | None => inputs.pending.push(record),
        }
    }
    let (cleared, pending) = store.ingested_day(day.start(), day.end()).await.map_err(SettlementError::Ingest)?;
    let known: std::collections::BTreeSet<_> =
        inputs.cleared.iter().chain(&inputs.pending).map(|record| record.tap_id()).collect();
    inputs.cleared.extend(cleared.into_iter().filter(|record| !known.contains(&record.tap_id())));
    inputs.pending.extend(pending.into_iter().filter(|record| !known.contains(&record.tap_id())));
    Ok(inputs)
}

/// The report of `day` ([`day_inputs`], settled).
pub async fn settle_day(store: &Store, cities: &Cities, day: BusinessDay) -> Result<DayReport, SettlementError> {
    let inputs = day_inputs(store, cities, day).await?;
    let participants = participants(cities).map_err(SettlementError::Settle)?;
    settle(day, &inputs.cleared, &inputs.pending, &inputs.entries, &participants).map_err(SettlementError::Settle)
}

/// The ridership of `day`: its cleared rides ([`day_inputs`]).
pub async fn ridership_day(store: &Store, cities: &Cities, day: BusinessDay) -> Result<Ridership, SettlementError> {
    let inputs = day_inputs(store, cities, day).await?;
    Ok(ridership(inputs.cleared.iter().filter(|record| day.contains(&record.at))))
}
