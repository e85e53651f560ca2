//! Alternatives: a schema's `anyOf`/`oneOf` branches (an enum's variants, `Option`'s `null`)
//! or its `enum` values, and which baseline branch corresponds to which current one.

use serde_json::{Map, Value};

use super::finding::Finding;
use super::report::ChangeKind;
use super::resolve::{Resolved, ANNOTATIONS};
use super::shapes::required_names;
use super::types::TypeSet;

/// Whether `schema` offers alternatives: branches or a list of values.
pub(crate) fn has_choices(schema: &Map<String, Value>) -> bool {
    ["anyOf", "oneOf", "enum", "const"].iter().any(|keyword| schema.contains_key(*keyword))
}

/// The combinator keyword of `schema`, if any (`anyOf` first: `Option<T>` is one).
pub(crate) fn combinator(schema: &Map<String, Value>) -> Option<&'static str> {
    ["anyOf", "oneOf"].into_iter().find(|keyword| schema.get(*keyword).is_some_and(Value::is_array))
}

/// Each branch of `node`'s combinator as a schema of its own, with the keywords beside the
/// combinator applied to it, and where it is. The caller resolves them.
pub(crate) fn branch_schemas(node: &Resolved, combinator: &str) -> Vec<(Value, String, Option<String>)> {
    let mut siblings = node.schema.clone();
    let Some(Value::Array(branches)) = siblings.remove(combinator) else { return Vec::new() };
    siblings.retain(|keyword, _| !ANNOTATIONS.contains(&keyword.as_str()));
    branches
        .into_iter()
        .enumerate()
        .map(|(index, branch)| {
            let reference = branch.get("$ref").and_then(Value::as_str).map(str::to_owned);
            let schema = if siblings.is_empty() {
                branch
            } else {
                serde_json::json!({ "allOf": [Value::Object(siblings.clone()), branch] })
            };
            (schema, format!("{}/{combinator}/{index}", node.location), reference)
        })
        .collect()
}

/// `node` as one branch per `enum` value (`const`), or `None` without an `enum`.
pub(crate) fn value_branches(node: &Resolved) -> Option<Vec<Resolved>> {
    let Some(Value::Array(values)) = node.schema.get("enum") else { return None };
    let branches = values.iter().enumerate().map(|(index, value)| {
        let mut schema = node.schema.clone();
        schema.remove("enum");
        schema.insert("const".to_owned(), value.clone());
        Resolved { schema, location: format!("{}/enum/{index}", node.location), reference: None }
    });
    Some(branches.collect())
}

/// `branches`, with each one of several types (`["string", "null"]`) split into one branch a
/// type, so that it pairs with the `anyOf` that says the same (`Option<T>` written either way).
pub(crate) fn split_by_type(branches: Vec<Resolved>) -> Vec<Resolved> {
    let mut split = Vec::with_capacity(branches.len());
    for branch in branches {
        match branch.schema.get("type") {
            Some(Value::Array(names)) if names.len() > 1 => {
                for (index, name) in names.iter().enumerate() {
                    let mut schema = branch.schema.clone();
                    schema.insert("type".to_owned(), name.clone());
                    split.push(Resolved {
                        schema,
                        location: format!("{}/type/{index}", branch.location),
                        reference: branch.reference.clone(),
                    });
                }
            }
            _ => split.push(branch),
        }
    }
    split
}

/// What tells a branch apart from its siblings.
#[derive(Debug, Clone, PartialEq)]
enum Discriminant {
    /// A single value (`const`, or an `enum` of one): a unit variant, an enum value.
    Value(Value),
    /// Required properties with a single value each: the tag of an internally or adjacently
    /// tagged variant.
    Tag(Vec<(String, Value)>),
    /// A closed object with one required property: an externally tagged variant.
    Wrapper(String),
}

fn single_value(schema: &Map<String, Value>) -> Option<&Value> {
    match (schema.get("const"), schema.get("enum").and_then(Value::as_array)) {
        (Some(value), _) => Some(value),
        (None, Some(values)) if values.len() == 1 => Some(&values[0]),
        _ => None,
    }
}

fn discriminant(schema: &Map<String, Value>) -> Option<Discriminant> {
    if let Some(value) = single_value(schema) {
        return Some(Discriminant::Value(value.clone()));
    }
    let properties = schema.get("properties").and_then(Value::as_object)?;
    let required = required_names(schema);
    let tag: Vec<(String, Value)> = properties
        .iter()
        .filter(|(name, _)| required.contains(&name.as_str()))
        .filter_map(|(name, property)| Some((name.clone(), single_value(property.as_object()?)?.clone())))
        .collect();
    if !tag.is_empty() {
        return Some(Discriminant::Tag(tag));
    }
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    match (closed, properties.keys().next(), properties.len(), required.as_slice()) {
        (true, Some(name), 1, [only]) if name == only => Some(Discriminant::Wrapper(name.clone())),
        _ => None,
    }
}

/// Which baseline branch is which current branch, and which have no counterpart.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Pairing {
    /// (baseline index, current index) pairs to compare.
    pub(crate) matched: Vec<(usize, usize)>,
    /// Baseline branches with no counterpart.
    pub(crate) removed: Vec<usize>,
    /// Current branches with no counterpart.
    pub(crate) added: Vec<usize>,
}

/// Whether a baseline branch and a current one correspond, by one criterion.
type PairingRule = dyn Fn(&Facts, &Facts) -> bool;

struct Facts {
    discriminant: Option<Discriminant>,
    reference: Option<String>,
    types: TypeSet,
}

fn facts(branch: &Resolved) -> Facts {
    Facts {
        discriminant: discriminant(&branch.schema),
        reference: branch.reference.clone(),
        types: TypeSet::of_schema(&branch.schema),
    }
}

/// Pairs branches: by discriminant, then (among those without) by `$ref`, then by the same
/// types, then by overlapping types; a single-valued branch left over is compared with an
/// unrestricted branch of its type on the other side (a string and the string "a").
pub(crate) fn pair(baseline: &[Resolved], current: &[Resolved]) -> Pairing {
    let baseline: Vec<Facts> = baseline.iter().map(facts).collect();
    let current: Vec<Facts> = current.iter().map(facts).collect();
    let mut baseline_used = vec![false; baseline.len()];
    let mut current_used = vec![false; current.len()];
    let mut pairing = Pairing::default();
    let rules: [&PairingRule; 4] = [
        &|b, c| b.discriminant.is_some() && b.discriminant == c.discriminant,
        &|b, c| {
            b.discriminant.is_none()
                && c.discriminant.is_none()
                && b.reference.is_some()
                && b.reference == c.reference
        },
        &|b, c| b.discriminant.is_none() && c.discriminant.is_none() && b.types == c.types,
        &|b, c| {
            b.discriminant.is_none() && c.discriminant.is_none() && !b.types.intersection(c.types).is_empty()
        },
    ];
    for rule in rules {
        for (i, b) in baseline.iter().enumerate() {
            if baseline_used[i] {
                continue;
            }
            if let Some(j) = (0..current.len()).find(|&j| !current_used[j] && rule(b, &current[j])) {
                baseline_used[i] = true;
                current_used[j] = true;
                pairing.matched.push((i, j));
            }
        }
    }
    // A single value left over is the narrowing (or widening) of an unrestricted branch of its type.
    let unrestricted_of = |facts: &[Facts], value: &Value| {
        let types = TypeSet::of_value(value);
        facts.iter().position(|other| other.discriminant.is_none() && other.types.contains(types))
    };
    for (i, b) in baseline.iter().enumerate() {
        if let (Some(Discriminant::Value(value)), false) = (&b.discriminant, baseline_used[i]) {
            if let Some(j) = unrestricted_of(&current, value) {
                baseline_used[i] = true;
                current_used[j] = true;
                pairing.matched.push((i, j));
            }
        }
    }
    for (j, c) in current.iter().enumerate() {
        if let (Some(Discriminant::Value(value)), false) = (&c.discriminant, current_used[j]) {
            if let Some(i) = unrestricted_of(&baseline, value) {
                baseline_used[i] = true;
                current_used[j] = true;
                pairing.matched.push((i, j));
            }
        }
    }
    pairing.removed = (0..baseline.len()).filter(|&i| !baseline_used[i]).collect();
    pairing.added = (0..current.len()).filter(|&j| !current_used[j]).collect();
    pairing
}

/// A short name for a branch: "value \"a\"", "variant \"type\" = \"Card\"", ...
fn describe(branch: &Resolved) -> String {
    match discriminant(&branch.schema) {
        Some(Discriminant::Value(value)) => format!("value {value}"),
        Some(Discriminant::Tag(tag)) => {
            let tag: Vec<String> = tag.iter().map(|(name, value)| format!("\"{name}\": {value}")).collect();
            format!("variant {{{}}}", tag.join(", "))
        }
        Some(Discriminant::Wrapper(name)) => format!("variant \"{name}\""),
        None => match &branch.reference {
            Some(reference) => format!("variant {}", reference.rsplit('/').next().unwrap_or(reference)),
            None => format!("variant of type {}", TypeSet::of_schema(&branch.schema)),
        },
    }
}

fn is_null_only(branch: &Resolved) -> bool {
    TypeSet::of_schema(&branch.schema) == TypeSet::NULL
}

/// The finding for a baseline branch with no counterpart.
pub(crate) fn removed(branch: &Resolved, path: &str) -> Finding {
    if is_null_only(branch) {
        return Finding::narrows(path, ChangeKind::TypeNarrowed, "`null` no longer accepted");
    }
    Finding::narrows(path, ChangeKind::VariantRemoved, format!("{} removed", describe(branch)))
}

/// The finding for a current branch with no counterpart.
pub(crate) fn added(branch: &Resolved, path: &str) -> Finding {
    if is_null_only(branch) {
        return Finding::widens(path, ChangeKind::TypeWidened, "`null` now accepted");
    }
    Finding::widens(path, ChangeKind::VariantAdded, format!("{} added", describe(branch)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn branch(schema: Value) -> Resolved {
        Resolved { schema: schema.as_object().unwrap().clone(), location: "#".to_owned(), reference: None }
    }

    #[test]
    fn tagged_variants_pair_by_tag_whatever_their_order() {
        let card = branch(
            json!({"type": "object", "properties": {"type": {"const": "Card"}}, "required": ["type"]}),
        );
        let cash = branch(
            json!({"type": "object", "properties": {"type": {"const": "Cash"}}, "required": ["type"]}),
        );
        let wire = branch(
            json!({"type": "object", "properties": {"type": {"const": "Wire"}}, "required": ["type"]}),
        );
        let pairing = pair(&[card.clone(), cash.clone()], &[wire.clone(), card]);
        assert_eq!(pairing, Pairing { matched: vec![(0, 1)], removed: vec![1], added: vec![0] });
        assert_eq!(removed(&cash, "p").description, "variant {\"type\": \"Cash\"} removed");
    }

    #[test]
    fn externally_tagged_variants_pair_by_their_property() {
        let card = branch(json!({"type": "object", "properties": {"Card": {"type": "string"}},
                                 "required": ["Card"], "additionalProperties": false}));
        assert_eq!(discriminant(&card.schema), Some(Discriminant::Wrapper("Card".to_owned())));
        assert_eq!(describe(&card), "variant \"Card\"");
    }

    #[test]
    fn null_branches_are_type_changes() {
        let string = branch(json!({"type": "string"}));
        let null = branch(json!({"type": "null"}));
        let pairing = pair(&[string.clone(), null.clone()], &[string]);
        assert_eq!(pairing, Pairing { matched: vec![(0, 0)], removed: vec![1], added: vec![] });
        assert_eq!(removed(&null, "x").kind, ChangeKind::TypeNarrowed);
        assert_eq!(added(&null, "x").kind, ChangeKind::TypeWidened);
    }

    #[test]
    fn a_value_meets_an_unrestricted_branch_of_its_type() {
        let any_string = branch(json!({"type": "string"}));
        let a = branch(json!({"type": "string", "const": "a"}));
        let b = branch(json!({"type": "string", "const": "b"}));
        let pairing = pair(&[any_string], &[a, b]);
        assert_eq!(pairing, Pairing { matched: vec![(0, 0), (0, 1)], removed: vec![], added: vec![] });
    }

    #[test]
    fn several_types_become_branches() {
        let nullable = branch(json!({"type": ["string", "null"], "maxLength": 3}));
        let split = split_by_type(vec![nullable]);
        assert_eq!(split.len(), 2);
        assert_eq!(split[0].schema, *json!({"type": "string", "maxLength": 3}).as_object().unwrap());
        assert_eq!(split[1].location, "#/type/1");
    }

    #[test]
    fn enum_values_become_branches() {
        let node = branch(json!({"type": "string", "enum": ["a", "b"]}));
        let values = value_branches(&node).unwrap();
        assert_eq!(values[1].schema, *json!({"type": "string", "const": "b"}).as_object().unwrap());
        assert_eq!(values[1].location, "#/enum/1");
    }
}
