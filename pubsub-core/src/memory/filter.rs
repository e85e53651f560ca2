//! SNS subscription filter policies on the `media_type` message attribute.

use serde_json::{Map, Value};

use crate::transport::MEDIA_TYPE_ATTRIBUTE;

/// One accepted value of a [`FilterPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FilterCondition {
    /// The media type equals this (case-sensitive), SNS's `"a/b"`.
    Exact(String),
    /// The media type starts with this, SNS's `{"prefix": "a/c."}`.
    Prefix(String),
}

impl FilterCondition {
    fn accepts(&self, media_type: &str) -> bool {
        match self {
            FilterCondition::Exact(value) => media_type == value,
            FilterCondition::Prefix(prefix) => media_type.starts_with(prefix.as_str()),
        }
    }
}

/// An SNS filter policy on the `media_type` message attribute: a message passes when its
/// media type equals one of the exact values or starts with one of the prefixes.
///
/// ```
/// use pubsub_core::memory::FilterPolicy;
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
/// # Ok::<(), pubsub_core::memory::FilterPolicyError>(())
/// ```
///
/// A policy with no condition accepts nothing (and SNS refuses it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FilterPolicy {
    conditions: Vec<FilterCondition>,
}

impl FilterPolicy {
    /// A policy accepting exactly these media types.
    pub fn media_types<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        FilterPolicy { conditions: values.into_iter().map(|v| FilterCondition::Exact(v.into())).collect() }
    }

    /// A policy accepting the media types that start with `prefix`.
    pub fn media_type_prefix(prefix: impl Into<String>) -> Self {
        FilterPolicy { conditions: vec![FilterCondition::Prefix(prefix.into())] }
    }

    /// This policy, also accepting `media_type` exactly.
    pub fn or_media_type(mut self, media_type: impl Into<String>) -> Self {
        self.conditions.push(FilterCondition::Exact(media_type.into()));
        self
    }

    /// This policy, also accepting the media types that start with `prefix`.
    pub fn or_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.conditions.push(FilterCondition::Prefix(prefix.into()));
        self
    }

    /// The accepted values, in order.
    pub fn conditions(&self) -> &[FilterCondition] {
        &self.conditions
    }

    /// Whether a message of `media_type` passes.
    pub fn accepts(&self, media_type: &str) -> bool {
        self.conditions.iter().any(|condition| condition.accepts(media_type))
    }

    /// Parses SNS's JSON form, `{"media_type": ["a/b", {"prefix": "a/c."}]}`.
    ///
    /// Only the `media_type` key and the exact-string and `prefix` operators are supported;
    /// anything else (other keys, `anything-but`, numeric matching, an empty list, an empty
    /// prefix) is refused rather than ignored.
    pub fn from_json(json: &str) -> Result<FilterPolicy, FilterPolicyError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| FilterPolicyError::new(format!("not JSON: {e}")))?;
        let Value::Object(policy) = value else {
            return Err(FilterPolicyError::new("the policy must be a JSON object"));
        };
        if let Some(key) = policy.keys().find(|key| *key != MEDIA_TYPE_ATTRIBUTE) {
            return Err(FilterPolicyError::new(format!(
                "only `{MEDIA_TYPE_ATTRIBUTE}` can be filtered on, not `{key}`"
            )));
        }
        let Some(values) = policy.get(MEDIA_TYPE_ATTRIBUTE) else {
            return Err(FilterPolicyError::new(format!("the policy has no `{MEDIA_TYPE_ATTRIBUTE}` key")));
        };
        let Value::Array(values) = values else {
            return Err(FilterPolicyError::new(format!("`{MEDIA_TYPE_ATTRIBUTE}` must be a list")));
        };
        if values.is_empty() {
            return Err(FilterPolicyError::new(format!("`{MEDIA_TYPE_ATTRIBUTE}` must not be empty")));
        }
        let conditions = values.iter().map(parse_condition).collect::<Result<_, _>>()?;
        Ok(FilterPolicy { conditions })
    }

    /// SNS's JSON form, compact: `{"media_type":["a/b",{"prefix":"a/c."}]}`.
    pub fn to_json(&self) -> String {
        let values: Vec<Value> = self
            .conditions
            .iter()
            .map(|condition| match condition {
                FilterCondition::Exact(value) => Value::String(value.clone()),
                FilterCondition::Prefix(prefix) => {
                    Value::Object(Map::from_iter([("prefix".to_owned(), Value::String(prefix.clone()))]))
                }
            })
            .collect();
        let policy = Map::from_iter([(MEDIA_TYPE_ATTRIBUTE.to_owned(), Value::Array(values))]);
        Value::Object(policy).to_string()
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
