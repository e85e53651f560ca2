//! OpenTelemetry metrics, by the messaging semantic conventions' names and units where they
//! have one: messages processed and how long they took, by result (IGNORED included); messages
//! in flight and their age at receive; visibility extensions, failed settles, messages released at shutdown; messages
//! sent and how long each publish request took.

use std::time::{Duration, SystemTime};

use opentelemetry::metrics::{Counter, Histogram, UpDownCounter};
use opentelemetry::{global, KeyValue};

use crate::dispatch::HandledMessage;
use crate::outcome::Verdict;
use crate::transport::ReceivedMessage;

/// A daemon's instruments, from the global meter provider as it was when the daemon was built.
#[derive(Clone)]
pub(crate) struct ConsumeMetrics {
    consumed: Counter<u64>,
    duration: Histogram<f64>,
    in_flight: UpDownCounter<i64>,
    age: Histogram<f64>,
    extensions: Counter<u64>,
    settle_failures: Counter<u64>,
    released: Counter<u64>,
    queue: Vec<KeyValue>,
    /// The attributes of each result, in [`Verdict::ALL`]'s order, made once.
    by_result: Vec<Vec<KeyValue>>,
}

impl ConsumeMetrics {
    pub(crate) fn new(queue: &str) -> ConsumeMetrics {
        let meter = global::meter("pubsub-core");
        let queue = vec![
            KeyValue::new("messaging.system", "aws_sqs"),
            KeyValue::new("messaging.operation.name", "process"),
            KeyValue::new("messaging.destination.name", queue.to_owned()),
        ];
        let by_result = Verdict::ALL
            .iter()
            .map(|verdict| {
                let mut attributes = queue.clone();
                attributes.push(KeyValue::new("pubsub.result", verdict.as_str()));
                if *verdict == Verdict::Failed {
                    attributes.push(KeyValue::new("error.type", "FAILED"));
                }
                attributes
            })
            .collect();
        ConsumeMetrics {
            consumed: meter
                .u64_counter("messaging.client.consumed.messages")
                .with_unit("{message}")
                .with_description("Messages received and handled, by result")
                .build(),
            duration: meter
                .f64_histogram("messaging.process.duration")
                .with_unit("s")
                .with_description("Time from the start of a message's handling to its result")
                .build(),
            in_flight: meter
                .i64_up_down_counter("pubsub.messages.in_flight")
                .with_unit("{message}")
                .with_description("Messages being handled")
                .build(),
            age: meter
                .f64_histogram("pubsub.message.age")
                .with_unit("s")
                .with_description(
                    "How long a message waited in its queue before this receive (from SentTimestamp)",
                )
                .build(),
            extensions: meter
                .u64_counter("pubsub.visibility.extensions")
                .with_unit("{extension}")
                .with_description("Visibility extensions of messages whose handlers ran long (heartbeats)")
                .build(),
            settle_failures: meter
                .u64_counter("pubsub.settle.failures")
                .with_unit("{message}")
                .with_description("Deletes and visibility changes that failed and were retried")
                .build(),
            released: meter
                .u64_counter("pubsub.messages.released")
                .with_unit("{message}")
                .with_description("Messages a shutdown made visible again unhandled: received after it began, or waiting behind another of their FIFO group")
                .build(),
            queue,
            by_result,
        }
    }

    /// The handling of `message` began.
    pub(crate) fn started(&self, message: &ReceivedMessage) {
        self.in_flight.add(1, &self.queue);
        if let Some(age) = message.sent_at.and_then(|sent| SystemTime::now().duration_since(sent).ok()) {
            self.age.record(age.as_secs_f64(), &self.queue);
        }
    }

    /// `count` messages' visibility was extended.
    pub(crate) fn extended(&self, count: usize) {
        self.extensions.add(count as u64, &self.queue);
    }

    /// `count` deletes or visibility changes failed and will be retried.
    pub(crate) fn settle_failed(&self, count: usize) {
        self.settle_failures.add(count as u64, &self.queue);
    }

    /// A shutdown released a message unhandled (received after it began, or waiting in its
    /// FIFO group).
    pub(crate) fn released(&self) {
        self.released.add(1, &self.queue);
    }

    /// A message's handling ended with `handled`.
    pub(crate) fn finished(&self, handled: &HandledMessage) {
        self.in_flight.add(-1, &self.queue);
        let index = Verdict::ALL.iter().position(|v| *v == handled.outcome.verdict).unwrap_or_default();
        let attributes = &self.by_result[index];
        self.consumed.add(1, attributes);
        self.duration.record(handled.elapsed.as_secs_f64(), attributes);
    }
}

/// A producer's instruments.
#[derive(Clone)]
pub(crate) struct PublishMetrics {
    sent: Counter<u64>,
    duration: Histogram<f64>,
}

impl PublishMetrics {
    pub(crate) fn new() -> PublishMetrics {
        let meter = global::meter("pubsub-core");
        PublishMetrics {
            sent: meter
                .u64_counter("messaging.client.sent.messages")
                .with_unit("{message}")
                .with_description("Messages sent to a topic, by whether the topic took them")
                .build(),
            duration: meter
                .f64_histogram("messaging.client.operation.duration")
                .with_unit("s")
                .with_description("Time of each publish request")
                .build(),
        }
    }

    /// One publish request to `topic`: `sent` messages taken, `refused` not, in `elapsed`;
    /// `failed` when the whole request failed.
    pub(crate) fn request(&self, topic: &str, sent: u64, refused: u64, elapsed: Duration, failed: bool) {
        let name = topic.rsplit(':').next().unwrap_or(topic).to_owned();
        let attributes = [
            KeyValue::new("messaging.system", "aws_sns"),
            KeyValue::new("messaging.operation.name", "publish"),
            KeyValue::new("messaging.destination.name", name),
        ];
        if sent > 0 {
            self.sent.add(sent, &attributes);
        }
        let mut with_error = attributes.to_vec();
        with_error.push(KeyValue::new("error.type", "refused"));
        if refused > 0 {
            self.sent.add(refused, &with_error);
        }
        if failed {
            self.duration.record(elapsed.as_secs_f64(), &with_error);
        } else {
            self.duration.record(elapsed.as_secs_f64(), &attributes);
        }
    }
}
