//! `yitong settle --date YYYY-MM-DD`: a business day's clearing report — who owes whom among the
//! cities' issuers and operators, per-participant totals and the reconciliation — from the
//! platform's database, as CSV or JSON (`yitong_clearing::settlement`).

use anyhow::Context;
use clap::{Args, ValueEnum};
use yitong_clearing::settlement::{BusinessDay, CutOver};
use yitong_platform::cities::Cities;
use yitong_platform::settlement::settle_day;

use crate::cmd_serve::{open_store, DatabaseArgs};

/// Arguments of `yitong settle`.
#[derive(Args)]
pub struct SettleArgs {
    /// The business day, `YYYY-MM-DD` (from its date at the cut-over to the next date's).
    #[arg(long)]
    pub date: String,
    /// When a business day starts, local time `HH:MM`.
    #[arg(long, default_value = "04:00", value_name = "HH:MM")]
    pub cut_over: String,
    /// The report's format.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// A report's format.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// One CSV with a section column (docs/backoffice.md).
    Csv,
    /// The whole report as JSON.
    Json,
}

pub fn run(args: &SettleArgs) -> anyhow::Result<()> {
    let cut_over: CutOver = args.cut_over.parse().map_err(|e| anyhow::anyhow!("--cut-over: {e}"))?;
    let day = BusinessDay::parse(args.date.trim(), cut_over).map_err(|e| anyhow::anyhow!("--date: {e}"))?;
    let cities = Cities::builtin().context("the built-in cities")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start tokio")?;
    let report = runtime.block_on(async {
        let (store, shown) = open_store(&args.database.db, &args.database.data_dir).await?;
        let report = settle_day(&store, &cities, day).await.with_context(|| format!("settling {shown}"));
        store.close().await;
        report
    })?;
    match args.format {
        Format::Csv => print!("{}", report.to_csv()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report).context("the report as JSON")?),
    }
    Ok(())
}
