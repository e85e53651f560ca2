//! Arbitrary bytes as an SQS body (raw message or SNS notification) through every decode path:
//! no panic, and whatever decodes round-trips (see `pubsub_suite::fuzz_check`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pubsub_suite::fuzz_check::decode_any(data, pubsub_fuzz::TYPED);
});
