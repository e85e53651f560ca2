//! OpenTelemetry (feature `otel`) on the embedded broker: a span per processed message in the
//! trace the message carries, under raw and enveloped delivery; a span per publish request;
//! what its handler publishes continues that trace; a malformed context is ignored; failures and decode failures are error
//! spans; the metrics count what the daemon report counts. Spans and metrics go to the SDK's
//! in-memory exporters; each test finds its own by trace id or queue name.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, TraceId, Tracer, TracerProvider as _,
};
use opentelemetry::{global, Context, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use pubsub_core::memory::{QueueOptions, SubscriptionOptions};
use pubsub_core::transport::TRACEPARENT;
use pubsub_core::{
    backoff::BackoffPolicy, handler, DaemonBuilder, HandlerError, MemoryBroker, MessageContext, Producer,
    PubSubMessage, TopicMap, Verdict,
};
use serde::{Deserialize, Serialize};
use validator::Validate;

mod support;
use support::{Format, Logs, Tap};

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.job"]
struct Job {
    id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.job_done"]
struct JobDone {
    id: i64,
}

/// Job 13 fails; every other job reports itself done.
#[handler]
async fn reports_done(job: Job, context: &MessageContext) -> Result<(), HandlerError> {
    if job.id == 13 {
        return Err(HandlerError::failed("job 13 is unlucky"));
    }
    context.publish(&JobDone { id: job.id })?;
    Ok(())
}

/// The exporter of this test binary's global tracer provider.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        global::set_tracer_provider(provider);
        exporter
    })
}

fn spans_of(trace_id: TraceId) -> Vec<SpanData> {
    exporter()
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace_id)
        .collect()
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

struct Setup {
    broker: MemoryBroker,
    producer: Producer,
}

/// A `jobs` queue subscribed to the topic (raw or enveloped), and a raw `done` queue for what
/// handlers publish.
fn setup(raw_delivery: bool) -> Setup {
    exporter();
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("work");
    broker.create_queue("jobs", QueueOptions::default());
    broker.create_queue("done", QueueOptions::default());
    let jobs_only = pubsub_core::memory::FilterPolicy::media_types([Job::MEDIA_TYPE]);
    let done_only = pubsub_core::memory::FilterPolicy::media_types([JobDone::MEDIA_TYPE]);
    broker.subscribe(&topic, "jobs", SubscriptionOptions { raw_delivery, filter: Some(jobs_only) }).unwrap();
    broker
        .subscribe(&topic, "done", SubscriptionOptions { raw_delivery: true, filter: Some(done_only) })
        .unwrap();
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    Setup { broker, producer }
}

impl Setup {
    async fn drain(&self) -> pubsub_core::daemon::DaemonReport {
        DaemonBuilder::new("jobs")
            .handler::<reports_done>()
            .producer(self.producer.clone())
            .wait_time(Duration::from_millis(20))
            .backoff(BackoffPolicy::Fixed(Duration::from_secs(600)))
            .build(self.broker.subscriber("jobs").unwrap())
            .unwrap()
            .run_until_idle()
            .await
    }
}

#[tokio::test]
async fn a_trace_runs_from_the_publisher_through_the_handler_into_what_it_publishes() {
    let (logs, _capturing) = Logs::capture(Format::Json);
    for raw_delivery in [true, false] {
        let s = setup(raw_delivery);
        // The publisher's own span: the message carries it.
        let tracer = global::tracer_provider().tracer("publisher");
        let publish_span = tracer.start("publish job");
        let publisher = publish_span.span_context().clone();
        let context = Context::current_with_span(publish_span);
        {
            let _attached = context.clone().attach();
            s.producer.produce(&Job { id: 7 }).await.unwrap();
        }
        context.span().end();

        let report = s.drain().await;
        assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
        let spans = spans_of(publisher.trace_id());
        let process =
            spans.iter().find(|s| s.span_kind == SpanKind::Consumer).expect("a process span in the trace");
        assert_eq!(process.name, "process jobs");
        assert_eq!(process.parent_span_id, publisher.span_id(), "raw delivery: {raw_delivery}");
        assert!(process.parent_span_is_remote);
        assert!(
            process.links.links.iter().any(|link| link.span_context.trace_id() == publisher.trace_id()
                && link.span_context.span_id() == publisher.span_id()),
            "linked too"
        );
        assert_eq!(attribute(process, "messaging.system"), Some(&Value::from("aws_sqs")));
        assert_eq!(attribute(process, "messaging.destination.name"), Some(&Value::from("jobs")));
        assert_eq!(attribute(process, "messaging.operation.type"), Some(&Value::from("process")));
        assert_eq!(attribute(process, "pubsub.result"), Some(&Value::from("SUCCEEDED")));
        assert_eq!(attribute(process, "pubsub.media_type"), Some(&Value::from(Job::MEDIA_TYPE)));
        assert_eq!(attribute(process, "pubsub.handler"), Some(&Value::from("telemetry::reports_done")));
        assert_eq!(attribute(process, "pubsub.receive_count"), Some(&Value::I64(1)));
        assert!(matches!(attribute(process, "messaging.message.id"), Some(Value::String(_))));
        assert_eq!(process.status, Status::Unset);

        // A PRODUCER span for each publish request: the job's, under the publisher's span, and
        // the one that sent what the handler published, under the process span.
        let sends: Vec<&SpanData> = spans.iter().filter(|s| s.span_kind == SpanKind::Producer).collect();
        assert_eq!(sends.len(), 2, "{sends:#?}");
        assert!(sends.iter().all(|s| s.name == "send work"), "{sends:#?}");
        assert!(sends.iter().any(|s| s.parent_span_id == publisher.span_id()));
        let deferred = sends.iter().find(|s| s.parent_span_id == process.span_context.span_id()).unwrap();
        assert_eq!(attribute(deferred, "messaging.system"), Some(&Value::from("aws_sns")));
        assert_eq!(attribute(deferred, "messaging.operation.type"), Some(&Value::from("send")));
        assert!(matches!(attribute(deferred, "messaging.message.id"), Some(Value::String(_))));

        // What the handler published carries the process span as its parent.
        let done = s.broker.subscriber("done").unwrap();
        let received = pubsub_core::transport::Subscriber::receive(&done, 10, Duration::ZERO).await.unwrap();
        assert_eq!(received.len(), 1);
        let traceparent = received[0].attribute(TRACEPARENT).unwrap();
        let expected =
            format!("00-{:032x}-{:016x}-01", process.span_context.trace_id(), process.span_context.span_id());
        assert_eq!(traceparent, expected, "raw delivery: {raw_delivery}");

        // The message's log line names its trace and span.
        let ids = (
            format!(r#""trace_id":"{:032x}""#, process.span_context.trace_id()),
            format!(r#""span_id":"{:016x}""#, process.span_context.span_id()),
        );
        let lines = logs.info();
        let line = lines.iter().find(|line| line.contains("message handled") && line.contains(&ids.0));
        assert!(line.is_some_and(|line| line.contains(&ids.1)), "{lines:#?}");
    }
}

#[tokio::test]
async fn a_malformed_trace_context_is_ignored_and_the_message_handled() {
    let s = setup(true);
    let body = pubsub_core::encode(&Job { id: 8 }, &Default::default()).unwrap();
    let attributes = BTreeMap::from([(TRACEPARENT.to_owned(), "00-not-a-trace-01".to_owned())]);
    s.broker.send_with_attributes("jobs", body, attributes).await.unwrap();
    let report = s.drain().await;
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
    // Its span is the root of a trace of its own, which what it published continues.
    let done = s.broker.subscriber("done").unwrap();
    let received = pubsub_core::transport::Subscriber::receive(&done, 10, Duration::ZERO).await.unwrap();
    let traceparent = received[0].attribute(TRACEPARENT).unwrap();
    let trace_id = TraceId::from_hex(traceparent.split('-').nth(1).unwrap()).unwrap();
    let process: Vec<SpanData> =
        spans_of(trace_id).into_iter().filter(|s| s.span_kind == SpanKind::Consumer).collect();
    assert_eq!(process.len(), 1, "{process:?}");
    assert_eq!(process[0].parent_span_id, opentelemetry::trace::SpanId::INVALID);
    assert!(process[0].links.links.is_empty());
}

#[tokio::test]
async fn a_failed_handler_and_an_undecodable_body_are_error_spans() {
    let s = setup(true);
    let tracer = global::tracer_provider().tracer("publisher");
    let span = tracer.start("publish");
    let trace_id = span.span_context().trace_id();
    let context = Context::current_with_span(span);
    {
        let _attached = context.clone().attach();
        s.producer.produce(&Job { id: 13 }).await.unwrap();
    }
    context.span().end();
    // Not JSON, with a valid context: the decode failure gets a span in that trace too.
    let garbage_parent = format!("00-{:032x}-{:016x}-01", trace_id, context.span().span_context().span_id());
    let attributes = BTreeMap::from([(TRACEPARENT.to_owned(), garbage_parent)]);
    s.broker.send_with_attributes("jobs", "not json".to_owned(), attributes).await.unwrap();

    let report = s.drain().await;
    assert_eq!(report.count(Verdict::Failed), 2, "{report}");
    let failed: Vec<SpanData> =
        spans_of(trace_id).into_iter().filter(|s| s.span_kind == SpanKind::Consumer).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    for span in &failed {
        assert_eq!(attribute(span, "pubsub.result"), Some(&Value::from("FAILED")));
        assert!(matches!(&span.status, Status::Error { .. }), "{:?}", span.status);
    }
    let reasons: Vec<String> = failed
        .iter()
        .map(|span| match &span.status {
            Status::Error { description } => description.to_string(),
            _ => String::new(),
        })
        .collect();
    assert!(reasons.iter().any(|r| r == "job 13 is unlucky"), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("not valid JSON") || r.contains("JSON")), "{reasons:?}");
    // The decode failure has no handler; the handler failure names its handler.
    assert_eq!(failed.iter().filter(|s| attribute(s, "pubsub.handler").is_some()).count(), 1);
}

#[tokio::test]
async fn a_request_that_carries_several_messages_links_to_the_context_of_each() {
    let s = setup(true);
    let span = global::tracer_provider().tracer("publisher").start("publish batch");
    let caller = span.span_context().clone();
    let context = Context::current_with_span(span);
    {
        let _attached = context.clone().attach();
        s.producer.produce_batch(&[Job { id: 1 }, Job { id: 2 }, Job { id: 3 }]).await.unwrap();
    }
    context.span().end();
    let sends: Vec<SpanData> =
        spans_of(caller.trace_id()).into_iter().filter(|s| s.span_kind == SpanKind::Producer).collect();
    assert_eq!(sends.len(), 1, "one request for three messages: {sends:#?}");
    assert_eq!(sends[0].parent_span_id, caller.span_id());
    assert_eq!(attribute(&sends[0], "messaging.batch.message_count"), Some(&Value::I64(3)));
    assert_eq!(sends[0].links.links.len(), 3);
    assert!(sends[0].links.links.iter().all(|link| link.span_context.span_id() == caller.span_id()));
}

#[tokio::test]
async fn an_x_ray_trace_header_is_the_parent_when_no_traceparent_is_there() {
    let s = setup(true);
    let xray_trace = "5759e988bd862e3fe1be46a994272793";
    let w3c = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    for (id, attributes) in
        [(1, BTreeMap::new()), (2, BTreeMap::from([(TRACEPARENT.to_owned(), w3c.to_owned())]))]
    {
        let body = pubsub_core::encode(&Job { id }, &Default::default()).unwrap();
        s.broker.send_with_attributes("jobs", body, attributes).await.unwrap();
    }
    // SQS sets `AWSTraceHeader` when X-Ray is on; here a tap in front of the queue does.
    let tap = Tap::new(s.broker.subscriber("jobs").unwrap(), |message| {
        message.trace_header =
            Some("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1".to_owned())
    });
    let report = DaemonBuilder::new("jobs")
        .handler::<reports_done>()
        .producer(s.producer.clone())
        .wait_time(Duration::from_millis(20))
        .build(tap)
        .unwrap()
        .run_until_idle()
        .await;
    assert_eq!(report.count(Verdict::Succeeded), 2, "{report}");
    let consumer = |trace: &str| -> Vec<SpanData> {
        spans_of(TraceId::from_hex(trace).unwrap())
            .into_iter()
            .filter(|s| s.span_kind == SpanKind::Consumer)
            .collect()
    };
    let from_xray = consumer(xray_trace);
    assert_eq!(from_xray.len(), 1, "only the message without a traceparent follows X-Ray: {from_xray:?}");
    assert_eq!(format!("{:016x}", from_xray[0].parent_span_id), "53995c3f42cd8ad8");
    let from_w3c = consumer("0af7651916cd43dd8448eb211c80319c");
    assert_eq!(from_w3c.len(), 1, "the traceparent wins over the X-Ray header: {from_w3c:?}");
    assert_eq!(format!("{:016x}", from_w3c[0].parent_span_id), "b7ad6b7169203331");
}

/// The metric exporter of this test binary's global meter provider, and the provider (to
/// flush).
fn metrics(
) -> &'static (opentelemetry_sdk::metrics::InMemoryMetricExporter, opentelemetry_sdk::metrics::SdkMeterProvider)
{
    static METRICS: OnceLock<(
        opentelemetry_sdk::metrics::InMemoryMetricExporter,
        opentelemetry_sdk::metrics::SdkMeterProvider,
    )> = OnceLock::new();
    METRICS.get_or_init(|| {
        let exporter = opentelemetry_sdk::metrics::InMemoryMetricExporter::default();
        let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter.clone()).build();
        let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().with_reader(reader).build();
        global::set_meter_provider(provider.clone());
        (exporter, provider)
    })
}

/// The last value of every data point of the `u64` sum `name` whose destination is
/// `destination`, by the value of its attribute `by`.
fn sums(name: &str, destination: &str, by: &str) -> BTreeMap<String, u64> {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    let (exporter, provider) = metrics();
    provider.force_flush().unwrap();
    let mut sums = BTreeMap::new();
    for resource in exporter.get_finished_metrics().unwrap() {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics().filter(|m| m.name() == name) {
                let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() else { continue };
                for point in sum.data_points() {
                    let value_of = |key: &str| {
                        point.attributes().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
                    };
                    if value_of("messaging.destination.name").as_deref() == Some(destination) {
                        sums.insert(value_of(by).unwrap_or_default(), point.value());
                    }
                }
            }
        }
    }
    sums
}

/// How many values the `f64` histogram `name` of `destination` recorded.
fn histogram_count(name: &str, destination: &str) -> u64 {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    let (exporter, provider) = metrics();
    provider.force_flush().unwrap();
    let mut count = 0;
    for resource in exporter.get_finished_metrics().unwrap() {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics().filter(|m| m.name() == name) {
                let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data() else {
                    continue;
                };
                for point in histogram.data_points() {
                    let destination_of = point
                        .attributes()
                        .find(|kv| kv.key.as_str() == "messaging.destination.name")
                        .map(|kv| kv.value.to_string());
                    if destination_of.as_deref() == Some(destination) {
                        // Cumulative: the last export holds the total.
                        count = point.count();
                    }
                }
            }
        }
    }
    count
}

#[tokio::test]
async fn the_metrics_count_what_the_report_counts_ignored_included() {
    metrics();
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("counted");
    broker.create_queue("counted", QueueOptions::default());
    broker.subscribe(&topic, "counted", SubscriptionOptions::default()).unwrap();
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    producer.produce_batch(&[Job { id: 1 }, Job { id: 13 }, Job { id: 2 }]).await.unwrap();
    let unknown =
        pubsub_core::UntypedMessage::new("application/vnd.acme.pubsub.unknown", serde_json::json!({}))
            .unwrap();
    producer.produce(&unknown).await.unwrap();
    let report = DaemonBuilder::new("counted")
        .handler::<reports_done>()
        .producer(producer.clone())
        .wait_time(Duration::from_millis(20))
        .backoff(BackoffPolicy::Fixed(Duration::from_secs(600)))
        .build(broker.subscriber("counted").unwrap())
        .unwrap()
        .run_until_idle()
        .await;
    let consumed = sums("messaging.client.consumed.messages", "counted", "pubsub.result");
    let expected: BTreeMap<String, u64> = Verdict::ALL
        .iter()
        .filter(|verdict| report.count(**verdict) > 0)
        .map(|verdict| (verdict.as_str().to_owned(), report.count(*verdict)))
        .collect();
    assert_eq!(consumed, expected, "{report}");
    // The unknown media type, and the two `job_done` the handler published back to this topic.
    assert_eq!(consumed.get("IGNORED"), Some(&3));
    assert_eq!(consumed.get("FAILED"), Some(&1));
    // Every message's age at receive is measured (the broker stamps SentTimestamp).
    assert_eq!(histogram_count("pubsub.message.age", "counted"), report.total(), "{report}");
    // Four published by the test, and the two the handler published for jobs 1 and 2.
    let sent = sums("messaging.client.sent.messages", "counted", "messaging.system");
    assert_eq!(sent.get("aws_sns"), Some(&6), "{sent:?}");
}

#[tokio::test(start_paused = true)]
async fn the_daemon_counts_its_heartbeats_and_failed_settles() {
    /// Takes 5 s, 2.5 visibility timeouts: the heartbeat extends it.
    #[handler(media_type = "application/vnd.acme.pubsub.slow_job")]
    async fn slow(_message: pubsub_core::UntypedMessage) {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }

    metrics();
    let broker = MemoryBroker::new();
    broker.create_queue(
        "beating",
        QueueOptions { visibility_timeout: Duration::from_secs(2), ..QueueOptions::default() },
    );
    let body = serde_json::json!({ "mediaType": "application/vnd.acme.pubsub.slow_job" }).to_string();
    broker.send("beating", body).await.unwrap();
    // The first delete fails whole (retryable): the message is settled on the retry.
    broker.fail_next_request(
        pubsub_core::memory::Operation::AckBatch,
        pubsub_core::transport::TransportError::Unavailable("connection reset".into()),
    );
    let report = DaemonBuilder::new("beating")
        .handler::<slow>()
        .wait_time(Duration::from_millis(20))
        .build(broker.subscriber("beating").unwrap())
        .unwrap()
        .run_until_idle()
        .await;
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
    let extensions = sums("pubsub.visibility.extensions", "beating", "messaging.system");
    let requests = broker.request_counts().change_visibility_batch;
    assert!(requests >= 2, "{requests}");
    assert_eq!(extensions.get("aws_sqs"), Some(&requests), "one extension per heartbeat request here");
    let failures = sums("pubsub.settle.failures", "beating", "messaging.system");
    assert_eq!(failures.get("aws_sqs"), Some(&1));
}
