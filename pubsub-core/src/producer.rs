//! The producer: validate, encode, choose the topic by media type, publish in batches.

use std::sync::Arc;

use crate::error::EncodeError;
use crate::media_type::MediaTypeTable;
use crate::message::Message;
use crate::opaque::OpaqueData;
use crate::transport::{EntryError, MessageId, OutgoingMessage, Publisher, TransportError, MAX_BATCH};
use crate::untyped::UntypedError;
#[cfg(doc)]
use crate::untyped::UntypedMessage;
use crate::{encode, MediaTypeError, MediaTypePattern};

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
        "the `{media_type}` message is {size} bytes (body and media type attribute), over SNS's limit of \
         {limit} bytes, so it was not sent: make it smaller (store a large payload elsewhere and send a \
         reference to it)"
    )]
    TooLarge {
        /// The media type.
        media_type: String,
        /// Its size with the media type attribute.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Some messages of a batch were refused before any request (invalid, too large, no
    /// topic), so none of the batch was sent.
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
    routes: MediaTypeTable<String>,
    default: Option<String>,
}

impl TopicMap {
    /// No routes, no default.
    pub fn new() -> TopicMap {
        TopicMap::default()
    }

    /// Routes `pattern` (a media type or `prefix.*`) to `topic`.
    pub fn route(mut self, pattern: &str, topic: impl Into<String>) -> Result<TopicMap, MediaTypeError> {
        self.routes.insert(MediaTypePattern::parse(pattern)?, topic.into());
        Ok(self)
    }

    /// The topic of media types with no route.
    pub fn default_topic(mut self, topic: impl Into<String>) -> TopicMap {
        self.default = Some(topic.into());
        self
    }

    /// The topic for `media_type`.
    pub fn topic_for(&self, media_type: &str) -> Result<&str, PublishError> {
        self.routes
            .lookup(media_type)
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
        let entry = self.prepare(message.media_type(), encode(message, opaque)?)?;
        Ok(self.send(vec![entry]).await?.remove(0))
    }

    /// Publishes `messages` in batches of up to ten per topic; ids in the same order. Every
    /// message is validated, encoded, size-checked and routed before anything is sent: if any
    /// is refused, nothing is sent and [`PublishError::Refused`] lists each refused one by
    /// index.
    ///
    /// After that, a request SNS refuses whole stops further requests and gives
    /// [`PublishError::Transport`], entries SNS refuses give [`PublishError::Partial`]: both
    /// carry the id of every message that was published, by index.
    pub async fn produce_batch<M: Message>(&self, messages: &[M]) -> Result<Vec<MessageId>, PublishError> {
        let opaque = OpaqueData::new();
        let entries = all_or_refused(
            messages.iter().map(|message| self.prepare(message.media_type(), encode(message, &opaque)?)),
        )?;
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

    /// Publishes prepared messages, up to ten (and [`MAX_MESSAGE_BYTES`] in all) per request
    /// per topic, up to [`PUBLISH_REQUESTS_IN_FLIGHT`] requests at once; ids in input order.
    /// After a request fails whole no more are started, and those under way are awaited, so
    /// that the error's `sent` is complete.
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
            chunk_group(group).into_iter().map(move |(indices, chunk)| (topic.clone(), indices, chunk))
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
        f.debug_struct("Producer").field("topics", &self.topics).finish_non_exhaustive()
    }
}

/// Every item's value, or [`PublishError::Refused`] with every refused item by index.
fn all_or_refused<T>(items: impl Iterator<Item = Result<T, PublishError>>) -> Result<Vec<T>, PublishError> {
    let mut accepted = Vec::new();
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
    let mut chunks: Vec<(Vec<usize>, Vec<OutgoingMessage>)> = Vec::new();
    let mut bytes = 0;
    for (index, message) in group {
        let size = message_size(&message.media_type, &message.body);
        match chunks.last_mut() {
            Some((indices, chunk)) if chunk.len() < MAX_BATCH && bytes + size <= MAX_MESSAGE_BYTES => {
                bytes += size;
                indices.push(index);
                chunk.push(message);
            }
            _ => {
                bytes = size;
                chunks.push((vec![index], vec![message]));
            }
        }
    }
    chunks
}

/// A message's size as SNS counts it: the body plus the `media_type` attribute's name, type
/// and value.
fn message_size(media_type: &str, body: &str) -> usize {
    body.len() + crate::transport::MEDIA_TYPE_ATTRIBUTE.len() + "String".len() + media_type.len()
}

/// Refuses a message SNS would refuse for its size (body plus the `media_type` attribute).
pub(crate) fn check_size(media_type: &str, body: &str) -> Result<(), PublishError> {
    let size = message_size(media_type, body);
    if size > MAX_MESSAGE_BYTES {
        return Err(PublishError::TooLarge {
            media_type: media_type.to_owned(),
            size,
            limit: MAX_MESSAGE_BYTES,
        });
    }
    Ok(())
}
