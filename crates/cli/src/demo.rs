//! `yitong demo`: one phone card's day, in memory, every APDU shown.

use anyhow::{bail, Context};
use yitong_card::{Card, MemStore};
use yitong_crypto::Algorithm;
use yitong_profile::files::StationId;
use yitong_profile::DateTime;
use yitong_terminal::{read_card, run_load, run_tap, InProcessChannel, TapKind, TapOutcome, TapRecord};

use crate::cardfile::{self, FileCard};
use crate::cmd_card::station_names;
use crate::cmd_gate::{build_gate, build_topup, GatePlace};
use crate::keys::KeySet;
use crate::money::yuan;
use crate::terminals::TerminalEntry;
use crate::{output, time, DemoArgs};

type Channel = InProcessChannel<MemStore, rand_chacha::ChaCha20Rng>;

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let today = time::now_shanghai();
    let at = |hhmmss: &str| -> anyhow::Result<DateTime> {
        DateTime::parse(&format!("{:04}-{:02}-{:02} {hhmmss}", today.year, today.month, today.day)).context("demo time")
    };
    let keys = KeySet::generate([0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01], Algorithm::Des)?;
    let beijing = std::sync::Arc::new(yitong_fare::City::builtin("beijing")?);
    println!("Yitong demo: one phone card's day in Beijing (sample network, development keys, all in memory)\n");

    // The issuer's first card: serial 1000·0000000000000001.
    let serial = yitong_issuer::SerialAllocator::new(keys.identity().city_code())?.allocate()?;
    let request = keys.card_request(serial.0, today.date_bcd(), yitong_issuer::default_valid_to(&today)?);
    let image = request.image(keys.master_keys("demo")?)?;
    let card: FileCard =
        Card::power_on(MemStore::new(image), cardfile::system_rng()?).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "1. Issue card {} to the phone's secure element (keys diversified from the issuer's master keys)",
        serial.card_number()
    );
    let mut channel = InProcessChannel::new(card);
    channel.record_trace();
    let mut records: Vec<TapRecord> = Vec::new();

    let mut topup = build_topup(&keys, TerminalEntry::default())?;
    let loaded = run_load(&mut topup, &mut channel, at("07:30:00")?, 5_000, &mut |_| Ok(()))?;
    records.extend(topup.drain_records());
    step(args, &mut channel, "2. Top up 50 yuan over the air", &loaded);

    let station = |name: &str| -> anyhow::Result<(StationId, String)> {
        yitong_terminal::city::station_id(&beijing, name).with_context(|| format!("demo station {name}"))
    };
    let gate_at = |name: &str| -> anyhow::Result<yitong_terminal::Gate> {
        let (id, label) = station(name)?;
        build_gate(&beijing, &keys, &GatePlace::metro(id, &label), TerminalEntry::default())
    };
    let mut xidan = gate_at("Xidan")?;
    let mut guomao = gate_at("Guomao")?;
    let mut pingguoyuan = gate_at("Pingguoyuan")?;
    let mut bus = build_gate(&beijing, &keys, &GatePlace::bus(1), TerminalEntry::default())?;

    let mut tap =
        |gate: &mut yitong_terminal::Gate, channel: &mut Channel, at: DateTime, title: &str| -> anyhow::Result<()> {
            let outcome = run_tap(gate, channel, at, &mut |_| Ok(()))?;
            records.extend(gate.drain_records());
            step(args, channel, title, &outcome);
            Ok(())
        };
    tap(&mut xidan, &mut channel, at("08:00:00")?, "3. Enter the metro at 西单 Xidan")?;
    tap(&mut guomao, &mut channel, at("08:25:00")?, "4. Leave at 国贸 Guomao (6.2 km: 4 yuan)")?;
    tap(&mut bus, &mut channel, at("12:10:00")?, "5. Ride bus route 1 (flat 1 yuan)")?;

    println!("6. Enter at 国贸 Guomao, but the phone is pulled away just after DEBIT");
    channel.drop_next_money_answer();
    let interrupted = run_tap(&mut guomao, &mut channel, at("18:00:00")?, &mut |_| Ok(()));
    print_trace(args, &mut channel);
    match interrupted {
        Err(e) => println!("   gate: {e}"),
        Ok(o) => bail!("the interrupted tap completed: {o:?}"),
    }
    println!("   gate remembers {} transaction(s) in doubt\n", guomao.state().pending.len());
    tap(
        &mut guomao,
        &mut channel,
        at("18:00:04")?,
        "7. Tap again: GET TRANSACTION PROVE finds the entry committed; no second charge",
    )?;
    tap(&mut pingguoyuan, &mut channel, at("18:40:00")?, "8. Leave at 苹果园 Pingguoyuan (23.9 km: 6 yuan)")?;

    let report = read_card(&mut channel)?;
    channel.take_trace();
    println!("9. The card, read as any reader would:");
    let names = station_names(&report.city_code);
    for line in output::report_text(&report, &names).lines() {
        println!("   {line}");
    }

    let loaded: i64 = records.iter().filter(|r| r.kind == TapKind::Load).map(|r| i64::from(r.amount_fen)).sum();
    let spent: i64 = records.iter().filter(|r| r.kind != TapKind::Load).map(|r| i64::from(r.amount_fen)).sum();
    println!(
        "\nClearing: {} records, loads {} yuan, fares {} yuan, card balance {} yuan",
        records.len(),
        yuan(loaded),
        yuan(spent),
        yuan(report.balance_fen)
    );
    if report.balance_fen != loaded - spent {
        bail!("money not conserved: balance {} != loads {loaded} - fares {spent}", report.balance_fen);
    }
    println!("Every fen accounted for: balance = loads - fares.");
    Ok(())
}

fn step(args: &DemoArgs, channel: &mut Channel, title: &str, outcome: &TapOutcome) {
    println!("{title}");
    print_trace(args, channel);
    for line in output::outcome_text(outcome).lines() {
        println!("   {line}");
    }
    println!();
}

fn print_trace(args: &DemoArgs, channel: &mut Channel) {
    for (command, response) in channel.take_trace() {
        if !args.quiet {
            println!("   > {:<30} {}", yitong_profile::apdu::command_name(&command), hex::encode_upper(&command));
            println!("   < {:<30} {}", "", hex::encode_upper(&response));
        }
    }
}
