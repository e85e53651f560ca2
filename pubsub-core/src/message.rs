//! The `PubSubMessage` trait.

use serde::de::DeserializeOwned;
use serde::Serialize;
use validator::Validate;

/// A typed message: a struct published under one media type.
///
/// Derive it; the derive reads these attributes:
///
/// - `#[media_type = "application/vnd.acme.pubsub.thing"]`: a concrete media type, checked at
///   compile time against RFC 6838 (`type/subtype`, restricted-name characters, 127 at most
///   per part). Patterns (`.*`) belong to handlers and registry lookups, not to a type.
/// - `#[media_type(created = "Order")]` (also `changed`, `deleted`), with optional
///   `organization = "acme"` and the flag `public`: the lifecycle convention, computed at
///   compile time (`application/vnd.globality.pubsub._.created.order`).
/// - `#[pubsub(crate = "path::to::pubsub_core")]`: for crates that re-export pubsub-core.
///
/// Serde's renames decide the names on the wire, and the derive uses them to report failed
/// validations by wire name. `#[serde(deny_unknown_fields)]` is refused: every body also
/// carries `mediaType` and `opaqueData`. Each derived type registers itself in the
/// [`Registry`](crate::Registry).
///
/// `Validate` is a supertrait, and this trait has no method named `validate`, so
/// `message.validate()` is always validator's.
pub trait PubSubMessage: Validate + Serialize + DeserializeOwned + Send + 'static {
    /// The media type this type is published under and decoded from.
    const MEDIA_TYPE: &'static str;

    /// `(Rust field name, wire name)` of each serialized field, for validation errors.
    #[doc(hidden)]
    const FIELD_WIRE_NAMES: &'static [(&'static str, &'static str)] = &[];

    /// The name `rust_field` has on the wire (itself when it is not renamed).
    fn wire_name(rust_field: &str) -> &str {
        Self::FIELD_WIRE_NAMES
            .iter()
            .find(|(rust, _)| *rust == rust_field)
            .map_or(rust_field, |(_, wire)| wire)
    }
}
