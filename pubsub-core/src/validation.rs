//! Failed validations, reported by the names fields have on the wire.
//!
//! The `validator` crate reports Rust field names and ignores serde renames (its issue #306);
//! a consumer reading a log line wants the key it sees in the JSON, so top-level fields are
//! mapped through the names the derive recorded.
//!
//! Nested types are plain serde structs, whose renames the derive cannot see, so their names
//! are found at run time in the message as JSON ([`ValidationReport::from_errors_in`]): each
//! path segment becomes the object key equal to the Rust name, else the one key equal to it
//! ignoring case, `_` and `-` (which covers every `rename_all`). The limit: a nested field
//! with an explicit `#[serde(rename = "...")]` to an unrelated name, or one absent from the
//! JSON (skipped, or flattened into its parent), keeps its Rust name.

use std::fmt;

use serde_json::Value;
use validator::{ValidationError, ValidationErrors, ValidationErrorsKind};

/// One failed check of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Where it failed: the wire name, then `.child` and `[index]` for nested values; empty
    /// for a check on the whole message (validator's `__all__`).
    pub field: String,
    /// validator's code: `length`, `range`, `email`, or a custom code.
    pub code: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "`{}` {}", self.field, self.message)
        }
    }
}

/// Every failed check of a message, sorted by field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationReport {
    /// The failures, sorted by field then code.
    pub violations: Vec<FieldViolation>,
}

impl ValidationReport {
    /// Flattens validator's errors, renaming top-level fields with `wire_name`.
    /// Nested fields keep validator's (Rust) names; see [`from_errors_in`](Self::from_errors_in).
    pub fn from_errors(errors: &ValidationErrors, wire_name: impl Fn(&str) -> String) -> ValidationReport {
        Self::sorted(errors, &wire_name, None)
    }

    /// Flattens validator's errors, renaming top-level fields with `wire_name` and nested ones
    /// by the keys of `content`, the message as JSON (the rule is documented in `validation.rs`).
    ///
    /// ```
    /// use pubsub_core::codec::ValidationReport;
    /// use serde::Serialize;
    /// use validator::Validate;
    ///
    /// #[derive(Serialize, Validate)]
    /// #[serde(rename_all = "camelCase")]
    /// struct Line { #[validate(range(min = 1))] unit_price_cents: i64 }
    /// #[derive(Serialize, Validate)]
    /// struct Order { #[validate(nested)] items: Vec<Line> }
    ///
    /// let order = Order { items: vec![Line { unit_price_cents: 0 }] };
    /// let errors = order.validate().unwrap_err();
    /// let content = serde_json::to_value(&order)?;
    /// let report = ValidationReport::from_errors_in(&errors, |name| name.to_owned(), &content);
    /// assert_eq!(report.violations[0].field, "items[0].unitPriceCents");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn from_errors_in(
        errors: &ValidationErrors,
        wire_name: impl Fn(&str) -> String,
        content: &Value,
    ) -> ValidationReport {
        Self::sorted(errors, &wire_name, Some(content))
    }

    fn sorted(
        errors: &ValidationErrors,
        wire_name: &dyn Fn(&str) -> String,
        content: Option<&Value>,
    ) -> ValidationReport {
        let mut violations = Vec::new();
        collect(errors, "", Some(wire_name), content, &mut violations);
        violations.sort_by(|a, b| (&a.field, &a.code).cmp(&(&b.field, &b.code)));
        ValidationReport { violations }
    }

    /// Adds one failure.
    pub fn push(&mut self, field: impl Into<String>, code: impl Into<String>, message: impl Into<String>) {
        self.violations.push(FieldViolation {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        });
    }

    /// The violations of `field` (its wire name).
    pub fn field(&self, field: &str) -> impl Iterator<Item = &FieldViolation> {
        let field = field.to_owned();
        self.violations.iter().filter(move |v| v.field == field)
    }

    /// Whether nothing failed.
    pub fn is_empty(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for ValidationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, violation) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{violation}")?;
        }
        Ok(())
    }
}

/// Adds the violations of `errors` under `prefix`. Its field names go through `wire_name`
/// when given (the top level), else are looked up among the keys of `json`, the JSON of the
/// value `errors` is about, when known.
fn collect(
    errors: &ValidationErrors,
    prefix: &str,
    wire_name: Option<&dyn Fn(&str) -> String>,
    json: Option<&Value>,
    out: &mut Vec<FieldViolation>,
) {
    let object = json.and_then(Value::as_object);
    for (name, kind) in errors.errors() {
        let name: &str = name.as_ref();
        let (key, child) = match (wire_name, object) {
            (Some(wire_name), object) => {
                let key = wire_name(name);
                let child = object.and_then(|o| o.get(&key));
                (key, child)
            }
            (None, Some(object)) => match json_key(object, name) {
                Some((key, child)) => (key.to_owned(), Some(child)),
                None => (name.to_owned(), None),
            },
            (None, None) => (name.to_owned(), None),
        };
        let path = match (prefix.is_empty(), name) {
            (_, "__all__") => prefix.to_owned(),
            (true, _) => key,
            (false, _) => format!("{prefix}.{key}"),
        };
        match kind {
            ValidationErrorsKind::Field(failures) => out.extend(failures.iter().map(|e| FieldViolation {
                field: path.clone(),
                code: e.code.to_string(),
                message: describe(e),
            })),
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, None, child, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    let element = child.and_then(|list| list.get(*index));
                    collect(inner, &format!("{path}[{index}]"), None, element, out);
                }
            }
        }
    }
}

/// The key of `object` that serde wrote for the Rust field `name`: the same text, else the
/// only key equal to it ignoring case, `_` and `-`; `None` when there is no such one key.
fn json_key<'v>(object: &'v serde_json::Map<String, Value>, name: &str) -> Option<(&'v str, &'v Value)> {
    if let Some((key, value)) = object.get_key_value(name) {
        return Some((key, value));
    }
    let folded = |text: &str| -> Vec<char> {
        text.chars().filter(|c| !matches!(c, '_' | '-')).flat_map(char::to_lowercase).collect()
    };
    let wanted = folded(name);
    let mut matching = object.iter().filter(|(key, _)| folded(key) == wanted);
    match (matching.next(), matching.next()) {
        (Some((key, value)), None) => Some((key, value)),
        _ => None,
    }
}

/// validator's own message when the schema gave one, else words built from the code.
fn describe(error: &ValidationError) -> String {
    if let Some(message) = &error.message {
        return message.to_string();
    }
    let param = |key: &str| error.params.get(key).map(|v| v.to_string());
    let bounds = |noun: &str| match (param("min"), param("max"), param("equal")) {
        (_, _, Some(equal)) => format!("{noun} must be exactly {equal}"),
        (Some(min), Some(max), _) => format!("{noun} must be between {min} and {max}"),
        (Some(min), None, _) => format!("{noun} must be at least {min}"),
        (None, Some(max), _) => format!("{noun} must be at most {max}"),
        (None, None, _) => format!("{noun} is out of bounds"),
    };
    let text = match error.code.as_ref() {
        "length" => format!("has the wrong length: {}", bounds("length")),
        "range" => match (param("exclusive_min"), param("exclusive_max")) {
            (Some(min), _) => format!("must be greater than {min}"),
            (_, Some(max)) => format!("must be less than {max}"),
            _ => format!("is out of range: {}", bounds("value")),
        },
        "email" => "must be an email address".to_owned(),
        "url" => "must be a URL".to_owned(),
        "required" => "is required".to_owned(),
        "regex" => "does not match the required pattern".to_owned(),
        "contains" => format!("must contain {}", param("needle").unwrap_or_default()),
        "does_not_contain" => format!("must not contain {}", param("needle").unwrap_or_default()),
        "must_match" => format!("must match `{}`", param("other").unwrap_or_default().trim_matches('"')),
        "credit_card" => "must be a credit card number".to_owned(),
        "ip" | "ipv4" | "ipv6" => "must be an IP address".to_owned(),
        code => format!("failed the `{code}` check"),
    };
    match param("value") {
        Some(value) => format!("{text} (got {value})"),
        None => text,
    }
}
