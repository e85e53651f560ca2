//! The spans of a processed message and of a publish request, the context they hand on, and
//! the instruments of the daemon and the producer.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use opentelemetry::context::FutureExt as _;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::trace::{Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::metrics::{ConsumeMetrics, PublishMetrics};
use super::propagation::{extract, extract_xray, inject, TRACEPARENT, TRACESTATE};
use crate::dispatch::HandledMessage;
use crate::envelope::Envelope;
use crate::outcome::Verdict;
use crate::transport::{
    AttributeValue, Attributes, EntryError, MessageId, OutgoingMessage, ReceivedMessage, TransportError,
};

/// What a dispatcher traces with: the global tracer as it was when the daemon was built, and
/// the queue's name.
#[derive(Clone)]
pub(crate) struct Telemetry {
    tracer: Arc<BoxedTracer>,
    queue: Arc<str>,
    span_name: Arc<str>,
    metrics: ConsumeMetrics,
}

impl Telemetry {
    pub(crate) fn new(queue: &str) -> Telemetry {
        Telemetry {
            tracer: Arc::new(global::tracer("pubsub-core")),
            queue: queue.into(),
            span_name: format!("process {queue}").into(),
            metrics: ConsumeMetrics::new(queue),
        }
    }

    /// The handling of `message` began.
    pub(crate) fn started(&self, message: &ReceivedMessage) {
        self.metrics.started(message);
    }

    /// A message's handling ended with `handled`.
    pub(crate) fn finished(&self, handled: &HandledMessage) {
        self.metrics.finished(handled);
    }

    /// `count` messages' visibility was extended.
    pub(crate) fn extended(&self, count: usize) {
        self.metrics.extended(count);
    }

    /// `count` deletes or visibility changes failed and will be retried.
    pub(crate) fn settle_failed(&self, count: usize) {
        self.metrics.settle_failed(count);
    }

    /// A message received during shutdown was released unhandled.
    pub(crate) fn released(&self) {
        self.metrics.released();
    }
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry").field("queue", &self.queue).finish_non_exhaustive()
    }
}

/// One message's CONSUMER span, once started: the context that holds it, and the request id
/// it is to be tagged with at the end.
#[derive(Default)]
pub(crate) struct MessageTrace {
    context: Option<Context>,
    request_id: Option<String>,
}

impl MessageTrace {
    /// Not started yet.
    pub(crate) fn new() -> MessageTrace {
        MessageTrace::default()
    }

    /// Starts the span, a child of the context the message carries (see [`incoming_context`]),
    /// which it also links to. A malformed context is ignored (logged at debug).
    pub(crate) fn start(
        &mut self,
        telemetry: &Telemetry,
        message: &ReceivedMessage,
        message_id: &str,
        envelope: Option<&Envelope<'_>>,
    ) {
        let parent = incoming_context(message, message_id, envelope);
        let parent_context = match &parent {
            Some(remote) => Context::new().with_remote_span_context(remote.clone()),
            None => Context::new(),
        };
        let has_parent = parent.is_some();
        let links = parent.into_iter().map(Link::with_context).collect();
        let span = telemetry
            .tracer
            .span_builder(telemetry.span_name.to_string())
            .with_kind(SpanKind::Consumer)
            .with_links(links)
            .start_with_context(&*telemetry.tracer, &parent_context);
        // No provider and nothing to continue: no span, no context to carry (the common case
        // of a daemon built without OpenTelemetry set up costs next to nothing).
        if !span.span_context().is_valid() && !has_parent {
            return;
        }
        let context = parent_context.with_span(span);
        let span = context.span();
        if span.is_recording() {
            span.set_attributes([
                KeyValue::new("messaging.system", "aws_sqs"),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.operation.name", "process"),
                KeyValue::new("messaging.destination.name", telemetry.queue.to_string()),
                KeyValue::new("messaging.message.id", message_id.to_owned()),
                KeyValue::new("messaging.message.body.size", message.body.len() as i64),
                KeyValue::new("pubsub.receive_count", i64::from(message.receive_count)),
            ]);
        }
        self.request_id = envelope.and_then(|e| e.opaque_data.request_id()).map(str::to_owned);
        self.context = Some(context);
    }

    /// `future`, run inside the span: what it publishes carries the span's context. Without a
    /// span, in the caller's context (a test's own span, say).
    pub(crate) fn run<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        future.with_context(self.context.clone().unwrap_or_else(Context::current))
    }

    /// The span's trace id and span id, in hex, for the message's log line.
    pub(crate) fn ids(&self) -> (Option<String>, Option<String>) {
        let Some(context) = &self.context else { return (None, None) };
        let span = context.span();
        let ids = span.span_context();
        if !ids.is_valid() {
            return (None, None);
        }
        (Some(format!("{:032x}", ids.trace_id())), Some(format!("{:016x}", ids.span_id())))
    }

    /// Ends the span with what became of the message: a FAILED one is an error, with its
    /// reason.
    pub(crate) fn end(self, handled: &HandledMessage) {
        let Some(context) = self.context else { return };
        let span = context.span();
        if span.is_recording() {
            let mut attributes = vec![KeyValue::new("pubsub.result", handled.outcome.verdict.as_str())];
            if let Some(media_type) = &handled.media_type {
                attributes.push(KeyValue::new("pubsub.media_type", media_type.clone()));
            }
            if let Some(handler) = handled.handler {
                attributes.push(KeyValue::new("pubsub.handler", handler));
            }
            if let Some(request_id) = self.request_id {
                attributes.push(KeyValue::new("pubsub.request_id", request_id));
            }
            span.set_attributes(attributes);
            if handled.outcome.verdict == Verdict::Failed {
                span.set_status(Status::error(handled.outcome.reason.clone().unwrap_or_default()));
            }
        }
        span.end();
    }
}

/// The trace context a received message carries, if a valid one: the W3C `traceparent` message
/// attribute (of the SQS message under raw delivery, of the SNS notification under enveloped
/// delivery), else the `AWSTraceHeader` system attribute (X-Ray).
fn incoming_context(
    message: &ReceivedMessage,
    message_id: &str,
    envelope: Option<&Envelope<'_>>,
) -> Option<SpanContext> {
    let w3c = match message.attribute(TRACEPARENT) {
        Some(traceparent) => Some((traceparent.to_owned(), message.attribute(TRACESTATE).map(str::to_owned))),
        None => envelope.and_then(|envelope| {
            Some((envelope.notification_attribute(TRACEPARENT)?, envelope.notification_attribute(TRACESTATE)))
        }),
    };
    let extracted = match (w3c, &message.trace_header) {
        (Some((traceparent, tracestate)), _) => extract(&traceparent, tracestate.as_deref()),
        (None, Some(header)) => extract_xray(header),
        (None, None) => return None,
    };
    match extracted {
        Ok(context) => Some(context),
        Err(reason) => {
            tracing::debug!(message_id, %reason, "trace context ignored");
            None
        }
    }
}

/// Writes the current context (a span of the caller's, or the span of the message being
/// handled) into `attributes`, for the message they belong to.
pub(crate) fn inject_current(attributes: &mut Attributes) {
    let context = Context::current();
    inject(context.span().span_context(), attributes);
}

/// What a producer measures with: its instruments, from the global meter provider as it was
/// when the producer was made.
#[derive(Clone)]
pub(crate) struct ProducerTelemetry {
    metrics: PublishMetrics,
}

impl ProducerTelemetry {
    pub(crate) fn new() -> ProducerTelemetry {
        ProducerTelemetry { metrics: PublishMetrics::new() }
    }

    /// Starts the span of a request publishing `messages` to `topic`.
    pub(crate) fn request(&self, topic: &str, messages: &[OutgoingMessage]) -> PublishSpan {
        PublishSpan::start(topic, messages, self.metrics.clone())
    }
}

impl fmt::Debug for ProducerTelemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProducerTelemetry")
    }
}

/// The PRODUCER span of one publish request (up to ten messages to one topic): a child of the
/// caller's context, linked to the context each message carries when the request carries
/// more than one; and the request's metrics.
pub(crate) struct PublishSpan {
    span: global::BoxedSpan,
    metrics: PublishMetrics,
    topic: String,
    started: Instant,
}

impl PublishSpan {
    /// Starts the span of a request publishing `messages` to `topic` (an ARN or a name).
    fn start(topic: &str, messages: &[OutgoingMessage], metrics: PublishMetrics) -> PublishSpan {
        let tracer = global::tracer("pubsub-core");
        let name = topic.rsplit(':').next().unwrap_or(topic);
        let links = match messages {
            [_, _, ..] => messages
                .iter()
                .filter_map(|message| message.attributes.get(TRACEPARENT).and_then(AttributeValue::as_str))
                .filter_map(|traceparent| extract(traceparent, None).ok())
                .map(Link::with_context)
                .collect(),
            _ => Vec::new(),
        };
        let mut span = tracer
            .span_builder(format!("send {name}"))
            .with_kind(SpanKind::Producer)
            .with_links(links)
            .start(&tracer);
        if span.is_recording() {
            span.set_attributes([
                KeyValue::new("messaging.system", "aws_sns"),
                KeyValue::new("messaging.operation.type", "send"),
                KeyValue::new("messaging.operation.name", "publish"),
                KeyValue::new("messaging.destination.name", name.to_owned()),
                KeyValue::new("messaging.batch.message_count", messages.len() as i64),
            ]);
        }
        PublishSpan { span, metrics, topic: topic.to_owned(), started: Instant::now() }
    }

    /// Ends the span with the request's result: an error when it failed, or refused entries.
    pub(crate) fn end(mut self, results: &Result<Vec<Result<MessageId, EntryError>>, TransportError>) {
        let (sent, refused) = match results {
            Ok(results) => {
                let refused = results.iter().filter(|result| result.is_err()).count() as u64;
                (results.len() as u64 - refused, refused)
            }
            Err(_) => (0, 0),
        };
        self.metrics.request(&self.topic, sent, refused, self.started.elapsed(), results.is_err());
        if self.span.is_recording() {
            match results {
                Err(error) => self.span.set_status(Status::error(error.to_string())),
                Ok(results) => {
                    let refused = results.iter().filter(|result| result.is_err()).count();
                    if refused > 0 {
                        self.span
                            .set_status(Status::error(format!("{refused} of {} refused", results.len())));
                    }
                    if let [Ok(id)] = results.as_slice() {
                        self.span.set_attribute(KeyValue::new("messaging.message.id", id.clone()));
                    }
                }
            }
        }
        self.span.end();
    }
}
