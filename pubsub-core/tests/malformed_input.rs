//! Malformed input through a real daemon on the embedded broker: every kind of bad body is
//! sent in one run, between good messages. Each bad message must get its own result and a
//! clear reason (as the daemon's outcome hook reports it), its good batch-mates must be handled
//! exactly once, the daemon must finish, and nothing may be lost: a FAILED message is retried
//! until the queue's redrive policy moves it to the dead-letter queue, an IGNORED one is
//! deleted with its reason logged.
//!
//! Two kinds of input cannot travel through the broker as they are:
//! - bodies over the broker's limit of 256 KiB (`MAX_PAYLOAD_BYTES`, SNS's): the broker
//!   refuses to send them, so the 1 MiB bodies are swapped in on receive by [`inflating`], a
//!   subscriber over the broker's that stands for a transport carrying more; the broker still
//!   does the visibility, receive counts and redrive (the dead-letter queue holds the
//!   placeholder);
//! - invalid UTF-8: SQS takes only Unicode text in a body, and `ReceivedMessage::body` is a
//!   `String`, so no invalid byte can reach the decoder. Its closest JSON relative, an escaped
//!   lone surrogate (`"\ud800"`, which is no character), is sent instead.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::memory::{MemorySubscriber, QueueOptions, Redrive, SubscriptionOptions};
use pubsub_core::outcome::HandledMessage;
use pubsub_core::transport::TransportError;
use pubsub_core::{
    backoff::BackoffPolicy, handler, DaemonBuilder, MemoryBroker, Producer, PubSubMessage, TopicMap,
    UntypedMessage, Verdict,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::{Format, Logs, Tap};
use validator::Validate;

const JOB: &str = "application/vnd.acme.pubsub.job";
const WIDGET_CREATED: &str = "application/vnd.acme.pubsub._.created.widget";
const MAX_RECEIVE_COUNT: u32 = 3;
const MIB: usize = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.job"]
struct Job {
    #[validate(range(min = 0))]
    id: i64,
    kind: String,
}

/// Calls per job id, and the uris of the created widgets.
#[derive(Default)]
struct Seen {
    jobs: Mutex<HashMap<i64, usize>>,
    widgets: Mutex<Vec<String>>,
}

impl Seen {
    fn calls(&self, id: i64) -> usize {
        self.jobs.lock().unwrap().get(&id).copied().unwrap_or(0)
    }
}

#[handler]
async fn work(job: Job, seen: &Arc<Seen>) {
    *seen.jobs.lock().unwrap().entry(job.id).or_default() += 1;
}

#[handler(media_type = "application/vnd.acme.pubsub._.created.*")]
async fn created(message: UntypedMessage, seen: &Arc<Seen>) {
    let uri = message.content["uri"].as_str().expect("the codec checked `uri`").to_owned();
    seen.widgets.lock().unwrap().push(uri);
}

/// The broker's subscriber, with bodies too large for the broker swapped in on receive: a
/// message whose body is a key of `bodies` arrives with the value instead.
fn inflating(inner: MemorySubscriber, bodies: HashMap<String, String>) -> Tap {
    Tap::new(inner, move |message| {
        if let Some(body) = bodies.get(&message.body) {
            message.body = body.clone();
        }
    })
}

/// Every outcome the daemon reports through its hook, in order.
#[derive(Clone, Default)]
struct Outcomes(Arc<Mutex<Vec<HandledMessage>>>);

impl Outcomes {
    fn hook(&self) -> impl Fn(&HandledMessage) + Send + Sync + 'static {
        let outcomes = self.0.clone();
        move |handled| outcomes.lock().unwrap().push(handled.clone())
    }
}

/// The number of "message handled" lines at `level`.
fn handled_lines_at(logs: &Logs, level: &str) -> usize {
    logs.info()
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line["fields"]["message"] == "message handled" && line["level"] == level)
        .count()
}

/// What a bad message must come to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// FAILED on each of its receives, then dead-lettered; the reason has these words.
    Failed(&'static [&'static str]),
    /// IGNORED once and deleted; the reason has these words.
    Ignored(&'static [&'static str]),
    /// Odd but valid: SUCCEEDED once, as the job with this id.
    Succeeded(i64),
}

struct Case {
    name: &'static str,
    body: String,
    expect: Expect,
}

fn case(name: &'static str, body: impl Into<String>, expect: Expect) -> Case {
    Case { name, body: body.into(), expect }
}

/// An SNS notification around `message`, as SNS delivers to SQS without raw delivery.
fn notification(message: Value) -> String {
    json!({
        "Type": "Notification",
        "MessageId": "6a1e5b7c-0000-4000-8000-000000000001",
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:jobs",
        "Message": message,
        "Timestamp": "2026-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
    })
    .to_string()
}

fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Every kind of bad body, with what it must come to.
fn bad_cases() -> Vec<Case> {
    use Expect::{Failed, Ignored, Succeeded};
    let huge = |len: usize| "a".repeat(len);
    vec![
        case("not JSON", "hello, not json", Failed(&["message body is not valid JSON", "expected value"])),
        case(
            "cut-off JSON",
            format!(r#"{{"mediaType": "{JOB}", "id": 1"#),
            Failed(&["not valid JSON", "EOF"]),
        ),
        case("empty body", "", Failed(&["message body is not valid JSON", "EOF"])),
        case("array", "[1, 2, 3]", Failed(&["message body must be a JSON object", "it is an array"])),
        case("string", r#""hello""#, Failed(&["message body must be a JSON object", "it is a string"])),
        case("number", "42", Failed(&["message body must be a JSON object", "it is a number"])),
        case("null", "null", Failed(&["message body must be a JSON object", "it is null"])),
        case("boolean", "true", Failed(&["message body must be a JSON object", "it is a boolean"])),
        case("no mediaType", r#"{"id": 1, "kind": "ok"}"#, Failed(&["no `mediaType` key"])),
        case(
            "numeric mediaType",
            r#"{"mediaType": 42}"#,
            Failed(&["`mediaType` must be a string", "a number"]),
        ),
        case(
            "object mediaType",
            r#"{"mediaType": {"a": 1}}"#,
            Failed(&["`mediaType` must be a string", "an object"]),
        ),
        case(
            "invalid mediaType",
            r#"{"mediaType": "not a media type"}"#,
            Ignored(&["no handler for this media type", "not a valid one", "contains whitespace"]),
        ),
        case(
            "200 KiB mediaType",
            json!({ "mediaType": format!("application/{}", huge(200 * 1024)) }).to_string(),
            Ignored(&["no handler for this media type", "not a valid one", "204800 characters long"]),
        ),
        case(
            "wrong field type",
            format!(r#"{{"mediaType": "{JOB}", "id": "three", "kind": "ok"}}"#),
            Failed(&["does not fit its schema", r#"invalid type: string "three", expected i64"#]),
        ),
        case(
            "missing field",
            format!(r#"{{"mediaType": "{JOB}", "kind": "ok"}}"#),
            Failed(&["does not fit its schema", "missing field `id`"]),
        ),
        case(
            "duplicate field",
            format!(r#"{{"mediaType": "{JOB}", "id": 1, "id": 2, "kind": "ok"}}"#),
            Failed(&["does not fit its schema", "duplicate field `id`"]),
        ),
        case(
            "failed validation",
            format!(r#"{{"mediaType": "{JOB}", "id": -1, "kind": "ok"}}"#),
            Failed(&["failed validation", "`id`", "at least 0", "(got -1)"]),
        ),
        case(
            "opaqueData not an object",
            format!(r#"{{"mediaType": "{JOB}", "opaqueData": [1], "id": 1, "kind": "ok"}}"#),
            Failed(&["`opaqueData` must be an object of strings"]),
        ),
        case(
            "created without uri",
            json!({ "mediaType": WIDGET_CREATED, "name": "w" }).to_string(),
            Failed(&["failed validation", "`uri`"]),
        ),
        case(
            "notification, Message not JSON",
            notification(json!("not json")),
            Failed(&["SNS notification's `Message` is not valid JSON"]),
        ),
        case(
            "notification, Message an array",
            notification(json!("[1, 2]")),
            Failed(&["SNS notification's `Message` must be a JSON object", "it is an array"]),
        ),
        case(
            "notification, Message not a string",
            notification(json!({ "mediaType": JOB, "id": 1, "kind": "ok" })),
            Failed(&["looks like an SNS notification", "`Message` is an object, not a string"]),
        ),
        case(
            "notification, no mediaType",
            notification(json!(json!({ "id": 1 }).to_string())),
            Failed(&["no `mediaType` key"]),
        ),
        case(
            "250 KiB string in an i64 field",
            json!({ "mediaType": JOB, "id": huge(250 * 1024), "kind": "ok" }).to_string(),
            Failed(&[
                "does not fit its schema",
                r#"invalid type: string "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…" (256000 bytes), expected i64"#,
            ]),
        ),
        case(
            "100k nested arrays as the body",
            nested_arrays(100_000),
            Failed(&["message body must be a JSON object", "it is an array"]),
        ),
        case(
            "100k nested arrays in a typed field",
            format!(r#"{{"mediaType": "{JOB}", "id": 1, "kind": {}}}"#, nested_arrays(100_000)),
            Failed(&["does not fit its schema", "invalid type: sequence, expected a string"]),
        ),
        // serde_json skips a value nobody reads without recursing, so depth costs no stack
        // there and is no error: unknown fields are ignored, however deep.
        case(
            "100k nested arrays in an unknown field",
            format!(
                r#"{{"mediaType": "{JOB}", "opaqueData": {{}}, "deep": {}, "id": 2001, "kind": "ok"}}"#,
                nested_arrays(100_000)
            ),
            Succeeded(2001),
        ),
        case(
            "100k nested arrays in an unknown field before mediaType",
            format!(
                r#"{{"deep": {}, "mediaType": "{JOB}", "id": 2002, "kind": "ok"}}"#,
                nested_arrays(100_000)
            ),
            Succeeded(2002),
        ),
        case(
            "100k nested arrays in an untyped message",
            format!(r#"{{"mediaType": "{WIDGET_CREATED}", "uri": "u", "deep": {}}}"#, nested_arrays(100_000)),
            Failed(&["is nested more than 128 levels deep"]),
        ),
        case(
            "lone surrogate (for invalid UTF-8)",
            format!(r#"{{"mediaType": "{JOB}", "opaqueData": {{}}, "id": 1, "kind": "\ud800"}}"#),
            Failed(&["message body is not valid JSON", "hex escape"]),
        ),
        case(
            "unknown media type",
            r#"{"mediaType": "application/vnd.acme.pubsub.unknown", "id": 1}"#,
            Ignored(&["no handler for this media type"]),
        ),
        case(
            "notification of an unknown media type",
            notification(json!(json!({ "mediaType": "application/vnd.acme.pubsub.unknown" }).to_string())),
            Ignored(&["no handler for this media type"]),
        ),
    ]
}

/// Bad bodies too large for the broker, swapped in on receive.
fn inflated_cases() -> Vec<Case> {
    let huge = "a".repeat(MIB);
    vec![
        case(
            "1 MiB string in an i64 field",
            json!({ "mediaType": JOB, "id": huge, "kind": "ok" }).to_string(),
            Expect::Failed(&[
                "does not fit its schema",
                r#"invalid type: string "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…" (1048576 bytes), expected i64"#,
            ]),
        ),
        case(
            "100k nested objects in an untyped message",
            format!(
                r#"{{"mediaType": "{WIDGET_CREATED}", "uri": "u", "deep": {}1{}}}"#,
                r#"{"a":"#.repeat(100_000),
                "}".repeat(100_000)
            ),
            Expect::Failed(&["message body is nested more than 128 levels deep"]),
        ),
    ]
}

#[tokio::test]
async fn every_malformed_message_gets_its_own_result_and_nothing_is_lost() {
    let (logs, _capturing) = Logs::capture(Format::Json);
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("jobs");
    broker.create_queue(
        "inbox",
        QueueOptions {
            redrive: Some(Redrive::new("inbox-dlq", MAX_RECEIVE_COUNT)),
            ..QueueOptions::default()
        },
    );
    broker.subscribe(&topic, "inbox", SubscriptionOptions::default()).unwrap();
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));

    // Over the broker's limit: refused.
    let too_big = json!({ "mediaType": JOB, "id": 1000, "kind": "a".repeat(MIB) }).to_string();
    assert!(matches!(broker.send("inbox", too_big.clone()).await, Err(TransportError::Invalid(_))));

    // Good and bad, interleaved, so every receive of ten mixes them.
    let mut bodies = HashMap::new();
    let mut cases: Vec<(String, Case)> = Vec::new();
    let mut good = 0;
    let bad =
        bad_cases().into_iter().map(|c| (false, c)).chain(inflated_cases().into_iter().map(|c| (true, c)));
    for (inflated, case) in bad {
        good += 1;
        producer.produce(&Job { id: good, kind: "ok".into() }).await.unwrap();
        let sent = if inflated {
            let placeholder = format!("placeholder of {}", case.name);
            bodies.insert(placeholder.clone(), case.body.clone());
            placeholder
        } else {
            case.body.clone()
        };
        let id = broker.send("inbox", sent.clone()).await.unwrap();
        cases.push((id, Case { body: sent, ..case }));
    }
    // Good messages of every path: raw, 1 MiB of the right type, untyped.
    good += 1;
    broker.send("inbox", json!({ "mediaType": JOB, "id": good, "kind": "raw" }).to_string()).await.unwrap();
    bodies.insert("placeholder of a good 1 MiB job".to_owned(), too_big);
    broker.send("inbox", "placeholder of a good 1 MiB job").await.unwrap();
    broker.send("inbox", json!({ "mediaType": WIDGET_CREATED, "uri": "w-1" }).to_string()).await.unwrap();

    let seen = Arc::new(Seen::default());
    let outcomes = Outcomes::default();
    let daemon = DaemonBuilder::new("inbox")
        .handler::<work>()
        .handler::<created>()
        .collaborator(seen.clone())
        .on_outcome(outcomes.hook())
        .wait_time(Duration::from_millis(50))
        .backoff(BackoffPolicy::Fixed(Duration::ZERO))
        .build(inflating(broker.subscriber("inbox").unwrap(), bodies))
        .unwrap();
    let report = tokio::time::timeout(Duration::from_secs(120), daemon.run_until_idle())
        .await
        .expect("the daemon finishes");

    // Each bad one: its result on each receive, with its reason.
    let handled = outcomes.0.lock().unwrap().clone();
    let mut by_id: HashMap<&str, Vec<&HandledMessage>> = HashMap::new();
    for line in &handled {
        by_id.entry(&line.message_id).or_default().push(line);
    }
    let mut failing = Vec::new();
    let mut ignored = 0;
    let mut odd = Vec::new();
    let mut wrong = Vec::new();
    for (id, case) in &cases {
        let lines = by_id.get(id.as_str()).cloned().unwrap_or_default();
        let (result, words, receives) = match case.expect {
            Expect::Failed(words) => (Verdict::Failed, words, MAX_RECEIVE_COUNT),
            Expect::Ignored(words) => (Verdict::Ignored, words, 1),
            Expect::Succeeded(_) => (Verdict::Succeeded, &[][..], 1),
        };
        let results: Vec<(Verdict, u32)> =
            lines.iter().map(|l| (l.outcome.verdict, l.receive_count)).collect();
        if results != (1..=receives).map(|n| (result, n)).collect::<Vec<_>>() {
            wrong.push(format!("{}: {results:?}, {:?}", case.name, lines.first().map(|l| &l.outcome.reason)));
        }
        for line in lines {
            let reason = line.outcome.reason.as_deref().unwrap_or_default();
            let missing: Vec<&str> = words.iter().copied().filter(|word| !reason.contains(word)).collect();
            let media_type = line.media_type.as_deref().unwrap_or_default();
            if !missing.is_empty() || reason.len() > 512 || media_type.len() > 128 {
                wrong.push(format!(
                    "{}: {missing:?} not in the reason `{reason}` ({} bytes), media type {media_type}",
                    case.name,
                    reason.len(),
                ));
            }
        }
        match case.expect {
            Expect::Failed(_) => failing.push(case.body.clone()),
            Expect::Ignored(_) => ignored += 1,
            Expect::Succeeded(id) => odd.push(id),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // The good ones, each exactly once.
    assert_eq!(seen.calls(1000), 1, "the 1 MiB job");
    for &id in (1..=good).collect::<Vec<_>>().iter().chain(&odd) {
        assert_eq!(seen.calls(id), 1, "job {id}");
    }
    assert_eq!(*seen.widgets.lock().unwrap(), ["w-1"]);

    // Nothing else happened, and nothing is lost: the queue is empty, the dead-letter queue
    // holds exactly the failing bodies, the ignored ones were deleted with their reason.
    let failed = failing.len() as u64;
    assert_eq!(report.count(Verdict::Failed), failed * MAX_RECEIVE_COUNT as u64, "{report}");
    assert_eq!(report.count(Verdict::Ignored), ignored, "{report}");
    let succeeded = good as u64 + 2 + odd.len() as u64;
    assert_eq!(report.count(Verdict::Succeeded), succeeded, "{report}");
    assert_eq!(report.total(), failed * MAX_RECEIVE_COUNT as u64 + ignored + succeeded, "{report}");
    assert_eq!(handled.len() as u64, report.total(), "one outcome per message handled");
    assert_eq!((report.abandoned, report.unsettled), (0, 0));
    assert_eq!(broker.queue_stats("inbox").total, 0, "{:?}", broker.queue_stats("inbox"));
    let mut dead = broker.messages("inbox-dlq");
    dead.sort();
    failing.sort();
    assert!(
        dead == failing,
        "the dead-letter queue holds {} messages, {} expected",
        dead.len(),
        failing.len()
    );

    // Its line is a warning for every message FAILED or IGNORED, info for the others.
    assert_eq!(handled_lines_at(&logs, "WARN") as u64, failed * MAX_RECEIVE_COUNT as u64 + ignored);
    assert_eq!(handled_lines_at(&logs, "INFO") as u64, succeeded);
    // No line the daemon wrote at info or above holds a body.
    let lines = logs.info();
    let longest = lines.iter().map(String::len).max().unwrap_or_default();
    assert!(longest < 2048, "a log line of {longest} bytes");
}

/// The default backoff (fixed, 5 s) holds a malformed message back between its receives, and
/// the redrive policy ends its retries (on paused time, so the clock moves only when told).
#[tokio::test(start_paused = true)]
async fn a_malformed_message_waits_out_the_backoff_until_it_is_dead_lettered() {
    let broker = MemoryBroker::new();
    broker.create_queue(
        "inbox",
        QueueOptions {
            redrive: Some(Redrive::new("inbox-dlq", MAX_RECEIVE_COUNT)),
            ..QueueOptions::default()
        },
    );
    let bad = ["not json", "[]", r#"{"mediaType": 1}"#];
    for body in bad {
        broker.send("inbox", body).await.unwrap();
    }
    let mut results = BTreeMap::new();
    for round in 1..=MAX_RECEIVE_COUNT + 1 {
        let report = DaemonBuilder::new("inbox")
            .handler::<work>()
            .collaborator(Arc::new(Seen::default()))
            .wait_time(Duration::from_millis(50))
            .build(broker.subscriber("inbox").unwrap())
            .unwrap()
            .run_until_idle()
            .await;
        results.insert(round, report.count(Verdict::Failed));
        let stats = broker.queue_stats("inbox");
        if round <= MAX_RECEIVE_COUNT {
            // Held back for the backoff: invisible, not dead-lettered.
            assert_eq!((stats.in_flight, stats.visible), (bad.len(), 0), "round {round}");
            // The run went on for a few 50 ms long polls after the nack.
            tokio::time::advance(Duration::from_millis(4500)).await;
            assert_eq!(broker.queue_stats("inbox").visible, 0, "round {round}: visible before 5 s");
            tokio::time::advance(Duration::from_millis(600)).await;
            assert_eq!(broker.queue_stats("inbox").visible, bad.len(), "round {round}: visible after 5 s");
        } else {
            assert_eq!(stats.total, 0);
        }
    }
    let expected: BTreeMap<u32, u64> = [(1, 3), (2, 3), (3, 3), (4, 0)].into();
    assert_eq!(results, expected);
    let mut dead = broker.messages("inbox-dlq");
    dead.sort();
    let mut bad = bad.map(str::to_owned).to_vec();
    bad.sort();
    assert_eq!(dead, bad);
}
