//! What each order transition posts to the ledger: the one table of the platform's payment
//! money movements.

use super::{Order, OrderKind, OrderState, ServiceError};
use crate::ledger::{Account, Posting, PostingId};

/// The posting for `order` moving to `to`, or `None` where no money moves (delivery started,
/// order closed unpaid). Its ID, `order/<merchant order ID>/<new state>`, makes it idempotent:
/// an order reaches each state once.
pub(crate) fn posting_for(order: &Order, to: OrderState, at_ms: i64) -> Result<Option<Posting>, ServiceError> {
    use OrderState as S;
    let clearing = Account::provider_clearing(&order.provider)?;
    let (debit, credit, memo) = match (order.state, to) {
        // A transfer's load order is funded by the old card's emptied balance.
        (S::Created, S::Paid) if order.kind == OrderKind::Transfer => {
            (Account::TransfersPayable, Account::PaymentsUnapplied, "funded by a card transfer")
        }
        // The provider collected the rider's money for us; we owe a delivery or a refund.
        (S::Created, S::Paid) => (clearing, Account::PaymentsUnapplied, "paid"),
        // The card proved the load: the money is now the card's stored value.
        (S::Loading, S::Loaded) => {
            let card = order.card_id.clone().ok_or(ServiceError::CardMissing(order.merchant_order_id.clone()))?;
            (Account::PaymentsUnapplied, Account::CardLiability(card), "loaded onto the card")
        }
        (S::Issuing, S::Issued) => (Account::PaymentsUnapplied, Account::FeeRevenue, "sign-up fee earned"),
        (S::Paid | S::Loading | S::Issuing, S::RefundPending) => {
            (Account::PaymentsUnapplied, Account::RefundsPayable, "not delivered: refund decided")
        }
        (S::Issued, S::RefundPending) => {
            (Account::FeeRevenue, Account::RefundsPayable, "sign-up fee refunded by policy")
        }
        (S::RefundPending, S::Refunded) => (Account::RefundsPayable, clearing, "refund confirmed by the provider"),
        _ => return Ok(None),
    };
    let id = PostingId::parse(&format!("order/{}/{}", order.merchant_order_id, to.name()))?;
    Ok(Some(Posting::transfer(id, memo, at_ms, debit, credit, order.amount)?))
}
