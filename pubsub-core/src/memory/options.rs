//! The settings of queues and subscriptions, and what inspection reports.

use std::time::Duration;

use super::filter::FilterPolicy;

/// SQS's default visibility timeout.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);

/// A queue's attributes, as given to [`MemoryBroker::create_queue`](super::MemoryBroker::create_queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOptions {
    /// How long a received message stays invisible to other receivers (default 30 s).
    pub visibility_timeout: Duration,
    /// Where messages that keep failing go (SQS `RedrivePolicy`); none by default.
    pub redrive: Option<Redrive>,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions { visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT, redrive: None }
    }
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
    /// Messages a receive may return now.
    pub visible: usize,
    /// Messages received and neither deleted nor visible again.
    pub in_flight: usize,
    /// All messages in the queue: `visible + in_flight`.
    pub total: usize,
}
