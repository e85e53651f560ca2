//! SnsPublisher: `PublishBatch` with the `media_type` attribute on every message (and the
//! message's other attributes, typed), the FIFO group and deduplication id to `.fifo` topics,
//! and each entry's failure returned with its reason.

use aws_config::SdkConfig;
use aws_sdk_sns::types::PublishBatchRequestEntry;
use pubsub_core::transport::{
    BoxFuture, Destination, EntryError, MessageId, OutgoingMessage, Publisher, TransportError,
};

use crate::batch::{batch_results, entries, message_attributes, sdk_attribute};
use crate::errors::{transport_error, Resource};
use crate::metrics::RequestCounter;

/// Publishes to SNS topics (by ARN).
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
}

impl SnsPublisher {
    /// A publisher with the configuration `config` (see [`load_config`](crate::load_config)).
    pub fn new(config: &SdkConfig) -> SnsPublisher {
        SnsPublisher { client: crate::metrics::sns_client(config, None) }
    }

    /// As [`new`](SnsPublisher::new), counting requests with `counter`.
    pub fn with_counter(config: &SdkConfig, counter: &RequestCounter) -> SnsPublisher {
        SnsPublisher { client: crate::metrics::sns_client(config, Some(counter)) }
    }

    /// A publisher over a client of your own (a custom HTTP client, a test double).
    pub fn with_client(client: aws_sdk_sns::Client) -> SnsPublisher {
        SnsPublisher { client }
    }

    /// The SDK client, for what this type does not cover.
    pub fn client(&self) -> &aws_sdk_sns::Client {
        &self.client
    }
}

impl Publisher for SnsPublisher {
    fn publish_batch<'a>(
        &'a self,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Result<MessageId, EntryError>>, TransportError>> {
        Box::pin(async move {
            let fifo = Destination::of(topic).is_fifo();
            let entries = entries(&messages, |id, message| {
                let mut entry = PublishBatchRequestEntry::builder().id(id).message(&message.body);
                for (name, value) in message_attributes(message) {
                    entry = entry.message_attributes(name, sdk_attribute!(aws_sdk_sns, &value)?);
                }
                // Standard topics take neither (the producer checked that FIFO ones have a group).
                if fifo {
                    entry = entry
                        .set_message_group_id(message.group_id.clone())
                        .set_message_deduplication_id(message.deduplication_id.clone());
                }
                entry.build()
            })?;
            let output = self
                .client
                .publish_batch()
                .topic_arn(topic)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|e| transport_error(e, Resource::Topic(topic)))?;
            Ok(batch_results(
                messages.len(),
                "SNS",
                output.successful().iter().map(|s| (s.id(), s.message_id().map(str::to_owned))),
                output.failed().iter().map(|f| (f.id(), f.code(), f.message(), f.sender_fault())),
            ))
        })
    }
}
