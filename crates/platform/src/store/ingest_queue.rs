//! Group commit of gates' uploads: uploads arriving together share one write transaction — one
//! durable commit, each card's shadow read and written once — and each is answered as it would
//! be alone ([`Store::ingest_batches`]).
//!
//! No task of its own: an uploader checks its records' TACs (on blocking threads, taking turns
//! with the other uploaders on all cores but one; a large upload takes several turns, a thread
//! each), queues its batch, then either finds its
//! answer or takes the leader's turn and has what is queued ingested, up to
//! [`GROUP_RECORDS_MAX`] records, on a spawned task that answers every upload of the group even
//! if the leader's caller goes away. The leader's turn ends once its group is prepared and
//! writing (`ingest_group::write` says when): on PostgreSQL at the write's first statement, so
//! that the next group is fed while this one writes; on SQLite, whose statements run in the
//! calling thread, at its COMMIT, so that groups are fed and written in turn — unless the write
//! folds the shadow journal, which takes long enough to feed the next group beside it. A group that
//! fails is taken again upload by upload, so one bad batch fails alone. Should that task die unanswered,
//! its uploaders queue again (a batch it had committed is then answered as sent again).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use yitong_clearing::batch::Batch;
use yitong_clearing::shadow::TacCheck;
use yitong_profile::DateTime;
use yitong_record::TacKeys;

use super::clearing::{verify_tacs, PARALLEL_TAC_RECORDS};

use super::{IngestError, Ingested, Store, Upload};

/// Records a group takes at most (a first upload larger than this goes alone).
pub const GROUP_RECORDS_MAX: usize = 50_000;
/// Records of uploads in the queue's hands at once (being checked, queued or in a group) by
/// default: past it, uploads wait their turn, so that a slow database holds the gates back
/// instead of growing the service's memory. (An upload larger than the bound takes it all.)
pub const QUEUED_RECORDS_MAX: usize = 1_000_000;

/// An upload waiting in the queue.
struct Queued {
    batch: Arc<Batch>,
    operator_key_id: String,
    received: DateTime,
    now_ms: i64,
    checks: Arc<[TacCheck]>,
    answer: oneshot::Sender<Result<Ingested, IngestError>>,
    /// Its records' places in the queue, given back when it is answered or dropped.
    _places: tokio::sync::OwnedSemaphorePermit,
}

/// Uploads to one store, committed in groups. Share it (`Arc`) between the uploaders.
#[derive(Debug)]
pub struct IngestQueue {
    store: Store,
    queued: Mutex<Vec<Queued>>,
    /// The leader's turn: held by a group's task until the group is prepared and writing.
    leader: Arc<tokio::sync::Mutex<()>>,
    /// Turns at checking TACs: one core fewer than the machine has (at least one), so that the
    /// group being written is not starved of CPU by the uploads checked meanwhile.
    checking: Arc<tokio::sync::Semaphore>,
    /// The turns there are.
    turns: usize,
    /// Records in the queue's hands: one permit each, at most `limit`.
    in_flight: Arc<tokio::sync::Semaphore>,
    limit: usize,
    counts: Counts,
}

/// Counters since the queue was made.
#[derive(Debug, Default)]
struct Counts {
    groups: AtomicU64,
    batches: AtomicU64,
    records: AtomicU64,
    split: AtomicU64,
    failed: AtomicU64,
}

/// What a queue has done, for monitoring ([`IngestQueue::stats`]). An upload is counted when its
/// answer is sent (its caller may have gone away); a group whose COMMIT landed but whose sync
/// failed counts its uploads as failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Transactions committed (a group, or one upload of a split group).
    pub commits: u64,
    /// Uploads answered from a commit (a batch sent again included).
    pub batches: u64,
    /// Their records.
    pub records: u64,
    /// Groups that failed together and were taken upload by upload.
    pub groups_split: u64,
    /// Uploads answered with an error.
    pub failed: u64,
    /// Attempts prepared again from the database: a group (or an upload of a split one) whose
    /// write was refused — another writer got there first, or the cache it was prepared on went
    /// stale. Counted for the whole store: its other callers' ingests too (the platform's feed).
    pub retries: u64,
    /// Records in the queue's hands now (being checked, queued or being written).
    pub records_held: u64,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued").field("batch_id", &self.batch.header.batch_id).finish_non_exhaustive()
    }
}

impl IngestQueue {
    /// A queue in front of `store`, holding at most [`QUEUED_RECORDS_MAX`] records at once.
    pub fn new(store: Store) -> IngestQueue {
        IngestQueue::with_limit(store, QUEUED_RECORDS_MAX)
    }

    /// A queue in front of `store` holding at most `records` records at once (at least 1).
    pub fn with_limit(store: Store, records: usize) -> IngestQueue {
        let cores = super::cores();
        let limit = records.clamp(1, u32::MAX as usize);
        let turns = cores.saturating_sub(1).max(1);
        IngestQueue {
            store,
            queued: Mutex::new(Vec::new()),
            leader: Arc::default(),
            checking: Arc::new(tokio::sync::Semaphore::new(turns)),
            turns,
            in_flight: Arc::new(tokio::sync::Semaphore::new(limit)),
            limit,
            counts: Counts::default(),
        }
    }

    /// What the queue has done so far, and holds now.
    pub fn stats(&self) -> IngestStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        IngestStats {
            commits: load(&self.counts.groups),
            batches: load(&self.counts.batches),
            records: load(&self.counts.records),
            groups_split: load(&self.counts.split),
            failed: load(&self.counts.failed),
            retries: self.store.ingest_retries(),
            records_held: self.limit.saturating_sub(self.in_flight.available_permits()) as u64,
        }
    }

    /// Answers an upload, counting what it came to.
    fn answer(&self, queued: Queued, answer: Result<Ingested, IngestError>) {
        let add = |counter: &AtomicU64, n: usize| counter.fetch_add(n as u64, Ordering::Relaxed);
        if answer.is_ok() {
            add(&self.counts.batches, 1);
            add(&self.counts.records, queued.batch.records.len());
        } else {
            add(&self.counts.failed, 1);
        }
        let _ = queued.answer.send(answer);
    }

    /// Takes `batch` (as [`Store::ingest_batch`]), committed with the uploads queued beside it.
    pub async fn ingest(
        self: &Arc<Self>,
        batch: Arc<Batch>,
        tac_keys: &Arc<TacKeys>,
        operator_key_id: &str,
        received: DateTime,
        now_ms: i64,
    ) -> Result<Ingested, IngestError> {
        // The records' place in the queue, held by the queued upload until it is answered or
        // dropped (not by this caller, who may go away).
        let mut places = Some(self.places(&batch).await?);
        // CPU work (DES or SM4 per record), off the runtime's threads: a turn per thread, a
        // large upload (one after hours offline) on as many turns as its size and the free
        // turns allow.
        let checks = {
            // The turns go with the work: a caller that goes away does not free them early.
            let wanted = (batch.records.len() / PARALLEL_TAC_RECORDS).clamp(1, self.turns);
            let turns = self.checking.clone().acquire_many_owned(wanted as u32).await;
            let (batch, keys) = (batch.clone(), tac_keys.clone());
            tokio::task::spawn_blocking(move || {
                let checks: Arc<[TacCheck]> = verify_tacs(&batch.records, &keys, wanted).into();
                drop(turns);
                checks
            })
            .await
            .map_err(|error| IngestError::Internal(format!("the TAC checks stopped: {error}")))?
        };
        loop {
            let places = match places.take() {
                Some(places) => places,
                None => self.places(&batch).await?,
            };
            let (answer, mut answered) = oneshot::channel();
            self.queue().push(Queued {
                batch: batch.clone(),
                operator_key_id: operator_key_id.to_owned(),
                received,
                now_ms,
                checks: checks.clone(),
                answer,
                _places: places,
            });
            loop {
                tokio::select! {
                    biased;
                    answer = &mut answered => match answer {
                        Ok(answer) => return answer,
                        // Its leader was cancelled before answering: queue again.
                        Err(_) => break,
                    },
                    turn = self.leader.clone().lock_owned() => {
                        let group = self.next_group();
                        if group.is_empty() {
                            // Another leader took this upload: its answer comes.
                            drop(turn);
                            match (&mut answered).await {
                                Ok(answer) => return answer,
                                Err(_) => break,
                            }
                        }
                        // On a task of its own: the leader's caller going away does not cut the
                        // group's transaction short, and every upload of it is answered. The
                        // leader's turn is held, by a task of its own, until the group says it is
                        // `ready` (prepared, its shadows fed and cached, and writing) or failed
                        // before, so that no two groups are fed at once (but a group split after
                        // its write failed: its uploads are fed again one by one beside the next
                        // group, each checked at its write as any group is). The write says when
                        // (`ingest_group::write`): on SQLite once it committed, so that groups are
                        // fed and written in turn, unless the write folds the shadow journal.
                        let queue = self.clone();
                        let (ready, prepared) = oneshot::channel();
                        tokio::spawn(async move {
                            let _ = prepared.await;
                            drop(turn);
                        });
                        tokio::spawn(async move { queue.take(group, ready).await });
                    }
                }
            }
        }
    }

    /// A place in the queue for each of the batch's records (at most the whole bound).
    async fn places(&self, batch: &Batch) -> Result<tokio::sync::OwnedSemaphorePermit, IngestError> {
        let places = u32::try_from(batch.records.len().clamp(1, self.limit)).unwrap_or(u32::MAX);
        self.in_flight
            .clone()
            .acquire_many_owned(places)
            .await
            .map_err(|error| IngestError::Internal(format!("the upload queue is closed: {error}")))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        // A panic elsewhere while holding the lock leaves a usable queue (pushes and drains only).
        self.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The oldest queued uploads, up to [`GROUP_RECORDS_MAX`] records (at least one).
    fn next_group(&self) -> Vec<Queued> {
        let mut queued = self.queue();
        let mut records = 0;
        let mut take = 0;
        for upload in queued.iter() {
            records += upload.batch.records.len();
            if take > 0 && records > GROUP_RECORDS_MAX {
                break;
            }
            take += 1;
        }
        queued.drain(..take).collect()
    }

    /// Ingests `group` in one transaction and answers each; if that fails, each alone.
    /// (`ready` is told once the group is prepared and the next may be fed, as
    /// `ingest_group::write` decides; dropped unsent when it failed before.)
    async fn take(&self, group: Vec<Queued>, ready: oneshot::Sender<()>) {
        let mut ready = Some(ready);
        let together = {
            let uploads: Vec<Upload<'_>> = group.iter().map(upload).collect();
            let checks: Vec<&[TacCheck]> = group.iter().map(|q| &*q.checks).collect();
            self.store.ingest_checked(&uploads, &checks, &mut ready).await
        };
        let committed = || self.counts.groups.fetch_add(1, Ordering::Relaxed);
        match together {
            Ok(answers) => {
                committed();
                for (queued, answer) in group.into_iter().zip(answers) {
                    self.answer(queued, Ok(answer));
                }
            }
            Err(_) if group.len() > 1 => {
                self.counts.split.fetch_add(1, Ordering::Relaxed);
                for queued in group {
                    let alone = self.store.ingest_checked(&[upload(&queued)], &[&*queued.checks], &mut ready).await;
                    let alone = alone.and_then(|mut answers| {
                        committed();
                        answers.pop().ok_or_else(|| IngestError::Internal("a batch without an answer".into()))
                    });
                    self.answer(queued, alone);
                }
            }
            Err(error) => {
                if let Some(queued) = group.into_iter().next() {
                    self.answer(queued, Err(error));
                }
            }
        }
    }
}

fn upload(queued: &Queued) -> Upload<'_> {
    Upload {
        batch: &queued.batch,
        operator_key_id: &queued.operator_key_id,
        received: queued.received,
        now_ms: queued.now_ms,
    }
}
