//! The messages of an input: those of an AsyncAPI 3 document, with their roles, or the one
//! message of a bare JSON Schema.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::error::CompatError;
use super::report::Role;
use super::resolve::{escape, Resolver};

/// The schema every body satisfies: a message without a payload.
static ANY_PAYLOAD: Value = Value::Bool(true);

/// Keywords of which one makes an object a JSON Schema.
const SCHEMA_KEYWORDS: &[&str] = &[
    "$schema",
    "type",
    "properties",
    "$ref",
    "oneOf",
    "anyOf",
    "allOf",
    "enum",
    "const",
    "$defs",
    "definitions",
];

/// One message of an input.
#[derive(Debug)]
pub(crate) struct MessageSchema<'a> {
    /// Sorted; empty when not known (a bare schema, or a message no operation uses).
    pub(crate) roles: Vec<Role>,
    /// The `contentType` (AsyncAPI only).
    pub(crate) content_type: Option<String>,
    pub(crate) payload: &'a Value,
    pub(crate) payload_location: String,
    /// The schema of its headers (AsyncAPI only), and where it is.
    pub(crate) headers: Option<(&'a Value, String)>,
}

/// Whether `document` is an AsyncAPI document (of any version) rather than a bare schema.
pub(crate) fn is_asyncapi(document: &Value) -> bool {
    document.get("asyncapi").is_some()
}

/// The messages of `document`, by media type.
pub(crate) fn messages<'a>(
    document: &'a Value,
    resolver: &Resolver<'a>,
) -> Result<BTreeMap<String, MessageSchema<'a>>, CompatError> {
    let side = resolver.side();
    match document.get("asyncapi") {
        Some(Value::String(version)) if version.starts_with("3.") => asyncapi_messages(document, resolver),
        Some(version) => Err(CompatError::UnsupportedAsyncApiVersion {
            side,
            version: version.as_str().map_or_else(|| version.to_string(), str::to_owned),
        }),
        None => {
            let is_schema =
                document.as_object().is_some_and(|map| SCHEMA_KEYWORDS.iter().any(|k| map.contains_key(*k)));
            if !is_schema {
                return Err(CompatError::NotADocument { side });
            }
            let media_type = bare_schema_name(document, resolver)?;
            let message = MessageSchema {
                roles: Vec::new(),
                content_type: None,
                payload: document,
                payload_location: "#".to_owned(),
                headers: None,
            };
            Ok(BTreeMap::from([(media_type, message)]))
        }
    }
}

/// A bare schema's media type: its `properties.mediaType.const` (the envelope field), else its
/// title; looked for in the schema as written, then in what its root `$ref` leads to.
fn bare_schema_name(document: &Value, resolver: &Resolver<'_>) -> Result<String, CompatError> {
    let name_in = |schema: &Value| {
        let media_type = schema.pointer("/properties/mediaType/const");
        media_type.or_else(|| schema.get("title")).and_then(Value::as_str).map(str::to_owned)
    };
    if let Some(name) = name_in(document) {
        return Ok(name);
    }
    let resolved = Value::Object(resolver.resolve(document, "#")?.schema);
    name_in(&resolved).ok_or(CompatError::UnnamedSchema { side: resolver.side() })
}

/// Gathers an AsyncAPI document's messages, wherever they are declared, then their roles.
struct Collector<'d, 'a> {
    resolver: &'d Resolver<'a>,
    default_content_type: Option<&'a str>,
    messages: BTreeMap<String, MessageSchema<'a>>,
    /// The media type of the message at each location (after following `$ref`s).
    media_type_at: HashMap<String, String>,
}

impl<'a> Collector<'_, 'a> {
    /// Records the message `value` (at `location`, declared under `key`).
    fn add(&mut self, value: &'a Value, location: &str, key: &str) -> Result<(), CompatError> {
        let (message, location) = self.resolver.follow(value, location)?;
        if self.media_type_at.contains_key(&location) {
            return Ok(());
        }
        let Some(message) = message.as_object() else {
            return Err(self.malformed(&location, "is not a message object"));
        };
        // A message is its media type (`name`); the key is only the document's handle for it.
        let media_type = message.get("name").and_then(Value::as_str).unwrap_or(key).to_owned();
        let payload = self.schema_of(message.get("payload"), format!("{location}/payload"))?;
        let (payload, payload_location) = payload.unwrap_or((&ANY_PAYLOAD, format!("{location}/payload")));
        let headers = self.schema_of(message.get("headers"), format!("{location}/headers"))?;
        let content_type = message
            .get("contentType")
            .and_then(Value::as_str)
            .or(self.default_content_type)
            .map(str::to_owned);
        self.media_type_at.insert(location, media_type.clone());
        self.messages.entry(media_type).or_insert(MessageSchema {
            roles: Vec::new(),
            content_type,
            payload,
            payload_location,
            headers,
        });
        Ok(())
    }

    /// The schema of a message's `payload` or `headers` (`value`, at `location`): the value
    /// itself, or the `schema` of a multi-format schema (`{schemaFormat, schema}`).
    fn schema_of(
        &self,
        value: Option<&'a Value>,
        location: String,
    ) -> Result<Option<(&'a Value, String)>, CompatError> {
        match value {
            Some(multi_format) if multi_format.get("schemaFormat").is_some() => {
                let schema = multi_format
                    .get("schema")
                    .ok_or_else(|| self.malformed(&location, "has a `schemaFormat` but no `schema`"))?;
                Ok(Some((schema, format!("{location}/schema"))))
            }
            Some(schema) => Ok(Some((schema, location))),
            None => Ok(None),
        }
    }

    /// Gives `role` to the message `reference` (any `$ref` chain) leads to.
    fn add_role(&mut self, reference: &'a Value, location: &str, role: Role) -> Result<(), CompatError> {
        let (_, target) = self.resolver.follow(reference, location)?;
        let media_type = self.media_type_at.get(&target).ok_or_else(|| {
            self.malformed(
                location,
                &format!("refers to {target}, which is not a message of a channel or of components"),
            )
        })?;
        let roles = &mut self.messages.get_mut(media_type).expect("every located message is recorded").roles;
        if !roles.contains(&role) {
            roles.push(role);
            roles.sort();
        }
        Ok(())
    }

    fn malformed(&self, location: &str, problem: &str) -> CompatError {
        CompatError::Malformed {
            side: self.resolver.side(),
            location: location.to_owned(),
            problem: problem.to_owned(),
        }
    }
}

fn entries(value: Option<&Value>) -> impl Iterator<Item = (&String, &Value)> {
    value.and_then(Value::as_object).into_iter().flatten()
}

fn asyncapi_messages<'a>(
    document: &'a Value,
    resolver: &Resolver<'a>,
) -> Result<BTreeMap<String, MessageSchema<'a>>, CompatError> {
    let mut collector = Collector {
        resolver,
        default_content_type: document.get("defaultContentType").and_then(Value::as_str),
        messages: BTreeMap::new(),
        media_type_at: HashMap::new(),
    };
    for (key, message) in entries(document.pointer("/components/messages")) {
        collector.add(message, &format!("#/components/messages/{}", escape(key)), key)?;
    }
    let mut channel_messages: HashMap<String, Vec<(&'a Value, String)>> = HashMap::new();
    for (name, channel) in entries(document.get("channels")) {
        let channel_location = format!("#/channels/{}", escape(name));
        let (channel, _) = resolver.follow(channel, &channel_location)?;
        for (key, message) in entries(channel.get("messages")) {
            let location = format!("{channel_location}/messages/{}", escape(key));
            collector.add(message, &location, key)?;
            channel_messages.entry(channel_location.clone()).or_default().push((message, location));
        }
    }
    for (name, operation) in entries(document.get("operations")) {
        let location = format!("#/operations/{}", escape(name));
        let role = match operation.get("action").and_then(Value::as_str) {
            Some("send") => Role::Send,
            Some("receive") => Role::Receive,
            _ => {
                return Err(collector
                    .malformed(&location, "has an `action` that is neither \"send\" nor \"receive\""))
            }
        };
        match operation.get("messages").and_then(Value::as_array) {
            Some(references) => {
                for (index, reference) in references.iter().enumerate() {
                    collector.add_role(reference, &format!("{location}/messages/{index}"), role)?;
                }
            }
            // No `messages`: the operation is about every message of its channel.
            None => {
                let channel =
                    operation.pointer("/channel/$ref").and_then(Value::as_str).ok_or_else(|| {
                        collector.malformed(&location, "has neither `messages` nor a `channel` `$ref`")
                    })?;
                for (message, message_location) in channel_messages.get(channel).into_iter().flatten() {
                    collector.add_role(message, message_location, role)?;
                }
            }
        }
    }
    Ok(collector.messages)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::compat::error::Side;

    #[test]
    fn roles_come_from_operations_through_channel_messages() {
        let document = json!({
            "asyncapi": "3.0.0",
            "channels": {
                "orders": {"address": "orders", "messages": {"Order": {"$ref": "#/components/messages/Order"}}},
                "billing~queue": {"address": "billing", "messages": {
                    "Order": {"$ref": "#/components/messages/Order"},
                    "Refund": {"$ref": "#/components/messages/Refund"}}}
            },
            "operations": {
                "sendOrder": {"action": "send", "channel": {"$ref": "#/channels/orders"},
                              "messages": [{"$ref": "#/channels/orders/messages/Order"}]},
                "receiveAll": {"action": "receive", "channel": {"$ref": "#/channels/billing~0queue"}}
            },
            "components": {"messages": {
                "Order": {"name": "application/vnd.order", "contentType": "application/json", "payload": {"type": "object"}},
                "Refund": {"name": "application/vnd.refund", "payload": {"type": "object"}},
                "Unused": {"name": "application/vnd.unused"}
            }}
        });
        let resolver = Resolver::new(&document, Side::Current);
        let messages = messages(&document, &resolver).unwrap();
        assert_eq!(
            messages.keys().collect::<Vec<_>>(),
            ["application/vnd.order", "application/vnd.refund", "application/vnd.unused"]
        );
        assert_eq!(messages["application/vnd.order"].roles, [Role::Send, Role::Receive]);
        assert_eq!(messages["application/vnd.order"].payload_location, "#/components/messages/Order/payload");
        assert_eq!(messages["application/vnd.order"].content_type.as_deref(), Some("application/json"));
        assert_eq!(messages["application/vnd.refund"].roles, [Role::Receive]);
        assert!(messages["application/vnd.unused"].roles.is_empty());
    }

    #[test]
    fn a_bare_schema_is_named_by_its_media_type_field_or_title() {
        let enveloped =
            json!({"title": "Order", "properties": {"mediaType": {"const": "application/vnd.order"}}});
        let resolver = Resolver::new(&enveloped, Side::Baseline);
        assert!(messages(&enveloped, &resolver).unwrap().contains_key("application/vnd.order"));
        let titled = json!({"title": "Order", "type": "object"});
        let resolver = Resolver::new(&titled, Side::Baseline);
        assert!(messages(&titled, &resolver).unwrap().contains_key("Order"));
        let unnamed = json!({"type": "object"});
        let resolver = Resolver::new(&unnamed, Side::Baseline);
        assert!(matches!(messages(&unnamed, &resolver), Err(CompatError::UnnamedSchema { .. })));
    }

    #[test]
    fn other_inputs_are_refused() {
        let resolver_for = |value: &Value| messages(value, &Resolver::new(value, Side::Baseline)).map(|_| ());
        assert!(matches!(resolver_for(&json!({"hello": 1})), Err(CompatError::NotADocument { .. })));
        assert!(matches!(resolver_for(&json!([1])), Err(CompatError::NotADocument { .. })));
        let error = resolver_for(&json!({"asyncapi": "2.6.0"})).unwrap_err();
        assert!(error.to_string().contains("AsyncAPI 2.6.0"), "{error}");
    }
}
