//! OpenTelemetry (feature `otel`) through a real SNS/SQS server (moto, started by
//! scripts/test.sh), raw and enveloped delivery: a message published inside a span is
//! processed in a span of the same trace, a child of the publisher's, and what its handler
//! publishes carries the process span on.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{global, Context};
use pubsub_aws::provision::{Provisioner, QueueSpec, SubscriptionSpec};
use pubsub_aws::{SnsPublisher, SqsSubscriber};
use pubsub_core::memory::FilterPolicy;
use pubsub_core::transport::TRACEPARENT;
use pubsub_core::{
    handler, Consumer, DaemonBuilder, HandlerError, MessageContext, Producer, PubSubMessage, TopicMap,
    Verdict,
};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.traced_job"]
struct TracedJob {
    id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.traced_job_done"]
struct TracedJobDone {
    id: i64,
}

#[handler]
async fn reports_done(job: TracedJob, context: &MessageContext) -> Result<(), HandlerError> {
    context.publish(&TracedJobDone { id: job.id })?;
    Ok(())
}

/// The tests of this file that make clients in this process run one at a time, so that the
/// request counts of one are not the other's.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The meter provider of this test binary, and its exporter.
fn meters(
) -> &'static (opentelemetry_sdk::metrics::InMemoryMetricExporter, opentelemetry_sdk::metrics::SdkMeterProvider)
{
    static METERS: OnceLock<(
        opentelemetry_sdk::metrics::InMemoryMetricExporter,
        opentelemetry_sdk::metrics::SdkMeterProvider,
    )> = OnceLock::new();
    METERS.get_or_init(|| {
        let exporter = opentelemetry_sdk::metrics::InMemoryMetricExporter::default();
        let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter.clone()).build();
        let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().with_reader(reader).build();
        global::set_meter_provider(provider.clone());
        (exporter, provider)
    })
}

/// `pubsub.aws.requests` so far, by `rpc.method`.
fn aws_requests() -> std::collections::BTreeMap<String, u64> {
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
    let (exporter, provider) = meters();
    provider.force_flush().unwrap();
    let mut counts = std::collections::BTreeMap::new();
    // Cumulative: the last export holds the totals.
    if let Some(resource) = exporter.get_finished_metrics().unwrap().last() {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics().filter(|m| m.name() == "pubsub.aws.requests") {
                let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() else { continue };
                for point in sum.data_points() {
                    let method = point
                        .attributes()
                        .find(|kv| kv.key.as_str() == "rpc.method")
                        .map(|kv| kv.value.to_string());
                    counts.insert(method.unwrap_or_default(), point.value());
                }
            }
        }
    }
    counts
}

/// What a test of this file runs with; it holds [`SERIAL`] while it lives.
struct Env {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    config: aws_config::SdkConfig,
    provisioner: Provisioner,
}

/// The emulator's configuration, once the other tests of this file are done with theirs.
async fn env() -> Option<Env> {
    support::require_emulator()?;
    meters();
    let serial = SERIAL.lock().await;
    let config = support::sdk_config().await;
    Some(Env { _serial: serial, provisioner: Provisioner::new(&config), config })
}

impl Env {
    /// A topic named after `prefix` and a raw-delivery queue subscribed to it.
    async fn raw_wire(&self, prefix: &str) -> (String, String) {
        let topic = self.provisioner.topic(&support::unique_name(prefix)).await.unwrap();
        let queue =
            self.provisioner.queue(&support::unique_name(prefix), &QueueSpec::default()).await.unwrap();
        let raw = SubscriptionSpec { raw_delivery: true, filter: None };
        self.provisioner.subscribe(&topic, &queue, &raw).await.unwrap();
        (topic, queue)
    }
}

#[tokio::test]
async fn every_aws_request_is_counted_by_operation() {
    let Some(env) = env().await else { return };
    let (config, (topic, queue)) = (&env.config, env.raw_wire("counted").await);
    let before = aws_requests();
    let counter = pubsub_aws::RequestCounter::new();
    let producer =
        Producer::new(SnsPublisher::with_counter(config, &counter), TopicMap::new().default_topic(&topic));
    producer.produce_batch(&[TracedJob { id: 1 }, TracedJob { id: 2 }, TracedJob { id: 3 }]).await.unwrap();
    let subscriber = SqsSubscriber::with_counter(config, &queue, &counter).await.unwrap();
    let consumer = Consumer::new(subscriber).wait_time(Duration::from_secs(2));
    let mut received = 0;
    while received < 3 {
        let deliveries = consumer.consume().await.unwrap();
        assert!(!deliveries.is_empty(), "the three messages arrive");
        received += deliveries.len();
        consumer.ack_all(&deliveries).await.unwrap();
    }
    let after = aws_requests();
    let counted: std::collections::BTreeMap<String, u64> = after
        .iter()
        .map(|(method, total)| (method.clone(), total - before.get(method).copied().unwrap_or(0)))
        .filter(|(_, delta)| *delta > 0)
        .collect();
    assert_eq!(
        counted,
        counter.counts(),
        "the OpenTelemetry counter counts what the figures' counter counts"
    );
    assert_eq!(counted.get("PublishBatch"), Some(&1));
}

#[tokio::test]
async fn a_trace_crosses_sns_and_sqs_under_raw_and_enveloped_delivery() {
    let Some(env) = env().await else { return };
    support::span_exporter();
    let (config, provisioner) = (&env.config, &env.provisioner);
    for raw_delivery in [true, false] {
        let topic = provisioner.topic(&support::unique_name("traced")).await.unwrap();
        let jobs =
            provisioner.queue(&support::unique_name("traced-jobs"), &QueueSpec::default()).await.unwrap();
        let done =
            provisioner.queue(&support::unique_name("traced-done"), &QueueSpec::default()).await.unwrap();
        let only = |media_type: &str| Some(FilterPolicy::media_types([media_type]));
        provisioner
            .subscribe(&topic, &jobs, &SubscriptionSpec { raw_delivery, filter: only(TracedJob::MEDIA_TYPE) })
            .await
            .unwrap();
        provisioner
            .subscribe(
                &topic,
                &done,
                &SubscriptionSpec { raw_delivery: true, filter: only(TracedJobDone::MEDIA_TYPE) },
            )
            .await
            .unwrap();
        let producer = Producer::new(SnsPublisher::new(config), TopicMap::new().default_topic(&topic));

        let span = global::tracer_provider().tracer("publisher").start("publish job");
        let publisher = span.span_context().clone();
        let context = Context::current_with_span(span);
        {
            let _attached = context.clone().attach();
            producer.produce(&TracedJob { id: 1 }).await.unwrap();
        }
        context.span().end();

        let report = DaemonBuilder::new("traced")
            .handler::<reports_done>()
            .producer(producer.clone())
            .wait_time(Duration::from_secs(1))
            .build(SqsSubscriber::new(config, &jobs).await.unwrap())
            .unwrap()
            .run_until_idle()
            .await;
        assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");

        let spans = support::span_exporter().get_finished_spans().unwrap();
        let process = spans
            .iter()
            .find(|s| s.span_kind == SpanKind::Consumer && s.span_context.trace_id() == publisher.trace_id())
            .unwrap_or_else(|| {
                panic!("no process span in the publisher's trace (raw delivery: {raw_delivery})")
            });
        assert_eq!(process.parent_span_id, publisher.span_id(), "raw delivery: {raw_delivery}");
        let queue_name = jobs.rsplit('/').next().unwrap();
        assert_eq!(process.name, format!("process {queue_name}"));

        let consumer =
            Consumer::new(SqsSubscriber::new(config, &done).await.unwrap()).wait_time(Duration::from_secs(2));
        let deliveries = consumer.consume().await.unwrap();
        assert_eq!(deliveries.len(), 1);
        let expected =
            format!("00-{:032x}-{:016x}-01", process.span_context.trace_id(), process.span_context.span_id());
        assert_eq!(deliveries[0].message().attributes[TRACEPARENT], expected, "raw delivery: {raw_delivery}");
        // SQS's SentTimestamp, for the age-at-receive metric: a moment ago.
        let sent_at = deliveries[0].message().sent_at.expect("SentTimestamp");
        let age = std::time::SystemTime::now().duration_since(sent_at).unwrap_or_default();
        assert!(age < Duration::from_secs(60), "{age:?}");
        deliveries[0].ack().await.unwrap();
    }
}

#[tokio::test]
async fn the_command_line_publishes_under_the_traceparent_of_its_environment() {
    let Some(env) = env().await else { return };
    let (config, (topic, queue)) = (&env.config, env.raw_wire("cli-traced").await);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pubsub"))
        .args([
            "publish",
            "--topic-arn",
            &topic,
            "--media-type",
            TracedJob::MEDIA_TYPE,
            "--json",
            r#"{"id": 5}"#,
        ])
        .env("TRACEPARENT", traceparent)
        .env("TRACESTATE", "vendor=value")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", support::text(&output.stderr));
    let consumer =
        Consumer::new(SqsSubscriber::new(config, &queue).await.unwrap()).wait_time(Duration::from_secs(2));
    let deliveries = consumer.consume().await.unwrap();
    assert_eq!(deliveries.len(), 1);
    // No tracer provider in the binary: the message carries the script's context itself.
    assert_eq!(deliveries[0].message().attributes[TRACEPARENT], traceparent);
    assert_eq!(deliveries[0].message().attributes["tracestate"], "vendor=value");
    deliveries[0].ack().await.unwrap();
}
