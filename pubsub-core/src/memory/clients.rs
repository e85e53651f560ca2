//! The broker's [`Publisher`] and [`Subscriber`]: request checks, simulation, long polling.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::queue::{NewMessage, Queue};
use super::simulation::{with_entry_failures, Operation};
use super::topic::sqs_attributes;
use super::MemoryBroker;
use crate::transport::{
    BoxFuture, Destination, EntryError, MessageId, OutgoingMessage, Publisher, ReceivedMessage, Subscriber,
    TransportError, VisibilityChange, MAX_BATCH,
};

/// SNS's and SQS's limit on a message, and on the payload of a publish batch: 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Publishes to the topics of a [`MemoryBroker`], and sends to its queues by URL; from
/// [`MemoryBroker::publisher`].
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
    /// Publishes to a topic given by ARN or name (SNS `PublishBatch`), or sends to a queue
    /// given by URL (`memory://queue/{name}`, SQS `SendMessageBatch`, counted as
    /// [`Operation::SendMessageBatch`]).
    ///
    /// A queue gets each body as is, with the message's attributes and `media_type` as SQS
    /// message attributes (as raw delivery from a topic gives them); see
    /// [`MemoryBroker`]'s module docs for delays, groups and deduplication, and for the entry
    /// errors of messages SNS or SQS would refuse.
    ///
    /// Refused whole (`Invalid`) when empty, over [`MAX_BATCH`] messages, or over
    /// [`MAX_PAYLOAD_BYTES`] of bodies and attributes; `TopicNotFound` for an unknown topic,
    /// `QueueNotFound` for an unknown queue.
    fn publish_batch<'a>(
        &'a self,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Result<MessageId, EntryError>>, TransportError>> {
        Box::pin(async move {
            let to_queue = Destination::of(topic).is_queue();
            let operation = if to_queue { Operation::SendMessageBatch } else { Operation::PublishBatch };
            let what = if to_queue { "send" } else { "publish" };
            let simulation = &self.broker.inner.simulation;
            simulation.begin(operation).await?;
            check_batch(what, messages.len())?;
            let payload: usize = messages.iter().map(OutgoingMessage::size).sum();
            if payload > MAX_PAYLOAD_BYTES {
                return Err(TransportError::Invalid(format!(
                    "{what} batch of {payload} bytes; at most {MAX_PAYLOAD_BYTES}"
                )));
            }
            let now = Instant::now();
            if to_queue {
                let queue = self.broker.queue(topic)?;
                let failures = simulation.take_entry_failures(operation);
                let messages = messages.into_iter().map(|message| {
                    let attributes = sqs_attributes(&message);
                    NewMessage {
                        group_id: message.group_id,
                        deduplication_id: message.deduplication_id,
                        delay: message.delay,
                        ..NewMessage::new(crate::uuid::Uuid::random(), message.body)
                            .with_attributes(attributes)
                    }
                });
                return Ok(with_entry_failures(messages.collect(), &failures, |messages| {
                    queue.send(messages, now)
                }));
            }
            let topic = self.broker.topic(topic)?;
            let failures = simulation.take_entry_failures(operation);
            Ok(topic.publish(&messages, &failures, now))
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
    /// Receives up to `max` (1 to [`MAX_BATCH`], else `Invalid`) messages, oldest first (on
    /// a FIFO queue, in order per group, skipping the groups with a message in flight).
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
    fn ack_batch<'a>(
        &'a self,
        receipt_handles: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>> {
        Box::pin(async move {
            let simulation = &self.broker.inner.simulation;
            simulation.begin(Operation::AckBatch).await?;
            check_batch("ack", receipt_handles.len())?;
            let failures = simulation.take_entry_failures(Operation::AckBatch);
            Ok(with_entry_failures(receipt_handles.to_vec(), &failures, |handles| {
                self.queue.delete(&handles)
            }))
        })
    }

    /// Sets each message's visibility timeout from now (0: visible at once). Entry errors:
    /// `ReceiptHandleIsInvalid` for a handle that is not the latest, `MessageNotInflight`
    /// for a message whose timeout already ran out, `InvalidParameterValue` over 12 hours.
    fn change_visibility_batch<'a>(
        &'a self,
        changes: &'a [VisibilityChange],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>> {
        Box::pin(async move {
            let simulation = &self.broker.inner.simulation;
            simulation.begin(Operation::ChangeVisibilityBatch).await?;
            check_batch("change visibility", changes.len())?;
            let failures = simulation.take_entry_failures(Operation::ChangeVisibilityBatch);
            let changes =
                changes.iter().map(|change| (change.receipt_handle.as_str(), change.timeout)).collect();
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
