//! The message traits: [`PubSubMessage`], what a derived type is, and [`Message`], what every
//! operation takes.

use serde::de::DeserializeOwned;
use serde::Serialize;
use validator::Validate;

use crate::envelope::Envelope;
use crate::error::{DecodeError, EncodeError};
use crate::opaque::OpaqueData;

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
/// [`Registry`](crate::registry::Registry).
///
/// `Validate` is a supertrait, and this trait has no method named `validate`, so
/// `message.validate()` is always validator's.
pub trait PubSubMessage: Validate + Serialize + DeserializeOwned + Send + 'static {
    /// The media type this type is published under and decoded from.
    const MEDIA_TYPE: &'static str;

    /// The FIFO message group of this message, from its `#[message_group_id]` field.
    fn message_group_id(&self) -> Option<String> {
        None
    }

    /// The FIFO deduplication id of this message, from its `#[message_deduplication_id]` field.
    fn message_deduplication_id(&self) -> Option<String> {
        None
    }

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

/// What can be published and decoded: a `#[derive(PubSubMessage)]` type, whose media type is
/// fixed, or an [`UntypedMessage`](crate::UntypedMessage), which names its own.
///
/// Every operation on messages takes this one trait: [`encode`](crate::encode),
/// [`decode`](crate::decode), [`Producer::produce`](crate::Producer::produce),
/// [`MessageContext::publish`](crate::MessageContext::publish), a handler's first argument,
/// [`Delivery::decode`](crate::consumer::Delivery::decode) and the test kit's
/// [`TestRun::published`](crate::testing::TestRun::published). It is implemented for you: its
/// hidden methods are the codec's, not an API to implement.
///
/// ```
/// use pubsub_core::{decode, encode, Message, OpaqueData, UntypedMessage};
///
/// let created = UntypedMessage::created("Widget", "http://example.com/api/v1/widget/1");
/// assert_eq!(created.media_type(), "application/vnd.globality.pubsub._.created.widget");
/// let body = encode(&created, &OpaqueData::new())?;
/// let decoded = decode::<UntypedMessage>(&body)?; // any media type, conventional fields checked
/// assert_eq!(decoded.message.content["uri"], "http://example.com/api/v1/widget/1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a message type",
    label = "expected a type with #[derive(PubSubMessage)], or UntypedMessage",
    note = "derive it: #[derive(Serialize, Deserialize, Validate, PubSubMessage)] with #[media_type = \"...\"]"
)]
pub trait Message: Sized + Send + 'static {
    /// The media type this message is published under.
    fn media_type(&self) -> &str;

    /// The FIFO message group this message is published in, if its type declares one.
    fn message_group_id(&self) -> Option<String> {
        None
    }

    /// The FIFO deduplication id this message is published with, if its type declares one.
    fn message_deduplication_id(&self) -> Option<String> {
        None
    }

    /// The media type of every value of the type; empty when each value names its own
    /// ([`UntypedMessage`](crate::UntypedMessage)). For generated code.
    #[doc(hidden)]
    const TYPE_MEDIA_TYPE: &'static str;

    /// Validates and writes the body. For the codec.
    #[doc(hidden)]
    fn write_body(&self, opaque: &OpaqueData, stamp: &str) -> Result<String, EncodeError>;

    /// Reads the message out of its envelope: media type checked, validated. For the codec.
    #[doc(hidden)]
    fn from_envelope(envelope: &Envelope<'_>) -> Result<Self, DecodeError>;
}

impl<T: PubSubMessage> Message for T {
    fn media_type(&self) -> &str {
        T::MEDIA_TYPE
    }

    const TYPE_MEDIA_TYPE: &'static str = T::MEDIA_TYPE;

    fn message_group_id(&self) -> Option<String> {
        PubSubMessage::message_group_id(self)
    }

    fn message_deduplication_id(&self) -> Option<String> {
        PubSubMessage::message_deduplication_id(self)
    }

    fn write_body(&self, opaque: &OpaqueData, stamp: &str) -> Result<String, EncodeError> {
        crate::envelope::write_typed(self, opaque, stamp)
    }

    fn from_envelope(envelope: &Envelope<'_>) -> Result<T, DecodeError> {
        crate::envelope::typed_from_envelope(envelope)
    }
}
