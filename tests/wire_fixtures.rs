//! Every message captured from microcosm-pubsub 3.0.0 decodes, and our encoding of the same
//! content has the shape of the captured body.

use pubsub_core::{
    decode, encode, media_type::Change, registry::Registry, OpaqueData, PubSubMessage, UntypedMessage,
};
use pubsub_suite::{captured, captured_entries};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use validator::Validate;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.globality.pubsub._.created.order"]
#[serde(rename_all = "camelCase")]
struct OrderCreated {
    #[validate(length(min = 1))]
    order_id: String,
    #[validate(range(min = 0))]
    amount: i64,
    note: Option<String>,
    // The seed leaves an empty list out; without `skip_serializing_if` it is written as `[]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
}

/// The message inside an SQS body, as a JSON value.
fn message_value(body: &str) -> Value {
    let outer: Value = serde_json::from_str(body).unwrap();
    match outer.get("Message").and_then(Value::as_str) {
        Some(inner) => serde_json::from_str(inner).unwrap(),
        None => outer,
    }
}

/// Compares two message bodies as JSON values, the publish stamp aside (it is the time of
/// encoding), and checks both stamps have the seed's form.
fn assert_same_shape(ours: &str, captured: &Value) {
    let mut ours: Value = serde_json::from_str(ours).unwrap();
    let mut captured = captured.clone();
    for value in [&mut ours, &mut captured] {
        let stamp = value["opaqueData"]
            .as_object_mut()
            .unwrap()
            .remove("x-request-published")
            .expect("x-request-published is stamped");
        let stamp = stamp.as_str().expect("the stamp is a string");
        let (seconds, fraction) = stamp.split_once('.').expect("seconds with a fraction");
        assert!(seconds.parse::<u64>().is_ok() && fraction.parse::<u64>().is_ok(), "{stamp}");
    }
    assert_eq!(ours, captured);
}

#[test]
fn order_fixtures_decode_typed_in_both_envelopes() {
    for file in ["order_created.sns.json", "order_created.raw.json"] {
        let decoded = decode::<OrderCreated>(&captured(file).body).unwrap();
        assert_eq!(
            decoded.message,
            OrderCreated {
                order_id: "o-1".into(),
                amount: 42,
                note: Some("h\u{e9}llo \u{2713}".into()),
                tags: vec!["a".into(), "b".into()],
            },
            "{file}"
        );
        assert_eq!(decoded.media_type, OrderCreated::MEDIA_TYPE);
        assert_eq!(decoded.opaque_data.get("x-request-published"), Some("1795800748.7734325"));
        assert_eq!(decoded.opaque_data.request_id(), None);
    }
}

#[test]
fn opaque_data_comes_out_as_sent() {
    for file in ["order_created_opaque.sns.json", "order_created_opaque.raw.json"] {
        let decoded = decode::<OrderCreated>(&captured(file).body).unwrap();
        let opaque = &decoded.opaque_data;
        assert_eq!(opaque.request_id(), Some("req-123"), "{file}");
        assert_eq!(opaque.ttl(), Some(5));
        assert_eq!(opaque.get("x-custom"), Some("v"));
        assert_eq!(opaque.published_seconds(), Some(1_795_800_748.889_509));
        // Absent optional fields stay absent; `tags` takes its serde default.
        assert_eq!(decoded.message.note, None);
        assert!(decoded.message.tags.is_empty());
    }
}

#[test]
fn our_encoding_has_the_captured_shape() {
    for entry in captured_entries().iter().filter(|e| e.file.starts_with("order_created")) {
        let decoded = decode::<OrderCreated>(&entry.body).unwrap();
        let ours = encode(&decoded.message, &decoded.opaque_data).unwrap();
        assert_same_shape(&ours, &message_value(&entry.body));
    }
}

#[test]
fn convention_fixtures_decode_untyped() {
    let expected = [
        ("uri_created", Change::Created, json!({"uri": "http://example.com/api/v1/widget/1"})),
        (
            "uri_changed",
            Change::Changed,
            json!({"uri": "http://example.com/api/v1/widget/1", "field_name": "color", "new_value": "red"}),
        ),
        ("identity_deleted", Change::Deleted, json!({"id": "w-1"})),
    ];
    for (name, change, content) in expected {
        for envelope in ["sns", "raw"] {
            let entry = captured(&format!("{name}.{envelope}.json"));
            let decoded = pubsub_core::decode::<pubsub_core::UntypedMessage>(&entry.body).unwrap();
            let lifecycle = decoded.message.lifecycle().expect("a lifecycle media type");
            assert_eq!((lifecycle.change, lifecycle.resource.as_str()), (change, "widget"), "{name}");
            assert_eq!(Value::Object(decoded.message.content.clone()), content, "{name}");

            let ours = pubsub_core::encode(&decoded.message, &decoded.opaque_data).unwrap();
            assert_same_shape(&ours, &message_value(&entry.body));
        }
    }
}

#[test]
fn conventional_constructors_build_the_captured_messages() {
    let built = [
        ("uri_created.raw.json", UntypedMessage::created("Widget", "http://example.com/api/v1/widget/1")),
        (
            "uri_changed.raw.json",
            UntypedMessage::changed(
                "Widget",
                "http://example.com/api/v1/widget/1",
                Some("color"),
                Some(json!("red")),
            ),
        ),
        ("identity_deleted.raw.json", UntypedMessage::deleted("Widget", "w-1")),
    ];
    for (file, message) in built {
        let entry = captured(file);
        let captured = message_value(&entry.body);
        let published = captured["opaqueData"]["x-request-published"].as_str().unwrap();
        let opaque = OpaqueData::from_iter([("x-request-published", published)]);
        assert_same_shape(&pubsub_core::encode(&message, &opaque).unwrap(), &captured);
    }
}

#[test]
fn the_registry_decodes_every_fixture() {
    let registry = Registry::global().unwrap();
    for entry in captured_entries() {
        let decoded = registry.decode(&entry.body).unwrap_or_else(|e| panic!("{}: {e}", entry.file));
        let content = decoded.message.to_json();
        let captured = message_value(&entry.body);
        for (key, value) in content.as_object().unwrap() {
            assert_eq!(&captured[key], value, "{}: {key}", entry.file);
        }
        if entry.file.starts_with("order_created") {
            assert!(decoded.message.downcast::<OrderCreated>().is_ok(), "{}", entry.file);
        }
    }
}

#[test]
fn every_captured_message_validates_against_its_schema() {
    let registry = Registry::global().unwrap();
    for entry in captured_entries() {
        let message = message_value(&entry.body);
        let media_type = message["mediaType"].as_str().unwrap();
        let schema = registry
            .json_schema(media_type)
            .unwrap_or_else(|| panic!("{}: no schema for {media_type}", entry.file));
        let validator =
            jsonschema::draft202012::options().should_validate_formats(true).build(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(&message).map(|error| error.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}\n{schema:#}", entry.file);
        // And the schema is no rubber stamp: the same message without its conventional or
        // declared field is refused.
        let mut incomplete = message.clone();
        let field =
            ["orderId", "uri", "id"].into_iter().find(|field| incomplete.get(*field).is_some()).unwrap();
        incomplete.as_object_mut().unwrap().remove(field);
        assert!(!validator.is_valid(&incomplete), "{}: {field} is required", entry.file);
    }
    // The typed fixtures were read with the Rust type's schema, the lifecycle ones with the
    // convention's.
    assert_eq!(
        registry.json_schema(OrderCreated::MEDIA_TYPE),
        pubsub_core::schema::json_schema::<OrderCreated>()
    );
}
