//! OpenTelemetry (feature `otel`): a CONSUMER span per message, named and attributed by the
//! messaging semantic conventions, the child of the trace context the message carries; a
//! PRODUCER span per publish request; metrics of both; and the context carried on in the `traceparent` and `tracestate` message attributes of what is
//! published under it. Without the feature the same calls compile to nothing.
//!
//! Spans go to the global tracer provider (`opentelemetry::global::set_tracer_provider`), read
//! when the daemon is built: set it up before. Propagation needs no provider: with none, a
//! message published under a context still carries it, and a daemon still continues an
//! incoming trace in what its handlers publish.

#[cfg(feature = "otlp")]
pub mod export;
#[cfg(feature = "otel")]
mod metrics;
#[cfg(feature = "otel")]
mod propagation;
#[cfg(feature = "otel")]
mod span;

#[cfg(feature = "otel")]
pub use propagation::{context_from_environment, TRACEPARENT, TRACESTATE};

#[cfg(feature = "otel")]
pub(crate) use propagation::give_way;
#[cfg(feature = "otel")]
pub(crate) use span::{inject_current, MessageTrace, ProducerTelemetry, Telemetry};

#[cfg(not(feature = "otel"))]
pub(crate) use off::{give_way, inject_current, MessageTrace, ProducerTelemetry, Telemetry};

/// The same calls, doing nothing, when the feature is off.
#[cfg(not(feature = "otel"))]
mod off {
    use std::future::Future;

    use crate::dispatch::HandledMessage;
    use crate::envelope::Envelope;
    use crate::transport::{EntryError, MessageId, OutgoingMessage, ReceivedMessage, TransportError};

    /// What a dispatcher traces with.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct Telemetry;

    impl Telemetry {
        pub(crate) fn new(_queue: &str) -> Telemetry {
            Telemetry
        }

        pub(crate) fn started(&self, _: &ReceivedMessage) {}

        pub(crate) fn finished(&self, _: &HandledMessage) {}

        pub(crate) fn extended(&self, _: usize) {}

        pub(crate) fn settle_failed(&self, _: usize) {}

        pub(crate) fn released(&self) {}
    }

    /// One message's span.
    pub(crate) struct MessageTrace;

    impl MessageTrace {
        pub(crate) fn new() -> MessageTrace {
            MessageTrace
        }

        pub(crate) fn start(
            &mut self,
            _: &Telemetry,
            _: &ReceivedMessage,
            _: &str,
            _: Option<&Envelope<'_>>,
        ) {
        }

        pub(crate) fn run<F: Future>(&self, future: F) -> F {
            future
        }

        pub(crate) fn end(self, _: &HandledMessage) {}

        pub(crate) fn ids(&self) -> (Option<String>, Option<String>) {
            (None, None)
        }
    }

    pub(crate) fn inject_current(_: &mut crate::transport::Attributes) {}

    pub(crate) fn give_way(_: &mut crate::transport::Attributes) {}

    /// What a producer measures with.
    #[derive(Debug, Clone)]
    pub(crate) struct ProducerTelemetry;

    impl ProducerTelemetry {
        pub(crate) fn new() -> ProducerTelemetry {
            ProducerTelemetry
        }

        pub(crate) fn request(&self, _: &str, _: &[OutgoingMessage]) -> PublishSpan {
            PublishSpan
        }
    }

    /// One publish request's span.
    pub(crate) struct PublishSpan;

    impl PublishSpan {
        pub(crate) fn end(self, _: &Result<Vec<Result<MessageId, EntryError>>, TransportError>) {}
    }
}
