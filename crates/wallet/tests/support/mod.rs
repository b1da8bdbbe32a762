//! The real `yitong-server` on a random local port, in process (its own tokio runtime), over a
//! fresh database — SQLite in a temporary directory, or a fresh schema on `YITONG_TEST_PG_URL`
//! (the platform tests' `TestDb`, reused) — and Beijing's known development keys, so that a
//! test can build the gate that taps the phone's card. Phones are files in a temporary
//! directory, driven through the wallet SDK over HTTP as the CLI drives them.
#![allow(dead_code)]

#[path = "../../../platform/tests/support/mod.rs"]
mod db;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use yitong_platform::cities::Cities;
use yitong_profile::DateTime;
use yitong_server::{AppState, FixedClock, KeySource};
use yitong_terminal::{run_tap, Direction, Gate, GateConfig, GateMode, GateState, PsamKeys, SoftwarePsam, TapOutcome};
use yitong_wallet::{Device, HttpApi, Phone, PhoneFile, SoftSe, Wallet, WalletError};

pub use db::TestDb;

/// The service's clock: 25 November 2026, 18:30 in Beijing (cards are valid from that day).
pub fn service_time() -> DateTime {
    DateTime::new(2026, 11, 25, 18, 30, 0).expect("valid")
}

/// Which database the service runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Service {
    pub url: String,
    pub state: AppState,
    pub phones: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    db: Option<TestDb>,
    runtime: tokio::runtime::Runtime,
}

impl Service {
    /// The service on `backend`; `None` (after saying why) when PostgreSQL is not configured.
    pub fn start(backend: Backend) -> Option<Service> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let db = runtime.block_on(async {
            match backend {
                Backend::Sqlite => Some(TestDb::sqlite().await),
                Backend::Postgres => TestDb::postgres().await,
            }
        })?;
        let cities = Cities::builtin().expect("the built-in cities");
        let keys = KeySource::Keyring(db::wallet::keyring(&cities));
        let state = AppState::builtin(db.store.clone(), Arc::new(FixedClock(service_time())), keys)
            .expect("the built-in data loads");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a free local port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(yitong_server::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        let phones = tempfile::tempdir().expect("a temporary directory");
        Some(Service { url, state, phones, stop: Some(stop), db: Some(db), runtime })
    }

    pub fn api(&self) -> HttpApi {
        HttpApi::new(&self.url).expect("the service's URL")
    }

    /// A new phone file `name` of a Xiaomi `model` (not registered yet).
    pub fn phone(&self, name: &str, model: &str) -> PathBuf {
        let path = self.phones.path().join(format!("{name}.json"));
        let device = Device {
            device_id: format!("device-{name}"),
            se_id: format!("SE-{name}"),
            maker: "Xiaomi".into(),
            model: model.into(),
            carrier: None,
        };
        PhoneFile::create(&path, Phone::new(device), false).expect("a phone file");
        path
    }

    /// Runs `flow` on the phone of `path` (its file locked for the call), as one CLI command.
    pub fn with<T>(&self, path: &Path, flow: impl FnOnce(&mut Wallet<'_, HttpApi>) -> T) -> T {
        let api = self.api();
        let mut file = PhoneFile::open(path).expect("the phone file opens");
        let mut wallet = Wallet::new(&api, &mut file);
        flow(&mut wallet)
    }

    /// The ledger balances and each card's liability is what the service believes it holds.
    pub fn assert_ledger_balanced(&self) {
        let check = self.runtime.block_on(self.state.store().check_ledger()).expect("checked");
        assert!(check.is_ok(), "{check}");
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(db) = self.db.take() {
            self.runtime.block_on(db.cleanup());
        }
    }
}

/// The card's balance as the phone's SE says it (GET BALANCE through `read_card`).
pub fn se_balance(path: &Path, city: &str) -> i64 {
    let phone = yitong_wallet::phone::read(path).expect("the phone file reads");
    let card = phone.cards.get(city).expect("the city's card");
    let mut se = SoftSe::power_on(&card.image).expect("the image powers on");
    yitong_terminal::read_card(&mut se).expect("the card reads").balance_fen
}

/// Taps the card `image` at a Beijing metro gate (Xidan, both ways) whose PSAM holds Beijing's
/// development purchase and maintenance keys, at 19:00 on the service's day.
pub fn gate_tap(image: &[u8]) -> TapOutcome {
    let beijing = yitong_fare::City::builtin("beijing").expect("Beijing");
    let (station, station_name) = yitong_terminal::city::station_id(&beijing, "Xidan").expect("Xidan");
    let config = GateConfig {
        city: beijing.profile().into(),
        mode: GateMode::Metro,
        direction: Direction::Both,
        station,
        station_name,
        hotlist: Default::default(),
    };
    let keys = db::wallet::beijing_keys();
    let mut psam = SoftwarePsam::new([0x10, 0x00, 0x01, 0x23, 0x00, 0x01], 1);
    let issuer_id = Cities::builtin().expect("cities").get("beijing").expect("Beijing").issuer_id();
    psam.add_keys(
        issuer_id,
        keys.key_version,
        PsamKeys { purchase: keys.master.purchase().clone(), maintenance: keys.master.maintenance().clone() },
    );
    let mut gate = Gate::new(config, Box::new(psam), Box::new(beijing), GateState::default());
    let mut se = SoftSe::power_on(image).expect("the image powers on");
    let at = DateTime::new(2026, 11, 25, 19, 0, 0).expect("valid");
    run_tap(&mut gate, &mut se, at, &mut |_| Ok(())).expect("the tap runs")
}

/// The service's error code of `result`'s error.
pub fn service_code<T: std::fmt::Debug>(result: Result<T, WalletError>) -> (u16, String) {
    match result {
        Err(WalletError::Service { status, code, .. }) => (status, code),
        other => panic!("expected a refusal by the service, got {other:?}"),
    }
}

/// `mod $name { sqlite(), postgres() }`: runs `fn $scenario(&Service)` on both back ends.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            use super::support::{Backend, Service};

            #[test]
            fn sqlite() {
                let service = Service::start(Backend::Sqlite).expect("SQLite always runs");
                super::$name(&service);
            }

            #[test]
            fn postgres() {
                let Some(service) = Service::start(Backend::Postgres) else { return };
                super::$name(&service);
            }
        }
    )+};
}
