//! JSON strings by hand, where serde_json's generic path was the cost per message: finding
//! the bytes to escape or unescape eight at a time, and escaping as serde_json escapes (the
//! embedded broker's notifications, the envelope's fast path).

/// Whether serde_json escapes `byte` in a string: `"`, `\` and the control characters.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The index of the first byte at or after `from` that needs escaping, or the length: eight
/// bytes at a time (a byte-by-byte loop was most of the notification's cost).
#[inline(never)]
pub(crate) fn next_escape(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let flags = escape_flags(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        if flags != 0 {
            return at + (flags.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let tail = &bytes[at..];
    at + tail.iter().position(|byte| needs_escape(*byte)).unwrap_or(tail.len())
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A high bit in each byte of `word` below `limit` (at most 0x80), exact for the lowest such
/// byte: a borrow can flag a byte above a flagged one, never one below it.
fn below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS
}

/// A high bit in each byte of `word` that needs escaping (exact for the lowest). A quote
/// xor 2 is 0x20 and a control character xor 2 stays below 0x20: one test finds both.
pub(crate) fn escape_flags(word: u64) -> u64 {
    below(word ^ (ONES * 0x02), 0x21) | below(word ^ (ONES * u64::from(b'\\')), 1)
}

/// Where JSON text is written: a `String`, or the bytes serde_json writes into.
pub(crate) trait JsonOut {
    fn push_text(&mut self, text: &str);
}

impl JsonOut for String {
    #[inline]
    fn push_text(&mut self, text: &str) {
        self.push_str(text);
    }
}

impl JsonOut for Vec<u8> {
    #[inline]
    fn push_text(&mut self, text: &str) {
        self.extend_from_slice(text.as_bytes());
    }
}

/// `text` as a JSON string, quoted.
pub(crate) fn push_json_string(out: &mut impl JsonOut, text: &str) {
    out.push_text("\"");
    push_escaped(out, text);
    out.push_text("\"");
}

/// `text` escaped as serde_json escapes it (`\"`, `\\`, `\n` and the like, other control
/// characters as `\u00XX`; nothing else), copied in runs between the bytes to escape.
pub(crate) fn push_escaped(out: &mut impl JsonOut, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut run_start = 0;
    let mut at = next_escape(bytes, 0);
    while at < bytes.len() {
        // Escaped bytes are ASCII, so the runs between them are whole UTF-8 sequences.
        out.push_text(&text[run_start..at]);
        let byte = bytes[at];
        run_start = at + 1;
        match byte {
            // The backslash alone: the quote or backslash itself starts the next run.
            b'"' | b'\\' => {
                out.push_text("\\");
                run_start = at;
            }
            b'\n' => out.push_text("\\n"),
            b'\r' => out.push_text("\\r"),
            b'\t' => out.push_text("\\t"),
            0x08 => out.push_text("\\b"),
            0x0c => out.push_text("\\f"),
            _ => {
                let digits =
                    [b'\\', b'u', b'0', b'0', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xF)]];
                out.push_text(std::str::from_utf8(&digits).expect("an escape is ASCII"));
            }
        }
        at = next_escape(bytes, at + 1);
    }
    out.push_text(&text[run_start..]);
}

/// `text` escaped as [`push_escaped`] escapes it, for long text with many quotes (JSON in
/// JSON, where the runs between escapes are a word or so): a word at a time into a buffer of
/// the most it can take, each word written whole and the length moved past the bytes before
/// the next escape, so that a run costs no call to `memcpy` of its own; checked as UTF-8 once
/// and appended. Text with a control character goes to [`push_escaped`] instead.
pub(crate) fn push_escaped_words(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    // Two bytes a byte at most (a quote or a backslash), and a word written past the end: on
    // the stack for most messages (an allocation cost what the words save).
    let (mut on_stack, mut on_heap) = ([0; 1024], Vec::new());
    let room = 2 * bytes.len() + 8;
    let buffer = if room <= on_stack.len() {
        &mut on_stack[..]
    } else {
        on_heap.resize(room, 0);
        &mut on_heap[..]
    };
    let (mut len, mut at) = (0, 0);
    loop {
        loop {
            let Some(chunk) = bytes.get(at..at + 8) else {
                let tail = next_escape(bytes, at) - at;
                buffer[len..len + tail].copy_from_slice(&bytes[at..at + tail]);
                (len, at) = (len + tail, at + tail);
                break;
            };
            buffer[len..len + 8].copy_from_slice(chunk);
            let flags = escape_flags(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
            if flags != 0 {
                let run = (flags.trailing_zeros() / 8) as usize;
                (len, at) = (len + run, at + run);
                break;
            }
            (len, at) = (len + 8, at + 8);
        }
        let Some(&byte) = bytes.get(at) else { break };
        if byte != b'"' && byte != b'\\' {
            // A control character (nothing appended yet): the escapes of every kind.
            return push_escaped(out, text);
        }
        buffer[len..len + 2].copy_from_slice(&[b'\\', byte]);
        (len, at) = (len + 2, at + 1);
    }
    // Runs of a `str` cut before ASCII bytes, and ASCII escapes: UTF-8.
    out.push_str(std::str::from_utf8(&buffer[..len]).expect("escaped text is UTF-8"));
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
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let flags =
            below(u64::from_le_bytes(chunk.try_into().expect("eight bytes")) ^ (ONES * u64::from(b'\\')), 1);
        if flags != 0 {
            return Some(at + (flags.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    bytes.get(at..)?.iter().position(|byte| *byte == b'\\').map(|index| at + index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text of every kind (quotes, backslashes, control characters, multi-byte characters, at
    /// every offset of a word and of the tail, short and long): escaped a word at a time as it
    /// is a run at a time, and as serde_json escapes it.
    #[test]
    fn escaping_by_words_writes_what_escaping_by_runs_writes() {
        let pieces = ["a", "é", "\"", "\\", "\n", "\u{1}", "{\"k\":\"v\"}", "☕", "/"];
        let mut rng = fastrand::Rng::with_seed(7);
        // Up to 40 pieces on the stack's buffer; 150 and 400 on the heap's.
        for length in (0..40).chain([150, 400]) {
            for _ in 0..50 {
                let text: String = (0..length).map(|_| pieces[rng.usize(..pieces.len())]).collect();
                let (mut by_words, mut by_runs) = (String::from("x"), String::from("x"));
                push_escaped_words(&mut by_words, &text);
                push_escaped(&mut by_runs, &text);
                assert_eq!(by_words, by_runs, "{text:?}");
                assert_eq!(serde_json::to_string(&text).unwrap(), format!("\"{}\"", &by_runs[1..]));
            }
        }
    }

    /// Every byte at every offset of a word and of the tail, behind every other byte: the
    /// word-at-a-time searches find what a byte-by-byte one finds (the borrows of one byte
    /// must not hide or fake another).
    #[test]
    fn the_word_searches_find_what_a_byte_search_finds() {
        for filler in 0..=255u8 {
            for target in 0..=255u8 {
                for position in 0..13 {
                    let mut bytes = [filler; 13];
                    bytes[position] = target;
                    let naive = bytes.iter().position(|byte| needs_escape(*byte)).unwrap_or(bytes.len());
                    assert_eq!(
                        next_escape(&bytes, 0),
                        naive,
                        "{filler:#04x} with {target:#04x} at {position}"
                    );
                    let backslash = bytes.iter().position(|byte| *byte == b'\\');
                    assert_eq!(
                        next_backslash(&bytes, 0),
                        backslash,
                        "{filler:#04x} with {target:#04x} at {position}"
                    );
                }
            }
        }
    }
}
