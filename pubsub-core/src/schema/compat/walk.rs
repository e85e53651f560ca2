//! The comparison of two schemas, node by node: types and constraints here, then properties
//! (objects), items (arrays), map values and branches (enums), recursively.

use std::collections::HashSet;

use serde_json::Value;

use super::branches;
use super::constraints;
use super::error::CompatError;
use super::finding::Finding;
pub(crate) use super::path::FieldPath;
use super::report::{ChangeKind, Verdict};
use super::resolve::{escape, Resolved, Resolver};
use super::shapes::{same_schema, ArrayShape, ObjectShape, ANYTHING};
use super::types::TypeSet;

/// Compares a baseline schema with a current one, collecting [`Finding`]s.
pub(crate) struct Walker<'a> {
    baseline: Resolver<'a>,
    current: Resolver<'a>,
    /// The (baseline, current) locations being compared further up: meeting a pair again is a
    /// recursive type come round, whose changes are already being found.
    in_progress: HashSet<(String, String)>,
    findings: Vec<Finding>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(baseline: Resolver<'a>, current: Resolver<'a>) -> Self {
        Walker { baseline, current, in_progress: HashSet::new(), findings: Vec::new() }
    }

    /// The findings, each once (a schema met through two branches is compared twice).
    pub(crate) fn into_findings(self) -> Vec<Finding> {
        let mut unique: Vec<Finding> = Vec::with_capacity(self.findings.len());
        for finding in self.findings {
            if !unique.contains(&finding) {
                unique.push(finding);
            }
        }
        unique
    }

    pub(crate) fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// Compares `baseline` (at `baseline_location` in its document) with `current`.
    pub(crate) fn compare(
        &mut self,
        baseline: &Value,
        baseline_location: &str,
        current: &Value,
        current_location: &str,
        path: &FieldPath,
    ) -> Result<(), CompatError> {
        let baseline = self.baseline.resolve(baseline, baseline_location)?;
        let current = self.current.resolve(current, current_location)?;
        self.compare_resolved(&baseline, &current, path)
    }

    fn compare_resolved(
        &mut self,
        baseline: &Resolved,
        current: &Resolved,
        path: &FieldPath,
    ) -> Result<(), CompatError> {
        let pair = (baseline.location.clone(), current.location.clone());
        if !self.in_progress.insert(pair.clone()) {
            return Ok(());
        }
        let result = self.compare_alternatives(baseline, current, path);
        self.in_progress.remove(&pair);
        result
    }

    /// Splits both sides into branches when either has some, pairs them and compares the pairs.
    fn compare_alternatives(
        &mut self,
        baseline: &Resolved,
        current: &Resolved,
        path: &FieldPath,
    ) -> Result<(), CompatError> {
        // Enum values are compared as branches only against branches or values: against a plain
        // string, an `enum` is a constraint added.
        let split_values = branches::has_choices(&baseline.schema) && branches::has_choices(&current.schema);
        let baseline_branches = alternatives(&self.baseline, baseline, split_values)?;
        let current_branches = alternatives(&self.current, current, split_values)?;
        let (baseline_branches, current_branches) = match (baseline_branches, current_branches) {
            (None, None) => return self.compare_single(baseline, current, path),
            (b, c) => (
                branches::split_by_type(b.unwrap_or_else(|| vec![baseline.clone()])),
                branches::split_by_type(c.unwrap_or_else(|| vec![current.clone()])),
            ),
        };
        let pairing = branches::pair(&baseline_branches, &current_branches);
        for (i, j) in pairing.matched {
            self.compare_resolved(&baseline_branches[i], &current_branches[j], path)?;
        }
        for i in pairing.removed {
            self.push(branches::removed(&baseline_branches[i], path.as_str()));
        }
        for j in pairing.added {
            self.push(branches::added(&current_branches[j], path.as_str()));
        }
        Ok(())
    }

    /// Compares two schemas without branches: types, constraints, then properties and items.
    fn compare_single(
        &mut self,
        baseline: &Resolved,
        current: &Resolved,
        path: &FieldPath,
    ) -> Result<(), CompatError> {
        let baseline_types = TypeSet::of_schema(&baseline.schema);
        let current_types = TypeSet::of_schema(&current.schema);
        if baseline_types != current_types {
            let description = format!("type {baseline_types} -> {current_types}");
            self.push(if current_types.is_subset_of(baseline_types) {
                Finding::narrows(path.as_str(), ChangeKind::TypeNarrowed, description)
            } else if baseline_types.is_subset_of(current_types) {
                Finding::widens(path.as_str(), ChangeKind::TypeWidened, description)
            } else {
                Finding::breaks_both(path.as_str(), ChangeKind::TypeChanged, description)
            });
        }
        let common = baseline_types.intersection(current_types);
        if common.is_empty() {
            // Nothing is valid under both: the type change says it all.
            return Ok(());
        }
        constraints::compare(&baseline.schema, &current.schema, path.as_str(), &mut self.findings);
        if common.contains(TypeSet::OBJECT) {
            self.compare_objects(baseline, current, path)?;
        }
        if common.contains(TypeSet::ARRAY) {
            self.compare_arrays(baseline, current, path)?;
        }
        Ok(())
    }

    fn compare_objects(
        &mut self,
        baseline: &Resolved,
        current: &Resolved,
        path: &FieldPath,
    ) -> Result<(), CompatError> {
        let (old, new) = (ObjectShape::of(&baseline.schema), ObjectShape::of(&current.schema));
        let mut removed: Vec<&str> =
            old.names.iter().copied().filter(|name| !new.names.contains(name)).collect();
        let mut added: Vec<&str> =
            new.names.iter().copied().filter(|name| !old.names.contains(name)).collect();

        // A required field gone and one with the same schema new: most likely a rename.
        let mut renames = Vec::new();
        removed.retain(|&old_name| {
            let rename = added.iter().position(|&new_name| {
                (old.is_required(old_name) || new.is_required(new_name))
                    && same_schema(old.schema(old_name), new.schema(new_name))
            });
            match rename {
                Some(index) => {
                    renames.push((old_name, added.remove(index)));
                    false
                }
                None => true,
            }
        });
        for (old_name, new_name) in renames {
            self.push(Finding::breaks_both(
                path.field(old_name).as_str(),
                ChangeKind::FieldRenamed,
                format!(
                    "renamed to `{new_name}`: bodies of either side lack the field the other reads \
                     (add the new name beside the old one first)"
                ),
            ));
        }
        for name in removed {
            let required = old.is_required(name);
            let description = match (required, new.closed) {
                (true, _) => "required field removed: consumers on the baseline require it",
                (false, true) => "optional field removed, and unknown fields are not allowed",
                (false, false) => "optional field removed",
            };
            let consumers = if new.closed { Verdict::Breaking } else { Verdict::Compatible };
            let producers = if required { Verdict::Breaking } else { Verdict::Compatible };
            let field = path.field(name);
            self.push(Finding::new(
                field.as_str(),
                ChangeKind::FieldRemoved,
                description,
                consumers,
                producers,
            ));
        }
        for name in added {
            let required = new.is_required(name);
            let description = match (required, old.closed) {
                (true, _) => "required field added: bodies from producers on the baseline lack it",
                (false, true) => "optional field added, and the baseline allows no unknown fields",
                (false, false) => "optional field added",
            };
            let consumers = if required { Verdict::Breaking } else { Verdict::Compatible };
            let producers = if old.closed { Verdict::Breaking } else { Verdict::Compatible };
            let field = path.field(name);
            self.push(Finding::new(
                field.as_str(),
                ChangeKind::FieldAdded,
                description,
                consumers,
                producers,
            ));
        }
        for &name in old.names.iter().filter(|name| new.names.contains(name)) {
            let field = path.field(name);
            match (old.is_required(name), new.is_required(name)) {
                (false, true) => self.push(Finding::narrows(
                    field.as_str(),
                    ChangeKind::BecameRequired,
                    "optional field became required: bodies from producers on the baseline may lack it",
                )),
                (true, false) => self.push(Finding::widens(
                    field.as_str(),
                    ChangeKind::BecameOptional,
                    "required field became optional: consumers on the baseline require it",
                )),
                _ => {}
            }
            let baseline_location = format!("{}/properties/{}", baseline.location, escape(name));
            let current_location = format!("{}/properties/{}", current.location, escape(name));
            self.compare(old.schema(name), &baseline_location, new.schema(name), &current_location, &field)?;
        }
        self.compare_additional_properties(baseline, current, &old, &new, path)
    }

    /// `additionalProperties`: closed objects and the values of maps.
    fn compare_additional_properties(
        &mut self,
        baseline: &Resolved,
        current: &Resolved,
        old: &ObjectShape<'_>,
        new: &ObjectShape<'_>,
        path: &FieldPath,
    ) -> Result<(), CompatError> {
        match (old.closed, new.closed) {
            (false, true) => self.push(Finding::narrows(
                path.as_str(),
                ChangeKind::ConstraintTightened,
                "unknown fields no longer allowed (`additionalProperties: false`)",
            )),
            (true, false) => self.push(Finding::widens(
                path.as_str(),
                ChangeKind::ConstraintLoosened,
                "unknown fields allowed (`additionalProperties: false` removed)",
            )),
            (true, true) => {}
            (false, false) => {
                let (old_values, new_values) = (old.additional, new.additional);
                if old_values.is_some() || new_values.is_some() {
                    self.compare(
                        old_values.unwrap_or(&ANYTHING),
                        &format!("{}/additionalProperties", baseline.location),
                        new_values.unwrap_or(&ANYTHING),
                        &format!("{}/additionalProperties", current.location),
                        &path.map_values(),
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Tuples position by position (`prefixItems`, or draft-07's array `items`), then the rest.
    fn compare_arrays(
        &mut self,
        baseline: &Resolved,
        current: &Resolved,
        path: &FieldPath,
    ) -> Result<(), CompatError> {
        let (old, new) = (ArrayShape::of(baseline), ArrayShape::of(current));
        for index in 0..old.prefix.len().max(new.prefix.len()) {
            let (old_item, old_location) = old.at(index);
            let (new_item, new_location) = new.at(index);
            self.compare(old_item, &old_location, new_item, &new_location, &path.item(index))?;
        }
        if old.rest.is_some() || new.rest.is_some() {
            self.compare(
                old.rest.unwrap_or(&ANYTHING),
                &old.rest_location,
                new.rest.unwrap_or(&ANYTHING),
                &new.rest_location,
                &path.items(),
            )?;
        }
        Ok(())
    }
}

/// `node`'s branches (resolved, and split into values when `split_values`), or `None` when it
/// has none.
fn alternatives(
    resolver: &Resolver<'_>,
    node: &Resolved,
    split_values: bool,
) -> Result<Option<Vec<Resolved>>, CompatError> {
    let mut split = branches::combinator(&node.schema).is_some();
    let mut alternatives = Vec::new();
    flatten_branches(resolver, node, &mut vec![node.location.clone()], &mut alternatives)?;
    if split_values {
        let mut values = Vec::with_capacity(alternatives.len());
        for alternative in alternatives {
            match branches::value_branches(&alternative) {
                Some(each) => {
                    split = true;
                    values.extend(each);
                }
                None => values.push(alternative),
            }
        }
        alternatives = values;
    }
    Ok(split.then_some(alternatives))
}

/// Pushes `node`'s branches onto `out`, those of a branch that has branches of its own in its
/// place (`Option<Enum>` is an `anyOf` of the enum's `oneOf` and `null`: its variants and
/// `null`); `node` itself when it has none. `seen` keeps a self-referring `anyOf` from looping.
fn flatten_branches(
    resolver: &Resolver<'_>,
    node: &Resolved,
    seen: &mut Vec<String>,
    out: &mut Vec<Resolved>,
) -> Result<(), CompatError> {
    let Some(combinator) = branches::combinator(&node.schema) else {
        out.push(node.clone());
        return Ok(());
    };
    for (schema, location, reference) in branches::branch_schemas(node, combinator) {
        let mut branch = resolver.resolve(&schema, &location)?;
        branch.reference = reference.or(branch.reference);
        if branches::combinator(&branch.schema).is_some() && !seen.contains(&branch.location) {
            seen.push(branch.location.clone());
            flatten_branches(resolver, &branch, seen, out)?;
        } else {
            out.push(branch);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::compat::error::Side;

    /// (path, kind) of each finding between two documents' roots.
    fn walk(baseline: &Value, current: &Value) -> Vec<(String, ChangeKind)> {
        let mut walker =
            Walker::new(Resolver::new(baseline, Side::Baseline), Resolver::new(current, Side::Current));
        walker.compare(baseline, "#", current, "#", &FieldPath::root()).unwrap();
        walker.into_findings().into_iter().map(|finding| (finding.path, finding.kind)).collect()
    }

    #[test]
    fn recursion_unrolled_differently_on_each_side_ends() {
        // The baseline refers to itself at every level, the current one every other level.
        let baseline = json!({"$ref": "#/$defs/N", "$defs": {"N": {"type": "object", "properties": {
            "value": {"type": "string"}, "next": {"$ref": "#/$defs/N"}}}}});
        let current = json!({"$ref": "#/$defs/A", "$defs": {
            "A": {"type": "object", "properties": {"value": {"type": "string", "maxLength": 5},
                                                   "next": {"$ref": "#/$defs/B"}}},
            "B": {"type": "object", "properties": {"value": {"type": "string"},
                                                   "next": {"$ref": "#/$defs/A"}}}}});
        assert_eq!(walk(&baseline, &current), [("value".to_owned(), ChangeKind::ConstraintTightened)]);
        // The tightening is met again under `next.next`, where the pair (N, A) is already being
        // compared: it is reported once, at its first place.
    }

    #[test]
    fn mutual_recursion_through_branches_ends() {
        let expr = json!({"$ref": "#/$defs/Expr", "$defs": {
            "Expr": {"oneOf": [
                {"type": "object", "properties": {"type": {"const": "lit"}, "value": {"type": "integer"}},
                 "required": ["type", "value"]},
                {"type": "object", "properties": {"type": {"const": "sum"},
                                                  "terms": {"type": "array", "items": {"$ref": "#/$defs/Expr"}}},
                 "required": ["type", "terms"]}]}}});
        let mut narrower = expr.clone();
        narrower["$defs"]["Expr"]["oneOf"][1]["properties"]["terms"]["minItems"] = json!(2);
        assert_eq!(walk(&expr, &expr), []);
        assert_eq!(walk(&expr, &narrower), [("terms".to_owned(), ChangeKind::ConstraintTightened)]);
    }

    #[test]
    fn draft_07_tuples_and_maps() {
        let baseline = json!({"type": "object", "properties": {
            "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}}}});
        let current = json!({"type": "object", "properties": {
            "pair": {"type": "array", "items": [{"type": "string"}, {"type": "number"}], "additionalItems": false},
            "counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}}});
        // Properties come in the order of serde_json's map (sorted, unless `preserve_order`).
        let mut found = walk(&baseline, &current);
        found.sort();
        assert_eq!(
            found,
            [
                ("counts.*".to_owned(), ChangeKind::ConstraintTightened),
                ("pair[1]".to_owned(), ChangeKind::TypeWidened),
                ("pair[]".to_owned(), ChangeKind::TypeNarrowed),
            ]
        );
    }

    #[test]
    fn an_optional_enum_pairs_with_the_enum_variant_by_variant() {
        let defs = json!({"Payment": {"oneOf": [
            {"type": "object", "properties": {"type": {"const": "cash"}}, "required": ["type"]},
            {"type": "object", "properties": {"type": {"const": "card"}, "number": {"type": "string"}},
             "required": ["type", "number"]}]}});
        let required = json!({"$ref": "#/$defs/Payment", "$defs": defs});
        let optional = json!({"anyOf": [{"$ref": "#/$defs/Payment"}, {"type": "null"}], "$defs": defs});
        assert_eq!(walk(&required, &optional), [(String::new(), ChangeKind::TypeWidened)]);
        // An `anyOf` that refers to itself is flattened once.
        let looping = json!({"$ref": "#/$defs/L", "$defs": {"L": {"anyOf": [{"$ref": "#/$defs/L"}, {"type": "string"}]}}});
        assert_eq!(walk(&looping, &looping), []);
    }

    #[test]
    fn an_enum_against_a_plain_string_is_a_constraint() {
        let string = json!({"type": "string"});
        let choice = json!({"type": "string", "enum": ["a", "b"]});
        assert_eq!(walk(&string, &choice), [(String::new(), ChangeKind::ConstraintTightened)]);
        assert_eq!(walk(&choice, &string), [(String::new(), ChangeKind::ConstraintLoosened)]);
        // Against single values as branches, each value is a variant.
        let one_of = json!({"oneOf": [{"type": "string", "const": "a"}, {"type": "string", "const": "c"}]});
        assert_eq!(
            walk(&choice, &one_of),
            [(String::new(), ChangeKind::VariantRemoved), (String::new(), ChangeKind::VariantAdded)]
        );
    }
}
