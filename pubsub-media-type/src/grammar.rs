//! The RFC 6838 shape of a concrete media type.

use std::fmt;

/// RFC 6838 section 4.2: a restricted name is at most 127 characters.
pub const MAX_PART_LEN: usize = 127;

/// Which half of `type/subtype` an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The part before the `/`.
    Type,
    /// The part after the `/`.
    Subtype,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Type => "type",
            Part::Subtype => "subtype",
        })
    }
}

/// Why a string is not a valid concrete media type. The messages say what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaTypeError {
    /// The string is empty.
    #[error("the media type is empty: write `type/subtype`, e.g. `application/vnd.acme.pubsub.order`")]
    Empty,
    /// There is no `/` between type and subtype.
    #[error("media type `{0}` has no `/`: write `type/subtype`, e.g. `application/vnd.acme.pubsub.order`")]
    MissingSlash(String),
    /// One side of the `/` is empty.
    #[error("media type `{media_type}` has an empty {part}: write `type/subtype` with both parts, e.g. `application/vnd.acme.pubsub.order`")]
    EmptyPart {
        /// The rejected text.
        media_type: String,
        /// The empty side.
        part: Part,
    },
    /// One side is longer than RFC 6838 allows.
    #[error(
        "the {part} of the media type is {len} characters long; RFC 6838 allows at most 127: shorten it"
    )]
    TooLong {
        /// The rejected text.
        media_type: String,
        /// The side that is too long.
        part: Part,
        /// Its length in characters.
        len: usize,
    },
    /// A part does not start with a letter or digit.
    #[error(
        "the {part} of media type `{media_type}` starts with `{ch}`; it must start with a letter or a digit"
    )]
    BadFirstChar {
        /// The rejected text.
        media_type: String,
        /// The side at fault.
        part: Part,
        /// The offending character.
        ch: char,
    },
    /// Whitespace inside the media type.
    #[error("media type `{media_type}` contains whitespace; remove it (media types have no spaces)")]
    Whitespace {
        /// The rejected text.
        media_type: String,
    },
    /// A `*` wildcard, which only patterns may have.
    #[error("media type `{media_type}` contains `*`: a message type declares one concrete media type; `.*` patterns belong to handler registrations and registry lookups")]
    Wildcard {
        /// The rejected text.
        media_type: String,
    },
    /// Parameters such as `; charset=utf-8`.
    #[error(
        "media type `{media_type}` has parameters (`;`): write the bare `type/subtype` without parameters"
    )]
    Parameters {
        /// The rejected text.
        media_type: String,
    },
    /// Any other character outside the restricted-name set.
    #[error("the {part} of media type `{media_type}` contains `{ch}`; only letters, digits and `! # $ & - ^ _ . +` are allowed (RFC 6838 restricted names)")]
    BadChar {
        /// The rejected text.
        media_type: String,
        /// The side at fault.
        part: Part,
        /// The offending character.
        ch: char,
    },
}

/// A validated, concrete media type such as `application/vnd.globality.pubsub.simple`.
///
/// The text is kept exactly as written (media types compare case-sensitively on the wire, as
/// microcosm-pubsub compares them).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MediaType(String);

impl MediaType {
    /// Checks `text` against the RFC 6838 shape and wraps it.
    pub fn parse(text: &str) -> Result<MediaType, MediaTypeError> {
        Self::validate(text)?;
        Ok(MediaType(text.to_owned()))
    }

    /// Checks `text` without allocating on success.
    pub fn validate(text: &str) -> Result<(), MediaTypeError> {
        let owned = || text.to_owned();
        if text.is_empty() {
            return Err(MediaTypeError::Empty);
        }
        // Parameters first: `type/subtype; charset=utf-8` is about the `;`, not its space.
        if text.contains(';') {
            return Err(MediaTypeError::Parameters { media_type: owned() });
        }
        if text.chars().any(char::is_whitespace) {
            return Err(MediaTypeError::Whitespace { media_type: owned() });
        }
        if text.contains('*') {
            return Err(MediaTypeError::Wildcard { media_type: owned() });
        }
        let (kind, subtype) = text.split_once('/').ok_or_else(|| MediaTypeError::MissingSlash(owned()))?;
        check_part(text, Part::Type, kind)?;
        check_part(text, Part::Subtype, subtype)
    }

    /// The whole text, e.g. `application/vnd.globality.pubsub.simple`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `/`.
    pub fn kind(&self) -> &str {
        self.split().0
    }

    /// The part after the `/`.
    pub fn subtype(&self) -> &str {
        self.split().1
    }

    fn split(&self) -> (&str, &str) {
        self.0.split_once('/').expect("validated media types contain '/'")
    }
}

fn check_part(text: &str, part: Part, name: &str) -> Result<(), MediaTypeError> {
    let mut chars = name.chars();
    let first =
        chars.next().ok_or_else(|| MediaTypeError::EmptyPart { media_type: text.to_owned(), part })?;
    if !first.is_ascii_alphanumeric() {
        return Err(MediaTypeError::BadFirstChar { media_type: text.to_owned(), part, ch: first });
    }
    if let Some(ch) = chars.find(|&c| !is_restricted_name_char(c)) {
        return Err(MediaTypeError::BadChar { media_type: text.to_owned(), part, ch });
    }
    let len = name.chars().count();
    if len > MAX_PART_LEN {
        return Err(MediaTypeError::TooLong { media_type: text.to_owned(), part, len });
    }
    Ok(())
}

/// RFC 6838 `restricted-name-chars`.
fn is_restricted_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '!' | '#' | '$' | '&' | '-' | '^' | '_' | '.' | '+')
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for MediaType {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for MediaType {
    type Err = MediaTypeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MediaType::parse(s)
    }
}

impl From<MediaType> for String {
    fn from(media_type: MediaType) -> String {
        media_type.0
    }
}

impl PartialEq<str> for MediaType {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for MediaType {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seed_media_types() {
        for ok in [
            "application/vnd.globality.pubsub.simple",
            "application/vnd.globality.pubsub._.created.order",
            "text/plain",
            "a/b",
            "application/x-foo+json",
        ] {
            assert_eq!(MediaType::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_each_malformation_with_its_own_reason() {
        let err = |s: &str| MediaType::parse(s).unwrap_err();
        assert_eq!(err(""), MediaTypeError::Empty);
        assert!(matches!(err("application"), MediaTypeError::MissingSlash(_)));
        assert!(matches!(err("/x"), MediaTypeError::EmptyPart { part: Part::Type, .. }));
        assert!(matches!(err("x/"), MediaTypeError::EmptyPart { part: Part::Subtype, .. }));
        assert!(matches!(err("a/b c"), MediaTypeError::Whitespace { .. }));
        assert!(matches!(err("a/b.*"), MediaTypeError::Wildcard { .. }));
        assert!(matches!(err("a/b;charset=x"), MediaTypeError::Parameters { .. }));
        assert!(matches!(err("a/b/c"), MediaTypeError::BadChar { part: Part::Subtype, ch: '/', .. }));
        assert!(matches!(err("a/.b"), MediaTypeError::BadFirstChar { part: Part::Subtype, ch: '.', .. }));
        let long = format!("a/{}", "b".repeat(128));
        assert!(matches!(err(&long), MediaTypeError::TooLong { part: Part::Subtype, len: 128, .. }));
        assert!(MediaType::parse(&format!("a/{}", "b".repeat(127))).is_ok());
    }

    #[test]
    fn errors_say_what_to_write() {
        let text = MediaType::parse("application").unwrap_err().to_string();
        assert!(text.contains("type/subtype"), "{text}");
    }
}
