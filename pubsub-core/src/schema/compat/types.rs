//! The set of JSON types a schema accepts, with `integer` a part of `number`.

use std::fmt;

use serde_json::{Map, Value};

/// A set of JSON types. `number` is split into its integers and the rest, so `number` ->
/// `integer` is a narrowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeSet(u8);

impl TypeSet {
    pub(crate) const NULL: TypeSet = TypeSet(1);
    pub(crate) const BOOLEAN: TypeSet = TypeSet(2);
    pub(crate) const OBJECT: TypeSet = TypeSet(4);
    pub(crate) const ARRAY: TypeSet = TypeSet(8);
    pub(crate) const STRING: TypeSet = TypeSet(16);
    pub(crate) const INTEGER: TypeSet = TypeSet(32);
    /// Numbers with a fractional part.
    const FRACTION: TypeSet = TypeSet(64);
    pub(crate) const NUMBER: TypeSet = TypeSet(32 | 64);
    pub(crate) const ANY: TypeSet = TypeSet(127);
    pub(crate) const NONE: TypeSet = TypeSet(0);

    /// The types `schema` accepts: its `type`, else the types of its `const` or `enum` values,
    /// else any.
    pub(crate) fn of_schema(schema: &Map<String, Value>) -> TypeSet {
        match schema.get("type") {
            Some(Value::String(name)) => TypeSet::named(name),
            Some(Value::Array(names)) => {
                names.iter().filter_map(Value::as_str).map(TypeSet::named).fold(TypeSet::NONE, TypeSet::union)
            }
            _ => match (schema.get("const"), schema.get("enum")) {
                (Some(value), _) => TypeSet::of_value(value),
                (None, Some(Value::Array(values))) => {
                    values.iter().map(TypeSet::of_value).fold(TypeSet::NONE, TypeSet::union)
                }
                _ => TypeSet::ANY,
            },
        }
    }

    /// The type of one JSON value (a number without a fractional part is an integer).
    pub(crate) fn of_value(value: &Value) -> TypeSet {
        match value {
            Value::Null => TypeSet::NULL,
            Value::Bool(_) => TypeSet::BOOLEAN,
            Value::Object(_) => TypeSet::OBJECT,
            Value::Array(_) => TypeSet::ARRAY,
            Value::String(_) => TypeSet::STRING,
            Value::Number(n) if n.is_f64() && n.as_f64().is_some_and(|f| f.fract() != 0.0) => {
                TypeSet::FRACTION
            }
            Value::Number(_) => TypeSet::INTEGER,
        }
    }

    fn named(name: &str) -> TypeSet {
        match name {
            "null" => TypeSet::NULL,
            "boolean" => TypeSet::BOOLEAN,
            "object" => TypeSet::OBJECT,
            "array" => TypeSet::ARRAY,
            "string" => TypeSet::STRING,
            "integer" => TypeSet::INTEGER,
            "number" => TypeSet::NUMBER,
            // An unknown type name accepts nothing we can name; keep it from matching anything.
            _ => TypeSet::NONE,
        }
    }

    pub(crate) fn union(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 | other.0)
    }

    pub(crate) fn intersection(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 & other.0)
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn is_subset_of(self, other: TypeSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub(crate) fn contains(self, other: TypeSet) -> bool {
        other.is_subset_of(self)
    }

    /// The `type` keyword for this set: a name, or an array of names.
    pub(crate) fn to_keyword(self) -> Value {
        let names = self.names();
        if names.len() == 1 {
            Value::from(names[0])
        } else {
            Value::from(names)
        }
    }

    fn names(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for (set, name) in [
            (TypeSet::NULL, "null"),
            (TypeSet::BOOLEAN, "boolean"),
            (TypeSet::OBJECT, "object"),
            (TypeSet::ARRAY, "array"),
            (TypeSet::STRING, "string"),
        ] {
            if self.contains(set) {
                names.push(name);
            }
        }
        if self.contains(TypeSet::NUMBER) {
            names.push("number");
        } else if self.contains(TypeSet::INTEGER) {
            names.push("integer");
        } else if self.contains(TypeSet::FRACTION) {
            names.push("number (not integer)");
        }
        names
    }
}

impl fmt::Display for TypeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TypeSet::ANY => f.write_str("any"),
            TypeSet::NONE => f.write_str("nothing"),
            set => f.write_str(&set.names().join(" | ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn of(schema: Value) -> TypeSet {
        TypeSet::of_schema(schema.as_object().unwrap())
    }

    #[test]
    fn integer_is_a_part_of_number() {
        assert!(of(json!({"type": "integer"})).is_subset_of(of(json!({"type": "number"}))));
        assert!(!of(json!({"type": "number"})).is_subset_of(of(json!({"type": "integer"}))));
    }

    #[test]
    fn nullable_is_a_superset() {
        let nullable = of(json!({"type": ["string", "null"]}));
        let string = of(json!({"type": "string"}));
        assert!(string.is_subset_of(nullable));
        assert_eq!(nullable.to_string(), "null | string");
        assert_eq!(nullable.intersection(string), string);
    }

    #[test]
    fn without_type_the_values_decide() {
        assert_eq!(of(json!({"const": "a"})), TypeSet::STRING);
        assert_eq!(of(json!({"enum": [1, 2.5]})), TypeSet::NUMBER);
        assert_eq!(of(json!({"enum": [1, null]})), TypeSet::INTEGER.union(TypeSet::NULL));
        assert_eq!(of(json!({})), TypeSet::ANY);
        assert_eq!(of(json!({})).to_string(), "any");
    }

    #[test]
    fn keyword_round_trips() {
        for schema in [json!({"type": "integer"}), json!({"type": ["null", "number"]})] {
            let set = of(schema.clone());
            assert_eq!(set.to_keyword(), schema["type"]);
        }
    }
}
