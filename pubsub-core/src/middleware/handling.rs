//! Handler layers: handling a message is a [`Service`] from a [`HandlerRequest`] (the decoded
//! message, its context and its handler) to an [`Outcome`], so any [`Layer`] wraps it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use pubsub_core::middleware::HandlerLayers;
//! use pubsub_core::testing::HandlerTest;
//! use pubsub_core::{handler, HandlerError, PubSubMessage, Verdict};
//! use tower::limit::ConcurrencyLimitLayer;
//! use tower::timeout::TimeoutLayer;
//! # use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
//! #[media_type = "application/vnd.acme.pubsub.invoice"]
//! struct Invoice { id: String }
//!
//! #[handler]
//! async fn send_invoice(invoice: Invoice) -> Result<(), HandlerError> {
//!     tokio::time::sleep(Duration::from_secs(60)).await; // a hanging mail server
//!     Ok(())
//! }
//!
//! // Around every handler a 5 s limit; around `send_invoice` at most 4 calls at once.
//! let layers = HandlerLayers::new()
//!     .layer(TimeoutLayer::new(Duration::from_secs(5)))
//!     .layer_for::<send_invoice>(ConcurrencyLimitLayer::new(4));
//! // The same set goes to DaemonBuilder::layers and to the test kit.
//! # tokio::time::pause();
//! let run = HandlerTest::new().layers(layers).run(&Invoice { id: "i-1".into() }).await;
//! assert_eq!(run.verdict(), Verdict::Failed);
//! assert!(run.outcome.reason.unwrap().contains("timed out"));
//! # Ok(())
//! # }
//! ```

use std::any::Any;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::util::{BoxCloneSyncService, MapErr};
use tower::{Layer, Service, ServiceExt};

use super::BoxError;
use crate::dispatch::HandlerCore;
use crate::handlers::{Handler, HandlerFn, MessageContext};
use crate::outcome::{Outcome, Verdict};
use crate::plumbing::DecodedMessage;
use crate::transport::BoxFuture;

/// What a layer around a handler is given: the message, decoded and validated, its context,
/// and the handler that will take it.
pub struct HandlerRequest {
    handler: Handler,
    message: DecodedMessage,
    context: Arc<MessageContext>,
}

impl HandlerRequest {
    pub(crate) fn new(handler: Handler, message: DecodedMessage, context: Arc<MessageContext>) -> Self {
        HandlerRequest { handler, message, context }
    }

    pub(crate) fn into_parts(self) -> (Handler, DecodedMessage, Arc<MessageContext>) {
        (self.handler, self.message, self.context)
    }

    /// The handler that will take the message (its name and media type).
    pub fn handler(&self) -> &Handler {
        &self.handler
    }

    /// The message's context: its id, receive count, media type, opaque data, request id.
    pub fn context(&self) -> &MessageContext {
        &self.context
    }

    /// The message, if it is an `M` (the type the handler takes).
    pub fn message<M: Any>(&self) -> Option<&M> {
        self.message.downcast_ref::<M>()
    }

    /// The message, mutably, if it is an `M`: a layer may amend what the handler will see.
    pub fn message_mut<M: Any>(&mut self) -> Option<&mut M> {
        self.message.downcast_mut::<M>()
    }
}

impl fmt::Debug for HandlerRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerRequest")
            .field("handler", &self.handler.name())
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// A handler with the layers inside this point, as a layer is given it.
pub type HandlerService = BoxCloneSyncService<HandlerRequest, Outcome, BoxError>;

/// An error a layer returns to settle the message for good: SKIPPED (deleted, and logged with
/// this reason) rather than FAILED and retried, which is what any other layer error does.
///
/// ```
/// use pubsub_core::middleware::FinalRefusal;
///
/// let refusal = FinalRefusal::new("tenant t-9 is closed");
/// assert_eq!(refusal.to_string(), "tenant t-9 is closed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct FinalRefusal {
    reason: String,
}

impl FinalRefusal {
    /// A refusal with `reason`.
    pub fn new(reason: impl Into<String>) -> FinalRefusal {
        FinalRefusal { reason: reason.into() }
    }

    /// Why.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A layer that can go around handlers: any [`Layer`] of a [`HandlerService`] whose service
/// answers an [`Outcome`], is `Clone + Send + Sync`, and whose error converts into a
/// [`BoxError`]. Implemented for every such layer; what
/// [`HandlerLayers::layer`] and [`layer_for`](HandlerLayers::layer_for) take.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot go around handlers",
    label = "not a layer whose service is `Service<HandlerRequest, Response = Outcome>` + Clone + Send + Sync",
    note = "a layer's service is cloned for every message, so it must be Clone and share its state between clones; tower's RateLimit is not Clone: put it behind a BufferLayer (`ServiceBuilder::new().buffer(64).rate_limit(..)`)"
)]
pub trait HandlerLayer: Send + Sync + 'static {
    /// `inner` wrapped in this layer, its error boxed.
    fn wrap(&self, inner: HandlerService) -> HandlerService;
}

// Not recommended in diagnostics, so that a layer that does not fit is told this trait's
// message (with its advice) rather than only the one bound it misses.
#[diagnostic::do_not_recommend]
impl<L> HandlerLayer for L
where
    L: Layer<HandlerService> + Send + Sync + 'static,
    L::Service: Service<HandlerRequest, Response = Outcome> + Clone + Send + Sync + 'static,
    <L::Service as Service<HandlerRequest>>::Error: Into<BoxError>,
    <L::Service as Service<HandlerRequest>>::Future: Send + 'static,
{
    fn wrap(&self, inner: HandlerService) -> HandlerService {
        BoxCloneSyncService::new(MapErr::new(self.layer(inner), Into::into))
    }
}

type Wrap = Arc<dyn HandlerLayer>;

/// The layers around a daemon's handlers: those around every handler, and those around one.
///
/// Layers run in the order they are added: the first added sees the request first and the
/// outcome last. Layers for one handler run inside the layers for all. The same set serves
/// [`DaemonBuilder::layers`](crate::daemon::DaemonBuilder::layers) and
/// [`HandlerTest::layers`](crate::testing::HandlerTest::layers), so a test runs a handler
/// through what the daemon runs it through.
///
/// Each layer is applied once when the daemon is built: a layer around every handler makes one
/// service for all of them (one `ConcurrencyLimitLayer` there limits the daemon as a whole), a
/// layer for one handler one service for it. Every message calls a clone of that service, so a
/// layer's service must be `Clone` and share its state between clones as tower's concurrency
/// limit does; tower's `RateLimit`, which is not `Clone`, goes behind a `BufferLayer`
/// (`ServiceBuilder::new().buffer(64).rate_limit(10, Duration::from_secs(1))`). A
/// `BufferLayer` spawns its worker, so the daemon must be built inside a tokio runtime.
#[derive(Clone, Default)]
pub struct HandlerLayers {
    around_all: Vec<Wrap>,
    around_one: Vec<(&'static str, Wrap)>,
}

impl HandlerLayers {
    /// No layers.
    pub fn new() -> HandlerLayers {
        HandlerLayers::default()
    }

    /// Adds `layer` around every handler.
    pub fn layer(mut self, layer: impl HandlerLayer) -> HandlerLayers {
        self.around_all.push(Arc::new(layer));
        self
    }

    /// Adds `layer` around the `#[handler]` `H` alone (named as a type:
    /// `.layer_for::<charge>(ConcurrencyLimitLayer::new(2))`). A daemon that does not run `H`
    /// ignores it.
    pub fn layer_for<H: HandlerFn>(mut self, layer: impl HandlerLayer) -> HandlerLayers {
        self.around_one.push((H::HANDLER.name(), Arc::new(layer)));
        self
    }

    /// The layers of `other` added after these.
    pub fn extend(mut self, other: HandlerLayers) -> HandlerLayers {
        self.around_all.extend(other.around_all);
        self.around_one.extend(other.around_one);
        self
    }

    /// Whether there is no layer at all.
    pub fn is_empty(&self) -> bool {
        self.around_all.is_empty() && self.around_one.is_empty()
    }

    /// The service that handles every message of `handlers`: the layers for all around a
    /// router to each handler's own layers around `core`. `None` without layers, so that
    /// the dispatcher calls the handler directly.
    pub(crate) fn build<'h>(
        &self,
        handlers: impl Iterator<Item = &'h Handler>,
        core: HandlerCore,
    ) -> Option<HandlerService> {
        if self.is_empty() {
            return None;
        }
        let mut own = HashMap::new();
        for handler in handlers {
            let wraps: Vec<&Wrap> =
                self.around_one.iter().filter(|(name, _)| *name == handler.name()).map(|(_, w)| w).collect();
            if !wraps.is_empty() {
                own.insert(handler.name(), apply(wraps, core.service()));
            }
        }
        let router = BoxCloneSyncService::new(Router { core: core.service(), own: Arc::new(own) });
        Some(apply(self.around_all.iter().collect(), router))
    }
}

impl fmt::Debug for HandlerLayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerLayers")
            .field("around_all", &self.around_all.len())
            .field("around_one", &self.around_one.iter().map(|(name, _)| *name).collect::<Vec<_>>())
            .finish()
    }
}

/// `wraps` around `service`, the first outermost.
fn apply(wraps: Vec<&Wrap>, service: HandlerService) -> HandlerService {
    wraps.into_iter().rev().fold(service, |inner, layer| layer.wrap(inner))
}

/// Sends each request to its handler's own layers, or straight to the handler.
#[derive(Clone)]
struct Router {
    core: HandlerService,
    own: Arc<HashMap<&'static str, HandlerService>>,
}

impl Service<HandlerRequest> for Router {
    type Response = Outcome;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Outcome, BoxError>>;

    /// Always ready: which handler's layers a request needs is known only from the request, so
    /// their readiness is awaited in `call`.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: HandlerRequest) -> Self::Future {
        let service = self.own.get(request.handler.name()).unwrap_or(&self.core);
        Box::pin(service.clone().oneshot(request))
    }
}

/// The outcome a layer's error stands for. tower's timeout and load shedding are FAILED and
/// retried after `failed_delay`, as any other error is; a [`FinalRefusal`] is SKIPPED. The
/// error's sources are searched too, since a `BufferLayer` wraps what the layers inside it
/// return.
pub(crate) fn outcome_of_layer_error(error: &BoxError, failed_delay: std::time::Duration) -> Outcome {
    let chain = || error_chain(&**error);
    if let Some(refusal) = chain().find_map(|e| e.downcast_ref::<FinalRefusal>()) {
        return Outcome::deleted(Verdict::Skipped, refusal.reason.clone());
    }
    let reason = if chain().any(|e| e.is::<tower::timeout::error::Elapsed>()) {
        "timed out in a timeout layer: the handler was cancelled at its next await, and what it published was not sent".to_owned()
    } else if chain().any(|e| e.is::<tower::load_shed::error::Overloaded>()) {
        "load shed: the handler was at its limit, so the message was not handled; it will be retried"
            .to_owned()
    } else {
        let mut text = format!("a layer failed: {error}");
        for source in chain().skip(1) {
            text.push_str(": ");
            text.push_str(&source.to_string());
        }
        text
    };
    Outcome::failed(failed_delay, reason)
}

/// `error` and its sources, outermost first.
fn error_chain<'e>(
    error: &'e (dyn StdError + 'static),
) -> impl Iterator<Item = &'e (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |e| (*e).source())
}
