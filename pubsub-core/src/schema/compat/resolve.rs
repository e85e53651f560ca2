//! `$ref` resolution within one document (JSON Pointer, `~0`/`~1` escapes) and `allOf`
//! merging: what the walker compares is a schema with neither.

use serde_json::{Map, Value};

use super::error::{CompatError, Side};
use super::types::TypeSet;

/// Keywords that describe a schema without constraining it: a `$ref` with only these beside it
/// is the schema it points to.
pub(crate) const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "definitions",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Follows references within one document.
#[derive(Clone, Copy)]
pub(crate) struct Resolver<'a> {
    root: &'a Value,
    side: Side,
}

/// A schema with its `$ref`s followed and its `allOf` merged, and where it is in its document.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) schema: Map<String, Value>,
    /// A JSON Pointer (`#/...`): the cycle guard's identity of the schema.
    pub(crate) location: String,
    /// The `$ref` this schema was reached through, if any.
    pub(crate) reference: Option<String>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(root: &'a Value, side: Side) -> Self {
        Resolver { root, side }
    }

    pub(crate) fn side(&self) -> Side {
        self.side
    }

    /// The value `reference` (`#` or `#/a/b~1c`) points to.
    pub(crate) fn pointer(&self, reference: &str, location: &str) -> Result<&'a Value, CompatError> {
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(CompatError::ExternalRef {
                side: self.side,
                reference: reference.to_owned(),
                location: location.to_owned(),
            });
        };
        let unresolvable = || CompatError::UnresolvableRef {
            side: self.side,
            reference: reference.to_owned(),
            location: location.to_owned(),
        };
        if pointer.is_empty() {
            return Ok(self.root);
        }
        if !pointer.starts_with('/') {
            return Err(unresolvable());
        }
        // Unescape each token: "~1" is "/", "~0" is "~" (in that order, RFC 6901).
        let unescaped = pointer.split('/').skip(1).map(|token| token.replace("~1", "/").replace("~0", "~"));
        let pointer: String = unescaped.map(|token| format!("/{}", escape(&token))).collect();
        self.root.pointer(&pointer).ok_or_else(unresolvable)
    }

    /// Follows `value`'s `$ref`s (if any) to the value they lead to, and its location.
    pub(crate) fn follow(
        &self,
        value: &'a Value,
        location: &str,
    ) -> Result<(&'a Value, String), CompatError> {
        let mut seen = Vec::new();
        let (mut value, mut location) = (value, location.to_owned());
        while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            if seen.iter().any(|seen: &String| seen == reference) {
                return Err(CompatError::RefLoop { side: self.side, reference: reference.to_owned() });
            }
            seen.push(reference.to_owned());
            value = self.pointer(reference, &location)?;
            location = reference.to_owned();
        }
        Ok((value, location))
    }

    /// `schema` (at `location`) with its `$ref`s followed and `allOf` merged.
    pub(crate) fn resolve(&self, schema: &Value, location: &str) -> Result<Resolved, CompatError> {
        self.resolve_within(schema, location, &mut Vec::new())
    }

    fn resolve_within(
        &self,
        schema: &Value,
        location: &str,
        chain: &mut Vec<String>,
    ) -> Result<Resolved, CompatError> {
        let mut map = match schema {
            Value::Object(map) => map.clone(),
            Value::Bool(true) => Map::new(),
            // Nothing is valid: an empty set of types says so to the comparison.
            Value::Bool(false) => Map::from_iter([("type".to_owned(), Value::Array(Vec::new()))]),
            _ => {
                return Err(CompatError::Malformed {
                    side: self.side,
                    location: location.to_owned(),
                    problem: "is not a schema (expected an object or a boolean)".to_owned(),
                })
            }
        };
        let mut resolved = Resolved { schema: Map::new(), location: location.to_owned(), reference: None };
        if let Some(reference) = map.remove("$ref") {
            let Some(reference) = reference.as_str() else {
                return Err(CompatError::Malformed {
                    side: self.side,
                    location: location.to_owned(),
                    problem: "has a `$ref` that is not a string".to_owned(),
                });
            };
            if chain.iter().any(|seen| seen == reference) {
                return Err(CompatError::RefLoop { side: self.side, reference: reference.to_owned() });
            }
            chain.push(reference.to_owned());
            let target = self.resolve_within(self.pointer(reference, location)?, reference, chain)?;
            chain.pop();
            map.retain(|keyword, _| !ANNOTATIONS.contains(&keyword.as_str()));
            if map.is_empty() {
                return Ok(Resolved { reference: Some(reference.to_owned()), ..target });
            }
            // Keywords beside the `$ref` apply too (draft 2019-09 and later).
            resolved.schema = target.schema;
            resolved.reference = Some(reference.to_owned());
        }
        let all_of = map.remove("allOf");
        resolved.schema = merge(resolved.schema, map);
        if let Some(all_of) = all_of {
            let Value::Array(branches) = all_of else {
                return Err(CompatError::Malformed {
                    side: self.side,
                    location: location.to_owned(),
                    problem: "has an `allOf` that is not an array".to_owned(),
                });
            };
            for (index, branch) in branches.iter().enumerate() {
                let branch = self.resolve_within(branch, &format!("{location}/allOf/{index}"), chain)?;
                resolved.schema = merge(resolved.schema, branch.schema);
            }
        }
        Ok(resolved)
    }
}

/// Escapes one JSON Pointer token.
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The schema both `first` and `second` describe (their intersection), as far as one schema
/// can say it; where it cannot (two different patterns), `first` wins.
pub(crate) fn merge(mut first: Map<String, Value>, second: Map<String, Value>) -> Map<String, Value> {
    for (keyword, theirs) in second {
        let Some(ours) = first.remove(&keyword) else {
            first.insert(keyword, theirs);
            continue;
        };
        let merged = match keyword.as_str() {
            "type" => {
                let ours = TypeSet::of_schema(&Map::from_iter([("type".to_owned(), ours)]));
                let theirs = TypeSet::of_schema(&Map::from_iter([("type".to_owned(), theirs)]));
                match ours.intersection(theirs) {
                    none if none.is_empty() => Value::Array(Vec::new()),
                    both => both.to_keyword(),
                }
            }
            "properties" => match (ours, theirs) {
                (Value::Object(mut ours), Value::Object(theirs)) => {
                    for (name, schema) in theirs {
                        let merged = match ours.remove(&name) {
                            Some(existing) => serde_json::json!({ "allOf": [existing, schema] }),
                            None => schema,
                        };
                        ours.insert(name, merged);
                    }
                    Value::Object(ours)
                }
                (ours, _) => ours,
            },
            "required" => match (ours, theirs) {
                (Value::Array(mut ours), Value::Array(theirs)) => {
                    for name in theirs {
                        if !ours.contains(&name) {
                            ours.push(name);
                        }
                    }
                    Value::Array(ours)
                }
                (ours, _) => ours,
            },
            "minimum" | "exclusiveMinimum" | "minLength" | "minItems" | "minProperties" => {
                extreme(ours, theirs, |a, b| a >= b)
            }
            "maximum" | "exclusiveMaximum" | "maxLength" | "maxItems" | "maxProperties" => {
                extreme(ours, theirs, |a, b| a <= b)
            }
            "enum" => match (ours, theirs) {
                (Value::Array(ours), Value::Array(theirs)) => {
                    Value::Array(ours.into_iter().filter(|value| theirs.contains(value)).collect())
                }
                (ours, _) => ours,
            },
            "items" | "additionalProperties" => match (ours, theirs) {
                (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
                (Value::Bool(true), theirs) => theirs,
                (ours, Value::Bool(true)) => ours,
                (ours, theirs) => serde_json::json!({ "allOf": [ours, theirs] }),
            },
            _ => ours,
        };
        first.insert(keyword, merged);
    }
    first
}

/// `ours` or `theirs`, whichever `keep_ours` prefers (numbers only; otherwise ours).
fn extreme(ours: Value, theirs: Value, keep_ours: impl Fn(f64, f64) -> bool) -> Value {
    match (ours.as_f64(), theirs.as_f64()) {
        (Some(a), Some(b)) if !keep_ours(a, b) => theirs,
        _ => ours,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pointer_unescapes_tokens() {
        let root = json!({"$defs": {"a/b": {"type": "string"}, "c~d": {"type": "integer"}}});
        let resolver = Resolver::new(&root, Side::Baseline);
        assert_eq!(resolver.pointer("#/$defs/a~1b", "#").unwrap(), &json!({"type": "string"}));
        assert_eq!(resolver.pointer("#/$defs/c~0d", "#").unwrap(), &json!({"type": "integer"}));
        assert_eq!(resolver.pointer("#", "#").unwrap(), &root);
    }

    #[test]
    fn missing_and_external_refs_are_errors_that_say_where() {
        let root = json!({"properties": {"a": {"$ref": "#/$defs/Missing"}, "b": {"$ref": "other.json#/X"}}});
        let resolver = Resolver::new(&root, Side::Current);
        let error = resolver.resolve(&root["properties"]["a"], "#/properties/a").unwrap_err();
        assert!(matches!(error, CompatError::UnresolvableRef { .. }));
        assert!(error.to_string().contains("\"#/$defs/Missing\" at #/properties/a"), "{error}");
        assert!(error.to_string().starts_with("the current input"), "{error}");
        let error = resolver.resolve(&root["properties"]["b"], "#/properties/b").unwrap_err();
        assert!(matches!(error, CompatError::ExternalRef { .. }), "{error}");
    }

    #[test]
    fn recursive_types_resolve_one_level() {
        // A list node refers to itself through a property: resolving stops at the property.
        let root =
            json!({"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}});
        let resolver = Resolver::new(&root, Side::Baseline);
        let node = resolver.resolve(&json!({"$ref": "#/$defs/Node"}), "#").unwrap();
        assert_eq!(node.location, "#/$defs/Node");
        assert_eq!(node.reference.as_deref(), Some("#/$defs/Node"));
        assert_eq!(node.schema["properties"]["next"], json!({"$ref": "#/$defs/Node"}));
    }

    #[test]
    fn a_loop_of_refs_is_an_error() {
        let root = json!({"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"allOf": [{"$ref": "#/$defs/A"}]}}});
        let resolver = Resolver::new(&root, Side::Baseline);
        let error = resolver.resolve(&json!({"$ref": "#/$defs/A"}), "#").unwrap_err();
        assert!(matches!(error, CompatError::RefLoop { .. }), "{error}");
        // `follow` stops at the first value without a `$ref`: B, whose `allOf` it leaves alone.
        assert_eq!(resolver.follow(&root["$defs"]["A"], "#").unwrap().1, "#/$defs/B");
        let looping = json!({"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}});
        let resolver = Resolver::new(&looping, Side::Baseline);
        assert!(matches!(resolver.follow(&looping["$defs"]["A"], "#"), Err(CompatError::RefLoop { .. })));
    }

    #[test]
    fn all_of_merges_properties_required_and_bounds() {
        let root = json!({"$defs": {"Base": {"type": "object", "properties": {"id": {"type": "string"}},
                                              "required": ["id"]}}});
        let resolver = Resolver::new(&root, Side::Baseline);
        let schema = json!({"allOf": [{"$ref": "#/$defs/Base"},
                                      {"properties": {"n": {"type": "integer", "minimum": 1}}, "required": ["n"]},
                                      {"properties": {"n": {"minimum": 5}}}],
                            "description": "merged"});
        let merged = resolver.resolve(&schema, "#").unwrap().schema;
        assert_eq!(merged["type"], json!("object"));
        assert_eq!(merged["required"], json!(["id", "n"]));
        let n = resolver.resolve(&merged["properties"]["n"], "#/n").unwrap().schema;
        assert_eq!(n["minimum"], json!(5));
        assert_eq!(n["type"], json!("integer"));
    }

    #[test]
    fn ref_siblings_apply() {
        let root = json!({"$defs": {"Name": {"type": "string", "maxLength": 10}}});
        let resolver = Resolver::new(&root, Side::Baseline);
        let schema = json!({"$ref": "#/$defs/Name", "maxLength": 5, "description": "ignored"});
        let resolved = resolver.resolve(&schema, "#/x").unwrap();
        assert_eq!(resolved.schema["maxLength"], json!(5));
        assert_eq!(resolved.location, "#/x");
        assert_eq!(resolver.resolve(&json!(false), "#").unwrap().schema["type"], json!([]));
    }
}
