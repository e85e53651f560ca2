//! Trace context between us and OpenTelemetry's own Python instrumentation, through a real
//! SNS/SQS server (moto), under raw and enveloped delivery. The Python side is microcosm-pubsub
//! 3.0.0 with `opentelemetry-instrumentation-botocore` (and `-boto3sqs` to consume), pinned in
//! scripts/requirements-interop.txt and run from scripts/interop/; each Python process reports
//! the spans of its own in-memory exporter, and the test compares ids, not just arrivals:
//!
//! - Python to us: microcosm-pubsub publishes inside a span of its own; our daemon's
//!   `process <queue>` span is in that trace, the child of the span botocore's instrumentation
//!   made for the SNS `Publish` call (whose context it wrote into `traceparent`), and links to it.
//! - Us to Python: what our `Producer` publishes inside a span, microcosm-pubsub's consumer
//!   sees in that trace. Under raw delivery OpenTelemetry's boto3sqs instrumentation reads our
//!   `traceparent` and links its `<queue> process` span to our span (it links, it never
//!   parents); under enveloped delivery, where no OpenTelemetry package looks inside the SNS
//!   notification, OpenTelemetry's W3C propagator extracts our span from the notification's
//!   `MessageAttributes`, and the handler's span is its child.
//! - Us straight to a queue: what our `Producer` sends to an SQS queue (`SendMessageBatch`, no
//!   topic) microcosm-pubsub's consumer reads as it reads a raw delivery, trace context included.
//!
//! Needs the emulator (`AWS_ENDPOINT_URL`) and the Python set (`PUBSUB_INTEROP_PYTHON`, which
//! scripts/interop.sh exports, else `.venv-interop/` at the repository root): without either the
//! tests skip, saying so, except under CI, where they fail. `./scripts/test.sh` provides both.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{global, Context, Value};
use pubsub_aws::provision::{Provisioner, QueueSpec, SubscriptionSpec};
use pubsub_aws::{AwsPublisher, SnsPublisher, SqsSubscriber};
use pubsub_core::producer::PublishOptions;
use pubsub_core::{handler, DaemonBuilder, HandlerError, Producer, PubSubMessage, TopicMap, Verdict};
use serde::{Deserialize, Serialize};
use validator::Validate;

/// microcosm-pubsub's convention for a created resource: a URI (its `URIMessageSchema`, which
/// it picks for `created` media types by itself).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.globality.pubsub._.created.interop_job"]
struct InteropJobCreated {
    uri: String,
}

/// The URIs the daemon's handler was given.
static HANDLED: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[handler]
async fn on_interop_job(job: InteropJobCreated) -> Result<(), HandlerError> {
    HANDLED.lock().unwrap().push(job.uri);
    Ok(())
}

/// The tests of this file run one at a time: one daemon or Python peer on the emulator at once.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a test of this file runs with; it holds [`SERIAL`] while it lives.
struct Env {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    config: aws_config::SdkConfig,
    provisioner: Provisioner,
    python: PathBuf,
}

/// The emulator and the Python peers, once the other test of this file is done with them.
async fn env() -> Option<Env> {
    support::require_emulator()?;
    let python = support::interop_python(PEER_IMPORTS, "the interop peers' packages (microcosm-pubsub, OpenTelemetry's botocore and boto3sqs instrumentations, its SDK)")?;
    support::span_exporter();
    let serial = SERIAL.lock().await;
    let config = support::sdk_config().await;
    Some(Env { _serial: serial, provisioner: Provisioner::new(&config), config, python })
}

/// What the peers import: a venv without them is no venv for these tests.
const PEER_IMPORTS: &str = "import microcosm_pubsub.consumer, microcosm_pubsub.producer, \
     opentelemetry.instrumentation.boto3sqs, opentelemetry.instrumentation.botocore, \
     opentelemetry.sdk.trace";

/// A span as a Python peer reports it (scripts/interop/peer.py): ids in lower-case hex.
#[derive(Debug, Deserialize)]
struct PySpan {
    name: String,
    kind: String,
    scope: Option<String>,
    trace_id: String,
    span_id: String,
    parent_span_id: Option<String>,
    parent_remote: bool,
    links: Vec<PyLink>,
    attributes: BTreeMap<String, String>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct PyLink {
    trace_id: String,
    span_id: String,
}

#[derive(Debug, Deserialize)]
struct Published {
    spans: Vec<PySpan>,
}

#[derive(Debug, Deserialize)]
struct Consumed {
    messages: Vec<PyMessage>,
    spans: Vec<PySpan>,
}

#[derive(Debug, Deserialize)]
struct PyMessage {
    media_type: String,
    uri: Option<String>,
}

/// The one span of `spans` that `matches`, or a panic that shows them all.
fn only<'a>(spans: &'a [PySpan], what: &str, matches: impl Fn(&PySpan) -> bool) -> &'a PySpan {
    let found: Vec<&PySpan> = spans.iter().filter(|span| matches(span)).collect();
    match found.as_slice() {
        [span] => span,
        _ => panic!("{} spans are {what}, not one, among {spans:#?}", found.len()),
    }
}

/// Runs `scripts/interop/{script}` with `args` against the emulator, to its end, and parses what
/// it prints.
async fn peer<T: serde::de::DeserializeOwned>(env: &Env, script: &str, args: &[&str]) -> T {
    let mut command = Command::new(&env.python);
    command.arg(support::repository_root().join("scripts/interop").join(script)).args(args);
    // Only what is set here: no profile, no per-service endpoint, no other OpenTelemetry
    // set-up (OTEL_PROPAGATORS would change what is written and read).
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("AWS_") || name.starts_with("OTEL_") || name.starts_with("PYTHON") {
            command.env_remove(&*name);
        }
    }
    command
        .env("AWS_ENDPOINT_URL", support::endpoint().expect("the emulator"))
        .env("AWS_DEFAULT_REGION", support::REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output()).await.unwrap().unwrap();
    let stderr = support::text(&output.stderr);
    assert!(output.status.success(), "{script} {args:?}: {}\n{stderr}", output.status);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("{script} printed no JSON ({e}): {}\n{stderr}", support::text(&output.stdout))
    })
}

impl Env {
    /// A topic and a queue subscribed to it, named after `prefix`.
    async fn wire(&self, prefix: &str, raw_delivery: bool) -> (String, String) {
        let topic = self.provisioner.topic(&support::unique_name(prefix)).await.unwrap();
        let queue =
            self.provisioner.queue(&support::unique_name(prefix), &QueueSpec::default()).await.unwrap();
        let subscription = SubscriptionSpec { raw_delivery, filter: None };
        self.provisioner.subscribe(&topic, &queue, &subscription).await.unwrap();
        (topic, queue)
    }
}

fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn microcosm_pubsub_under_botocore_instrumentation_and_our_daemon_make_one_trace() {
    let Some(env) = env().await else { return };
    for raw_delivery in [true, false] {
        let (topic, queue) = env.wire("interop-in", raw_delivery).await;
        let uri = format!("https://interop.invalid/jobs/{}", support::unique_name("in"));
        let published: Published = peer(
            &env,
            "publish.py",
            &["--topic-arn", &topic, "--media-type", InteropJobCreated::MEDIA_TYPE, "--uri", &uri],
        )
        .await;
        // The Python side's trace: its own span, and inside it botocore's span of the Publish
        // call, whose context the instrumentation wrote into the message.
        let own = only(&published.spans, "the script's own", |span| span.name == "interop publish");
        let publish = only(&published.spans, "botocore's Publish", |span| {
            span.scope.as_deref() == Some("opentelemetry.instrumentation.botocore.sns")
                && span.attributes.get("rpc.method").map(String::as_str) == Some("Publish")
        });
        assert_eq!(publish.kind, "PRODUCER");
        assert_eq!((&publish.trace_id, publish.parent_span_id.as_ref()), (&own.trace_id, Some(&own.span_id)));

        HANDLED.lock().unwrap().clear();
        let report = DaemonBuilder::new("interop")
            .handler::<on_interop_job>()
            .wait_time(Duration::from_secs(1))
            .build(SqsSubscriber::new(&env.config, &queue).await.unwrap())
            .unwrap()
            .run_until_idle()
            .await;
        assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
        assert_eq!(*HANDLED.lock().unwrap(), [uri.as_str()], "microcosm-pubsub's message, decoded");

        let spans = support::span_exporter().get_finished_spans().unwrap();
        let process = spans
            .iter()
            .find(|span| {
                span.span_kind == SpanKind::Consumer
                    && format!("{:032x}", span.span_context.trace_id()) == publish.trace_id
            })
            .unwrap_or_else(|| {
                panic!("no process span in the Python trace (raw delivery: {raw_delivery}): {spans:#?}")
            });
        assert_eq!(process.name, format!("process {}", queue_name(&queue)));
        assert_eq!(
            format!("{:016x}", process.parent_span_id),
            publish.span_id,
            "the child of botocore's Publish span (raw delivery: {raw_delivery})"
        );
        let links: Vec<PyLink> = process
            .links
            .iter()
            .map(|link| PyLink {
                trace_id: format!("{:032x}", link.span_context.trace_id()),
                span_id: format!("{:016x}", link.span_context.span_id()),
            })
            .collect();
        assert_eq!(links, [PyLink { trace_id: publish.trace_id.clone(), span_id: publish.span_id.clone() }]);
        let result = process.attributes.iter().find(|kv| kv.key.as_str() == "pubsub.result");
        assert_eq!(result.map(|kv| &kv.value), Some(&Value::from("SUCCEEDED")));
    }
}

#[tokio::test]
async fn what_our_producer_publishes_a_python_consumer_sees_in_the_producers_trace() {
    let Some(env) = env().await else { return };
    for raw_delivery in [true, false] {
        let (topic, queue) = env.wire("interop-out", raw_delivery).await;
        let uri = format!("https://interop.invalid/jobs/{}", support::unique_name("out"));
        let producer = Producer::new(SnsPublisher::new(&env.config), TopicMap::new().default_topic(&topic));
        let span = global::tracer_provider().tracer("interop").start("rust publish");
        let ours = span.span_context().clone();
        let context = Context::current_with_span(span);
        {
            let _attached = context.clone().attach();
            producer.produce(&InteropJobCreated { uri: uri.clone() }).await.unwrap();
        }
        context.span().end();
        let (trace_id, span_id) = (format!("{:032x}", ours.trace_id()), format!("{:016x}", ours.span_id()));

        let consumed: Consumed =
            peer(&env, "consume.py", &["--queue-url", &queue, "--count", "1", "--timeout", "20"]).await;
        let [message] = consumed.messages.as_slice() else {
            panic!("one message, not {:?} (raw delivery: {raw_delivery})", consumed.messages)
        };
        assert_eq!(
            (message.media_type.as_str(), message.uri.as_deref()),
            (InteropJobCreated::MEDIA_TYPE, Some(&*uri))
        );

        let spans = &consumed.spans;
        let handle = only(spans, "the handler's", |span| span.scope.as_deref() == Some("interop.consumer"));
        let process = only(spans, "boto3sqs's process", |span| {
            span.scope.as_deref() == Some("opentelemetry.instrumentation.boto3sqs")
                && span.name == format!("{} process", queue_name(&queue))
        });
        if raw_delivery {
            // OpenTelemetry's own SQS instrumentation read our traceparent: its span of the
            // message links to our span; the handler ran inside it.
            assert_eq!(process.links, [PyLink { trace_id: trace_id.clone(), span_id: span_id.clone() }]);
            assert_eq!(handle.parent_span_id.as_ref(), Some(&process.span_id));
        } else {
            // boto3sqs reads SQS message attributes only: our context is inside the SNS
            // notification, where OpenTelemetry's W3C propagator found it for the handler.
            assert!(process.links.is_empty(), "{process:#?}");
            assert_eq!(
                (&handle.trace_id, handle.parent_span_id.as_ref(), handle.parent_remote),
                (&trace_id, Some(&span_id), true),
                "{handle:#?}"
            );
        }
    }
}

#[tokio::test]
async fn what_our_producer_sends_straight_to_a_queue_a_python_consumer_reads_as_raw_delivery() {
    let Some(env) = env().await else { return };
    let queue =
        env.provisioner.queue(&support::unique_name("interop-direct"), &QueueSpec::default()).await.unwrap();
    let uri = format!("https://interop.invalid/jobs/{}", support::unique_name("direct"));
    // SendMessageBatch, with typed attributes besides media_type and the trace context.
    let producer = Producer::new(AwsPublisher::new(&env.config), TopicMap::new().default_topic(&queue));
    let options = PublishOptions::new().attribute("team", "billing").attribute("weight", 3);
    let span = global::tracer_provider().tracer("interop").start("rust send");
    let ours = span.span_context().clone();
    let context = Context::current_with_span(span);
    {
        let _attached = context.clone().attach();
        producer.produce_with_options(&InteropJobCreated { uri: uri.clone() }, &options).await.unwrap();
    }
    context.span().end();

    let consumed: Consumed =
        peer(&env, "consume.py", &["--queue-url", &queue, "--count", "1", "--timeout", "20"]).await;
    let [message] = consumed.messages.as_slice() else { panic!("one message, not {:?}", consumed.messages) };
    assert_eq!(
        (message.media_type.as_str(), message.uri.as_deref()),
        (InteropJobCreated::MEDIA_TYPE, Some(&*uri))
    );
    // Read as a raw delivery is: OpenTelemetry's SQS instrumentation found our traceparent in
    // the SQS message attributes.
    let process = only(&consumed.spans, "boto3sqs's process", |span| {
        span.scope.as_deref() == Some("opentelemetry.instrumentation.boto3sqs")
            && span.name == format!("{} process", queue_name(&queue))
    });
    assert_eq!(
        process.links,
        [PyLink {
            trace_id: format!("{:032x}", ours.trace_id()),
            span_id: format!("{:016x}", ours.span_id())
        }]
    );
}
