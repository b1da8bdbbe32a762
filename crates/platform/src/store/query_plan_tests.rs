//! The reads a rider's request makes find their rows through an index, on SQLite's own query
//! plans: a scan of every load or order would make a card's history slower with every top-up
//! of every card (it once did, an N+1 of scans).

use super::loads::{loads_of_order_sql, loads_on_card_sql};
use super::orders::orders_of_card_sql;
use super::sql::query;
use super::Store;

/// SQLite's plan of `sql`, one step a line.
async fn plan(store: &Store, sql: &str, parameters: usize) -> String {
    let mut explain = query(format!("EXPLAIN QUERY PLAN {sql}"));
    for n in 0..parameters {
        explain = explain.bind(n as i64);
    }
    let rows = explain.fetch_all(&mut store.reader().await.expect("a reader").db()).await.expect("explained");
    rows.iter().map(|row| super::column::<String>(row, 3).expect("a step")).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn a_cards_history_and_an_orders_loads_are_index_searches() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
    for (what, sql, parameters) in [
        ("a card's loads", loads_on_card_sql(), 2),
        ("a card's orders", orders_of_card_sql(), 2),
        ("an order's loads", loads_of_order_sql(), 1),
    ] {
        let plan = plan(&store, &sql, parameters).await;
        assert!(!plan.contains("SCAN"), "{what}: {plan}");
        for table in ["payment_orders", "ota_loads"].iter().filter(|t| sql.contains(*t)) {
            assert!(
                plan.contains(&format!("SEARCH {table} USING")),
                "{what}: {table} not searched by an index: {plan}"
            );
        }
    }
    store.close().await;
}
