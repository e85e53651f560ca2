//! The FIFO message group and deduplication id a message type declares with
//! `#[message_group_id]` and `#[message_deduplication_id]`, read through both `PubSubMessage`
//! and `Message`.

use std::borrow::Cow;

use pubsub_core::{decode, encode, Message, OpaqueData, PubSubMessage, UntypedMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

mod reexport {
    pub use pubsub_core;
}

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    #[message_group_id]
    customer_id: String,
    total: u32,
}

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.reading"]
struct Reading {
    #[message_group_id]
    sensor: u64,
    #[message_deduplication_id]
    sequence: i64,
}

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.maybe-grouped"]
struct MaybeGrouped {
    #[message_group_id]
    group: Option<String>,
    #[message_deduplication_id]
    event_id: Option<u128>,
}

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.renamed"]
#[serde(rename_all = "camelCase")]
struct Renamed {
    #[serde(rename = "tenant")]
    #[message_group_id]
    tenant_id: String,
    #[message_deduplication_id]
    request_id: Box<str>,
}

/// The attributes placed before a serde attribute, on raw identifiers, through a re-export.
#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.odd-forms"]
#[pubsub(crate = "reexport::pubsub_core")]
struct OddForms {
    #[message_group_id]
    #[serde(rename = "kind")]
    r#type: Cow<'static, str>,
    #[message_deduplication_id]
    r#ref: i8,
}

/// The same field as group and deduplication id.
#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.once-per-key"]
struct OncePerKey {
    #[message_group_id]
    #[message_deduplication_id]
    key: usize,
}

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.plain"]
struct Plain {
    id: String,
}

/// What a producer sees: the ids through `Message`, whatever the message type.
fn fifo_ids<M: Message>(message: &M) -> (Option<String>, Option<String>) {
    (message.message_group_id(), message.message_deduplication_id())
}

fn ids(group: Option<&str>, deduplication: Option<&str>) -> (Option<String>, Option<String>) {
    (group.map(str::to_owned), deduplication.map(str::to_owned))
}

#[test]
fn a_string_field_is_the_group_as_is() {
    let order = Order { customer_id: "customer-7 / eu".to_owned(), total: 3 };
    assert_eq!(Message::message_group_id(&order).as_deref(), Some("customer-7 / eu"));
    assert_eq!(Message::message_deduplication_id(&order), None);
    assert_eq!(fifo_ids(&order), ids(Some("customer-7 / eu"), None));
}

#[test]
fn integer_fields_are_written_in_decimal() {
    let reading = Reading { sensor: u64::MAX, sequence: -42 };
    assert_eq!(fifo_ids(&reading), ids(Some("18446744073709551615"), Some("-42")));
    assert_eq!(Message::message_group_id(&reading).as_deref(), Some("18446744073709551615"));
    assert_eq!(Message::message_deduplication_id(&reading).as_deref(), Some("-42"));
}

#[test]
fn an_option_field_gives_its_value_or_none() {
    let some = MaybeGrouped { group: Some("g-1".to_owned()), event_id: Some(7) };
    assert_eq!(fifo_ids(&some), ids(Some("g-1"), Some("7")));
    let none = MaybeGrouped { group: None, event_id: None };
    assert_eq!(fifo_ids(&none), ids(None, None));
    let half = MaybeGrouped { group: Some("g-2".to_owned()), event_id: None };
    assert_eq!(fifo_ids(&half), ids(Some("g-2"), None));
}

#[test]
fn a_renamed_field_gives_its_value_not_its_wire_name() -> Result<(), Box<dyn std::error::Error>> {
    let renamed = Renamed { tenant_id: "acme".to_owned(), request_id: "req-1".into() };
    assert_eq!(fifo_ids(&renamed), ids(Some("acme"), Some("req-1")));
    let body = encode(&renamed, &OpaqueData::new())?;
    let json: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(json["tenant"], "acme");
    assert_eq!(json["requestId"], "req-1");
    // Decoded, the message gives the same ids as the one published.
    let decoded = decode::<Renamed>(&body)?;
    assert_eq!(fifo_ids(&decoded.message), ids(Some("acme"), Some("req-1")));
    Ok(())
}

#[test]
fn raw_identifiers_serde_attributes_and_a_reexported_crate() {
    let odd = OddForms { r#type: Cow::Borrowed("kind-a"), r#ref: i8::MIN };
    assert_eq!(fifo_ids(&odd), ids(Some("kind-a"), Some("-128")));
}

#[test]
fn one_field_can_be_both_ids() {
    assert_eq!(fifo_ids(&OncePerKey { key: 5 }), ids(Some("5"), Some("5")));
}

#[test]
fn a_type_without_the_attributes_names_neither() {
    let plain = Plain { id: "p-1".to_owned() };
    assert_eq!(Message::message_group_id(&plain), None);
    assert_eq!(Message::message_deduplication_id(&plain), None);
    assert_eq!(fifo_ids(&plain), ids(None, None));
}

#[test]
fn an_untyped_message_names_neither() {
    let created = UntypedMessage::created("Widget", "http://example.com/api/v1/widget/1");
    assert_eq!(fifo_ids(&created), ids(None, None));
}
