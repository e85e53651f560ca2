//! The AWS transport against a real SNS/SQS server (moto, started by scripts/test.sh): typed
//! publish through SNS into SQS and a daemon, raw and enveloped delivery, captured fixtures,
//! nack and redelivery, redrive (and which of the daemon's and the queue's maximum wins),
//! filter policies, attributes set by a publish layer, provisioning twice, requests per
//! message.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pubsub_aws::provision::{Provisioner, QueueSpec, SubscriptionSpec};
use pubsub_aws::{RequestCounter, SnsPublisher, SqsSubscriber};
use pubsub_core::memory::{FilterCondition, FilterPolicy};
use pubsub_core::middleware::PublishRequest;
use pubsub_core::{
    backoff::BackoffPolicy, handler, Consumer, DaemonBuilder, HandlerError, Producer, PubSubMessage,
    TopicMap, UntypedMessage, Verdict,
};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.globality.pubsub._.created.order"]
#[serde(rename_all = "camelCase")]
struct OrderCreated {
    #[validate(length(min = 1))]
    order_id: String,
    #[validate(range(min = 0))]
    amount: i64,
    note: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.globality.pubsub.simple"]
struct SimpleMessage {
    message: String,
    timestamp: f64,
}

/// Orders seen by `take_order`; a test reads it after its daemon ran.
struct Orders(std::sync::Mutex<Vec<OrderCreated>>);

#[handler]
async fn take_order(order: OrderCreated, orders: &Arc<Orders>) {
    orders.0.lock().unwrap().push(order);
}

/// Cannot take the order `poison`; takes the others.
#[handler]
async fn refuse_poison(order: OrderCreated, orders: &Arc<Orders>) -> Result<(), HandlerError> {
    if order.order_id == "poison" {
        return Err(HandlerError::failed("poison order"));
    }
    orders.0.lock().unwrap().push(order);
    Ok(())
}

static CONVENTIONAL: AtomicUsize = AtomicUsize::new(0);

#[handler(media_type = "application/vnd.globality.pubsub._.created.*")]
async fn widget_created(message: UntypedMessage) {
    assert!(message.content["uri"].is_string());
    CONVENTIONAL.fetch_add(1, Ordering::SeqCst);
}

#[handler(media_type = "application/vnd.globality.pubsub._.changed.*")]
async fn widget_changed(_message: UntypedMessage) {
    CONVENTIONAL.fetch_add(1, Ordering::SeqCst);
}

#[handler(media_type = "application/vnd.globality.pubsub._.deleted.*")]
async fn widget_deleted(_message: UntypedMessage) {
    CONVENTIONAL.fetch_add(1, Ordering::SeqCst);
}

fn order(id: &str) -> OrderCreated {
    OrderCreated {
        order_id: id.into(),
        amount: 42,
        note: Some("h\u{e9}llo \u{2713}".into()),
        tags: vec!["a".into()],
    }
}

struct Env {
    config: aws_config::SdkConfig,
    provisioner: Provisioner,
}

async fn env() -> Option<Env> {
    support::require_emulator()?;
    let config = support::sdk_config().await;
    Some(Env { provisioner: Provisioner::new(&config), config })
}

impl Env {
    /// A topic and a queue subscribed to it.
    async fn wire(&self, spec: SubscriptionSpec, queue: QueueSpec) -> (String, String) {
        let topic = self.provisioner.topic(&support::unique_name("topic")).await.unwrap();
        let queue = self.provisioner.queue(&support::unique_name("queue"), &queue).await.unwrap();
        self.provisioner.subscribe(&topic, &queue, &spec).await.unwrap();
        (topic, queue)
    }

    fn producer(&self, topic: &str) -> Producer {
        Producer::new(SnsPublisher::new(&self.config), TopicMap::new().default_topic(topic))
    }

    async fn subscriber(&self, queue: &str) -> SqsSubscriber {
        SqsSubscriber::new(&self.config, queue).await.unwrap()
    }
}

/// A daemon running the order handler `H` (and only it, until more are registered).
fn orders_daemon<H: pubsub_core::handlers::HandlerFn>(orders: &Arc<Orders>) -> DaemonBuilder {
    DaemonBuilder::new("orders")
        .handler::<H>()
        .collaborator(orders.clone())
        .wait_time(Duration::from_secs(1))
        .backoff(BackoffPolicy::Fixed(Duration::ZERO))
}

#[tokio::test]
async fn typed_messages_go_through_sns_and_sqs_to_a_daemon() {
    let Some(env) = env().await else { return };
    for raw_delivery in [false, true] {
        let (topic, queue) =
            env.wire(SubscriptionSpec { raw_delivery, filter: None }, QueueSpec::default()).await;
        let sent: Vec<OrderCreated> = (0..25).map(|i| order(&format!("o-{i}"))).collect();
        let ids = env.producer(&topic).produce_batch(&sent).await.unwrap();
        assert_eq!(ids.len(), 25);

        let orders = Arc::new(Orders(Default::default()));
        let report = orders_daemon::<take_order>(&orders)
            .build(env.subscriber(&queue).await)
            .unwrap()
            .run_until_idle()
            .await;
        assert_eq!(report.count(Verdict::Succeeded), 25, "raw={raw_delivery}: {report}");
        let mut got = orders.0.lock().unwrap().clone();
        got.sort_by_key(|o| o.order_id[2..].parse::<u32>().unwrap());
        assert_eq!(got, sent, "raw={raw_delivery}");
    }
}

#[tokio::test]
async fn raw_delivery_carries_the_media_type_attribute_and_enveloped_delivery_a_notification() {
    let Some(env) = env().await else { return };
    for raw_delivery in [false, true] {
        let (topic, queue) =
            env.wire(SubscriptionSpec { raw_delivery, filter: None }, QueueSpec::default()).await;
        env.producer(&topic).produce(&order("o-1")).await.unwrap();
        let consumer = Consumer::new(env.subscriber(&queue).await).wait_time(Duration::from_secs(2));
        let deliveries = consumer.consume().await.unwrap();
        assert_eq!(deliveries.len(), 1);
        let received = deliveries[0].message();
        let body: serde_json::Value = serde_json::from_str(&received.body).unwrap();
        if raw_delivery {
            assert_eq!(body["mediaType"], OrderCreated::MEDIA_TYPE);
            assert_eq!(received.attribute("media_type"), Some(OrderCreated::MEDIA_TYPE));
        } else {
            assert_eq!(body["Type"], "Notification");
            assert_eq!(body["MessageAttributes"]["media_type"]["Value"], OrderCreated::MEDIA_TYPE);
        }
        assert_eq!(deliveries[0].decode::<OrderCreated>().unwrap().message, order("o-1"));
        deliveries[0].ack().await.unwrap();
    }
}

#[tokio::test]
async fn an_attribute_a_publish_layer_adds_arrives_with_the_message_and_routes_by_filter() {
    let Some(env) = env().await else { return };
    let (topic, raw) =
        env.wire(SubscriptionSpec { raw_delivery: true, filter: None }, QueueSpec::default()).await;
    let enveloped =
        env.provisioner.queue(&support::unique_name("enveloped"), &QueueSpec::default()).await.unwrap();
    env.provisioner.subscribe(&topic, &enveloped, &SubscriptionSpec::default()).await.unwrap();
    let billing =
        env.provisioner.queue(&support::unique_name("billing"), &QueueSpec::default()).await.unwrap();
    let only_billing = FilterPolicy::attribute("team", [FilterCondition::exact("billing")]);
    let spec = SubscriptionSpec { raw_delivery: true, filter: Some(only_billing) };
    env.provisioner.subscribe(&topic, &billing, &spec).await.unwrap();

    // Orders `b-...` belong to billing, the others to shipping.
    let producer =
        env.producer(&topic).layer(tower::util::MapRequestLayer::new(|request: PublishRequest| {
            let team = if request.body().contains(r#""orderId":"b-"#) { "billing" } else { "shipping" };
            request.with_attribute("team", team).with_attribute("source.app", "aws-transport-test")
        }));
    producer.produce(&order("b-1")).await.unwrap();
    producer.produce(&order("s-1")).await.unwrap();

    let consume = |queue: String| {
        let env = &env;
        async move {
            let consumer = Consumer::new(env.subscriber(&queue).await).wait_time(Duration::from_secs(2));
            let mut all = Vec::new();
            loop {
                let deliveries = consumer.consume().await.unwrap();
                if deliveries.is_empty() {
                    return all;
                }
                for delivery in &deliveries {
                    delivery.ack().await.unwrap();
                }
                all.extend(deliveries.iter().map(|d| d.message().clone()));
            }
        }
    };
    let raw = consume(raw).await;
    assert_eq!(raw.len(), 2);
    for message in &raw {
        let team = if message.body.contains(r#""orderId":"b-"#) { "billing" } else { "shipping" };
        let expected =
            [("media_type", OrderCreated::MEDIA_TYPE), ("source.app", "aws-transport-test"), ("team", team)]
                .map(|(name, value)| (name.to_owned(), value.into()));
        assert_eq!(message.attributes, pubsub_core::transport::Attributes::from(expected));
    }
    let enveloped = consume(enveloped).await;
    assert_eq!(enveloped.len(), 2);
    for message in &enveloped {
        let notification: serde_json::Value = serde_json::from_str(&message.body).unwrap();
        let attributes = &notification["MessageAttributes"];
        assert_eq!(attributes["team"]["Type"], "String", "{attributes}");
        assert_eq!(attributes["source.app"]["Value"], "aws-transport-test", "{attributes}");
        assert_eq!(attributes["media_type"]["Value"], OrderCreated::MEDIA_TYPE, "{attributes}");
    }
    let billing = consume(billing).await;
    assert_eq!(billing.len(), 1, "the filter policy on `team` let only billing's order through");
    assert!(billing[0].body.contains(r#""orderId":"b-1""#), "{}", billing[0].body);
}

#[tokio::test]
async fn every_captured_fixture_sent_verbatim_is_handled() {
    let Some(env) = env().await else { return };
    let queue =
        env.provisioner.queue(&support::unique_name("fixtures"), &QueueSpec::default()).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&env.config);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/microcosm-pubsub-3.0.0");
    let mut sent = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let captured: serde_json::Value = serde_json::from_str(&text).unwrap();
        sqs.send_message()
            .queue_url(&queue)
            .message_body(captured["Body"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        sent += 1;
    }
    assert_eq!(sent, 10);
    let before = CONVENTIONAL.load(Ordering::SeqCst);
    let orders = Arc::new(Orders(Default::default()));
    let report = orders_daemon::<take_order>(&orders)
        .handler::<widget_created>()
        .handler::<widget_changed>()
        .handler::<widget_deleted>()
        .build(env.subscriber(&queue).await)
        .unwrap()
        .run_until_idle()
        .await;
    assert_eq!(report.count(Verdict::Succeeded), 10, "{report}");
    assert_eq!(orders.0.lock().unwrap().len(), 4);
    assert_eq!(CONVENTIONAL.load(Ordering::SeqCst) - before, 6);
}

#[tokio::test]
async fn a_nack_redelivers_with_receive_count_two() {
    let Some(env) = env().await else { return };
    let (topic, queue) = env.wire(SubscriptionSpec::default(), QueueSpec::default()).await;
    env.producer(&topic).produce(&order("o-1")).await.unwrap();
    let consumer = Consumer::new(env.subscriber(&queue).await).wait_time(Duration::from_secs(2));
    let first = consumer.consume().await.unwrap();
    assert_eq!(first[0].message().receive_count, 1);
    first[0].nack(Some(Duration::ZERO)).await.unwrap();
    let second = consumer.consume().await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message().receive_count, 2);
    assert_eq!(second[0].message().message_id, first[0].message().message_id);
    second[0].ack().await.unwrap();
}

#[tokio::test]
async fn a_poison_message_is_redriven_to_the_dead_letter_queue() {
    let Some(env) = env().await else { return };
    let dlq_name = support::unique_name("dlq");
    let spec = QueueSpec { dead_letter: Some((dlq_name.clone(), 2)), ..QueueSpec::default() };
    let (topic, queue) = env.wire(SubscriptionSpec::default(), spec).await;
    env.producer(&topic).produce_batch(&[order("poison"), order("fine")]).await.unwrap();
    let orders = Arc::new(Orders(Default::default()));
    let report = orders_daemon::<refuse_poison>(&orders)
        .build(env.subscriber(&queue).await)
        .unwrap()
        .run_until_idle()
        .await;
    assert_eq!(report.count(Verdict::Failed), 2, "{report}");
    assert_eq!(orders.0.lock().unwrap().len(), 1, "the other message of the batch was handled");
    // SQS (and moto) move a message to the dead-letter queue on the receive after its last
    // allowed one: that receive finds nothing.
    let source = Consumer::new(env.subscriber(&queue).await).wait_time(Duration::from_secs(1));
    assert!(source.consume().await.unwrap().is_empty());
    let dlq = env.provisioner.queue(&dlq_name, &QueueSpec::default()).await.unwrap();
    let dead =
        Consumer::new(env.subscriber(&dlq).await).wait_time(Duration::from_secs(2)).consume().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].decode::<OrderCreated>().unwrap().message.order_id, "poison");
}

/// With both a daemon maximum of attempts and a redrive policy, the lower one wins: SQS moves
/// the message to the dead-letter queue on the receive after `maxReceiveCount`; the daemon
/// deletes it as SKIPPED on the receive after `max_attempts` (no dead-letter copy).
#[tokio::test]
async fn the_lower_of_max_attempts_and_max_receive_count_wins() {
    let Some(env) = env().await else { return };
    for (max_attempts, max_receive_count, dead_lettered) in [(5, 2, true), (2, 5, false)] {
        let dlq_name = support::unique_name("dlq");
        let spec =
            QueueSpec { dead_letter: Some((dlq_name.clone(), max_receive_count)), ..QueueSpec::default() };
        let (topic, queue) = env.wire(SubscriptionSpec::default(), spec).await;
        env.producer(&topic).produce_batch(&[order("poison"), order("fine")]).await.unwrap();
        let orders = Arc::new(Orders(Default::default()));
        let report = orders_daemon::<refuse_poison>(&orders)
            .max_attempts(max_attempts)
            .build(env.subscriber(&queue).await)
            .unwrap()
            .run_until_idle()
            .await;
        let case = format!("max_attempts {max_attempts}, maxReceiveCount {max_receive_count}: {report}");
        assert_eq!(orders.0.lock().unwrap().len(), 1, "{case}");
        assert_eq!(report.count(Verdict::Failed), u64::from(max_attempts.min(max_receive_count)), "{case}");
        assert_eq!(report.count(Verdict::Skipped), u64::from(!dead_lettered), "{case}");
        let dlq = env.provisioner.queue(&dlq_name, &QueueSpec::default()).await.unwrap();
        let dead = Consumer::new(env.subscriber(&dlq).await)
            .wait_time(Duration::from_secs(1))
            .consume()
            .await
            .unwrap();
        assert_eq!(dead.len(), usize::from(dead_lettered), "{case}");
        let left = Consumer::new(env.subscriber(&queue).await).wait_time(Duration::from_secs(1));
        assert!(left.consume().await.unwrap().is_empty(), "{case}");
    }
}

#[tokio::test]
async fn a_filter_policy_lets_only_the_handled_media_types_through() {
    let Some(env) = env().await else { return };
    let filter = FilterPolicy::media_types([OrderCreated::MEDIA_TYPE]);
    let (topic, queue) =
        env.wire(SubscriptionSpec { raw_delivery: true, filter: Some(filter) }, QueueSpec::default()).await;
    let producer = env.producer(&topic);
    producer.produce(&SimpleMessage { message: "filtered out".into(), timestamp: 1.0 }).await.unwrap();
    producer.produce(&order("o-1")).await.unwrap();
    let consumer = Consumer::new(env.subscriber(&queue).await).wait_time(Duration::from_secs(2));
    let deliveries = consumer.consume().await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert!(deliveries[0].decode::<OrderCreated>().is_ok());
    deliveries[0].ack().await.unwrap();
    assert!(consumer.consume().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_filter_policy_derived_from_a_daemons_handlers() {
    let Some(env) = env().await else { return };
    let orders = Arc::new(Orders(Default::default()));
    let builder = orders_daemon::<take_order>(&orders).handler::<widget_created>();
    let spec = SubscriptionSpec::for_handlers(&builder.handler_table().unwrap(), false);
    let (topic, queue) = env.wire(spec, QueueSpec::default()).await;
    let producer = env.producer(&topic);
    producer.produce(&order("o-1")).await.unwrap();
    producer
        .produce(
            &pubsub_core::UntypedMessage::new(
                "application/vnd.globality.pubsub._.created.widget",
                serde_json::json!({"uri": "u"}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    producer.produce(&SimpleMessage { message: "not handled here".into(), timestamp: 1.0 }).await.unwrap();
    let report = builder.build(env.subscriber(&queue).await).unwrap().run_until_idle().await;
    assert_eq!(report.count(Verdict::Succeeded), 2, "{report}");
    assert_eq!(report.count(Verdict::Ignored), 0, "the unhandled type never reached the queue");
}

#[tokio::test]
async fn the_heartbeat_keeps_a_slow_message_invisible_on_the_server() {
    let Some(env) = env().await else { return };
    let spec = QueueSpec { visibility_timeout: Some(Duration::from_secs(2)), ..QueueSpec::default() };
    let (topic, queue) = env.wire(SubscriptionSpec::default(), spec).await;
    env.producer(&topic).produce(&SimpleMessage { message: "slow".into(), timestamp: 5.0 }).await.unwrap();
    let report = DaemonBuilder::new("slow")
        .handler::<slow_simple>()
        .concurrency(4)
        .wait_time(Duration::from_secs(1))
        .build(env.subscriber(&queue).await)
        .unwrap()
        .run_until_idle()
        .await;
    assert_eq!(report.count(Verdict::Succeeded), 1, "handled once, never redelivered: {report}");
    assert_eq!(SLOW_CALLS.load(Ordering::SeqCst), 1);
}

static SLOW_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Takes 5 s, with a 2 s visibility timeout.
#[handler]
async fn slow_simple(_message: SimpleMessage) {
    SLOW_CALLS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
}

/// A handler that hangs past `heartbeat_max`: the heartbeat stops extending, the message
/// comes back and is handled again while the first handler still runs (it is not killed).
#[tokio::test]
async fn past_the_heartbeat_maximum_a_hanging_message_is_handled_elsewhere() {
    let Some(env) = env().await else { return };
    let spec = QueueSpec { visibility_timeout: Some(Duration::from_secs(2)), ..QueueSpec::default() };
    let (topic, queue) = env.wire(SubscriptionSpec::default(), spec).await;
    env.producer(&topic).produce(&SimpleMessage { message: "hang".into(), timestamp: 7.0 }).await.unwrap();
    let started = std::time::Instant::now();
    let report = DaemonBuilder::new("hanging")
        .handler::<hanging_simple>()
        .concurrency(4)
        .wait_time(Duration::from_secs(1))
        .heartbeat_max(Duration::from_secs(3))
        .build(env.subscriber(&queue).await)
        .unwrap()
        .run_until_idle()
        .await;
    let calls = HANGING.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "handled again once the heartbeat gave up: {calls:?}");
    assert!(calls[1].0 >= 3.0 && calls[1].0 < 7.0, "the second copy came while the first hung: {calls:?}");
    assert_eq!(calls[1].1, 2, "on the second receive");
    assert_eq!(report.count(Verdict::Succeeded), 2, "{report}");
    assert!(started.elapsed() >= Duration::from_secs(7), "the first handler ran to its end");
    let left = Consumer::new(env.subscriber(&queue).await).wait_time(Duration::from_secs(1));
    assert!(left.consume().await.unwrap().is_empty());
}

/// (seconds since the first call, receive count) of each call of `hanging_simple`.
static HANGING: std::sync::Mutex<Vec<(f64, u32)>> = std::sync::Mutex::new(Vec::new());

/// The first call hangs for 7 s; later calls return at once.
#[handler]
async fn hanging_simple(_message: SimpleMessage, context: &pubsub_core::MessageContext) {
    static FIRST: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let first = *FIRST.get_or_init(std::time::Instant::now);
    let first_call = {
        let mut calls = HANGING.lock().unwrap();
        calls.push((first.elapsed().as_secs_f64(), context.receive_count()));
        calls.len() == 1
    };
    if first_call {
        tokio::time::sleep(Duration::from_secs(7)).await;
    }
}

#[tokio::test]
async fn provisioning_twice_changes_nothing() {
    let Some(env) = env().await else { return };
    let names = (support::unique_name("topic"), support::unique_name("queue"), support::unique_name("dlq"));
    let spec = QueueSpec {
        visibility_timeout: Some(Duration::from_secs(45)),
        dead_letter: Some((names.2.clone(), 5)),
        ..QueueSpec::default()
    };
    let sub = SubscriptionSpec {
        raw_delivery: true,
        filter: Some(FilterPolicy::media_types([OrderCreated::MEDIA_TYPE])),
    };
    let mut results = Vec::new();
    for _ in 0..2 {
        let topic = env.provisioner.topic(&names.0).await.unwrap();
        let queue = env.provisioner.queue(&names.1, &spec).await.unwrap();
        let subscription = env.provisioner.subscribe(&topic, &queue, &sub).await.unwrap();
        results.push((topic, queue, subscription));
    }
    assert_eq!(results[0], results[1]);
    let subscriber = env.subscriber(&results[0].1).await;
    assert_eq!(pubsub_core::transport::Subscriber::visibility_timeout(&subscriber), Duration::from_secs(45));
}

#[tokio::test]
async fn requests_per_message_at_full_batches() {
    let Some(env) = env().await else { return };
    let (topic, queue) = env.wire(SubscriptionSpec::default(), QueueSpec::default()).await;
    let counter = RequestCounter::new();
    let producer = Producer::new(
        SnsPublisher::with_counter(&env.config, &counter),
        TopicMap::new().default_topic(&topic),
    );
    let sent: Vec<OrderCreated> = (0..50).map(|i| order(&format!("o-{i}"))).collect();
    producer.produce_batch(&sent).await.unwrap();
    assert_eq!(counter.get("PublishBatch"), 5, "{:?}", counter.counts());
    assert!(counter.total() as f64 / 50.0 <= 0.1);

    let consumed = RequestCounter::new();
    let subscriber = SqsSubscriber::with_counter(&env.config, &queue, &consumed).await.unwrap();
    consumed.reset();
    let orders = Arc::new(Orders(Default::default()));
    let report = orders_daemon::<take_order>(&orders).build(subscriber).unwrap().run_until_idle().await;
    assert_eq!(report.count(Verdict::Succeeded), 50);
    let counts = consumed.counts();
    eprintln!("consume requests for 50 messages: {counts:?}");
    assert!(counts.get("DeleteMessageBatch").copied().unwrap_or(0) <= 8, "{counts:?}");
}
