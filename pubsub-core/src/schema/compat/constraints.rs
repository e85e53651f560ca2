//! The value constraints of one schema against another: bounds, `multipleOf`, `pattern`,
//! `format`, `uniqueItems`, `const`/`enum` and `additionalProperties: false`.

use serde_json::{Map, Value};

use super::finding::Finding;
use super::report::ChangeKind;

type Schema = Map<String, Value>;

/// Pushes a finding for each constraint of `current` that differs from `baseline`'s.
pub(crate) fn compare(baseline: &Schema, current: &Schema, path: &str, findings: &mut Vec<Finding>) {
    for keyword in ["minLength", "minItems", "minProperties"] {
        compare_bounds(
            bound(baseline, keyword, None),
            bound(current, keyword, None),
            Side::Lower,
            path,
            findings,
        );
    }
    for keyword in ["maxLength", "maxItems", "maxProperties"] {
        compare_bounds(
            bound(baseline, keyword, None),
            bound(current, keyword, None),
            Side::Upper,
            path,
            findings,
        );
    }
    compare_bounds(
        bound(baseline, "minimum", Some("exclusiveMinimum")),
        bound(current, "minimum", Some("exclusiveMinimum")),
        Side::Lower,
        path,
        findings,
    );
    compare_bounds(
        bound(baseline, "maximum", Some("exclusiveMaximum")),
        bound(current, "maximum", Some("exclusiveMaximum")),
        Side::Upper,
        path,
        findings,
    );
    compare_multiple_of(baseline, current, path, findings);
    compare_pattern(baseline, current, path, findings);
    compare_format(baseline, current, path, findings);
    let unique = |schema: &Schema| schema.get("uniqueItems") == Some(&Value::Bool(true));
    match (unique(baseline), unique(current)) {
        (false, true) => {
            findings.push(Finding::narrows(path, ChangeKind::ConstraintTightened, "`uniqueItems` added"))
        }
        (true, false) => {
            findings.push(Finding::widens(path, ChangeKind::ConstraintLoosened, "`uniqueItems` removed"))
        }
        _ => {}
    }
    compare_values(allowed_values(baseline), allowed_values(current), path, findings);
    compare_unanalysed(baseline, current, path, findings);
}

/// Keywords that constrain values but are not analysed: a change to one is assumed to break
/// both sides, so that the check errs on the safe side.
const UNANALYSED: &[&str] = &[
    "not",
    "if",
    "then",
    "else",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "patternProperties",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedProperties",
    "unevaluatedItems",
];

fn compare_unanalysed(baseline: &Schema, current: &Schema, path: &str, findings: &mut Vec<Finding>) {
    for keyword in UNANALYSED {
        let (before, after) = (baseline.get(*keyword), current.get(*keyword));
        if before != after {
            let change = match (before, after) {
                (None, _) => "added",
                (_, None) => "removed",
                _ => "changed",
            };
            findings.push(Finding::breaks_both(
                path,
                ChangeKind::ConstraintChanged,
                format!("`{keyword}` {change} (not analysed: assumed breaking both ways; check it by hand)"),
            ));
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Lower,
    Upper,
}

/// A bound: its value, whether it is exclusive, and the keyword that set it.
#[derive(Debug, Clone, PartialEq)]
struct Bound {
    value: f64,
    exclusive: bool,
    text: String,
}

/// The tightest bound of `inclusive` and `exclusive` (e.g. `minimum` and `exclusiveMinimum`).
fn bound(schema: &Schema, inclusive: &str, exclusive: Option<&str>) -> Option<Bound> {
    let mut inclusive_bound = schema.get(inclusive).and_then(|value| {
        Some(Bound { value: value.as_f64()?, exclusive: false, text: format!("`{inclusive}` {value}") })
    });
    let Some(exclusive) = exclusive else { return inclusive_bound };
    match schema.get(exclusive) {
        // Draft 4: a boolean that makes `minimum`/`maximum` exclusive.
        Some(Value::Bool(true)) => {
            if let Some(bound) = inclusive_bound.as_mut() {
                bound.exclusive = true;
                bound.text = format!("{} (exclusive)", bound.text);
            }
            inclusive_bound
        }
        Some(value @ Value::Number(number)) => {
            let exclusive_bound = Bound {
                value: number.as_f64().unwrap_or_default(),
                exclusive: true,
                text: format!("`{exclusive}` {value}"),
            };
            // Both given: the tighter one decides.
            match inclusive_bound {
                Some(inclusive_bound) => {
                    let upper = exclusive.contains("Max");
                    let exclusive_is_tighter = if upper {
                        exclusive_bound.value <= inclusive_bound.value
                    } else {
                        exclusive_bound.value >= inclusive_bound.value
                    };
                    Some(if exclusive_is_tighter { exclusive_bound } else { inclusive_bound })
                }
                None => Some(exclusive_bound),
            }
        }
        _ => inclusive_bound,
    }
}

/// Whether `current` admits fewer values than `baseline` (`Some(true)`), more (`Some(false)`),
/// or the same (`None`).
fn tighter(baseline: &Bound, current: &Bound, side: Side) -> Option<bool> {
    if baseline.value == current.value {
        return (baseline.exclusive != current.exclusive).then_some(current.exclusive);
    }
    Some(match side {
        Side::Lower => current.value > baseline.value,
        Side::Upper => current.value < baseline.value,
    })
}

fn compare_bounds(
    baseline: Option<Bound>,
    current: Option<Bound>,
    side: Side,
    path: &str,
    findings: &mut Vec<Finding>,
) {
    match (baseline, current) {
        (None, Some(current)) => findings.push(Finding::narrows(
            path,
            ChangeKind::ConstraintTightened,
            format!("{} added", current.text),
        )),
        (Some(baseline), None) => findings.push(Finding::widens(
            path,
            ChangeKind::ConstraintLoosened,
            format!("{} removed", baseline.text),
        )),
        (Some(baseline), Some(current)) => {
            let description = || match current.text.split_once(' ') {
                // Same keyword: "`maxLength` 100 -> 50".
                Some((keyword, value)) if baseline.text.starts_with(&format!("{keyword} ")) => {
                    format!("{} -> {value}", baseline.text)
                }
                _ => format!("{} -> {}", baseline.text, current.text),
            };
            match tighter(&baseline, &current, side) {
                Some(true) => {
                    findings.push(Finding::narrows(path, ChangeKind::ConstraintTightened, description()))
                }
                Some(false) => {
                    findings.push(Finding::widens(path, ChangeKind::ConstraintLoosened, description()))
                }
                None => {}
            }
        }
        (None, None) => {}
    }
}

/// Pushes the finding for `keyword` present on one side only (added tightens, removed loosens);
/// returns both values when both sides have it and they differ.
fn added_or_removed<'v>(
    keyword: &str,
    baseline: Option<&'v Value>,
    current: Option<&'v Value>,
    path: &str,
    findings: &mut Vec<Finding>,
) -> Option<(&'v Value, &'v Value)> {
    match (baseline, current) {
        (None, Some(current)) => {
            let description = format!("`{keyword}` {current} added");
            findings.push(Finding::narrows(path, ChangeKind::ConstraintTightened, description));
            None
        }
        (Some(baseline), None) => {
            let description = format!("`{keyword}` {baseline} removed");
            findings.push(Finding::widens(path, ChangeKind::ConstraintLoosened, description));
            None
        }
        (Some(baseline), Some(current)) if baseline != current => Some((baseline, current)),
        _ => None,
    }
}

fn compare_multiple_of(baseline: &Schema, current: &Schema, path: &str, findings: &mut Vec<Finding>) {
    let (before, after) = (baseline.get("multipleOf"), current.get("multipleOf"));
    let Some((before, after)) = added_or_removed("multipleOf", before, after, path, findings) else { return };
    let description = format!("`multipleOf` {before} -> {after}");
    let (Some(before), Some(after)) = (before.as_f64(), after.as_f64()) else {
        findings.push(Finding::breaks_both(path, ChangeKind::ConstraintChanged, description));
        return;
    };
    let divides = |divisor: f64, multiple: f64| {
        let ratio = multiple / divisor;
        (ratio - ratio.round()).abs() < 1e-9
    };
    // Multiples of 10 are multiples of 5: 5 -> 10 admits fewer values.
    findings.push(if divides(before, after) {
        Finding::narrows(path, ChangeKind::ConstraintTightened, description)
    } else if divides(after, before) {
        Finding::widens(path, ChangeKind::ConstraintLoosened, description)
    } else {
        Finding::breaks_both(path, ChangeKind::ConstraintChanged, description)
    });
}

fn compare_pattern(baseline: &Schema, current: &Schema, path: &str, findings: &mut Vec<Finding>) {
    let (before, after) = (baseline.get("pattern"), current.get("pattern"));
    if let Some((before, after)) = added_or_removed("pattern", before, after, path, findings) {
        // Regular expressions cannot be ordered by the strings they match: assume the worst.
        findings.push(Finding::breaks_both(
            path,
            ChangeKind::ConstraintChanged,
            format!(
                "`pattern` {before} -> {after} (patterns cannot be compared: assumed breaking both ways)"
            ),
        ));
    }
}

/// The values a numeric `format` admits (schemars writes them for Rust's integer and float types).
fn format_range(format: &str) -> Option<(f64, f64)> {
    Some(match format {
        "int8" => (i8::MIN as f64, i8::MAX as f64),
        "int16" => (i16::MIN as f64, i16::MAX as f64),
        "int32" => (i32::MIN as f64, i32::MAX as f64),
        "int64" | "int" => (i64::MIN as f64, i64::MAX as f64),
        "uint8" => (0.0, u8::MAX as f64),
        "uint16" => (0.0, u16::MAX as f64),
        "uint32" => (0.0, u32::MAX as f64),
        "uint64" | "uint" => (0.0, u64::MAX as f64),
        "float" => (f32::MIN as f64, f32::MAX as f64),
        "double" => (f64::MIN, f64::MAX),
        _ => return None,
    })
}

fn compare_format(baseline: &Schema, current: &Schema, path: &str, findings: &mut Vec<Finding>) {
    let (before, after) = (baseline.get("format"), current.get("format"));
    let Some((before, after)) = added_or_removed("format", before, after, path, findings) else { return };
    let description = format!("`format` {before} -> {after}");
    let ranges = (before.as_str().and_then(format_range), after.as_str().and_then(format_range));
    findings.push(match ranges {
        (Some((old_low, old_high)), Some((low, high))) if old_low <= low && high <= old_high => {
            Finding::narrows(path, ChangeKind::ConstraintTightened, description)
        }
        (Some((old_low, old_high)), Some((low, high))) if low <= old_low && old_high <= high => {
            Finding::widens(path, ChangeKind::ConstraintLoosened, description)
        }
        _ => Finding::breaks_both(path, ChangeKind::ConstraintChanged, description),
    });
}

/// The values `const` or `enum` allow; `None` when any value of the type is allowed.
fn allowed_values(schema: &Schema) -> Option<Vec<Value>> {
    match (schema.get("const"), schema.get("enum")) {
        (Some(value), _) => Some(vec![value.clone()]),
        (None, Some(Value::Array(values))) => Some(values.clone()),
        _ => None,
    }
}

fn compare_values(
    baseline: Option<Vec<Value>>,
    current: Option<Vec<Value>>,
    path: &str,
    findings: &mut Vec<Finding>,
) {
    let list = |values: &[Value]| values.iter().map(Value::to_string).collect::<Vec<_>>().join(", ");
    match (baseline, current) {
        (None, Some(current)) => findings.push(Finding::narrows(
            path,
            ChangeKind::ConstraintTightened,
            format!("only {} allowed now (`const`/`enum` added)", list(&current)),
        )),
        (Some(baseline), None) => findings.push(Finding::widens(
            path,
            ChangeKind::ConstraintLoosened,
            format!("no longer limited to {} (`const`/`enum` removed)", list(&baseline)),
        )),
        (Some(baseline), Some(current)) => {
            let removed: Vec<Value> =
                baseline.iter().filter(|value| !current.contains(value)).cloned().collect();
            let added: Vec<Value> =
                current.iter().filter(|value| !baseline.contains(value)).cloned().collect();
            if !removed.is_empty() {
                findings.push(Finding::narrows(
                    path,
                    ChangeKind::VariantRemoved,
                    format!("value {} removed", list(&removed)),
                ));
            }
            if !added.is_empty() {
                findings.push(Finding::widens(
                    path,
                    ChangeKind::VariantAdded,
                    format!("value {} added", list(&added)),
                ));
            }
        }
        (None, None) => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::compat::report::Verdict;

    fn findings(baseline: Value, current: Value) -> Vec<(ChangeKind, String, Verdict, Verdict)> {
        let mut findings = Vec::new();
        compare(baseline.as_object().unwrap(), current.as_object().unwrap(), "x", &mut findings);
        findings.into_iter().map(|f| (f.kind, f.description, f.consumers, f.producers)).collect()
    }

    use ChangeKind::*;
    use Verdict::*;

    #[test]
    fn bounds_tightened_and_loosened() {
        assert_eq!(
            findings(json!({"maxLength": 100}), json!({"maxLength": 50})),
            [(ConstraintTightened, "`maxLength` 100 -> 50".to_owned(), Breaking, Compatible)]
        );
        assert_eq!(
            findings(json!({"minLength": 1}), json!({})),
            [(ConstraintLoosened, "`minLength` 1 removed".to_owned(), Compatible, Breaking)]
        );
        assert_eq!(
            findings(json!({}), json!({"minItems": 2})),
            [(ConstraintTightened, "`minItems` 2 added".to_owned(), Breaking, Compatible)]
        );
        assert!(findings(json!({"maximum": 10}), json!({"maximum": 10})).is_empty());
    }

    #[test]
    fn exclusive_bounds_are_tighter_at_the_same_value() {
        assert_eq!(
            findings(json!({"minimum": 0}), json!({"exclusiveMinimum": 0})),
            [(ConstraintTightened, "`minimum` 0 -> `exclusiveMinimum` 0".to_owned(), Breaking, Compatible)]
        );
        assert_eq!(
            findings(json!({"exclusiveMaximum": 10}), json!({"maximum": 10}))[0].0,
            ConstraintLoosened
        );
        assert_eq!(findings(json!({"minimum": 1}), json!({"minimum": 1, "exclusiveMinimum": 0})), []);
    }

    #[test]
    fn multiple_of_orders_by_divisibility() {
        assert_eq!(findings(json!({"multipleOf": 5}), json!({"multipleOf": 10}))[0].0, ConstraintTightened);
        assert_eq!(findings(json!({"multipleOf": 10}), json!({"multipleOf": 5}))[0].0, ConstraintLoosened);
        assert_eq!(findings(json!({"multipleOf": 3}), json!({"multipleOf": 5}))[0].0, ConstraintChanged);
    }

    #[test]
    fn patterns_cannot_be_ordered() {
        let changed = findings(json!({"pattern": "^a"}), json!({"pattern": "^b"}));
        assert_eq!(changed[0].0, ConstraintChanged);
        assert_eq!((changed[0].2, changed[0].3), (Breaking, Breaking));
        assert_eq!(findings(json!({}), json!({"pattern": "^a"}))[0].0, ConstraintTightened);
    }

    #[test]
    fn numeric_formats_by_range_others_by_name() {
        assert_eq!(
            findings(json!({"format": "uint8"}), json!({"format": "uint16"}))[0].0,
            ConstraintLoosened
        );
        assert_eq!(
            findings(json!({"format": "int64"}), json!({"format": "int32"}))[0].0,
            ConstraintTightened
        );
        assert_eq!(findings(json!({"format": "int32"}), json!({"format": "uint32"}))[0].0, ConstraintChanged);
        assert_eq!(findings(json!({}), json!({"format": "email"}))[0].0, ConstraintTightened);
        assert_eq!(findings(json!({"format": "email"}), json!({"format": "uri"}))[0].0, ConstraintChanged);
    }

    #[test]
    fn unanalysed_keywords_break_both_when_changed() {
        let found = findings(json!({"not": {"type": "null"}}), json!({}));
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].0, found[0].2, found[0].3), (ConstraintChanged, Breaking, Breaking));
        assert!(found[0].1.starts_with("`not` removed"), "{}", found[0].1);
        assert!(findings(json!({"contains": {"type": "integer"}}), json!({"contains": {"type": "integer"}}))
            .is_empty());
    }

    #[test]
    fn values_removed_and_added() {
        let found = findings(json!({"enum": ["a", "b"]}), json!({"enum": ["a", "c"]}));
        assert_eq!(
            found,
            [
                (VariantRemoved, "value \"b\" removed".to_owned(), Breaking, Compatible),
                (VariantAdded, "value \"c\" added".to_owned(), Compatible, Breaking)
            ]
        );
        assert_eq!(findings(json!({}), json!({"const": 1}))[0].0, ConstraintTightened);
        assert_eq!(findings(json!({"uniqueItems": true}), json!({}))[0].0, ConstraintLoosened);
    }
}
