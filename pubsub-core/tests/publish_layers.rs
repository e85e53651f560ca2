//! Publish layers on the embedded broker: attributes a layer adds reach raw and enveloped
//! subscriptions and route through filter policies; layers run in the order added; a refusal
//! (or a panic) sends nothing, alone or in a batch, and fails a handler's deferred publish;
//! SNS's attribute rules are checked after the layers.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use pubsub_core::memory::{FilterCondition, FilterPolicy, Operation, QueueOptions, SubscriptionOptions};
use pubsub_core::middleware::{BoxError, PublishLayerPanicked, PublishRequest};
use pubsub_core::outcome::HandledMessage;
use pubsub_core::producer::PublishError;
use pubsub_core::transport::{BoxFuture, ReceivedMessage, Subscriber};
use pubsub_core::{
    backoff::BackoffPolicy, handler, DaemonBuilder, HandlerError, MemoryBroker, MessageContext, Producer,
    PubSubMessage, TopicMap, Verdict,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower::util::{MapRequestLayer, MapResultLayer};
use tower::{Layer, Service, ServiceBuilder};
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.shipment"]
struct Shipment {
    id: i64,
}

/// A broker with the topic `events`, and a producer on it with no layer yet.
fn world() -> (MemoryBroker, String, Producer) {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("events");
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    (broker, topic, producer)
}

/// Creates the queue `name` and subscribes it to `topic`.
fn queue(broker: &MemoryBroker, topic: &str, name: &str, raw_delivery: bool, filter: Option<FilterPolicy>) {
    broker.create_queue(name, QueueOptions::default());
    broker.subscribe(topic, name, SubscriptionOptions { raw_delivery, filter }).unwrap();
}

/// Everything in the queue `name` now.
async fn receive_all(broker: &MemoryBroker, name: &str) -> Vec<ReceivedMessage> {
    let subscriber = broker.subscriber(name).unwrap();
    let mut all = Vec::new();
    loop {
        let batch = subscriber.receive(10, Duration::ZERO).await.unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

/// A layer that sets `team` from the media type: orders to billing, the rest to shipping.
fn team_layer() -> MapRequestLayer<fn(PublishRequest) -> PublishRequest> {
    MapRequestLayer::new(|request: PublishRequest| {
        let team = if request.media_type() == Order::MEDIA_TYPE { "billing" } else { "shipping" };
        request.with_attribute("team", team)
    })
}

/// Refuses every message whose body contains `word`.
fn refuse_containing(
    word: &'static str,
) -> MapResultLayer<impl Fn(Result<PublishRequest, BoxError>) -> Result<PublishRequest, BoxError> + Clone> {
    MapResultLayer::new(move |result: Result<PublishRequest, BoxError>| {
        let request = result?;
        if request.body().contains(word) {
            return Err(BoxError::from(format!("no {word} today")));
        }
        Ok(request)
    })
}

#[tokio::test]
async fn an_attribute_a_layer_adds_reaches_raw_and_enveloped_queues_and_routes_by_filter() {
    let (broker, topic, producer) = world();
    queue(&broker, &topic, "raw", true, None);
    queue(&broker, &topic, "enveloped", false, None);
    let team = |name: &str| Some(FilterPolicy::attribute("team", [FilterCondition::exact(name)]));
    queue(&broker, &topic, "billing", true, team("billing"));
    queue(&broker, &topic, "shipping", false, team("shipping"));
    let producer = producer.layer(team_layer());

    producer.produce(&Order { id: 1 }).await.unwrap();
    producer.produce_batch(&[Shipment { id: 2 }, Shipment { id: 3 }]).await.unwrap();

    let raw = receive_all(&broker, "raw").await;
    assert_eq!(raw.len(), 3);
    let order = raw.iter().find(|m| m.body.contains(Order::MEDIA_TYPE)).unwrap();
    assert_eq!(
        order.attributes,
        BTreeMap::from([
            ("media_type".to_owned(), Order::MEDIA_TYPE.into()),
            ("team".to_owned(), "billing".into())
        ])
    );

    let enveloped = receive_all(&broker, "enveloped").await;
    assert_eq!(enveloped.len(), 3);
    for message in &enveloped {
        assert!(message.attributes.is_empty(), "SNS sets no SQS attribute on a notification");
        let notification: Value = serde_json::from_str(&message.body).unwrap();
        let attributes = &notification["MessageAttributes"];
        let is_order = notification["Message"].as_str().unwrap().contains(Order::MEDIA_TYPE);
        let team = if is_order { "billing" } else { "shipping" };
        assert_eq!(attributes["team"], serde_json::json!({"Type": "String", "Value": team}), "{attributes}");
        assert_eq!(attributes["media_type"]["Type"], "String");
    }

    // The filter policies route by the attribute the layer set.
    let billing = receive_all(&broker, "billing").await;
    assert_eq!(billing.len(), 1);
    assert_eq!(pubsub_core::decode::<Order>(&billing[0].body).unwrap().message.id, 1);
    let shipping = receive_all(&broker, "shipping").await;
    let mut ids: Vec<i64> =
        shipping.iter().map(|m| pubsub_core::decode::<Shipment>(&m.body).unwrap().message.id).collect();
    ids.sort();
    assert_eq!(ids, [2, 3]);
}

/// Records `enter {name}` when called and `leave {name}` when its inner service answered,
/// and adds the attribute `{name}` on the way in, and `{name}.out` on the way out.
#[derive(Clone)]
struct Record {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

#[derive(Clone)]
struct Recorded<S> {
    record: Record,
    inner: S,
}

impl<S> Layer<S> for Record {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Recorded<S> {
        Recorded { record: self.clone(), inner }
    }
}

impl<S> Service<PublishRequest> for Recorded<S>
where
    S: Service<PublishRequest, Response = PublishRequest, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = PublishRequest;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<PublishRequest, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: PublishRequest) -> Self::Future {
        let Record { name, log } = self.record.clone();
        log.lock().unwrap().push(format!("enter {name}"));
        // What the layers outside this one did on the way in is visible here.
        let seen: Vec<String> = request.attributes().keys().cloned().collect();
        log.lock().unwrap().push(format!("{name} sees {seen:?}"));
        request.set_attribute(name, "in");
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut request = answer.await?;
            log.lock().unwrap().push(format!("leave {name}"));
            request.set_attribute(format!("{name}.out"), "out");
            Ok(request)
        })
    }
}

#[tokio::test]
async fn layers_run_in_the_order_they_were_added_the_first_outermost() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let record = |name| Record { name, log: log.clone() };
    let expected = [
        "enter outer",
        "outer sees []",
        "enter inner",
        r#"inner sees ["outer"]"#,
        "leave inner",
        "leave outer",
    ];
    let attributes: pubsub_core::transport::Attributes = [
        ("inner", "in"),
        ("inner.out", "out"),
        ("media_type", Order::MEDIA_TYPE),
        ("outer", "in"),
        ("outer.out", "out"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.into()))
    .collect();

    // One `layer` call each, a ServiceBuilder, a tuple: the same order.
    type AddLayers<'a> = Box<dyn Fn(Producer) -> Producer + 'a>;
    let ways: [(&str, AddLayers); 3] = [
        ("two calls", Box::new(|p: Producer| p.layer(record("outer")).layer(record("inner")))),
        (
            "ServiceBuilder",
            Box::new(|p: Producer| {
                p.layer(ServiceBuilder::new().layer(record("outer")).layer(record("inner")))
            }),
        ),
        ("tuple", Box::new(|p: Producer| p.layer((record("outer"), record("inner"))))),
    ];
    for (way, add) in ways {
        let (broker, topic, producer) = world();
        queue(&broker, &topic, "raw", true, None);
        log.lock().unwrap().clear();
        let producer = add(producer);
        assert!(format!("{producer:?}").contains("publish_layers"), "{producer:?}");
        producer.produce(&Order { id: 1 }).await.unwrap();
        assert_eq!(*log.lock().unwrap(), expected, "{way}");
        // What the outermost layer answered, changes on the way out included, was sent.
        let raw = receive_all(&broker, "raw").await;
        assert_eq!(raw[0].attributes, attributes, "{way}");
    }
}

/// A derived type's media type reaches the layers as its constant, borrowed (no copy for
/// each message); an untyped message's as its own text.
#[tokio::test]
async fn a_derived_types_media_type_is_its_constant_borrowed() {
    let (broker, topic, producer) = world();
    queue(&broker, &topic, "events", true, None);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let producer = producer.layer(MapRequestLayer::new(move |request: PublishRequest| {
        let borrowed = matches!(request.message.media_type, Cow::Borrowed(_));
        record.lock().unwrap().push((request.media_type().to_owned(), borrowed));
        request
    }));
    producer.produce(&Order { id: 1 }).await.unwrap();
    let untyped =
        pubsub_core::UntypedMessage::new("text/x-audit", serde_json::json!({"audit": true})).unwrap();
    producer.produce(&untyped).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [(Order::MEDIA_TYPE.to_owned(), true), ("text/x-audit".to_owned(), false)]
    );
    let received = receive_all(&broker, "events").await;
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].attributes["media_type"], Order::MEDIA_TYPE);
    assert_eq!(received[1].attributes["media_type"], "text/x-audit");
}

#[tokio::test]
async fn a_layer_may_send_a_message_elsewhere() {
    let (broker, topic, producer) = world();
    queue(&broker, &topic, "events", true, None);
    let audit = broker.create_topic("audit");
    queue(&broker, &audit, "audit", true, None);
    let to_audit = audit.clone();
    let producer = producer.layer(MapRequestLayer::new(move |mut request: PublishRequest| {
        if request.body().contains("audit") {
            request.topic = to_audit.clone();
        }
        request
    }));
    producer.produce(&Order { id: 1 }).await.unwrap();
    producer
        .produce(
            &pubsub_core::UntypedMessage::new("text/x-audit", serde_json::json!({"audit": true})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(receive_all(&broker, "events").await.len(), 1);
    let audited = receive_all(&broker, "audit").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].attributes["media_type"], "text/x-audit");
}

#[tokio::test]
async fn a_refusal_sends_nothing_alone_or_in_a_batch() {
    let (broker, topic, producer) = world();
    queue(&broker, &topic, "all", true, None);
    let producer = producer.layer(refuse_containing("\"id\":13"));

    let error = producer.produce(&Order { id: 13 }).await.unwrap_err();
    let PublishError::RefusedByLayer { media_type, error: refusal } = &error else { panic!("{error:?}") };
    assert_eq!(media_type, Order::MEDIA_TYPE);
    assert_eq!(refusal.to_string(), "no \"id\":13 today");
    assert_eq!(
        error.to_string(),
        "the `application/vnd.acme.pubsub.order` message was refused by a publish layer: no \"id\":13 today"
    );
    assert!(error.sent().is_none(), "nothing was sent");

    let error =
        producer.produce_batch(&[Order { id: 12 }, Order { id: 13 }, Order { id: 14 }]).await.unwrap_err();
    let PublishError::Refused { total, refused } = &error else { panic!("{error:?}") };
    assert_eq!(*total, 3);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, 1);
    assert!(matches!(refused[0].1, PublishError::RefusedByLayer { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "none of the 3 messages was sent: 1 of them was refused before sending; the message at index 1: \
         the `application/vnd.acme.pubsub.order` message was refused by a publish layer: no \"id\":13 today"
    );

    assert_eq!(broker.queue_stats("all").total, 0);
    assert_eq!(broker.request_counts().get(Operation::PublishBatch), 0, "no request at all");

    // The others pass.
    producer.produce_batch(&[Order { id: 12 }, Order { id: 14 }]).await.unwrap();
    assert_eq!(broker.queue_stats("all").total, 2);
}

#[tokio::test]
async fn the_messages_of_one_call_go_through_the_layers_concurrently() {
    let (broker, topic, producer) = world();
    queue(&broker, &topic, "all", true, None);
    // Each message waits in the layer until all three are there: one at a time, none would pass.
    let all_there = Arc::new(tokio::sync::Barrier::new(3));
    let producer = producer.layer(tower::util::AndThenLayer::new(move |request: PublishRequest| {
        let all_there = all_there.clone();
        async move {
            all_there.wait().await;
            Ok::<_, BoxError>(request)
        }
    }));
    let batch = producer.produce_batch(&[Order { id: 1 }, Order { id: 2 }, Order { id: 3 }]);
    let ids = tokio::time::timeout(Duration::from_secs(10), batch).await.expect("not one at a time").unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(broker.queue_stats("all").total, 3);
}

#[tokio::test(start_paused = true)]
async fn towers_own_timeout_refuses_a_message_a_layer_takes_too_long_over() {
    let (broker, topic, producer) = world();
    queue(&broker, &topic, "all", true, None);
    // Inside the timeout: takes ten seconds over order 2, no time over the others.
    let slow = tower::util::AndThenLayer::new(|request: PublishRequest| async move {
        if request.body().contains("\"id\":2") {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        Ok::<_, BoxError>(request)
    });
    let producer = producer.layer(ServiceBuilder::new().timeout(Duration::from_secs(1)).layer(slow));
    producer.produce(&Order { id: 1 }).await.unwrap();
    let error = producer.produce(&Order { id: 2 }).await.unwrap_err();
    let PublishError::RefusedByLayer { error: refusal, .. } = &error else { panic!("{error:?}") };
    assert!(refusal.is::<tower::timeout::error::Elapsed>(), "{refusal:?}");
    assert!(error.to_string().ends_with("refused by a publish layer: request timed out"), "{error}");
    assert_eq!(broker.queue_stats("all").total, 1, "only order 1");
}

/// Panics on a message whose body contains `"id":666`: in `call` itself, or in its future.
#[derive(Clone)]
struct Panics {
    in_future: bool,
}

impl<S> Layer<S> for Panics {
    type Service = Panicking<S>;

    fn layer(&self, inner: S) -> Panicking<S> {
        Panicking { in_future: self.in_future, inner }
    }
}

#[derive(Clone)]
struct Panicking<S> {
    in_future: bool,
    inner: S,
}

impl<S> Service<PublishRequest> for Panicking<S>
where
    S: Service<PublishRequest, Response = PublishRequest, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = PublishRequest;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<PublishRequest, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: PublishRequest) -> Self::Future {
        let evil = request.body().contains("\"id\":666");
        if evil && !self.in_future {
            panic!("the layer cannot bear 666");
        }
        let answer = self.inner.call(request);
        Box::pin(async move {
            tokio::task::yield_now().await;
            if evil {
                panic!("the layer's future cannot bear {}", 666);
            }
            answer.await
        })
    }
}

#[tokio::test]
async fn a_panicking_layer_refuses_the_message_and_the_producer_keeps_working() {
    for (in_future, text) in
        [(false, "the layer cannot bear 666"), (true, "the layer's future cannot bear 666")]
    {
        let (broker, topic, producer) = world();
        queue(&broker, &topic, "all", true, None);
        let producer = producer.layer(Panics { in_future });

        let error = producer.produce(&Order { id: 666 }).await.unwrap_err();
        let PublishError::RefusedByLayer { error: refusal, .. } = &error else { panic!("{error:?}") };
        let panicked = refusal.downcast_ref::<PublishLayerPanicked>().expect("a PublishLayerPanicked");
        assert_eq!(panicked.message(), text);
        assert_eq!(
            error.to_string(),
            format!(
                "the `application/vnd.acme.pubsub.order` message was refused by a publish layer: a publish \
                 layer panicked: {text}"
            )
        );

        // The same producer, and a clone of it, still publish; a batch with the panicking one
        // sends none.
        producer.produce(&Order { id: 1 }).await.unwrap();
        producer.clone().produce_batch(&[Order { id: 2 }, Order { id: 3 }]).await.unwrap();
        let error = producer.produce_batch(&[Order { id: 4 }, Order { id: 666 }]).await.unwrap_err();
        assert!(
            matches!(&error, PublishError::Refused { total: 2, refused } if refused[0].0 == 1),
            "{error:?}"
        );
        let ids: Vec<i64> = receive_all(&broker, "all")
            .await
            .iter()
            .map(|m| pubsub_core::decode::<Order>(&m.body).unwrap().message.id)
            .collect();
        assert_eq!(ids.len(), 3, "in_future={in_future}: {ids:?}");
        assert!(!ids.contains(&666) && !ids.contains(&4), "in_future={in_future}: {ids:?}");
    }
}

/// Publishes a shipment for every order it handles.
#[handler]
async fn ship(order: Order, context: &MessageContext) -> Result<(), HandlerError> {
    context.publish(&Shipment { id: order.id })?;
    Ok(())
}

/// Runs a daemon on the `orders` queue with the handler `ship` and `producer`, until idle;
/// the verdict, reason and number of messages published of each message it handled.
async fn run_ship(broker: &MemoryBroker, producer: Producer) -> Vec<(Verdict, Option<String>, usize)> {
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    let daemon = DaemonBuilder::new("ship")
        .handler::<ship>()
        .producer(producer)
        .backoff(BackoffPolicy::Fixed(Duration::from_secs(600)))
        .on_outcome(move |handled: &HandledMessage| {
            let outcome = &handled.outcome;
            seen.lock().unwrap().push((outcome.verdict, outcome.reason.clone(), handled.published.len()))
        })
        .wait_time(Duration::from_millis(50))
        .build(broker.subscriber("orders").unwrap())
        .unwrap();
    daemon.run_until_idle().await;
    let outcomes = outcomes.lock().unwrap().clone();
    outcomes
}

#[tokio::test]
async fn a_handlers_publish_refused_by_the_daemon_producers_layer_fails_the_message() {
    let (broker, topic, producer) = world();
    broker.create_queue("orders", QueueOptions::default());
    queue(&broker, &topic, "shipments", true, Some(FilterPolicy::media_types([Shipment::MEDIA_TYPE])));
    for id in [7, 13] {
        let body = pubsub_core::encode(&Order { id }, &Default::default()).unwrap();
        broker.send("orders", body).await.unwrap();
    }

    let producer = producer.layer(team_layer()).layer(refuse_containing("\"id\":13"));
    let mut outcomes = run_ship(&broker, producer).await;
    outcomes.sort_by_key(|(verdict, ..)| *verdict);
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert_eq!(outcomes[0], (Verdict::Succeeded, None, 1));
    let (verdict, reason, published) = &outcomes[1];
    assert_eq!((*verdict, *published), (Verdict::Failed, 0));
    let reason = reason.as_deref().unwrap();
    assert!(
        reason.contains(
            "the `application/vnd.acme.pubsub.shipment` message was refused by a publish layer: no \"id\":13 today"
        ),
        "{reason}"
    );
    assert!(reason.starts_with("the handler succeeded, but publishing its 1 messages failed"), "{reason}");

    // Only the shipment of order 7 left, with the attribute the first layer set.
    let shipments = receive_all(&broker, "shipments").await;
    assert_eq!(shipments.len(), 1);
    assert_eq!(pubsub_core::decode::<Shipment>(&shipments[0].body).unwrap().message.id, 7);
    assert_eq!(shipments[0].attributes["team"], "shipping");
    // The refused order waits for a retry.
    assert_eq!(broker.queue_stats("orders").total, 1);
}

#[tokio::test]
async fn attributes_sns_would_refuse_are_refused_after_the_layers_and_nothing_is_sent() {
    /// A producer whose layer sets `attributes` on every message.
    fn with_attributes(producer: &Producer, attributes: Vec<(String, String)>) -> Producer {
        producer.clone().layer(MapRequestLayer::new(move |mut request: PublishRequest| {
            request
                .attributes_mut()
                .extend(attributes.iter().map(|(name, value)| (name.clone(), value.into())));
            request
        }))
    }
    let named = |names: &[&str]| names.iter().map(|n| (n.to_string(), "v".to_owned())).collect::<Vec<_>>();
    let (broker, topic, producer) = world();
    queue(&broker, &topic, "all", true, None);

    // Nine besides `media_type` is SNS's limit of ten.
    let nine: Vec<String> = (1..=9).map(|n| format!("a{n}")).collect();
    let nine: Vec<&str> = nine.iter().map(String::as_str).collect();
    with_attributes(&producer, named(&nine)).produce(&Order { id: 1 }).await.unwrap();
    let error = with_attributes(&producer, named(&[&nine[..], &["a10"]].concat()))
        .produce(&Order { id: 2 })
        .await
        .unwrap_err();
    assert!(matches!(error, PublishError::TooManyAttributes { count: 11, limit: 10, .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the `application/vnd.acme.pubsub.order` message has 11 message attributes (`media_type` and 10 \
         more), over SNS's limit of 10 a message, so it was not sent: set at most 9 besides `media_type`"
    );

    // Names SNS takes, and those it refuses, with why.
    let longest = "n".repeat(256);
    for good in ["a", "A-z_0.9", "x.y.z", "AWSome", "aws", "Amazonian", longest.as_str()] {
        with_attributes(&producer, named(&[good]))
            .produce(&Order { id: 3 })
            .await
            .unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    let too_long = "n".repeat(257);
    for (bad, why) in [
        (
            "media_type",
            "is the message's own attribute, set from its media type; it cannot be set as an attribute",
        ),
        ("", "has an empty name"),
        (too_long.as_str(), "has a name of 257 characters, over SNS's limit of 256"),
        ("team name", "has the character ' ' in its name: SNS takes ASCII letters, digits, `_`, `-` and `.`"),
        ("équipe", "has the character 'é' in its name"),
        ("AWS.trace", "has a name starting with `AWS.` or `Amazon.`, which SNS reserves (in any case)"),
        ("aws.trace", "which SNS reserves"),
        ("amazon.x", "which SNS reserves"),
        ("Amazon.x", "which SNS reserves"),
        (".team", "has a name starting or ending with `.`"),
        ("team.", "has a name starting or ending with `.`"),
        ("a..b", "has `..` in its name"),
    ] {
        let error = with_attributes(&producer, named(&[bad])).produce(&Order { id: 4 }).await.unwrap_err();
        let PublishError::InvalidAttribute { name, reason, .. } = &error else {
            panic!("{bad:?}: {error:?}")
        };
        assert_eq!(name, bad);
        assert!(reason.starts_with(why) || reason.contains(why), "{bad:?}: {reason}");
        assert!(
            error.to_string().starts_with(
                "the `application/vnd.acme.pubsub.order` message was not sent: its message attribute `"
            ),
            "{error}"
        );
    }
    let empty =
        with_attributes(&producer, vec![("team".into(), String::new())]).produce(&Order { id: 5 }).await;
    assert_eq!(
        empty.unwrap_err().to_string(),
        "the `application/vnd.acme.pubsub.order` message was not sent: its message attribute `team` has an \
         empty value, which SNS and SQS refuse: give it a value or leave it out"
    );

    // The attributes count in the size.
    let big = vec![("big".to_owned(), "x".repeat(256 * 1024))];
    let error = with_attributes(&producer, big).produce(&Order { id: 6 }).await.unwrap_err();
    assert!(
        matches!(error, PublishError::TooLarge { size, limit: 262_144, .. } if size > 262_144),
        "{error:?}"
    );

    // In a batch, one message with a bad attribute keeps the others from being sent.
    let producer = producer.layer(MapRequestLayer::new(|request: PublishRequest| {
        let bad = request.body().contains("\"id\":8");
        request.with_attribute(if bad { "AWS.x" } else { "ok" }, "v")
    }));
    let error =
        producer.produce_batch(&[Order { id: 7 }, Order { id: 8 }, Order { id: 9 }]).await.unwrap_err();
    assert!(
        matches!(&error, PublishError::Refused { total: 3, refused } if refused.len() == 1 && refused[0].0 == 1
            && matches!(refused[0].1, PublishError::InvalidAttribute { .. })),
        "{error:?}"
    );

    // Only the messages that passed were sent: the one with nine attributes and the good names.
    let received = receive_all(&broker, "all").await;
    assert_eq!(received.len(), 8);
    assert_eq!(received[0].attributes.len(), 10, "nine and media_type");
}
