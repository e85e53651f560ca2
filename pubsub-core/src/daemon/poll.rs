//! The pollers: receive as many messages as there are free permits and hand them on (see
//! [`chain`](super::chain)).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;

use super::settle::retry_delay;
use super::{DaemonFailure, Shared};
use crate::transport::{Subscriber, TransportError, MAX_BATCH};

/// How long a long poll under way at the stop may go on before it is dropped.
const RECEIVE_GRACE: Duration = Duration::from_secs(1);

/// How long a poller waits for a full batch of permits before receiving fewer messages.
const BATCH_GRACE: Duration = Duration::from_millis(5);

/// After a short poll (a `wait_time` of zero) that found nothing, how long a poller waits
/// before the next, unless a settle is done with first: asking again at once was a busy loop
/// of empty receives while the last handlers ran (requests to SQS, a core taken from them).
const EMPTY_SHORT_POLL_PAUSE: Duration = Duration::from_millis(20);

/// One poller: receives while permits are free, until the stop.
pub(super) async fn poll_loop<S: Subscriber>(shared: Arc<Shared<S>>) {
    let mut failures = 0u32;
    let mut idle_streak = 0u32;
    while !shared.stop_receiving.is_cancelled() {
        let first = tokio::select! {
            permit = shared.permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = shared.stop_receiving.cancelled() => break,
        };
        let permits = shared.fill_batch(first).await;
        // Listening from before the receive, so that a settle done with while it is under way
        // is not missed.
        let settled = shared.settled.notified();
        tokio::pin!(settled);
        settled.as_mut().enable();
        let receiving = shared.health.receiving();
        let receive = shared.subscriber.receive(permits.len(), shared.config.wait_time);
        tokio::pin!(receive);
        let result = tokio::select! {
            result = &mut receive => result,
            // Stopping: a long poll under way gets a moment to bring what it has (released at
            // once below); then it is dropped. Most likely it was empty; if the server had
            // handed it messages, they reappear after their visibility timeout.
            () = shared.stop_receiving.cancelled() => match tokio::time::timeout(RECEIVE_GRACE, &mut receive).await {
                Ok(result) => result,
                Err(_) => break,
            },
        };
        drop(receiving);
        let received = match result {
            Ok(received) => {
                failures = 0;
                shared.health.received();
                received
            }
            Err(error) => {
                failures += 1;
                if shared.fails_past_the_limit(&error) {
                    break;
                }
                let delay = retry_delay(failures);
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "receive failed");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shared.stop_receiving.cancelled() => {}
                }
                continue;
            }
        };
        if received.is_empty() {
            // Idle takes two empty receives in a row with nothing in flight or unsettled: a
            // nack settled while the first receive was under way may have made a message
            // visible that the first did not see; the second started after it.
            idle_streak = if shared.stop_when_idle && shared.is_idle() { idle_streak + 1 } else { 0 };
            if idle_streak >= 2 {
                shared.stopped_idle.store(true, Ordering::SeqCst);
                shared.stop_receiving.cancel();
            } else if idle_streak == 0 && shared.config.wait_time.is_zero() {
                // Its permits go back while it waits.
                drop(permits);
                tokio::select! {
                    () = settled => {}
                    () = tokio::time::sleep(EMPTY_SHORT_POLL_PAUSE) => {}
                    () = shared.stop_receiving.cancelled() => {}
                }
            }
            continue;
        }
        idle_streak = 0;
        shared.start(received, permits);
    }
}

impl<S: Subscriber> Shared<S> {
    /// Records a failed receive; when receives have now failed for longer than the
    /// `receive_failure_limit`, records why the daemon fails and starts its stop.
    fn fails_past_the_limit(&self, error: &TransportError) -> bool {
        let (failing_for, attempts) = self.health.receive_failed(error);
        let Some(limit) = self.config.receive_failure_limit else { return false };
        // A receive failing during a stop already under way is no reason to fail the daemon.
        if failing_for <= limit || self.stop_receiving.is_cancelled() {
            return false;
        }
        let failure =
            DaemonFailure::ReceivesFailing { failing_for, limit, attempts, last_error: error.clone() };
        tracing::error!(%failure, "the daemon stops: receives keep failing");
        self.health.fail(failure);
        self.stop_receiving.cancel();
        true
    }

    /// Permits for one receive: a full batch when the other permits come back within
    /// [`BATCH_GRACE`] (handlers that just finished), else what there is. A full batch is one
    /// request for ten messages instead of several for a few.
    async fn fill_batch(&self, first: OwnedSemaphorePermit) -> Vec<OwnedSemaphorePermit> {
        let batch = self.config.receive_limit.clamp(1, MAX_BATCH).min(self.config.concurrency.max(1));
        let mut permits = Vec::with_capacity(batch);
        permits.push(first);
        while permits.len() < batch {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        let grace = tokio::time::sleep(BATCH_GRACE);
        tokio::pin!(grace);
        while permits.len() < batch {
            tokio::select! {
                permit = self.permits.clone().acquire_owned() => permits.push(permit.expect("the semaphore is never closed")),
                () = &mut grace => break,
                () = self.stop_receiving.cancelled() => break,
            }
        }
        permits
    }
}
