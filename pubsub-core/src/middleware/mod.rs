//! Middleware: handling a message and publishing one are [`tower`] services, so any
//! `tower::Layer` wraps them: tower's own timeout, concurrency limit, rate limit and load
//! shedding, and a team's own concerns (idempotency, metrics, audit).
//!
//! - Around handlers: a [`HandlerRequest`] (the decoded message, its context, its handler) in,
//!   an [`Outcome`](crate::outcome::Outcome) out. Layers go on
//!   [`DaemonBuilder::layer`](crate::daemon::DaemonBuilder::layer) (every handler) and
//!   [`layer_for`](crate::daemon::DaemonBuilder::layer_for) (one), or in a [`HandlerLayers`]
//!   set that the daemon and the test kit share. A layer's error is FAILED and retried, a
//!   [`FinalRefusal`] SKIPPED; a layer that panics fails its message only.
//! - Around publishing: a [`PublishRequest`] (the destination and the outgoing message: media
//!   type, body, attributes) in, the request to send out. Layers go on
//!   [`Producer::layer`](crate::Producer::layer); a layer adds attributes, or refuses the
//!   message with an error (then nothing of that call is sent).

mod handling;
mod publishing;

/// The error type of every layer stack: any error a layer returns, boxed.
pub use tower::BoxError;

// Handling (handler layers).
#[allow(unused_imports)]
pub use handling::*;

// Publishing (publish layers).
#[allow(unused_imports)]
pub use publishing::*;
