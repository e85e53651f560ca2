//! What the tests of pubsub-lambda share: the recorded events, and the SNS/SQS emulator (moto,
//! started by `./scripts/test.sh` through `scripts/moto.sh`) as pubsub-aws's tests use it: its
//! address from `AWS_ENDPOINT_URL`, which must be a loopback one; without it a test skips,
//! except under CI, where it fails.

#![allow(dead_code)]

pub mod runtime_api;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The region every emulator test uses.
pub const REGION: &str = "us-east-1";

/// moto's account.
pub const ACCOUNT: &str = "123456789012";

/// The recorded event `name` from `tests/fixtures/`.
pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The emulator's endpoint, from `AWS_ENDPOINT_URL` (`None` when unset or empty).
///
/// # Panics
///
/// When it is not an `http://` URL on `127.0.0.1`, `localhost` or `[::1]`.
pub fn endpoint() -> Option<String> {
    let value = std::env::var("AWS_ENDPOINT_URL").ok()?;
    let value = value.trim().trim_end_matches('/').to_owned();
    if value.is_empty() {
        return None;
    }
    let authority = value.strip_prefix("http://").unwrap_or_default().split('/').next().unwrap_or_default();
    let host = authority.rsplit_once(':').map_or(authority, |(host, _)| host);
    let loopback = !authority.contains('@') && matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    assert!(
        loopback,
        "AWS_ENDPOINT_URL={value:?} is not a loopback http:// address: these tests only talk to this machine"
    );
    Some(value)
}

/// Whether this run is under CI (`CI` set to anything but empty, `0` or `false`).
pub fn under_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|value| !matches!(value.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// The emulator's endpoint; `None` means "skip": the caller returns. Under CI a missing
/// emulator fails the test.
pub fn require_emulator() -> Option<String> {
    if let Some(endpoint) = endpoint() {
        return Some(endpoint);
    }
    assert!(
        !under_ci(),
        "AWS_ENDPOINT_URL is not set and CI is: emulator tests fail, not skip, under CI: run ./scripts/test.sh"
    );
    let current = std::thread::current();
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {}: no SNS/SQS emulator (AWS_ENDPOINT_URL is not set); run ./scripts/test.sh, or ./scripts/moto.sh run cargo test -p pubsub-lambda",
        current.name().unwrap_or("this test")
    );
    None
}

/// An SDK configuration for the emulator: region, dummy credentials, its endpoint; nothing
/// else is looked up.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let endpoint = endpoint().expect("call require_emulator() first");
    let credentials =
        aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "pubsub-lambda-tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(credentials)
        .endpoint_url(endpoint)
        .load()
        .await
}

/// An SQS client to a loopback port where nothing listens, with no retries: every request
/// fails at once.
pub fn unreachable_sqs() -> aws_sdk_sqs::Client {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let credentials =
        aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "pubsub-lambda-tests");
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new(REGION))
        .credentials_provider(credentials)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sqs::Client::from_conf(config)
}

/// A queue or topic name no other test or run uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{}-{nanos:08x}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}
