//! Real readers: `yitong card serve-vpcd`, `yitong reader list`, `yitong card read`, and the
//! PC/SC channel behind `yitong gate tap --reader`.

use std::io;
use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use yitong_reader::vpcd::{self, Stopped, VirtualCard};

use crate::cardfile;

/// Arguments of `yitong card serve-vpcd`.
#[derive(Args)]
pub struct ServeArgs {
    /// The card image; it is saved after every change, before the reader hears the answer.
    pub card: PathBuf,
    /// Where vpcd (inside pcscd) listens.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// vpcd's port: 35963 is reader "Virtual PCD 00 00", 35964 "Virtual PCD 00 01".
    #[arg(long, default_value_t = vpcd::PORT_DEFAULT)]
    pub port: u16,
    /// Test aid: process the first DEBIT, save, and vanish without answering, as a phone pulled
    /// away mid-transaction.
    #[arg(long, hide = true)]
    pub vanish_after_debit: bool,
}

pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    // The image stays locked while served: a `card load` or `gate tap` of the same file meanwhile
    // would be overwritten by the next save.
    let (_image_lock, card) = cardfile::open_locked(&args.card)?;
    let mut virtual_card = VirtualCard::new(card, args.vanish_after_debit);
    eprintln!("yitong: serving {} to vpcd at {}:{} (Ctrl-C to stop)", args.card.display(), args.host, args.port);
    let path = args.card.clone();
    let mut save = |image: &[u8]| cardfile::write_image(&path, image).map_err(|e| io::Error::other(format!("{e:#}")));
    match vpcd::serve(&mut virtual_card, &args.host, args.port, &mut save, &mut |l| eprintln!("yitong: {l}"), &|| true)
    {
        Stopped::Vanished => {
            eprintln!("yitong: the card vanished after DEBIT (--vanish-after-debit); its image is saved");
            Ok(())
        }
        Stopped::Asked => Ok(()),
        Stopped::Save(e) => bail!("cannot save {}: {e}; stopped before answering", args.card.display()),
    }
}

/// Arguments of `yitong reader list`.
#[derive(Args)]
pub struct ListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `yitong card read`.
#[derive(Args)]
pub struct ReadArgs {
    /// Reader name, part of it, or index in `yitong reader list`.
    #[arg(long)]
    pub reader: String,
    /// Seconds to wait for a card.
    #[arg(long, default_value_t = 30)]
    pub wait: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[cfg(not(feature = "pcsc"))]
pub const NO_PCSC: &str =
    "this yitong was built without PC/SC support: build it with `cargo build --release -p yitong-cli --features pcsc`";

#[cfg(not(feature = "pcsc"))]
pub fn list(_: &ListArgs) -> anyhow::Result<()> {
    bail!(NO_PCSC)
}

#[cfg(not(feature = "pcsc"))]
pub fn read(_: &ReadArgs) -> anyhow::Result<()> {
    bail!(NO_PCSC)
}

#[cfg(feature = "pcsc")]
pub use with_pcsc::{connect, list, read};

#[cfg(feature = "pcsc")]
mod with_pcsc {
    use std::time::Duration;

    use yitong_reader::foreign::read_any;
    use yitong_reader::pcsc_channel::{PcscChannel, Readers};

    use super::{ListArgs, ReadArgs};
    use crate::output;

    /// Waits for a card on `reader` and connects.
    pub fn connect(reader: &str, wait_s: u64) -> anyhow::Result<PcscChannel> {
        let readers = Readers::establish()?;
        let name = readers.resolve(reader)?;
        Ok(readers.wait_for_card(&name, Duration::from_secs(wait_s))?)
    }

    pub fn list(args: &ListArgs) -> anyhow::Result<()> {
        let names = Readers::establish()?.list()?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&names)?);
        } else if names.is_empty() {
            println!("no reader");
        } else {
            for (i, n) in names.iter().enumerate() {
                println!("{i}  {n}");
            }
        }
        Ok(())
    }

    pub fn read(args: &ReadArgs) -> anyhow::Result<()> {
        let mut channel = connect(&args.reader, args.wait)?;
        let atr = channel.atr().to_vec();
        let card = read_any(&mut channel, &atr)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&card)?);
            return Ok(());
        }
        println!("{} card on {} (ATR {})", card.scheme, channel.reader(), card.atr);
        match &card.tunion {
            Some(report) => {
                let names = crate::cmd_card::station_names(&report.city_code);
                print!("{}", output::report_text(report, &names));
            }
            None => {
                let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                println!("card number   {}", or_dash(&card.card_number));
                println!("issuer ID     {} (city {})", or_dash(&card.issuer_id), or_dash(&card.city_code));
                println!("valid         {} to {}", or_dash(&card.valid_from), or_dash(&card.valid_to));
                match card.balance_fen {
                    Some(b) => println!("balance       {} yuan", crate::money::yuan(b)),
                    None => println!("balance       -"),
                }
                for e in &card.log {
                    println!(
                        "  #{:<5} {:<4} {:>9} yuan  terminal {}  {}",
                        e.counter,
                        e.kind,
                        crate::money::yuan(e.amount_fen.into()),
                        e.terminal_id,
                        e.at
                    );
                }
            }
        }
        Ok(())
    }
}
