//! The envelope's fast path: one layer's header read by a strict scanner of our own, which
//! finds the keys the header needs and steps over every other value, checking it as
//! serde_json would, without serde's machinery (a visitor per value, an error built to stop
//! early). It reads the common case only: anything it is not sure of (an escape in a key or
//! in `mediaType`, a `\u` escape in `Message`, deep nesting, any syntax error) gives `None`,
//! and the caller reads the layer with serde_json, which also words the errors. So the scanner
//! may refuse more than serde_json, never less, and where it reads a layer it reads what
//! serde_json's path reads (tested against it, by property, in `tests`).

use std::borrow::Cow;

use super::{BodyPart, Field, Header};
use crate::body::{MEDIA_TYPE_KEY, OPAQUE_DATA_KEY};
use crate::error::json_reason;
use crate::opaque::{stored_key, Entries, OpaqueData};

/// Nesting the scanner steps into before it leaves the layer to serde_json: well under
/// serde_json's limit of 128, so that it never accepts what serde_json refuses for depth.
const MAX_DEPTH: usize = 64;

/// `layer`'s header, as [`Header::read_with`] reads it, or `None` if the scanner leaves it to
/// serde_json.
pub(super) fn read_header(text: &str, layer: BodyPart) -> Option<Header<'_>> {
    let mut scan = Scanner { text, at: 0 };
    let mut header = Header {
        notification_message: None,
        notification_attributes: None,
        attributes_media_type: None,
        media_type: None,
        opaque_data: None,
        content_from: None,
    };
    // Keys read so far: the content can be read apart only if the header's two came first.
    let mut keys = 0;
    scan.whitespace();
    scan.expect(b'{')?;
    scan.whitespace();
    if scan.peek() == Some(b'}') {
        scan.at += 1;
    } else {
        loop {
            let key = scan.plain_string()?;
            scan.whitespace();
            scan.expect(b':')?;
            scan.whitespace();
            let start = scan.at;
            match key {
                "Message" if layer == BodyPart::Body => {
                    header.notification_message = Some(Field::Text(scan.unescaped()?));
                }
                "MessageAttributes" if layer == BodyPart::Body => {
                    header.attributes_media_type = scan.media_type_attribute_alone();
                    if header.attributes_media_type.is_none() {
                        scan.value(1)?;
                    }
                    header.notification_attributes = Some(&text[start..scan.at]);
                }
                MEDIA_TYPE_KEY => header.media_type = Some(Field::Text(Cow::Borrowed(scan.plain_string()?))),
                OPAQUE_DATA_KEY => {
                    let opaque = match scan.plain_object() {
                        Some(opaque) => Ok(opaque),
                        None => {
                            scan.at = start;
                            scan.value(1)?;
                            serde_json::from_str(&text[start..scan.at]).map_err(|e| json_reason(&e))
                        }
                    };
                    header.opaque_data = Some(opaque);
                }
                // Most values are strings: stepped over here, without a call.
                _ if scan.peek() == Some(b'"') => {
                    scan.string()?;
                }
                _ => scan.value(1)?,
            }
            keys += 1;
            // As serde_json's path does: the rest is the content's parse to check.
            if header.media_type.is_some() && header.opaque_data.is_some() {
                scan.whitespace();
                if keys == 2 && scan.peek() == Some(b',') {
                    header.content_from = Some(scan.at);
                }
                return Some(header);
            }
            scan.whitespace();
            match scan.next()? {
                b',' => scan.whitespace(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    scan.whitespace();
    (scan.at == text.len()).then_some(header)
}

/// A position in a JSON text.
struct Scanner<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Scanner<'t> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// Steps over JSON's whitespace (serde_json's four bytes).
    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string with no escape, its text; `None` for anything else. Inlined, as `string` is.
    #[inline(always)]
    fn plain_string(&mut self) -> Option<&'t str> {
        let start = self.at + 1;
        let escaped = self.string()?;
        (!escaped).then(|| &self.text[start..self.at - 1])
    }

    /// Steps over a string, checked as serde_json checks one it skips (no control character,
    /// known escapes, four hex digits after `\u`); whether it had an escape. Inlined: a call
    /// per string cost as much as a short string's scan.
    #[inline(always)]
    fn string(&mut self) -> Option<bool> {
        self.expect(b'"')?;
        let bytes = self.text.as_bytes();
        let mut escaped = false;
        loop {
            self.at = crate::json::next_escape(bytes, self.at);
            match self.next()? {
                b'"' => return Some(escaped),
                b'\\' => {
                    escaped = true;
                    match self.next()? {
                        b'u' => {
                            let digits = bytes.get(self.at..self.at + 4)?;
                            if !digits.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.at += 4;
                        }
                        escape => {
                            crate::json::unescaped(escape)?;
                        }
                    }
                }
                _ => return None, // a control character
            }
        }
    }

    /// A string's text, its escapes undone as it is checked (in one pass: it is most of a
    /// notification), borrowed if it has none; `None` also for a `\u` escape, which is
    /// serde_json's to read (surrogate pairs, and its errors for lone ones).
    fn unescaped(&mut self) -> Option<Cow<'t, str>> {
        self.expect(b'"')?;
        let bytes = self.text.as_bytes();
        let start = self.at;
        let end = crate::json::next_escape(bytes, start);
        if *bytes.get(end)? == b'"' {
            self.at = end + 1;
            return Some(Cow::Borrowed(&self.text[start..end]));
        }
        let (text, close) = unescape(bytes, start, end)?;
        self.at = close + 1;
        Some(Cow::Owned(text))
    }

    /// An object of strings with no escape (and `null`s, left out), as the opaque data it is
    /// (keys lower-cased); `None` for anything else, which serde_json reads instead.
    fn plain_object(&mut self) -> Option<OpaqueData> {
        self.expect(b'{')?;
        self.whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Some(OpaqueData::new());
        }
        // Room for the few keys most messages carry, without growing from one.
        let mut entries = Entries::with_capacity(4);
        loop {
            let key = self.plain_string()?;
            self.whitespace();
            self.expect(b':')?;
            self.whitespace();
            if self.peek() == Some(b'n') {
                self.literal("null")?;
            } else {
                entries.push((stored_key(key), self.plain_string()?.to_owned()));
            }
            self.whitespace();
            match self.next()? {
                b',' => self.whitespace(),
                b'}' => return Some(OpaqueData::from_entries(entries)),
                _ => return None,
            }
        }
    }

    /// Steps over `MessageAttributes` that are the `media_type` attribute alone, written as
    /// SNS and the embedded broker write it for most messages
    /// (`{"media_type":{"Type":"String","Value":"..."}}`, no space, a value without escapes):
    /// one comparison and one search, where the object's walk was five strings and two
    /// objects. The value; `None`, having moved nothing, for anything else, which
    /// [`value`](Self::value) steps over.
    fn media_type_attribute_alone(&mut self) -> Option<&'t str> {
        const BEFORE: &[u8] = br#"{"media_type":{"Type":"String","Value":""#;
        const AFTER: &[u8] = br#""}}"#;
        let bytes = self.text.as_bytes();
        if !bytes[self.at..].starts_with(BEFORE) {
            return None;
        }
        let start = self.at + BEFORE.len();
        let end = crate::json::next_escape(bytes, start);
        if !bytes[end..].starts_with(AFTER) {
            return None;
        }
        self.at = end + AFTER.len();
        Some(&self.text[start..end])
    }

    /// Steps over any value at nesting `depth` (the layer's object is 1).
    fn value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.container(depth, b'}', true),
            b'[' => self.container(depth, b']', false),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number(),
        }
    }

    /// An object (`keyed`) or an array, from its opening byte to `close`.
    fn container(&mut self, depth: usize, close: u8, keyed: bool) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.at += 1;
        self.whitespace();
        if self.peek() == Some(close) {
            self.at += 1;
            return Some(());
        }
        loop {
            if keyed {
                self.string()?;
                self.whitespace();
                self.expect(b':')?;
                self.whitespace();
            }
            self.value(depth + 1)?;
            self.whitespace();
            match self.next()? {
                b',' => self.whitespace(),
                byte if byte == close => return Some(()),
                _ => return None,
            }
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.text[self.at..].starts_with(word).then(|| self.at += word.len())
    }

    /// A number by JSON's grammar: `-`, then `0` or digits not led by `0`, then an optional
    /// fraction and exponent, each with at least one digit.
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

/// The text of the string that starts at `start` in `bytes` and has its first escape at
/// `escape`, its escapes undone, and the index of its closing quote; `None` for a control
/// character, a `\u` escape (serde_json's to read) or no closing quote.
///
/// Eight bytes at a time into a buffer of the most it can take: each word is written whole
/// and the length moved past the bytes before the next escape, so that the short runs
/// between the escapes of JSON in JSON cost no call to `memcpy` each. Not inlined, so that
/// its loop keeps what it uses in registers.
#[inline(never)]
fn unescape(bytes: &[u8], start: usize, escape: usize) -> Option<(String, usize)> {
    // The rest of the layer, and a word written past its end.
    let mut out = vec![0; bytes.len() - start + 8];
    let mut len = escape - start;
    out[..len].copy_from_slice(&bytes[start..escape]);
    let mut at = escape;
    loop {
        match *bytes.get(at)? {
            b'"' => break,
            b'\\' => {
                // Without `\u`, every escape stands for an ASCII byte.
                *out.get_mut(len)? = crate::json::unescaped(*bytes.get(at + 1)?)? as u8;
                len += 1;
                at += 2;
            }
            _ => return None, // a control character
        }
        loop {
            let Some(chunk) = bytes.get(at..at + 8) else {
                let tail = crate::json::next_escape(bytes, at) - at;
                out.get_mut(len..len + tail)?.copy_from_slice(&bytes[at..at + tail]);
                (len, at) = (len + tail, at + tail);
                break;
            };
            out.get_mut(len..len + 8)?.copy_from_slice(chunk);
            let flags = crate::json::escape_flags(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
            if flags != 0 {
                let run = (flags.trailing_zeros() / 8) as usize;
                (len, at) = (len + run, at + run);
                break;
            }
            (len, at) = (len + 8, at + 8);
        }
    }
    out.truncate(len);
    // Runs of a `str` cut before ASCII bytes, and ASCII bytes: valid UTF-8, checked once.
    Some((String::from_utf8(out).ok()?, at))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What a header holds, comparable.
    fn summary(header: &Header<'_>) -> String {
        let field = |field: &Option<Field<'_>>| match field {
            None => "-".to_owned(),
            Some(Field::Text(text)) => format!("text {text:?}"),
            Some(Field::Other(kind)) => format!("other {kind:?}"),
        };
        format!(
            "message {}; attributes {:?}; media type {}; opaque {:?}",
            field(&header.notification_message),
            header.notification_attributes,
            field(&header.media_type),
            header.opaque_data
        )
    }

    /// serde_json's path, as the envelope took it before the scanner.
    fn by_serde(text: &str, layer: BodyPart) -> Option<String> {
        Header::read_with(text, layer, false).ok().map(|header| summary(&header))
    }

    /// The SQS bodies of the captured microcosm-pubsub messages.
    fn fixture_bodies() -> Vec<String> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/microcosm-pubsub-3.0.0");
        let mut bodies: Vec<String> = std::fs::read_dir(dir)
            .expect("the fixtures")
            .map(|entry| {
                let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
                let message: serde_json::Value = serde_json::from_str(&text).unwrap();
                message["Body"].as_str().expect("a Body").to_owned()
            })
            .collect();
        bodies.sort();
        bodies
    }

    fn seeds() -> Vec<String> {
        let mut seeds = fixture_bodies();
        seeds.extend(
            [
                r#"{"mediaType":"a/b","opaqueData":{"x-a":"1"},"n":-0.5e+3,"l":[true,false,null,{}],"s":"\"\\\/\b\f\n\r\t\u00e9"}"#,
                r#" { "x" : [ 1 , [ 2 , { "y" : "z" } ] ] , "mediaType" : "m" } "#,
                r#"{"Message":"{\"mediaType\":\"m\",\"opaqueData\":{}}","MessageAttributes":{"a":{"Type":"String","Value":"v"}},"Type":"Notification"}"#,
                r#"{"Message":"x","mediaType":"m"}"#,
                r#"{"Type":"Notification","Message":"{\"mediaType\":\"a/b\",\"opaqueData\":{}}","MessageAttributes":{"media_type":{"Type":"String","Value":"a/b"}},"Timestamp":"t"}"#,
                r#"{"Message":"a\"b\\c\/d\be\ff\ng\rh\ti é","Type":"Notification"}"#,
                r#"{"opaqueData":{"X-Request-Id":"r","n":null,"X-A":"1","x-a":"2"},"mediaType":"m"}"#,
                r#"{"opaqueData":{"x-request-ttl":5,"a":"\u00e9","b":{"c":[1]}},"mediaType":"m"}"#,
                r#"{"opaqueData" : { } ,"mediaType":"m"}"#,
                r#"{}"#,
            ]
            .map(str::to_owned),
        );
        seeds
    }

    #[test]
    fn the_captured_messages_take_the_fast_path_and_read_as_through_serde() {
        for body in fixture_bodies() {
            let header = read_header(&body, BodyPart::Body).expect("the scanner reads a captured body");
            assert_eq!(Some(summary(&header)), by_serde(&body, BodyPart::Body), "{body}");
            if let Some(Field::Text(message)) = &header.notification_message {
                let inner = read_header(message, BodyPart::NotificationMessage).expect("and its message");
                assert_eq!(Some(summary(&inner)), by_serde(message, BodyPart::NotificationMessage));
            }
        }
    }

    #[test]
    fn what_the_scanner_is_not_sure_of_goes_to_serde_json() {
        for text in [
            r#"{"medi\u0061Type":"m"}"#, // an escape in a key
            r#"{"mediaType":"a\/b"}"#,   // an escape in mediaType
            r#"{"Message":"\u007b}"}"#,  // a \u escape in Message
            r#"{"mediaType":1}"#,        // mediaType not a string
            r#"{"Message":{}}"#,         // Message not a string
            r#"[]"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":"tab	in a string"}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":1} x"#,
            r#"{"a":1,}"#,
            r#"{"a":tru}"#,
        ] {
            assert!(read_header(text, BodyPart::Body).is_none(), "{text}");
        }
        let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(read_header(&deep, BodyPart::Body).is_none());
        assert_eq!(by_serde(&deep, BodyPart::Body).as_deref().map(|_| ()), Some(()), "serde_json reads it");
    }

    /// `MessageAttributes` that are the `media_type` attribute alone, written compactly, are
    /// stepped over in one piece, their value kept; any other form is walked (and read as
    /// serde_json reads it), its value not.
    #[test]
    fn the_media_type_attribute_alone_is_read_in_one_piece() {
        let cases = [
            (r#"{"media_type":{"Type":"String","Value":"a/b"}}"#, Some("a/b")),
            (r#"{"media_type":{"Type":"String","Value":""}}"#, Some("")),
            (r#"{"media_type":{"Type":"String","Value":"a\/b"}}"#, None),
            (r#"{"media_type":{"Type":"String","Value":"a\"b"}}"#, None),
            (r#"{"media_type":{"Type":"String","Value":"a/b"},"x":{"Type":"String","Value":"1"}}"#, None),
            (r#"{"media_type":{"Type":"String","Value":"a/b"} }"#, None),
            (r#"{"media_type": {"Type":"String","Value":"a/b"}}"#, None),
            (r#"{"media_type":{"Type":"Number","Value":"1"}}"#, None),
            (r#"{"x":{"Type":"String","Value":"a/b"}}"#, None),
        ];
        for (attributes, expected) in cases {
            let body = format!(r#"{{"Message":"m","MessageAttributes":{attributes},"Type":"Notification"}}"#);
            let Some(header) = read_header(&body, BodyPart::Body) else { panic!("not read: {body}") };
            assert_eq!(header.attributes_media_type, expected, "{attributes}");
            assert_eq!(header.notification_attributes, Some(attributes));
            assert_eq!(Some(summary(&header)), by_serde(&body, BodyPart::Body), "{body}");
        }
        // Cut short or broken, the attributes are refused as the walk refuses them.
        for attributes in [
            r#"{"media_type":{"Type":"String","Value":"a/b"}"#,
            r#"{"media_type":{"Type":"String","Value":"a/b"#,
            r#"{"media_type":{"Type":"String","Value":"a	b"}}"#,
        ] {
            let body = format!(r#"{{"Message":"m","MessageAttributes":{attributes}}}"#);
            assert!(read_header(&body, BodyPart::Body).is_none(), "{body}");
        }
    }

    /// Every escape at every offset of the words and of the tail, in strings of every length
    /// up to three words: the text `unescape` writes a word at a time is serde_json's.
    #[test]
    fn unescaping_agrees_with_serde_json_at_every_offset() {
        let escapes = [r#"\""#, r"\\", r"\/", r"\b", r"\f", r"\n", r"\r", r"\t"];
        for length in 0..24 {
            for at in 0..=length {
                for escape in escapes {
                    let plain = "aé".chars().cycle().take(length).collect::<String>();
                    let at = (0..=at).rev().find(|at| plain.is_char_boundary(*at)).unwrap();
                    let string = format!(r#""{}{escape}{}\"""#, &plain[..at], &plain[at..]);
                    let mut scan = Scanner { text: &string, at: 0 };
                    let expected: String = serde_json::from_str(&string).unwrap();
                    assert_eq!(scan.unescaped().as_deref(), Some(expected.as_str()), "{string}");
                    assert_eq!(scan.at, string.len(), "{string}");
                }
            }
        }
    }

    /// Bytes that matter to JSON's grammar, for mutations.
    const ALPHABET: &[u8] = b"{}[]\":,\\ \t\nu0123456789abfeE.-+tnrl\x01/";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        /// The scanner, where it reads a layer, reads what serde_json's path reads, and
        /// refuses nothing serde_json's path would read... as far as a mutated body shows:
        /// wherever it gives up, serde_json's path reads instead.
        #[test]
        fn the_scanner_agrees_with_serde_json(
            seed in any::<prop::sample::Index>(),
            mutations in prop::collection::vec((any::<prop::sample::Index>(), 0..3u8, any::<prop::sample::Index>()), 0..4),
            inner in any::<bool>(),
        ) {
            let seeds = seeds();
            let mut bytes = seed.get(&seeds).clone().into_bytes();
            for (at, kind, byte) in mutations {
                let at = at.index(bytes.len() + 1);
                let byte = *byte.get(ALPHABET);
                match kind {
                    0 if at < bytes.len() => { bytes.remove(at); }
                    1 if at < bytes.len() => bytes[at] = byte,
                    _ => bytes.insert(at, byte),
                }
            }
            let Ok(text) = String::from_utf8(bytes) else { return Ok(()) };
            let layer = if inner { BodyPart::NotificationMessage } else { BodyPart::Body };
            if let Some(header) = read_header(&text, layer) {
                prop_assert_eq!(Some(summary(&header)), by_serde(&text, layer), "{}", text);
            }
        }
    }
}
