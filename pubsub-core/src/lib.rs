//! Typed publish/subscribe over AWS SNS and SQS, wire-compatible with the Python library
//! `microcosm-pubsub` 3.0.0, so Rust and Python services share topics and queues. This crate is
//! the transport-agnostic heart; `pubsub-aws` is the AWS transport, and [`MemoryBroker`] an
//! embedded one with SNS/SQS semantics for tests and local runs.
//!
//! # The pieces
//!
//! - **A message** is a struct with [`#[derive(PubSubMessage)]`](derive@PubSubMessage): a media
//!   type (checked at compile time), `validator` rules, and the microcosm-pubsub wire format,
//!   written by [`encode`] and read by [`decode`] (which returns a [`Decoded`]: the message, its
//!   media type and its [`OpaqueData`]). A media type with no Rust type is an
//!   [`UntypedMessage`]. Both implement [`Message`], which every operation takes.
//! - **A handler** is an `async fn` marked [`#[handler]`](macro@handler): it takes the message,
//!   optionally the [`MessageContext`] (ids, opaque data, deferred [`publish`](MessageContext::publish))
//!   and collaborators as `&T`, and returns `Result<(), HandlerError>`. What it returns becomes a
//!   [`Verdict`] (SUCCEEDED, SKIPPED, IGNORED, EXPIRED, RETRIED, FAILED) and decides what happens
//!   to the message in the queue. See [`handlers`].
//! - **A daemon** reads a queue and runs handlers by media type, with bounded concurrency,
//!   batched acknowledgements, heartbeats and a graceful shutdown: built by [`DaemonBuilder`]
//!   from the handlers linked into the binary or those registered with
//!   [`handler::<my_fn>()`](DaemonBuilder::handler), and from the collaborators, the producer
//!   and the retry settings. A daemon with no handler refuses to build (the crate holding them
//!   was most likely not linked). See [`daemon`].
//! - **The producer** ([`Producer`]) validates, encodes and publishes messages, choosing the
//!   topic by media type with a [`TopicMap`]. See [`producer`].
//! - **The consumer** ([`Consumer`]) receives messages for code that settles them itself:
//!   [`Delivery::decode`](consumer::Delivery::decode), ack, nack, or a scope that does either.
//!   See [`consumer`].
//!
//! The rest: [`codec`] (the wire format and its errors), [`outcome`] (verdicts and what they
//! do), [`backoff`] (retry delays), [`registry`] (every linked message type), [`media_type`],
//! [`transport`] (the traits a transport implements), [`memory`] (the embedded broker),
//! [`testing`] (run one handler on one message), [`health`] (a daemon's phase, receives and
//! counts, for probes; served over HTTP with the feature `health`), and, behind features, `logging`
//! (`pubsub_core::logging::init()`: no subscriber, no logs), `cli` (the daemon command
//! line) and `schema` (JSON Schemas of message types, AsyncAPI documents, the breaking-change
//! check).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use pubsub_core::{handler, DaemonBuilder, HandlerError, MemoryBroker, MessageContext, Producer, PubSubMessage, TopicMap, Verdict};
//! use serde::{Deserialize, Serialize};
//! use validator::Validate;
//!
//! #[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
//! #[media_type = "application/vnd.globality.pubsub._.created.order"]
//! #[serde(rename_all = "camelCase")]
//! pub struct OrderCreated {
//!     #[validate(length(min = 1))]
//!     pub order_id: String,
//! }
//!
//! #[handler]
//! async fn on_order(order: OrderCreated, context: &MessageContext) -> Result<(), HandlerError> {
//!     println!("order {} (message {})", order.order_id, context.message_id());
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let broker = MemoryBroker::new();
//! let topic = broker.create_topic("orders");
//! broker.create_queue("billing", Default::default());
//! broker.subscribe(&topic, "billing", Default::default())?;
//!
//! let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
//! producer.produce(&OrderCreated { order_id: "o-1".into() }).await?;
//! // Invalid messages never leave: the producer validates first.
//! assert!(producer.produce(&OrderCreated { order_id: String::new() }).await.is_err());
//!
//! let daemon = DaemonBuilder::new("billing")
//!     .handler::<on_order>()
//!     .wait_time(Duration::from_millis(50))
//!     .build(broker.subscriber("billing")?)?;
//! let report = daemon.run_until_idle().await; // a service: run_until_signal()
//! assert_eq!(report.count(Verdict::Succeeded), 1);
//! # Ok(())
//! # }
//! ```

pub mod backoff;
mod body;
mod chains;
#[cfg(feature = "cli")]
pub mod cli;
pub mod consumer;
pub mod daemon;
mod dispatch;
mod envelope;
mod error;
pub mod handlers;
pub mod health;
mod json;
#[cfg(feature = "logging")]
pub mod logging;
pub mod media_type;
pub mod memory;
mod message;
pub mod middleware;
mod opaque;
pub mod outcome;
pub mod payload;
mod plumbing;
pub mod producer;
pub mod registry;
#[cfg(feature = "schema")]
pub mod schema;
#[cfg(feature = "otel")]
pub mod telemetry;
#[cfg(not(feature = "otel"))]
mod telemetry;
pub mod testing;
pub mod transport;
mod untyped;
mod unwind;
mod uuid;
mod validation;

/// The wire codec: encoding and decoding the bodies microcosm-pubsub exchanges, the opaque data
/// that travels with them, and what goes wrong.
pub mod codec {
    pub use crate::envelope::{decode, encode, Decoded};
    pub use crate::error::{BodyPart, DecodeError, EncodeError};
    pub use crate::opaque::{OpaqueData, DEFAULT_TTL, REQUEST_ID, REQUEST_PUBLISHED, REQUEST_TTL};
    pub use crate::untyped::{UntypedError, UntypedMessage};
    pub use crate::validation::{FieldViolation, ValidationReport};
}

pub use codec::{decode, encode, Decoded, OpaqueData, UntypedMessage};
pub use consumer::Consumer;
pub use daemon::DaemonBuilder;
pub use handlers::{HandlerError, MessageContext};
pub use memory::MemoryBroker;
pub use message::{Message, PubSubMessage};
pub use outcome::Verdict;
pub use producer::{Producer, TopicMap};

// Short paths for the crate's own modules.
pub(crate) use media_type::{Change, Lifecycle, MediaType, MediaTypeError, MediaTypePattern};
pub(crate) use validation::ValidationReport;

/// `#[derive(PubSubMessage)]`; see [`PubSubMessage`](trait@PubSubMessage).
#[cfg(feature = "derive")]
pub use pubsub_derive::PubSubMessage;

/// Marks an `async fn` as a handler and registers it at link time.
///
/// ```
/// use pubsub_core::{handler, HandlerError, MessageContext, PubSubMessage};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
/// # #[media_type = "application/vnd.acme.pubsub.order"]
/// # struct Order { id: String }
/// struct Db;
///
/// #[handler]
/// async fn on_order(order: Order, context: &MessageContext, db: &Db) -> Result<(), HandlerError> {
///     let _ = (order.id, context.request_id(), db);
///     Ok(())
/// }
/// ```
///
/// The first argument is the message: a `#[derive(PubSubMessage)]` type, whose media type is
/// what the handler handles, or an [`UntypedMessage`] with
/// `#[handler(media_type = "type/subtype")]` (a `prefix.*` pattern works too). Then, in any
/// order, an optional `&MessageContext` and collaborators as `&T` (the daemon checks at start
/// that it has each). It returns `Result<(), HandlerError>` (or `()`).
#[cfg(feature = "derive")]
pub use pubsub_derive::handler;

/// What generated code names; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::envelope::Envelope;
    pub use crate::plumbing::*;
    pub use crate::registry::MessageRegistration;
    pub use inventory;
    #[cfg(feature = "schema")]
    pub use schemars;
    pub use std::boxed::Box;
    pub use std::sync::Arc;
}
