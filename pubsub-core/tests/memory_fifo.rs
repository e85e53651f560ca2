//! The embedded broker's FIFO topics and queues, direct sends to queues, and delays, through
//! the public API.
//!
//! Tests run on tokio's paused clock (`start_paused`): the deduplication interval, delays and
//! visibility timeouts pass by advancing it, and long polls assert the virtual time they took.

use std::collections::HashMap;
use std::time::Duration;

use pubsub_core::memory::{
    DeduplicationScope, FifoThroughputLimit, FilterPolicy, MemoryBroker, Operation, QueueOptions, Redrive,
    SubscriptionOptions, TopicOptions,
};
use pubsub_core::transport::{
    AttributeValue, EntryError, MessageId, OutgoingMessage, Publisher, ReceivedMessage, Subscriber,
    TransportError, VisibilityChange,
};
use pubsub_core::{Consumer, Producer, PubSubMessage, TopicMap};
use serde::{Deserialize, Serialize};
use tokio::time::{advance, Instant};
use validator::Validate;

const TEXT: &str = "text/plain";

/// A message of group `group` with deduplication id `id`, whose body is `body`.
fn grouped(body: &str, group: &str, id: &str) -> OutgoingMessage {
    OutgoingMessage::new(TEXT, body).with_group_id(group).with_deduplication_id(id)
}

async fn send(
    broker: &MemoryBroker,
    destination: &str,
    messages: Vec<OutgoingMessage>,
) -> Vec<Result<MessageId, EntryError>> {
    broker.publisher().publish_batch(destination, messages).await.expect("the batch is taken")
}

async fn send_one(broker: &MemoryBroker, destination: &str, message: OutgoingMessage) -> MessageId {
    send(broker, destination, vec![message]).await.remove(0).expect("the message is taken")
}

async fn receive_now(subscriber: &impl Subscriber, max: usize) -> Vec<ReceivedMessage> {
    subscriber.receive(max, Duration::ZERO).await.unwrap()
}

async fn ack(subscriber: &impl Subscriber, received: &[ReceivedMessage]) {
    let receipts = received.iter().map(|message| message.receipt_handle.as_str()).collect::<Vec<_>>();
    assert!(subscriber.ack_batch(&receipts).await.unwrap().iter().all(Result::is_ok));
}

fn bodies(received: &[ReceivedMessage]) -> Vec<&str> {
    received.iter().map(|message| message.body.as_str()).collect()
}

fn fifo_queue(broker: &MemoryBroker, name: &str, options: QueueOptions) -> String {
    broker.try_create_queue(name, options).expect("valid options")
}

#[tokio::test(start_paused = true)]
async fn receives_of_ten_keep_each_groups_order_and_take_a_group_at_a_time() {
    let broker = MemoryBroker::new();
    let url = fifo_queue(&broker, "orders.fifo", QueueOptions::default());
    let subscriber = broker.subscriber(&url).unwrap();
    // 30 messages of 3 groups, interleaved: a0 b0 c0 a1 b1 c1 ...
    for round in 0..3 {
        let batch = (0..10)
            .map(|i| {
                let n = round * 10 + i;
                let group = ["a", "b", "c"][n % 3];
                grouped(&format!("{group}{}", n / 3), group, &n.to_string())
            })
            .collect();
        assert!(send(&broker, &url, batch).await.iter().all(Result::is_ok));
    }

    // The oldest group first, as many of its messages as the receive takes.
    let first = receive_now(&subscriber, 10).await;
    assert_eq!(bodies(&first), ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"]);
    assert!(first.iter().all(|message| message.group_id.as_deref() == Some("a")));
    let second = receive_now(&subscriber, 10).await;
    assert_eq!(bodies(&second), ["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"]);
    ack(&subscriber, &first).await;
    ack(&subscriber, &second).await;

    // Several groups in one receive, each in order.
    broker.create_queue("mixed.fifo", QueueOptions::default());
    let mixed = broker.subscriber("mixed.fifo").unwrap();
    let batch: Vec<_> = (0..9)
        .map(|n| {
            let group = ["x", "y", "z"][n % 3];
            grouped(&format!("{group}{}", n / 3), group, &n.to_string())
        })
        .collect();
    assert!(send(&broker, "memory://queue/mixed.fifo", batch).await.iter().all(Result::is_ok));
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let received = receive_now(&mixed, 10).await;
    assert_eq!(bodies(&received), ["x0", "x1", "x2", "y0", "y1", "y2", "z0", "z1", "z2"]);
    for message in &received {
        seen.entry(message.group_id.clone().unwrap()).or_default().push(message.body.clone());
    }
    assert_eq!(seen["y"], ["y0", "y1", "y2"]);
    assert_eq!(receive_now(&subscriber, 10).await.len(), 10, "group c, untouched so far");
}

#[tokio::test(start_paused = true)]
async fn a_group_waits_while_one_of_its_messages_is_in_flight() {
    let broker = MemoryBroker::new();
    let url = fifo_queue(
        &broker,
        "jobs.fifo",
        QueueOptions { visibility_timeout: Duration::from_secs(30), ..QueueOptions::default() },
    );
    let subscriber = broker.subscriber(&url).unwrap();
    let batch = vec![grouped("a1", "a", "1"), grouped("a2", "a", "2"), grouped("b1", "b", "3")];
    assert!(send(&broker, &url, batch).await.iter().all(Result::is_ok));

    let a1 = receive_now(&subscriber, 1).await;
    assert_eq!(bodies(&a1), ["a1"]);
    let b1 = receive_now(&subscriber, 10).await;
    assert_eq!(bodies(&b1), ["b1"], "a2 waits for a1");
    ack(&subscriber, &b1).await;
    assert!(receive_now(&subscriber, 10).await.is_empty());
    assert_eq!(broker.queue_stats(&url).visible, 1, "a2 is visible, but its group is blocked");

    // A delete unblocks the group, and wakes a long poll at once.
    let poll = tokio::spawn({
        let subscriber = subscriber.clone();
        async move {
            let started = Instant::now();
            let received = subscriber.receive(10, Duration::from_secs(20)).await.unwrap();
            (received, started.elapsed())
        }
    });
    tokio::task::yield_now().await;
    ack(&subscriber, &a1).await;
    let (a2, waited) = poll.await.unwrap();
    assert_eq!(bodies(&a2), ["a2"]);
    assert_eq!(waited, Duration::ZERO);

    // The visibility timeout unblocks it too: a2 comes back, before a3.
    send_one(&broker, &url, grouped("a3", "a", "4")).await;
    assert!(receive_now(&subscriber, 10).await.is_empty(), "a3 waits for a2");
    let started = Instant::now();
    let again = subscriber.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert_eq!(bodies(&again), ["a2", "a3"]);
    assert_eq!(again[0].receive_count, 2);

    // A nack (visibility 0) also unblocks it, the nacked message first.
    let changes =
        vec![VisibilityChange { receipt_handle: again[0].receipt_handle.clone(), timeout: Duration::ZERO }];
    assert!(subscriber.change_visibility_batch(&changes).await.unwrap()[0].is_ok());
    assert!(receive_now(&subscriber, 10).await.is_empty(), "a3 is still in flight");
    ack(&subscriber, &again[1..]).await;
    assert_eq!(bodies(&receive_now(&subscriber, 10).await), ["a2"]);
}

#[tokio::test(start_paused = true)]
async fn duplicates_within_five_minutes_are_dropped_and_later_ones_are_not() {
    let broker = MemoryBroker::new();
    let url = fifo_queue(&broker, "once.fifo", QueueOptions::default());
    let original = send_one(&broker, &url, grouped("first", "g", "order-1")).await;
    let duplicate = send_one(&broker, &url, grouped("second", "g", "order-1")).await;
    assert_eq!(duplicate, original, "SQS answers a duplicate with the original's id");
    assert_eq!(broker.messages(&url), ["first"]);

    advance(Duration::from_secs(5 * 60 - 1)).await;
    assert_eq!(send_one(&broker, &url, grouped("third", "g", "order-1")).await, original);
    assert_eq!(broker.messages(&url), ["first"], "a duplicate does not extend the interval");

    advance(Duration::from_secs(1)).await;
    let later = send_one(&broker, &url, grouped("fourth", "g", "order-1")).await;
    assert_ne!(later, original);
    assert_eq!(broker.messages(&url), ["first", "fourth"]);
}

#[tokio::test(start_paused = true)]
async fn content_based_deduplication_hashes_the_body() {
    let broker = MemoryBroker::new();
    let url = fifo_queue(
        &broker,
        "hashed.fifo",
        QueueOptions { content_based_deduplication: true, ..QueueOptions::default() },
    );
    let message = |body: &str, group: &str| OutgoingMessage::new(TEXT, body).with_group_id(group);
    let first = send_one(&broker, &url, message("abc", "g")).await;
    assert_eq!(send_one(&broker, &url, message("abc", "other-group")).await, first);
    send_one(&broker, &url, message("abd", "g")).await;
    // An explicit id wins over the hash.
    send_one(&broker, &url, message("abc", "g").with_deduplication_id("explicit")).await;
    assert_eq!(broker.messages(&url), ["abc", "abd", "abc"]);

    let subscriber = broker.subscriber(&url).unwrap();
    let received = receive_now(&subscriber, 10).await;
    assert_eq!(
        received[0].deduplication_id.as_deref(),
        Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        "SHA-256 of `abc`"
    );
    assert_eq!(received[2].deduplication_id.as_deref(), Some("explicit"));
}

#[tokio::test(start_paused = true)]
async fn deduplication_in_a_message_group_scope() {
    let broker = MemoryBroker::new();
    let options = |deduplication_scope| QueueOptions {
        deduplication_scope,
        fifo_throughput_limit: FifoThroughputLimit::PerMessageGroupId,
        ..QueueOptions::default()
    };
    let per_group = fifo_queue(&broker, "per-group.fifo", options(DeduplicationScope::MessageGroup));
    let per_queue = fifo_queue(&broker, "per-queue.fifo", options(DeduplicationScope::Queue));
    for url in [&per_group, &per_queue] {
        send_one(&broker, url, grouped("a", "a", "same")).await;
        send_one(&broker, url, grouped("b", "b", "same")).await;
        send_one(&broker, url, grouped("a again", "a", "same")).await;
    }
    assert_eq!(broker.messages(&per_group), ["a", "b"]);
    assert_eq!(broker.messages(&per_queue), ["a"]);
}

#[tokio::test(start_paused = true)]
async fn a_fifo_queue_refuses_entries_without_group_or_deduplication_or_with_a_delay() {
    let broker = MemoryBroker::new();
    let url = fifo_queue(&broker, "strict.fifo", QueueOptions::default());
    let results = send(
        &broker,
        &url,
        vec![
            OutgoingMessage::new(TEXT, "no group").with_deduplication_id("1"),
            OutgoingMessage::new(TEXT, "no id").with_group_id("g"),
            grouped("delayed", "g", "2").with_delay(Duration::from_secs(5)),
            grouped("fine", "g", "3"),
        ],
    )
    .await;
    let error = |index: usize| results[index].clone().unwrap_err();
    assert_eq!(error(0).code, "MissingParameter");
    assert_eq!(error(0).message, "The request must contain the parameter MessageGroupId.");
    assert_eq!(error(1).code, "InvalidParameterValue");
    assert_eq!(
        error(1).message,
        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided \
         explicitly"
    );
    assert_eq!(error(2).code, "InvalidParameterValue");
    assert!(error(2).message.contains("DelaySeconds"), "{}", error(2).message);
    assert!(!error(0).retryable && !error(1).retryable && !error(2).retryable);
    assert!(results[3].is_ok());
    assert_eq!(broker.messages(&url), ["fine"]);

    // `send` carries no group: refused whole.
    let refused = broker.send(&url, "plain").await.unwrap_err();
    assert!(
        matches!(&refused, TransportError::Invalid(reason) if reason.contains("MessageGroupId")),
        "{refused}"
    );
}

#[tokio::test(start_paused = true)]
async fn sequence_numbers_grow_and_fifo_fields_are_surfaced() {
    let broker = MemoryBroker::new();
    let url = fifo_queue(&broker, "seq.fifo", QueueOptions::default());
    let batch = (0..6).map(|n| grouped(&n.to_string(), ["a", "b"][n % 2], &format!("id-{n}"))).collect();
    assert!(send(&broker, &url, batch).await.iter().all(Result::is_ok));
    let subscriber = broker.subscriber(&url).unwrap();
    let received = receive_now(&subscriber, 10).await;
    assert_eq!(received.len(), 6);
    let mut by_body: Vec<&ReceivedMessage> = received.iter().collect();
    by_body.sort_by_key(|message| message.body.clone());
    let numbers: Vec<u128> = by_body
        .iter()
        .map(|message| {
            let number = message.sequence_number.as_deref().expect("a sequence number");
            assert!(number.len() >= 20 && number.bytes().all(|b| b.is_ascii_digit()), "{number}");
            number.parse().unwrap()
        })
        .collect();
    assert!(numbers.windows(2).all(|pair| pair[0] < pair[1]), "in sending order: {numbers:?}");
    for (n, message) in by_body.iter().enumerate() {
        assert_eq!(message.group_id.as_deref(), Some(["a", "b"][n % 2]));
        assert_eq!(message.deduplication_id.as_deref(), Some(format!("id-{n}").as_str()));
    }

    // A standard queue has none of them, even when the message had a group.
    broker.create_queue("standard", QueueOptions::default());
    send_one(&broker, "memory://queue/standard", grouped("x", "g", "1")).await;
    let standard = receive_now(&broker.subscriber("standard").unwrap(), 1).await;
    assert_eq!(
        (&standard[0].group_id, &standard[0].deduplication_id, &standard[0].sequence_number),
        (&None, &None, &None)
    );
}

#[tokio::test(start_paused = true)]
async fn a_fifo_topic_fans_out_to_fifo_queues_in_order_through_filter_policies() {
    let broker = MemoryBroker::new();
    let topic =
        broker.create_topic_with("orders.fifo", TopicOptions { content_based_deduplication: true }).unwrap();
    assert_eq!(topic, "arn:aws:sns:us-east-1:000000000000:orders.fifo");
    fifo_queue(&broker, "billing.fifo", QueueOptions::default());
    fifo_queue(&broker, "heavy.fifo", QueueOptions::default());
    let filter = |json: &str| SubscriptionOptions {
        raw_delivery: true,
        filter: Some(FilterPolicy::from_json(json).unwrap()),
    };
    broker.subscribe(&topic, "billing.fifo", filter(r#"{"team": ["billing"]}"#)).unwrap();
    broker.subscribe(&topic, "heavy.fifo", filter(r#"{"weight": [{"numeric": [">", 5]}]}"#)).unwrap();

    let message = |body: &str, group: &str, team: &str, weight: u32| {
        OutgoingMessage::new(TEXT, body)
            .with_group_id(group)
            .with_attribute("team", team)
            .with_attribute("weight", weight)
    };
    let batch = vec![
        message("1", "o-1", "billing", 1),
        message("2", "o-2", "shipping", 9),
        message("3", "o-1", "billing", 7),
        message("4", "o-1", "shipping", 6),
        message("5", "o-2", "billing", 2),
    ];
    let ids: Vec<MessageId> =
        send(&broker, &topic, batch.clone()).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(broker.messages("billing.fifo"), ["1", "3", "5"]);
    assert_eq!(broker.messages("heavy.fifo"), ["2", "3", "4"]);

    // Republished within 5 minutes: the topic answers with the original ids, delivers nothing.
    let again: Vec<MessageId> = send(&broker, &topic, batch).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(again, ids);
    assert_eq!(broker.messages("billing.fifo").len(), 3);

    let heavy = receive_now(&broker.subscriber("heavy.fifo").unwrap(), 10).await;
    assert_eq!(bodies(&heavy), ["2", "3", "4"]);
    assert_eq!(heavy[0].group_id.as_deref(), Some("o-2"));
    assert_eq!(heavy[1].group_id.as_deref(), Some("o-1"));
    assert_eq!(heavy[0].deduplication_id.as_ref().map(String::len), Some(64), "the topic's content hash");
    assert_eq!(heavy[0].attribute("media_type"), Some(TEXT));
    assert_eq!(heavy[1].attributes["weight"], AttributeValue::Number("7".into()));

    // A FIFO topic needs a group, and an id without content-based deduplication.
    let results = send(&broker, &topic, vec![OutgoingMessage::new(TEXT, "no group")]).await;
    assert_eq!(results[0].clone().unwrap_err().code, "InvalidParameter");
    let strict = broker.create_topic("strict.fifo");
    let results = send(&broker, &strict, vec![OutgoingMessage::new(TEXT, "no id").with_group_id("g")]).await;
    let error = results[0].clone().unwrap_err();
    assert_eq!(error.code, "InvalidParameter");
    assert!(error.message.contains("ContentBasedDeduplication"), "{}", error.message);
}

#[tokio::test(start_paused = true)]
async fn a_fifo_queue_dead_letters_to_a_fifo_queue_keeping_the_group() {
    let broker = MemoryBroker::new();
    let url = fifo_queue(
        &broker,
        "jobs.fifo",
        QueueOptions {
            visibility_timeout: Duration::from_secs(10),
            redrive: Some(Redrive::new("jobs-dlq.fifo", 2)),
            ..QueueOptions::default()
        },
    );
    let subscriber = broker.subscriber(&url).unwrap();
    let id = send_one(&broker, &url, grouped("poison", "g-1", "d-1")).await;
    send_one(&broker, &url, grouped("next", "g-1", "d-2")).await;
    for attempt in 1..=2 {
        let received = subscriber.receive(1, Duration::from_secs(60)).await.unwrap();
        assert_eq!((bodies(&received), received[0].receive_count), (vec!["poison"], attempt));
    }
    // The third receive moves it, and the group goes on with the next message.
    let received = subscriber.receive(1, Duration::from_secs(60)).await.unwrap();
    assert_eq!(bodies(&received), ["next"]);
    let dead = receive_now(&broker.subscriber("jobs-dlq.fifo").unwrap(), 10).await;
    assert_eq!(bodies(&dead), ["poison"]);
    assert_eq!(dead[0].message_id, id);
    assert_eq!(dead[0].group_id.as_deref(), Some("g-1"));
    assert_eq!(dead[0].deduplication_id.as_deref(), Some("d-1"));
    assert!(dead[0].sequence_number.is_some());
}

#[tokio::test(start_paused = true)]
async fn standard_and_fifo_do_not_mix() {
    let broker = MemoryBroker::new();
    let fifo_topic = broker.create_topic("events.fifo");
    let standard_topic = broker.create_topic("events");
    broker.create_queue("work.fifo", QueueOptions::default());
    broker.create_queue("work", QueueOptions::default());

    let invalid = |result: Result<String, TransportError>| match result {
        Err(TransportError::Invalid(reason)) => reason,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let reason = invalid(broker.subscribe(&standard_topic, "work.fifo", SubscriptionOptions::default()));
    assert!(reason.contains("FIFO queue `work.fifo` can only be subscribed to a FIFO topic"), "{reason}");
    let reason = invalid(broker.subscribe(&fifo_topic, "work", SubscriptionOptions::default()));
    assert!(reason.contains("delivers only to FIFO queues"), "{reason}");
    broker.subscribe(&fifo_topic, "work.fifo", SubscriptionOptions::default()).unwrap();
    broker.subscribe(&standard_topic, "work", SubscriptionOptions::default()).unwrap();

    // Dead-letter queues of the other kind, and FIFO settings on a standard queue.
    let redrive = |dead_letter_queue: &str| QueueOptions {
        redrive: Some(Redrive::new(dead_letter_queue, 3)),
        ..QueueOptions::default()
    };
    let reason = invalid(broker.try_create_queue("a.fifo", redrive("a-dlq")));
    assert!(reason.contains("the dead-letter queue of a FIFO queue must be a FIFO queue too"), "{reason}");
    invalid(broker.try_create_queue("b", redrive("b-dlq.fifo")));
    let reason = invalid(broker.try_create_queue(
        "c",
        QueueOptions { content_based_deduplication: true, ..QueueOptions::default() },
    ));
    assert!(reason.contains("for FIFO queues only"), "{reason}");
    invalid(
        broker.try_create_queue(
            "d",
            QueueOptions { delay: Duration::from_secs(901), ..QueueOptions::default() },
        ),
    );
    invalid(broker.create_topic_with("plain", TopicOptions { content_based_deduplication: true }));

    // `create_queue` refuses the same (logged), creating nothing.
    let url = broker.create_queue("e.fifo", redrive("e-dlq"));
    assert_eq!(url, "memory://queue/e.fifo");
    assert!(matches!(broker.subscriber(&url), Err(TransportError::QueueNotFound(_))));
    assert!(matches!(broker.subscriber("e-dlq"), Err(TransportError::QueueNotFound(_))));
    // And leaves an existing queue as it was.
    broker.create_queue("work.fifo", redrive("e-dlq"));
    let options = broker.subscriber("work.fifo").unwrap();
    assert_eq!(options.visibility_timeout(), QueueOptions::default().visibility_timeout);
}

#[tokio::test(start_paused = true)]
async fn a_direct_send_honours_its_delay_and_the_queues() {
    let broker = MemoryBroker::new();
    let url = broker.create_queue("work", QueueOptions::default());
    let subscriber = broker.subscriber(&url).unwrap();
    broker.reset_request_counts();
    let delayed = OutgoingMessage::new(TEXT, "later")
        .with_attribute("team", "billing")
        .with_attribute("weight", 3)
        .with_delay(Duration::from_secs(30));
    let id = send_one(&broker, &url, delayed).await;
    assert_eq!(broker.request_counts().get(Operation::SendMessageBatch), 1);
    assert_eq!(broker.request_counts().get(Operation::PublishBatch), 0);
    assert!(receive_now(&subscriber, 10).await.is_empty());
    let stats = broker.queue_stats(&url);
    assert_eq!((stats.visible, stats.in_flight, stats.delayed, stats.total), (0, 0, 1, 1));

    let started = Instant::now();
    let received = subscriber.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(30), "a long poll wakes when the delay passes");
    assert_eq!(received[0].message_id, id);
    assert_eq!(received[0].body, "later", "the body as is");
    assert_eq!(received[0].attribute("media_type"), Some(TEXT));
    assert_eq!(received[0].attribute("team"), Some("billing"));
    assert_eq!(received[0].attributes["weight"], AttributeValue::Number("3".into()));

    // A queue's delay applies to direct sends and topic deliveries; a message's own overrides it.
    let slow = broker
        .create_queue("slow", QueueOptions { delay: Duration::from_secs(10), ..QueueOptions::default() });
    let topic = broker.create_topic("events");
    broker
        .subscribe(&topic, "slow", SubscriptionOptions { raw_delivery: true, ..Default::default() })
        .unwrap();
    send_one(&broker, &topic, OutgoingMessage::new(TEXT, "published")).await;
    send_one(&broker, &slow, OutgoingMessage::new(TEXT, "sent")).await;
    broker.send(&slow, "sent plainly").await.unwrap();
    send_one(&broker, &slow, OutgoingMessage::new(TEXT, "soon").with_delay(Duration::from_secs(2))).await;
    let slow_subscriber = broker.subscriber(&slow).unwrap();
    let started = Instant::now();
    assert_eq!(bodies(&slow_subscriber.receive(10, Duration::from_secs(60)).await.unwrap()), ["soon"]);
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    let rest = slow_subscriber.receive(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(bodies(&rest), ["published", "sent", "sent plainly"]);
    assert_eq!(started.elapsed(), Duration::from_secs(10));

    // SQS's limits, per entry; an unknown queue, whole.
    let results =
        send(&broker, &url, vec![OutgoingMessage::new(TEXT, "x").with_delay(Duration::from_secs(901))]).await;
    assert_eq!(results[0].clone().unwrap_err().code, "InvalidParameterValue");
    let missing =
        broker.publisher().publish_batch("memory://queue/nope", vec![OutgoingMessage::new(TEXT, "x")]).await;
    assert_eq!(missing.unwrap_err(), TransportError::QueueNotFound("memory://queue/nope".into()));
}

#[tokio::test(start_paused = true)]
async fn send_batches_take_injected_failures() {
    let broker = MemoryBroker::new();
    let url = broker.create_queue("work", QueueOptions::default());
    broker.fail_entries(Operation::SendMessageBatch, [1]);
    let results =
        send(&broker, &url, vec![OutgoingMessage::new(TEXT, "a"), OutgoingMessage::new(TEXT, "b")]).await;
    assert!(results[0].is_ok());
    assert!(results[1].as_ref().unwrap_err().retryable);
    assert_eq!(broker.messages(&url), ["a"]);
    broker.fail_next_request(Operation::SendMessageBatch, TransportError::Unavailable("down".into()));
    let refused = broker.publisher().publish_batch(&url, vec![OutgoingMessage::new(TEXT, "c")]).await;
    assert!(refused.unwrap_err().is_retryable());
    assert_eq!(broker.request_counts().send_message_batch, 2);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(created = "Payment")]
struct PaymentCreated {
    #[message_group_id]
    account: String,
    #[message_deduplication_id]
    id: String,
    step: u32,
}

#[tokio::test(start_paused = true)]
async fn a_producer_routes_a_media_type_to_a_queue_url_and_a_consumer_reads_it() {
    let broker = MemoryBroker::new();
    let url = fifo_queue(&broker, "payments.fifo", QueueOptions::default());
    let producer = Producer::new(broker.publisher(), TopicMap::default().default_topic(&url));
    let payments: Vec<PaymentCreated> = (0..4)
        .map(|step| PaymentCreated {
            account: ["acc-1", "acc-2"][step % 2].into(),
            id: format!("p-{step}"),
            step: step as u32,
        })
        .collect();
    producer.produce_batch(&payments).await.unwrap();
    producer.produce(&payments[0]).await.unwrap();
    assert_eq!(broker.request_counts().send_message_batch, 2);
    assert_eq!(broker.request_counts().publish_batch, 0);
    assert_eq!(broker.queue_stats(&url).total, 4, "the repeat is a duplicate");

    let consumer = Consumer::new(broker.subscriber(&url).unwrap()).wait_time(Duration::ZERO);
    let deliveries = consumer.consume().await.unwrap();
    let decoded: Vec<PaymentCreated> =
        deliveries.iter().map(|delivery| delivery.decode::<PaymentCreated>().unwrap().message).collect();
    assert_eq!(decoded, [payments[0].clone(), payments[2].clone(), payments[1].clone(), payments[3].clone()]);
    assert_eq!(deliveries[0].message().group_id.as_deref(), Some("acc-1"));
    assert_eq!(deliveries[0].message().attribute("media_type"), Some(PaymentCreated::MEDIA_TYPE));
    for delivery in &deliveries {
        delivery.ack().await.unwrap();
    }
    assert_eq!(broker.queue_stats(&url).total, 0);
}
