//! Payments: the [`PaymentProvider`] trait, shaped like WeChat Pay, Alipay and UnionPay, a
//! deterministic [`SimulatedProvider`] that behaves like them, and the [`PaymentService`] that
//! drives each [`Order`] through its state machine ([`OrderState`]) and posts every money
//! movement to the ledger in the same transaction.
//!
//! The provider's shape, as the real ones have it:
//! - the merchant (we) makes the order ID; creating the same ID again returns the same order,
//!   so a call that timed out is simply repeated;
//! - the rider pays in the provider's app; the provider then sends an asynchronous *paid
//!   notification*, signed with its private key ([`SignedNotification`]); the service verifies it
//!   with the provider's public key and never trusts an unsigned or altered one;
//! - notifications can come twice or never: a duplicate changes nothing, and orders whose
//!   notification is late are polled ([`PaymentService::reconcile`]);
//! - an unpaid order is closed before it is given up, so that it cannot be paid afterwards;
//! - refunds carry their own idempotent refund ID and may finish later.
//!
//! Time is an input (`now_ms`, Unix milliseconds) everywhere; no clock is read here.

mod notification;
mod order;
mod postings;
mod service;
mod simulated;

pub use notification::{NotificationError, PaidNotification, SignedNotification, NOTIFICATION_BODY_LENGTH_MAX};
pub use order::{IllegalTransition, OrderEvent, OrderKind, OrderState};
pub(crate) use service::{apply_to_read_in, Step};
pub use service::{
    NewOrder, NotificationOutcome, Order, PaymentService, ServiceError, NOTIFICATION_GRACE_MS, ORDER_EXPIRY_MS,
    PROVIDER_ATTEMPTS_MAX,
};
pub use simulated::{FaultCounts, PayOutcome, SimulatedProvider, SimulationFaults};

use std::fmt;
use std::future::Future;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::ledger::Fen;

/// Longest merchant order ID (WeChat Pay's `out_trade_no` allows 32).
const MERCHANT_ORDER_ID_LENGTH_MAX: usize = 32;
/// Shortest merchant order ID (WeChat Pay's is 6).
const MERCHANT_ORDER_ID_LENGTH_MIN: usize = 6;

/// The order ID we make and the provider keeps: 6 to 32 characters of `A-Z a-z 0-9 _ -`. The
/// same ID always names the same order, at the provider and here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MerchantOrderId(String);

impl MerchantOrderId {
    /// Parses an order ID.
    pub fn parse(id: &str) -> Result<MerchantOrderId, PaymentError> {
        let good = (MERCHANT_ORDER_ID_LENGTH_MIN..=MERCHANT_ORDER_ID_LENGTH_MAX).contains(&id.len())
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if good {
            Ok(MerchantOrderId(id.to_owned()))
        } else {
            Err(PaymentError::BadOrderId(id.to_owned()))
        }
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MerchantOrderId {
    type Error = PaymentError;

    fn try_from(id: String) -> Result<MerchantOrderId, PaymentError> {
        MerchantOrderId::parse(&id)
    }
}

impl From<MerchantOrderId> for String {
    fn from(id: MerchantOrderId) -> String {
        id.0
    }
}

impl fmt::Display for MerchantOrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Asks the provider to open an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOrder {
    /// Our idempotent order ID.
    pub merchant_order_id: MerchantOrderId,
    /// What the rider pays, more than zero.
    pub amount: Fen,
    /// Shown to the rider in the provider's app.
    pub description: String,
}

/// The provider's view of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderStatus {
    /// Waiting for the rider.
    NotPaid,
    /// Paid.
    Paid {
        /// The provider's transaction ID.
        transaction_id: String,
        /// When, Unix milliseconds.
        paid_at_ms: i64,
    },
    /// The rider's payment was declined (card refused, risk control); the order cannot be paid.
    Declined,
    /// Closed unpaid (by us or by expiry).
    Closed,
}

/// An order as the provider returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOrder {
    /// Our order ID.
    pub merchant_order_id: MerchantOrderId,
    /// The amount the provider holds for it.
    pub amount: Fen,
    /// Its status.
    pub status: ProviderStatus,
}

/// Asks the provider to pay money of a paid order back to the rider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The paid order.
    pub merchant_order_id: MerchantOrderId,
    /// Our idempotent refund ID (one refund per order here: `<order ID>-R`).
    pub refund_id: String,
    /// How much, at most what was paid.
    pub amount: Fen,
}

/// Where a refund is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    /// Accepted, not finished: query again later.
    Processing,
    /// The money is back with the rider.
    Succeeded,
}

/// What a provider call can answer besides success.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PaymentError {
    /// No answer in time: the call may or may not have taken effect. Repeat it (every call is
    /// idempotent) or query.
    Timeout,
    /// The provider knows no such order.
    OrderNotFound(MerchantOrderId),
    /// The order ID is taken by an order with another amount.
    OrderIdConflict(MerchantOrderId),
    /// Closing refused: the order was paid meanwhile.
    AlreadyPaid(MerchantOrderId),
    /// A refund of an order that is not paid, or of more than was paid.
    RefundRefused(MerchantOrderId),
    /// The provider knows no such refund.
    RefundNotFound(String),
    /// An order ID that is not 6 to 32 characters of `A-Z a-z 0-9 _ -`.
    BadOrderId(String),
}

impl fmt::Display for PaymentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaymentError::Timeout => f.write_str("payment provider timed out (outcome unknown)"),
            PaymentError::OrderNotFound(id) => write!(f, "payment provider knows no order {id}"),
            PaymentError::OrderIdConflict(id) => {
                write!(f, "order ID {id} is already used for another amount")
            }
            PaymentError::AlreadyPaid(id) => write!(f, "order {id} was paid, cannot close it"),
            PaymentError::RefundRefused(id) => write!(f, "refund of order {id} refused"),
            PaymentError::RefundNotFound(id) => write!(f, "payment provider knows no refund {id}"),
            PaymentError::BadOrderId(id) => {
                write!(f, "bad merchant order ID {id:?}: 6 to 32 characters of A-Z a-z 0-9 _ -")
            }
        }
    }
}

impl std::error::Error for PaymentError {}

/// A mobile payment provider (WeChat Pay, Alipay, UnionPay, or [`SimulatedProvider`]).
///
/// Every call is idempotent: repeating a call that returned [`PaymentError::Timeout`] is always
/// safe. Paid notifications reach the service out of band (an HTTP callback) as
/// [`SignedNotification`]s, verified with [`PaymentProvider::notification_key`].
pub trait PaymentProvider: Send + Sync {
    /// The provider's name in ledger accounts (`provider_clearing/<name>`): lower-case ASCII.
    fn name(&self) -> &str;

    /// The public key that verifies the provider's notifications.
    fn notification_key(&self) -> VerifyingKey;

    /// Opens an order, or returns the one already opened under the same ID and amount.
    fn create_order(&self, order: &CreateOrder) -> impl Future<Output = Result<ProviderOrder, PaymentError>> + Send;

    /// The order's current status (used when a notification is late).
    fn query_order(&self, id: &MerchantOrderId) -> impl Future<Output = Result<ProviderOrder, PaymentError>> + Send;

    /// Closes an unpaid order so that it can no longer be paid; closing a closed or declined
    /// order is a success, closing a paid one is [`PaymentError::AlreadyPaid`].
    fn close_order(&self, id: &MerchantOrderId) -> impl Future<Output = Result<(), PaymentError>> + Send;

    /// Starts (or repeats) a refund.
    fn refund(&self, request: &RefundRequest) -> impl Future<Output = Result<RefundStatus, PaymentError>> + Send;

    /// Where a refund is.
    fn query_refund(&self, refund_id: &str) -> impl Future<Output = Result<RefundStatus, PaymentError>> + Send;
}

/// Services that share one provider (several pools, several tasks) hold it in an `Arc`.
impl<P: PaymentProvider> PaymentProvider for std::sync::Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn notification_key(&self) -> VerifyingKey {
        (**self).notification_key()
    }

    fn create_order(&self, order: &CreateOrder) -> impl Future<Output = Result<ProviderOrder, PaymentError>> + Send {
        (**self).create_order(order)
    }

    fn query_order(&self, id: &MerchantOrderId) -> impl Future<Output = Result<ProviderOrder, PaymentError>> + Send {
        (**self).query_order(id)
    }

    fn close_order(&self, id: &MerchantOrderId) -> impl Future<Output = Result<(), PaymentError>> + Send {
        (**self).close_order(id)
    }

    fn refund(&self, request: &RefundRequest) -> impl Future<Output = Result<RefundStatus, PaymentError>> + Send {
        (**self).refund(request)
    }

    fn query_refund(&self, refund_id: &str) -> impl Future<Output = Result<RefundStatus, PaymentError>> + Send {
        (**self).query_refund(refund_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merchant_order_ids_are_checked() {
        assert!(MerchantOrderId::parse("T20261125-000001").is_ok());
        for bad in ["", "T1", "T 000001", "T000001'--", &"9".repeat(33), "订单000001"] {
            assert_eq!(MerchantOrderId::parse(bad), Err(PaymentError::BadOrderId(bad.to_owned())), "{bad:?}");
        }
    }
}
