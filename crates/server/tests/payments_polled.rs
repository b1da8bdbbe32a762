//! The running service's payment rounds (`yitong_server::reconciler`), with no phone doing
//! anything: a top-up paid at the provider whose notification never came is found paid once the
//! grace has passed (not before); one never paid is closed at the provider once expired, so that
//! it can no longer be paid; the rounds stop when asked. The ledger balances after each.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::{issue, Service};
use yitong_platform::payments::{MerchantOrderId, OrderState, PayOutcome, NOTIFICATION_GRACE_MS, ORDER_EXPIRY_MS};
use yitong_platform::store::Store;
use yitong_profile::DateTime;
use yitong_server::reconciler::Reconciler;
use yitong_server::{AppState, Clock, KeySource};

/// A clock the test moves on.
#[derive(Debug)]
struct SteppingClock(Mutex<DateTime>);

impl Clock for SteppingClock {
    fn now(&self) -> DateTime {
        *self.0.lock().expect("the clock")
    }
}

impl SteppingClock {
    fn advance_ms(&self, ms: i64) {
        let mut now = self.0.lock().expect("the clock");
        *now = now.plus_seconds(ms / 1_000 + 1).expect("a valid time");
    }
}

/// The service on a clock the test moves, phone-A registered with a Beijing card, and top-up
/// `TOP-0001` of 20 yuan opened (not paid).
async fn opened() -> (Service, Arc<SteppingClock>, MerchantOrderId) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open_data_dir(dir.path()).await.expect("SQLite opens");
    let clock = Arc::new(SteppingClock(Mutex::new(DateTime::new(2026, 11, 25, 18, 30, 0).expect("valid"))));
    let keys = KeySource::Development(dir.path().to_owned());
    let state = AppState::builtin(store, clock.clone(), keys).expect("the built-in data loads");
    let s = Service::with_state(state, dir).await;
    let issued = issue(&s, "FEE-0001").await;
    let serial = issued["card"]["serial"].as_str().expect("serial");
    let body = json!({"card": serial, "amount_fen": 2_000, "order_id": "TOP-0001"});
    let (status, opened) = s.send(Method::POST, "/v1/topups", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    (s, clock, MerchantOrderId::parse("TOP-0001").expect("an order ID"))
}

async fn state_of(s: &Service, id: &MerchantOrderId) -> OrderState {
    s.state.store().order(id).await.expect("the store reads").expect("the order").state
}

/// Waits (at most ten seconds) until order `id` is in `state`.
async fn until(s: &Service, id: &MerchantOrderId, state: OrderState) {
    for _ in 0..1_000 {
        if state_of(s, id).await == state {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("order {id} is {:?}, not {state:?}, after ten seconds", state_of(s, id).await);
}

#[tokio::test]
async fn a_payment_whose_notification_never_came_is_found_paid_after_the_grace() {
    let (s, clock, id) = opened().await;
    // The rider pays in the provider's app; its notification is never delivered.
    let paid = s.state.services().provider.pay(&id, s.state.now_ms());
    assert_eq!(paid, PayOutcome::Paid { notifications: 1 });
    let rounds = Reconciler::start(s.state.clone(), Duration::from_millis(5));

    // Within the grace the provider is not asked: the notification may still come.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(state_of(&s, &id).await, OrderState::Created);

    clock.advance_ms(NOTIFICATION_GRACE_MS);
    until(&s, &id, OrderState::Paid).await;
    rounds.stop().await;
    s.assert_balanced().await;
}

#[tokio::test]
async fn an_order_never_paid_is_closed_at_the_provider_once_expired() {
    let (s, clock, id) = opened().await;
    let rounds = Reconciler::start(s.state.clone(), Duration::from_millis(5));
    clock.advance_ms(NOTIFICATION_GRACE_MS);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(state_of(&s, &id).await, OrderState::Created, "late but not expired: still payable");

    clock.advance_ms(ORDER_EXPIRY_MS);
    until(&s, &id, OrderState::Closed).await;
    rounds.stop().await;
    // Closed at the provider first: the rider can no longer pay it.
    assert_eq!(s.state.services().provider.pay(&id, s.state.now_ms()), PayOutcome::NotPayable);
    s.assert_balanced().await;
}

#[tokio::test]
async fn stopped_rounds_leave_the_next_late_order_alone() {
    let (s, clock, id) = opened().await;
    assert!(matches!(s.state.services().provider.pay(&id, s.state.now_ms()), PayOutcome::Paid { .. }));
    clock.advance_ms(NOTIFICATION_GRACE_MS);
    let rounds = Reconciler::start(s.state.clone(), Duration::from_millis(5));
    until(&s, &id, OrderState::Paid).await;
    rounds.stop().await;

    // A second top-up, paid and late: no round runs any more.
    let serial = s.state.store().order(&id).await.expect("read").expect("the order").card_id.expect("a card");
    let body = json!({"card": serial.as_str(), "amount_fen": 1_000, "order_id": "TOP-0002"});
    let (status, opened) = s.send(Method::POST, "/v1/topups", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let second = MerchantOrderId::parse("TOP-0002").expect("an order ID");
    assert!(matches!(s.state.services().provider.pay(&second, s.state.now_ms()), PayOutcome::Paid { .. }));
    clock.advance_ms(NOTIFICATION_GRACE_MS);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(state_of(&s, &second).await, OrderState::Created, "no round after the stop");
}

#[tokio::test]
async fn the_service_runs_the_rounds_and_stops_them_with_itself() {
    let (s, clock, id) = opened().await;
    assert!(matches!(s.state.services().provider.pay(&id, s.state.now_ms()), PayOutcome::Paid { .. }));
    clock.advance_ms(NOTIFICATION_GRACE_MS);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listens");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(yitong_server::serve_with_rounds(
        listener,
        s.state.clone(),
        async move {
            let _ = stopped.await;
        },
        Duration::from_millis(5),
    ));
    until(&s, &id, OrderState::Paid).await;
    stop.send(()).expect("the service listens for its stop");
    tokio::time::timeout(Duration::from_secs(30), serving)
        .await
        .expect("the service and its rounds stop")
        .expect("the task")
        .expect("served");
    s.assert_balanced().await;
}
