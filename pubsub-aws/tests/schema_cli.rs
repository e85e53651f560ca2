//! Contracts on the command line: the runner's `--asyncapi` (the `simple_daemon` example built
//! with `aws`) writes only the document to stdout and exits 0, and `pubsub schema check` gates a
//! breaking change between two such documents. Neither reaches AWS.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};
use support::{simple_daemon, text};

const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/example";
const SIMPLE: &str = "application_vnd_globality_pubsub_simple";

fn asyncapi(format: &str) -> Output {
    Command::new(simple_daemon())
        .args(["--asyncapi", "--asyncapi-format", format, "--sqs-queue-url", QUEUE])
        .args(["--sns-topic-arn-default", "arn:aws:sns:us-east-1:123456789012:events"])
        .output()
        .expect("simple_daemon runs")
}

fn check(baseline: &Path, current: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pubsub"))
        .args(["schema", "check", "--baseline"])
        .arg(baseline)
        .arg("--current")
        .arg(current)
        .args(extra)
        .output()
        .expect("pubsub runs")
}

/// A fresh directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pubsub-schema-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, document: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(document).unwrap()).unwrap();
    path
}

#[test]
fn the_runner_prints_its_document_alone_and_exits() {
    let output = asyncapi("json");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stderr), "", "logs stay off: the document is all there is");
    let document: Value = serde_json::from_slice(&output.stdout).expect("stdout is the JSON document alone");
    assert_eq!(document["asyncapi"], "3.0.0");
    assert_eq!(document["info"]["title"], "example");
    assert_eq!(document["channels"]["queue_example"]["address"], QUEUE);
    let receive = &document["operations"][format!("receive_{SIMPLE}")];
    assert_eq!(receive["action"], "receive", "{document:#}");
    let payload = &document["components"]["messages"][SIMPLE]["payload"];
    assert_eq!(payload["required"], json!(["mediaType", "message", "timestamp"]));

    let yaml = asyncapi("yaml");
    assert!(yaml.status.success(), "{}", text(&yaml.stderr));
    let from_yaml: Value = serde_norway::from_slice(&yaml.stdout).expect("stdout is YAML");
    assert_eq!(from_yaml, document);
}

#[test]
fn schema_check_gates_what_breaks_a_role_the_service_has() {
    let dir = scratch("check");
    let output = asyncapi("yaml");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let baseline_yaml = dir.join("asyncapi.yaml");
    std::fs::write(&baseline_yaml, &output.stdout).unwrap();
    let baseline: Value = serde_norway::from_slice(&output.stdout).unwrap();

    // The same contract, in JSON this time: nothing changed.
    let same = write(&dir, "same.json", &baseline);
    let unchanged = check(&baseline_yaml, &same, &[]);
    assert_eq!(unchanged.status.code(), Some(0), "{}{}", text(&unchanged.stdout), text(&unchanged.stderr));
    assert!(text(&unchanged.stdout).contains("0 breaking"), "{}", text(&unchanged.stdout));

    // A new required field in a message the daemon receives: its consumers (this daemon, once
    // deployed) would refuse what producers still on the baseline send.
    let mut required = baseline.clone();
    let payload = &mut required["components"]["messages"][SIMPLE]["payload"];
    payload["properties"]["priority"] = json!({"type": "integer"});
    payload["required"].as_array_mut().unwrap().push("priority".into());
    let required = write(&dir, "required.json", &required);
    let breaking = check(&baseline_yaml, &required, &[]);
    let report = text(&breaking.stdout);
    assert_eq!(breaking.status.code(), Some(1), "{report}{}", text(&breaking.stderr));
    assert!(report.contains("BREAKING") && report.contains("priority"), "{report}");
    assert!(report.contains("consumers: breaking"), "{report}");

    let as_json = check(&baseline_yaml, &required, &["--json"]);
    assert_eq!(as_json.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&as_json.stdout).expect("--json prints JSON");
    assert_eq!(report["breaking"], true, "{report:#}");

    // Loosening a rule of a message it only receives breaks only producers, a role it has not
    // for that message: reported, not gating.
    let mut loosened = baseline.clone();
    let message = &mut loosened["components"]["messages"][SIMPLE]["payload"]["properties"]["message"];
    message["maxLength"] = json!(10);
    let tight = write(&dir, "tight.json", &loosened);
    loosened["components"]["messages"][SIMPLE]["payload"]["properties"]["message"]["maxLength"] = json!(100);
    let loose = write(&dir, "loose.json", &loosened);
    let loosening = check(&tight, &loose, &[]);
    assert_eq!(loosening.status.code(), Some(0), "{}", text(&loosening.stdout));
    assert!(text(&loosening.stdout).contains("maxLength"), "{}", text(&loosening.stdout));
    // The other way it tightens: consumers on the new schema refuse what producers still send.
    assert_eq!(check(&loose, &tight, &[]).status.code(), Some(1));

    let missing = check(&dir.join("nowhere.json"), &same, &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("nowhere.json"), "{}", text(&missing.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}
