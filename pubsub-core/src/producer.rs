//! The producer: validate, encode, choose the topic by media type, publish in batches.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::error::EncodeError;
use crate::opaque::OpaqueData;
use crate::transport::{EntryError, MessageId, OutgoingMessage, Publisher, TransportError, MAX_BATCH};
use crate::untyped::{encode_untyped, UntypedError, UntypedMessage};
use crate::{encode, MediaTypeError, MediaTypePattern, PubSubMessage};

/// Publish requests a producer keeps in flight at once.
pub const PUBLISH_REQUESTS_IN_FLIGHT: usize = 64;

/// SNS's limit on a message's size (body plus attributes), 256 KiB.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

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
    /// The encoded message is over SNS's limit; nothing was sent.
    #[error("the `{media_type}` message is {size} bytes, over SNS's limit of {limit} bytes")]
    TooLarge {
        /// The media type.
        media_type: String,
        /// Its size with the media type attribute.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A whole request failed. Requests sent before it may have succeeded: `sent` has their
    /// ids, by the caller's message index.
    #[error("publishing failed: {error}")]
    Transport {
        /// Why.
        error: TransportError,
        /// Per message: its id if it was published before the failure.
        sent: Vec<Option<MessageId>>,
    },
    /// Some entries of a batch were refused; the others were published.
    #[error("{} of {} messages were not published; first failure: {}", failures.len(), sent.len(), failures[0].1)]
    Partial {
        /// Per message: its id if it was published.
        sent: Vec<Option<MessageId>>,
        /// The index and reason of each refused message.
        failures: Vec<(usize, EntryError)>,
    },
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
    exact: HashMap<String, String>,
    prefixes: HashMap<String, String>,
    default: Option<String>,
}

impl TopicMap {
    /// No routes, no default.
    pub fn new() -> TopicMap {
        TopicMap::default()
    }

    /// Routes `pattern` (a media type or `prefix.*`) to `topic`.
    pub fn route(mut self, pattern: &str, topic: impl Into<String>) -> Result<TopicMap, MediaTypeError> {
        match MediaTypePattern::parse(pattern)? {
            MediaTypePattern::Exact(media_type) => self.exact.insert(media_type.into(), topic.into()),
            MediaTypePattern::Prefix(_) => self.prefixes.insert(pattern.to_owned(), topic.into()),
        };
        Ok(self)
    }

    /// The topic of media types with no route.
    pub fn default_topic(mut self, topic: impl Into<String>) -> TopicMap {
        self.default = Some(topic.into());
        self
    }

    /// The topic for `media_type`.
    pub fn topic_for(&self, media_type: &str) -> Result<&str, PublishError> {
        self.exact
            .get(media_type)
            .or_else(|| MediaTypePattern::wildcard_for(media_type).and_then(|w| self.prefixes.get(&w)))
            .or(self.default.as_ref())
            .map(String::as_str)
            .ok_or_else(|| PublishError::TopicNotDefined { media_type: media_type.to_owned() })
    }
}

/// Publishes messages to the topics their media types map to.
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
}

impl Producer {
    /// A producer publishing through `publisher`, routing by `topics`.
    pub fn new(publisher: impl Publisher, topics: TopicMap) -> Producer {
        Producer { publisher: Arc::new(publisher), topics: Arc::new(topics) }
    }

    /// A producer over a shared publisher.
    pub fn from_shared(publisher: Arc<dyn Publisher>, topics: TopicMap) -> Producer {
        Producer { publisher, topics: Arc::new(topics) }
    }

    /// The routes.
    pub fn topics(&self) -> &Arc<TopicMap> {
        &self.topics
    }

    /// Validates, encodes and publishes `message`; returns its message id.
    pub async fn produce<M: PubSubMessage>(&self, message: &M) -> Result<MessageId, PublishError> {
        self.produce_with(message, &OpaqueData::new()).await
    }

    /// As [`produce`](Producer::produce), with opaque data (request id, TTL, custom keys).
    pub async fn produce_with<M: PubSubMessage>(
        &self,
        message: &M,
        opaque: &OpaqueData,
    ) -> Result<MessageId, PublishError> {
        let entry = self.prepare(M::MEDIA_TYPE, encode(message, opaque)?)?;
        Ok(self.send(vec![entry]).await?.remove(0))
    }

    /// Publishes a message of `media_type` whose fields are the JSON object `content`.
    pub async fn produce_untyped(&self, media_type: &str, content: Value) -> Result<MessageId, PublishError> {
        self.produce_untyped_with(&UntypedMessage::new(media_type, content)?, &OpaqueData::new()).await
    }

    /// Publishes an untyped message with opaque data.
    pub async fn produce_untyped_with(
        &self,
        message: &UntypedMessage,
        opaque: &OpaqueData,
    ) -> Result<MessageId, PublishError> {
        let entry = self.prepare(message.media_type.as_str(), encode_untyped(message, opaque)?)?;
        Ok(self.send(vec![entry]).await?.remove(0))
    }

    /// Publishes untyped messages in batches of ten per topic; ids in the same order. Every
    /// message is encoded and routed before anything is sent.
    pub async fn produce_untyped_batch(
        &self,
        messages: &[UntypedMessage],
    ) -> Result<Vec<MessageId>, PublishError> {
        let opaque = OpaqueData::new();
        let entries = messages
            .iter()
            .map(|message| self.prepare(message.media_type.as_str(), encode_untyped(message, &opaque)?))
            .collect::<Result<Vec<_>, PublishError>>()?;
        self.send(entries).await
    }

    /// Publishes `messages` in batches of ten per topic; ids in the same order. Every message
    /// is validated, encoded and routed before anything is sent.
    pub async fn produce_batch<M: PubSubMessage>(
        &self,
        messages: &[M],
    ) -> Result<Vec<MessageId>, PublishError> {
        let opaque = OpaqueData::new();
        let entries = messages
            .iter()
            .map(|message| self.prepare(M::MEDIA_TYPE, encode(message, &opaque)?))
            .collect::<Result<Vec<_>, PublishError>>()?;
        self.send(entries).await
    }

    /// Routes and size-checks an encoded message.
    pub(crate) fn prepare(
        &self,
        media_type: &str,
        body: String,
    ) -> Result<(String, OutgoingMessage), PublishError> {
        check_size(media_type, &body)?;
        let topic = self.topics.topic_for(media_type)?.to_owned();
        Ok((topic, OutgoingMessage { media_type: media_type.to_owned(), body }))
    }

    /// Publishes prepared messages, ten per request per topic, up to
    /// [`PUBLISH_REQUESTS_IN_FLIGHT`] requests at once; ids in input order.
    pub(crate) async fn send(
        &self,
        entries: Vec<(String, OutgoingMessage)>,
    ) -> Result<Vec<MessageId>, PublishError> {
        let mut sent: Vec<Option<MessageId>> = vec![None; entries.len()];
        let mut by_topic: Vec<(String, Vec<(usize, OutgoingMessage)>)> = Vec::new();
        for (index, (topic, message)) in entries.into_iter().enumerate() {
            match by_topic.iter_mut().find(|(t, _)| *t == topic) {
                Some((_, group)) => group.push((index, message)),
                None => by_topic.push((topic, vec![(index, message)])),
            }
        }
        let mut chunks = by_topic.into_iter().flat_map(|(topic, group)| {
            let mut group = group.into_iter().peekable();
            std::iter::from_fn(move || {
                group.peek()?;
                let (indices, chunk): (Vec<usize>, Vec<OutgoingMessage>) =
                    group.by_ref().take(MAX_BATCH).unzip();
                Some((topic.clone(), indices, chunk))
            })
            .collect::<Vec<_>>()
        });
        let mut requests = tokio::task::JoinSet::new();
        let mut failures = Vec::new();
        let mut transport_error = None;
        loop {
            while transport_error.is_none() && requests.len() < PUBLISH_REQUESTS_IN_FLIGHT {
                let Some((topic, indices, chunk)) = chunks.next() else { break };
                let publisher = self.publisher.clone();
                requests.spawn(async move {
                    let results = publisher.publish_batch(&topic, chunk).await;
                    (topic, indices, results)
                });
            }
            let Some(done) = requests.join_next().await else { break };
            let (topic, indices, results) = done.expect("a publish request does not panic");
            match results {
                Ok(results) => {
                    for (index, result) in indices.into_iter().zip(results) {
                        match result {
                            Ok(id) => {
                                tracing::debug!(target: "pubsub::producer", message_id = %id, topic = %topic, "published");
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
        if let Some(error) = transport_error {
            return Err(PublishError::Transport { error, sent });
        }
        if failures.is_empty() {
            Ok(sent.into_iter().map(|id| id.expect("every entry has a result")).collect())
        } else {
            failures.sort_by_key(|(index, _)| *index);
            Err(PublishError::Partial { sent, failures })
        }
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("topics", &self.topics).finish_non_exhaustive()
    }
}

/// Refuses a message SNS would refuse for its size (body plus the `media_type` attribute).
pub(crate) fn check_size(media_type: &str, body: &str) -> Result<(), PublishError> {
    let size = body.len() + crate::transport::MEDIA_TYPE_ATTRIBUTE.len() + "String".len() + media_type.len();
    if size > MAX_MESSAGE_BYTES {
        return Err(PublishError::TooLarge {
            media_type: media_type.to_owned(),
            size,
            limit: MAX_MESSAGE_BYTES,
        });
    }
    Ok(())
}
