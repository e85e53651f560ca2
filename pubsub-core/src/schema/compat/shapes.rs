//! What object and array schemas say about their parts: properties, `required`,
//! `additionalProperties`, tuple items and the rest; and whether two property schemas are the same.

use serde_json::{Map, Value};

use super::resolve::Resolved;

/// The schema every value satisfies: what an absent `items` or property schema means.
pub(crate) static ANYTHING: Value = Value::Bool(true);

/// The names in `schema`'s `required`.
pub(crate) fn required_names(schema: &Map<String, Value>) -> Vec<&str> {
    let names = schema.get("required").and_then(Value::as_array).into_iter().flatten();
    names.filter_map(Value::as_str).collect()
}

/// What an object schema says about its properties.
pub(crate) struct ObjectShape<'s> {
    properties: Option<&'s Map<String, Value>>,
    /// Declared properties, then required ones without a schema.
    pub(crate) names: Vec<&'s str>,
    required: Vec<&'s str>,
    /// `additionalProperties: false`.
    pub(crate) closed: bool,
    /// A schema for the other properties' values (a map's values).
    pub(crate) additional: Option<&'s Value>,
}

impl<'s> ObjectShape<'s> {
    pub(crate) fn of(schema: &'s Map<String, Value>) -> Self {
        let properties = schema.get("properties").and_then(Value::as_object);
        let required = required_names(schema);
        let mut names: Vec<&str> =
            properties.into_iter().flat_map(|map| map.keys().map(String::as_str)).collect();
        for name in &required {
            if !names.contains(name) {
                names.push(name);
            }
        }
        let additional = schema.get("additionalProperties");
        ObjectShape {
            properties,
            names,
            required,
            closed: additional == Some(&Value::Bool(false)),
            additional: additional.filter(|value| **value != Value::Bool(true)),
        }
    }

    pub(crate) fn is_required(&self, name: &str) -> bool {
        self.required.contains(&name)
    }

    pub(crate) fn schema(&self, name: &str) -> &'s Value {
        self.properties.and_then(|map| map.get(name)).unwrap_or(&ANYTHING)
    }
}

/// What an array schema says about its items.
pub(crate) struct ArrayShape<'s> {
    pub(crate) prefix: Vec<&'s Value>,
    prefix_location: String,
    pub(crate) rest: Option<&'s Value>,
    pub(crate) rest_location: String,
}

impl<'s> ArrayShape<'s> {
    pub(crate) fn of(node: &'s Resolved) -> Self {
        let schema = &node.schema;
        let location = &node.location;
        match (schema.get("prefixItems"), schema.get("items")) {
            (Some(Value::Array(prefix)), rest) => ArrayShape {
                prefix: prefix.iter().collect(),
                prefix_location: format!("{location}/prefixItems"),
                rest,
                rest_location: format!("{location}/items"),
            },
            (_, Some(Value::Array(prefix))) => ArrayShape {
                prefix: prefix.iter().collect(),
                prefix_location: format!("{location}/items"),
                rest: schema.get("additionalItems"),
                rest_location: format!("{location}/additionalItems"),
            },
            (_, rest) => ArrayShape {
                prefix: Vec::new(),
                prefix_location: String::new(),
                rest,
                rest_location: format!("{location}/items"),
            },
        }
    }

    /// The schema of the item at `index`, and where it is.
    pub(crate) fn at(&self, index: usize) -> (&'s Value, String) {
        match self.prefix.get(index) {
            Some(item) => (item, format!("{}/{index}", self.prefix_location)),
            None => (self.rest.unwrap_or(&ANYTHING), self.rest_location.clone()),
        }
    }
}

/// Whether two property schemas are the same, annotations (`description`, `title`, ...) aside.
pub(crate) fn same_schema(a: &Value, b: &Value) -> bool {
    without_annotations(a) == without_annotations(b)
}

fn without_annotations(schema: &Value) -> Value {
    let Value::Object(map) = schema else { return schema.clone() };
    let keywords = map
        .iter()
        .filter(|(keyword, _)| !matches!(keyword.as_str(), "title" | "description" | "examples" | "default"));
    let stripped = keywords.map(|(keyword, value)| {
        let value = match (keyword.as_str(), value) {
            // Maps of names to schemas: the names stay, whatever they are.
            ("properties" | "patternProperties" | "$defs" | "definitions", Value::Object(schemas)) => {
                Value::Object(
                    schemas
                        .iter()
                        .map(|(name, schema)| (name.clone(), without_annotations(schema)))
                        .collect(),
                )
            }
            ("anyOf" | "oneOf" | "allOf" | "prefixItems" | "items", Value::Array(schemas)) => {
                Value::Array(schemas.iter().map(without_annotations).collect())
            }
            ("items" | "additionalProperties" | "additionalItems" | "not", schema) => {
                without_annotations(schema)
            }
            // Values (`const`, `enum`) and everything else as they are.
            (_, value) => value.clone(),
        };
        (keyword.clone(), value)
    });
    Value::Object(stripped.collect())
}
