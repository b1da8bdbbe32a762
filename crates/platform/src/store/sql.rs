//! One way to run a statement on either back end: SQLite natively (`rusqlite`, in the calling
//! thread: a statement is a few microseconds, where a hop to `sqlx`'s worker thread and back was
//! about 25), PostgreSQL through `sqlx`'s `Any` driver.
//!
//! The SQL is the same on both: parameters are `$1`, `$2`, … (SQLite binds them by name, so one
//! may appear twice or out of order). Values are integers, text and bytes (money is integer fen;
//! there are no floats in the schema); a NULL carries its type, which PostgreSQL wants.

use std::borrow::Cow;

use rusqlite::types::{ToSqlOutput, ValueRef};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Executor, Row as _};

use super::StoreError;

/// Prepared statements kept per SQLite connection (the store has a few dozen fixed ones; the
/// multi-row statements vary with their row count).
pub(crate) const SQLITE_STATEMENTS_CACHED: usize = 256;

/// A connection to run statements on: a native SQLite connection or a `sqlx` one (PostgreSQL).
pub(crate) enum Db<'c> {
    /// SQLite, run in the calling thread.
    Sqlite(&'c mut rusqlite::Connection),
    /// SQLite for a report's reads (a snapshot's: every card, a day's batches, the whole
    /// ledger), which may run long: a multi-threaded runtime is told first, and its other tasks
    /// move to another thread meanwhile.
    SqliteReport(&'c mut rusqlite::Connection),
    /// PostgreSQL, through `sqlx`.
    Any(&'c mut AnyConnection),
}

impl Db<'_> {
    /// Runs `sql`, one statement without parameters or rows (BEGIN, COMMIT), prepared once per
    /// connection on SQLite (a snapshot runs two).
    pub(crate) async fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(connection) | Db::SqliteReport(connection) => Ok(run_cached(connection, sql)?),
            Db::Any(connection) => {
                connection.execute(sql).await?;
                Ok(())
            }
        }
    }
}

/// Runs `sql` on a native SQLite connection, one statement without parameters or rows, prepared
/// once per connection: the transactions' own statements, run several times a request.
pub(crate) fn run_cached(connection: &rusqlite::Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(drop)
}

/// A statement's parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    Null(Kind),
}

/// The type of a NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Text,
    Blob,
}

impl From<i64> for Value {
    fn from(value: i64) -> Value {
        Value::Int(value)
    }
}

impl From<i32> for Value {
    fn from(value: i32) -> Value {
        Value::Int(value.into())
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Value {
        Value::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Value {
        Value::Text(value)
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Value {
        Value::Text(value.clone())
    }
}

impl From<&[u8]> for Value {
    fn from(value: &[u8]) -> Value {
        Value::Blob(value.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(value: Vec<u8>) -> Value {
        Value::Blob(value)
    }
}

impl From<&Vec<u8>> for Value {
    fn from(value: &Vec<u8>) -> Value {
        Value::Blob(value.clone())
    }
}

/// A type whose NULL [`Value`] is known.
pub(crate) trait Nullable: Into<Value> {
    const KIND: Kind;
}

impl Nullable for i64 {
    const KIND: Kind = Kind::Int;
}

impl Nullable for String {
    const KIND: Kind = Kind::Text;
}

impl Nullable for &str {
    const KIND: Kind = Kind::Text;
}

impl Nullable for Vec<u8> {
    const KIND: Kind = Kind::Blob;
}

impl<T: Nullable> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Value {
        match value {
            Some(value) => value.into(),
            None => Value::Null(T::KIND),
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            Value::Int(value) => ToSqlOutput::Borrowed(ValueRef::Integer(*value)),
            Value::Text(value) => ToSqlOutput::Borrowed(ValueRef::Text(value.as_bytes())),
            Value::Blob(value) => ToSqlOutput::Borrowed(ValueRef::Blob(value)),
            Value::Null(_) => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// A statement and its parameters ([`query`]).
#[must_use = "a query does nothing until it is run"]
pub(crate) struct Query<'q> {
    sql: Cow<'q, str>,
    args: Vec<Value>,
}

/// The statement `sql`, to bind parameters to and run.
pub(crate) fn query<'q>(sql: impl Into<Cow<'q, str>>) -> Query<'q> {
    Query { sql: sql.into(), args: Vec::new() }
}

impl<'q> Query<'q> {
    /// Binds the next parameter (`$1`, then `$2`, …).
    pub(crate) fn bind(mut self, value: impl Into<Value>) -> Query<'q> {
        self.args.push(value.into());
        self
    }

    /// Runs the statement; the rows it changed.
    pub(crate) async fn execute(self, db: &mut Db<'_>) -> Result<u64, StoreError> {
        match db {
            Db::Sqlite(connection) => self.native_execute(connection),
            Db::SqliteReport(connection) => blocking(|| self.native_execute(connection)),
            Db::Any(connection) => Ok(self.any().execute(&mut **connection).await?.rows_affected()),
        }
    }

    /// The rows the statement returns.
    pub(crate) async fn fetch_all(self, db: &mut Db<'_>) -> Result<Vec<Row>, StoreError> {
        match db {
            Db::Sqlite(connection) => self.native_rows(connection, usize::MAX),
            Db::SqliteReport(connection) => blocking(|| self.native_rows(connection, usize::MAX)),
            Db::Any(connection) => {
                Ok(self.any().fetch_all(&mut **connection).await?.into_iter().map(Row::Any).collect())
            }
        }
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional(self, db: &mut Db<'_>) -> Result<Option<Row>, StoreError> {
        match db {
            Db::Sqlite(connection) => Ok(self.native_rows(connection, 1)?.pop()),
            Db::SqliteReport(connection) => Ok(blocking(|| self.native_rows(connection, 1))?.pop()),
            Db::Any(connection) => Ok(self.any().fetch_optional(&mut **connection).await?.map(Row::Any)),
        }
    }

    /// The first row; an error when there is none.
    pub(crate) async fn fetch_one(self, db: &mut Db<'_>) -> Result<Row, StoreError> {
        match db {
            Db::Sqlite(_) | Db::SqliteReport(_) => {
                self.fetch_optional(db).await?.ok_or(StoreError::Database(sqlx::Error::RowNotFound))
            }
            Db::Any(connection) => Ok(Row::Any(self.any().fetch_one(&mut **connection).await?)),
        }
    }

    fn native_execute(&self, connection: &rusqlite::Connection) -> Result<u64, StoreError> {
        let mut statement = self.prepare(connection)?;
        // SQLite's count is the last INSERT, UPDATE or DELETE's: none for a statement that cannot
        // write.
        let writes = !statement.readonly();
        let mut rows = statement.raw_query();
        while rows.next()?.is_some() {}
        drop(rows);
        Ok(if writes { connection.changes() } else { 0 })
    }

    /// The first `keep` rows. The statement runs to its end all the same, so that an error there
    /// (a write's constraint, a commit outside a transaction) is not lost in its reset.
    fn native_rows(&self, connection: &rusqlite::Connection, keep: usize) -> Result<Vec<Row>, StoreError> {
        let mut statement = self.prepare(connection)?;
        let columns = statement.column_count();
        let mut rows = statement.raw_query();
        let mut kept = Vec::new();
        while let Some(row) = rows.next()? {
            if kept.len() < keep {
                kept.push(native_row(row, columns)?);
            }
        }
        Ok(kept)
    }

    /// The prepared (cached) SQLite statement with the parameters bound by their names' numbers:
    /// every value bound, to a parameter of its own (as PostgreSQL requires).
    fn prepare<'c>(&self, connection: &'c rusqlite::Connection) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
        let mut statement = connection.prepare_cached(&self.sql)?;
        let parameters = statement.parameter_count();
        let mut highest = 0;
        for index in 1..=parameters {
            let number = match statement.parameter_name(index) {
                Some(name) => name.strip_prefix('$').and_then(|number| number.parse::<usize>().ok()),
                None => Some(index),
            };
            let value = number
                .and_then(|number| self.args.get(number.wrapping_sub(1)))
                .ok_or_else(|| self.misuse(format!("parameter {index} has no value")))?;
            highest = highest.max(number.unwrap_or(0));
            statement.raw_bind_parameter(index, value)?;
        }
        if parameters != self.args.len() || highest != self.args.len() {
            return Err(self.misuse(format!("{} values bound to {parameters} parameters", self.args.len())));
        }
        Ok(statement)
    }

    /// A statement built wrong (a defect of this code, not of the input).
    fn misuse(&self, why: String) -> StoreError {
        StoreError::Database(sqlx::Error::Protocol(format!("statement {:?}: {why}", self.sql)))
    }

    /// The `sqlx` query with the parameters bound.
    fn any(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments<'_>> {
        let mut query = sqlx::query(&self.sql);
        for value in &self.args {
            query = match value {
                Value::Int(value) => query.bind(*value),
                Value::Text(value) => query.bind(value.as_str()),
                Value::Blob(value) => query.bind(value.as_slice()),
                Value::Null(Kind::Int) => query.bind(None::<i64>),
                Value::Null(Kind::Text) => query.bind(None::<String>),
                Value::Null(Kind::Blob) => query.bind(None::<Vec<u8>>),
            };
        }
        query
    }
}

/// Runs `work`, which may take a while, telling a multi-threaded runtime first, so that its other
/// tasks are run by another thread meanwhile (on a single-threaded runtime there is none: it runs).
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match multi_threaded_runtime() {
        Some(_) => tokio::task::block_in_place(work),
        None => work(),
    }
}

/// The runtime this is called on, when it is a multi-threaded one (where `block_in_place` may be
/// called).
pub(crate) fn multi_threaded_runtime() -> Option<tokio::runtime::Handle> {
    tokio::runtime::Handle::try_current()
        .ok()
        .filter(|runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// A row read from either back end.
pub(crate) enum Row {
    Sqlite(Vec<Value>),
    Any(AnyRow),
}

fn native_row(row: &rusqlite::Row<'_>, columns: usize) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(columns);
    for index in 0..columns {
        values.push(match row.get_ref(index)? {
            ValueRef::Null => Value::Null(Kind::Int),
            ValueRef::Integer(value) => Value::Int(value),
            ValueRef::Text(text) => Value::Text(
                String::from_utf8(text.to_vec()).map_err(|_| column_error(index, "text that is not UTF-8"))?,
            ),
            ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec()),
            ValueRef::Real(_) => return Err(column_error(index, "a floating-point number")),
        });
    }
    Ok(Row::Sqlite(values))
}

fn column_error(index: usize, what: &str) -> StoreError {
    StoreError::Database(sqlx::Error::ColumnDecode {
        index: index.to_string(),
        source: format!("unexpected {what}").into(),
    })
}

/// A column's Rust type.
pub(crate) trait Column: Sized {
    /// From a native SQLite value.
    fn from_value(value: &Value) -> Option<Self>;
    /// From a `sqlx` row.
    fn from_any(row: &AnyRow, index: usize) -> Result<Self, sqlx::Error>;
}

macro_rules! any_column {
    ($type:ty) => {
        fn from_any(row: &AnyRow, index: usize) -> Result<Self, sqlx::Error> {
            row.try_get::<$type, _>(index)
        }
    };
}

impl Column for i64 {
    fn from_value(value: &Value) -> Option<i64> {
        match value {
            Value::Int(value) => Some(*value),
            _ => None,
        }
    }
    any_column!(i64);
}

impl Column for String {
    fn from_value(value: &Value) -> Option<String> {
        match value {
            Value::Text(value) => Some(value.clone()),
            _ => None,
        }
    }
    any_column!(String);
}

impl Column for Vec<u8> {
    fn from_value(value: &Value) -> Option<Vec<u8>> {
        match value {
            Value::Blob(value) => Some(value.clone()),
            // SQLite keeps what it was given; an empty blob may come back as text.
            Value::Text(value) => Some(value.as_bytes().to_vec()),
            _ => None,
        }
    }
    any_column!(Vec<u8>);
}

impl<T: Column> Column for Option<T>
where
    Option<T>: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    fn from_value(value: &Value) -> Option<Option<T>> {
        match value {
            Value::Null(_) => Some(None),
            value => T::from_value(value).map(Some),
        }
    }
    any_column!(Option<T>);
}

/// Reads column `index` of `row`.
pub(crate) fn column<T: Column>(row: &Row, index: usize) -> Result<T, StoreError> {
    match row {
        Row::Sqlite(values) => {
            let value = values
                .get(index)
                .ok_or(StoreError::Database(sqlx::Error::ColumnIndexOutOfBounds { index, len: values.len() }))?;
            T::from_value(value).ok_or_else(|| column_error(index, &format!("{value:?}")))
        }
        Row::Any(row) => Ok(T::from_any(row, index)?),
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(error)
    }
}

#[cfg(test)]
mod tests {
    use super::{column, query, Db};

    fn connection() -> rusqlite::Connection {
        let connection = rusqlite::Connection::open_in_memory().expect("SQLite in memory");
        connection.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, n BIGINT, b BLOB)").expect("a table");
        connection
    }

    #[tokio::test]
    async fn numbered_parameters_bind_by_number_repeated_or_out_of_order() {
        let mut connection = connection();
        let db = &mut Db::Sqlite(&mut connection);
        let sql = "INSERT INTO t (n, k, b) VALUES ($2, $1, $3)";
        let inserted = query(sql).bind("a").bind(7_i64).bind(vec![1_u8, 2]).execute(db).await.expect("inserted");
        assert_eq!(inserted, 1);
        let row = query("SELECT k, n, b FROM t WHERE k = $1 AND n = $2 AND $2 > 0")
            .bind("a")
            .bind(7_i64)
            .fetch_one(db)
            .await
            .expect("read back");
        let read: (String, i64, Vec<u8>) =
            (column(&row, 0).expect("k"), column(&row, 1).expect("n"), column(&row, 2).expect("b"));
        assert_eq!(read, ("a".to_owned(), 7, vec![1, 2]));
    }

    #[tokio::test]
    async fn a_value_missing_or_left_over_is_refused_not_run() {
        let mut connection = connection();
        let db = &mut Db::Sqlite(&mut connection);
        let missing = query("INSERT INTO t (k, n) VALUES ($1, $2)").bind("a").execute(db).await;
        assert!(missing.is_err(), "a parameter without a value");
        let extra = query("INSERT INTO t (k) VALUES ($1)").bind("a").bind(1_i64).execute(db).await;
        assert!(extra.is_err(), "a value without a parameter");
        let skipped = query("INSERT INTO t (k, n) VALUES ($1, $3)").bind("a").bind(1_i64).bind(2_i64).execute(db).await;
        assert!(skipped.is_err(), "a value bound to no parameter");
        let rows = query("SELECT COUNT(*) FROM t").fetch_one(db).await.expect("counted");
        assert_eq!(column::<i64>(&rows, 0).expect("a count"), 0, "nothing ran");
    }

    #[tokio::test]
    async fn the_count_of_changed_rows_is_the_statement_s_own() {
        let mut connection = connection();
        let db = &mut Db::Sqlite(&mut connection);
        let upsert = "INSERT INTO t (k, n) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING";
        assert_eq!(query(upsert).bind("a").bind(1_i64).execute(db).await.expect("ran"), 1);
        assert_eq!(query(upsert).bind("a").bind(2_i64).execute(db).await.expect("ran"), 0, "nothing inserted");
        assert_eq!(query("UPDATE t SET n = 5 WHERE k = $1").bind("a").execute(db).await.expect("ran"), 1);
        assert_eq!(query("SELECT n FROM t").execute(db).await.expect("ran"), 0, "a read changes nothing");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_report_s_long_read_leaves_the_runtime_s_other_tasks_running() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let ticks = std::sync::Arc::new(AtomicU64::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let long = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) \
                    SELECT COUNT(*) FROM c";
        // On the runtime's one worker, beside the timer task (the test's body runs elsewhere).
        let reading = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                let mut connection = connection();
                let before = ticks.load(Ordering::SeqCst);
                let started = std::time::Instant::now();
                let rows = query(long).fetch_one(&mut Db::SqliteReport(&mut connection)).await.expect("counted");
                (rows, ticks.load(Ordering::SeqCst) - before, started.elapsed())
            })
        };
        let (rows, ticked, took) = reading.await.expect("read");
        ticker.abort();
        assert_eq!(column::<i64>(&rows, 0).expect("a count"), 3_000_000);
        // The runtime's one worker ran the read: its timer task went on only if another thread
        // took the worker's other tasks meanwhile.
        assert!(took.as_millis() < 20 || ticked >= 3, "{ticked} ticks in {took:?} of reading");
    }

    #[tokio::test]
    async fn nulls_read_as_none_and_floats_are_refused() {
        let mut connection = connection();
        let db = &mut Db::Sqlite(&mut connection);
        query("INSERT INTO t (k, n) VALUES ($1, $2)").bind("a").bind(None::<i64>).execute(db).await.expect("inserted");
        let row = query("SELECT n, b, 1.5 FROM t").fetch_one(db).await;
        assert!(row.is_err(), "a floating-point column is refused");
        let row = query("SELECT n, b FROM t").fetch_one(db).await.expect("read");
        assert_eq!(column::<Option<i64>>(&row, 0).expect("n"), None);
        assert_eq!(column::<Option<Vec<u8>>>(&row, 1).expect("b"), None);
        assert!(column::<i64>(&row, 0).is_err(), "a NULL is not a number");
    }
}
