//! The codec's behaviour and error reporting, through the public API.

use pubsub_core::{
    codec::BodyPart, codec::DecodeError, codec::EncodeError, decode, encode, OpaqueData, PubSubMessage,
    UntypedMessage,
};
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
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, schemars::JsonSchema)]
struct Line {
    #[validate(length(min = 1))]
    sku: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(changed = "ShoppingCart", organization = "acme", public)]
struct CartChanged {
    #[serde(rename = "cartURI")]
    #[validate(url)]
    cart_uri: String,
    #[validate(nested)]
    lines: Vec<Line>,
}

fn order() -> OrderCreated {
    OrderCreated { order_id: "o-1".into(), amount: 42, note: None, tags: vec![] }
}

#[test]
fn lifecycle_media_types_are_computed_at_compile_time() {
    assert_eq!(CartChanged::MEDIA_TYPE, "application/vnd.acme.pubsub.changed.shopping_cart");
    assert_eq!(OrderCreated::MEDIA_TYPE, "application/vnd.globality.pubsub._.created.order");
}

#[test]
fn encode_writes_the_envelope_and_leaves_out_nulls() {
    let opaque = OpaqueData::new().with_request_id("req-1").with_ttl(7);
    let body = encode(&order(), &opaque).unwrap();
    let value: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["mediaType"], OrderCreated::MEDIA_TYPE);
    assert_eq!(value["opaqueData"]["x-request-id"], "req-1");
    assert_eq!(value["opaqueData"]["x-request-ttl"], "7");
    assert!(value["opaqueData"]["x-request-published"].is_string());
    assert!(value.get("note").is_none(), "None is left out: {body}");
    assert_eq!(value["orderId"], "o-1");
    assert!(body.starts_with(r#"{"mediaType":"#), "mediaType comes first: {body}");
}

#[test]
fn encode_refuses_an_invalid_message_naming_wire_fields() {
    let bad = OrderCreated { order_id: String::new(), amount: -1, ..order() };
    let Err(EncodeError::Invalid { media_type, report }) = encode(&bad, &OpaqueData::new()) else {
        panic!("an invalid message must not encode");
    };
    assert_eq!(media_type, OrderCreated::MEDIA_TYPE);
    let fields: Vec<_> = report.violations.iter().map(|v| (v.field.as_str(), v.code.as_str())).collect();
    assert_eq!(fields, [("amount", "range"), ("orderId", "length")]);
    let text = report.to_string();
    assert!(text.contains("`orderId` has the wrong length: length must be at least 1"), "{text}");
    assert!(text.contains("`amount` is out of range: value must be at least 0 (got -1)"), "{text}");
}

#[test]
fn nested_and_renamed_violations_have_paths() {
    let cart = CartChanged {
        cart_uri: "not a url".into(),
        lines: vec![Line { sku: "a".into() }, Line { sku: "".into() }],
    };
    let Err(EncodeError::Invalid { report, .. }) = encode(&cart, &OpaqueData::new()) else { panic!() };
    let fields: Vec<_> = report.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["cartURI", "lines[1].sku"]);
}

#[test]
fn decode_reports_malformed_json_with_its_position() {
    let err = decode::<OrderCreated>("{\"mediaType\": \n  oops}").unwrap_err();
    match &err {
        DecodeError::Malformed { part: BodyPart::Body, line: 2, column, .. } => assert!(*column > 0),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("line 2"), "{err}");

    let notification = json!({"Type": "Notification", "Message": "{\"mediaType\": tru"}).to_string();
    let err = decode::<OrderCreated>(&notification).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed { part: BodyPart::NotificationMessage, .. }), "{err:?}");
    assert!(err.to_string().contains("SNS notification's `Message`"), "{err}");
}

#[test]
fn decode_names_each_envelope_fault() {
    type Expect = fn(&DecodeError) -> bool;
    let cases: [(&str, Expect); 7] = [
        ("[1, 2]", |e| matches!(e, DecodeError::NotAnObject { part: BodyPart::Body, found: "an array" })),
        ("\"text\"", |e| matches!(e, DecodeError::NotAnObject { found: "a string", .. })),
        ("{\"orderId\": \"o\"}", |e| matches!(e, DecodeError::MissingMediaType)),
        ("{\"mediaType\": 5}", |e| matches!(e, DecodeError::MediaTypeNotString { found: "a number" })),
        ("{\"Message\": {\"a\": 1}}", |e| {
            matches!(e, DecodeError::NotificationMessageNotString { found: "an object" })
        }),
        ("{\"Message\": \"[]\"}", |e| {
            matches!(e, DecodeError::NotAnObject { part: BodyPart::NotificationMessage, .. })
        }),
        ("{\"mediaType\": \"application/vnd.globality.pubsub._.created.order\", \"opaqueData\": [1]}", |e| {
            matches!(e, DecodeError::BadOpaqueData { .. })
        }),
    ];
    for (body, expected) in cases {
        let err = decode::<OrderCreated>(body).unwrap_err();
        assert!(expected(&err), "{body}: {err:?}");
    }
}

#[test]
fn decode_checks_the_media_type_then_the_schema_then_validation() {
    let err =
        decode::<OrderCreated>(r#"{"mediaType": "text/plain", "orderId": "o", "amount": 1}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "media type mismatch: expected `application/vnd.globality.pubsub._.created.order`, found `text/plain`"
    );

    let wrong_type =
        json!({"mediaType": OrderCreated::MEDIA_TYPE, "orderId": "o", "amount": "many"}).to_string();
    let err = decode::<OrderCreated>(&wrong_type).unwrap_err();
    assert!(
        matches!(&err, DecodeError::Schema { reason, .. } if reason.contains("invalid type: string")),
        "{err}"
    );

    let missing = json!({"mediaType": OrderCreated::MEDIA_TYPE, "amount": 1}).to_string();
    let err = decode::<OrderCreated>(&missing).unwrap_err();
    assert!(err.to_string().contains("missing field `orderId`"), "{err}");

    let invalid = json!({"mediaType": OrderCreated::MEDIA_TYPE, "orderId": "", "amount": 1}).to_string();
    let err = decode::<OrderCreated>(&invalid).unwrap_err();
    let DecodeError::Invalid { report, .. } = &err else { panic!("{err:?}") };
    assert_eq!(report.field("orderId").count(), 1);
}

/// A message that keeps every key it does not know, the envelope's among them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.open"]
struct Open {
    id: String,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

/// A notification's message whose `mediaType` and `opaqueData` come first is read from the
/// keys after them: the same message, and the same errors, at the message text's line and
/// column; a flattened field still sees the envelope's keys.
#[test]
fn a_notification_message_decodes_as_the_same_raw_body() {
    let in_notification = |body: &str| json!({"Type": "Notification", "Message": body}).to_string();
    let body = encode(&order(), &OpaqueData::new().with_request_id("r-1")).unwrap();
    let decoded = decode::<OrderCreated>(&in_notification(&body)).unwrap();
    assert_eq!(decoded.message, order());
    assert_eq!(decoded.opaque_data.request_id(), Some("r-1"));

    let wrong_type = body.replace(r#""amount":42"#, "\n\"amount\": \"many\"");
    assert_ne!(wrong_type, body);
    let raw = decode::<OrderCreated>(&wrong_type).unwrap_err();
    let wrapped = decode::<OrderCreated>(&in_notification(&wrong_type)).unwrap_err();
    let DecodeError::Schema { line: 2, column, .. } = wrapped else { panic!("{wrapped:?}") };
    assert!(column > 10, "{wrapped:?}");
    assert_eq!(wrapped.to_string(), raw.to_string());

    let open = r#"{"mediaType":"application/vnd.acme.pubsub.open","opaqueData":{},"id":"o-1","x":1}"#;
    let decoded = decode::<Open>(&in_notification(open)).unwrap().message;
    assert_eq!(decoded, decode::<Open>(open).unwrap().message);
    assert_eq!(decoded.rest.keys().collect::<Vec<_>>(), ["mediaType", "opaqueData", "x"]);
}

#[test]
fn decode_ignores_unknown_fields_and_accepts_a_raw_message_field() {
    let body = json!({
        "mediaType": OrderCreated::MEDIA_TYPE, "orderId": "o", "amount": 1, "newField": {"x": [1]},
        // A raw message with its own `mediaType` is raw even when it has a `Message` key.
        "Message": "not a notification"
    })
    .to_string();
    assert_eq!(decode::<OrderCreated>(&body).unwrap().message.order_id, "o");
}

#[test]
fn non_finite_floats_are_refused_not_written_as_null() {
    #[derive(Serialize, Deserialize, Validate, PubSubMessage)]
    #[media_type = "application/vnd.globality.pubsub.simple"]
    struct Simple {
        message: String,
        timestamp: f64,
    }
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = encode(&Simple { message: "m".into(), timestamp: bad }, &OpaqueData::new()).unwrap_err();
        assert!(matches!(&err, EncodeError::NonFiniteFloat { field } if field == "timestamp"), "{err}");
    }
}

#[test]
fn untyped_messages_check_the_convention_both_ways() {
    let err = UntypedMessage::new("application/vnd.globality.pubsub._.created.widget", json!({"id": 1}))
        .map(|m| pubsub_core::encode(&m, &OpaqueData::new()))
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("`uri` is required by the `created` convention"), "{err}");

    let body = json!({"mediaType": "application/vnd.globality.pubsub._.deleted.widget", "id": 7}).to_string();
    let err = pubsub_core::decode::<pubsub_core::UntypedMessage>(&body).unwrap_err();
    assert!(err.to_string().contains("`id` must be a string, but it is a number"), "{err}");

    let free_form =
        json!({"mediaType": "application/vnd.globality.pubsub.simple", "anything": 1}).to_string();
    assert_eq!(
        pubsub_core::decode::<pubsub_core::UntypedMessage>(&free_form).unwrap().message.content["anything"],
        1
    );

    assert!(UntypedMessage::new("no-slash", json!({})).is_err());
    assert!(UntypedMessage::new("a/b", json!([1])).is_err());
    assert!(UntypedMessage::new("a/b", json!({"opaqueData": {}})).is_err());
}

mod reexport {
    pub use pubsub_core as renamed;
}

#[derive(Serialize, Deserialize, Validate, reexport::renamed::PubSubMessage)]
#[pubsub(crate = "reexport::renamed")]
#[media_type(deleted = "Thing")]
struct ThroughReexport {
    id: String,
}

#[test]
fn the_crate_path_can_be_overridden() {
    assert_eq!(ThroughReexport::MEDIA_TYPE, "application/vnd.globality.pubsub._.deleted.thing");
    let body = encode(&ThroughReexport { id: "t".into() }, &OpaqueData::new()).unwrap();
    assert_eq!(decode::<ThroughReexport>(&body).unwrap().message.id, "t");
}
