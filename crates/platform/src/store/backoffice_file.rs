//! On SQLite, the back office's tables live in a database file of their own, beside the store's,
//! with larger pages.
//!
//! The two halves write differently. A top-up changes a few rows of many tables, and SQLite writes
//! every page a commit changed whole into the WAL: small pages write less. A clearing group
//! rewrites the shadow rows of thousands of cards spread over the whole table: there a commit costs
//! by the pages it writes more than by their bytes, and large pages write fewer. One file has one
//! page size. Measured (docs/platform.md, "Benchmark: top-ups over HTTP"): 16 KiB pages made
//! clearing a fifth faster and top-ups a third slower than the platform's 2 KiB.
//!
//! Each file has its own writer, group commit and checkpoints (`writer`, `durable`,
//! `checkpoints`), and the writers open their file alone: a write of one never locks or syncs the
//! other. Every transaction that writes the back office's tables writes only those (the
//! clearing's ingest, hotlist changes, the old rows' move: [`Store::begin_backoffice_write`]), so
//! each commits in one file, as atomically as before; the store's writer cannot even name them.
//! The reading connections attach this file as the schema [`BACKOFFICE_SCHEMA`]: the statements
//! do not change (an unqualified table name is found in whichever file holds it), and a read may
//! span both (the platform's feed, the ledger's agreement with the clearing).
//!
//! The migrations create the tables in the main file, as they always did; [`split`] then moves
//! them, at every opening that finds them there: a new database's empty tables, an older
//! database's rows. In two commits — copied (replacing any copy a move cut short left, since the
//! main file's rows are the live ones while it holds them), then dropped from the main file —
//! because SQLite in WAL mode commits the files of one transaction one after
//! the other, the main one first: a crash between the two commits of a single transaction could
//! lose the rows, one between these two leaves them in both files, and the next opening goes on.
//! A later change to one of these tables cannot be a plain SQL migration on SQLite: a fresh
//! database has them in the main file when the migrations run, an older one in this file, and a
//! migration's transaction writing this file would commit after its record in the main file.
//! Make it a step of its own here, after [`split`], on the back office's writer.
//!
//! [`Store::begin_backoffice_write`]: super::Store::begin_backoffice_write

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::StoreError;

/// The schema name of the back office's file on every connection.
pub const BACKOFFICE_SCHEMA: &str = "backoffice";
/// The back office file's page size, for a new file (an existing one keeps its own).
pub const SQLITE_BACKOFFICE_PAGE_BYTES: u32 = 16_384;
/// The back office's tables, a table referenced by another's foreign key before it.
const BACKOFFICE_TABLES: [&str; 4] = ["hotlist_changes", "clearing_batches", "clearing_records", "card_shadows"];

/// The back office's file beside the database file `main`: `platform.sqlite` →
/// `platform-backoffice.sqlite`.
pub fn backoffice_path(main: &Path) -> PathBuf {
    let stem = main.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match main.extension() {
        Some(extension) => format!("{stem}-{BACKOFFICE_SCHEMA}.{}", extension.to_string_lossy()),
        None => format!("{stem}-{BACKOFFICE_SCHEMA}"),
    };
    main.with_file_name(name)
}

/// The statements attaching the back office's file of the database file `main`, and setting what
/// a new file needs (its page size, WAL).
pub(crate) fn attach_sql(main: &Path) -> Result<String, StoreError> {
    let path = backoffice_path(main);
    let path = path.to_str().ok_or_else(|| StoreError::BadUrl(path.display().to_string()))?;
    let quoted = path.replace('\'', "''");
    Ok(format!(
        "ATTACH DATABASE '{quoted}' AS {BACKOFFICE_SCHEMA}; \
         PRAGMA {BACKOFFICE_SCHEMA}.page_size = {SQLITE_BACKOFFICE_PAGE_BYTES}; \
         PRAGMA {BACKOFFICE_SCHEMA}.journal_mode = WAL;"
    ))
}

/// Attaches the back office's file to the migrations' `connection` (the main file `main`),
/// making it if it is not there. Two processes opening a new database at once both switch the new
/// file to WAL, which takes SQLite's exclusive lock without waiting for it: the one that finds it
/// taken detaches and tries again, for as long as SQLite's busy handler would wait.
pub(crate) async fn attach(connection: &mut sqlx::SqliteConnection, main: &Path) -> Result<(), StoreError> {
    let sql = attach_sql(main)?;
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_millis(u64::from(super::SQLITE_BUSY_TIMEOUT_MS));
    loop {
        match sqlx::raw_sql(&sql).execute(&mut *connection).await {
            Ok(_) => return Ok(()),
            Err(error) if is_busy(&error) && std::time::Instant::now() < deadline => {
                let _ = sqlx::raw_sql(&format!("DETACH DATABASE {BACKOFFICE_SCHEMA}")).execute(&mut *connection).await;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// SQLite's `SQLITE_BUSY`, or one of its extended codes.
fn is_busy(error: &sqlx::Error) -> bool {
    let code = error.as_database_error().and_then(|error| error.code()).and_then(|code| code.parse::<i32>().ok());
    code.is_some_and(|code| code & 0xff == 5)
}

/// Moves the back office's tables out of the main file, if they are there (see the module
/// documentation), on one of the store's native connections before the store is used; then
/// checks that the back office's file holds them all. Another process opening the same database
/// at once waits for the write lock and finds the work done; an opening with nothing to move
/// takes no lock.
pub(crate) fn split(connection: &Connection) -> Result<(), StoreError> {
    if !tables_in(connection, "main")?.is_empty() {
        // One: the tables made in the back office's file (from their own definitions) and
        // filled with the main file's rows. Only that file is written. While the main file holds
        // a table, its rows are the ones in use: a copy left by a move cut short is replaced.
        let moved = immediate(connection, || {
            let in_main = tables_in(connection, "main")?;
            let in_backoffice = tables_in(connection, BACKOFFICE_SCHEMA)?;
            for &table in &in_main {
                if !in_backoffice.contains(&table) {
                    for sql in definitions(connection, table)? {
                        connection.execute_batch(&in_schema(&sql).ok_or_else(|| corrupt(table, &sql))?)?;
                    }
                }
            }
            // Emptied referencing tables first, filled referenced tables first.
            for table in in_main.iter().rev() {
                connection.execute_batch(&format!("DELETE FROM {BACKOFFICE_SCHEMA}.{table};"))?;
            }
            for table in &in_main {
                connection
                    .execute_batch(&format!("INSERT INTO {BACKOFFICE_SCHEMA}.{table} SELECT * FROM main.{table};"))?;
            }
            Ok(in_main)
        })?;
        // Two: dropped from the main file (a referencing table first).
        immediate(connection, || {
            for table in moved.iter().rev() {
                connection.execute_batch(&format!("DROP TABLE IF EXISTS main.{table};"))?;
            }
            Ok(())
        })?;
    }
    let found = tables_in(connection, BACKOFFICE_SCHEMA)?;
    let missing: Vec<&str> = BACKOFFICE_TABLES.into_iter().filter(|table| !found.contains(table)).collect();
    if !missing.is_empty() {
        let path: String = connection
            .query_row("SELECT file FROM pragma_database_list WHERE name = ?1", [BACKOFFICE_SCHEMA], |row| row.get(0))
            .unwrap_or_default();
        return Err(StoreError::Corrupt {
            table: "sqlite_schema",
            key: path,
            why: format!(
                "the back office's file lacks {} (and the main file does not hold them): was it lost, or moved \
                 apart from the main file?",
                missing.join(", ")
            ),
        });
    }
    Ok(())
}

/// `work` in a transaction that takes the write lock at once; rolled back if it fails.
fn immediate<T>(connection: &Connection, work: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    connection.execute_batch("BEGIN IMMEDIATE;")?;
    match work() {
        Ok(done) => {
            connection.execute_batch("COMMIT;")?;
            Ok(done)
        }
        Err(error) => {
            let _ = connection.execute_batch("ROLLBACK;");
            Err(error)
        }
    }
}

/// Which of the back office's tables `schema` holds, in [`BACKOFFICE_TABLES`]' order.
fn tables_in(connection: &Connection, schema: &str) -> Result<Vec<&'static str>, StoreError> {
    let mut statement = connection.prepare(&format!("SELECT name FROM {schema}.sqlite_schema WHERE type = 'table'"))?;
    let names: Vec<String> = statement.query_map([], |row| row.get(0))?.collect::<Result<_, _>>()?;
    Ok(BACKOFFICE_TABLES.into_iter().filter(|table| names.iter().any(|name| name == table)).collect())
}

/// The statements that made `table` in the main file: the table's, then its indexes' (not those
/// SQLite makes itself for its keys).
fn definitions(connection: &Connection, table: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT sql FROM main.sqlite_schema WHERE tbl_name = ?1 AND sql IS NOT NULL \
         ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, name",
    )?;
    let rows = statement.query_map([table], |row| row.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `CREATE TABLE name …` or `CREATE [UNIQUE] INDEX name …` made in the back office's schema.
fn in_schema(sql: &str) -> Option<String> {
    ["CREATE TABLE ", "CREATE INDEX ", "CREATE UNIQUE INDEX "]
        .iter()
        .find_map(|head| sql.strip_prefix(head).map(|rest| format!("{head}{BACKOFFICE_SCHEMA}.{rest}")))
}

fn corrupt(table: &str, sql: &str) -> StoreError {
    StoreError::Corrupt {
        table: "sqlite_schema",
        key: table.to_owned(),
        why: format!("a definition not understood: {sql}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_named_after_the_main_one() {
        assert_eq!(
            backoffice_path(Path::new("/var/lib/yitong/platform.sqlite")),
            Path::new("/var/lib/yitong/platform-backoffice.sqlite")
        );
        assert_eq!(backoffice_path(Path::new("/tmp/db")), Path::new("/tmp/db-backoffice"));
    }

    #[test]
    fn definitions_are_made_in_the_back_offices_schema() {
        assert_eq!(
            in_schema("CREATE TABLE \"card_shadows\" (a)").as_deref(),
            Some("CREATE TABLE backoffice.\"card_shadows\" (a)")
        );
        assert_eq!(
            in_schema("CREATE INDEX clearing_batches_last_at ON clearing_batches (last_at)").as_deref(),
            Some("CREATE INDEX backoffice.clearing_batches_last_at ON clearing_batches (last_at)")
        );
        assert_eq!(in_schema("CREATE VIEW v AS SELECT 1"), None);
    }
}
