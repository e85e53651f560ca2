//! The embedded broker: in-process SNS topics and SQS queues with the semantics of the real
//! services, for unit tests, examples and load benchmarks.
//!
//! - Topics fan a publish out to every subscribed queue whose [`FilterPolicy`] accepts the
//!   message's attributes (its media type and the others, typed: strings, numbers, ranges,
//!   `exists`, `anything-but`), as an SNS notification body (the attributes in its
//!   `MessageAttributes`) or, with raw delivery, as the message itself with its attributes as
//!   SQS message attributes (`media_type` and the others).
//! - [`MemoryPublisher`] also sends straight to a queue given by URL (`memory://queue/{name}`,
//!   what [`Destination::is_queue`] recognizes), as SQS `SendMessageBatch`
//!   ([`Operation::SendMessageBatch`]): the body as is, the attributes and `media_type` as SQS
//!   message attributes, as raw delivery gives them; so a `TopicMap` may route a media type
//!   to a queue.
//! - Queues hand messages out oldest first, hide each received message for the visibility
//!   timeout, count receives, give a fresh receipt handle per receive, and move a message that
//!   was received `max_receive_count` times to the dead-letter queue on its next receive
//!   (keeping its message id, group and deduplication id).
//! - Delays: a message sent to a standard queue with a delay (up to 15 minutes), or any
//!   message sent or delivered to a queue with [`QueueOptions::delay`], stays hidden until the
//!   delay passes (the message's own overrides the queue's).
//! - FIFO (names ending in `.fifo`): a FIFO topic or queue needs a message group on every
//!   message, and a deduplication id unless it has content-based deduplication (the SHA-256 of
//!   the body); a duplicate within 5 minutes is answered with the original's message id and not
//!   enqueued or delivered again (per queue, or per group with
//!   [`DeduplicationScope::MessageGroup`]). A FIFO queue refuses a message's own delay, gives
//!   each message a growing 20-digit sequence number, and surfaces group, deduplication id
//!   and sequence number on [`ReceivedMessage`](crate::transport::ReceivedMessage). A receive
//!   returns messages in order per group, takes as many of the oldest group's as it can before
//!   the next group's, and never returns a message of a group that has one in flight. A FIFO
//!   topic delivers, in publish order, only to FIFO queues, whose dead-letter queues are FIFO
//!   too: both are refused otherwise ([`MemoryBroker::subscribe`],
//!   [`MemoryBroker::try_create_queue`]). The throughput limit is stored, not enforced.
//! - Messages SNS or SQS would refuse in a batch (no group, no deduplication id, a delay on a
//!   FIFO queue or over 15 minutes) fail alone, with the service's error code
//!   (`MissingParameter`, `InvalidParameterValue`, SNS's `InvalidParameter`) and words.
//! - Receives long-poll; every wait uses [`tokio::time`], so tests may pause and advance time
//!   (visibility, delays, the deduplication interval).
//! - An S3 object store ([`MemoryBroker::object_store`], buckets made with
//!   [`MemoryBroker::create_bucket`]) for the payloads producers offload (see
//!   [`payload`](crate::payload)); its requests are counted and delayed as the others.
//! - [`MemoryBroker::set_latency`], [`MemoryBroker::fail_entries`] and
//!   [`MemoryBroker::fail_next_request`] simulate a slow or failing service;
//!   [`MemoryBroker::request_counts`] counts requests.
//!
//! Not simulated: SNS notification fields of FIFO topics (`SequenceNumber` in the
//! notification JSON), message retention, queue and topic name validation, throttling.
//!
//! Operations cost O(log n) in the number of messages in a queue; each queue has its own
//! lock, held only for the bookkeeping, never across an `.await`.
//!
//! [`Destination::is_queue`]: crate::transport::Destination::is_queue

mod clients;
mod dedup;
mod filter;
pub(crate) mod notification;
mod objects;
mod options;
mod queue;
mod simulation;
mod topic;
mod visible;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use clients::{MemoryPublisher, MemorySubscriber, MAX_PAYLOAD_BYTES};
pub use filter::{
    FilterCondition, FilterPolicy, FilterPolicyError, NumericOperator, MAX_FILTER_COMBINATIONS,
    MAX_FILTER_KEYS,
};
pub use objects::MemoryObjectStore;
pub use options::{
    DeduplicationScope, FifoThroughputLimit, QueueOptions, QueueStats, Redrive, SubscriptionOptions,
    TopicOptions, DEDUPLICATION_INTERVAL, DEFAULT_VISIBILITY_TIMEOUT,
};
pub use simulation::{Operation, RequestCounts};

use notification::{new_message_id, QUEUE_URL_PREFIX, TOPIC_ARN_PREFIX};
use queue::{NewMessage, Queue};
use simulation::Simulation;
use topic::Topic;

use crate::transport::{AttributeValue, Attributes, Destination, MessageId, TransportError, MAX_DELAY};

/// An in-process SNS+SQS: topics, queues, subscriptions, and a [`Publisher`] and
/// [`Subscriber`]s over them. Clones share the same broker.
///
/// [`Publisher`]: crate::transport::Publisher
/// [`Subscriber`]: crate::transport::Subscriber
///
/// ```
/// use std::time::Duration;
///
/// use pubsub_core::memory::{MemoryBroker, QueueOptions, SubscriptionOptions};
/// use pubsub_core::transport::{OutgoingMessage, Publisher, Subscriber};
/// use pubsub_core::{decode, encode, OpaqueData, UntypedMessage};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let broker = MemoryBroker::new();
/// let topic = broker.create_topic("orders");
/// assert_eq!(topic, "arn:aws:sns:us-east-1:000000000000:orders");
/// broker.create_queue("billing", QueueOptions::default());
/// broker.subscribe(&topic, "billing", SubscriptionOptions::default())?;
///
/// let created = UntypedMessage::created("Order", "http://example.com/api/v1/order/1");
/// let outgoing = OutgoingMessage::new(created.media_type.to_string(), encode(&created, &OpaqueData::new())?);
/// let published = broker.publisher().publish_batch(&topic, vec![outgoing]).await?;
/// assert!(published[0].is_ok());
///
/// let subscriber = broker.subscriber("billing")?;
/// let received = subscriber.receive(10, Duration::from_secs(1)).await?;
/// assert_eq!(received.len(), 1);
/// assert_eq!(received[0].receive_count, 1);
/// // A non-raw subscription delivers an SNS notification, which the codec unwraps.
/// let decoded = decode::<UntypedMessage>(&received[0].body)?;
/// assert_eq!(decoded.media_type, "application/vnd.globality.pubsub._.created.order");
///
/// let acked = subscriber.ack_batch(&[&received[0].receipt_handle]).await?;
/// assert!(acked[0].is_ok());
/// assert_eq!(broker.queue_stats("billing").total, 0);
/// assert_eq!(broker.request_counts().total(), 3);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryBroker {
    inner: Arc<Inner>,
}

struct Inner {
    /// By name.
    topics: Mutex<HashMap<String, Arc<Topic>>>,
    /// By name.
    queues: Mutex<HashMap<String, Arc<Queue>>>,
    /// The object store's buckets.
    buckets: objects::Buckets,
    simulation: Simulation,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        MemoryBroker::new()
    }
}

impl fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut topics: Vec<String> = lock(&self.inner.topics).keys().cloned().collect();
        let mut queues: Vec<String> = lock(&self.inner.queues).keys().cloned().collect();
        topics.sort_unstable();
        queues.sort_unstable();
        f.debug_struct("MemoryBroker")
            .field("topics", &topics)
            .field("queues", &queues)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A topic's name, from its name or ARN.
fn topic_name(name_or_arn: &str) -> &str {
    name_or_arn.strip_prefix(TOPIC_ARN_PREFIX).unwrap_or(name_or_arn)
}

/// A queue's name, from its name or URL.
fn queue_name(name_or_url: &str) -> &str {
    name_or_url.strip_prefix(QUEUE_URL_PREFIX).unwrap_or(name_or_url)
}

impl MemoryBroker {
    /// An empty broker: no topics, no queues, no latency.
    pub fn new() -> Self {
        MemoryBroker {
            inner: Arc::new(Inner {
                topics: Mutex::new(HashMap::new()),
                queues: Mutex::new(HashMap::new()),
                buckets: Mutex::new(HashMap::new()),
                simulation: Simulation::new(),
            }),
        }
    }

    /// Creates the topic `name` if it does not exist; returns its ARN,
    /// `arn:aws:sns:us-east-1:000000000000:{name}`. Names are not validated: use SNS's
    /// letters, digits, `-` and `_`, and end a FIFO topic's in `.fifo`.
    pub fn create_topic(&self, name: &str) -> String {
        let name = topic_name(name);
        lock(&self.inner.topics)
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Topic::new(name, format!("{TOPIC_ARN_PREFIX}{name}"), TopicOptions::default()))
            })
            .arn
            .clone()
    }

    /// [`create_topic`](Self::create_topic) with options (content-based deduplication for a
    /// FIFO topic), which replace those of an existing topic. Refused (`Invalid`) when SNS
    /// would refuse them: content-based deduplication on a topic that is not FIFO.
    pub fn create_topic_with(&self, name: &str, options: TopicOptions) -> Result<String, TransportError> {
        let name = topic_name(name);
        if options.content_based_deduplication && !Destination::of(name).is_fifo() {
            return Err(TransportError::Invalid(format!(
                "topic `{name}` is not FIFO (its name does not end in `.fifo`): only FIFO topics take \
                 content-based deduplication"
            )));
        }
        let mut topics = lock(&self.inner.topics);
        if let Some(existing) = topics.get(name) {
            existing.set_options(options);
            return Ok(existing.arn.clone());
        }
        let topic = Arc::new(Topic::new(name, format!("{TOPIC_ARN_PREFIX}{name}"), options));
        let arn = topic.arn.clone();
        topics.insert(name.to_owned(), topic);
        Ok(arn)
    }

    /// Creates the queue `name`, or sets the options of the existing one (for messages
    /// received from now on); returns its URL, `memory://queue/{name}`.
    ///
    /// Options SQS would refuse (see [`try_create_queue`](Self::try_create_queue)) are logged
    /// as an error and leave the queue as it was (not created: later calls on it fail with
    /// `QueueNotFound`). Use `try_create_queue` to get the refusal itself.
    pub fn create_queue(&self, name: &str, options: QueueOptions) -> String {
        self.try_create_queue(name, options).unwrap_or_else(|error| {
            tracing::error!(queue = name, %error, "queue options refused; the queue is left as it was");
            format!("{QUEUE_URL_PREFIX}{}", queue_name(name))
        })
    }

    /// Creates the queue `name`, or sets the options of the existing one (for messages
    /// received from now on); returns its URL, `memory://queue/{name}`. A name ending in
    /// `.fifo` makes a FIFO queue.
    ///
    /// A redrive's dead-letter queue that does not exist yet is created with default options.
    ///
    /// Refused (`Invalid`), with nothing created or changed, when SQS would refuse the
    /// options: a delay over 15 minutes, a visibility timeout over 12 hours, FIFO settings on
    /// a standard queue, or a dead-letter queue of the other kind (a FIFO queue's must be
    /// FIFO, a standard queue's standard).
    pub fn try_create_queue(&self, name: &str, mut options: QueueOptions) -> Result<String, TransportError> {
        let name = queue_name(name).to_owned();
        if let Some(redrive) = &mut options.redrive {
            redrive.dead_letter_queue = queue_name(&redrive.dead_letter_queue).to_owned();
        }
        check_queue_options(&name, &options)?;
        let mut queues = lock(&self.inner.queues);
        if let Some(redrive) = &options.redrive {
            if redrive.dead_letter_queue != name && !queues.contains_key(&redrive.dead_letter_queue) {
                let dead_letter_queue = new_queue(&redrive.dead_letter_queue, QueueOptions::default());
                queues.insert(redrive.dead_letter_queue.clone(), dead_letter_queue);
            }
        }
        if let Some(existing) = queues.get(&name) {
            let existing = Arc::clone(existing);
            drop(queues);
            existing.set_options(options);
            return Ok(existing.url.clone());
        }
        let queue = new_queue(&name, options);
        let url = queue.url.clone();
        queues.insert(name, queue);
        Ok(url)
    }

    /// Subscribes a queue (name or URL) to a topic (name or ARN); returns the subscription
    /// ARN. Subscribing the same queue again replaces its options and keeps its ARN.
    ///
    /// Refused (`Invalid`) across kinds, as SNS refuses it: a FIFO topic delivers only to
    /// FIFO queues, and a FIFO queue can only be subscribed to a FIFO topic.
    pub fn subscribe(
        &self,
        topic: &str,
        queue: &str,
        options: SubscriptionOptions,
    ) -> Result<String, TransportError> {
        let topic = self.topic(topic)?;
        let queue = self.queue(queue)?;
        topic.subscribe(queue, options)
    }

    /// A [`Publisher`](crate::transport::Publisher) to this broker's topics.
    pub fn publisher(&self) -> MemoryPublisher {
        MemoryPublisher { broker: self.clone() }
    }

    /// A [`Subscriber`](crate::transport::Subscriber) of a queue (name or URL).
    pub fn subscriber(&self, queue: &str) -> Result<MemorySubscriber, TransportError> {
        Ok(MemorySubscriber { broker: self.clone(), queue: self.queue(queue)? })
    }

    /// Sends `body` straight to a queue (name or URL), as SQS `SendMessage`; returns the
    /// queue's message id. No topic, no filter, no notification wrapping; the queue's delay
    /// applies. A FIFO queue refuses it (`Invalid`: no message group): publish to its URL
    /// instead (see [`MemoryPublisher`]).
    pub async fn send(&self, queue: &str, body: impl Into<String>) -> Result<MessageId, TransportError> {
        self.send_with_attributes(queue, body, Attributes::new()).await
    }

    /// [`send`](Self::send) with SQS message attributes.
    ///
    /// Refused (`Invalid`) over [`MAX_PAYLOAD_BYTES`] of body and attributes.
    pub async fn send_with_attributes(
        &self,
        queue: &str,
        body: impl Into<String>,
        attributes: impl IntoIterator<Item = (impl Into<String>, impl Into<AttributeValue>)>,
    ) -> Result<MessageId, TransportError> {
        let body = body.into();
        let attributes: Attributes =
            attributes.into_iter().map(|(name, value)| (name.into(), value.into())).collect();
        self.inner.simulation.begin(Operation::Send).await?;
        let queue = self.queue(queue)?;
        let size = body.len()
            + attributes
                .iter()
                .map(|(name, value)| name.len() + value.data_type().len() + value.len())
                .sum::<usize>();
        if size > MAX_PAYLOAD_BYTES {
            return Err(TransportError::Invalid(format!(
                "message of {size} bytes; at most {MAX_PAYLOAD_BYTES}"
            )));
        }
        let message = NewMessage::new(new_message_id(), body).with_attributes(attributes);
        match queue.send(vec![message], tokio::time::Instant::now()).remove(0) {
            Ok(message_id) => Ok(message_id),
            Err(refused) => Err(TransportError::Invalid(refused.to_string())),
        }
    }

    /// Makes every request (publish or send batch, receive, ack batch, change-visibility batch, send,
    /// and the object store's put, get and delete) wait `latency` before taking effect; a receive waits it on top of its long poll.
    pub fn set_latency(&self, latency: Duration) {
        self.inner.simulation.set_latency(latency);
    }

    /// The latency set by [`set_latency`](Self::set_latency).
    pub fn latency(&self) -> Duration {
        self.inner.simulation.latency()
    }

    /// Makes the next accepted call of `operation` fail the entries at `indices` with a
    /// retryable `InternalError` entry error; the other entries succeed. Calls refused whole
    /// (invalid, unknown topic, injected request failure) do not consume it; indices beyond
    /// the batch are ignored; successive calls before it is consumed add up.
    ///
    /// # Panics
    ///
    /// If `operation` has no entries ([`Operation::Receive`], [`Operation::Send`]).
    pub fn fail_entries(&self, operation: Operation, indices: impl IntoIterator<Item = usize>) {
        self.inner.simulation.fail_entries(operation, indices);
    }

    /// Makes the next call of `operation` fail whole with `error`, after its latency and
    /// before any effect. Successive calls queue up: one failure per call, in order.
    pub fn fail_next_request(&self, operation: Operation, error: TransportError) {
        self.inner.simulation.fail_next_request(operation, error);
    }

    /// How many requests of each kind were made so far (failed ones included).
    pub fn request_counts(&self) -> RequestCounts {
        self.inner.simulation.request_counts()
    }

    /// Sets every request count back to 0.
    pub fn reset_request_counts(&self) {
        self.inner.simulation.reset_request_counts();
    }

    /// How many messages a queue (name or URL) holds, visible and in flight.
    ///
    /// # Panics
    ///
    /// If the queue does not exist.
    pub fn queue_stats(&self, queue: &str) -> QueueStats {
        self.existing_queue(queue).stats(tokio::time::Instant::now())
    }

    /// The bodies of the messages in a queue (name or URL), visible or not, oldest first.
    ///
    /// # Panics
    ///
    /// If the queue does not exist.
    pub fn messages(&self, queue: &str) -> Vec<String> {
        self.existing_queue(queue).bodies()
    }

    fn existing_queue(&self, queue: &str) -> Arc<Queue> {
        self.queue(queue).unwrap_or_else(|error| panic!("{error}"))
    }

    fn topic(&self, name_or_arn: &str) -> Result<Arc<Topic>, TransportError> {
        lock(&self.inner.topics)
            .get(topic_name(name_or_arn))
            .cloned()
            .ok_or_else(|| TransportError::TopicNotFound(name_or_arn.to_owned()))
    }

    fn queue(&self, name_or_url: &str) -> Result<Arc<Queue>, TransportError> {
        lock(&self.inner.queues)
            .get(queue_name(name_or_url))
            .cloned()
            .ok_or_else(|| TransportError::QueueNotFound(name_or_url.to_owned()))
    }

    /// Moves messages that exhausted their receives in `source` to its dead-letter queue.
    fn dead_letter(&self, source: &str, dead_letter_queue: &str, messages: Vec<NewMessage>) {
        match self.queue(dead_letter_queue) {
            Ok(queue) => {
                tracing::debug!(
                    source,
                    dead_letter_queue,
                    count = messages.len(),
                    "redrive to dead-letter queue"
                );
                queue.push(messages);
            }
            Err(_) => tracing::warn!(
                source,
                dead_letter_queue,
                count = messages.len(),
                "dead-letter queue does not exist; messages dropped"
            ),
        }
    }
}

/// What SQS would refuse in a queue's options, if anything.
fn check_queue_options(name: &str, options: &QueueOptions) -> Result<(), TransportError> {
    let fifo = Destination::of(name).is_fifo();
    let refuse = |reason: String| Err(TransportError::Invalid(format!("queue `{name}`: {reason}")));
    if options.delay > MAX_DELAY {
        return refuse(format!("a delay of {:?} is over SQS's limit of 15 minutes", options.delay));
    }
    if options.visibility_timeout > queue::MAX_VISIBILITY_TIMEOUT {
        return refuse(format!(
            "a visibility timeout of {:?} is over SQS's limit of 12 hours",
            options.visibility_timeout
        ));
    }
    if !fifo {
        let fifo_settings = [
            (options.content_based_deduplication, "content-based deduplication"),
            (
                options.deduplication_scope != DeduplicationScope::Queue,
                "a deduplication scope of message group",
            ),
            (
                options.fifo_throughput_limit != FifoThroughputLimit::PerQueue,
                "a throughput limit per message group",
            ),
        ];
        if let Some((_, setting)) = fifo_settings.iter().find(|(set, _)| *set) {
            return refuse(format!(
                "{setting} is for FIFO queues only, and this one is standard (its name does not end in `.fifo`)"
            ));
        }
    }
    if let Some(redrive) = &options.redrive {
        let dead_letter_fifo = Destination::of(&redrive.dead_letter_queue).is_fifo();
        if dead_letter_fifo != fifo {
            let kind = |fifo: bool| if fifo { "a FIFO queue" } else { "a standard queue" };
            return refuse(format!(
                "its dead-letter queue `{}` is {}, but the dead-letter queue of {} must be {} too",
                redrive.dead_letter_queue,
                kind(dead_letter_fifo),
                kind(fifo),
                kind(fifo)
            ));
        }
    }
    Ok(())
}

fn new_queue(name: &str, options: QueueOptions) -> Arc<Queue> {
    Arc::new(Queue::new(name, format!("{QUEUE_URL_PREFIX}{name}"), options))
}
