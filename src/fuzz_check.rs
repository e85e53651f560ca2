//! The checks behind the fuzz targets in `fuzz/` and their replay test `tests/fuzz_corpus.rs`:
//! one SQS body goes through every decode path (typed, untyped, the registry), and whatever
//! decodes must survive a round trip.
//!
//! Each check panics when a property fails, which is how libFuzzer learns of it. The message
//! types live with the caller (the fuzz crate, included by the replay test) and not here:
//! this crate is linked into every test binary of the repository, and a type derived here
//! would register its media type in each of their registries.
//!
//! ```
//! use pubsub_suite::fuzz_check::{check_typed, decode_any, TypedCheck};
//! # use pubsub_core::PubSubMessage;
//! # use serde::{Deserialize, Serialize};
//! #[derive(Debug, PartialEq, Serialize, Deserialize, validator::Validate, PubSubMessage)]
//! #[media_type = "application/vnd.acme.pubsub.doc.ping"]
//! struct Ping { n: u8 }
//!
//! const TYPED: &[TypedCheck] = &[check_typed::<Ping>];
//! let reached = decode_any(br#"{"mediaType": "application/vnd.acme.pubsub.doc.ping", "n": 1}"#, TYPED);
//! assert_eq!((reached.typed, reached.registry), (1, true));
//! assert_eq!(decode_any(b"not json", TYPED).typed, 0);
//! ```

use std::fmt::Debug;

use pubsub_core::{
    codec::REQUEST_PUBLISHED, decode, encode, registry::DynMessage, registry::Registry, registry::SchemaKind,
    Decoded, OpaqueData, PubSubMessage, UntypedMessage,
};
use serde_json::{Map, Value};

/// How far one body got down each decode path (the replay test checks a corpus reaches deep).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reached {
    /// How many of the typed checks decoded it (at most one, as media types differ).
    pub typed: usize,
    /// Whether `decode_untyped` accepted it.
    pub untyped: bool,
    /// Whether `Registry::global().decode` accepted it.
    pub registry: bool,
}

/// One body under test, with what the other paths made of it.
pub struct Probe<'a> {
    body: &'a str,
    /// The message `body` was built around by [`decode_wrapped`], which must decode the same.
    inner: Option<&'a str>,
    registry: Option<&'a Decoded<DynMessage>>,
}

/// The check of one message type, [`check_typed::<T>`](check_typed).
pub type TypedCheck = fn(&Probe<'_>) -> bool;

/// Runs an arbitrary SQS body (lossily made UTF-8, as SQS bodies are strings) through the
/// registry, each typed check and the untyped decode, and checks they agree and round-trip.
/// Panics when a property fails; returns how far the body got.
pub fn decode_any(data: &[u8], typed: &[TypedCheck]) -> Reached {
    let body = String::from_utf8_lossy(data);
    probe(&body, None, typed)
}

/// Like [`decode_any`], with `data` as the `Message` of an SNS notification: mutations then
/// land in the message rather than in its JSON escaping. Whatever decodes must decode the
/// same from `data` sent raw.
pub fn decode_wrapped(data: &[u8], typed: &[TypedCheck]) -> Reached {
    let message = String::from_utf8_lossy(data);
    probe(&notification(&message), Some(&message), typed)
}

fn probe(body: &str, inner: Option<&str>, typed: &[TypedCheck]) -> Reached {
    let registry = Registry::global().expect("the message types under test have distinct media types");
    let by_registry = registry.decode(body);
    if let Ok(decoded) = &by_registry {
        assert!(registry.lookup(&decoded.media_type).is_some(), "decoded without a schema: {body:?}");
    }
    let probe = Probe { body, inner, registry: by_registry.as_ref().ok() };
    Reached {
        typed: typed.iter().filter(|check| check(&probe)).count(),
        untyped: check_untyped(&probe),
        registry: by_registry.is_ok(),
    }
}

/// Decodes the probe's body as `T`. When it decodes: the registry gave the same value, the
/// same body sent raw (for [`decode_wrapped`]) does too, and encoding the value then decoding
/// it, raw and through a notification, gives it back with its media type and opaque data.
/// Returns whether it decoded.
pub fn check_typed<T: PubSubMessage + PartialEq + Debug>(probe: &Probe<'_>) -> bool {
    let name = std::any::type_name::<T>();
    let direct = decode::<T>(probe.body);
    // T's media type is registered exactly, so the registry takes T's own path for it.
    let by_registry = probe.registry.filter(|d| d.media_type == T::MEDIA_TYPE);
    match (&direct, by_registry) {
        (Ok(direct), Some(by_registry)) => {
            let message = by_registry.message.downcast_ref::<T>();
            assert_eq!(message, Some(&direct.message), "registry and {name} disagree on {:?}", probe.body);
            assert_eq!(by_registry.opaque_data, direct.opaque_data);
        }
        (Ok(_), None) => panic!("{name} decoded {:?} but the registry did not", probe.body),
        (Err(e), Some(_)) => panic!("the registry decoded {:?} as {name}, which refused it: {e}", probe.body),
        (Err(_), None) => {}
    }
    let Ok(decoded) = direct else { return false };
    if let Some(inner) = probe.inner {
        let raw = decode::<T>(inner).unwrap_or_else(|e| panic!("{inner:?} decodes wrapped, not raw: {e}"));
        assert_eq!(raw, decoded, "{inner:?} decodes differently raw and wrapped");
    }

    let body = encode(&decoded.message, &decoded.opaque_data)
        .unwrap_or_else(|e| panic!("a decoded {name} does not encode: {e}\n{decoded:?}"));
    let again = decode::<T>(&body).unwrap_or_else(|e| panic!("{name} does not decode its own {body:?}: {e}"));
    assert_eq!(again.message, decoded.message, "{name} changed through {body:?}");
    assert_eq!(again.media_type, decoded.media_type);
    assert_same_opaque(&again.opaque_data, &decoded.opaque_data);
    let wrapped = decode::<T>(&notification(&body)).expect("an encoded body decodes in a notification");
    assert_eq!(wrapped, again, "{name} differs through a notification");
    true
}

/// Decodes the probe's body untyped; when it decodes, the registry agrees (for media types it
/// decodes untyped), the raw body agrees, and encode then decode gives the same content (the
/// encoder leaves top-level `null`s out). Returns whether it decoded.
fn check_untyped(probe: &Probe<'_>) -> bool {
    let Ok(decoded) = pubsub_core::decode::<pubsub_core::UntypedMessage>(probe.body) else { return false };
    let registry = Registry::global().expect("built by probe");
    match registry.lookup(&decoded.media_type).map(|schema| schema.kind()) {
        Some(SchemaKind::Untyped) => {
            let by_registry = probe.registry.and_then(|d| d.message.downcast_ref::<UntypedMessage>());
            assert_eq!(
                by_registry,
                Some(&decoded.message),
                "registry and untyped disagree: {:?}",
                probe.body
            );
        }
        // Typed schemas are `check_typed`'s; they may refuse what untyped reads.
        Some(SchemaKind::Typed) => {}
        None => assert!(probe.registry.is_none(), "registry decoded an unknown media type: {:?}", probe.body),
    }
    if let Some(inner) = probe.inner {
        let raw = pubsub_core::decode::<pubsub_core::UntypedMessage>(inner)
            .unwrap_or_else(|e| panic!("{inner:?} decodes wrapped, not raw: {e}"));
        assert_eq!(raw, decoded, "{inner:?} decodes differently raw and wrapped");
    }

    let body = pubsub_core::encode(&decoded.message, &decoded.opaque_data)
        .unwrap_or_else(|e| panic!("a decoded untyped message does not encode: {e}\n{decoded:?}"));
    let again = pubsub_core::decode::<pubsub_core::UntypedMessage>(&body)
        .unwrap_or_else(|e| panic!("untyped does not decode its own {body:?}: {e}"));
    assert_eq!(again.message.media_type, decoded.message.media_type);
    assert_eq!(again.message.content, without_nulls(&decoded.message.content), "changed through {body:?}");
    assert_same_opaque(&again.opaque_data, &decoded.opaque_data);
    true
}

/// An SNS notification around `message`, as SQS delivers it without raw delivery.
fn notification(message: &str) -> String {
    serde_json::json!({"Type": "Notification", "Message": message}).to_string()
}

fn without_nulls(content: &Map<String, Value>) -> Map<String, Value> {
    content.iter().filter(|(_, value)| !value.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Opaque data survives a round trip, except the publish stamp, which encode sets anew.
fn assert_same_opaque(again: &OpaqueData, before: &OpaqueData) {
    assert!(again.published_seconds().is_some(), "encode stamps {REQUEST_PUBLISHED}");
    let unstamped = |opaque: &OpaqueData| -> Vec<(String, String)> {
        opaque.iter().filter(|(k, _)| *k != REQUEST_PUBLISHED).map(|(k, v)| (k.into(), v.into())).collect()
    };
    assert_eq!(unstamped(again), unstamped(before), "opaque data changed");
}
