//! Validation failures of nested fields are reported by wire names, as top-level ones are.

use pubsub_core::{
    codec::DecodeError, codec::EncodeError, codec::ValidationReport, decode, encode, OpaqueData,
    PubSubMessage,
};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct LineItem {
    #[validate(length(min = 1))]
    sku: String,
    #[validate(range(min = 1))]
    unit_price_cents: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
struct Address {
    #[validate(length(min = 2))]
    postal_code: String,
    // An explicit rename to an unrelated name: the documented limit, the Rust name stays.
    #[serde(rename = "cc")]
    #[validate(length(equal = 2))]
    country_code: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order_placed"]
#[serde(rename_all = "camelCase")]
struct OrderPlaced {
    #[validate(nested)]
    line_items: Vec<LineItem>,
    #[validate(nested)]
    ship_to: Address,
}

fn invalid() -> OrderPlaced {
    OrderPlaced {
        line_items: vec![
            LineItem { sku: "a".into(), unit_price_cents: 5 },
            LineItem { sku: "b".into(), unit_price_cents: 0 },
        ],
        ship_to: Address { postal_code: "1".into(), country_code: "FRA".into() },
    }
}

fn fields(report: &ValidationReport) -> Vec<&str> {
    report.violations.iter().map(|v| v.field.as_str()).collect()
}

const EXPECTED: [&str; 3] = ["lineItems[1].unitPriceCents", "shipTo.country_code", "shipTo.postal-code"];

#[test]
fn encode_reports_nested_fields_by_wire_name() {
    let Err(EncodeError::Invalid { report, .. }) = encode(&invalid(), &OpaqueData::new()) else {
        panic!("an invalid message must not encode");
    };
    assert_eq!(fields(&report), EXPECTED, "{report}");
}

#[test]
fn decode_reports_nested_fields_by_wire_name() {
    let body = serde_json::json!({
        "mediaType": OrderPlaced::MEDIA_TYPE,
        "lineItems": [{"sku": "a", "unitPriceCents": 5}, {"sku": "b", "unitPriceCents": 0}],
        "shipTo": {"postal-code": "1", "cc": "FRA"},
    })
    .to_string();
    let Err(DecodeError::Invalid { report, .. }) = decode::<OrderPlaced>(&body) else {
        panic!("an invalid message must not decode");
    };
    assert_eq!(fields(&report), EXPECTED, "{report}");
    assert!(report.to_string().contains("`lineItems[1].unitPriceCents` is out of range"), "{report}");
}

#[test]
fn an_ambiguous_or_missing_key_keeps_the_rust_name() {
    #[derive(Serialize, Validate)]
    struct Inner {
        #[validate(range(min = 1))]
        unit_price: i64,
    }
    #[derive(Serialize, Validate)]
    struct Outer {
        #[validate(nested)]
        inner: Inner,
    }
    let errors = Outer { inner: Inner { unit_price: 0 } }.validate().unwrap_err();
    let ambiguous = serde_json::json!({"inner": {"unitPrice": 0, "UNIT_PRICE": 0}});
    let report = ValidationReport::from_errors_in(&errors, |n| n.to_owned(), &ambiguous);
    assert_eq!(fields(&report), ["inner.unit_price"]);
    let report = ValidationReport::from_errors_in(&errors, |n| n.to_owned(), &serde_json::json!({}));
    assert_eq!(fields(&report), ["inner.unit_price"]);
}
