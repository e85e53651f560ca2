//! The two traits a transport implements: [`Publisher`] (SNS's side) and [`Subscriber`]
//! (SQS's side). Everything else (validation, encoding, topic choice, dispatch, retries) is
//! built on them, so the embedded [`MemoryBroker`](crate::MemoryBroker) and the AWS transport
//! behave the same.
//!
//! The methods return boxed futures so that the traits are object safe (a handler context
//! holds an `Arc<dyn Publisher>`); one allocation per batch call is noise next to a network
//! round trip.

use std::borrow::Cow;
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

/// A message attribute's value, typed as SNS and SQS type them (`DataType` `String`,
/// `Number` or `Binary`). Filter policies match on `String` and `Number` values.
///
/// ```
/// use pubsub_core::transport::AttributeValue;
///
/// assert_eq!(AttributeValue::from("eu"), AttributeValue::Text("eu".into()));
/// assert_eq!(AttributeValue::from(3), AttributeValue::Number("3".into()));
/// assert_eq!(AttributeValue::from(2.5), AttributeValue::Number("2.5".into()));
/// assert_eq!(AttributeValue::from(vec![1u8, 2]).data_type(), "Binary");
/// assert_eq!(AttributeValue::from(3).as_str(), Some("3"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttributeValue {
    /// UTF-8 text (`DataType` `String`; named `Text` so that it does not shadow `String` in
    /// the compiler's messages).
    Text(String),
    /// A number, as the decimal text SNS and SQS carry (up to 38 significant digits, from
    /// 10^-128 to 10^+126); [`check`](AttributeValue::check) refuses text that is not one.
    Number(String),
    /// Bytes (base64 in SNS notifications and Lambda events).
    Binary(Vec<u8>),
}

impl AttributeValue {
    /// The `DataType` SNS and SQS give it: `String`, `Number` or `Binary`.
    pub fn data_type(&self) -> &'static str {
        match self {
            AttributeValue::Text(_) => "String",
            AttributeValue::Number(_) => "Number",
            AttributeValue::Binary(_) => "Binary",
        }
    }

    /// The text of a `String` or `Number` value; `None` for `Binary`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttributeValue::Text(text) | AttributeValue::Number(text) => Some(text),
            AttributeValue::Binary(_) => None,
        }
    }

    /// The bytes SNS and SQS count against a message's size: the value's.
    pub fn len(&self) -> usize {
        match self {
            AttributeValue::Text(text) | AttributeValue::Number(text) => text.len(),
            AttributeValue::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether the value is empty (which SNS and SQS refuse).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value SNS or SQS gave as text of `data_type` (`Binary` in base64; a custom type
    /// such as `String.id` or `Number.float` by its base type); `None` for an unknown type or
    /// bad base64.
    pub fn from_typed(data_type: &str, text: String) -> Option<AttributeValue> {
        use base64::Engine as _;
        let base = data_type.split('.').next().unwrap_or(data_type);
        match base {
            "String" => Some(AttributeValue::Text(text)),
            "Number" => Some(AttributeValue::Number(text)),
            "Binary" => {
                base64::engine::general_purpose::STANDARD.decode(text).ok().map(AttributeValue::Binary)
            }
            _ => None,
        }
    }

    /// The value as SNS writes it in a notification's `MessageAttributes` (`Binary` in base64).
    pub fn to_text(&self) -> std::borrow::Cow<'_, str> {
        use base64::Engine as _;
        match self {
            AttributeValue::Text(text) | AttributeValue::Number(text) => std::borrow::Cow::Borrowed(text),
            AttributeValue::Binary(bytes) => base64::engine::general_purpose::STANDARD.encode(bytes).into(),
        }
    }

    /// What SNS and SQS would find wrong with the value, if anything: an empty value, or a
    /// `Number` that is not a decimal number they take.
    pub fn check(&self) -> Result<(), String> {
        if self.is_empty() {
            return Err(
                "has an empty value, which SNS and SQS refuse: give it a value or leave it out".into()
            );
        }
        match self {
            AttributeValue::Number(text) if !is_sns_number(text) => Err(format!(
                "is a Number whose value {text:?} is not a decimal number SNS and SQS take (e.g. `42`, \
                 `-1.5`, `2E+3`; up to 38 significant digits, from 10^-128 to 10^+126)"
            )),
            _ => Ok(()),
        }
    }
}

/// Whether `text` is a number as SNS and SQS take one: a decimal (sign, digits, point,
/// exponent) with at most 38 significant digits and an exponent within 10^-128..10^+126.
fn is_sns_number(text: &str) -> bool {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], Some(&text[at + 1..])),
        None => (text, None),
    };
    let mantissa = mantissa.strip_prefix(['-', '+']).unwrap_or(mantissa);
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_only = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits_only(whole) || !digits_only(fraction) {
        return false;
    }
    let digits: String = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    if significant.len() > 38 {
        return false;
    }
    let exponent: i64 = match exponent {
        None => 0,
        Some(exponent) => {
            let unsigned = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
            if unsigned.is_empty() || !digits_only(unsigned) || unsigned.len() > 6 {
                return false;
            }
            exponent.parse().unwrap_or(i64::MAX)
        }
    };
    if significant.is_empty() {
        return true; // zero
    }
    // The value's decimal magnitude: the position of its first significant digit.
    let leading_zeros = digits.len() - digits.trim_start_matches('0').len();
    let magnitude = whole.len() as i64 - leading_zeros as i64 - 1 + exponent;
    (-128..=126).contains(&magnitude)
}

/// A `String` value equals its text (a `Number` does not: compare [`as_str`](AttributeValue::as_str)).
impl PartialEq<str> for AttributeValue {
    fn eq(&self, other: &str) -> bool {
        matches!(self, AttributeValue::Text(text) if text == other)
    }
}

impl PartialEq<String> for AttributeValue {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<&str> for AttributeValue {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl From<String> for AttributeValue {
    fn from(text: String) -> Self {
        AttributeValue::Text(text)
    }
}

impl From<&str> for AttributeValue {
    fn from(text: &str) -> Self {
        AttributeValue::Text(text.to_owned())
    }
}

impl From<&String> for AttributeValue {
    fn from(text: &String) -> Self {
        AttributeValue::Text(text.clone())
    }
}

macro_rules! number_attribute {
    ($($number:ty),*) => {$(
        impl From<$number> for AttributeValue {
            fn from(number: $number) -> Self {
                AttributeValue::Number(number.to_string())
            }
        }
    )*};
}
number_attribute!(i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64);

impl From<Vec<u8>> for AttributeValue {
    fn from(bytes: Vec<u8>) -> Self {
        AttributeValue::Binary(bytes)
    }
}

impl From<&[u8]> for AttributeValue {
    fn from(bytes: &[u8]) -> Self {
        AttributeValue::Binary(bytes.to_vec())
    }
}

/// Message attributes by name, besides `media_type`.
pub type Attributes = BTreeMap<String, AttributeValue>;

/// SQS's longest per-message delay, 15 minutes.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

/// What a destination is, from its name: an SQS queue URL (`https://…`, `http://…`, the
/// embedded broker's `memory://queue/…`) is a queue, anything else (an SNS topic ARN, a
/// topic name on the embedded broker) a topic; a name ending in `.fifo` is FIFO.
///
/// ```
/// use pubsub_core::transport::Destination;
///
/// let queue = Destination::of("https://sqs.eu-west-1.amazonaws.com/1/orders.fifo");
/// assert!(queue.is_queue() && queue.is_fifo());
/// let topic = Destination::of("arn:aws:sns:eu-west-1:1:orders");
/// assert!(!topic.is_queue() && !topic.is_fifo());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    name: &'a str,
}

impl<'a> Destination<'a> {
    /// The destination named `name` (a topic ARN or name, or a queue URL).
    pub fn of(name: &'a str) -> Destination<'a> {
        Destination { name }
    }

    /// Its name, as given.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// Whether it is a queue (sent to with `SendMessageBatch`), not a topic.
    pub fn is_queue(&self) -> bool {
        ["https://", "http://", "memory://queue/"].iter().any(|scheme| self.name.starts_with(scheme))
    }

    /// Whether it is a FIFO topic or queue (its name ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        self.name.ends_with(".fifo")
    }
}

/// A message on its way to a topic or a queue.
///
/// ```
/// use std::time::Duration;
///
/// use pubsub_core::transport::{AttributeValue, OutgoingMessage};
///
/// let message = OutgoingMessage::new("text/plain", "{}")
///     .with_attribute("team", "billing")
///     .with_attribute("weight", 3)
///     .with_group_id("order-1")
///     .with_delay(Duration::from_secs(30));
/// assert_eq!(message.attributes["weight"], AttributeValue::Number("3".into()));
/// assert_eq!(message.group_id.as_deref(), Some("order-1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutgoingMessage {
    /// The media type, sent as the `media_type` message attribute (always). A message type's
    /// own constant is borrowed, not copied for each message.
    pub media_type: Cow<'static, str>,
    /// The encoded body (see [`encode`](crate::encode)).
    pub body: String,
    /// Message attributes besides `media_type`, by name; SNS delivers them to raw-delivery
    /// queues as SQS message attributes, to the others in the notification's
    /// `MessageAttributes`, and filter policies match on them. The producer refuses more than
    /// [`MAX_MESSAGE_ATTRIBUTES`] in all, names SNS refuses and empty values before sending.
    pub attributes: Attributes,
    /// The FIFO message group (`MessageGroupId`): required by FIFO topics and queues, which
    /// deliver a group's messages in order; ignored elsewhere.
    pub group_id: Option<String>,
    /// The FIFO deduplication id (`MessageDeduplicationId`): a FIFO topic or queue drops a
    /// message whose id it saw in the last 5 minutes. Without one, a destination with
    /// content-based deduplication uses a hash of the body.
    pub deduplication_id: Option<String>,
    /// How long a standard queue keeps the message hidden after it is sent (`DelaySeconds`,
    /// up to [`MAX_DELAY`]); only for queues that are not FIFO (which take a queue-wide delay).
    pub delay: Option<Duration>,
}

impl OutgoingMessage {
    /// A message of `media_type` (a `&'static str` or a `String`) with `body` and no attribute
    /// besides `media_type`.
    pub fn new(media_type: impl Into<Cow<'static, str>>, body: impl Into<String>) -> OutgoingMessage {
        OutgoingMessage {
            media_type: media_type.into(),
            body: body.into(),
            attributes: Attributes::new(),
            group_id: None,
            deduplication_id: None,
            delay: None,
        }
    }

    /// This message with the attribute `name` set to `value` (a string, a number, or bytes).
    pub fn with_attribute(
        mut self,
        name: impl Into<String>,
        value: impl Into<AttributeValue>,
    ) -> OutgoingMessage {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// This message in the FIFO message group `group_id`.
    pub fn with_group_id(mut self, group_id: impl Into<String>) -> OutgoingMessage {
        self.group_id = Some(group_id.into());
        self
    }

    /// This message with the FIFO deduplication id `deduplication_id`.
    pub fn with_deduplication_id(mut self, deduplication_id: impl Into<String>) -> OutgoingMessage {
        self.deduplication_id = Some(deduplication_id.into());
        self
    }

    /// This message delayed by `delay` (standard queues only).
    pub fn with_delay(mut self, delay: Duration) -> OutgoingMessage {
        self.delay = Some(delay);
        self
    }

    /// Its size as SNS and SQS count it against their limit of 256 KiB: the body, plus the
    /// name, the data type and the value of every message attribute, `media_type` included.
    pub fn size(&self) -> usize {
        const STRING: usize = "String".len();
        let attributes: usize = self
            .attributes
            .iter()
            .map(|(name, value)| name.len() + value.data_type().len() + value.len())
            .sum();
        self.body.len() + MEDIA_TYPE_ATTRIBUTE.len() + STRING + self.media_type.len() + attributes
    }
}

/// A message as a queue hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedMessage {
    /// The queue's id of the message.
    pub message_id: MessageId,
    /// The handle that acknowledges or changes the visibility of this receipt.
    pub receipt_handle: String,
    /// The SQS body: an SNS notification, or the raw message.
    pub body: String,
    /// `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: u32,
    /// The SQS message attributes: on raw delivery, `media_type` and the other attributes the
    /// message was published with.
    pub attributes: Attributes,
    /// The `AWSTraceHeader` system attribute (an X-Ray trace header, which AWS services and
    /// X-Ray SDKs set), if the message has one.
    pub trace_header: Option<String>,
    /// When the queue took the message (SQS's `SentTimestamp`), if known.
    pub sent_at: Option<std::time::SystemTime>,
    /// On a FIFO queue, the message's group (`MessageGroupId`): the daemon handles a group's
    /// messages one after another, in order.
    pub group_id: Option<String>,
    /// On a FIFO queue, the message's deduplication id (`MessageDeduplicationId`).
    pub deduplication_id: Option<String>,
    /// On a FIFO queue, the queue's sequence number of the message (`SequenceNumber`), which
    /// grows with each message of a group.
    pub sequence_number: Option<String>,
}

impl ReceivedMessage {
    /// A first delivery of `body` with no attributes; set the other fields as needed.
    pub fn new(
        message_id: impl Into<MessageId>,
        receipt_handle: impl Into<String>,
        body: impl Into<String>,
    ) -> ReceivedMessage {
        ReceivedMessage {
            message_id: message_id.into(),
            receipt_handle: receipt_handle.into(),
            body: body.into(),
            receive_count: 1,
            attributes: Attributes::new(),
            trace_header: None,
            sent_at: None,
            group_id: None,
            deduplication_id: None,
            sequence_number: None,
        }
    }

    /// A message attribute's text (`String` and `Number` attributes).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(AttributeValue::as_str)
    }
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

/// Publishes to topics (SNS) and, where the transport can, straight to queues (SQS).
pub trait Publisher: Send + Sync + 'static {
    /// Publishes up to [`MAX_BATCH`] messages to `topic`, a topic or a queue (see
    /// [`Destination`]); one result per message, in order. The producer has checked them
    /// against the destination (a group for FIFO, a delay only to a standard queue).
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

    /// Deletes up to [`MAX_BATCH`] receipts; one result per receipt, in order. Borrowed: a
    /// caller keeps them, to retry those that failed.
    fn ack_batch<'a>(
        &'a self,
        receipt_handles: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>>;

    /// Changes the visibility of up to [`MAX_BATCH`] receipts (nack, heartbeat); one result
    /// per entry, in order.
    fn change_visibility_batch<'a>(
        &'a self,
        changes: &'a [VisibilityChange],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>>;

    /// The queue's visibility timeout, which the heartbeat extends by.
    fn visibility_timeout(&self) -> Duration;

    /// The queue's name, for traces (`messaging.destination.name`, the span name `process
    /// <queue>`); empty when unknown.
    fn queue_name(&self) -> &str {
        ""
    }
}
