//! Handlers: what they take, what they report, and how `#[handler]` registers them.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::envelope::Envelope;
use crate::error::DecodeError;
use crate::opaque::{OpaqueData, DEFAULT_TTL};
use crate::producer::{PublishError, TopicMap};
use crate::transport::{BoxFuture, OutgoingMessage};
use crate::untyped::{encode_untyped, UntypedMessage};
use crate::{encode, PubSubMessage};

/// What a handler reports when it does not simply succeed.
///
/// Any error type converts into a failure with `?`; skip and retry are said explicitly:
///
/// ```
/// use std::time::Duration;
/// use pubsub_core::HandlerError;
///
/// fn check(stock: u32) -> Result<(), HandlerError> {
///     if stock == 0 {
///         return Err(HandlerError::retry_after(Duration::from_secs(30)));
///     }
///     let _n: u32 = "12".parse()?; // any std error is a failure
///     Err(HandlerError::skip("already shipped"))
/// }
/// assert!(matches!(check(0), Err(HandlerError::Retry { .. })));
/// assert!(matches!(check(1), Err(HandlerError::Skip(_))));
/// ```
pub enum HandlerError {
    /// Decline the message (SKIPPED: deleted, its deferred messages sent).
    Skip(String),
    /// Try again after `after` (RETRIED: a nack).
    Retry {
        /// How long the message stays invisible.
        after: Duration,
        /// Why, for the log.
        reason: String,
    },
    /// Anything else (FAILED: retried by the backoff policy).
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

impl HandlerError {
    /// SKIPPED with `reason`.
    pub fn skip(reason: impl Into<String>) -> HandlerError {
        HandlerError::Skip(reason.into())
    }

    /// RETRIED after `after`.
    pub fn retry_after(after: Duration) -> HandlerError {
        HandlerError::Retry { after, reason: format!("retry requested after {after:?}") }
    }

    /// FAILED with a message.
    pub fn failed(message: impl fmt::Display) -> HandlerError {
        HandlerError::Failed(message.to_string().into())
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> HandlerError {
        HandlerError::Failed(Box::new(error))
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Skip(reason) => write!(f, "skipped: {reason}"),
            HandlerError::Retry { reason, .. } => f.write_str(reason),
            HandlerError::Failed(error) => write!(f, "{error}"),
        }
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::Skip(reason) => f.debug_tuple("Skip").field(reason).finish(),
            HandlerError::Retry { after, reason } => {
                f.debug_struct("Retry").field("after", after).field("reason", reason).finish()
            }
            HandlerError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

/// What a handler returns: `Result<(), HandlerError>` (or `Result<(), E>` for any `E` that
/// converts), or `()`.
#[diagnostic::on_unimplemented(
    message = "a #[handler] must return `Result<(), HandlerError>` or `()`, not `{Self}`",
    label = "change the return type to `Result<(), pubsub_core::HandlerError>`"
)]
pub trait IntoHandlerResult {
    /// The result in the one form the dispatcher reads.
    fn into_handler_result(self) -> Result<(), HandlerError>;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: Into<HandlerError>> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> Result<(), HandlerError> {
        self.map_err(Into::into)
    }
}

/// What a handler's first argument can be: a `#[derive(PubSubMessage)]` type, or an
/// [`UntypedMessage`] (with `#[handler(media_type = "...")]`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a message type",
    label = "the first argument of a #[handler] must be a type with #[derive(PubSubMessage)], or UntypedMessage",
    note = "derive it: #[derive(Serialize, Deserialize, Validate, PubSubMessage)] with #[media_type = \"...\"]"
)]
pub trait HandlerInput: Sized + Send + 'static {
    /// The media type handled when the handler names none; empty for [`UntypedMessage`].
    const MEDIA_TYPE: &'static str;

    /// Reads the message out of its envelope, validated. Not a public API.
    #[doc(hidden)]
    fn from_envelope(envelope: &Envelope<'_>) -> Result<Self, DecodeError>;
}

impl<T: PubSubMessage> HandlerInput for T {
    const MEDIA_TYPE: &'static str = T::MEDIA_TYPE;

    fn from_envelope(envelope: &Envelope<'_>) -> Result<T, DecodeError> {
        crate::envelope::typed_from_envelope(envelope)
    }
}

impl HandlerInput for UntypedMessage {
    const MEDIA_TYPE: &'static str = "";

    fn from_envelope(envelope: &Envelope<'_>) -> Result<UntypedMessage, DecodeError> {
        crate::untyped::untyped_from_envelope(envelope)
    }
}

/// A collaborator a handler takes as `&T`, declared so the daemon can check at start-up.
#[derive(Clone, Copy)]
pub struct Need {
    type_id: fn() -> TypeId,
    type_name: fn() -> &'static str,
}

impl Need {
    /// The need of a `T`.
    pub const fn of<T: Send + Sync + 'static>() -> Need {
        Need { type_id: TypeId::of::<T>, type_name: std::any::type_name::<T> }
    }

    /// The Rust type's name.
    pub fn type_name(&self) -> &'static str {
        (self.type_name)()
    }
}

impl fmt::Debug for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())
    }
}

/// Shared state for handlers (a database pool, an HTTP client): the seed's
/// `graph.collaborator`. One value per type; cheap to clone.
///
/// ```
/// use pubsub_core::Collaborators;
///
/// struct Db(&'static str);
/// let collaborators = Collaborators::new().with(Db("postgres://"));
/// assert_eq!(collaborators.get::<Db>().unwrap().0, "postgres://");
/// assert!(collaborators.get::<String>().is_none());
/// ```
#[derive(Clone, Default)]
pub struct Collaborators {
    values: Arc<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Collaborators {
    /// None yet.
    pub fn new() -> Collaborators {
        Collaborators::default()
    }

    /// With `value` added (replacing any earlier value of its type).
    pub fn with<T: Send + Sync + 'static>(mut self, value: T) -> Collaborators {
        Arc::make_mut(&mut self.values).insert(TypeId::of::<T>(), Arc::new(value));
        self
    }

    /// The value of type `T`, if given.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.values.get(&TypeId::of::<T>()).and_then(|value| value.downcast_ref::<T>())
    }

    /// Whether `need` is met.
    pub fn satisfies(&self, need: &Need) -> bool {
        self.values.contains_key(&(need.type_id)())
    }
}

impl fmt::Debug for Collaborators {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Collaborators({} values)", self.values.len())
    }
}

/// Everything a handler knows about the message it handles, and its way to publish.
///
/// Messages published through the context are queued and sent only after the handler returns
/// SUCCEEDED or SKIPPED (the seed's deferred producer); they carry the request id on and the
/// decremented hop budget. On failure none of them leave.
pub struct MessageContext {
    message_id: String,
    receive_count: u32,
    media_type: String,
    opaque_data: OpaqueData,
    outgoing_opaque: OpaqueData,
    topics: Option<Arc<TopicMap>>,
    collaborators: Collaborators,
    outbox: Mutex<Vec<(String, OutgoingMessage)>>,
}

impl MessageContext {
    pub(crate) fn new(
        message_id: String,
        receive_count: u32,
        media_type: String,
        opaque_data: OpaqueData,
        topics: Option<Arc<TopicMap>>,
        collaborators: Collaborators,
    ) -> MessageContext {
        let mut outgoing_opaque = opaque_data.clone();
        outgoing_opaque.set_ttl(opaque_data.ttl().unwrap_or(DEFAULT_TTL) - 1);
        outgoing_opaque.remove(crate::opaque::REQUEST_PUBLISHED);
        MessageContext {
            message_id,
            receive_count,
            media_type,
            opaque_data,
            outgoing_opaque,
            topics,
            collaborators,
            outbox: Mutex::new(Vec::new()),
        }
    }

    /// The queue's message id.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// `ApproximateReceiveCount`: 1 on the first delivery.
    pub fn receive_count(&self) -> u32 {
        self.receive_count
    }

    /// The message's media type.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The opaque data the message arrived with.
    pub fn opaque_data(&self) -> &OpaqueData {
        &self.opaque_data
    }

    /// The correlation id, carried on to what this handler publishes.
    pub fn request_id(&self) -> Option<&str> {
        self.opaque_data.request_id()
    }

    /// The hop budget of this handling context (the message's, or 32, less one); what the
    /// messages published from here carry.
    pub fn ttl(&self) -> i64 {
        self.outgoing_opaque.ttl().unwrap_or(DEFAULT_TTL - 1)
    }

    /// The collaborator of type `T`. Handlers usually take it as an argument `&T` instead,
    /// which the daemon checks at start-up.
    pub fn collaborator<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.collaborators.get::<T>()
    }

    /// Queues `message` to be published when the handler succeeds. It is validated and
    /// encoded now, and its topic is chosen now, so a mistake fails the handler here.
    pub fn publish<M: PubSubMessage>(&self, message: &M) -> Result<(), PublishError> {
        let body = encode(message, &self.outgoing_opaque)?;
        self.queue(M::MEDIA_TYPE, body)
    }

    /// Queues an untyped message, as [`publish`](MessageContext::publish).
    pub fn publish_untyped(&self, message: &UntypedMessage) -> Result<(), PublishError> {
        let body = encode_untyped(message, &self.outgoing_opaque)?;
        self.queue(message.media_type.as_str(), body)
    }

    fn queue(&self, media_type: &str, body: String) -> Result<(), PublishError> {
        crate::producer::check_size(media_type, &body)?;
        let topic = match &self.topics {
            Some(topics) => topics.topic_for(media_type)?.to_owned(),
            None => return Err(PublishError::TopicNotDefined { media_type: media_type.to_owned() }),
        };
        let message = OutgoingMessage { media_type: media_type.to_owned(), body };
        self.outbox.lock().expect("outbox lock").push((topic, message));
        Ok(())
    }

    /// The queued messages, emptied.
    pub(crate) fn take_outbox(&self) -> Vec<(String, OutgoingMessage)> {
        std::mem::take(&mut *self.outbox.lock().expect("outbox lock"))
    }
}

impl fmt::Debug for MessageContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageContext")
            .field("message_id", &self.message_id)
            .field("receive_count", &self.receive_count)
            .field("media_type", &self.media_type)
            .field("opaque_data", &self.opaque_data)
            .finish_non_exhaustive()
    }
}

/// The future a handler call is.
pub type HandlerFuture = BoxFuture<'static, Result<(), HandlerError>>;

/// Starts a handler on a message: reads the message out of the envelope (an error is the
/// message's own, FAILED) and returns the handler's future.
pub type HandlerCall = fn(&Envelope<'_>, Arc<MessageContext>) -> Result<HandlerFuture, DecodeError>;

/// A handler: what `#[handler]` registers, or what [`Handler::new`] builds by hand.
#[derive(Clone, Copy)]
pub struct Handler {
    name: &'static str,
    media_type: &'static str,
    needs: &'static [Need],
    call: HandlerCall,
}

impl Handler {
    /// A handler named `name` (its function's path) for `media_type` (a media type or a
    /// `prefix.*` pattern), needing `needs`, started by `call`. `#[handler]` writes this.
    pub const fn new(
        name: &'static str,
        media_type: &'static str,
        needs: &'static [Need],
        call: HandlerCall,
    ) -> Handler {
        Handler { name, media_type, needs, call }
    }

    /// The function's path, e.g. `my_service::handlers::on_order`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The media type or `prefix.*` pattern handled.
    pub fn media_type(&self) -> &'static str {
        self.media_type
    }

    /// The collaborators it takes.
    pub fn needs(&self) -> &'static [Need] {
        self.needs
    }

    pub(crate) fn start(
        &self,
        envelope: &Envelope<'_>,
        context: Arc<MessageContext>,
    ) -> Result<HandlerFuture, DecodeError> {
        (self.call)(envelope, context)
    }

    /// Whether `name` selects this handler: its full path, or its last segment.
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name || self.name.rsplit("::").next() == Some(name)
    }

    /// Every handler linked into this binary with `#[handler]`.
    pub fn linked() -> impl Iterator<Item = &'static Handler> {
        inventory::iter::<Handler>.into_iter()
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("needs", &self.needs)
            .finish()
    }
}

inventory::collect!(Handler);
