//! One SNS topic: its subscriptions, filter policies, and the fan-out of a publish.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use super::notification::{new_message_id, notification_body, sns_timestamp, NotificationFields};
use super::options::SubscriptionOptions;
use super::queue::{NewMessage, Queue};
use super::simulation::injected_entry_error;
use crate::transport::{Attributes, EntryError, MessageId, OutgoingMessage, MEDIA_TYPE_ATTRIBUTE};

pub(crate) struct Topic {
    pub arn: String,
    /// Copied on write, so a publish reads a snapshot without holding the lock.
    subscriptions: Mutex<Arc<Vec<Arc<Subscription>>>>,
}

struct Subscription {
    arn: String,
    queue: Arc<Queue>,
    options: SubscriptionOptions,
}

impl Topic {
    pub(crate) fn new(arn: String) -> Self {
        Topic { arn, subscriptions: Mutex::new(Arc::new(Vec::new())) }
    }

    /// Subscribes `queue` (again: its options are replaced); returns the subscription ARN.
    pub(crate) fn subscribe(&self, queue: Arc<Queue>, options: SubscriptionOptions) -> String {
        let mut subscriptions = self.subscriptions.lock().unwrap_or_else(PoisonError::into_inner);
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
        arn
    }

    /// Delivers every message not in `failures` to every subscription that accepts it; one
    /// result per message: its SNS message id, or the injected failure.
    pub(crate) fn publish(
        &self,
        messages: &[OutgoingMessage],
        failures: &BTreeSet<usize>,
    ) -> Vec<Result<MessageId, EntryError>> {
        let results: Vec<Result<MessageId, EntryError>> =
            (0..messages.len())
                .map(|index| {
                    if failures.contains(&index) {
                        Err(injected_entry_error())
                    } else {
                        Ok(new_message_id())
                    }
                })
                .collect();
        let timestamp = sns_timestamp(SystemTime::now());
        let subscriptions = Arc::clone(&self.subscriptions.lock().unwrap_or_else(PoisonError::into_inner));
        for subscription in subscriptions.iter() {
            let deliveries: Vec<NewMessage> = messages
                .iter()
                .zip(&results)
                .filter_map(|(message, result)| {
                    let sns_message_id = result.as_ref().ok()?;
                    subscription
                        .accepts(message)
                        .then(|| subscription.delivery(self, sns_message_id, message, &timestamp))
                })
                .collect();
            if !deliveries.is_empty() {
                subscription.queue.push(deliveries);
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
    fn delivery(
        &self,
        topic: &Topic,
        sns_message_id: &str,
        message: &OutgoingMessage,
        timestamp: &str,
    ) -> NewMessage {
        if self.options.raw_delivery {
            let mut attributes = message.attributes.clone();
            attributes.insert(MEDIA_TYPE_ATTRIBUTE.to_owned(), message.media_type.as_str().into());
            NewMessage { message_id: new_message_id(), body: message.body.clone(), attributes }
        } else {
            let body = notification_body(&NotificationFields {
                message_id: sns_message_id,
                topic_arn: &topic.arn,
                subscription_arn: &self.arn,
                message: &message.body,
                timestamp,
                media_type: &message.media_type,
                attributes: &message.attributes,
            });
            NewMessage { message_id: new_message_id(), body, attributes: Attributes::new() }
        }
    }
}
