//! S3ObjectStore: pubsub-core's [`ObjectStore`] on S3 (feature `s3`), where large message
//! bodies are offloaded as AWS's extended client libraries do: one object per body, its key in
//! the pointer the message carries.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use pubsub_core::payload::{ObjectStore, ObjectStoreError, PayloadPointer};
use pubsub_core::transport::BoxFuture;

use crate::config::Timeouts;
use crate::metrics::RequestCounter;

/// What an upload or a download of a large body may take beyond the usual timeouts
/// ([`Timeouts::default`]): 10 MiB over a slow link.
const TRANSFER_TIME: Duration = Duration::from_secs(60);

/// Large payloads in S3: `put` writes an object, `get` reads it (it must be UTF-8: a message
/// body is text), `delete` removes it (a missing one is not an error).
///
/// ```no_run
/// # async fn example(config: &aws_config::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
/// use pubsub_aws::{AwsPublisher, S3ObjectStore};
/// use pubsub_core::payload::LargePayloads;
/// use pubsub_core::{Producer, TopicMap};
///
/// let topic = "arn:aws:sns:eu-west-1:123456789012:documents";
/// let producer = Producer::new(AwsPublisher::new(config), TopicMap::new().default_topic(topic))
///     .large_payloads(LargePayloads::new(S3ObjectStore::new(config), "acme-large-messages"));
/// # Ok(())
/// # }
/// ```
///
/// With an endpoint configured (`AWS_ENDPOINT_URL`, `--endpoint-url`: an emulator), buckets
/// are addressed by path (`http://host/bucket/key`), which every emulator and S3 itself serve,
/// instead of by host name (`http://bucket.host/key`), which needs DNS for each bucket.
#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: aws_sdk_s3::Client,
}

impl S3ObjectStore {
    /// A store with the configuration `config` (see [`load_config`](crate::load_config)).
    pub fn new(config: &SdkConfig) -> S3ObjectStore {
        S3ObjectStore { client: crate::metrics::s3_client(config, None) }
    }

    /// As [`new`](S3ObjectStore::new), counting requests with `counter`.
    pub fn with_counter(config: &SdkConfig, counter: &RequestCounter) -> S3ObjectStore {
        S3ObjectStore { client: crate::metrics::s3_client(config, Some(counter)) }
    }

    /// A store over a client of your own (a custom HTTP client, a test double).
    pub fn with_client(client: aws_sdk_s3::Client) -> S3ObjectStore {
        S3ObjectStore { client }
    }

    /// The SDK client, for what this type does not cover.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

/// The timeouts of a transfer: the usual ones and [`TRANSFER_TIME`].
fn transfer_timeouts() -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::default().timeout_config(Timeouts::default().config(TRANSFER_TIME))
}

impl ObjectStore for S3ObjectStore {
    fn put<'a>(
        &'a self,
        pointer: &'a PayloadPointer,
        body: String,
    ) -> BoxFuture<'a, Result<(), ObjectStoreError>> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(&pointer.bucket)
                .key(&pointer.key)
                .body(ByteStream::from(body.into_bytes()))
                .customize()
                .config_override(transfer_timeouts())
                .send()
                .await
                .map_err(|error| store_error(error, pointer))?;
            tracing::debug!(%pointer, "large payload stored");
            Ok(())
        })
    }

    fn get<'a>(&'a self, pointer: &'a PayloadPointer) -> BoxFuture<'a, Result<String, ObjectStoreError>> {
        Box::pin(async move {
            let output = self
                .client
                .get_object()
                .bucket(&pointer.bucket)
                .key(&pointer.key)
                .customize()
                .config_override(transfer_timeouts())
                .send()
                .await
                .map_err(|error| store_error(error, pointer))?;
            let bytes = output
                .body
                .collect()
                .await
                .map_err(|error| {
                    ObjectStoreError::Unavailable(format!("{pointer}: reading the object failed: {error}"))
                })?
                .into_bytes();
            String::from_utf8(bytes.into()).map_err(|error| ObjectStoreError::Refused {
                pointer: pointer.clone(),
                reason: format!("the object is not UTF-8 text ({error}), so it cannot be a message body"),
            })
        })
    }

    fn delete<'a>(&'a self, pointer: &'a PayloadPointer) -> BoxFuture<'a, Result<(), ObjectStoreError>> {
        Box::pin(async move {
            let deleted = self.client.delete_object().bucket(&pointer.bucket).key(&pointer.key).send().await;
            match deleted.map_err(|error| store_error(error, pointer)) {
                // Gone already (or its bucket is): what a delete wants.
                Ok(_) | Err(ObjectStoreError::NotFound(_)) => Ok(()),
                Err(error) => Err(error),
            }
        })
    }
}

/// Maps an S3 error: a missing object or bucket (`NoSuchKey`, `NoSuchBucket`, 404) is
/// [`NotFound`](ObjectStoreError::NotFound); a refusal (`AccessDenied`, 403) is
/// [`Refused`](ObjectStoreError::Refused); the rest (timeouts, connection failures,
/// throttling, server faults, and what a retry will not mend either, such as an invalid bucket
/// name) is [`Unavailable`](ObjectStoreError::Unavailable): a message that needs the object
/// fails and is retried as any failure.
fn store_error<E>(error: SdkError<E, HttpResponse>, pointer: &PayloadPointer) -> ObjectStoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = error.raw_response().map(|response| response.status().as_u16());
    let code = error.code().unwrap_or_default().to_owned();
    let reason = describe(&error);
    match (code.as_str(), status) {
        ("NoSuchKey" | "NoSuchBucket" | "NotFound", _) | (_, Some(404)) => {
            ObjectStoreError::NotFound(pointer.clone())
        }
        ("AccessDenied" | "AllAccessDisabled" | "InvalidAccessKeyId" | "SignatureDoesNotMatch", _)
        | (_, Some(403)) => ObjectStoreError::Refused { pointer: pointer.clone(), reason },
        _ => ObjectStoreError::Unavailable(format!("{pointer}: {reason}")),
    }
}

/// `code: message`, or the error's own text with its causes.
fn describe<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            if let Some(status) = error.raw_response().map(|response| response.status().as_u16()) {
                text.push_str(&format!(" (HTTP {status})"));
            }
            text
        }
    }
}
