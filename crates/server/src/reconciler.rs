//! The service's payment rounds in the background: orders whose paid notification is late are
//! polled at the provider, orders left unpaid past their expiry are closed there, and refunds the
//! provider has not confirmed are asked for again (`PaymentService::reconcile_waiting`). Nothing
//! else moves them: a phone that paid and went away, or a notification the provider lost, would
//! otherwise leave the money paid and the order `created` for good.
//!
//! A round runs every [`RECONCILE_EVERY`] on the service's clock, at most [`RECONCILE_BATCH`]
//! orders at a time (a full round is followed by the next at once). A round that fails (the
//! store) is logged and tried again at the next tick. [`serve`](crate::serve) starts the rounds
//! with the service and stops them after it, between two rounds.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::AppState;

/// How often waiting orders are reconciled.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// Most orders one round reconciles.
pub const RECONCILE_BATCH: u32 = 200;

/// The rounds' task; [`stop`](Reconciler::stop) ends it between two rounds, dropping it aborts it.
#[derive(Debug)]
pub struct Reconciler {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Reconciler {
    /// Starts the rounds over `state`, the first after `every`. Must be called inside a tokio
    /// runtime.
    pub fn start(state: AppState, every: Duration) -> Reconciler {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.changed() => return,
                }
                while round(&state).await == Round::Full {
                    if *stopped.borrow() {
                        return;
                    }
                }
            }
        });
        Reconciler { stop, task: Some(task) }
    }

    /// Ends the rounds once the one running, if any, is done.
    pub async fn stop(mut self) {
        // The task may have ended already (a panic, logged by the runtime): nothing to stop.
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                tracing::error!(%error, "the payment reconciliation task failed");
            }
        }
    }
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Round {
    /// As many orders changed as a round takes: there may be more.
    Full,
    Done,
}

async fn round(state: &AppState) -> Round {
    let payments = &state.services().payments;
    match payments.reconcile_waiting(state.now_ms(), RECONCILE_BATCH).await {
        Ok(changed) => {
            for order in &changed {
                tracing::info!(
                    order = %order.merchant_order_id,
                    state = order.state.name(),
                    "payment reconciled with the provider"
                );
            }
            if changed.len() >= RECONCILE_BATCH as usize {
                Round::Full
            } else {
                Round::Done
            }
        }
        Err(error) => {
            tracing::error!(%error, "payment reconciliation round failed; tried again at the next");
            Round::Done
        }
    }
}
