//! What can go wrong encoding and decoding a message, in words a user can act on.

use std::fmt;

use crate::{MediaTypeError, ValidationReport};

/// Which layer of an SQS body a decode error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPart {
    /// The SQS body itself (raw delivery, or the SNS notification around the message).
    Body,
    /// The message string inside an SNS notification's `Message`.
    NotificationMessage,
}

impl fmt::Display for BodyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyPart::Body => "message body",
            BodyPart::NotificationMessage => "SNS notification's `Message`",
        })
    }
}

/// Why a message was not encoded. Nothing is written when any check fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The message failed its `validator` checks.
    #[error("`{media_type}` failed validation, so it was not encoded: {report}")]
    Invalid {
        /// The message's media type.
        media_type: String,
        /// Each failed check by wire name.
        report: ValidationReport,
    },
    /// JSON has no NaN or infinity; serde_json would silently write `null`.
    #[error("field `{field}` holds a non-finite float (NaN or infinity), which JSON cannot carry; it was not encoded (use an Option for a missing number)")]
    NonFiniteFloat {
        /// The top-level wire name of the field holding it.
        field: String,
    },
    /// The type serializes as something other than a JSON object.
    #[error("a message must serialize as a JSON object of fields, but this one serializes as {found}")]
    NotAnObject {
        /// What it serializes as.
        found: &'static str,
    },
    /// A field would overwrite the envelope's own key.
    #[error("the content has a key `{0}`, which the envelope reserves (`mediaType` and `opaqueData` are written by encode); rename it")]
    ReservedKey(String),
    /// The media type is not a valid concrete media type.
    #[error("invalid media type: {0}")]
    InvalidMediaType(#[from] MediaTypeError),
    /// The type's own `Serialize` failed.
    #[error("the message could not be serialized: {0}")]
    Serialize(String),
}

/// Why an SQS body did not decode into a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not valid JSON.
    #[error("the {part} is not valid JSON: {reason} at line {line}, column {column}")]
    Malformed {
        /// Which layer failed to parse.
        part: BodyPart,
        /// serde_json's reason.
        reason: String,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column of the fault.
        column: usize,
    },
    /// JSON nested deeper than the decoder follows (128 levels), which no message needs.
    #[error("the {part} is nested more than 128 levels deep, deeper than the decoder follows, at line {line}, column {column}")]
    TooDeep {
        /// Which layer.
        part: BodyPart,
        /// 1-based line where the limit was reached.
        line: usize,
        /// 1-based column where the limit was reached.
        column: usize,
    },
    /// Valid JSON, but not an object.
    #[error("the {part} must be a JSON object, but it is {found}")]
    NotAnObject {
        /// Which layer.
        part: BodyPart,
        /// What it is instead.
        found: &'static str,
    },
    /// An SNS notification whose `Message` is not a string.
    #[error("the body looks like an SNS notification, but its `Message` is {found}, not a string holding the message")]
    NotificationMessageNotString {
        /// What `Message` is instead.
        found: &'static str,
    },
    /// No `mediaType` key.
    #[error("the message has no `mediaType` key, so its type is unknown; every microcosm-pubsub message carries one")]
    MissingMediaType,
    /// `mediaType` is present but not a string.
    #[error("`mediaType` must be a string, but it is {found}")]
    MediaTypeNotString {
        /// What it is instead.
        found: &'static str,
    },
    /// `opaqueData` is present but not an object.
    #[error("`opaqueData` must be an object of strings: {reason}")]
    BadOpaqueData {
        /// serde_json's reason.
        reason: String,
    },
    /// The message is a pointer to a body offloaded to an object store (S3), and the body
    /// could not be read: the object is missing or unreadable, or no store is configured.
    #[error("{reason}")]
    PayloadUnavailable {
        /// The object.
        pointer: crate::payload::PayloadPointer,
        /// Why, naming bucket and key.
        reason: String,
    },
    /// The media type is not what the caller asked for.
    #[error("media type mismatch: expected `{expected}`, found `{found}`")]
    MediaTypeMismatch {
        /// The type's media type.
        expected: String,
        /// The message's media type.
        found: String,
    },
    /// No schema is known for the media type (registry lookups).
    #[error("no schema is registered for media type `{0}`")]
    UnknownMediaType(String),
    /// The media type is not a valid media type (untyped decoding).
    #[error("invalid media type: {0}")]
    InvalidMediaType(#[from] MediaTypeError),
    /// The fields do not fit the type: a missing field, a wrong type.
    #[error("the `{media_type}` message does not fit its schema: {reason} (line {line}, column {column} of the message)")]
    Schema {
        /// The message's media type.
        media_type: String,
        /// serde's reason, naming fields by their wire names.
        reason: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The fields fit but fail validation.
    #[error("the `{media_type}` message failed validation: {report}")]
    Invalid {
        /// The message's media type.
        media_type: String,
        /// Each failed check by wire name.
        report: ValidationReport,
    },
    /// A lifecycle message (`created`, `changed`, `deleted`) without its conventional fields,
    /// decoded with no schema. Its content is kept: a peer may publish a conventional media
    /// type with a schema of its own, so a reader can still show what came.
    #[error("the `{media_type}` message failed validation: {report}")]
    Convention {
        /// The message's media type.
        media_type: String,
        /// Each conventional field that is missing or of the wrong type.
        report: ValidationReport,
        /// The message's fields, without `mediaType` and `opaqueData`.
        content: serde_json::Map<String, serde_json::Value>,
    },
}

/// What a JSON value is, named in error messages ("it is a number"). The one spelling of
/// each kind; public errors carry [`JsonKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonKind {
    Null,
    Boolean,
    Number,
    String,
    Array,
    Object,
}

impl JsonKind {
    /// The kind of `value`.
    pub(crate) fn of(value: &serde_json::Value) -> JsonKind {
        match value {
            serde_json::Value::Null => JsonKind::Null,
            serde_json::Value::Bool(_) => JsonKind::Boolean,
            serde_json::Value::Number(_) => JsonKind::Number,
            serde_json::Value::String(_) => JsonKind::String,
            serde_json::Value::Array(_) => JsonKind::Array,
            serde_json::Value::Object(_) => JsonKind::Object,
        }
    }

    /// "null", "a boolean", "a number", "a string", "an array" or "an object".
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            JsonKind::Null => "null",
            JsonKind::Boolean => "a boolean",
            JsonKind::Number => "a number",
            JsonKind::String => "a string",
            JsonKind::Array => "an array",
            JsonKind::Object => "an object",
        }
    }
}

impl fmt::Display for JsonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// serde_json's reason without the " at line L column C" its `Display` appends (errors here
/// report the position apart, from `line()` and `column()`).
///
/// serde_json exposes no typed reason (its `ErrorCode` is private), so its text is the only
/// source. The suffix cut is the exact one serde_json writes for this error's own position,
/// rebuilt from the typed accessors, so no other text can match.
pub(crate) fn json_reason(error: &serde_json::Error) -> String {
    let text = error.to_string();
    if error.line() == 0 {
        return text;
    }
    let position = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&position) {
        Some(reason) => reason.to_owned(),
        None => text,
    }
}
