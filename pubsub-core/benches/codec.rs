//! Encode and decode of one order message, against hand-written serde_json producing and
//! reading the same body (a struct that spells out `mediaType` and `opaqueData` itself).
//! The ratio of the two is the figure README quotes.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use pubsub_core::{decode, encode, OpaqueData, PubSubMessage};
use serde::{Deserialize, Serialize};
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

/// The same body written by hand, borrowing (no copies), as a careful user would.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HandWrittenRef<'a> {
    media_type: &'a str,
    opaque_data: BTreeMap<&'a str, &'a str>,
    order_id: &'a str,
    amount: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    tags: &'a [String],
}

/// The same body read by hand: what a user would write without this library.
#[allow(dead_code)] // only parsed, as decode parses
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HandWritten {
    media_type: String,
    opaque_data: BTreeMap<String, String>,
    order_id: String,
    amount: i64,
    note: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

fn order() -> OrderCreated {
    OrderCreated {
        order_id: "o-12345".into(),
        amount: 4200,
        note: Some("h\u{e9}llo \u{2713}, deliver after 5pm".into()),
        tags: vec!["priority".into(), "gift".into()],
    }
}

fn codec(c: &mut Criterion) {
    let opaque = OpaqueData::new().with_request_id("req-123").with_ttl(31);
    let message = order();
    let body = encode(&message, &opaque).unwrap();

    let mut group = c.benchmark_group("encode");
    group.bench_function("pubsub_core::encode", |b| {
        b.iter(|| encode(black_box(&message), black_box(&opaque)).unwrap())
    });
    group.bench_function("serde_json by hand", |b| {
        b.iter(|| {
            let m = black_box(&message);
            let mut opaque_data: BTreeMap<&str, &str> = opaque.iter().collect();
            opaque_data.insert("x-request-published", "1795800748.889509");
            serde_json::to_string(&HandWrittenRef {
                media_type: OrderCreated::MEDIA_TYPE,
                opaque_data,
                order_id: &m.order_id,
                amount: m.amount,
                note: m.note.as_deref(),
                tags: &m.tags,
            })
            .unwrap()
        })
    });
    group.finish();

    let notification = serde_json::json!({"Type": "Notification", "Message": body}).to_string();
    let mut group = c.benchmark_group("decode");
    group.bench_function("pubsub_core::decode raw", |b| {
        b.iter(|| decode::<OrderCreated>(black_box(&body)).unwrap())
    });
    group.bench_function("serde_json by hand raw", |b| {
        b.iter(|| serde_json::from_str::<HandWritten>(black_box(&body)).unwrap())
    });
    group.bench_function("pubsub_core::decode sns", |b| {
        b.iter(|| decode::<OrderCreated>(black_box(&notification)).unwrap())
    });
    group.bench_function("serde_json by hand sns", |b| {
        b.iter(|| {
            #[derive(Deserialize)]
            struct Notification {
                #[serde(rename = "Message")]
                message: String,
            }
            let outer: Notification = serde_json::from_str(black_box(&notification)).unwrap();
            serde_json::from_str::<HandWritten>(&outer.message).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
