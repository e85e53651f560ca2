//! SqsPublisher: straight to an SQS queue with `SendMessageBatch`, no topic between. Each
//! message carries the `media_type` attribute and its other attributes, typed, as SNS raw
//! delivery would give them to the queue, so a consumer (ours, or the Python
//! microcosm-pubsub's) cannot tell the two apart; a delay as `DelaySeconds`; to a `.fifo`
//! queue, the message group and deduplication id. Each entry's failure is returned with its
//! reason.

use aws_config::SdkConfig;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use pubsub_core::transport::{
    BoxFuture, Destination, EntryError, MessageId, OutgoingMessage, Publisher, TransportError, MAX_DELAY,
};

use crate::batch::{batch_results, entries, message_attributes, sdk_attribute};
use crate::errors::{transport_error, Resource};
use crate::metrics::RequestCounter;

/// Publishes straight to SQS queues (by URL): the `destination` of
/// [`Publisher::publish_batch`] is a queue URL.
///
/// ```no_run
/// # async fn example(config: &aws_config::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
///
/// use pubsub_aws::SqsPublisher;
/// use pubsub_core::producer::PublishOptions;
/// use pubsub_core::{Producer, TopicMap, UntypedMessage};
///
/// let queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/reminders";
/// let producer = Producer::new(SqsPublisher::new(config), TopicMap::new().default_topic(queue));
/// let reminder = UntypedMessage::created("Reminder", "http://example.com/api/v1/reminder/1");
/// producer.produce_with_options(&reminder, &PublishOptions::new().delay(Duration::from_secs(60))).await?;
/// # Ok(())
/// # }
/// ```
///
/// To publish to topics and queues alike, by where each media type is routed, use
/// [`AwsPublisher`](crate::AwsPublisher).
#[derive(Debug, Clone)]
pub struct SqsPublisher {
    client: aws_sdk_sqs::Client,
}

impl SqsPublisher {
    /// A publisher with the configuration `config` (see [`load_config`](crate::load_config)).
    pub fn new(config: &SdkConfig) -> SqsPublisher {
        SqsPublisher { client: crate::metrics::sqs_client(config, None) }
    }

    /// As [`new`](SqsPublisher::new), counting requests with `counter`.
    pub fn with_counter(config: &SdkConfig, counter: &RequestCounter) -> SqsPublisher {
        SqsPublisher { client: crate::metrics::sqs_client(config, Some(counter)) }
    }

    /// A publisher over a client of your own (a custom HTTP client, a test double).
    pub fn with_client(client: aws_sdk_sqs::Client) -> SqsPublisher {
        SqsPublisher { client }
    }

    /// The SDK client, for what this type does not cover.
    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }
}

impl Publisher for SqsPublisher {
    fn publish_batch<'a>(
        &'a self,
        queue_url: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Result<MessageId, EntryError>>, TransportError>> {
        Box::pin(async move {
            let fifo = Destination::of(queue_url).is_fifo();
            let entries = entries(&messages, |id, message| {
                let mut entry = SendMessageBatchRequestEntry::builder().id(id).message_body(&message.body);
                for (name, value) in message_attributes(message) {
                    entry = entry.message_attributes(name, sdk_attribute!(aws_sdk_sqs, &value)?);
                }
                // The producer refused a delay to a FIFO queue, and one over 15 minutes.
                if let Some(delay) = message.delay.filter(|_| !fifo) {
                    entry = entry.delay_seconds(delay_seconds(delay));
                }
                // Standard queues take neither (the producer checked that FIFO ones have a group).
                if fifo {
                    entry = entry
                        .set_message_group_id(message.group_id.clone())
                        .set_message_deduplication_id(message.deduplication_id.clone());
                }
                entry.build()
            })?;
            let output = self
                .client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| transport_error(e, Resource::Queue(queue_url)))?;
            Ok(batch_results(
                messages.len(),
                "SQS",
                output.successful().iter().map(|s| (Some(s.id()), Some(s.message_id().to_owned()))),
                output.failed().iter().map(|f| (f.id(), f.code(), f.message(), f.sender_fault())),
            ))
        })
    }
}

/// SQS's `DelaySeconds` for `delay`: whole seconds, a part of a second rounded up, at most
/// [`MAX_DELAY`].
fn delay_seconds(delay: std::time::Duration) -> i32 {
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    seconds.min(MAX_DELAY.as_secs()) as i32
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_delay_is_whole_seconds_rounded_up_within_the_limit() {
        assert_eq!(delay_seconds(Duration::ZERO), 0);
        assert_eq!(delay_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(delay_seconds(Duration::from_secs(2)), 2);
        assert_eq!(delay_seconds(Duration::from_secs(3600)), 900);
    }
}
