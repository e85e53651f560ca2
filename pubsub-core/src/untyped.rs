//! Messages with no Rust type: a media type and a JSON object.
//!
//! Used by command-line tools and for the lifecycle convention, whose `created`, `changed`
//! and `deleted` bodies decode without a declared schema (their conventional fields are still
//! checked).

use serde_json::{Map, Value};

use crate::body::{write_body, MEDIA_TYPE_KEY, OPAQUE_DATA_KEY};
use crate::envelope::Envelope;
use crate::error::{DecodeError, EncodeError, JsonKind};
use crate::message::Message;
use crate::opaque::OpaqueData;
use crate::{Change, Lifecycle, MediaType, MediaTypeError, ValidationReport};

/// A message known only by its media type.
///
/// ```
/// use pubsub_core::{decode, encode, OpaqueData, UntypedMessage};
///
/// let created = UntypedMessage::created("Widget", "http://example.com/api/v1/widget/1");
/// assert_eq!(created.media_type, "application/vnd.globality.pubsub._.created.widget");
///
/// let body = encode(&created, &OpaqueData::new())?;
/// let decoded = decode::<UntypedMessage>(&body)?;
/// assert_eq!(decoded.message.content["uri"], "http://example.com/api/v1/widget/1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct UntypedMessage {
    /// The media type.
    pub media_type: MediaType,
    /// The fields, without `mediaType` and `opaqueData`.
    pub content: Map<String, Value>,
}

/// Serializes as its content, the fields of the body.
impl serde::Serialize for UntypedMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.content.serialize(serializer)
    }
}

/// Why an untyped message cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UntypedError {
    /// The media type is not a valid concrete media type.
    #[error("invalid media type: {0}")]
    MediaType(#[from] MediaTypeError),
    /// The content is not a JSON object.
    #[error("message content must be a JSON object, but it is {0}")]
    NotAnObject(&'static str),
    /// The content holds an envelope key.
    #[error("message content must not hold `{0}`: the envelope writes `mediaType` and `opaqueData` itself")]
    ReservedKey(String),
}

impl UntypedMessage {
    /// A message of `media_type` with `content`, which must be a JSON object.
    pub fn new(media_type: &str, content: Value) -> Result<UntypedMessage, UntypedError> {
        let media_type = MediaType::parse(media_type)?;
        let Value::Object(content) = content else {
            return Err(UntypedError::NotAnObject(JsonKind::of(&content).as_str()));
        };
        if let Some(key) = [MEDIA_TYPE_KEY, OPAQUE_DATA_KEY].into_iter().find(|k| content.contains_key(*k)) {
            return Err(UntypedError::ReservedKey(key.to_owned()));
        }
        Ok(UntypedMessage { media_type, content })
    }

    /// A conventional `created` message for `resource` (snake-cased) carrying `uri`.
    pub fn created(resource: &str, uri: &str) -> UntypedMessage {
        Self::conventional(Change::Created, resource, [("uri", Value::from(uri))])
    }

    /// A conventional `changed` message carrying `uri` and optionally what changed.
    pub fn changed(
        resource: &str,
        uri: &str,
        field_name: Option<&str>,
        new_value: Option<Value>,
    ) -> UntypedMessage {
        let mut message = Self::conventional(Change::Changed, resource, [("uri", Value::from(uri))]);
        if let Some(field_name) = field_name {
            message.content.insert("field_name".into(), field_name.into());
        }
        if let Some(new_value) = new_value {
            message.content.insert("new_value".into(), new_value);
        }
        message
    }

    /// A conventional `deleted` message carrying `id`.
    pub fn deleted(resource: &str, id: &str) -> UntypedMessage {
        Self::conventional(Change::Deleted, resource, [("id", Value::from(id))])
    }

    fn conventional<const N: usize>(
        change: Change,
        resource: &str,
        fields: [(&str, Value); N],
    ) -> UntypedMessage {
        let media_type = Lifecycle::new(change, resource).media_type();
        UntypedMessage {
            media_type: MediaType::parse(&media_type).expect("lifecycle media types are valid"),
            content: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        }
    }

    /// The lifecycle convention the media type follows, if any.
    pub fn lifecycle(&self) -> Option<Lifecycle> {
        Lifecycle::parse(self.media_type.as_str())
    }

    /// Checks the conventional fields of a lifecycle message: `created` needs a string `uri`;
    /// `changed` a string `uri` and, when present, a string `field_name`; `deleted` a string
    /// `id`. Messages outside the convention have nothing to check.
    pub fn check_convention(&self) -> Result<(), ValidationReport> {
        let Some(lifecycle) = self.lifecycle() else { return Ok(()) };
        let required: &[&str] = match lifecycle.change {
            Change::Created | Change::Changed => &["uri"],
            Change::Deleted => &["id"],
        };
        let mut report = ValidationReport::default();
        for &field in required {
            match self.content.get(field) {
                Some(Value::String(_)) => {}
                Some(other) => {
                    report.push(field, "type", format!("must be a string, but it is {}", JsonKind::of(other)))
                }
                None => report.push(
                    field,
                    "required",
                    format!("is required by the `{}` convention", lifecycle.change),
                ),
            }
        }
        if lifecycle.change == Change::Changed {
            if let Some(other) = self.content.get("field_name").filter(|v| !v.is_string() && !v.is_null()) {
                report.push(
                    "field_name",
                    "type",
                    format!("must be a string, but it is {}", JsonKind::of(other)),
                );
            }
        }
        if report.is_empty() {
            Ok(())
        } else {
            Err(report)
        }
    }
}

/// The body of an untyped message, as [`encode`](crate::encode) writes a typed one
/// (conventional fields checked, top-level `null`s left out).
impl Message for UntypedMessage {
    fn media_type(&self) -> &str {
        self.media_type.as_str()
    }

    const TYPE_MEDIA_TYPE: &'static str = "";

    fn write_body(&self, opaque: &OpaqueData, stamp: &str) -> Result<String, EncodeError> {
        self.check_convention()
            .map_err(|report| EncodeError::Invalid { media_type: self.media_type.to_string(), report })?;
        write_body(self.media_type.as_str(), opaque, stamp, &WithoutNulls(&self.content))
    }

    fn from_envelope(envelope: &Envelope<'_>) -> Result<UntypedMessage, DecodeError> {
        untyped_from_envelope(envelope)
    }
}

/// The content without its top-level `null`s: as a typed message's `None`, a `null` here
/// stands for an absent field, and the seed's schemas reject `null` for those.
struct WithoutNulls<'c>(&'c Map<String, Value>);

impl serde::Serialize for WithoutNulls<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().filter(|(_, value)| !value.is_null()))
    }
}

/// The content of `envelope` as an untyped message, conventional fields checked.
pub(crate) fn untyped_from_envelope(envelope: &Envelope<'_>) -> Result<UntypedMessage, DecodeError> {
    let media_type = MediaType::parse(&envelope.media_type)?;
    let mut content: Map<String, Value> = envelope.content()?;
    content.remove(MEDIA_TYPE_KEY);
    content.remove(OPAQUE_DATA_KEY);
    let message = UntypedMessage { media_type, content };
    match message.check_convention() {
        Ok(()) => Ok(message),
        // The content goes with the error: only the convention failed, the body is readable.
        Err(report) => Err(DecodeError::Convention {
            media_type: envelope.media_type.clone(),
            report,
            content: message.content,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_level_nulls_are_left_out_and_nested_ones_kept() {
        let message = UntypedMessage::new("a/b", json!({"x": 1, "gone": null, "o": {"kept": null}})).unwrap();
        let body = crate::encode(&message, &OpaqueData::new()).unwrap();
        let content = crate::decode::<UntypedMessage>(&body).unwrap().message.content;
        assert_eq!(Value::Object(content), json!({"x": 1, "o": {"kept": null}}));
    }

    #[test]
    fn a_convention_failure_keeps_the_content() {
        let body = r#"{"mediaType": "application/vnd.globality.pubsub._.created.order",
            "opaqueData": {"x-request-id": "r-1"}, "orderId": "o-7", "total": 12}"#;
        let error = crate::decode::<UntypedMessage>(body).unwrap_err();
        let DecodeError::Convention { media_type, report, content } = &error else {
            panic!("expected a convention error, got {error:?}")
        };
        assert_eq!(media_type, "application/vnd.globality.pubsub._.created.order");
        assert_eq!(Value::Object(content.clone()), json!({"orderId": "o-7", "total": 12}));
        assert!(report.to_string().contains("uri"), "{report}");
        assert_eq!(
            error.to_string(),
            format!(
                "the `application/vnd.globality.pubsub._.created.order` message failed validation: {report}"
            )
        );
        // A body that does not parse is no convention failure: nothing to keep.
        assert!(matches!(crate::decode::<UntypedMessage>("not json"), Err(DecodeError::Malformed { .. })));
    }
}
