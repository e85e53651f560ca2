//! The function on recorded events, without the Lambda runtime: SQS events (standard and FIFO)
//! and SNS events in the shapes AWS documents, mixing good, invalid, unknown-media-type and
//! malformed records; the partial batch response exactly; concurrency; the deadline; the
//! visibility changes, against moto when it runs and against a dead endpoint always.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pubsub_core::backoff::BackoffPolicy;
use pubsub_core::outcome::HandledMessage;
use pubsub_core::{handler, DaemonBuilder, HandlerError, MessageContext, PubSubMessage, Verdict};
use pubsub_lambda::events::{SnsEvent, SqsEvent};
use pubsub_lambda::{
    Context, InvocationError, LambdaBuilder, LambdaEvent, LambdaHandler, RecordOutcome, Visibility,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use validator::Validate;

const SIMPLE: &str = "application/vnd.globality.pubsub.simple";

/// The seed README's schema.
#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.globality.pubsub.simple"]
struct SimpleMessage {
    message: String,
    timestamp: f64,
}

/// A handler call: the message id and the request id.
type Call = (String, Option<String>);

/// What the handler saw: calls in order, and how many ran at once.
#[derive(Clone, Default)]
struct Probe {
    calls: Arc<Mutex<Vec<Call>>>,
    in_flight: Arc<AtomicUsize>,
    most_in_flight: Arc<AtomicUsize>,
}

impl Probe {
    fn called(&self) -> Vec<String> {
        self.calls.lock().unwrap().iter().map(|(id, _)| id.clone()).collect()
    }

    fn request_id(&self, message_id: &str) -> Option<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .find(|(id, _)| id == message_id)
            .and_then(|(_, request)| request.clone())
    }
}

/// Counts a running handler until dropped (also when it panics or is cancelled).
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The message text says what to do: `retry`, `skip`, `panic`, `slow` (30 s), `pause`
/// (200 ms), `publish` (a message, then succeed), `publish then fail`; anything else succeeds.
#[handler]
async fn handle_simple(
    message: SimpleMessage,
    context: &MessageContext,
    probe: &Probe,
) -> Result<(), HandlerError> {
    probe
        .calls
        .lock()
        .unwrap()
        .push((context.message_id().to_owned(), context.request_id().map(str::to_owned)));
    let now = probe.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    probe.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let _running = Running(probe.in_flight.clone());
    match message.message.as_str() {
        "retry" => Err(HandlerError::retry_after(Duration::from_secs(2))),
        "skip" => Err(HandlerError::skip("nothing to do")),
        "panic" => panic!("the handler panicked on purpose"),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        }
        "pause" => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(())
        }
        "publish" | "publish then fail" => {
            context.publish(&SimpleMessage {
                message: format!("published by {}", context.message_id()),
                timestamp: 2.5,
            })?;
            match message.message.as_str() {
                "publish" => Ok(()),
                _ => Err(HandlerError::from(std::io::Error::other("failed after publishing"))),
            }
        }
        _ => Ok(()),
    }
}

/// The daemon builder the tests share: FAILED is retried at once (backoff 0), above five
/// receives a message is SKIPPED, and every outcome is recorded.
fn daemon(probe: &Probe, outcomes: &Arc<Mutex<Vec<HandledMessage>>>) -> DaemonBuilder {
    let outcomes = outcomes.clone();
    DaemonBuilder::new("lambda-test")
        .handler::<handle_simple>()
        .collaborator(probe.clone())
        .max_attempts(5)
        .backoff(BackoffPolicy::Fixed(Duration::ZERO))
        .on_outcome(move |handled| outcomes.lock().unwrap().push(handled.clone()))
}

/// The function, changing no visibility.
async fn function(probe: &Probe) -> LambdaHandler {
    LambdaBuilder::from(daemon(probe, &Arc::default())).change_visibility(false).build().await.unwrap()
}

/// A context whose deadline is `left` from now (none when `None`).
fn context(left: Option<Duration>) -> Context {
    let mut context = Context::default();
    context.request_id = "8476a536-e9f4-5d38-ad4f-bb9bb2ebd4b5".to_owned();
    if let Some(left) = left {
        context.deadline = (SystemTime::now() + left).duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    }
    context
}

fn failures(ids: &[&str]) -> Value {
    json!({"batchItemFailures": ids.iter().map(|id| json!({"itemIdentifier": id})).collect::<Vec<_>>()})
}

fn simple_body(message: &str) -> String {
    json!({"mediaType": SIMPLE, "message": message, "timestamp": 1.5}).to_string()
}

/// An SQS event of raw simple messages with ids `m-0`, `m-1`, ...
fn sqs_event(messages: &[&str]) -> SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| {
            json!({
                "messageId": format!("m-{i}"),
                "receiptHandle": format!("receipt-{i}"),
                "body": simple_body(message),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795800748896"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:simple-queue",
                "awsRegion": "us-east-2"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn an_sqs_batch_reports_its_failed_and_retried_records_and_no_other() {
    let probe = Probe::default();
    let outcomes = Arc::default();
    let function =
        LambdaBuilder::from(daemon(&probe, &outcomes)).change_visibility(false).build().await.unwrap();
    let event = support::fixture("sqs-mixed.json");

    let answer = function.handle(LambdaEvent::new(event.clone(), context(None))).await.unwrap();
    assert_eq!(answer, failures(&["invalid", "malformed", "retry", "panic"]));

    // Record by record: the results table, as the daemon has it.
    let report = function.handle_sqs(serde_json::from_value(event).unwrap(), &context(None)).await;
    let verdicts: Vec<(&str, Verdict)> =
        report.records.iter().map(|r| (r.message_id.as_str(), r.verdict())).collect();
    assert_eq!(
        verdicts,
        [
            ("good-raw", Verdict::Succeeded),
            ("good-sns", Verdict::Succeeded),
            ("invalid", Verdict::Failed),
            ("unknown", Verdict::Ignored),
            ("malformed", Verdict::Failed),
            ("retry", Verdict::Retried),
            ("skip", Verdict::Skipped),
            ("expired", Verdict::Expired),
            ("panic", Verdict::Failed),
            ("too-many", Verdict::Skipped),
        ]
    );
    let reason = |id: &str| match &report.records.iter().find(|r| r.message_id == id).unwrap().outcome {
        RecordOutcome::Handled(handled) => handled.outcome.reason.clone().unwrap_or_default(),
        other => panic!("{id} was not handled: {other:?}"),
    };
    assert!(reason("invalid").contains("timestamp"), "{}", reason("invalid"));
    assert!(reason("panic").contains("the handler panicked on purpose"), "{}", reason("panic"));
    assert!(reason("too-many").contains("more than the maximum of 5 attempts"), "{}", reason("too-many"));
    assert_eq!(
        report.batch_response(),
        serde_json::from_value(failures(&["invalid", "malformed", "retry", "panic"])).unwrap()
    );
    assert!(report.records.iter().all(|r| r.visibility == Visibility::Unchanged));

    // The request id of the opaque data reached the handler, through SNS's envelope too; the
    // expired, ignored, invalid and over-attempted records never reached it.
    assert_eq!(probe.request_id("good-raw").as_deref(), Some("req-1"));
    assert_eq!(probe.request_id("good-sns").as_deref(), Some("req-2"));
    let mut called = probe.called();
    called.sort();
    called.dedup();
    assert_eq!(called, ["good-raw", "good-sns", "panic", "retry", "skip"]);
    // The daemon builder's hook saw every record of both invocations.
    assert_eq!(outcomes.lock().unwrap().len(), 20);
}

#[tokio::test]
async fn a_fifo_group_is_handled_in_order_and_stops_at_its_first_failure() {
    let probe = Probe::default();
    let function = function(&probe).await;
    let event = support::fixture("sqs-fifo.json");
    let report = function.handle_sqs(serde_json::from_value(event.clone()).unwrap(), &context(None)).await;
    assert_eq!(serde_json::to_value(report.batch_response()).unwrap(), failures(&["g1-second", "g1-third"]));
    let third = report.records.iter().find(|r| r.message_id == "g1-third").unwrap();
    assert!(
        matches!(&third.outcome, RecordOutcome::NotStarted { reason } if reason.contains("FIFO message group")),
        "{third:?}"
    );
    let called = probe.called();
    assert!(!called.contains(&"g1-third".to_owned()), "{called:?}");
    let position = |id: &str| called.iter().position(|c| c == id).unwrap();
    assert!(position("g1-first") < position("g1-second"));
    assert!(position("g2-first") < position("g2-second"));
}

#[tokio::test]
async fn an_sns_event_succeeds_or_fails_as_a_whole() {
    let probe = Probe::default();
    let function = function(&probe).await;

    let answer =
        function.handle(LambdaEvent::new(support::fixture("sns-good.json"), context(None))).await.unwrap();
    assert_eq!(answer, Value::Null);
    assert_eq!(probe.request_id("95df01b4-ee98-5cb9-9903-4c221d41eb5e").as_deref(), Some("req-sns"));

    let mixed = support::fixture("sns-mixed.json");
    let error = function.handle(LambdaEvent::new(mixed.clone(), context(None))).await.unwrap_err();
    assert!(
        matches!(&error, InvocationError::SnsRecordsFailed { failed: 1, total: 3, ids } if ids == "sns-invalid"),
        "{error:?}"
    );
    let diagnostic = lambda_runtime::Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "SnsRecordsFailed");
    assert!(diagnostic.error_message.contains("Lambda retries the event"), "{}", diagnostic.error_message);

    let report =
        function.handle_sns(serde_json::from_value::<SnsEvent>(mixed).unwrap(), &context(None)).await;
    let verdicts: Vec<Verdict> = report.records.iter().map(|r| r.verdict()).collect();
    assert_eq!(verdicts, [Verdict::Succeeded, Verdict::Ignored, Verdict::Failed]);
}

#[tokio::test]
async fn events_that_are_not_sqs_or_sns_or_do_not_parse_fail_the_invocation() {
    let function = function(&Probe::default()).await;
    let handle = |event: Value| function.handle(LambdaEvent::new(event, context(None)));
    assert_eq!(handle(json!({"Records": []})).await.unwrap(), failures(&[]));
    let cases = [
        (
            json!({"Records": [{"eventSource": "aws:sqs", "attributes": 5}]}),
            "MalformedEvent",
            "the SQS event does not parse",
        ),
        (json!({"Records": [{"EventSource": "aws:sns"}]}), "MalformedEvent", "the SNS event does not parse"),
        (
            json!({"Records": [{"eventSource": "aws:kinesis"}]}),
            "UnsupportedEvent",
            "records from `aws:kinesis`",
        ),
        (json!({"key1": "value1"}), "UnsupportedEvent", "no `Records` array"),
    ];
    for (event, error_type, says) in cases {
        let error = handle(event.clone()).await.unwrap_err();
        assert_eq!(error.error_type(), error_type, "{event}: {error}");
        assert!(error.to_string().contains(says), "{event}: {error}");
    }
}

#[tokio::test]
async fn records_are_handled_with_bounded_concurrency() {
    let probe = Probe::default();
    let function = LambdaBuilder::from(daemon(&probe, &Arc::default()).concurrency(7))
        .concurrency(3)
        .change_visibility(false)
        .build()
        .await
        .unwrap();
    let report = function.handle_sqs(sqs_event(&["pause"; 12]), &context(None)).await;
    assert_eq!(report.count(Verdict::Succeeded), 12);
    assert_eq!(probe.most_in_flight.load(Ordering::SeqCst), 3);

    // Without a concurrency of its own, the daemon builder's.
    let probe = Probe::default();
    let function = LambdaBuilder::from(daemon(&probe, &Arc::default()).concurrency(5))
        .change_visibility(false)
        .build()
        .await
        .unwrap();
    function.handle_sqs(sqs_event(&["pause"; 12]), &context(None)).await;
    assert_eq!(probe.most_in_flight.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn near_the_deadline_records_are_reported_as_failures_rather_than_cut_off() {
    let probe = Probe::default();
    let function = LambdaBuilder::from(daemon(&probe, &Arc::default()))
        .concurrency(1)
        .deadline_margin(Duration::from_millis(1000))
        .change_visibility(false)
        .build()
        .await
        .unwrap();
    // One at a time: the first succeeds, the second is still running at the cut-off (0.8 s
    // in), the third never starts.
    let started = Instant::now();
    let left = Duration::from_millis(1800);
    let report = function.handle_sqs(sqs_event(&["hello", "slow", "hello"]), &context(Some(left))).await;
    assert!(started.elapsed() < left, "answered after the deadline: {:?}", started.elapsed());
    assert_eq!(serde_json::to_value(report.batch_response()).unwrap(), failures(&["m-1", "m-2"]));
    assert!(
        matches!(&report.records[0].outcome, RecordOutcome::Handled(h) if h.outcome.verdict == Verdict::Succeeded)
    );
    assert!(
        matches!(&report.records[1].outcome, RecordOutcome::Interrupted { reason } if reason.contains("neared its deadline")),
        "{:?}",
        report.records[1]
    );
    assert!(
        matches!(&report.records[2].outcome, RecordOutcome::NotStarted { reason } if reason.contains("neared its deadline")),
        "{:?}",
        report.records[2]
    );
    assert_eq!(probe.called(), ["m-0", "m-1"]);
    assert_eq!(probe.in_flight.load(Ordering::SeqCst), 0, "the cancelled handler was dropped");

    // Already within the margin: nothing starts, everything comes back.
    let probe = Probe::default();
    let function =
        LambdaBuilder::from(daemon(&probe, &Arc::default())).change_visibility(false).build().await.unwrap();
    let report =
        function.handle_sqs(sqs_event(&["hello", "hello"]), &context(Some(Duration::from_millis(300)))).await;
    assert_eq!(serde_json::to_value(report.batch_response()).unwrap(), failures(&["m-0", "m-1"]));
    assert!(probe.called().is_empty());
}

#[tokio::test]
async fn a_visibility_change_that_fails_changes_nothing_else() {
    let probe = Probe::default();
    let function = LambdaBuilder::from(daemon(&probe, &Arc::default()))
        .sqs_client(support::unreachable_sqs())
        .build()
        .await
        .unwrap();
    let event = support::fixture("sqs-mixed.json");
    let answer = function
        .handle(LambdaEvent::new(event.clone(), context(Some(Duration::from_secs(30)))))
        .await
        .unwrap();
    assert_eq!(answer, failures(&["invalid", "malformed", "retry", "panic"]));
    let report = function
        .handle_sqs(serde_json::from_value(event).unwrap(), &context(Some(Duration::from_secs(30))))
        .await;
    let asked: BTreeMap<&str, Duration> = report
        .records
        .iter()
        .filter_map(|r| match &r.visibility {
            Visibility::Failed { delay, error } => {
                assert!(!error.is_empty());
                Some((r.message_id.as_str(), *delay))
            }
            Visibility::Unchanged => None,
            other => panic!("{}: {other:?}", r.message_id),
        })
        .collect();
    let expected: BTreeMap<&str, Duration> = [
        ("invalid", Duration::ZERO),
        ("malformed", Duration::ZERO),
        ("panic", Duration::ZERO),
        ("retry", Duration::from_secs(2)),
    ]
    .into();
    assert_eq!(asked, expected);
}

/// A queue on the emulator holding `bodies`, all received (so invisible for a minute): the
/// queue's URL and ARN, and the records an event source mapping would hand the function.
async fn received_batch(
    sqs: &aws_sdk_sqs::Client,
    bodies: &[(&str, String)],
) -> (String, String, Vec<Value>) {
    use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
    let name = support::unique_name("lambda-visibility");
    let url = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = format!("arn:aws:sqs:{}:{}:{name}", support::REGION, support::ACCOUNT);
    let mut ids = BTreeMap::new();
    for (key, body) in bodies {
        let sent = sqs.send_message().queue_url(&url).message_body(body).send().await.unwrap();
        ids.insert(sent.message_id.unwrap(), *key);
    }
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while records.len() < bodies.len() && Instant::now() < deadline {
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        for message in received.messages() {
            let attributes: BTreeMap<String, String> = message
                .attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
                .collect();
            records.push(json!({
                "messageId": ids[message.message_id().unwrap()],
                "receiptHandle": message.receipt_handle().unwrap(),
                "body": message.body().unwrap(),
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": message.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": support::REGION
            }));
        }
    }
    assert_eq!(records.len(), bodies.len(), "the emulator handed out every message");
    (url, arn, records)
}

/// The keys of the bodies a receive (waiting up to `wait`) brings back.
async fn visible(sqs: &aws_sdk_sqs::Client, url: &str, wait: i32) -> Vec<String> {
    let received = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait)
        .send()
        .await
        .unwrap();
    let mut messages: Vec<String> = received
        .messages()
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(m.body().unwrap())
                .map(|b| b["message"].to_string())
                .unwrap_or_else(|_| m.body().unwrap().to_owned())
        })
        .collect();
    messages.sort();
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visibility_changes_reach_the_queue_and_a_failed_one_is_only_logged() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let invalid = json!({"mediaType": SIMPLE, "message": "invalid"}).to_string();
    let (url, arn, mut records) = received_batch(
        &sqs,
        &[("good", simple_body("good")), ("retry", simple_body("retry")), ("invalid", invalid.clone())],
    )
    .await;
    records.sort_by_key(|r| r["messageId"].as_str().unwrap().to_owned());
    // A receipt the queue never gave, and a queue that does not exist: both changes fail.
    let mut stale = records[0].clone();
    stale["messageId"] = json!("stale");
    stale["receiptHandle"] = json!("AQEBstale");
    stale["body"] = json!(invalid);
    let mut elsewhere = stale.clone();
    elsewhere["messageId"] = json!("no-queue");
    elsewhere["eventSourceARN"] = json!(format!("{arn}-missing"));
    records.extend([stale, elsewhere]);
    let event = json!({ "Records": records });

    let function = LambdaBuilder::from(daemon(&Probe::default(), &Arc::default()))
        .sqs_client(sqs.clone())
        .build()
        .await
        .unwrap();
    let report = function
        .handle_sqs(serde_json::from_value(event).unwrap(), &context(Some(Duration::from_secs(60))))
        .await;
    // records sorted by key: good, invalid, retry; then stale, no-queue.
    assert_eq!(
        serde_json::to_value(report.batch_response()).unwrap(),
        failures(&["invalid", "retry", "stale", "no-queue"])
    );
    let visibility: BTreeMap<&str, &Visibility> =
        report.records.iter().map(|r| (r.message_id.as_str(), &r.visibility)).collect();
    assert_eq!(visibility["good"], &Visibility::Unchanged);
    assert_eq!(visibility["invalid"], &Visibility::Changed(Duration::ZERO));
    assert_eq!(visibility["retry"], &Visibility::Changed(Duration::from_secs(2)));
    assert!(matches!(visibility["stale"], Visibility::Failed { .. }), "{:?}", visibility["stale"]);
    assert!(matches!(visibility["no-queue"], Visibility::Failed { .. }), "{:?}", visibility["no-queue"]);

    // In the queue: the FAILED message (backoff 0) is visible at once, the RETRIED one after
    // its 2 s, the one that succeeded (which Lambda would delete) not within its minute.
    assert_eq!(visible(&sqs, &url, 0).await, ["\"invalid\""]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(visible(&sqs, &url, 1).await, ["\"retry\""]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_handlers_publish_goes_to_sns_after_they_succeed() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let topic = sns
        .create_topic()
        .name(support::unique_name("lambda-published"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let queue_name = support::unique_name("lambda-published");
    let queue = sqs.create_queue().queue_name(&queue_name).send().await.unwrap().queue_url.unwrap();
    let queue_arn = format!("arn:aws:sqs:{}:{}:{queue_name}", support::REGION, support::ACCOUNT);
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();

    let function = LambdaBuilder::from(daemon(&Probe::default(), &Arc::default()))
        .aws_config(config)
        .topics(pubsub_core::TopicMap::new().default_topic(&topic))
        .change_visibility(false)
        .build()
        .await
        .unwrap();
    let mut event = serde_json::to_value(sqs_event(&["publish", "publish then fail"])).unwrap();
    event["Records"][0]["body"] = json!(json!({
        "mediaType": SIMPLE, "message": "publish", "timestamp": 1.5, "opaqueData": {"x-request-id": "req-7"}
    })
    .to_string());
    let report = function.handle_sqs(serde_json::from_value(event).unwrap(), &context(None)).await;
    assert_eq!(serde_json::to_value(report.batch_response()).unwrap(), failures(&["m-1"]));
    let RecordOutcome::Handled(handled) = &report.records[0].outcome else { panic!("{report:?}") };
    assert_eq!(handled.published.len(), 1, "{handled:?}");

    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let bodies: Vec<&str> = received.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies.len(), 1, "only the message of the handler that succeeded: {bodies:?}");
    let published = pubsub_core::decode::<SimpleMessage>(bodies[0]).unwrap();
    assert_eq!(published.message.message, "published by m-0");
    assert_eq!(published.opaque_data.request_id(), Some("req-7"));
}

#[tokio::test]
async fn a_panic_outside_the_handler_fails_its_record_only() {
    // The daemon builder's hook panics on one record: its task dies after the handler ran.
    let daemon = DaemonBuilder::new("lambda-test")
        .handler::<handle_simple>()
        .collaborator(Probe::default())
        .on_outcome(|handled: &HandledMessage| assert_ne!(handled.message_id, "m-1", "the hook refuses m-1"));
    let function = LambdaBuilder::from(daemon).change_visibility(false).build().await.unwrap();
    let event = serde_json::to_value(sqs_event(&["hello", "hello", "hello"])).unwrap();
    let answer = function.handle(LambdaEvent::new(event.clone(), context(None))).await.unwrap();
    assert_eq!(answer, failures(&["m-1"]));
    let report = function.handle_sqs(serde_json::from_value(event).unwrap(), &context(None)).await;
    assert!(
        matches!(&report.records[1].outcome, RecordOutcome::Interrupted { reason } if reason.contains("the hook refuses m-1")),
        "{:?}",
        report.records[1]
    );
    assert_eq!(report.count(Verdict::Succeeded), 2);
}
