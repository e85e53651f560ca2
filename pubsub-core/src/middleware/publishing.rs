//! Publish layers: what a layer around publishing sees and answers.
//!
//! Every message a [`Producer`](crate::Producer) sends first goes through its layers (added
//! with [`Producer::layer`](crate::Producer::layer)) as a [`PublishRequest`]: the topic the
//! producer chose and the [`OutgoingMessage`] (media type, body, attributes). The stack is a
//! [`PublishService`], whose innermost service, [`AcceptPublish`], answers each request as it
//! came; what the outermost layer answers is what is sent, and an error is a refusal.
//!
//! A layer of one's own is a [`tower::Layer`] and a [`tower::Service`]; for a change to every
//! request, `tower::util::MapRequestLayer` is enough:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), pubsub_core::middleware::BoxError> {
//! use std::task::{Context, Poll};
//!
//! use pubsub_core::middleware::{AcceptPublish, BoxError, PublishRequest, PublishService};
//! use pubsub_core::transport::{BoxFuture, OutgoingMessage};
//! use tower::{Layer, Service, ServiceExt};
//!
//! /// Refuses the messages of one media type.
//! #[derive(Clone)]
//! struct Embargo<S> {
//!     media_type: &'static str,
//!     inner: S,
//! }
//!
//! impl<S> Service<PublishRequest> for Embargo<S>
//! where
//!     S: Service<PublishRequest, Response = PublishRequest, Error = BoxError>,
//!     S::Future: Send + 'static,
//! {
//!     type Response = PublishRequest;
//!     type Error = BoxError;
//!     type Future = BoxFuture<'static, Result<PublishRequest, BoxError>>;
//!
//!     fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
//!         self.inner.poll_ready(cx)
//!     }
//!
//!     fn call(&mut self, request: PublishRequest) -> Self::Future {
//!         if request.media_type() == self.media_type {
//!             return Box::pin(async { Err(BoxError::from("under embargo")) });
//!         }
//!         Box::pin(self.inner.call(request))
//!     }
//! }
//!
//! #[derive(Clone)]
//! struct EmbargoLayer(&'static str);
//!
//! impl<S> Layer<S> for EmbargoLayer {
//!     type Service = Embargo<S>;
//!
//!     fn layer(&self, inner: S) -> Embargo<S> {
//!         Embargo { media_type: self.0, inner }
//!     }
//! }
//!
//! // A layer can be tried on its own, around the innermost service.
//! let service = EmbargoLayer("text/secret").layer(PublishService::new(AcceptPublish));
//! let request = PublishRequest::new("topic", OutgoingMessage::new("text/secret", "{}"));
//! let refused = service.clone().oneshot(request).await.unwrap_err();
//! assert_eq!(refused.to_string(), "under embargo");
//! let request = PublishRequest::new("topic", OutgoingMessage::new("text/plain", "{}"));
//! assert_eq!(service.oneshot(request).await?.media_type(), "text/plain");
//! # Ok(())
//! # }
//! ```

use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::util::BoxCloneSyncService;
use tower::{BoxError, Layer, Service, ServiceExt};

use crate::producer::{PublishError, Topic};
use crate::transport::{AttributeValue, Attributes, OutgoingMessage};
use crate::unwind::{panic_text, CatchUnwind};

/// What a publish layer sees: one message on its way out, and where it goes.
///
/// Build one with [`PublishRequest::new`] (to test a layer); in a producer, the producer
/// makes them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishRequest {
    /// The destination the producer chose for the message's media type (an SNS topic ARN,
    /// or a topic name on the embedded broker). A layer may change it: the message is sent
    /// where the answer says.
    pub topic: String,
    /// The message: media type, encoded body, attributes.
    pub message: OutgoingMessage,
}

impl PublishRequest {
    /// A request to publish `message` to `topic`.
    pub fn new(topic: impl Into<String>, message: OutgoingMessage) -> PublishRequest {
        PublishRequest { topic: topic.into(), message }
    }

    /// The destination.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The message's media type (sent as the `media_type` attribute).
    pub fn media_type(&self) -> &str {
        &self.message.media_type
    }

    /// The encoded body.
    pub fn body(&self) -> &str {
        &self.message.body
    }

    /// The message attributes besides `media_type`.
    pub fn attributes(&self) -> &Attributes {
        &self.message.attributes
    }

    /// The message attributes besides `media_type`, to change.
    pub fn attributes_mut(&mut self) -> &mut Attributes {
        &mut self.message.attributes
    }

    /// The text of the attribute `name`, if set (a `String` or `Number` attribute; see
    /// [`attributes`](PublishRequest::attributes) for `Binary` ones).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.message.attributes.get(name).and_then(AttributeValue::as_str)
    }

    /// Sets the attribute `name` to `value`; returns the value it replaced.
    ///
    /// The producer refuses, after the layers, a name SNS does not take (see
    /// [`PublishError::InvalidAttribute`]), `media_type`, an empty value, and more than
    /// [`MAX_MESSAGE_ATTRIBUTES`](crate::transport::MAX_MESSAGE_ATTRIBUTES) attributes with
    /// `media_type`.
    pub fn set_attribute(
        &mut self,
        name: impl Into<String>,
        value: impl Into<AttributeValue>,
    ) -> Option<AttributeValue> {
        self.message.attributes.insert(name.into(), value.into())
    }

    /// This request with the attribute `name` set to `value` (for `MapRequestLayer`
    /// closures).
    pub fn with_attribute(
        mut self,
        name: impl Into<String>,
        value: impl Into<AttributeValue>,
    ) -> PublishRequest {
        self.set_attribute(name, value);
        self
    }

    /// Removes the attribute `name`; returns its value.
    pub fn remove_attribute(&mut self, name: &str) -> Option<AttributeValue> {
        self.message.attributes.remove(name)
    }

    /// The message, without its destination.
    pub fn into_message(self) -> OutgoingMessage {
        self.message
    }
}

/// A publish layer stack, type-erased: what every layer added with
/// [`Producer::layer`](crate::Producer::layer) wraps. It answers a request with the request
/// to send (changed or not), or refuses it with an error.
pub type PublishService = BoxCloneSyncService<PublishRequest, PublishRequest, BoxError>;

/// The innermost publish service: answers each request as it came (the message is accepted
/// as it is). Wrap it in a layer to try the layer on its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptPublish;

impl Service<PublishRequest> for AcceptPublish {
    type Response = PublishRequest;
    type Error = BoxError;
    type Future = Ready<Result<PublishRequest, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: PublishRequest) -> Self::Future {
        ready(Ok(request))
    }
}

/// A publish layer panicked on a message: the error in
/// [`PublishError::RefusedByLayer`] for that message, which was not sent. The panic goes no
/// further; the producer keeps working.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a publish layer panicked: {message}")]
pub struct PublishLayerPanicked {
    message: String,
}

impl PublishLayerPanicked {
    /// The panic's message (or a note that its payload was not a string).
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A layer that can go around publishing: any [`Layer`] of a [`PublishService`] whose service
/// answers a [`PublishRequest`], is `Clone + Send + Sync`, and whose error converts into a
/// [`BoxError`]. Implemented for every such layer; what
/// [`Producer::layer`](crate::Producer::layer) takes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot go around publishing",
    label = "not a layer whose service is `Service<PublishRequest, Response = PublishRequest>` + Clone + Send + Sync",
    note = "a layer's service is cloned for every message, so it must be Clone and share its state between clones; tower's RateLimit is not Clone: put it behind a BufferLayer (`ServiceBuilder::new().buffer(64).rate_limit(..)`)"
)]
pub trait PublishLayer: Send + Sync + 'static {
    /// `inner` wrapped in this layer, its error boxed.
    fn wrap(&self, inner: PublishService) -> PublishService;
}

// Not recommended in diagnostics, so that a layer that does not fit is told this trait's
// message (with its advice) rather than only the one bound it misses.
#[diagnostic::do_not_recommend]
impl<L> PublishLayer for L
where
    L: Layer<PublishService> + Send + Sync + 'static,
    L::Service: Service<PublishRequest, Response = PublishRequest> + Clone + Send + Sync + 'static,
    <L::Service as Service<PublishRequest>>::Error: Into<BoxError>,
    <L::Service as Service<PublishRequest>>::Future: Send + 'static,
{
    fn wrap(&self, inner: PublishService) -> PublishService {
        PublishService::new(self.layer(inner).map_err(Into::into))
    }
}

/// One added layer, kept so that the stack can be built again, in order, when a layer is added
/// after it.
type AddedLayer = Arc<dyn PublishLayer>;

/// A producer's publish layers and the stack built from them.
pub(crate) struct PublishLayers {
    /// In the order they were added: the first is the outermost.
    layers: Vec<AddedLayer>,
    stack: PublishService,
}

impl PublishLayers {
    /// `existing`'s layers (if any) and `layer` inside them.
    pub(crate) fn with(existing: Option<&PublishLayers>, layer: impl PublishLayer) -> PublishLayers {
        let mut layers = existing.map_or_else(Vec::new, |existing| existing.layers.clone());
        layers.push(Arc::new(layer));
        // The last added wraps the innermost service first; the first added ends outermost.
        let stack =
            layers.iter().rev().fold(PublishService::new(AcceptPublish), |inner, layer| layer.wrap(inner));
        PublishLayers { layers, stack }
    }

    /// How many layers were added.
    pub(crate) fn len(&self) -> usize {
        self.layers.len()
    }

    /// Runs every entry through the stack, concurrently; the entries to send, in order, or
    /// [`PublishError::Refused`] with each refused one by index.
    pub(crate) async fn run(
        &self,
        entries: Vec<(Topic, OutgoingMessage)>,
    ) -> Result<Vec<(Topic, OutgoingMessage)>, PublishError> {
        let total = entries.len();
        // The shared topics, kept: a request whose topic the layers left as it was sends to
        // the same one, not to a new copy.
        let topics: Vec<Topic> = entries.iter().map(|(topic, _)| topic.clone()).collect();
        let answers = futures_util::future::join_all(
            entries
                .into_iter()
                .map(|(topic, message)| self.call(PublishRequest { topic: topic.to_string(), message })),
        )
        .await;
        let mut accepted = Vec::with_capacity(total);
        let mut refused = Vec::new();
        for (index, (answer, topic)) in answers.into_iter().zip(topics).enumerate() {
            match answer {
                Ok(request) => {
                    let topic = if *request.topic == *topic { topic } else { Topic::from(request.topic) };
                    accepted.push((topic, request.message));
                }
                Err(error) => refused.push((index, error)),
            }
        }
        if refused.is_empty() {
            Ok(accepted)
        } else {
            Err(PublishError::Refused { total, refused })
        }
    }

    /// One request through a clone of the stack (ready, then called), a panic anywhere in it
    /// (the clone, `poll_ready`, the synchronous `call`, its future) caught and made a
    /// refusal.
    async fn call(&self, request: PublishRequest) -> Result<PublishRequest, PublishError> {
        let media_type = request.message.media_type.clone();
        let stack = &self.stack;
        let through = CatchUnwind(Box::pin(async move {
            let mut service = stack.clone();
            service.ready().await?.call(request).await
        }));
        let error = match through.await {
            Ok(Ok(request)) => return Ok(request),
            Ok(Err(error)) => error,
            Err(panic) => Box::new(PublishLayerPanicked { message: panic_text(&*panic) }),
        };
        tracing::debug!(media_type = %media_type, error = %error, "a publish layer refused the message");
        Err(PublishError::RefusedByLayer { media_type: media_type.into_owned(), error })
    }
}
