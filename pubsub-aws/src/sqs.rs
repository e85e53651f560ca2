//! SqsSubscriber: long polling with `ApproximateReceiveCount`, `DeleteMessageBatch`, and
//! `ChangeMessageVisibilityBatch` for nacks and heartbeats; each entry's failure reported.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
    QueueAttributeName,
};
use pubsub_core::transport::{
    AttributeValue, BoxFuture, EntryError, ReceivedMessage, Subscriber, TransportError, VisibilityChange,
    MAX_BATCH,
};

use crate::batch::{batch_results, entries};
use crate::config::Timeouts;
use crate::errors::{transport_error, Resource};
use crate::metrics::RequestCounter;

/// SQS's longest long poll.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// Reads one SQS queue.
#[derive(Debug, Clone)]
pub struct SqsSubscriber {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    visibility_timeout: Duration,
    timeouts: Timeouts,
}

impl SqsSubscriber {
    /// A subscriber of `queue_url`; reads the queue's visibility timeout (and so checks the
    /// queue exists).
    pub async fn new(config: &SdkConfig, queue_url: &str) -> Result<SqsSubscriber, TransportError> {
        Self::from_client(crate::metrics::sqs_client(config, None), queue_url).await
    }

    /// As [`new`](SqsSubscriber::new), counting requests with `counter`.
    pub async fn with_counter(
        config: &SdkConfig,
        queue_url: &str,
        counter: &RequestCounter,
    ) -> Result<SqsSubscriber, TransportError> {
        Self::from_client(crate::metrics::sqs_client(config, Some(counter)), queue_url).await
    }

    async fn from_client(
        client: aws_sdk_sqs::Client,
        queue_url: &str,
    ) -> Result<SqsSubscriber, TransportError> {
        let attributes = client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::VisibilityTimeout)
            .send()
            .await
            .map_err(|e| transport_error(e, Resource::Queue(queue_url)))?;
        let seconds = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(30);
        Ok(SqsSubscriber {
            client,
            queue_url: queue_url.to_owned(),
            visibility_timeout: Duration::from_secs(seconds),
            timeouts: Timeouts::default(),
        })
    }

    /// A subscriber over a client of your own (a custom HTTP client, a test double), with the
    /// queue's visibility timeout given rather than read.
    pub fn with_client(
        client: aws_sdk_sqs::Client,
        queue_url: &str,
        visibility_timeout: Duration,
    ) -> SqsSubscriber {
        SqsSubscriber {
            client,
            queue_url: queue_url.to_owned(),
            visibility_timeout,
            timeouts: Timeouts::default(),
        }
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// The SDK client, for what this type does not cover.
    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }
}

impl Subscriber for SqsSubscriber {
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, TransportError>> {
        Box::pin(async move {
            let wait = wait.min(MAX_WAIT);
            let timeouts = aws_sdk_sqs::config::Builder::default().timeout_config(self.timeouts.config(wait));
            let output = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(max.clamp(1, MAX_BATCH) as i32)
                .wait_time_seconds(wait.as_secs() as i32)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_system_attribute_names(MessageSystemAttributeName::AwsTraceHeader)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .message_system_attribute_names(MessageSystemAttributeName::MessageDeduplicationId)
                .message_system_attribute_names(MessageSystemAttributeName::SequenceNumber)
                .message_attribute_names("All")
                .customize()
                .config_override(timeouts)
                .send()
                .await
                .map_err(|e| transport_error(e, Resource::Queue(&self.queue_url)))?;
            Ok(output.messages().iter().map(received_message).collect())
        })
    }

    fn ack_batch<'a>(
        &'a self,
        receipt_handles: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>> {
        Box::pin(async move {
            let entries = entries(receipt_handles, |id, receipt| {
                DeleteMessageBatchRequestEntry::builder().id(id).receipt_handle(*receipt).build()
            })?;
            let output = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| transport_error(e, Resource::Queue(&self.queue_url)))?;
            Ok(batch_results(
                receipt_handles.len(),
                "SQS",
                output.successful().iter().map(|s| (Some(s.id()), Some(()))),
                output.failed().iter().map(|f| (f.id(), f.code(), f.message(), f.sender_fault())),
            ))
        })
    }

    fn change_visibility_batch<'a>(
        &'a self,
        changes: &'a [VisibilityChange],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>> {
        Box::pin(async move {
            let entries = entries(changes, |id, change| {
                // SQS counts whole seconds; a part of a second rounds up.
                let seconds = change.timeout.as_secs() + u64::from(change.timeout.subsec_nanos() > 0);
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(id)
                    .receipt_handle(&change.receipt_handle)
                    .visibility_timeout(seconds.min(43_200) as i32)
                    .build()
            })?;
            let output = self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| transport_error(e, Resource::Queue(&self.queue_url)))?;
            Ok(batch_results(
                changes.len(),
                "SQS",
                output.successful().iter().map(|s| (Some(s.id()), Some(()))),
                output.failed().iter().map(|f| (f.id(), f.code(), f.message(), f.sender_fault())),
            ))
        })
    }

    fn visibility_timeout(&self) -> Duration {
        self.visibility_timeout
    }

    /// The last segment of the queue URL.
    fn queue_name(&self) -> &str {
        self.queue_url.trim_end_matches('/').rsplit('/').next().unwrap_or_default()
    }
}

/// What SQS handed out, as the transport-neutral message.
fn received_message(message: &aws_sdk_sqs::types::Message) -> ReceivedMessage {
    let system = |name: MessageSystemAttributeName| message.attributes().and_then(|a| a.get(&name)).cloned();
    let mut received = ReceivedMessage::new(
        message.message_id().unwrap_or_default(),
        message.receipt_handle().unwrap_or_default(),
        message.body().unwrap_or_default(),
    );
    received.receive_count = system(MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|count| count.parse().ok())
        .unwrap_or(1);
    received.attributes = message
        .message_attributes()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| Some((name.clone(), sqs_attribute_value(value)?)))
        .collect();
    received.trace_header = system(MessageSystemAttributeName::AwsTraceHeader);
    // Milliseconds since the epoch.
    received.sent_at = system(MessageSystemAttributeName::SentTimestamp)
        .and_then(|millis| millis.parse::<u64>().ok())
        .map(|millis| std::time::UNIX_EPOCH + Duration::from_millis(millis));
    received.group_id = system(MessageSystemAttributeName::MessageGroupId);
    received.deduplication_id = system(MessageSystemAttributeName::MessageDeduplicationId);
    received.sequence_number = system(MessageSystemAttributeName::SequenceNumber);
    received
}

/// An SQS message attribute's value, by its data type (custom types such as `String.id` by
/// their base type); `None` for one it cannot read.
pub(crate) fn sqs_attribute_value(
    value: &aws_sdk_sqs::types::MessageAttributeValue,
) -> Option<AttributeValue> {
    match value.data_type().split('.').next()? {
        "String" => Some(AttributeValue::Text(value.string_value()?.to_owned())),
        "Number" => Some(AttributeValue::Number(value.string_value()?.to_owned())),
        "Binary" => Some(AttributeValue::Binary(value.binary_value()?.as_ref().to_vec())),
        _ => None,
    }
}
