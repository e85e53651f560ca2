//! The daemon command line (`pubsub_core::cli`), as the examples use it.

use clap::Parser;
use std::time::Duration;

use pubsub_core::cli::{run_embedded, CliError, DaemonArgs, HandlerTimeout, Source};
use pubsub_core::{handler, handlers::HandlerSetError, PubSubMessage, Verdict};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.globality.pubsub.simple"]
struct SimpleMessage {
    message: String,
    timestamp: f64,
}

#[handler]
async fn handle_simple(_message: SimpleMessage) {}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.globality.pubsub.slow"]
struct SlowMessage {}

#[handler]
async fn handle_slow(_message: SlowMessage) {
    tokio::time::sleep(Duration::from_secs(60)).await;
}

fn args(line: &[&str]) -> DaemonArgs {
    DaemonArgs::try_parse_from(std::iter::once("daemon").chain(line.iter().copied())).unwrap()
}

#[test]
fn the_source_follows_the_seed_flags() {
    assert_eq!(args(&["--stdin"]).source().unwrap(), Source::Stdin);
    assert_eq!(args(&["--sqs-queue-url", "STDIN"]).source().unwrap(), Source::Stdin);
    assert_eq!(args(&["--sqs-queue-url", "m.jsonl"]).source().unwrap(), Source::File("m.jsonl".into()));
    assert_eq!(args(&["--testing"]).source().unwrap(), Source::Embedded);
    assert!(matches!(args(&[]).source(), Err(CliError::NoSource)));
    assert!(DaemonArgs::try_parse_from(["daemon", "--no-such-flag"]).is_err());
    let parsed = args(&["--concurrency", "32", "--name", "orders", "--handler", "handle_simple", "--debug"]);
    assert_eq!((parsed.concurrency, parsed.name.as_str(), parsed.debug), (32, "orders", true));
    // The core knows no AWS: a transport's crate adds those flags (pubsub_aws::AwsArgs).
    for flag in ["--region", "--profile", "--endpoint-url"] {
        assert!(DaemonArgs::try_parse_from(["daemon", flag, "x"]).is_err(), "{flag}");
    }
}

#[tokio::test]
async fn handler_timeouts_come_from_the_command_line() {
    let every = HandlerTimeout { handler: None, limit: Duration::from_millis(2500) };
    let slow = HandlerTimeout { handler: Some("handle_slow".into()), limit: Duration::from_millis(50) };
    assert_eq!(args(&["--handler-timeout", "2.5"]).handler_timeouts, std::slice::from_ref(&every));
    assert_eq!(
        args(&["--handler-timeout", "2.5", "--handler-timeout", "handle_slow=0.05"]).handler_timeouts,
        [every, slow]
    );
    assert!(args(&[]).handler_timeouts.is_empty());
    for bad in ["0", "-1", "soon", "inf", "handle_slow=", "handle_slow=0"] {
        let flag = format!("--handler-timeout={bad}");
        let error = DaemonArgs::try_parse_from(["daemon", flag.as_str()]).unwrap_err().to_string();
        assert!(error.contains("is not a number of seconds above 0"), "{bad}: {error}");
    }
    let error = DaemonArgs::try_parse_from(["daemon", "--handler-timeout==3"]).unwrap_err().to_string();
    assert!(error.contains("names no handler"), "{error}");

    let file = std::env::temp_dir().join(format!("pubsub-cli-slow-{}.jsonl", std::process::id()));
    std::fs::write(&file, "{\"mediaType\": \"application/vnd.globality.pubsub.slow\"}\n").unwrap();
    let path = file.to_str().unwrap();
    // A limit for that handler, and a longer one for the others.
    let parsed =
        args(&["--sqs-queue-url", path, "--handler-timeout", "handle_slow=0.05", "--handler-timeout", "600"]);
    let report = run_embedded(parsed.builder(), &parsed.source().unwrap()).await.unwrap();
    assert_eq!(report.count(Verdict::Failed), 1, "{report}");
    // A limit for a handler that does not exist is a mistake, refused before any message.
    let typo = args(&["--sqs-queue-url", path, "--handler-timeout", "handle_slwo=0.05"]);
    let error = run_embedded(typo.builder(), &typo.source().unwrap()).await.unwrap_err();
    assert!(
        matches!(&error, CliError::Handlers(HandlerSetError::UnknownHandler(name)) if name == "handle_slwo"),
        "{error}"
    );
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn a_queue_url_says_the_embedded_runner_does_not_read_queues() {
    let url = "https://sqs.us-east-1.amazonaws.com/123456789012/orders";
    let parsed = args(&["--sqs-queue-url", url]);
    let error = run_embedded(parsed.builder(), &parsed.source().unwrap()).await.unwrap_err();
    assert!(matches!(&error, CliError::NotEmbedded(u) if u == url));
    let text = error.to_string();
    assert!(text.contains("is a queue URL") && text.contains("transport's subscriber"), "{text}");
    assert!(!text.replace(url, "").to_lowercase().contains("aws"), "the core names no transport: {text}");
}

#[tokio::test]
async fn a_file_of_messages_is_handled_until_drained() {
    let dir = std::env::temp_dir().join(format!("pubsub-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("messages.jsonl");
    // The last line is over SQS's 256 KiB: offloaded to the embedded object store, as a
    // producer with large payloads would, and handled whole like the others.
    let too_large = format!(
        r#"{{"mediaType": "application/vnd.globality.pubsub.simple", "message": "{}", "timestamp": 3.0}}"#,
        "x".repeat(300_000)
    );
    let lines = concat!(
        r#"{"mediaType": "application/vnd.globality.pubsub.simple", "message": "a", "timestamp": 1.0}"#,
        "\n",
        "\n",
        "not json\n",
        r#"{"mediaType": "application/vnd.globality.pubsub.simple", "message": "b", "timestamp": 2.5}"#,
        "\n",
        r#"{"mediaType": "application/vnd.globality.pubsub.other"}"#,
        "\n",
    );
    std::fs::write(&file, format!("{lines}{too_large}\n")).unwrap();
    let parsed = args(&["--sqs-queue-url", file.to_str().unwrap()]);
    let report = run_embedded(parsed.builder(), &parsed.source().unwrap()).await.unwrap();
    assert_eq!(report.count(Verdict::Succeeded), 3);
    assert_eq!(report.count(Verdict::Failed), 1);
    assert_eq!(report.count(Verdict::Ignored), 1);
    std::fs::remove_dir_all(dir).unwrap();

    let missing = args(&["--sqs-queue-url", "/no/such/file.jsonl"]);
    assert!(matches!(
        run_embedded(missing.builder(), &missing.source().unwrap()).await,
        Err(CliError::Read { .. })
    ));
}

#[tokio::test]
async fn an_unknown_handler_name_stops_the_daemon_before_it_starts() {
    let parsed = args(&["--testing", "--handler", "nope"]);
    let error = run_embedded(parsed.builder(), &parsed.source().unwrap()).await.unwrap_err();
    assert!(matches!(error, CliError::Handlers(HandlerSetError::UnknownHandler(name)) if name == "nope"));
}

#[test]
fn the_seeds_consumer_options_reach_the_daemon() {
    use pubsub_core::backoff::BackoffPolicy;
    let parsed = args(&[
        "--testing",
        "--wait-seconds",
        "3",
        "--receive-limit",
        "4",
        "--backoff-policy",
        "ExponentialBackoffBaseJitterPolicy",
        "--max-attempts",
        "7",
        "--drain-timeout",
        "2.5",
        "--handler",
        "handle_simple,handle_slow",
    ]);
    let config = parsed.builder().daemon_config().clone();
    assert_eq!(config.wait_time, Duration::from_secs(3));
    assert_eq!(config.receive_limit, 4);
    assert_eq!(config.backoff, BackoffPolicy::exponential_base_jitter());
    assert_eq!(config.max_attempts, Some(7));
    assert_eq!(config.drain_timeout, Duration::from_millis(2500));
    assert_eq!(parsed.handlers, ["handle_simple", "handle_slow"]);
    // The fixed policy takes its delay from --retry-delay-seconds, as the seed's
    // message_retry_visibility_timeout_seconds.
    let fixed = args(&["--testing", "--retry-delay-seconds", "9"]).builder().daemon_config().clone();
    assert_eq!(fixed.backoff, BackoffPolicy::Fixed(Duration::from_secs(9)));
    for bad in [
        ["--receive-limit", "0"],
        ["--receive-limit", "11"],
        ["--wait-seconds", "21"],
        ["--backoff-policy", "Linear"],
    ] {
        assert!(DaemonArgs::try_parse_from(["daemon", "--testing", bad[0], bad[1]]).is_err(), "{bad:?}");
    }
    // A URL that is not a queue's says which variable may hold it.
    let error =
        args(&["--name", "order-events", "--sqs-queue-url", "https://sqs.example.com"]).source().unwrap_err();
    assert!(error.to_string().contains("ORDER_EVENTS__SQS_CONSUMER__SQS_QUEUE_URL"), "{error}");
}
