//! Handling one received message: from its body to an [`Outcome`], following the seed's
//! results table. Every fault is the message's own; nothing here fails a batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tower::ServiceExt;

use crate::backoff::BackoffPolicy;
use crate::envelope::Envelope;
use crate::handlers::{Collaborators, Handler, HandlerError, MessageContext};
use crate::media_type::MediaTypeTable;
use crate::middleware::{outcome_of_layer_error, BoxError, HandlerLayers, HandlerRequest, HandlerService};
use crate::opaque::DEFAULT_TTL;
use crate::outcome::{excerpt, Outcome, Verdict};
use crate::payload::{pointer_in, PayloadPointer, Resolver};
use crate::plumbing::DecodedMessage;
use crate::producer::Producer;
use crate::telemetry::{MessageTrace, Telemetry};
use crate::transport::{MessageId, ReceivedMessage};
use crate::unwind::{panic_text, CatchUnwind};
use crate::{MediaType, MediaTypePattern};

/// The most bytes of a body the DEBUG line of a FAILED or IGNORED message shows.
const MAX_LOGGED_BODY_BYTES: usize = 4096;

/// The longest valid media type: 127 bytes of type, `/`, 127 of subtype (RFC 6838). A longer
/// `mediaType` is logged and reported as an excerpt.
const MAX_MEDIA_TYPE_BYTES: usize = 255;

/// How much of an over-long `mediaType` is kept.
const MEDIA_TYPE_EXCERPT_BYTES: usize = 64;

/// Why a set of handlers cannot run together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerSetError {
    /// Two handlers claim one media type.
    #[error("media type `{media_type}` has two handlers, `{first}` and `{second}`; give this daemon one of them (DaemonBuilder::handler::<name>() or select_handlers) and the other to another daemon")]
    Duplicate {
        /// The contested media type or pattern.
        media_type: String,
        /// One handler.
        first: String,
        /// The other.
        second: String,
    },
    /// A handler named in a selection is not among the daemon's handlers.
    #[error("no handler named `{0}` is among the daemon's handlers (those registered with DaemonBuilder::handler, or else the linked ones)")]
    UnknownHandler(String),
    /// The daemon would run no handler at all.
    #[error("the daemon `{daemon}` has no handlers. #[handler] functions are collected at link time, and a crate the binary never names is not linked, so the handlers it holds are missing: name that crate in the binary (`use my_handlers as _;`) or register its handlers explicitly (`DaemonBuilder::handler::<my_handlers::on_order>()`). To run with no handler on purpose (every message IGNORED and deleted), call DaemonBuilder::allow_no_handlers")]
    NoHandlers {
        /// The daemon's name.
        daemon: String,
    },
    /// A handler needs a collaborator the daemon was not given.
    #[error("handler `{handler}` takes a `&{type_name}`, but the daemon has no such collaborator; add it with DaemonBuilder::collaborator")]
    MissingCollaborator {
        /// The handler.
        handler: String,
        /// The collaborator's type.
        type_name: String,
    },
    /// A handler's media type is not a media type or pattern.
    #[error("handler `{handler}` has an invalid media type `{media_type}`: {reason}")]
    InvalidMediaType {
        /// The handler.
        handler: String,
        /// Its media type.
        media_type: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// The handlers of one daemon, by media type: exact match first, then `prefix.*`.
#[derive(Debug, Clone, Default)]
pub struct HandlerTable {
    handlers: MediaTypeTable<Handler>,
}

impl HandlerTable {
    /// Builds the table; two handlers for one media type is an error naming both.
    pub fn new(handlers: impl IntoIterator<Item = Handler>) -> Result<HandlerTable, HandlerSetError> {
        let mut table = HandlerTable::default();
        for handler in handlers {
            let pattern = MediaTypePattern::parse(handler.media_type()).map_err(|e| {
                HandlerSetError::InvalidMediaType {
                    handler: handler.name().to_owned(),
                    media_type: handler.media_type().to_owned(),
                    reason: e.to_string(),
                }
            })?;
            if let Some(existing) = table.handlers.get(&pattern) {
                let mut names = [existing.name().to_owned(), handler.name().to_owned()];
                names.sort();
                let [first, second] = names;
                return Err(HandlerSetError::Duplicate {
                    media_type: handler.media_type().to_owned(),
                    first,
                    second,
                });
            }
            table.handlers.insert(pattern, handler);
        }
        Ok(table)
    }

    /// The handler of `media_type`.
    pub fn lookup(&self, media_type: &str) -> Option<&Handler> {
        self.handlers.lookup(media_type)
    }

    /// Every handler, in no particular order.
    pub fn handlers(&self) -> impl Iterator<Item = &Handler> {
        self.handlers.values()
    }

    /// The media types and patterns handled, sorted (what a subscription filter policy needs).
    pub fn media_types(&self) -> Vec<&str> {
        self.handlers.sorted().into_iter().map(|(pattern, _)| pattern).collect()
    }

    /// Checks every handler's collaborators are present.
    pub fn check_needs(&self, collaborators: &Collaborators) -> Result<(), HandlerSetError> {
        let mut handlers: Vec<&Handler> = self.handlers().collect();
        handlers.sort_by_key(|h| h.name());
        for handler in handlers {
            if let Some(type_name) = handler.missing_collaborator(collaborators) {
                return Err(HandlerSetError::MissingCollaborator {
                    handler: handler.name().to_owned(),
                    type_name: type_name.to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// What became of one message: for the log line, the report, the test kit and
/// [`DaemonBuilder::on_outcome`](crate::daemon::DaemonBuilder::on_outcome).
#[derive(Debug, Clone)]
pub struct HandledMessage {
    /// The queue's id of the message.
    pub message_id: MessageId,
    /// `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: u32,
    /// The result and what it does to the message.
    pub outcome: Outcome,
    /// The media type, when the envelope could be read; when it is longer than any valid
    /// media type (255 bytes), its first 64 bytes, an ellipsis and its length.
    pub media_type: Option<String>,
    /// The handler that ran, if any.
    pub handler: Option<&'static str>,
    /// Ids of the messages the handler published (sent after it succeeded).
    pub published: Vec<MessageId>,
    /// Time from the start of dispatch to the outcome.
    pub elapsed: Duration,
    /// The object its body was offloaded to, if it came as a pointer (see
    /// [`payload`](crate::payload)): what to delete once the message is, if the objects are
    /// not left to an S3 lifecycle rule.
    pub payload: Option<PayloadPointer>,
}

/// Turns received messages into outcomes: the results table, the log line, the telemetry, and
/// the sending of what handlers published. The daemon runs one; a runner of another kind (AWS
/// Lambda, a test harness) gets one from
/// [`DaemonBuilder::build_dispatcher`](crate::daemon::DaemonBuilder::build_dispatcher) and
/// settles each message by its [`Outcome`] itself.
#[derive(Clone)]
pub struct Dispatcher {
    pub(crate) handlers: Arc<HandlerTable>,
    producer: Option<Producer>,
    collaborators: Collaborators,
    max_attempts: Option<u32>,
    core: HandlerCore,
    /// Reads the bodies of messages that come as pointers.
    resolver: Resolver,
    /// Whether an offloaded body is deleted once its message is.
    pub(crate) delete_payloads: bool,
    /// The handlers with their layers; `None` without layers, to call them directly.
    layered: Option<HandlerService>,
    pub(crate) telemetry: Telemetry,
    /// Called by [`dispatch`](Dispatcher::dispatch) after each log line; the daemon calls its
    /// hook itself and leaves this `None`.
    pub(crate) on_outcome: Option<OutcomeHook>,
}

/// What [`DaemonBuilder::on_outcome`](crate::daemon::DaemonBuilder::on_outcome) calls for every
/// message.
pub(crate) type OutcomeHook = Arc<dyn Fn(&HandledMessage) + Send + Sync>;

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("handlers", &self.handlers)
            .field("producer", &self.producer)
            .field("max_attempts", &self.max_attempts)
            .field("on_outcome", &self.on_outcome.is_some())
            .finish_non_exhaustive()
    }
}

/// How a dispatcher reads offloaded bodies, and whether it deletes them once their message is.
#[derive(Debug, Clone, Default)]
pub(crate) struct Payloads {
    pub(crate) resolver: Resolver,
    pub(crate) delete: bool,
}

impl Dispatcher {
    /// The store offloaded bodies are read from, if any.
    pub(crate) fn object_store(&self) -> Option<&Arc<dyn crate::payload::ObjectStore>> {
        self.resolver.store()
    }
}

/// Handler time limits: a default, and per handler (by name) limits that override it.
#[derive(Debug, Clone, Default)]
pub(crate) struct HandlerTimeouts {
    pub(crate) default: Option<Duration>,
    pub(crate) by_handler: HashMap<&'static str, Duration>,
}

impl HandlerTimeouts {
    fn of(&self, handler: &Handler) -> Option<Duration> {
        self.by_handler.get(handler.name()).copied().or(self.default)
    }
}

/// How a dispatcher handles the messages it has a handler for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Handling {
    pub(crate) max_attempts: Option<u32>,
    pub(crate) backoff: BackoffPolicy,
    pub(crate) timeouts: HandlerTimeouts,
    pub(crate) layers: HandlerLayers,
}

impl Dispatcher {
    /// A dispatcher of `handlers`, reading `queue`, with what they take and how they are run.
    pub(crate) fn new(
        queue: &str,
        handlers: Arc<HandlerTable>,
        producer: Option<Producer>,
        collaborators: Collaborators,
        handling: Handling,
        payloads: Payloads,
    ) -> Dispatcher {
        let core = HandlerCore { timeouts: Arc::new(handling.timeouts), backoff: handling.backoff };
        let layered = handling.layers.build(handlers.handlers(), core.clone());
        let telemetry = Telemetry::new(queue);
        Dispatcher {
            handlers,
            producer,
            collaborators,
            max_attempts: handling.max_attempts,
            core,
            resolver: payloads.resolver,
            delete_payloads: payloads.delete,
            layered,
            telemetry,
            on_outcome: None,
        }
    }

    /// Handles `message` and logs one line about it (then calls the `on_outcome` hook of the
    /// builder, for a dispatcher from
    /// [`build_dispatcher`](crate::daemon::DaemonBuilder::build_dispatcher)). Every fault is
    /// the message's own: a handler that panics, times out or fails is a FAILED outcome, never
    /// an error or a panic here.
    pub async fn dispatch(&self, message: &ReceivedMessage) -> HandledMessage {
        self.dispatch_with_id(message, message.message_id.clone()).await
    }

    /// As [`dispatch`](Dispatcher::dispatch), with the message's id given apart (the daemon
    /// takes it out of the message, which it no longer needs): the id goes to the handler's
    /// context and back to the outcome, not copied.
    pub(crate) async fn dispatch_with_id(
        &self,
        message: &ReceivedMessage,
        message_id: String,
    ) -> HandledMessage {
        let started = Instant::now();
        self.telemetry.started(message);
        let mut trace = MessageTrace::new();
        let mut handled = self.handle(message, message_id, &mut trace).await;
        handled.elapsed = started.elapsed();
        log(message, &handled, &trace);
        self.telemetry.finished(&handled);
        trace.end(&handled);
        if let Some(hook) = &self.on_outcome {
            hook(&handled);
        }
        handled
    }

    /// The outcome of `message`, whose id is `message_id`. Where a handler ran, the id and the
    /// media type are its context's, taken back rather than copied.
    async fn handle(
        &self,
        message: &ReceivedMessage,
        message_id: String,
        trace: &mut MessageTrace,
    ) -> HandledMessage {
        let mut handled = HandledMessage {
            message_id,
            receive_count: message.receive_count,
            outcome: Outcome::succeeded(),
            media_type: None,
            handler: None,
            published: Vec::new(),
            elapsed: Duration::ZERO,
            payload: None,
        };
        let resolved;
        let mut message = message;
        let mut envelope = Envelope::read(&message.body);
        // Only a body that is not an object is looked at: the common path costs nothing.
        if let Some((pointer, carrier)) = pointer_in(&message.body, &envelope) {
            match self.resolver.resolve(message, &pointer, carrier).await {
                Ok(whole) => {
                    handled.payload = Some(pointer);
                    resolved = whole;
                    message = &resolved;
                    envelope = Envelope::read(&message.body);
                }
                Err(error) => envelope = Err(error),
            }
        }
        trace.start(&self.telemetry, message, &handled.message_id, envelope.as_ref().ok());
        let envelope = match envelope {
            Ok(envelope) => envelope,
            Err(error) => {
                handled.outcome = self.failed(message, error.to_string());
                return handled;
            }
        };
        let (handler, decoded) = match self.prepare(message, &envelope, &mut handled.handler) {
            Ok(ready) => ready,
            Err(outcome) => {
                // Ended before a handler ran: the outcome says the media type itself.
                handled.media_type = Some(reported_media_type(&envelope.media_type));
                handled.outcome = outcome;
                return handled;
            }
        };
        let context = Arc::new(MessageContext::new(
            message,
            std::mem::take(&mut handled.message_id),
            envelope,
            self.producer.as_ref(),
            self.collaborators.clone(),
        ));
        let request = HandlerRequest::new(handler, decoded, context.clone());
        // Inside the message's span: what the handler publishes carries it on.
        handled.outcome = trace.run(self.call(request, message)).await;
        if matches!(handled.outcome.verdict, Verdict::Succeeded | Verdict::Skipped) {
            self.send_outbox(&context, &mut handled, message, trace).await;
        }
        // A handled media type is a registered one: short, reported whole.
        let (message_id, media_type) = match Arc::try_unwrap(context) {
            Ok(context) => context.into_ids(),
            // A layer or the handler kept the context: its ids are copied.
            Err(context) => (context.message_id().to_owned(), context.media_type().to_owned()),
        };
        (handled.message_id, handled.media_type) = (message_id, Some(media_type));
        handled
    }

    /// The handler of `message` (told to `handler` once found) and its decoded content, or
    /// the outcome that ends the message before a handler runs: expired, no handler for its
    /// media type, past the maximum of attempts, or not decodable as the handler's type.
    fn prepare(
        &self,
        message: &ReceivedMessage,
        envelope: &Envelope<'_>,
        handler: &mut Option<&'static str>,
    ) -> Result<(Handler, DecodedMessage), Outcome> {
        let ttl = envelope.opaque_data.ttl().unwrap_or(DEFAULT_TTL);
        if ttl <= 0 {
            return Err(Outcome::deleted(Verdict::Expired, format!("x-request-ttl is {ttl}")));
        }
        let Some(found) = self.handlers.lookup(&envelope.media_type) else {
            let reason = match MediaType::validate(&envelope.media_type) {
                Ok(()) => "no handler for this media type".to_owned(),
                Err(error) => format!("no handler for this media type, which is not a valid one: {error}"),
            };
            return Err(Outcome::deleted(Verdict::Ignored, reason));
        };
        *handler = Some(found.name());
        if let Some(max) = self.max_attempts.filter(|max| message.receive_count > *max) {
            return Err(Outcome::deleted(
                Verdict::Skipped,
                format!("received {} times, more than the maximum of {max} attempts", message.receive_count),
            ));
        }
        match found.decode(envelope) {
            Ok(decoded) => Ok((*found, decoded)),
            Err(error) => Err(self.failed(message, error.to_string())),
        }
    }

    /// Sends what the handler queued, now that it and its layers are done with the context;
    /// a failure to send fails the message.
    async fn send_outbox(
        &self,
        context: &MessageContext,
        handled: &mut HandledMessage,
        message: &ReceivedMessage,
        trace: &MessageTrace,
    ) {
        let outbox = context.take_outbox();
        if !outbox.is_empty() {
            let count = outbox.len();
            let sent = match &self.producer {
                // In the message's context, so that the publish span is a child of its span.
                Some(producer) => trace.run(producer.send(outbox)).await.map_err(|e| e.to_string()),
                None => Err("the daemon has no producer".to_owned()),
            };
            match sent {
                Ok(ids) => handled.published = ids,
                Err(error) => {
                    handled.outcome = self.failed(
                        message,
                        format!("the handler succeeded, but publishing its {count} messages failed: {error}"),
                    );
                }
            }
        }
    }

    /// The handler's outcome, through its layers if it has any.
    async fn call(&self, request: HandlerRequest, message: &ReceivedMessage) -> Outcome {
        let Some(layered) = &self.layered else { return self.core.run(request).await };
        // A layer that panics, in `poll_ready`, `call` or its future, fails the message as a
        // handler that panics does.
        match CatchUnwind(Box::pin(layered.clone().oneshot(request))).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => outcome_of_layer_error(&error, self.core.backoff.delay(message.receive_count)),
            Err(panic) => self.failed(message, format!("a layer panicked: {}", panic_text(&*panic))),
        }
    }

    fn failed(&self, message: &ReceivedMessage, reason: String) -> Outcome {
        Outcome::failed(self.core.backoff.delay(message.receive_count), reason)
    }
}

/// A media type as an outcome reports it: whole, or when it is longer than any valid one, its
/// first bytes and its length.
fn reported_media_type(media_type: &str) -> String {
    match media_type.len() {
        len if len > MAX_MEDIA_TYPE_BYTES => {
            format!("{} ({len} bytes)", excerpt(media_type, MEDIA_TYPE_EXCERPT_BYTES))
        }
        _ => media_type.to_owned(),
    }
}

/// Calls a handler: what the dispatcher calls when there are no layers, and, as a service
/// ([`HandlerCore::service`]), the innermost service of every layer stack. Its time limit applies to the handler alone, inside the layers.
#[derive(Debug, Clone)]
pub(crate) struct HandlerCore {
    timeouts: Arc<HandlerTimeouts>,
    backoff: BackoffPolicy,
}

impl HandlerCore {
    /// This core as the innermost service of a layer stack.
    pub(crate) fn service(&self) -> HandlerService {
        let core = self.clone();
        HandlerService::new(tower::service_fn(move |request: HandlerRequest| {
            let core = core.clone();
            async move { Ok::<_, BoxError>(core.run(request).await) }
        }))
    }

    /// The handler's outcome; a panic, an error or a timeout is FAILED with its reason.
    pub(crate) async fn run(&self, request: HandlerRequest) -> Outcome {
        let (handler, message, context) = request.into_parts();
        let failed = |reason: String| Outcome::failed(self.backoff.delay(context.receive_count()), reason);
        let run = CatchUnwind(handler.call(message, context.clone()));
        let finished = match self.timeouts.of(&handler) {
            None => run.await,
            // Dropping the future cancels the handler at the await it is waiting on.
            Some(limit) => match tokio::time::timeout(limit, run).await {
                Ok(finished) => finished,
                Err(_) => {
                    return failed(format!(
                        "handler timed out after {limit:?}: it was cancelled at its next await, and what it published was not sent"
                    ))
                }
            },
        };
        match finished {
            Err(panic) => failed(format!("handler panicked: {}", panic_text(&*panic))),
            Ok(Ok(())) => Outcome::succeeded(),
            Ok(Err(HandlerError::Skip(reason))) => Outcome::deleted(Verdict::Skipped, reason),
            Ok(Err(HandlerError::Retry { after, reason })) => Outcome::retried(after, reason),
            Ok(Err(HandlerError::Failed(error))) => failed(error.to_string()),
        }
    }
}

/// The one structured line per message. Its reason is bounded (see [`Outcome::reason`]), so
/// nothing a sender writes makes it long; the body itself is logged only at DEBUG, cut at
/// 4 KiB, for the messages that FAILED or were IGNORED, for an operator running with
/// `--debug`.
fn log(message: &ReceivedMessage, handled: &HandledMessage, trace: &MessageTrace) {
    let media_type = handled.media_type.as_deref().unwrap_or("-");
    let handler = handled.handler.unwrap_or("-");
    let result = handled.outcome.verdict.as_str();
    // Through u64: u128 to f64 is a library call (no duration is 584,000 years long).
    let elapsed_ms = u64::try_from(handled.elapsed.as_micros()).unwrap_or(u64::MAX) as f64 / 1000.0;
    let message_id = handled.message_id.as_str();
    let receive_count = message.receive_count;
    let reason = handled.outcome.reason.as_deref().unwrap_or_default();
    // With OpenTelemetry, the ids of the message's span, so that a log line finds its trace.
    let (trace_id, span_id) = trace.ids();
    let (trace_id, span_id) = (trace_id.as_deref(), span_id.as_deref());
    // One line whatever the level; tracing needs the level as a constant, hence one arm each.
    // The message is a text field, first as a format string's would be: recorded as `&str`,
    // it is written without `core::fmt`.
    macro_rules! message_handled {
        ($level:expr, $($outcome:tt)*) => {
            tracing::event!($level, message = "message handled", media_type, message_id, handler, result,
                elapsed_ms, receive_count, $($outcome)*, trace_id, span_id)
        };
    }
    match handled.outcome.verdict {
        Verdict::Succeeded => message_handled!(tracing::Level::INFO, published = handled.published.len()),
        Verdict::Failed | Verdict::Ignored => message_handled!(tracing::Level::WARN, reason),
        _ => message_handled!(tracing::Level::INFO, reason),
    }
    if matches!(handled.outcome.verdict, Verdict::Failed | Verdict::Ignored) {
        tracing::debug!(
            message_id,
            result,
            body_bytes = message.body.len(),
            body = &*excerpt(&message.body, MAX_LOGGED_BODY_BYTES),
            "message body"
        );
    }
    if !handled.published.is_empty() {
        tracing::info!(message_id, published = ?handled.published, "deferred messages sent");
    }
}
