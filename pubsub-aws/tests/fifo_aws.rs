//! FIFO, delays and typed attributes on the AWS transport, against moto (started by
//! scripts/test.sh): the producer straight to SQS queues (`AwsPublisher` routing a queue URL to
//! `SendMessageBatch`), FIFO topics to FIFO queues (raw and enveloped), group order,
//! deduplication and sequence numbers, derived types with `#[message_group_id]`, provisioning
//! FIFO resources and filter policies on other attributes, and `pubsub publish --queue-url`.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use pubsub_aws::provision::{ProvisionConfig, Provisioner, QueueSpec, SubscriptionSpec, TopicSpec};
use pubsub_aws::{AwsPublisher, RequestCounter, SqsSubscriber};
use pubsub_core::producer::{PublishError, PublishOptions};
use pubsub_core::transport::{AttributeValue, ReceivedMessage, Subscriber, TransportError};
use pubsub_core::{decode, Consumer, Producer, PubSubMessage, TopicMap, UntypedMessage};
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::{pubsub, text};
use validator::Validate;

const STEP: &str = "application/vnd.acme.pubsub.step";

/// One step of an order; the steps of one order are handled in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order-step"]
#[serde(rename_all = "camelCase")]
struct OrderStep {
    #[message_group_id]
    order_id: String,
    step: u32,
}

struct Env {
    config: aws_config::SdkConfig,
    provisioner: Provisioner,
    sqs: aws_sdk_sqs::Client,
}

async fn env() -> Option<Env> {
    support::require_emulator()?;
    let config = support::sdk_config().await;
    Some(Env { provisioner: Provisioner::new(&config), sqs: aws_sdk_sqs::Client::new(&config), config })
}

impl Env {
    fn producer(&self, destination: &str) -> Producer {
        Producer::new(AwsPublisher::new(&self.config), TopicMap::new().default_topic(destination))
    }

    async fn queue(&self, prefix: &str, spec: &QueueSpec) -> String {
        self.provisioner.queue(&support::unique_name(prefix), spec).await.unwrap()
    }

    async fn fifo_queue(&self, prefix: &str, spec: &QueueSpec) -> String {
        self.provisioner.queue(&format!("{}.fifo", support::unique_name(prefix)), spec).await.unwrap()
    }

    /// Every message the queue hands out within a few empty receives, acknowledged as they
    /// come (a FIFO queue hands out no more of a group while some of it is in flight).
    async fn drain(&self, queue: &str) -> Vec<ReceivedMessage> {
        let subscriber = SqsSubscriber::new(&self.config, queue).await.unwrap();
        let mut received = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let batch = subscriber.receive(10, Duration::from_secs(1)).await.unwrap();
            if batch.is_empty() {
                empty += 1;
                continue;
            }
            let receipts = batch.iter().map(|m| m.receipt_handle.as_str()).collect::<Vec<_>>();
            for result in subscriber.ack_batch(&receipts).await.unwrap() {
                result.unwrap();
            }
            received.extend(batch);
        }
        received
    }

    async fn queue_attributes(&self, queue: &str) -> BTreeMap<String, String> {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        output.attributes().into_iter().flatten().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect()
    }
}

fn step(n: usize) -> UntypedMessage {
    UntypedMessage::new(STEP, json!({"n": n})).unwrap()
}

/// The `n` of a received message, raw or in an SNS notification.
fn n_of(message: &ReceivedMessage) -> u64 {
    let decoded = decode::<UntypedMessage>(&message.body).unwrap();
    decoded.message.content["n"].as_u64().unwrap()
}

#[tokio::test]
async fn the_producer_sends_straight_to_a_queue_with_typed_attributes() {
    let Some(env) = env().await else { return };
    let queue = env.queue("direct", &QueueSpec::default()).await;
    let producer = env.producer(&queue);
    let options = PublishOptions::new()
        .attribute("team", "billing")
        .attribute("weight", 3)
        .attribute("blob", vec![0u8, 1, 254, 255]);
    let mut ids = Vec::new();
    for n in 0..12 {
        ids.push(producer.produce_with_options(&step(n), &options).await.unwrap());
    }
    let received = env.drain(&queue).await;
    assert_eq!(received.len(), 12);
    let mut ns: Vec<u64> = received.iter().map(n_of).collect();
    ns.sort_unstable();
    assert_eq!(ns, (0..12).collect::<Vec<_>>());
    for message in &received {
        assert!(ids.contains(&message.message_id), "the id the producer returned is the queue's");
        // The shape SNS raw delivery gives: media_type and the typed attributes.
        assert_eq!(message.attributes["media_type"], AttributeValue::Text(STEP.into()));
        assert_eq!(message.attributes["team"], AttributeValue::Text("billing".into()));
        assert_eq!(message.attributes["weight"], AttributeValue::Number("3".into()));
        assert_eq!(message.attributes["blob"], AttributeValue::Binary(vec![0, 1, 254, 255]));
        assert_eq!(message.group_id, None);
    }
}

#[tokio::test]
async fn a_batch_goes_in_batch_requests() {
    let Some(env) = env().await else { return };
    let queue = env.queue("batch", &QueueSpec::default()).await;
    let counter = RequestCounter::new();
    let producer = Producer::new(
        AwsPublisher::with_counter(&env.config, &counter),
        TopicMap::new().default_topic(&queue),
    );
    let messages: Vec<UntypedMessage> = (0..25).map(step).collect();
    assert_eq!(producer.produce_batch(&messages).await.unwrap().len(), 25);
    assert_eq!(counter.get("SendMessageBatch"), 3, "{:?}", counter.counts());
    assert_eq!(counter.total(), 3, "{:?}", counter.counts());
    assert_eq!(env.drain(&queue).await.len(), 25);
}

#[tokio::test]
async fn a_delay_hides_a_message_that_long() {
    let Some(env) = env().await else { return };
    let queue = env.queue("delay", &QueueSpec::default()).await;
    let subscriber = SqsSubscriber::new(&env.config, &queue).await.unwrap();
    let producer = env.producer(&queue);
    let sent = Instant::now();
    producer
        .produce_with_options(&step(1), &PublishOptions::new().delay(Duration::from_secs(2)))
        .await
        .unwrap();
    producer.produce(&step(2)).await.unwrap();
    // The undelayed one comes at once, the delayed one not.
    let first = subscriber.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(first.iter().map(n_of).collect::<Vec<_>>(), [2], "only the message without a delay");
    assert!(sent.elapsed() < Duration::from_secs(2), "the first receive came too late to tell");
    let mut later = Vec::new();
    while later.is_empty() && sent.elapsed() < Duration::from_secs(10) {
        later = subscriber.receive(10, Duration::from_secs(1)).await.unwrap();
    }
    assert_eq!(later.iter().map(n_of).collect::<Vec<_>>(), [1]);
    assert!(sent.elapsed() >= Duration::from_secs(2), "came after {:?}", sent.elapsed());
}

/// A FIFO queue without content-based deduplication refuses a message without a
/// deduplication id. Moto (5.2.5) checks every entry of a `SendMessageBatch` before sending
/// any and refuses the whole request then (its only per-entry failure is a delay over 900 s,
/// which the producer refuses before sending); per-entry failures of `SendMessageBatch` are
/// tested with recorded responses (tests/recorded_responses.rs). Either way the caller is
/// told exactly what was sent.
#[tokio::test]
async fn what_a_fifo_queue_refuses_is_reported_with_what_was_sent() {
    let Some(env) = env().await else { return };
    let queue = env.fifo_queue("partial", &QueueSpec::default()).await;
    let producer = env.producer(&queue);
    let messages: Vec<(UntypedMessage, PublishOptions)> = (0..5)
        .map(|n| {
            let options = PublishOptions::new().group_id("g");
            let options = if n % 2 == 0 { options.deduplication_id(format!("d-{n}")) } else { options };
            (step(n), options)
        })
        .collect();
    let error = producer.produce_batch_with_options(&messages).await.unwrap_err();
    let received: Vec<u64> = env.drain(&queue).await.iter().map(n_of).collect();
    match &error {
        PublishError::Partial { sent, failures } => {
            assert_eq!(failures.iter().map(|(index, _)| *index).collect::<Vec<_>>(), [1, 3], "{error}");
            assert!(failures.iter().all(|(_, e)| !e.retryable), "{failures:?}");
            assert_eq!(
                sent.iter().map(Option::is_some).collect::<Vec<_>>(),
                [true, false, true, false, true]
            );
            assert_eq!(received, [0, 2, 4]);
        }
        // What moto does.
        PublishError::Transport { error: TransportError::Invalid(reason), sent, failures } => {
            assert!(reason.contains("MessageDeduplicationId"), "{reason}");
            assert!(sent.iter().all(Option::is_none) && failures.is_empty(), "{error}");
            assert!(error.to_string().contains("none of the 5 messages was published"), "{error}");
            assert!(received.is_empty(), "{received:?}");
        }
        other => panic!("neither a partial nor a refused request: {other}"),
    }
}

#[tokio::test]
async fn a_fifo_topic_delivers_groups_in_order_once_with_sequence_numbers() {
    let Some(env) = env().await else { return };
    let topic = env.provisioner.topic(&format!("{}.fifo", support::unique_name("fifo-topic"))).await.unwrap();
    let raw = env.fifo_queue("fifo-raw", &QueueSpec::default()).await;
    let enveloped = env.fifo_queue("fifo-env", &QueueSpec::default()).await;
    for (queue, raw_delivery) in [(&raw, true), (&enveloped, false)] {
        let spec = SubscriptionSpec { raw_delivery, filter: None };
        env.provisioner.subscribe(&topic, queue, &spec).await.unwrap();
    }
    let producer = env.producer(&topic);
    // Three groups of eight, interleaved; each with its own deduplication id...
    let mut messages: Vec<(UntypedMessage, PublishOptions)> = (0..24)
        .map(|n| {
            let options =
                PublishOptions::new().group_id(format!("g-{}", n % 3)).deduplication_id(format!("d-{n}"));
            (step(n), options)
        })
        .collect();
    producer.produce_batch_with_options(&messages).await.unwrap();
    // ...and the same deduplication id again, within the window: dropped.
    messages.truncate(1);
    producer.produce_batch_with_options(&messages).await.unwrap();

    for (queue, raw_delivery) in [(&raw, true), (&enveloped, false)] {
        let received = env.drain(queue).await;
        assert_eq!(received.len(), 24, "raw {raw_delivery}: each once");
        let mut by_group: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for message in &received {
            let group = message.group_id.clone().expect("a FIFO queue gives the group");
            assert!(message.sequence_number.is_some(), "raw {raw_delivery}: a sequence number");
            by_group.entry(group).or_default().push(n_of(message));
        }
        for (group, ns) in &by_group {
            let g: u64 = group.trim_start_matches("g-").parse().unwrap();
            let expected: Vec<u64> = (0..24).filter(|n| n % 3 == g).collect();
            assert_eq!(ns, &expected, "raw {raw_delivery}: group {group} in order");
        }
        assert_eq!(by_group.len(), 3);
    }
}

#[tokio::test]
async fn a_derived_group_reaches_a_fifo_queue_in_order() {
    let Some(env) = env().await else { return };
    let spec = QueueSpec { content_based_deduplication: true, ..QueueSpec::default() };
    let queue = env.fifo_queue("steps", &spec).await;
    let producer = env.producer(&queue);
    // Thirty steps of three orders, interleaved: three requests, which must not overtake
    // one another.
    let steps: Vec<OrderStep> =
        (0..30).map(|n| OrderStep { order_id: format!("o-{}", n % 3), step: n / 3 }).collect();
    producer.produce_batch(&steps).await.unwrap();

    let consumer = Consumer::new(SqsSubscriber::new(&env.config, &queue).await.unwrap())
        .wait_time(Duration::from_secs(1));
    let mut by_order: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut empty = 0;
    while empty < 2 {
        let deliveries = consumer.consume_up_to(10).await.unwrap();
        if deliveries.is_empty() {
            empty += 1;
            continue;
        }
        for delivery in &deliveries {
            let step = delivery.decode::<OrderStep>().unwrap().message;
            assert_eq!(delivery.message().group_id.as_deref(), Some(step.order_id.as_str()));
            by_order.entry(step.order_id).or_default().push(step.step);
        }
        for result in consumer.ack_all(&deliveries).await.unwrap() {
            result.unwrap();
        }
    }
    assert_eq!(by_order.len(), 3);
    for (order, steps) in by_order {
        assert_eq!(steps, (0..10).collect::<Vec<_>>(), "order {order}'s steps in order");
    }
}

#[tokio::test]
async fn provisioning_fifo_and_filters_twice_changes_nothing() {
    let Some(env) = env().await else { return };
    let name = support::unique_name("prov");
    let (topic, fifo_topic) = (format!("{name}-t"), format!("{name}-ft.fifo"));
    let (queue, fifo_queue, dlq) =
        (format!("{name}-q"), format!("{name}-fq.fifo"), format!("{name}-dlq.fifo"));
    let toml = format!(
        r#"
        [[topic]]
        name = "{topic}"

        [[topic]]
        name = "{fifo_topic}"
        fifo = true
        content_based_deduplication = true

        [[queue]]
        name = "{queue}"
        delay_seconds = 1

        [[queue]]
        name = "{fifo_queue}"
        content_based_deduplication = true
        high_throughput = true
        dead_letter_queue = "{dlq}"
        max_receive_count = 3

        [[subscription]]
        topic = "{topic}"
        queue = "{queue}"
        raw = true
        media_types = ["{STEP}"]
        filter_policy = '{{"team": ["billing", {{"prefix": "ops-"}}], "weight": [{{"numeric": [">", 3]}}]}}'

        [[subscription]]
        topic = "{fifo_topic}"
        queue = "{fifo_queue}"
        raw = true
        "#
    );
    let config = ProvisionConfig::from_toml(&toml).unwrap();
    let first = env.provisioner.apply(&config).await.unwrap();
    let counter = RequestCounter::new();
    let second = Provisioner::with_counter(&env.config, &counter).apply(&config).await.unwrap();
    assert_eq!(first, second);
    let counts = counter.counts();
    for changing in
        ["CreateQueue", "SetQueueAttributes", "SetTopicAttributes", "Subscribe", "SetSubscriptionAttributes"]
    {
        assert!(!counts.contains_key(changing), "the second run sent {changing}: {counts:?}");
    }
    let url = |name: &str| first.iter().find(|(kind, n, _)| *kind == "queue" && n == name).unwrap().2.clone();
    let arn = |name: &str| first.iter().find(|(kind, n, _)| *kind == "topic" && n == name).unwrap().2.clone();

    let attributes = env.queue_attributes(&url(&fifo_queue)).await;
    for (key, value) in [
        ("FifoQueue", "true"),
        ("ContentBasedDeduplication", "true"),
        ("DeduplicationScope", "messageGroup"),
        ("FifoThroughputLimit", "perMessageGroupId"),
    ] {
        assert_eq!(attributes.get(key).map(String::as_str), Some(value), "{key}: {attributes:?}");
    }
    let redrive: serde_json::Value = serde_json::from_str(&attributes["RedrivePolicy"]).unwrap();
    assert!(redrive["deadLetterTargetArn"].as_str().unwrap().ends_with(&dlq), "{redrive}");
    let dlq_url = env.sqs.get_queue_url().queue_name(&dlq).send().await.unwrap().queue_url.unwrap();
    assert_eq!(env.queue_attributes(&dlq_url).await.get("FifoQueue").map(String::as_str), Some("true"));
    let standard = env.queue_attributes(&url(&queue)).await;
    assert_eq!(standard.get("DelaySeconds").map(String::as_str), Some("1"));
    assert_eq!(standard.get("FifoQueue"), None);

    let sns = aws_sdk_sns::Client::new(&env.config);
    let topic_attributes = sns.get_topic_attributes().topic_arn(arn(&fifo_topic)).send().await.unwrap();
    let topic_attributes = topic_attributes.attributes().unwrap();
    assert_eq!(topic_attributes.get("FifoTopic").map(String::as_str), Some("true"));
    assert_eq!(topic_attributes.get("ContentBasedDeduplication").map(String::as_str), Some("true"));

    // A changed spec is brought about; what cannot change is refused.
    let spec = QueueSpec { delay: Some(Duration::from_secs(0)), ..QueueSpec::default() };
    env.provisioner.queue(&queue, &spec).await.unwrap();
    assert_eq!(env.queue_attributes(&url(&queue)).await.get("DelaySeconds").map(String::as_str), Some("0"));
    let spec = TopicSpec { content_based_deduplication: false };
    env.provisioner.topic_with(&fifo_topic, &spec).await.unwrap();
    let topic_attributes = sns.get_topic_attributes().topic_arn(arn(&fifo_topic)).send().await.unwrap();
    assert_eq!(
        topic_attributes.attributes().unwrap().get("ContentBasedDeduplication").map(String::as_str),
        Some("false")
    );

    // The filter: the media type, a team of billing or ops-*, and a weight over 3.
    let producer = env.producer(&arn(&topic));
    let with_team = |n: usize, team: &str| {
        (step(n), PublishOptions::new().attribute("team", team).attribute("weight", 3 + n as i64))
    };
    let other = UntypedMessage::new("application/vnd.acme.pubsub.other", json!({"n": 9})).unwrap();
    producer
        .produce_batch_with_options(&[
            with_team(1, "billing"),
            with_team(2, "ops-eu"),
            with_team(3, "sales"),
            (step(4), PublishOptions::new()),
            (step(5), PublishOptions::new().attribute("team", "billing").attribute("weight", 3)),
            (other, PublishOptions::new().attribute("team", "billing")),
        ])
        .await
        .unwrap();
    let mut ns: Vec<u64> = env.drain(&url(&queue)).await.iter().map(n_of).collect();
    ns.sort_unstable();
    assert_eq!(ns, [1, 2], "only the messages the policy accepts");

    // The FIFO subscription, with content-based deduplication on the topic turned off again
    // above: the deduplication id is given.
    let producer = env.producer(&arn(&fifo_topic));
    let messages: Vec<_> = (0..3)
        .map(|n| (step(n), PublishOptions::new().group_id("g").deduplication_id(format!("d-{n}"))))
        .collect();
    producer.produce_batch_with_options(&messages).await.unwrap();
    let received = env.drain(&url(&fifo_queue)).await;
    assert_eq!(received.iter().map(n_of).collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn pubsub_publish_to_a_queue_with_groups_attributes_and_delays() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let env = runtime.block_on(env()).unwrap();
    let fifo = runtime.block_on(env.fifo_queue("cli", &QueueSpec::default()));
    let standard = runtime.block_on(env.queue("cli", &QueueSpec::default()));

    // Each line's group and deduplication id from its fields; line 3 has no group and is
    // reported, the others are sent.
    let stdin = [
        r#"{"order": "o-1", "id": "a", "n": 0}"#,
        r#"{"order": 2, "id": "b", "n": 1}"#,
        r#"{"id": "c", "n": 2}"#,
        "",
        r#"{"order": "o-1", "id": "d", "n": 3}"#,
        r#"{"order": "o-1", "id": "a", "n": 4}"#,
    ]
    .join("\n");
    let output = pubsub(
        &[
            "publish",
            "--queue-url",
            &fifo,
            "--media-type",
            STEP,
            "--message-group-field",
            "order",
            "--deduplication-id-field",
            "id",
            "--attribute",
            "team=billing",
            "--attribute",
            "weight:Number=3",
            "--attribute",
            "blob:Binary=AAH+/w==",
        ],
        &stdin,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 3:") && stderr.contains("no field `order`"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(text(&output.stdout).lines().count(), 4, "four sent (one a duplicate SQS drops)");
    let received = runtime.block_on(env.drain(&fifo));
    let seen: Vec<(Option<&str>, u64)> = received.iter().map(|m| (m.group_id.as_deref(), n_of(m))).collect();
    let mut o1: Vec<u64> = seen.iter().filter(|(g, _)| *g == Some("o-1")).map(|(_, n)| *n).collect();
    o1.dedup();
    assert_eq!(o1, [0, 3], "group o-1 in order, the duplicate id dropped: {seen:?}");
    assert!(seen.contains(&(Some("2"), 1)), "an integer group: {seen:?}");
    assert_eq!(received.len(), 3);
    let message = received.iter().find(|m| n_of(m) == 0).unwrap();
    assert_eq!(message.deduplication_id.as_deref(), Some("a"));
    assert_eq!(message.attributes["team"], AttributeValue::Text("billing".into()));
    assert_eq!(message.attributes["weight"], AttributeValue::Number("3".into()));
    assert_eq!(message.attributes["blob"], AttributeValue::Binary(vec![0, 1, 254, 255]));

    // A delay, to a standard queue.
    let sent = Instant::now();
    let output = pubsub(
        &[
            "publish",
            "--queue-url",
            &standard,
            "--media-type",
            STEP,
            "--delay-seconds",
            "2",
            "--json",
            r#"{"n": 7}"#,
        ],
        "",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let subscriber = runtime.block_on(SqsSubscriber::new(&env.config, &standard)).unwrap();
    if sent.elapsed() < Duration::from_millis(1500) {
        assert!(
            runtime.block_on(subscriber.receive(10, Duration::ZERO)).unwrap().is_empty(),
            "hidden at first"
        );
    }
    let mut received = Vec::new();
    while received.is_empty() && sent.elapsed() < Duration::from_secs(10) {
        received = runtime.block_on(subscriber.receive(10, Duration::from_secs(1))).unwrap();
    }
    assert_eq!(received.iter().map(n_of).collect::<Vec<_>>(), [7]);
    assert!(sent.elapsed() >= Duration::from_secs(2));

    // Exactly one destination; no delay to a FIFO queue; typed attributes checked.
    for (args, expected) in [
        (vec!["publish", "--media-type", STEP, "--json", "{}"], "--topic-arn"),
        (
            vec![
                "publish",
                "--topic-arn",
                "arn:aws:sns:us-east-1:1:t",
                "--queue-url",
                &standard,
                "--media-type",
                STEP,
            ],
            "cannot be used with",
        ),
        (vec!["publish", "--queue-url", &fifo, "--media-type", STEP, "--delay-seconds", "2"], "FIFO queue"),
        (
            vec!["publish", "--queue-url", &standard, "--media-type", STEP, "--attribute", "w:Number=x"],
            "not a decimal",
        ),
        (
            vec!["publish", "--queue-url", &standard, "--media-type", STEP, "--attribute", "b:Binary=!"],
            "base64",
        ),
        (
            vec!["publish", "--queue-url", &standard, "--media-type", STEP, "--attribute", "novalue"],
            "NAME=VALUE",
        ),
    ] {
        let output = pubsub(&args, "");
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output.stderr));
        assert!(text(&output.stderr).contains(expected), "{args:?}: {}", text(&output.stderr));
    }
}

/// An account's event, for the three daemons below.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.ledger-entry"]
#[serde(rename_all = "camelCase")]
struct LedgerEntry {
    #[message_group_id]
    account: u32,
    seq: u32,
    #[message_deduplication_id]
    entry_id: String,
}

/// One success: (account, seq, daemon).
type Applied = (u32, u32, &'static str);

/// The ledger entries applied, in the order their handlers succeeded.
#[derive(Clone, Default)]
struct Ledger(std::sync::Arc<std::sync::Mutex<Vec<Applied>>>);

/// The daemon a handler runs in.
#[derive(Clone, Copy)]
struct DaemonName(&'static str);

#[pubsub_core::handler]
async fn apply_ledger_entry(
    entry: LedgerEntry,
    context: &pubsub_core::MessageContext,
    ledger: &Ledger,
    daemon: &DaemonName,
) -> Result<(), pubsub_core::HandlerError> {
    // Every third entry fails on its first delivery: it and what follows it in its group come
    // back, in order.
    if entry.seq % 3 == 1 && context.receive_count() == 1 {
        return Err(pubsub_core::HandlerError::failed("the ledger is busy"));
    }
    ledger.0.lock().unwrap().push((entry.account, entry.seq, daemon.0));
    Ok(())
}

#[tokio::test]
async fn three_daemons_keep_each_groups_order_through_failures_and_retries() {
    let Some(env) = env().await else { return };
    let queue = env.fifo_queue("ledger", &QueueSpec::default()).await;
    let (accounts, per_account) = (3, 8);
    let entries: Vec<LedgerEntry> = (0..per_account)
        .flat_map(|seq| {
            (0..accounts).map(move |account| LedgerEntry {
                account,
                seq,
                entry_id: format!("{account}-{seq}"),
            })
        })
        .collect();
    env.producer(&queue).produce_batch(&entries).await.unwrap();

    let ledger = Ledger::default();
    let mut runs = Vec::new();
    for name in ["a", "b", "c"] {
        let daemon = pubsub_core::DaemonBuilder::new("ledger")
            .collaborator(ledger.clone())
            .collaborator(DaemonName(name))
            .concurrency(4)
            .wait_time(Duration::from_secs(1))
            .backoff(pubsub_core::backoff::BackoffPolicy::Fixed(Duration::ZERO))
            .build(SqsSubscriber::new(&env.config, &queue).await.unwrap())
            .unwrap();
        runs.push(tokio::spawn(daemon.run_until_idle()));
    }
    let mut failed = 0;
    for run in runs {
        failed += run.await.unwrap().count(pubsub_core::Verdict::Failed);
    }
    assert_eq!(support::left_in(&env.sqs, &queue).await, 0, "nothing is left");
    assert!(failed >= u64::from(accounts * 2), "{failed} failures, each retried");
    let ledger = ledger.0.lock().unwrap().clone();
    let mut by_account: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (account, seq, _) in &ledger {
        by_account.entry(*account).or_default().push(*seq);
    }
    for account in 0..accounts {
        assert_eq!(
            by_account[&account],
            (0..per_account).collect::<Vec<_>>(),
            "account {account}: once each, in order"
        );
    }
}
