//! The result of a comparison: per message, each change with its two verdicts, as text for a
//! person ([`Display`](std::fmt::Display)) or JSON for tools ([`Serialize`]).

use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// Whether a change breaks one side of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every body that side could meet before is still fine.
    Compatible,
    /// Some body becomes invalid for that side (see the [module docs](super) for which bodies).
    Breaking,
}

impl Verdict {
    /// Whether this is [`Verdict::Breaking`].
    pub fn is_breaking(self) -> bool {
        self == Verdict::Breaking
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Compatible => "compatible",
            Verdict::Breaking => "breaking",
        })
    }
}

/// What a service does with a message, from the operations of its AsyncAPI document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The service publishes it: the producers verdict gates.
    Send,
    /// The service handles it: the consumers verdict gates.
    Receive,
}

/// What kind of change was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The message (its media type) is gone.
    MediaTypeRemoved,
    /// A new message.
    MediaTypeAdded,
    /// The message's `contentType` changed.
    ContentTypeChanged,
    /// A property is no longer declared.
    FieldRemoved,
    /// A new property.
    FieldAdded,
    /// A required property removed and one with the same schema added.
    FieldRenamed,
    /// An optional property became required.
    BecameRequired,
    /// A required property became optional.
    BecameOptional,
    /// Fewer JSON types accepted (e.g. `null` no longer, `number` -> `integer`).
    TypeNarrowed,
    /// More JSON types accepted.
    TypeWidened,
    /// Other JSON types (neither set contains the other, e.g. `string` -> `integer`).
    TypeChanged,
    /// A constraint admits fewer values (a bound, `pattern`, `format`, `const`, ...).
    ConstraintTightened,
    /// A constraint admits more values.
    ConstraintLoosened,
    /// A constraint changed in a way that cannot be ordered (e.g. a different `pattern`).
    ConstraintChanged,
    /// An `enum` value or a `oneOf`/`anyOf` branch (an enum's variant) is gone.
    VariantRemoved,
    /// A new `enum` value or `oneOf`/`anyOf` branch.
    VariantAdded,
}

/// One change to one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Where, in wire names: `lines[].quantity` (`[]` array items, `[0]` a tuple's first item, `*`
    /// a map's values); empty for the message itself.
    pub path: String,
    /// What kind of change.
    pub kind: ChangeKind,
    /// What changed, e.g. "`maxLength` 100 -> 50".
    pub description: String,
    /// For a consumer on the current schema reading bodies from producers on the baseline.
    pub consumers: Verdict,
    /// For consumers on the baseline reading bodies from a producer on the current schema.
    pub producers: Verdict,
    /// Whether this change fails the check: breaking for a role the message has (both roles
    /// when it has none).
    pub gates: bool,
}

impl Change {
    /// Breaking for some side, whether or not that side gates.
    pub fn is_breaking_for_anyone(&self) -> bool {
        self.consumers.is_breaking() || self.producers.is_breaking()
    }
}

/// How a message fared between the two inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// In both, no change found.
    Unchanged,
    /// In both, with changes.
    Changed,
    /// Only in the current input.
    Added,
    /// Only in the baseline.
    Removed,
}

/// The changes to one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageReport {
    /// Its media type (the AsyncAPI message's `name`, or a bare schema's
    /// `properties.mediaType.const` or `title`).
    pub media_type: String,
    /// Its roles in the current input (the baseline's when removed); empty for a bare schema or
    /// a message no operation uses: then both verdicts gate.
    pub roles: Vec<Role>,
    /// Added, removed, changed or unchanged.
    pub status: MessageStatus,
    /// Its changes, in the order found.
    pub changes: Vec<Change>,
}

impl MessageReport {
    /// Whether some change gates.
    pub fn is_breaking(&self) -> bool {
        self.changes.iter().any(|change| change.gates)
    }

    /// Whether the consumers verdict gates for this message.
    pub fn consumers_gate(&self) -> bool {
        self.roles.is_empty() || self.roles.contains(&Role::Receive)
    }

    /// Whether the producers verdict gates for this message.
    pub fn producers_gate(&self) -> bool {
        self.roles.is_empty() || self.roles.contains(&Role::Send)
    }
}

/// Counts of the changes of a [`Report`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    /// Changes that gate.
    pub breaking: usize,
    /// Changes that do not gate (including those below).
    pub compatible: usize,
    /// Of the `compatible` ones, those breaking only for a role the message does not have.
    pub breaking_for_other_roles: usize,
}

/// The comparison of two documents: per message, sorted by media type.
///
/// Its [`Display`](fmt::Display) is the text for a person; its [`Serialize`] the JSON for tools:
/// `{"breaking": bool, "summary": {...}, "messages": [{"media_type", "roles", "status",
/// "changes": [{"path", "kind", "description", "consumers", "producers", "gates"}]}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One entry a media type found in either input, sorted by media type.
    pub messages: Vec<MessageReport>,
}

impl Report {
    /// Whether some change gates: the check fails (exit status 1).
    pub fn is_breaking(&self) -> bool {
        self.messages.iter().any(MessageReport::is_breaking)
    }

    /// The counts of changes.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for change in self.messages.iter().flat_map(|message| &message.changes) {
            if change.gates {
                summary.breaking += 1;
            } else {
                summary.compatible += 1;
                if change.is_breaking_for_anyone() {
                    summary.breaking_for_other_roles += 1;
                }
            }
        }
        summary
    }
}

impl Serialize for Report {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut report = serializer.serialize_struct("Report", 3)?;
        report.serialize_field("breaking", &self.is_breaking())?;
        report.serialize_field("summary", &self.summary())?;
        report.serialize_field("messages", &self.messages)?;
        report.end()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for message in &self.messages {
            write!(f, "{}", message)?;
        }
        let summary = self.summary();
        write!(f, "{} breaking, {} compatible", summary.breaking, summary.compatible)?;
        if summary.breaking_for_other_roles > 0 {
            write!(
                f,
                " ({} of them breaking only for a role the service does not have)",
                summary.breaking_for_other_roles
            )?;
        }
        writeln!(f)?;
        if summary.breaking > 0 {
            writeln!(
                f,
                "Breaking changes fail the check: make them in compatible steps (add a field as optional \
                 first, loosen before tightening, stop sending before removing), or publish the new shape \
                 under a new media type."
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for MessageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roles = match (self.roles.contains(&Role::Send), self.roles.contains(&Role::Receive)) {
            (true, true) => "sent and received: both verdicts gate",
            (true, false) => "sent: the producers verdict gates",
            (false, true) => "received: the consumers verdict gates",
            (false, false) => "no role: both verdicts gate",
        };
        let status = match self.status {
            MessageStatus::Unchanged => "unchanged",
            MessageStatus::Changed => "changed",
            MessageStatus::Added => "added",
            MessageStatus::Removed => "removed",
        };
        writeln!(f, "{} ({status}; {roles})", self.media_type)?;
        for change in &self.changes {
            let label = if change.gates { "BREAKING  " } else { "compatible" };
            let path = if change.path.is_empty() { "(message)" } else { &change.path };
            writeln!(f, "  {label} {path}: {} [{}]", change.description, kind_name(change.kind))?;
            writeln!(
                f,
                "             consumers: {}{}, producers: {}{}",
                change.consumers,
                role_note(change.consumers, self.consumers_gate(), "sends"),
                change.producers,
                role_note(change.producers, self.producers_gate(), "receives"),
            )?;
        }
        Ok(())
    }
}

/// Why a breaking verdict does not gate: the service only `does` ("sends", "receives") it.
fn role_note(verdict: Verdict, gates: bool, does: &str) -> String {
    if verdict.is_breaking() && !gates {
        format!(" (not gating: this service only {does} it)")
    } else {
        String::new()
    }
}

/// The kind's JSON name with spaces: "constraint tightened".
fn kind_name(kind: ChangeKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|value| value.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}
