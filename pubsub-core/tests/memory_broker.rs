//! The embedded broker's SNS and SQS semantics, through the public API.
//!
//! Tests run on tokio's paused clock (`start_paused`): a wait of seconds takes none, and a
//! time-dependent test asserts the exact virtual time a long poll or a visibility change took.
//! The two multi-threaded tests cannot pause the clock and wait on nothing but the work.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pubsub_core::memory::{
    FilterCondition, FilterPolicy, MemoryBroker, NumericOperator, Operation, QueueOptions, Redrive,
    RequestCounts, SubscriptionOptions, MAX_PAYLOAD_BYTES,
};
use pubsub_core::transport::{
    AttributeValue, OutgoingMessage, Publisher, ReceivedMessage, Subscriber, TransportError,
    VisibilityChange, MAX_BATCH,
};
use pubsub_core::{OpaqueData, UntypedMessage};
use serde_json::{json, Value};
use tokio::time::Instant;

const CREATED_ORDER: &str = "application/vnd.globality.pubsub._.created.order";
const CREATED_WIDGET: &str = "application/vnd.globality.pubsub._.created.widget";
const DELETED_ORDER: &str = "application/vnd.globality.pubsub._.deleted.order";

/// A well-formed message of `media_type` whose content carries `text`.
fn outgoing(media_type: &str, text: &str) -> OutgoingMessage {
    let message =
        UntypedMessage::new(media_type, json!({ "uri": "http://example.com/1", "id": "1", "text": text }))
            .expect("valid message");
    OutgoingMessage::new(
        media_type.to_owned(),
        pubsub_core::encode(&message, &OpaqueData::new()).expect("encodes"),
    )
}

/// The `text` of a received message, through the codec.
fn text_of(received: &ReceivedMessage) -> String {
    let decoded =
        pubsub_core::decode::<pubsub_core::UntypedMessage>(&received.body).expect("the body decodes");
    decoded.message.content["text"].as_str().expect("text").to_owned()
}

/// A broker with topic `events` and the given queues subscribed with default options.
fn broker_with(queues: &[&str]) -> (MemoryBroker, String) {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("events");
    for queue in queues {
        broker.create_queue(queue, QueueOptions::default());
        broker.subscribe(&topic, queue, SubscriptionOptions::default()).unwrap();
    }
    (broker, topic)
}

fn queue_with_timeout(broker: &MemoryBroker, name: &str, visibility_timeout: Duration) {
    broker.create_queue(name, QueueOptions { visibility_timeout, ..QueueOptions::default() });
}

async fn publish_one(broker: &MemoryBroker, topic: &str, message: OutgoingMessage) -> String {
    let mut results = broker.publisher().publish_batch(topic, vec![message]).await.unwrap();
    results.remove(0).unwrap()
}

async fn receive_now(subscriber: &impl Subscriber, max: usize) -> Vec<ReceivedMessage> {
    subscriber.receive(max, Duration::ZERO).await.unwrap()
}

fn change(receipt_handle: &str, timeout: Duration) -> VisibilityChange {
    VisibilityChange { receipt_handle: receipt_handle.to_owned(), timeout }
}

#[tokio::test(start_paused = true)]
async fn names_arns_and_urls() {
    let broker = MemoryBroker::new();
    let arn = broker.create_topic("events");
    assert_eq!(arn, "arn:aws:sns:us-east-1:000000000000:events");
    assert_eq!(broker.create_topic("events"), arn, "idempotent");
    let url = broker.create_queue("work", QueueOptions::default());
    assert_eq!(url, "memory://queue/work");
    assert_eq!(broker.create_queue("work", QueueOptions::default()), url, "idempotent");

    // Topics by ARN or name, queues by name or URL.
    let subscription = broker.subscribe("events", &url, SubscriptionOptions::default()).unwrap();
    assert!(subscription.starts_with(&format!("{arn}:")), "{subscription}");
    publish_one(&broker, "events", outgoing(CREATED_ORDER, "by name")).await;
    publish_one(&broker, &arn, outgoing(CREATED_ORDER, "by arn")).await;
    let subscriber = broker.subscriber(&url).unwrap();
    assert_eq!(subscriber.queue_name(), "work");
    assert_eq!(subscriber.queue_url(), url);
    let texts: Vec<String> = receive_now(&subscriber, 10).await.iter().map(text_of).collect();
    assert_eq!(texts, ["by name", "by arn"]);
}

#[tokio::test(start_paused = true)]
async fn publish_fans_out_to_every_subscribed_queue() {
    let (broker, topic) = broker_with(&["billing", "shipping"]);
    broker.create_queue("unsubscribed", QueueOptions::default());
    let sns_id = publish_one(&broker, &topic, outgoing(CREATED_ORDER, "o-1")).await;

    let mut queue_ids = HashSet::new();
    for queue in ["billing", "shipping"] {
        let received = receive_now(&broker.subscriber(queue).unwrap(), 10).await;
        assert_eq!(received.len(), 1, "{queue}");
        assert_eq!(text_of(&received[0]), "o-1");
        let notification: Value = serde_json::from_str(&received[0].body).unwrap();
        assert_eq!(notification["MessageId"], sns_id.as_str(), "SNS's id is in the notification");
        queue_ids.insert(received[0].message_id.clone());
    }
    assert_eq!(queue_ids.len(), 2, "each queue gives its own SQS message id");
    assert!(!queue_ids.contains(&sns_id));
    assert_eq!(broker.queue_stats("unsubscribed").total, 0);
}

#[tokio::test(start_paused = true)]
async fn raw_delivery_and_notification_bodies() {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("events");
    broker.create_queue("raw", QueueOptions::default());
    broker.create_queue("wrapped", QueueOptions::default());
    broker.subscribe(&topic, "raw", SubscriptionOptions { raw_delivery: true, filter: None }).unwrap();
    let subscription_arn = broker.subscribe(&topic, "wrapped", SubscriptionOptions::default()).unwrap();

    // Quotes, backslashes, newlines and non-ASCII must survive the double encoding.
    let text = "say \"hi\" \\ to\nJosé ✓";
    let message = outgoing(CREATED_ORDER, text);
    let sns_id = publish_one(&broker, &topic, message.clone()).await;

    let raw = receive_now(&broker.subscriber("raw").unwrap(), 1).await.remove(0);
    assert_eq!(raw.body, message.body, "raw delivery: the body is the message itself");
    assert_eq!(raw.attributes, BTreeMap::from([("media_type".to_owned(), CREATED_ORDER.into())]));
    assert_eq!(text_of(&raw), text);

    let wrapped = receive_now(&broker.subscriber("wrapped").unwrap(), 1).await.remove(0);
    assert!(wrapped.attributes.is_empty(), "SNS sets no SQS attribute on a notification");
    let decoded = pubsub_core::decode::<pubsub_core::UntypedMessage>(&wrapped.body)
        .expect("a well-formed notification");
    assert_eq!(decoded.media_type, CREATED_ORDER);
    assert_eq!(decoded.message.content["text"], text);

    let notification: Value = serde_json::from_str(&wrapped.body).unwrap();
    assert_eq!(notification["Type"], "Notification");
    assert_eq!(notification["MessageId"], sns_id.as_str());
    assert_eq!(notification["TopicArn"], topic.as_str());
    assert_eq!(notification["Message"], message.body.as_str());
    assert_eq!(notification["SignatureVersion"], "1");
    assert_eq!(
        notification["MessageAttributes"],
        json!({ "media_type": { "Type": "String", "Value": CREATED_ORDER } })
    );
    let signature = notification["Signature"].as_str().unwrap();
    assert!(!signature.is_empty() && signature.len().is_multiple_of(4));
    assert!(signature.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)));
    assert!(notification["SigningCertURL"]
        .as_str()
        .unwrap()
        .starts_with("https://sns.us-east-1.amazonaws.com/"));
    let unsubscribe = notification["UnsubscribeURL"].as_str().unwrap();
    assert!(unsubscribe.ends_with(&format!("SubscriptionArn={subscription_arn}")), "{unsubscribe}");

    // `2026-11-27T17:32:28.960Z`: ISO-8601 UTC with milliseconds.
    let timestamp = notification["Timestamp"].as_str().unwrap();
    assert_eq!(timestamp.len(), 24, "{timestamp}");
    for (index, byte) in timestamp.bytes().enumerate() {
        match index {
            4 | 7 => assert_eq!(byte, b'-', "{timestamp}"),
            10 => assert_eq!(byte, b'T', "{timestamp}"),
            13 | 16 => assert_eq!(byte, b':', "{timestamp}"),
            19 => assert_eq!(byte, b'.', "{timestamp}"),
            23 => assert_eq!(byte, b'Z', "{timestamp}"),
            _ => assert!(byte.is_ascii_digit(), "{timestamp}"),
        }
    }
    let year: u32 = timestamp[..4].parse().unwrap();
    assert!(year >= 2024, "{timestamp}");
}

#[test]
fn filter_policy_accepts_by_exact_value_and_prefix() {
    let exact = FilterPolicy::media_types([CREATED_ORDER]);
    assert!(exact.accepts(CREATED_ORDER));
    assert!(!exact.accepts(CREATED_WIDGET));
    assert!(!exact.accepts("application/vnd.globality.pubsub._.created.orders"), "exact, not prefix");
    assert!(!exact.accepts(&CREATED_ORDER.to_uppercase()), "case-sensitive");

    let prefix = FilterPolicy::media_type_prefix("application/vnd.globality.pubsub._.created.");
    assert!(prefix.accepts(CREATED_ORDER));
    assert!(prefix.accepts(CREATED_WIDGET));
    assert!(!prefix.accepts(DELETED_ORDER));

    let both =
        FilterPolicy::media_types([DELETED_ORDER]).or_prefix("application/vnd.globality.pubsub._.created.w");
    assert!(both.accepts(DELETED_ORDER));
    assert!(both.accepts(CREATED_WIDGET));
    assert!(!both.accepts(CREATED_ORDER));
    assert!(!FilterPolicy::default().accepts(CREATED_ORDER), "no condition accepts nothing");
}

#[test]
fn filter_policy_json_round_trip() {
    let json = r#"{"media_type": ["a/b", {"prefix": "a/c."}, "a/d"]}"#;
    let policy = FilterPolicy::from_json(json).unwrap();
    assert_eq!(
        policy.conditions(),
        [
            FilterCondition::Exact("a/b".into()),
            FilterCondition::Prefix("a/c.".into()),
            FilterCondition::Exact("a/d".into())
        ]
    );
    assert_eq!(policy, FilterPolicy::media_types(["a/b"]).or_prefix("a/c.").or_media_type("a/d"));
    assert_eq!(policy.to_json(), r#"{"media_type":["a/b",{"prefix":"a/c."},"a/d"]}"#);
    assert_eq!(FilterPolicy::from_json(&policy.to_json()).unwrap(), policy);
    let as_value: Value = serde_json::from_str(&policy.to_json()).unwrap();
    assert_eq!(as_value, serde_json::from_str::<Value>(json).unwrap());

    for refused in [
        "not json",
        r#"["a/b"]"#,
        r#"{}"#,
        r#"{"media_type": "a/b"}"#,
        r#"{"media_type": []}"#,
        r#"{"": ["x"]}"#,
        r#"{"media_type": {"prefix": "a/"}}"#,
        r#"{"a": ["1"], "b": ["1"], "c": ["1"], "d": ["1"], "e": ["1"], "f": ["1"]}"#,
        r#"{"media_type": [{"suffix": ".order"}]}"#,
        r#"{"media_type": [{"equals-ignore-case": "a/b"}]}"#,
        r#"{"media_type": [{"prefix": "a/", "extra": 1}]}"#,
        r#"{"media_type": [{"prefix": ""}]}"#,
        r#"{"media_type": [{"prefix": 3}]}"#,
        r#"{"media_type": [true]}"#,
        r#"{"media_type": [null]}"#,
        r#"{"media_type": [{"exists": "yes"}]}"#,
        r#"{"media_type": [{"anything-but": []}]}"#,
        r#"{"media_type": [{"anything-but": ["a/b", 3]}]}"#,
        r#"{"media_type": [{"anything-but": {"suffix": "b"}}]}"#,
        r#"{"weight": [{"numeric": [">", 0, ">", 3]}]}"#,
        r#"{"weight": [{"numeric": ["<", 10, ">", 0]}]}"#,
        r#"{"weight": [{"numeric": [">", 10, "<", 0]}]}"#,
        r#"{"weight": [{"numeric": ["=", 1, "<", 3]}]}"#,
        r#"{"weight": [{"numeric": ["!=", 1]}]}"#,
        r#"{"weight": [{"numeric": [">", "1"]}]}"#,
        r#"{"weight": [{"numeric": [">"]}]}"#,
        r#"{"weight": [{"numeric": []}]}"#,
    ] {
        let error = FilterPolicy::from_json(refused).expect_err(refused);
        assert!(!error.reason().is_empty());
        assert!(error.to_string().starts_with("invalid filter policy: "), "{error}");
    }
}

#[tokio::test(start_paused = true)]
async fn message_attributes_travel_with_the_message() {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("events");
    broker.create_queue("raw", QueueOptions::default());
    broker.create_queue("wrapped", QueueOptions::default());
    broker.subscribe(&topic, "raw", SubscriptionOptions { raw_delivery: true, filter: None }).unwrap();
    broker.subscribe(&topic, "wrapped", SubscriptionOptions::default()).unwrap();
    let message =
        outgoing(CREATED_ORDER, "x").with_attribute("team", "billing").with_attribute("a.b", "\"q\"");
    publish_one(&broker, &topic, message.clone()).await;

    let raw = receive_now(&broker.subscriber("raw").unwrap(), 1).await.remove(0);
    assert_eq!(
        raw.attributes,
        BTreeMap::from([
            ("a.b".to_owned(), "\"q\"".into()),
            ("media_type".to_owned(), CREATED_ORDER.into()),
            ("team".to_owned(), "billing".into()),
        ])
    );
    let wrapped = receive_now(&broker.subscriber("wrapped").unwrap(), 1).await.remove(0);
    assert!(wrapped.attributes.is_empty());
    let notification: Value = serde_json::from_str(&wrapped.body).unwrap();
    assert_eq!(
        notification["MessageAttributes"],
        json!({
            "a.b": { "Type": "String", "Value": "\"q\"" },
            "media_type": { "Type": "String", "Value": CREATED_ORDER },
            "team": { "Type": "String", "Value": "billing" },
        })
    );

    // The attributes count in a message's size, as SNS counts them: name, `String`, value.
    let bare = OutgoingMessage::new(CREATED_ORDER, "{}");
    let with_team = bare.clone().with_attribute("team", "billing");
    assert_eq!(bare.size(), 2 + "media_type".len() + "String".len() + CREATED_ORDER.len());
    assert_eq!(with_team.size(), bare.size() + "team".len() + "String".len() + "billing".len());
    let fits = OutgoingMessage::new(CREATED_ORDER, "x".repeat(MAX_PAYLOAD_BYTES - bare.size() + 2));
    assert_eq!(fits.size(), MAX_PAYLOAD_BYTES);
    assert!(publish_one_result(&broker, &topic, fits.clone()).await.is_ok());
    let over = fits.with_attribute("t", "x");
    assert!(matches!(publish_one_result(&broker, &topic, over).await, Err(TransportError::Invalid(_))));
}

async fn publish_one_result(
    broker: &MemoryBroker,
    topic: &str,
    message: OutgoingMessage,
) -> Result<(), TransportError> {
    broker.publisher().publish_batch(topic, vec![message]).await.map(|_| ())
}

#[test]
fn filter_policy_on_several_attributes_needs_every_key_to_match() {
    let message = |team: Option<&str>| {
        let message = OutgoingMessage::new(CREATED_ORDER, "{}");
        match team {
            Some(team) => message.with_attribute("team", team).with_attribute("zone", "eu-1"),
            None => message,
        }
    };
    let policy = FilterPolicy::media_type_prefix("application/vnd.globality.pubsub._.created.")
        .and_attribute("team", [FilterCondition::exact("billing"), FilterCondition::prefix("ship")]);
    assert!(policy.accepts_message(&message(Some("billing"))));
    assert!(policy.accepts_message(&message(Some("shipping"))), "a prefix");
    assert!(!policy.accepts_message(&message(Some("Billing"))), "case-sensitive");
    assert!(!policy.accepts_message(&message(None)), "a message without the attribute does not pass");
    assert!(!policy.accepts(CREATED_ORDER), "the media type alone is not enough");
    let deleted = OutgoingMessage::new(DELETED_ORDER, "{}").with_attribute("team", "billing");
    assert!(!policy.accepts_message(&deleted), "every key must match");

    // A key on another attribute only: the media type does not matter.
    let zone = FilterPolicy::attribute("zone", [FilterCondition::prefix("eu-")]);
    assert!(zone.accepts_message(&message(Some("anyone"))));
    assert!(zone.conditions().is_empty(), "no media_type key");
    assert_eq!(zone.conditions_of("zone"), [FilterCondition::Prefix("eu-".into())]);

    // JSON: every key, in name order; the media type's key is the same as the others'.
    let json = r#"{"team": ["billing", {"prefix": "ship"}], "media_type": [{"prefix": "application/vnd.globality.pubsub._.created."}]}"#;
    let parsed = FilterPolicy::from_json(json).unwrap();
    assert_eq!(parsed, policy);
    assert_eq!(parsed.attribute_names().collect::<Vec<_>>(), ["media_type", "team"]);
    assert_eq!(
        parsed.to_json(),
        r#"{"media_type":[{"prefix":"application/vnd.globality.pubsub._.created."}],"team":["billing",{"prefix":"ship"}]}"#
    );
    // SNS's limits: five keys, 150 combinations.
    let five = r#"{"a": ["1"], "b": ["1"], "c": ["1"], "d": ["1"], "e": ["1"]}"#;
    assert!(FilterPolicy::from_json(five).is_ok());
    let values = |n: usize| (0..n).map(|i| format!(r#""v{i}""#)).collect::<Vec<_>>().join(",");
    let at_limit = format!(r#"{{"a": [{}], "b": [{}]}}"#, values(15), values(10));
    assert!(FilterPolicy::from_json(&at_limit).is_ok());
    let over = format!(r#"{{"a": [{}], "b": [{}]}}"#, values(16), values(10));
    let error = FilterPolicy::from_json(&over).unwrap_err();
    assert!(error.reason().contains("160 combinations") && error.reason().contains("150"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn subscriptions_filter_what_they_receive() {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("events");
    for queue in ["orders", "created", "everything"] {
        broker.create_queue(queue, QueueOptions::default());
    }
    let orders =
        FilterPolicy::from_json(&format!(r#"{{"media_type": ["{CREATED_ORDER}", "{DELETED_ORDER}"]}}"#))
            .unwrap();
    broker
        .subscribe(&topic, "orders", SubscriptionOptions { raw_delivery: false, filter: Some(orders) })
        .unwrap();
    let created = FilterPolicy::media_type_prefix("application/vnd.globality.pubsub._.created.");
    broker
        .subscribe(&topic, "created", SubscriptionOptions { raw_delivery: true, filter: Some(created) })
        .unwrap();
    broker.subscribe(&topic, "everything", SubscriptionOptions::default()).unwrap();

    let batch = vec![
        outgoing(CREATED_ORDER, "created order"),
        outgoing(CREATED_WIDGET, "created widget"),
        outgoing(DELETED_ORDER, "deleted order"),
    ];
    let results = broker.publisher().publish_batch(&topic, batch).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "a filtered-out message is still published");

    let texts = |queue: &'static str| {
        let broker = broker.clone();
        async move {
            let received = receive_now(&broker.subscriber(queue).unwrap(), 10).await;
            received.iter().map(text_of).collect::<Vec<_>>()
        }
    };
    assert_eq!(texts("orders").await, ["created order", "deleted order"]);
    assert_eq!(texts("created").await, ["created order", "created widget"]);
    assert_eq!(texts("everything").await, ["created order", "created widget", "deleted order"]);
}

#[tokio::test(start_paused = true)]
async fn receive_is_oldest_first_and_stats_count() {
    let broker = MemoryBroker::new();
    broker.create_queue("work", QueueOptions::default());
    for index in 0..5 {
        broker.send("work", format!("m{index}")).await.unwrap();
    }
    let subscriber = broker.subscriber("work").unwrap();
    let first: Vec<String> = receive_now(&subscriber, 3).await.into_iter().map(|m| m.body).collect();
    assert_eq!(first, ["m0", "m1", "m2"]);
    let stats = broker.queue_stats("work");
    assert_eq!((stats.visible, stats.in_flight, stats.total), (2, 3, 5));
    assert_eq!(broker.messages("work"), ["m0", "m1", "m2", "m3", "m4"], "in flight or not");
    let rest: Vec<String> = receive_now(&subscriber, 10).await.into_iter().map(|m| m.body).collect();
    assert_eq!(rest, ["m3", "m4"]);
    assert!(receive_now(&subscriber, 10).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn send_carries_attributes() {
    let broker = MemoryBroker::new();
    broker.create_queue("work", QueueOptions::default());
    let attributes = BTreeMap::from([("media_type".to_owned(), CREATED_ORDER.into())]);
    let id = broker.send_with_attributes("memory://queue/work", "{}", attributes.clone()).await.unwrap();
    let received = receive_now(&broker.subscriber("work").unwrap(), 1).await.remove(0);
    assert_eq!(received.message_id, id);
    assert_eq!(received.attributes, attributes);
    assert_eq!(received.body, "{}");
    let plain = broker.send("work", "x").await.unwrap();
    assert_ne!(plain, id);
    assert!(receive_now(&broker.subscriber("work").unwrap(), 1).await[0].attributes.is_empty());
}

#[tokio::test(start_paused = true)]
async fn visibility_timeout_hides_then_redelivers() {
    let broker = MemoryBroker::new();
    let timeout = Duration::from_millis(300);
    queue_with_timeout(&broker, "work", timeout);
    broker.send("work", "m").await.unwrap();
    let subscriber = broker.subscriber("work").unwrap();
    assert_eq!(subscriber.visibility_timeout(), timeout);

    let received_at = Instant::now();
    let first = receive_now(&subscriber, 10).await.remove(0);
    assert_eq!(first.receive_count, 1);
    assert!(receive_now(&subscriber, 10).await.is_empty(), "hidden while in flight");
    let stats = broker.queue_stats("work");
    assert_eq!((stats.visible, stats.in_flight), (0, 1));

    // A long poll is woken by the visibility expiry.
    let again = subscriber.receive(10, Duration::from_secs(20)).await.unwrap();
    assert_eq!(received_at.elapsed(), timeout, "woken by the expiry, not the wait");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message_id, first.message_id);
    assert_eq!(again[0].receive_count, 2);
    assert_ne!(again[0].receipt_handle, first.receipt_handle, "a fresh receipt per receive");
}

#[tokio::test(start_paused = true)]
async fn change_visibility_to_zero_redelivers_at_once() {
    let broker = MemoryBroker::new();
    broker.create_queue("work", QueueOptions::default());
    broker.send("work", "m").await.unwrap();
    let subscriber = broker.subscriber("work").unwrap();
    let first = receive_now(&subscriber, 1).await.remove(0);
    assert!(receive_now(&subscriber, 1).await.is_empty());

    let results =
        subscriber.change_visibility_batch(&[change(&first.receipt_handle, Duration::ZERO)]).await.unwrap();
    assert_eq!(results, [Ok(())]);
    let again = receive_now(&subscriber, 1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);

    // A long poller is woken by the change, well before its wait or the 30 s timeout.
    let waiter = {
        let subscriber = subscriber.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            (subscriber.receive(1, Duration::from_secs(20)).await.unwrap(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    subscriber.change_visibility_batch(&[change(&again[0].receipt_handle, Duration::ZERO)]).await.unwrap();
    let (woken, elapsed) = waiter.await.unwrap();
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].receive_count, 3);
    assert_eq!(elapsed, Duration::from_millis(50), "woken by the change");
}

#[tokio::test(start_paused = true)]
async fn change_visibility_extends_and_shortens() {
    let broker = MemoryBroker::new();
    queue_with_timeout(&broker, "work", Duration::from_millis(500));
    broker.send("work", "m").await.unwrap();
    let subscriber = broker.subscriber("work").unwrap();
    let first = receive_now(&subscriber, 1).await.remove(0);
    // A heartbeat: extended well past the queue's 500 ms.
    let extended = subscriber
        .change_visibility_batch(&[change(&first.receipt_handle, Duration::from_secs(30))])
        .await
        .unwrap();
    assert_eq!(extended, [Ok(())]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(receive_now(&subscriber, 1).await.is_empty(), "the extension holds");
    // Shortened: a waiting long poll notices the earlier deadline.
    let started = Instant::now();
    let waiter = {
        let subscriber = subscriber.clone();
        tokio::spawn(async move { subscriber.receive(1, Duration::from_secs(20)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let results = subscriber
        .change_visibility_batch(&[change(&first.receipt_handle, Duration::from_millis(100))])
        .await
        .unwrap();
    assert_eq!(results, [Ok(())]);
    let woken = waiter.await.unwrap();
    assert_eq!(woken.len(), 1);
    assert_eq!(started.elapsed(), Duration::from_millis(150), "woken at the new deadline");

    let too_long = subscriber
        .change_visibility_batch(&[change(&woken[0].receipt_handle, Duration::from_secs(13 * 3600))])
        .await
        .unwrap();
    assert_eq!(too_long[0].as_ref().unwrap_err().code, "InvalidParameterValue");
}

#[tokio::test(start_paused = true)]
async fn stale_receipts_are_rejected() {
    let broker = MemoryBroker::new();
    broker.create_queue("work", QueueOptions::default());
    broker.send("work", "m").await.unwrap();
    let subscriber = broker.subscriber("work").unwrap();
    let first = receive_now(&subscriber, 1).await.remove(0);
    subscriber.change_visibility_batch(&[change(&first.receipt_handle, Duration::ZERO)]).await.unwrap();
    let second = receive_now(&subscriber, 1).await.remove(0);

    let stale = subscriber.ack_batch(&[&first.receipt_handle, "garbage"]).await.unwrap();
    for result in &stale {
        let error = result.as_ref().unwrap_err();
        assert_eq!(error.code, "ReceiptHandleIsInvalid");
        assert!(!error.retryable);
    }
    let stale =
        subscriber.change_visibility_batch(&[change(&first.receipt_handle, Duration::ZERO)]).await.unwrap();
    assert_eq!(stale[0].as_ref().unwrap_err().code, "ReceiptHandleIsInvalid");
    assert_eq!(broker.queue_stats("work").in_flight, 1, "nothing changed");

    assert_eq!(subscriber.ack_batch(&[&second.receipt_handle]).await.unwrap(), [Ok(())]);
    assert_eq!(broker.queue_stats("work").total, 0);
    let again = subscriber.ack_batch(&[&second.receipt_handle]).await.unwrap();
    assert_eq!(again[0].as_ref().unwrap_err().code, "ReceiptHandleIsInvalid", "already deleted");

    // A receipt of another queue is no receipt of this one.
    broker.create_queue("other", QueueOptions::default());
    broker.send("other", "o").await.unwrap();
    let other = receive_now(&broker.subscriber("other").unwrap(), 1).await.remove(0);
    let foreign = subscriber.ack_batch(&[&other.receipt_handle]).await.unwrap();
    assert_eq!(foreign[0].as_ref().unwrap_err().code, "ReceiptHandleIsInvalid");
}

#[tokio::test(start_paused = true)]
async fn redrive_moves_to_the_dead_letter_queue_at_max_receive_count() {
    let broker = MemoryBroker::new();
    broker.create_topic("events");
    broker.create_queue(
        "work",
        QueueOptions { redrive: Some(Redrive::new("work-dlq", 2)), ..Default::default() },
    );
    broker.subscribe("events", "work", SubscriptionOptions::default()).unwrap();
    assert_eq!(broker.queue_stats("work-dlq").total, 0, "the dead-letter queue is created with the queue");
    let published = outgoing(CREATED_ORDER, "poison");
    publish_one(&broker, "events", published).await;
    broker.send("work", "healthy").await.unwrap();

    let subscriber = broker.subscriber("work").unwrap();
    let mut poison_id = None;
    for expected_count in 1..=2 {
        let received = receive_now(&subscriber, 1).await.remove(0);
        assert_eq!(received.receive_count, expected_count);
        poison_id = Some(received.message_id.clone());
        subscriber
            .change_visibility_batch(&[change(&received.receipt_handle, Duration::ZERO)])
            .await
            .unwrap();
    }
    // The third receive moves the poison message away and goes on to the next one.
    let next = receive_now(&subscriber, 10).await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].body, "healthy");
    assert_eq!(broker.messages("work"), ["healthy"]);
    assert_eq!(broker.queue_stats("work-dlq").total, 1);

    let dead = receive_now(&broker.subscriber("memory://queue/work-dlq").unwrap(), 10).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(Some(&dead[0].message_id), poison_id.as_ref(), "the message id is kept");
    assert_eq!(dead[0].receive_count, 1, "the receive count starts over");
    assert_eq!(text_of(&dead[0]), "poison");
    assert_eq!(broker.messages("work-dlq"), [dead[0].body.clone()]);
}

#[tokio::test(start_paused = true)]
async fn long_poll_returns_as_soon_as_a_message_arrives() {
    let broker = MemoryBroker::new();
    broker.create_queue("work", QueueOptions::default());
    let subscriber = broker.subscriber("work").unwrap();
    let sender = {
        let broker = broker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            broker.send("work", "late").await.unwrap()
        })
    };
    let started = Instant::now();
    let received = subscriber.receive(10, Duration::from_secs(20)).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, "late");
    assert_eq!(received[0].message_id, sender.await.unwrap());
    assert_eq!(elapsed, Duration::from_millis(100), "returned as the message arrived");
}

#[tokio::test(start_paused = true)]
async fn long_poll_returns_empty_after_wait() {
    let broker = MemoryBroker::new();
    broker.create_queue("work", QueueOptions::default());
    let subscriber = broker.subscriber("work").unwrap();
    let wait = Duration::from_millis(200);
    let started = Instant::now();
    assert!(subscriber.receive(10, wait).await.unwrap().is_empty());
    assert_eq!(started.elapsed(), wait);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_receivers_never_share_a_message() {
    let broker = MemoryBroker::new();
    broker.create_queue("work", QueueOptions::default());
    let count = 1000;
    // Acknowledged so far, by all receivers: each stops once all are, never on an idle wait.
    let acked = Arc::new(AtomicUsize::new(0));
    let receivers: Vec<_> = (0..4)
        .map(|_| {
            let subscriber = broker.subscriber("work").unwrap();
            let acked = acked.clone();
            tokio::spawn(async move {
                let mut bodies = Vec::new();
                while acked.load(Ordering::SeqCst) < count {
                    let batch = subscriber.receive(MAX_BATCH, Duration::from_millis(5)).await.unwrap();
                    if batch.is_empty() {
                        continue;
                    }
                    let handles = batch.iter().map(|m| m.receipt_handle.as_str()).collect::<Vec<_>>();
                    assert!(subscriber.ack_batch(&handles).await.unwrap().iter().all(Result::is_ok));
                    acked.fetch_add(batch.len(), Ordering::SeqCst);
                    bodies.extend(batch.into_iter().map(|m| m.body));
                }
                bodies
            })
        })
        .collect();
    for index in 0..count {
        broker.send("work", index.to_string()).await.unwrap();
    }
    let mut seen = HashSet::new();
    for receiver in receivers {
        for body in receiver.await.unwrap() {
            assert!(seen.insert(body.clone()), "{body} delivered twice");
        }
    }
    assert_eq!(seen.len(), count);
    assert_eq!(broker.queue_stats("work").total, 0);
}

#[tokio::test(start_paused = true)]
async fn latency_is_paid_by_every_request() {
    let (broker, topic) = broker_with(&["work"]);
    let latency = Duration::from_millis(100);
    broker.set_latency(latency);
    assert_eq!(broker.latency(), latency);
    let subscriber = broker.subscriber("work").unwrap();

    let started = Instant::now();
    publish_one(&broker, &topic, outgoing(CREATED_ORDER, "m")).await;
    assert_eq!(started.elapsed(), latency, "publish");

    let started = Instant::now();
    broker.send("work", "direct").await.unwrap();
    assert_eq!(started.elapsed(), latency, "send");

    let started = Instant::now();
    let received = receive_now(&subscriber, 10).await;
    assert_eq!(received.len(), 2);
    assert_eq!(started.elapsed(), latency, "receive");

    let started = Instant::now();
    subscriber
        .change_visibility_batch(&[change(&received[0].receipt_handle, Duration::from_secs(60))])
        .await
        .unwrap();
    assert_eq!(started.elapsed(), latency, "change visibility");

    let started = Instant::now();
    subscriber
        .ack_batch(&received.iter().map(|m| m.receipt_handle.as_str()).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(started.elapsed(), latency, "ack");

    // An empty long poll pays its wait and the latency.
    let wait = Duration::from_millis(150);
    let started = Instant::now();
    assert!(subscriber.receive(10, wait).await.unwrap().is_empty());
    assert_eq!(started.elapsed(), latency + wait, "empty receive");

    broker.set_latency(Duration::ZERO);
    let started = Instant::now();
    broker.send("work", "fast").await.unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn injected_entry_failures_fail_only_those_entries() {
    let (broker, topic) = broker_with(&["work"]);
    let publisher = broker.publisher();
    broker.fail_entries(Operation::PublishBatch, [1, 7]);
    let batch: Vec<_> = ["a", "b", "c"].iter().map(|text| outgoing(CREATED_ORDER, text)).collect();
    let results = publisher.publish_batch(&topic, batch.clone()).await.unwrap();
    assert!(results[0].is_ok() && results[2].is_ok());
    let error = results[1].as_ref().unwrap_err();
    assert_eq!(error.code, "InternalError");
    assert!(error.retryable);
    let subscriber = broker.subscriber("work").unwrap();
    let received = receive_now(&subscriber, 10).await;
    assert_eq!(
        received.iter().map(text_of).collect::<Vec<_>>(),
        ["a", "c"],
        "the failed entry is not published"
    );

    // Consumed by that call.
    assert!(publisher.publish_batch(&topic, batch).await.unwrap().iter().all(Result::is_ok));

    broker.fail_entries(Operation::AckBatch, [0]);
    let handles: Vec<&str> = received.iter().map(|m| m.receipt_handle.as_str()).collect();
    let acked = subscriber.ack_batch(&handles).await.unwrap();
    assert_eq!(acked[0].as_ref().unwrap_err().code, "InternalError");
    assert_eq!(acked[1], Ok(()));
    assert_eq!(broker.queue_stats("work").total, 4, "the failed ack deleted nothing");
    assert_eq!(subscriber.ack_batch(&[handles[0]]).await.unwrap(), [Ok(())], "retry succeeds");

    let more = receive_now(&subscriber, 2).await;
    broker.fail_entries(Operation::ChangeVisibilityBatch, [1]);
    let changes: Vec<_> = more.iter().map(|m| change(&m.receipt_handle, Duration::ZERO)).collect();
    let changed = subscriber.change_visibility_batch(&changes).await.unwrap();
    assert_eq!(changed[0], Ok(()));
    assert!(changed[1].as_ref().unwrap_err().retryable);
    let stats = broker.queue_stats("work");
    assert_eq!((stats.visible, stats.in_flight), (2, 1), "only the first was made visible");
}

#[tokio::test(start_paused = true)]
async fn refused_requests_do_not_consume_entry_failures() {
    let (broker, topic) = broker_with(&["work"]);
    broker.fail_entries(Operation::PublishBatch, [0]);
    let refused = broker.publisher().publish_batch("missing", vec![outgoing(CREATED_ORDER, "x")]).await;
    assert!(matches!(refused, Err(TransportError::TopicNotFound(_))));
    let results = broker.publisher().publish_batch(&topic, vec![outgoing(CREATED_ORDER, "x")]).await.unwrap();
    assert!(results[0].is_err(), "still waiting for an accepted call");
}

#[test]
#[should_panic(expected = "has no entries")]
fn receive_has_no_entries_to_fail() {
    MemoryBroker::new().fail_entries(Operation::Receive, [0]);
}

#[tokio::test(start_paused = true)]
async fn injected_request_failures_fail_the_whole_next_call() {
    let (broker, topic) = broker_with(&["work"]);
    let unavailable = TransportError::Unavailable("throttled".into());
    let subscriber = broker.subscriber("work").unwrap();

    broker.fail_next_request(Operation::PublishBatch, unavailable.clone());
    let error =
        broker.publisher().publish_batch(&topic, vec![outgoing(CREATED_ORDER, "lost")]).await.unwrap_err();
    assert_eq!(error, unavailable);
    assert!(error.is_retryable());
    assert_eq!(broker.queue_stats("work").total, 0, "nothing published");

    broker.fail_next_request(Operation::Send, TransportError::Invalid("no".into()));
    assert_eq!(broker.send("work", "lost").await.unwrap_err(), TransportError::Invalid("no".into()));
    assert_eq!(broker.queue_stats("work").total, 0);

    broker.send("work", "m").await.unwrap();
    broker.fail_next_request(Operation::Receive, unavailable.clone());
    broker.fail_next_request(Operation::Receive, unavailable.clone());
    assert_eq!(subscriber.receive(1, Duration::ZERO).await.unwrap_err(), unavailable);
    assert_eq!(subscriber.receive(1, Duration::ZERO).await.unwrap_err(), unavailable, "failures queue up");
    assert_eq!(broker.queue_stats("work").visible, 1, "the failed receives took nothing");
    let received = receive_now(&subscriber, 1).await.remove(0);

    broker.fail_next_request(Operation::ChangeVisibilityBatch, unavailable.clone());
    let change_error =
        subscriber.change_visibility_batch(&[change(&received.receipt_handle, Duration::ZERO)]).await;
    assert_eq!(change_error.unwrap_err(), unavailable);
    assert_eq!(broker.queue_stats("work").in_flight, 1);

    broker.fail_next_request(Operation::AckBatch, unavailable.clone());
    assert_eq!(subscriber.ack_batch(&[&received.receipt_handle]).await.unwrap_err(), unavailable);
    assert_eq!(broker.queue_stats("work").total, 1, "nothing deleted");
    assert_eq!(subscriber.ack_batch(&[&received.receipt_handle]).await.unwrap(), [Ok(())]);
}

#[tokio::test(start_paused = true)]
async fn request_counts_count_every_request() {
    let (broker, topic) = broker_with(&["work"]);
    let subscriber = broker.subscriber("work").unwrap();
    assert_eq!(broker.request_counts(), RequestCounts::default());

    publish_one(&broker, &topic, outgoing(CREATED_ORDER, "a")).await;
    publish_one(&broker, &topic, outgoing(CREATED_ORDER, "b")).await;
    broker.send("work", "c").await.unwrap();
    let received = receive_now(&subscriber, 10).await;
    assert!(receive_now(&subscriber, 10).await.is_empty());
    subscriber
        .change_visibility_batch(&[change(&received[0].receipt_handle, Duration::from_secs(5))])
        .await
        .unwrap();
    subscriber
        .ack_batch(&received.iter().map(|m| m.receipt_handle.as_str()).collect::<Vec<_>>())
        .await
        .unwrap();
    broker.fail_next_request(Operation::AckBatch, TransportError::Unavailable("x".into()));
    subscriber.ack_batch(&["x"]).await.unwrap_err();
    subscriber.receive(MAX_BATCH + 1, Duration::ZERO).await.unwrap_err();

    let counts = broker.request_counts();
    assert_eq!(
        counts,
        RequestCounts {
            publish_batch: 2,
            receive: 3,
            ack_batch: 2,
            change_visibility_batch: 1,
            send: 1,
            send_message_batch: 0,
            put_object: 0,
            get_object: 0,
            delete_object: 0,
        },
        "refused and failed requests count too"
    );
    assert_eq!(counts.total(), 9);
    assert_eq!(counts.get(Operation::Receive), 3);
    assert_eq!(Operation::ALL.iter().map(|op| counts.get(*op)).sum::<u64>(), counts.total());
    broker.reset_request_counts();
    assert_eq!(broker.request_counts().total(), 0);
}

#[tokio::test(start_paused = true)]
async fn batches_over_ten_and_empty_batches_are_refused() {
    let (broker, topic) = broker_with(&["work"]);
    let subscriber = broker.subscriber("work").unwrap();
    let eleven: Vec<_> = (0..=MAX_BATCH).map(|i| outgoing(CREATED_ORDER, &i.to_string())).collect();
    let refused = broker.publisher().publish_batch(&topic, eleven.clone()).await;
    assert!(matches!(refused, Err(TransportError::Invalid(_))), "{refused:?}");
    assert!(!refused.unwrap_err().is_retryable());
    assert_eq!(broker.queue_stats("work").total, 0, "nothing of it published");
    let ten = eleven[..MAX_BATCH].to_vec();
    assert_eq!(broker.publisher().publish_batch(&topic, ten).await.unwrap().len(), MAX_BATCH);

    assert!(matches!(
        broker.publisher().publish_batch(&topic, vec![]).await,
        Err(TransportError::Invalid(_))
    ));
    let handles = vec!["h"; MAX_BATCH + 1];
    assert!(matches!(subscriber.ack_batch(&handles).await, Err(TransportError::Invalid(_))));
    assert!(matches!(subscriber.ack_batch(&[]).await, Err(TransportError::Invalid(_))));
    let changes: Vec<_> = handles.iter().map(|h| change(h, Duration::ZERO)).collect();
    assert!(matches!(subscriber.change_visibility_batch(&changes).await, Err(TransportError::Invalid(_))));
    assert!(matches!(
        subscriber.receive(MAX_BATCH + 1, Duration::ZERO).await,
        Err(TransportError::Invalid(_))
    ));
    assert!(matches!(subscriber.receive(0, Duration::ZERO).await, Err(TransportError::Invalid(_))));
    assert_eq!(receive_now(&subscriber, MAX_BATCH).await.len(), MAX_BATCH);
}

#[tokio::test(start_paused = true)]
async fn oversized_messages_are_refused() {
    let (broker, topic) = broker_with(&["work"]);
    assert_eq!(MAX_PAYLOAD_BYTES, 262_144);
    let big = OutgoingMessage::new(CREATED_ORDER, "x".repeat(MAX_PAYLOAD_BYTES));
    let refused = broker.publisher().publish_batch(&topic, vec![big.clone()]).await;
    assert!(matches!(refused, Err(TransportError::Invalid(_))), "body and attribute: {refused:?}");
    let mut half = big.clone();
    half.body = "x".repeat(MAX_PAYLOAD_BYTES / 2);
    let refused = broker.publisher().publish_batch(&topic, vec![half.clone(), half]).await;
    assert!(matches!(refused, Err(TransportError::Invalid(_))), "the batch's total: {refused:?}");
    assert_eq!(broker.queue_stats("work").total, 0);

    assert!(matches!(
        broker.send("work", "x".repeat(MAX_PAYLOAD_BYTES + 1)).await,
        Err(TransportError::Invalid(_))
    ));
    assert!(broker.send("work", big.body).await.is_ok(), "256 KiB exactly is allowed");
}

#[tokio::test(start_paused = true)]
async fn unknown_topics_and_queues_are_errors() {
    let (broker, topic) = broker_with(&["work"]);
    let missing_topic = broker.publisher().publish_batch("nope", vec![outgoing(CREATED_ORDER, "x")]).await;
    assert_eq!(missing_topic.unwrap_err(), TransportError::TopicNotFound("nope".into()));
    let missing_arn = "arn:aws:sns:us-east-1:000000000000:nope";
    let missing_topic =
        broker.publisher().publish_batch(missing_arn, vec![outgoing(CREATED_ORDER, "x")]).await;
    assert_eq!(missing_topic.unwrap_err(), TransportError::TopicNotFound(missing_arn.into()));

    assert_eq!(broker.subscriber("nope").unwrap_err(), TransportError::QueueNotFound("nope".into()));
    assert_eq!(broker.send("nope", "x").await.unwrap_err(), TransportError::QueueNotFound("nope".into()));
    assert!(matches!(
        broker.subscribe(&topic, "nope", SubscriptionOptions::default()),
        Err(TransportError::QueueNotFound(_))
    ));
    assert!(matches!(
        broker.subscribe("nope", "work", SubscriptionOptions::default()),
        Err(TransportError::TopicNotFound(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn resubscribing_replaces_the_options() {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("events");
    broker.create_queue("work", QueueOptions::default());
    let first = broker.subscribe(&topic, "work", SubscriptionOptions::default()).unwrap();
    let raw = SubscriptionOptions { raw_delivery: true, filter: None };
    assert_eq!(broker.subscribe(&topic, "work", raw).unwrap(), first);
    let message = outgoing(CREATED_ORDER, "once");
    publish_one(&broker, &topic, message.clone()).await;
    assert_eq!(broker.messages("work"), [message.body], "delivered once, raw");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_messages_half_left_in_flight() {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("load");
    broker.create_queue("load", QueueOptions::default());
    broker.subscribe(&topic, "load", SubscriptionOptions { raw_delivery: true, filter: None }).unwrap();
    // Enough for a deep deadline heap, few enough for a debug build to take a fraction of a second.
    let count = 20_000;
    let publisher = broker.publisher();
    let message = OutgoingMessage::new(CREATED_ORDER, "{}");
    for _ in 0..count / MAX_BATCH {
        publisher.publish_batch(&topic, vec![message.clone(); MAX_BATCH]).await.unwrap();
    }
    assert_eq!(broker.queue_stats("load").visible, count);

    let subscriber = broker.subscriber("load").unwrap();
    let mut received = 0;
    loop {
        let batch = subscriber.receive(MAX_BATCH, Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            break;
        }
        received += batch.len();
        // Leave every other batch in flight, to keep a large deadline heap.
        if received.is_multiple_of(2 * MAX_BATCH) {
            let handles: Vec<&str> = batch.iter().map(|m| m.receipt_handle.as_str()).collect();
            subscriber.ack_batch(&handles).await.unwrap();
        }
    }
    assert_eq!(received, count);
    let stats = broker.queue_stats("load");
    assert_eq!((stats.visible, stats.in_flight), (0, count / 2));
}

#[tokio::test(start_paused = true)]
async fn filter_policies_match_numbers_existence_and_anything_but_on_typed_attributes() {
    let (broker, topic) = broker_with(&[]);
    let policies = [
        ("exactly-three", r#"{"weight": [3]}"#),
        ("light", r#"{"weight": [{"numeric": [">", 0, "<=", 10]}]}"#),
        ("equal", r#"{"weight": [{"numeric": ["=", 2.5]}]}"#),
        ("flagged", r#"{"flag": [{"exists": true}]}"#),
        ("unflagged", r#"{"flag": [{"exists": false}]}"#),
        ("not-eu", r#"{"region": [{"anything-but": ["eu", "eu-west"]}]}"#),
        ("not-three", r#"{"weight": [{"anything-but": [3]}]}"#),
        ("not-prefixed", r#"{"region": [{"anything-but": {"prefix": "eu"}}]}"#),
    ];
    for (queue, json) in policies {
        broker.create_queue(queue, QueueOptions::default());
        let filter = FilterPolicy::from_json(json).unwrap();
        assert_eq!(FilterPolicy::from_json(&filter.to_json()).unwrap(), filter, "{json}");
        let as_value: Value = serde_json::from_str(&filter.to_json()).unwrap();
        assert_eq!(as_value, serde_json::from_str::<Value>(json).unwrap(), "{json}");
        broker
            .subscribe(&topic, queue, SubscriptionOptions { raw_delivery: true, filter: Some(filter) })
            .unwrap();
    }
    let message = |body: &str| OutgoingMessage::new(CREATED_ORDER, body);
    let batch = vec![
        message("three").with_attribute("weight", 3),
        message("three-point-oh").with_attribute("weight", AttributeValue::Number("3.0".into())),
        message("text-three").with_attribute("weight", "3"),
        message("two-and-a-half").with_attribute("weight", 2.5),
        message("eleven").with_attribute("weight", 11).with_attribute("flag", "on"),
        message("binary").with_attribute("flag", vec![1u8]).with_attribute("region", vec![2u8]),
        message("eu").with_attribute("region", "eu"),
        message("us").with_attribute("region", "us"),
        message("eu-central").with_attribute("region", "eu-central"),
    ];
    let results = broker.publisher().publish_batch(&topic, batch).await.unwrap();
    assert!(results.iter().all(Result::is_ok));
    let expected: [(&str, &[&str]); 8] = [
        // A quoted "3" is a String: numbers match Number attributes only.
        ("exactly-three", &["three", "three-point-oh"]),
        ("light", &["three", "three-point-oh", "two-and-a-half"]),
        ("equal", &["two-and-a-half"]),
        ("flagged", &["eleven"]),
        // A Binary attribute matches nothing, not even `exists`.
        ("unflagged", &["three", "three-point-oh", "text-three", "two-and-a-half", "eu", "us", "eu-central"]),
        // Without the attribute, anything-but does not match either.
        ("not-eu", &["us", "eu-central"]),
        ("not-three", &["text-three", "two-and-a-half", "eleven"]),
        ("not-prefixed", &["us"]),
    ];
    for (queue, bodies) in expected {
        assert_eq!(broker.messages(queue), bodies, "{queue}");
    }

    // A single value is a list of one.
    assert_eq!(
        FilterPolicy::from_json(r#"{"weight": [{"anything-but": 3}]}"#).unwrap(),
        FilterPolicy::from_json(r#"{"weight": [{"anything-but": [3]}]}"#).unwrap()
    );

    // The same conditions built in code.
    let light = FilterPolicy::attribute(
        "weight",
        [FilterCondition::between((NumericOperator::Greater, 0), (NumericOperator::LessOrEqual, 10))],
    );
    assert_eq!(light.to_json(), r#"{"weight":[{"numeric":[">",0,"<=",10]}]}"#);
    let mixed = FilterPolicy::attribute(
        "region",
        [FilterCondition::anything_but(["eu"]), FilterCondition::exists(false)],
    )
    .and_attribute(
        "weight",
        [FilterCondition::number(3), FilterCondition::numeric(NumericOperator::Less, 0)],
    );
    assert_eq!(
        mixed.to_json(),
        r#"{"region":[{"anything-but":["eu"]},{"exists":false}],"weight":[3,{"numeric":["<",0]}]}"#
    );
    assert!(mixed.accepts_message(&message("x").with_attribute("weight", -1)));
    assert!(!mixed.accepts_message(&message("x").with_attribute("weight", -1).with_attribute("region", "eu")));
    let weight = AttributeValue::from(3);
    assert!(mixed.accepts_values(|name| (name == "weight").then_some(&weight)));
}
