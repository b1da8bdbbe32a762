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
        let transfer = db::transfer_in(&mut transaction.db(), code).await?.ok_or(ClosureError::UnknownTransferCode)?;
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
                if !db::claim_transfer_in(&mut transaction.db(), code, &phone.device_id, now_ms).await? {
                    transaction.rollback().await?;
                    return Err(ClosureError::ClaimedByAnotherPhone);
                }
                transaction.commit().await?;
            }
        }
        let mut connection = store.reader().await?;
        let transfer = db::transfer_in(&mut connection.db(), code).await?.ok_or(ClosureError::UnknownTransferCode)?;
        let claimed_at_ms = transfer.claimed_at_ms.unwrap_or(now_ms);
        let card = match &transfer.to_card_id {
            Some(card) => {
                drop(connection);
                let card = store.phone_card(card).await?.ok_or_else(|| ClosureError::UnknownCard(card.clone()))?;
                self.issuance.image_of(card)?
            }
            None => {
                let existing = store::card_of_device_in(&mut connection.db(), &phone.device_id, &transfer.city).await?;
                // No connection held while issuing takes the store's writer turn.
                drop(connection);
                let issued = match existing.filter(|card| card.issued_at_ms < claimed_at_ms) {
                    Some(card) => Err(ClosureError::PhoneHasCard(card.card_id)),
                    None => self
                        .issuance
                        .issue_without_fee(payments, phone, &transfer.city, channel, at, now_ms)
                        .await
                        .map_err(ClosureError::from),
                };
                match issued {
                    Ok(card) => card,
                    Err(error) => {
                        // This phone cannot take the card (not eligible, a card of the city
                        // already): the transfer waits for another phone's claim again.
                        let mut transaction = store.begin_write().await?;
                        db::unclaim_transfer_in(&mut transaction.db(), code, &phone.device_id).await?;
                        transaction.commit().await?;
                        return Err(error);
                    }
                }
            }
        };
        let order_id = transfer_order_id(&transfer.closure_id);
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
                store::insert_order_in(&mut transaction.db(), &order).await?;
            }
            db::bind_transfer_in(&mut transaction.db(), code, &card.card.card_id, funded.then_some(&order_id)).await?;
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

/// The load order of closure `closure_id`'s transfer: `X` and 24 hex digits of its SHA-256, so
/// that the new phone does not learn the old card's serial from it.
fn transfer_order_id(closure_id: &str) -> MerchantOrderId {
    use sha2::{Digest, Sha256};
    let digest = hex::encode_upper(Sha256::digest(closure_id.as_bytes()));
    MerchantOrderId::parse(&format!("X{}", &digest[..24])).expect("X and 24 hex digits is an order ID")
}
