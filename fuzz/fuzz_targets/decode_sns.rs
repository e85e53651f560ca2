//! Arbitrary bytes as the `Message` of an SNS notification, so mutations hit the message and
//! not its JSON escaping; it must also decode the same raw (see `pubsub_suite::fuzz_check`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pubsub_suite::fuzz_check::decode_wrapped(data, pubsub_fuzz::TYPED);
});
