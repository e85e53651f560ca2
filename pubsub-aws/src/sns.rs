//! SnsPublisher: `PublishBatch` with the `media_type` attribute on every message (and the
//! message's other attributes, each a `String`) and each entry's failure returned with its
//! reason.

use aws_config::SdkConfig;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use pubsub_core::transport::{
    AttributeValue, BoxFuture, Destination, EntryError, MessageId, OutgoingMessage, Publisher,
    TransportError, MEDIA_TYPE_ATTRIBUTE,
};

use crate::batch::{entries, entry_error, entry_index, no_results};
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
                let mut entry =
                    PublishBatchRequestEntry::builder().id(id).message(&message.body).message_attributes(
                        MEDIA_TYPE_ATTRIBUTE,
                        sns_attribute(&message.media_type.as_str().into())?,
                    );
                for (name, value) in &message.attributes {
                    // The message's own media type wins over an attribute of the same name.
                    if name != MEDIA_TYPE_ATTRIBUTE {
                        entry = entry.message_attributes(name, sns_attribute(value)?);
                    }
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
            let mut results: Vec<Result<MessageId, EntryError>> = no_results(messages.len(), "SNS");
            for success in output.successful() {
                if let (Some(index), Some(id)) =
                    (entry_index(success.id(), results.len()), success.message_id())
                {
                    results[index] = Ok(id.to_owned());
                }
            }
            for failure in output.failed() {
                if let Some(index) = entry_index(Some(failure.id()), results.len()) {
                    results[index] =
                        Err(entry_error(failure.code(), failure.message(), failure.sender_fault()));
                }
            }
            Ok(results)
        })
    }
}

/// A message attribute as SNS takes it.
fn sns_attribute(value: &AttributeValue) -> Result<MessageAttributeValue, aws_sdk_sns::error::BuildError> {
    let builder = MessageAttributeValue::builder().data_type(value.data_type());
    match value {
        AttributeValue::Text(text) | AttributeValue::Number(text) => builder.string_value(text),
        AttributeValue::Binary(bytes) => {
            builder.binary_value(aws_sdk_sns::primitives::Blob::new(bytes.clone()))
        }
    }
    .build()
}
