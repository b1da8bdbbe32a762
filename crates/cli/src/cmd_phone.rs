//! `yitong phone …`: a simulated phone in a phone file, driven through the wallet SDK
//! (`yitong-wallet`) against the wallet platform's HTTP service.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use yitong_platform::cities::Cities;
use yitong_platform::devices::{CitySupport, DeviceRegistry, SecureElementKind};
use yitong_wallet::{
    Closed, Device, HttpApi, Phone, PhoneFile, Recovered, Tear, Wallet, WalletApi, WalletError, SERVER_DEFAULT,
    SERVER_ENV,
};

use crate::money::{parse_yuan, yuan};
use crate::output;

#[derive(Subcommand)]
pub enum PhoneCommand {
    /// Makes a new simulated phone (random device and SE IDs) of a catalogue model, and registers
    /// it with the service if the service answers (else at its first `enroll`).
    New(NewArgs),
    /// Signs the phone up for a card of a city: the sign-up fee is paid through the service's
    /// DEVELOPMENT-ONLY pay endpoint (standing in for the rider paying in WeChat Pay or Alipay),
    /// and the card's image is installed on the phone's SE.
    Enroll(EnrollArgs),
    /// Tops the phone's card up over the air: the order is paid through the DEVELOPMENT-ONLY pay
    /// endpoint, then INITIALIZE FOR LOAD / CREDIT FOR LOAD run between the service and the SE.
    Topup(TopupArgs),
    /// The phone's cards as its SE reads them (balance, EF18 log, trips) and the service's view.
    Show(ShowArgs),
    /// Moves the city's card to another phone: this one's card is emptied and blocked, the new
    /// phone gets a card of the city with the balance.
    Transfer(TransferArgs),
    /// Deletes the city's card: emptied and blocked, its balance refunded.
    Delete(DeleteArgs),
    /// Replaces the phone's token with a new one of its own making (from time to time, or when
    /// it may have leaked): kept in the phone file before it is sent, the old one works no more.
    RotateToken(RotateTokenArgs),
    /// Registers the phone again with the reset code the service's operator gave (after a lost
    /// token): the same device and SE, a new token in the file; its cards stay.
    Reregister(ReregisterArgs),
}

#[derive(Args)]
pub struct ReregisterArgs {
    /// The phone file.
    pub phone: PathBuf,
    /// The reset code (`ytr_` and 64 hex digits) from `POST /v1/operator/phones/{device_id}/reset`;
    /// `-` reads it from standard input (kept out of the process list and the shell's history).
    #[arg(long, value_name = "CODE")]
    pub reset_code: String,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args)]
pub struct RotateTokenArgs {
    /// The phone file.
    pub phone: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `--server`, shared by the commands that talk to the service.
#[derive(Args)]
pub struct ServerArgs {
    /// The wallet service's URL [default: $YITONG_SERVER, else the one the phone registered
    /// with, else http://127.0.0.1:8080].
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct NewArgs {
    /// The maker, as in the device catalogue (`Xiaomi`).
    #[arg(long)]
    pub maker: String,
    /// The model, as in the device catalogue (`Mi 6`).
    #[arg(long)]
    pub model: String,
    /// The NFC-SIM's carrier (models without an embedded SE for cards).
    #[arg(long)]
    pub carrier: Option<String>,
    /// Where to write the phone file.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Do not register now (the first `enroll` does).
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args)]
pub struct EnrollArgs {
    /// The phone file.
    pub phone: PathBuf,
    /// The city (`beijing`).
    #[arg(long)]
    pub city: String,
    /// The sign-up channel [default: the maker's wallet for an embedded SE, the carrier's hall
    /// for an NFC-SIM, as the service's eligibility answer says].
    #[arg(long, value_enum)]
    pub channel: Option<ChannelArg>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `--channel`.
#[derive(Clone, Copy, ValueEnum)]
pub enum ChannelArg {
    /// The maker's wallet app.
    MakerWallet,
    /// The city's own card app.
    CityApp,
    /// The carrier's service hall (NFC-SIM).
    CarrierHall,
}

impl ChannelArg {
    fn as_str(self) -> &'static str {
        match self {
            ChannelArg::MakerWallet => "maker-wallet",
            ChannelArg::CityApp => "city-app",
            ChannelArg::CarrierHall => "carrier-hall",
        }
    }
}

#[derive(Args)]
pub struct TopupArgs {
    /// The phone file.
    pub phone: PathBuf,
    /// The city of the card.
    #[arg(long)]
    pub city: String,
    /// Amount in yuan.
    #[arg(long)]
    pub amount: String,
    /// Test aid: cut the load short — `before-money` (the phone stops before CREDIT FOR LOAD
    /// reaches the card) or `answer-lost` (the card commits, its answer is lost). The next
    /// command on the phone reconciles it.
    #[arg(long, value_enum, value_name = "WHERE")]
    pub simulate_tear: Option<TearArg>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `--simulate-tear`.
#[derive(Clone, Copy, ValueEnum)]
pub enum TearArg {
    /// Stop before the money command (CREDIT FOR LOAD, DEBIT FOR PURCHASE) reaches the card.
    BeforeMoney,
    /// The card commits the money command; its answer is lost.
    AnswerLost,
}

impl From<TearArg> for Tear {
    fn from(tear: TearArg) -> Tear {
        match tear {
            TearArg::BeforeMoney => Tear::BeforeMoneyCommand,
            TearArg::AnswerLost => Tear::MoneyAnswerLost,
        }
    }
}

/// `--simulate-tear` of a closure.
#[derive(Args)]
pub struct ClosureTearArgs {
    /// Test aid: cut the card's DEBIT FOR PURCHASE short — `before-money` or `answer-lost` (the
    /// card commits, its answer is lost). The next command on the phone resumes the closure.
    #[arg(long, value_enum, value_name = "WHERE")]
    pub simulate_tear: Option<TearArg>,
}

#[derive(Args)]
pub struct ShowArgs {
    /// The phone file.
    pub phone: PathBuf,
    /// Only the SE: do not ask the service (nor recover flows in flight).
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args)]
pub struct TransferArgs {
    /// The old phone's file.
    pub phone: PathBuf,
    /// The new phone's file.
    #[arg(long)]
    pub to: PathBuf,
    /// The city of the card.
    #[arg(long)]
    pub city: String,
    #[command(flatten)]
    pub tear: ClosureTearArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Args)]
pub struct DeleteArgs {
    /// The phone file.
    pub phone: PathBuf,
    /// The city of the card.
    #[arg(long)]
    pub city: String,
    #[command(flatten)]
    pub tear: ClosureTearArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn run(command: &PhoneCommand) -> anyhow::Result<()> {
    match command {
        PhoneCommand::New(args) => new(args),
        PhoneCommand::Enroll(args) => enroll(args),
        PhoneCommand::Topup(args) => topup(args),
        PhoneCommand::Show(args) => show(args),
        PhoneCommand::Transfer(args) => transfer(args),
        PhoneCommand::Delete(args) => delete(args),
        PhoneCommand::RotateToken(args) => rotate_token(args),
        PhoneCommand::Reregister(args) => reregister(args),
    }
}

fn reregister(args: &ReregisterArgs) -> anyhow::Result<()> {
    let code = match args.reset_code.as_str() {
        "-" => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("--reset-code -: reading standard input")?;
            line
        }
        code => code.to_owned(),
    };
    let mut file = open(&args.phone)?;
    let api = api(&args.server, Some(&file.phone))?;
    if let Err(error) = Wallet::new(&api, &mut file).register_again(&code) {
        if file.phone.pending_token.is_none() {
            return Err(fail(error));
        }
        let note = "the new token waits in the phone file: the next command that reaches the service settles it";
        return Err(fail(error)).with_context(|| format!("{}: registration unfinished; {note}", args.phone.display()));
    }
    if args.server.json {
        return print_json(&serde_json::json!({ "phone": args.phone, "registered_again": true }));
    }
    println!("{}: registered again with {}; a new token, kept in the file", args.phone.display(), api.server());
    Ok(())
}

fn rotate_token(args: &RotateTokenArgs) -> anyhow::Result<()> {
    let mut file = open(&args.phone)?;
    let api = api(&args.server, Some(&file.phone))?;
    if let Err(error) = Wallet::new(&api, &mut file).rotate_token() {
        if file.phone.pending_token.is_none() {
            return Err(fail(error));
        }
        // The new token waits in the file: nothing is lost, the next command settles it.
        let note = "the new token waits in the phone file: the next command that reaches the service settles it";
        return Err(fail(error))
            .with_context(|| format!("{}: token rotation unfinished; {note}", args.phone.display()));
    }
    if args.server.json {
        return print_json(&serde_json::json!({ "phone": args.phone, "token_rotated": true }));
    }
    println!(
        "{}: a new token from {}, kept in the file; the old one works no more",
        args.phone.display(),
        api.server()
    );
    Ok(())
}

/// The service: `--server`, else `$YITONG_SERVER`, else the phone's, else the default.
fn api(args: &ServerArgs, phone: Option<&Phone>) -> anyhow::Result<HttpApi> {
    let (url, source) = match (&args.server, std::env::var(SERVER_ENV).ok().filter(|s| !s.trim().is_empty())) {
        (Some(url), _) => (url.clone(), "--server"),
        (None, Some(url)) => (url, SERVER_ENV),
        (None, None) => match phone.and_then(|p| p.server.clone()) {
            Some(url) => (url, "the phone file's server"),
            None => (SERVER_DEFAULT.to_owned(), "the default server"),
        },
    };
    HttpApi::new(&url).with_context(|| source.to_owned())
}

/// A wallet error as the CLI reports it: an interrupted flow exits 1 (it did not complete).
fn fail(error: WalletError) -> anyhow::Error {
    match error {
        WalletError::Interrupted { .. } => crate::Incomplete(error.to_string()).into(),
        other => other.into(),
    }
}

fn open(path: &Path) -> anyhow::Result<PhoneFile> {
    Ok(PhoneFile::open(path)?)
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn print_recovered(recovered: &[Recovered]) {
    for r in recovered {
        let balance = r.balance_after_fen.map(|b| format!(", balance {} yuan", yuan(b))).unwrap_or_default();
        let what = match r.outcome.as_str() {
            "loaded" => "loaded on the card",
            "refunded" => "never reached the card: refunded",
            "unconfirmed" => {
                "the card can no longer tell: handed to the back office (neither loaded again nor refunded)"
            }
            "not_paid" => "never paid: dropped",
            "closed" => "closed",
            other => other,
        };
        println!("recovered the interrupted {} {} ({}): {what}{balance}", r.flow.replace('_', "-"), r.id, r.city);
    }
}

fn new(args: &NewArgs) -> anyhow::Result<()> {
    let cities = Cities::builtin().context("the built-in cities")?;
    let registry = DeviceRegistry::builtin(&cities).context("the built-in device catalogue")?;
    let Some(model) = registry.model(&args.maker, &args.model) else {
        if registry.maker(&args.maker).is_none() {
            let makers: Vec<_> = registry.makers().map(|m| m.name.as_str()).collect();
            bail!("--maker: `{}` is not in the device catalogue ({})", args.maker, makers.join(", "));
        }
        bail!(
            "--model: the catalogue has no {} `{}` (GET /v1/devices/makers on the service lists the models)",
            args.maker,
            args.model
        );
    };
    let name = format!("{} {}", model.maker, model.model);
    let path = match model.secure_element {
        _ if !model.nfc => bail!("--model: the {name} has no NFC: it cannot carry a transit card"),
        SecureElementKind::None => bail!("--model: the {name} has no secure element for transit cards"),
        SecureElementKind::Embedded if args.carrier.is_some() => {
            bail!("--carrier: the {name} carries cards on its embedded SE; leave --carrier out")
        }
        SecureElementKind::NfcSim if args.carrier.as_deref().is_none_or(|c| c.trim().is_empty()) => {
            bail!("--carrier: the {name} carries cards on an NFC-SIM from the carrier's service hall; name the carrier")
        }
        SecureElementKind::Embedded => {
            let wallet = registry.maker(&model.maker).map(|m| m.wallet_app.clone()).unwrap_or_default();
            format!("embedded SE: cards through {wallet} or a city's own app")
        }
        SecureElementKind::NfcSim => "NFC-SIM: cards through the carrier's service hall".to_owned(),
    };
    let cities_text = match &model.cities {
        CitySupport::All => "every city served".to_owned(),
        CitySupport::Only(names) => names.iter().cloned().collect::<Vec<_>>().join(", "),
    };
    let se_id = match model.secure_element {
        // An NFC-SIM is known by its ICCID: 89 (telecom), 86 (China), then digits.
        SecureElementKind::NfcSim => {
            let digits = yitong_wallet::se::random_id("", 8)?;
            let digits: String = digits.bytes().map(|b| char::from(b'0' + b % 10)).collect();
            format!("8986{digits}")
        }
        _ => yitong_wallet::se::random_id("", 16)?,
    };
    let device = Device {
        device_id: yitong_wallet::se::random_id("DEV-", 8)?,
        se_id,
        maker: model.maker.clone(),
        model: model.model.clone(),
        carrier: args.carrier.as_ref().map(|c| c.trim().to_owned()),
    };
    let mut file = PhoneFile::create(&args.out, Phone::new(device), args.force)?;
    let registration = if args.offline {
        Err("not registered (--offline): the first `enroll` registers it".to_owned())
    } else {
        let api = api(&args.server, None)?;
        match Wallet::new(&api, &mut file).register() {
            Ok(_) => Ok(()),
            Err(error @ WalletError::Unreachable { .. }) => {
                Err(format!("not registered ({error}): the first `enroll` registers it"))
            }
            Err(error) => return Err(error).context("the phone file is written, not registered"),
        }
    };
    let phone = &file.phone;
    if args.server.json {
        return print_json(&json!({
            "file": args.out,
            "device": phone.device,
            "path": path,
            "cities": cities_text,
            "registered": registration.is_ok(),
            "server": phone.server,
            "phone_id": phone.phone_id,
            "note": registration.err(),
        }));
    }
    println!("{}: {name} — {path}; {cities_text}", args.out.display());
    println!("device {}  SE {}", phone.device.device_id, phone.device.se_id);
    match registration {
        Ok(()) => println!(
            "registered with {} as phone {}",
            phone.server.as_deref().unwrap_or("?"),
            phone.phone_id.as_deref().unwrap_or("?")
        ),
        Err(note) => println!("{note}"),
    }
    Ok(())
}

fn enroll(args: &EnrollArgs) -> anyhow::Result<()> {
    let mut file = open(&args.phone)?;
    let api = api(&args.server, Some(&file.phone))?;
    let done = Wallet::new(&api, &mut file).enroll(&args.city, args.channel.map(ChannelArg::as_str)).map_err(fail)?;
    if args.server.json {
        return print_json(&done);
    }
    print_recovered(&done.recovered);
    if done.existing {
        println!(
            "{}: the phone has its {} card already: {} (nothing charged)",
            args.phone.display(),
            done.city,
            done.card_number
        );
    } else {
        let promotion = done.promotion_id.as_ref().map(|id| format!(" (promotion {id})")).unwrap_or_default();
        println!(
            "{}: {} card {} (serial {}) on the SE, through {}; sign-up fee {} yuan{promotion}",
            args.phone.display(),
            done.city,
            done.card_number,
            done.serial,
            done.channel,
            yuan(done.fee_fen)
        );
    }
    Ok(())
}

fn topup(args: &TopupArgs) -> anyhow::Result<()> {
    let amount = i64::from(parse_yuan(&args.amount, "--amount")?);
    if amount == 0 {
        bail!("--amount: a top-up of 0 yuan loads nothing");
    }
    let tear = args.simulate_tear.map(Tear::from);
    let mut file = open(&args.phone)?;
    let api = api(&args.server, Some(&file.phone))?;
    let done = Wallet::new(&api, &mut file).top_up(&args.city, amount, tear).map_err(fail)?;
    if args.server.json {
        return print_json(&done);
    }
    print_recovered(&done.recovered);
    println!(
        "{}: loaded {} yuan onto the {} card (order {}); balance {} yuan",
        args.phone.display(),
        yuan(done.amount_fen),
        done.city,
        done.order_id,
        yuan(done.balance_after_fen)
    );
    Ok(())
}

fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let mut file = open(&args.phone)?;
    let api = api(&args.server, Some(&file.phone))?;
    let report = Wallet::new(&api, &mut file).show(args.offline).map_err(fail)?;
    if args.server.json {
        return print_json(&report);
    }
    print_recovered(&report.recovered);
    let device = &report.device;
    let carrier = device.carrier.as_deref().map(|c| format!(" (NFC-SIM, {c})")).unwrap_or_default();
    println!("{} {}{carrier}  device {}", device.maker, device.model, device.device_id);
    match (&report.server, &report.phone_id) {
        (Some(server), Some(id)) => println!("registered with {server} as phone {id}"),
        _ => println!("not registered yet"),
    }
    if report.cards.is_empty() {
        println!("no cards");
    }
    for card in &report.cards {
        println!("\n{} card (through {}), as the SE reads it:", card.city, card.channel);
        let names = crate::cmd_card::station_names(&card.card.city_code);
        print!("{}", output::report_text(&card.card, &names));
        let view = report.service.as_ref().and_then(|s| s.cards.iter().find(|c| c.card.serial == card.card.serial));
        if let Some(view) = view {
            println!(
                "service: {}, balance by its records {} yuan (gate fares are not reported to it)",
                view.state,
                yuan(view.balance_fen)
            );
            for entry in &view.history {
                println!(
                    "  {:<8} {:>8} yuan  {:<14} {}",
                    entry.kind,
                    yuan(entry.amount_fen),
                    entry.state,
                    entry.order_id.as_deref().unwrap_or("")
                );
            }
        }
    }
    for (city, flow) in &report.in_flight {
        println!("in flight ({city}): {}", serde_json::to_string(flow)?);
    }
    if let Some(note) = &report.service_note {
        println!("service: {note}");
    }
    Ok(())
}

fn print_closed(args_json: bool, phone: &Path, done: &Closed, transfer: bool) -> anyhow::Result<()> {
    if args_json {
        return print_json(done);
    }
    print_recovered(&done.recovered);
    println!(
        "{}: the {} card {} is emptied and blocked; {} yuan moved off it",
        phone.display(),
        done.city,
        done.serial,
        yuan(done.moved_fen)
    );
    if let Some(unconfirmed) = done.unconfirmed_fen.filter(|f| *f != 0) {
        println!("{} yuan could not be confirmed from the card: handed to the back office", yuan(unconfirmed));
    }
    if transfer {
        println!(
            "new card {} with a balance of {} yuan",
            done.new_serial.as_deref().unwrap_or("?"),
            yuan(done.new_balance_fen.unwrap_or(0))
        );
    }
    if let Some(order) = &done.refund_order {
        println!("refund order {}: {} yuan, {}", order.order_id, yuan(order.amount_fen), order.state);
    }
    if let Some(order) = &done.fee_refund_order {
        println!("sign-up fee refund {}: {} yuan, {}", order.order_id, yuan(order.amount_fen), order.state);
    }
    Ok(())
}

fn transfer(args: &TransferArgs) -> anyhow::Result<()> {
    if args.phone == args.to {
        bail!("--to: the new phone must be another phone file than {}", args.phone.display());
    }
    // Locks in the order of the arguments (old phone, new phone): a transfer the other way at
    // the same time gives up after the lock timeout rather than waiting forever.
    let mut old = open(&args.phone)?;
    let mut new = open(&args.to).context("--to")?;
    let api = api(&args.server, Some(&old.phone))?;
    let mut to = Wallet::new(&api, &mut new);
    let done = Wallet::new(&api, &mut old)
        .transfer(&args.city, &mut to, args.tear.simulate_tear.map(Tear::from))
        .map_err(fail)?;
    print_closed(args.server.json, &args.phone, &done, true)
}

fn delete(args: &DeleteArgs) -> anyhow::Result<()> {
    let mut file = open(&args.phone)?;
    let api = api(&args.server, Some(&file.phone))?;
    let done =
        Wallet::new(&api, &mut file).delete(&args.city, args.tear.simulate_tear.map(Tear::from)).map_err(fail)?;
    print_closed(args.server.json, &args.phone, &done, false)
}
