//! The payment service: orders in the store, driven by the provider's answers and
//! notifications, each transition and its ledger posting in one transaction.

use std::fmt;
use std::future::Future;

use serde::Serialize;

use super::postings::posting_for;
use super::{
    CreateOrder, IllegalTransition, MerchantOrderId, NotificationError, OrderEvent, OrderKind, OrderState,
    PaymentError, PaymentProvider, ProviderStatus, RefundRequest, RefundStatus, SignedNotification,
};
use crate::ledger::{Account, CardId, Fen, LedgerError};
use crate::store::{self, Store, StoreError, WriteTransaction, ORDERS_LISTED_MAX};

/// Calls to the provider for one step before giving up until the next reconciliation.
pub const PROVIDER_ATTEMPTS_MAX: u32 = 3;
/// Compare-and-swap attempts for one transition when other writers keep winning.
pub const TRANSITION_ATTEMPTS_MAX: u32 = 16;
/// A paid notification later than this after the order's last change is late: the order is
/// polled instead.
pub const NOTIFICATION_GRACE_MS: i64 = 30_000;
/// An order unpaid this long after it was opened is closed at the provider and here (WeChat
/// Pay's default is two hours; riders top up in seconds).
pub const ORDER_EXPIRY_MS: i64 = 15 * 60 * 1_000;

/// The kinds of order the provider holds (a transfer's load and a balance refund never were its
/// orders: their own flows settle them).
const PROVIDER_KINDS: [OrderKind; 2] = [OrderKind::TopUp, OrderKind::SignUpFee];

/// A payment order as the service keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    /// Our order ID.
    pub merchant_order_id: MerchantOrderId,
    /// What it pays for.
    pub kind: OrderKind,
    /// The provider's name.
    pub provider: String,
    /// The card loaded (a top-up) or issued (a fee, once known).
    pub card_id: Option<CardId>,
    /// What the rider pays.
    pub amount: Fen,
    /// Where it is.
    pub state: OrderState,
    /// The provider's transaction ID, once paid.
    pub provider_transaction_id: Option<String>,
    /// Opened, Unix milliseconds.
    pub created_at_ms: i64,
    /// Last transition, Unix milliseconds.
    pub updated_at_ms: i64,
    /// Transitions so far.
    pub version: i64,
}

/// What [`PaymentService::open_order`] opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// The caller's idempotent order ID (the phone makes it, so a retried request names the
    /// same order).
    pub merchant_order_id: MerchantOrderId,
    /// What it pays for.
    pub kind: OrderKind,
    /// The card: required for a top-up.
    pub card_id: Option<CardId>,
    /// What the rider pays, more than zero.
    pub amount: Fen,
    /// Shown in the provider's app.
    pub description: String,
}

/// What a verified notification did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// The order is now paid.
    Paid(Order),
    /// It was paid already (a duplicate, or the poll got there first): nothing changed.
    Duplicate(Order),
}

/// Why a payment step was refused or failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServiceError {
    /// Storage failed; nothing of the step was written.
    Store(StoreError),
    /// The provider refused or did not answer.
    Provider(PaymentError),
    /// The notification is forged, altered or garbled.
    Notification(NotificationError),
    /// The order is not in a state that allows the step.
    Transition(IllegalTransition),
    /// No such order.
    OrderNotFound(MerchantOrderId),
    /// The order ID is taken by an order with another kind, card or amount.
    OrderIdConflict(MerchantOrderId),
    /// A verified notification, or the provider's answer to a query, for another amount than
    /// the order's: nothing is booked.
    AmountMismatch {
        /// The order.
        merchant_order_id: MerchantOrderId,
        /// The order's amount, fen.
        order_fen: i64,
        /// The provider's amount, fen.
        notified_fen: i64,
    },
    /// The order belongs to another provider than this service's.
    WrongProvider(MerchantOrderId),
    /// A top-up without a card, or a zero amount.
    BadOrder(String),
    /// A top-up order reached its load without a card ID.
    CardMissing(MerchantOrderId),
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceError::Store(error) => write!(f, "{error}"),
            ServiceError::Provider(error) => write!(f, "{error}"),
            ServiceError::Notification(error) => write!(f, "{error}"),
            ServiceError::Transition(error) => write!(f, "{error}"),
            ServiceError::OrderNotFound(id) => write!(f, "no order {id}"),
            ServiceError::OrderIdConflict(id) => {
                write!(f, "order ID {id} is already used for another order")
            }
            ServiceError::AmountMismatch { merchant_order_id, order_fen, notified_fen } => write!(
                f,
                "notification for order {merchant_order_id} says {notified_fen} fen, the order is {order_fen} fen"
            ),
            ServiceError::WrongProvider(id) => write!(f, "order {id} belongs to another payment provider"),
            ServiceError::BadOrder(why) => write!(f, "bad order: {why}"),
            ServiceError::CardMissing(id) => write!(f, "top-up order {id} has no card"),
        }
    }
}

impl std::error::Error for ServiceError {}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> ServiceError {
        ServiceError::Store(error)
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> ServiceError {
        ServiceError::Store(StoreError::Database(error))
    }
}

impl From<LedgerError> for ServiceError {
    fn from(error: LedgerError) -> ServiceError {
        ServiceError::Store(StoreError::Ledger(error))
    }
}

impl From<PaymentError> for ServiceError {
    fn from(error: PaymentError) -> ServiceError {
        ServiceError::Provider(error)
    }
}

impl From<NotificationError> for ServiceError {
    fn from(error: NotificationError) -> ServiceError {
        ServiceError::Notification(error)
    }
}

impl From<IllegalTransition> for ServiceError {
    fn from(error: IllegalTransition) -> ServiceError {
        ServiceError::Transition(error)
    }
}

/// The result of one transition attempt.
pub(crate) struct Applied {
    pub(crate) order: Order,
    /// `false`: the order had taken the event before (nothing written).
    pub(crate) changed: bool,
}

/// Payments for one provider over one store.
///
/// Call order for a top-up: [`open_order`](Self::open_order) → the rider pays in the provider's
/// app → [`handle_notification`](Self::handle_notification) (or, when it is late,
/// [`reconcile`](Self::reconcile)) → [`start_delivery`](Self::start_delivery) →
/// [`confirm_delivery`](Self::confirm_delivery) with the card's proven balance, or
/// [`refund`](Self::refund) when the load did not happen. Every step is idempotent and safe to
/// run concurrently with itself and the others.
#[derive(Debug)]
pub struct PaymentService<P> {
    store: Store,
    provider: P,
}

impl<P: PaymentProvider> PaymentService<P> {
    /// Payments through `provider`, kept in `store`.
    pub fn new(store: Store, provider: P) -> PaymentService<P> {
        PaymentService { store, provider }
    }

    /// The provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Order `id`.
    pub async fn order(&self, id: &MerchantOrderId) -> Result<Order, ServiceError> {
        self.store.order(id).await?.ok_or_else(|| ServiceError::OrderNotFound(id.clone()))
    }

    /// The states order `id` went through after `created`, oldest first.
    pub async fn history(&self, id: &MerchantOrderId) -> Result<Vec<OrderState>, ServiceError> {
        Ok(store::transitions(&self.store, id).await?)
    }

    /// Opens an order here and at the provider. The same ID with the same content returns the
    /// existing order (and repeats the provider's idempotent create while it is unpaid); the
    /// same ID with other content is [`ServiceError::OrderIdConflict`]. If the provider does
    /// not answer, the order stays `created` here and the error says so; repeating the call, or
    /// [`reconcile`](Self::reconcile), finishes or closes it.
    pub async fn open_order(&self, new: NewOrder, now_ms: i64) -> Result<Order, ServiceError> {
        if new.kind == OrderKind::TopUp && new.card_id.is_none() {
            return Err(ServiceError::BadOrder("a top-up needs its card ID".to_owned()));
        }
        if new.amount == Fen::ZERO {
            return Err(ServiceError::BadOrder("amount: must be more than 0 fen".to_owned()));
        }
        // The provider's name becomes a ledger account: refuse it before any money moves.
        Account::provider_clearing(self.provider.name())?;
        let order = Order {
            merchant_order_id: new.merchant_order_id.clone(),
            kind: new.kind,
            provider: self.provider.name().to_owned(),
            card_id: new.card_id.clone(),
            amount: new.amount,
            state: OrderState::Created,
            provider_transaction_id: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            version: 0,
        };
        let mut transaction = self.store.begin_write().await?;
        let order = if store::insert_order_in(&mut transaction.db(), &order).await? {
            order
        } else {
            let existing = store::order_in(&mut transaction.db(), &order.merchant_order_id)
                .await?
                .ok_or_else(|| ServiceError::OrderNotFound(order.merchant_order_id.clone()))?;
            let same = (existing.kind, &existing.card_id, existing.amount, &existing.provider)
                == (order.kind, &order.card_id, order.amount, &order.provider);
            if !same {
                return Err(ServiceError::OrderIdConflict(order.merchant_order_id));
            }
            existing
        };
        transaction.commit().await?;
        if order.state != OrderState::Created {
            return Ok(order);
        }
        let request = CreateOrder {
            merchant_order_id: order.merchant_order_id.clone(),
            amount: order.amount,
            description: new.description,
        };
        let answer = retry(|| self.provider.create_order(&request)).await?;
        if answer.amount != order.amount {
            return Err(ServiceError::OrderIdConflict(order.merchant_order_id));
        }
        // Re-creating an order that was paid meanwhile tells us so; unpaid, it is as written above.
        if answer.status == ProviderStatus::NotPaid {
            return Ok(order);
        }
        self.apply_provider_status(&order.merchant_order_id, &answer.status, now_ms).await
    }

    /// Verifies a paid notification with the provider's public key and marks its order paid
    /// (posting the payment). A duplicate changes nothing; a forged or altered one, or one for
    /// another amount, is refused and changes nothing.
    pub async fn handle_notification(
        &self,
        signed: &SignedNotification,
        now_ms: i64,
    ) -> Result<NotificationOutcome, ServiceError> {
        let paid = signed.verify(&self.provider.notification_key())?;
        let payment = Payment { provider: self.provider.name(), amount: paid.amount_fen };
        let step = Step {
            event: OrderEvent::PaymentConfirmed,
            provider_transaction_id: Some(&paid.transaction_id),
            payment: Some(payment),
            card_balance_after: None,
            now_ms,
        };
        let applied = self.apply_step(&paid.merchant_order_id, &step).await?;
        Ok(if applied.changed {
            NotificationOutcome::Paid(applied.order)
        } else {
            NotificationOutcome::Duplicate(applied.order)
        })
    }

    /// Asks the provider where order `id` is and catches up: a payment whose notification was
    /// lost, a decline, an unpaid order past [`ORDER_EXPIRY_MS`] (closed at the provider first,
    /// so it cannot be paid afterwards), a refund not confirmed yet. Provider time-outs leave
    /// the order as it is, for the next round.
    pub async fn reconcile(&self, id: &MerchantOrderId, now_ms: i64) -> Result<Order, ServiceError> {
        let order = self.order(id).await?;
        // A transfer's load (funded from the old card) and a balance refund (paid back as refunds
        // of top-ups) never were the provider's orders: their own flows settle them, and asking
        // the provider would close a transfer's money away.
        if matches!(order.kind, OrderKind::Transfer | OrderKind::BalanceRefund) {
            return Ok(order);
        }
        match order.state {
            OrderState::Created => {
                let status = match retry(|| self.provider.query_order(id)).await {
                    // The provider's order must be ours: same amount, or nothing is booked. Ours
                    // never reached the provider then, so once expired it is closed here.
                    Ok(answer) if answer.amount != order.amount && expired(&order, now_ms) => ProviderStatus::Closed,
                    Ok(answer) if answer.amount != order.amount => {
                        return Err(ServiceError::AmountMismatch {
                            merchant_order_id: order.merchant_order_id,
                            order_fen: order.amount.get(),
                            notified_fen: answer.amount.get(),
                        });
                    }
                    Ok(answer) => answer.status,
                    // The create never reached the provider: nobody can pay it.
                    Err(PaymentError::OrderNotFound(_)) if expired(&order, now_ms) => ProviderStatus::Closed,
                    Err(PaymentError::OrderNotFound(_)) => return Ok(order),
                    Err(error) => return Err(error.into()),
                };
                if status == ProviderStatus::NotPaid && expired(&order, now_ms) {
                    return match retry(|| self.provider.close_order(id)).await {
                        Ok(()) => self.apply_provider_status(id, &ProviderStatus::Closed, now_ms).await,
                        // Paid at the last moment: query again for the transaction.
                        Err(PaymentError::AlreadyPaid(_)) => {
                            let answer = retry(|| self.provider.query_order(id)).await?;
                            self.apply_provider_status(id, &answer.status, now_ms).await
                        }
                        Err(error) => Err(error.into()),
                    };
                }
                self.apply_provider_status(id, &status, now_ms).await
            }
            OrderState::RefundPending => self.push_refund(&order, now_ms).await,
            _ => Ok(order),
        }
    }

    /// Reconciles every top-up and fee order whose notification is late (unpaid after
    /// [`NOTIFICATION_GRACE_MS`]) or whose refund is unconfirmed, oldest first, reading them `page`
    /// at a time (so orders that cannot be reconciled yet never hide the ones behind them);
    /// returns the orders found in another state than listed (moved by this round, or by another
    /// writer meanwhile: a notification, another service's round). An order that cannot be reconciled now (the
    /// provider does not answer, or answers something that is not booked) stays waiting and does
    /// not stop the others (the round logs how many); only a storage failure stops the round.
    pub async fn reconcile_waiting(&self, now_ms: i64, page: u32) -> Result<Vec<Order>, ServiceError> {
        self.reconcile_waiting_until(now_ms, page, || false).await
    }

    /// [`reconcile_waiting`](Self::reconcile_waiting), ending early, between two orders, once
    /// `stop` answers `true`.
    pub async fn reconcile_waiting_until(
        &self,
        now_ms: i64,
        page: u32,
        stop: impl Fn() -> bool,
    ) -> Result<Vec<Order>, ServiceError> {
        let (states, kinds) = ([OrderState::Created, OrderState::RefundPending], PROVIDER_KINDS);
        let before = now_ms.saturating_sub(NOTIFICATION_GRACE_MS);
        let mut after: Option<(i64, MerchantOrderId)> = None;
        let (mut changed, mut failed) = (Vec::new(), 0_usize);
        loop {
            let cursor = after.as_ref().map(|(at, id)| (*at, id));
            let waiting = self.store.orders_waiting(&states, &kinds, before, cursor, page).await?;
            let more = !waiting.is_empty() && waiting.len() >= page.min(ORDERS_LISTED_MAX) as usize;
            after = waiting.last().map(|order| (order.updated_at_ms, order.merchant_order_id.clone()));
            for order in waiting {
                if stop() {
                    return Ok(changed);
                }
                match self.reconcile(&order.merchant_order_id, now_ms).await {
                    Ok(now) if now.state != order.state => changed.push(now),
                    Ok(_) => {}
                    Err(error @ ServiceError::Store(_)) => return Err(error),
                    Err(error) => {
                        // Once a round, not once an order: a provider outage leaves many.
                        if failed == 0 {
                            tracing::warn!(
                                order = %order.merchant_order_id,
                                %error,
                                "waiting order not reconciled; tried again at the next round"
                            );
                        } else {
                            tracing::debug!(order = %order.merchant_order_id, %error, "waiting order not reconciled");
                        }
                        failed += 1;
                    }
                }
            }
            if !more {
                if failed > 1 {
                    tracing::warn!(orders = failed, "waiting orders not reconciled this round");
                }
                return Ok(changed);
            }
        }
    }

    /// Delivery begins (a top-up's MAC2 or a card's personalization is about to be handed out):
    /// `paid` → `loading` / `issuing`. Repeating it is a no-op; an order not paid, or already
    /// being refunded, is refused, so nothing is delivered for money we do not hold.
    pub async fn start_delivery(&self, id: &MerchantOrderId, now_ms: i64) -> Result<Order, ServiceError> {
        Ok(self.apply(id, OrderEvent::DeliveryStarted, None, None, now_ms).await?.order)
    }

    /// The card proved the delivery: `loading` → `loaded` (posting the money to the card's
    /// liability and recording `card_balance_after`, the balance the card reported with its
    /// TAC) or `issuing` → `issued` (the fee is earned). Repeating it is a no-op.
    pub async fn confirm_delivery(
        &self,
        id: &MerchantOrderId,
        card_balance_after: Option<Fen>,
        now_ms: i64,
    ) -> Result<Order, ServiceError> {
        Ok(self.apply(id, OrderEvent::DeliveryConfirmed, None, card_balance_after, now_ms).await?.order)
    }

    /// The money goes back: a paid order not delivered (or proven not loaded), or a fee refunded
    /// by policy. Posts the decision, asks the provider, and marks the order `refunded` when it
    /// confirms; otherwise it stays `refund_pending` for [`reconcile`](Self::reconcile).
    pub async fn refund(&self, id: &MerchantOrderId, now_ms: i64) -> Result<Order, ServiceError> {
        let applied = self.apply(id, OrderEvent::RefundRequested, None, None, now_ms).await?;
        self.push_refund(&applied.order, now_ms).await
    }

    /// `event` on order `id` with its posting, for the platform's own orders (a transfer's funding,
    /// a balance refund's confirmation). Repeating it is a no-op.
    pub(crate) async fn apply_event(
        &self,
        id: &MerchantOrderId,
        event: OrderEvent,
        now_ms: i64,
    ) -> Result<Order, ServiceError> {
        Ok(self.apply(id, event, None, None, now_ms).await?.order)
    }

    /// Asks the provider for the refund of a `refund_pending` order (idempotent by refund ID)
    /// and confirms it here when the provider has.
    async fn push_refund(&self, order: &Order, now_ms: i64) -> Result<Order, ServiceError> {
        if order.state != OrderState::RefundPending {
            return Ok(order.clone());
        }
        let refund_id = format!("{}-R", order.merchant_order_id);
        let status = match retry(|| self.provider.query_refund(&refund_id)).await {
            Ok(status) => status,
            Err(PaymentError::RefundNotFound(_)) => {
                let request = RefundRequest {
                    merchant_order_id: order.merchant_order_id.clone(),
                    refund_id: refund_id.clone(),
                    amount: order.amount,
                };
                match retry(|| self.provider.refund(&request)).await {
                    Ok(status) => status,
                    Err(PaymentError::Timeout) => return Ok(order.clone()),
                    Err(error) => return Err(error.into()),
                }
            }
            Err(PaymentError::Timeout) => return Ok(order.clone()),
            Err(error) => return Err(error.into()),
        };
        match status {
            RefundStatus::Processing => Ok(order.clone()),
            RefundStatus::Succeeded => {
                Ok(self.apply(&order.merchant_order_id, OrderEvent::RefundConfirmed, None, None, now_ms).await?.order)
            }
        }
    }

    /// Applies what the provider said about an unpaid order.
    async fn apply_provider_status(
        &self,
        id: &MerchantOrderId,
        status: &ProviderStatus,
        now_ms: i64,
    ) -> Result<Order, ServiceError> {
        let applied = match status {
            ProviderStatus::NotPaid => return self.order(id).await,
            ProviderStatus::Paid { transaction_id, .. } => {
                self.apply(id, OrderEvent::PaymentConfirmed, Some(transaction_id), None, now_ms).await?
            }
            ProviderStatus::Declined | ProviderStatus::Closed => {
                self.apply(id, OrderEvent::PaymentFailed, None, None, now_ms).await?
            }
        };
        Ok(applied.order)
    }

    /// One transition of order `id` by `event` with its ledger posting (and, for a load, the
    /// card's proven balance), in one transaction. An event the order has already taken
    /// changes nothing; a lost compare-and-swap reads the order again.
    async fn apply(
        &self,
        id: &MerchantOrderId,
        event: OrderEvent,
        provider_transaction_id: Option<&str>,
        card_balance_after: Option<Fen>,
        now_ms: i64,
    ) -> Result<Applied, ServiceError> {
        let step = Step { event, provider_transaction_id, payment: None, card_balance_after, now_ms };
        self.apply_step(id, &step).await
    }

    /// [`apply_in`] in a transaction of its own, taken again when the compare-and-swap loses.
    async fn apply_step(&self, id: &MerchantOrderId, step: &Step<'_>) -> Result<Applied, ServiceError> {
        for _ in 0..TRANSITION_ATTEMPTS_MAX {
            let mut transaction = self.store.begin_write().await?;
            match apply_in(&mut transaction, id, step).await {
                Ok(Some(applied)) if applied.changed => {
                    transaction.commit().await?;
                    return Ok(applied);
                }
                Ok(Some(applied)) => {
                    transaction.rollback().await?;
                    return Ok(applied);
                }
                Ok(None) => transaction.rollback().await?,
                // Dropped, the transaction rolls back.
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Contended(TRANSITION_ATTEMPTS_MAX).into())
    }
}

/// An event to apply to an order, with what comes with it.
pub(crate) struct Step<'a> {
    pub(crate) event: OrderEvent,
    pub(crate) provider_transaction_id: Option<&'a str>,
    /// A notified payment's: the order must be this provider's and of this amount.
    pub(crate) payment: Option<Payment<'a>>,
    /// A load's: the balance the card proved after it.
    pub(crate) card_balance_after: Option<Fen>,
    pub(crate) now_ms: i64,
}

/// What a paid notification says the order is.
#[derive(Clone, Copy)]
pub(crate) struct Payment<'a> {
    pub(crate) provider: &'a str,
    pub(crate) amount: Fen,
}

/// Applies `step` to order `id` inside `transaction` (its transition, posting and, for a load,
/// the card's believed balance), not committed. `None`: another writer moved the order since it
/// was read (only on PostgreSQL; the caller rolls back and tries again).
pub(crate) async fn apply_in(
    transaction: &mut WriteTransaction,
    id: &MerchantOrderId,
    step: &Step<'_>,
) -> Result<Option<Applied>, ServiceError> {
    let order =
        store::order_in(&mut transaction.db(), id).await?.ok_or_else(|| ServiceError::OrderNotFound(id.clone()))?;
    apply_to_in(transaction, order, step).await
}

/// [`apply_in`] to `read`, the order as read before the transaction began: its transition is a
/// compare-and-swap on the state and version read, so it lands only if the order did not move;
/// otherwise (or when `read` does not take the step) the order is read again and the step applied
/// to that. One read fewer in the writer's turn when the order stood still.
pub(crate) async fn apply_to_read_in(
    transaction: &mut WriteTransaction,
    read: &Order,
    step: &Step<'_>,
) -> Result<Option<Applied>, ServiceError> {
    if !read.state.has_taken(step.event) && read.state.apply(read.kind, step.event).is_ok() {
        if let Some(applied) = apply_to_in(transaction, read.clone(), step).await? {
            return Ok(Some(applied));
        }
    }
    apply_in(transaction, &read.merchant_order_id, step).await
}

/// [`apply_in`] to `order` as read (`None`: it moved since).
async fn apply_to_in(
    transaction: &mut WriteTransaction,
    order: Order,
    step: &Step<'_>,
) -> Result<Option<Applied>, ServiceError> {
    if let Some(payment) = step.payment {
        if order.provider != payment.provider {
            return Err(ServiceError::WrongProvider(order.merchant_order_id));
        }
        if payment.amount != order.amount {
            return Err(ServiceError::AmountMismatch {
                merchant_order_id: order.merchant_order_id,
                order_fen: order.amount.get(),
                notified_fen: payment.amount.get(),
            });
        }
    }
    if order.state.has_taken(step.event) {
        return Ok(Some(Applied { order, changed: false }));
    }
    let to = order.state.apply(order.kind, step.event)?;
    if to == OrderState::Loaded && step.card_balance_after.is_none() {
        return Err(ServiceError::BadOrder("a load is confirmed with the card's balance after it".to_owned()));
    }
    if !store::transition_in(&mut transaction.db(), &order, to, step.provider_transaction_id, step.now_ms).await? {
        return Ok(None);
    }
    if let Some(posting) = posting_for(&order, to, step.now_ms)? {
        store::post_in(&mut transaction.db(), &posting).await?;
    }
    if let (OrderState::Loaded, Some(card), Some(balance)) = (to, &order.card_id, step.card_balance_after) {
        store::record_card_balance_in(&mut transaction.db(), card, balance, step.now_ms).await?;
    }
    let order = Order {
        state: to,
        version: order.version + 1,
        updated_at_ms: step.now_ms,
        provider_transaction_id: step.provider_transaction_id.map(str::to_owned).or(order.provider_transaction_id),
        ..order
    };
    Ok(Some(Applied { order, changed: true }))
}

fn expired(order: &Order, now_ms: i64) -> bool {
    now_ms.saturating_sub(order.created_at_ms) >= ORDER_EXPIRY_MS
}

/// Runs a provider call up to [`PROVIDER_ATTEMPTS_MAX`] times while it times out (every call is
/// idempotent, so a repeat is safe).
async fn retry<T, F, Fut>(mut call: F) -> Result<T, PaymentError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, PaymentError>>,
{
    let mut attempts = 1;
    loop {
        match call().await {
            Err(PaymentError::Timeout) if attempts < PROVIDER_ATTEMPTS_MAX => attempts += 1,
            other => return other,
        }
    }
}
