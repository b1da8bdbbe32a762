//! Concurrent writers never double-post: tasks on a multi-threaded runtime, over two
//! independent connection pools on the same database, race on one order, one posting, one order
//! ID, and the reconciliation rounds of two services over the same late orders. On SQLite and on
//! PostgreSQL.

mod support;

use std::sync::Arc;

use support::TestDb;
use yitong_platform::ledger::{Account, CardId, Fen, Posting, PostingId};
use yitong_platform::payments::{
    MerchantOrderId, NewOrder, NotificationOutcome, OrderKind, OrderState, PaymentService, SimulatedProvider,
    SimulationFaults, NOTIFICATION_GRACE_MS,
};
use yitong_platform::store::{PostOutcome, Store};

const T0: i64 = 1_795_000_000_000;
/// Racing tasks per test.
const TASKS: usize = 8;

type Service = PaymentService<Arc<SimulatedProvider>>;

fn fen(amount: i64) -> Fen {
    Fen::new(amount).expect("not negative")
}

fn id(text: &str) -> MerchantOrderId {
    MerchantOrderId::parse(text).expect("valid")
}

fn card() -> CardId {
    CardId::parse("10000000000000123456").expect("digits")
}

fn top_up(order: &str, amount: i64) -> NewOrder {
    NewOrder {
        merchant_order_id: id(order),
        kind: OrderKind::TopUp,
        card_id: Some(card()),
        amount: fen(amount),
        description: "top-up".to_owned(),
    }
}

/// Two services on two pools of the same database, sharing one provider.
async fn two_services(db: &TestDb, provider: &Arc<SimulatedProvider>) -> [Arc<Service>; 2] {
    let second: Store = db.open_again().await;
    [
        Arc::new(PaymentService::new(db.store.clone(), Arc::clone(provider))),
        Arc::new(PaymentService::new(second, Arc::clone(provider))),
    ]
}

async fn assert_balanced(store: &Store) {
    let check = store.check_ledger().await.expect("checked");
    assert!(check.is_ok(), "{check}");
}

async fn notifications_and_polls_race_on_one_order(db: &TestDb) {
    let provider = Arc::new(SimulatedProvider::new(1, SimulationFaults::NONE));
    let services = two_services(db, &provider).await;
    services[0].open_order(top_up("C00000001", 5_000), T0).await.expect("opened");
    provider.pay(&id("C00000001"), T0 + 1);
    let notification = provider.poll_notification().expect("a notification");
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let service = Arc::clone(&services[n % 2]);
        let notification = notification.clone();
        tasks.push(tokio::spawn(async move {
            if n % 4 == 3 {
                // A poller that thinks the notification is late.
                let order = service.reconcile(&id("C00000001"), T0 + NOTIFICATION_GRACE_MS + 1).await.expect("polled");
                assert_eq!(order.state, OrderState::Paid);
                false
            } else {
                let outcome = service.handle_notification(&notification, T0 + 2).await.expect("verified");
                matches!(outcome, NotificationOutcome::Paid(_))
            }
        }));
    }
    let mut paid_by_notification = 0;
    for task in tasks {
        paid_by_notification += usize::from(task.await.expect("no panic"));
    }
    assert!(paid_by_notification <= 1);
    let history = services[1].history(&id("C00000001")).await.expect("history");
    assert_eq!(history, [OrderState::Paid], "paid exactly once");
    let check = db.store.check_ledger().await.expect("checked");
    assert_eq!(check.postings, 1);
    assert!(check.is_ok(), "{check}");
    assert_eq!(db.store.balance(&Account::PaymentsUnapplied).await.expect("balance"), -5_000);
    services[1].store().close().await;
}

async fn loads_race_on_one_order(db: &TestDb) {
    let provider = Arc::new(SimulatedProvider::new(2, SimulationFaults::NONE));
    let services = two_services(db, &provider).await;
    let first = &services[0];
    first.open_order(top_up("C00000002", 3_000), T0).await.expect("opened");
    provider.pay(&id("C00000002"), T0 + 1);
    let notification = provider.poll_notification().expect("a notification");
    first.handle_notification(&notification, T0 + 2).await.expect("paid");
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let service = Arc::clone(&services[n % 2]);
        tasks.push(tokio::spawn(async move {
            service.start_delivery(&id("C00000002"), T0 + 3).await.expect("started");
            service.confirm_delivery(&id("C00000002"), Some(fen(3_000)), T0 + 4).await.expect("loaded")
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("no panic").state, OrderState::Loaded);
    }
    assert_eq!(
        first.history(&id("C00000002")).await.expect("history"),
        [OrderState::Paid, OrderState::Loading, OrderState::Loaded]
    );
    assert_eq!(db.store.balance(&Account::CardLiability(card())).await.expect("balance"), -3_000, "loaded once");
    assert_eq!(db.store.check_ledger().await.expect("checked").postings, 2);
    assert_balanced(&db.store).await;
    services[1].store().close().await;
}

async fn one_posting_id_races(db: &TestDb) {
    let stores = [db.store.clone(), db.open_again().await];
    let posting = Posting::transfer(
        PostingId::parse("race/1").expect("valid"),
        "race",
        T0,
        Account::provider_clearing("simulated").expect("valid"),
        Account::PaymentsUnapplied,
        fen(700),
    )
    .expect("balanced");
    let mut tasks = Vec::new();
    for n in 0..TASKS * 2 {
        let store = stores[n % 2].clone();
        let posting = posting.clone();
        tasks.push(tokio::spawn(async move { store.post(&posting).await.expect("stored") }));
    }
    let mut posted = 0;
    for task in tasks {
        posted += usize::from(task.await.expect("no panic") == PostOutcome::Posted);
    }
    assert_eq!(posted, 1);
    assert_eq!(db.store.balance(&Account::PaymentsUnapplied).await.expect("balance"), -700);
    stores[1].close().await;
}

async fn one_order_id_races(db: &TestDb) {
    let provider = Arc::new(SimulatedProvider::new(3, SimulationFaults::NONE));
    let services = two_services(db, &provider).await;
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let service = Arc::clone(&services[n % 2]);
        tasks.push(tokio::spawn(
            async move { service.open_order(top_up("C00000003", 1_200), T0).await.expect("opened") },
        ));
    }
    for task in tasks {
        let order = task.await.expect("no panic");
        assert_eq!((order.state, order.version, order.amount), (OrderState::Created, 0, fen(1_200)));
    }
    assert_eq!(
        provider.pay(&id("C00000003"), T0 + 1),
        yitong_platform::payments::PayOutcome::Paid { notifications: 1 }
    );
    services[1].store().close().await;
}

async fn many_orders_at_once(db: &TestDb) {
    const ORDERS_PER_TASK: usize = 10;
    let provider = Arc::new(SimulatedProvider::new(4, SimulationFaults::NONE));
    let services = two_services(db, &provider).await;
    let mut tasks = Vec::new();
    for task in 0..TASKS / 2 {
        let service = Arc::clone(&services[task % 2]);
        let provider = Arc::clone(&provider);
        tasks.push(tokio::spawn(async move {
            for n in 0..ORDERS_PER_TASK {
                let order_id = id(&format!("M{task:02}{n:05}"));
                let new = NewOrder {
                    merchant_order_id: order_id.clone(),
                    kind: OrderKind::TopUp,
                    card_id: Some(CardId::parse(&format!("9{task}{n:03}")).expect("digits")),
                    amount: fen(100),
                    description: String::new(),
                };
                service.open_order(new, T0).await.expect("opened");
                provider.pay(&order_id, T0 + 1);
                // Notifications of all tasks are in one queue: deliver whatever is there.
                while let Some(notification) = provider.poll_notification() {
                    service.handle_notification(&notification, T0 + 2).await.expect("verified");
                }
                let order = service.reconcile(&order_id, T0 + 3).await.expect("polled");
                assert_eq!(order.state, OrderState::Paid);
                service.start_delivery(&order_id, T0 + 4).await.expect("started");
                service.confirm_delivery(&order_id, Some(fen(100)), T0 + 5).await.expect("loaded");
            }
        }));
    }
    for task in tasks {
        task.await.expect("no panic");
    }
    let check = db.store.check_ledger().await.expect("checked");
    assert!(check.is_ok(), "{check}");
    let orders = (TASKS / 2 * ORDERS_PER_TASK) as i64;
    assert_eq!((check.postings as i64, check.debit_fen), (2 * orders, 2 * orders * 100));
    let clearing = Account::provider_clearing("simulated").expect("valid");
    assert_eq!(db.store.balance(&clearing).await.expect("balance"), orders * 100);
    services[1].store().close().await;
}

/// The reconciliation rounds of two services on one database (as two `yitong serve` on one
/// database run them) race over the same late payments and expired orders: each is paid or
/// closed once, one posting each.
async fn reconciliation_rounds_race(db: &TestDb) {
    const LATE: usize = 12;
    let faults = SimulationFaults { lost_notification_per_mille: 1_000, ..SimulationFaults::NONE };
    let provider = Arc::new(SimulatedProvider::new(5, faults));
    let services = two_services(db, &provider).await;
    for n in 0..LATE {
        let order = format!("R{n:07}");
        services[0].open_order(top_up(&order, 100), T0).await.expect("opened");
        // Every other one paid, its notification lost; the rest never paid.
        if n % 2 == 0 {
            assert!(matches!(provider.pay(&id(&order), T0 + 1), yitong_platform::payments::PayOutcome::Paid { .. }));
        }
    }
    let expired = T0 + yitong_platform::payments::ORDER_EXPIRY_MS + 1;
    let mut tasks = Vec::new();
    for n in 0..TASKS {
        let service = Arc::clone(&services[n % 2]);
        tasks.push(tokio::spawn(async move { service.reconcile_waiting(expired, 5).await.expect("a round") }));
    }
    let mut seen_moved = std::collections::BTreeSet::new();
    for task in tasks {
        seen_moved.extend(task.await.expect("no panic").into_iter().map(|order| order.merchant_order_id));
    }
    // A round names the orders it found moved since it listed them, by itself or by the other.
    assert_eq!(seen_moved.len(), LATE);
    for n in 0..LATE {
        let history = services[1].history(&id(&format!("R{n:07}"))).await.expect("history");
        let once = if n % 2 == 0 { OrderState::Paid } else { OrderState::Closed };
        assert_eq!(history, [once], "order {n}");
    }
    let check = db.store.check_ledger().await.expect("checked");
    assert_eq!((check.postings as usize, check.debit_fen), (LATE / 2, (LATE / 2) as i64 * 100));
    assert!(check.is_ok(), "{check}");
    services[1].store().close().await;
}

on_both_backends! {
    notifications_and_polls => notifications_and_polls_race_on_one_order,
    loads => loads_race_on_one_order,
    posting_id => one_posting_id_races,
    order_id => one_order_id_races,
    many_orders => many_orders_at_once,
    reconciliation_rounds => reconciliation_rounds_race,
}
