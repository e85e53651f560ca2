//! The producer and the consumer API on the embedded broker.

use std::time::Duration;

use pubsub_core::memory::{Operation, QueueOptions, SubscriptionOptions};
use pubsub_core::transport::TransportError;
use pubsub_core::{
    backoff::BackoffPolicy, codec::EncodeError, consumer::ScopeError, producer::PublishError,
    producer::MAX_MESSAGE_BYTES, Consumer, MemoryBroker, OpaqueData, Producer, PubSubMessage, TopicMap,
    UntypedMessage,
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
    routed
        .produce(&UntypedMessage::new("application/vnd.acme.pubsub.misc", json!({"a": 1})).unwrap())
        .await
        .unwrap();
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

/// An order whose message, as SNS counts it (body and `media_type` attribute), is `size` bytes.
fn order_of_size(id: &str, size: usize) -> OrderCreated {
    let empty = OrderCreated { id: id.into(), blob: Some(String::new()) };
    let base = pubsub_core::encode(&empty, &OpaqueData::new()).unwrap().len()
        + "media_type".len()
        + "String".len()
        + OrderCreated::MEDIA_TYPE.len();
    OrderCreated { id: id.into(), blob: Some("x".repeat(size - base)) }
}

/// The ids of the orders in a queue, sorted.
fn ids_in(broker: &MemoryBroker, queue: &str) -> Vec<String> {
    let mut ids: Vec<String> = broker
        .messages(queue)
        .iter()
        .map(|body| pubsub_core::decode::<OrderCreated>(body).unwrap().message.id)
        .collect();
    ids.sort();
    ids
}

/// The ids of the orders whose entry in `sent` is an id, sorted.
fn ids_sent(orders: &[OrderCreated], sent: &[Option<String>]) -> Vec<String> {
    let mut ids: Vec<String> =
        orders.iter().zip(sent).filter(|(_, id)| id.is_some()).map(|(o, _)| o.id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic(&w.orders));
    w.broker.reset_request_counts();

    // One invalid message: refused with a report by wire field.
    let error = producer.produce(&order("")).await.unwrap_err();
    let PublishError::Encode(EncodeError::Invalid { media_type, report }) = &error else { panic!("{error}") };
    assert_eq!(media_type, OrderCreated::MEDIA_TYPE);
    assert_eq!(report.field("id").map(|v| v.code.as_str()).collect::<Vec<_>>(), ["length"]);
    assert!(error.to_string().contains("failed validation") && error.to_string().contains("`id`"), "{error}");
    assert!(error.sent().is_none(), "nothing was sent, so there is nothing to list");

    // A batch with bad entries: none is sent, each bad one is named by index.
    let mut batch = vec![order("a"), order(""), order("c"), order("")];
    let error = producer.produce_batch(&batch).await.unwrap_err();
    let PublishError::Refused { total: 4, refused } = &error else { panic!("{error}") };
    assert_eq!(refused.iter().map(|(index, _)| *index).collect::<Vec<_>>(), [1, 3]);
    assert!(refused.iter().all(|(_, e)| matches!(e, PublishError::Encode(EncodeError::Invalid { .. }))));
    assert_eq!(
        error.to_string(),
        format!(
            "none of the 4 messages was sent: 2 of them were refused before sending; the message at index 1: \
             {} (and 1 more, listed in `refused`)",
            refused[0].1
        )
    );

    batch[1] = OrderCreated { id: "b".into(), blob: Some("x".repeat(300 * 1024)) };
    batch[3] = order("d");
    let error = producer.produce_batch(&batch).await.unwrap_err();
    let PublishError::Refused { total: 4, refused } = &error else { panic!("{error}") };
    assert_eq!(refused.len(), 1);
    assert!(
        matches!(refused[0], (1, PublishError::TooLarge { size, limit: 262_144, .. }) if size > 300 * 1024),
        "{error}"
    );
    assert!(error.to_string().contains("over SNS's limit of 262144 bytes"), "{error}");

    let unmapped = Producer::new(w.broker.publisher(), TopicMap::new());
    let error = unmapped.produce_batch(&[order("a"), order("b")]).await.unwrap_err();
    let PublishError::Refused { total: 2, refused } = &error else { panic!("{error}") };
    assert!(refused.iter().all(|(_, e)| matches!(e, PublishError::TopicNotDefined { .. })));
    assert!(error.to_string().contains("map it with TopicMap::route"), "{error}");

    assert!(UntypedMessage::new("not a media type", json!({})).is_err());
    assert_eq!(w.broker.request_counts().total(), 0);
    assert!(w.broker.messages("orders").is_empty());
}

#[tokio::test]
async fn a_message_at_the_size_limit_is_sent_and_one_byte_more_is_not() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic(&w.orders));
    w.broker.reset_request_counts();
    let error = producer.produce(&order_of_size("over", MAX_MESSAGE_BYTES + 1)).await.unwrap_err();
    assert!(matches!(error, PublishError::TooLarge { size: 262_145, limit: 262_144, .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "the `application/vnd.globality.pubsub._.created.order` message is 262145 bytes (body and message \
         attributes), over SNS's limit of 262144 bytes, so it was not sent: offload large bodies to S3 \
         with Producer::large_payloads (on the command line, --large-payload-bucket), or make it smaller"
    );
    assert_eq!(w.broker.request_counts().total(), 0);

    producer.produce(&order_of_size("at", MAX_MESSAGE_BYTES)).await.unwrap();
    assert_eq!(ids_in(&w.broker, "orders"), ["at"]);
}

#[tokio::test]
async fn a_batch_of_large_messages_is_split_to_stay_under_the_request_limit() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic(&w.orders));
    w.broker.reset_request_counts();
    // Five messages of 100 KiB: SNS takes at most 256 KiB per PublishBatch, so two per request.
    let batch: Vec<_> = (0..5).map(|i| order_of_size(&format!("o-{i}"), 100 * 1024)).collect();
    let ids = producer.produce_batch(&batch).await.unwrap();
    assert_eq!(ids.len(), 5);
    assert_eq!(w.broker.request_counts().publish_batch, 3);
    assert_eq!(ids_in(&w.broker, "orders"), ["o-0", "o-1", "o-2", "o-3", "o-4"]);
}

#[tokio::test]
async fn failed_entries_and_failed_requests_are_reported_with_what_was_sent() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic(&w.orders));
    let batch: Vec<_> = (0..5).map(|i| order(&format!("o-{i}"))).collect();
    w.broker.fail_entries(Operation::PublishBatch, [2]);
    let error = producer.produce_batch(&batch).await.unwrap_err();
    let PublishError::Partial { sent, failures } = &error else { panic!("{error}") };
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].0, 2);
    assert!(failures[0].1.retryable);
    assert_eq!(sent.iter().filter(|id| id.is_some()).count(), 4);
    assert!(sent[2].is_none());
    assert_eq!(
        error.to_string(),
        format!(
            "1 of 5 messages was not published, the one at index 2: {}; the other 4 were published \
             (their ids are in `sent`)",
            failures[0].1
        )
    );
    assert_eq!(ids_in(&w.broker, "orders"), ids_sent(&batch, sent));

    w.broker.fail_next_request(Operation::PublishBatch, TransportError::Unavailable("down".into()));
    let error = producer.produce(&order("x")).await.unwrap_err();
    assert!(matches!(error, PublishError::Transport { error: TransportError::Unavailable(_), .. }));
    assert_eq!(
        error.to_string(),
        "publishing failed: transport unavailable: down; the message was not confirmed"
    );
    assert_eq!(w.broker.messages("orders").len(), 4);
}

#[tokio::test]
async fn a_failed_request_in_a_batch_is_reported_with_the_ids_of_the_others() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic(&w.orders));
    let batch: Vec<_> = (0..25).map(|i| order(&format!("o-{i:02}"))).collect();
    w.broker.reset_request_counts();
    // One of the three requests fails whole, one has a refused entry, one passes.
    w.broker.fail_next_request(Operation::PublishBatch, TransportError::Invalid("refused".into()));
    w.broker.fail_entries(Operation::PublishBatch, [0]);
    let error = producer.produce_batch(&batch).await.unwrap_err();
    let PublishError::Transport { error: TransportError::Invalid(_), sent, failures } = &error else {
        panic!("{error}")
    };
    assert_eq!(w.broker.request_counts().publish_batch, 3);
    let published = sent.iter().flatten().count();
    assert!(published == 14 || published == 19, "{sent:?}");
    assert_eq!(failures.len(), 1, "the refused entry of another request is reported too");
    assert!(sent[failures[0].0].is_none());
    assert_eq!(
        error.to_string(),
        format!(
            "publishing failed: invalid request: refused; {published} of 25 messages were published before it \
             (their ids are in `sent`), the others were not published; 1 more was refused, the one at \
             index {}: {}",
            failures[0].0, failures[0].1
        )
    );
    assert_eq!(error.sent(), Some(&sent[..]));
    assert_eq!(ids_in(&w.broker, "orders"), ids_sent(&batch, sent));
}

#[tokio::test]
async fn a_topic_that_does_not_exist_is_named_and_nothing_is_sent() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic("never-created"));
    let error = producer.produce_batch(&[order("a"), order("b")]).await.unwrap_err();
    let PublishError::Transport { error: TransportError::TopicNotFound(topic), sent, failures } = &error
    else {
        panic!("{error}")
    };
    assert_eq!(topic, "never-created");
    assert_eq!(sent, &[None, None]);
    assert!(failures.is_empty());
    assert_eq!(
        error.to_string(),
        "publishing failed: topic `never-created` does not exist (create the topic, or map the media type \
         to an existing one with TopicMap); none of the 2 messages was published"
    );
    assert!(w.broker.messages("orders").is_empty() && w.broker.messages("other").is_empty());
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

#[tokio::test]
async fn ack_all_and_nack_all_take_one_request_per_ten_with_one_result_each() {
    let w = world();
    let producer = Producer::new(w.broker.publisher(), TopicMap::new().default_topic(&w.orders));
    let orders: Vec<OrderCreated> = (0..25).map(|i| order(&format!("o-{i}"))).collect();
    producer.produce_batch(&orders).await.unwrap();
    let consumer = Consumer::new(w.broker.subscriber("orders").unwrap()).wait_time(Duration::from_millis(20));

    // What one receive brought: one delete request, one result per delivery.
    let first = consumer.consume().await.unwrap();
    assert_eq!(first.len(), 10);
    w.broker.reset_request_counts();
    let results = consumer.ack_all(&first).await.unwrap();
    assert_eq!(results.len(), 10);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(w.broker.request_counts().get(Operation::AckBatch), 1);
    assert_eq!(w.broker.request_counts().total(), 1);

    // Fifteen gathered from two receives: chunked in two; a failed entry is reported at its
    // own place and the others still go.
    let mut rest = consumer.consume().await.unwrap();
    rest.extend(consumer.consume_up_to(5).await.unwrap());
    assert_eq!(rest.len(), 15);
    w.broker.reset_request_counts();
    w.broker.fail_entries(Operation::ChangeVisibilityBatch, [3]);
    let nacked = consumer.nack_all(&rest, Some(Duration::ZERO)).await.unwrap();
    assert_eq!(w.broker.request_counts().get(Operation::ChangeVisibilityBatch), 2);
    assert_eq!(
        nacked.iter().map(Result::is_err).collect::<Vec<_>>(),
        (0..15).map(|i| i == 3).collect::<Vec<_>>()
    );
    assert_eq!(w.broker.queue_stats("orders").visible, 14, "all but the failed entry are visible again");

    // The nacked receipts are stale once received again: each stale one is an entry error.
    let again = consumer.consume().await.unwrap();
    w.broker.reset_request_counts();
    let stale = consumer.ack_all(&rest[..2]).await.unwrap();
    assert!(stale.iter().all(Result::is_err), "{stale:?}");
    assert!(consumer.ack_all(&again).await.unwrap().iter().all(Result::is_ok));
    assert_eq!(w.broker.request_counts().get(Operation::AckBatch), 2);

    // Nothing to acknowledge sends nothing; a failed request is the caller's error.
    w.broker.reset_request_counts();
    assert!(consumer.ack_all(&[]).await.unwrap().is_empty());
    assert_eq!(w.broker.request_counts().total(), 0);
    let last = consumer.consume().await.unwrap();
    w.broker.fail_next_request(Operation::AckBatch, TransportError::Unavailable("down".into()));
    assert!(matches!(consumer.ack_all(&last).await, Err(TransportError::Unavailable(_))));

    // Receipts from another consumer are refused before anything is sent.
    let other = Consumer::new(w.broker.subscriber("orders").unwrap()).wait_time(Duration::from_millis(20));
    w.broker.reset_request_counts();
    assert!(matches!(other.ack_all(&last).await, Err(TransportError::Invalid(_))));
    assert_eq!(w.broker.request_counts().total(), 0);
}
