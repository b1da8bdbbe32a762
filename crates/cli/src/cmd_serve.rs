//! `yitong serve`: the wallet platform's HTTP service (`yitong-server`) on a socket, over SQLite
//! in the data directory by default or the database `--db` names.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use yitong_platform::issuer_keys::{KeyTexts, KEYS_ENV_PREFIX};
use yitong_platform::store::{Store, StoreOptions, SHADOW_CACHE_CARDS, SHADOW_CACHE_CARDS_MAX, SQLITE_FILE_NAME};
use yitong_server::{KeySource, StateError};

use crate::terminals::{data_dir, DATA_DIR_ENV};

/// Arguments of `yitong serve`.
#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address and port to listen on (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub listen: String,
    /// A directory of full issuer key files (`yitong keys new`), one per city the operator has,
    /// mapped by the issuer ID inside (default $YITONG_KEYS_DIR; or key files in variables
    /// $YITONG_ISSUER_KEYS_*, one each; without any: DEVELOPMENT keys made once into
    /// <data dir>/dev-keys).
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// The cities' sign-up promotions and fee-refund rules, TOML (docs/platform.md, "Sign-up
    /// pricing"; default $YITONG_PRICING_FILE; without either every city charges its standard fee).
    #[arg(long, value_name = "FILE")]
    pub pricing: Option<PathBuf>,
    /// More device makers for the catalogue, CSV `maker,wallet_app,source` (docs/platform.md,
    /// "Devices and eligibility"); repeatable, imported in order, a known maker replaced.
    #[arg(long = "makers", value_name = "FILE")]
    pub makers: Vec<PathBuf>,
    /// More phone models, CSV `maker,model,aliases,nfc,secure_element,cities,source`; repeatable,
    /// imported after the makers, a known model replaced.
    #[arg(long = "devices", value_name = "FILE")]
    pub devices: Vec<PathBuf>,
    #[command(flatten)]
    pub shadow_cache: ShadowCacheArg,
}

/// The environment variable naming the pricing file.
pub const PRICING_FILE_ENV: &str = "YITONG_PRICING_FILE";

/// `--shadow-cache-cards`, for the commands that ingest gate uploads.
#[derive(Args, Clone, Debug)]
pub struct ShadowCacheArg {
    /// Card shadows the back office keeps in memory between ingest groups (each its card's
    /// transactions), and card TAC keys: a day with more cards reads the ones dropped again and,
    /// on SQLite, folds its journal more often (at half this many cards).
    #[arg(long = "shadow-cache-cards", value_name = "CARDS", default_value_t = SHADOW_CACHE_CARDS,
          value_parser = shadow_cache_cards)]
    pub cards: usize,
}

impl ShadowCacheArg {
    /// The store's options with this bound.
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions { shadow_cache_cards: self.cards, ..StoreOptions::default() }
    }
}

fn shadow_cache_cards(text: &str) -> Result<usize, String> {
    let cards: usize = text.parse().map_err(|_| format!("`{text}` is not a number of cards"))?;
    if (2..=SHADOW_CACHE_CARDS_MAX).contains(&cards) {
        Ok(cards)
    } else {
        Err(format!("{cards} cards: from 2 to {SHADOW_CACHE_CARDS_MAX}"))
    }
}

/// The environment variable naming the keys directory.
pub const KEYS_DIR_ENV: &str = "YITONG_KEYS_DIR";

/// Where the database is: `--db URL`, else the SQLite file in the data directory.
#[derive(Args)]
pub struct DatabaseArgs {
    /// The database: `sqlite:PATH` or `postgres://USER@HOST:PORT/DATABASE`; default the SQLite
    /// file platform.sqlite in the data directory (with the back office's file,
    /// platform-backoffice.sqlite, beside it).
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// The data directory (default $YITONG_DATA_DIR, else ~/.local/share/yitong): the SQLite
    /// database unless --db; for `serve`, the development keys unless --keys.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `--data-dir`, else the default data directory.
fn resolve_data_dir(given: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(dir) => Ok(dir.clone()),
        None => data_dir(|name| std::env::var_os(name))
            .map_err(|_| anyhow::anyhow!("--data-dir: no data directory; pass --data-dir DIR or set {DATA_DIR_ENV}")),
    }
}

/// Opens the platform's database (running its migrations): `db`, else the SQLite file in the
/// data directory. Returns the store and its printable name (no password).
pub async fn open_store(db: &Option<String>, dir: &Option<PathBuf>) -> anyhow::Result<(Store, String)> {
    open_store_with(db, dir, StoreOptions::default()).await
}

/// [`open_store`] with other [`StoreOptions`].
pub async fn open_store_with(
    db: &Option<String>,
    dir: &Option<PathBuf>,
    options: StoreOptions,
) -> anyhow::Result<(Store, String)> {
    match db {
        Some(url) => {
            let store =
                Store::open_with(url, options).await.with_context(|| format!("--db: cannot open {}", redacted(url)))?;
            Ok((store, redacted(url)))
        }
        None => {
            let dir = resolve_data_dir(dir)?;
            let store = Store::open_data_dir_with(&dir, options)
                .await
                .with_context(|| format!("--data-dir: cannot open the database in {}", dir.display()))?;
            Ok((store, format!("sqlite:{}", dir.join(SQLITE_FILE_NAME).display())))
        }
    }
}

pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let listen: std::net::SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("--listen: `{}` is not an address and port like 127.0.0.1:8080", args.listen))?;
    yitong_server::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start tokio")?;
    runtime.block_on(run(args, listen))
}

async fn run(args: &ServeArgs, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    let keys_dir = args.keys.clone().or_else(|| std::env::var_os(KEYS_DIR_ENV).map(PathBuf::from));
    let key_texts = KeyTexts::from_vars(std::env::vars_os()).context(KEYS_ENV_PREFIX)?;
    let keys_from = if key_texts.is_empty() { "--keys" } else { "the $YITONG_ISSUER_KEYS_* variables" };
    let keys = match keys_dir {
        Some(dir) if key_texts.is_empty() => KeySource::Dir(dir),
        Some(_) => {
            anyhow::bail!("--keys: issuer keys come from a directory or from ${KEYS_ENV_PREFIX}* variables, not both")
        }
        None if !key_texts.is_empty() => KeySource::Environment(key_texts),
        // With --db postgres://… the development keys still live in the data directory.
        None => KeySource::Development(resolve_data_dir(&args.database.data_dir)?),
    };
    let pricing_file = args.pricing.clone().or_else(|| std::env::var_os(PRICING_FILE_ENV).map(PathBuf::from));
    let pricing = read_all(pricing_file.as_slice(), "--pricing")?.pop().map(|(_, text)| text);
    let makers = read_all(&args.makers, "--makers")?;
    let devices = read_all(&args.devices, "--devices")?;
    let additions = yitong_server::Additions {
        pricing_toml: pricing.as_deref(),
        makers_csv: makers.iter().map(|(file, text)| (file.as_str(), text.as_str())).collect(),
        models_csv: devices.iter().map(|(file, text)| (file.as_str(), text.as_str())).collect(),
    };
    // The files are read first; the keys, the catalogue and the pricing are checked once the
    // store is open (its migrations run as it opens).
    let options = args.shadow_cache.store_options();
    let (store, database) = open_store_with(&args.database.db, &args.database.data_dir, options).await?;
    let clock = Arc::new(yitong_server::SystemClock);
    let state = yitong_server::AppState::builtin_with(store.clone(), clock, keys, &additions).map_err(|error| {
        match (&error, &pricing_file) {
            (StateError::PricingFile(_), Some(file)) => anyhow::anyhow!("--pricing: {}: {error}", file.display()),
            // The error names the file (the shipped ones are `data/…`), its line and the field.
            (StateError::Catalogue(_), _) if !(args.makers.is_empty() && args.devices.is_empty()) => {
                anyhow::anyhow!("--makers/--devices: {error}")
            }
            (StateError::Catalogue(_) | StateError::Cities(_) | StateError::Pricing { .. }, _) => {
                anyhow::anyhow!("the built-in data: {error}")
            }
            _ => anyhow::Error::new(error).context(keys_from),
        }
    })?;
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("--listen: cannot listen on {listen}"))?;
    let address = listener.local_addr().context("the listening address")?;
    // Before the URL is printed: a Ctrl-C right after it stops the service gracefully.
    let shutdown = yitong_server::shutdown_signal();
    println!("yitong: wallet platform API at http://{address}/ (OpenAPI at http://{address}/openapi.json), database {database}; Ctrl-C stops");
    yitong_server::serve(listener, state, shutdown).await.context("serving")?;
    store.close().await;
    println!("yitong: stopped");
    Ok(())
}

/// Each of `files` as (its name as given, its text); `flag` names the option in an error.
fn read_all(files: &[PathBuf], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    files
        .iter()
        .map(|file| {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("{flag}: cannot read {}", file.display()))?;
            Ok((file.display().to_string(), text))
        })
        .collect()
}

/// `url` without its password, fit to print.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn a_printed_database_url_hides_its_password() {
        assert_eq!(redacted("postgres://app:s3cret@db:5432/yitong"), "postgres://app:***@db:5432/yitong");
        assert_eq!(redacted("postgres://app@db/yitong"), "postgres://app@db/yitong");
        assert_eq!(redacted("sqlite:/var/lib/yitong/platform.sqlite"), "sqlite:/var/lib/yitong/platform.sqlite");
    }
}
