//! A daemon's AsyncAPI document: what it says (channels, operations, messages, hoisted
//! schemas), and that AsyncAPI's own parser (@asyncapi/parser from npm, run by node; installed
//! by scripts/asyncapi.sh) reads it as valid AsyncAPI 3.0 with every reference resolved.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use pubsub_core::registry::Registry;
use pubsub_core::schema::{AsyncApi, AsyncApiFormat};
use pubsub_core::{handler, DaemonBuilder, MemoryBroker, Producer, PubSubMessage, TopicMap, UntypedMessage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use validator::Validate;

#[derive(Debug, Serialize, Deserialize, Validate, schemars::JsonSchema)]
struct LineItem {
    #[validate(length(min = 1))]
    sku: String,
    quantity: u32,
}

/// A tree: its schema refers to itself.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
struct Category {
    name: String,
    children: Vec<Category>,
}

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order_placed"]
#[serde(rename_all = "camelCase")]
struct OrderPlaced {
    #[validate(contains(pattern = "-"))]
    order_id: String,
    #[validate(nested)]
    lines: Vec<LineItem>,
}

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.invoice"]
struct Invoice {
    #[validate(range(min = 1))]
    amount: u64,
    lines: Vec<LineItem>,
    category: Category,
}

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.refund.full"]
struct FullRefund {
    invoice: String,
}

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.refund.partial"]
struct PartialRefund {
    invoice: String,
    amount: u64,
}

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.ping"]
struct Ping {}

#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.receipt"]
struct Receipt {
    invoice: String,
}

#[handler]
async fn on_order(_order: OrderPlaced) {}

#[handler(media_type = "application/vnd.acme.pubsub.audit.*")]
async fn on_audit(_event: UntypedMessage) {}

#[handler(media_type = "application/vnd.acme.pubsub._.created.widget")]
async fn on_widget(_event: UntypedMessage) {}

const RECEIPTS_QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/receipts";

fn daemon() -> DaemonBuilder {
    let topics = TopicMap::new()
        .route("application/vnd.acme.pubsub.invoice", "arn:aws:sns:us-east-1:123456789012:invoices")
        .unwrap()
        .route("application/vnd.acme.pubsub.refund.*", "arn:aws:sns:us-east-1:123456789012:refunds")
        .unwrap()
        .route("application/vnd.acme.pubsub.receipt", RECEIPTS_QUEUE)
        .unwrap()
        .default_topic("arn:aws:sns:us-east-1:123456789012:events");
    DaemonBuilder::new("billing")
        .handler::<on_order>()
        .handler::<on_audit>()
        .handler::<on_widget>()
        .producer(Producer::new(MemoryBroker::new().publisher(), topics))
}

fn document() -> Value {
    let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/billing";
    daemon().asyncapi(queue).unwrap().version("1.2.0").document(Registry::global().unwrap())
}

/// `(action, message name, channel address)` of every operation.
fn operations(document: &Value) -> Vec<(String, String, String)> {
    let mut found: Vec<_> = document["operations"]
        .as_object()
        .unwrap()
        .values()
        .map(|operation| {
            let channel = resolve(document, &operation["channel"]);
            let message = resolve(document, resolve(document, &operation["messages"][0]));
            let text = |value: &Value| value.as_str().unwrap().to_owned();
            (text(&operation["action"]), text(&message["name"]), text(&channel["address"]))
        })
        .collect();
    found.sort();
    found
}

/// What a `{"$ref": "#/..."}` points at in `document` (itself when it is no reference).
fn resolve<'d>(document: &'d Value, value: &'d Value) -> &'d Value {
    match value["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("a local reference");
            document.pointer(pointer).unwrap_or_else(|| panic!("{reference} does not resolve"))
        }
        None => value,
    }
}

/// Every `$ref` in `value`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get("$ref") {
                found.push(reference.clone());
            }
            object.values().for_each(|value| references(value, found));
        }
        Value::Array(items) => items.iter().for_each(|value| references(value, found)),
        _ => {}
    }
}

#[test]
fn the_document_says_what_the_daemon_reads_and_sends() {
    let document = document();
    assert_eq!(document["asyncapi"], "3.0.0");
    assert_eq!(
        (document["info"]["title"].as_str(), document["info"]["version"].as_str()),
        (Some("billing"), Some("1.2.0"))
    );
    let billing = "https://sqs.us-east-1.amazonaws.com/123456789012/billing";
    let arn = |name: &str| format!("arn:aws:sns:us-east-1:123456789012:{name}");
    let expected: Vec<(String, String, String)> = vec![
        ("receive", "application/vnd.acme.pubsub._.created.widget", billing.to_owned()),
        ("receive", "application/vnd.acme.pubsub.audit.*", billing.to_owned()),
        ("receive", "application/vnd.acme.pubsub.order_placed", billing.to_owned()),
        ("send", "application/vnd.acme.pubsub.invoice", arn("invoices")),
        // The default topic: the linked types that no route takes and no handler here reads.
        ("send", "application/vnd.acme.pubsub.ping", arn("events")),
        ("send", "application/vnd.acme.pubsub.receipt", RECEIPTS_QUEUE.to_owned()),
        ("send", "application/vnd.acme.pubsub.refund.full", arn("refunds")),
        ("send", "application/vnd.acme.pubsub.refund.partial", arn("refunds")),
    ]
    .into_iter()
    .map(|(action, name, address)| (action.to_owned(), name.to_owned(), address))
    .collect();
    assert_eq!(operations(&document), expected);

    let messages = &document["components"]["messages"];
    let invoice = &messages["application_vnd_acme_pubsub_invoice"];
    assert_eq!(invoice["title"], "Invoice");
    assert_eq!(
        invoice["headers"]["properties"]["media_type"]["const"],
        "application/vnd.acme.pubsub.invoice"
    );
    assert_eq!(invoice["payload"]["properties"]["mediaType"]["const"], "application/vnd.acme.pubsub.invoice");
    assert_eq!(invoice["payload"]["properties"]["amount"]["minimum"], 1);
    let widget = &messages["application_vnd_acme_pubsub___created_widget"];
    assert_eq!(widget["payload"]["required"], serde_json::json!(["mediaType", "uri"]));
    let audit = &messages["application_vnd_acme_pubsub_audit__"];
    assert!(audit["payload"]["properties"]["mediaType"]["pattern"].is_string(), "{audit:#}");

    // Nested definitions are hoisted, and every reference resolves inside the document.
    let schemas = document["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("LineItem") && schemas.contains_key("Category"), "{schemas:?}");
    let mut found = Vec::new();
    references(&document, &mut found);
    assert!(found.iter().any(|r| r == "#/components/schemas/Category"), "{found:?}");
    for reference in &found {
        assert!(!reference.contains("$defs"), "{reference}");
        resolve(&document, &serde_json::json!({"$ref": reference}));
    }
}

#[test]
fn yaml_says_the_same() {
    let asyncapi = daemon().asyncapi("billing").unwrap();
    let registry = Registry::global().unwrap();
    let yaml: Value = serde_norway::from_str(&asyncapi.render(registry, AsyncApiFormat::Yaml)).unwrap();
    assert_eq!(yaml, asyncapi.document(registry));
    let json: Value = serde_json::from_str(&asyncapi.render(registry, AsyncApiFormat::Json)).unwrap();
    assert_eq!(json, yaml);
}

#[test]
fn a_document_with_no_topics_has_the_queue_alone() {
    let document = AsyncApi::new("reader")
        .receives("reader", ["application/vnd.acme.pubsub.order_placed"])
        .unwrap()
        .document(Registry::global().unwrap());
    assert_eq!(document["channels"].as_object().unwrap().len(), 1);
    assert_eq!(operations(&document).len(), 1);
}

/// The parser's script, or `None` (skip) when it is not installed and CI is not set.
fn validator() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let script = std::env::var_os("PUBSUB_ASYNCAPI_VALIDATOR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("scripts/asyncapi/validate.mjs"));
    let installed = script.with_file_name("node_modules").join("@asyncapi/parser").is_dir();
    let ci = std::env::var("CI").is_ok_and(|ci| !matches!(ci.as_str(), "" | "0" | "false"));
    match (installed, ci) {
        (true, _) => Some(script),
        (false, true) => {
            panic!("CI is set: the AsyncAPI parser is required; run ./scripts/asyncapi.sh install")
        }
        (false, false) => {
            eprintln!("skipped: the AsyncAPI parser is not installed (./scripts/asyncapi.sh install)");
            None
        }
    }
}

/// The parser's summary of `document` (JSON or YAML), and whether it found it valid.
fn parse(script: &PathBuf, document: &str) -> (bool, Value) {
    let mut node = Command::new("node")
        .arg(script)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    std::io::Write::write_all(&mut node.stdin.take().unwrap(), document.as_bytes()).unwrap();
    let output = node.wait_with_output().unwrap();
    let summary = serde_json::from_slice(&output.stdout).expect("the script prints a JSON summary");
    (output.status.success(), summary)
}

#[test]
fn asyncapi_s_parser_reads_it_as_valid_asyncapi_3() {
    let Some(script) = validator() else { return };
    let asyncapi = daemon().asyncapi("https://sqs.us-east-1.amazonaws.com/123456789012/billing").unwrap();
    let registry = Registry::global().unwrap();
    for format in [AsyncApiFormat::Json, AsyncApiFormat::Yaml] {
        let (valid, summary) = parse(&script, &asyncapi.render(registry, format));
        let problems: Vec<&Value> = summary["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["severity"] == "error" || d["severity"] == "warning")
            .collect();
        assert!(valid && problems.is_empty(), "{format:?}: {problems:#?}");
        assert_eq!(summary["version"], "3.0.0");
        assert_eq!(summary["operations"].as_array().unwrap().len(), 8, "{summary:#}");
        // The parser followed the references into the hoisted schemas.
        let invoice = summary["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "application/vnd.acme.pubsub.invoice")
            .unwrap();
        // (In declaration order when serde_json keeps it, sorted when not.)
        let mut category: Vec<&str> = invoice["properties"]["category"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        category.sort_unstable();
        assert_eq!(category, ["children", "name"], "{invoice:#}");
    }
    // And it is no rubber stamp: a reference that resolves nowhere is an error.
    let mut broken = asyncapi.document(registry);
    broken["operations"]["receive_application_vnd_acme_pubsub_order_placed"]["channel"]["$ref"] =
        "#/channels/nowhere".into();
    let (valid, summary) = parse(&script, &broken.to_string());
    assert!(!valid, "{summary:#}");
}
