//! `yitong bench topup`: simulated phones doing full over-the-air top-ups over HTTP, concurrently.
//!
//! Each phone registers and enrolls a Beijing card with the wallet SDK (`yitong-wallet`, a thread
//! each; not timed), then tops it up M times with its own kept-alive connection and software SE,
//! every phone a task on one thread (`bench_topup_client`): open the order, pay it (the
//! DEVELOPMENT-ONLY pay endpoint), INITIALIZE FOR LOAD on the card, authorize, CREDIT FOR LOAD,
//! complete. A top-up's latency runs from opening the order to
//! the verified `complete`. The baseline is the same top-ups through the platform's services in
//! this process, without HTTP; the HTTP figures are given as ratios of it. Each run ends with the
//! ledger check and the conservation proof: the cards hold exactly the money loaded.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use yitong_platform::issuance::{CardApplication, Issuance, Phone as Applicant};
use yitong_platform::ledger::{CardId, Fen, LedgerCheck};
use yitong_platform::payments::{MerchantOrderId, NewOrder, OrderKind, PayOutcome};
use yitong_platform::pricing::Channel;
use yitong_server::{AppState, KeySource, SystemClock};
use yitong_wallet::se::{exchange, order_id as phone_order_id, random_id};
use yitong_wallet::{Device, HttpApi, Phone, PhoneFile, SoftSe, Token, Wallet, WalletApi, WalletError};

use crate::bench_topup_client::{self, Timed, TimedPhone};
use crate::cmd_serve::open_store;
use crate::cpu;
use crate::money::yuan;

/// Each top-up: 1 yuan.
const AMOUNT_FEN: i64 = 100;
/// A card holds at most 1,000 yuan: 1,000 top-ups of 1 yuan.
const TOPUPS_MAX: u32 = 1_000;
/// One connection per phone (and a thread each while enrolling).
const PHONES_MAX: u32 = 512;
/// Issue 8's goal on the 2-core development machine.
const GOAL_PER_SECOND: f64 = 2_000.0;
const GOAL_P99_MS: f64 = 25.0;
const CITY: &str = "beijing";

/// Arguments of `yitong bench topup`.
#[derive(Args, Clone)]
pub struct TopUpBenchArgs {
    /// Simulated phones, each with its own connection.
    #[arg(long, default_value_t = 16)]
    pub phones: u32,
    /// Top-ups of 1 yuan per phone.
    #[arg(long, default_value_t = 50)]
    pub topups: u32,
    /// The service's database: `sqlite:PATH` or `postgres://…` (default a fresh SQLite file in a
    /// temporary directory); with --server, that service's database, for the ledger check.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// A running service to benchmark (`http://HOST:PORT`) instead of one started in this
    /// process on 127.0.0.1 with development keys.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Print JSON (and no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// What one run (over HTTP, or the in-process baseline) measured and proved.
#[derive(Default)]
struct Run {
    /// Top-ups verified complete.
    done: u64,
    wall: Duration,
    /// Sorted.
    latencies: Vec<Duration>,
    /// The error that stopped each phone that stopped.
    failures: Vec<String>,
    /// The service's balances of the run's cards, added up, fen.
    service_cards_fen: i64,
    /// Where the service's balances were read: `store` or `card view` (over HTTP).
    service_source: &'static str,
    /// The SEs' balances (GET BALANCE), added up, fen.
    se_cards_fen: i64,
    /// The ledger check of the run's store (`None`: no store to check).
    ledger: Option<LedgerCheck>,
    /// The process's CPU time over the run.
    cpu: Duration,
    /// The phones' share of it, when they had a thread of their own (over HTTP).
    phones_cpu: Option<Duration>,
    /// Whether the service ran in this process (its CPU time is the rest).
    service_in_process: bool,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.done as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (nearest rank), ms.
    fn ms(&self, q: f64) -> f64 {
        percentile(&self.latencies, q).as_secs_f64() * 1e3
    }

    /// Both sides' card balances add up to the money loaded.
    fn conserved(&self, loaded_fen: i64) -> bool {
        self.se_cards_fen == loaded_fen && self.service_cards_fen == loaded_fen
    }

    /// CPU microseconds per top-up.
    fn us_per_topup(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / (self.done as f64).max(1.0)
    }

    /// The service's CPU time: the process's less the phones' (`None` when either is not here).
    fn service_cpu(&self) -> Option<Duration> {
        let phones = self.phones_cpu?;
        self.service_in_process.then(|| self.cpu.saturating_sub(phones))
    }

    fn balanced(&self) -> Option<bool> {
        self.ledger.as_ref().map(LedgerCheck::is_ok)
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "topups": self.done,
            "wall_s": self.wall.as_secs_f64(),
            "topups_per_s": self.per_second(),
            "latency_ms": { "p50": self.ms(0.50), "p90": self.ms(0.90), "p99": self.ms(0.99), "max": self.ms(1.0) },
            "cpu_us_per_topup": self.us_per_topup(self.cpu),
            "phones_cpu_us_per_topup": self.phones_cpu.map(|cpu| self.us_per_topup(cpu)),
            "service_cpu_us_per_topup": self.service_cpu().map(|cpu| self.us_per_topup(cpu)),
            "failures": self.failures,
            "service_card_balances_fen": self.service_cards_fen,
            "service_card_balances_from": self.service_source,
            "se_card_balances_fen": self.se_cards_fen,
            "ledger_balanced": self.balanced(),
            // The check without its per-account balances (one per card).
            "ledger": self.ledger.as_ref().map(|check| json!({
                "postings": check.postings,
                "lines": check.lines,
                "debit_fen": check.debit_fen,
                "credit_fen": check.credit_fen,
                "card_balances_fen": check.card_balances_fen,
                "unbalanced_postings": check.unbalanced_postings,
                "card_mismatches": check.card_mismatches,
                "order_mismatches": check.order_mismatches,
            })),
        })
    }
}

/// The nearest-rank percentile `q` of `sorted` (zero when empty).
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied().unwrap_or_default()
}

/// One phone's part of a run.
struct PhoneRun {
    latencies: Vec<Duration>,
    /// When its last top-up ended.
    end: Instant,
    se_fen: i64,
    service_fen: i64,
    error: Option<String>,
}

impl Run {
    /// The phones' parts of a run that started at `start`.
    fn gather(start: Instant, phones: Vec<PhoneRun>) -> Run {
        let mut run = Run::default();
        for phone in phones {
            run.done += phone.latencies.len() as u64;
            run.latencies.extend(phone.latencies);
            run.wall = run.wall.max(phone.end.saturating_duration_since(start));
            run.se_cards_fen += phone.se_fen;
            run.service_cards_fen += phone.service_fen;
            run.failures.extend(phone.error);
        }
        run.latencies.sort_unstable();
        run
    }
}

pub fn topup(args: &TopUpBenchArgs) -> anyhow::Result<()> {
    if !(1..=PHONES_MAX).contains(&args.phones) {
        bail!("--phones: {} is not 1 to {PHONES_MAX}", args.phones);
    }
    if !(1..=TOPUPS_MAX).contains(&args.topups) {
        bail!("--topups: {} is not 1 to {TOPUPS_MAX} (1 yuan each; a card holds at most 1,000 yuan)", args.topups);
    }
    let remote = args.server.as_deref().map(HttpApi::new).transpose().context("--server")?;
    if let Some(api) = &remote {
        if !api.server().starts_with("http://") {
            bail!("--server: the bench's phones speak plain HTTP (http://HOST:PORT), not {}", api.server());
        }
    }
    if cfg!(debug_assertions) && !args.json {
        eprintln!("note: a debug build; run `cargo run --release -p yitong-cli -- bench topup` for real figures");
    }
    let temp = tempfile::tempdir().context("a temporary directory")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start tokio")?;

    // The baseline first, over the same kind of store: SQLite unless --db is PostgreSQL.
    let baseline_db = args.db.clone().filter(|url| url.starts_with("postgres"));
    let baseline = runtime.block_on(in_process(args, &baseline_db, temp.path()))?;

    let (http, server, database) = match remote {
        Some(api) => {
            // The service's database, for the ledger check; its name printable (no password).
            let (store, database) = match &args.db {
                Some(_) => runtime.block_on(open_store(&args.db, &None)).map(|(s, name)| (Some(s), Some(name)))?,
                None => (None, None),
            };
            let mut http = over_http(args, api.server(), temp.path())?;
            if let Some(store) = store {
                http.ledger = Some(runtime.block_on(store.check_ledger()).context("the ledger check")?);
                runtime.block_on(store.close());
            }
            (http, api.server().to_owned(), database)
        }
        None => {
            let (http, server, database) = runtime.block_on(serve_and_run(args, temp.path()))?;
            (http, server, Some(database))
        }
    };

    report(args, &server, database.as_deref(), &baseline, &http)?;
    let loaded = loaded_fen(args);
    let mut failed = Vec::new();
    for (name, run) in [("in-process", &baseline), ("HTTP", &http)] {
        if let Some(first) = run.failures.first() {
            failed.push(format!("{name}: {} phone(s) stopped, first: {first}", run.failures.len()));
        }
        if run.balanced() == Some(false) {
            failed.push(format!("{name}: the ledger does not balance"));
        }
        if run.failures.is_empty() && !run.conserved(loaded) {
            failed.push(format!("{name}: the card balances do not add up to the {} yuan loaded", yuan(loaded)));
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}

/// N·M·amount.
fn loaded_fen(args: &TopUpBenchArgs) -> i64 {
    i64::from(args.phones) * i64::from(args.topups) * AMOUNT_FEN
}

/// A bar of the run's top-ups on stderr; hidden for --json or when stderr is not a terminal.
fn progress(args: &TopUpBenchArgs, what: &str) -> ProgressBar {
    if args.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(u64::from(args.phones) * u64::from(args.topups));
    let style = ProgressStyle::with_template("{prefix:>10} [{bar:40}] {pos}/{len} top-ups  {per_sec}  {elapsed}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(what.to_owned());
    bar
}

/// A Xiaomi Mi 6 (embedded SE, every city) with random IDs.
fn bench_device() -> Result<Device, WalletError> {
    Ok(Device {
        device_id: random_id("BENCH-", 8)?,
        se_id: random_id("", 16)?,
        maker: "Xiaomi".to_owned(),
        model: "Mi 6".to_owned(),
        carrier: None,
    })
}

/// The SE's balance (GET BALANCE), fen.
fn se_balance(se: &mut SoftSe) -> anyhow::Result<i64> {
    let answer = exchange(se, &yitong_profile::apdu::get_balance())?;
    let data = answer.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()).context("GET BALANCE: no balance")?;
    Ok(i64::from(i32::from_be_bytes(data)))
}

/// The service on `store`-backed state, on a free port of 127.0.0.1 in this runtime, for the
/// HTTP run; then the ledger check. (run, service URL, database).
async fn serve_and_run(args: &TopUpBenchArgs, dir: &Path) -> anyhow::Result<(Run, String, String)> {
    let (store, database) = open_store(&args.db, &Some(dir.join("http"))).await?;
    let state = AppState::builtin(store.clone(), Arc::new(SystemClock), KeySource::Development(dir.to_path_buf()))
        .context("the service's state")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("cannot listen on 127.0.0.1")?;
    let server = format!("http://{}", listener.local_addr().context("the listening address")?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(yitong_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let phones = {
        let (args, server, dir) = (args.clone(), server.clone(), dir.to_path_buf());
        tokio::task::spawn_blocking(move || over_http(&args, &server, &dir))
    };
    let run = phones.await.context("the phones' task");
    let _ = stop.send(());
    serving.await.context("the service's task")?.context("serving")?;
    let mut run = run??;
    run.service_in_process = true;
    run.ledger = Some(store.check_ledger().await.context("the ledger check")?);
    store.close().await;
    Ok((run, server, database))
}

/// A phone's timed part, with the balances read after it: the SE's, and the service's card view.
fn with_balances(mut timed: Timed, api: &HttpApi, token: &Token, serial: &str) -> PhoneRun {
    let mut run =
        PhoneRun { latencies: timed.latencies, end: timed.end, se_fen: 0, service_fen: 0, error: timed.error };
    let balances = se_balance(&mut timed.se).and_then(|se_fen| Ok((se_fen, api.card(token, serial)?.balance_fen)));
    match balances {
        Ok((se_fen, service_fen)) => (run.se_fen, run.service_fen) = (se_fen, service_fen),
        Err(error) => {
            run.error.get_or_insert(format!("reading the balances: {error:#}"));
        }
    }
    run
}

/// The HTTP run against `server`: the phones enrolled first, a thread each (phone files in
/// `dir`), then timed from the moment every phone is ready, all on one thread
/// (`bench_topup_client`); then each phone's balances read (the SE's, the service's card view).
fn over_http(args: &TopUpBenchArgs, server: &str, dir: &Path) -> anyhow::Result<Run> {
    let phones_dir = dir.join("phones");
    std::fs::create_dir_all(&phones_dir).context("the phones' directory")?;
    let enrolling: Vec<_> = (0..args.phones)
        .map(|n| {
            let (server, file) = (server.to_owned(), phones_dir.join(format!("phone-{n}.json")));
            std::thread::Builder::new().name(format!("phone-{n}")).spawn(move || enroll_over_http(&server, &file))
        })
        .collect::<Result<_, _>>()
        .context("a phone's thread")?;
    // A phone that could not enroll stops there, with its error.
    let mut stopped = Vec::new();
    let (mut apis, mut timed_phones) = (Vec::new(), Vec::new());
    for thread in enrolling {
        match thread.join().map_err(|_| anyhow!("a phone's thread panicked"))? {
            Ok((api, token, serial, se)) => {
                let authorization = format!("Bearer {}", token.expose());
                timed_phones.push(TimedPhone { authorization, serial: serial.clone(), se });
                apis.push((api, token, serial));
            }
            Err(error) => stopped.push(PhoneRun {
                latencies: Vec::new(),
                end: Instant::now(),
                se_fen: 0,
                service_fen: 0,
                error: Some(format!("enrolling: {error:#}")),
            }),
        }
    }
    let done = Arc::new(AtomicU64::new(0));
    let timing = {
        let (server, done, topups) = (server.to_owned(), done.clone(), args.topups);
        std::thread::Builder::new()
            .name("phones".to_owned())
            .spawn(move || bench_topup_client::run(&server, timed_phones, topups, AMOUNT_FEN, done))
            .context("the phones' thread")?
    };
    let bar = progress(args, "HTTP");
    while !timing.is_finished() {
        bar.set_position(done.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_millis(50));
    }
    bar.finish_and_clear();
    let (start, timed, spent) = timing.join().map_err(|_| anyhow!("the phones' thread panicked"))??;
    let mut phones: Vec<PhoneRun> = timed
        .into_iter()
        .zip(apis)
        .map(|(timed, (api, token, serial))| with_balances(timed, &api, &token, &serial))
        .collect();
    phones.extend(stopped);
    let mut run = Run::gather(start, phones);
    run.service_source = "card view";
    (run.cpu, run.phones_cpu) = (spent.process, Some(spent.phones));
    Ok(run)
}

fn enroll_over_http(server: &str, file: &Path) -> anyhow::Result<(HttpApi, Token, String, SoftSe)> {
    let api = HttpApi::new(server)?;
    let mut file = PhoneFile::create(file, Phone::new(bench_device()?), false)?;
    Wallet::new(&api, &mut file).enroll(CITY, None)?;
    let token = file.phone.registration().map(|(_, token)| token.clone()).context("not registered")?;
    let card = file.phone.cards.get(CITY).context("no card after enrolling")?;
    Ok((api, token, card.serial.clone(), SoftSe::power_on(&card.image)?))
}

/// The baseline: the same top-ups through the platform's services (the state the HTTP handlers
/// use, over a store of its own) in this runtime, a task per phone.
async fn in_process(args: &TopUpBenchArgs, db: &Option<String>, dir: &Path) -> anyhow::Result<Run> {
    let (store, _) = open_store(db, &Some(dir.join("baseline"))).await?;
    let state = AppState::builtin(store.clone(), Arc::new(SystemClock), KeySource::Development(dir.to_path_buf()))
        .context("the platform's services")?;
    let mut issuing = Vec::new();
    for _ in 0..args.phones {
        let state = state.clone();
        issuing.push(tokio::spawn(async move { issue_in_process(&state).await }));
    }
    let mut cards = Vec::new();
    for task in issuing {
        cards.push(task.await.context("a phone's task")??);
    }
    let bar = progress(args, "in-process");
    let (start, cpu) = (Instant::now(), cpu::process());
    let mut phones = Vec::new();
    for (card, image) in &cards {
        let (state, card, image, bar, topups) = (state.clone(), card.clone(), image.clone(), bar.clone(), args.topups);
        phones.push(tokio::spawn(async move { in_process_phone(&state, &card, &image, topups, &bar).await }));
    }
    let mut runs = Vec::new();
    for phone in phones {
        runs.push(phone.await.context("a phone's task")?);
    }
    let cpu = cpu::process().saturating_sub(cpu);
    bar.finish_and_clear();
    let mut run = Run::gather(start, runs);
    (run.cpu, run.service_in_process) = (cpu, true);
    run.service_source = "store";
    run.service_cards_fen = 0;
    for (card, _) in &cards {
        run.service_cards_fen += store.card_balance(card).await?.map_or(0, Fen::get);
    }
    run.ledger = Some(store.check_ledger().await.context("the ledger check")?);
    store.close().await;
    Ok(run)
}

/// One phone in process: `topups` top-ups of its card, then its SE's balance.
async fn in_process_phone(state: &AppState, card: &CardId, image: &[u8], topups: u32, bar: &ProgressBar) -> PhoneRun {
    let mut run = PhoneRun { latencies: Vec::new(), end: Instant::now(), se_fen: 0, service_fen: 0, error: None };
    let mut se = match SoftSe::power_on(image) {
        Ok(se) => se,
        Err(error) => {
            run.error = Some(format!("the SE: {error}"));
            return run;
        }
    };
    for n in 1..=i64::from(topups) {
        let start = Instant::now();
        match top_up_in_process(state, card, &mut se, n * AMOUNT_FEN).await {
            Ok(()) => run.latencies.push(start.elapsed()),
            Err(error) => {
                run.error = Some(format!("top-up {n}: {error:#}"));
                break;
            }
        }
        bar.inc(1);
    }
    run.end = Instant::now();
    match se_balance(&mut se) {
        Ok(fen) => run.se_fen = fen,
        Err(error) => {
            run.error.get_or_insert(format!("reading the balance: {error:#}"));
        }
    }
    run
}

/// What `POST /v1/dev/orders/{id}/pay` does (`PaymentService::pay_simulated`): the simulated
/// provider's rider pays, its signed notifications are delivered (the order polled if none was).
async fn pay_in_process(state: &AppState, id: &MerchantOrderId) -> anyhow::Result<()> {
    let (outcome, _) = state.services().payments.pay_simulated(id, state.now_ms()).await?;
    if !matches!(outcome, PayOutcome::Paid { .. }) {
        bail!("order {id}: the provider did not pay it");
    }
    Ok(())
}

/// A Beijing card for a new phone, its sign-up fee paid: (card, image).
async fn issue_in_process(state: &AppState) -> anyhow::Result<(CardId, Vec<u8>)> {
    let services = state.services();
    let device = bench_device()?;
    let application = CardApplication {
        phone: Applicant {
            device_id: device.device_id,
            se_id: device.se_id,
            maker: device.maker,
            model: device.model,
            carrier: None,
        },
        city: CITY.to_owned(),
        channel: Channel::MakerWallet,
        fee_order_id: order_id("FEE-")?,
    };
    for _ in 0..2 {
        match services.issuance.request_card(&services.payments, &application, state.now(), state.now_ms()).await? {
            Issuance::Issued(issued) => return Ok((issued.card.card_id.clone(), issued.image.clone())),
            Issuance::PaymentRequired { order, .. } => pay_in_process(state, &order.merchant_order_id).await?,
        }
    }
    bail!("no card after paying its fee")
}

fn order_id(prefix: &str) -> anyhow::Result<MerchantOrderId> {
    MerchantOrderId::parse(&phone_order_id(prefix)?).map_err(|e| anyhow!("an order ID: {e}"))
}

/// One top-up in process, the steps of the HTTP handlers: open, pay, INITIALIZE, authorize,
/// CREDIT, complete, leaving the card at `balance_fen`.
async fn top_up_in_process(state: &AppState, card: &CardId, se: &mut SoftSe, balance_fen: i64) -> anyhow::Result<()> {
    let services = state.services();
    let id = order_id("TU-")?;
    let new = NewOrder {
        merchant_order_id: id.clone(),
        kind: OrderKind::TopUp,
        card_id: Some(card.clone()),
        amount: Fen::new(AMOUNT_FEN).context("a positive amount")?,
        description: format!("top-up of card {card}"),
    };
    services.payments.open_order(new, state.now_ms()).await?;
    let initialize = services.ota.initialize_command(&services.payments, &id).await?;
    pay_in_process(state, &id).await?;
    let answer = exchange(se, &initialize)?;
    let authorization = services.ota.authorize(&services.payments, &id, &answer, state.now(), state.now_ms()).await?;
    let answer = exchange(se, &authorization.credit_command)?;
    let loaded = services.ota.complete(&services.payments, &id, &answer, state.now_ms()).await?;
    if loaded.record.balance_after_fen != balance_fen {
        bail!("order {id}: balance {} fen after the load, expected {balance_fen}", loaded.record.balance_after_fen);
    }
    Ok(())
}

fn met(yes: bool) -> &'static str {
    if yes {
        "met"
    } else {
        "not met"
    }
}

fn report(
    args: &TopUpBenchArgs,
    server: &str,
    database: Option<&str>,
    baseline: &Run,
    http: &Run,
) -> anyhow::Result<()> {
    let loaded = loaded_fen(args);
    // The time HTTP adds: the wall time per top-up, and each latency, over the baseline's (none
    // when a run did no top-up).
    let comparable = baseline.done > 0 && http.done > 0;
    let cost = comparable.then(|| baseline.per_second() / http.per_second());
    let ratio = |q| comparable.then(|| http.ms(q) / baseline.ms(q).max(1e-9));
    let times = |r: Option<f64>| r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}×"));
    let rate_met = http.per_second() >= GOAL_PER_SECOND;
    let p99_met = http.ms(0.99) <= GOAL_P99_MS;
    if args.json {
        let v = json!({
            "phones": args.phones,
            "topups_per_phone": args.topups,
            "amount_fen": AMOUNT_FEN,
            "loaded_fen": loaded,
            "server": server,
            "in_process_server": args.server.is_none(),
            "database": database,
            "http": http.json(),
            "baseline": baseline.json(),
            "http_over_baseline": {
                "time_per_topup": cost,
                "p50": ratio(0.50),
                "p90": ratio(0.90),
                "p99": ratio(0.99),
                "max": ratio(1.0),
            },
            "goal": {
                "topups_per_s": GOAL_PER_SECOND,
                "topups_per_s_met": rate_met,
                "p99_ms": GOAL_P99_MS,
                "p99_met": p99_met,
            },
            "conserved": http.conserved(loaded) && baseline.conserved(loaded),
            "release_build": !cfg!(debug_assertions),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let place = if args.server.is_some() { "" } else { " (in this process)" };
    println!(
        "over-the-air top-ups: {} phones × {} top-ups of {} yuan, over HTTP at {server}{place}",
        args.phones,
        args.topups,
        yuan(AMOUNT_FEN)
    );
    println!("  database {}", database.unwrap_or("not known (pass --db to check the ledger)"));
    println!(
        "  {:<22} {:>7} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "", "top-ups", "wall s", "top-ups/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for (name, run) in [("in-process (baseline)", baseline), ("HTTP", http)] {
        println!(
            "  {name:<22} {:>7} {:>8.2} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            run.done,
            run.wall.as_secs_f64(),
            run.per_second(),
            run.ms(0.50),
            run.ms(0.90),
            run.ms(0.99),
            run.ms(1.0)
        );
    }
    let service = http.service_cpu().map_or_else(String::new, |cpu| {
        format!(
            " (the service {:.0} µs, the phones {:.0} µs)",
            http.us_per_topup(cpu),
            http.us_per_topup(http.cpu.saturating_sub(cpu))
        )
    });
    println!(
        "  CPU per top-up: in-process {:.0} µs; HTTP {:.0} µs{service}",
        baseline.us_per_topup(baseline.cpu),
        http.us_per_topup(http.cpu)
    );
    println!(
        "  HTTP costs {} the in-process top-up (wall time per top-up); latency p50 {}, p90 {}, p99 {}, max {}",
        times(cost),
        times(ratio(0.50)),
        times(ratio(0.90)),
        times(ratio(0.99)),
        times(ratio(1.0))
    );
    println!(
        "  goal {GOAL_PER_SECOND:.0} top-ups/s: {} ({:.2}× the goal); p99 ≤ {GOAL_P99_MS} ms: {} ({:.2} ms)",
        met(rate_met),
        http.per_second() / GOAL_PER_SECOND,
        met(p99_met),
        http.ms(0.99)
    );
    for (name, run) in [("in-process", baseline), ("HTTP", http)] {
        let ledger = match &run.ledger {
            Some(check) => format!(
                "{} postings, debits {} = credits {} yuan: {}",
                check.postings,
                yuan(check.debit_fen),
                yuan(check.credit_fen),
                if check.is_ok() { "balanced" } else { "NOT BALANCED" }
            ),
            None => "not checked (no --db)".to_owned(),
        };
        println!("  ledger ({name}): {ledger}");
        println!(
            "    cards: {} yuan ({}), {} yuan (SEs), loaded {} × {} × {} = {} yuan: {}",
            yuan(run.service_cards_fen),
            run.service_source,
            yuan(run.se_cards_fen),
            args.phones,
            args.topups,
            yuan(AMOUNT_FEN),
            yuan(loaded),
            if run.conserved(loaded) { "conserved" } else { "NOT CONSERVED" }
        );
        for failure in run.failures.iter().take(3) {
            println!("    stopped: {failure}");
        }
    }
    Ok(())
}
