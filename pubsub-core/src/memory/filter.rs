//! SNS subscription filter policies on message attributes (`media_type` and the others).
//!
//! The conditions and how they match are documented on [`FilterCondition`] (this module is
//! private; its items are re-exported by `memory`).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value};

use crate::transport::{AttributeValue, OutgoingMessage, MEDIA_TYPE_ATTRIBUTE};

/// SNS's limit of keys (attribute names) in one filter policy.
pub const MAX_FILTER_KEYS: usize = 5;

/// SNS's limit on a filter policy's complexity: the product of its lists' lengths.
pub const MAX_FILTER_COMBINATIONS: usize = 150;

/// A comparison of SNS's `numeric` operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumericOperator {
    /// `=`
    Equal,
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
}

impl NumericOperator {
    /// Its JSON form: `=`, `<`, `<=`, `>` or `>=`.
    pub fn as_str(self) -> &'static str {
        match self {
            NumericOperator::Equal => "=",
            NumericOperator::Less => "<",
            NumericOperator::LessOrEqual => "<=",
            NumericOperator::Greater => ">",
            NumericOperator::GreaterOrEqual => ">=",
        }
    }

    fn parse(text: &str) -> Option<NumericOperator> {
        [
            NumericOperator::Equal,
            NumericOperator::Less,
            NumericOperator::LessOrEqual,
            NumericOperator::Greater,
            NumericOperator::GreaterOrEqual,
        ]
        .into_iter()
        .find(|operator| operator.as_str() == text)
    }

    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            NumericOperator::Equal => value == bound,
            NumericOperator::Less => value < bound,
            NumericOperator::LessOrEqual => value <= bound,
            NumericOperator::Greater => value > bound,
            NumericOperator::GreaterOrEqual => value >= bound,
        }
    }

    fn is_lower_bound(self) -> bool {
        matches!(self, NumericOperator::Greater | NumericOperator::GreaterOrEqual)
    }

    fn is_upper_bound(self) -> bool {
        matches!(self, NumericOperator::Less | NumericOperator::LessOrEqual)
    }
}

/// One accepted value of a [`FilterPolicy`].
///
/// A policy names attributes (its keys) and, for each, a list of conditions; a message passes
/// when, for every key, one of the key's conditions accepts the message's attribute of that
/// name. The conditions are SNS's, typed as SNS types them:
///
/// | JSON | variant | accepts |
/// |---|---|---|
/// | `"eu"` | `Exact` | a `String` attribute equal to it |
/// | `{"prefix": "eu-"}` | `Prefix` | a `String` attribute that starts with it |
/// | `3` | `Number` | a `Number` attribute equal to it (`3`, `3.0`, `3e0`) |
/// | `{"numeric": [">", 0, "<=", 10]}` | `Numeric` | a `Number` attribute in the range |
/// | `{"exists": true}` | `Exists(true)` | any `String` or `Number` attribute of that name |
/// | `{"exists": false}` | `Exists(false)` | a message without the attribute |
/// | `{"anything-but": ["a", "b"]}` | `AnythingBut` | an attribute that is none of them |
///
/// `anything-but` takes strings or numbers (one, or a list of one kind) or `{"prefix": ...}`.
/// Only `exists: false` accepts a message without the attribute; a `Binary` attribute is
/// accepted by no condition (SNS does not filter on them). Nested policies, `suffix`,
/// `equals-ignore-case`, `cidr`, `$or` and policies on the message body are refused with a
/// [`FilterPolicyError`] rather than ignored.
///
/// Numbers are `f64`s: SNS compares numbers with 5 decimal places, well within their precision.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FilterCondition {
    /// A `String` attribute equal to this (case-sensitive), SNS's `"a/b"`.
    Exact(String),
    /// A `String` attribute that starts with this, SNS's `{"prefix": "a/c."}`.
    Prefix(String),
    /// A `Number` attribute equal to this, SNS's `3` (which accepts `3` and `3.0`).
    Number(f64),
    /// A `Number` attribute for which every comparison holds, SNS's `{"numeric": ["=", 3]}`
    /// or `{"numeric": [">", 0, "<=", 10]}`.
    Numeric(Vec<(NumericOperator, f64)>),
    /// With `true`, any `String` or `Number` attribute of the key's name; with `false`, a
    /// message without it. SNS's `{"exists": true}`.
    Exists(bool),
    /// An attribute that none of these accepts (each an `Exact`, a `Number` or a `Prefix`),
    /// SNS's `{"anything-but": ["a", "b"]}`; a message without the attribute does not pass.
    AnythingBut(Vec<FilterCondition>),
}

/// Numbers from JSON are finite, so equality is an equivalence.
impl Eq for FilterCondition {}

impl Hash for FilterCondition {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // `+ 0.0` makes -0.0 hash as 0.0, which it equals.
        let number = |number: f64| (number + 0.0).to_bits();
        std::mem::discriminant(self).hash(state);
        match self {
            FilterCondition::Exact(text) | FilterCondition::Prefix(text) => text.hash(state),
            FilterCondition::Number(value) => number(*value).hash(state),
            FilterCondition::Numeric(comparisons) => {
                for (operator, bound) in comparisons {
                    operator.hash(state);
                    number(*bound).hash(state);
                }
            }
            FilterCondition::Exists(exists) => exists.hash(state),
            FilterCondition::AnythingBut(conditions) => conditions.hash(state),
        }
    }
}

/// An attribute's value as filtering sees it.
#[derive(Clone, Copy)]
enum Typed<'a> {
    Text(&'a str),
    /// Its value, if it parses.
    Number(Option<f64>),
    Binary,
}

impl<'a> From<&'a AttributeValue> for Typed<'a> {
    fn from(value: &'a AttributeValue) -> Self {
        match value {
            AttributeValue::Text(text) => Typed::Text(text),
            AttributeValue::Number(text) => Typed::Number(text.trim().parse::<f64>().ok()),
            AttributeValue::Binary(_) => Typed::Binary,
        }
    }
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

    /// [`FilterCondition::Number`].
    pub fn number(value: impl Into<f64>) -> FilterCondition {
        FilterCondition::Number(value.into())
    }

    /// [`FilterCondition::Numeric`] with one comparison, e.g. `numeric(NumericOperator::Less, 0)`.
    pub fn numeric(operator: NumericOperator, bound: impl Into<f64>) -> FilterCondition {
        FilterCondition::Numeric(vec![(operator, bound.into())])
    }

    /// [`FilterCondition::Numeric`] between two bounds, e.g.
    /// `between((Greater, 0), (LessOrEqual, 10))` for `[">", 0, "<=", 10]`.
    pub fn between(
        (lower, low): (NumericOperator, impl Into<f64>),
        (upper, high): (NumericOperator, impl Into<f64>),
    ) -> FilterCondition {
        FilterCondition::Numeric(vec![(lower, low.into()), (upper, high.into())])
    }

    /// [`FilterCondition::Exists`].
    pub fn exists(exists: bool) -> FilterCondition {
        FilterCondition::Exists(exists)
    }

    /// [`FilterCondition::AnythingBut`] these strings.
    pub fn anything_but<I, S>(values: I) -> FilterCondition
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        FilterCondition::AnythingBut(values.into_iter().map(FilterCondition::exact).collect())
    }

    /// Whether it accepts an attribute that is `value` (`None`: the message has none).
    fn accepts(&self, value: Option<Typed<'_>>) -> bool {
        let Some(value) = value else {
            return matches!(self, FilterCondition::Exists(false));
        };
        match (self, value) {
            (_, Typed::Binary) => false,
            (FilterCondition::Exact(exact), Typed::Text(text)) => text == exact,
            (FilterCondition::Prefix(prefix), Typed::Text(text)) => text.starts_with(prefix.as_str()),
            (FilterCondition::Number(number), Typed::Number(Some(value))) => value == *number,
            (FilterCondition::Numeric(comparisons), Typed::Number(Some(value))) => {
                comparisons.iter().all(|(operator, bound)| operator.holds(value, *bound))
            }
            (FilterCondition::Exists(exists), _) => *exists,
            (FilterCondition::AnythingBut(excluded), value) => {
                !excluded.iter().any(|condition| condition.accepts(Some(value)))
            }
            _ => false,
        }
    }

    fn to_json(&self) -> Value {
        let operator = |name: &str, value: Value| Value::Object(Map::from_iter([(name.to_owned(), value)]));
        match self {
            FilterCondition::Exact(value) => Value::String(value.clone()),
            FilterCondition::Prefix(prefix) => operator("prefix", Value::String(prefix.clone())),
            FilterCondition::Number(number) => json_number(*number),
            FilterCondition::Numeric(comparisons) => operator(
                "numeric",
                comparisons
                    .iter()
                    .flat_map(|(op, bound)| [Value::String(op.as_str().to_owned()), json_number(*bound)])
                    .collect(),
            ),
            FilterCondition::Exists(exists) => operator("exists", Value::Bool(*exists)),
            FilterCondition::AnythingBut(excluded) => operator(
                "anything-but",
                match excluded.as_slice() {
                    [prefix @ FilterCondition::Prefix(_)] => prefix.to_json(),
                    values => values.iter().map(FilterCondition::to_json).collect(),
                },
            ),
        }
    }
}

/// A number as JSON: an integer when it is one (SNS's examples write `3`, not `3.0`).
fn json_number(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() < 1e15 {
        Value::from(number as i64)
    } else {
        serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
    }
}

/// An SNS filter policy on message attributes: for each attribute it names (a key), a list
/// of conditions (see [`FilterCondition`]). As SNS does, a message passes when every key
/// matches: one of the key's conditions accepts the message's attribute of that name (a
/// message without it passes only `{"exists": false}`).
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
/// Numbers, ranges, `exists` and `anything-but`, on typed attributes:
///
/// ```
/// use pubsub_core::memory::{FilterCondition, FilterPolicy};
/// use pubsub_core::transport::OutgoingMessage;
///
/// let policy = FilterPolicy::from_json(
///     r#"{"weight": [{"numeric": [">", 0, "<=", 10]}], "region": [{"anything-but": ["us"]}]}"#,
/// )?;
/// let message = |weight: f64, region: &str| {
///     OutgoingMessage::new("text/plain", "{}").with_attribute("weight", weight).with_attribute("region", region)
/// };
/// assert!(policy.accepts_message(&message(10.0, "eu")));
/// assert!(!policy.accepts_message(&message(10.5, "eu")));
/// assert!(!policy.accepts_message(&message(3.0, "us")));
///
/// let flagged = FilterPolicy::attribute("flag", [FilterCondition::exists(false)]);
/// assert!(flagged.accepts_message(&OutgoingMessage::new("text/plain", "{}")));
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
        self.accepts_typed(|name| (name == MEDIA_TYPE_ATTRIBUTE).then_some(Typed::Text(media_type)))
    }

    /// Whether `message` passes, on its media type (a `String`) and its other attributes as
    /// typed, as a topic decides which subscriptions receive it.
    pub fn accepts_message(&self, message: &OutgoingMessage) -> bool {
        self.accepts_typed(|name| match name {
            MEDIA_TYPE_ATTRIBUTE => Some(Typed::Text(&message.media_type)),
            other => message.attributes.get(other).map(Typed::from),
        })
    }

    /// Whether a message passes whose attribute values `attribute` gives by name, typed.
    pub fn accepts_values<'a>(&self, attribute: impl Fn(&str) -> Option<&'a AttributeValue>) -> bool {
        self.accepts_typed(|name| attribute(name).map(Typed::from))
    }

    /// Whether a message passes whose attribute values `attribute` gives by name, all taken
    /// as `String` attributes (use [`accepts_values`](Self::accepts_values) for numbers).
    pub fn accepts_attributes<'a>(&self, attribute: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.accepts_typed(|name| attribute(name).map(Typed::Text))
    }

    fn accepts_typed<'a>(&self, attribute: impl Fn(&str) -> Option<Typed<'a>>) -> bool {
        !self.keys.is_empty()
            && self.keys.iter().all(|(name, conditions)| {
                let value = attribute(name);
                conditions.iter().any(|condition| condition.accepts(value))
            })
    }

    /// Parses SNS's JSON form, `{"media_type": ["a/b", {"prefix": "a/c."}], "team": ["x"]}`.
    ///
    /// Keys are attribute names; the conditions are those of [`FilterCondition`].
    /// Anything else (other operators, nested policies, an empty list, an empty prefix, a
    /// malformed `numeric` range, `anything-but` mixing strings and numbers) is refused rather
    /// than ignored, and so are policies SNS refuses: no key, more than [`MAX_FILTER_KEYS`]
    /// keys, more than [`MAX_FILTER_COMBINATIONS`] combinations (the product of the lists'
    /// lengths).
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
            (name.clone(), Value::Array(conditions.iter().map(FilterCondition::to_json).collect()))
        });
        Value::Object(Map::from_iter(keys)).to_string()
    }
}

const SUPPORTED: &str = "supported: exact strings, numbers, {\"prefix\": \"...\"}, {\"numeric\": [...]}, \
                         {\"exists\": true|false} and {\"anything-but\": ...}";

fn parse_condition(value: &Value) -> Result<FilterCondition, FilterPolicyError> {
    match value {
        Value::String(exact) => Ok(FilterCondition::Exact(exact.clone())),
        Value::Number(number) => Ok(FilterCondition::Number(parse_number(number)?)),
        Value::Object(operator) if operator.len() == 1 => {
            let (name, argument) = operator.iter().next().expect("one entry");
            match (name.as_str(), argument) {
                ("prefix", Value::String(prefix)) => parse_prefix(prefix),
                ("numeric", Value::Array(comparisons)) => parse_numeric(comparisons),
                ("exists", Value::Bool(exists)) => Ok(FilterCondition::Exists(*exists)),
                ("anything-but", argument) => parse_anything_but(argument),
                _ => Err(FilterPolicyError::new(format!("unsupported operator {value}: {SUPPORTED}"))),
            }
        }
        other => Err(FilterPolicyError::new(format!("unsupported value {other}: {SUPPORTED}"))),
    }
}

fn parse_prefix(prefix: &str) -> Result<FilterCondition, FilterPolicyError> {
    if prefix.is_empty() {
        Err(FilterPolicyError::new("a prefix must not be empty"))
    } else {
        Ok(FilterCondition::Prefix(prefix.to_owned()))
    }
}

fn parse_number(number: &serde_json::Number) -> Result<f64, FilterPolicyError> {
    number
        .as_f64()
        .filter(|number| number.is_finite())
        .ok_or_else(|| FilterPolicyError::new(format!("{number} is not a number SNS compares")))
}

/// `["=", 3]`, `["<", 0]`, or a range `[">", 0, "<=", 10]` (a lower bound, then an upper).
fn parse_numeric(comparisons: &[Value]) -> Result<FilterCondition, FilterPolicyError> {
    let malformed = || {
        FilterPolicyError::new(format!(
            "malformed numeric condition {}: give one comparison such as [\"=\", 3] or [\"<\", 0], or a \
             range such as [\">\", 0, \"<=\", 10] (a lower bound, then an upper)",
            Value::Array(comparisons.to_vec())
        ))
    };
    let parsed = comparisons
        .chunks(2)
        .map(|pair| match pair {
            [Value::String(operator), Value::Number(bound)] => {
                let operator = NumericOperator::parse(operator).ok_or_else(malformed)?;
                Ok((operator, parse_number(bound)?))
            }
            _ => Err(malformed()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let well_formed = match parsed.as_slice() {
        [_] => true,
        [(lower, low), (upper, high)] => lower.is_lower_bound() && upper.is_upper_bound() && low <= high,
        _ => false,
    };
    if well_formed {
        Ok(FilterCondition::Numeric(parsed))
    } else {
        Err(malformed())
    }
}

/// A string, a number, a list of strings or of numbers, or `{"prefix": ...}`.
fn parse_anything_but(argument: &Value) -> Result<FilterCondition, FilterPolicyError> {
    let refuse = || {
        FilterPolicyError::new(format!(
            "unsupported anything-but {argument}: give a string, a number, a non-empty list of strings or \
             of numbers, or {{\"prefix\": \"...\"}}"
        ))
    };
    let excluded = match argument {
        Value::String(text) => vec![FilterCondition::Exact(text.clone())],
        Value::Number(number) => vec![FilterCondition::Number(parse_number(number)?)],
        Value::Object(operator) => match operator.iter().next() {
            Some((name, Value::String(prefix))) if operator.len() == 1 && name == "prefix" => {
                vec![parse_prefix(prefix)?]
            }
            _ => return Err(refuse()),
        },
        Value::Array(values) => {
            let strings = values.iter().all(Value::is_string);
            let numbers = values.iter().all(Value::is_number);
            if values.is_empty() || !(strings || numbers) {
                return Err(refuse());
            }
            values.iter().map(parse_condition).collect::<Result<_, _>>()?
        }
        _ => return Err(refuse()),
    };
    Ok(FilterCondition::AnythingBut(excluded))
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
