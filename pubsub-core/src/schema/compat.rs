//! Schema compatibility: which changes between two versions of a service's messages break
//! whom. Behind `pubsub schema check --baseline OLD.json --current NEW.json`.
//!
//! [`compare`] takes two inputs, each either an AsyncAPI 3 document (a service's messages with
//! their roles) or the JSON Schema of one message, matches their messages by media type, walks
//! both schemas together and reports each change with two verdicts.
//!
//! # The two verdicts
//!
//! - **consumers**: a consumer built on the CURRENT schema reading messages from producers
//!   still on the BASELINE. Breaking when some body valid under the baseline is invalid under
//!   the current schema (the current schema accepts fewer bodies: a new required field, a type
//!   narrowed, a constraint tightened, an enum variant removed).
//! - **producers**: messages written by a producer on the CURRENT schema, read by consumers
//!   still on the BASELINE. Breaking when some body valid under the current schema is invalid
//!   under the baseline (it accepts more: a required field removed or made optional, a type
//!   widened, a constraint loosened, a variant added).
//!
//! Some changes break both: a renamed field (a required field removed and one with the same
//! schema added), a type changed to an unrelated one, a `pattern` changed (patterns cannot be
//! compared), a removed media type.
//!
//! Bodies are the ones each side's code writes: a field the schema no longer declares is
//! assumed absent, so an optional field added or removed is compatible both ways, as unknown
//! fields are ignored. A schema that sets `additionalProperties: false` does reject them: then
//! an added field breaks producers, and a removed one consumers.
//!
//! # Which verdict gates
//!
//! A message's roles come from its AsyncAPI operations: a service that **receives** it is a
//! consumer (the consumers verdict gates), one that **sends** it a producer (the producers
//! verdict gates); both roles, no role, or a bare schema: both gate. A change breaking only for
//! a role the message does not have is reported, marked as not gating. [`Report::is_breaking`]
//! is whether some change gates: the check's exit status.
//!
//! # What is compared
//!
//! Per message: its `contentType`, then its payload schema, then its headers schema (paths under
//! `(headers)`), recursively: `type` (with `integer` a part of `number`), bounds (`minLength`,
//! `maximum`, `exclusiveMinimum`, ...), `multipleOf`, `pattern`, `format` (integer and float
//! formats by range), `uniqueItems`, `const`/`enum`, properties and `required`,
//! `additionalProperties` (closed objects, map values), array items (`items`, `prefixItems`),
//! `anyOf`/`oneOf` branches paired by their tag (internally, adjacently and externally tagged
//! enums), `$ref` or type (untagged), and `allOf` (merged). A change to a keyword that is not
//! analysed (`not`, `if`, `patternProperties`, `contains`, ...) is reported as breaking both ways.
//! Annotations (`description`, `title`, `default`, `examples`) are not compared.
//!
//! `$ref`s are followed anywhere in a document (`#/...` JSON Pointers, `~0`/`~1` escapes); a
//! recursive type is not followed round again while the same pair of locations is being compared
//! further up. Paths are in wire names: `lines[].quantity` (`[]` the items of an array, `[0]` a
//! tuple's first, `*` a map's values; empty for the message itself).
//!
//! ```
//! use pubsub_core::schema::compat::{compare, ChangeKind, Verdict};
//! use serde_json::json;
//!
//! let baseline = json!({
//!     "title": "Order", "type": "object",
//!     "properties": {"id": {"type": "string", "maxLength": 100}, "note": {"type": "string"}},
//!     "required": ["id"],
//! });
//! let current = json!({
//!     "title": "Order", "type": "object",
//!     "properties": {"id": {"type": "string", "maxLength": 50}, "note": {"type": "string"}},
//!     "required": ["id", "note"],
//! });
//! let report = compare(&baseline, &current)?;
//! let changes = &report.messages[0].changes;
//! assert_eq!(changes[0].path, "id");
//! assert_eq!(changes[0].kind, ChangeKind::ConstraintTightened);
//! assert_eq!(changes[0].description, "`maxLength` 100 -> 50");
//! assert_eq!((changes[0].consumers, changes[0].producers), (Verdict::Breaking, Verdict::Compatible));
//! assert_eq!(changes[1].kind, ChangeKind::BecameRequired);
//! // A bare schema has no role: both verdicts gate.
//! assert!(report.is_breaking());
//! assert!(report.to_string().ends_with(
//!     "2 breaking, 0 compatible\nBreaking changes fail the check: make them in compatible steps \
//!      (add a field as optional first, loosen before tightening, stop sending before removing), \
//!      or publish the new shape under a new media type.\n"));
//! # Ok::<(), pubsub_core::schema::compat::CompatError>(())
//! ```

mod branches;
mod constraints;
mod document;
mod error;
mod finding;
mod path;
mod report;
mod resolve;
mod shapes;
mod types;
mod walk;

use std::collections::BTreeSet;

use serde_json::Value;

pub use self::error::{CompatError, Side};
use self::finding::Finding;
pub use self::report::{Change, ChangeKind, MessageReport, MessageStatus, Report, Role, Summary, Verdict};
use self::resolve::Resolver;
use self::walk::{FieldPath, Walker};

/// Compares the `baseline` document (or schema) with the `current` one: per media type, each
/// change and whether it breaks consumers and producers (see the [module docs](self)).
///
/// Two documents: every media type in either. Two schemas: the message of each (of different
/// names, one is removed and the other added). A schema against a document: that schema's
/// message only, with its roles from the document.
///
/// Fails when an input is neither an AsyncAPI 3 document nor a JSON Schema, when a bare schema
/// has no name, or on a `$ref` that cannot be followed.
///
/// ```
/// use pubsub_core::schema::compat::{compare, ChangeKind, Verdict};
/// use serde_json::json;
///
/// // A received message (the service is its consumer) whose `note` became required.
/// let document = |required: serde_json::Value| json!({
///     "asyncapi": "3.0.0",
///     "channels": {"orders": {"address": "orders", "messages": {"Order": {"$ref": "#/components/messages/Order"}}}},
///     "operations": {"receiveOrder": {"action": "receive", "channel": {"$ref": "#/channels/orders"},
///                                     "messages": [{"$ref": "#/channels/orders/messages/Order"}]}},
///     "components": {"messages": {"Order": {"name": "application/vnd.acme.pubsub.order", "payload": {
///         "type": "object", "properties": {"note": {"type": "string"}}, "required": required}}}},
/// });
/// let report = compare(&document(json!([])), &document(json!(["note"])))?;
/// let change = &report.messages[0].changes[0];
/// assert_eq!((change.path.as_str(), change.kind), ("note", ChangeKind::BecameRequired));
/// // Orders from producers still on the baseline may lack it: this consumer breaks.
/// assert_eq!(change.consumers, Verdict::Breaking);
/// assert!(report.is_breaking());
/// // Read backwards, the same change breaks only producers, which this service is not.
/// assert!(!compare(&document(json!(["note"])), &document(json!([])))?.is_breaking());
/// # Ok::<(), pubsub_core::schema::compat::CompatError>(())
/// ```
pub fn compare(baseline: &Value, current: &Value) -> Result<Report, CompatError> {
    let baseline_resolver = Resolver::new(baseline, Side::Baseline);
    let current_resolver = Resolver::new(current, Side::Current);
    let old = document::messages(baseline, &baseline_resolver)?;
    let new = document::messages(current, &current_resolver)?;
    // A bare schema against a document: the check is about that one message only.
    let media_types: BTreeSet<&String> =
        match (document::is_asyncapi(baseline), document::is_asyncapi(current)) {
            (true, false) => new.keys().collect(),
            (false, true) => old.keys().collect(),
            _ => old.keys().chain(new.keys()).collect(),
        };
    let mut messages = Vec::with_capacity(media_types.len());
    for media_type in media_types {
        let report = match (old.get(media_type), new.get(media_type)) {
            (Some(old), None) => message_report(
                media_type,
                old.roles.clone(),
                MessageStatus::Removed,
                vec![Finding::breaks_both(
                    "",
                    ChangeKind::MediaTypeRemoved,
                    "media type removed: its messages are no longer written or read by this service",
                )],
            ),
            (None, Some(new)) => message_report(
                media_type,
                new.roles.clone(),
                MessageStatus::Added,
                vec![Finding::new(
                    "",
                    ChangeKind::MediaTypeAdded,
                    "media type added",
                    Verdict::Compatible,
                    Verdict::Compatible,
                )],
            ),
            (Some(old), Some(new)) => {
                let mut walker = Walker::new(baseline_resolver, current_resolver);
                if let (Some(before), Some(after)) = (&old.content_type, &new.content_type) {
                    if before != after {
                        walker.push(Finding::breaks_both(
                            "",
                            ChangeKind::ContentTypeChanged,
                            format!(
                                "`contentType` {before} -> {after}: the other side cannot decode the body"
                            ),
                        ));
                    }
                }
                walker.compare(
                    old.payload,
                    &old.payload_location,
                    new.payload,
                    &new.payload_location,
                    &FieldPath::root(),
                )?;
                if old.headers.is_some() || new.headers.is_some() {
                    let anything = Value::Bool(true);
                    let (old_headers, old_location) =
                        old.headers.clone().unwrap_or((&anything, String::new()));
                    let (new_headers, new_location) =
                        new.headers.clone().unwrap_or((&anything, String::new()));
                    walker.compare(
                        old_headers,
                        &old_location,
                        new_headers,
                        &new_location,
                        &FieldPath::headers(),
                    )?;
                }
                let findings = walker.into_findings();
                let status =
                    if findings.is_empty() { MessageStatus::Unchanged } else { MessageStatus::Changed };
                // The current roles decide, unless the current input is a bare schema.
                let roles = if new.roles.is_empty() { old.roles.clone() } else { new.roles.clone() };
                message_report(media_type, roles, status, findings)
            }
            (None, None) => unreachable!("every media type comes from one of the inputs"),
        };
        messages.push(report);
    }
    Ok(Report { messages })
}

/// A message's report: its findings, each marked as gating or not by the message's roles.
fn message_report(
    media_type: &str,
    roles: Vec<Role>,
    status: MessageStatus,
    findings: Vec<Finding>,
) -> MessageReport {
    let mut report = MessageReport { media_type: media_type.to_owned(), roles, status, changes: Vec::new() };
    let (consumers_gate, producers_gate) = (report.consumers_gate(), report.producers_gate());
    report.changes = findings
        .into_iter()
        .map(|finding| Change {
            gates: (finding.consumers.is_breaking() && consumers_gate)
                || (finding.producers.is_breaking() && producers_gate),
            path: finding.path,
            kind: finding.kind,
            description: finding.description,
            consumers: finding.consumers,
            producers: finding.producers,
        })
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn kinds(report: &Report) -> Vec<(String, ChangeKind)> {
        let changes = report.messages.iter().flat_map(|message| &message.changes);
        changes.map(|change| (change.path.clone(), change.kind)).collect()
    }

    #[test]
    fn option_written_as_a_type_array_or_an_any_of_is_the_same() {
        let type_array =
            json!({"title": "M", "type": "object", "properties": {"note": {"type": ["string", "null"]}}});
        let any_of = json!({"title": "M", "type": "object",
                            "properties": {"note": {"anyOf": [{"$ref": "#/$defs/Note"}, {"type": "null"}]}},
                            "$defs": {"Note": {"type": "string"}}});
        assert_eq!(kinds(&compare(&type_array, &any_of).unwrap()), []);
        assert_eq!(kinds(&compare(&any_of, &type_array).unwrap()), []);
    }

    #[test]
    fn headers_are_compared_under_their_own_path() {
        let document = |headers: Value| {
            json!({"asyncapi": "3.0.0", "components": {"messages": {"M": {"name": "application/vnd.m",
                   "headers": headers, "payload": {"type": "object"}}}}})
        };
        let baseline = document(json!({"type": "object", "properties": {"x-tenant": {"type": "string"}}}));
        let current = document(json!({"type": "object", "properties": {"x-tenant": {"type": "string"}},
                                      "required": ["x-tenant"]}));
        let report = compare(&baseline, &current).unwrap();
        assert_eq!(kinds(&report), [("(headers).x-tenant".to_owned(), ChangeKind::BecameRequired)]);
        // No operation uses the message: both verdicts gate.
        assert!(report.messages[0].roles.is_empty());
        assert!(report.is_breaking());
    }

    #[test]
    fn a_bare_schema_meets_its_asyncapi_message() {
        let bare = json!({"$ref": "#/$defs/Order",
                          "$defs": {"Order": {"title": "Order", "type": "object",
                                              "properties": {"mediaType": {"const": "application/vnd.order"},
                                                             "id": {"type": "string"}}}}});
        let document = json!({"asyncapi": "3.0.0",
            "channels": {"c": {"address": "c", "messages": {"Order": {"$ref": "#/components/messages/Order"}}}},
            "operations": {"send": {"action": "send", "channel": {"$ref": "#/channels/c"}}},
            "components": {"messages": {"Order": {"name": "application/vnd.order", "payload": {
                "type": "object", "properties": {"mediaType": {"const": "application/vnd.order"},
                                                 "id": {"type": "string", "minLength": 1}}}}}}});
        let report = compare(&bare, &document).unwrap();
        assert_eq!(report.messages.len(), 1, "{report}");
        assert_eq!(report.messages[0].roles, [Role::Send]);
        assert_eq!(kinds(&report), [("id".to_owned(), ChangeKind::ConstraintTightened)]);
        // Tightened: breaks consumers only, and this service only sends it.
        assert!(!report.is_breaking());
    }

    #[test]
    fn a_bare_schema_against_a_document_checks_that_message_only() {
        let document = json!({"asyncapi": "3.0.0", "components": {"messages": {
            "A": {"name": "application/vnd.a", "payload": {"type": "object"}},
            "B": {"name": "application/vnd.b", "payload": {"type": "object"}}}}});
        let bare = json!({"title": "application/vnd.a", "type": "object"});
        for report in [compare(&bare, &document).unwrap(), compare(&document, &bare).unwrap()] {
            let media_types: Vec<_> = report.messages.iter().map(|m| m.media_type.as_str()).collect();
            assert_eq!(media_types, ["application/vnd.a"]);
            assert_eq!(report.messages[0].status, MessageStatus::Unchanged);
        }
    }

    #[test]
    fn content_type_changes_break_both() {
        let document = |content_type: &str| {
            json!({"asyncapi": "3.0.0", "defaultContentType": content_type,
                   "components": {"messages": {"M": {"name": "application/vnd.m", "payload": {"type": "object"}}}}})
        };
        let report = compare(&document("application/json"), &document("application/avro")).unwrap();
        let change = &report.messages[0].changes[0];
        assert_eq!(change.kind, ChangeKind::ContentTypeChanged);
        assert_eq!((change.consumers, change.producers), (Verdict::Breaking, Verdict::Breaking));
    }
}
