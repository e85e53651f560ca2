//! Media types: the grammar and conventions live in `pubsub-media-type`, shared with the
//! derive macro so that compile-time and run-time checks cannot drift apart.
//!
//! `MediaTypeTable` (crate-private) is the one lookup by media type (exact match, then
//! `prefix.*`) that dispatch, the producer's topic map and the registry share.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

use rustc_hash::FxHashMap;

pub use pubsub_media_type::{Change, Lifecycle, MediaType, MediaTypeError, MediaTypePattern};

/// Values by media type pattern: a lookup tries the exact media type, then the `prefix.*`
/// pattern matching its last segment. Neither a hit nor a miss allocates: the prefix map is
/// keyed so that a slice of the media type finds its pattern.
///
/// Hashed with Fx rather than SipHash (a tenth of a dispatch for a long media type): the keys
/// are the daemon's own, fixed once built, so media types off the wire only look up and cannot
/// crowd a bucket.
#[derive(Debug, Clone)]
pub(crate) struct MediaTypeTable<V> {
    exact: FxHashMap<String, V>,
    prefixes: FxHashMap<PrefixKey, V>,
}

impl<V> Default for MediaTypeTable<V> {
    fn default() -> Self {
        MediaTypeTable { exact: FxHashMap::default(), prefixes: FxHashMap::default() }
    }
}

impl<V> MediaTypeTable<V> {
    /// The value registered for exactly `pattern`, if any (not a lookup by media type).
    pub(crate) fn get(&self, pattern: &MediaTypePattern) -> Option<&V> {
        match pattern {
            MediaTypePattern::Exact(media_type) => self.exact.get(media_type.as_str()),
            MediaTypePattern::Prefix(prefix) => self.prefixes.get(prefix.as_str()),
        }
    }

    /// Registers `value` for `pattern`, replacing and returning an earlier one.
    pub(crate) fn insert(&mut self, pattern: MediaTypePattern, value: V) -> Option<V> {
        match pattern {
            MediaTypePattern::Exact(media_type) => self.exact.insert(media_type.into(), value),
            MediaTypePattern::Prefix(prefix) => self.prefixes.insert(PrefixKey::new(prefix), value),
        }
    }

    /// The value for `media_type`: its exact registration, else the `prefix.*` one whose prefix
    /// is everything before its last `.` (one non-empty segment, so `a.b.*` answers `a.b.c`
    /// but neither `a.b.c.d` nor `a.b`).
    pub(crate) fn lookup(&self, media_type: &str) -> Option<&V> {
        if let Some(value) = self.exact.get(media_type) {
            return Some(value);
        }
        if self.prefixes.is_empty() {
            return None;
        }
        let (_, subtype) = media_type.split_once('/')?;
        let (_, last) = subtype.rsplit_once('.')?;
        if last.is_empty() {
            return None;
        }
        self.prefixes.get(&media_type[..media_type.len() - last.len() - 1])
    }

    /// Every pattern (a media type, or `prefix.*`) with its value, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        let exact = self.exact.iter().map(|(k, v)| (k.as_str(), v));
        exact.chain(self.prefixes.iter().map(|(k, v)| (k.pattern(), v)))
    }

    /// Every pattern with its value, sorted by pattern text.
    pub(crate) fn sorted(&self) -> Vec<(&str, &V)> {
        let mut all: Vec<_> = self.iter().collect();
        all.sort_unstable_by_key(|(pattern, _)| *pattern);
        all
    }

    /// Every value, in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.exact.values().chain(self.prefixes.values())
    }
}

/// A `prefix.*` pattern, held as its full text but hashed and compared by the prefix alone,
/// so that the prefix map can be searched with a `&str` cut from a media type.
#[derive(Debug, Clone)]
struct PrefixKey(String);

impl PrefixKey {
    const WILDCARD: &'static str = ".*";

    fn new(mut prefix: String) -> PrefixKey {
        prefix.push_str(Self::WILDCARD);
        PrefixKey(prefix)
    }

    fn pattern(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for PrefixKey {
    fn borrow(&self) -> &str {
        &self.0[..self.0.len() - Self::WILDCARD.len()]
    }
}

// Hash and Eq go through `borrow` as `Borrow` requires: a key and its prefix agree.
impl Hash for PrefixKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Borrow::<str>::borrow(self).hash(state)
    }
}

impl PartialEq for PrefixKey {
    fn eq(&self, other: &Self) -> bool {
        Borrow::<str>::borrow(self) == Borrow::<str>::borrow(other)
    }
}

impl Eq for PrefixKey {}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(patterns: &[&str]) -> MediaTypeTable<String> {
        let mut table = MediaTypeTable::default();
        for pattern in patterns {
            table.insert(MediaTypePattern::parse(pattern).unwrap(), (*pattern).to_owned());
        }
        table
    }

    #[test]
    fn exact_beats_prefix() {
        let table = table(&["application/vnd.acme.pubsub.a.*", "application/vnd.acme.pubsub.a.b"]);
        let found = table.lookup("application/vnd.acme.pubsub.a.b").map(String::as_str);
        assert_eq!(found, Some("application/vnd.acme.pubsub.a.b"));
        let found = table.lookup("application/vnd.acme.pubsub.a.c").map(String::as_str);
        assert_eq!(found, Some("application/vnd.acme.pubsub.a.*"));
    }

    #[test]
    fn a_prefix_answers_one_last_segment_only() {
        let table = table(&["application/vnd.acme.pubsub.a.b.*"]);
        assert!(table.lookup("application/vnd.acme.pubsub.a.b.c").is_some());
        assert!(table.lookup("application/vnd.acme.pubsub.a.b.c.d").is_none());
        assert!(table.lookup("application/vnd.acme.pubsub.a.b").is_none());
        assert!(table.lookup("application/vnd.acme.pubsub.a.b.").is_none());
        // The `.` that cuts must be in the subtype.
        assert!(table.lookup("text/plain").is_none());
    }

    #[test]
    fn no_match_and_listing() {
        let table = table(&["text/plain", "application/vnd.acme.pubsub.a.*"]);
        assert!(table.lookup("text/html").is_none());
        assert!(table.lookup("application/vnd.acme.pubsub.b.c").is_none());
        assert_eq!(
            table.sorted().into_iter().map(|(p, _)| p).collect::<Vec<_>>(),
            ["application/vnd.acme.pubsub.a.*", "text/plain"]
        );
        let prefix = MediaTypePattern::parse("application/vnd.acme.pubsub.a.*").unwrap();
        assert!(table.get(&prefix).is_some());
        assert!(table.get(&MediaTypePattern::parse("text/html").unwrap()).is_none());
    }
}
