//! Handling what one receive brought: the messages of a FIFO message group one after another
//! in receive order, everything else in parallel; what cannot be handled goes back at once.
//!
//! Permits: every received message holds its permit of the concurrency semaphore until it is
//! settled, also while it waits in its chain. The semaphore thus bounds the messages in flight
//! from the queue's point of view (received, not yet deleted or released), which is what a
//! receive is sized by and what the heartbeat extends; handing a waiting message's permit to
//! a poller would let receives bring more messages than the concurrency, to wait in chains
//! for longer than their visibility. The price: while a chain waits, fewer handlers run than
//! the concurrency; a smaller `receive_limit` on a FIFO queue keeps chains short.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::settle::Settle;
use super::workers::{Handed, Work};
use super::{InFlight, Shared};
use crate::chains::fifo_chains;
use crate::outcome::Disposition;
use crate::transport::{ReceivedMessage, Subscriber};

/// Why a received message went back to the queue unhandled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// The daemon is stopping: received after the stop began, or waiting in its chain then.
    Stopping,
    /// An earlier message of its FIFO group, received with it, failed: handling this one
    /// first would break the group's order.
    BehindFailure,
}

impl Release {
    fn reason(self) -> &'static str {
        match self {
            Release::Stopping => "the daemon is stopping",
            Release::BehindFailure => "an earlier message of its FIFO group failed",
        }
    }
}

impl<S: Subscriber> Shared<S> {
    /// Hands the messages of one receive, each with its permit, to the handler workers: one
    /// work per chain (see [`fifo_chains`]). If a shutdown has begun they all go back to the queue
    /// instead. After a stop for idleness they are handled: another poller took the queue for
    /// idle while this one's receive was bringing them (pollers are awaited before the drain,
    /// so they are drained).
    pub(super) fn start(
        self: &Arc<Self>,
        received: Vec<ReceivedMessage>,
        permits: Vec<OwnedSemaphorePermit>,
    ) {
        if self.stopping() {
            for mut message in received {
                let receipt_handle = std::mem::take(&mut message.receipt_handle);
                self.release(&message, receipt_handle, Release::Stopping);
            }
            return;
        }
        let standard = received.iter().all(|message| message.group_id.is_none());
        // All of them are in flight from now on, those waiting in a chain too: the heartbeat
        // keeps them invisible until their turn comes.
        let now = Instant::now();
        let visible_until = now + self.subscriber.visibility_timeout();
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        // Paired with their permits as they are handed on: a vector of the pairs would be one
        // more allocation of a batch, and a large one.
        let handed = received.into_iter().zip(permits).map(|(mut message, permit)| {
            let receipt_handle = std::mem::take(&mut message.receipt_handle);
            let key = in_flight.insert(InFlight {
                receipt_handle,
                received_at: now,
                visible_until,
                extending: true,
            });
            Handed { message, key, permit }
        });
        // A standard queue's messages are each a chain of one: no chains to build.
        if standard {
            handed.for_each(|handed| self.work.push(Work::One(handed)));
            return;
        }
        let handed: Vec<Handed> = handed.collect();
        drop(in_flight);
        let chains = fifo_chains(&handed, |handed| handed.message.group_id.as_deref());
        let mut handed: Vec<_> = handed.into_iter().map(Some).collect();
        for chain in chains {
            let chain: Vec<_> = chain
                .into_iter()
                .map(|index| handed[index].take().expect("each index is in one chain"))
                .collect();
            self.work.push(Work::Chain(chain));
        }
    }

    /// Handles the messages of a chain one after another. After one that is to be retried,
    /// or once a shutdown has begun, the rest go back to the queue unhandled: the first
    /// counts as started when its receive handed it over, as any message does.
    pub(super) async fn run_chain(&self, chain: Vec<Handed>) {
        let mut release = None;
        for (position, Handed { message, key, permit }) in chain.into_iter().enumerate() {
            if release.is_none() && position > 0 && self.stopping() {
                release = Some(Release::Stopping);
            }
            match release {
                Some(why) => {
                    // Out of the heartbeat's sight first, as after a handler.
                    let receipt_handle = self.in_flight.lock().expect("in-flight lock").remove(key);
                    self.release(&message, receipt_handle, why);
                }
                None => {
                    if let Disposition::Retry(_) = self.handle(message, key).await {
                        release = Some(Release::BehindFailure);
                    }
                }
            }
            drop(permit);
        }
    }

    /// Dispatches `message` (in flight under `key`, which holds its receipt handle), queues
    /// its delete or visibility change, and reports it.
    pub(super) async fn handle(&self, mut message: ReceivedMessage, key: u64) -> Disposition {
        self.health.message_started();
        // The id goes to the handler's context and back to the outcome, not copied.
        let message_id = std::mem::take(&mut message.message_id);
        let handled = self.dispatcher.dispatch_with_id(&message, message_id).await;
        // Out of the heartbeat's sight before the outcome is queued, so no extension can
        // follow (and undo) a nack.
        let receipt_handle = self.in_flight.lock().expect("in-flight lock").remove(key);
        let disposition = handled.outcome.disposition;
        // The offloaded body goes only after its message, and only if asked for.
        let payload = if self.dispatcher.delete_payloads { handled.payload.clone() } else { None };
        self.send(match disposition {
            Disposition::Delete => Settle::Delete(receipt_handle, payload),
            Disposition::Retry(delay) => Settle::Visibility(receipt_handle, delay),
        });
        self.report.lock().expect("report lock").record(&handled);
        self.health.message_finished(handled.outcome.verdict);
        if let Some(hook) = &self.on_outcome {
            hook(&handled);
        }
        disposition
    }

    /// Makes `message`, whose receipt handle is `receipt_handle`, visible again at once,
    /// unhandled, and counts it.
    fn release(&self, message: &ReceivedMessage, receipt_handle: String, why: Release) {
        match why {
            Release::Stopping => {
                self.report.lock().expect("report lock").released += 1;
                self.dispatcher.telemetry.released();
                tracing::debug!(message_id = %message.message_id, reason = why.reason(), "released unhandled");
            }
            Release::BehindFailure => {
                self.report.lock().expect("report lock").released_behind_failure += 1;
                tracing::info!(message_id = %message.message_id, group_id = message.group_id.as_deref(),
                    reason = why.reason(), "released unhandled");
            }
        }
        self.send(Settle::Visibility(receipt_handle, Duration::ZERO));
    }

    /// Whether a shutdown has begun (and not a stop for idleness, after which what was
    /// received is still handled).
    fn stopping(&self) -> bool {
        self.stop_receiving.is_cancelled() && !self.stopped_idle.load(Ordering::SeqCst)
    }
}
