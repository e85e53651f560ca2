//! Middleware: handling a message and publishing one are [`tower`] services, so any
//! `tower::Layer` wraps them: tower's own timeout, concurrency limit, rate limit and load
//! shedding, and a team's own concerns (idempotency, metrics, audit).

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
