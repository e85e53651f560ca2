//! Opaque data: string context that travels with a request from message to message.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Key of the correlation id.
pub const REQUEST_ID: &str = "x-request-id";
/// Key of the hop budget.
pub const REQUEST_TTL: &str = "x-request-ttl";
/// Key of the publish time (Unix seconds with a fraction), stamped by every encode.
pub const REQUEST_PUBLISHED: &str = "x-request-published";
/// The hop budget a consumer assumes when a message carries none.
pub const DEFAULT_TTL: i64 = 32;

/// The `opaqueData` object of a message: string keys (always lower-cased) to string values.
///
/// ```
/// use pubsub_core::OpaqueData;
///
/// let mut opaque = OpaqueData::new().with_request_id("req-1").with_ttl(5);
/// opaque.insert("X-Custom", "v");
/// assert_eq!(opaque.get("x-custom"), Some("v"));
/// assert_eq!(opaque.get("X-CUSTOM"), Some("v"));
/// assert_eq!(opaque.ttl(), Some(5));
/// assert_eq!(opaque.request_id(), Some("req-1"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OpaqueData {
    /// Sorted by key, each key once: most messages carry one to three entries, for which a
    /// vector costs a fraction of a map's allocation, insert and drop. The keys this library
    /// sets are borrowed: most messages' only key costs no allocation.
    entries: Entries,
}

/// Entries as read, in order, before they are sorted into [`OpaqueData`].
pub(crate) type Entries = Vec<(Cow<'static, str>, String)>;

impl OpaqueData {
    /// Empty opaque data.
    pub fn new() -> OpaqueData {
        OpaqueData::default()
    }

    /// The value under `key` (looked up lower-cased).
    pub fn get(&self, key: &str) -> Option<&str> {
        let found = match self.find(key) {
            Err(_) if key.bytes().any(|b| b.is_ascii_uppercase()) => self.find(&key.to_ascii_lowercase()),
            found => found,
        };
        found.ok().map(|index| self.entries[index].1.as_str())
    }

    /// Sets `key` (lower-cased) to `value`; returns the value it replaces.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let key = stored_key(key.into());
        match self.find(&key) {
            Ok(index) => Some(std::mem::replace(&mut self.entries[index].1, value.into())),
            Err(index) => {
                self.entries.insert(index, (key, value.into()));
                None
            }
        }
    }

    /// Removes `key` (lower-cased); returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let index = self.find(&key.to_ascii_lowercase()).ok()?;
        Some(self.entries.remove(index).1)
    }

    /// `(key, value)` pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_ref(), v.as_str()))
    }

    /// Where `key` (as stored) is, or would go.
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(stored, _)| stored.as_ref().cmp(key))
    }

    /// Opaque data of `entries` as read, keys already stored (lower-cased): sorted once, the
    /// last value of a repeated key kept, as inserting them one by one would, without the
    /// quadratic cost of inserting into a vector out of order.
    pub(crate) fn from_entries(mut entries: Entries) -> OpaqueData {
        if !entries.is_sorted_by(|a, b| a.0 < b.0) {
            // Stable: a repeated key's values stay in the order they came.
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries.dedup_by(|later, kept| {
                let repeated = later.0 == kept.0;
                if repeated {
                    std::mem::swap(&mut later.1, &mut kept.1);
                }
                repeated
            });
        }
        OpaqueData { entries }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The correlation id, `x-request-id`.
    pub fn request_id(&self) -> Option<&str> {
        self.get(REQUEST_ID)
    }

    /// Sets `x-request-id`.
    pub fn set_request_id(&mut self, request_id: impl Into<String>) {
        self.insert(REQUEST_ID, request_id);
    }

    /// With `x-request-id` set.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> OpaqueData {
        self.set_request_id(request_id);
        self
    }

    /// The hop budget `x-request-ttl`, when present and an integer.
    pub fn ttl(&self) -> Option<i64> {
        self.get(REQUEST_TTL)?.trim().parse().ok()
    }

    /// Sets `x-request-ttl`.
    pub fn set_ttl(&mut self, ttl: i64) {
        self.insert(REQUEST_TTL, ttl.to_string());
    }

    /// With `x-request-ttl` set.
    pub fn with_ttl(mut self, ttl: i64) -> OpaqueData {
        self.set_ttl(ttl);
        self
    }

    /// The publish time `x-request-published` as Unix seconds, when present and a number.
    pub fn published_seconds(&self) -> Option<f64> {
        self.get(REQUEST_PUBLISHED)?.trim().parse().ok()
    }

    /// The publish time `x-request-published`, when present and a non-negative number.
    pub fn published_at(&self) -> Option<SystemTime> {
        let seconds = self.published_seconds()?;
        (seconds.is_finite() && seconds >= 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(seconds))
    }
}

/// How `key` is kept: lower-cased, and borrowed when it is one of this library's own keys.
pub(crate) fn stored_key<K: AsRef<str> + Into<String>>(key: K) -> Cow<'static, str> {
    let known = [REQUEST_PUBLISHED, REQUEST_ID, REQUEST_TTL];
    if let Some(known) = known.into_iter().find(|known| known.eq_ignore_ascii_case(key.as_ref())) {
        return Cow::Borrowed(known);
    }
    let mut key: String = key.into();
    key.make_ascii_lowercase();
    Cow::Owned(key)
}

/// `x-request-published` for `time`: Unix seconds with six decimals, as Python's `time.time()`.
pub(crate) fn published_stamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    // `{seconds}.{micros:06}`, written digit by digit: `format!` was a tenth of the encode.
    let mut text = since.as_secs().to_string();
    text.reserve_exact(7);
    text.push('.');
    let micros = since.subsec_micros();
    for divisor in [100_000, 10_000, 1_000, 100, 10, 1] {
        text.push(char::from(b'0' + (micros / divisor % 10) as u8));
    }
    text
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for OpaqueData {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> OpaqueData {
        OpaqueData::from_entries(
            iter.into_iter().map(|(key, value)| (stored_key(key.into()), value.into())).collect(),
        )
    }
}

/// As a map, as it was when it was one.
impl fmt::Debug for OpaqueData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for OpaqueData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// Lenient, as a consumer of other producers must be: keys are lower-cased, numbers and
/// booleans become their JSON text, `null` values are dropped, nested values are kept as JSON.
impl<'de> Deserialize<'de> for OpaqueData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<OpaqueData, D::Error> {
        struct OpaqueVisitor;

        impl<'de> Visitor<'de> for OpaqueVisitor {
            type Value = OpaqueData;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string values")
            }

            fn visit_unit<E>(self) -> Result<OpaqueData, E> {
                Ok(OpaqueData::new())
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OpaqueData, A::Error> {
                let mut entries = Entries::with_capacity(map.size_hint().unwrap_or(4).min(64));
                while let Some(key) = map.next_key::<String>()? {
                    let text = match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::Null => continue,
                        serde_json::Value::String(text) => text,
                        other => other.to_string(),
                    };
                    entries.push((stored_key(key), text));
                }
                Ok(OpaqueData::from_entries(entries))
            }
        }

        deserializer.deserialize_any(OpaqueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_lower_cased_on_insert_and_decode() {
        let opaque: OpaqueData =
            serde_json::from_str(r#"{"X-Request-Id": "r", "x-request-ttl": 5, "n": null}"#).unwrap();
        assert_eq!(opaque.request_id(), Some("r"));
        assert_eq!(opaque.ttl(), Some(5));
        assert_eq!(opaque.len(), 2);
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_in_any_case_and_order() {
        let opaque: OpaqueData =
            [("b", "1"), ("X-Request-Id", "r-1"), ("a", "2"), ("x-request-id", "r-2"), ("B", "3")]
                .into_iter()
                .collect();
        assert_eq!(opaque.iter().collect::<Vec<_>>(), [("a", "2"), ("b", "3"), ("x-request-id", "r-2")]);
        let read: OpaqueData = serde_json::from_str(r#"{"z": "1", "Z": "2", "a": null, "y": 3}"#).unwrap();
        assert_eq!(read.iter().collect::<Vec<_>>(), [("y", "3"), ("z", "2")]);
    }

    #[test]
    fn published_stamp_has_micro_seconds() {
        let time = UNIX_EPOCH + Duration::from_micros(1_795_800_748_889_509);
        assert_eq!(published_stamp(time), "1795800748.889509");
        let opaque = OpaqueData::from_iter([(REQUEST_PUBLISHED, published_stamp(time))]);
        assert_eq!(opaque.published_seconds(), Some(1_795_800_748.889_509));
        assert_eq!(
            opaque.published_at().unwrap().duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_795_800_748
        );
    }
}
