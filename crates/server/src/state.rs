//! What every handler shares, built once at start and injected with `Router::with_state`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use yitong_platform::cities::{Cities, CityError};
use yitong_platform::devices::{CatalogueError, DeviceRegistry};
use yitong_platform::pricing::{PricingError, PricingRules};
use yitong_platform::pricing_file::{read_pricing, standard_pricing, PricingFileError};
use yitong_platform::store::{IngestQueue, Store};
use yitong_profile::DateTime;

use crate::metrics::Metrics;
use crate::services::{Services, SIMULATED_PROVIDER_SEED};
use yitong_platform::closure::ClosureService;
use yitong_platform::issuance::IssuanceService;
use yitong_platform::issuer_keys::{IssuerKeyring, KeyTexts, KeyringError, DEV_KEYS_DIR};
use yitong_platform::ota::OtaService;
use yitong_platform::payments::{PaymentService, SimulatedProvider, SimulationFaults};

/// Seconds Asia/Shanghai is ahead of UTC (no daylight saving): platform times are its local
/// time, as on the cards (docs/platform.md).
const SHANGHAI_OFFSET_SECONDS: i64 = 8 * 3_600;

/// Where handlers read the time: injected so that tests fix it.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, local time of Asia/Shanghai.
    fn now(&self) -> DateTime;
}

/// The system clock, in Asia/Shanghai.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime {
        let unix_seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .expect("the system clock is after 1970");
        DateTime::from_seconds_since_epoch(unix_seconds.saturating_add(SHANGHAI_OFFSET_SECONDS))
            .expect("the system clock is before the year 10000")
    }
}

/// A clock that always says the same time (tests, replays).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime);

impl Clock for FixedClock {
    fn now(&self) -> DateTime {
        self.0
    }
}

/// What an operator adds to the built-in data at start ([`AppState::builtin_with`]).
#[derive(Debug, Clone, Default)]
pub struct Additions<'a> {
    /// The pricing file, TOML (`yitong_platform::pricing_file`).
    pub pricing_toml: Option<&'a str>,
    /// More device makers, CSV in the catalogue's format: (the file's name, for errors; its
    /// text), imported in order. A maker already known is replaced.
    pub makers_csv: Vec<(&'a str, &'a str)>,
    /// More phone models, likewise, imported after the makers. A model already known is replaced.
    pub models_csv: Vec<(&'a str, &'a str)>,
}

/// The service's state could not be built from the shipped data.
#[derive(Debug)]
#[non_exhaustive]
pub enum StateError {
    /// A city file.
    Cities(CityError),
    /// The device catalogue.
    Catalogue(CatalogueError),
    /// A city's pricing rules.
    Pricing {
        /// The city.
        city: String,
        /// What is wrong.
        error: PricingError,
    },
    /// The operator's pricing file.
    PricingFile(PricingFileError),
    /// The issuers' keys (a key file, the keys directory, the development keys).
    Keys(KeyringError),
}

/// Where the issuers' master keys come from.
#[derive(Debug)]
pub enum KeySource {
    /// A directory of full key files, one per city the operator has (`yitong serve --keys DIR`);
    /// cities without a file cannot issue or load.
    Dir(PathBuf),
    /// Full key files held by environment variables (`YITONG_ISSUER_KEYS_*`), mapped as `Dir`'s.
    Environment(KeyTexts),
    /// DEVELOPMENT keys of every city, made once into `<data dir>/dev-keys/` and read again at
    /// every start.
    Development(PathBuf),
    /// Keys already loaded (tests).
    Keyring(IssuerKeyring),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Cities(e) => write!(f, "cities: {e}"),
            StateError::Catalogue(e) => write!(f, "device catalogue: {e}"),
            StateError::Pricing { city, error } => write!(f, "pricing of {city}: {error}"),
            StateError::PricingFile(e) => write!(f, "pricing file: {e}"),
            StateError::Keys(e) => write!(f, "issuer keys: {e}"),
        }
    }
}

impl std::error::Error for StateError {}

/// The store, the cities, the device catalogue, the pricing rules, the clock and the metrics.
/// Cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    /// Gates' uploads, committed in groups.
    uploads: Arc<IngestQueue>,
    /// Where the next feed of the platform's records to the back office starts (Unix ms).
    fed_since_ms: std::sync::atomic::AtomicI64,
    cities: Cities,
    devices: DeviceRegistry,
    pricing: BTreeMap<String, PricingRules>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    services: Services,
}

impl AppState {
    /// The built-in ten regions and device catalogue over `store`, read at `clock`, with the
    /// issuers' keys from `keys` (never returned or logged) and the simulated payment provider.
    /// Every city charges its standard sign-up fee (see [`builtin_priced`](Self::builtin_priced)).
    pub fn builtin(store: Store, clock: Arc<dyn Clock>, keys: KeySource) -> Result<Self, StateError> {
        Self::builtin_priced(store, clock, keys, None)
    }

    /// [`builtin`](Self::builtin) with the operator's pricing file (`pricing_toml`, see
    /// `yitong_platform::pricing_file`): each city's promotions and fee-refund rule.
    pub fn builtin_priced(
        store: Store,
        clock: Arc<dyn Clock>,
        keys: KeySource,
        pricing_toml: Option<&str>,
    ) -> Result<Self, StateError> {
        Self::builtin_with(store, clock, keys, &Additions { pricing_toml, ..Additions::default() })
    }

    /// [`builtin`](Self::builtin) with what the operator adds: the pricing file, and makers and
    /// models imported into the built-in device catalogue (before the pricing file is read, so
    /// that its rules may name them).
    pub fn builtin_with(
        store: Store,
        clock: Arc<dyn Clock>,
        keys: KeySource,
        additions: &Additions<'_>,
    ) -> Result<Self, StateError> {
        let cities = Cities::builtin().map_err(StateError::Cities)?;
        let mut devices = DeviceRegistry::builtin(&cities).map_err(StateError::Catalogue)?;
        for (file, text) in &additions.makers_csv {
            let summary = devices.import_makers_csv(text, file).map_err(StateError::Catalogue)?;
            tracing::info!(file, added = summary.added, updated = summary.updated, "device makers imported");
        }
        for (file, text) in &additions.models_csv {
            let summary = devices.import_models_csv(text, file, &cities).map_err(StateError::Catalogue)?;
            tracing::info!(file, added = summary.added, updated = summary.updated, "device models imported");
        }
        let pricing = match additions.pricing_toml {
            Some(text) => read_pricing(text, &cities, &devices).map_err(StateError::PricingFile)?,
            None => standard_pricing(&cities).map_err(|(city, error)| StateError::Pricing { city, error })?,
        };
        let keys = match keys {
            KeySource::Dir(dir) => {
                let (keys, held) = IssuerKeyring::from_dir(&dir, &cities).map_err(StateError::Keys)?;
                tracing::info!(dir = %dir.display(), cities = ?held, "issuer keys read; other cities cannot issue or load");
                keys
            }
            KeySource::Environment(texts) => {
                let (keys, held) = IssuerKeyring::from_texts(&texts, &cities).map_err(StateError::Keys)?;
                tracing::info!(variables = ?texts, cities = ?held, "issuer keys read from the environment; other cities cannot issue or load");
                keys
            }
            KeySource::Development(data_dir) => {
                let keys = IssuerKeyring::development(&data_dir, &cities).map_err(StateError::Keys)?;
                // Say so, never the keys.
                tracing::warn!(
                    dir = %data_dir.join(DEV_KEYS_DIR).display(),
                    "issuer keys: DEVELOPMENT ONLY keys of every city, in clear text in the data directory; use --keys DIR for real ones"
                );
                keys
            }
            KeySource::Keyring(keys) => keys,
        };
        Ok(Self::with_keys(store, cities, devices, pricing, clock, keys))
    }

    /// A state of these parts; `pricing` is keyed by city name (a city without rules has no
    /// quote). It holds no issuer keys: card requests answer "no issuer keys" (see
    /// [`with_keys`](Self::with_keys)).
    pub fn new(
        store: Store,
        cities: Cities,
        devices: DeviceRegistry,
        pricing: BTreeMap<String, PricingRules>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_keys(store, cities, devices, pricing, clock, IssuerKeyring::new())
    }

    /// A state of these parts that issues and loads cards with `keys` (pricing keyed by city
    /// name), over the simulated payment provider (fixed seed, no faults).
    pub fn with_keys(
        store: Store,
        cities: Cities,
        devices: DeviceRegistry,
        pricing: BTreeMap<String, PricingRules>,
        clock: Arc<dyn Clock>,
        keys: IssuerKeyring,
    ) -> Self {
        let provider = Arc::new(SimulatedProvider::new(SIMULATED_PROVIDER_SEED, SimulationFaults::NONE));
        let mut issuance = IssuanceService::new(cities.clone(), devices.clone(), keys.clone());
        for (city, rules) in &pricing {
            // Keys of `pricing` not among the cities are skipped: such a city has no requests.
            let _ = issuance.set_pricing(city, rules.clone());
        }
        let services = Services {
            payments: PaymentService::new(store.clone(), provider.clone()),
            provider,
            ota: OtaService::new(cities.clone(), &keys),
            closures: ClosureService::new(issuance.clone(), &keys, transfer_code_seed()),
            tac: Arc::new(keys.tac_keys_keeping(store.shadow_cache_cards())),
            issuance,
        };
        let metrics = Metrics::default();
        let uploads = Arc::new(IngestQueue::new(store.clone()));
        let fed_since_ms = std::sync::atomic::AtomicI64::new(i64::MIN);
        AppState {
            inner: Arc::new(Inner { store, uploads, fed_since_ms, cities, devices, pricing, clock, metrics, services }),
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Where the next feed of the platform's own records to the back office starts (Unix
    /// milliseconds; every record at first): advanced after each feed.
    pub fn platform_fed_since_ms(&self) -> &std::sync::atomic::AtomicI64 {
        &self.inner.fed_since_ms
    }

    /// The queue of gates' uploads in front of the database (group commit).
    pub fn uploads(&self) -> &Arc<IngestQueue> {
        &self.inner.uploads
    }

    /// The cities served.
    pub fn cities(&self) -> &Cities {
        &self.inner.cities
    }

    /// The device catalogue.
    pub fn devices(&self) -> &DeviceRegistry {
        &self.inner.devices
    }

    /// The sign-up pricing rules of the city named `name` (lower case).
    pub fn pricing(&self, name: &str) -> Option<&PricingRules> {
        self.inner.pricing.get(name)
    }

    /// Now, Asia/Shanghai.
    pub fn now(&self) -> DateTime {
        self.inner.clock.now()
    }

    /// Now as Unix milliseconds (the platform's record times), from the same clock.
    pub fn now_ms(&self) -> i64 {
        let local = self.inner.clock.now().seconds_since_epoch();
        local.saturating_sub(SHANGHAI_OFFSET_SECONDS).saturating_mul(1_000)
    }

    /// Payments, issuance, the load host and the service desk.
    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    /// The request counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// The seed of the transfer codes (bearer capabilities): the operating system's random source.
fn transfer_code_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system's random source answers");
    seed
}
