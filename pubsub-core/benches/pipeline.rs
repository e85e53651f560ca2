//! Publish -> dispatch -> ack on the embedded broker with no latency, against raw serde_json
//! encode + decode of the same struct: the ratio says what the whole pipeline (envelope,
//! validation, broker, daemon, batching, one log line per message) costs over bare JSON.
//!
//! The group `pipeline_layers` runs the same pipeline with no layer and with tower's
//! `TimeoutLayer` around every handler: the ratio is what a layer costs per message.
//!
//! With `--features otel`, the group `pipeline_otel` runs it with the feature compiled in and
//! no providers, then with the SDK's tracer provider and a batch exporter to a sink, and its
//! meter provider: the span per message, its attributes and export, and the metrics.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pubsub_core::memory::{QueueOptions, SubscriptionOptions};
use pubsub_core::middleware::HandlerLayers;
use pubsub_core::{DaemonBuilder, MemoryBroker, Producer, TopicMap, Verdict};
use tower::timeout::TimeoutLayer;

#[path = "support/workload.rs"]
mod workload;

use workload::{orders, OrderCreated, MESSAGES};

async fn pipeline(orders: &[OrderCreated], layers: HandlerLayers) {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("orders");
    broker.create_queue("orders", QueueOptions::default());
    broker.subscribe(&topic, "orders", SubscriptionOptions::default()).unwrap();
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    producer.produce_batch(orders).await.unwrap();
    let daemon = DaemonBuilder::new("bench")
        .concurrency(100)
        .wait_time(Duration::ZERO)
        .layers(layers)
        .build(broker.subscriber("orders").unwrap())
        .unwrap();
    let report = daemon.run_until_idle().await;
    assert_eq!(report.count(Verdict::Succeeded), MESSAGES as u64);
}

fn bench(c: &mut Criterion) {
    // Info-level logs, formatted and thrown away, as a daemon in production writes them: the
    // library's own set-up (text, no colours, as off a terminal), to a sink.
    pubsub_core::logging::Logging::new().try_init_writer(std::io::sink).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let orders = orders();

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.sample_size(20);
    group.bench_function("publish, dispatch, ack (embedded broker)", |b| {
        b.iter(|| runtime.block_on(pipeline(black_box(&orders), HandlerLayers::new())))
    });
    group.bench_function("serde_json encode + decode", |b| {
        b.iter(|| {
            for order in black_box(&orders) {
                let text = serde_json::to_string(order).unwrap();
                black_box(serde_json::from_str::<OrderCreated>(&text).unwrap());
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("pipeline_layers");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.sample_size(20);
    group.bench_function("no layer", |b| {
        b.iter(|| runtime.block_on(pipeline(black_box(&orders), HandlerLayers::new())))
    });
    group.bench_function("tower TimeoutLayer around every handler", |b| {
        let timeout = HandlerLayers::new().layer(TimeoutLayer::new(Duration::from_secs(30)));
        b.iter(|| runtime.block_on(pipeline(black_box(&orders), timeout.clone())))
    });
    group.finish();

    #[cfg(feature = "otel")]
    {
        let mut group = c.benchmark_group("pipeline_otel");
        group.throughput(Throughput::Elements(MESSAGES as u64));
        group.sample_size(20);
        group.bench_function("otel compiled in, no providers", |b| {
            b.iter(|| runtime.block_on(pipeline(black_box(&orders), HandlerLayers::new())))
        });
        let provider =
            opentelemetry_sdk::trace::SdkTracerProvider::builder().with_batch_exporter(Sink).build();
        opentelemetry::global::set_tracer_provider(provider.clone());
        let metrics = opentelemetry_sdk::metrics::InMemoryMetricExporter::default();
        let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(metrics).build();
        let meters = opentelemetry_sdk::metrics::SdkMeterProvider::builder().with_reader(reader).build();
        opentelemetry::global::set_meter_provider(meters.clone());
        group.bench_function("otel, SDK with a batch exporter to a sink", |b| {
            b.iter(|| runtime.block_on(pipeline(black_box(&orders), HandlerLayers::new())))
        });
        group.finish();
        provider.shutdown().unwrap();
        meters.shutdown().unwrap();
    }
}

/// An exporter that drops what it is given, so that the bench counts the spans, not a network.
#[cfg(feature = "otel")]
#[derive(Debug)]
struct Sink;

#[cfg(feature = "otel")]
impl opentelemetry_sdk::trace::SpanExporter for Sink {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
