//! Large payloads between us and AWS's own extended client libraries for Python
//! (`amazon-sns-extended-client`, `amazon-sqs-extended-client`, pinned in
//! scripts/requirements-interop.txt and run from scripts/interop/), through SNS, SQS and S3 on
//! moto:
//!
//! - Theirs to us: the SNS extended client publishes a 1 MiB message to a topic (raw and
//!   enveloped delivery), the SQS extended client sends one straight to a queue; each offloads
//!   the body to S3 and sends its pointer. Our daemon, with an `S3ObjectStore`, handles each
//!   message whole.
//! - Us to theirs: our producer, offloading to S3, publishes through a topic with raw delivery
//!   and straight to a queue; the SQS extended client reads the full body (it recognises our
//!   pointer by the `ExtendedPayloadSize` attribute, as it does its own) and, asked to, deletes
//!   the object with the message.
//!
//! Needs the emulator (`AWS_ENDPOINT_URL`) and the Python set (`PUBSUB_INTEROP_PYTHON`, which
//! scripts/interop.sh exports, else `.venv-interop/` at the repository root): without either the
//! tests skip, saying so, except under CI, where they fail. `./scripts/test.sh` provides both.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use pubsub_aws::provision::{Provisioner, QueueSpec, SubscriptionSpec};
use pubsub_aws::{AwsPublisher, S3ObjectStore, SqsSubscriber};
use pubsub_core::payload::LargePayloads;
use pubsub_core::{handler, DaemonBuilder, Producer, PubSubMessage, TopicMap, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use validator::Validate;

const MEDIA_TYPE: &str = "application/vnd.acme.pubsub.extended-document";
const MIB: usize = 1024 * 1024;

/// What scripts/interop/extended_publish.py sends: our wire format, padded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.extended-document"]
struct ExtendedDocument {
    uri: String,
    padding: String,
}

/// The documents our daemon handled.
static HANDLED: Mutex<Vec<ExtendedDocument>> = Mutex::new(Vec::new());

#[handler]
async fn keep_extended_document(document: ExtendedDocument) {
    HANDLED.lock().unwrap().push(document);
}

/// The handled documents whose URI starts with `prefix` (each test its own), taken.
fn handled(prefix: &str) -> Vec<ExtendedDocument> {
    let mut all = HANDLED.lock().unwrap();
    let (mine, others): (Vec<_>, Vec<_>) =
        std::mem::take(&mut *all).into_iter().partition(|d| d.uri.starts_with(prefix));
    *all = others;
    mine
}

struct Env {
    config: aws_config::SdkConfig,
    provisioner: Provisioner,
    store: S3ObjectStore,
    bucket: String,
    python: PathBuf,
}

async fn env() -> Option<Env> {
    support::require_emulator()?;
    let python = support::interop_python(
        PEER_IMPORTS,
        "AWS's extended clients (amazon-sns-extended-client, amazon-sqs-extended-client)",
    )?;
    let config = support::sdk_config().await;
    let store = S3ObjectStore::new(&config);
    let bucket = support::unique_name("extended").to_ascii_lowercase().replace('_', "-");
    store.client().create_bucket().bucket(&bucket).send().await.unwrap();
    Some(Env { provisioner: Provisioner::new(&config), config, store, bucket, python })
}

impl Env {
    async fn queue(&self) -> String {
        self.provisioner.queue(&support::unique_name("extended-queue"), &QueueSpec::default()).await.unwrap()
    }

    /// A topic and a queue subscribed to it.
    async fn wire(&self, raw_delivery: bool) -> (String, String) {
        let topic = self.provisioner.topic(&support::unique_name("extended-topic")).await.unwrap();
        let queue = self.queue().await;
        self.provisioner
            .subscribe(&topic, &queue, &SubscriptionSpec { raw_delivery, filter: None })
            .await
            .unwrap();
        (topic, queue)
    }

    /// Runs a script of scripts/interop/ to its end; what it printed, parsed.
    fn script(&self, name: &str, args: &[&str]) -> Value {
        let script = support::repository_root().join("scripts/interop").join(name);
        let output = Command::new(&self.python)
            .arg(&script)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("the interop script runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name} failed ({}): {stderr}", output.status);
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|error| panic!("{name} printed no JSON ({error}); stderr: {stderr}"))
    }

    async fn object_count(&self) -> usize {
        let listed = self.store.client().list_objects_v2().bucket(&self.bucket).send().await.unwrap();
        listed.contents().len()
    }
}

/// What the scripts import: a venv without them is no venv for these tests.
const PEER_IMPORTS: &str = "import boto3, sns_extended_client, sqs_extended_client";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_their_extended_clients_offload_our_daemon_handles_whole() {
    let Some(env) = env().await else { return };
    let size = MIB.to_string();
    for route in ["sns-raw", "sns-enveloped", "sqs"] {
        let (flag, destination, queue) = match route {
            "sns-raw" | "sns-enveloped" => {
                let (topic, queue) = env.wire(route == "sns-raw").await;
                ("--topic-arn", topic, queue)
            }
            _ => {
                let queue = env.queue().await;
                ("--queue-url", queue.clone(), queue)
            }
        };
        let uri = format!("theirs-{route}:/documents/1");
        let objects = env.object_count().await;
        let published = env.script(
            "extended_publish.py",
            &[
                "--bucket",
                &env.bucket,
                flag,
                &destination,
                "--media-type",
                MEDIA_TYPE,
                "--uri",
                &uri,
                "--size",
                &size,
            ],
        );
        assert_eq!(published["body_size"], MIB, "{route}: {published}");
        assert_eq!(env.object_count().await, objects + 1, "{route}: their client offloaded the body");

        let report = DaemonBuilder::new("extended-interop")
            .handler::<keep_extended_document>()
            .object_store(S3ObjectStore::new(&env.config))
            .wait_time(Duration::from_secs(1))
            .build(SqsSubscriber::new(&env.config, &queue).await.unwrap())
            .unwrap()
            .run_until_idle()
            .await;
        assert_eq!(report.count(Verdict::Succeeded), 1, "{route}: {report}");
        let documents = handled(&format!("theirs-{route}:"));
        assert_eq!(documents.len(), 1, "{route}");
        assert_eq!(documents[0].uri, uri);
        assert!(documents[0].padding.len() > MIB - 200, "{route}: the whole body");
        assert!(documents[0].padding.bytes().all(|b| b == b'x'), "{route}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_we_offload_their_sqs_extended_client_reads_whole() {
    let Some(env) = env().await else { return };
    for route in ["sns-raw", "sqs"] {
        let (destination, queue) = match route {
            "sns-raw" => env.wire(true).await,
            _ => {
                let queue = env.queue().await;
                (queue.clone(), queue)
            }
        };
        let producer =
            Producer::new(AwsPublisher::new(&env.config), TopicMap::new().default_topic(&destination))
                .large_payloads(LargePayloads::new(S3ObjectStore::new(&env.config), &env.bucket));
        let sent = ExtendedDocument { uri: format!("ours-{route}:/documents/1"), padding: "y".repeat(MIB) };
        producer.produce(&sent).await.unwrap();
        let objects = env.object_count().await;
        assert!(objects >= 1, "{route}: offloaded");

        let read = env.script(
            "extended_consume.py",
            &["--queue-url", &queue, "--count", "1", "--timeout", "20", "--delete-payloads"],
        );
        let messages = read["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "{route}: {}", read.to_string().chars().take(500).collect::<String>());
        let body: Value = serde_json::from_str(messages[0]["body"].as_str().unwrap())
            .unwrap_or_else(|error| panic!("{route}: not our message, whole ({error})"));
        assert_eq!(body["mediaType"], MEDIA_TYPE, "{route}");
        assert_eq!(body["uri"].as_str(), Some(sent.uri.as_str()), "{route}");
        assert!(body["padding"].as_str() == Some(sent.padding.as_str()), "{route}: the whole body");
        let attributes = &messages[0]["attributes"];
        assert_eq!(attributes["media_type"], MEDIA_TYPE, "{route}: {attributes}");
        assert!(attributes.get("ExtendedPayloadSize").is_none(), "their client takes its own attribute away");
        assert_eq!(env.object_count().await, objects - 1, "{route}: their client deleted our object");
    }
}
