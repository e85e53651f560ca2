//! Typed publish/subscribe over AWS SNS and SQS, wire-compatible with the Python library
//! `microcosm-pubsub` 3.0.0, so Rust and Python services share topics and queues.
//!
//! A message is a struct with `#[derive(PubSubMessage)]` and a media type; validation comes
//! from the `validator` crate's attributes:
//!
//! ```
//! use pubsub_core::{decode, encode, OpaqueData, PubSubMessage};
//! use serde::{Deserialize, Serialize};
//! use validator::Validate;
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
//! #[media_type = "application/vnd.globality.pubsub._.created.order"]
//! #[serde(rename_all = "camelCase")]
//! pub struct OrderCreated {
//!     #[validate(length(min = 1))]
//!     pub order_id: String,
//!     pub note: Option<String>,
//! }
//!
//! let order = OrderCreated { order_id: "o-1".into(), note: None };
//! let body = encode(&order, &OpaqueData::new().with_request_id("req-1"))?;
//! let decoded = decode::<OrderCreated>(&body)?;
//! assert_eq!(decoded.message, order);
//! assert_eq!(decoded.opaque_data.request_id(), Some("req-1"));
//!
//! let empty = OrderCreated { order_id: String::new(), note: None };
//! let error = encode(&empty, &OpaqueData::new()).unwrap_err();
//! assert!(error.to_string().contains("orderId"), "{error}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The wire format and the processing rules are those of microcosm-pubsub: see [`encode`] and
//! [`decode`], and [`UntypedMessage`] for media types with no Rust type.

pub mod backoff;
mod body;
#[cfg(feature = "cli")]
pub mod cli;
pub mod consumer;
pub mod daemon;
mod dispatch;
mod envelope;
mod error;
pub mod handlers;
#[cfg(feature = "logging")]
pub mod logging;
pub mod media_type;
pub mod memory;
mod message;
mod opaque;
pub mod outcome;
mod plumbing;
pub mod producer;
pub mod registry;
pub mod testing;
pub mod transport;
mod untyped;
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
    pub use std::boxed::Box;
    pub use std::sync::Arc;
}
