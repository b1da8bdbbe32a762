//! `yitong gate tap`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use std::sync::Arc;
use yitong_card::Store;
use yitong_issuer::{TerminalSite, TOPUP_CLI};
use yitong_profile::files::StationId;

use yitong_fare::City;
use yitong_terminal::{
    run_tap, Direction, Gate, GateConfig, GateMode, InProcessChannel, SoftwareLoadHost, SoftwarePsam, TopUpTerminal,
};

use crate::cmd_card::{drain_if, report_outcome, save_terminal};
use crate::keys::KeySet;
use crate::terminals::{self, TerminalEntry, TerminalsFile};
use crate::{cardfile, time};

#[derive(Args)]
pub struct TapArgs {
    /// The card image (or --reader, or --phone).
    #[arg(required_unless_present_any = ["reader", "phone"])]
    pub card: Option<PathBuf>,
    /// Tap the card presented on this PC/SC reader (name, part of it, or index) instead of an image.
    #[arg(long, conflicts_with_all = ["card", "phone", "simulate_pull_away"])]
    pub reader: Option<String>,
    /// Tap a phone instead: its card of --city, from its phone file (`yitong phone new`).
    #[arg(long, value_name = "PHONE", conflicts_with = "card")]
    pub phone: Option<PathBuf>,
    /// Seconds to wait for a card on --reader.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    /// Key file: a gate key file (`yitong keys export --for gate`) or the full set; the gate's
    /// PSAM holds its master purchase and maintenance keys.
    #[arg(long)]
    pub keys: PathBuf,
    #[command(flatten)]
    pub source: crate::cmd_fare::NetworkArgs,
    /// Metro station (Chinese or English name). Required unless --bus.
    #[arg(long, required_unless_present = "bus")]
    pub station: Option<String>,
    /// A bus validator on this route instead of a metro gate.
    #[arg(long, value_name = "ROUTE", conflicts_with = "station")]
    pub bus: Option<u16>,
    /// Which way the metro gate lets riders through.
    #[arg(long, value_enum, default_value_t = DirectionArg::Both)]
    pub direction: DirectionArg,
    /// The gate's number at its station (or the validator's on its bus route), 1-255: each gate
    /// has its own terminal ID and transaction numbers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..))]
    pub gate: u8,
    /// Local time of the tap, "YYYY-MM-DD HH:MM:SS" (default: now, Asia/Shanghai).
    #[arg(long)]
    pub at: Option<String>,
    /// Hotlist: application serials (20 hex digits) to refuse, one per line, `#` comments.
    #[arg(long)]
    pub hotlist: Option<PathBuf>,
    /// Append clearing records as JSON lines to this file (else they stay in the state file).
    #[arg(long)]
    pub records: Option<PathBuf>,
    /// Terminal state file (transaction numbers, taps in doubt, records not yet written out)
    /// [default: yitong-terminals.json in $YITONG_DATA_DIR, else $XDG_DATA_HOME/yitong or
    /// ~/.local/share/yitong].
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Test aid: the card commits DEBIT but its answer is lost, as when a phone is pulled away.
    #[arg(long)]
    pub simulate_pull_away: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--direction`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DirectionArg {
    /// Entry gate: into the paid area only.
    In,
    /// Exit gate: out of the paid area only.
    Out,
    /// Either way, by the card's trip state.
    Both,
}

impl From<DirectionArg> for Direction {
    fn from(d: DirectionArg) -> Self {
        match d {
            DirectionArg::In => Direction::In,
            DirectionArg::Out => Direction::Out,
            DirectionArg::Both => Direction::Both,
        }
    }
}

pub fn tap(args: &TapArgs) -> anyhow::Result<()> {
    let keys = KeySet::read(&args.keys)?;
    let city = args.source.load()?;
    let (mode, station, station_name) = match (args.bus, &args.station) {
        (Some(route), _) => (GateMode::Bus, StationId { line: route, station: 0 }, String::new()),
        (None, Some(name)) => {
            let (id, label) = yitong_terminal::city::station_id(&city, name).map_err(|e| {
                anyhow::anyhow!("--station: {e} (`yitong fare stations --city {}` lists them)", args.source.city)
            })?;
            (GateMode::Metro, id, label)
        }
        (None, None) => anyhow::bail!("--station: required for a metro gate (or pass --bus ROUTE)"),
    };
    let now = time::at_or_now(args.at.as_deref())?;
    let place = GatePlace { mode, station, station_name, direction: args.direction.into(), gate: args.gate };
    let terminal_id = place.terminal_id(city.profile().city_code)?;

    let hotlist = args.hotlist.as_deref().map(read_hotlist).transpose()?;
    // A card on a reader is waited for before any lock is taken. Then both locks, card image
    // first, are held from reading to the last write.
    let source = match (&args.reader, &args.card, &args.phone) {
        (Some(reader), _, _) => Source::Reader(connect_reader(reader, args.wait)?),
        (None, Some(path), _) => {
            let (image, card) = cardfile::open_locked(path)?;
            Source::Image(image, Box::new(card))
        }
        (None, None, Some(path)) => {
            let phone = yitong_wallet::PhoneFile::open(path).context("--phone")?;
            let name = city.profile().name.to_ascii_lowercase();
            let Some(card) = phone.phone.cards.get(&name) else {
                anyhow::bail!(
                    "--phone: {} has no {name} card (`yitong phone enroll {} --city {name}` gets one)",
                    path.display(),
                    path.display()
                );
            };
            let card = cardfile::power_on(&card.image).with_context(|| format!("--phone: {}", path.display()))?;
            Source::Phone(Box::new(phone), name, Box::new(card))
        }
        (None, None, None) => anyhow::bail!("give a card image, --phone or --reader"),
    };
    let state_path = terminals::state_path(args.state.as_deref())?;
    let (_state_lock, mut terminals) = TerminalsFile::read_locked(&state_path)?;
    let entry = terminals.entry(&terminal_id);
    let mut gate = build_gate(&city, &keys, &place, entry)?;
    if let Some(hotlist) = hotlist {
        gate.set_hotlist(hotlist);
    }

    let mut persist = |g: &Gate| {
        let ttn = g.security_module().next_transaction_number();
        save_terminal(&mut terminals, &state_path, &terminal_id, ttn, g.state().clone())
    };
    let result = match source {
        Source::Reader(mut channel) => tap_on_reader(&mut gate, &mut channel, now, &mut persist),
        Source::Image(mut image, card) => {
            let mut channel = InProcessChannel::new(*card);
            if args.simulate_pull_away {
                channel.drop_next_money_answer();
            }
            let result = run_tap(&mut gate, &mut channel, now, &mut persist);
            // The card may have committed whatever the gate saw: keep its image first.
            image.save_if_changed(channel.card())?;
            result
        }
        Source::Phone(mut phone, name, card) => {
            let mut channel = InProcessChannel::new(*card);
            if args.simulate_pull_away {
                channel.drop_next_money_answer();
            }
            let result = run_tap(&mut gate, &mut channel, now, &mut persist);
            // As for an image: the phone's SE keeps whatever the card committed.
            let image = channel.card().store().image();
            if let Some(card) = phone.phone.cards.get_mut(&name).filter(|c| c.image != image) {
                card.image = image.to_vec();
                phone.save()?;
            }
            result
        }
    };
    drain_if(args.records.as_deref(), || gate.drain_records())?;
    save_terminal(
        &mut terminals,
        &state_path,
        &terminal_id,
        gate.security_module().next_transaction_number(),
        gate.state().clone(),
    )
    .map_err(anyhow::Error::msg)?;
    report_outcome(result, args.json)
}

/// The card a tap talks to: on a reader, an image locked for the tap, or a phone's card of the
/// gate's city (its phone file locked for the tap).
enum Source {
    Reader(ReaderChannel),
    Image(cardfile::LockedImage, Box<cardfile::FileCard>),
    Phone(Box<yitong_wallet::PhoneFile>, String, Box<cardfile::FileCard>),
}

#[cfg(feature = "pcsc")]
type ReaderChannel = yitong_reader::pcsc_channel::PcscChannel;

/// Without PC/SC there is no reader channel: a type with no values.
#[cfg(not(feature = "pcsc"))]
enum ReaderChannel {}

#[cfg(feature = "pcsc")]
fn connect_reader(reader: &str, wait_s: u64) -> anyhow::Result<ReaderChannel> {
    crate::cmd_reader::connect(reader, wait_s)
}

#[cfg(not(feature = "pcsc"))]
fn connect_reader(_: &str, _: u64) -> anyhow::Result<ReaderChannel> {
    anyhow::bail!(crate::cmd_reader::NO_PCSC)
}

#[cfg(feature = "pcsc")]
fn tap_on_reader(
    gate: &mut Gate,
    channel: &mut ReaderChannel,
    now: yitong_profile::DateTime,
    persist: &mut dyn FnMut(&Gate) -> Result<(), String>,
) -> Result<yitong_terminal::TapOutcome, yitong_terminal::TapError> {
    run_tap(gate, channel, now, persist)
}

#[cfg(not(feature = "pcsc"))]
fn tap_on_reader(
    _: &mut Gate,
    channel: &mut ReaderChannel,
    _: yitong_profile::DateTime,
    _: &mut dyn FnMut(&Gate) -> Result<(), String>,
) -> Result<yitong_terminal::TapOutcome, yitong_terminal::TapError> {
    match *channel {}
}

/// Reads a hotlist file: one 20-hex-digit application serial per line; blank lines and `#`
/// comments are skipped.
pub fn read_hotlist(path: &std::path::Path) -> anyhow::Result<std::collections::BTreeSet<[u8; 10]>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("--hotlist: cannot read {}: {e}", path.display()))?;
    let mut serials = std::collections::BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let serial = crate::keys::parse_hex(line, &format!("--hotlist: {}:{}", path.display(), i + 1))?;
        serials.insert(serial);
    }
    Ok(serials)
}

/// Where a gate stands and which way it faces.
pub struct GatePlace {
    pub mode: GateMode,
    pub station: StationId,
    pub station_name: String,
    pub direction: Direction,
    /// The gate's number at its station (a validator's on its route), from 1.
    pub gate: u8,
}

impl GatePlace {
    /// Gate 1 of a metro station, both ways.
    pub fn metro(station: StationId, station_name: &str) -> Self {
        GatePlace {
            mode: GateMode::Metro,
            station,
            station_name: station_name.into(),
            direction: Direction::Both,
            gate: 1,
        }
    }

    /// Validator 1 of a bus route.
    pub fn bus(route: u16) -> Self {
        GatePlace {
            mode: GateMode::Bus,
            station: StationId { line: route, station: 0 },
            station_name: String::new(),
            direction: Direction::Both,
            gate: 1,
        }
    }
}

/// A gate of `city` whose software PSAM holds the purchase and maintenance keys of `keys`,
/// restarted from its saved entry.
pub fn build_gate(city: &Arc<City>, keys: &KeySet, place: &GatePlace, saved: TerminalEntry) -> anyhow::Result<Gate> {
    let terminal_id = place.terminal_id(city.profile().city_code)?;
    let mut psam = SoftwarePsam::new(terminal_id, saved.next_transaction_number);
    psam.add_keys(keys.issuer_id, keys.key_version, keys.psam_keys("gate tap")?);
    let config = GateConfig {
        city: city.profile().into(),
        mode: place.mode,
        direction: place.direction,
        station: place.station,
        station_name: place.station_name.clone(),
        hotlist: Default::default(),
    };
    Ok(Gate::new(config, Box::new(psam), Box::new(Arc::clone(city)), saved.state))
}

/// A top-up terminal of the issuer's city whose load host holds the load key of `keys`.
pub fn build_topup(keys: &KeySet, saved: TerminalEntry) -> anyhow::Result<TopUpTerminal> {
    let mut host = SoftwareLoadHost::new();
    host.add_keys(keys.issuer_id, keys.key_version, keys.load_key("card load")?.clone());
    let city_code = u16::from_be_bytes([keys.issuer_id[2], keys.issuer_id[3]]);
    let city = yitong_fare::City::builtin_by_code(city_code).map(|c| c.profile().name.clone()).unwrap_or_default();
    Ok(TopUpTerminal::new(topup_terminal_id(keys)?, saved.next_transaction_number, &city, Box::new(host))
        .with_state(saved.state))
}

/// The simulated top-up terminal's ID: top-up terminal [`TOPUP_CLI`] of the issuer's city
/// (`yitong-issuer`'s scheme: city code, `FFFF0001`).
pub fn topup_terminal_id(keys: &KeySet) -> anyhow::Result<[u8; 6]> {
    Ok(TerminalSite::TopUp { number: TOPUP_CLI }.terminal_id(keys.identity().city_code())?)
}

impl GatePlace {
    /// The gate's terminal ID by `yitong-issuer`'s scheme: city code, station code, `00`, gate
    /// number; a bus validator's: city code, route, `B0`, validator number.
    pub fn terminal_id(&self, city_code: u16) -> anyhow::Result<[u8; 6]> {
        let site = match self.mode {
            GateMode::Metro => TerminalSite::MetroGate { station: self.station.station, gate: self.gate },
            GateMode::Bus => TerminalSite::BusValidator { route: self.station.line, validator: self.gate },
        };
        site.terminal_id(city_code).context("--gate")
    }
}
