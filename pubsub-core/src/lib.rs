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

mod body;
mod envelope;
mod error;
mod media_type;
pub mod memory;
mod message;
mod opaque;
mod registry;
pub mod transport;
mod untyped;
mod validation;

pub use envelope::{decode, encode, Decoded};
pub use error::{DecodeError, EncodeError, Layer};
pub use memory::MemoryBroker;
pub use media_type::{Change, Lifecycle, MediaType, MediaTypeError, MediaTypePattern};
pub use message::PubSubMessage;
pub use opaque::{OpaqueData, DEFAULT_TTL, REQUEST_ID, REQUEST_PUBLISHED, REQUEST_TTL};
pub use registry::{DynMessage, Registry, RegistryBuilder, RegistryError, Schema, SchemaKind};
pub use untyped::{decode_untyped, encode_untyped, UntypedError, UntypedMessage};
pub use validation::{FieldViolation, ValidationReport};

/// `#[derive(PubSubMessage)]`; see [`PubSubMessage`](trait@PubSubMessage).
#[cfg(feature = "derive")]
pub use pubsub_derive::PubSubMessage;

/// What generated code names; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::MessageRegistration;
    pub use inventory;
}
