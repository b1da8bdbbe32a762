//! The payment order's state machine.
//!
//! ```text
//! top-up:      created ─paid→ paid ─→ loading ─→ loaded
//! transfer:    created ─funded from the old card→ paid ─→ loading ─→ loaded (never refunded)
//! balance refund (a deleted card's balance): created ─→ refund_pending ─→ refunded
//! sign-up fee: created ─paid→ paid ─→ issuing ─→ issued ─(fee refunded by policy)┐
//!                 │            │          │                                        ▼
//!                 │            └──────────┴─(not delivered)──────────→ refund_pending ─→ refunded
//!                 └─(declined, expired, closed)─→ closed
//! ```
//!
//! [`OrderState::apply`] is the only way from one state to another and refuses every transition
//! not drawn above, so a late notification cannot pay a closed order and a refund cannot follow a
//! load.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What an order pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// Money loaded onto a card over the air.
    TopUp,
    /// The card's sign-up (issuance) fee.
    SignUpFee,
    /// A transferred balance loaded onto the new phone's card over the air; funded by the old
    /// card's closure (`transfers_payable`), never by a provider payment, so never refunded.
    Transfer,
    /// A deleted card's balance paid back through the provider (partial refunds of its top-ups).
    BalanceRefund,
}

const KINDS: [OrderKind; 4] = [OrderKind::TopUp, OrderKind::SignUpFee, OrderKind::Transfer, OrderKind::BalanceRefund];

impl OrderKind {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            OrderKind::TopUp => "top_up",
            OrderKind::SignUpFee => "sign_up_fee",
            OrderKind::Transfer => "transfer",
            OrderKind::BalanceRefund => "balance_refund",
        }
    }

    /// Reads a stored name back.
    pub fn parse(name: &str) -> Option<OrderKind> {
        KINDS.into_iter().find(|kind| kind.name() == name)
    }
}

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Opened with the provider, not paid yet.
    Created,
    /// The provider confirmed the payment; the money is ours to deliver or refund.
    Paid,
    /// A top-up is being loaded onto the card (MAC2 handed out, TAC not seen yet).
    Loading,
    /// The card confirmed the load (verified TAC). Final.
    Loaded,
    /// A card is being issued for the fee.
    Issuing,
    /// The card was issued; the fee is earned.
    Issued,
    /// Not delivered (or the fee refunded by policy): a refund is asked of the provider.
    RefundPending,
    /// The provider confirmed the refund. Final.
    Refunded,
    /// Never paid: declined, expired or closed. Final.
    Closed,
}

const STATES: [OrderState; 9] = [
    OrderState::Created,
    OrderState::Paid,
    OrderState::Loading,
    OrderState::Loaded,
    OrderState::Issuing,
    OrderState::Issued,
    OrderState::RefundPending,
    OrderState::Refunded,
    OrderState::Closed,
];

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderEvent {
    /// The provider says paid (a verified notification or a query).
    PaymentConfirmed,
    /// The provider says it will never be paid (declined, expired, closed).
    PaymentFailed,
    /// Delivery began: the load's MAC2 or the card's personalization was handed out.
    DeliveryStarted,
    /// The card proved the delivery.
    DeliveryConfirmed,
    /// The money goes back: not delivered, or a fee refunded by policy.
    RefundRequested,
    /// The provider confirmed the refund.
    RefundConfirmed,
}

/// A transition the state machine does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    /// The order's kind.
    pub kind: OrderKind,
    /// The state it was in.
    pub from: OrderState,
    /// The event refused.
    pub event: OrderEvent,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} order in state {} cannot take {:?}", self.kind.name(), self.from.name(), self.event)
    }
}

impl std::error::Error for IllegalTransition {}

impl OrderState {
    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            OrderState::Created => "created",
            OrderState::Paid => "paid",
            OrderState::Loading => "loading",
            OrderState::Loaded => "loaded",
            OrderState::Issuing => "issuing",
            OrderState::Issued => "issued",
            OrderState::RefundPending => "refund_pending",
            OrderState::Refunded => "refunded",
            OrderState::Closed => "closed",
        }
    }

    /// Reads a stored name back.
    pub fn parse(name: &str) -> Option<OrderState> {
        STATES.into_iter().find(|state| state.name() == name)
    }

    /// No event leaves this state.
    pub fn is_final(self) -> bool {
        matches!(self, OrderState::Loaded | OrderState::Refunded | OrderState::Closed)
    }

    /// The provider holds the rider's money for this order and we have neither delivered nor
    /// decided to refund it (the `payments_unapplied` account).
    pub fn holds_unapplied_money(self) -> bool {
        matches!(self, OrderState::Paid | OrderState::Loading | OrderState::Issuing)
    }

    /// `event` already took this order here (or past here): applying it again changes nothing.
    /// This is how a duplicated notification or a retried call is recognised.
    pub fn has_taken(self, event: OrderEvent) -> bool {
        use OrderState as S;
        match event {
            OrderEvent::PaymentConfirmed => !matches!(self, S::Created | S::Closed),
            OrderEvent::PaymentFailed => self == S::Closed,
            OrderEvent::DeliveryStarted => matches!(self, S::Loading | S::Loaded | S::Issuing | S::Issued),
            OrderEvent::DeliveryConfirmed => matches!(self, S::Loaded | S::Issued),
            OrderEvent::RefundRequested => matches!(self, S::RefundPending | S::Refunded),
            OrderEvent::RefundConfirmed => self == S::Refunded,
        }
    }

    /// The state after `event`, or the refusal.
    pub fn apply(self, kind: OrderKind, event: OrderEvent) -> Result<OrderState, IllegalTransition> {
        use OrderEvent as E;
        use OrderState as S;
        let next = match (self, event, kind) {
            (S::Created, E::PaymentConfirmed, kind) if kind != OrderKind::BalanceRefund => S::Paid,
            (S::Created, E::PaymentFailed, _) => S::Closed,
            (S::Paid, E::DeliveryStarted, OrderKind::TopUp | OrderKind::Transfer) => S::Loading,
            (S::Paid, E::DeliveryStarted, OrderKind::SignUpFee) => S::Issuing,
            (S::Loading, E::DeliveryConfirmed, OrderKind::TopUp | OrderKind::Transfer) => S::Loaded,
            (S::Issuing, E::DeliveryConfirmed, OrderKind::SignUpFee) => S::Issued,
            // A transfer's money came from the old card, not from a payment: it loads or waits.
            (S::Paid | S::Loading | S::Issuing, E::RefundRequested, kind) if kind != OrderKind::Transfer => {
                S::RefundPending
            }
            // The closure that emptied the card posted the balance to `refunds_payable`.
            (S::Created, E::RefundRequested, OrderKind::BalanceRefund) => S::RefundPending,
            // A fee refunded when the card is deleted, where the city's policy says so. Loaded
            // money is not refunded through its order: it is on the card, and the card's
            // balance refund is its own movement.
            (S::Issued, E::RefundRequested, OrderKind::SignUpFee) => S::RefundPending,
            (S::RefundPending, E::RefundConfirmed, _) => S::Refunded,
            _ => return Err(IllegalTransition { kind, from: self, event }),
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderEvent as E;
    use OrderState as S;

    const EVENTS: [OrderEvent; 6] = [
        E::PaymentConfirmed,
        E::PaymentFailed,
        E::DeliveryStarted,
        E::DeliveryConfirmed,
        E::RefundRequested,
        E::RefundConfirmed,
    ];

    fn run(kind: OrderKind, events: &[OrderEvent]) -> Result<OrderState, IllegalTransition> {
        events.iter().try_fold(S::Created, |state, &event| state.apply(kind, event))
    }

    #[test]
    fn the_happy_paths() {
        let deliver = [E::PaymentConfirmed, E::DeliveryStarted, E::DeliveryConfirmed];
        assert_eq!(run(OrderKind::TopUp, &deliver), Ok(S::Loaded));
        assert_eq!(run(OrderKind::SignUpFee, &deliver), Ok(S::Issued));
        assert_eq!(run(OrderKind::TopUp, &[E::PaymentFailed]), Ok(S::Closed));
        let failed_load = [E::PaymentConfirmed, E::DeliveryStarted, E::RefundRequested, E::RefundConfirmed];
        assert_eq!(run(OrderKind::TopUp, &failed_load), Ok(S::Refunded));
        let never_started = [E::PaymentConfirmed, E::RefundRequested, E::RefundConfirmed];
        assert_eq!(run(OrderKind::SignUpFee, &never_started), Ok(S::Refunded));
        let fee_back = [E::PaymentConfirmed, E::DeliveryStarted, E::DeliveryConfirmed, E::RefundRequested];
        assert_eq!(run(OrderKind::SignUpFee, &fee_back), Ok(S::RefundPending));
    }

    #[test]
    fn illegal_transitions_are_refused() {
        let refused = |kind, events: &[OrderEvent], from, event| {
            assert_eq!(run(kind, events), Err(IllegalTransition { kind, from, event }), "{events:?}");
        };
        // A late notification cannot pay a closed order.
        refused(OrderKind::TopUp, &[E::PaymentFailed, E::PaymentConfirmed], S::Closed, E::PaymentConfirmed);
        // Nothing is delivered before it is paid.
        refused(OrderKind::TopUp, &[E::DeliveryStarted], S::Created, E::DeliveryStarted);
        // Loaded money is on the card: its order is never refunded.
        let loaded = [E::PaymentConfirmed, E::DeliveryStarted, E::DeliveryConfirmed];
        refused(OrderKind::TopUp, &[&loaded[..], &[E::RefundRequested]].concat(), S::Loaded, E::RefundRequested);
        // Paid once.
        refused(OrderKind::TopUp, &[E::PaymentConfirmed, E::PaymentConfirmed], S::Paid, E::PaymentConfirmed);
        // A refund is confirmed only after it was asked for.
        refused(OrderKind::SignUpFee, &[E::PaymentConfirmed, E::RefundConfirmed], S::Paid, E::RefundConfirmed);
        // Delivery is confirmed only while it runs.
        refused(OrderKind::TopUp, &[E::PaymentConfirmed, E::DeliveryConfirmed], S::Paid, E::DeliveryConfirmed);
    }

    #[test]
    fn repeated_events_are_recognised_and_never_reapplied() {
        for state in STATES {
            for event in EVENTS {
                for kind in [OrderKind::TopUp, OrderKind::SignUpFee] {
                    // An event that already took the order cannot also be a legal move from
                    // there, or a duplicate would act twice.
                    assert!(!(state.has_taken(event) && state.apply(kind, event).is_ok()), "{state:?} {event:?}");
                }
            }
        }
        assert!(S::Loading.has_taken(E::PaymentConfirmed), "a late duplicate notification");
        assert!(!S::Closed.has_taken(E::PaymentConfirmed), "a payment after closing is not a duplicate");
        assert!(!S::RefundPending.has_taken(E::DeliveryConfirmed), "a load after the refund was decided");
    }

    #[test]
    fn final_states_take_no_event_and_names_round_trip() {
        for state in STATES {
            assert_eq!(OrderState::parse(state.name()), Some(state));
            for kind in [OrderKind::TopUp, OrderKind::SignUpFee] {
                let unreachable = matches!(
                    (kind, state),
                    (OrderKind::TopUp, S::Issuing | S::Issued) | (OrderKind::SignUpFee, S::Loading | S::Loaded)
                );
                if unreachable {
                    continue;
                }
                let moves = EVENTS.iter().filter(|&&event| state.apply(kind, event).is_ok()).count();
                assert_eq!(state.is_final(), moves == 0, "{state:?} {kind:?}");
            }
        }
        // `Issued` is final for delivery but a fee can still be refunded.
        assert!(!S::Issued.is_final());
        assert_eq!(OrderState::parse("LOADED"), None);
        assert_eq!(OrderKind::parse("sign_up_fee"), Some(OrderKind::SignUpFee));
        for kind in KINDS {
            assert_eq!(OrderKind::parse(kind.name()), Some(kind));
        }
    }

    #[test]
    fn a_transfer_loads_and_is_never_refunded() {
        let refused = |kind, events: &[OrderEvent], from, event| {
            assert_eq!(run(kind, events), Err(IllegalTransition { kind, from, event }), "{events:?}");
        };
        let funded = [E::PaymentConfirmed, E::DeliveryStarted, E::DeliveryConfirmed];
        assert_eq!(run(OrderKind::Transfer, &funded), Ok(S::Loaded));
        // Its money came from the old card: there is no payment to refund.
        refused(OrderKind::Transfer, &[E::PaymentConfirmed, E::RefundRequested], S::Paid, E::RefundRequested);
        refused(
            OrderKind::Transfer,
            &[E::PaymentConfirmed, E::DeliveryStarted, E::RefundRequested],
            S::Loading,
            E::RefundRequested,
        );
    }

    #[test]
    fn a_balance_refund_is_only_refunded() {
        let refused = |kind, events: &[OrderEvent], from, event| {
            assert_eq!(run(kind, events), Err(IllegalTransition { kind, from, event }), "{events:?}");
        };
        assert_eq!(run(OrderKind::BalanceRefund, &[E::RefundRequested, E::RefundConfirmed]), Ok(S::Refunded));
        // Nobody pays it, nothing is delivered for it.
        refused(OrderKind::BalanceRefund, &[E::PaymentConfirmed], S::Created, E::PaymentConfirmed);
        refused(OrderKind::BalanceRefund, &[E::DeliveryStarted], S::Created, E::DeliveryStarted);
        // A top-up's refund still needs it paid first.
        refused(OrderKind::TopUp, &[E::RefundRequested], S::Created, E::RefundRequested);
    }
}
