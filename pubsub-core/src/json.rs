//! JSON strings by hand, where serde_json's generic path was the cost per message: finding
//! the bytes to escape or unescape eight at a time, and escaping as serde_json escapes (the
//! embedded broker's notifications, the envelope's fast path).

/// Whether serde_json escapes `byte` in a string: `"`, `\` and the control characters.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The index of the first byte at or after `from` that needs escaping, or the length: eight
/// bytes at a time (a byte-by-byte loop was most of the notification's cost).
pub(crate) fn next_escape(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        // A high bit per byte that is below 0x20, a quote or a backslash. Each test can also
        // flag a byte above a flagged one (borrows carry upwards), never one below it, so
        // the lowest flag is exact.
        let zero_in = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
        let flags = (word.wrapping_sub(ONES * 0x20) & !word & HIGHS)
            | zero_in(word ^ (ONES * u64::from(b'"')))
            | zero_in(word ^ (ONES * u64::from(b'\\')));
        if flags != 0 {
            return at + (flags.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let tail = &bytes[at..];
    at + tail.iter().position(|byte| needs_escape(*byte)).unwrap_or(tail.len())
}

/// `text` as a JSON string, quoted.
pub(crate) fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    push_escaped(out, text);
    out.push('"');
}

/// `text` escaped as serde_json escapes it (`\"`, `\\`, `\n` and the like, other control
/// characters as `\u00XX`; nothing else), copied in runs between the bytes to escape.
pub(crate) fn push_escaped(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut run_start = 0;
    let mut at = next_escape(bytes, 0);
    while at < bytes.len() {
        // Escaped bytes are ASCII, so the runs between them are whole UTF-8 sequences.
        out.push_str(&text[run_start..at]);
        let byte = bytes[at];
        run_start = at + 1;
        match byte {
            // The backslash alone: the quote or backslash itself starts the next run.
            b'"' | b'\\' => {
                out.push('\\');
                run_start = at;
            }
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xF)]));
            }
        }
        at = next_escape(bytes, at + 1);
    }
    out.push_str(&text[run_start..]);
}

/// The character a backslash and `escape` stand for in a JSON string; `None` for `u` (four
/// hex digits follow: the caller's to read) and for what is no escape.
pub(crate) fn unescaped(escape: u8) -> Option<char> {
    Some(match escape {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        _ => return None,
    })
}

/// The index of the first backslash at or after `from`, eight bytes at a time.
pub(crate) fn next_backslash(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ (ONES * u64::from(b'\\'));
        // The lowest flagged byte is exact (borrows only flag bytes above a zero one).
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(at + (zeros.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes.get(at..)?.iter().position(|byte| *byte == b'\\').map(|index| at + index)
}
