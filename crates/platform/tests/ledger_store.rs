//! The ledger in the database: idempotent postings, balances, and a check that finds a ledger
//! changed behind the store's back. Each scenario runs on SQLite and on PostgreSQL.

mod support;

use support::TestDb;
use yitong_platform::ledger::{Account, CardId, Fen, LedgerError, Line, Posting, PostingId, Side};
use yitong_platform::store::{Backend, Durability, PostOutcome, Store, StoreError, StoreOptions};

fn fen(amount: i64) -> Fen {
    Fen::new(amount).expect("not negative")
}

fn transfer(id: &str, debit: Account, credit: Account, amount: i64) -> Posting {
    Posting::transfer(PostingId::parse(id).expect("valid"), "test", 0, debit, credit, fen(amount)).expect("balanced")
}

fn clearing() -> Account {
    Account::provider_clearing("simulated").expect("valid")
}

async fn postings_are_idempotent(db: &TestDb) {
    let store = &db.store;
    let paid = transfer("order/T1/paid", clearing(), Account::PaymentsUnapplied, 5_000);
    assert_eq!(store.post(&paid).await.expect("posted"), PostOutcome::Posted);
    assert_eq!(store.post(&paid).await.expect("posted"), PostOutcome::AlreadyPosted);
    // The same ID for other lines is refused and changes nothing.
    let other = transfer("order/T1/paid", clearing(), Account::PaymentsUnapplied, 5_001);
    match store.post(&other).await {
        Err(StoreError::Ledger(LedgerError::PostingIdReused(id))) => assert_eq!(id, "order/T1/paid"),
        other => panic!("expected PostingIdReused, got {other:?}"),
    }
    assert_eq!(store.balance(&clearing()).await.expect("balance"), 5_000);
    assert_eq!(store.balance(&Account::PaymentsUnapplied).await.expect("balance"), -5_000);
    assert_eq!(store.balance(&Account::FeeRevenue).await.expect("balance"), 0);

    // A three-line posting: a payment split between a fee and a load.
    let card = Account::CardLiability(CardId::parse("10000000000000123456").expect("digits"));
    let split = Posting::new(
        PostingId::parse("order/T1/split").expect("valid"),
        "fee and load",
        0,
        vec![
            Line { account: Account::PaymentsUnapplied, side: Side::Debit, amount: fen(5_000) },
            Line { account: Account::FeeRevenue, side: Side::Credit, amount: fen(2_900) },
            Line { account: card.clone(), side: Side::Credit, amount: fen(2_100) },
        ],
    )
    .expect("balanced");
    assert_eq!(store.post(&split).await.expect("posted"), PostOutcome::Posted);
    assert_eq!(store.balance(&card).await.expect("balance"), -2_100);

    let check = store.check_ledger().await.expect("checked");
    assert_eq!((check.postings, check.lines, check.debit_fen, check.credit_fen), (2, 5, 10_000, 10_000));
    assert!(check.unbalanced_postings.is_empty());
    // No order backs this money and the service never saw the card: the check says so.
    assert!(!check.is_ok());
    let accounts: Vec<&str> = check.order_mismatches.iter().map(|m| m.account.as_str()).collect();
    assert_eq!(accounts, ["fee_revenue", "provider_clearing/simulated"]);
    assert_eq!(check.card_mismatches.len(), 1);
    assert_eq!((check.card_mismatches[0].expected_fen, check.card_mismatches[0].ledger_fen), (0, 2_100));
}

async fn the_check_finds_a_tampered_ledger(db: &TestDb) {
    let store = &db.store;
    let check = store.check_ledger().await.expect("checked");
    assert!(check.is_ok(), "an empty ledger balances: {check}");
    db.execute(
        "INSERT INTO payment_orders (merchant_order_id, kind, provider, card_id, amount_fen, state, \
         provider_transaction_id, created_at_ms, updated_at_ms, version) \
         VALUES ('T0000001', 'top_up', 'simulated', '42', 700, 'paid', 'SIM1', 0, 0, 1)",
    )
    .await;
    store.post(&transfer("order/T0000001/paid", clearing(), Account::PaymentsUnapplied, 700)).await.expect("posted");
    let check = store.check_ledger().await.expect("checked");
    assert!(check.is_ok(), "{check}");

    // One line altered behind the store's back: the posting and the ledger no longer balance.
    db.execute(
        "UPDATE ledger_lines SET amount_fen = 710 WHERE posting_id = 'order/T0000001/paid' AND amount_fen = 700",
    )
    .await;
    let check = store.check_ledger().await.expect("checked");
    assert!(!check.is_ok());
    assert_eq!(check.unbalanced_postings, ["order/T0000001/paid"]);
    assert_eq!((check.debit_fen, check.credit_fen), (710, 700));
    let text = check.to_string();
    assert!(text.contains("NOT BALANCED") && text.contains("order/T0000001/paid"), "{text}");
}

async fn migrations_run_once_and_bad_urls_are_named(db: &TestDb) {
    // Opening the same database again finds the migrations applied and the data kept.
    store_one_posting(&db.store).await;
    let again = db.open_again().await;
    assert_eq!(again.balance(&clearing()).await.expect("balance"), 1);
    again.close().await;
    // A database a newer binary migrated (a migration this one does not know) is refused, not
    // written in a form the newer one may not read: how a binary from before migration 12 (the
    // shadows' second packed form) meets a database this one opened.
    let checksum = match db.store.backend() {
        Backend::Sqlite => "X'00'",
        Backend::Postgres => "'\\x00'::bytea",
    };
    db.execute(&format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer binary', TRUE, {checksum}, 0)"
    ))
    .await;
    match db.try_open_again().await {
        Err(StoreError::Migrate(error)) => assert!(error.to_string().contains("9999"), "{error}"),
        other => panic!("expected a migration error, got {:?}", other.map(|_| "a store")),
    }
    db.execute("DELETE FROM _sqlx_migrations WHERE version = 9999").await;
    for url in ["mysql://localhost/db", "sqlite::memory:", "db.sqlite"] {
        match Store::open(url).await {
            Err(error @ StoreError::BadUrl(_)) => assert!(error.to_string().contains(url), "{error}"),
            other => panic!("{url}: expected BadUrl, got {other:?}"),
        }
    }
}

async fn store_one_posting(store: &Store) {
    store.post(&transfer("one", clearing(), Account::PaymentsUnapplied, 1)).await.expect("posted");
}

on_both_backends! {
    idempotent_postings => postings_are_idempotent,
    tampered_ledger => the_check_finds_a_tampered_ledger,
    migrations => migrations_run_once_and_bad_urls_are_named,
}

#[tokio::test]
async fn sqlite_is_a_wal_file_in_the_data_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Characters a URL would read as escapes, query or fragment.
    let data_dir = dir.path().join("rider data #1 ?x=%41");
    let store = Store::open_data_dir(&data_dir).await.expect("opens, creating the directory");
    assert_eq!(store.backend(), Backend::Sqlite);
    store_one_posting(&store).await;
    store.close().await;
    let file = data_dir.join(yitong_platform::store::SQLITE_FILE_NAME);
    // Read the journal mode with an independent SQLite connection.
    use sqlx::{Connection, Row};
    assert!(file.is_file(), "{} holds the database", file.display());
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&file);
    let mut connection = sqlx::SqliteConnection::connect_with(&options).await.expect("connects");
    let row = sqlx::query("PRAGMA journal_mode").fetch_one(&mut connection).await.expect("pragma");
    assert_eq!(row.get::<String, _>(0), "wal");

    // The faster durability opens the same file and keeps what was stored.
    let options = StoreOptions { connections: 2, durability: Durability::Os, ..StoreOptions::default() };
    let store = Store::open_data_dir_with(&data_dir, options).await.expect("opens again");
    store_one_posting(&store).await;
    assert_eq!(store.balance(&clearing()).await.expect("balance"), 1, "the same posting, stored once");
}

/// A file SQLite cannot switch to WAL (here through a VFS without the shared memory WAL needs) is
/// refused at the opening, by name and the mode SQLite left it in.
#[tokio::test]
async fn a_file_sqlite_leaves_outside_wal_is_refused_at_the_opening() {
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("platform.sqlite");
    let url = format!("sqlite:{}?vfs=unix-dotfile", file.display());
    let error = Store::open(&url).await.expect_err("refused");
    let message = error.to_string();
    match error {
        StoreError::NotWal { file: named, mode } => {
            assert_eq!(mode, "delete");
            assert!(named.ends_with("platform.sqlite"), "{named}");
            assert!(message.contains("platform.sqlite") && message.contains("\"delete\""), "{message}");
        }
        other => panic!("expected NotWal, got {other:?}"),
    }
}
