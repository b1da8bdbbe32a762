//! `yitong`: issue development keys and card images, read and load cards, tap them at metro
//! gates and bus validators, run the scripted demo and the benchmarks.
//!
//! Exit codes: 0 done (a refused tap is a normal outcome), 1 a tap or load that did not complete
//! (card removed), 2 bad input or a failure.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod bench;
mod bench_clearing;
mod bench_clearing_day;
mod bench_topup;
mod bench_topup_client;
mod cardfile;
mod cities;
mod cmd_card;
mod cmd_fare;
mod cmd_gate;
mod cmd_gate_sync;
mod cmd_ledger;
mod cmd_operator;
mod cmd_phone;
mod cmd_reader;
mod cmd_serve;
mod cmd_settle;
mod cpu;
mod demo;
mod keys;
mod money;
mod output;
mod serials;
mod terminals;
mod time;

#[derive(Parser)]
#[command(name = "yitong", version, about = "Phone transit cards: card images, gates, top-up, demo and benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Issuer key sets.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Card images: issue, show, load.
    #[command(subcommand)]
    Card(CardCommand),
    /// Gates and validators.
    #[command(subcommand)]
    Gate(GateCommand),
    /// PC/SC readers.
    #[command(subcommand)]
    Reader(ReaderCommand),
    /// Fares: quotes and stations of a city's network.
    #[command(subcommand)]
    Fare(FareCommand),
    /// Benchmarks printed as figures.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// A scripted day of one phone card, in memory: issue, load, metro entry and exit, a bus
    /// ride, and a tap interrupted after DEBIT and recovered at the next tap.
    Demo(DemoArgs),
    /// A simulated phone in the wallet: new, enroll, topup, show, transfer, delete (a phone file,
    /// the wallet service over HTTP).
    #[command(subcommand)]
    Phone(cmd_phone::PhoneCommand),
    /// The wallet platform's HTTP API (device eligibility, cities, sign-up fees): SQLite in the
    /// data directory by default; Ctrl-C stops it.
    Serve(cmd_serve::ServeArgs),
    /// The platform's operators: API keys scoped to one city's issuer.
    #[command(subcommand)]
    Operator(cmd_operator::OperatorCommand),
    /// The platform's ledger: `check` proves it from the database.
    #[command(subcommand)]
    Ledger(cmd_ledger::LedgerCommand),
    /// A business day's clearing report: who owes whom among the cities' issuers and operators
    /// (CSV or JSON).
    Settle(cmd_settle::SettleArgs),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Writes a new random DEVELOPMENT issuer key set (master DLK, DPK, DTK, DAMK) as TOML.
    New(KeysNewArgs),
    /// Writes the part of a key set one role needs: gate (purchase + maintenance), topup (load),
    /// backoffice (TAC + maintenance).
    Export(KeysExportArgs),
}

/// Arguments of `yitong keys export`.
#[derive(Args)]
pub struct KeysExportArgs {
    /// The full key set to take the part from.
    #[arg(long)]
    pub keys: PathBuf,
    /// The role the new file is for.
    #[arg(long = "for", value_enum, value_name = "ROLE")]
    pub role: keys::RoleArg,
    /// Where to write the role's key file.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `yitong keys new`.
#[derive(Args)]
pub struct KeysNewArgs {
    /// Where to write the key file.
    #[arg(long)]
    pub out: PathBuf,
    /// Issuer ID, 16 hex digits; the city code sits at digits 5-8 (1000 is Beijing).
    #[arg(long, default_value = "0000100000000001")]
    pub issuer_id: String,
    /// Cipher family of the keys.
    #[arg(long, value_enum, default_value_t = AlgorithmArg::Des)]
    pub algorithm: AlgorithmArg,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
}

/// `--algorithm`.
#[derive(Clone, Copy, ValueEnum)]
pub enum AlgorithmArg {
    /// Two-key 3DES (algorithm ID 00).
    Des,
    /// SM4 (algorithm ID 04).
    Sm4,
}

#[derive(Subcommand)]
enum CardCommand {
    /// Personalizes a new card image with keys diversified from the issuer's master keys.
    Issue(cmd_card::IssueArgs),
    /// Reads a card image through APDUs as a reader would: identity, balance, counters, trips, logs.
    Show(cmd_card::ShowArgs),
    /// Loads money onto a card at a top-up terminal.
    Load(cmd_card::LoadArgs),
    /// Service desk: lifts a block (APPLICATION UNBLOCK under the maintenance key).
    Unblock(cmd_card::UnblockArgs),
    /// Serves a card image as a contactless card in the vsmartcard virtual reader (vpcd), so that
    /// pcscd shows it in "Virtual PCD 00 00" and any PC/SC application can talk to it.
    ServeVpcd(cmd_reader::ServeArgs),
    /// Reads a real card (or a served one) on a PC/SC reader, without keys: number, issuer,
    /// validity, balance, transaction log.
    Read(cmd_reader::ReadArgs),
}

#[derive(Subcommand)]
enum ReaderCommand {
    /// Lists PC/SC readers.
    List(cmd_reader::ListArgs),
}

#[derive(Subcommand)]
enum GateCommand {
    /// Taps a card at a metro gate (entry or exit by the card's state) or, with --bus, a bus validator.
    Tap(cmd_gate::TapArgs),
    /// Uploads the records the terminals hold to the back office and fetches the hotlist's changes.
    Sync(cmd_gate_sync::SyncArgs),
}

#[derive(Subcommand)]
enum FareCommand {
    /// The fare, distance and path of a metro trip.
    Quote(Box<cmd_fare::QuoteArgs>),
    /// The stations of a city's network.
    Stations(cmd_fare::StationsArgs),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// APDUs and microseconds per tap, card and gate in one process.
    Tap(bench::TapBenchArgs),
    /// APDU round trips and taps through pcscd and the vpcd virtual reader (needs --features pcsc).
    Pcsc(bench::PcscBenchArgs),
    /// Simulated phones doing over-the-air top-ups over HTTP, concurrently: top-ups per second,
    /// latency percentiles, the in-process baseline, the ledger check.
    Topup(bench_topup::TopUpBenchArgs),
    /// A day of gate uploads through the back office's ingest path (decode, TAC verification,
    /// deduplication, shadow balances, durable commit), against a naive baseline.
    Clearing(bench_clearing::ClearingBenchArgs),
}

/// Arguments of `yitong demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Do not print the APDUs.
    #[arg(long)]
    pub quiet: bool,
}

/// `yitong … | head` closes stdout early; `println!` then panics. Exit quietly instead, as
/// command-line tools do.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// A tap or load that did not complete, or a ledger that does not prove out: exit code 1.
#[derive(Debug)]
pub struct Incomplete(pub String);

impl std::fmt::Display for Incomplete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Incomplete {}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(KeysCommand::New(args)) => cmd_card::keys_new(&args),
        Command::Keys(KeysCommand::Export(args)) => cmd_card::keys_export(&args),
        Command::Card(CardCommand::Issue(args)) => cmd_card::issue(&args),
        Command::Card(CardCommand::Show(args)) => cmd_card::show(&args),
        Command::Card(CardCommand::Load(args)) => cmd_card::load(&args),
        Command::Card(CardCommand::Unblock(args)) => cmd_card::unblock(&args),
        Command::Card(CardCommand::ServeVpcd(args)) => cmd_reader::serve(&args),
        Command::Card(CardCommand::Read(args)) => cmd_reader::read(&args),
        Command::Reader(ReaderCommand::List(args)) => cmd_reader::list(&args),
        Command::Gate(GateCommand::Tap(args)) => cmd_gate::tap(&args),
        Command::Gate(GateCommand::Sync(args)) => cmd_gate_sync::sync(&args),
        Command::Fare(FareCommand::Quote(args)) => cmd_fare::quote(&args),
        Command::Fare(FareCommand::Stations(args)) => cmd_fare::stations(&args),
        Command::Bench(BenchCommand::Tap(args)) => bench::tap(&args),
        Command::Bench(BenchCommand::Pcsc(args)) => bench::pcsc(&args),
        Command::Bench(BenchCommand::Topup(args)) => bench_topup::topup(&args),
        Command::Bench(BenchCommand::Clearing(args)) => bench_clearing::clearing(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Serve(args) => cmd_serve::serve(&args),
        Command::Operator(command) => cmd_operator::run(&command),
        Command::Ledger(command) => cmd_ledger::run(&command),
        Command::Settle(args) => cmd_settle::run(&args),
        Command::Phone(command) => cmd_phone::run(&command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<Incomplete>().is_some() => {
            eprintln!("yitong: {e:#}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("yitong: {e:#}");
            ExitCode::from(2)
        }
    }
}
