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
    if args.json {
        println!("{}", serde_json::to_string_pretty(&check).context("cannot write the check as JSON")?);
    } else {
        println!("ledger and clearing of {shown}");
        print!("{check}");
    }
    if check.is_ok() {
        Ok(())
    } else {
        Err(Incomplete(format!("the ledger and the clearing of {shown} do not agree")).into())
    }
}

async fn check(args: &CheckArgs) -> anyhow::Result<()> {
    let (store, shown) = open_store(&args.database.db, &args.database.data_dir).await?;
    let check = store.check_ledger().await.with_context(|| format!("cannot read the ledger of {shown}"));
    store.close().await;
    let check = check?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&check).context("cannot write the check as JSON")?);
    } else {
        println!("ledger of {shown}");
        print!("{check}");
    }
    if check.is_ok() {
        Ok(())
    } else {
        Err(Incomplete(format!("the ledger of {shown} does not prove out")).into())
    }
}
