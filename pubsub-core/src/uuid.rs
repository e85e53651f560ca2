//! Random ids shaped as UUIDs: message ids of the embedded broker, keys of offloaded payloads.
//! Written digit by digit into one buffer: `format!` with hex specifiers cost about 3,000
//! instructions an id, paid twice per message by the embedded broker.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A random id shaped as a UUID version 4, lower-case, as SNS and SQS message ids and the
/// extended clients' object keys are.
pub(crate) fn uuid_v4() -> String {
    Uuid::random().text()
}

/// A UUID version 4 as its 128 bits (16 bytes, where its text takes 60 with its allocation):
/// what the embedded broker keeps of a queued notification's message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Uuid {
    high: u64,
    low: u64,
}

impl Uuid {
    /// A random one, with the version (4) and variant (`10`) bits set.
    pub(crate) fn random() -> Uuid {
        let high = (fastrand::u64(..) & !(0xF << 12)) | (0x4 << 12);
        let low = (fastrand::u64(..) & !(0b11 << 62)) | (0b10 << 62);
        Uuid { high, low }
    }

    /// The UUID whose [`text`](Uuid::text) is `text` (lower-case hex, dashes where they go),
    /// if it is one.
    pub(crate) fn parse(text: &str) -> Option<Uuid> {
        let bytes = text.as_bytes();
        if bytes.len() != 36 || [8, 13, 18, 23].iter().any(|at| bytes[*at] != b'-') {
            return None;
        }
        let mut words = [0u64; 2];
        let digits = bytes.iter().filter(|byte| **byte != b'-');
        for (index, byte) in digits.enumerate() {
            let nibble = lower_hex_digit(*byte)?;
            let word = &mut words[index / 16];
            *word = (*word << 4) | u64::from(nibble);
        }
        Some(Uuid { high: words[0], low: words[1] })
    }

    /// Its text: `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`, lower-case.
    pub(crate) fn text(self) -> String {
        String::from_utf8(self.ascii().to_vec()).expect("hex digits and dashes are ASCII")
    }

    /// Its text's bytes, on the stack: for writing it into a larger text.
    pub(crate) fn ascii(self) -> [u8; 36] {
        // Where each of the 32 digits goes: dashes at 8, 13, 18 and 23.
        const AT: [u8; 32] = [
            0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 19, 20, 21, 22, 24, 25, 26, 27, 28, 29,
            30, 31, 32, 33, 34, 35,
        ];
        let mut text = *b"00000000-0000-0000-0000-000000000000";
        for digit in 0..16 {
            let shift = 60 - 4 * digit;
            text[usize::from(AT[digit])] = HEX[((self.high >> shift) & 0xF) as usize];
            text[usize::from(AT[16 + digit])] = HEX[((self.low >> shift) & 0xF) as usize];
        }
        text
    }
}

/// The value of a lower-case hex digit.
pub(crate) fn lower_hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

/// `value` as 16 lower-case hex digits, appended to `out`.
pub(crate) fn push_hex_u64(out: &mut String, value: u64) {
    for digit in (0..16).rev() {
        out.push(char::from(HEX[((value >> (4 * digit)) & 0xF) as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_digits_match_format() {
        for value in [0, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            let mut out = String::new();
            push_hex_u64(&mut out, value);
            assert_eq!(out, format!("{value:016x}"));
        }
    }

    #[test]
    fn uuid_text_is_the_bits_in_order() {
        let uuid = Uuid { high: 0x0123_4567_89ab_4def, low: 0x8123_4567_89ab_cdef };
        assert_eq!(uuid.text(), "01234567-89ab-4def-8123-456789abcdef");
        assert_eq!(Uuid::parse(&uuid.text()), Some(uuid));
        let random = Uuid::random();
        assert_eq!(Uuid::parse(&random.text()), Some(random));
        for other in
            ["", "01234567-89AB-4def-8123-456789abcdef", "0123456789ab-4def-8123-456789abcdef-", "m-1"]
        {
            assert_eq!(Uuid::parse(other), None, "{other}");
        }
    }

    #[test]
    fn uuids_have_the_v4_shape() {
        let id = uuid_v4();
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
        assert!(id.bytes().all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{id}");
        assert_eq!(&groups[2][..1], "4", "{id}");
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'), "{id}");
    }
}
