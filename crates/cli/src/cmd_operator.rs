//! `yitong operator key new|list|revoke`: operators' API keys, each scoped to one city's issuer,
//! in the platform's database. A new key is printed once; the database keeps only its SHA-256.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use yitong_platform::access::{self, AccessError};
use yitong_platform::cities::Cities;

use crate::cmd_serve::{open_store, DatabaseArgs};

/// `yitong operator …`.
#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Operator API keys.
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `yitong operator key …`.
#[derive(Subcommand)]
pub enum KeyCommand {
    /// Makes a key for an operator of one city, or for the clearing house, and prints it, once.
    New(KeyNewArgs),
    /// Lists the keys (never the keys themselves).
    List(DatabaseArgs),
    /// Revokes a key: it no longer authorizes anything.
    Revoke(KeyRevokeArgs),
}

/// Arguments of `yitong operator key new`.
#[derive(Args)]
pub struct KeyNewArgs {
    /// The city the key acts for and whose cards it may read (`beijing`).
    #[arg(long, required_unless_present = "clearing_house", conflicts_with = "clearing_house")]
    pub city: Option<String>,
    /// A clearing house's key instead: it reads what spans cities (settlement, ridership, the
    /// ledger) and every city's cards, and acts for no city (no uploads, no hotlist changes).
    #[arg(long)]
    pub clearing_house: bool,
    /// Who holds it.
    #[arg(long, default_value = "operator")]
    pub name: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Arguments of `yitong operator key revoke`.
#[derive(Args)]
pub struct KeyRevokeArgs {
    /// The key's ID (`opk_…`, as `list` shows it).
    pub id: String,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

pub fn run(command: &OperatorCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start tokio")?;
    runtime.block_on(async {
        match command {
            OperatorCommand::Key(KeyCommand::New(args)) => new_key(args).await,
            OperatorCommand::Key(KeyCommand::List(args)) => list(args).await,
            OperatorCommand::Key(KeyCommand::Revoke(args)) => revoke(args).await,
        }
    })
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn new_key(args: &KeyNewArgs) -> anyhow::Result<()> {
    let cities = Cities::builtin().context("the built-in cities")?;
    let (store, _) = open_store(&args.database.db, &args.database.data_dir).await?;
    let city = match &args.city {
        Some(city) if city.trim() == access::CLEARING_HOUSE => bail!("--city: `*` is not a city (--clearing-house?)"),
        Some(city) => city.trim().to_ascii_lowercase(),
        None => access::CLEARING_HOUSE.to_owned(),
    };
    let made = access::new_operator_key(&store, &cities, &city, &args.name, now_ms()).await;
    store.close().await;
    let (key, secret) = match made {
        Ok(made) => made,
        Err(AccessError::UnknownCity(_)) => {
            let known: Vec<&str> = cities.iter().map(|c| c.name()).collect();
            bail!("--city: `{city}` is not a city; known: {}", known.join(", "))
        }
        Err(AccessError::BadField { why, .. }) => bail!("--name: {why}"),
        Err(error) => return Err(error.into()),
    };
    println!("{}", secret.expose());
    let scope = if key.is_clearing_house() { "the clearing house".to_owned() } else { key.city.clone() };
    eprintln!(
        "operator key {} for {scope} ({}): printed once above; the database keeps only its hash",
        key.key_id, key.name
    );
    Ok(())
}

async fn list(args: &DatabaseArgs) -> anyhow::Result<()> {
    let (store, _) = open_store(&args.db, &args.data_dir).await?;
    let keys = store.operator_keys().await;
    store.close().await;
    let keys = keys?;
    if keys.is_empty() {
        println!("no operator keys");
    }
    for key in keys {
        let created = chrono::DateTime::from_timestamp_millis(key.created_at_ms)
            .map_or_else(|| key.created_at_ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
        let state = match key.revoked_at_ms {
            Some(_) => "revoked",
            None => "active",
        };
        let scope = if key.is_clearing_house() { "clearing" } else { key.city.as_str() };
        println!("{}  {:<10} {:<8} {created}  {}", key.key_id, scope, state, key.name);
    }
    Ok(())
}

async fn revoke(args: &KeyRevokeArgs) -> anyhow::Result<()> {
    let (store, _) = open_store(&args.database.db, &args.database.data_dir).await?;
    let revoked = store.revoke_operator_key(args.id.trim(), now_ms()).await;
    store.close().await;
    if !revoked? {
        bail!("{}: no such active operator key (`yitong operator key list` shows them)", args.id);
    }
    println!("revoked operator key {}", args.id.trim());
    Ok(())
}
