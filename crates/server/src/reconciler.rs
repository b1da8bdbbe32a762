//! The service's payment rounds in the background: orders whose paid notification is late are
//! polled at the provider, orders left unpaid past their expiry are closed there, and refunds the
//! provider has not confirmed are asked for again (`PaymentService::reconcile_waiting`). Nothing
//! else moves them: a phone that paid and went away, or a notification the provider lost, would
//! otherwise leave the money paid and the order `created` for good.
//!
//! A round runs every [`RECONCILE_EVERY`] (tokio's timer; the time it reconciles at is the
//! service's clock), reading the waiting orders [`RECONCILE_PAGE`] at a time. An order that
//! cannot be reconciled yet is logged and tried again at the next round; a round that fails (the
//! store) is logged and tried again at the next tick. [`serve`](crate::serve) starts the rounds with
//! the service and stops them after it: the round running ends after the order it is on, waited
//! for up to [`STOP_WAIT_MAX`] (a provider that does not answer), then cut short — money-safe:
//! every step is a compare-and-swap transition and every provider call idempotent, so the next
//! start takes the order up where it was.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::AppState;

/// How often waiting orders are reconciled.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(5);

/// Orders read at a time in a round.
pub const RECONCILE_PAGE: u32 = 200;

/// How long [`Reconciler::stop`] waits for the round running.
pub const STOP_WAIT_MAX: Duration = Duration::from_secs(10);

/// The rounds' task; [`stop`](Reconciler::stop) ends it between two orders, dropping it aborts it.
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
                    biased;
                    _ = stopped.changed() => return,
                    _ = ticks.tick() => round(&state, &stopped).await,
                }
            }
        });
        Reconciler { stop, task: Some(task) }
    }

    /// Ends the rounds once the round running, if any, is done with the order it is on (or cut
    /// short after [`STOP_WAIT_MAX`]).
    pub async fn stop(mut self) {
        // The task may have ended already (a panic, logged by the runtime): nothing to stop.
        let _ = self.stop.send(true);
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(STOP_WAIT_MAX, &mut task).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "the payment reconciliation task failed"),
                Err(_) => {
                    tracing::warn!("the payment reconciliation round did not end in time: cut short");
                    task.abort();
                    // Gone before the caller closes the store under it.
                    let _ = task.await;
                }
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

async fn round(state: &AppState, stopped: &watch::Receiver<bool>) {
    let payments = &state.services().payments;
    match payments.reconcile_waiting_until(state.now_ms(), RECONCILE_PAGE, || *stopped.borrow()).await {
        Ok(changed) => {
            for order in &changed {
                tracing::info!(
                    order = %order.merchant_order_id,
                    state = order.state.name(),
                    "payment order moved since its round listed it"
                );
            }
        }
        Err(error) => tracing::error!(%error, "payment reconciliation round failed; tried again at the next"),
    }
}
