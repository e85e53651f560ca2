//! SnsPublisher: `PublishBatch` with the `media_type` attribute on every message and each
//! entry's failure returned with its reason.

use aws_config::SdkConfig;
use aws_sdk_sns::types::{MessageAttributeValue, PublishBatchRequestEntry};
use pubsub_core::transport::{
    BoxFuture, EntryError, MessageId, OutgoingMessage, Publisher, TransportError, MAX_BATCH,
    MEDIA_TYPE_ATTRIBUTE,
};

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
        SnsPublisher { client: aws_sdk_sns::Client::new(config) }
    }

    /// As [`new`](SnsPublisher::new), counting requests with `counter`.
    pub fn with_counter(config: &SdkConfig, counter: &RequestCounter) -> SnsPublisher {
        let config = aws_sdk_sns::config::Builder::from(config).interceptor(counter.clone()).build();
        SnsPublisher { client: aws_sdk_sns::Client::from_conf(config) }
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
            if messages.is_empty() || messages.len() > MAX_BATCH {
                return Err(TransportError::Invalid(format!(
                    "a batch holds 1 to 10 messages, not {}",
                    messages.len()
                )));
            }
            let entries = messages
                .iter()
                .enumerate()
                .map(|(index, message)| {
                    let media_type = MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(&message.media_type)
                        .build()
                        .map_err(|e| TransportError::Invalid(e.to_string()))?;
                    PublishBatchRequestEntry::builder()
                        .id(index.to_string())
                        .message(&message.body)
                        .message_attributes(MEDIA_TYPE_ATTRIBUTE, media_type)
                        .build()
                        .map_err(|e| TransportError::Invalid(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .publish_batch()
                .topic_arn(topic)
                .set_publish_batch_request_entries(Some(entries))
                .send()
                .await
                .map_err(|e| transport_error(e, Resource::Topic(topic)))?;
            let mut results: Vec<Result<MessageId, EntryError>> = (0..messages.len())
                .map(|_| {
                    Err(EntryError {
                        code: "NoResult".into(),
                        message: "SNS returned no result for this entry".into(),
                        retryable: true,
                    })
                })
                .collect();
            for success in output.successful() {
                if let (Some(index), Some(id)) =
                    (entry_index(success.id(), results.len()), success.message_id())
                {
                    results[index] = Ok(id.to_owned());
                }
            }
            for failure in output.failed() {
                if let Some(index) = entry_index(Some(failure.id()), results.len()) {
                    results[index] = Err(EntryError {
                        code: failure.code().to_owned(),
                        message: failure.message().unwrap_or_default().to_owned(),
                        retryable: !failure.sender_fault(),
                    });
                }
            }
            Ok(results)
        })
    }
}

/// The index an entry id stands for.
pub(crate) fn entry_index(id: Option<&str>, len: usize) -> Option<usize> {
    id?.parse::<usize>().ok().filter(|index| *index < len)
}
