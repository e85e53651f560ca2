//! The span of one processed message, and the context it hands on.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use opentelemetry::context::FutureExt as _;
use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::trace::{Link, SpanContext, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::propagation::{extract, inject, TRACEPARENT, TRACESTATE};
use crate::dispatch::HandledMessage;
use crate::envelope::Envelope;
use crate::outcome::Verdict;
use crate::transport::ReceivedMessage;

/// What a dispatcher traces with: the global tracer as it was when the daemon was built, and
/// the queue's name.
#[derive(Clone)]
pub(crate) struct Telemetry {
    tracer: Arc<BoxedTracer>,
    queue: Arc<str>,
    span_name: Arc<str>,
}

impl Telemetry {
    pub(crate) fn new(queue: &str) -> Telemetry {
        Telemetry {
            tracer: Arc::new(global::tracer("pubsub-core")),
            queue: queue.into(),
            span_name: format!("process {queue}").into(),
        }
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

    /// Starts the span, a child of the context the message carries (the `traceparent` message
    /// attribute under raw delivery, or in the SNS notification's `MessageAttributes`), which
    /// it also links to. A malformed context is ignored (logged at debug).
    pub(crate) fn start(
        &mut self,
        telemetry: &Telemetry,
        message: &ReceivedMessage,
        envelope: Option<&Envelope<'_>>,
    ) {
        let parent = incoming_context(message, envelope);
        let parent_context = match &parent {
            Some(remote) => Context::new().with_remote_span_context(remote.clone()),
            None => Context::new(),
        };
        let links = parent.into_iter().map(Link::with_context).collect();
        let span = telemetry
            .tracer
            .span_builder(telemetry.span_name.to_string())
            .with_kind(SpanKind::Consumer)
            .with_links(links)
            .start_with_context(&*telemetry.tracer, &parent_context);
        let context = parent_context.with_span(span);
        let span = context.span();
        if span.is_recording() {
            span.set_attributes([
                KeyValue::new("messaging.system", "aws_sqs"),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.operation.name", "process"),
                KeyValue::new("messaging.destination.name", telemetry.queue.to_string()),
                KeyValue::new("messaging.message.id", message.message_id.clone()),
                KeyValue::new("messaging.message.body.size", message.body.len() as i64),
                KeyValue::new("pubsub.receive_count", i64::from(message.receive_count)),
            ]);
        }
        self.request_id = envelope.and_then(|e| e.opaque_data.request_id()).map(str::to_owned);
        self.context = Some(context);
    }

    /// `future`, run inside the span: what it publishes carries the span's context.
    pub(crate) fn run<F: Future>(&self, future: F) -> impl Future<Output = F::Output> {
        future.with_context(self.context.clone().unwrap_or_default())
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

/// The trace context a received message carries, if a valid one.
fn incoming_context(message: &ReceivedMessage, envelope: Option<&Envelope<'_>>) -> Option<SpanContext> {
    let (traceparent, tracestate) = match message.attributes.get(TRACEPARENT) {
        Some(traceparent) => (traceparent.clone(), message.attributes.get(TRACESTATE).cloned()),
        None => {
            let envelope = envelope?;
            (envelope.notification_attribute(TRACEPARENT)?, envelope.notification_attribute(TRACESTATE))
        }
    };
    match extract(&traceparent, tracestate.as_deref()) {
        Ok(context) => Some(context),
        Err(reason) => {
            tracing::debug!(message_id = %message.message_id, %reason, "trace context ignored");
            None
        }
    }
}

/// Writes the current context (a span of the caller's, or the span of the message being
/// handled) into `attributes`, for the message they belong to.
pub(crate) fn inject_current(attributes: &mut BTreeMap<String, String>) {
    let context = Context::current();
    inject(context.span().span_context(), attributes);
}
