//! The message types the fuzz targets decode into, and the list of their checks.
//!
//! The replay test `tests/fuzz_corpus.rs` includes this file as a module (`#[path]`), so the
//! corpus replays against exactly these types. Keep it free of crate-level attributes.
//!
//! [`FuzzOrder`] has the media type and fields of the captured order messages in
//! `fixtures/`, so fixture-seeded inputs get past the media type check and the fuzzer works
//! on the typed decode itself; its extra fields are all optional, for nested structs, enums
//! of each serde representation, renames, aliases and validator checks at depth.
//! [`Scalars`] covers the scalar and container types serde_json maps in other ways.

use std::collections::{BTreeMap, HashMap};

use pubsub_core::PubSubMessage;
use pubsub_suite::fuzz_check::{check_typed, TypedCheck};
use serde::{Deserialize, Serialize};
use validator::Validate;

/// The check of each type, for `decode_any` and `decode_wrapped`.
pub const TYPED: &[TypedCheck] = &[check_typed::<FuzzOrder>, check_typed::<Scalars>];

/// The captured order schema (`orderId`, `amount`, `note`, `tags`), grown with optional parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(created = "Order")]
#[serde(rename_all = "camelCase")]
pub struct FuzzOrder {
    /// Required, 1 to 64 characters.
    #[validate(length(min = 1, max = 64))]
    pub order_id: String,
    /// Required, not negative.
    #[validate(range(min = 0))]
    pub amount: i64,
    /// Optional text.
    pub note: Option<String>,
    /// At most 16; left out when empty, as the seed does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[validate(length(max = 16))]
    pub tags: Vec<String>,
    /// A nested struct, validated.
    #[validate(nested)]
    pub customer: Option<Customer>,
    /// A list of nested structs, each validated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[validate(nested)]
    pub lines: Vec<Line>,
    /// An externally tagged enum.
    pub status: Option<Status>,
    /// An internally tagged enum.
    pub payment: Option<Payment>,
    /// A bounded float.
    #[validate(range(min = 0.0, max = 1.0))]
    pub discount: Option<f64>,
    /// A field named like the SNS notification's key, inside a raw message.
    #[serde(rename = "Message")]
    pub sns_lookalike: Option<String>,
    /// Also read as `ref`.
    #[serde(alias = "ref")]
    pub reference: Option<u64>,
    /// A map, left out when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, i64>,
    /// Free JSON.
    pub extra: Option<serde_json::Value>,
}

/// A customer, snake_case on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct Customer {
    /// Must look like an e-mail address.
    #[validate(email)]
    pub email_address: String,
    /// Renamed, 1 to 40 characters when present.
    #[serde(rename = "displayName")]
    #[validate(length(min = 1, max = 40))]
    pub name: Option<String>,
    /// Deeper nesting.
    #[validate(nested)]
    pub address: Option<Address>,
}

/// An address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, schemars::JsonSchema)]
pub struct Address {
    /// Lines of the address.
    pub lines: Vec<String>,
    /// Two letters.
    #[validate(length(equal = 2))]
    pub country: String,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    /// Required, not empty.
    #[validate(length(min = 1))]
    pub sku: String,
    /// 1 to 1000.
    #[validate(range(min = 1, max = 1000))]
    pub quantity: u32,
    /// A single-precision price.
    pub unit_price: Option<f32>,
    /// An untagged enum.
    pub measure: Option<Measure>,
}

/// An externally tagged enum: unit, struct and newtype variants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// `"PENDING"`.
    Pending,
    /// `"PAID"`.
    Paid,
    /// `{"SHIPPED": {"carrier": ..}}`.
    Shipped {
        /// Who carries it.
        carrier: String,
    },
    /// `{"CANCELLED": "why"}`.
    Cancelled(String),
}

/// An internally tagged enum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payment {
    /// `{"kind": "card", "last4": ..}`.
    Card {
        /// The last four digits.
        last4: String,
    },
    /// `{"kind": "invoice", "days": .., "rate": ..}`.
    Invoice {
        /// Days to pay.
        days: u16,
        /// A single-precision rate, read through serde's buffering of tagged enums.
        rate: Option<f32>,
    },
    /// `{"kind": "cash"}`.
    Cash,
}

/// An untagged enum: the first variant that fits wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Measure {
    /// A whole count.
    Count(u64),
    /// A weight.
    Weight(f64),
    /// Anything else said in words.
    Label(String),
}

/// Scalars and containers under a free-form media type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.fuzz.scalars"]
pub struct Scalars {
    /// Renamed to one letter.
    #[serde(rename = "b")]
    pub flag: bool,
    /// A byte.
    pub byte: u8,
    /// A small signed number.
    pub small: i16,
    /// A large unsigned number.
    pub big: u64,
    /// Beyond 64 bits.
    pub huge: Option<i128>,
    /// A float.
    pub real: f64,
    /// One character.
    pub letter: Option<char>,
    /// Text, at most 200 characters.
    #[validate(length(max = 200))]
    pub text: String,
    /// A hash map of floats.
    #[serde(default)]
    pub weights: HashMap<String, f64>,
    /// Nested lists with holes.
    #[serde(default)]
    pub grid: Vec<Vec<Option<i32>>>,
    /// A tuple.
    pub pair: Option<(u8, String)>,
    /// Free JSON, required.
    pub payload: serde_json::Value,
}
