//! The two traits a transport implements: [`Publisher`] (SNS's side) and [`Subscriber`]
//! (SQS's side). Everything else (validation, encoding, topic choice, dispatch, retries) is
//! built on them, so the embedded [`MemoryBroker`](crate::MemoryBroker) and the AWS transport
//! behave the same.
//!
//! The methods return boxed futures so that the traits are object safe (a handler context
//! holds an `Arc<dyn Publisher>`); one allocation per batch call is noise next to a network
//! round trip.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The id a transport gives a published or received message.
pub type MessageId = String;

/// SNS's limit of entries in one `PublishBatch`, and SQS's in one receive or batch call.
pub const MAX_BATCH: usize = 10;

/// The SNS message attribute that carries the media type, for subscription filter policies.
pub const MEDIA_TYPE_ATTRIBUTE: &str = "media_type";

/// The message attributes that carry the W3C trace context (feature `otel`).
#[cfg(feature = "otel")]
pub use crate::telemetry::{TRACEPARENT, TRACESTATE};

/// SNS's limit of message attributes on one message, `media_type` included.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;

/// A message on its way to a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The media type, sent as the `media_type` message attribute (always).
    pub media_type: String,
    /// The encoded body (see [`encode`](crate::encode)).
    pub body: String,
    /// String message attributes besides `media_type`, by name; SNS delivers them to
    /// raw-delivery queues as SQS message attributes, to the others in the notification's
    /// `MessageAttributes`, and filter policies match on them. The producer refuses more than
    /// [`MAX_MESSAGE_ATTRIBUTES`] in all, names SNS refuses and empty values before sending.
    pub attributes: BTreeMap<String, String>,
}

impl OutgoingMessage {
    /// A message of `media_type` with `body` and no attribute besides `media_type`.
    pub fn new(media_type: impl Into<String>, body: impl Into<String>) -> OutgoingMessage {
        OutgoingMessage { media_type: media_type.into(), body: body.into(), attributes: BTreeMap::new() }
    }

    /// This message with the string attribute `name` set to `value`.
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> OutgoingMessage {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Its size as SNS counts it against its limit of 256 KiB: the body, plus the name, the
    /// data type (`String`) and the value of every message attribute, `media_type` included.
    pub fn size(&self) -> usize {
        const STRING: usize = "String".len();
        let attributes: usize =
            self.attributes.iter().map(|(name, value)| name.len() + STRING + value.len()).sum();
        self.body.len() + MEDIA_TYPE_ATTRIBUTE.len() + STRING + self.media_type.len() + attributes
    }
}

/// A message as a queue hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The queue's id of the message.
    pub message_id: MessageId,
    /// The handle that acknowledges or changes the visibility of this receipt.
    pub receipt_handle: String,
    /// The SQS body: an SNS notification, or the raw message.
    pub body: String,
    /// `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: u32,
    /// The SQS message attributes (string values): on raw delivery, `media_type` and the
    /// other attributes the message was published with.
    pub attributes: BTreeMap<String, String>,
    /// The `AWSTraceHeader` system attribute (an X-Ray trace header, which AWS services and
    /// X-Ray SDKs set), if the message has one.
    pub trace_header: Option<String>,
    /// When the queue took the message (SQS's `SentTimestamp`), if known.
    pub sent_at: Option<std::time::SystemTime>,
}

/// Why one entry of a batch call failed while others may have succeeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EntryError {
    /// The service's error code, e.g. `ReceiptHandleIsInvalid`.
    pub code: String,
    /// Its words.
    pub message: String,
    /// Whether the same entry may succeed if sent again.
    pub retryable: bool,
}

/// A whole request failed (nothing in it took effect, as far as the caller can know).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The topic does not exist.
    #[error("topic `{0}` does not exist")]
    TopicNotFound(String),
    /// The queue does not exist.
    #[error("queue `{0}` does not exist")]
    QueueNotFound(String),
    /// The request was refused as invalid; sending it again will not help.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request failed in a way that may pass on a retry (network, throttling, 5xx).
    #[error("transport unavailable: {0}")]
    Unavailable(String),
}

impl TransportError {
    /// Whether a retry may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TransportError::Unavailable(_))
    }
}

/// Publishes to topics (SNS).
pub trait Publisher: Send + Sync + 'static {
    /// Publishes up to [`MAX_BATCH`] messages to `topic`; one result per message, in order.
    fn publish_batch<'a>(
        &'a self,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Result<MessageId, EntryError>>, TransportError>>;
}

/// One visibility change: make the receipt visible again after `timeout` (0: at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibilityChange {
    /// The receipt to change.
    pub receipt_handle: String,
    /// The new visibility timeout, counted from now.
    pub timeout: Duration,
}

/// Reads one queue (SQS).
pub trait Subscriber: Send + Sync + 'static {
    /// Receives up to `max` (at most [`MAX_BATCH`]) messages, waiting up to `wait` for the
    /// first (long polling). An empty vector when none came.
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, TransportError>>;

    /// Deletes up to [`MAX_BATCH`] receipts; one result per receipt, in order.
    fn ack_batch(
        &self,
        receipt_handles: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Result<(), EntryError>>, TransportError>>;

    /// Changes the visibility of up to [`MAX_BATCH`] receipts (nack, heartbeat); one result
    /// per entry, in order.
    fn change_visibility_batch(
        &self,
        changes: Vec<VisibilityChange>,
    ) -> BoxFuture<'_, Result<Vec<Result<(), EntryError>>, TransportError>>;

    /// The queue's visibility timeout, which the heartbeat extends by.
    fn visibility_timeout(&self) -> Duration;

    /// The queue's name, for traces (`messaging.destination.name`, the span name `process
    /// <queue>`); empty when unknown.
    fn queue_name(&self) -> &str {
        ""
    }
}
