//! The `simple_daemon` example built with no features: the daemon command line on the embedded
//! broker (`pubsub_core::cli::run`). `--asyncapi` prints its document alone and exits 0; `--stdin`
//! handles what it is given until drained. (Built with `aws`, pubsub-aws's tests run it.)

#[path = "support/built_example.rs"]
mod built_example;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

fn simple_daemon() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        built_example::build_example(Path::new(env!("CARGO_MANIFEST_DIR")), "simple_daemon", "")
    })
}

#[test]
fn asyncapi_prints_the_document_alone_and_exits() {
    let output = Command::new(simple_daemon()).args(["--asyncapi", "--name", "greeter"]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
    let document: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is the document alone");
    assert_eq!(document["info"]["title"], "greeter");
    assert_eq!(
        document["channels"]["queue_greeter"]["address"], "greeter",
        "no URL: the queue is the daemon's name"
    );
    let simple = &document["components"]["messages"]["application_vnd_globality_pubsub_simple"];
    assert_eq!(simple["payload"]["properties"]["timestamp"]["type"], "number");

    let yaml =
        Command::new(simple_daemon()).args(["--asyncapi", "--asyncapi-format", "yaml"]).output().unwrap();
    assert!(yaml.status.success());
    assert!(
        String::from_utf8_lossy(&yaml.stdout).starts_with("asyncapi: 3.0.0\n"),
        "{}",
        String::from_utf8_lossy(&yaml.stdout)
    );
    let unknown =
        Command::new(simple_daemon()).args(["--asyncapi", "--asyncapi-format", "xml"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2), "clap refuses an unknown format");
}

#[test]
fn without_aws_it_runs_on_the_embedded_broker() {
    let mut child = Command::new(simple_daemon())
        .arg("--stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line =
        r#"{"mediaType": "application/vnd.globality.pubsub.simple", "message": "hi", "timestamp": 1.0}"#;
    writeln!(child.stdin.take().unwrap(), "{line}").unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("simple message") && stderr.contains("SUCCEEDED"), "{stderr}");
    let queue_url = Command::new(simple_daemon())
        .args(["--sqs-queue-url", "https://sqs.us-east-1.amazonaws.com/123456789012/q"])
        .output()
        .unwrap();
    assert_eq!(queue_url.status.code(), Some(2), "a queue takes a transport");
    assert!(
        String::from_utf8_lossy(&queue_url.stderr).contains("queue URL"),
        "{}",
        String::from_utf8_lossy(&queue_url.stderr)
    );
}
