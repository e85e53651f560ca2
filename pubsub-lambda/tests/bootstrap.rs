//! The built bootstrap (`examples/simple_lambda.rs` of the root package, built here with
//! `cargo build -p pubsub-suite --example simple_lambda --features pubsub-suite/lambda`) against
//! a Lambda Runtime API of our own on 127.0.0.1: SQS batches mixing good, invalid, unknown and
//! malformed messages answered with their partial batch response; SNS events answered, or
//! failed; a start outside Lambda refused; and the figures (binary size, cold start).
//!
//! Every process gets a region, dummy credentials, `AWS_EC2_METADATA_DISABLED=true` and an
//! endpoint on this machine (the emulator's when it runs, else a port where nothing listens),
//! so that nothing reaches AWS. `PUBSUB_LAMBDA_BOOTSTRAP=path` measures another build (a
//! release one) in `figures`.

mod support;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::runtime_api::RuntimeApi;

#[path = "../../tests/support/built_example.rs"]
mod built_example;

/// The `simple_lambda` example, built once for this test binary.
fn bootstrap() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        built_example::build_example(&workspace, "simple_lambda", "pubsub-suite/lambda")
    })
}

/// The bootstrap to run: `PUBSUB_LAMBDA_BOOTSTRAP` when set, else the one built here.
fn program() -> PathBuf {
    match std::env::var_os("PUBSUB_LAMBDA_BOOTSTRAP") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => bootstrap().clone(),
    }
}

/// The bootstrap as Lambda starts it, polling `api`; standard error is piped.
fn start(program: &PathBuf, api: &RuntimeApi) -> Child {
    let endpoint = support::endpoint().unwrap_or_else(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        format!("http://127.0.0.1:{port}")
    });
    let mut command = Command::new(program);
    for (name, _) in std::env::vars().filter(|(name, _)| {
        name.starts_with("AWS_")
            || name.starts_with("EXAMPLE__")
            || name.starts_with("OTEL_")
            || name == "RUST_LOG"
    }) {
        command.env_remove(name);
    }
    command
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "simple-lambda")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/simple-lambda")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/12/01/[$LATEST]0123456789abcdef")
        .env("AWS_REGION", support::REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bootstrap starts")
}

/// Stops `child` (which never exits by itself: it polls for the next invocation) and returns
/// its standard error.
fn stop(mut child: Child) -> String {
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    stderr
}

/// The JSON log lines of `stderr`.
fn log_lines(stderr: &str) -> Vec<Value> {
    stderr.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()).collect()
}

fn event(name: &str) -> String {
    support::fixture(name).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_answers_sqs_batches_and_sns_events_through_the_runtime_api() {
    let program = program();
    let api = RuntimeApi::start().await;
    let child = start(&program, &api);
    let wait = Duration::from_secs(60);

    api.invoke("sqs-1", &event("sqs-simple-batch.json"), Duration::from_secs(30));
    let answer = api.answer("sqs-1", wait).await;
    let (kind, body) = (answer.kind.clone(), answer.body.clone());
    if kind != "response" {
        panic!("{answer:?}\n{}", stop(child));
    }
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "invalid"}, {"itemIdentifier": "malformed"}]})
    );

    api.invoke("sns-1", &event("sns-good.json"), Duration::from_secs(30));
    let answer = api.answer("sns-1", wait).await;
    assert_eq!((answer.kind.as_str(), answer.body.as_str()), ("response", "null"), "{answer:?}");

    api.invoke("sns-2", &event("sns-mixed.json"), Duration::from_secs(30));
    let answer = api.answer("sns-2", wait).await;
    assert_eq!(answer.kind, "error", "{answer:?}");
    let error: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(error["errorType"], "SnsRecordsFailed", "{error}");
    assert!(
        error["errorMessage"].as_str().unwrap().contains("1 of 3 SNS records failed (sns-invalid)"),
        "{error}"
    );

    api.invoke("other-1", r#"{"Records": [{"eventSource": "aws:kinesis"}]}"#, Duration::from_secs(30));
    let answer = api.answer("other-1", wait).await;
    assert_eq!(answer.kind, "error", "{answer:?}");
    assert!(answer.body.contains("UnsupportedEvent"), "{answer:?}");

    // The function is still there, polling for more.
    let until = Instant::now() + Duration::from_secs(10);
    while api.polls().len() < 5 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(api.polls().len(), 5, "four invocations, then a poll for the fifth");
    let stderr = stop(child);
    let lines = log_lines(&stderr);
    let handled: Vec<(String, String)> = lines
        .iter()
        .filter(|line| line["message"] == "message handled")
        .map(|line| {
            (
                line["message_id"].as_str().unwrap_or_default().to_owned(),
                line["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("good-raw", "SUCCEEDED"),
        ("good-sns", "SUCCEEDED"),
        ("invalid", "FAILED"),
        ("unknown", "IGNORED"),
        ("malformed", "FAILED"),
        ("sns-invalid", "FAILED"),
    ] {
        assert!(
            handled.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "no line for {expected:?} in\n{stderr}"
        );
    }
    // Each record's line is in the invocation's span, which carries the Lambda request id.
    let good = lines.iter().find(|line| line["message_id"] == "good-raw").unwrap();
    assert_eq!(good["span"]["requestId"], "sqs-1", "{good}");
    // The handler's own line (its `message` field is the message's text).
    let simple: Vec<&Value> = lines.iter().filter(|line| line["target"] == "simple_lambda").collect();
    assert!(simple.iter().any(|line| line["request_id"] == "Some(\"req-1\")"), "{stderr}");
    let batch = lines
        .iter()
        .find(|line| line["message"] == "batch handled" && line["event"] == "SQS")
        .expect(&stderr);
    assert_eq!((batch["records"].as_u64(), batch["failures"].as_u64()), (Some(5), Some(2)), "{batch}");
}

#[test]
fn outside_lambda_the_bootstrap_says_which_variable_is_missing() {
    let output = Command::new(program())
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("AWS_REGION", support::REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AWS_LAMBDA_RUNTIME_API: not set"), "{stderr}");
}

/// Binary size and cold start (process start to the answer of its first invocation), median
/// of seven runs, printed; nothing is asserted about either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures() {
    let program = program();
    let size = std::fs::metadata(&program).unwrap().len();
    // The two good records of the batch: no visibility change, so no request to time.
    let mut good = support::fixture("sqs-simple-batch.json");
    good["Records"].as_array_mut().unwrap().truncate(2);
    let good = good.to_string();
    let mut cold = Vec::new();
    let mut first_poll = Vec::new();
    for run in 0..7 {
        let api = RuntimeApi::start().await;
        let id = format!("cold-{run}");
        api.invoke(&id, &good, Duration::from_secs(30));
        let started = Instant::now();
        let child = start(&program, &api);
        let answer = api.answer(&id, Duration::from_secs(60)).await;
        cold.push(answer.at - started);
        first_poll.push(api.polls()[0] - started);
        let stderr = stop(child);
        assert_eq!(
            (answer.kind.as_str(), answer.body.as_str()),
            ("response", r#"{"batchItemFailures":[]}"#),
            "{stderr}"
        );
    }
    cold.sort();
    first_poll.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let line = format!(
        "figures: bootstrap {} ({:.1} MiB, {} bytes); cold start to the first invocation answered (2 good SQS records): median {:.1} ms (min {:.1}, max {:.1}) over {} runs; to the first poll of the Runtime API: median {:.1} ms",
        program.display(),
        size as f64 / (1024.0 * 1024.0),
        size,
        ms(cold[cold.len() / 2]),
        ms(cold[0]),
        ms(cold[cold.len() - 1]),
        cold.len(),
        ms(first_poll[first_poll.len() / 2]),
    );
    // To the process's stderr: the harness captures eprintln! of passing tests.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{line}\n").as_bytes());
}
