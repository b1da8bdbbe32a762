//! `yitong bench clearing`: a day of gate uploads through the back office's whole ingest path,
//! against a naive baseline in the same run.
//!
//! The day (`bench_clearing_day`) is generated first and encoded as the gates' binary batches
//! (not timed). The timed run has `--uploaders` gates upload at once through the service's
//! group-committing queue (`IngestQueue`): each batch decoded, every record's TAC verified,
//! deduplicated, the cards' shadows updated, committed durably (SQLite with full durability
//! unless `--db` names another database). The baseline takes the first
//! `--baseline-taps` records the way a first attempt would: per record, the TAC verified, one
//! `INSERT` and one balance `UPDATE`, each its own (durable) transaction. The run ends with its
//! proof, read from the database: every batch and record kept and accepted, no flag nor hotlist
//! change, the torn taps settled as they happened, and the shadows' balances adding up, to the
//! fen, to the cards' true balances.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use yitong_clearing::batch::Batch;
use yitong_platform::cities::Cities;
use yitong_platform::issuer_keys::IssuerKeyring;
use yitong_platform::store::{IngestQueue, Store};
use yitong_profile::DateTime;
use yitong_record::{verify_tac, TacKeys};

use crate::bench_clearing_day::{generate, Day};
use crate::cmd_serve::{open_store_with, ShadowCacheArg};
use crate::cpu;
use crate::money::yuan;

/// Issue 9's goal on the 2-core development machine, and against the baseline.
const GOAL_PER_SECOND: f64 = 200_000.0;
const GOAL_RATIO: f64 = 10.0;
const TAPS_MAX: usize = 20_000_000;
/// The binary encoding's most records per batch.
const BATCH_MAX: usize = 100_000;
const UPLOADERS_MAX: usize = 1_024;

/// Arguments of `yitong bench clearing`.
#[derive(Args, Clone)]
pub struct ClearingBenchArgs {
    /// Records to generate and ingest.
    #[arg(long, default_value_t = 200_000)]
    pub taps: usize,
    /// Most records per gate upload.
    #[arg(long, default_value_t = 2_000)]
    pub batch: usize,
    /// Gates uploading at once (the service commits concurrent uploads in groups).
    #[arg(long, default_value_t = 256)]
    pub uploaders: usize,
    /// Records the naive baseline takes (the first ones of the day; each costs two durable commits).
    #[arg(long, default_value_t = 2_000)]
    pub baseline_taps: usize,
    /// Cities whose cards and gates take part (the first ones' networks see visitors of the others).
    #[arg(long, value_delimiter = ',', default_value = "beijing,shanghai,guangzhou,wuhan")]
    pub cities: Vec<String>,
    /// The day's seed: the same seed, the same day.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The back office's database: `sqlite:PATH` or `postgres://…` (default a fresh SQLite file in a
    /// temporary directory). The baseline always runs on a fresh SQLite file.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Print JSON (and no progress bar).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub shadow_cache: ShadowCacheArg,
}

/// What a run measured and what its records came to.
#[derive(Default)]
struct Run {
    records: usize,
    wall: Duration,
    /// The process's CPU time (every thread, user and system) during the run.
    cpu: Duration,
    accepted: usize,
    duplicates: usize,
    rejected: usize,
    /// Unconfirmed records by their verdict, as the shadows hold them at the end.
    verdicts: BTreeMap<String, usize>,
    /// What the database holds at the end: batches, records by disposition, cards with flags,
    /// the hotlist's version.
    stored_batches: i64,
    stored_records: BTreeMap<String, i64>,
    flagged_cards: u64,
    hotlist_version: u64,
    /// The ingest: the write transactions its queue committed (a group of uploads each).
    groups: u64,
    /// Attempts the store prepared again from the database.
    retries: u64,
    /// The ingest: the fold of the shadow journal it left (SQLite), after the timed run.
    fold: Duration,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// CPU time a record, µs.
    fn cpu_us_per_record(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / (self.records as f64).max(1.0)
    }

    /// How many cores were busy on average.
    fn cores_busy(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    /// Records a second counting the fold after the run too.
    fn per_second_with_fold(&self) -> f64 {
        self.records as f64 / (self.wall + self.fold).as_secs_f64().max(1e-9)
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "records": self.records,
            "wall_s": self.wall.as_secs_f64(),
            "fold_after_s": self.fold.as_secs_f64(),
            "taps_per_s_with_fold": self.per_second_with_fold(),
            "cpu_s": self.cpu.as_secs_f64(),
            "cpu_us_per_record": self.cpu_us_per_record(),
            "cores_busy": self.cores_busy(),
            "taps_per_s": self.per_second(),
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "unconfirmed_verdicts": self.verdicts,
            "stored": { "batches": self.stored_batches, "records": self.stored_records },
            "flagged_cards": self.flagged_cards,
            "hotlist_version": self.hotlist_version,
            "groups": self.groups,
            "retries": self.retries,
        })
    }
}

pub fn clearing(args: &ClearingBenchArgs) -> anyhow::Result<()> {
    if !(1..=TAPS_MAX).contains(&args.taps) {
        bail!("--taps: {} is not 1 to {TAPS_MAX}", args.taps);
    }
    if !(1..=BATCH_MAX).contains(&args.batch) {
        bail!("--batch: {} is not 1 to {BATCH_MAX} (the binary encoding's limit)", args.batch);
    }
    if !(1..=UPLOADERS_MAX).contains(&args.uploaders) {
        bail!("--uploaders: {} is not 1 to {UPLOADERS_MAX}", args.uploaders);
    }
    if cfg!(debug_assertions) && !args.json {
        eprintln!("note: a debug build; run `cargo run --release -p yitong-cli -- bench clearing` for real figures");
    }
    let all = Cities::builtin().context("the built-in cities")?;
    let mut cities = Vec::new();
    for name in &args.cities {
        let city = all.get(name).with_context(|| {
            format!("--cities: `{name}` is not a city here ({})", all.names().collect::<Vec<_>>().join(", "))
        })?;
        if cities.iter().any(|c: &&yitong_platform::cities::City| c.name() == city.name()) {
            bail!("--cities: `{name}` is named twice");
        }
        cities.push(city);
    }
    if cities.is_empty() {
        bail!("--cities: name at least one city");
    }
    let temp = tempfile::tempdir().context("a temporary directory")?;
    let keyring = IssuerKeyring::development(temp.path(), &all).context("development keys")?;
    // Card keys kept for as many cards as the back office keeps shadows of, as the service does.
    let tac = Arc::new(keyring.tac_keys_keeping(args.shadow_cache.cards));

    let spinner = spinner(args, "generating the day's taps");
    let day = generate(&cities, &keyring, args.taps, args.batch, args.seed)?;
    let uploads = Arc::new(day.batches.iter().map(Batch::to_binary).collect::<Result<Vec<_>, _>>()?);
    spinner.finish_and_clear();

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start tokio")?;
    let (run, database, shadows) = runtime.block_on(async {
        let options = args.shadow_cache.store_options();
        let (store, database) = open_store_with(&args.db, &Some(temp.path().join("back-office")), options).await?;
        // The proofs read the whole database: it must hold this run alone.
        let (batches, _) = store.clearing_counts().await.context("the database's batches")?;
        if batches > 0 || store.shadow_totals().await.context("the database's shadows")?.0 > 0 {
            bail!("--db: {database} holds a back office already ({batches} batches); give an empty database");
        }
        let run = ingest(args, &store, &uploads, &tac, day.records).await?;
        let shadows = store.shadow_totals().await.context("the shadows' totals")?;
        store.close().await;
        anyhow::Ok((run, database, shadows))
    })?;
    let baseline_records = args.baseline_taps.min(day.records);
    let baseline =
        runtime.block_on(baseline(args, &temp.path().join("baseline.sqlite"), &uploads, &tac, baseline_records))?;

    let mut failed = Vec::new();
    if run.accepted != day.records || run.rejected != 0 || run.duplicates != 0 {
        failed.push(format!(
            "{} records: {} accepted, {} duplicates, {} rejected",
            day.records, run.accepted, run.duplicates, run.rejected
        ));
    }
    let stored = |disposition: &str| run.stored_records.get(disposition).copied().unwrap_or(0);
    if (run.stored_batches, stored("accepted"), stored("duplicate") + stored("rejected"))
        != (day.batches.len() as i64, day.records as i64, 0)
    {
        failed.push(format!(
            "the database keeps {} batches and {:?} records; the day sent {} batches of {} records",
            run.stored_batches,
            run.stored_records,
            day.batches.len(),
            day.records
        ));
    }
    if run.flagged_cards > 0 || run.hotlist_version > 0 {
        failed.push(format!(
            "{} cards flagged and {} hotlist changes on a day without fraud",
            run.flagged_cards, run.hotlist_version
        ));
    }
    let charged = run.verdicts.get("charged").copied().unwrap_or(0);
    let voided = run.verdicts.get("voided").copied().unwrap_or(0);
    let pending = run.verdicts.get("pending").copied().unwrap_or(0);
    if (charged, voided, pending) != (day.torn_committed, day.torn_voided, 0) {
        failed.push(format!(
            "torn taps: {charged} charged, {voided} voided, {pending} pending; the cards committed {} and not {}",
            day.torn_committed, day.torn_voided
        ));
    }
    if shadows != (day.cards as i64, day.final_balances_fen) {
        failed.push(format!(
            "the shadows: {} cards holding {} yuan; the cards: {} holding {} yuan",
            shadows.0,
            yuan(shadows.1),
            day.cards,
            yuan(day.final_balances_fen)
        ));
    }
    report(args, &day, &database, &run, &baseline, shadows);
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

/// The whole ingest path as the service runs it: `--uploaders` gates uploading at once, in the
/// day's order, through the group-committing queue.
async fn ingest(
    args: &ClearingBenchArgs,
    store: &Store,
    uploads: &Arc<Vec<Vec<u8>>>,
    tac: &Arc<TacKeys>,
    records: usize,
) -> anyhow::Result<Run> {
    // Received the next morning: every tap is in the past.
    let received = DateTime::new(2026, 11, 26, 1, 0, 0)?;
    let bar = progress(args, "ingest", records);
    let queue = Arc::new(IngestQueue::new(store.clone()));
    let next = Arc::new(AtomicUsize::new(0));
    let (start, cpu) = (Instant::now(), cpu::process());
    let mut uploaders = tokio::task::JoinSet::new();
    for _ in 0..args.uploaders {
        let (queue, next, uploads, tac, bar) = (queue.clone(), next.clone(), uploads.clone(), tac.clone(), bar.clone());
        uploaders.spawn(async move {
            let mut run = Run::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(bytes) = uploads.get(n) else { return anyhow::Ok(run) };
                let batch = Batch::from_binary(bytes).with_context(|| format!("batch {n}"))?;
                let now_ms = chrono::Utc::now().timestamp_millis();
                let ingested =
                    queue.ingest(Arc::new(batch), &tac, "bench", received, now_ms).await.context("ingesting")?;
                let answer = ingested.answer;
                run.records += answer.records;
                run.accepted += answer.accepted;
                run.duplicates += answer.duplicates;
                run.rejected += answer.rejected.len();
                bar.inc(answer.records as u64);
            }
        });
    }
    let mut run = Run::default();
    while let Some(part) = uploaders.join_next().await {
        let part = part.context("an uploader")??;
        run.records += part.records;
        run.accepted += part.accepted;
        run.duplicates += part.duplicates;
        run.rejected += part.rejected;
    }
    (run.wall, run.cpu) = (start.elapsed(), cpu::process().saturating_sub(cpu));
    let stats = queue.stats();
    (run.groups, run.retries) = (stats.commits, stats.retries);
    bar.finish_and_clear();
    // On SQLite, the shadows the groups journaled since the last fold, written to their rows:
    // deferred work, timed on its own (any read of the shadows would do it).
    let folding = Instant::now();
    store.fold_shadow_journal().await.context("folding the shadow journal")?;
    run.fold = folding.elapsed();
    // What the database holds, read from it (answers can arrive in any order, and the answers
    // are the code's own word).
    let census = store.shadow_census().await.context("the shadows")?;
    for (verdict, count) in census.unconfirmed {
        run.verdicts.insert(verdict.to_owned(), count as usize);
    }
    run.flagged_cards = census.flagged_cards;
    (run.stored_batches, run.stored_records) = store.clearing_counts().await.context("the records kept")?;
    run.hotlist_version = store.hotlist().await.context("the hotlist")?.version();
    Ok(run)
}

/// The naive baseline: per record, the TAC verified, then an `INSERT` and a balance `UPDATE` in
/// autocommit (WAL, `synchronous = FULL`: two durable commits).
async fn baseline(
    args: &ClearingBenchArgs,
    path: &std::path::Path,
    uploads: &[Vec<u8>],
    tac: &TacKeys,
    records: usize,
) -> anyhow::Result<Run> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{ConnectOptions, Connection};
    let mut db = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await
        .context("the baseline's SQLite file")?;
    sqlx::raw_sql(
        "CREATE TABLE records (tap_id TEXT PRIMARY KEY, card TEXT NOT NULL, record TEXT NOT NULL); \
         CREATE TABLE balances (card TEXT PRIMARY KEY, balance_fen INTEGER NOT NULL);",
    )
    .execute(&mut db)
    .await?;
    let bar = progress(args, "baseline", records);
    let mut run = Run::default();
    let (start, cpu) = (Instant::now(), cpu::process());
    'batches: for bytes in uploads {
        let batch = Batch::from_binary(bytes)?;
        for record in &batch.records {
            if run.records == records {
                break 'batches;
            }
            run.records += 1;
            if verify_tac(record, tac).is_err() && record.tac.is_some() {
                run.rejected += 1;
                continue;
            }
            let card = record.card_serial_hex();
            let inserted = sqlx::query("INSERT INTO records VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
                .bind(record.tap_id().to_string())
                .bind(&card)
                .bind(serde_json::to_string(record)?)
                .execute(&mut db)
                .await?
                .rows_affected();
            if inserted == 0 {
                run.duplicates += 1;
                continue;
            }
            run.accepted += 1;
            sqlx::query(
                "INSERT INTO balances VALUES (?, ?) ON CONFLICT (card) DO UPDATE SET balance_fen = excluded.balance_fen",
            )
            .bind(&card)
            .bind(record.balance_after_fen)
            .execute(&mut db)
            .await?;
            bar.inc(1);
        }
    }
    (run.wall, run.cpu) = (start.elapsed(), cpu::process().saturating_sub(cpu));
    bar.finish_and_clear();
    db.close().await?;
    Ok(run)
}

fn report(args: &ClearingBenchArgs, day: &Day, database: &str, run: &Run, baseline: &Run, shadows: (i64, i64)) {
    // The ingest's rate counts the fold the run left (its cost is the run's), for the ratio and
    // the goal alike; the baseline leaves none.
    let ratio = run.per_second_with_fold() / baseline.per_second().max(1e-9);
    let met = run.per_second_with_fold() >= GOAL_PER_SECOND && ratio >= GOAL_RATIO;
    if args.json {
        let out = json!({
            "database": database,
            "seed": args.seed,
            "cities": args.cities,
            "day": {
                "records": day.records, "batches": day.batches.len(), "cards": day.cards,
                "visiting_cards": day.visiting_cards, "loaded_fen": day.loaded_fen,
                "purchased_fen": day.purchased_fen, "torn_committed": day.torn_committed,
                "torn_voided": day.torn_voided, "initial_balances_fen": day.initial_balances_fen,
                "final_balances_fen": day.final_balances_fen,
            },
            "ingest": run.json(),
            "baseline": baseline.json(),
            "ratio": ratio,
            "shadows": { "cards": shadows.0, "balances_fen": shadows.1 },
            "goal": { "taps_per_s": GOAL_PER_SECOND, "ratio": GOAL_RATIO, "met": met },
        });
        println!("{out:#}");
        return;
    }
    println!("bench clearing: {database}; seed {}; cities {}", args.seed, args.cities.join(", "));
    println!(
        "day: {} records in {} batches; {} cards ({} visiting another city); loads {} yuan, purchases {} yuan; \
         torn taps {} committed, {} not",
        day.records,
        day.batches.len(),
        day.cards,
        day.visiting_cards,
        yuan(day.loaded_fen),
        yuan(day.purchased_fen),
        day.torn_committed,
        day.torn_voided
    );
    println!("{:<10} {:>10} {:>10} {:>12} {:>10} {:>11}", "run", "records", "wall s", "taps/s", "CPU s", "cores busy");
    for (name, r) in [("ingest", run), ("baseline", baseline)] {
        println!(
            "{name:<10} {:>10} {:>10.3} {:>12.0} {:>10.3} {:>11.2}",
            r.records,
            r.wall.as_secs_f64(),
            r.per_second(),
            r.cpu.as_secs_f64(),
            r.cores_busy()
        );
    }
    println!(
        "CPU of the ingest: {:.1} µs a record; {} groups committed, {:.0} records each; {} prepared again",
        run.cpu_us_per_record(),
        run.groups,
        run.records as f64 / (run.groups as f64).max(1.0),
        run.retries
    );
    if !run.fold.is_zero() {
        println!(
            "the shadow journal it left folded after it in {:.3} s: {:.0} taps/s counting that",
            run.fold.as_secs_f64(),
            run.per_second_with_fold()
        );
    }
    println!("ratio: {ratio:.1}x the baseline (the ingest counting the fold it left)");
    println!(
        "shadows: {} cards holding {} yuan (the cards' true balances: {} yuan)",
        shadows.0,
        yuan(shadows.1),
        yuan(day.final_balances_fen)
    );
    println!(
        "goal ({GOAL_PER_SECOND:.0} taps/s counting the fold, and {GOAL_RATIO:.0}x the baseline): {}",
        if met { "met" } else { "not met" }
    );
}

fn spinner(args: &ClearingBenchArgs, what: &str) -> ProgressBar {
    if args.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A bar of a run's records on stderr; hidden for --json or when stderr is not a terminal.
fn progress(args: &ClearingBenchArgs, what: &str, records: usize) -> ProgressBar {
    if args.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(records as u64);
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} taps  {per_sec}  {elapsed}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(what.to_owned());
    bar
}
