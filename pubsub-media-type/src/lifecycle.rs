//! The lifecycle convention: `application/vnd.{organization}.pubsub._.{change}.{resource}`.

use std::fmt;

/// The organization a lifecycle media type names when none is given.
pub const DEFAULT_ORGANIZATION: &str = "globality";

/// What happened to the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// `created`: the body carries `uri`.
    Created,
    /// `changed`: the body carries `uri`, optionally `field_name` and `new_value`.
    Changed,
    /// `deleted`: the body carries `id`.
    Deleted,
}

impl Change {
    /// All changes, in the order they are documented.
    pub const ALL: [Change; 3] = [Change::Created, Change::Changed, Change::Deleted];

    /// The word as it stands in a media type.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Changed => "changed",
            Change::Deleted => "deleted",
        }
    }

    /// The change named by `word`, if any.
    pub fn from_word(word: &str) -> Option<Change> {
        Change::ALL.into_iter().find(|c| c.as_str() == word)
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a lifecycle name cannot make a media type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleNameError {
    /// The name is empty.
    #[error("the {what} name is empty: give a name such as `{example}`")]
    Empty {
        /// `resource` or `organization`.
        what: &'static str,
        /// A name that would do.
        example: &'static str,
    },
    /// The name has a character a media type segment cannot hold.
    #[error("the {what} name `{name}` contains `{ch}`; use letters, digits, `_` and `-` only (it becomes one segment of the media type)")]
    BadChar {
        /// `resource` or `organization`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// The offending character.
        ch: char,
    },
}

impl LifecycleNameError {
    /// `resource` or `organization`: which name is at fault.
    pub fn what(&self) -> &'static str {
        match self {
            LifecycleNameError::Empty { what, .. } | LifecycleNameError::BadChar { what, .. } => what,
        }
    }
}

/// A media type that follows the lifecycle convention.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lifecycle {
    /// What happened.
    pub change: Change,
    /// The resource, in snake_case (`BatchMessage` becomes `batch_message`).
    pub resource: String,
    /// The organization segment, `globality` by default.
    pub organization: String,
    /// A public message drops the `._` segment.
    pub public: bool,
}

impl Lifecycle {
    /// A private lifecycle media type of the default organization; `resource` is snake-cased.
    pub fn new(change: Change, resource: &str) -> Lifecycle {
        Lifecycle {
            change,
            resource: to_snake_case(resource),
            organization: DEFAULT_ORGANIZATION.to_owned(),
            public: false,
        }
    }

    /// Checks that `resource` and `organization` can each stand as one media type segment.
    pub fn check_names(resource: &str, organization: &str) -> Result<(), LifecycleNameError> {
        check_name("resource", "Order", resource)?;
        check_name("organization", DEFAULT_ORGANIZATION, organization)
    }

    /// The media type text, e.g. `application/vnd.globality.pubsub._.created.order`.
    pub fn media_type(&self) -> String {
        let visibility = if self.public { "" } else { "._" };
        format!(
            "application/vnd.{}.pubsub{}.{}.{}",
            self.organization, visibility, self.change, self.resource
        )
    }

    /// Reads a media type that follows the convention; `None` for any other.
    pub fn parse(media_type: &str) -> Option<Lifecycle> {
        let rest = media_type.strip_prefix("application/vnd.")?;
        let (organization, rest) = rest.split_once(".pubsub.")?;
        let (public, rest) = match rest.strip_prefix("_.") {
            Some(rest) => (false, rest),
            None => (true, rest),
        };
        let (change, resource) = rest.split_once('.')?;
        let change = Change::from_word(change)?;
        let simple = |s: &str| !s.is_empty() && !s.contains('.');
        (simple(organization) && simple(resource)).then(|| Lifecycle {
            change,
            resource: resource.to_owned(),
            organization: organization.to_owned(),
            public,
        })
    }
}

fn check_name(what: &'static str, example: &'static str, name: &str) -> Result<(), LifecycleNameError> {
    if name.is_empty() {
        return Err(LifecycleNameError::Empty { what, example });
    }
    match name.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')) {
        Some(ch) => Err(LifecycleNameError::BadChar { what, name: name.to_owned(), ch }),
        None => Ok(()),
    }
}

/// snake_case as microcosm-pubsub computes it (the `inflection` package's `underscore`):
/// `BatchMessage` -> `batch_message`, `HTTPRequest` -> `http_request`, `order` -> `order`.
pub fn to_snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            // `aB` or `1B` starts a word; so does the last capital of a run before a lowercase
            // letter (`HTTPRequest`: the `R`).
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_is_lower)
            {
                out.push('_');
            }
        }
        out.push(if c == '-' { '_' } else { c.to_ascii_lowercase() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_inflection_underscore() {
        for (input, expected) in [
            ("Widget", "widget"),
            ("BatchMessage", "batch_message"),
            ("HTTPRequest", "http_request"),
            ("order", "order"),
            ("already_snake", "already_snake"),
            ("Order2Item", "order2_item"),
            ("kebab-case", "kebab_case"),
        ] {
            assert_eq!(to_snake_case(input), expected, "{input}");
        }
    }

    #[test]
    fn builds_and_parses_every_form() {
        let mut l = Lifecycle::new(Change::Changed, "Widget");
        assert_eq!(l.media_type(), "application/vnd.globality.pubsub._.changed.widget");
        l.public = true;
        l.organization = "acme".into();
        assert_eq!(l.media_type(), "application/vnd.acme.pubsub.changed.widget");
        assert_eq!(Lifecycle::parse(&l.media_type()), Some(l));
        assert_eq!(Lifecycle::parse("application/vnd.globality.pubsub.simple"), None);
        assert_eq!(Lifecycle::parse("application/vnd.globality.pubsub._.created.a.b"), None);
    }

    #[test]
    fn names_must_fit_one_segment() {
        assert!(Lifecycle::check_names("Order", "acme").is_ok());
        assert!(matches!(
            Lifecycle::check_names("", "acme"),
            Err(LifecycleNameError::Empty { what: "resource", .. })
        ));
        assert!(matches!(
            Lifecycle::check_names("Order", "ac.me"),
            Err(LifecycleNameError::BadChar { what: "organization", ch: '.', .. })
        ));
    }
}
