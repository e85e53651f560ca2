//! Log hygiene: what a sender writes reaches the info and warn lines only as a short excerpt
//! (message bodies are logged at debug only, cut at 4 KiB), and receipt handles are never
//! copied into the messages handlers publish.
//!
//! The logs are read in the format the daemons write (`tracing_subscriber::fmt`, as
//! `pubsub_core::logging` sets it up), captured at DEBUG; the lines an operator sees
//! at the default level are those at INFO and above.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::memory::{FilterPolicy, QueueOptions, SubscriptionOptions};
use pubsub_core::testing::HandlerTest;
use pubsub_core::{
    backoff::BackoffPolicy, decode, handler, DaemonBuilder, HandlerError, MemoryBroker, MessageContext,
    OpaqueData, Producer, PubSubMessage, TopicMap, Verdict,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::{Format, Logs, Tap};
use validator::Validate;

const NOTE: &str = "application/vnd.acme.pubsub.note";

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.note"]
struct Note {
    id: i64,
    text: String,
    #[validate(length(max = 100))]
    title: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.note_seen"]
struct NoteSeen {
    id: i64,
}

/// A refused delete (a stale receipt: the heartbeat gave up and the message was received
/// again) is logged at warn with the start of its receipt handle only, though the broker's
/// words quote all of it, as SQS's do.
#[tokio::test(start_paused = true)]
async fn a_refused_delete_logs_only_the_start_of_its_receipt_handle() {
    /// Hangs for 10 s on the first receive, past the heartbeat's maximum.
    #[handler]
    async fn hangs_the_first_time(_note: Note, context: &MessageContext) {
        if context.receive_count() == 1 {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }

    let (logs, _capturing) = Logs::capture(Format::Text);
    let broker = MemoryBroker::new();
    let options = QueueOptions { visibility_timeout: Duration::from_secs(2), ..QueueOptions::default() };
    broker.create_queue("notes", options);
    let body = pubsub_core::encode(&Note { id: 1, text: "slow".into(), title: None }, &OpaqueData::new());
    broker.send("notes", &body.unwrap()).await.unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let subscriber = Tap::recording(broker.subscriber("notes").unwrap(), received.clone());
    let configure = |builder: DaemonBuilder| {
        builder.concurrency(4).wait_time(Duration::from_millis(50)).heartbeat_max(Duration::from_secs(4))
    };
    let report = configure(DaemonBuilder::new("notes").handler::<hangs_the_first_time>())
        .build(subscriber)
        .unwrap()
        .run_until_idle()
        .await;
    assert_eq!(report.count(Verdict::Succeeded), 2, "{report}");
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);

    let lines = logs.all();
    let refused: Vec<&String> = lines.iter().filter(|line| line.contains("delete refused")).collect();
    assert_eq!(refused.len(), 1, "{lines:#?}");
    assert!(refused[0].contains("WARN") && refused[0].contains("ReceiptHandleIsInvalid"), "{}", refused[0]);
    assert!(refused[0].contains(&received[0].receipt_handle[..16]), "{}", refused[0]);
    for line in &lines {
        for message in &received {
            assert!(!line.contains(&message.receipt_handle), "{line}");
        }
    }
}

/// A body whose field `field` holds `near` 40 bytes in (past any excerpt of a reason, within
/// the 4 KiB of a debug line) and `far` after `len` more bytes (past everything).
fn with_markers(media_type: &str, field: &str, near: &str, far: &str, len: usize) -> String {
    let value = format!("{}{near}{}{far}", "a".repeat(40), "b".repeat(len));
    let mut body = json!({ "mediaType": media_type, "id": 1, "text": "ok" });
    body[field] = json!(value);
    body.to_string()
}

#[tokio::test]
async fn bodies_reach_info_lines_only_as_short_excerpts_and_debug_lines_cut_at_4_kib() {
    /// A careless handler: its error quotes all of a text it cannot use.
    #[handler]
    async fn quotes_what_it_cannot_use(note: Note) -> Result<(), HandlerError> {
        if note.text.len() > 100 {
            return Err(HandlerError::failed(format!("cannot use the text {:?}", note.text)));
        }
        Ok(())
    }

    let (logs, _capturing) = Logs::capture(Format::Text);
    let broker = MemoryBroker::new();
    broker.create_queue("notes", QueueOptions::default());
    let huge = 200 * 1024;
    let bad = [
        // A string where a number goes: serde quotes the value.
        with_markers(NOTE, "id", "NEAR-1", "FAR-1", huge),
        // A failed validation: validator quotes the value.
        with_markers(NOTE, "title", "NEAR-2", "FAR-2", huge),
        // A handler error quoting its input.
        with_markers(NOTE, "text", "NEAR-3", "FAR-3", huge),
        // An over-long media type, IGNORED.
        json!({ "mediaType": format!("application/{}NEAR-4{}FAR-4", "x".repeat(60), "y".repeat(huge)) })
            .to_string(),
        // Not JSON at all.
        format!("{}NEAR-5{}FAR-5", "z".repeat(40), "w".repeat(huge)),
    ];
    for body in &bad {
        broker.send("notes", body.as_str()).await.unwrap();
    }
    broker
        .send("notes", json!({ "mediaType": NOTE, "id": 2, "text": "GOOD-BODY" }).to_string())
        .await
        .unwrap();
    let report = DaemonBuilder::new("notes")
        .handler::<quotes_what_it_cannot_use>()
        .wait_time(Duration::from_millis(50))
        .backoff(BackoffPolicy::Fixed(Duration::from_secs(600)))
        .build(broker.subscriber("notes").unwrap())
        .unwrap()
        .run_until_idle()
        .await;
    assert_eq!(report.count(Verdict::Failed), 4, "{report}");
    assert_eq!(report.count(Verdict::Ignored), 1, "{report}");
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");

    // At info: one short line per message, and no part of a body past the excerpts.
    let info = logs.info();
    let handled: Vec<&String> = info.iter().filter(|line| line.contains("message handled")).collect();
    assert_eq!(handled.len(), 6, "{handled:#?}");
    for line in &info {
        assert!(line.len() <= 1024, "an info line of {} bytes: {line:.1024}", line.len());
        for marker in ["NEAR-", "FAR-", "GOOD-BODY", "bbbbbbbb", "yyyyyyyy", "wwwwwwww"] {
            assert!(!line.contains(marker), "`{marker}` at info: {line:.1024}");
        }
    }
    let excerpt = format!(r#"{}…\" ({} bytes)"#, "a".repeat(32), 40 + 6 + huge + 5);
    let failing = |words: &[&str]| {
        handled
            .iter()
            .any(|line| line.contains("result=\"FAILED\"") && words.iter().all(|w| line.contains(w)))
    };
    assert!(failing(&["invalid type: string", &excerpt, "expected i64"]), "{handled:#?}");
    assert!(failing(&["`title` has the wrong length", &format!("(got \\\"{excerpt})")]), "{handled:#?}");
    assert!(failing(&["cannot use the text \\\"aaaaaaaa", "bytes)"]), "{handled:#?}");
    assert!(failing(&["not valid JSON"]), "{handled:#?}");
    assert!(
        handled.iter().any(|line| line.contains("result=\"IGNORED\"")
            && line.contains(&format!(
                "media_type=\"application/{}… ({} bytes)\"",
                "x".repeat(52),
                12 + 60 + 6 + huge + 5
            ))
            && line.contains(&format!("{} characters long", 60 + 6 + huge + 5))),
        "{handled:#?}"
    );

    // At debug: the body of each FAILED or IGNORED message, cut at 4 KiB; none of the others.
    let bodies: Vec<String> = logs.debug().into_iter().filter(|line| line.contains("message body")).collect();
    assert_eq!(bodies.len(), 5, "{bodies:#?}");
    for (n, body) in bad.iter().enumerate() {
        let marker = format!("NEAR-{}", n + 1);
        let line = bodies.iter().find(|line| line.contains(&marker)).unwrap_or_else(|| panic!("{marker}"));
        assert!(line.contains(&format!("body_bytes={}", body.len())), "{line:.300}");
        assert!(line.len() < 4096 + 512, "a debug line of {} bytes", line.len());
    }
    for line in logs.all() {
        assert!(!line.contains("FAR-") && !line.contains("GOOD-BODY"), "{line:.300}");
    }
}

#[tokio::test]
async fn a_1_mib_body_makes_a_short_reason_and_a_4_kib_debug_line() {
    #[handler]
    async fn takes_notes(_note: Note) {}

    let (logs, _capturing) = Logs::capture(Format::Text);
    let body = with_markers(NOTE, "id", "NEAR", "FAR", 1 << 20);
    // The test kit dispatches and logs as the daemon does, on a body no queue would carry.
    let run = HandlerTest::new().handler::<takes_notes>().run_body(&body).await;
    assert_eq!(run.verdict(), Verdict::Failed);
    let reason = run.outcome.reason.unwrap();
    assert!(reason.len() <= 512, "{reason}");
    assert!(
        reason.contains(&format!("invalid type: string \"{}…\" ({} bytes)", "a".repeat(32), 1048623)),
        "{reason}"
    );

    let info = logs.info();
    assert_eq!(info.len(), 1, "{info:#?}");
    assert!(info[0].len() <= 1024 && !info[0].contains("NEAR"), "{:.2000}", info[0]);
    let debug = logs.debug();
    assert_eq!(debug.len(), 1, "{debug:#?}");
    assert!(debug[0].contains("NEAR") && !debug[0].contains("FAR"), "{:.300}", debug[0]);
    assert!(debug[0].contains(&format!("body_bytes={}", body.len())));
    assert!(debug[0].len() < 4096 + 512, "a debug line of {} bytes", debug[0].len());
}

#[tokio::test]
async fn receipt_handles_are_never_copied_into_published_messages_or_logs() {
    #[handler]
    async fn reports_seen(note: Note, context: &MessageContext) -> Result<(), HandlerError> {
        context.publish(&NoteSeen { id: note.id })?;
        Ok(())
    }

    let (logs, _capturing) = Logs::capture(Format::Text);
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("notes");
    for queue in ["notes", "seen-raw", "seen-sns"] {
        broker.create_queue(queue, QueueOptions::default());
    }
    let only_notes = Some(FilterPolicy::media_types([NOTE]));
    broker
        .subscribe(&topic, "notes", SubscriptionOptions { raw_delivery: false, filter: only_notes })
        .unwrap();
    let only_seen = Some(FilterPolicy::media_types([NoteSeen::MEDIA_TYPE]));
    broker
        .subscribe(&topic, "seen-raw", SubscriptionOptions { raw_delivery: true, filter: only_seen.clone() })
        .unwrap();
    broker
        .subscribe(&topic, "seen-sns", SubscriptionOptions { raw_delivery: false, filter: only_seen })
        .unwrap();
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    let mut opaque = OpaqueData::new().with_request_id("req-1").with_ttl(5);
    opaque.insert("X-Custom", "kept");
    for id in 0..3 {
        producer.produce_with(&Note { id, text: "seen?".into(), title: None }, &opaque).await.unwrap();
    }

    // A publish time the outgoing messages could not get by copying it.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let received = Arc::new(Mutex::new(Vec::new()));
    let subscriber = Tap::recording(broker.subscriber("notes").unwrap(), received.clone());
    let report = DaemonBuilder::new("notes")
        .handler::<reports_seen>()
        .producer(producer)
        .wait_time(Duration::from_millis(50))
        .build(subscriber)
        .unwrap()
        .run_until_idle()
        .await;
    assert_eq!(report.count(Verdict::Succeeded), 3, "{report}");

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    let incoming: Vec<_> = received.iter().map(|m| decode::<Note>(&m.body).unwrap()).collect();
    let published_at = incoming[0].opaque_data.get("x-request-published").unwrap().to_owned();
    for queue in ["seen-raw", "seen-sns"] {
        let bodies = broker.messages(queue);
        assert_eq!(bodies.len(), 3, "{queue}");
        for body in &bodies {
            for message in &received {
                assert_eq!(message.receipt_handle.len(), 32);
                assert!(!body.contains(&message.receipt_handle), "{queue}: {body}");
                assert!(!body.contains(&message.message_id), "{queue}: {body}");
            }
            let seen = decode::<NoteSeen>(body).unwrap();
            // The request id and the custom key carried on, the hop budget spent by one, a
            // new publish time; nothing else.
            let keys: Vec<&str> = seen.opaque_data.iter().map(|(key, _)| key).collect();
            assert_eq!(keys, ["x-custom", "x-request-id", "x-request-published", "x-request-ttl"], "{body}");
            assert_eq!(seen.opaque_data.request_id(), Some("req-1"));
            assert_eq!(seen.opaque_data.ttl(), Some(4));
            assert_eq!(seen.opaque_data.get("x-custom"), Some("kept"));
            assert!(seen.opaque_data.published_seconds().is_some());
            assert_ne!(seen.opaque_data.get("x-request-published"), Some(published_at.as_str()));
        }
        let mut ids: Vec<i64> =
            bodies.iter().map(|body| decode::<NoteSeen>(body).unwrap().message.id).collect();
        ids.sort_unstable();
        assert_eq!(ids, [0, 1, 2], "{queue}");
    }

    // Nor does any log line, at any level, hold a receipt handle.
    let lines = logs.all();
    assert!(lines.iter().any(|line| line.contains("deferred messages sent")), "{lines:#?}");
    for line in &lines {
        for message in &received {
            assert!(!line.contains(&message.receipt_handle), "{line}");
        }
    }
}
