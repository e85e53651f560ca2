//! Support for the integration tests that talk to an SNS/SQS emulator (moto, started by
//! `./scripts/test.sh` through `scripts/moto.sh`). Include it with `mod support;`.
//!
//! The emulator's address comes from `AWS_ENDPOINT_URL`, which must be a loopback address:
//! these tests never send a request anywhere else. A test starts with
//!
//! ```ignore
//! let Some(_endpoint) = support::require_emulator() else { return };
//! let config = support::sdk_config().await;
//! let sqs = aws_sdk_sqs::Client::new(&config);
//! ```
//!
//! and names what it creates with [`unique_name`], so that tests running at once, or one run
//! after another against the same emulator, never share a queue or a topic.

#[path = "../../../tests/support/built_example.rs"]
mod built_example;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// The region every emulator test uses.
#[allow(dead_code)]
pub const REGION: &str = "us-east-1";

/// The emulator's endpoint, from `AWS_ENDPOINT_URL` (`None` when unset or empty).
///
/// # Panics
///
/// When the endpoint is not an `http://` or `https://` URL whose host is `127.0.0.1`,
/// `localhost` or `[::1]`: a test must never reach anything but this machine.
#[allow(dead_code)]
pub fn endpoint() -> Option<String> {
    let value = std::env::var("AWS_ENDPOINT_URL").ok()?;
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if is_loopback_url(value) {
        Some(value.trim_end_matches('/').to_owned())
    } else {
        panic!(
            "AWS_ENDPOINT_URL={value:?} is not a loopback address: the emulator tests only talk to \
             http://127.0.0.1:PORT, http://localhost:PORT or http://[::1]:PORT \
             (./scripts/test.sh starts one)"
        )
    }
}

/// Whether `url` is an `http://` or `https://` URL whose host is `127.0.0.1`, `localhost` or
/// `[::1]` (with no user information, and a numeric port if any).
#[allow(dead_code)]
pub fn is_loopback_url(url: &str) -> bool {
    loopback_host(url).is_some()
}

/// The host of `url` when it is a loopback one (see [`is_loopback_url`]).
fn loopback_host(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials in the URL would hide the real host behind an `@`: refuse them.
    if authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        (inside, after)
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, port),
            None => (authority, ""),
        }
    };
    let port = port.strip_prefix(':').unwrap_or(port);
    if !port.is_empty() && port.parse::<u16>().is_err() {
        return None;
    }
    let loopback = host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost") || host == "::1";
    loopback.then_some(host)
}

/// Whether this run is under CI: `CI` set to anything but empty, `0` or `false` (the same rule
/// as `scripts/moto.sh`).
#[allow(dead_code)]
pub fn under_ci() -> bool {
    match std::env::var("CI") {
        Ok(value) => !matches!(value.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"),
        Err(_) => false,
    }
}

/// The emulator's endpoint, for a test that needs it; `None` means "skip this test": the
/// caller returns at once.
///
/// Without an emulator, a test is skipped, saying so on stderr, except under CI, where it
/// fails: there, the emulator tests must run.
///
/// # Panics
///
/// Under CI without `AWS_ENDPOINT_URL`, and wherever [`endpoint`] panics.
#[allow(dead_code)]
pub fn require_emulator() -> Option<String> {
    if let Some(endpoint) = endpoint() {
        return Some(endpoint);
    }
    if under_ci() {
        panic!(
            "AWS_ENDPOINT_URL is not set and CI is: emulator tests fail, not skip, under CI: run \
             ./scripts/test.sh (it starts the SNS/SQS emulator and exports AWS_ENDPOINT_URL)"
        );
    }
    let current = std::thread::current();
    let test = current.name().unwrap_or("this test");
    // Straight to the process's stderr, not through `eprintln!`, which the test harness
    // captures and shows only for failed tests: a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: no SNS/SQS emulator (AWS_ENDPOINT_URL is not set); run ./scripts/test.sh, \
         or ./scripts/moto.sh run cargo test -p pubsub-aws"
    );
    None
}

/// The longest name [`unique_name`] makes: 75, so that a FIFO queue's or topic's `.fifo`
/// suffix still fits SQS's limit of 80 characters.
#[allow(dead_code)]
pub const MAX_UNIQUE_NAME_LEN: usize = 75;

/// A name no other test, nor an earlier run against the same emulator, uses:
/// `{prefix}-{pid}-{counter}-{8 random hex digits}`.
///
/// It is valid as an SQS queue name and as an SNS topic name: ASCII letters, digits, `-` and
/// `_` only (any other character of `prefix` becomes `-`), at most [`MAX_UNIQUE_NAME_LEN`]
/// characters (a long prefix is cut). Append `.fifo` for a FIFO queue or topic.
#[allow(dead_code)]
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("-{}-{counter}-{:08x}", std::process::id(), random_u32());
    let room = MAX_UNIQUE_NAME_LEN.saturating_sub(suffix.len());
    let prefix: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
        .take(room)
        .collect();
    let prefix = if prefix.is_empty() { "t".to_owned() } else { prefix };
    format!("{prefix}{suffix}")
}

/// 32 random bits, from the standard library's randomly seeded hasher and the clock.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    let hash = hasher.finish();
    (hash ^ (hash >> 32)) as u32
}

/// An AWS SDK configuration for the emulator: the default loader with region `us-east-1`,
/// [`endpoint`] as the endpoint of every service, and fixed dummy credentials.
///
/// Region and credentials are given explicitly so that the SDK's default chains never look
/// further: no instance metadata (169.254.169.254), no container credentials, no real
/// account.
///
/// # Panics
///
/// When there is no emulator endpoint: call [`require_emulator`] first.
#[allow(dead_code)]
pub async fn sdk_config() -> aws_config::SdkConfig {
    let endpoint = endpoint()
        .expect("no AWS_ENDPOINT_URL: call support::require_emulator() before support::sdk_config()");
    let credentials =
        aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "pubsub-aws-tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .load()
        .await
}

/// Runs the `pubsub` binary with `stdin`, to its end.
#[allow(dead_code)]
pub fn pubsub(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pubsub"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the pubsub binary runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// The `simple_daemon` example (the root package's), built once per test binary with the
/// features that make it read SQS and export over OTLP:
/// `cargo build -p pubsub-suite --example simple_daemon --features pubsub-suite/aws,pubsub-suite/otel`.
#[allow(dead_code)]
pub fn simple_daemon() -> &'static std::path::Path {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        built_example::build_example(&workspace, "simple_daemon", "pubsub-suite/aws,pubsub-suite/otel")
    })
}

/// The messages still in the queue, visible or not.
#[allow(dead_code)]
pub async fn left_in(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    [A::ApproximateNumberOfMessages, A::ApproximateNumberOfMessagesNotVisible]
        .iter()
        .map(|name| attributes.get(name).map_or(0, |n| n.parse::<u64>().unwrap()))
        .sum()
}

/// `GET path` of the HTTP server at `addr` (the health probes): its status and its body as
/// JSON; `None` when nothing listens.
#[allow(dead_code)]
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, serde_json::Value)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Some((status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null)))
}

/// A loopback address with a port free a moment ago.
#[allow(dead_code)]
pub fn free_loopback_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The span exporter of this test binary: an in-memory one, behind the global tracer
/// provider it installs the first time it is called (before any daemon or producer is made).
#[allow(dead_code)]
pub fn span_exporter() -> &'static opentelemetry_sdk::trace::InMemorySpanExporter {
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    static EXPORTER: std::sync::OnceLock<InMemorySpanExporter> = std::sync::OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        opentelemetry::global::set_tracer_provider(
            SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build(),
        );
        exporter
    })
}

/// Output bytes as text.
#[allow(dead_code)]
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The repository's root (the workspace's directory).
#[allow(dead_code)]
pub fn repository_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The interpreter of the Python interop peers: `PUBSUB_INTEROP_PYTHON`, else
/// `.venv-interop/`'s, if it runs `imports` (what the peers import; `packages` names them in the
/// message). `None` means "skip": neither is there (under CI that fails instead).
///
/// # Panics
///
/// When `PUBSUB_INTEROP_PYTHON` is set but cannot import them, and under CI when there is no
/// interpreter that can.
#[allow(dead_code)]
pub fn interop_python(imports: &str, packages: &str) -> Option<std::path::PathBuf> {
    let explicit = std::env::var_os("PUBSUB_INTEROP_PYTHON").filter(|value| !value.is_empty());
    let python = match &explicit {
        Some(path) => std::path::PathBuf::from(path),
        None => repository_root().join(".venv-interop/bin/python"),
    };
    let ready = Command::new(&python)
        .args(["-c", imports])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if ready {
        return Some(python);
    }
    let why = format!(
        "{} cannot import {packages}; ./scripts/interop.sh install puts them in .venv-interop/",
        python.display()
    );
    if explicit.is_some() {
        panic!("PUBSUB_INTEROP_PYTHON is set, but {why}");
    }
    if under_ci() {
        panic!("CI is set: the interop tests fail, not skip, under CI: {why}");
    }
    let current = std::thread::current();
    // Straight to the process's stderr: the harness shows captured output only on failure.
    let _ = writeln!(std::io::stderr(), "skipped: {}: {why}", current.name().unwrap_or("this test"));
    None
}
