//! The change classifier on schemas schemars generates from before/after Rust types: a table
//! of pairs, each with its expected changes and verdicts; the same types in draft 2020-12 and
//! draft-07 (no changes); then roles and gating on two small AsyncAPI documents, and the text
//! and JSON output.

// The types exist for their schemas only.
#![allow(dead_code)]

use pubsub_core::schema::compat::{compare, ChangeKind, MessageStatus, Report, Role, Verdict};
use schemars::JsonSchema;
use serde_json::{json, Value};
use ChangeKind::*;
use Verdict::{Breaking as B, Compatible as C};

/// The draft 2020-12 schema of `T`, as a service's schema file holds it.
fn schema<T: JsonSchema>() -> Value {
    let generator = schemars::SchemaGenerator::new(schemars::generate::SchemaSettings::draft2020_12());
    serde_json::to_value(generator.into_root_schema_for::<T>()).expect("a schema serializes")
}

/// A row: the change between `v1::Order` and `v2::Order`, and what it should be reported as.
macro_rules! pair {
    ($name:ident { $($v1:tt)* } => { $($v2:tt)* }) => {
        mod $name {
            use schemars::JsonSchema;
            use serde::Deserialize;

            pub mod v1 {
                use super::*;
                $($v1)*
            }
            pub mod v2 {
                use super::*;
                $($v2)*
            }
        }
    };
}

pair!(unchanged {
    #[derive(JsonSchema, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Order { pub order_id: String, pub note: Option<String>, pub lines: Vec<Line>, pub tags: std::collections::HashMap<String, String> }
    #[derive(JsonSchema, Deserialize)]
    pub struct Line { #[schemars(range(min = 1, max = 100))] pub quantity: u32 }
} => {
    #[derive(JsonSchema, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Order { pub order_id: String, pub note: Option<String>, pub lines: Vec<Line>, pub tags: std::collections::HashMap<String, String> }
    /// Documentation changes nothing.
    #[derive(JsonSchema, Deserialize)]
    pub struct Line { #[schemars(range(min = 1, max = 100))] pub quantity: u32 }
});

pair!(required_field_removed {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub id: String, pub sku: String }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub id: String }
});

pair!(optional_field_removed {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub id: String, pub note: Option<String> }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub id: String }
});

pair!(optional_field_added {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub id: String }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub id: String, #[serde(default)] pub count: u32 }
});

pair!(required_field_added {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub id: String }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub id: String, pub currency: String }
});

pair!(field_renamed {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub customer_id: String }
} => {
    #[derive(JsonSchema, Deserialize)] #[serde(rename_all = "camelCase")] pub struct Order { pub customer_id: String }
});

pair!(became_required {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub note: Option<String> }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub note: String }
});

pair!(became_optional {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub note: String }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { #[serde(default)] pub note: String }
});

pair!(number_to_integer {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub amount: f64 }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub amount: i64 }
});

pair!(integer_to_number {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub amount: i64 }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub amount: f64 }
});

pair!(string_to_integer {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub reference: String }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub reference: i64 }
});

pair!(u8_to_u16 {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub quantity: u8 }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub quantity: u16 }
});

pair!(max_length_tightened {
    #[derive(JsonSchema, Deserialize)] pub struct Order { #[schemars(length(min = 1, max = 100))] pub name: String }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { #[schemars(length(min = 1, max = 50))] pub name: String }
});

pair!(minimum_loosened {
    #[derive(JsonSchema, Deserialize)] pub struct Order { #[schemars(range(min = 1))] pub quantity: i32 }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { #[schemars(range(min = 0))] pub quantity: i32 }
});

pair!(pattern_added_and_email_added {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub code: String, pub contact: String }
} => {
    #[derive(JsonSchema, Deserialize)]
    pub struct Order { #[schemars(regex(pattern = "^[A-Z]{3}$"))] pub code: String, #[schemars(email)] pub contact: String }
});

pair!(pattern_changed {
    #[derive(JsonSchema, Deserialize)] pub struct Order { #[schemars(regex(pattern = "^[A-Z]{3}$"))] pub code: String }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { #[schemars(regex(pattern = "^[A-Z]{2,4}$"))] pub code: String }
});

pair!(min_items_added {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub lines: Vec<String> }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { #[schemars(length(min = 1))] pub lines: Vec<String> }
});

pair!(unit_variant_removed_and_added {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub status: Status }
    #[derive(JsonSchema, Deserialize)] pub enum Status { Open, Paid, Cancelled }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub status: Status }
    #[derive(JsonSchema, Deserialize)] pub enum Status { Open, Paid, Refunded }
});

pair!(externally_tagged {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub payment: Payment }
    #[derive(JsonSchema, Deserialize)] pub enum Payment { Cash, Card(String), Voucher { code: String } }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub payment: Payment }
    #[derive(JsonSchema, Deserialize)] pub enum Payment { Cash, Card(u64) }
});

pair!(internally_tagged {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub payment: Payment }
    #[derive(JsonSchema, Deserialize)] #[serde(tag = "type")]
    pub enum Payment { Cash, Card { number: String } }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub payment: Payment }
    #[derive(JsonSchema, Deserialize)] #[serde(tag = "type")]
    pub enum Payment { Cash, Card { number: String, expiry: String }, Wire { iban: String } }
});

pair!(adjacently_tagged {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub payment: Payment }
    #[derive(JsonSchema, Deserialize)] #[serde(tag = "t", content = "c")]
    pub enum Payment { Cash, Card(String) }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub payment: Payment }
    #[derive(JsonSchema, Deserialize)] #[serde(tag = "t", content = "c")]
    pub enum Payment { Card(String) }
});

pair!(untagged {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub contact: Contact }
    #[derive(JsonSchema, Deserialize)] #[serde(untagged)]
    pub enum Contact { Phone(String), Postal(Address) }
    #[derive(JsonSchema, Deserialize)] pub struct Address { pub zip: String }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub contact: Contact }
    #[derive(JsonSchema, Deserialize)] #[serde(untagged)]
    pub enum Contact { Phone(String) }
});

pair!(nested_objects_and_arrays {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub address: Address, pub lines: Vec<Line> }
    #[derive(JsonSchema, Deserialize)] pub struct Address { pub zip: String }
    #[derive(JsonSchema, Deserialize)] pub struct Line { #[schemars(range(max = 100))] pub quantity: u32 }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub address: Address, pub lines: Vec<Line> }
    #[derive(JsonSchema, Deserialize)] pub struct Address { #[schemars(length(max = 10))] pub zip: String }
    #[derive(JsonSchema, Deserialize)] pub struct Line { #[schemars(range(max = 50))] pub quantity: u32 }
});

pair!(optional_object_made_required {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub address: Option<Address> }
    #[derive(JsonSchema, Deserialize)] pub struct Address { pub zip: String }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub address: Address }
    #[derive(JsonSchema, Deserialize)] pub struct Address { pub zip: String }
});

pair!(map_values_widened {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub prices: std::collections::HashMap<String, i32> }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub prices: std::collections::HashMap<String, i64> }
});

pair!(tuple_item_changed {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub pair: (String, String) }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub pair: (String, bool) }
});

pair!(recursive_type {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub root: Category }
    #[derive(JsonSchema, Deserialize)] pub struct Category { pub name: String, pub children: Vec<Category> }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub root: Category }
    #[derive(JsonSchema, Deserialize)]
    pub struct Category { #[schemars(length(max = 30))] pub name: String, pub children: Vec<Category> }
});

pair!(recursive_root {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub id: String, pub replaces: Option<Box<Order>> }
} => {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub id: String, pub replaces: Option<Box<Order>>, pub reason: String }
});

pair!(closed_object_gains_optional_field {
    #[derive(JsonSchema, Deserialize)] #[serde(deny_unknown_fields)] pub struct Order { pub id: String }
} => {
    #[derive(JsonSchema, Deserialize)] #[serde(deny_unknown_fields)] pub struct Order { pub id: String, pub note: Option<String> }
});

pair!(object_closed {
    #[derive(JsonSchema, Deserialize)] pub struct Order { pub id: String }
} => {
    #[derive(JsonSchema, Deserialize)] #[serde(deny_unknown_fields)] pub struct Order { pub id: String }
});

pair!(const_added_and_multiple_of_tightened {
    #[derive(JsonSchema, Deserialize)]
    pub struct Order { pub version: String, #[schemars(extend("multipleOf" = 5))] pub cents: u32 }
} => {
    #[derive(JsonSchema, Deserialize)]
    pub struct Order {
        #[schemars(extend("const" = "2"))]
        pub version: String,
        #[schemars(extend("multipleOf" = 10))]
        pub cents: u32,
    }
});

// The `validator` attributes the messages carry are read by schemars too.
pair!(validator_attributes {
    #[derive(JsonSchema, Deserialize, validator::Validate)]
    pub struct Order { #[validate(length(max = 20))] pub name: String, #[validate(email)] pub contact: String }
} => {
    #[derive(JsonSchema, Deserialize, validator::Validate)]
    pub struct Order { #[validate(length(min = 1, max = 20))] pub name: String, pub contact: String }
});

/// (path, kind, consumers verdict, producers verdict) of each change, sorted.
type Expected = &'static [(&'static str, ChangeKind, Verdict, Verdict)];

fn changes(report: &Report) -> Vec<(String, ChangeKind, Verdict, Verdict)> {
    assert_eq!(report.messages.len(), 1, "{report}");
    let mut changes: Vec<_> = report.messages[0]
        .changes
        .iter()
        .map(|change| (change.path.clone(), change.kind, change.consumers, change.producers))
        .collect();
    changes.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    changes
}

#[test]
fn each_change_gets_its_verdicts() {
    macro_rules! row {
        ($name:ident, $expected:expr) => {
            (
                stringify!($name),
                schema::<$name::v1::Order>(),
                schema::<$name::v2::Order>(),
                $expected as Expected,
            )
        };
    }
    let table = [
        row!(unchanged, &[]),
        row!(required_field_removed, &[("sku", FieldRemoved, C, B)]),
        row!(optional_field_removed, &[("note", FieldRemoved, C, C)]),
        row!(optional_field_added, &[("count", FieldAdded, C, C)]),
        row!(required_field_added, &[("currency", FieldAdded, B, C)]),
        row!(field_renamed, &[("customer_id", FieldRenamed, B, B)]),
        row!(became_required, &[("note", BecameRequired, B, C), ("note", TypeNarrowed, B, C)]),
        row!(became_optional, &[("note", BecameOptional, C, B)]),
        // `format` double -> int64 as well: a narrower range.
        row!(number_to_integer, &[("amount", TypeNarrowed, B, C), ("amount", ConstraintTightened, B, C)]),
        row!(integer_to_number, &[("amount", TypeWidened, C, B), ("amount", ConstraintLoosened, C, B)]),
        row!(string_to_integer, &[("reference", TypeChanged, B, B)]),
        // `format` uint8 -> uint16 and `maximum` 255 -> 65535.
        row!(u8_to_u16, &[("quantity", ConstraintLoosened, C, B), ("quantity", ConstraintLoosened, C, B)]),
        row!(max_length_tightened, &[("name", ConstraintTightened, B, C)]),
        row!(minimum_loosened, &[("quantity", ConstraintLoosened, C, B)]),
        row!(
            pattern_added_and_email_added,
            &[("code", ConstraintTightened, B, C), ("contact", ConstraintTightened, B, C)]
        ),
        row!(pattern_changed, &[("code", ConstraintChanged, B, B)]),
        row!(min_items_added, &[("lines", ConstraintTightened, B, C)]),
        row!(
            unit_variant_removed_and_added,
            &[("status", VariantRemoved, B, C), ("status", VariantAdded, C, B)]
        ),
        row!(externally_tagged, &[("payment", VariantRemoved, B, C), ("payment.Card", TypeChanged, B, B)]),
        row!(internally_tagged, &[("payment", VariantAdded, C, B), ("payment.expiry", FieldAdded, B, C)]),
        row!(adjacently_tagged, &[("payment", VariantRemoved, B, C)]),
        row!(untagged, &[("contact", VariantRemoved, B, C)]),
        row!(
            nested_objects_and_arrays,
            &[("address.zip", ConstraintTightened, B, C), ("lines[].quantity", ConstraintTightened, B, C)]
        ),
        row!(
            optional_object_made_required,
            &[("address", BecameRequired, B, C), ("address", TypeNarrowed, B, C)]
        ),
        // `format` int32 -> int64.
        row!(map_values_widened, &[("prices.*", ConstraintLoosened, C, B)]),
        row!(tuple_item_changed, &[("pair[1]", TypeChanged, B, B)]),
        // Met again under `root.children[]`: compared once.
        row!(recursive_type, &[("root.name", ConstraintTightened, B, C)]),
        row!(recursive_root, &[("reason", FieldAdded, B, C)]),
        row!(closed_object_gains_optional_field, &[("note", FieldAdded, C, B)]),
        row!(object_closed, &[("", ConstraintTightened, B, C)]),
        row!(
            validator_attributes,
            &[("contact", ConstraintLoosened, C, B), ("name", ConstraintTightened, B, C)]
        ),
        row!(
            const_added_and_multiple_of_tightened,
            &[("cents", ConstraintTightened, B, C), ("version", ConstraintTightened, B, C)]
        ),
    ];
    let mut failures = Vec::new();
    for (name, baseline, current, expected) in table {
        let report = compare(&baseline, &current).unwrap_or_else(|error| panic!("{name}: {error}"));
        let found = changes(&report);
        let mut expected: Vec<_> =
            expected.iter().map(|(p, k, c, pr)| (p.to_string(), *k, *c, *pr)).collect();
        expected.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        if found != expected {
            failures.push(format!("{name}: expected {expected:?}\n  found {found:?}\n{report}"));
        }
        // A bare schema has no role: any breaking verdict gates.
        let any_breaking = expected.iter().any(|(_, _, c, p)| *c == B || *p == B);
        assert_eq!(report.is_breaking(), any_breaking, "{name}");
        let status = report.messages[0].status;
        assert_eq!(status == MessageStatus::Unchanged, expected.is_empty(), "{name}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The schema of `T` as draft-07 writes it (`definitions`, tuples as `items` arrays, ...), the
/// dialect of AsyncAPI payloads.
fn draft_07_schema<T: JsonSchema>() -> Value {
    let generator = schemars::SchemaGenerator::new(schemars::generate::SchemaSettings::draft07());
    serde_json::to_value(generator.into_root_schema_for::<T>()).expect("a schema serializes")
}

#[test]
fn the_same_type_in_either_draft_has_no_changes() {
    macro_rules! same {
        ($($name:ident),* $(,)?) => {
            [$(
                (concat!(stringify!($name), " v1"), schema::<$name::v1::Order>(), draft_07_schema::<$name::v1::Order>()),
                (concat!(stringify!($name), " v2"), schema::<$name::v2::Order>(), draft_07_schema::<$name::v2::Order>()),
            )*]
        };
    }
    let pairs = same!(
        unchanged,
        became_required,
        number_to_integer,
        u8_to_u16,
        pattern_added_and_email_added,
        unit_variant_removed_and_added,
        externally_tagged,
        internally_tagged,
        adjacently_tagged,
        untagged,
        nested_objects_and_arrays,
        optional_object_made_required,
        map_values_widened,
        tuple_item_changed,
        recursive_type,
        recursive_root,
        closed_object_gains_optional_field,
        const_added_and_multiple_of_tightened,
    );
    for (name, draft_2020_12, draft_07) in pairs {
        assert_ne!(draft_2020_12, draft_07, "{name}: the drafts should differ");
        for (baseline, current) in [(&draft_2020_12, &draft_07), (&draft_07, &draft_2020_12)] {
            let report = compare(baseline, current).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(report.messages[0].status, MessageStatus::Unchanged, "{name}:\n{report}");
        }
    }
}

/// A billing service's AsyncAPI document: it receives orders and sends invoices (and, in the
/// baseline, a legacy message; in the current one, refunds).
fn billing_document(order_id_max_length: u64, invoice_minimum: Option<i64>, version: &str) -> Value {
    let mut invoice =
        json!({"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]});
    if let Some(minimum) = invoice_minimum {
        invoice["properties"]["amount"]["minimum"] = json!(minimum);
    }
    let message = |name: &str, title: &str, payload: Value| json!({"name": name, "title": title, "contentType": "application/json", "payload": payload});
    let (extra_key, extra_name) = if version == "baseline" {
        ("Legacy", "application/vnd.acme.pubsub.legacy")
    } else {
        ("Refund", "application/vnd.acme.pubsub.refund")
    };
    json!({
        "asyncapi": "3.0.0",
        "info": {"title": "billing", "version": version},
        "channels": {
            "orders": {"address": "orders", "messages": {"Order": {"$ref": "#/components/messages/Order"}}},
            "invoices": {"address": "invoices", "messages": {
                "Invoice": {"$ref": "#/components/messages/Invoice"},
                extra_key: {"$ref": format!("#/components/messages/{extra_key}")}}}
        },
        "operations": {
            "receiveOrder": {"action": "receive", "channel": {"$ref": "#/channels/orders"},
                             "messages": [{"$ref": "#/channels/orders/messages/Order"}]},
            "sendInvoice": {"action": "send", "channel": {"$ref": "#/channels/invoices"},
                            "messages": [{"$ref": "#/channels/invoices/messages/Invoice"},
                                         {"$ref": format!("#/channels/invoices/messages/{extra_key}")}]}
        },
        "components": {
            "messages": {
                "Order": message("application/vnd.acme.pubsub.order", "Order", json!({
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "maxLength": order_id_max_length},
                        "lines": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}}},
                    "required": ["id", "lines"]})),
                "Invoice": message("application/vnd.acme.pubsub.invoice", "Invoice", invoice),
                extra_key: message(extra_name, extra_key, json!({"type": "object"}))
            },
            "schemas": {"Line": {"type": "object", "properties": {"quantity": {"type": "integer", "maximum": 100}}}}
        }
    })
}

#[test]
fn roles_decide_which_verdict_gates() {
    // The service receives orders: a loosened constraint breaks only producers, which it is not.
    let baseline = billing_document(100, Some(0), "current");
    let loosened_received = compare(&baseline, &billing_document(200, Some(0), "current")).unwrap();
    let order = &loosened_received.messages[1];
    assert_eq!(order.media_type, "application/vnd.acme.pubsub.order");
    assert_eq!(order.roles, [Role::Receive]);
    assert_eq!(order.changes.len(), 1, "{loosened_received}");
    assert_eq!((order.changes[0].consumers, order.changes[0].producers), (C, B));
    assert!(!order.changes[0].gates);
    assert!(!loosened_received.is_breaking(), "{loosened_received}");

    // It sends invoices: the same kind of change there gates.
    let loosened_sent = compare(&baseline, &billing_document(100, None, "current")).unwrap();
    let invoice = &loosened_sent.messages[0];
    assert_eq!(invoice.media_type, "application/vnd.acme.pubsub.invoice");
    assert_eq!(invoice.roles, [Role::Send]);
    assert_eq!(invoice.changes[0].path, "amount");
    assert_eq!(invoice.changes[0].kind, ConstraintLoosened);
    assert!(invoice.changes[0].gates);
    assert!(loosened_sent.is_breaking());

    // A tightened constraint on a received message gates, through a `$ref` to a component schema.
    let mut tightened = billing_document(100, Some(0), "current");
    tightened["components"]["schemas"]["Line"]["properties"]["quantity"]["maximum"] = json!(50);
    let report = compare(&baseline, &tightened).unwrap();
    let change = &report.messages[1].changes[0];
    assert_eq!(
        (change.path.as_str(), change.kind, change.gates),
        ("lines[].quantity", ConstraintTightened, true)
    );

    // The same document against itself: nothing to report.
    let same = compare(&baseline, &baseline).unwrap();
    assert!(same
        .messages
        .iter()
        .all(|message| message.status == MessageStatus::Unchanged && message.changes.is_empty()));
    assert!(!same.is_breaking());
}

#[test]
fn media_types_removed_and_added_and_the_outputs() {
    let report =
        compare(&billing_document(100, Some(0), "baseline"), &billing_document(200, None, "current"))
            .unwrap();
    let statuses: Vec<_> = report.messages.iter().map(|m| (m.media_type.as_str(), m.status)).collect();
    assert_eq!(
        statuses,
        [
            ("application/vnd.acme.pubsub.invoice", MessageStatus::Changed),
            ("application/vnd.acme.pubsub.legacy", MessageStatus::Removed),
            ("application/vnd.acme.pubsub.order", MessageStatus::Changed),
            ("application/vnd.acme.pubsub.refund", MessageStatus::Added),
        ]
    );
    let legacy = &report.messages[1].changes[0];
    assert_eq!(
        (legacy.kind, legacy.consumers, legacy.producers, legacy.gates),
        (MediaTypeRemoved, B, B, true)
    );
    let refund = &report.messages[3].changes[0];
    assert_eq!(
        (refund.kind, refund.consumers, refund.producers, refund.gates),
        (MediaTypeAdded, C, C, false)
    );
    assert!(report.is_breaking());

    let text = report.to_string();
    for line in [
        "application/vnd.acme.pubsub.invoice (changed; sent: the producers verdict gates)",
        "  BREAKING   amount: `minimum` 0 removed [constraint loosened]",
        "application/vnd.acme.pubsub.legacy (removed; sent: the producers verdict gates)",
        "  BREAKING   (message): media type removed: its messages are no longer written or read by this service [media type removed]",
        "application/vnd.acme.pubsub.order (changed; received: the consumers verdict gates)",
        "  compatible id: `maxLength` 100 -> 200 [constraint loosened]",
        "             consumers: compatible, producers: breaking (not gating: this service only receives it)",
        "  compatible (message): media type added [media type added]",
        "2 breaking, 2 compatible (1 of them breaking only for a role the service does not have)",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    }

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["breaking"], json!(true));
    assert_eq!(json["summary"], json!({"breaking": 2, "compatible": 2, "breaking_for_other_roles": 1}));
    assert_eq!(json["messages"][2]["roles"], json!(["receive"]));
    assert_eq!(
        json["messages"][2]["changes"][0],
        json!({"path": "id", "kind": "constraint_loosened", "description": "`maxLength` 100 -> 200",
               "consumers": "compatible", "producers": "breaking", "gates": false})
    );
    assert_eq!(json["messages"][1]["status"], json!("removed"));
}

#[test]
fn bad_inputs_say_what_is_wrong() {
    let good = billing_document(100, Some(0), "current");
    let mut dangling = good.clone();
    dangling["components"]["schemas"] = json!({});
    let error = compare(&good, &dangling).unwrap_err().to_string();
    assert_eq!(
        error,
        "the current input: `$ref` \"#/components/schemas/Line\" at \
         #/components/messages/Order/payload/properties/lines/items points to nothing in the document: \
         add the missing definition or fix the reference"
    );
    let error = compare(&json!({"openapi": "3.1.0"}), &good).unwrap_err().to_string();
    assert!(error.starts_with("the baseline input is neither an AsyncAPI 3 document"), "{error}");
}
