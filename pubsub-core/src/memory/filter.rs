//! SNS subscription filter policies on message attributes (`media_type` and the others).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::transport::{AttributeValue, OutgoingMessage, MEDIA_TYPE_ATTRIBUTE};

/// SNS's limit of keys (attribute names) in one filter policy.
pub const MAX_FILTER_KEYS: usize = 5;

/// SNS's limit on a filter policy's complexity: the product of its lists' lengths.
pub const MAX_FILTER_COMBINATIONS: usize = 150;

/// One accepted value of a [`FilterPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FilterCondition {
    /// The attribute equals this (case-sensitive), SNS's `"a/b"`.
    Exact(String),
    /// The attribute starts with this, SNS's `{"prefix": "a/c."}`.
    Prefix(String),
}

impl FilterCondition {
    /// [`FilterCondition::Exact`].
    pub fn exact(value: impl Into<String>) -> FilterCondition {
        FilterCondition::Exact(value.into())
    }

    /// [`FilterCondition::Prefix`].
    pub fn prefix(prefix: impl Into<String>) -> FilterCondition {
        FilterCondition::Prefix(prefix.into())
    }

    fn accepts(&self, value: &str) -> bool {
        match self {
            FilterCondition::Exact(exact) => value == exact,
            FilterCondition::Prefix(prefix) => value.starts_with(prefix.as_str()),
        }
    }
}

/// An SNS filter policy on message attributes: for each attribute it names (a key), a list
/// of accepted values, exact or prefix. As SNS does, a message passes when every key matches:
/// the message has that attribute and its value equals one of the key's exact values or
/// starts with one of its prefixes. A message without the attribute does not pass.
///
/// ```
/// use pubsub_core::memory::{FilterCondition, FilterPolicy};
///
/// let policy = FilterPolicy::media_types(["application/vnd.x.created.order"])
///     .or_prefix("application/vnd.x.deleted.");
/// assert!(policy.accepts("application/vnd.x.created.order"));
/// assert!(policy.accepts("application/vnd.x.deleted.order"));
/// assert!(!policy.accepts("application/vnd.x.created.widget"));
///
/// let json = policy.to_json();
/// assert_eq!(json, r#"{"media_type":["application/vnd.x.created.order",{"prefix":"application/vnd.x.deleted."}]}"#);
/// assert_eq!(FilterPolicy::from_json(&json)?, policy);
///
/// // Other attributes (set by publish layers, see Producer::layer): every key must match.
/// let billing = policy.and_attribute("team", [FilterCondition::exact("billing")]);
/// assert_eq!(
///     billing.to_json(),
///     r#"{"media_type":["application/vnd.x.created.order",{"prefix":"application/vnd.x.deleted."}],"team":["billing"]}"#
/// );
/// assert!(!billing.accepts("application/vnd.x.created.order"), "no `team` attribute");
/// # Ok::<(), pubsub_core::memory::FilterPolicyError>(())
/// ```
///
/// A policy with no key, or a key with no value, accepts nothing (and SNS refuses it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FilterPolicy {
    /// By attribute name.
    keys: BTreeMap<String, Vec<FilterCondition>>,
}

impl FilterPolicy {
    /// A policy accepting exactly these media types.
    pub fn media_types<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        FilterPolicy::attribute(MEDIA_TYPE_ATTRIBUTE, values.into_iter().map(FilterCondition::exact))
    }

    /// A policy accepting the media types that start with `prefix`.
    pub fn media_type_prefix(prefix: impl Into<String>) -> Self {
        FilterPolicy::attribute(MEDIA_TYPE_ATTRIBUTE, [FilterCondition::prefix(prefix)])
    }

    /// A policy on the attribute `name` alone: it passes the messages whose `name` matches
    /// one of `conditions`.
    pub fn attribute(name: impl Into<String>, conditions: impl IntoIterator<Item = FilterCondition>) -> Self {
        FilterPolicy::default().and_attribute(name, conditions)
    }

    /// This policy, also requiring the attribute `name` to match one of `conditions` (a key
    /// of its own; the conditions of a key `name` already had are replaced).
    pub fn and_attribute(
        mut self,
        name: impl Into<String>,
        conditions: impl IntoIterator<Item = FilterCondition>,
    ) -> Self {
        self.keys.insert(name.into(), conditions.into_iter().collect());
        self
    }

    /// This policy, also accepting `media_type` exactly.
    pub fn or_media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type_conditions().push(FilterCondition::exact(media_type));
        self
    }

    /// This policy, also accepting the media types that start with `prefix`.
    pub fn or_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.media_type_conditions().push(FilterCondition::prefix(prefix));
        self
    }

    fn media_type_conditions(&mut self) -> &mut Vec<FilterCondition> {
        self.keys.entry(MEDIA_TYPE_ATTRIBUTE.to_owned()).or_default()
    }

    /// The accepted values of the `media_type` key, in order (none if it has no such key).
    pub fn conditions(&self) -> &[FilterCondition] {
        self.conditions_of(MEDIA_TYPE_ATTRIBUTE)
    }

    /// The accepted values of the key `name`, in order (none if it has no such key).
    pub fn conditions_of(&self, name: &str) -> &[FilterCondition] {
        self.keys.get(name).map_or(&[], Vec::as_slice)
    }

    /// The attribute names the policy filters on, in name order.
    pub fn attribute_names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Whether a message of `media_type` with no other attribute passes.
    pub fn accepts(&self, media_type: &str) -> bool {
        self.accepts_attributes(|name| (name == MEDIA_TYPE_ATTRIBUTE).then_some(media_type))
    }

    /// Whether `message` passes, on its media type and its other attributes, as a topic
    /// decides which subscriptions receive it.
    pub fn accepts_message(&self, message: &OutgoingMessage) -> bool {
        self.accepts_attributes(|name| match name {
            MEDIA_TYPE_ATTRIBUTE => Some(message.media_type.as_str()),
            other => message.attributes.get(other).and_then(AttributeValue::as_str),
        })
    }

    /// Whether a message passes whose attribute values `attribute` gives by name.
    pub fn accepts_attributes<'a>(&self, attribute: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.keys.is_empty()
            && self.keys.iter().all(|(name, conditions)| {
                attribute(name)
                    .is_some_and(|value| conditions.iter().any(|condition| condition.accepts(value)))
            })
    }

    /// Parses SNS's JSON form, `{"media_type": ["a/b", {"prefix": "a/c."}], "team": ["x"]}`.
    ///
    /// Keys are attribute names; only the exact-string and `prefix` operators are supported.
    /// Anything else (`anything-but`, numeric matching, `exists`, nested policies, an empty
    /// list, an empty prefix) is refused rather than ignored, and so are policies SNS refuses:
    /// no key, more than [`MAX_FILTER_KEYS`] keys, more than [`MAX_FILTER_COMBINATIONS`]
    /// combinations (the product of the lists' lengths).
    pub fn from_json(json: &str) -> Result<FilterPolicy, FilterPolicyError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| FilterPolicyError::new(format!("not JSON: {e}")))?;
        let Value::Object(policy) = value else {
            return Err(FilterPolicyError::new("the policy must be a JSON object"));
        };
        if policy.is_empty() {
            return Err(FilterPolicyError::new(
                "the policy has no key (an attribute name such as `media_type`)",
            ));
        }
        if policy.len() > MAX_FILTER_KEYS {
            return Err(FilterPolicyError::new(format!(
                "the policy has {} keys; SNS takes at most {MAX_FILTER_KEYS}",
                policy.len()
            )));
        }
        let mut keys = BTreeMap::new();
        for (name, values) in &policy {
            if name.is_empty() {
                return Err(FilterPolicyError::new("a key must not be empty"));
            }
            let Value::Array(values) = values else {
                return Err(FilterPolicyError::new(format!(
                    "`{name}` must be a list (nested policies are not supported)"
                )));
            };
            if values.is_empty() {
                return Err(FilterPolicyError::new(format!("`{name}` must not be empty")));
            }
            let conditions = values.iter().map(parse_condition).collect::<Result<_, _>>()?;
            keys.insert(name.clone(), conditions);
        }
        let combinations =
            keys.values().map(Vec::len).fold(1_usize, |product, len| product.saturating_mul(len));
        if combinations > MAX_FILTER_COMBINATIONS {
            return Err(FilterPolicyError::new(format!(
                "the policy has {combinations} combinations of values (the product of its lists' lengths); \
                 SNS takes at most {MAX_FILTER_COMBINATIONS}"
            )));
        }
        Ok(FilterPolicy { keys })
    }

    /// SNS's JSON form, compact, keys in name order:
    /// `{"media_type":["a/b",{"prefix":"a/c."}],"team":["x"]}`.
    pub fn to_json(&self) -> String {
        let keys = self.keys.iter().map(|(name, conditions)| {
            let values = conditions
                .iter()
                .map(|condition| match condition {
                    FilterCondition::Exact(value) => Value::String(value.clone()),
                    FilterCondition::Prefix(prefix) => {
                        Value::Object(Map::from_iter([("prefix".to_owned(), Value::String(prefix.clone()))]))
                    }
                })
                .collect();
            (name.clone(), Value::Array(values))
        });
        Value::Object(Map::from_iter(keys)).to_string()
    }
}

fn parse_condition(value: &Value) -> Result<FilterCondition, FilterPolicyError> {
    match value {
        Value::String(exact) => Ok(FilterCondition::Exact(exact.clone())),
        Value::Object(operator) => match operator.iter().next() {
            Some((name, Value::String(prefix))) if operator.len() == 1 && name == "prefix" => {
                if prefix.is_empty() {
                    Err(FilterPolicyError::new("a prefix must not be empty"))
                } else {
                    Ok(FilterCondition::Prefix(prefix.clone()))
                }
            }
            _ => Err(FilterPolicyError::new(format!(
                "unsupported operator {value}: only exact strings and {{\"prefix\": \"...\"}} are supported"
            ))),
        },
        other => Err(FilterPolicyError::new(format!(
            "unsupported value {other}: only exact strings and {{\"prefix\": \"...\"}} are supported"
        ))),
    }
}

/// Why a filter policy's JSON was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter policy: {reason}")]
pub struct FilterPolicyError {
    reason: String,
}

impl FilterPolicyError {
    fn new(reason: impl Into<String>) -> Self {
        FilterPolicyError { reason: reason.into() }
    }

    /// What was wrong.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}
