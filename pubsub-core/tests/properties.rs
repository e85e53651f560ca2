//! Property tests: encode -> decode round-trips arbitrary values exactly, and decoding never
//! panics, whatever the input.

use std::collections::BTreeMap;

use proptest::prelude::*;
use pubsub_core::{
    codec::{DecodeError, EncodeError},
    decode, encode,
    registry::Registry,
    OpaqueData, PubSubMessage,
};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.everything"]
#[serde(rename_all = "camelCase")]
struct Everything {
    text: String,
    maybe_text: Option<String>,
    signed: i64,
    unsigned: u64,
    real: f64,
    maybe_real: Option<f64>,
    flag: bool,
    list: Vec<String>,
    map: BTreeMap<String, f64>,
}

fn finite() -> impl Strategy<Value = f64> {
    prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO | prop::num::f64::NEGATIVE
}

fn text() -> impl Strategy<Value = String> {
    // Arbitrary unicode (including control characters and quotes), empty, and large.
    prop_oneof![any::<String>(), Just(String::new()), "\\PC{1000,3000}"]
}

fn everything() -> impl Strategy<Value = Everything> {
    (
        text(),
        proptest::option::of(text()),
        any::<i64>(),
        any::<u64>(),
        finite(),
        proptest::option::of(finite()),
        any::<bool>(),
        prop::collection::vec(any::<String>(), 0..8),
        prop::collection::btree_map(any::<String>(), finite(), 0..8),
    )
        .prop_map(|(text, maybe_text, signed, unsigned, real, maybe_real, flag, list, map)| Everything {
            text,
            maybe_text,
            signed,
            unsigned,
            real,
            maybe_real,
            flag,
            list,
            map,
        })
}

fn opaque() -> impl Strategy<Value = OpaqueData> {
    prop::collection::btree_map("[A-Za-z0-9-]{1,20}", any::<String>(), 0..6).prop_map(OpaqueData::from_iter)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_decode_round_trips(message in everything(), opaque in opaque()) {
        let body = encode(&message, &opaque).unwrap();
        let decoded = decode::<Everything>(&body).unwrap();
        prop_assert_eq!(&decoded.message, &message);
        prop_assert_eq!(decoded.media_type.as_str(), Everything::MEDIA_TYPE);
        for (key, value) in opaque.iter().filter(|(k, _)| *k != "x-request-published") {
            prop_assert_eq!(decoded.opaque_data.get(key), Some(value));
        }
        prop_assert!(decoded.opaque_data.published_seconds().is_some());
        // The untyped path reads the same body.
        let untyped = pubsub_core::decode::<pubsub_core::UntypedMessage>(&body).unwrap();
        prop_assert_eq!(untyped.message.content["text"].as_str(), Some(message.text.as_str()));
    }

    #[test]
    fn a_round_trip_through_an_sns_notification_is_the_same(message in everything()) {
        let body = encode(&message, &OpaqueData::new()).unwrap();
        let notification = serde_json::json!({"Type": "Notification", "Message": body}).to_string();
        prop_assert_eq!(decode::<Everything>(&notification).unwrap().message, message);
    }

    #[test]
    fn a_non_finite_float_is_refused(mut message in everything(), which in 0..3usize, bad in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)]) {
        let field = match which {
            0 => { message.real = bad; "real" }
            1 => { message.maybe_real = Some(bad); "maybeReal" }
            _ => { message.map.insert("k".into(), bad); "map" }
        };
        let err = encode(&message, &OpaqueData::new()).unwrap_err();
        prop_assert!(matches!(&err, EncodeError::NonFiniteFloat { field: f } if f == field), "{}", err);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = decode::<Everything>(&text);
        let _ = pubsub_core::decode::<pubsub_core::UntypedMessage>(&text);
        let _ = Registry::global().unwrap().decode(&text);
    }

    #[test]
    fn decoding_damaged_bodies_never_panics(message in everything(), cut in any::<prop::sample::Index>(), junk in "[{}\\[\\]\",:a-z0-9\\\\]{0,8}") {
        let body = encode(&message, &OpaqueData::new()).unwrap();
        let mut at = cut.index(body.len() + 1);
        while !body.is_char_boundary(at) { at -= 1; }
        let damaged = format!("{}{}{}", &body[..at], junk, &body[at..]);
        let _ = decode::<Everything>(&damaged);
        let _ = pubsub_core::decode::<pubsub_core::UntypedMessage>(&damaged);
        let notification = serde_json::json!({"Message": damaged}).to_string();
        let _ = decode::<Everything>(&notification);
    }

    /// A notification's message is read apart from its header when the header comes first:
    /// it decodes to what the same text decodes to as a raw body, and fails with the same
    /// error (its line and column those of the message text), whatever the damage.
    #[test]
    fn a_message_decodes_in_a_notification_as_it_does_raw(message in everything(), opaque in opaque(), cut in any::<prop::sample::Index>(), junk in "[{}\\[\\]\",:a-z0-9\\\\]{0,8}") {
        let body = encode(&message, &opaque).unwrap();
        let at = body.len() - 1 - cut.index(body.len() / 2);
        let at = (0..=at).rev().find(|at| body.is_char_boundary(*at)).unwrap();
        for text in [body.clone(), format!("{}{}{}", &body[..at], junk, &body[at..])] {
            let raw = decode::<Everything>(&text);
            let notification = serde_json::json!({"Type": "Notification", "Message": text}).to_string();
            let wrapped = decode::<Everything>(&notification);
            match (raw, wrapped) {
                (Ok(raw), Ok(wrapped)) => {
                    prop_assert_eq!(raw.message, wrapped.message);
                    prop_assert_eq!(raw.opaque_data, wrapped.opaque_data);
                }
                // A syntax error names the layer it is in; any other is worded the same.
                (Err(DecodeError::Malformed { .. }), Err(DecodeError::Malformed { .. })) => {}
                (Err(raw), Err(wrapped)) => prop_assert_eq!(raw.to_string(), wrapped.to_string()),
                (raw, wrapped) => prop_assert!(false, "raw {raw:?}, in a notification {wrapped:?}"),
            }
        }
    }
}
