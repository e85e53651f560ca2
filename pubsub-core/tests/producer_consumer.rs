//! The producer and the consumer API on the embedded broker.

use std::time::Duration;

use pubsub_core::memory::{Operation, QueueOptions, SubscriptionOptions};
use pubsub_core::transport::TransportError;
use pubsub_core::{
    BackoffPolicy, Consumer, MemoryBroker, OpaqueData, Producer, PubSubMessage, PublishError, ScopeError,
    TopicMap,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use validator::Validate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(created = "Order")]
struct OrderCreated {
    #[validate(length(min = 1))]
    id: String,
    blob: Option<String>,
}

fn order(id: &str) -> OrderCreated {
    OrderCreated { id: id.into(), blob: None }
}

struct World {
    broker: MemoryBroker,
    orders: String,
    other: String,
}

fn world() -> World {
    let broker = MemoryBroker::new();
    let orders = broker.create_topic("orders");
    let other = broker.create_topic("other");
    for (topic, queue) in [(&orders, "orders"), (&other, "other")] {
        broker.create_queue(queue, QueueOptions::default());
        broker
            .subscribe(topic, queue, SubscriptionOptions { raw_delivery: true, ..Default::default() })
            .unwrap();
    }
    World { broker, orders, other }
}

#[tokio::test]
async fn the_topic_is_chosen_by_media_type_and_an_unmapped_one_sends_nothing() {
    let w = world();
    let routed = Producer::new(
        w.broker.publisher(),
        TopicMap::new()
            .route("application/vnd.globality.pubsub._.created.*", &w.orders)
            .unwrap()
            .default_topic(&w.other),
    );
    routed.produce(&order("o-1")).await.unwrap();
    routed.produce_untyped("application/vnd.acme.pubsub.misc", json!({"a": 1})).await.unwrap();
    assert_eq!(w.broker.messages("orders").len(), 1);
    assert_eq!(w.broker.messages("other").len(), 1);

    let unmapped = Producer::new(w.broker.publisher(), TopicMap::new());
    w.broker.reset_request_counts();
    let error = unmapped.produce(&order("o-2")).await.unwrap_err();
    assert!(
        matches!(&error, PublishError::TopicNotDefined { media_type } if media_type == OrderCreated::MEDIA_TYPE)
    );
    assert_eq!(error.to_string(), "no topic for media type `application/vnd.globality.pubsub._.created.order`: map it with TopicMap::route or set a default topic");
    assert_eq!(w.broker.request_counts().total(), 0, "nothing was sent");
}

#[tokio::test]
async fn a_batch_goes_ten_at_a_time_with_ids_in_order() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic(&w.orders));
    let orders: Vec<_> = (0..25).map(|i| order(&format!("o-{i}"))).collect();
    w.broker.reset_request_counts();
    let ids = producer.produce_batch(&orders).await.unwrap();
    assert_eq!(ids.len(), 25);
    assert_eq!(w.broker.request_counts().publish_batch, 3);
    let consumer = Consumer::new(w.broker.subscriber("orders").unwrap());
    let mut received = Vec::new();
    while received.len() < 25 {
        for delivery in consumer.consume().await.unwrap() {
            received.push(delivery.decode::<OrderCreated>().unwrap().message.id);
            delivery.ack().await.unwrap();
        }
    }
    received.sort_by_key(|id| id[2..].parse::<u32>().unwrap());
    assert_eq!(received, orders.iter().map(|o| o.id.clone()).collect::<Vec<_>>());
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic(&w.orders));
    w.broker.reset_request_counts();
    let mut batch = vec![order("a"), order(""), order("c")];
    assert!(matches!(producer.produce_batch(&batch).await, Err(PublishError::Encode(_))));
    batch[1] = OrderCreated { id: "b".into(), blob: Some("x".repeat(300 * 1024)) };
    let error = producer.produce_batch(&batch).await.unwrap_err();
    assert!(matches!(error, PublishError::TooLarge { size, limit: 262_144, .. } if size > 300 * 1024));
    assert!(matches!(
        producer.produce_untyped("not a media type", json!({})).await,
        Err(PublishError::Untyped(_))
    ));
    assert_eq!(w.broker.request_counts().total(), 0);
}

#[tokio::test]
async fn failed_entries_and_failed_requests_are_reported_with_what_was_sent() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic(&w.orders));
    let batch: Vec<_> = (0..5).map(|i| order(&format!("o-{i}"))).collect();
    w.broker.fail_entries(Operation::PublishBatch, [2]);
    let Err(PublishError::Partial { sent, failures }) = producer.produce_batch(&batch).await else {
        panic!()
    };
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, 2);
    assert!(failures[0].1.retryable);
    assert_eq!(sent.iter().filter(|id| id.is_some()).count(), 4);
    assert!(sent[2].is_none());
    assert_eq!(w.broker.messages("orders").len(), 4);

    w.broker.fail_next_request(Operation::PublishBatch, TransportError::Unavailable("down".into()));
    let error = producer.produce(&order("x")).await.unwrap_err();
    assert!(matches!(error, PublishError::Transport { error: TransportError::Unavailable(_), .. }));
}

#[tokio::test]
async fn opaque_data_travels_with_the_message() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic(&w.orders));
    let opaque = OpaqueData::from_iter([("X-Request-Id", "r-9"), ("x-custom", "v")]);
    producer.produce_with(&order("o"), &opaque).await.unwrap();
    let decoded = pubsub_core::decode::<OrderCreated>(&w.broker.messages("orders")[0]).unwrap();
    assert_eq!(decoded.opaque_data.request_id(), Some("r-9"));
    assert_eq!(decoded.opaque_data.get("x-custom"), Some("v"));
}

#[tokio::test]
async fn consume_ack_nack_and_scope() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic(&w.orders));
    let consumer = Consumer::new(w.broker.subscriber("orders").unwrap())
        .wait_time(Duration::from_millis(20))
        .backoff(BackoffPolicy::Fixed(Duration::ZERO));
    assert!(consumer.consume().await.unwrap().is_empty(), "an empty queue gives an empty batch");

    producer.produce_batch(&[order("a"), order("b"), order("c")]).await.unwrap();
    let deliveries = consumer.consume().await.unwrap();
    assert_eq!(deliveries.len(), 3);
    deliveries[0].ack().await.unwrap();
    deliveries[1].nack(Some(Duration::ZERO)).await.unwrap();
    // A scope that fails nacks (backoff 0 here); one that succeeds acks.
    let failed = deliveries[2]
        .scope(async {
            deliveries[2].decode::<OrderCreated>().map_err(|_| "undecodable")?;
            Err::<(), _>("no")
        })
        .await;
    assert!(matches!(failed, Err(ScopeError::Failed { error: "no", nacked: true })));

    let again = consumer.consume().await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|d| d.message().receive_count == 2));
    for delivery in &again {
        let id =
            delivery.scope(async { delivery.decode::<OrderCreated>().map(|m| m.message.id) }).await.unwrap();
        assert!(id == "b" || id == "c");
    }
    assert_eq!(w.broker.queue_stats("orders").total, 0);
    // Acknowledging twice is an error the caller sees.
    assert!(again[0].ack().await.is_err());
}
