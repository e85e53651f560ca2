//! The runner, through the built `simple_daemon` example (its `main` is
//! `pubsub_aws::Runner::new("example").run()`): configured from the environment as a
//! microcosm daemon is, it consumes a real queue (moto) until SIGTERM and exits 0; flags win
//! over variables; a bad value is an error naming its variable, exit 2, before any message;
//! `--help` shows each variable; `--health-addr` serves the probes while it runs; a daemon
//! whose receives keep failing stops and exits 1.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const SIMPLE: &str = "application/vnd.globality.pubsub.simple";

/// The daemon, with no `EXAMPLE__*`, `BILLING__*` or `OTEL_*` variable of the test's own
/// environment.
fn daemon() -> Command {
    let mut command = Command::new(support::simple_daemon());
    for (name, _) in std::env::vars() {
        if ["EXAMPLE__", "BILLING__", "OTEL_"].iter().any(|prefix| name.starts_with(prefix)) {
            command.env_remove(name);
        }
    }
    command
}

/// Runs `command` with `stdin`, to its end.
fn run(mut command: Command, stdin: &str) -> Output {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn line(message: &str) -> String {
    format!("{{\"mediaType\": \"{SIMPLE}\", \"message\": \"{message}\", \"timestamp\": 1.0}}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_from_the_environment_it_consumes_its_queue_until_sigterm() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let sqs = aws_sdk_sqs::Client::new(&support::sdk_config().await);
    let queue = sqs.create_queue().queue_name(support::unique_name("runner")).send().await.unwrap();
    let queue = queue.queue_url.unwrap();
    for n in 0..5 {
        sqs.send_message().queue_url(&queue).message_body(line(&format!("m{n}"))).send().await.unwrap();
    }
    let health = support::free_loopback_addr();
    let mut command = daemon();
    command
        .env("EXAMPLE__DAEMON__HEALTH_ADDR", health.to_string())
        .env("EXAMPLE__SQS_CONSUMER__SQS_QUEUE_URL", &queue)
        .env("EXAMPLE__SQS_CONSUMER__WAIT_SECONDS", "1")
        .env("EXAMPLE__SQS_CONSUMER__LIMIT", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    // The log is read to its end (so the daemon never blocks on a full pipe); the test goes on
    // once five messages are handled.
    let stderr = child.stderr.take().unwrap();
    let (handled, all_handled) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut lines: Vec<String> = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            lines.push(line);
            if lines.iter().filter(|line| line.contains("simple message")).count() == 5 {
                let _ = handled.send(());
            }
        }
        lines
    });
    let waited =
        tokio::task::spawn_blocking(move || all_handled.recv_timeout(Duration::from_secs(60))).await.unwrap();
    if waited.is_err() {
        let _ = child.kill();
        panic!("5 messages not handled in 60 s: {:#?}", log.join().unwrap());
    }
    // Deletes go out in batches: the queue is empty soon after.
    let mut left = u64::MAX;
    for _ in 0..50 {
        left = support::left_in(&sqs, &queue).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "every handled message deleted");
    // The probes: live and ready, with the counts.
    let (status, body) = support::http_get(health, "/health/ready").await.expect("the probes are served");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["daemon"].as_str(), body["results"]["SUCCEEDED"].as_u64()),
        (Some("example"), Some(5)),
        "{body}"
    );
    assert_eq!(support::http_get(health, "/health/live").await.map(|(status, _)| status), Some(200));

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    let log = log.join().unwrap();
    assert!(status.success(), "exit 0 on SIGTERM: {status}; log: {log:#?}");
    assert!(support::http_get(health, "/health/live").await.is_none(), "the probes stop with the daemon");
    let report = log.iter().find(|line| line.starts_with(SIMPLE));
    let counts: Vec<&str> =
        report.expect("the report has a row for the media type").split_whitespace().collect();
    assert_eq!(counts[1], "5", "5 SUCCEEDED: {log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_does_not_exist_is_a_configuration_error() {
    let Some(endpoint) = support::require_emulator() else { return };
    let missing = format!("{endpoint}/123456789012/{}", support::unique_name("missing"));
    let output = tokio::task::spawn_blocking(move || {
        let mut command = daemon();
        command.args(["--sqs-queue-url", &missing]);
        run(command, "")
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", support::text(&output.stderr));
    assert!(support::text(&output.stderr).contains("queue"), "{}", support::text(&output.stderr));
}

#[test]
fn flags_win_over_variables() {
    let mut command = daemon();
    command
        .env("EXAMPLE__SQS_CONSUMER__LIMIT", "not a number")
        .env("EXAMPLE__SQS_CONSUMER__SQS_QUEUE_URL", "https://")
        .args(["--receive-limit", "5", "--sqs-queue-url", "STDIN"]);
    let output = run(command, &line("hi"));
    let stderr = support::text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("simple message"), "{stderr}");
}

#[test]
fn a_bad_value_is_an_error_naming_its_variable() {
    for (variable, value, says) in [
        ("EXAMPLE__SQS_CONSUMER__LIMIT", "11", "1..=10"),
        ("EXAMPLE__SQS_CONSUMER__WAIT_SECONDS", "soon", "soon"),
        (
            "EXAMPLE__SQS_CONSUMER__BACKOFF_POLICY",
            "LinearBackoffPolicy",
            "ExponentialBackoffBaseJitterPolicy",
        ),
        ("EXAMPLE__SNS_TOPIC_ARNS__MAPPINGS", "[1]", "JSON object"),
        ("EXAMPLE__DAEMON__HEALTH_ADDR", "localhost", "localhost"),
        ("EXAMPLE__SQS_CONSUMER__SQS_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com", "not a queue URL"),
    ] {
        let mut command = daemon();
        command.env(variable, value).arg("--stdin");
        let output = run(command, &line("never handled"));
        let stderr = support::text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{variable}={value}: {stderr}");
        assert!(stderr.contains(variable) && stderr.contains(says), "{variable}={value}: {stderr}");
        assert!(!stderr.contains("simple message"), "nothing handled: {stderr}");
    }
    // `--name` names the variables.
    let mut command = daemon();
    command.env("BILLING__SQS_CONSUMER__LIMIT", "0").args(["--name", "billing", "--stdin"]);
    let output = run(command, "");
    assert_eq!(output.status.code(), Some(2));
    assert!(support::text(&output.stderr).contains("BILLING__SQS_CONSUMER__LIMIT"));
}

#[test]
fn help_shows_each_variable() {
    let mut command = daemon();
    command.arg("--help");
    let output = run(command, "");
    let help = support::text(&output.stdout);
    assert!(output.status.success());
    for variable in [
        "EXAMPLE__SQS_CONSUMER__SQS_QUEUE_URL",
        "EXAMPLE__SQS_CONSUMER__WAIT_SECONDS",
        "EXAMPLE__SQS_CONSUMER__LIMIT",
        "EXAMPLE__SQS_CONSUMER__ENDPOINT_URL",
        "EXAMPLE__SQS_CONSUMER__REGION_NAME",
        "EXAMPLE__SQS_CONSUMER__PROFILE_NAME",
        "EXAMPLE__SQS_CONSUMER__MESSAGE_RETRY_VISIBILITY_TIMEOUT_SECONDS",
        "EXAMPLE__SQS_CONSUMER__BACKOFF_POLICY",
        "EXAMPLE__SQS_MESSAGE_DISPATCHER__MESSAGE_MAX_PROCESSING_ATTEMPTS",
        "EXAMPLE__SNS_TOPIC_ARNS__DEFAULT",
        "EXAMPLE__SNS_TOPIC_ARNS__MAPPINGS",
        "EXAMPLE__DAEMON__CONCURRENCY",
        "EXAMPLE__DAEMON__HEALTH_ADDR",
    ] {
        assert!(help.contains(variable), "{variable} in --help:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receives_failing_past_the_limit_stop_the_daemon_exit_1() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let sqs = aws_sdk_sqs::Client::new(&support::sdk_config().await);
    let queue = sqs.create_queue().queue_name(support::unique_name("runner-gone")).send().await.unwrap();
    let queue = queue.queue_url.unwrap();
    let health = support::free_loopback_addr();
    let mut command = daemon();
    command
        .args(["--sqs-queue-url", &queue, "--wait-seconds", "1", "--health-addr", &health.to_string()])
        .args(["--readiness-failure-threshold-seconds", "0.5", "--receive-failure-limit-seconds", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    let mut ready = None;
    for _ in 0..100 {
        ready = support::http_get(health, "/health/ready").await;
        if ready.as_ref().is_some_and(|(status, _)| *status == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready.map(|(status, _)| status), Some(200), "ready after a receive");
    // The queue goes away under the running daemon: every receive fails from now on.
    sqs.delete_queue().queue_url(&queue).send().await.unwrap();
    let mut unready = None;
    for _ in 0..100 {
        unready = support::http_get(health, "/health/ready").await;
        if unready.as_ref().is_some_and(|(status, _)| *status == 503) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = unready.expect("still served");
    assert_eq!(status, 503, "not ready once receives have failed past the threshold: {body}");
    assert!(body["receive_failures"]["last_error"].is_string(), "{body}");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stderr = support::text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "the daemon failed: {stderr}");
    assert!(stderr.contains("receives have failed"), "{stderr}");
}
