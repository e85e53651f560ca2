//! Per-call publish settings (FIFO group and deduplication id, delay, typed attributes), the
//! checks the producer makes against the destination before any request, and what a handler's
//! context shows of a message's attributes and group.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::memory::{QueueOptions, SubscriptionOptions};
use pubsub_core::middleware::PublishRequest;
use pubsub_core::producer::{PublishError, PublishOptions};
use pubsub_core::transport::{AttributeValue, Attributes};
use pubsub_core::{
    backoff::BackoffPolicy, handler, outcome::Verdict, DaemonBuilder, MemoryBroker, MessageContext, Producer,
    PubSubMessage, TopicMap,
};
use serde::{Deserialize, Serialize};
use tower::util::MapRequestLayer;
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.shipment"]
struct Shipment {
    #[message_group_id]
    order_id: String,
    #[message_deduplication_id]
    event: u64,
}

fn shipment(order_id: &str, event: u64) -> Shipment {
    Shipment { order_id: order_id.into(), event }
}

/// A producer to `destination` whose layer records each message's group, deduplication id and
/// delay as they leave.
fn recording_producer(broker: &MemoryBroker, destination: &str) -> (Producer, Arc<Mutex<Vec<Sent>>>) {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let sink = sent.clone();
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(destination)).layer(
        MapRequestLayer::new(move |request: PublishRequest| {
            let message = &request.message;
            sink.lock().unwrap().push(Sent {
                group_id: message.group_id.clone(),
                deduplication_id: message.deduplication_id.clone(),
                delay: message.delay,
                attributes: message.attributes.clone(),
            });
            request
        }),
    );
    (producer, sent)
}

#[derive(Debug, Clone, PartialEq)]
struct Sent {
    group_id: Option<String>,
    deduplication_id: Option<String>,
    delay: Option<Duration>,
    attributes: Attributes,
}

#[tokio::test]
async fn the_types_group_and_deduplication_id_are_sent_and_per_call_options_win() {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("shipments");
    let (producer, sent) = recording_producer(&broker, &topic);
    producer.produce(&shipment("o-1", 7)).await.unwrap();
    let options = PublishOptions::new().group_id("override").deduplication_id("d-1").attribute("weight", 2.5);
    producer.produce_with_options(&shipment("o-1", 8), &options).await.unwrap();
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent[0].group_id.as_deref(), Some("o-1"));
    assert_eq!(sent[0].deduplication_id.as_deref(), Some("7"));
    assert_eq!(sent[1].group_id.as_deref(), Some("override"));
    assert_eq!(sent[1].deduplication_id.as_deref(), Some("d-1"));
    assert_eq!(sent[1].attributes["weight"], AttributeValue::Number("2.5".into()));
}

#[tokio::test]
async fn a_fifo_destination_needs_a_group_and_nothing_is_sent_without_one() {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("orders.fifo");
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    let untyped = pubsub_core::UntypedMessage::created("Order", "http://example.com/api/v1/order/1");
    broker.reset_request_counts();
    let error = producer.produce(&untyped).await.unwrap_err();
    assert!(
        matches!(&error, PublishError::NoMessageGroup { destination, .. } if destination == &topic),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the `application/vnd.globality.pubsub._.created.order` message has no message group id, which the \
         FIFO destination `arn:aws:sns:us-east-1:000000000000:orders.fifo` requires, so it was not sent: mark \
         the field that holds its group with #[message_group_id], or set one per call with \
         PublishOptions::group_id"
    );
    // In a batch, every message is checked before anything is sent.
    let error = producer.produce_batch(&[untyped.clone(), untyped]).await.unwrap_err();
    assert!(matches!(&error, PublishError::Refused { total: 2, refused } if refused.len() == 2), "{error:?}");
    assert_eq!(broker.request_counts().total(), 0, "nothing was sent");
}

#[tokio::test]
async fn fifo_ids_sns_and_sqs_refuse_are_refused_before_sending() {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("orders.fifo");
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    broker.reset_request_counts();
    for (options, which, why) in [
        (PublishOptions::new().group_id(""), "message group id", "is empty"),
        (PublishOptions::new().group_id("a b"), "message group id", "has the character ' '"),
        (PublishOptions::new().group_id("é"), "message group id", "has the character 'é'"),
        (PublishOptions::new().group_id("x".repeat(129)), "message group id", "is 129 characters long"),
        (
            PublishOptions::new().group_id("g").deduplication_id("d\n"),
            "deduplication id",
            "has the character",
        ),
    ] {
        let error = producer.produce_with_options(&shipment("o-1", 1), &options).await.unwrap_err();
        let PublishError::InvalidFifoId { which: actual, reason, .. } = &error else { panic!("{error:?}") };
        assert_eq!(*actual, which);
        assert!(reason.contains(why), "{reason}");
    }
    // 128 printable ASCII characters, punctuation included, are fine.
    let longest = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".repeat(4);
    assert_eq!(longest.len(), 128);
    producer
        .produce_with_options(&shipment("o-1", 1), &PublishOptions::new().group_id(longest))
        .await
        .unwrap();
    assert_eq!(broker.request_counts().total(), 1, "only the good one was sent");
}

#[tokio::test]
async fn delays_go_only_to_standard_queues_and_at_most_fifteen_minutes() {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("reminders");
    let fifo_queue = "memory://queue/reminders.fifo";
    let queue = "memory://queue/reminders";
    let delayed = |seconds| PublishOptions::new().delay(Duration::from_secs(seconds));
    broker.reset_request_counts();
    for (destination, options, why) in [
        (topic.as_str(), delayed(30), "is a topic, and SNS takes no delay per message"),
        (fifo_queue, delayed(30).group_id("g"), "is a FIFO queue, which takes no delay per message"),
        (queue, delayed(901), "over SQS's limit of 15 minutes"),
    ] {
        let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(destination));
        let error = producer.produce_with_options(&shipment("o-1", 1), &options).await.unwrap_err();
        assert!(matches!(&error, PublishError::InvalidDelay { .. }), "{error:?}");
        assert!(error.to_string().contains(why), "{error}");
    }
    assert_eq!(broker.request_counts().total(), 0, "nothing was sent");
    // Fifteen minutes to a standard queue passes the checks (the layer sees it leave).
    broker.create_queue("reminders", QueueOptions::default());
    let (producer, sent) = recording_producer(&broker, queue);
    let _ = producer.produce_with_options(&shipment("o-1", 1), &delayed(900)).await;
    assert_eq!(sent.lock().unwrap()[0].delay, Some(Duration::from_secs(900)));
}

#[tokio::test]
async fn attribute_values_sns_and_sqs_refuse_are_refused_before_sending() {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("events");
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    broker.reset_request_counts();
    for (value, why) in [
        (AttributeValue::Number("three".into()), "is not a decimal number"),
        (AttributeValue::Number("1e200".into()), "is not a decimal number"),
        (
            AttributeValue::Number("1234567890123456789012345678901234567890".into()),
            "is not a decimal number",
        ),
        (AttributeValue::Number(String::new()), "has an empty value"),
        (AttributeValue::Binary(Vec::new()), "has an empty value"),
    ] {
        let options = PublishOptions::new().attribute("weight", value.clone());
        let error = producer.produce_with_options(&shipment("o-1", 1), &options).await.unwrap_err();
        let PublishError::InvalidAttribute { name, reason, .. } = &error else {
            panic!("{value:?}: {error:?}")
        };
        assert_eq!(name, "weight");
        assert!(reason.contains(why), "{value:?}: {reason}");
    }
    assert_eq!(broker.request_counts().total(), 0, "nothing was sent");
    for good in ["0", "-1.5", "+3", "2E+3", "1e-128", "9.99e125", ".5", "5."] {
        let options = PublishOptions::new().attribute("weight", AttributeValue::Number(good.into()));
        producer
            .produce_with_options(&shipment("o-1", 1), &options)
            .await
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
}

/// What a handler saw of a message's context: its attributes, its `team` attribute, its group.
type Context = (Attributes, Option<String>, Option<String>);

/// What the handler saw of each message's context.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Context>>>);

#[handler]
async fn sees_its_context(_shipment: Shipment, context: &MessageContext, seen: &Seen) {
    seen.0.lock().unwrap().push((
        context.attributes().clone(),
        context.attribute("team").map(str::to_owned),
        context.message_group_id().map(str::to_owned),
    ));
}

/// Publishes one shipment with `options` through a subscription delivering raw or not, and
/// runs the daemon: what its handler saw of the context.
async fn context_seen(raw_delivery: bool, options: &PublishOptions) -> Context {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("shipments");
    broker.create_queue("shipments", QueueOptions::default());
    broker
        .subscribe(&topic, "shipments", SubscriptionOptions { raw_delivery, ..Default::default() })
        .unwrap();
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    producer.produce_with_options(&shipment("o-1", 1), options).await.unwrap();
    let seen = Seen::default();
    let report = DaemonBuilder::new("shipments")
        .collaborator(seen.clone())
        .wait_time(Duration::from_millis(20))
        .backoff(BackoffPolicy::Fixed(Duration::ZERO))
        .build(broker.subscriber("shipments").unwrap())
        .unwrap()
        .run_until_idle()
        .await;
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
    let seen = seen.0.lock().unwrap();
    seen[0].clone()
}

#[tokio::test]
async fn handlers_see_the_typed_attributes_whether_delivered_raw_or_in_a_notification() {
    let options = PublishOptions::new()
        .attribute("team", "billing")
        .attribute("weight", 3)
        .attribute("blob", vec![0u8, 1, 255]);
    for raw_delivery in [true, false] {
        let (attributes, team, group) = context_seen(raw_delivery, &options).await;
        let expected: Attributes = [
            ("blob", AttributeValue::Binary(vec![0, 1, 255])),
            ("media_type", AttributeValue::Text(Shipment::MEDIA_TYPE.into())),
            ("team", AttributeValue::Text("billing".into())),
            ("weight", AttributeValue::Number("3".into())),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        assert_eq!(attributes, expected, "raw delivery: {raw_delivery}");
        assert_eq!(team.as_deref(), Some("billing"));
        // A standard queue has no groups.
        assert_eq!(group, None);
    }
}

/// A message published with no attributes of its own has `media_type` alone, however it is
/// delivered (a notification's context keeps no copy of them, and writes them when asked).
#[tokio::test]
async fn a_message_with_no_attributes_has_media_type_alone() {
    for raw_delivery in [true, false] {
        let (attributes, team, _) = context_seen(raw_delivery, &PublishOptions::new()).await;
        let expected: Attributes =
            [("media_type".to_owned(), AttributeValue::Text(Shipment::MEDIA_TYPE.into()))]
                .into_iter()
                .collect();
        assert_eq!(attributes, expected, "raw delivery: {raw_delivery}");
        assert_eq!(team, None);
    }
}

/// A publisher whose earlier requests are slower than later ones, recording the order in
/// which requests end and how many overlap.
#[derive(Default)]
struct SlowFirst {
    ended: Mutex<Vec<String>>,
    running: std::sync::atomic::AtomicUsize,
    most_at_once: std::sync::atomic::AtomicUsize,
}

impl pubsub_core::transport::Publisher for SlowFirst {
    fn publish_batch<'a>(
        &'a self,
        _topic: &'a str,
        messages: Vec<pubsub_core::transport::OutgoingMessage>,
    ) -> pubsub_core::transport::BoxFuture<
        'a,
        Result<
            Vec<Result<String, pubsub_core::transport::EntryError>>,
            pubsub_core::transport::TransportError,
        >,
    > {
        use std::sync::atomic::Ordering::SeqCst;
        Box::pin(async move {
            let now = self.running.fetch_add(1, SeqCst) + 1;
            self.most_at_once.fetch_max(now, SeqCst);
            let first = messages[0].deduplication_id.clone().unwrap_or_default();
            let position: u64 = first.parse().unwrap();
            tokio::time::sleep(Duration::from_millis(50 - position)).await;
            self.ended.lock().unwrap().push(first);
            self.running.fetch_sub(1, SeqCst);
            Ok(messages
                .iter()
                .map(|m| Ok(format!("id-{}", m.deduplication_id.clone().unwrap_or_default())))
                .collect())
        })
    }
}

#[tokio::test(start_paused = true)]
async fn requests_to_a_fifo_destination_go_one_after_another_in_order() {
    for (destination, fifo) in
        [("arn:aws:sns:us-east-1:1:steps.fifo", true), ("arn:aws:sns:us-east-1:1:steps", false)]
    {
        let publisher = Arc::new(SlowFirst::default());
        let producer = Producer::from_shared(publisher.clone(), TopicMap::new().default_topic(destination));
        // Four requests of ten: the first is the slowest.
        let steps: Vec<Shipment> = (0..40).map(|i| shipment("o-1", i)).collect();
        let ids = producer.produce_batch(&steps).await.unwrap();
        assert_eq!(ids.len(), 40);
        let ended = publisher.ended.lock().unwrap().clone();
        let most_at_once = publisher.most_at_once.load(std::sync::atomic::Ordering::SeqCst);
        if fifo {
            assert_eq!(ended, ["0", "10", "20", "30"], "in order");
            assert_eq!(most_at_once, 1);
        } else {
            assert_eq!(ended, ["30", "20", "10", "0"], "at once, the slowest last");
            assert_eq!(most_at_once, 4);
        }
    }
}

#[tokio::test]
async fn a_batch_with_options_per_message_is_refused_whole_when_one_is_refused() {
    let broker = MemoryBroker::new();
    let queue = broker.create_queue("widgets.fifo", QueueOptions::default());
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&queue));
    let mut widgets: Vec<(Shipment, PublishOptions)> =
        (0..30).map(|i| (shipment("o-1", i), PublishOptions::new().group_id(format!("g-{i}")))).collect();
    // The type names its group; an empty one per call wins, and is refused.
    widgets[7].1.group_id = Some(String::new());
    broker.reset_request_counts();
    let error = producer.produce_batch_with_options(&widgets).await.unwrap_err();
    assert!(error.to_string().contains("index 7") && error.to_string().contains("is empty"), "{error}");
    assert_eq!(broker.request_counts().total(), 0, "nothing was sent");
    widgets[7].1.group_id = None;
    let ids = producer.produce_batch_with_options(&widgets).await.unwrap();
    assert_eq!(ids.len(), 30);
    assert_eq!(broker.queue_stats("widgets.fifo").total, 30);
}

#[tokio::test]
async fn the_test_kit_gives_a_message_attributes_and_a_group() {
    let seen = Seen::default();
    let run = pubsub_core::testing::HandlerTest::new()
        .collaborator(seen.clone())
        .attribute("team", "billing")
        .group_id("o-1")
        .run(&shipment("o-1", 1))
        .await;
    assert_eq!(run.verdict(), Verdict::Succeeded);
    let (attributes, team, group) = seen.0.lock().unwrap()[0].clone();
    assert_eq!(attributes["media_type"], Shipment::MEDIA_TYPE);
    assert_eq!((team.as_deref(), group.as_deref()), (Some("billing"), Some("o-1")));
}
