//! The AsyncAPI 3.0 document of a service: the queue it reads and what its handlers take
//! (receive), the topics it publishes to and what it may send there (send), and each message's
//! media type, `media_type` header and payload schema.
//!
//! Payloads are in AsyncAPI's own schema format (JSON Schema draft-07 and a few keywords), so
//! they are generated with draft-07 settings; nested types are hoisted to
//! `components/schemas` and referenced as `#/components/schemas/Name` (a schema's own
//! `#/$defs/...` would not resolve inside the document).

use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

use super::{add_envelope, any_object, convention_body, into_object, media_type_schema, BodySchemaFn};
use crate::registry::{Registry, SchemaKind};
use crate::transport::Destination;
use crate::{Lifecycle, MediaTypeError, MediaTypePattern, TopicMap};

/// The AsyncAPI version of the documents [`AsyncApi`] writes.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// How a document is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum AsyncApiFormat {
    /// JSON, indented.
    #[default]
    Json,
    /// YAML.
    Yaml,
}

/// What a service's AsyncAPI document says, gathered before it is written against a
/// [`Registry`]. A daemon's comes from its builder
/// ([`DaemonBuilder::asyncapi`](crate::DaemonBuilder::asyncapi)); daemons built with the daemon
/// command line print it with `--asyncapi`.
///
/// What it may send is every media type its topic map routes by name; for a `prefix.*` route,
/// every linked type under the prefix; for the default topic, every linked type its handlers do
/// not take. [`sends`](AsyncApi::sends) adds one by hand.
///
/// ```
/// use pubsub_core::registry::Registry;
/// use pubsub_core::schema::AsyncApi;
/// use pubsub_core::{PubSubMessage, TopicMap};
/// # use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
/// #[media_type = "application/vnd.acme.pubsub.invoice"]
/// struct Invoice {
///     amount: u64,
/// }
///
/// let topics = TopicMap::new().route("application/vnd.acme.pubsub.invoice", "arn:aws:sns:us-east-1:1:invoices")?;
/// let document = AsyncApi::new("billing")
///     .receives("billing", ["application/vnd.acme.pubsub._.created.order"])?
///     .topics(topics)
///     .document(Registry::global()?);
/// assert_eq!(document["asyncapi"], "3.0.0");
/// assert_eq!(document["channels"]["topic_invoices"]["address"], "arn:aws:sns:us-east-1:1:invoices");
/// let invoice = &document["components"]["messages"]["application_vnd_acme_pubsub_invoice"];
/// assert_eq!(invoice["payload"]["properties"]["amount"]["type"], "integer");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct AsyncApi {
    title: String,
    version: String,
    description: Option<String>,
    queue: Option<String>,
    receives: Vec<MediaTypePattern>,
    topics: Option<TopicMap>,
    sends: Vec<(MediaTypePattern, String)>,
}

impl AsyncApi {
    /// A document titled `title` (the service's name), version `0.0.0`, with nothing in it.
    pub fn new(title: impl Into<String>) -> AsyncApi {
        AsyncApi {
            title: title.into(),
            version: "0.0.0".to_owned(),
            description: None,
            queue: None,
            receives: Vec::new(),
            topics: None,
            sends: Vec::new(),
        }
    }

    /// The version of the service's API (`info.version`).
    pub fn version(mut self, version: impl Into<String>) -> AsyncApi {
        self.version = version.into();
        self
    }

    /// What the service is (`info.description`).
    pub fn description(mut self, description: impl Into<String>) -> AsyncApi {
        self.description = Some(description.into());
        self
    }

    /// The queue the service reads (its URL or name) and the media types (or `prefix.*`
    /// patterns) its handlers take.
    pub fn receives<I, S>(
        mut self,
        queue: impl Into<String>,
        media_types: I,
    ) -> Result<AsyncApi, MediaTypeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.queue = Some(queue.into());
        for media_type in media_types {
            let pattern = MediaTypePattern::parse(media_type.as_ref())?;
            if !self.receives.contains(&pattern) {
                self.receives.push(pattern);
            }
        }
        Ok(self)
    }

    /// The topic map of what the service publishes.
    pub fn topics(mut self, topics: TopicMap) -> AsyncApi {
        self.topics = Some(topics);
        self
    }

    /// Says that the service may send `media_type` to `topic` (a topic ARN or a queue URL),
    /// beside what the topic map routes.
    pub fn sends(mut self, media_type: &str, topic: impl Into<String>) -> Result<AsyncApi, MediaTypeError> {
        self.sends.push((MediaTypePattern::parse(media_type)?, topic.into()));
        Ok(self)
    }

    /// The document, with the schemas `registry` has.
    pub fn document(&self, registry: &Registry) -> Value {
        let mut writer = Writer::new(registry);
        if let Some(queue) = &self.queue {
            let channel = writer.channel(ChannelKind::Queue, queue);
            for pattern in &self.receives {
                writer.operation("receive", &channel, pattern);
            }
        }
        for (pattern, topic) in self.sent(registry) {
            let kind = if Destination::of(&topic).is_queue() {
                ChannelKind::QueueSentTo
            } else {
                ChannelKind::Topic
            };
            let channel = writer.channel(kind, &topic);
            writer.operation("send", &channel, &pattern);
        }
        let mut info = Map::new();
        info.insert("title".to_owned(), self.title.clone().into());
        info.insert("version".to_owned(), self.version.clone().into());
        if let Some(description) = &self.description {
            info.insert("description".to_owned(), description.clone().into());
        }
        writer.finish(info)
    }

    /// The document written as `format`.
    pub fn render(&self, registry: &Registry, format: AsyncApiFormat) -> String {
        let document = self.document(registry);
        match format {
            AsyncApiFormat::Json => {
                let mut text = serde_json::to_string_pretty(&document).expect("a JSON value serializes");
                text.push('\n');
                text
            }
            AsyncApiFormat::Yaml => serde_norway::to_string(&document).expect("a JSON value is YAML"),
        }
    }

    /// What may be sent where: the explicit sends, then the topic map's routes, then the
    /// default topic's share of the linked types.
    fn sent(&self, registry: &Registry) -> Vec<(MediaTypePattern, String)> {
        let mut sent = self.sends.clone();
        let Some(topics) = &self.topics else { return sent };
        let linked: Vec<&MediaTypePattern> = registry
            .schemas()
            .filter(|schema| schema.kind() == SchemaKind::Typed)
            .filter_map(|schema| schema.parts().0)
            .collect();
        let routes: Vec<(MediaTypePattern, &str)> = topics
            .routes()
            .map(|(route, topic)| (MediaTypePattern::parse(route).expect("a route is a pattern"), topic))
            .collect();
        for (route, topic) in &routes {
            match route {
                MediaTypePattern::Exact(_) => sent.push((route.clone(), (*topic).to_owned())),
                MediaTypePattern::Prefix(_) => {
                    let under: Vec<_> =
                        linked.iter().filter(|linked| route.matches(&linked.to_string())).collect();
                    if under.is_empty() {
                        sent.push((route.clone(), (*topic).to_owned()));
                    }
                    sent.extend(under.into_iter().map(|linked| ((*linked).clone(), (*topic).to_owned())));
                }
            }
        }
        if let Some(default) = topics.default_route() {
            for linked in linked {
                let media_type = linked.to_string();
                let routed = routes.iter().any(|(route, _)| route.matches(&media_type));
                let received = self.receives.iter().any(|pattern| pattern.matches(&media_type));
                if !routed && !received {
                    sent.push((linked.clone(), default.to_owned()));
                }
            }
        }
        let mut seen = Vec::new();
        sent.retain(|entry| {
            let fresh = !seen.contains(entry);
            seen.push(entry.clone());
            fresh
        });
        sent
    }
}

/// What a channel is.
#[derive(Clone, Copy)]
enum ChannelKind {
    /// The queue the service reads.
    Queue,
    /// An SNS topic it publishes to.
    Topic,
    /// A queue it sends to directly.
    QueueSentTo,
}

/// Builds the document's sections, each message and channel once.
struct Writer<'r> {
    registry: &'r Registry,
    generator: SchemaGenerator,
    /// The draft-07 transforms, for the payloads (the generator applies them to definitions).
    transforms: Vec<Box<dyn schemars::generate::GenTransform>>,
    channels: Map<String, Value>,
    operations: Map<String, Value>,
    messages: Map<String, Value>,
}

impl<'r> Writer<'r> {
    fn new(registry: &'r Registry) -> Writer<'r> {
        let mut settings = SchemaSettings::draft07();
        settings.definitions_path = "/components/schemas".into();
        settings.meta_schema = None;
        Writer {
            registry,
            generator: settings.into_generator(),
            transforms: SchemaSettings::draft07().transforms,
            channels: Map::new(),
            operations: Map::new(),
            messages: Map::new(),
        }
    }

    /// The key of the channel at `address`, added if new.
    fn channel(&mut self, kind: ChannelKind, address: &str) -> String {
        let (prefix, description) = match kind {
            ChannelKind::Queue => ("queue", "The SQS queue this service reads."),
            ChannelKind::Topic => ("topic", "An SNS topic this service publishes to."),
            ChannelKind::QueueSentTo => ("queue", "An SQS queue this service sends to directly."),
        };
        let name = address.rsplit([':', '/']).find(|part| !part.is_empty()).unwrap_or(address);
        let base = format!("{prefix}_{}", key(name));
        let mut candidate = base.clone();
        for n in 2.. {
            match self.channels.get(&candidate) {
                Some(existing) if existing["address"] != address => candidate = format!("{base}_{n}"),
                _ => break,
            }
        }
        self.channels
            .entry(candidate.clone())
            .or_insert_with(|| json!({"address": address, "description": description, "messages": {}}));
        candidate
    }

    /// Adds the operation `action` of `pattern`'s message on `channel`.
    fn operation(&mut self, action: &str, channel: &str, pattern: &MediaTypePattern) {
        let message = self.message(pattern);
        self.channels[channel]["messages"][&message] =
            json!({"$ref": format!("#/components/messages/{message}")});
        let base = format!("{action}_{message}");
        let mut name = base.clone();
        for n in 2.. {
            if !self.operations.contains_key(&name) {
                break;
            }
            name = format!("{base}_{n}");
        }
        self.operations.insert(
            name,
            json!({
                "action": action,
                "channel": {"$ref": format!("#/channels/{channel}")},
                "messages": [{"$ref": format!("#/channels/{channel}/messages/{message}")}],
            }),
        );
    }

    /// The key of `pattern`'s message, added to the components if new.
    fn message(&mut self, pattern: &MediaTypePattern) -> String {
        let name = pattern.to_string();
        let message_key = key(&name);
        if self.messages.contains_key(&message_key) {
            return message_key;
        }
        let (title, payload) = self.payload(pattern);
        let header = media_type_schema(pattern);
        self.messages.insert(
            message_key.clone(),
            json!({
                "name": name,
                "title": title,
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "properties": {"media_type": header},
                    "required": ["media_type"],
                },
                "payload": payload,
            }),
        );
        message_key
    }

    /// The title and payload schema of `pattern`'s message: its type's, the lifecycle
    /// convention's, or any object.
    fn payload(&mut self, pattern: &MediaTypePattern) -> (String, Value) {
        let schema = match pattern {
            MediaTypePattern::Exact(media_type) => self.registry.lookup(media_type.as_str()),
            MediaTypePattern::Prefix(_) => {
                self.registry.schemas().find(|schema| schema.parts().0 == Some(pattern))
            }
        };
        let (registered, body) = schema.map_or((None, None), |schema| schema.parts());
        let lifecycle = match pattern {
            MediaTypePattern::Exact(media_type) if schema.is_some() && registered.is_none() => {
                Lifecycle::parse(media_type.as_str())
            }
            _ => None,
        };
        let (title, mut payload) = match (body.and_then(|body| self.body(body)), lifecycle) {
            (Some(payload), _) => {
                let type_name = schema.map_or("", |schema| schema.type_name());
                (type_name.rsplit("::").next().unwrap_or(type_name).to_owned(), payload)
            }
            (None, Some(lifecycle)) => {
                let body = convention_body(lifecycle.change);
                (format!("{} {} (lifecycle convention)", lifecycle.change, lifecycle.resource), body)
            }
            (None, None) => (format!("untyped {pattern}"), any_object(pattern)),
        };
        add_envelope(&mut payload, media_type_schema(pattern));
        (title, Value::Object(payload))
    }

    /// A typed body's schema, with the draft-07 transforms applied.
    fn body(&mut self, body: BodySchemaFn) -> Option<Map<String, Value>> {
        let mut schema = body(&mut self.generator)?;
        for transform in &mut self.transforms {
            transform.transform(&mut schema);
        }
        Some(into_object(schema))
    }

    fn finish(mut self, info: Map<String, Value>) -> Value {
        let mut components = Map::new();
        components.insert("messages".to_owned(), Value::Object(self.messages));
        let schemas = self.generator.take_definitions(true);
        if !schemas.is_empty() {
            components.insert("schemas".to_owned(), Value::Object(schemas));
        }
        json!({
            "asyncapi": ASYNCAPI_VERSION,
            "info": info,
            "defaultContentType": "application/json",
            "channels": self.channels,
            "operations": self.operations,
            "components": components,
        })
    }
}

/// `name` as a key AsyncAPI accepts for channels, operations and messages
/// (`^[A-Za-z0-9_-]+$`): every other character becomes `_`.
fn key(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}
