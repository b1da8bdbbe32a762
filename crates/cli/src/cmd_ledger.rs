//! `yitong ledger check`: proves the platform's ledger from its database — debits equal
//! credits, every posting balances, card liabilities equal the balances the service believes,
//! and the order- and transfer-backed accounts equal their orders (`Store::check_ledger`).
//! `yitong ledger agreement`: the ledger against the back office's clearing, card by card
//! (`Store::check_clearing_agreement`), as the database holds them.

use anyhow::Context;
use clap::{Args, Subcommand};

use yitong_platform::cities::Cities;

use crate::cmd_serve::{open_store, DatabaseArgs};
use crate::Incomplete;

/// `yitong ledger …`.
#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Proves the ledger balances and agrees with the cards, orders and transfers; exits 1 when
    /// it does not.
    Check(CheckArgs),
    /// Checks the ledger against the back office's clearing, card by card; exits 1 when a card's
    /// two sides differ. Platform records the service has not fed to the back office yet leave
    /// their cards undecided (the service feeds them before its own answer).
    Agreement(CheckArgs),
}

/// Arguments of `yitong ledger check`.
#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Print the check as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(command: &LedgerCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start tokio")?;
    match command {
        LedgerCommand::Check(args) => runtime.block_on(check(args)),
        LedgerCommand::Agreement(args) => runtime.block_on(agreement(args)),
    }
}

async fn agreement(args: &CheckArgs) -> anyhow::Result<()> {
    let cities = Cities::builtin().context("the built-in cities")?;
    let (store, shown) = open_store(&args.database.db, &args.database.data_dir).await?;
    let check = store
        .check_clearing_agreement(&cities)
        .await
        .with_context(|| format!("cannot read the ledger and the clearing of {shown}"));
    store.close().await;
    let check = check?;
    let ok = check.is_ok();
    print_check(args, &check, &format!("ledger and clearing of {shown}"))?;
    verdict(ok, || format!("the ledger and the clearing of {shown} do not agree"))
}

async fn check(args: &CheckArgs) -> anyhow::Result<()> {
    let (store, shown) = open_store(&args.database.db, &args.database.data_dir).await?;
    let check = store.check_ledger().await.with_context(|| format!("cannot read the ledger of {shown}"));
    store.close().await;
    let check = check?;
    let ok = check.is_ok();
    print_check(args, &check, &format!("ledger of {shown}"))?;
    verdict(ok, || format!("the ledger of {shown} does not prove out"))
}

/// Prints a check as JSON (`--json`) or as text under `heading`.
fn print_check<T: serde::Serialize + std::fmt::Display>(
    args: &CheckArgs,
    check: &T,
    heading: &str,
) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(check).context("cannot write the check as JSON")?);
    } else {
        println!("{heading}");
        print!("{check}");
    }
    Ok(())
}

/// Exit 0 when the check passed, else 1 with `failure`.
fn verdict(ok: bool, failure: impl FnOnce() -> String) -> anyhow::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Incomplete(failure()).into())
    }
}
