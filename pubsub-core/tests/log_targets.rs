//! The crate logs under its module paths, so the filters everyone writes select its lines:
//! `RUST_LOG=pubsub_core=debug`, `pubsub_core::dispatch=info`.
//!
//! One test, run on one thread: each filter gets a scoped subscriber in turn, and none races
//! another test's for tracing's per-callsite interest cache.

use std::io::Write;
use std::sync::{Arc, Mutex};

use pubsub_core::testing::HandlerTest;
use pubsub_core::{handler, HandlerError, PubSubMessage, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing_subscriber::EnvFilter;
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.ping"]
struct Ping {
    ok: bool,
}

#[handler]
async fn on_ping(ping: Ping) -> Result<(), HandlerError> {
    if ping.ok {
        Ok(())
    } else {
        Err(HandlerError::failed("not ok"))
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The JSON lines logged while one good and one failing ping are handled under `filter`.
fn lines_under(filter: &str) -> Vec<Value> {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(move || writer.clone())
        .json()
        .flatten_event(true)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    {
        let _scope = tracing::subscriber::set_default(subscriber);
        runtime.block_on(async {
            assert_eq!(HandlerTest::new().run(&Ping { ok: true }).await.verdict(), Verdict::Succeeded);
            assert_eq!(HandlerTest::new().run(&Ping { ok: false }).await.verdict(), Verdict::Failed);
        });
    }
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn messages(lines: &[Value]) -> Vec<(&str, &str, &str)> {
    lines
        .iter()
        .map(|line| {
            (
                line["level"].as_str().unwrap(),
                line["target"].as_str().unwrap(),
                line["message"].as_str().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_usual_filters_select_the_crates_lines() {
    let lines = lines_under("pubsub_core=debug");
    assert_eq!(
        messages(&lines),
        [
            ("INFO", "pubsub_core::dispatch", "message handled"),
            ("WARN", "pubsub_core::dispatch", "message handled"),
            ("DEBUG", "pubsub_core::dispatch", "message body"),
        ],
        "{lines:#?}"
    );
    // The per-message line keeps the fields operators and scripts read.
    assert!(lines[0]["message_id"].as_str().is_some_and(|id| !id.is_empty()), "{lines:#?}");
    assert_eq!(lines[0]["result"], "SUCCEEDED", "{lines:#?}");
    assert_eq!(lines[1]["result"], "FAILED", "{lines:#?}");

    let lines = lines_under("pubsub_core::dispatch=info");
    assert_eq!(
        messages(&lines),
        [
            ("INFO", "pubsub_core::dispatch", "message handled"),
            ("WARN", "pubsub_core::dispatch", "message handled")
        ],
        "{lines:#?}"
    );

    assert!(lines_under("pubsub_core::daemon=debug").is_empty());
    // The old invented target selects nothing.
    assert!(lines_under("pubsub::dispatch=debug").is_empty());
}
