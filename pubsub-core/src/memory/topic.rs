//! One SNS topic: its subscriptions, filter policies, and the fan-out of a publish; on a FIFO
//! topic, groups, deduplication and ordered delivery to FIFO queues.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use tokio::time::Instant;

use super::dedup::{content_id, Deduplication};
use super::notification::{new_message_id, sns_timestamp, NotificationBatch, PendingNotification};
use super::options::{SubscriptionOptions, TopicOptions};
use super::queue::{Body, NewMessage, Queue};
use super::simulation::injected_entry_error;
use crate::transport::{
    Attributes, Destination, EntryError, MessageId, OutgoingMessage, TransportError, MEDIA_TYPE_ATTRIBUTE,
};
use crate::uuid::Uuid;

pub(crate) struct Topic {
    pub arn: String,
    /// Whether it is a FIFO topic (its name ends in `.fifo`).
    pub fifo: bool,
    options: Mutex<TopicOptions>,
    /// FIFO: the deduplication ids of the last 5 minutes.
    deduplication: Mutex<Deduplication<String>>,
    /// Copied on write, so a publish reads a snapshot without holding the lock.
    subscriptions: Mutex<Arc<Vec<Arc<Subscription>>>>,
}

struct Subscription {
    arn: String,
    queue: Arc<Queue>,
    options: SubscriptionOptions,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An entry error SNS gives for a message it refuses.
fn invalid_parameter(message: &str) -> EntryError {
    EntryError { code: "InvalidParameter".to_owned(), message: message.to_owned(), retryable: false }
}

impl Topic {
    pub(crate) fn new(name: &str, arn: String, options: TopicOptions) -> Self {
        Topic {
            arn,
            fifo: Destination::of(name).is_fifo(),
            options: Mutex::new(options),
            deduplication: Mutex::new(Deduplication::new()),
            subscriptions: Mutex::new(Arc::new(Vec::new())),
        }
    }

    pub(crate) fn set_options(&self, options: TopicOptions) {
        *lock(&self.options) = options;
    }

    /// Subscribes `queue` (again: its options are replaced); returns the subscription ARN.
    /// Refused (`Invalid`) across FIFO and standard, as SNS refuses it.
    pub(crate) fn subscribe(
        &self,
        queue: Arc<Queue>,
        options: SubscriptionOptions,
    ) -> Result<String, TransportError> {
        match (self.fifo, queue.fifo) {
            (true, false) => {
                return Err(TransportError::Invalid(format!(
                    "FIFO topic `{}` delivers only to FIFO queues, and `{}` is a standard queue",
                    self.arn, queue.name
                )))
            }
            (false, true) => {
                return Err(TransportError::Invalid(format!(
                    "FIFO queue `{}` can only be subscribed to a FIFO topic, and `{}` is a standard topic",
                    queue.name, self.arn
                )))
            }
            _ => {}
        }
        let mut subscriptions = lock(&self.subscriptions);
        let mut updated: Vec<Arc<Subscription>> = subscriptions.iter().cloned().collect();
        let arn = match updated.iter().position(|existing| Arc::ptr_eq(&existing.queue, &queue)) {
            Some(index) => {
                let arn = updated[index].arn.clone();
                updated[index] = Arc::new(Subscription { arn: arn.clone(), queue, options });
                arn
            }
            None => {
                let arn = format!("{}:{}", self.arn, new_message_id());
                updated.push(Arc::new(Subscription { arn: arn.clone(), queue, options }));
                arn
            }
        };
        *subscriptions = Arc::new(updated);
        Ok(arn)
    }

    /// Delivers every message not in `failures` to every subscription that accepts it, in
    /// order; one result per message: its SNS message id, or why it was not taken. A FIFO
    /// topic refuses a message without a group, or without a deduplication id unless it has
    /// content-based deduplication, and answers a duplicate of the last 5 minutes with the
    /// original's message id without delivering it again.
    pub(crate) fn publish(
        &self,
        messages: &[OutgoingMessage],
        failures: &BTreeSet<usize>,
        now: Instant,
    ) -> Vec<Result<MessageId, EntryError>> {
        let content_based = lock(&self.options).content_based_deduplication;
        // (message, its deduplication id on a FIFO topic), for the ones to deliver.
        let mut accepted: Vec<(&OutgoingMessage, Option<String>, Uuid)> = Vec::new();
        let results: Vec<Result<MessageId, EntryError>> = messages
            .iter()
            .enumerate()
            .map(|(index, message)| {
                if failures.contains(&index) {
                    return Err(injected_entry_error());
                }
                let uuid = Uuid::random();
                let message_id = uuid.text();
                if !self.fifo {
                    accepted.push((message, None, uuid));
                    return Ok(message_id);
                }
                if message.group_id.is_none() {
                    return Err(invalid_parameter(
                        "Invalid parameter: The MessageGroupId parameter is required for FIFO topics",
                    ));
                }
                let deduplication_id = match &message.deduplication_id {
                    Some(id) => id.clone(),
                    None if content_based => content_id(&message.body),
                    None => {
                        return Err(invalid_parameter(
                            "Invalid parameter: The topic should either have ContentBasedDeduplication \
                             enabled or MessageDeduplicationId provided explicitly",
                        ))
                    }
                };
                if let Some(original) =
                    lock(&self.deduplication).duplicate_of(deduplication_id.clone(), &message_id, now)
                {
                    return Ok(original);
                }
                accepted.push((message, Some(deduplication_id), uuid));
                Ok(message_id)
            })
            .collect();
        let timestamp = sns_timestamp(SystemTime::now());
        // One copy of each media type of the batch (most batches have one).
        let mut known: Vec<Arc<str>> = Vec::new();
        let media_types: Vec<Arc<str>> = accepted
            .iter()
            .map(|(message, _, _)| {
                let found = known.iter().find(|media_type| ***media_type == *message.media_type).cloned();
                found.unwrap_or_else(|| {
                    let media_type: Arc<str> = Arc::from(&*message.media_type);
                    known.push(media_type.clone());
                    media_type
                })
            })
            .collect();
        let subscriptions = Arc::clone(&lock(&self.subscriptions));
        for subscription in subscriptions.iter() {
            // Shared by the batch's notifications, as long as a queue keeps them.
            let batch = Arc::new(NotificationBatch::new(&self.arn, &subscription.arn, &timestamp));
            // Sized for all: a filter gives no exact size, and growing it was three more
            // allocations of a batch.
            let mut deliveries: Vec<NewMessage> = Vec::with_capacity(accepted.len());
            deliveries.extend(
                accepted
                    .iter()
                    .zip(&media_types)
                    .filter(|((message, _, _), _)| subscription.accepts(message))
                    .map(|((message, deduplication_id, sns_message_id), media_type)| {
                        let mut delivery =
                            subscription.delivery(&batch, *sns_message_id, message, media_type);
                        if self.fifo {
                            delivery.group_id = message.group_id.clone();
                            delivery.deduplication_id = deduplication_id.clone();
                        }
                        delivery
                    }),
            );
            if deliveries.is_empty() {
                continue;
            }
            for refused in subscription.queue.deliver(deliveries, now) {
                // Subscriptions pair FIFO with FIFO only, so this is not expected.
                tracing::warn!(topic = %self.arn, queue = %subscription.queue.name, %refused, "delivery refused");
            }
        }
        results
    }
}

impl Subscription {
    fn accepts(&self, message: &OutgoingMessage) -> bool {
        self.options.filter.as_ref().is_none_or(|filter| filter.accepts_message(message))
    }

    /// What the queue receives: the raw message with its attributes (SQS message
    /// attributes), or a notification (whose `MessageAttributes` holds them).
    /// The notification is written out when received (see [`Body::Notification`]).
    fn delivery(
        &self,
        batch: &Arc<NotificationBatch>,
        sns_message_id: Uuid,
        message: &OutgoingMessage,
        media_type: &Arc<str>,
    ) -> NewMessage {
        if self.options.raw_delivery {
            NewMessage::new(Uuid::random(), message.body.clone()).with_attributes(sqs_attributes(message))
        } else {
            let notification = PendingNotification {
                message_id: sns_message_id,
                batch: batch.clone(),
                message: message.body.as_str().into(),
                media_type: media_type.clone(),
                attributes: (!message.attributes.is_empty()).then(|| Box::new(message.attributes.clone())),
            };
            NewMessage::new(Uuid::random(), Body::Notification(notification))
        }
    }
}

/// A message's SQS message attributes as raw delivery and direct sends give them: its
/// attributes and `media_type`.
pub(crate) fn sqs_attributes(message: &OutgoingMessage) -> Attributes {
    let mut attributes = message.attributes.clone();
    attributes.insert(
        MEDIA_TYPE_ATTRIBUTE.to_owned(),
        crate::transport::AttributeValue::from(&*message.media_type),
    );
    attributes
}
