//! Failed validations, reported by the names fields have on the wire.
//!
//! The `validator` crate reports Rust field names and ignores serde renames (its issue #306);
//! a consumer reading a log line wants the key it sees in the JSON, so top-level fields are
//! mapped through the names the derive recorded. Nested structs keep validator's names.

use std::fmt;

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
    pub fn from_errors(errors: &ValidationErrors, wire_name: impl Fn(&str) -> String) -> ValidationReport {
        let mut violations = Vec::new();
        collect(errors, "", &wire_name, &mut violations);
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

fn collect(
    errors: &ValidationErrors,
    prefix: &str,
    wire_name: &dyn Fn(&str) -> String,
    out: &mut Vec<FieldViolation>,
) {
    for (name, kind) in errors.errors() {
        let path = match (prefix.is_empty(), name.as_ref()) {
            (_, "__all__") => prefix.to_owned(),
            (true, name) => wire_name(name),
            (false, name) => format!("{prefix}.{name}"),
        };
        match kind {
            ValidationErrorsKind::Field(failures) => out.extend(failures.iter().map(|e| FieldViolation {
                field: path.clone(),
                code: e.code.to_string(),
                message: describe(e),
            })),
            ValidationErrorsKind::Struct(inner) => collect(inner, &path, &|n| n.to_owned(), out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect(inner, &format!("{path}[{index}]"), &|n| n.to_owned(), out);
                }
            }
        }
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
