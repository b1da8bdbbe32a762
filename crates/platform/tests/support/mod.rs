//! A fresh database per test: an SQLite file in a temporary directory, or a fresh schema on the
//! PostgreSQL server named by `YITONG_TEST_PG_URL`.
#![allow(dead_code)]

pub mod wallet;

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor};
use yitong_platform::store::{Backend, Store};

/// Skips a test that needs something external, saying why; under `YITONG_REQUIRE_EXTERNAL=1`
/// the skip is a failure instead.
pub fn skip(why: &str) {
    use std::io::Write;
    if std::env::var_os("YITONG_REQUIRE_EXTERNAL").is_some_and(|v| v == "1") {
        panic!("cannot run: {why} (YITONG_REQUIRE_EXTERNAL=1 makes a skip a failure)");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

pub struct TestDb {
    /// The URL the store was opened with (open it again for a second pool).
    pub url: String,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
    schema: Option<(String, String)>,
}

impl TestDb {
    /// An SQLite file in a new temporary directory, opened as a data directory.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
        let url = format!("sqlite://{}", dir.path().join(yitong_platform::store::SQLITE_FILE_NAME).display());
        TestDb { url, store, _dir: Some(dir), schema: None }
    }

    /// A fresh schema on `YITONG_TEST_PG_URL`, or `None` (after saying why) when it is unset.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(server) = std::env::var("YITONG_TEST_PG_URL") else {
            skip("YITONG_TEST_PG_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test)");
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").subsec_nanos();
        let schema = format!("yitong_test_{}_{}_{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut admin = sqlx::PgConnection::connect(&server).await.expect("YITONG_TEST_PG_URL connects");
        admin.execute(format!("CREATE SCHEMA {schema}").as_str()).await.expect("a fresh schema");
        admin.close().await.expect("closed");
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options[search_path]={schema}");
        let store = Store::open(&url).await.expect("PostgreSQL opens");
        assert_eq!(store.backend(), Backend::Postgres);
        Some(TestDb { url, store, _dir: None, schema: Some((server, schema)) })
    }

    /// A second, independent pool on the same database.
    pub async fn open_again(&self) -> Store {
        self.try_open_again().await.expect("the same database opens again")
    }

    /// The same database opened again, or why it is refused.
    pub async fn try_open_again(&self) -> Result<Store, yitong_platform::store::StoreError> {
        Store::open(&self.url).await
    }

    /// Runs raw SQL on the database, behind the store's back (to tamper with it).
    pub async fn execute(&self, sql: &str) {
        let mut connection = self.connect().await;
        connection.execute(sql).await.expect("SQL runs");
        connection.close().await.expect("closed");
    }

    /// The first column of `sql`'s rows, as text, read behind the store's back.
    pub async fn texts(&self, sql: &str) -> Vec<String> {
        let mut connection = self.connect().await;
        let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&mut connection).await.expect("SQL runs");
        connection.close().await.expect("closed");
        rows.into_iter().map(|(text,)| text).collect()
    }

    /// A connection of its own, on SQLite with the back office's file attached as the store
    /// attaches it.
    async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(&self.url).await.expect("connects");
        if let Some(file) = self.url.strip_prefix("sqlite://") {
            let attached = yitong_platform::store::backoffice_path(std::path::Path::new(file));
            let schema = yitong_platform::store::BACKOFFICE_SCHEMA;
            connection
                .execute(format!("ATTACH DATABASE '{}' AS {schema}", attached.display()).as_str())
                .await
                .expect("the back office's file attaches");
        }
        connection
    }

    /// Drops the PostgreSQL schema (a failed test leaves it for a look).
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some((server, schema)) = &self.schema {
            let mut admin = sqlx::PgConnection::connect(server).await.expect("connects");
            admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await.expect("dropped");
            admin.close().await.expect("closed");
        }
    }
}

/// `mod $name { sqlite(), postgres() }`: runs `async fn $scenario(&TestDb)` on both back ends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident => $scenario:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::support::TestDb::sqlite().await;
                super::$scenario(&db).await;
                db.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::support::TestDb::postgres().await else { return };
                super::$scenario(&db).await;
                db.cleanup().await;
            }
        }
    )+};
}
