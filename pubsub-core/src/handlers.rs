//! Handlers: what they take, what they report, and how `#[handler]` registers them.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::envelope::Envelope;
use crate::error::DecodeError;
use crate::plumbing::{DecodedMessage, HandlerCall, HandlerDecode, HandlerFuture, Need};

pub use crate::chains::fifo_chains;
pub use crate::dispatch::{Dispatcher, HandlerSetError, HandlerTable};
use crate::opaque::{OpaqueData, DEFAULT_TTL};
use crate::payload::LargePayloads;
use crate::producer::{Producer, PublishError, PublishOptions, TopicMap};
use crate::transport::{AttributeValue, Attributes, OutgoingMessage, ReceivedMessage, MEDIA_TYPE_ATTRIBUTE};
use crate::Message;

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

/// Shared state for handlers (a database pool, an HTTP client): the seed's
/// `graph.collaborator`. One value per type; cheap to clone.
///
/// ```
/// use pubsub_core::handlers::Collaborators;
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

    /// Whether `need` is met (the context always is).
    pub(crate) fn satisfies(&self, need: &Need) -> bool {
        need.is_context || self.values.contains_key(&(need.type_id)())
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
    /// Read on first use: most handlers never look, and reading them was a parse and a map
    /// per message.
    attributes: OnceLock<Attributes>,
    /// The SNS notification's `MessageAttributes`, as JSON, for `attributes`; not kept when
    /// they are `media_type` alone, as the message's media type (most notifications): then
    /// `only_media_type`, and `attributes` writes them itself.
    notification_attributes: Option<Box<str>>,
    only_media_type: bool,
    /// The message's own attributes, if any: `attributes` when the body is not a notification
    /// with readable ones.
    message_attributes: Option<Attributes>,
    group_id: Option<String>,
    topics: Option<Arc<TopicMap>>,
    /// How the daemon's producer offloads large bodies: what it offloads is not refused for size.
    large: Option<Arc<LargePayloads>>,
    collaborators: Collaborators,
    outbox: Mutex<Vec<(crate::producer::Topic, OutgoingMessage)>>,
}

impl MessageContext {
    /// `true` for this type and `false` (a trait's constant) for every other, so that
    /// `#[handler]` tells the context from a collaborator by type, whatever it is called.
    #[doc(hidden)]
    pub const __IS_MESSAGE_CONTEXT: bool = true;

    /// The context of `message`, whose envelope is `envelope`. Its attributes are those the
    /// message was published with, whether delivered raw (SQS message attributes) or in an SNS
    /// notification (its `MessageAttributes`).
    pub(crate) fn new(
        message: &ReceivedMessage,
        message_id: String,
        envelope: Envelope<'_>,
        producer: Option<&Producer>,
        collaborators: Collaborators,
    ) -> MessageContext {
        let only_media_type = match envelope.attributes_media_type {
            Some(value) => value == envelope.media_type,
            // Read by serde_json's path, which does not look.
            None => envelope
                .notification_attributes
                .is_some_and(|raw| crate::envelope::is_only_media_type(raw, &envelope.media_type)),
        };
        MessageContext {
            message_id,
            receive_count: message.receive_count,
            attributes: OnceLock::new(),
            only_media_type,
            notification_attributes: envelope
                .notification_attributes
                .filter(|_| !only_media_type)
                .map(Box::from),
            // Taken from the envelope, which the handler's decoded message no longer needs.
            media_type: envelope.media_type,
            opaque_data: envelope.opaque_data,
            message_attributes: (!message.attributes.is_empty()).then(|| message.attributes.clone()),
            group_id: message.group_id.clone(),
            topics: producer.map(|producer| producer.topics().clone()),
            large: producer.and_then(|producer| producer.large().cloned()),
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

    /// The message attributes it was published with (`media_type` among them), delivered
    /// raw or in an SNS notification alike.
    pub fn attributes(&self) -> &Attributes {
        self.attributes.get_or_init(|| {
            if self.only_media_type {
                let value = AttributeValue::from_typed("String", self.media_type.clone());
                return value.map(|value| (MEDIA_TYPE_ATTRIBUTE.to_owned(), value)).into_iter().collect();
            }
            self.notification_attributes
                .as_deref()
                .and_then(crate::envelope::read_notification_attributes)
                .unwrap_or_else(|| self.message_attributes.clone().unwrap_or_default())
        })
    }

    /// The text of the message attribute `name` (`String` and `Number` attributes).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes().get(name).and_then(crate::transport::AttributeValue::as_str)
    }

    /// On a FIFO queue, the message's group; the daemon handles a group's messages one after
    /// another, in order.
    pub fn message_group_id(&self) -> Option<&str> {
        self.group_id.as_deref()
    }

    /// The correlation id, carried on to what this handler publishes.
    pub fn request_id(&self) -> Option<&str> {
        self.opaque_data.request_id()
    }

    /// The hop budget of this handling context (the message's, or 32, less one); what the
    /// messages published from here carry.
    pub fn ttl(&self) -> i64 {
        self.opaque_data.ttl().unwrap_or(DEFAULT_TTL) - 1
    }

    /// The collaborator of type `T`. Handlers usually take it as an argument `&T` instead,
    /// which the daemon checks at start-up.
    pub fn collaborator<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.collaborators.get::<T>()
    }

    /// Queues `message` (a derived type or an [`UntypedMessage`](crate::UntypedMessage)) to
    /// be published when the handler succeeds. It is validated and encoded now, and its topic
    /// is chosen now, so a mistake fails the handler here. When it is sent, it goes through
    /// the publish layers of the daemon's producer (see [`Producer::layer`](crate::Producer::layer)):
    /// a refusal there fails the handled message. A message over SNS's limit is refused here
    /// unless that producer offloads large bodies
    /// ([`Producer::large_payloads`](crate::Producer::large_payloads)).
    pub fn publish<M: Message>(&self, message: &M) -> Result<(), PublishError> {
        self.queue(message, None)
    }

    /// As [`publish`](MessageContext::publish), with per-call settings: a FIFO group or
    /// deduplication id, a delay, message attributes (see [`PublishOptions`]). The opaque
    /// data is the context's (the request id carried on, the hop budget): the options' is not
    /// used.
    pub fn publish_with<M: Message>(
        &self,
        message: &M,
        options: &PublishOptions,
    ) -> Result<(), PublishError> {
        self.queue(message, Some(options))
    }

    fn queue<M: Message>(&self, message: &M, options: Option<&PublishOptions>) -> Result<(), PublishError> {
        let Some(topics) = &self.topics else {
            return Err(PublishError::NoProducer { media_type: message.media_type().to_owned() });
        };
        // The request id carried on, the hop budget less one; made here, not for every message
        // handled, since most handlers publish nothing.
        let mut outgoing_opaque = self.opaque_data.clone();
        outgoing_opaque.set_ttl(self.ttl());
        outgoing_opaque.remove(crate::opaque::REQUEST_PUBLISHED);
        // In the handler's span, or the message's: what it publishes continues the trace.
        let stamp = crate::opaque::published_stamp(std::time::SystemTime::now());
        let entry = crate::producer::outgoing(
            message,
            &outgoing_opaque,
            &stamp,
            options,
            topics,
            self.large.as_deref(),
        )?;
        self.outbox.lock().expect("outbox lock").push(entry);
        Ok(())
    }

    /// The message id and the media type, for the outcome, once the handler is done.
    pub(crate) fn into_ids(self) -> (String, String) {
        (self.message_id, self.media_type)
    }

    /// The queued messages, emptied.
    pub(crate) fn take_outbox(&self) -> Vec<(crate::producer::Topic, OutgoingMessage)> {
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

/// A handler: what `#[handler]` makes of an `async fn` (its name, media type, the
/// collaborators it takes, and how to call it). Linked handlers are listed by
/// [`Handler::linked`]; a daemon's by [`Daemon::handlers`](crate::daemon::Daemon::handlers).
#[derive(Clone, Copy)]
pub struct Handler {
    name: &'static str,
    media_type: &'static str,
    needs: &'static [Need],
    decode: HandlerDecode,
    call: HandlerCall,
}

impl Handler {
    /// A handler named `name` (its function's path) for `media_type` (a media type or a
    /// `prefix.*` pattern), needing `needs`, started by `call`. `#[handler]` writes this.
    pub(crate) const fn new(
        name: &'static str,
        media_type: &'static str,
        needs: &'static [Need],
        decode: HandlerDecode,
        call: HandlerCall,
    ) -> Handler {
        Handler { name, media_type, needs, decode, call }
    }

    /// The function's path, e.g. `my_service::handlers::on_order`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The media type or `prefix.*` pattern handled.
    pub fn media_type(&self) -> &'static str {
        self.media_type
    }

    /// The type names of the collaborators it takes (`&T` arguments other than the context).
    pub fn collaborators(&self) -> impl Iterator<Item = &'static str> {
        self.needs.iter().filter(|need| !need.is_context).map(Need::type_name)
    }

    /// The type name of the first collaborator it takes that `collaborators` lacks.
    pub(crate) fn missing_collaborator(&self, collaborators: &Collaborators) -> Option<&'static str> {
        self.needs.iter().find(|need| !collaborators.satisfies(need)).map(Need::type_name)
    }

    /// Reads the handler's message out of `envelope`.
    pub(crate) fn decode(&self, envelope: &Envelope<'_>) -> Result<DecodedMessage, DecodeError> {
        (self.decode)(envelope)
    }

    /// Starts the handler on a message its [`decode`](Handler::decode) read.
    pub(crate) fn call(&self, message: DecodedMessage, context: Arc<MessageContext>) -> HandlerFuture {
        (self.call)(message, context)
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

/// A `#[handler]` function, named as a type to register it explicitly:
/// `DaemonBuilder::new("billing").handler::<charge>()` runs `charge` and only the handlers so
/// named, whether or not others are linked. `#[handler]` implements it (on a hidden type that
/// shares the function's name); it cannot be implemented by hand.
///
/// ```
/// use pubsub_core::handlers::HandlerFn;
/// use pubsub_core::{handler, HandlerError, PubSubMessage};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
/// # #[media_type = "application/vnd.acme.pubsub.order"]
/// # struct Order { id: String }
///
/// #[handler]
/// async fn on_order(order: Order) -> Result<(), HandlerError> {
///     let _ = order.id;
///     Ok(())
/// }
///
/// assert_eq!(<on_order as HandlerFn>::HANDLER.media_type(), "application/vnd.acme.pubsub.order");
/// assert!(<on_order as HandlerFn>::HANDLER.is_named("on_order"));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a #[handler] function",
    label = "name an `async fn` marked #[handler] here",
    note = "#[handler] makes a type of the same name as the function; it is that type that is named here"
)]
pub trait HandlerFn {
    /// The handler.
    const HANDLER: Handler;
}
