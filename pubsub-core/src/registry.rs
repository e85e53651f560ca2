//! The registry of schemas: every derived type registers itself at link time (through
//! `inventory`), so a runtime can list the media types it knows and decode any body by its
//! media type: exact match first, then a `prefix.*` registration, then (unless turned off)
//! the lifecycle convention, whose bodies decode without a declared schema.

use std::any::Any;
use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

use crate::envelope::{decode_envelope, Decoded, Envelope};
use crate::error::DecodeError;
use crate::media_type::MediaTypeTable;
use crate::untyped::UntypedMessage;
use crate::{Lifecycle, MediaTypeError, MediaTypePattern, PubSubMessage};

type DecodeFn = fn(Envelope<'_>) -> Result<Decoded<DynMessage>, DecodeError>;

/// What `#[derive(PubSubMessage)]` submits for each type. Not a public API.
#[doc(hidden)]
pub struct MessageRegistration {
    media_type: &'static str,
    type_name: &'static str,
    decode: DecodeFn,
    #[cfg(feature = "schema")]
    json_schema: crate::schema::BodySchemaFn,
}

impl MessageRegistration {
    /// The registration of `T`, named `type_name`.
    pub const fn of<T: PubSubMessage>(type_name: &'static str) -> MessageRegistration {
        MessageRegistration {
            media_type: T::MEDIA_TYPE,
            type_name,
            decode: decode_typed::<T>,
            #[cfg(feature = "schema")]
            json_schema: T::__json_schema,
        }
    }
}

inventory::collect!(MessageRegistration);

fn decode_typed<T: PubSubMessage>(envelope: Envelope<'_>) -> Result<Decoded<DynMessage>, DecodeError> {
    let decoded = decode_envelope::<T>(envelope)?;
    Ok(Decoded {
        message: DynMessage::new(decoded.message),
        media_type: decoded.media_type,
        opaque_data: decoded.opaque_data,
    })
}

fn decode_untyped_dyn(envelope: Envelope<'_>) -> Result<Decoded<DynMessage>, DecodeError> {
    let decoded = decode_envelope::<UntypedMessage>(envelope)?;
    Ok(Decoded {
        message: DynMessage::new(decoded.message),
        media_type: decoded.media_type,
        opaque_data: decoded.opaque_data,
    })
}

/// A decoded message whose type is known only at run time.
pub struct DynMessage {
    value: Box<dyn Any + Send>,
    to_json: fn(&(dyn Any + Send)) -> Value,
}

impl DynMessage {
    fn new<T: serde::Serialize + Send + 'static>(value: T) -> DynMessage {
        fn to_json<T: serde::Serialize + 'static>(value: &(dyn Any + Send)) -> Value {
            let value = value.downcast_ref::<T>().expect("DynMessage holds its own type");
            serde_json::to_value(value).unwrap_or(Value::Null)
        }
        DynMessage { value: Box::new(value), to_json: to_json::<T> }
    }

    /// The message as `T`, when it is one (typed schemas hold their type, untyped ones an
    /// [`UntypedMessage`]).
    pub fn downcast<T: 'static>(self) -> Result<T, DynMessage> {
        let DynMessage { value, to_json } = self;
        match value.downcast::<T>() {
            Ok(value) => Ok(*value),
            Err(value) => Err(DynMessage { value, to_json }),
        }
    }

    /// A reference to the message as `T`, when it is one.
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.value.downcast_ref::<T>()
    }

    /// The message's fields as JSON (without `mediaType` and `opaqueData`).
    pub fn to_json(&self) -> Value {
        (self.to_json)(self.value.as_ref())
    }
}

impl fmt::Debug for DynMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DynMessage").field(&self.to_json()).finish()
    }
}

/// Whether a schema decodes into a Rust type or into an [`UntypedMessage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    /// A `#[derive(PubSubMessage)]` type.
    Typed,
    /// An [`UntypedMessage`], conventional fields checked.
    Untyped,
}

/// One registered schema.
#[derive(Clone)]
pub struct Schema {
    matches: SchemaMatch,
    type_name: String,
    kind: SchemaKind,
    decode: DecodeFn,
    /// A typed schema's body schema; `None` for untyped ones.
    #[cfg(feature = "schema")]
    json_schema: Option<crate::schema::BodySchemaFn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemaMatch {
    Pattern(MediaTypePattern),
    LifecycleConvention,
}

impl Schema {
    /// What it answers to: a media type, `prefix.*`, or `lifecycle convention`.
    pub fn pattern(&self) -> String {
        match &self.matches {
            SchemaMatch::Pattern(pattern) => pattern.to_string(),
            SchemaMatch::LifecycleConvention => "lifecycle convention".to_owned(),
        }
    }

    /// The Rust type's path, or `untyped`.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// Typed or untyped.
    pub fn kind(&self) -> SchemaKind {
        self.kind
    }

    /// Decodes `body` with this schema (the media type is checked again).
    pub fn decode(&self, body: &str) -> Result<Decoded<DynMessage>, DecodeError> {
        (self.decode)(Envelope::read(body)?)
    }

    /// The JSON Schema (draft 2020-12) of the bodies this schema decodes, as they travel
    /// (feature `schema`; see [`schema`](crate::schema)): a typed schema's is its type's; an
    /// untyped pattern's is any object under its media types; the lifecycle convention's is one
    /// of its three conventions.
    #[cfg(feature = "schema")]
    pub fn json_schema(&self) -> Value {
        match &self.matches {
            SchemaMatch::LifecycleConvention => crate::schema::lifecycle_convention_schema(),
            SchemaMatch::Pattern(pattern) => crate::schema::standalone(self.json_schema, pattern)
                // A type that implements PubSubMessage by hand has no schema: any object.
                .or_else(|| crate::schema::standalone(None, pattern))
                .expect("an untyped schema always has one"),
        }
    }

    /// The pattern it answers to, and the body schema of a typed one, for documents.
    #[cfg(feature = "schema")]
    pub(crate) fn parts(&self) -> (Option<&MediaTypePattern>, Option<crate::schema::BodySchemaFn>) {
        match &self.matches {
            SchemaMatch::Pattern(pattern) => (Some(pattern), self.json_schema),
            SchemaMatch::LifecycleConvention => (None, None),
        }
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema")
            .field("pattern", &self.pattern())
            .field("type_name", &self.type_name)
            .field("kind", &self.kind)
            .finish()
    }
}

/// A registry that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two schemas claim the same media type (or the same pattern).
    #[error("media type `{media_type}` is claimed by both `{first}` and `{second}`; give one of them another media type")]
    Duplicate {
        /// The contested media type or pattern.
        media_type: String,
        /// The type registered first (in type-name order, so the message is stable).
        first: String,
        /// The other type.
        second: String,
    },
    /// A derived type's media type is not valid (only possible when bypassing the derive).
    #[error("`{type_name}` declares an invalid media type: {error}")]
    InvalidMediaType {
        /// The type.
        type_name: String,
        /// Why.
        error: MediaTypeError,
    },
}

/// Builds a [`Registry`].
pub struct RegistryBuilder {
    schemas: Vec<Schema>,
    lifecycle_fallback: bool,
}

impl RegistryBuilder {
    /// Adds every type linked into this binary with `#[derive(PubSubMessage)]`.
    pub fn linked(mut self) -> Result<RegistryBuilder, RegistryError> {
        for registration in inventory::iter::<MessageRegistration> {
            let pattern = MediaTypePattern::parse(registration.media_type).map_err(|error| {
                RegistryError::InvalidMediaType { type_name: registration.type_name.to_owned(), error }
            })?;
            self.schemas.push(Schema {
                matches: SchemaMatch::Pattern(pattern),
                type_name: registration.type_name.to_owned(),
                kind: SchemaKind::Typed,
                decode: registration.decode,
                #[cfg(feature = "schema")]
                json_schema: Some(registration.json_schema),
            });
        }
        Ok(self)
    }

    /// Adds `T` explicitly (no effect on a type the registry already has from [`linked`]
    /// other than a duplicate error, so use one or the other).
    ///
    /// [`linked`]: RegistryBuilder::linked
    pub fn typed<T: PubSubMessage>(mut self) -> Result<RegistryBuilder, RegistryError> {
        let pattern = MediaTypePattern::parse(T::MEDIA_TYPE).map_err(|error| {
            RegistryError::InvalidMediaType { type_name: std::any::type_name::<T>().to_owned(), error }
        })?;
        self.schemas.push(Schema {
            matches: SchemaMatch::Pattern(pattern),
            type_name: std::any::type_name::<T>().to_owned(),
            kind: SchemaKind::Typed,
            decode: decode_typed::<T>,
            #[cfg(feature = "schema")]
            json_schema: Some(T::__json_schema),
        });
        Ok(self)
    }

    /// Adds an untyped schema for `pattern` (`type/subtype` or `prefix.*`).
    pub fn untyped(mut self, pattern: &str) -> Result<RegistryBuilder, MediaTypeError> {
        self.schemas.push(Schema {
            matches: SchemaMatch::Pattern(MediaTypePattern::parse(pattern)?),
            type_name: "untyped".to_owned(),
            kind: SchemaKind::Untyped,
            decode: decode_untyped_dyn,
            #[cfg(feature = "schema")]
            json_schema: None,
        });
        Ok(self)
    }

    /// Whether lifecycle media types with no schema decode untyped (on by default).
    pub fn lifecycle_fallback(mut self, enabled: bool) -> RegistryBuilder {
        self.lifecycle_fallback = enabled;
        self
    }

    /// Checks for duplicates and builds the registry.
    pub fn build(self) -> Result<Registry, RegistryError> {
        let mut by_pattern: MediaTypeTable<Schema> = MediaTypeTable::default();
        for schema in self.schemas {
            let SchemaMatch::Pattern(pattern) = &schema.matches else {
                unreachable!("the builder holds patterns only; the lifecycle schema is added below")
            };
            if let Some(existing) = by_pattern.get(pattern) {
                let mut names = [existing.type_name.clone(), schema.type_name.clone()];
                names.sort();
                let [first, second] = names;
                return Err(RegistryError::Duplicate { media_type: schema.pattern(), first, second });
            }
            by_pattern.insert(pattern.clone(), schema);
        }
        Ok(Registry {
            schemas: by_pattern,
            lifecycle: self.lifecycle_fallback.then(|| Schema {
                matches: SchemaMatch::LifecycleConvention,
                type_name: "untyped".to_owned(),
                kind: SchemaKind::Untyped,
                decode: decode_untyped_dyn,
                #[cfg(feature = "schema")]
                json_schema: None,
            }),
        })
    }
}

/// The schemas a runtime knows, by media type.
///
/// ```
/// use pubsub_core::{PubSubMessage, registry::Registry};
/// # use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
/// #[media_type = "application/vnd.acme.pubsub.ping"]
/// struct Ping {}
///
/// let registry = Registry::global()?;
/// assert!(registry.media_types().any(|m| m == "application/vnd.acme.pubsub.ping"));
/// let schema = registry.lookup("application/vnd.acme.pubsub.ping").unwrap();
/// assert!(schema.type_name().ends_with("::Ping"));
/// // Lifecycle media types decode without a declared schema.
/// assert!(registry.lookup("application/vnd.acme.pubsub._.created.widget").is_some());
/// # Ok::<(), pubsub_core::registry::RegistryError>(())
/// ```
#[derive(Debug)]
pub struct Registry {
    schemas: MediaTypeTable<Schema>,
    lifecycle: Option<Schema>,
}

impl Registry {
    /// An empty builder (lifecycle fallback on).
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder { schemas: Vec::new(), lifecycle_fallback: true }
    }

    /// The registry of every type linked into this binary, built once.
    pub fn global() -> Result<&'static Registry, RegistryError> {
        static GLOBAL: OnceLock<Result<Registry, RegistryError>> = OnceLock::new();
        GLOBAL.get_or_init(|| Registry::builder().linked()?.build()).as_ref().map_err(Clone::clone)
    }

    /// The schema for `media_type`: exact match, else `prefix.*`, else the lifecycle
    /// convention when `media_type` follows it.
    pub fn lookup(&self, media_type: &str) -> Option<&Schema> {
        if let Some(schema) = self.schemas.lookup(media_type) {
            return Some(schema);
        }
        self.lifecycle.as_ref().filter(|_| Lifecycle::parse(media_type).is_some())
    }

    /// Decodes `body` with the schema its media type selects.
    pub fn decode(&self, body: &str) -> Result<Decoded<DynMessage>, DecodeError> {
        let envelope = Envelope::read(body)?;
        let schema = self
            .lookup(&envelope.media_type)
            .ok_or_else(|| DecodeError::UnknownMediaType(envelope.media_type.clone()))?;
        (schema.decode)(envelope)
    }

    /// The JSON Schema (draft 2020-12) of the bodies of `media_type` as they travel (feature
    /// `schema`): its typed schema's, an untyped pattern's, or the lifecycle convention's for
    /// its change; `None` when this registry would not decode it.
    ///
    /// ```
    /// use pubsub_core::{PubSubMessage, registry::Registry};
    /// # use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
    /// #[media_type = "application/vnd.acme.pubsub.ping"]
    /// struct Ping {
    ///     sequence: u32,
    /// }
    ///
    /// let registry = Registry::global()?;
    /// let ping = registry.json_schema("application/vnd.acme.pubsub.ping").unwrap();
    /// assert_eq!(ping["properties"]["sequence"]["minimum"], 0);
    /// let created = registry.json_schema("application/vnd.acme.pubsub._.created.widget").unwrap();
    /// assert_eq!(created["required"], serde_json::json!(["mediaType", "uri"]));
    /// # Ok::<(), pubsub_core::registry::RegistryError>(())
    /// ```
    #[cfg(feature = "schema")]
    pub fn json_schema(&self, media_type: &str) -> Option<Value> {
        let schema = self.lookup(media_type)?;
        match &schema.matches {
            SchemaMatch::LifecycleConvention => crate::schema::lifecycle_json_schema(media_type),
            SchemaMatch::Pattern(_) => Some(schema.json_schema()),
        }
    }

    /// The registered media types and patterns, sorted.
    pub fn media_types(&self) -> impl Iterator<Item = &str> {
        self.schemas.sorted().into_iter().map(|(pattern, _)| pattern)
    }

    /// The registered schemas, sorted by media type.
    pub fn schemas(&self) -> impl Iterator<Item = &Schema> {
        self.schemas.sorted().into_iter().map(|(_, schema)| schema)
    }
}
