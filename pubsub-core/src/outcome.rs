//! What handling a message came to, and what that does to the message in the queue.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::time::Duration;

pub use crate::dispatch::HandledMessage;

/// The most bytes of a reason an [`Outcome`] keeps. Reasons are logged at info and warn, and
/// may quote what a sender wrote (a field value, a media type), so they are kept short.
pub(crate) const MAX_REASON_BYTES: usize = 512;

/// A value quoted in a reason (between `"` or backticks) longer than this is cut.
const MAX_QUOTED_BYTES: usize = 64;

/// How much of a cut quoted value is kept.
const QUOTED_PREFIX_BYTES: usize = 32;

/// What handling a message came to: the results of the seed's table (SUCCEEDED, SKIPPED, IGNORED,
/// EXPIRED, RETRIED, FAILED), logged as `result=<NAME>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// The handler succeeded: deleted.
    Succeeded,
    /// The handler declined, or the receive count passed the configured maximum: deleted.
    Skipped,
    /// No schema or no handler for the media type: deleted, and logged.
    Ignored,
    /// The hop budget `x-request-ttl` is spent: deleted.
    Expired,
    /// The handler asked to be retried after a delay: visibility set to that delay.
    Retried,
    /// The handler failed, panicked, or the message did not decode: visibility per backoff.
    Failed,
}

impl Verdict {
    /// Every result, in table order.
    pub const ALL: [Verdict; 6] = [
        Verdict::Succeeded,
        Verdict::Skipped,
        Verdict::Ignored,
        Verdict::Expired,
        Verdict::Retried,
        Verdict::Failed,
    ];

    /// The upper-case name, as the seed logs it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Succeeded => "SUCCEEDED",
            Verdict::Skipped => "SKIPPED",
            Verdict::Ignored => "IGNORED",
            Verdict::Expired => "EXPIRED",
            Verdict::Retried => "RETRIED",
            Verdict::Failed => "FAILED",
        }
    }

    /// Whether the message is deleted from the queue.
    pub fn deletes(self) -> bool {
        !matches!(self, Verdict::Retried | Verdict::Failed)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A result with its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Which row of the table.
    pub verdict: Verdict,
    /// Why, for every result but SUCCEEDED: the skip reason, the error, the ignored media type.
    ///
    /// The constructors bound it, as it is logged at info and warn: a value quoted in it (a
    /// string serde or validator quotes from the message) longer than 64 bytes is cut to its
    /// first 32 bytes, an ellipsis and its length, and the whole is cut at 512 bytes.
    pub reason: Option<String>,
    /// What is done to the message.
    pub disposition: Disposition,
}

/// What happens to the message in its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Deleted (acknowledged).
    Delete,
    /// Made visible again after this delay (nacked).
    Retry(Duration),
}

impl Outcome {
    /// SUCCEEDED.
    pub fn succeeded() -> Outcome {
        Outcome { verdict: Verdict::Succeeded, reason: None, disposition: Disposition::Delete }
    }

    /// A deleting result with a reason (SKIPPED, IGNORED, EXPIRED).
    pub fn deleted(verdict: Verdict, reason: impl Into<String>) -> Outcome {
        debug_assert!(verdict.deletes());
        Outcome { verdict, reason: Some(bound_reason(reason.into())), disposition: Disposition::Delete }
    }

    /// RETRIED after `delay`.
    pub fn retried(delay: Duration, reason: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Retried,
            reason: Some(bound_reason(reason.into())),
            disposition: Disposition::Retry(delay),
        }
    }

    /// FAILED, retried after `delay`.
    pub fn failed(delay: Duration, reason: impl Into<String>) -> Outcome {
        Outcome {
            verdict: Verdict::Failed,
            reason: Some(bound_reason(reason.into())),
            disposition: Disposition::Retry(delay),
        }
    }
}

/// `reason` bounded for a log line at info or warn: every value quoted in it (between `"`,
/// with `\` escapes, or between backticks) over [`MAX_QUOTED_BYTES`] is cut to
/// [`QUOTED_PREFIX_BYTES`], an ellipsis and its length, e.g. `string "aaaa…" (1048576 bytes)`;
/// then the whole is cut at [`MAX_REASON_BYTES`] with a note of its length. A short reason is
/// returned as it is, without allocating.
pub(crate) fn bound_reason(reason: String) -> String {
    if reason.len() <= MAX_QUOTED_BYTES {
        return reason;
    }
    let reason = match shorten_quoted(&reason) {
        Some(shortened) => shortened,
        None => reason,
    };
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let note = format!("… ({} bytes in all)", reason.len());
    let mut cut = floor_char_boundary(&reason, MAX_REASON_BYTES - note.len());
    // Never end on half of an escape such as `\"`.
    cut -= trailing_backslashes(&reason[..cut]) % 2;
    let mut bounded = String::with_capacity(cut + note.len());
    bounded.push_str(&reason[..cut]);
    bounded.push_str(&note);
    bounded
}

/// `text` with its long quoted values cut, or `None` when none is long. An unclosed quote is
/// left as it is (the cap on the whole bounds it).
fn shorten_quoted(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut shortened: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let quote = bytes[i];
        if quote != b'"' && quote != b'`' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let Some(len) = quoted_len(&bytes[start..], quote) else { break };
        let end = start + len;
        if len > MAX_QUOTED_BYTES {
            let out = shortened.get_or_insert_with(|| String::with_capacity(MAX_REASON_BYTES));
            let value = &text[start..end];
            let mut keep = floor_char_boundary(value, QUOTED_PREFIX_BYTES);
            if quote == b'"' {
                keep -= trailing_backslashes(&value[..keep]) % 2;
            }
            out.push_str(&text[copied..start]);
            out.push_str(&value[..keep]);
            let quote = quote as char;
            let _ = write!(out, "…{quote} ({len} bytes)");
            copied = end + 1;
        }
        i = end + 1;
    }
    shortened.map(|mut out| {
        out.push_str(&text[copied..]);
        out
    })
}

/// The length of the quoted value at the start of `rest` (just after its opening `quote`),
/// if it is closed. `"` values may escape a quote with `\`; backtick values have no escapes.
/// The delimiters are ASCII, so they never occur inside a multi-byte character.
fn quoted_len(rest: &[u8], quote: u8) -> Option<usize> {
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'\\' if quote == b'"' => i += 2,
            byte if byte == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn trailing_backslashes(text: &str) -> usize {
    text.bytes().rev().take_while(|&b| b == b'\\').count()
}

/// The largest char boundary of `text` at or below `at`.
fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// At most `max` bytes of `text` (cut at a char boundary, an ellipsis added), for a log line.
pub(crate) fn excerpt(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let cut = floor_char_boundary(text, max);
    Cow::Owned(format!("{}…", &text[..cut]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_reasons_are_kept_as_they_are() {
        for reason in ["nothing to do", "`id` is out of range: value must be at least 0 (got -1)", ""] {
            assert_eq!(bound_reason(reason.to_owned()), reason);
        }
        let long_but_plain = format!("the handler said: {}", "x".repeat(400));
        assert_eq!(bound_reason(long_but_plain.clone()), long_but_plain);
    }

    #[test]
    fn a_long_quoted_value_keeps_a_prefix_and_its_length() {
        let value = "a".repeat(1 << 20);
        let serde = format!("invalid type: string \"{value}\", expected i64 (line 1, column 9)");
        assert_eq!(
            bound_reason(serde),
            format!(
                "invalid type: string \"{}…\" ({} bytes), expected i64 (line 1, column 9)",
                "a".repeat(32),
                1 << 20
            )
        );
        let backticked = format!("media type `{value}` has no `/`: write `type/subtype`");
        assert_eq!(
            bound_reason(backticked),
            format!("media type `{}…` ({} bytes) has no `/`: write `type/subtype`", "a".repeat(32), 1 << 20)
        );
        let validation = format!("`note` has the wrong length: length must be at most 10 (got \"{value}\")");
        assert!(bound_reason(validation).ends_with(&format!(
            "(got \"{}…\" ({} bytes))",
            "a".repeat(32),
            1 << 20
        )));
    }

    #[test]
    fn escaped_quotes_stay_inside_the_value_and_escapes_are_not_split() {
        let value = format!("{}\\\"{}", "b".repeat(31), "c".repeat(100));
        let reason = format!("bad \"{value}\" here, and a short \"ok\"");
        let bounded = bound_reason(reason);
        assert_eq!(bounded, format!("bad \"{}…\" (133 bytes) here, and a short \"ok\"", "b".repeat(31)));
    }

    #[test]
    fn multi_byte_characters_are_never_split() {
        let value = "é".repeat(100);
        let bounded = bound_reason(format!("got `{value}`"));
        assert_eq!(bounded, format!("got `{}…` (200 bytes)", "é".repeat(16)));
        let long = "é".repeat(1000);
        let capped = bound_reason(long);
        assert!(capped.len() <= MAX_REASON_BYTES, "{}", capped.len());
        assert!(capped.ends_with("… (2000 bytes in all)"), "{capped}");
    }

    #[test]
    fn the_whole_reason_is_capped_even_when_nothing_is_quoted() {
        let many = (0..200).map(|i| format!("`f{i}` failed")).collect::<Vec<_>>().join("; ");
        let bounded = bound_reason(many.clone());
        assert!(bounded.len() <= MAX_REASON_BYTES);
        assert!(bounded.starts_with("`f0` failed; `f1` failed"));
        assert!(bounded.ends_with(&format!("… ({} bytes in all)", many.len())), "{bounded}");
        let unclosed = format!("a \"{}", "z".repeat(10_000));
        assert!(bound_reason(unclosed).len() <= MAX_REASON_BYTES);
    }

    #[test]
    fn the_constructors_bound_the_reason() {
        let huge = format!("\"{}\"", "q".repeat(100_000));
        for outcome in [
            Outcome::failed(Duration::ZERO, huge.clone()),
            Outcome::retried(Duration::ZERO, huge.clone()),
            Outcome::deleted(Verdict::Skipped, huge.clone()),
        ] {
            let reason = outcome.reason.unwrap();
            assert_eq!(reason, format!("\"{}…\" (100000 bytes)", "q".repeat(32)));
        }
    }

    #[test]
    fn an_excerpt_is_cut_at_a_char_boundary() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("ééé", 3), "é…");
        assert_eq!(excerpt(&"x".repeat(5000), 4096).len(), 4096 + "…".len());
    }
}
