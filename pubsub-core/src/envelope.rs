//! The wire codec: typed [`encode`] and [`decode`], and the envelope reading that the typed
//! and untyped paths share (SNS notification unwrap, `mediaType`, `opaqueData`).

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::body::{non_finite_field, write_body, MEDIA_TYPE_KEY, OPAQUE_DATA_KEY};
use crate::error::{json_reason, BodyPart, DecodeError, EncodeError, JsonKind};
use crate::json::next_backslash;
use crate::message::{Message, PubSubMessage};
use crate::opaque::{published_stamp, OpaqueData};
use crate::transport::{AttributeValue, Attributes};
use crate::validation::ValidationReport;

mod scan;

/// A decoded message with what travelled around it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    /// The message.
    pub message: T,
    /// Its `mediaType`.
    pub media_type: String,
    /// Its `opaqueData`, keys lower-cased.
    pub opaque_data: OpaqueData,
}

/// Encodes `message` as the body microcosm-pubsub publishes to SNS.
///
/// The message is validated first and an invalid one is never encoded. The body holds
/// `mediaType`, `opaqueData` (keys lower-cased, `x-request-published` stamped with the time of
/// this call) and the fields under their serde names; top-level `Option`s that are `None` are
/// left out, as the seed leaves absent fields out (other fields are written even when `null`,
/// such as a `serde_json::Value::Null`, so the body decodes back). NaN and infinity are
/// refused, never written as `null`.
///
/// ```
/// # use pubsub_core::{encode, OpaqueData, PubSubMessage};
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
/// #[media_type = "application/vnd.globality.pubsub.simple"]
/// struct Simple { message: String, timestamp: f64 }
///
/// let body = encode(&Simple { message: "hi".into(), timestamp: 1.5 }, &OpaqueData::new())?;
/// assert!(body.starts_with(r#"{"mediaType":"application/vnd.globality.pubsub.simple","opaqueData":{"x-request-published":"#));
/// assert!(body.ends_with(r#","message":"hi","timestamp":1.5}"#));
/// # Ok::<(), pubsub_core::codec::EncodeError>(())
/// ```
pub fn encode<M: Message>(message: &M, opaque: &OpaqueData) -> Result<String, EncodeError> {
    message.write_body(opaque, &published_stamp(SystemTime::now()))
}

/// The body of a typed message: validated, then written.
pub(crate) fn write_typed<T: PubSubMessage>(
    message: &T,
    opaque: &OpaqueData,
    stamp: &str,
) -> Result<String, EncodeError> {
    message.validate().map_err(|errors| EncodeError::Invalid {
        media_type: T::MEDIA_TYPE.to_owned(),
        report: validation_report(message, &errors),
    })?;
    write_body(T::MEDIA_TYPE, opaque, stamp, message)
}

/// Decodes an SQS body into `M`: a typed message, or [`UntypedMessage`](crate::UntypedMessage)
/// for any media type.
///
/// The body may be an SNS notification (its `Message` holds the message) or the raw message.
/// For a typed message the media type must equal `M::MEDIA_TYPE`; unknown fields are ignored; the result is
/// validated. A number beyond `f32::MAX` for an `f32` that serde reads through its buffer (in
/// a tagged or untagged enum, a flattened field) would come out as infinity, which [`encode`]
/// refuses: it is refused here too, as [`DecodeError::Invalid`].
///
/// ```
/// # use pubsub_core::{decode, codec::DecodeError, PubSubMessage};
/// # use serde::{Deserialize, Serialize};
/// #[derive(Debug, Serialize, Deserialize, validator::Validate, PubSubMessage)]
/// #[media_type = "application/vnd.globality.pubsub.simple"]
/// struct Simple { message: String }
///
/// let decoded = decode::<Simple>(r#"{"mediaType": "application/vnd.globality.pubsub.simple",
///     "opaqueData": {"X-Request-Id": "r-1"}, "message": "hi", "extra": true}"#)?;
/// assert_eq!(decoded.message.message, "hi");
/// assert_eq!(decoded.opaque_data.request_id(), Some("r-1"));
///
/// let error = decode::<Simple>(r#"{"mediaType": "text/plain", "message": "hi"}"#).unwrap_err();
/// assert!(matches!(error, DecodeError::MediaTypeMismatch { .. }));
/// # Ok::<(), DecodeError>(())
/// ```
pub fn decode<M: Message>(body: &str) -> Result<Decoded<M>, DecodeError> {
    decode_envelope(Envelope::read(body)?)
}

pub(crate) fn decode_envelope<M: Message>(envelope: Envelope<'_>) -> Result<Decoded<M>, DecodeError> {
    let message = M::from_envelope(&envelope)?;
    Ok(Decoded { message, media_type: envelope.media_type, opaque_data: envelope.opaque_data })
}

/// The content of `envelope` as `T`: media type checked, validated.
pub(crate) fn typed_from_envelope<T: PubSubMessage>(envelope: &Envelope<'_>) -> Result<T, DecodeError> {
    if envelope.media_type != T::MEDIA_TYPE {
        return Err(DecodeError::MediaTypeMismatch {
            expected: T::MEDIA_TYPE.to_owned(),
            found: envelope.media_type.clone(),
        });
    }
    let message: T = envelope.typed_content()?;
    // serde narrows a buffered f64 to f32 with no range check (serde_json checks only when it
    // reads the f32 itself), so a number beyond f32::MAX in a tagged enum arrives as infinity.
    if let Some(field) = non_finite_field(&message) {
        let mut report = ValidationReport::default();
        report.push(field, "finite", "holds a number too large for its type (it would read as infinity)");
        return Err(DecodeError::Invalid { media_type: envelope.media_type.clone(), report });
    }
    message.validate().map_err(|errors| DecodeError::Invalid {
        media_type: envelope.media_type.clone(),
        report: validation_report(&message, &errors),
    })?;
    Ok(message)
}

/// The report of `message`'s failed checks, by wire names: top-level ones from the derive,
/// nested ones found in the message's JSON (serialized again: failures are the rare path).
fn validation_report<T: PubSubMessage>(
    message: &T,
    errors: &validator::ValidationErrors,
) -> ValidationReport {
    let content = serde_json::to_value(message).unwrap_or_default();
    ValidationReport::from_errors_in(errors, |name| T::wire_name(name).to_owned(), &content)
}

/// The parts of a message every decode path needs, read in one pass over each layer.
/// Public only for generated code; not a public API.
#[doc(hidden)]
pub struct Envelope<'b> {
    /// The message text: the body itself, or the notification's `Message`; with
    /// `content_from`, the comma there made an opening brace (see [`Envelope::text`]).
    message: Cow<'b, str>,
    /// When `mediaType` and `opaqueData` are the first keys of a message text of our own (an
    /// unescaped notification `Message`): where the other keys start, `message[at..]` being
    /// them as an object. A typed decode reads that, not the header a second time (it was most
    /// of serde_json's work on a small message).
    content_from: Option<usize>,
    pub(crate) media_type: String,
    pub(crate) opaque_data: OpaqueData,
    /// Where `message` came from, for error reports.
    pub(crate) layer: BodyPart,
    /// The SNS notification's `MessageAttributes` object, unread (`None` for a raw body).
    #[cfg_attr(not(feature = "otel"), allow(dead_code))]
    pub(crate) notification_attributes: Option<&'b str>,
    /// The value of `notification_attributes` when they are the `media_type` attribute
    /// alone, written as SNS and the embedded broker write it (see [`is_only_media_type`]),
    /// as the header's scan found them; `None` when it did not look.
    pub(crate) attributes_media_type: Option<&'b str>,
}

impl<'b> Envelope<'b> {
    /// Reads the envelope of an SQS body.
    pub fn read(body: &'b str) -> Result<Envelope<'b>, DecodeError> {
        let outer = Header::read(body, BodyPart::Body)?;
        // Upstream's rule: an object with a `Message` key is an SNS notification. A raw message
        // that has its own `mediaType` is taken as raw even if one of its fields is `Message`.
        let (notification_attributes, attributes_media_type) =
            (outer.notification_attributes, outer.attributes_media_type);
        let (message, header, layer) = match outer.notification_message {
            Some(notification) if outer.media_type.is_none() => match notification {
                Field::Text(message) => {
                    let inner = match &message {
                        Cow::Borrowed(text) => Header::read(text, BodyPart::NotificationMessage)?,
                        Cow::Owned(text) => Header::read(text, BodyPart::NotificationMessage)?.into_owned(),
                    };
                    (message, inner, BodyPart::NotificationMessage)
                }
                Field::Other(found) => {
                    return Err(DecodeError::NotificationMessageNotString { found: found.as_str() })
                }
            },
            notification_message => {
                (Cow::Borrowed(body), Header { notification_message, ..outer }, BodyPart::Body)
            }
        };
        let media_type = match header.media_type {
            Some(Field::Text(text)) => text.into_owned(),
            Some(Field::Other(found)) => {
                return Err(DecodeError::MediaTypeNotString { found: found.as_str() })
            }
            None => return Err(DecodeError::MissingMediaType),
        };
        let opaque_data = match header.opaque_data {
            Some(Ok(opaque)) => opaque,
            Some(Err(reason)) => return Err(DecodeError::BadOpaqueData { reason }),
            None => OpaqueData::new(),
        };
        let mut message = message;
        // Only in a text of our own: a borrowed body would be copied whole for it.
        let content_from = match (&mut message, header.content_from) {
            (Cow::Owned(text), Some(at)) => {
                text.replace_range(at..=at, "{");
                Some(at)
            }
            _ => None,
        };
        Ok(Envelope {
            message,
            content_from,
            media_type,
            opaque_data,
            layer,
            notification_attributes,
            attributes_media_type,
        })
    }

    /// The whole message text.
    pub(crate) fn text(&self) -> Cow<'_, str> {
        match self.content_from {
            None => Cow::Borrowed(&self.message),
            Some(at) => {
                let mut text = self.message.to_string();
                text.replace_range(at..=at, ",");
                Cow::Owned(text)
            }
        }
    }

    /// The value of the SNS notification's message attribute `name` (SNS writes
    /// `"MessageAttributes": {"name": {"Type": "String", "Value": "..."}}`), if the body is a
    /// notification that has it.
    #[cfg(feature = "otel")]
    pub(crate) fn notification_attribute(&self, name: &str) -> Option<String> {
        #[derive(Deserialize)]
        struct Attribute<'a> {
            #[serde(rename = "Value", borrow)]
            value: Cow<'a, str>,
        }
        let raw = self.notification_attributes?;
        // Most messages carry no trace context: do not parse for nothing.
        if !raw.contains(name) {
            return None;
        }
        let attributes: std::collections::HashMap<Cow<'_, str>, Attribute<'_>> =
            serde_json::from_str(raw).ok()?;
        attributes.get(name).map(|attribute| attribute.value.clone().into_owned())
    }

    /// Deserializes the whole message as `T`: a syntax error is `Malformed` (the header pass
    /// stops early, so it may not have seen it), any other a `Schema` error.
    pub(crate) fn content<T: serde::de::DeserializeOwned>(&self) -> Result<T, DecodeError> {
        let text = self.text();
        serde_json::from_str(&text).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => DecodeError::Schema {
                media_type: self.media_type.clone(),
                reason: json_reason(&e),
                line: e.line(),
                column: e.column(),
            },
            _ => malformed(self.layer, &text, &e),
        })
    }

    /// The message as `T`, read from its keys after the header where `T` reads the same
    /// without the header ([`PubSubMessage::__CONTENT_WITHOUT_ENVELOPE`]). An error is read
    /// again from the whole text, so that its line and column are the text's own.
    fn typed_content<T: PubSubMessage>(&self) -> Result<T, DecodeError> {
        if let Some(at) = self.content_from.filter(|_| T::__CONTENT_WITHOUT_ENVELOPE) {
            if let Ok(message) = serde_json::from_str(&self.message[at..]) {
                return Ok(message);
            }
        }
        self.content()
    }
}

/// The attributes of an SNS notification's `MessageAttributes` object, `raw` (SNS writes
/// `"MessageAttributes": {"name": {"Type": "String", "Value": "..."}}`, `Binary` values in
/// base64); `None` if it is not such an object. An attribute that cannot be read is left out.
pub(crate) fn read_notification_attributes(raw: &str) -> Option<Attributes> {
    #[derive(Deserialize)]
    struct Attribute<'a> {
        #[serde(rename = "Type", borrow)]
        data_type: Cow<'a, str>,
        #[serde(rename = "Value", borrow)]
        value: Cow<'a, str>,
    }
    let attributes: std::collections::HashMap<Cow<'_, str>, Attribute<'_>> =
        serde_json::from_str(raw).ok()?;
    Some(
        attributes
            .into_iter()
            .filter_map(|(name, attribute)| {
                let value = AttributeValue::from_typed(&attribute.data_type, attribute.value.into_owned())?;
                Some((name.into_owned(), value))
            })
            .collect(),
    )
}

/// Whether the SNS notification's `MessageAttributes` object, `raw`, is the `media_type`
/// attribute alone with the value `media_type`, as the embedded broker writes it (a cheap
/// check, so that the common case keeps no copy of them).
pub(crate) fn is_only_media_type(raw: &str, media_type: &str) -> bool {
    const BEFORE: &str = r#"{"media_type":{"Type":"String","Value":""#;
    const AFTER: &str = r#""}}"#;
    raw.len() == BEFORE.len() + media_type.len() + AFTER.len()
        && raw.starts_with(BEFORE)
        && raw.ends_with(AFTER)
        && &raw[BEFORE.len()..raw.len() - AFTER.len()] == media_type
        // With a byte to escape, the value's text would not be the media type it stands for.
        && crate::json::next_escape(media_type.as_bytes(), 0) == media_type.len()
}

/// A string-valued key, or what it held instead.
enum Field<'b> {
    Text(Cow<'b, str>),
    Other(JsonKind),
}

impl<'b> Field<'b> {
    fn into_owned(self) -> Field<'static> {
        match self {
            Field::Text(text) => Field::Text(Cow::Owned(text.into_owned())),
            Field::Other(found) => Field::Other(found),
        }
    }
}

/// The keys of one layer: `Message` and `MessageAttributes` (SNS), `mediaType`, `opaqueData`;
/// the rest is skipped.
struct Header<'b> {
    notification_message: Option<Field<'b>>,
    notification_attributes: Option<&'b str>,
    /// See [`Envelope::attributes_media_type`].
    attributes_media_type: Option<&'b str>,
    media_type: Option<Field<'b>>,
    opaque_data: Option<Result<OpaqueData, String>>,
    /// Where the keys after `mediaType` and `opaqueData` start (the comma before them), when
    /// those two came first: see [`Envelope::content_from`].
    content_from: Option<usize>,
}

impl<'b> Header<'b> {
    fn read(text: &'b str, layer: BodyPart) -> Result<Header<'b>, DecodeError> {
        match scan::read_header(text, layer) {
            Some(header) => Ok(header),
            None => Header::read_with(text, layer, false),
        }
    }

    /// `serde_strings`: the notification's `Message` is read by serde_json; otherwise by
    /// [`simple_string`], and again by serde_json (the whole layer) if it has a `\u` escape.
    fn read_with(text: &'b str, layer: BodyPart, serde_strings: bool) -> Result<Header<'b>, DecodeError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let mut stop = None;
        let result = HeaderSeed { layer, stop: &mut stop, serde_strings }
            .deserialize(&mut deserializer)
            .and_then(|header| deserializer.end().map(|()| header));
        match (result, stop) {
            (Err(_), Some(Stop::UnicodeEscape)) => Header::read_with(text, layer, true),
            (Ok(header), _) | (Err(_), Some(Stop::Read(header))) => Ok(header),
            (Err(_), Some(Stop::NotAnObject(found))) => {
                Err(DecodeError::NotAnObject { part: layer, found: found.as_str() })
            }
            (Err(e), None) => Err(malformed(layer, text, &e)),
        }
    }

    fn into_owned(self) -> Header<'static> {
        Header {
            notification_message: self.notification_message.map(Field::into_owned),
            // Only the body itself (borrowed from the caller) has notification keys.
            notification_attributes: None,
            attributes_media_type: None,
            media_type: self.media_type.map(Field::into_owned),
            opaque_data: self.opaque_data,
            content_from: self.content_from,
        }
    }
}

/// serde_json's depth guard: it refuses a value nested this deep (its `remaining_depth`).
const MAX_DEPTH: usize = 128;

/// The error for `text` (the `layer`'s JSON) that serde_json refused as a syntax error.
fn malformed(layer: BodyPart, text: &str, error: &serde_json::Error) -> DecodeError {
    let (line, column) = (error.line(), error.column());
    // serde_json counts its depth guard as a syntax error (the JSON may well be valid) and
    // says so only in its text. The depth is read from the input instead: a parse that
    // reached MAX_DEPTH where it failed failed on depth, as it stops there.
    if depth_reached(text, line, column) >= MAX_DEPTH {
        return DecodeError::TooDeep { part: layer, line, column };
    }
    DecodeError::Malformed { part: layer, reason: json_reason(error), line, column }
}

/// The deepest nesting of `[` and `{` in `text` up to and including the byte at 1-based
/// `line` and serde_json's `column` (bytes from the line's start, counting that byte).
fn depth_reached(text: &str, line: usize, column: usize) -> usize {
    let bytes = text.as_bytes();
    let line_start = match line {
        0 | 1 => 0,
        _ => bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(bytes.len(), |(i, _)| i + 1),
    };
    let end = (line_start + column).min(bytes.len());
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in &bytes[..end] {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') => in_string = false,
            (true, _) => {}
            (false, b'"') => in_string = true,
            (false, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            (false, _) => {}
        }
    }
    deepest
}

/// Why [`HeaderSeed`] stopped the parse on purpose.
enum Stop<'de> {
    /// The header is complete; the rest is left unread.
    Read(Header<'de>),
    /// The layer is not an object.
    NotAnObject(JsonKind),
    /// The notification's `Message` has a `\u` escape: serde_json is to read it.
    UnicodeEscape,
}

/// Reads a header. Once `mediaType` and `opaqueData` are both seen (the seed writes them
/// first) the rest is left unread: the header is handed out through `stop` and the parse is
/// abandoned. The full parse of the content that follows reports any later syntax error.
/// A layer that is not an object is reported through `stop` as well, with its kind.
struct HeaderSeed<'s, 'de> {
    layer: BodyPart,
    stop: &'s mut Option<Stop<'de>>,
    serde_strings: bool,
}

impl<'de> DeserializeSeed<'de> for HeaderSeed<'_, 'de> {
    type Value = Header<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Header<'de>, D::Error> {
        let HeaderSeed { layer, stop, serde_strings } = self;
        deserializer.deserialize_any(HeaderVisitor { layer, stop, serde_strings })
    }
}

struct HeaderVisitor<'s, 'de> {
    layer: BodyPart,
    stop: &'s mut Option<Stop<'de>>,
    serde_strings: bool,
}

impl<'de> HeaderVisitor<'_, 'de> {
    fn refuse<E: serde::de::Error>(self, found: JsonKind) -> Result<Header<'de>, E> {
        *self.stop = Some(Stop::NotAnObject(found));
        Err(E::custom(format_args!("the {} is not an object", self.layer)))
    }
}

macro_rules! refuse_non_object {
    ($($method:ident($ty:ty) => $found:ident;)*) => {
        $(fn $method<E: serde::de::Error>(self, _: $ty) -> Result<Header<'de>, E> {
            self.refuse(JsonKind::$found)
        })*
    };
}

impl<'de> Visitor<'de> for HeaderVisitor<'_, 'de> {
    type Value = Header<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} as a JSON object", self.layer)
    }

    refuse_non_object! {
        visit_bool(bool) => Boolean;
        visit_i64(i64) => Number;
        visit_u64(u64) => Number;
        visit_f64(f64) => Number;
        visit_str(&str) => String;
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Header<'de>, E> {
        self.refuse(JsonKind::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Header<'de>, A::Error> {
        self.refuse(JsonKind::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header<'de>, A::Error> {
        let mut header = Header {
            notification_message: None,
            notification_attributes: None,
            attributes_media_type: None,
            media_type: None,
            opaque_data: None,
            content_from: None,
        };
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Message if self.layer == BodyPart::Body && self.serde_strings => {
                    header.notification_message = Some(map.next_value::<FieldValue<'de>>()?.0)
                }
                // serde_json checks the string as it skips it, then it is unescaped here in one
                // allocation: serde_json's own unescape grew its buffer four times and copied
                // the result once more.
                Key::Message if self.layer == BodyPart::Body => {
                    let raw = map.next_value::<&'de RawValue>()?.get();
                    let field = match raw.as_bytes().first() {
                        Some(b'"') => match simple_string(raw) {
                            Some(text) => Field::Text(text),
                            None => {
                                *self.stop = Some(Stop::UnicodeEscape);
                                return Err(serde::de::Error::custom("a \\u escape in Message"));
                            }
                        },
                        Some(b'{') => Field::Other(JsonKind::Object),
                        Some(b'[') => Field::Other(JsonKind::Array),
                        Some(b't' | b'f') => Field::Other(JsonKind::Boolean),
                        Some(b'n') => Field::Other(JsonKind::Null),
                        _ => Field::Other(JsonKind::Number),
                    };
                    header.notification_message = Some(field);
                }
                Key::MessageAttributes if self.layer == BodyPart::Body => {
                    header.notification_attributes = Some(map.next_value::<&'de RawValue>()?.get())
                }
                Key::MediaType => header.media_type = Some(map.next_value::<FieldValue<'de>>()?.0),
                Key::OpaqueData => {
                    let raw = map.next_value::<&'de RawValue>()?;
                    header.opaque_data = Some(serde_json::from_str(raw.get()).map_err(|e| json_reason(&e)));
                }
                Key::Message | Key::MessageAttributes | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if header.media_type.is_some() && header.opaque_data.is_some() {
                *self.stop = Some(Stop::Read(header));
                return Err(serde::de::Error::custom("header read"));
            }
        }
        Ok(header)
    }
}

/// The keys a header reads, recognised without allocating.
enum Key {
    Message,
    MessageAttributes,
    MediaType,
    OpaqueData,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }

            fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "Message" => Key::Message,
                    "MessageAttributes" => Key::MessageAttributes,
                    MEDIA_TYPE_KEY => Key::MediaType,
                    OPAQUE_DATA_KEY => Key::OpaqueData,
                    _ => Key::Other,
                })
            }
        }

        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// The text of `raw`, a JSON string literal serde_json has checked (quotes included), with its
/// escapes undone; `None` if it has a `\u` escape, which is left to serde_json (surrogate
/// pairs, and its errors for lone ones). Borrowed when there is nothing to undo.
fn simple_string(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.get(1..raw.len().saturating_sub(1))?;
    let bytes = inner.as_bytes();
    let Some(mut at) = next_backslash(bytes, 0) else { return Some(Cow::Borrowed(inner)) };
    let mut text = String::with_capacity(inner.len());
    let mut start = 0;
    loop {
        // A backslash is ASCII, so the runs between escapes are whole UTF-8 sequences.
        text.push_str(&inner[start..at]);
        text.push(crate::json::unescaped(*bytes.get(at + 1)?)?);
        start = at + 2;
        match next_backslash(bytes, start) {
            Some(next) => at = next,
            None => break,
        }
    }
    text.push_str(&inner[start..]);
    Some(Cow::Owned(text))
}

/// Reads a value as a string if it is one, else notes what it was.
struct FieldValue<'b>(Field<'b>);

impl<'de> Deserialize<'de> for FieldValue<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<FieldValue<'de>, D::Error> {
        struct FieldVisitor;

        macro_rules! other {
            ($($method:ident($ty:ty) => $found:ident;)*) => {
                $(fn $method<E>(self, _: $ty) -> Result<FieldValue<'de>, E> {
                    Ok(FieldValue(Field::Other(JsonKind::$found)))
                })*
            };
        }

        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = FieldValue<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<FieldValue<'de>, E> {
                Ok(FieldValue(Field::Text(Cow::Borrowed(text))))
            }

            fn visit_str<E>(self, text: &str) -> Result<FieldValue<'de>, E> {
                Ok(FieldValue(Field::Text(Cow::Owned(text.to_owned()))))
            }

            fn visit_string<E>(self, text: String) -> Result<FieldValue<'de>, E> {
                Ok(FieldValue(Field::Text(Cow::Owned(text))))
            }

            other! {
                visit_bool(bool) => Boolean;
                visit_i64(i64) => Number;
                visit_u64(u64) => Number;
                visit_f64(f64) => Number;
            }

            fn visit_unit<E>(self) -> Result<FieldValue<'de>, E> {
                Ok(FieldValue(Field::Other(JsonKind::Null)))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FieldValue<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FieldValue(Field::Other(JsonKind::Array)))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldValue<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FieldValue(Field::Other(JsonKind::Object)))
            }
        }

        deserializer.deserialize_any(FieldVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_media_type_is_the_exact_attribute_alone() {
        let raw = |value: &str| format!(r#"{{"media_type":{{"Type":"String","Value":"{value}"}}}}"#);
        assert!(is_only_media_type(&raw("a/b"), "a/b"));
        assert!(!is_only_media_type(&raw("a/c"), "a/b"));
        assert!(!is_only_media_type(
            r#"{"media_type":{"Type":"String","Value":"a/b"},"x":{"Type":"String","Value":"1"}}"#,
            "a/b"
        ));
        // An escape in the value: what it stands for is not its text.
        assert!(!is_only_media_type(&raw(r"a\/b"), r"a\/b"));
        // A media type that would close the value and open another attribute.
        let sneaky = r#"a","x":"y"#;
        assert!(!is_only_media_type(&raw(sneaky), sneaky));
    }
    use serde::Serialize;

    #[test]
    fn simple_strings_unescape_as_serde_json_does() {
        let texts = [
            "",
            "plain",
            "a\"b",
            "\\",
            "ends with \\",
            "\"",
            "tab\there\nnew\rline\u{8}\u{c}/",
            r#"{"mediaType":"x/y","s":"q\"uote"}"#,
            "é€😀 and \"quotes\" after eight bytes",
            "0123456789abcdef\\",
        ];
        for text in texts {
            let raw = serde_json::to_string(text).unwrap().replace("\\/", "/");
            assert_eq!(simple_string(&raw).as_deref(), Some(text), "{raw}");
            // With `\/`, which serde_json does not write but may read.
            let slashed = raw.replace('/', "\\/");
            assert_eq!(simple_string(&slashed).as_deref(), Some(text), "{slashed}");
        }
        assert!(matches!(simple_string(r#""no escape""#), Some(Cow::Borrowed("no escape"))));
        assert_eq!(simple_string(r#""\u00e9""#), None, "\\u is left to serde_json");
    }

    #[test]
    fn notification_messages_with_unicode_escapes_read_as_before() {
        let inner = r#"{"mediaType":"text/plain","opaqueData":{},"s":"x"}"#;
        for escaped in [r#"\u00e9"#, r#"\ud83d\ude00"#, r#"\n\u0041"#] {
            let message =
                serde_json::to_string(inner).unwrap().replace(r#""x\""#, &format!(r#""x{escaped}\""#));
            let body = format!(r#"{{"Type":"Notification","Message":{message},"TopicArn":"t"}}"#);
            let envelope = Envelope::read(&body).unwrap();
            let expected: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(envelope.text(), expected["Message"].as_str().unwrap(), "{body}");
            assert_eq!(envelope.media_type, "text/plain");
        }
        // A lone surrogate is serde_json's error, at the same place as before.
        let body = r#"{"Type":"Notification","Message":"{\"mediaType\":\"a\ud800\"}"}"#;
        let error = Envelope::read(body).err().unwrap();
        assert!(matches!(error, DecodeError::Malformed { part: BodyPart::Body, .. }), "{error:?}");
        let message_kinds =
            [("1", "number"), ("{}", "object"), ("[]", "array"), ("true", "boolean"), ("null", "null")];
        for (value, kind) in message_kinds {
            let body = format!(r#"{{"Type":"Notification","Message":{value}}}"#);
            let error = Envelope::read(&body).err().unwrap();
            assert!(error.to_string().contains(kind), "{error}");
        }
    }

    #[derive(Debug, Serialize, Deserialize, validator::Validate)]
    struct Rated {
        rate: Rate,
    }

    // Internally tagged: serde buffers the content, then narrows its f64 to f32 unchecked.
    #[derive(Debug, Serialize, Deserialize)]
    #[serde(tag = "kind")]
    enum Rate {
        Fixed { value: f32 },
    }

    impl PubSubMessage for Rated {
        const MEDIA_TYPE: &'static str = "application/vnd.acme.pubsub.rated";
    }

    fn body(value: &str) -> String {
        format!(r#"{{"mediaType": "{}", "rate": {{"kind": "Fixed", "value": {value}}}}}"#, Rated::MEDIA_TYPE)
    }

    #[test]
    fn a_number_beyond_f32_in_a_buffered_field_is_refused_not_infinite() {
        for huge in ["1e39", "-3.5E38", "1000000000000000000000000000000000000000"] {
            let Err(DecodeError::Invalid { report, .. }) = decode::<Rated>(&body(huge)) else {
                panic!("{huge} must be refused");
            };
            assert_eq!(report.violations[0].field, "rate", "{report}");
            assert_eq!(report.violations[0].code, "finite");
        }
        for fits in ["3.4e38", "1.5", "-0", "123456789012345678901234567890"] {
            assert!(decode::<Rated>(&body(fits)).is_ok(), "{fits}");
        }
    }

    #[test]
    fn every_kind_of_non_object_is_named() {
        for (body, kind) in [
            ("null", "null"),
            ("true", "a boolean"),
            ("-1.5", "a number"),
            ("\"s\"", "a string"),
            ("[]", "an array"),
        ] {
            match Envelope::read(body) {
                Err(DecodeError::NotAnObject { part: BodyPart::Body, found }) => {
                    assert_eq!(found, kind, "{body}")
                }
                Err(other) => panic!("{body}: {other}"),
                Ok(_) => panic!("{body}: read"),
            }
        }
    }

    fn nested(depth: usize, inner: &str) -> String {
        format!(r#"{{"mediaType": "a/b", "x": {}{inner}{}}}"#, "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_is_told_from_a_syntax_error_by_the_input_not_the_text() {
        // Too deep, on one line and spread over lines.
        let deep = nested(300, "1");
        assert!(matches!(decode_untyped_body(&deep), Err(DecodeError::TooDeep { .. })));
        let deep = deep.replace('[', "[\n");
        let Err(DecodeError::TooDeep { line, .. }) = decode_untyped_body(&deep) else { panic!("too deep") };
        assert!(line > 100, "{line}");
        // A syntax error well inside the limit stays a syntax error, with serde_json's reason
        // and no position in it.
        let Err(DecodeError::Malformed { reason, line: 1, .. }) = decode_untyped_body(&nested(100, "1,"))
        else {
            panic!("malformed")
        };
        assert!(!reason.contains(" at line "), "{reason}");
        // Brackets inside strings are not nesting.
        let quoted = format!(r#"{{"mediaType": "a/b", "x": ["{}\"[", }}"#, "[".repeat(300));
        assert!(matches!(decode_untyped_body(&quoted), Err(DecodeError::Malformed { .. })));
    }

    #[test]
    fn a_syntax_error_at_the_deepest_parsed_level_is_not_too_deep() {
        // The deepest nesting serde_json parses, found rather than assumed.
        let deepest = (1..MAX_DEPTH + 2)
            .take_while(|&depth| decode_untyped_body(&nested(depth, "1")).is_ok())
            .last()
            .expect("shallow nesting parses");
        assert!(matches!(decode_untyped_body(&nested(deepest + 1, "1")), Err(DecodeError::TooDeep { .. })));
        let error = decode_untyped_body(&nested(deepest, "1 2")).unwrap_err();
        assert!(matches!(error, DecodeError::Malformed { .. }), "{error}");
    }

    fn decode_untyped_body(body: &str) -> Result<(), DecodeError> {
        crate::decode::<crate::UntypedMessage>(body).map(drop)
    }

    #[test]
    fn a_reason_keeps_text_that_only_looks_like_a_position() {
        #[derive(Debug, Deserialize, Serialize, validator::Validate)]
        struct Picky {
            #[allow(dead_code)]
            kind: Kind,
        }
        #[derive(Debug, Deserialize, Serialize)]
        enum Kind {
            A,
        }
        impl PubSubMessage for Picky {
            const MEDIA_TYPE: &'static str = "application/vnd.acme.pubsub.picky";
        }
        let body = r#"{"mediaType": "application/vnd.acme.pubsub.picky", "kind": "B at line 9 column 9"}"#;
        let Err(DecodeError::Schema { reason, line: 1, .. }) = decode::<Picky>(body) else {
            panic!("schema")
        };
        assert_eq!(reason, "unknown variant `B at line 9 column 9`, expected `A`");
    }
}
