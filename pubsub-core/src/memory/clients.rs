//! The broker's [`Publisher`] and [`Subscriber`]: request checks, simulation, long polling.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::queue::Queue;
use super::simulation::{with_entry_failures, Operation};
use super::MemoryBroker;
use crate::transport::{
    BoxFuture, EntryError, MessageId, OutgoingMessage, Publisher, ReceivedMessage, Subscriber,
    TransportError, VisibilityChange, MAX_BATCH,
};

/// SNS's and SQS's limit on a message, and on the payload of a publish batch: 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Publishes to the topics of a [`MemoryBroker`]; from [`MemoryBroker::publisher`].
#[derive(Debug, Clone)]
pub struct MemoryPublisher {
    pub(super) broker: MemoryBroker,
}

/// Reads one queue of a [`MemoryBroker`]; from [`MemoryBroker::subscriber`].
#[derive(Debug, Clone)]
pub struct MemorySubscriber {
    pub(super) broker: MemoryBroker,
    pub(super) queue: Arc<Queue>,
}

/// Refuses an empty batch or one over [`MAX_BATCH`], as SNS and SQS do.
fn check_batch(what: &str, len: usize) -> Result<(), TransportError> {
    match len {
        0 => Err(TransportError::Invalid(format!("empty {what} batch"))),
        len if len > MAX_BATCH => {
            Err(TransportError::Invalid(format!("{len} entries in one {what} batch; at most {MAX_BATCH}")))
        }
        _ => Ok(()),
    }
}

impl Publisher for MemoryPublisher {
    /// Publishes to a topic given by ARN or name.
    ///
    /// Refused whole (`Invalid`) when empty, over [`MAX_BATCH`] messages, or over
    /// [`MAX_PAYLOAD_BYTES`] of bodies and attributes; `TopicNotFound` for an unknown topic.
    fn publish_batch<'a>(
        &'a self,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Result<MessageId, EntryError>>, TransportError>> {
        Box::pin(async move {
            let simulation = &self.broker.inner.simulation;
            simulation.begin(Operation::PublishBatch).await?;
            check_batch("publish", messages.len())?;
            let payload: usize = messages.iter().map(OutgoingMessage::size).sum();
            if payload > MAX_PAYLOAD_BYTES {
                return Err(TransportError::Invalid(format!(
                    "publish batch of {payload} bytes; at most {MAX_PAYLOAD_BYTES}"
                )));
            }
            let topic = self.broker.topic(topic)?;
            let failures = simulation.take_entry_failures(Operation::PublishBatch);
            Ok(topic.publish(&messages, &failures))
        })
    }
}

impl MemorySubscriber {
    /// The queue's name.
    pub fn queue_name(&self) -> &str {
        &self.queue.name
    }

    /// The queue's URL, `memory://queue/{name}`.
    pub fn queue_url(&self) -> &str {
        &self.queue.url
    }
}

impl Subscriber for MemorySubscriber {
    /// Receives up to `max` (1 to [`MAX_BATCH`], else `Invalid`) messages, oldest first.
    ///
    /// Returns as soon as one is visible, else waits up to `wait` (woken by new messages,
    /// visibility changes and visibility expiry). The broker's latency is paid first, on top
    /// of the wait.
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, TransportError>> {
        Box::pin(async move {
            self.broker.inner.simulation.begin(Operation::Receive).await?;
            if !(1..=MAX_BATCH).contains(&max) {
                return Err(TransportError::Invalid(format!(
                    "cannot receive {max} messages at once; 1 to {MAX_BATCH}"
                )));
            }
            let give_up_at = Instant::now() + wait;
            loop {
                // Registered before looking, so a message pushed after the look wakes us.
                let notified = self.queue.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();

                let now = Instant::now();
                let taken = self.queue.receive(max, now);
                if let Some(dead_letter_queue) = taken.dead_letter_queue {
                    self.broker.dead_letter(&self.queue.name, &dead_letter_queue, taken.dead);
                }
                if !taken.messages.is_empty() || now >= give_up_at {
                    return Ok(taken.messages);
                }
                let wake_at = taken.next_visible_at.map_or(give_up_at, |at| at.min(give_up_at));
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep_until(wake_at) => {}
                }
            }
        })
    }

    /// Deletes messages by the handle of their latest receive; another handle is refused with
    /// a `ReceiptHandleIsInvalid` entry error (not retryable).
    fn ack_batch(
        &self,
        receipt_handles: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Result<(), EntryError>>, TransportError>> {
        Box::pin(async move {
            let simulation = &self.broker.inner.simulation;
            simulation.begin(Operation::AckBatch).await?;
            check_batch("ack", receipt_handles.len())?;
            let failures = simulation.take_entry_failures(Operation::AckBatch);
            Ok(with_entry_failures(receipt_handles, &failures, |handles| self.queue.delete(handles)))
        })
    }

    /// Sets each message's visibility timeout from now (0: visible at once). Entry errors:
    /// `ReceiptHandleIsInvalid` for a handle that is not the latest, `MessageNotInflight`
    /// for a message whose timeout already ran out, `InvalidParameterValue` over 12 hours.
    fn change_visibility_batch(
        &self,
        changes: Vec<VisibilityChange>,
    ) -> BoxFuture<'_, Result<Vec<Result<(), EntryError>>, TransportError>> {
        Box::pin(async move {
            let simulation = &self.broker.inner.simulation;
            simulation.begin(Operation::ChangeVisibilityBatch).await?;
            check_batch("change visibility", changes.len())?;
            let failures = simulation.take_entry_failures(Operation::ChangeVisibilityBatch);
            let changes = changes.into_iter().map(|change| (change.receipt_handle, change.timeout)).collect();
            Ok(with_entry_failures(changes, &failures, |changes| {
                self.queue.change_visibility(changes, Instant::now())
            }))
        })
    }

    fn visibility_timeout(&self) -> Duration {
        self.queue.options().visibility_timeout
    }

    fn queue_name(&self) -> &str {
        &self.queue.name
    }
}
