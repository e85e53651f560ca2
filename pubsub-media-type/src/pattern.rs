//! Media type patterns for registrations: a concrete type, or `prefix.*`.

use std::fmt;

use crate::{MediaType, MediaTypeError};

/// What a registration answers to: one concrete media type, or every media type that is
/// `prefix.` followed by one last segment (`application/vnd.acme.pubsub._.created.*` matches
/// `..._.created.order` but not `..._.created.order.line`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaTypePattern {
    /// Matches this media type only.
    Exact(MediaType),
    /// Matches `prefix.` plus one segment; holds the prefix without the trailing `.`.
    Prefix(String),
}

impl MediaTypePattern {
    /// Parses `type/subtype` or `type/subtype-prefix.*`.
    pub fn parse(text: &str) -> Result<MediaTypePattern, MediaTypeError> {
        match text.strip_suffix(".*") {
            Some(prefix) => {
                MediaType::validate(prefix)?;
                Ok(MediaTypePattern::Prefix(prefix.to_owned()))
            }
            None => MediaType::parse(text).map(MediaTypePattern::Exact),
        }
    }

    /// Whether `media_type` is answered by this pattern.
    pub fn matches(&self, media_type: &str) -> bool {
        match self {
            MediaTypePattern::Exact(exact) => exact.as_str() == media_type,
            MediaTypePattern::Prefix(prefix) => media_type
                .strip_prefix(prefix.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|last| !last.is_empty() && !last.contains('.')),
        }
    }

    /// The `prefix.*` pattern that would match `media_type`, if it has a `.` in its subtype.
    pub fn wildcard_for(media_type: &str) -> Option<String> {
        let (_, subtype) = media_type.split_once('/')?;
        subtype.rfind('.')?;
        let cut = media_type.rfind('.')?;
        Some(format!("{}.*", &media_type[..cut]))
    }
}

impl fmt::Display for MediaTypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaTypePattern::Exact(exact) => write!(f, "{exact}"),
            MediaTypePattern::Prefix(prefix) => write!(f, "{prefix}.*"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matches_one_last_segment() {
        let p = MediaTypePattern::parse("application/vnd.acme.pubsub._.created.*").unwrap();
        assert!(p.matches("application/vnd.acme.pubsub._.created.order"));
        assert!(!p.matches("application/vnd.acme.pubsub._.created.order.line"));
        assert!(!p.matches("application/vnd.acme.pubsub._.created."));
        assert!(!p.matches("application/vnd.acme.pubsub._.created"));
        assert_eq!(
            MediaTypePattern::wildcard_for("application/vnd.acme.pubsub._.created.order").as_deref(),
            Some("application/vnd.acme.pubsub._.created.*")
        );
        assert_eq!(MediaTypePattern::wildcard_for("text/plain"), None);
    }

    #[test]
    fn exact_matches_itself_only() {
        let p = MediaTypePattern::parse("text/plain").unwrap();
        assert!(p.matches("text/plain"));
        assert!(!p.matches("text/plainer"));
        assert!(MediaTypePattern::parse("text/*").is_err());
    }
}
