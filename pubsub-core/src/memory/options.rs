//! The settings of topics, queues and subscriptions, and what inspection reports.

use std::time::Duration;

use super::filter::FilterPolicy;

/// SQS's default visibility timeout.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a FIFO topic or queue remembers a deduplication id: 5 minutes.
pub const DEDUPLICATION_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A queue's attributes, as given to [`MemoryBroker::create_queue`](super::MemoryBroker::create_queue).
///
/// A queue whose name ends in `.fifo` is a FIFO queue; the FIFO settings
/// (`content_based_deduplication`, `deduplication_scope`, `fifo_throughput_limit`) are
/// refused on other queues, as SQS refuses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    /// How long a received message stays invisible to other receivers (default 30 s).
    pub visibility_timeout: Duration,
    /// Where messages that keep failing go (SQS `RedrivePolicy`); none by default. The
    /// dead-letter queue of a FIFO queue must be FIFO, that of a standard queue standard.
    pub redrive: Option<Redrive>,
    /// How long every message sent or delivered to the queue stays hidden (SQS
    /// `DelaySeconds`, up to 15 minutes; none by default). On a standard queue, a message's
    /// own delay overrides it.
    pub delay: Duration,
    /// FIFO only: without a deduplication id, a message is deduplicated on the SHA-256 of its
    /// body (SQS `ContentBasedDeduplication`); off by default, when such a message is refused.
    pub content_based_deduplication: bool,
    /// FIFO only: whether a deduplication id is unique in the queue or in its message group
    /// (SQS `DeduplicationScope`, for high throughput).
    pub deduplication_scope: DeduplicationScope,
    /// FIFO only: SQS `FifoThroughputLimit`. Stored for parity with SQS; the embedded broker
    /// does not throttle.
    pub fifo_throughput_limit: FifoThroughputLimit,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            redrive: None,
            delay: Duration::ZERO,
            content_based_deduplication: false,
            deduplication_scope: DeduplicationScope::default(),
            fifo_throughput_limit: FifoThroughputLimit::default(),
        }
    }
}

/// Where a FIFO queue's deduplication ids are unique (SQS `DeduplicationScope`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DeduplicationScope {
    /// In the whole queue (`queue`, the default).
    #[default]
    Queue,
    /// In each message group (`messageGroup`): the same id in two groups is two messages.
    MessageGroup,
}

/// What a FIFO queue's throughput quota applies to (SQS `FifoThroughputLimit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum FifoThroughputLimit {
    /// The whole queue (`perQueue`, the default).
    #[default]
    PerQueue,
    /// Each message group (`perMessageGroupId`, high throughput).
    PerMessageGroupId,
}

/// A redrive policy: after `max_receive_count` receives, a message moves to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redrive {
    /// The dead-letter queue's name (its URL is accepted too).
    pub dead_letter_queue: String,
    /// How many receives a message gets before it is dead-lettered (SQS's minimum, 1, if 0).
    pub max_receive_count: u32,
}

impl Redrive {
    /// A redrive to `dead_letter_queue` after `max_receive_count` receives.
    pub fn new(dead_letter_queue: impl Into<String>, max_receive_count: u32) -> Self {
        Redrive { dead_letter_queue: dead_letter_queue.into(), max_receive_count }
    }
}

/// A topic's attributes, as given to
/// [`MemoryBroker::create_topic_with`](super::MemoryBroker::create_topic_with).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicOptions {
    /// FIFO topics only: without a deduplication id, a message is deduplicated on the SHA-256
    /// of its body (SNS `ContentBasedDeduplication`); off by default, when such a message is
    /// refused.
    pub content_based_deduplication: bool,
}

/// A subscription's attributes, as given to [`MemoryBroker::subscribe`](super::MemoryBroker::subscribe).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// SNS `RawMessageDelivery`: the SQS body is the message itself, and its message
    /// attributes (the media type as `media_type`, and the others) are SQS message
    /// attributes. Otherwise the body is an SNS notification, which holds the attributes.
    pub raw_delivery: bool,
    /// SNS `FilterPolicy` on message attributes (`media_type` and the others); none accepts
    /// everything.
    pub filter: Option<FilterPolicy>,
}

/// How many messages a queue holds (SQS's `ApproximateNumberOfMessages*`, but exact).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Messages a receive may return now (on a FIFO queue, some may wait for their group).
    pub visible: usize,
    /// Messages received and neither deleted nor visible again.
    pub in_flight: usize,
    /// Messages sent with a delay that has not passed yet.
    pub delayed: usize,
    /// All messages in the queue: `visible + in_flight + delayed`.
    pub total: usize,
}
