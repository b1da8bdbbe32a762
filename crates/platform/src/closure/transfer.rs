//! The new phone claims a transfer: the same city's card issued to it without a fee, and a load
//! order of kind `transfer` for the moved balance, funded from `transfers_payable`, that the
//! phone loads through the over-the-air top-up flow (`OtaService`), tearing recovery included.

use yitong_profile::apdu;
use yitong_profile::DateTime;

use super::{ClosureError, ClosureService};
use crate::issuance::{IssuedCard, Phone};
use crate::ota::OtaService;
use crate::payments::{MerchantOrderId, Order, OrderEvent, OrderKind, OrderState, PaymentProvider, PaymentService};
use crate::pricing::Channel;
use crate::store::{self, closures as db};

/// What the new phone gets for a transfer code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferClaim {
    /// The new card (its image for the phone's SE).
    pub card: IssuedCard,
    /// The funded load order (`paid`); none when the old card was empty.
    pub load_order: Option<Order>,
    /// The INITIALIZE FOR LOAD the phone sends first (then `OtaService::authorize`, `complete`).
    pub initialize_command: Option<Vec<u8>>,
}

impl ClosureService {
    /// Phone `phone` claims transfer `code` through `channel`: its card and funded load order. A
    /// repeated claim of the same phone returns the same; another phone's, or the old phone's
    /// own, is refused.
    pub async fn claim_transfer<P: PaymentProvider>(
        &self,
        payments: &PaymentService<P>,
        code: &str,
        phone: &Phone,
        channel: Channel,
        at: DateTime,
        now_ms: i64,
    ) -> Result<TransferClaim, ClosureError> {
        let code = &super::code_sha256(code);
        let store = payments.store();
        let mut transaction = store.begin_write().await?;
        let transfer = db::transfer_in(&mut transaction, code).await?.ok_or(ClosureError::UnknownTransferCode)?;
        if phone.device_id == transfer.from_device_id {
            transaction.rollback().await?;
            return Err(ClosureError::OwnTransfer);
        }
        match &transfer.to_device_id {
            Some(device) if *device != phone.device_id => {
                transaction.rollback().await?;
                return Err(ClosureError::ClaimedByAnotherPhone);
            }
            Some(_) => transaction.rollback().await?,
            None => {
                if !db::claim_transfer_in(&mut transaction, code, &phone.device_id, now_ms).await? {
                    transaction.rollback().await?;
                    return Err(ClosureError::ClaimedByAnotherPhone);
                }
                transaction.commit().await?;
            }
        }
        let mut connection = store.pool().acquire().await?;
        let transfer = db::transfer_in(&mut connection, code).await?.ok_or(ClosureError::UnknownTransferCode)?;
        let claimed_at_ms = transfer.claimed_at_ms.unwrap_or(now_ms);
        let card = match &transfer.to_card_id {
            Some(card) => {
                let card = store.phone_card(card).await?.ok_or_else(|| ClosureError::UnknownCard(card.clone()))?;
                self.issuance.image_of(card)?
            }
            None => {
                let existing = store::card_of_device_in(&mut connection, &phone.device_id, &transfer.city).await?;
                if let Some(card) = existing.filter(|card| card.issued_at_ms < claimed_at_ms) {
                    return Err(ClosureError::PhoneHasCard(card.card_id));
                }
                self.issuance.issue_without_fee(payments, phone, &transfer.city, channel, at, now_ms).await?
            }
        };
        drop(connection);
        let order_id = MerchantOrderId::parse(&format!("X{}", transfer.from_card_id))
            .expect("X and a card ID of at most 31 characters is an order ID");
        let funded = transfer.amount.get() > 0;
        if transfer.to_card_id.is_none() {
            let mut transaction = store.begin_write().await?;
            if funded {
                let order = Order {
                    merchant_order_id: order_id.clone(),
                    kind: OrderKind::Transfer,
                    provider: payments.provider().name().to_owned(),
                    card_id: Some(card.card.card_id.clone()),
                    amount: transfer.amount,
                    state: OrderState::Created,
                    provider_transaction_id: None,
                    created_at_ms: now_ms,
                    updated_at_ms: now_ms,
                    version: 0,
                };
                store::insert_order_in(&mut transaction, &order).await?;
            }
            db::bind_transfer_in(&mut transaction, code, &card.card.card_id, funded.then_some(&order_id)).await?;
            transaction.commit().await?;
        }
        if !funded {
            return Ok(TransferClaim { card, load_order: None, initialize_command: None });
        }
        // Funded from the old card's balance (`transfers_payable` → `payments_unapplied`).
        let order = payments.apply_event(&order_id, OrderEvent::PaymentConfirmed, now_ms).await?;
        let city = self.city(&card.card)?;
        let amount = u32::try_from(order.amount.get()).map_err(|_| ClosureError::BadAnswer {
            command: "INITIALIZE FOR LOAD",
            why: "the transfer is larger than a card holds".to_owned(),
        })?;
        let initialize = apdu::initialize_for_load(amount, OtaService::terminal_id(city));
        Ok(TransferClaim { card, load_order: Some(order), initialize_command: Some(initialize) })
    }
}
