//! What a rider (and an operator) sees of a card: the card as issued, the balance the platform
//! believes it holds, and its history of fees, loads and refunds.
//!
//! The balance is the ledger's: the card's liability account, i.e. the loads the platform
//! confirmed or recovered minus what it knows left the card. Fares paid at gates do not reach
//! the platform yet (they come with clearing), so this is the platform's view; the phone's
//! secure element holds the true balance (GET BALANCE).

use crate::issuance::PhoneCard;
use crate::ledger::Account;
use crate::payments::{Order, OrderKind, OrderState};
use crate::store::{self, Store, StoreError};

/// What a card's history entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryKind {
    /// The sign-up fee.
    Fee,
    /// A top-up (paid; loaded, loading, or waiting).
    Load,
    /// A top-up whose money is returned (refund pending or refunded).
    Refund,
    /// The balance moved in from the phone's earlier card (a transfer's load order).
    TransferIn,
    /// The balance returned to the rider at the card's deletion.
    BalanceRefund,
}

impl HistoryKind {
    /// `fee`, `load`, `refund`, `transfer_in` or `balance_refund`.
    pub fn name(self) -> &'static str {
        match self {
            HistoryKind::Fee => "fee",
            HistoryKind::Load => "load",
            HistoryKind::Refund => "refund",
            HistoryKind::TransferIn => "transfer_in",
            HistoryKind::BalanceRefund => "balance_refund",
        }
    }
}

/// One entry of a card's history: an order, and for a load on the card its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// What it is.
    pub kind: HistoryKind,
    /// The order.
    pub order: Order,
    /// The load record's ID, counter and TAC (a TAC only if the card's answer carried one),
    /// when the load is on the card (`confirmed` or `recovered`).
    pub load: Option<LoadShown>,
}

/// The card-side facts of a load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadShown {
    /// `<terminal ID>-<number>`.
    pub tap_id: String,
    /// The card's online counter of the load.
    pub counter: u16,
    /// The verified TAC.
    pub tac: Option<[u8; 4]>,
}

/// A card with its believed balance and history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardView {
    /// The card as issued.
    pub card: PhoneCard,
    /// `active`, `closing` or `closed` (card closure).
    pub state: String,
    /// The balance the platform's ledger believes the card holds, fen (see the module doc).
    pub balance_fen: i64,
    /// Newest first.
    pub history: Vec<HistoryEntry>,
}

impl Store {
    /// The view of `card`: believed balance and history (its fee order and top-up orders, at
    /// most [`crate::store::CARD_ORDERS_LISTED_MAX`] of them, newest first).
    pub async fn card_view(&self, card: PhoneCard) -> Result<CardView, StoreError> {
        // One snapshot: a load confirmed meanwhile shows with its order, or not at all.
        let mut snapshot = self.begin_read().await?;
        // The liability is a credit balance: negative debits.
        let balance_fen = -store::balance_in(&mut snapshot.db(), &Account::CardLiability(card.card_id.clone())).await?;
        let mut history = Vec::new();
        let mut loads = store::loads_on_card_in(&mut snapshot.db(), &card.card_id).await?;
        for order in store::orders_of_card_in(&mut snapshot.db(), &card.card_id).await? {
            let kind = match (order.kind, order.state) {
                (OrderKind::SignUpFee, _) => HistoryKind::Fee,
                (OrderKind::TopUp, OrderState::RefundPending | OrderState::Refunded) => HistoryKind::Refund,
                (OrderKind::TopUp, _) => HistoryKind::Load,
                (OrderKind::Transfer, _) => HistoryKind::TransferIn,
                (OrderKind::BalanceRefund, _) => HistoryKind::BalanceRefund,
            };
            let load = loads.remove(&order.merchant_order_id).map(|l| LoadShown {
                tap_id: l.record.tap_id().to_string(),
                counter: l.record.counter,
                tac: l.record.tac,
            });
            history.push(HistoryEntry { kind, order, load });
        }
        if let Some(id) = &card.fee_order_id {
            if let Some(order) = store::order_in(&mut snapshot.db(), id).await? {
                history.push(HistoryEntry { kind: HistoryKind::Fee, order, load: None });
            }
        }
        history.sort_by(|a, b| {
            (b.order.created_at_ms, b.order.merchant_order_id.as_str())
                .cmp(&(a.order.created_at_ms, a.order.merchant_order_id.as_str()))
        });
        let state = store::closures::card_state_in(&mut snapshot.db(), &card.card_id)
            .await?
            .unwrap_or_else(|| "active".to_owned());
        snapshot.commit().await?;
        Ok(CardView { card, state, balance_fen, history })
    }
}
