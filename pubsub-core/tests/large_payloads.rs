//! Large payloads on the embedded broker: offloading to its object store on publish, resolving
//! on receive (daemon, consumer, test kit), failures, and deleting after settle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::backoff::BackoffPolicy;
use pubsub_core::codec::DecodeError;
use pubsub_core::memory::{MemorySubscriber, Operation, QueueOptions, SubscriptionOptions};
use pubsub_core::payload::{LargePayloads, PayloadPointer, PAYLOAD_SIZE_ATTRIBUTE};
use pubsub_core::producer::{PublishError, PublishOptions};
use pubsub_core::testing::{HandlerTest, TEST_BUCKET};
use pubsub_core::transport::{AttributeValue, ReceivedMessage, Subscriber, TransportError};
use pubsub_core::{
    encode, handler, Consumer, DaemonBuilder, MemoryBroker, MessageContext, OpaqueData, Producer,
    PubSubMessage, TopicMap, Verdict,
};
use serde::{Deserialize, Serialize};
use validator::Validate;

const BUCKET: &str = "large-payloads";
const MIB: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.document"]
struct Document {
    id: String,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.summary"]
struct Summary {
    of: String,
    text: String,
}

fn document(id: &str, bytes: usize) -> Document {
    Document { id: id.into(), text: "x".repeat(bytes) }
}

/// What a handler saw of one message.
#[derive(Debug, Clone, PartialEq)]
struct Handled {
    id: String,
    text_len: usize,
    request_id: Option<String>,
    team: Option<String>,
    size_attribute: Option<String>,
}

#[derive(Default)]
struct Seen(Mutex<Vec<Handled>>);

impl Seen {
    fn take(&self) -> Vec<Handled> {
        let mut seen = std::mem::take(&mut *self.0.lock().unwrap());
        seen.sort_by(|a, b| a.id.cmp(&b.id));
        seen
    }
}

#[handler]
async fn keep(document: Document, context: &MessageContext, seen: &Arc<Seen>) {
    seen.0.lock().unwrap().push(Handled {
        id: document.id,
        text_len: document.text.len(),
        request_id: context.request_id().map(str::to_owned),
        team: context.attribute("team").map(str::to_owned),
        size_attribute: context.attribute(PAYLOAD_SIZE_ATTRIBUTE).map(str::to_owned),
    });
}

#[handler]
async fn summarize(document: Document, context: &MessageContext) -> Result<(), pubsub_core::HandlerError> {
    context.publish(&Summary { of: document.id, text: document.text.repeat(2) })?;
    Ok(())
}

/// A broker with a bucket, a topic with a raw and an enveloped subscription, and a queue of
/// its own for what is sent straight to it.
struct World {
    broker: MemoryBroker,
    topic: String,
    direct: String,
}

fn world() -> World {
    let broker = MemoryBroker::new();
    broker.create_bucket(BUCKET);
    let topic = broker.create_topic("documents");
    for (queue, raw_delivery) in [("raw", true), ("enveloped", false)] {
        broker.create_queue(queue, QueueOptions::default());
        broker.subscribe(&topic, queue, SubscriptionOptions { raw_delivery, ..Default::default() }).unwrap();
    }
    let direct = broker.create_queue("direct", QueueOptions::default());
    World { broker, topic, direct }
}

impl World {
    fn large(&self) -> LargePayloads {
        LargePayloads::new(self.broker.object_store(), BUCKET)
    }

    fn producer(&self, destination: &str, large: Option<LargePayloads>) -> Producer {
        let producer = Producer::new(self.broker.publisher(), TopicMap::new().default_topic(destination));
        match large {
            Some(large) => producer.large_payloads(large),
            None => producer,
        }
    }

    fn subscriber(&self, queue: &str) -> MemorySubscriber {
        self.broker.subscriber(queue).unwrap()
    }

    async fn receive(&self, queue: &str) -> Vec<ReceivedMessage> {
        self.subscriber(queue).receive(10, Duration::ZERO).await.unwrap()
    }
}

/// A daemon running `keep` on `queue`, reading pointers from the broker's store; it records
/// every outcome.
fn keeper(w: &World, seen: &Arc<Seen>, outcomes: &Arc<Mutex<Vec<(Verdict, String)>>>) -> DaemonBuilder {
    let outcomes = outcomes.clone();
    DaemonBuilder::new("keeper")
        .handler::<keep>()
        .collaborator(seen.clone())
        .object_store(w.broker.object_store())
        .wait_time(Duration::from_millis(50))
        .backoff(BackoffPolicy::Fixed(Duration::from_secs(60)))
        .on_outcome(move |handled| {
            let reason = handled.outcome.reason.clone().unwrap_or_default();
            outcomes.lock().unwrap().push((handled.outcome.verdict, reason));
        })
}

#[tokio::test]
async fn a_message_over_the_threshold_is_offloaded_and_one_under_it_is_not() {
    let w = world();
    let producer = w.producer(&w.topic, Some(w.large()));
    producer.produce(&document("small", 200_000)).await.unwrap();
    assert_eq!(w.broker.object_count(), 0);
    let received = w.receive("raw").await;
    assert_eq!(received.len(), 1);
    assert!(received[0].body.starts_with("{\"mediaType\""), "sent whole");
    assert_eq!(received[0].attribute(PAYLOAD_SIZE_ATTRIBUTE), None);

    let big = document("big", 300_000);
    let body_len = encode(&big, &OpaqueData::new()).unwrap().len();
    w.broker.reset_request_counts();
    producer.produce(&big).await.unwrap();
    let counts = w.broker.request_counts();
    assert_eq!((counts.put_object, counts.publish_batch), (1, 1));
    let received = w.receive("raw").await.pop().unwrap();
    // On the wire: the extended clients' pointer, the original size, the media type.
    let pointer = PayloadPointer::parse(&received.body).expect("the body is a pointer");
    assert_eq!(pointer.bucket, BUCKET);
    assert_eq!(pointer.key.len(), 36, "a UUID: {}", pointer.key);
    assert_eq!(received.body, pointer.to_body());
    assert_eq!(received.attributes[PAYLOAD_SIZE_ATTRIBUTE], AttributeValue::Number(body_len.to_string()));
    assert_eq!(received.attribute("media_type"), Some(Document::MEDIA_TYPE));
    let object = w.broker.object(&pointer).unwrap();
    assert_eq!(object.len(), body_len);
    assert_eq!(pubsub_core::decode::<Document>(&object).unwrap().message, big);
    // The enveloped queue's notification carries the same pointer as its `Message`.
    let enveloped = w.receive("enveloped").await;
    let notification: serde_json::Value = serde_json::from_str(&enveloped[1].body).unwrap();
    assert_eq!(notification["Message"], pointer.to_body());
    assert_eq!(notification["MessageAttributes"][PAYLOAD_SIZE_ATTRIBUTE]["Value"], body_len.to_string());
}

#[tokio::test]
async fn always_and_a_lower_threshold_offload_smaller_messages() {
    let w = world();
    w.producer(&w.direct, Some(w.large().always())).produce(&document("tiny", 1)).await.unwrap();
    assert_eq!(w.broker.object_count(), 1);
    w.producer(&w.direct, Some(w.large().threshold(1000))).produce(&document("one-k", 1000)).await.unwrap();
    w.producer(&w.direct, Some(w.large().threshold(1000))).produce(&document("few", 10)).await.unwrap();
    assert_eq!(w.broker.object_count(), 2);
    let bodies = w.broker.messages(&w.direct);
    let pointers = bodies.iter().filter(|body| PayloadPointer::parse(body).is_some()).count();
    assert_eq!(pointers, 2);
}

#[tokio::test]
async fn one_and_ten_mib_messages_reach_the_handler_intact_through_a_topic_and_straight_to_a_queue() {
    let w = world();
    let mut opaque = OpaqueData::new();
    opaque.set_request_id("req-large");
    let options = PublishOptions::new().attribute("team", "archive").opaque(opaque);
    let to_topic = w.producer(&w.topic, Some(w.large()));
    let to_queue = w.producer(&w.direct, Some(w.large()));
    for producer in [&to_topic, &to_queue] {
        producer.produce_with_options(&document("a-1mib", MIB), &options).await.unwrap();
        producer.produce_with_options(&document("b-10mib", 10 * MIB), &options).await.unwrap();
    }
    // One object per publish: the topic's is shared by both subscriptions.
    assert_eq!(w.broker.object_count(), 4);
    for queue in ["raw", "enveloped", "direct"] {
        let seen = Arc::new(Seen::default());
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let report = keeper(&w, &seen, &outcomes).build(w.subscriber(queue)).unwrap().run_until_idle().await;
        assert_eq!(report.total(), 2, "{queue}");
        let handled = |id: &str, text_len| Handled {
            id: id.into(),
            text_len,
            request_id: Some("req-large".into()),
            team: Some("archive".into()),
            size_attribute: None,
        };
        assert_eq!(seen.take(), [handled("a-1mib", MIB), handled("b-10mib", 10 * MIB)], "{queue}");
        assert_eq!(w.broker.queue_stats(queue).total, 0, "{queue}: deleted");
    }
    assert_eq!(w.broker.object_count(), 4, "not deleted by default");
}

#[tokio::test]
async fn the_legacy_pointer_class_and_size_attribute_are_read() {
    let w = world();
    let whole = encode(&document("legacy", 10), &OpaqueData::new()).unwrap();
    let pointer = PayloadPointer::new(BUCKET, "from-java");
    pubsub_core::payload::ObjectStore::put(&w.broker.object_store(), &pointer, whole.clone()).await.unwrap();
    let body = r#"["com.amazon.sqs.javamessaging.MessageS3Pointer",{"s3BucketName":"large-payloads","s3Key":"from-java"}]"#;
    w.broker
        .send_with_attributes(&w.direct, body, [("SQSLargePayloadSize", AttributeValue::from(whole.len()))])
        .await
        .unwrap();
    let seen = Arc::new(Seen::default());
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    keeper(&w, &seen, &outcomes).build(w.subscriber("direct")).unwrap().run_until_idle().await;
    assert_eq!(seen.take().len(), 1);
    assert_eq!(outcomes.lock().unwrap()[0].0, Verdict::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn a_missing_object_fails_the_message_which_stays_and_succeeds_once_the_object_is_there() {
    let w = world();
    let whole = encode(&document("late", 10), &OpaqueData::new()).unwrap();
    let pointer = PayloadPointer::new(BUCKET, "not-yet");
    w.broker.send(&w.direct, pointer.to_body()).await.unwrap();
    let seen = Arc::new(Seen::default());
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    keeper(&w, &seen, &outcomes).build(w.subscriber("direct")).unwrap().run_until_idle().await;
    {
        let outcomes = outcomes.lock().unwrap();
        assert_eq!(outcomes.len(), 1);
        let (verdict, reason) = &outcomes[0];
        assert_eq!(*verdict, Verdict::Failed);
        assert!(reason.contains("bucket `large-payloads`, key `not-yet`"), "{reason}");
    }
    assert!(seen.take().is_empty());
    assert_eq!(w.broker.queue_stats("direct").total, 1, "not deleted");

    pubsub_core::payload::ObjectStore::put(&w.broker.object_store(), &pointer, whole).await.unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;
    keeper(&w, &seen, &outcomes).build(w.subscriber("direct")).unwrap().run_until_idle().await;
    assert_eq!(outcomes.lock().unwrap()[1].0, Verdict::Succeeded, "retried after the backoff");
    assert_eq!(w.broker.queue_stats("direct").total, 0);
}

#[tokio::test(start_paused = true)]
async fn a_pointer_without_an_object_store_fails_saying_to_configure_one() {
    let w = world();
    w.producer(&w.direct, Some(w.large().always())).produce(&document("d", 10)).await.unwrap();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let recorded = outcomes.clone();
    DaemonBuilder::new("no-store")
        .handler::<keep>()
        .collaborator(Arc::new(Seen::default()))
        .wait_time(Duration::from_millis(50))
        .backoff(BackoffPolicy::Fixed(Duration::from_secs(60)))
        .on_outcome(move |handled| {
            recorded.lock().unwrap().push((handled.outcome.verdict, handled.outcome.reason.clone()))
        })
        .build(w.subscriber("direct"))
        .unwrap()
        .run_until_idle()
        .await;
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(outcomes[0].0, Verdict::Failed);
    let reason = outcomes[0].1.as_deref().unwrap();
    assert!(
        reason.contains("DaemonBuilder::object_store") && reason.contains("bucket `large-payloads`"),
        "{reason}"
    );
    assert_eq!(w.broker.queue_stats("direct").total, 1);
}

#[tokio::test]
async fn a_failed_write_refuses_the_whole_batch_and_deletes_what_was_written() {
    let w = world();
    let producer = w.producer(&w.topic, Some(w.large().always()));
    w.broker.reset_request_counts();
    w.broker.fail_next_request(Operation::PutObject, TransportError::Unavailable("S3 is down".into()));
    let batch = [document("a", 10), document("b", 10), document("c", 10)];
    let error = producer.produce_batch(&batch).await.unwrap_err();
    let PublishError::Refused { total: 3, refused } = &error else { panic!("{error}") };
    assert_eq!(refused.len(), 1);
    let PublishError::Offload { pointer, .. } = &refused[0].1 else { panic!("{error}") };
    let text = error.to_string();
    assert!(
        text.contains(&format!("bucket `{BUCKET}`, key `{}`", pointer.key)) && text.contains("S3 is down"),
        "{text}"
    );
    let counts = w.broker.request_counts();
    assert_eq!((counts.put_object, counts.publish_batch, counts.delete_object), (3, 0, 2));
    assert_eq!(w.broker.object_count(), 0);
    assert_eq!(w.broker.queue_stats("raw").total, 0, "nothing sent");
}

#[tokio::test]
async fn without_large_payloads_an_oversize_message_is_refused_naming_the_option() {
    let w = world();
    let error = w.producer(&w.topic, None).produce(&document("big", 300_000)).await.unwrap_err();
    assert!(matches!(error, PublishError::TooLarge { .. }), "{error}");
    assert!(error.to_string().contains("Producer::large_payloads"), "{error}");
    assert!(error.to_string().contains("--large-payload-bucket"), "{error}");
    assert_eq!(w.broker.request_counts().total(), 0);
}

#[tokio::test]
async fn the_object_is_deleted_after_its_message_only_when_asked() {
    for delete in [false, true] {
        let w = world();
        let producer = w.producer(&w.direct, Some(w.large()));
        producer.produce(&document("d", 300_000)).await.unwrap();
        let seen = Arc::new(Seen::default());
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        w.broker.reset_request_counts();
        keeper(&w, &seen, &outcomes)
            .delete_payloads(delete)
            .build(w.subscriber("direct"))
            .unwrap()
            .run_until_idle()
            .await;
        assert_eq!(seen.take().len(), 1);
        assert_eq!(w.broker.queue_stats("direct").total, 0);
        let counts = w.broker.request_counts();
        assert_eq!(counts.ack_batch, 1);
        assert_eq!(counts.delete_object, u64::from(delete), "delete_payloads({delete})");
        assert_eq!(w.broker.object_count(), usize::from(!delete));
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_message_keeps_its_object_even_when_deleting() {
    let w = world();
    let pointer = PayloadPointer::new(BUCKET, "bad");
    pubsub_core::payload::ObjectStore::put(&w.broker.object_store(), &pointer, r#"{"mediaType": 3}"#.into())
        .await
        .unwrap();
    w.broker.send(&w.direct, pointer.to_body()).await.unwrap();
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    keeper(&w, &Arc::new(Seen::default()), &outcomes)
        .delete_payloads(true)
        .build(w.subscriber("direct"))
        .unwrap()
        .run_until_idle()
        .await;
    assert_eq!(outcomes.lock().unwrap()[0].0, Verdict::Failed);
    assert_eq!(w.broker.object_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_handler_publishes_a_large_message_through_an_offloading_producer() {
    let w = world();
    w.producer(&w.direct, Some(w.large())).produce(&document("in", 200_000)).await.unwrap();
    let summaries = w.broker.create_queue("summaries", QueueOptions::default());
    for (large, expected) in [(None, Verdict::Failed), (Some(w.large()), Verdict::Succeeded)] {
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let recorded = outcomes.clone();
        DaemonBuilder::new("summarizer")
            .handler::<summarize>()
            .producer(w.producer(&summaries, large))
            .object_store(w.broker.object_store())
            .wait_time(Duration::from_millis(50))
            .backoff(BackoffPolicy::Fixed(Duration::from_secs(60)))
            .on_outcome(move |handled| {
                recorded.lock().unwrap().push((handled.outcome.verdict, handled.outcome.reason.clone()))
            })
            .build(w.subscriber("direct"))
            .unwrap()
            .run_until_idle()
            .await;
        let (verdict, reason) = outcomes.lock().unwrap()[0].clone();
        assert_eq!(verdict, expected, "{reason:?}");
        if expected == Verdict::Failed {
            assert!(reason.as_deref().unwrap().contains("Producer::large_payloads"), "{reason:?}");
            tokio::time::advance(Duration::from_secs(61)).await;
        }
    }
    // What it published is read whole by a consumer with the store.
    let consumer = Consumer::new(w.subscriber("summaries")).object_store(w.broker.object_store());
    let deliveries = consumer.consume().await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].payload().is_some());
    let summary = deliveries[0].decode::<Summary>().unwrap();
    assert_eq!((summary.message.of.as_str(), summary.message.text.len()), ("in", 400_000));
    // Without the store, the consumer says what is missing.
    let bare = Consumer::new(w.subscriber("summaries")).wait_time(Duration::ZERO);
    tokio::time::advance(Duration::from_secs(60)).await;
    let again = bare.consume().await.unwrap();
    let error = again[0].decode::<Summary>().unwrap_err();
    assert!(matches!(error, DecodeError::PayloadUnavailable { .. }), "{error}");
    assert!(error.to_string().contains("Consumer::object_store"), "{error}");
}

#[tokio::test]
async fn the_test_kit_resolves_pointers_and_offloads_what_handlers_publish() {
    let broker = MemoryBroker::new();
    let test = HandlerTest::new().handler::<summarize>().object_store(broker.object_store());
    let whole = encode(&document("kit", 150_000), &OpaqueData::new()).unwrap();
    let pointer = PayloadPointer::new(TEST_BUCKET, "input");
    pubsub_core::payload::ObjectStore::put(&broker.object_store(), &pointer, whole).await.unwrap();
    let run = test.run_body(&pointer.to_body()).await;
    assert_eq!(run.verdict(), Verdict::Succeeded, "{:?}", run.outcome.reason);
    assert!(PayloadPointer::parse(&run.published[0].body).is_some(), "sent as a pointer");
    let summaries = run.published::<Summary>();
    assert_eq!(summaries[0].message.text.len(), 300_000);
    assert_eq!(broker.object_count(), 2);
}
