//! The producer: validate, encode, choose the topic by media type, run the publish layers,
//! check what SNS would refuse, publish in batches.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::EncodeError;
use crate::media_type::MediaTypeTable;
use crate::message::Message;
use crate::middleware::{BoxError, PublishLayer, PublishLayers};
#[cfg(doc)]
use crate::middleware::{PublishRequest, PublishService};
use crate::opaque::{published_stamp, OpaqueData};
use crate::payload::{LargePayloads, ObjectStoreError, PayloadPointer};
use crate::telemetry::ProducerTelemetry;
use crate::transport::{
    AttributeValue, Attributes, Destination, EntryError, MessageId, OutgoingMessage, Publisher,
    TransportError, MAX_BATCH, MAX_DELAY, MAX_MESSAGE_ATTRIBUTES, MEDIA_TYPE_ATTRIBUTE,
};
use crate::untyped::UntypedError;
#[cfg(doc)]
use crate::untyped::UntypedMessage;
use crate::{MediaTypeError, MediaTypePattern};

/// Publish requests a producer keeps in flight at once.
pub const PUBLISH_REQUESTS_IN_FLIGHT: usize = 64;

/// SNS's limit on a message's size (body plus attributes), 256 KiB.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// SNS's limit on the length of a message attribute's name.
pub const MAX_ATTRIBUTE_NAME_LEN: usize = 256;

/// Why a publish did not happen, or happened only in part.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The message is invalid or cannot be encoded; nothing was sent.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The untyped message is malformed; nothing was sent.
    #[error(transparent)]
    Untyped(#[from] UntypedError),
    /// No topic is mapped for the media type and there is no default; nothing was sent.
    #[error("no topic for media type `{media_type}`: map it with TopicMap::route or set a default topic")]
    TopicNotDefined {
        /// The media type.
        media_type: String,
    },
    /// A handler published in a daemon (or test) that was given no producer; nothing was sent.
    #[error(
        "cannot publish the `{media_type}` message: the daemon has no producer; give it one with \
         DaemonBuilder::producer so that handlers can publish"
    )]
    NoProducer {
        /// The media type.
        media_type: String,
    },
    /// The encoded message is over SNS's limit; nothing was sent.
    #[error(
        "the `{media_type}` message is {size} bytes (body and message attributes), over SNS's limit of \
         {limit} bytes, so it was not sent: offload large bodies to S3 with Producer::large_payloads (on \
         the command line, --large-payload-bucket), or make it smaller"
    )]
    TooLarge {
        /// The media type.
        media_type: String,
        /// Its size with its message attributes (see [`OutgoingMessage::size`]).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The message has more message attributes than SNS takes; nothing was sent.
    #[error(
        "the `{media_type}` message has {count} message attributes (`media_type` and {} more), over SNS's \
         limit of {limit} a message, so it was not sent: set at most {} besides `media_type`",
        count - 1,
        limit - 1
    )]
    TooManyAttributes {
        /// The media type.
        media_type: String,
        /// How many attributes it has, `media_type` included.
        count: usize,
        /// The limit, `media_type` included ([`MAX_MESSAGE_ATTRIBUTES`]).
        limit: usize,
    },
    /// A message attribute has a name SNS refuses, or an empty value; nothing was sent.
    #[error("the `{media_type}` message was not sent: its message attribute `{}` {reason}", name.escape_debug())]
    InvalidAttribute {
        /// The media type.
        media_type: String,
        /// The attribute's name.
        name: String,
        /// What is wrong with it, and what SNS allows.
        reason: String,
    },
    /// The message goes to a FIFO topic or queue but has no message group; nothing was sent.
    #[error(
        "the `{media_type}` message has no message group id, which the FIFO destination `{destination}` \
         requires, so it was not sent: mark the field that holds its group with #[message_group_id], or \
         set one per call with PublishOptions::group_id"
    )]
    NoMessageGroup {
        /// The media type.
        media_type: String,
        /// The FIFO topic or queue.
        destination: String,
    },
    /// A FIFO message group id or deduplication id that SNS and SQS refuse; nothing was sent.
    #[error("the `{media_type}` message was not sent: its {which} {reason}")]
    InvalidFifoId {
        /// The media type.
        media_type: String,
        /// `message group id` or `deduplication id`.
        which: &'static str,
        /// What is wrong with it, and what SNS and SQS allow.
        reason: String,
    },
    /// A delay the destination does not take; nothing was sent.
    #[error("the `{media_type}` message was not sent: {reason}")]
    InvalidDelay {
        /// The media type.
        media_type: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The message's body was to be offloaded (see [`Producer::large_payloads`]) and writing it
    /// to the object store failed; nothing was sent (in a batch, none of it: the bodies already
    /// written were deleted).
    #[error(
        "the `{media_type}` message was not sent: its body could not be written to S3 (bucket `{}`, key \
         `{}`): {error}",
        pointer.bucket,
        pointer.key
    )]
    Offload {
        /// The media type.
        media_type: String,
        /// Where its body was to go.
        pointer: PayloadPointer,
        /// What the store answered.
        error: Box<ObjectStoreError>,
    },
    /// A publish layer refused the message (or panicked); nothing was sent.
    #[error("the `{media_type}` message was refused by a publish layer: {error}")]
    RefusedByLayer {
        /// The media type (as the message came to the layers).
        media_type: String,
        /// What the layer answered; a [`PublishLayerPanicked`](crate::middleware::PublishLayerPanicked) if
        /// it panicked.
        error: BoxError,
    },
    /// Some messages of a batch were refused before any request (invalid, too large, no
    /// topic, refused by a publish layer), so none of the batch was sent.
    #[error("{}", refused_text(*total, refused))]
    Refused {
        /// How many messages the batch had.
        total: usize,
        /// The index and reason of each refused message, by index.
        refused: Vec<(usize, PublishError)>,
    },
    /// A whole request failed; no more requests were started after it. The requests sent
    /// before it, or at the same time, may have succeeded: `sent` has their ids, by the
    /// caller's message index, and `failures` the entries they refused.
    #[error("{}", transport_text(error, sent, failures))]
    Transport {
        /// Why.
        error: TransportError,
        /// Per message: its id if it was published before the failure.
        sent: Vec<Option<MessageId>>,
        /// The index and reason of each message refused by a request that did not fail whole.
        failures: Vec<(usize, EntryError)>,
    },
    /// Some entries of a batch were refused; the others were published.
    #[error("{}", partial_text(sent, failures))]
    Partial {
        /// Per message: its id if it was published.
        sent: Vec<Option<MessageId>>,
        /// The index and reason of each refused message, by index.
        failures: Vec<(usize, EntryError)>,
    },
}

impl PublishError {
    /// Per message of the call, its id if it was published; `None` for an error that
    /// stopped the call before any request (then nothing was published).
    pub fn sent(&self) -> Option<&[Option<MessageId>]> {
        match self {
            PublishError::Transport { sent, .. } | PublishError::Partial { sent, .. } => Some(sent),
            _ => None,
        }
    }
}

/// The text of [`PublishError::Refused`]: nothing was sent, how many were refused, the first.
fn refused_text(total: usize, refused: &[(usize, PublishError)]) -> String {
    let Some((index, first)) = refused.first() else {
        return format!("none of the {total} messages was sent");
    };
    if total == 1 {
        return format!("the message was refused before sending: {first}");
    }
    let others = match refused.len() {
        1 => String::new(),
        n => format!(" (and {} more, listed in `refused`)", n - 1),
    };
    format!(
        "none of the {total} messages was sent: {} of them {} refused before sending; the message at \
         index {index}: {first}{others}",
        refused.len(),
        if refused.len() == 1 { "was" } else { "were" }
    )
}

/// The text of [`PublishError::Transport`]: the failure, what was published before it, what
/// to do.
fn transport_text(
    error: &TransportError,
    sent: &[Option<MessageId>],
    failures: &[(usize, EntryError)],
) -> String {
    let published = sent.iter().flatten().count();
    let hint = match error {
        TransportError::TopicNotFound(_) => {
            " (create the topic, or map the media type to an existing one with TopicMap)"
        }
        _ => "",
    };
    let others = if error.is_retryable() { "not confirmed" } else { "not published" };
    let outcome = match (sent.len(), published) {
        (1, 0) => format!("the message was {others}"),
        (total, 0) => format!("none of the {total} messages was published"),
        (total, published) => format!(
            "{published} of {total} messages were published before it (their ids are in `sent`), the \
             others were {others}"
        ),
    };
    let refused = match failures.first() {
        None => String::new(),
        Some((index, first)) => {
            let (verb, which) = if failures.len() == 1 { ("was", "the one") } else { ("were", "the first") };
            format!("; {} more {verb} refused, {which} at index {index}: {first}", failures.len())
        }
    };
    format!("publishing failed: {error}{hint}; {outcome}{refused}")
}

/// The text of [`PublishError::Partial`]: how many were refused, the first, what was sent.
fn partial_text(sent: &[Option<MessageId>], failures: &[(usize, EntryError)]) -> String {
    let published = sent.iter().flatten().count();
    let first = match failures.first() {
        Some((index, error)) => {
            let which = if failures.len() == 1 { "the one" } else { "the first" };
            format!(", {which} at index {index}: {error}")
        }
        None => String::new(),
    };
    format!(
        "{} of {} messages {} not published{first}; the other {} {} published (their ids are in `sent`)",
        failures.len(),
        sent.len(),
        if failures.len() == 1 { "was" } else { "were" },
        published,
        if published == 1 { "was" } else { "were" },
    )
}

/// Which topic a media type is published to: an explicit route (a media type or a
/// `prefix.*` pattern), else the default topic, else [`PublishError::TopicNotDefined`].
///
/// ```
/// use pubsub_core::TopicMap;
///
/// let topics = TopicMap::new()
///     .route("application/vnd.acme.pubsub._.created.*", "arn:aws:sns:us-east-1:1:created")?
///     .default_topic("arn:aws:sns:us-east-1:1:default");
/// assert_eq!(topics.topic_for("application/vnd.acme.pubsub._.created.order")?, "arn:aws:sns:us-east-1:1:created");
/// assert_eq!(topics.topic_for("text/plain")?, "arn:aws:sns:us-east-1:1:default");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct TopicMap {
    /// Shared with each message routed by them, which holds its topic until it is sent: a
    /// copy of the text would be an allocation a message.
    routes: MediaTypeTable<Topic>,
    default: Option<Topic>,
}

/// A destination, as a message routed to it holds it.
pub(crate) type Topic = Arc<str>;

impl TopicMap {
    /// No routes, no default.
    pub fn new() -> TopicMap {
        TopicMap::default()
    }

    /// Routes `pattern` (a media type or `prefix.*`) to `topic`.
    pub fn route(mut self, pattern: &str, topic: impl Into<String>) -> Result<TopicMap, MediaTypeError> {
        self.routes.insert(MediaTypePattern::parse(pattern)?, Topic::from(topic.into()));
        Ok(self)
    }

    /// The topic of media types with no route.
    pub fn default_topic(mut self, topic: impl Into<String>) -> TopicMap {
        self.default = Some(Topic::from(topic.into()));
        self
    }

    /// Each route's pattern (a media type or `prefix.*`) and topic, sorted by pattern.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.routes.sorted().into_iter().map(|(pattern, topic)| (pattern, &**topic))
    }

    /// The topic of media types with no route, if there is one.
    pub fn default_route(&self) -> Option<&str> {
        self.default.as_deref()
    }

    /// The topic for `media_type`.
    pub fn topic_for(&self, media_type: &str) -> Result<&str, PublishError> {
        self.topic(media_type).map(|topic| &**topic)
    }

    /// The topic of `media_type`, shared.
    pub(crate) fn topic(&self, media_type: &str) -> Result<&Topic, PublishError> {
        self.routes
            .lookup(media_type)
            .or(self.default.as_ref())
            .ok_or_else(|| PublishError::TopicNotDefined { media_type: media_type.to_owned() })
    }
}

/// Per-call settings of a publish, beside the message itself: its FIFO message group and
/// deduplication id (over those its type declares), a delay, message attributes, and opaque
/// data.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
///
/// use pubsub_core::memory::QueueOptions;
/// use pubsub_core::producer::PublishOptions;
/// use pubsub_core::{MemoryBroker, Producer, TopicMap, UntypedMessage};
///
/// let broker = MemoryBroker::new();
/// // A media type can be routed straight to a queue, with no topic.
/// let queue = broker.create_queue("reminders", QueueOptions::default());
/// let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&queue));
/// let reminder = UntypedMessage::created("Reminder", "http://example.com/api/v1/reminder/1");
/// let options = PublishOptions::new().delay(Duration::from_secs(60)).attribute("priority", 2);
/// producer.produce_with_options(&reminder, &options).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PublishOptions {
    /// The FIFO message group; without it, the one the message's type declares
    /// (`#[message_group_id]`).
    pub group_id: Option<String>,
    /// The FIFO deduplication id; without it, the one the message's type declares
    /// (`#[message_deduplication_id]`), else content-based deduplication if the destination
    /// has it on.
    pub deduplication_id: Option<String>,
    /// A delay before a standard queue delivers the message (`DelaySeconds`, up to 15
    /// minutes). Refused for topics and FIFO queues, which take none per message.
    pub delay: Option<Duration>,
    /// Message attributes besides `media_type`.
    pub attributes: Attributes,
    /// Opaque data (request id, TTL, custom keys).
    pub opaque: OpaqueData,
}

impl PublishOptions {
    /// No group, no deduplication id, no delay, no attributes, no opaque data.
    pub fn new() -> PublishOptions {
        PublishOptions::default()
    }

    /// In the FIFO message group `group_id`.
    pub fn group_id(mut self, group_id: impl Into<String>) -> PublishOptions {
        self.group_id = Some(group_id.into());
        self
    }

    /// With the FIFO deduplication id `deduplication_id`.
    pub fn deduplication_id(mut self, deduplication_id: impl Into<String>) -> PublishOptions {
        self.deduplication_id = Some(deduplication_id.into());
        self
    }

    /// Delivered by a standard queue only after `delay`.
    pub fn delay(mut self, delay: Duration) -> PublishOptions {
        self.delay = Some(delay);
        self
    }

    /// With the message attribute `name` set to `value` (a string, a number, or bytes).
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<AttributeValue>) -> PublishOptions {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// With `opaque` as the message's opaque data.
    pub fn opaque(mut self, opaque: OpaqueData) -> PublishOptions {
        self.opaque = opaque;
        self
    }
}

/// Encodes `message` with `opaque` into the message to send and routes it by `topics`: the
/// options' group, deduplication id, delay and attributes (the type's group and deduplication
/// id when the options have none), the current trace context, checked against the
/// destination as it will be sent (offloaded by `large`, if it is over the threshold). The one
/// place a message is made ready to send: the producer and a handler's context both use it.
pub(crate) fn outgoing<M: Message>(
    message: &M,
    opaque: &OpaqueData,
    stamp: &str,
    options: Option<&PublishOptions>,
    topics: &TopicMap,
    large: Option<&LargePayloads>,
) -> Result<(Topic, OutgoingMessage), PublishError> {
    // A derived type's media type is its constant, borrowed; an untyped message's is its own.
    let media_type: Cow<'static, str> = match M::TYPE_MEDIA_TYPE {
        "" => message.media_type().to_owned().into(),
        constant => constant.into(),
    };
    let mut outgoing = OutgoingMessage::new(media_type, message.write_body(opaque, stamp)?);
    if let Some(options) = options {
        outgoing.attributes.clone_from(&options.attributes);
        outgoing.group_id.clone_from(&options.group_id);
        outgoing.deduplication_id.clone_from(&options.deduplication_id);
        outgoing.delay = options.delay;
    }
    if outgoing.group_id.is_none() {
        outgoing.group_id = message.message_group_id();
    }
    if outgoing.deduplication_id.is_none() {
        outgoing.deduplication_id = message.message_deduplication_id();
    }
    // Published inside a span, the message carries its trace on.
    crate::telemetry::inject_current(&mut outgoing.attributes);
    let topic = topics.topic(&outgoing.media_type)?.clone();
    check_outgoing(&topic, &crate::payload::as_sent(&outgoing, large))?;
    Ok((topic, outgoing))
}

/// Publishes messages to the topics their media types map to, through its publish layers
/// (see [`layer`](Producer::layer)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pubsub_core::{MemoryBroker, Producer, PubSubMessage, TopicMap};
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
/// #[media_type = "application/vnd.globality.pubsub.simple"]
/// struct Simple { message: String, timestamp: f64 }
///
/// let broker = MemoryBroker::new();
/// let topic = broker.create_topic("events");
/// let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(topic));
/// let id = producer.produce(&Simple { message: "hi".into(), timestamp: 1.0 }).await?;
/// assert!(!id.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Producer {
    publisher: Arc<dyn Publisher>,
    topics: Arc<TopicMap>,
    /// None without layers: then nothing is boxed, cloned or allocated for them.
    layers: Option<Arc<PublishLayers>>,
    /// Where large bodies are offloaded; None: they are refused.
    large: Option<Arc<LargePayloads>>,
    telemetry: ProducerTelemetry,
}

impl Producer {
    /// A producer publishing through `publisher`, routing by `topics`.
    pub fn new(publisher: impl Publisher, topics: TopicMap) -> Producer {
        Producer::from_shared(Arc::new(publisher), topics)
    }

    /// A producer over a shared publisher.
    pub fn from_shared(publisher: Arc<dyn Publisher>, topics: TopicMap) -> Producer {
        Producer {
            publisher,
            topics: Arc::new(topics),
            layers: None,
            large: None,
            telemetry: ProducerTelemetry::new(),
        }
    }

    /// This producer with a publish layer: every message it sends (from
    /// [`produce`](Producer::produce), [`produce_with`](Producer::produce_with),
    /// [`produce_batch`](Producer::produce_batch), and what handlers publish in a daemon given
    /// this producer) goes through the layer as a [`PublishRequest`] before it is sent.
    ///
    /// A layer is any [`tower::Layer`] around a [`PublishService`]: it may change the request
    /// on its way in (add attributes), the answer on its way out, or refuse the message by
    /// returning an error. The innermost service answers each request as it came; what comes
    /// out of the outermost layer (its topic and its message) is what is sent. Layers run in
    /// the order they were added, the first added outermost (it sees the request first and
    /// the answer last), as in [`tower::ServiceBuilder`]; a `ServiceBuilder` or a tuple of
    /// layers is a layer too.
    ///
    /// A refusal is [`PublishError::RefusedByLayer`] (a layer that panics refuses the message
    /// with [`PublishLayerPanicked`](crate::middleware::PublishLayerPanicked)); in a batch, nothing is sent
    /// if one message is refused ([`PublishError::Refused`] lists each by index). The messages
    /// of one call go through the layers concurrently. After the layers, the producer checks
    /// what SNS would refuse (size, number and names of attributes) and refuses it too.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pubsub_core::middleware::{BoxError, PublishRequest};
    /// use pubsub_core::{MemoryBroker, Producer, TopicMap, UntypedMessage};
    /// use serde_json::json;
    /// use tower::util::{MapRequestLayer, MapResultLayer};
    ///
    /// let broker = MemoryBroker::new();
    /// let topic = broker.create_topic("events");
    /// let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(topic))
    ///     // Every message gets a `team` attribute, which filter policies can match on.
    ///     .layer(MapRequestLayer::new(|request: PublishRequest| request.with_attribute("team", "billing")))
    ///     // Messages marked `draft` are refused.
    ///     .layer(MapResultLayer::new(|result: Result<PublishRequest, BoxError>| {
    ///         let request = result?;
    ///         match request.attribute("draft") {
    ///             Some(_) => Err(BoxError::from("drafts are not published")),
    ///             None => Ok(request),
    ///         }
    ///     }));
    ///
    /// let simple = UntypedMessage::new("application/vnd.globality.pubsub.simple", json!({"message": "hi"}))?;
    /// producer.produce(&simple).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn layer(self, layer: impl PublishLayer) -> Producer {
        let layers = PublishLayers::with(self.layers.as_deref(), layer);
        Producer { layers: Some(Arc::new(layers)), ..self }
    }

    /// This producer offloading large bodies, as AWS's extended client libraries do (see
    /// [`payload`](crate::payload)): every message over the threshold of `large` (body and
    /// attributes, as [`OutgoingMessage::size`] counts them), or every message if it says
    /// `always`, has its body written to the object store under a fresh key (a random UUID),
    /// and what is sent is the pointer, with the `Number` attribute `ExtendedPayloadSize` holding
    /// the body's size in bytes. The `media_type` attribute, the other attributes and the trace
    /// context are sent as they are (`ExtendedPayloadSize` is one of SNS's ten attributes: the
    /// trace context gives way to it when there is no room for both).
    ///
    /// Offloading comes last, after the publish layers and the checks; the bodies of a batch
    /// are written at once. If a write fails, nothing of the call is sent
    /// ([`PublishError::Offload`], in a batch within [`PublishError::Refused`]; the bodies
    /// already written are deleted, best effort). Handlers publishing through a daemon with
    /// this producer are offloaded too.
    ///
    /// Content-based deduplication of a FIFO destination sees the pointer, whose key is new
    /// every time: give offloaded FIFO messages a deduplication id.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use pubsub_core::payload::LargePayloads;
    /// use pubsub_core::{MemoryBroker, Producer, TopicMap, UntypedMessage};
    /// use serde_json::json;
    ///
    /// let broker = MemoryBroker::new();
    /// let topic = broker.create_topic("documents");
    /// broker.create_bucket("large-payloads");
    /// let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(topic))
    ///     .large_payloads(LargePayloads::new(broker.object_store(), "large-payloads"));
    /// let document = UntypedMessage::new("application/vnd.acme.pubsub.document", json!({"text": "x".repeat(300_000)}))?;
    /// producer.produce(&document).await?;
    /// assert_eq!(broker.object_count(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn large_payloads(self, large: LargePayloads) -> Producer {
        Producer { large: Some(Arc::new(large)), ..self }
    }

    /// How this producer offloads large bodies, if it does.
    pub(crate) fn large(&self) -> Option<&Arc<LargePayloads>> {
        self.large.as_ref()
    }

    /// The routes.
    pub fn topics(&self) -> &Arc<TopicMap> {
        &self.topics
    }

    /// Validates, encodes and publishes `message` (a derived type, or an [`UntypedMessage`]);
    /// returns its message id.
    pub async fn produce<M: Message>(&self, message: &M) -> Result<MessageId, PublishError> {
        self.produce_with(message, &OpaqueData::new()).await
    }

    /// As [`produce`](Producer::produce), with opaque data (request id, TTL, custom keys).
    pub async fn produce_with<M: Message>(
        &self,
        message: &M,
        opaque: &OpaqueData,
    ) -> Result<MessageId, PublishError> {
        let stamp = published_stamp(SystemTime::now());
        self.produce_one(outgoing(message, opaque, &stamp, None, &self.topics, self.large.as_deref())?).await
    }

    /// As [`produce`](Producer::produce), with per-call settings: a FIFO group or
    /// deduplication id, a delay, message attributes, opaque data (see [`PublishOptions`]).
    pub async fn produce_with_options<M: Message>(
        &self,
        message: &M,
        options: &PublishOptions,
    ) -> Result<MessageId, PublishError> {
        let stamp = published_stamp(SystemTime::now());
        self.produce_one(outgoing(
            message,
            &options.opaque,
            &stamp,
            Some(options),
            &self.topics,
            self.large.as_deref(),
        )?)
        .await
    }

    async fn produce_one(&self, entry: (Topic, OutgoingMessage)) -> Result<MessageId, PublishError> {
        match self.send(vec![entry]).await {
            Ok(mut ids) => Ok(ids.remove(0)),
            // One message: its own reason, not a batch's.
            Err(PublishError::Refused { total: 1, mut refused }) if refused.len() == 1 => {
                Err(refused.remove(0).1)
            }
            Err(error) => Err(error),
        }
    }

    /// Publishes `messages` in batches of up to ten per topic; ids in the same order. Every
    /// message is validated, encoded, size-checked, routed and run through the publish layers
    /// before anything is sent: if any is refused, nothing is sent and
    /// [`PublishError::Refused`] lists each refused one by index.
    ///
    /// After that, a request SNS refuses whole stops further requests and gives
    /// [`PublishError::Transport`], entries SNS refuses give [`PublishError::Partial`]: both
    /// carry the id of every message that was published, by index.
    pub async fn produce_batch<M: Message>(&self, messages: &[M]) -> Result<Vec<MessageId>, PublishError> {
        let opaque = OpaqueData::new();
        // One stamp for the batch, published as one.
        let stamp = published_stamp(SystemTime::now());
        let entries =
            all_or_refused(messages.iter().map(|message| {
                outgoing(message, &opaque, &stamp, None, &self.topics, self.large.as_deref())
            }))?;
        self.send(entries).await
    }

    /// As [`produce_batch`](Producer::produce_batch), each message with its own settings (a
    /// FIFO group or deduplication id, a delay, message attributes, opaque data; see
    /// [`PublishOptions`]). To one FIFO topic or queue, the requests go one after another, so
    /// each message group arrives in the order given.
    pub async fn produce_batch_with_options<M: Message>(
        &self,
        messages: &[(M, PublishOptions)],
    ) -> Result<Vec<MessageId>, PublishError> {
        let stamp = published_stamp(SystemTime::now());
        let entries = all_or_refused(messages.iter().map(|(message, options)| {
            outgoing(message, &options.opaque, &stamp, Some(options), &self.topics, self.large.as_deref())
        }))?;
        self.send(entries).await
    }

    /// Runs prepared messages through the publish layers, offloads the large ones' bodies,
    /// checks each as SNS would, writes the offloaded bodies, then publishes them. If any is
    /// refused (by a layer, a check, or a failed write), nothing is sent:
    /// [`PublishError::Refused`] lists each by index.
    pub(crate) async fn send(
        &self,
        entries: Vec<(Topic, OutgoingMessage)>,
    ) -> Result<Vec<MessageId>, PublishError> {
        let mut entries = match &self.layers {
            None => entries,
            Some(layers) => {
                let mut entries = layers.run(entries).await?;
                // Attributes the layers added come before the trace context: it gives way to
                // them rather than fail the publish.
                for (_, message) in &mut entries {
                    crate::telemetry::give_way(&mut message.attributes);
                }
                entries
            }
        };
        // Offloaded last, so the checks see what is sent; written only once all pass.
        let offloaded = self
            .large
            .as_deref()
            .map(|large| crate::payload::offload_all(entries.iter_mut().map(|(_, message)| message), large));
        // By reference, so that the common case (nothing refused) allocates nothing.
        let mut refused = Vec::new();
        for (index, (destination, message)) in entries.iter().enumerate() {
            if let Err(error) = check_outgoing(destination, message) {
                refused.push((index, error));
            }
        }
        if !refused.is_empty() {
            return Err(PublishError::Refused { total: entries.len(), refused });
        }
        if let Some(offloaded) = offloaded.filter(|offloaded| !offloaded.is_empty()) {
            let large = self.large.as_deref().expect("only a producer with large payloads offloads");
            if let Err(failed) = crate::payload::put_all(large, offloaded).await {
                let refused = failed
                    .into_iter()
                    .map(|(index, pointer, error)| {
                        let media_type = entries[index].1.media_type.to_string();
                        (index, PublishError::Offload { media_type, pointer, error: Box::new(error) })
                    })
                    .collect();
                return Err(PublishError::Refused { total: entries.len(), refused });
            }
        }
        self.publish(entries).await
    }

    /// Publishes checked messages, up to ten (and [`MAX_MESSAGE_BYTES`] in all) per request
    /// per topic, up to [`PUBLISH_REQUESTS_IN_FLIGHT`] requests at once, but one at a time and
    /// in order to a FIFO topic or queue; ids in input order.
    /// After a request fails whole no more are started, and those under way are awaited, so
    /// that the error's `sent` is complete.
    async fn publish(&self, entries: Vec<(Topic, OutgoingMessage)>) -> Result<Vec<MessageId>, PublishError> {
        let total = entries.len();
        let mut sent: Vec<Option<MessageId>> = vec![None; total];
        let mut by_topic: Vec<(Topic, Vec<(usize, OutgoingMessage)>)> = Vec::new();
        for (index, (topic, message)) in entries.into_iter().enumerate() {
            match by_topic.iter_mut().find(|(t, _)| *t == topic) {
                Some((_, group)) => group.push((index, message)),
                None => {
                    // Most calls publish to one topic: room for all of them.
                    let mut group = Vec::with_capacity(total);
                    group.push((index, message));
                    by_topic.push((topic, group));
                }
            }
        }
        let mut chunks: std::collections::VecDeque<_> = by_topic
            .into_iter()
            .flat_map(|(topic, group)| {
                chunk_group(group).into_iter().map(move |(indices, chunk)| (topic.clone(), indices, chunk))
            })
            .collect();
        // A FIFO destination keeps the order of what it is sent only within one request: its
        // requests go one after another, in order, the others at once.
        let mut fifo_busy: std::collections::HashSet<Topic> = std::collections::HashSet::new();
        let mut requests = tokio::task::JoinSet::new();
        let mut failures = Vec::new();
        let mut transport_error = None;
        loop {
            while transport_error.is_none() && requests.len() < PUBLISH_REQUESTS_IN_FLIGHT {
                let Some(next) = chunks.iter().position(|(topic, _, _)| !fifo_busy.contains(topic)) else {
                    break;
                };
                let (topic, indices, chunk) = chunks.remove(next).expect("the position is in the queue");
                if Destination::of(&topic).is_fifo() {
                    fifo_busy.insert(topic.clone());
                }
                let publisher = self.publisher.clone();
                // Started here, in the caller's context, which the spawned request does not have.
                let span = self.telemetry.request(&topic, &chunk);
                requests.spawn(async move {
                    let results = publisher.publish_batch(&topic, chunk).await;
                    span.end(&results);
                    (topic, indices, results)
                });
            }
            let Some(done) = requests.join_next().await else { break };
            let (topic, indices, results) = done.expect("a publish request does not panic");
            fifo_busy.remove(&topic);
            match results {
                Ok(results) => {
                    for (index, result) in indices.into_iter().zip(results) {
                        match result {
                            Ok(id) => {
                                tracing::debug!(message_id = %id, topic = %topic, "published");
                                sent[index] = Some(id);
                            }
                            Err(error) => failures.push((index, error)),
                        }
                    }
                }
                // Stop sending more; let the requests under way finish so `sent` is complete.
                Err(error) => transport_error = transport_error.or(Some(error)),
            }
        }
        failures.sort_by_key(|(index, _)| *index);
        if let Some(error) = transport_error {
            return Err(PublishError::Transport { error, sent, failures });
        }
        if failures.is_empty() {
            Ok(sent.into_iter().map(|id| id.expect("every entry has a result")).collect())
        } else {
            Err(PublishError::Partial { sent, failures })
        }
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("topics", &self.topics)
            .field("publish_layers", &self.layers.as_ref().map_or(0, |layers| layers.len()))
            .field("large_payloads", &self.large)
            .finish_non_exhaustive()
    }
}

/// Every item's value, or [`PublishError::Refused`] with every refused item by index.
fn all_or_refused<T>(items: impl Iterator<Item = Result<T, PublishError>>) -> Result<Vec<T>, PublishError> {
    let mut accepted = Vec::with_capacity(items.size_hint().0);
    let mut refused = Vec::new();
    let mut total = 0;
    for (index, item) in items.enumerate() {
        total += 1;
        match item {
            Ok(value) => accepted.push(value),
            Err(error) => refused.push((index, error)),
        }
    }
    if refused.is_empty() {
        Ok(accepted)
    } else {
        Err(PublishError::Refused { total, refused })
    }
}

/// Splits one topic's messages into requests: at most [`MAX_BATCH`] entries and, as SNS
/// requires of a `PublishBatch`, at most [`MAX_MESSAGE_BYTES`] of messages in all.
fn chunk_group(group: Vec<(usize, OutgoingMessage)>) -> Vec<(Vec<usize>, Vec<OutgoingMessage>)> {
    let mut chunks: Vec<(Vec<usize>, Vec<OutgoingMessage>)> =
        Vec::with_capacity(group.len().div_ceil(MAX_BATCH));
    let mut bytes = 0;
    for (index, message) in group {
        let size = message.size();
        match chunks.last_mut() {
            Some((indices, chunk)) if chunk.len() < MAX_BATCH && bytes + size <= MAX_MESSAGE_BYTES => {
                bytes += size;
                indices.push(index);
                chunk.push(message);
            }
            _ => {
                bytes = size;
                let (mut indices, mut chunk) = (Vec::with_capacity(MAX_BATCH), Vec::with_capacity(MAX_BATCH));
                indices.push(index);
                chunk.push(message);
                chunks.push((indices, chunk));
            }
        }
    }
    chunks
}

/// Refuses what SNS or SQS would refuse of a message before sending it to `destination`:
/// over [`MAX_MESSAGE_BYTES`] (body and attributes), over [`MAX_MESSAGE_ATTRIBUTES`]
/// attributes (`media_type` included), an attribute name they do not take or `media_type` set
/// as an attribute, an empty value or a malformed number; no message group for a FIFO
/// destination, a group or deduplication id they refuse; a delay to a topic or a FIFO queue,
/// or over 15 minutes. The one place these rules live: the producer runs it on every message
/// it sends, after the publish layers, and a handler's context on what it queues.
pub(crate) fn check_outgoing(destination: &str, message: &OutgoingMessage) -> Result<(), PublishError> {
    let media_type = &*message.media_type;
    let count = message.attributes.len() + 1;
    if count > MAX_MESSAGE_ATTRIBUTES {
        return Err(PublishError::TooManyAttributes {
            media_type: media_type.to_owned(),
            count,
            limit: MAX_MESSAGE_ATTRIBUTES,
        });
    }
    for (name, value) in &message.attributes {
        let invalid = |reason: String| PublishError::InvalidAttribute {
            media_type: media_type.to_owned(),
            name: name.clone(),
            reason,
        };
        if let Some(reason) = attribute_name_problem(name) {
            return Err(invalid(reason));
        }
        value.check().map_err(invalid)?;
    }
    let size = message.size();
    if size > MAX_MESSAGE_BYTES {
        return Err(PublishError::TooLarge {
            media_type: media_type.to_owned(),
            size,
            limit: MAX_MESSAGE_BYTES,
        });
    }
    check_fifo_and_delay(&Destination::of(destination), message)
}

/// SNS's and SQS's limit on a message group id and a deduplication id.
pub const MAX_FIFO_ID_LEN: usize = 128;

/// The FIFO and delay rules of [`check_outgoing`].
fn check_fifo_and_delay(
    destination: &Destination<'_>,
    message: &OutgoingMessage,
) -> Result<(), PublishError> {
    let media_type = &*message.media_type;
    if destination.is_fifo() {
        if message.group_id.is_none() {
            return Err(PublishError::NoMessageGroup {
                media_type: media_type.to_owned(),
                destination: destination.name().to_owned(),
            });
        }
        for (which, id) in
            [("message group id", &message.group_id), ("deduplication id", &message.deduplication_id)]
        {
            if let Some(reason) = id.as_deref().and_then(fifo_id_problem) {
                return Err(PublishError::InvalidFifoId { media_type: media_type.to_owned(), which, reason });
            }
        }
    }
    let Some(delay) = message.delay else { return Ok(()) };
    let reason = if !destination.is_queue() {
        format!(
            "it has a delay of {delay:?}, but `{}` is a topic, and SNS takes no delay per message: send it \
             to a queue (route its media type to a queue URL), or give the subscribed queues a delivery delay",
            destination.name()
        )
    } else if destination.is_fifo() {
        format!(
            "it has a delay of {delay:?}, but `{}` is a FIFO queue, which takes no delay per message: set the \
             queue's DelaySeconds instead, or leave the delay out",
            destination.name()
        )
    } else if delay > MAX_DELAY {
        format!("it has a delay of {delay:?}, over SQS's limit of 15 minutes: make it at most 900 seconds")
    } else {
        return Ok(());
    };
    Err(PublishError::InvalidDelay { media_type: media_type.to_owned(), reason })
}

/// What SNS and SQS find wrong with a message group or deduplication id, if anything: 1 to
/// 128 ASCII letters, digits and punctuation.
fn fifo_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        Some("is empty: SNS and SQS take 1 to 128 ASCII letters, digits and punctuation".into())
    } else if id.len() > MAX_FIFO_ID_LEN {
        Some(format!(
            "is {} characters long, over SNS's and SQS's limit of {MAX_FIFO_ID_LEN}",
            id.chars().count()
        ))
    } else {
        id.chars().find(|c| !c.is_ascii_graphic()).map(|bad| {
            format!(
                "{id:?} has the character {bad:?}: SNS and SQS take ASCII letters, digits and punctuation"
            )
        })
    }
}

/// What SNS finds wrong with a message attribute's name, if anything: SNS takes up to 256
/// ASCII letters, digits, `_`, `-` and `.`, not starting with `AWS.` or `Amazon.` (any case,
/// reserved), with no `.` first or last and no `..`. `media_type` is the message's own.
fn attribute_name_problem(name: &str) -> Option<String> {
    const ALLOWED: &str = "SNS takes ASCII letters, digits, `_`, `-` and `.`";
    let reserved =
        |prefix: &str| name.get(..prefix.len()).is_some_and(|start| start.eq_ignore_ascii_case(prefix));
    if name == MEDIA_TYPE_ATTRIBUTE {
        Some(
            "is the message's own attribute, set from its media type; it cannot be set as an attribute \
             (change the media type, or use another name)"
                .into(),
        )
    } else if name.is_empty() {
        Some("has an empty name".into())
    } else if name.chars().count() > MAX_ATTRIBUTE_NAME_LEN {
        Some(format!(
            "has a name of {} characters, over SNS's limit of {MAX_ATTRIBUTE_NAME_LEN}",
            name.chars().count()
        ))
    } else if let Some(bad) =
        name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        Some(format!("has the character {:?} in its name: {ALLOWED}", bad))
    } else if reserved("AWS.") || reserved("Amazon.") {
        Some("has a name starting with `AWS.` or `Amazon.`, which SNS reserves (in any case)".into())
    } else if name.starts_with('.') || name.ends_with('.') {
        Some(format!("has a name starting or ending with `.`: {ALLOWED}, but not `.` first or last"))
    } else if name.contains("..") {
        Some(format!("has `..` in its name: {ALLOWED}, but no two `.` in a row"))
    } else {
        None
    }
}
