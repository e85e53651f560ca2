//! The span work of one processed message, done two ways against the same SDK tracer provider:
//! what the issue asked to measure before choosing between OpenTelemetry's API called directly
//! and `tracing` spans exported by `tracing-opentelemetry`.
//!
//! Per message (one criterion iteration): the W3C `traceparent` message attribute is parsed,
//! a CONSUMER span `process orders` is started as a child of it and linked to it, with the
//! messaging attributes; a trivial async body runs inside it; its trace and span ids are
//! formatted for the log line; the result, media type, handler and request id are added and
//! the span ends.
//!
//! - (a) `direct API`: the calls of pubsub-core's `MessageTrace` (`start`, `run`, `ids`, `end`;
//!   crate-private, so repeated here call for call) on the global `BoxedTracer` the dispatcher
//!   holds.
//! - (b) `tracing-otel`: a `tracing::info_span!` with the same fields (`otel.name`, `otel.kind`
//!   and the attributes), `set_parent` and `add_link` from the extracted context, the body
//!   `instrument`ed with it, the fields recorded at the end, the span dropped; under
//!   `registry().with(tracing_opentelemetry::layer().with_tracer(..))`. Once with the layer's
//!   defaults, which add source location, thread, target and busy/idle time attributes, and
//!   once with those turned off, so that the span carries what (a)'s does.
//! - Floors: no span at all; (a) with no tracer provider set; (b) with no subscriber, and with
//!   a logging subscriber only (what a daemon that logs at INFO has without OpenTelemetry).
//! - (a), and (b) with (a)'s attributes, again under the subscriber `pubsub_core::logging`
//!   installs (`fmt`, INFO, to a sink), as a daemon that logs runs them; and again with a span
//!   processor that drops each span where it ends instead of the batch processor: the calling
//!   thread's work alone, without the exporter thread competing for the cores (the least
//!   noisy pair).
//!
//! The provider: the SDK's, sampler parent-based always-on, a batch span processor (its queue
//! made large enough that the loop loses no span to it) to an exporter that drops what it gets
//! and counts it: each SDK case says how many of its spans reached the exporter. Before
//! measuring, a check runs the real dispatcher once on the embedded broker and asserts that
//! (a) and (b) make the span it makes (name, kind, parent, link, status, attribute keys), and
//! that (a)'s and (b)'s attributes are equal.
//!
//! Run: `cargo bench -p pubsub-core --features otel --bench otel_spans` (under a minute), or one
//! case: `... --bench otel_spans -- --exact 'otel_spans/(a) direct API, SDK'`. The numbers
//! move by tens of percent between runs on a busy machine: run the cases several times,
//! interleaved, and compare medians.

use std::collections::BTreeMap;
use std::future::Future;
use std::hint::black_box;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use opentelemetry::context::FutureExt as _;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData,
};
use pubsub_core::handlers::HandlerFn;
use pubsub_core::memory::{QueueOptions, SubscriptionOptions};
use pubsub_core::outcome::{HandledMessage, Outcome};
use pubsub_core::telemetry::{TRACEPARENT, TRACESTATE};
use pubsub_core::transport::ReceivedMessage;
use pubsub_core::{
    handler, DaemonBuilder, MemoryBroker, OpaqueData, Producer, PubSubMessage, TopicMap, Verdict,
};
use serde::{Deserialize, Serialize};
use tracing::field::Empty;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use validator::Validate;

const QUEUE: &str = "orders";
const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const REQUEST_ID: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(created = "Order")]
#[serde(rename_all = "camelCase")]
struct OrderCreated {
    order_id: String,
    amount: i64,
}

#[handler]
async fn no_op(_order: OrderCreated) {}

// ---- (a): pubsub-core's MessageTrace, call for call ----------------------------------------

/// What the dispatcher's `Telemetry` holds for spans.
struct Direct {
    tracer: Arc<BoxedTracer>,
    queue: Arc<str>,
    span_name: Arc<str>,
}

impl Direct {
    /// On the global tracer provider as it is now, as a dispatcher is built.
    fn new(queue: &str) -> Direct {
        Direct {
            tracer: Arc::new(global::tracer("pubsub-core")),
            queue: queue.into(),
            span_name: format!("process {queue}").into(),
        }
    }

    /// One message: `MessageTrace::start`, `run` (once, around the handler), `ids` (for the
    /// log line) and `end`. Returns the ids.
    fn message(&self, message: &ReceivedMessage, request_id: Option<&str>, handled: &HandledMessage) -> Ids {
        // start
        let parent = incoming_context(message);
        let parent_context = match &parent {
            Some(remote) => Context::new().with_remote_span_context(remote.clone()),
            None => Context::new(),
        };
        let has_parent = parent.is_some();
        let links = parent.into_iter().map(Link::with_context).collect();
        let span = self
            .tracer
            .span_builder(self.span_name.to_string())
            .with_kind(SpanKind::Consumer)
            .with_links(links)
            .start_with_context(&*self.tracer, &parent_context);
        let (context, request_id) = if !span.span_context().is_valid() && !has_parent {
            (None, None)
        } else {
            let context = parent_context.with_span(span);
            let span = context.span();
            if span.is_recording() {
                span.set_attributes([
                    KeyValue::new("messaging.system", "aws_sqs"),
                    KeyValue::new("messaging.operation.type", "process"),
                    KeyValue::new("messaging.operation.name", "process"),
                    KeyValue::new("messaging.destination.name", self.queue.to_string()),
                    KeyValue::new("messaging.message.id", message.message_id.clone()),
                    KeyValue::new("messaging.message.body.size", message.body.len() as i64),
                    KeyValue::new("pubsub.receive_count", i64::from(message.receive_count)),
                ]);
            }
            (Some(context), request_id.map(str::to_owned))
        };
        // run
        poll_once(handler_body().with_context(context.clone().unwrap_or_else(Context::current)));
        // ids
        let ids = context.as_ref().and_then(|context| hex_ids(context.span().span_context()));
        // end
        let Some(context) = context else { return ids };
        let span = context.span();
        if span.is_recording() {
            let mut attributes = vec![KeyValue::new("pubsub.result", handled.outcome.verdict.as_str())];
            if let Some(media_type) = &handled.media_type {
                attributes.push(KeyValue::new("pubsub.media_type", media_type.clone()));
            }
            if let Some(handler) = handled.handler {
                attributes.push(KeyValue::new("pubsub.handler", handler));
            }
            if let Some(request_id) = request_id {
                attributes.push(KeyValue::new("pubsub.request_id", request_id));
            }
            span.set_attributes(attributes);
            if handled.outcome.verdict == Verdict::Failed {
                span.set_status(Status::error(handled.outcome.reason.clone().unwrap_or_default()));
            }
        }
        span.end();
        ids
    }
}

// ---- (b): a tracing span, exported by tracing-opentelemetry --------------------------------

/// The same message's span as a `tracing` span; what becomes of it is the subscriber's.
fn with_tracing(
    span_name: &str,
    message: &ReceivedMessage,
    request_id: Option<&str>,
    handled: &HandledMessage,
) -> Ids {
    let parent = incoming_context(message);
    let span = tracing::info_span!(
        "process",
        otel.name = span_name,
        otel.kind = "consumer",
        messaging.system = "aws_sqs",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = QUEUE,
        messaging.message.id = message.message_id.as_str(),
        messaging.message.body.size = message.body.len() as i64,
        pubsub.receive_count = i64::from(message.receive_count),
        pubsub.result = Empty,
        pubsub.media_type = Empty,
        pubsub.handler = Empty,
        pubsub.request_id = Empty,
    );
    if let Some(remote) = parent {
        // Fails only without the layer (no subscriber): then there is no span to parent.
        let _ = span.set_parent(Context::new().with_remote_span_context(remote.clone()));
        span.add_link(remote);
    }
    poll_once(handler_body().instrument(span.clone()));
    let ids = hex_ids(span.context().span().span_context());
    span.record("pubsub.result", handled.outcome.verdict.as_str());
    if let Some(media_type) = &handled.media_type {
        span.record("pubsub.media_type", media_type.as_str());
    }
    if let Some(handler) = handled.handler {
        span.record("pubsub.handler", handler);
    }
    if let Some(request_id) = request_id {
        span.record("pubsub.request_id", request_id);
    }
    if handled.outcome.verdict == Verdict::Failed {
        span.set_status(Status::error(handled.outcome.reason.clone().unwrap_or_default()));
    }
    drop(span);
    ids
}

/// The layer as `tracing_opentelemetry::layer()` comes, or with the attributes it adds of its
/// own (code location, thread, target, busy/idle time) turned off.
fn otel_layer<S>(provider: &SdkTracerProvider, defaults: bool) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("pubsub-core"));
    if defaults {
        layer
    } else {
        layer.with_location(false).with_threads(false).with_target(false).with_tracked_inactivity(false)
    }
}

/// Info-level logs, formatted and thrown away, as a daemon in production writes them (the
/// subscriber `pubsub_core::logging` installs, to a sink).
fn logging() -> impl tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync {
    tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_writer(std::io::sink).finish()
}

// ---- what both do alike ----------------------------------------------------------------------

type Ids = Option<(String, String)>;

/// The handler: nothing to do.
async fn handler_body() -> u64 {
    black_box(7)
}

/// Polls `future` once, on this thread (the body never waits).
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// The span's ids in hex, for the message's log line.
fn hex_ids(ids: &SpanContext) -> Ids {
    ids.is_valid().then(|| (format!("{:032x}", ids.trace_id()), format!("{:016x}", ids.span_id())))
}

/// The dispatcher's `incoming_context` under raw delivery: the `traceparent` (and
/// `tracestate`) message attributes, parsed.
fn incoming_context(message: &ReceivedMessage) -> Option<SpanContext> {
    let traceparent = message.attribute(TRACEPARENT)?.to_owned();
    let tracestate = message.attribute(TRACESTATE).map(str::to_owned);
    extract(&traceparent, tracestate.as_deref()).ok()
}

/// pubsub-core's (crate-private) W3C `traceparent` parse, repeated.
fn extract(traceparent: &str, tracestate: Option<&str>) -> Result<SpanContext, String> {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let [version, trace_id, span_id, flags, rest @ ..] = parts.as_slice() else {
        return Err(format!("`{traceparent}` is not `version-traceid-parentid-flags`"));
    };
    let lower_hex = |text: &str, len: usize| {
        text.len() == len && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(version, 2) || *version == "ff" || (*version == "00" && !rest.is_empty()) {
        return Err(format!("`{traceparent}` has an unknown version"));
    }
    if !lower_hex(trace_id, 32) || !lower_hex(span_id, 16) || !lower_hex(flags, 2) {
        return Err(format!("`{traceparent}` is not lower-case hex of 32, 16 and 2 digits"));
    }
    let trace_id = TraceId::from_hex(trace_id).map_err(|e| e.to_string())?;
    let span_id = SpanId::from_hex(span_id).map_err(|e| e.to_string())?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return Err(format!("`{traceparent}` has an all-zero id"));
    }
    let flags = u8::from_str_radix(flags, 16).map_err(|e| e.to_string())?;
    let state = tracestate.and_then(|text| TraceState::from_str(text).ok()).unwrap_or_default();
    Ok(SpanContext::new(trace_id, span_id, TraceFlags::new(flags & TraceFlags::SAMPLED.to_u8()), true, state))
}

/// A message as the embedded broker delivers it raw: the JSON body, `media_type` and
/// `traceparent` attributes; and what the dispatcher made of it.
fn message() -> (ReceivedMessage, HandledMessage) {
    let order = OrderCreated { order_id: "o-1".into(), amount: 42 };
    let mut opaque = OpaqueData::new();
    opaque.set_request_id(REQUEST_ID);
    let body = pubsub_core::encode(&order, &opaque).unwrap();
    let mut received = ReceivedMessage::new("5fea7756-0ea4-451a-a703-a558b933e274", "receipt", body);
    received.attributes = BTreeMap::from([
        ("media_type".to_owned(), OrderCreated::MEDIA_TYPE.into()),
        (TRACEPARENT.to_owned(), PARENT.into()),
    ]);
    let handled = HandledMessage {
        message_id: received.message_id.clone(),
        receive_count: 1,
        outcome: Outcome::succeeded(),
        media_type: Some(OrderCreated::MEDIA_TYPE.to_owned()),
        handler: Some(<no_op as HandlerFn>::HANDLER.name()),
        published: Vec::new(),
        elapsed: Duration::ZERO,
        payload: None,
    };
    (received, handled)
}

// ---- the exporter, the provider, the check ---------------------------------------------------

/// An exporter that drops what it is given, and counts it.
#[derive(Debug, Clone, Default)]
struct Sink(Arc<AtomicUsize>);

impl opentelemetry_sdk::trace::SpanExporter for Sink {
    async fn export(&self, batch: Vec<SpanData>) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.fetch_add(batch.len(), Ordering::Relaxed);
        black_box(batch);
        Ok(())
    }
}

/// A span processor that drops each span as it ends, on the thread that ends it.
#[derive(Debug)]
struct DropAtEnd;

impl opentelemetry_sdk::trace::SpanProcessor for DropAtEnd {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}

    fn on_end(&self, span: SpanData) {
        black_box(span);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

fn sampler() -> Sampler {
    Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
}

/// The one CONSUMER span in `spans`.
fn consumer(spans: Vec<SpanData>, what: &str) -> SpanData {
    let mut consumers: Vec<SpanData> =
        spans.into_iter().filter(|s| s.span_kind == SpanKind::Consumer).collect();
    assert_eq!(consumers.len(), 1, "{what}: one CONSUMER span");
    consumers.remove(0)
}

fn keys(span: &SpanData) -> Vec<String> {
    let mut keys: Vec<String> = span.attributes.iter().map(|kv| kv.key.to_string()).collect();
    keys.sort();
    keys
}

/// The dispatcher's own span of a message published under [`PARENT`] with a request id, next
/// to (a)'s and (b)'s of the same message: the same name, kind, parent, link and attribute
/// keys, else the comparison is not of like with like. Leaves the global tracer provider set
/// to an in-memory one.
fn check_alike() {
    let exporter = InMemorySpanExporter::default();
    let provider =
        SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).with_sampler(sampler()).build();
    global::set_tracer_provider(provider.clone());

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let handled = Arc::new(Mutex::new(None));
    runtime.block_on(async {
        let broker = MemoryBroker::new();
        let topic = broker.create_topic(QUEUE);
        broker.create_queue(QUEUE, QueueOptions::default());
        broker.subscribe(&topic, QUEUE, SubscriptionOptions { raw_delivery: true, filter: None }).unwrap();
        let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
        let mut opaque = OpaqueData::new();
        opaque.set_request_id(REQUEST_ID);
        let remote = extract(PARENT, None).unwrap();
        let order = OrderCreated { order_id: "o-1".into(), amount: 42 };
        producer
            .produce_with(&order, &opaque)
            .with_context(Context::new().with_remote_span_context(remote))
            .await
            .unwrap();
        let seen = handled.clone();
        let report = DaemonBuilder::new("bench")
            .wait_time(Duration::ZERO)
            .on_outcome(move |handled| *seen.lock().unwrap() = Some(handled.clone()))
            .build(broker.subscriber(QUEUE).unwrap())
            .unwrap()
            .run_until_idle()
            .await;
        assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
    });
    provider.force_flush().unwrap();
    let real = consumer(exporter.get_finished_spans().unwrap(), "the dispatcher");
    exporter.reset();

    let (received, _) = message();
    let handled = handled.lock().unwrap().take().unwrap();
    let direct = Direct::new(QUEUE);
    direct.message(&received, Some(REQUEST_ID), &handled);
    let a = consumer(exporter.get_finished_spans().unwrap(), "(a)");
    exporter.reset();
    let mut spans = Vec::new();
    for defaults in [false, true] {
        let subscriber = tracing_subscriber::registry().with(otel_layer(&provider, defaults));
        tracing::subscriber::with_default(subscriber, || {
            with_tracing(&direct.span_name, &received, Some(REQUEST_ID), &handled);
        });
        spans.push(consumer(exporter.get_finished_spans().unwrap(), "(b)"));
        exporter.reset();
    }
    let (b, b_defaults) = (&spans[0], &spans[1]);

    // All four: in PARENT's trace, its children, linked to it.
    let parent = extract(PARENT, None).unwrap();
    for (what, span) in
        [("the dispatcher", &real), ("(a)", &a), ("(b)", b), ("(b), layer defaults", b_defaults)]
    {
        assert_eq!(span.name, real.name, "{what}");
        assert_eq!(span.span_kind, SpanKind::Consumer, "{what}");
        assert_eq!(span.span_context.trace_id(), parent.trace_id(), "{what}");
        assert_eq!(span.parent_span_id, parent.span_id(), "{what}");
        assert!(span.parent_span_is_remote, "{what}");
        assert_eq!(span.links.links.len(), 1, "{what}: one link");
        assert_eq!(span.links.links[0].span_context.span_id(), parent.span_id(), "{what}");
        assert_eq!(span.status, real.status, "{what}");
    }
    assert_eq!(keys(&a), keys(&real), "(a) has the dispatcher's attributes");
    assert_eq!(keys(b), keys(&real), "(b) has the dispatcher's attributes");
    let sorted = |span: &SpanData| {
        let mut attributes = span.attributes.clone();
        attributes.sort_by(|x, y| x.key.cmp(&y.key));
        attributes
    };
    assert_eq!(sorted(b), sorted(&a), "(a) and (b) give the same message the same attributes");
    let extra: Vec<String> = keys(b_defaults).into_iter().filter(|key| !keys(&real).contains(key)).collect();
    eprintln!(
        "otel_spans: (a) and (b) make the dispatcher's span ({} attributes); the layer's defaults add {}",
        keys(&real).len(),
        extra.join(", ")
    );
    provider.shutdown().unwrap();
}

// ---- the bench -------------------------------------------------------------------------------

/// Measures `name`: one message per iteration through `work`; with `exported`, also says how
/// many of the spans made reached the exporter (the rest, the batch processor's queue dropped).
fn measure(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    exported: Option<(&SdkTracerProvider, &Sink)>,
    mut work: impl FnMut() -> Ids,
) {
    let before = exported.map(|(_, sink)| sink.0.load(Ordering::Relaxed));
    let mut made = 0usize;
    group.bench_function(name, |b| {
        b.iter(|| {
            made += 1;
            black_box(work())
        })
    });
    // (`made` is 0 when a filter on the command line left the case out.)
    if let (Some((provider, sink)), Some(before), 1..) = (exported, before, made) {
        provider.force_flush().unwrap();
        let got = sink.0.load(Ordering::Relaxed) - before;
        eprintln!("otel_spans: {name}: {got} of {made} spans exported");
    }
}

fn bench(c: &mut Criterion) {
    let (received, handled) = message();
    let request_id = Some(REQUEST_ID);
    let span_name = format!("process {QUEUE}");
    // Before any provider is set: the no-op tracer a dispatcher holds without one.
    let noop = Direct::new(QUEUE);

    let mut group = c.benchmark_group("otel_spans");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));

    // Before any subscriber exists (a span disabled everywhere stays so, once seen).
    measure(&mut group, "floor: no span (parse traceparent, run body)", None, || {
        let parent = incoming_context(&received);
        poll_once(handler_body());
        parent.map(|_| (String::new(), String::new()))
    });
    measure(&mut group, "floor: (a) direct API, no provider", None, || {
        noop.message(&received, request_id, &handled)
    });
    measure(&mut group, "floor: (b) tracing span, no subscriber", None, || {
        with_tracing(&span_name, &received, request_id, &handled)
    });

    check_alike();

    tracing::subscriber::with_default(logging(), || {
        measure(&mut group, "floor: (b) tracing span, logging subscriber only", None, || {
            with_tracing(&span_name, &received, request_id, &handled)
        });
    });

    // The batch processor as it comes, but for a queue large enough that no case loses spans
    // to it (a loop makes them faster than a daemon does, and dropping is another cost).
    let sink = Sink::default();
    let config = BatchConfigBuilder::default().with_max_queue_size(1 << 16).build();
    let processor = BatchSpanProcessor::builder(sink.clone()).with_batch_config(config).build();
    let provider =
        SdkTracerProvider::builder().with_span_processor(processor).with_sampler(sampler()).build();
    global::set_tracer_provider(provider.clone());
    let direct = Direct::new(QUEUE);
    let exported = Some((&provider, &sink));

    measure(&mut group, "(a) direct API, SDK", exported, || direct.message(&received, request_id, &handled));
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(otel_layer(&provider, true)),
        || {
            measure(&mut group, "(b) tracing-otel, SDK, layer defaults", exported, || {
                with_tracing(&span_name, &received, request_id, &handled)
            });
        },
    );
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(otel_layer(&provider, false)),
        || {
            measure(&mut group, "(b) tracing-otel, SDK, attributes as (a)", exported, || {
                with_tracing(&span_name, &received, request_id, &handled)
            });
        },
    );
    tracing::subscriber::with_default(logging(), || {
        measure(&mut group, "(a) direct API, SDK, + logging", exported, || {
            direct.message(&received, request_id, &handled)
        });
    });
    let logged = logging().with(otel_layer(&provider, false));
    tracing::subscriber::with_default(logged, || {
        measure(&mut group, "(b) tracing-otel, SDK, attributes as (a), + logging", exported, || {
            with_tracing(&span_name, &received, request_id, &handled)
        });
    });
    provider.shutdown().unwrap();

    // The calling thread's share alone: a processor that drops each span where it ends, no
    // exporter thread to compete with (the SpanData is built all the same).
    let inline = SdkTracerProvider::builder().with_span_processor(DropAtEnd).with_sampler(sampler()).build();
    global::set_tracer_provider(inline.clone());
    let direct = Direct::new(QUEUE);
    measure(&mut group, "(a) direct API, SDK, dropped at end", None, || {
        direct.message(&received, request_id, &handled)
    });
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(otel_layer(&inline, false)),
        || {
            measure(&mut group, "(b) tracing-otel, SDK, attributes as (a), dropped at end", None, || {
                with_tracing(&span_name, &received, request_id, &handled)
            });
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
