//! The binaries export on their own (feature `otlp`): run with the standard `OTEL_*`
//! variables pointing at an OTLP/HTTP receiver of ours on 127.0.0.1, `pubsub` and the
//! `simple_daemon` example send their spans and metrics there, with nothing but those variables
//! set, and nothing when they are not asked to; `simple_daemon` sends what is pending when it
//! stops on SIGTERM.
//!
//! The `pubsub` tests and the SIGTERM test need the SNS/SQS emulator (moto, started by
//! scripts/test.sh); `simple_daemon` is built for these tests ([`support::simple_daemon`]).

mod support;
// Its own module, not part of `support`: only this test uses it.
#[path = "support/otlp.rs"]
mod otlp;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use otlp::OtlpReceiver;

const SIMPLE: &str = "application/vnd.globality.pubsub.simple";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// A command with no `OTEL_*` variable of the test's environment, exporting to `receiver`.
fn exporting(program: &std::path::Path, receiver: &OtlpReceiver) -> Command {
    let mut command = Command::new(program);
    for (name, _) in
        std::env::vars().filter(|(name, _)| name.starts_with("OTEL_") || name.starts_with("TRACE"))
    {
        command.env_remove(name);
    }
    command.env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint);
    command
}

/// A new topic on the emulator (nothing reads it: the tests look at what is exported).
async fn topic(prefix: &str) -> String {
    let sns = aws_sdk_sns::Client::new(&support::sdk_config().await);
    sns.create_topic().name(support::unique_name(prefix)).send().await.unwrap().topic_arn.unwrap()
}

fn publish(topic: &str) -> Vec<String> {
    vec![
        "publish".into(),
        "--topic-arn".into(),
        topic.into(),
        "--media-type".into(),
        SIMPLE.into(),
        "--json".into(),
        r#"{"message": "hi", "timestamp": 1.0}"#.into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_exports_its_publish_span_in_the_trace_of_its_environment() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let topic = topic("otlp-publish").await;
    let receiver = OtlpReceiver::start().await;
    let mut command = exporting(std::path::Path::new(env!("CARGO_BIN_EXE_pubsub")), &receiver);
    command.args(publish(&topic)).env("TRACEPARENT", format!("00-{TRACE_ID}-{PARENT_ID}-01"));
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert!(output.status.success(), "{}", support::text(&output.stderr));

    // Sent before the process exited: nothing to wait for.
    let spans = receiver.spans();
    let send: Vec<_> = spans.iter().filter(|span| span.kind == "SPAN_KIND_PRODUCER").collect();
    assert_eq!(send.len(), 1, "{spans:#?}");
    let span = send[0];
    assert_eq!((span.trace_id.as_str(), span.parent_span_id.as_str()), (TRACE_ID, PARENT_ID));
    assert_eq!(span.service_name, "pubsub");
    assert!(span.name.starts_with("send "), "{}", span.name);
    assert_eq!(span.attributes["messaging.system"], "aws_sns");
    assert_eq!(receiver.latest_sum("messaging.client.sent.messages", &[]), Some(1.0));
    assert_eq!(receiver.latest_sum("pubsub.aws.requests", &[("rpc.method", "PublishBatch")]), Some(1.0));
    assert!(receiver.raw().is_empty(), "{:?}", receiver.raw());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_exports_json_and_names_its_service_when_told() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let topic = topic("otlp-json").await;
    let receiver = OtlpReceiver::start().await;
    let mut command = exporting(std::path::Path::new(env!("CARGO_BIN_EXE_pubsub")), &receiver);
    command
        .args(publish(&topic))
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("OTEL_SERVICE_NAME", "nightly-script")
        .env("TRACEPARENT", format!("00-{TRACE_ID}-{PARENT_ID}-01"));
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert!(output.status.success(), "{}", support::text(&output.stderr));
    let raw = receiver.raw();
    assert_eq!(raw.len(), 1, "traces only, as JSON: {raw:?}");
    assert_eq!((raw[0].path.as_str(), raw[0].content_type.as_str()), ("/v1/traces", "application/json"));
    assert!(raw[0].body.contains(TRACE_ID) && raw[0].body.contains("nightly-script"), "{}", raw[0].body);
    assert!(receiver.spans().is_empty() && receiver.metric_names().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_exports_nothing_when_told_none_and_refuses_grpc() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let topic = topic("otlp-none").await;
    let receiver = OtlpReceiver::start().await;
    let mut command = exporting(std::path::Path::new(env!("CARGO_BIN_EXE_pubsub")), &receiver);
    command.args(publish(&topic)).env("OTEL_TRACES_EXPORTER", "none").env("OTEL_METRICS_EXPORTER", "none");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert!(output.status.success(), "{}", support::text(&output.stderr));
    assert!(receiver.spans().is_empty() && receiver.metric_names().is_empty() && receiver.raw().is_empty());

    let mut grpc = exporting(std::path::Path::new(env!("CARGO_BIN_EXE_pubsub")), &receiver);
    grpc.args(publish(&topic)).env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
    let output = tokio::task::spawn_blocking(move || grpc.output().unwrap()).await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = support::text(&output.stderr);
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && stderr.contains("http/protobuf"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_daemon_exports_a_span_per_message_when_its_input_ends() {
    let daemon = tokio::task::spawn_blocking(support::simple_daemon).await.unwrap();
    let receiver = OtlpReceiver::start().await;
    let mut command = exporting(daemon, &receiver);
    command
        .args(["--stdin", "--name", "orders-daemon"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().unwrap();
        let lines =
            format!("{{\"mediaType\": \"{SIMPLE}\", \"message\": \"hi\", \"timestamp\": 1.0}}\nnot json\n");
        child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", support::text(&output.stderr));

    let spans = receiver.spans();
    assert_eq!(spans.len(), 2, "{spans:#?}");
    for span in &spans {
        assert_eq!((span.kind.as_str(), span.name.as_str()), ("SPAN_KIND_CONSUMER", "process daemon"));
        assert_eq!(span.service_name, "orders-daemon", "--name, as OTEL_SERVICE_NAME is not set");
        assert_eq!(span.parent_span_id, "", "lines of standard input carry no trace context");
    }
    assert_ne!(spans[0].span_id, spans[1].span_id);
    let results: Vec<_> = spans.iter().map(|span| span.attributes["pubsub.result"].as_str()).collect();
    assert!(results.contains(&"SUCCEEDED"), "{results:?}");
    let malformed = spans.iter().find(|span| span.attributes["pubsub.result"] != "SUCCEEDED").unwrap();
    assert_eq!(malformed.status, "STATUS_CODE_ERROR", "{malformed:#?}");
    assert_eq!(receiver.latest_sum("messaging.client.consumed.messages", &[]), Some(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_daemon_sends_what_is_pending_when_it_stops_on_sigterm() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let daemon = tokio::task::spawn_blocking(support::simple_daemon).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&support::sdk_config().await);
    let queue = sqs.create_queue().queue_name(support::unique_name("otlp-sigterm")).send().await.unwrap();
    let queue = queue.queue_url.unwrap();
    for n in 0..3 {
        let body = format!("{{\"mediaType\": \"{SIMPLE}\", \"message\": \"m{n}\", \"timestamp\": 1.0}}");
        sqs.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
    }
    let receiver = OtlpReceiver::start().await;
    let mut command = exporting(daemon, &receiver);
    command
        .args(["--sqs-queue-url", &queue])
        // Nothing leaves before the stop: a batch only after ten minutes, metrics likewise.
        .env("OTEL_BSP_SCHEDULE_DELAY", "600000")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "600000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    // The log is read to its end (so the daemon never blocks on a full pipe); the test goes on
    // once three messages are handled.
    let stderr = child.stderr.take().unwrap();
    let (handled, three_handled) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("simple message")
                && lines.iter().filter(|seen: &&String| seen.contains("simple message")).count() == 2
            {
                let _ = handled.send(());
            }
            lines.push(line);
        }
        lines
    });
    let waited = tokio::task::spawn_blocking(move || three_handled.recv_timeout(Duration::from_secs(60)))
        .await
        .unwrap();
    if waited.is_err() {
        let _ = child.kill();
        panic!("3 messages not handled in 60 s: {:#?}", log.join().unwrap());
    }
    assert!(receiver.spans().is_empty(), "nothing exported before the stop: {:?}", receiver.spans());

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "the daemon exits 0 on SIGTERM: {status}; log: {:#?}", log.join().unwrap());

    let spans = receiver.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert!(spans.iter().all(|span| span.attributes["pubsub.result"] == "SUCCEEDED"), "{spans:#?}");
    assert_eq!(receiver.latest_sum("messaging.client.consumed.messages", &[]), Some(3.0));
}
