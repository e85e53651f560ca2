//! Publishing faults against a real SNS/SQS server (moto, started by scripts/test.sh): an
//! oversize message, an invalid message, a topic that does not exist, a batch with one bad
//! entry (refused locally, or by SNS), and a topic deleted while a batch is under way.
//!
//! Each test counts the SNS requests sent and reads the queue subscribed to the topic: exactly
//! the messages the caller was told were published arrived, nothing else. The single-message
//! cases subscribe with raw delivery; the batch cases with enveloped delivery, whose
//! notifications carry the SNS message id, so that each arrival is matched with the id the
//! caller was given for it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use pubsub_aws::provision::{Provisioner, QueueSpec, SubscriptionSpec};
use pubsub_aws::{RequestCounter, SnsPublisher, SqsSubscriber};
use pubsub_core::transport::{BoxFuture, EntryError, MessageId, OutgoingMessage, Publisher, TransportError};
use pubsub_core::{
    codec::EncodeError, producer::PublishError, producer::MAX_MESSAGE_BYTES, Consumer, OpaqueData, Producer,
    PubSubMessage, TopicMap,
};
use serde::{Deserialize, Serialize};
use support::{pubsub, text};
use validator::Validate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.globality.pubsub._.created.order"]
#[serde(rename_all = "camelCase")]
struct OrderCreated {
    #[validate(length(min = 1))]
    order_id: String,
    #[validate(range(min = 0))]
    amount: i64,
    blob: Option<String>,
}

fn order(id: &str) -> OrderCreated {
    OrderCreated { order_id: id.into(), amount: 1, blob: None }
}

fn orders(n: usize) -> Vec<OrderCreated> {
    (0..n).map(|i| order(&format!("o-{i:02}"))).collect()
}

/// An order whose message, as SNS counts it (body and `media_type` attribute), is `size` bytes.
fn order_of_size(id: &str, size: usize) -> OrderCreated {
    let empty = OrderCreated { order_id: id.into(), amount: 1, blob: Some(String::new()) };
    let base = pubsub_core::encode(&empty, &OpaqueData::new()).unwrap().len()
        + "media_type".len()
        + "String".len()
        + OrderCreated::MEDIA_TYPE.len();
    OrderCreated { blob: Some("x".repeat(size - base)), ..empty }
}

/// A message that arrived in the queue: its `orderId` and, on enveloped delivery, the SNS
/// message id the notification carries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Arrival {
    order_id: String,
    sns_message_id: Option<String>,
}

/// What the caller was told was published, as the queue should show it: one arrival per
/// message with an id in `sent`, with that id when the delivery is enveloped.
fn told_sent(batch: &[OrderCreated], sent: &[Option<MessageId>], enveloped: bool) -> Vec<Arrival> {
    let mut told: Vec<Arrival> = batch
        .iter()
        .zip(sent)
        .filter_map(|(order, id)| {
            let id = id.as_ref()?;
            Some(Arrival { order_id: order.order_id.clone(), sns_message_id: enveloped.then(|| id.clone()) })
        })
        .collect();
    told.sort();
    told
}

struct Env {
    config: aws_config::SdkConfig,
    provisioner: Provisioner,
    /// Counts the requests of the publishers made by [`Env::publisher`].
    counter: RequestCounter,
}

async fn env() -> Option<Env> {
    support::require_emulator()?;
    let config = support::sdk_config().await;
    Some(Env { provisioner: Provisioner::new(&config), config, counter: RequestCounter::new() })
}

impl Env {
    /// A topic and a queue subscribed to it, raw or enveloped.
    async fn wire(&self, raw_delivery: bool) -> (String, String) {
        let topic = self.provisioner.topic(&support::unique_name("faults")).await.unwrap();
        let queue =
            self.provisioner.queue(&support::unique_name("faults"), &QueueSpec::default()).await.unwrap();
        self.provisioner
            .subscribe(&topic, &queue, &SubscriptionSpec { raw_delivery, filter: None })
            .await
            .unwrap();
        (topic, queue)
    }

    /// An SNS publisher whose requests [`Env::counter`] counts.
    fn publisher(&self) -> SnsPublisher {
        SnsPublisher::with_counter(&self.config, &self.counter)
    }

    fn producer(&self, topics: TopicMap) -> Producer {
        Producer::new(self.publisher(), topics)
    }

    /// An ARN of the emulator's account and region for a topic that was never created.
    fn missing_topic(&self) -> String {
        format!("arn:aws:sns:{}:123456789012:{}", support::REGION, support::unique_name("never-created"))
    }

    /// Everything in `queue`, received until a receive finds nothing, each acknowledged; sorted.
    async fn drain(&self, queue: &str) -> Vec<Arrival> {
        let consumer = Consumer::new(SqsSubscriber::new(&self.config, queue).await.unwrap())
            .wait_time(Duration::from_secs(1));
        let mut arrivals = Vec::new();
        loop {
            let deliveries = consumer.consume().await.unwrap();
            if deliveries.is_empty() {
                break;
            }
            for delivery in deliveries {
                let decoded = delivery.decode::<OrderCreated>().unwrap();
                let body: serde_json::Value = serde_json::from_str(&delivery.message().body).unwrap();
                arrivals.push(Arrival {
                    order_id: decoded.message.order_id,
                    sns_message_id: body["MessageId"].as_str().map(str::to_owned),
                });
                delivery.ack().await.unwrap();
            }
        }
        arrivals.sort();
        arrivals
    }
}

#[tokio::test]
async fn an_oversize_message_is_refused_before_any_request_and_one_at_the_limit_passes() {
    let Some(env) = env().await else { return };
    let (topic, queue) = env.wire(true).await;
    let producer = env.producer(TopicMap::new().default_topic(&topic));

    let error = producer.produce(&order_of_size("over", MAX_MESSAGE_BYTES + 1)).await.unwrap_err();
    assert!(matches!(error, PublishError::TooLarge { size: 262_145, limit: 262_144, .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the `application/vnd.globality.pubsub._.created.order` message is 262145 bytes (body and message \
         attributes), over SNS's limit of 262144 bytes, so it was not sent: offload large bodies to S3 with \
         Producer::large_payloads (on the command line, --large-payload-bucket), or make it smaller"
    );
    // In a batch, the oversize one stops the whole batch, by index.
    let batch = [order("a"), order_of_size("over", 300 * 1024), order("c")];
    let error = producer.produce_batch(&batch).await.unwrap_err();
    let PublishError::Refused { total: 3, refused } = &error else { panic!("{error:?}") };
    assert!(matches!(refused[..], [(1, PublishError::TooLarge { limit: 262_144, .. })]), "{error:?}");
    assert!(
        error.to_string().starts_with("none of the 3 messages was sent: 1 of them was refused"),
        "{error}"
    );
    assert_eq!(env.counter.total(), 0, "no request: {:?}", env.counter.counts());
    assert_eq!(env.drain(&queue).await, []);

    // Exactly at the limit: sent, one request, and it arrives whole.
    let at_limit = order_of_size("at-limit", MAX_MESSAGE_BYTES);
    let id = producer.produce(&at_limit).await.unwrap();
    assert_eq!(env.counter.counts(), [("PublishBatch".to_owned(), 1)].into());
    let consumer = Consumer::new(SqsSubscriber::new(&env.config, &queue).await.unwrap())
        .wait_time(Duration::from_secs(2));
    let deliveries = consumer.consume().await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].decode::<OrderCreated>().unwrap().message, at_limit);
    assert!(!id.is_empty());
    deliveries[0].ack().await.unwrap();
    assert_eq!(env.drain(&queue).await, []);

    // The command line: the same refusal, an error exit, no id printed, nothing sent.
    let line = serde_json::json!({"orderId": "cli", "amount": 1, "uri": "http://o/cli", "blob": "x".repeat(300 * 1024)});
    let cli = pubsub(
        &["publish", "--topic-arn", &topic, "--media-type", OrderCreated::MEDIA_TYPE],
        &format!("{line}\n"),
    );
    assert!(!cli.status.success());
    let stderr = text(&cli.stderr);
    assert!(
        stderr.contains("over SNS's limit of 262144 bytes") && stderr.contains("make it smaller"),
        "{stderr}"
    );
    assert_eq!(text(&cli.stdout), "");
    assert_eq!(env.drain(&queue).await, []);
}

#[tokio::test]
async fn large_messages_are_split_so_no_request_is_over_the_batch_limit() {
    let Some(env) = env().await else { return };
    let (topic, queue) = env.wire(false).await;
    let producer = env.producer(TopicMap::new().default_topic(&topic));
    // SNS refuses a PublishBatch of more than 256 KiB in all (moto does not check it): five
    // messages of 100 KiB go two, two and one.
    let batch: Vec<_> = (0..5).map(|i| order_of_size(&format!("big-{i}"), 100 * 1024)).collect();
    let ids = producer.produce_batch(&batch).await.unwrap();
    assert_eq!(env.counter.counts(), [("PublishBatch".to_owned(), 3)].into());
    let sent: Vec<Option<MessageId>> = ids.into_iter().map(Some).collect();
    assert_eq!(env.drain(&queue).await, told_sent(&batch, &sent, true));
}

#[tokio::test]
async fn an_invalid_message_is_refused_before_any_request_with_a_report_per_field() {
    let Some(env) = env().await else { return };
    let (topic, queue) = env.wire(true).await;
    let producer = env.producer(TopicMap::new().default_topic(&topic));

    let invalid = OrderCreated { order_id: String::new(), amount: -1, blob: None };
    let error = producer.produce(&invalid).await.unwrap_err();
    let PublishError::Encode(EncodeError::Invalid { media_type, report }) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(media_type, OrderCreated::MEDIA_TYPE);
    let fields: Vec<(&str, &str)> =
        report.violations.iter().map(|v| (v.field.as_str(), v.code.as_str())).collect();
    assert_eq!(fields, [("amount", "range"), ("orderId", "length")], "wire names, sorted");
    let text_of = error.to_string();
    assert!(
        text_of.starts_with("`application/vnd.globality.pubsub._.created.order` failed validation, so it was not encoded: `amount` ")
            && text_of.contains("; `orderId` "),
        "{text_of}"
    );
    assert_eq!(env.counter.total(), 0);

    // The command line checks the conventional fields of a `created` message.
    let cli = pubsub(
        &[
            "publish",
            "--topic-arn",
            &topic,
            "--media-type",
            OrderCreated::MEDIA_TYPE,
            "--json",
            r#"{"orderId": "o"}"#,
        ],
        "",
    );
    assert_eq!(cli.status.code(), Some(2));
    let stderr = text(&cli.stderr);
    assert!(stderr.starts_with("error: ") && stderr.contains("`uri` is required"), "{stderr}");
    assert_eq!(text(&cli.stdout), "");
    assert_eq!(env.drain(&queue).await, []);
}

#[tokio::test]
async fn a_topic_that_does_not_exist_is_named_and_nothing_arrives() {
    let Some(env) = env().await else { return };
    let (topic, queue) = env.wire(true).await;

    // A well-formed ARN of a topic never created: one request, refused whole by SNS.
    let missing = env.missing_topic();
    let producer = env.producer(TopicMap::new().default_topic(&missing));
    let error = producer.produce(&order("o-1")).await.unwrap_err();
    let PublishError::Transport { error: TransportError::TopicNotFound(named), sent, failures } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(named, &missing);
    assert_eq!((sent.as_slice(), failures.is_empty()), (&[None][..], true));
    assert_eq!(
        error.to_string(),
        format!(
            "publishing failed: topic `{missing}` does not exist (create the topic, or map the media type to an \
             existing one with TopicMap); the message was not published"
        )
    );
    assert_eq!(env.counter.get("PublishBatch"), 1, "not retried: {:?}", env.counter.counts());

    env.counter.reset();
    let error = producer.produce_batch(&orders(3)).await.unwrap_err();
    assert!(
        matches!(&error, PublishError::Transport { error: TransportError::TopicNotFound(_), sent, .. } if sent == &[None, None, None])
    );
    assert!(error.to_string().ends_with("; none of the 3 messages was published"), "{error}");
    assert_eq!(env.counter.get("PublishBatch"), 1);

    // A media type with no topic at all: refused before any request.
    env.counter.reset();
    let unmapped =
        env.producer(TopicMap::new().route("application/vnd.globality.pubsub.simple", &topic).unwrap());
    let error = unmapped.produce(&order("o-2")).await.unwrap_err();
    assert!(
        matches!(&error, PublishError::TopicNotDefined { media_type } if media_type == OrderCreated::MEDIA_TYPE)
    );
    assert_eq!(
        error.to_string(),
        "no topic for media type `application/vnd.globality.pubsub._.created.order`: map it with TopicMap::route \
         or set a default topic"
    );
    assert_eq!(env.counter.total(), 0);
    assert_eq!(env.drain(&queue).await, []);
}

#[tokio::test]
async fn a_batch_with_one_invalid_entry_sends_nothing_and_names_it() {
    let Some(env) = env().await else { return };
    let (topic, queue) = env.wire(false).await;
    let producer = env.producer(TopicMap::new().default_topic(&topic));
    let mut batch = orders(12);
    batch[7].amount = -5;

    let error = producer.produce_batch(&batch).await.unwrap_err();
    let PublishError::Refused { total: 12, refused } = &error else { panic!("{error:?}") };
    assert_eq!(refused.len(), 1);
    let (7, PublishError::Encode(EncodeError::Invalid { report, .. })) = &refused[0] else {
        panic!("{error:?}")
    };
    assert_eq!(report.field("amount").count(), 1);
    assert_eq!(
        error.to_string(),
        format!(
            "none of the 12 messages was sent: 1 of them was refused before sending; the message at index 7: {}",
            refused[0].1
        )
    );
    assert!(error.sent().is_none());
    assert_eq!(env.counter.total(), 0);
    assert_eq!(env.drain(&queue).await, []);

    // Without the bad one, every message goes, and the ids the caller gets are SNS's.
    batch.remove(7);
    let ids = producer.produce_batch(&batch).await.unwrap();
    assert_eq!(env.counter.get("PublishBatch"), 2);
    let sent: Vec<Option<MessageId>> = ids.into_iter().map(Some).collect();
    assert_eq!(env.drain(&queue).await, told_sent(&batch, &sent, true));
}

/// Makes one entry of each request too long on the wire, past the producer's size check, so
/// that SNS itself refuses that entry while the others of the request pass.
struct OneEntryTooLong {
    inner: SnsPublisher,
    index: usize,
}

impl Publisher for OneEntryTooLong {
    fn publish_batch<'a>(
        &'a self,
        topic: &'a str,
        mut messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Result<MessageId, EntryError>>, TransportError>> {
        if let Some(message) = messages.get_mut(self.index) {
            message.body.push_str(&" ".repeat(MAX_MESSAGE_BYTES));
        }
        self.inner.publish_batch(topic, messages)
    }
}

#[tokio::test]
async fn an_entry_sns_refuses_is_reported_and_the_others_arrive_with_their_ids() {
    let Some(env) = env().await else { return };
    let (topic, queue) = env.wire(false).await;
    let producer = Producer::new(
        OneEntryTooLong { inner: env.publisher(), index: 2 },
        TopicMap::new().default_topic(&topic),
    );
    let batch = orders(5);
    let error = producer.produce_batch(&batch).await.unwrap_err();
    let PublishError::Partial { sent, failures } = &error else { panic!("{error:?}") };
    assert_eq!(failures.len(), 1);
    let (index, refused) = &failures[0];
    assert_eq!(*index, 2);
    assert_eq!(refused.code, "InvalidParameter");
    assert!(refused.message.contains("Message too long"), "{refused}");
    assert!(!refused.retryable, "SNS blames the sender");
    assert_eq!(sent.iter().map(Option::is_some).collect::<Vec<_>>(), [true, true, false, true, true]);
    assert_eq!(
        error.to_string(),
        format!(
            "1 of 5 messages was not published, the one at index 2: {refused}; the other 4 were published \
             (their ids are in `sent`)"
        )
    );
    assert_eq!(env.counter.get("PublishBatch"), 1);
    assert_eq!(env.drain(&queue).await, told_sent(&batch, sent, true), "exactly the four, with their ids");
}

/// Sends one request at a time; deletes the topic once the first has been answered.
struct DeleteTopicAfterFirstRequest {
    inner: SnsPublisher,
    sns: aws_sdk_sns::Client,
    requests: tokio::sync::Mutex<usize>,
}

impl Publisher for DeleteTopicAfterFirstRequest {
    fn publish_batch<'a>(
        &'a self,
        topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Result<MessageId, EntryError>>, TransportError>> {
        Box::pin(async move {
            let mut requests = self.requests.lock().await;
            let results = self.inner.publish_batch(topic, messages).await;
            *requests += 1;
            if *requests == 1 {
                self.sns.delete_topic().topic_arn(topic).send().await.unwrap();
            }
            results
        })
    }
}

#[tokio::test]
async fn a_topic_deleted_halfway_through_a_batch_reports_what_was_sent() {
    let Some(env) = env().await else { return };
    let (topic, queue) = env.wire(false).await;
    let publisher = DeleteTopicAfterFirstRequest {
        inner: env.publisher(),
        sns: aws_sdk_sns::Client::new(&env.config),
        requests: Default::default(),
    };
    let producer = Producer::from_shared(Arc::new(publisher), TopicMap::new().default_topic(&topic));
    let batch = orders(25);
    let error = producer.produce_batch(&batch).await.unwrap_err();
    let PublishError::Transport { error: TransportError::TopicNotFound(named), sent, failures } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(named, &topic);
    assert!(failures.is_empty());
    let published = sent.iter().flatten().count();
    assert!(published == 10 || published == 5, "one request of ten or of five went through: {sent:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "publishing failed: topic `{topic}` does not exist (create the topic, or map the media type to an \
             existing one with TopicMap); {published} of 25 messages were published before it (their ids are \
             in `sent`), the others were not published"
        )
    );
    assert_eq!(env.counter.counts(), [("PublishBatch".to_owned(), 3)].into(), "three requests, no retries");
    assert_eq!(env.drain(&queue).await, told_sent(&batch, sent, true));
}
