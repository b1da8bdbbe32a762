//! `yitong keys new|export`, `yitong card issue|show|load|unblock`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use yitong_crypto::Algorithm;
use yitong_issuer::{CardRequest, IssueError};
use yitong_profile::apdu;
use yitong_profile::files::IssuerData;
use yitong_profile::StatusWord;
use yitong_terminal::{read_card, run_load, InProcessChannel, TapError};

use crate::keys::{parse_hex, KeySet};
use crate::terminals::{append_records, TerminalEntry, TerminalsFile};
use crate::{cardfile, money, output, terminals, time, AlgorithmArg, Incomplete, KeysExportArgs, KeysNewArgs};

pub fn keys_new(args: &KeysNewArgs) -> anyhow::Result<()> {
    refuse_overwrite(&args.out, args.force)?;
    let issuer_id = parse_hex(&args.issuer_id, "--issuer-id")?;
    let algorithm = match args.algorithm {
        AlgorithmArg::Des => Algorithm::Des,
        AlgorithmArg::Sm4 => Algorithm::Sm4,
    };
    let keys = KeySet::generate(issuer_id, algorithm)?;
    cardfile::write_atomically(&args.out, keys.to_toml().as_bytes())?;
    println!(
        "wrote a full DEVELOPMENT key set ({}, issuer {}) to {}: random keys in clear text, for tests and demos only",
        crate::keys::algorithm_name(algorithm),
        args.issuer_id.to_uppercase(),
        args.out.display()
    );
    Ok(())
}

/// `yitong keys export`: the part of a key file one role needs.
pub fn keys_export(args: &KeysExportArgs) -> anyhow::Result<()> {
    refuse_overwrite(&args.out, args.force)?;
    let keys = KeySet::read(&args.keys)?;
    let part = keys.export(args.role.into())?;
    cardfile::write_atomically(&args.out, part.to_toml().as_bytes())?;
    println!(
        "wrote the {} key file of issuer {} to {}",
        args.role,
        hex::encode_upper(keys.issuer_id),
        args.out.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct IssueArgs {
    /// Issuer key file: the full set (`yitong keys new`).
    #[arg(long)]
    pub keys: PathBuf,
    /// Application serial, 20 hex digits (the printed card number is its last 19) [default: the
    /// issuer's next serial from the serial register].
    #[arg(long)]
    pub serial: Option<String>,
    /// Serial register: the next sequence number per issuer, used without --serial [default:
    /// yitong-serials.json beside the key file].
    #[arg(long, conflicts_with = "serial")]
    pub serials: Option<PathBuf>,
    /// Where to write the card image.
    #[arg(long)]
    pub out: PathBuf,
    /// First valid day, YYYY-MM-DD (default: today).
    #[arg(long)]
    pub valid_from: Option<String>,
    /// Last valid day, YYYY-MM-DD (default: 31 December, ten years on).
    #[arg(long)]
    pub valid_to: Option<String>,
    /// Overdraft limit in yuan.
    #[arg(long, default_value = "0")]
    pub overdraft: String,
    /// Highest balance a load may reach, in yuan.
    #[arg(long, default_value = "1000")]
    pub balance_limit: String,
    /// Replace an existing image (its balance is lost).
    #[arg(long)]
    pub force: bool,
}

pub fn issue(args: &IssueArgs) -> anyhow::Result<()> {
    // Locked, so that a transaction under way on a card replaced with --force cannot write the
    // old card back over the new one.
    let _lock = yitong_files::FileLock::acquire(&args.out)?;
    refuse_overwrite(&args.out, args.force)?;
    let keys = KeySet::read(&args.keys)?;
    let master = keys.master_keys("card issue")?;
    let given_serial: Option<[u8; 10]> = args.serial.as_deref().map(|s| parse_hex(s, "--serial")).transpose()?;
    let today = time::now_shanghai();
    let valid_from = match &args.valid_from {
        Some(d) => time::parse_day(d, "--valid-from")?,
        None => today.date_bcd(),
    };
    let valid_to = match &args.valid_to {
        Some(d) => time::parse_day(d, "--valid-to")?,
        None => yitong_issuer::default_valid_to(&today).context("--valid-to")?,
    };
    let mut request = CardRequest {
        overdraft_limit_fen: money::parse_yuan(&args.overdraft, "--overdraft")?,
        balance_limit_fen: money::parse_yuan(&args.balance_limit, "--balance-limit")?,
        ..keys.card_request(given_serial.unwrap_or_default(), valid_from, valid_to)
    };
    // Checked before a serial is taken from the register, so that a refused card spends none.
    request.validate().map_err(|e| issue_error(&e))?;
    if given_serial.is_none() {
        let register = crate::serials::register_path(args.serials.as_deref(), &args.keys);
        request.serial = crate::serials::allocate(&register, keys.issuer_id)?;
    }
    let image = request.image(master).map_err(|e| issue_error(&e))?;
    cardfile::write_image(&args.out, &image)?;
    println!("issued card {} to {}", request.serial.card_number(), args.out.display());
    Ok(())
}

/// A card the issuer's rules refuse, named by the flag to change.
fn issue_error(e: &IssueError) -> anyhow::Error {
    match e {
        IssueError::ExpiresBeforeValid | IssueError::InvalidDate { field: "valid_to" } => {
            anyhow::anyhow!("--valid-to: {e}")
        }
        IssueError::InvalidDate { .. } => anyhow::anyhow!("--valid-from: {e}"),
        IssueError::OverdraftTooLarge { max_fen } => {
            anyhow::anyhow!("--overdraft: at most {} yuan fit the card's 3-byte field", money::yuan((*max_fen).into()))
        }
        IssueError::BalanceLimitTooLarge { .. } => {
            anyhow::anyhow!("--balance-limit: too large for the card's signed balance")
        }
        other => anyhow::anyhow!("cannot issue the card: {other}"),
    }
}

#[derive(Args)]
pub struct ShowArgs {
    /// The card image.
    pub card: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let mut channel = InProcessChannel::new(cardfile::open(&args.card)?);
    let report = read_card(&mut channel).with_context(|| format!("cannot read {}", args.card.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let names = station_names(&report.city_code);
        print!("{}", output::report_text(&report, &names));
    }
    Ok(())
}

/// Names stations where a built-in city's sample network knows them: `(city code, line,
/// station)`; stations of another city than the card's `card_city` carry that city's name.
pub fn station_names(card_city: &str) -> impl Fn(&str, u16, u16) -> String {
    let card_city = card_city.to_owned();
    let cities = std::cell::RefCell::new(std::collections::BTreeMap::<String, Option<yitong_fare::City>>::new());
    move |city_code, line, station| {
        let mut cities = cities.borrow_mut();
        let city = cities
            .entry(city_code.to_owned())
            .or_insert_with(|| u16::from_str_radix(city_code, 16).ok().and_then(yitong_fare::City::builtin_by_code));
        let network = city.as_ref().and_then(|c| c.engine()).map(|e| e.network());
        let known = network.and_then(|n| n.station_by_code(station).map(|i| &n.stations()[i]));
        let name = match known {
            Some(s) => match s.aliases.first() {
                Some(alias) => format!("{} ({alias})", s.name),
                None => s.name.clone(),
            },
            None => format!("line {line} station {station}"),
        };
        if city_code == card_city {
            return name;
        }
        match city.as_ref() {
            Some(c) => format!("{} {name}", c.profile().display_name),
            None => format!("city {city_code} {name}"),
        }
    }
}

#[derive(Args)]
pub struct LoadArgs {
    /// The card image.
    pub card: PathBuf,
    /// Key file: a topup key file (`yitong keys export --for topup`) or the full set; the
    /// top-up host holds its master load key.
    #[arg(long)]
    pub keys: PathBuf,
    /// Amount in yuan.
    #[arg(long)]
    pub amount: String,
    /// Local time of the load, "YYYY-MM-DD HH:MM:SS" (default: now, Asia/Shanghai).
    #[arg(long)]
    pub at: Option<String>,
    /// Terminal state file (transaction numbers, loads in doubt) [default: yitong-terminals.json
    /// in the data directory, as for `gate tap`].
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Append the clearing record as a JSON line to this file.
    #[arg(long)]
    pub records: Option<PathBuf>,
    /// Hotlist: application serials (20 hex digits) not to load, one per line, `#` comments.
    #[arg(long)]
    pub hotlist: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn load(args: &LoadArgs) -> anyhow::Result<()> {
    let keys = KeySet::read(&args.keys)?;
    keys.load_key("card load")?;
    let amount_fen = money::parse_yuan(&args.amount, "--amount")?;
    if amount_fen == 0 {
        bail!("--amount: must be more than 0 yuan");
    }
    let now = time::at_or_now(args.at.as_deref())?;
    let hotlist = args.hotlist.as_deref().map(crate::cmd_gate::read_hotlist).transpose()?;
    let terminal_id = crate::cmd_gate::topup_terminal_id(&keys)?;
    let state_path = terminals::state_path(args.state.as_deref())?;
    // Both locks, card image first, are held from reading to the last write.
    let (mut image, card) = cardfile::open_locked(&args.card)?;
    let (_state_lock, mut terminals) = TerminalsFile::read_locked(&state_path)?;
    let mut terminal = crate::cmd_gate::build_topup(&keys, terminals.entry(&terminal_id))?;
    if let Some(hotlist) = hotlist {
        terminal.set_hotlist(hotlist);
    }
    let mut channel = InProcessChannel::new(card);
    let result = run_load(&mut terminal, &mut channel, now, amount_fen, &mut |t| {
        save_terminal(&mut terminals, &state_path, &terminal_id, t.next_transaction_number(), t.state().clone())
    });
    image.save_if_changed(channel.card())?;
    drain_if(args.records.as_deref(), || terminal.drain_records())?;
    save_terminal(
        &mut terminals,
        &state_path,
        &terminal_id,
        terminal.next_transaction_number(),
        terminal.state().clone(),
    )
    .map_err(anyhow::Error::msg)?;
    report_outcome(result, args.json)
}

#[derive(Args)]
pub struct UnblockArgs {
    /// The card image.
    pub card: PathBuf,
    /// Key file holding the unblock key: backoffice (the service desk) or full.
    #[arg(long)]
    pub keys: PathBuf,
}

/// The service desk lifts a temporary block: SELECT, GET CHALLENGE, APPLICATION UNBLOCK with the
/// MAC under the card's unblock key, through the card's APDUs as a desk reader would.
pub fn unblock(args: &UnblockArgs) -> anyhow::Result<()> {
    let keys = KeySet::read(&args.keys)?;
    let unblock = keys.unblock_key("card unblock")?;
    let (mut image, mut card) = cardfile::open_locked(&args.card)?;
    let mut send = |apdu: &[u8]| -> anyhow::Result<(Vec<u8>, StatusWord)> {
        let r = card.process(apdu).map_err(|_| anyhow::anyhow!("{}: the card lost power", args.card.display()))?;
        let (data, sw) = StatusWord::split(&r).context("the card answered less than a status word")?;
        Ok((data.to_vec(), sw))
    };
    let (fci, sw) = send(&apdu::select_by_name(&apdu::AID_TUNION))?;
    let issuer =
        adf_issuer(&fci).with_context(|| format!("{}: no T-Union application (SELECT {sw})", args.card.display()))?;
    if issuer.issuer_id != keys.issuer_id {
        bail!(
            "{}: card of issuer {}, but {} holds keys of issuer {}",
            args.card.display(),
            hex::encode_upper(issuer.issuer_id),
            args.keys.display(),
            hex::encode_upper(keys.issuer_id)
        );
    }
    if sw == StatusWord::OK {
        println!("card {} is not blocked; nothing to do", issuer.card_number());
        return Ok(());
    }
    let (challenge, sw) = send(&apdu::get_challenge())?;
    let challenge: [u8; 4] =
        challenge.try_into().map_err(|_| anyhow::anyhow!("GET CHALLENGE failed: status word {sw}"))?;
    let mac = unblock.command_mac(issuer.issuer_id, issuer.asn8(), challenge, apdu::APPLICATION_UNBLOCK_HEADER);
    let (_, sw) = send(&apdu::application_unblock(mac))?;
    match sw {
        StatusWord::OK => {}
        StatusWord::SECURE_MESSAGING_WRONG => bail!(
            "card {}: APPLICATION UNBLOCK refused (6988): the unblock key of {} (key version {}) is not this card's",
            issuer.card_number(),
            args.keys.display(),
            keys.key_version
        ),
        StatusWord::CONDITIONS_NOT_SATISFIED => {
            bail!("card {}: APPLICATION UNBLOCK refused (6985): the card is blocked for good", issuer.card_number())
        }
        other => bail!("card {}: APPLICATION UNBLOCK refused ({other})", issuer.card_number()),
    }
    image.save_if_changed(&card)?;
    println!("unblocked card {}", issuer.card_number());
    Ok(())
}

/// EF15 from the ADF's FCI (`6F { 84 AID, A5 { 9F0C EF15 } }`).
fn adf_issuer(fci: &[u8]) -> Option<IssuerData> {
    IssuerData::decode(yitong_profile::tlv::find(fci, &[&[0x6F], &[0xA5], &[0x9F, 0x0C]])?).ok()
}

/// Takes the records and appends them to `path`; without a path they stay in the state file.
pub fn drain_if(path: Option<&Path>, drain: impl FnOnce() -> Vec<yitong_terminal::TapRecord>) -> anyhow::Result<()> {
    match path {
        Some(path) => append_records(path, &drain()),
        None => Ok(()),
    }
}

pub fn save_terminal(
    terminals: &mut TerminalsFile,
    path: &Path,
    terminal_id: &[u8; 6],
    next_transaction_number: u32,
    state: yitong_terminal::GateState,
) -> Result<(), String> {
    terminals.set(terminal_id, TerminalEntry { next_transaction_number, state });
    terminals.write(path).map_err(|e| format!("{e:#}"))
}

/// Prints an outcome; a transaction left in doubt is exit code 1.
pub fn report_outcome(result: Result<yitong_terminal::TapOutcome, TapError>, json: bool) -> anyhow::Result<()> {
    match result {
        Ok(outcome) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&output::outcome_json(&outcome))?);
            } else {
                println!("{}", output::outcome_text(&outcome));
            }
            Ok(())
        }
        Err(e @ (TapError::CardLost { .. } | TapError::AnswerInDoubt { .. })) => {
            if json {
                println!("{}", serde_json::json!({ "result": "interrupted", "reason": e.to_string() }));
            }
            Err(Incomplete(e.to_string()).into())
        }
        Err(e) => Err(e).context("the transaction failed"),
    }
}

fn refuse_overwrite(path: &Path, force: bool) -> anyhow::Result<()> {
    if path.exists() && !force {
        bail!("--out: {} exists; pass --force to replace it", path.display());
    }
    Ok(())
}
