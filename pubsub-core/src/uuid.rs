//! Random ids shaped as UUIDs: message ids of the embedded broker, keys of offloaded payloads.
//! Written digit by digit into one buffer: `format!` with hex specifiers cost about 3,000
//! instructions an id, paid twice per message by the embedded broker.

/// A random id shaped as a UUID version 4, lower-case, as SNS and SQS message ids and the
/// extended clients' object keys are.
pub(crate) fn uuid_v4() -> String {
    Uuid::random().text()
}

/// The groups of a UUID's 32 digits in its text: (first digit, where it goes, digits), the
/// dashes between them at 8, 13, 18 and 23.
const GROUPS: [(usize, usize, usize); 5] = [(0, 0, 8), (8, 9, 4), (12, 14, 4), (16, 19, 4), (20, 24, 12)];

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
        let mut digits = [0u8; 32];
        for (digit, at, len) in GROUPS {
            digits[digit..digit + len].copy_from_slice(&bytes[at..at + len]);
        }
        Some(Uuid { high: parse_hex(&digits[..16])?, low: parse_hex(&digits[16..])? })
    }

    /// Its text: `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`, lower-case.
    pub(crate) fn text(self) -> String {
        String::from_utf8(self.ascii().to_vec()).expect("hex digits and dashes are ASCII")
    }

    /// Its text's bytes, on the stack: for writing it into a larger text.
    pub(crate) fn ascii(self) -> [u8; 36] {
        let mut digits = [0u8; 32];
        digits[..16].copy_from_slice(&hex_digits(self.high));
        digits[16..].copy_from_slice(&hex_digits(self.low));
        let mut text = [b'-'; 36];
        for (digit, at, len) in GROUPS {
            text[at..at + len].copy_from_slice(&digits[digit..digit + len]);
        }
        text
    }
}

/// `value` as 16 lower-case hex digits, eight at a time: each nibble spread into a byte of
/// its own, then made a digit or a letter in one addition (a digit at a time was 15
/// instructions each, three ids a message).
fn hex_digits(value: u64) -> [u8; 16] {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let eight = |half: u64| {
        // The four bytes of `half`, most significant first, into every other byte.
        let mut x = half.swap_bytes() >> 32;
        x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
        x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
        // Each byte holds two nibbles, high first: the high goes to the lower byte.
        let x = ((x >> 4) & 0x0F0F_0F0F_0F0F_0F0F) | ((x & 0x0F0F_0F0F_0F0F_0F0F) << 8);
        let x = x & 0x0F0F_0F0F_0F0F_0F0F;
        // 0x30 makes '0'..'9'; a nibble from 10 gains 0x27 more, to 'a'..'f'.
        let letters = ((x + ONES * 6) >> 4) & ONES;
        (x + ONES * 0x30 + letters * 0x27).to_le_bytes()
    };
    let mut digits = [0; 16];
    digits[..8].copy_from_slice(&eight(value >> 32));
    digits[8..].copy_from_slice(&eight(value & 0xFFFF_FFFF));
    digits
}

/// The value of each byte as a lower-case hex digit; 0x10 for any other byte.
const HEX_VALUES: [u8; 256] = {
    let mut values = [0x10; 256];
    let mut digit = 0;
    while digit < 16 {
        values[b"0123456789abcdef"[digit] as usize] = digit as u8;
        digit += 1;
    }
    values
};

/// The number `digits` (lower-case hex, most significant first, at most 16) write, if they
/// are all hex digits: a table lookup each, the check once at the end (no branch a digit).
pub(crate) fn parse_hex(digits: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    let mut others = 0u8;
    for byte in digits {
        let nibble = HEX_VALUES[usize::from(*byte)];
        others |= nibble;
        value = (value << 4) | u64::from(nibble & 0xF);
    }
    (others < 0x10).then_some(value)
}

/// `first` then `second` as 16 lower-case hex digits each, checked as UTF-8 once.
pub(crate) fn hex_pair(first: u64, second: u64) -> String {
    let mut digits = [0u8; 32];
    digits[..16].copy_from_slice(&hex_digits(first));
    digits[16..].copy_from_slice(&hex_digits(second));
    std::str::from_utf8(&digits).expect("hex digits are ASCII").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_reads_back_what_is_written_and_nothing_else() {
        for value in [0, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(parse_hex(&hex_digits(value)), Some(value));
        }
        for byte in 0..=255u8 {
            let mut digits = hex_digits(0x0123_4567_89ab_cdef);
            digits[7] = byte;
            let expected = byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
            assert_eq!(parse_hex(&digits).is_some(), expected, "{byte:#04x}");
        }
    }

    #[test]
    fn hex_digits_match_format() {
        let mut values = vec![0, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];
        // Every nibble value at every position.
        for position in 0..16 {
            values.extend((0..16u64).map(|nibble| nibble << (4 * position)));
        }
        values.extend((0..1000).map(|_| fastrand::u64(..)));
        for pair in values.windows(2) {
            assert_eq!(hex_pair(pair[0], pair[1]), format!("{:016x}{:016x}", pair[0], pair[1]));
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
