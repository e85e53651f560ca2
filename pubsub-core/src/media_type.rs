//! Media types: the grammar and conventions live in `pubsub-media-type`, shared with the
//! derive macro so that compile-time and run-time checks cannot drift apart.

pub use pubsub_media_type::{Change, Lifecycle, MediaType, MediaTypeError, MediaTypePattern};
