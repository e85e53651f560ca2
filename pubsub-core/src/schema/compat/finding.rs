//! A change as the walker finds it: where, what, and its two verdicts (before roles decide
//! whether it gates).

use super::report::{ChangeKind, Verdict};

/// One change found in a message's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) path: String,
    pub(crate) kind: ChangeKind,
    pub(crate) description: String,
    pub(crate) consumers: Verdict,
    pub(crate) producers: Verdict,
}

impl Finding {
    pub(crate) fn new(
        path: &str,
        kind: ChangeKind,
        description: impl Into<String>,
        consumers: Verdict,
        producers: Verdict,
    ) -> Self {
        Finding { path: path.to_owned(), kind, description: description.into(), consumers, producers }
    }

    /// The current schema accepts fewer bodies: breaks consumers on it reading old bodies.
    pub(crate) fn narrows(path: &str, kind: ChangeKind, description: impl Into<String>) -> Self {
        Finding::new(path, kind, description, Verdict::Breaking, Verdict::Compatible)
    }

    /// The current schema accepts more bodies: breaks old consumers reading new bodies.
    pub(crate) fn widens(path: &str, kind: ChangeKind, description: impl Into<String>) -> Self {
        Finding::new(path, kind, description, Verdict::Compatible, Verdict::Breaking)
    }

    /// Neither set of bodies contains the other.
    pub(crate) fn breaks_both(path: &str, kind: ChangeKind, description: impl Into<String>) -> Self {
        Finding::new(path, kind, description, Verdict::Breaking, Verdict::Breaking)
    }
}
