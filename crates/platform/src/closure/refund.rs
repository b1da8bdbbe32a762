//! A deleted card's balance back to the rider: partial refunds of the card's top-up orders,
//! newest first — what WeChat Pay and Alipay offer (a refund goes back to the payment it refunds,
//! in parts if need be); neither gives merchants a general payout to the payer without a separate
//! contract. The sign-up fee goes back too where the city's rules say so.

use super::{Closure, ClosureError, ClosureService, RefundPart};
use crate::ledger::CardId;
use crate::payments::{
    MerchantOrderId, Order, OrderEvent, OrderKind, OrderState, PaymentError, PaymentProvider, PaymentService,
    RefundRequest, RefundStatus,
};
use crate::store::Db;
use crate::store::{self, closures as db};

/// Cards a balance is followed back through transfers, at most.
const TRANSFER_HOPS_MAX: usize = 8;

/// The balance refund order of a deleted card.
fn refund_order_id(card: &CardId) -> MerchantOrderId {
    MerchantOrderId::parse(&format!("R{card}")).expect("R and a card ID of at most 31 characters is an order ID")
}

impl ClosureService {
    /// In the closing transaction: the balance refund order (`created` → `refund_pending`; the
    /// closure's posting put its money in `refunds_payable`) and its parts.
    pub(super) async fn open_balance_refund_in<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        connection: &mut Db<'_>,
        closure: &Closure,
    ) -> Result<(), ClosureError> {
        if closure.moved.get() == 0 {
            return Ok(());
        }
        let now_ms = closure.updated_at_ms;
        let id = refund_order_id(&closure.card_id);
        let order = Order {
            merchant_order_id: id.clone(),
            kind: OrderKind::BalanceRefund,
            provider: payments.provider().name().to_owned(),
            card_id: Some(closure.card_id.clone()),
            amount: closure.moved,
            state: OrderState::Created,
            provider_transaction_id: None,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            version: 0,
        };
        if !store::insert_order_in(connection, &order).await? {
            return Err(ClosureError::Contended(closure.closure_id.clone()));
        }
        let to =
            order.state.apply(order.kind, OrderEvent::RefundRequested).map_err(crate::payments::ServiceError::from)?;
        store::transition_in(connection, &order, to, None, now_ms).await?;
        // Newest top-ups first, following the balance back through transfers.
        let mut left = closure.moved.get();
        let mut card = Some(closure.card_id.clone());
        for _ in 0..TRANSFER_HOPS_MAX {
            let Some(this) = card.take() else { break };
            for (paid, amount) in db::refundable_top_ups_in(connection, &this).await? {
                if left == 0 {
                    break;
                }
                let part = amount.get().min(left);
                left -= part;
                let part = RefundPart {
                    refund_id: format!("{id}-{paid}"),
                    paid_order_id: paid,
                    amount: crate::ledger::Fen::new(part).expect("the smaller of two amounts is not negative"),
                    refunded: false,
                };
                db::insert_refund_part_in(connection, &id, &part).await?;
            }
            if left == 0 {
                break;
            }
            card = db::transferred_from_in(connection, &this).await?;
        }
        // What no top-up covers (loads the platform never saw paid) stays `refund_pending` for
        // the back office.
        Ok(())
    }

    /// Asks the provider for every part not refunded yet (idempotent by refund ID) and the fee
    /// refund where the rules say so; the order is `refunded` once every part is.
    pub(super) async fn push_refunds<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        closure: &Closure,
        now_ms: i64,
    ) -> Result<(), ClosureError> {
        let store = payments.store();
        let card = store
            .phone_card(&closure.card_id)
            .await?
            .ok_or_else(|| ClosureError::UnknownCard(closure.card_id.clone()))?;
        if let Some(fee_order) = &card.fee_order_id {
            let rules = self.issuance.pricing(&card.city)?;
            if rules.refunds_fee(card.issued_at_ms, closure.updated_at_ms) {
                payments.refund(fee_order, now_ms).await?;
            }
        }
        let id = refund_order_id(&closure.card_id);
        let Some(order) = store.order(&id).await? else { return Ok(()) };
        if order.state != OrderState::RefundPending {
            return Ok(());
        }
        let parts = store.refund_parts(&id).await?;
        let mut all = parts.iter().map(|p| p.amount.get()).sum::<i64>() == order.amount.get();
        for part in parts.iter().filter(|p| !p.refunded) {
            let request = RefundRequest {
                merchant_order_id: part.paid_order_id.clone(),
                refund_id: part.refund_id.clone(),
                amount: part.amount,
            };
            match payments.provider().refund(&request).await {
                Ok(RefundStatus::Succeeded) => db::part_refunded(store, &part.refund_id).await?,
                Ok(RefundStatus::Processing) | Err(PaymentError::Timeout) => all = false,
                Err(error) => return Err(ClosureError::Payment(error.into())),
            }
        }
        if all {
            payments.apply_event(&id, OrderEvent::RefundConfirmed, now_ms).await?;
        }
        Ok(())
    }

    /// The balance refund order and the fee order (when refunded) of a deleted card.
    pub(super) async fn refund_orders<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        closure: &Closure,
    ) -> Result<(Option<Order>, Option<Order>), ClosureError> {
        let store = payments.store();
        let refund = store.order(&refund_order_id(&closure.card_id)).await?;
        let card = store.phone_card(&closure.card_id).await?;
        let fee = match card.and_then(|c| c.fee_order_id) {
            Some(id) => {
                store.order(&id).await?.filter(|o| matches!(o.state, OrderState::RefundPending | OrderState::Refunded))
            }
            None => None,
        };
        Ok((refund, fee))
    }
}
