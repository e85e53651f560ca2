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
/// - `#[message_group_id]` on one field: its value is the FIFO message group of each message
///   (see [`message_group_id`](PubSubMessage::message_group_id)).
/// - `#[message_deduplication_id]` on one field: its value is the FIFO deduplication id of
///   each message (see [`message_deduplication_id`](PubSubMessage::message_deduplication_id)).
///
/// The field of `#[message_group_id]` or `#[message_deduplication_id]` is a string (`String`,
/// `&str`, `Box<str>`, `Arc<str>`, `Cow<str>`) or an integer, written in decimal, or an
/// `Option` of one, whose `None` leaves the id unset; any other type is a compile error.
///
/// ```
/// use pubsub_core::{Message, PubSubMessage};
/// use serde::{Deserialize, Serialize};
/// use validator::Validate;
///
/// #[derive(Serialize, Deserialize, Validate, PubSubMessage)]
/// #[media_type = "application/vnd.acme.pubsub.order-line-added"]
/// struct OrderLineAdded {
///     /// The lines of one order are handled in the order they were added.
///     #[message_group_id]
///     order_id: String,
///     /// A line added twice within the deduplication interval is delivered once.
///     #[message_deduplication_id]
///     line_id: u64,
/// }
///
/// let added = OrderLineAdded { order_id: "o-1".to_owned(), line_id: 42 };
/// assert_eq!(Message::message_group_id(&added).as_deref(), Some("o-1"));
/// assert_eq!(Message::message_deduplication_id(&added).as_deref(), Some("42"));
/// ```
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

    /// The FIFO message group of this message: `#[message_group_id]`'s field, else `None`.
    ///
    /// On an SNS FIFO topic and an SQS FIFO queue, the messages of one group are delivered in
    /// the order they were published, one after another; messages of different groups may be
    /// handled in parallel. A FIFO topic or queue requires a group on every message, and a
    /// standard one has no use for it. SNS and SQS accept 1 to 128 characters: letters,
    /// digits and punctuation.
    ///
    /// A producer can also set the group per call, e.g. for a type without the attribute.
    ///
    /// [`Message::message_group_id`] forwards here, so with both traits in scope, name the one
    /// you call: `Message::message_group_id(&order)`.
    fn message_group_id(&self) -> Option<String> {
        None
    }

    /// The FIFO deduplication id of this message: `#[message_deduplication_id]`'s field, else
    /// `None`.
    ///
    /// An SNS FIFO topic or SQS FIFO queue accepts a message whose deduplication id it has seen
    /// in the last five minutes, but does not deliver it again. When no id is given, a topic or
    /// queue with content-based deduplication turned on derives one from the body (a SHA-256
    /// hash of it); without that, a FIFO topic or queue refuses the message. Standard topics
    /// and queues ignore it. SNS and SQS accept 1 to 128 characters: letters, digits and
    /// punctuation.
    ///
    /// A producer can also set the deduplication id per call, e.g. for a type without the
    /// attribute.
    ///
    /// [`Message::message_deduplication_id`] forwards here, so with both traits in scope, name
    /// the one you call: `Message::message_deduplication_id(&order)`.
    fn message_deduplication_id(&self) -> Option<String> {
        None
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

    /// The FIFO message group to publish this message in, if it names one: for a
    /// `#[derive(PubSubMessage)]` type, its `#[message_group_id]` field
    /// ([`PubSubMessage::message_group_id`]); for an [`UntypedMessage`](crate::UntypedMessage),
    /// `None`.
    ///
    /// The messages of one group are delivered in order by SNS FIFO topics and SQS FIFO
    /// queues, which require a group on every message. A producer can also set it per call.
    fn message_group_id(&self) -> Option<String> {
        None
    }

    /// The FIFO deduplication id to publish this message with, if it names one: for a
    /// `#[derive(PubSubMessage)]` type, its `#[message_deduplication_id]` field
    /// ([`PubSubMessage::message_deduplication_id`]); for an
    /// [`UntypedMessage`](crate::UntypedMessage), `None`.
    ///
    /// A FIFO topic or queue delivers once the messages that share an id within five minutes.
    /// When no id is given, one with content-based deduplication turned on derives it from the
    /// body. A producer can also set it per call.
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

    fn message_group_id(&self) -> Option<String> {
        PubSubMessage::message_group_id(self)
    }

    fn message_deduplication_id(&self) -> Option<String> {
        PubSubMessage::message_deduplication_id(self)
    }

    const TYPE_MEDIA_TYPE: &'static str = T::MEDIA_TYPE;

    fn write_body(&self, opaque: &OpaqueData, stamp: &str) -> Result<String, EncodeError> {
        crate::envelope::write_typed(self, opaque, stamp)
    }

    fn from_envelope(envelope: &Envelope<'_>) -> Result<T, DecodeError> {
        crate::envelope::typed_from_envelope(envelope)
    }
}
