//! Media types as microcosm-pubsub uses them.
//!
//! This crate holds the rules that both the `#[derive(PubSubMessage)]` macro (at compile time)
//! and `pubsub-core` (at run time) must apply identically, so there is one copy of them:
//!
//! - the RFC 6838 shape of a media type (`type/subtype`, restricted names),
//! - the lifecycle convention `application/vnd.{org}.pubsub._.{change}.{resource}`,
//! - `prefix.*` patterns, which match any one last segment.
//!
//! ```
//! use pubsub_media_type::{Change, Lifecycle, MediaType};
//!
//! let order = MediaType::parse("application/vnd.globality.pubsub._.created.order").unwrap();
//! assert_eq!(order.subtype(), "vnd.globality.pubsub._.created.order");
//!
//! let lifecycle = Lifecycle::new(Change::Created, "BatchMessage");
//! assert_eq!(lifecycle.media_type(), "application/vnd.globality.pubsub._.created.batch_message");
//! assert_eq!(Lifecycle::parse(&lifecycle.media_type()), Some(lifecycle));
//! ```

mod grammar;
mod lifecycle;
mod pattern;

pub use grammar::{MediaType, MediaTypeError, Part, MAX_PART_LEN};
pub use lifecycle::{to_snake_case, Change, Lifecycle, LifecycleNameError, DEFAULT_ORGANIZATION};
pub use pattern::MediaTypePattern;
