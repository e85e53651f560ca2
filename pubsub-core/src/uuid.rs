//! Random ids shaped as UUIDs: message ids of the embedded broker, keys of offloaded payloads.

/// A random id shaped as a UUID version 4, lower-case, as SNS and SQS message ids and the
/// extended clients' object keys are.
pub(crate) fn uuid_v4() -> String {
    let high = (fastrand::u64(..) & !(0xF << 12)) | (0x4 << 12);
    let low = (fastrand::u64(..) & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xFFFF,
        high & 0xFFFF,
        low >> 48,
        low & 0xFFFF_FFFF_FFFF
    )
}
