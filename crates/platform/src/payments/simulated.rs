//! A payment provider in memory that behaves like the real ones, deterministically from a seed:
//! declines, time-outs (before or after the call took effect), duplicated and lost
//! notifications, refunds that finish later. The same seed and the same calls give the same
//! answers, so a failing test replays.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{
    CreateOrder, MerchantOrderId, NotificationOutcome, Order, PaidNotification, PaymentError, PaymentProvider,
    PaymentService, ProviderOrder, ProviderStatus, RefundRequest, RefundStatus, ServiceError, SignedNotification,
};
use crate::ledger::Fen;

/// Notifications waiting to be delivered; beyond this the provider drops them (they are lost,
/// and the service polls).
pub const OUTBOX_MAX: usize = 1_024;

/// How often each fault happens, per thousand calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulationFaults {
    /// A payment declined by the provider.
    pub decline_per_mille: u32,
    /// A call that times out (half of them after taking effect).
    pub timeout_per_mille: u32,
    /// A paid notification never sent.
    pub lost_notification_per_mille: u32,
    /// A paid notification sent twice.
    pub duplicate_notification_per_mille: u32,
    /// A refund that answers "processing" and succeeds at a later query.
    pub refund_processing_per_mille: u32,
}

impl SimulationFaults {
    /// A provider that never fails.
    pub const NONE: SimulationFaults = SimulationFaults {
        decline_per_mille: 0,
        timeout_per_mille: 0,
        lost_notification_per_mille: 0,
        duplicate_notification_per_mille: 0,
        refund_processing_per_mille: 0,
    };

    /// Faults often enough that every path runs in a few dozen orders.
    pub const HOSTILE: SimulationFaults = SimulationFaults {
        decline_per_mille: 100,
        timeout_per_mille: 150,
        lost_notification_per_mille: 200,
        duplicate_notification_per_mille: 200,
        refund_processing_per_mille: 300,
    };
}

/// What happened when the simulated rider tried to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayOutcome {
    /// Paid; this many notifications were queued (0 lost, 1, or 2 duplicated).
    Paid {
        /// Notifications queued.
        notifications: u8,
    },
    /// Declined: the order can no longer be paid.
    Declined,
    /// Already paid, declined or closed: nothing happened.
    NotPayable,
}

/// How many of each fault the provider has injected so far (tests check the faults happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultCounts {
    /// Calls that timed out.
    pub timeouts: u32,
    /// Payments declined.
    pub declines: u32,
    /// Notifications never sent.
    pub lost_notifications: u32,
    /// Notifications sent twice.
    pub duplicated_notifications: u32,
}

#[derive(Debug)]
struct SimulatedOrder {
    amount: Fen,
    status: ProviderStatus,
}

#[derive(Debug)]
struct SimulatedRefund {
    merchant_order_id: MerchantOrderId,
    amount: Fen,
    status: RefundStatus,
}

#[derive(Debug)]
struct Inner {
    rng: ChaCha8Rng,
    faults: SimulationFaults,
    orders: BTreeMap<MerchantOrderId, SimulatedOrder>,
    refunds: BTreeMap<String, SimulatedRefund>,
    outbox: VecDeque<SignedNotification>,
    next_transaction: u64,
    counts: FaultCounts,
}

impl Inner {
    fn happens(&mut self, per_mille: u32) -> bool {
        self.rng.next_u32() % 1_000 < per_mille
    }

    /// `Some(after)` if this call times out; `after` says whether it takes effect first.
    fn timeout(&mut self) -> Option<bool> {
        let per_mille = self.faults.timeout_per_mille;
        let timeout = self.happens(per_mille).then(|| self.rng.next_u32() % 2 == 0);
        self.counts.timeouts += u32::from(timeout.is_some());
        timeout
    }
}

/// The built-in simulated provider (ledger name `simulated`). The rider's side is
/// [`SimulatedProvider::pay`]; notifications are drained with
/// [`SimulatedProvider::poll_notification`] and handed to the service as an HTTP callback would.
#[derive(Debug)]
pub struct SimulatedProvider {
    signing_key: SigningKey,
    inner: Mutex<Inner>,
}

impl SimulatedProvider {
    /// A provider whose key and faults all follow from `seed`.
    pub fn new(seed: u64, faults: SimulationFaults) -> SimulatedProvider {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        SimulatedProvider {
            signing_key: SigningKey::from_bytes(&secret),
            inner: Mutex::new(Inner {
                rng,
                faults,
                orders: BTreeMap::new(),
                refunds: BTreeMap::new(),
                outbox: VecDeque::new(),
                next_transaction: 1,
                counts: FaultCounts::default(),
            }),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The rider pays order `id` in the provider's app at `now_ms`.
    pub fn pay(&self, id: &MerchantOrderId, now_ms: i64) -> PayOutcome {
        let mut inner = self.inner();
        let inner = &mut *inner;
        // An order it was not asked to open draws no fault: the service may ask it to pay one it
        // does not know, and a run's faults stay those of its seed.
        if !inner.orders.contains_key(id) {
            return PayOutcome::NotPayable;
        }
        let decline = inner.faults.decline_per_mille;
        let declined = inner.happens(decline);
        let Some(order) = inner.orders.get_mut(id) else {
            return PayOutcome::NotPayable;
        };
        if order.status != ProviderStatus::NotPaid {
            return PayOutcome::NotPayable;
        }
        if declined {
            inner.counts.declines += 1;
            order.status = ProviderStatus::Declined;
            return PayOutcome::Declined;
        }
        let transaction_id = format!("SIM{:012}", inner.next_transaction);
        inner.next_transaction += 1;
        order.status = ProviderStatus::Paid { transaction_id: transaction_id.clone(), paid_at_ms: now_ms };
        let notification = PaidNotification {
            notification_id: format!("N-{transaction_id}"),
            merchant_order_id: id.clone(),
            transaction_id,
            amount_fen: order.amount,
            paid_at_ms: now_ms,
        };
        let (lost, duplicate) =
            (inner.faults.lost_notification_per_mille, inner.faults.duplicate_notification_per_mille);
        let notifications: u8 = if inner.happens(lost) {
            inner.counts.lost_notifications += 1;
            0
        } else if inner.happens(duplicate) {
            inner.counts.duplicated_notifications += 1;
            2
        } else {
            1
        };
        let signed = SignedNotification::sign(&self.signing_key, &notification);
        for _ in 0..notifications {
            if inner.outbox.len() < OUTBOX_MAX {
                inner.outbox.push_back(signed.clone());
            }
        }
        PayOutcome::Paid { notifications }
    }

    /// The faults injected so far.
    pub fn fault_counts(&self) -> FaultCounts {
        self.inner().counts
    }

    /// The next notification to deliver, oldest first.
    pub fn poll_notification(&self) -> Option<SignedNotification> {
        self.inner().outbox.pop_front()
    }
}

impl PaymentService<Arc<SimulatedProvider>> {
    /// DEVELOPMENT ONLY: the simulated provider's rider pays order `id` at `now_ms` and the
    /// notifications the provider queued are delivered (another order's too, as its callback
    /// would send them); a notification lost on the way is made up for by polling the order.
    /// The provider's outcome, and the order after it.
    pub async fn pay_simulated(&self, id: &MerchantOrderId, now_ms: i64) -> Result<(PayOutcome, Order), ServiceError> {
        // The provider knows only the orders the service opened with it; an unknown one is not
        // payable, and reading it next answers that it is not found.
        let outcome = self.provider().pay(id, now_ms);
        if !matches!(outcome, PayOutcome::Paid { .. }) {
            return Ok((outcome, self.order(id).await?));
        }
        let mut delivered = None;
        while let Some(notification) = self.provider().poll_notification() {
            let (NotificationOutcome::Paid(order) | NotificationOutcome::Duplicate(order)) =
                self.handle_notification(&notification, now_ms).await?;
            if &order.merchant_order_id == id {
                delivered = Some(order);
            }
        }
        let order = match delivered {
            Some(order) => order,
            None => self.reconcile(id, now_ms).await?,
        };
        Ok((outcome, order))
    }
}

impl PaymentProvider for SimulatedProvider {
    fn name(&self) -> &str {
        "simulated"
    }

    fn notification_key(&self) -> VerifyingKey {
        self.signing_key.verifying_key()
    }

    async fn create_order(&self, request: &CreateOrder) -> Result<ProviderOrder, PaymentError> {
        let mut inner = self.inner();
        let timeout = inner.timeout();
        if timeout == Some(false) {
            return Err(PaymentError::Timeout);
        }
        let id = &request.merchant_order_id;
        let order = inner
            .orders
            .entry(id.clone())
            .or_insert(SimulatedOrder { amount: request.amount, status: ProviderStatus::NotPaid });
        if order.amount != request.amount {
            return Err(PaymentError::OrderIdConflict(id.clone()));
        }
        let answer =
            ProviderOrder { merchant_order_id: id.clone(), amount: order.amount, status: order.status.clone() };
        match timeout {
            Some(_) => Err(PaymentError::Timeout),
            None => Ok(answer),
        }
    }

    async fn query_order(&self, id: &MerchantOrderId) -> Result<ProviderOrder, PaymentError> {
        let mut inner = self.inner();
        if inner.timeout().is_some() {
            return Err(PaymentError::Timeout);
        }
        let order = inner.orders.get(id).ok_or_else(|| PaymentError::OrderNotFound(id.clone()))?;
        Ok(ProviderOrder { merchant_order_id: id.clone(), amount: order.amount, status: order.status.clone() })
    }

    async fn close_order(&self, id: &MerchantOrderId) -> Result<(), PaymentError> {
        let mut inner = self.inner();
        let timeout = inner.timeout();
        if timeout == Some(false) {
            return Err(PaymentError::Timeout);
        }
        let order = inner.orders.get_mut(id).ok_or_else(|| PaymentError::OrderNotFound(id.clone()))?;
        match order.status {
            ProviderStatus::Paid { .. } => return Err(PaymentError::AlreadyPaid(id.clone())),
            ProviderStatus::NotPaid => order.status = ProviderStatus::Closed,
            ProviderStatus::Declined | ProviderStatus::Closed => {}
        }
        match timeout {
            Some(_) => Err(PaymentError::Timeout),
            None => Ok(()),
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<RefundStatus, PaymentError> {
        let mut inner = self.inner();
        let timeout = inner.timeout();
        if timeout == Some(false) {
            return Err(PaymentError::Timeout);
        }
        let id = &request.merchant_order_id;
        let status = if let Some(refund) = inner.refunds.get(&request.refund_id) {
            if refund.merchant_order_id != *id || refund.amount != request.amount {
                return Err(PaymentError::RefundRefused(id.clone()));
            }
            refund.status
        } else {
            let order = inner.orders.get(id).ok_or_else(|| PaymentError::OrderNotFound(id.clone()))?;
            let paid = matches!(order.status, ProviderStatus::Paid { .. });
            // One refund per order: the whole amount, or part of it.
            let refunded = inner.refunds.values().any(|refund| refund.merchant_order_id == *id);
            if !paid || refunded || request.amount > order.amount || request.amount == Fen::ZERO {
                return Err(PaymentError::RefundRefused(id.clone()));
            }
            let processing = inner.faults.refund_processing_per_mille;
            let status = if inner.happens(processing) { RefundStatus::Processing } else { RefundStatus::Succeeded };
            let refund = SimulatedRefund { merchant_order_id: id.clone(), amount: request.amount, status };
            inner.refunds.insert(request.refund_id.clone(), refund);
            status
        };
        match timeout {
            Some(_) => Err(PaymentError::Timeout),
            None => Ok(status),
        }
    }

    async fn query_refund(&self, refund_id: &str) -> Result<RefundStatus, PaymentError> {
        let mut inner = self.inner();
        if inner.timeout().is_some() {
            return Err(PaymentError::Timeout);
        }
        let refund =
            inner.refunds.get_mut(refund_id).ok_or_else(|| PaymentError::RefundNotFound(refund_id.to_owned()))?;
        // A processing refund has finished by the time anyone asks about it.
        refund.status = RefundStatus::Succeeded;
        Ok(refund.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("a runtime").block_on(future)
    }

    fn order(id: &str, fen: i64) -> CreateOrder {
        CreateOrder {
            merchant_order_id: MerchantOrderId::parse(id).expect("valid"),
            amount: Fen::new(fen).expect("positive"),
            description: "top-up".to_owned(),
        }
    }

    /// Runs 200 orders through a hostile provider and returns everything it answered.
    fn transcript(seed: u64) -> Vec<String> {
        transcript_after(seed, &[])
    }

    /// [`transcript`] after paying the orders `unknown`, which were never opened.
    fn transcript_after(seed: u64, unknown: &[&str]) -> Vec<String> {
        let provider = SimulatedProvider::new(seed, SimulationFaults::HOSTILE);
        for id in unknown {
            assert_eq!(provider.pay(&MerchantOrderId::parse(id).expect("valid"), 0), PayOutcome::NotPayable);
        }
        let mut lines = vec![hex::encode(provider.notification_key().to_bytes())];
        for n in 0..200 {
            let request = order(&format!("T{n:08}"), 100 + n);
            lines.push(format!("{:?}", block_on(provider.create_order(&request))));
            lines.push(format!("{:?}", provider.pay(&request.merchant_order_id, n)));
            lines.push(format!("{:?}", block_on(provider.query_order(&request.merchant_order_id))));
        }
        while let Some(notification) = provider.poll_notification() {
            lines.push(notification.body);
        }
        lines
    }

    #[test]
    fn paying_an_order_never_opened_draws_no_fault() {
        assert_eq!(transcript_after(7, &["NEVER001", "NEVER002", "NEVER003"]), transcript(7));
    }

    #[test]
    fn the_same_seed_gives_the_same_answers() {
        let first = transcript(7);
        assert_eq!(first, transcript(7));
        assert_ne!(first, transcript(8));
        // Every fault showed up.
        let text = first.join("\n");
        for fault in ["Timeout", "Declined", "notifications: 0", "notifications: 2", "notifications: 1"] {
            assert!(text.contains(fault), "no {fault} in 200 hostile orders");
        }
    }

    #[test]
    fn order_ids_are_idempotent_and_bound_to_their_amount() {
        let provider = SimulatedProvider::new(1, SimulationFaults::NONE);
        let first = block_on(provider.create_order(&order("T00000001", 500)));
        assert_eq!(first, block_on(provider.create_order(&order("T00000001", 500))));
        let id = MerchantOrderId::parse("T00000001").expect("valid");
        assert_eq!(
            block_on(provider.create_order(&order("T00000001", 501))),
            Err(PaymentError::OrderIdConflict(id.clone()))
        );
        // Paid once; a second payment of the same order is refused.
        assert_eq!(provider.pay(&id, 10), PayOutcome::Paid { notifications: 1 });
        assert_eq!(provider.pay(&id, 11), PayOutcome::NotPayable);
        assert_eq!(block_on(provider.close_order(&id)), Err(PaymentError::AlreadyPaid(id.clone())));
        let notification = provider.poll_notification().expect("one notification");
        let paid = notification.verify(&provider.notification_key()).expect("signed by the provider");
        assert_eq!((paid.merchant_order_id, paid.amount_fen.get(), paid.paid_at_ms), (id, 500, 10));
        assert_eq!(provider.poll_notification(), None);
    }

    #[test]
    fn closed_orders_cannot_be_paid_and_refunds_are_bounded() {
        let provider = SimulatedProvider::new(1, SimulationFaults::NONE);
        block_on(provider.create_order(&order("T00000002", 500))).expect("created");
        let id = MerchantOrderId::parse("T00000002").expect("valid");
        let refund = |fen| RefundRequest {
            merchant_order_id: id.clone(),
            refund_id: "T00000002-R".to_owned(),
            amount: Fen::new(fen).expect("positive"),
        };
        assert_eq!(block_on(provider.refund(&refund(500))), Err(PaymentError::RefundRefused(id.clone())), "not paid");
        block_on(provider.close_order(&id)).expect("closed");
        assert_eq!(provider.pay(&id, 1), PayOutcome::NotPayable);

        block_on(provider.create_order(&order("T00000003", 500))).expect("created");
        let id = MerchantOrderId::parse("T00000003").expect("valid");
        provider.pay(&id, 1);
        let refund = |fen, refund_id: &str| RefundRequest {
            merchant_order_id: id.clone(),
            refund_id: refund_id.to_owned(),
            amount: Fen::new(fen).expect("positive"),
        };
        assert_eq!(block_on(provider.refund(&refund(501, "R1"))), Err(PaymentError::RefundRefused(id.clone())));
        assert_eq!(block_on(provider.refund(&refund(500, "R1"))), Ok(RefundStatus::Succeeded));
        assert_eq!(block_on(provider.refund(&refund(500, "R1"))), Ok(RefundStatus::Succeeded), "repeated");
        assert_eq!(
            block_on(provider.refund(&refund(500, "R2"))),
            Err(PaymentError::RefundRefused(id.clone())),
            "twice"
        );
        assert_eq!(block_on(provider.query_refund("R9")), Err(PaymentError::RefundNotFound("R9".to_owned())));
    }
}
