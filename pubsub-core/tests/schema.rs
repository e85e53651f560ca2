//! The JSON Schema of a derived type against the codec: every body the encoder writes
//! validates, and every body the decoder refuses (a validation rule, or serde) is refused by the
//! schema too. Checked with the `jsonschema` crate (draft 2020-12, formats asserted).

use std::sync::LazyLock;

use proptest::prelude::*;
use pubsub_core::codec::DecodeError;
use pubsub_core::registry::Registry;
use pubsub_core::schema::{json_schema, lifecycle_json_schema, DIALECT};
use pubsub_core::{decode, encode, OpaqueData, PubSubMessage};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use validator::Validate;

static CODE: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new("^[A-Z]{3}[0-9]$").unwrap());

/// Where an order goes.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
struct Address {
    #[validate(length(min = 2, max = 10))]
    postal_code: String,
    #[validate(length(equal = 2))]
    country: String,
}

/// Externally tagged (serde's default).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Payment {
    Card { last4: String },
    Invoice(u32),
    Cash,
}

/// Internally tagged.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Shipping {
    Courier { company: String },
    Pickup {},
}

/// Adjacently tagged.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "t", content = "c")]
enum Discount {
    Percent(u8),
    Code(String),
}

/// Untagged.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum Reference {
    Number(u64),
    Text(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
struct Tracing {
    #[serde(rename = "trace", skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
}

/// An order placed by a customer.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order_placed"]
#[serde(rename_all = "camelCase")]
struct OrderPlaced {
    /// The order's id.
    #[validate(length(min = 1, max = 20))]
    order_id: String,
    #[validate(email)]
    customer_email: String,
    #[validate(url)]
    callback: Option<String>,
    #[validate(range(min = 1, max = 1000))]
    quantity: u32,
    #[validate(contains(pattern = "-"))]
    sku: String,
    #[validate(regex(path = *CODE))]
    code: String,
    #[serde(rename = "shipTo")]
    #[validate(nested)]
    address: Address,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(skip)]
    #[allow(dead_code)]
    cached_total: u64,
    #[serde(flatten)]
    tracing: Tracing,
    payment: Payment,
    shipping: Shipping,
    discount: Option<Discount>,
    reference: Reference,
    #[validate(required)]
    priority: Option<u8>,
    #[serde(default = "default_channel")]
    channel: String,
}

fn default_channel() -> String {
    "web".to_owned()
}

/// Every field defaults: `#[serde(default)]` on the struct.
#[derive(Debug, Clone, Default, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.settings"]
#[serde(default)]
struct Settings {
    #[validate(range(max = 10))]
    retries: u8,
    label: String,
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("a valid JSON Schema")
}

fn order_schema() -> &'static jsonschema::Validator {
    static VALIDATOR: LazyLock<jsonschema::Validator> =
        LazyLock::new(|| validator(&json_schema::<OrderPlaced>().expect("derived")));
    &VALIDATOR
}

fn errors(validator: &jsonschema::Validator, body: &Value) -> Vec<String> {
    validator.iter_errors(body).map(|error| format!("{} at {}", error, error.instance_path())).collect()
}

#[test]
fn the_schema_names_fields_as_serde_writes_them() {
    let schema = json_schema::<OrderPlaced>().unwrap();
    assert_eq!(schema["$schema"], DIALECT);
    assert_eq!(schema["title"], "OrderPlaced");
    assert_eq!(schema["description"], "An order placed by a customer.");
    let properties = schema["properties"].as_object().unwrap();
    let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "callback",
            "channel",
            "code",
            "customerEmail",
            "discount",
            "mediaType",
            "opaqueData",
            "orderId",
            "payment",
            "priority",
            "quantity",
            "reference",
            "shipTo",
            "shipping",
            "sku",
            "tags",
            "trace",
        ],
        "renamed, flattened, skipped: as serde writes them, with the envelope's two"
    );
    assert_eq!(properties["mediaType"]["const"], "application/vnd.acme.pubsub.order_placed");
    assert_eq!(properties["orderId"]["description"], "The order's id.");
    assert_eq!(
        (properties["orderId"]["minLength"].clone(), properties["orderId"]["maxLength"].clone()),
        (json!(1), json!(20))
    );
    assert_eq!(properties["customerEmail"]["format"], "email");
    assert_eq!(
        (properties["quantity"]["minimum"].clone(), properties["quantity"]["maximum"].clone()),
        (json!(1), json!(1000))
    );
    assert_eq!(properties["sku"]["pattern"], "\\-", "contains: the substring, escaped");
    assert_eq!(properties["code"]["pattern"], "^[A-Z]{3}[0-9]$");
    assert_eq!(properties["channel"]["default"], "web");
    assert_eq!(properties["priority"]["type"], "integer", "required: a value, never null");
    assert!(schema["$defs"]["Address"].is_object(), "nested types under $defs: {schema:#}");
    let required: Vec<&str> =
        schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for name in ["mediaType", "orderId", "quantity", "shipTo", "priority", "payment", "reference"] {
        assert!(required.contains(&name), "{name} is required: {required:?}");
    }
    for name in ["tags", "callback", "discount", "trace", "channel", "opaqueData"] {
        assert!(!required.contains(&name), "{name} is optional: {required:?}");
    }
    assert!(schema.get("additionalProperties").is_none(), "unknown fields are allowed");
}

#[test]
fn a_struct_default_makes_every_field_optional_with_its_default() {
    let schema = json_schema::<Settings>().unwrap();
    assert_eq!(schema["required"], json!(["mediaType"]));
    assert_eq!(schema["properties"]["retries"]["maximum"], 10);
    assert_eq!(schema["properties"]["retries"]["default"], 0);
    let body = encode(&Settings::default(), &OpaqueData::new()).unwrap();
    let settings = validator(&json_schema::<Settings>().unwrap());
    assert!(errors(&settings, &serde_json::from_str(&body).unwrap()).is_empty());
    assert!(!errors(&settings, &json!({"mediaType": "application/vnd.acme.pubsub.settings", "retries": 11}))
        .is_empty());
}

#[test]
fn the_registry_has_every_linked_schema_and_the_conventions() {
    let registry = Registry::global().unwrap();
    let order = registry.json_schema("application/vnd.acme.pubsub.order_placed").unwrap();
    assert_eq!(order, json_schema::<OrderPlaced>().unwrap());
    for (media_type, field) in [
        ("application/vnd.acme.pubsub._.created.widget", "uri"),
        ("application/vnd.acme.pubsub.changed.widget", "uri"),
        ("application/vnd.acme.pubsub._.deleted.widget", "id"),
    ] {
        let schema = registry.json_schema(media_type).unwrap();
        assert_eq!(schema, lifecycle_json_schema(media_type).unwrap());
        assert_eq!(schema["required"], json!(["mediaType", field]), "{media_type}");
        assert_eq!(schema["properties"]["mediaType"]["const"], media_type);
    }
    assert!(registry.json_schema("application/vnd.acme.pubsub.unknown").is_none());
    // The convention's own entry: one of the three, each for its media types.
    let empty = Registry::builder().build().unwrap();
    let convention =
        validator(&empty.lookup("application/vnd.acme.pubsub._.created.x").unwrap().json_schema());
    let created = json!({"mediaType": "application/vnd.acme.pubsub._.created.order", "uri": "u"});
    assert!(errors(&convention, &created).is_empty());
    let deleted_without_id = json!({"mediaType": "application/vnd.acme.pubsub._.deleted.order", "uri": "u"});
    assert!(!errors(&convention, &deleted_without_id).is_empty());
}

fn payment() -> impl Strategy<Value = Payment> {
    prop_oneof![
        "[0-9]{4}".prop_map(|last4| Payment::Card { last4 }),
        any::<u32>().prop_map(Payment::Invoice),
        Just(Payment::Cash),
    ]
}

fn order() -> impl Strategy<Value = OrderPlaced> {
    let identity = (
        "[a-zA-Z0-9]{1,20}",
        "[a-z]{1,8}@[a-z]{1,8}\\.com",
        proptest::option::of("https://[a-z]{1,8}\\.example/[a-z]{0,8}"),
        1u32..=1000,
        "[a-z]{0,4}-[a-z]{0,4}",
        "[A-Z]{3}[0-9]",
    );
    let shape = (
        ("[0-9]{2,10}", "[A-Z]{2}"),
        proptest::collection::vec("\\PC{0,6}", 0..3),
        proptest::option::of("[a-f0-9]{8}"),
        payment(),
        prop_oneof!["\\PC{0,8}".prop_map(|company| Shipping::Courier { company }), Just(Shipping::Pickup {})],
        proptest::option::of(prop_oneof![
            any::<u8>().prop_map(Discount::Percent),
            "\\PC{0,8}".prop_map(Discount::Code)
        ]),
        prop_oneof![any::<u64>().prop_map(Reference::Number), "\\PC{0,8}".prop_map(Reference::Text)],
        any::<u8>(),
    );
    (identity, shape).prop_map(
        |(
            (order_id, customer_email, callback, quantity, sku, code),
            ((postal_code, country), tags, trace_id, payment, shipping, discount, reference, priority),
        )| OrderPlaced {
            order_id,
            customer_email,
            callback,
            quantity,
            sku,
            code,
            address: Address { postal_code, country },
            tags,
            cached_total: 0,
            tracing: Tracing { trace_id },
            payment,
            shipping,
            discount,
            reference,
            priority: Some(priority),
            channel: default_channel(),
        },
    )
}

/// A change to a body, and what it is.
type Change = (&'static str, fn(&mut Value));

/// Changes to a valid body that the decoder refuses.
fn refused_changes() -> Vec<Change> {
    vec![
        ("empty order id", |body| body["orderId"] = json!("")),
        ("order id over 20", |body| body["orderId"] = json!("x".repeat(21))),
        ("not an email", |body| body["customerEmail"] = json!("nobody")),
        ("not a url", |body| body["callback"] = json!("not a url")),
        ("quantity 0", |body| body["quantity"] = json!(0)),
        ("quantity over 1000", |body| body["quantity"] = json!(1001)),
        ("sku without -", |body| body["sku"] = json!("abc")),
        ("code not matching", |body| body["code"] = json!("ab1")),
        ("nested: postal code too short", |body| body["shipTo"]["postal-code"] = json!("1")),
        ("nested: country not 2 letters", |body| body["shipTo"]["country"] = json!("FRA")),
        ("required priority missing", |body| {
            body.as_object_mut().unwrap().remove("priority");
        }),
        ("required priority null", |body| body["priority"] = Value::Null),
        ("missing order id", |body| {
            body.as_object_mut().unwrap().remove("orderId");
        }),
        ("quantity not a number", |body| body["quantity"] = json!("7")),
        ("unknown payment variant", |body| body["payment"] = json!({"cheque": {}})),
        ("unknown shipping kind", |body| body["shipping"] = json!({"kind": "drone"})),
        ("discount without its tag", |body| body["discount"] = json!({"c": 3})),
        ("reference neither number nor text", |body| body["reference"] = json!([1])),
        ("another media type", |body| body["mediaType"] = json!("application/vnd.acme.pubsub.other")),
    ]
}

/// The reason a decode failed is validation's when the rule is validator's.
fn is_validation(error: &DecodeError) -> bool {
    matches!(error, DecodeError::Invalid { .. })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_encoded_body_validates(order in order()) {
        let body = encode(&order, &OpaqueData::new().with_request_id("r-1")).unwrap();
        let value: Value = serde_json::from_str(&body).unwrap();
        let found = errors(order_schema(), &value);
        prop_assert!(found.is_empty(), "{body}: {found:?}");
    }

    #[test]
    fn what_the_decoder_refuses_the_schema_refuses(order in order()) {
        let body: Value = serde_json::from_str(&encode(&order, &OpaqueData::new()).unwrap()).unwrap();
        let mut validation_refusals = 0;
        for (what, change) in refused_changes() {
            let mut changed = body.clone();
            change(&mut changed);
            let decoded = decode::<OrderPlaced>(&changed.to_string());
            let Err(error) = decoded else {
                // Not every change refuses every value (a callback of None stays valid).
                continue;
            };
            validation_refusals += usize::from(is_validation(&error));
            prop_assert!(!errors(order_schema(), &changed).is_empty(), "{what}: the decoder refuses it ({error}), the schema does not: {changed}");
        }
        prop_assert!(validation_refusals >= 10, "the validation rules were exercised: {validation_refusals}");
    }
}

#[test]
fn a_hand_implemented_type_has_no_schema() {
    #[derive(Serialize, Deserialize)]
    struct Manual {}
    impl Validate for Manual {
        fn validate(&self) -> Result<(), validator::ValidationErrors> {
            Ok(())
        }
    }
    impl PubSubMessage for Manual {
        const MEDIA_TYPE: &'static str = "application/vnd.acme.pubsub.manual";
    }
    assert!(json_schema::<Manual>().is_none());
    let any = Registry::builder().typed::<Manual>().unwrap().build().unwrap();
    let schema = any.json_schema("application/vnd.acme.pubsub.manual").unwrap();
    assert_eq!(schema["title"], "untyped application/vnd.acme.pubsub.manual");
    assert_eq!(schema["properties"]["mediaType"]["const"], "application/vnd.acme.pubsub.manual");
}
