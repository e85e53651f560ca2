//! Large payloads on the AWS transport, against moto (SNS, SQS and S3; started by
//! scripts/test.sh): `S3ObjectStore` (put, get, delete, what a missing or unreadable object
//! gives, request counting); a producer offloading 1 MiB and 10 MiB messages through SNS (raw
//! and enveloped delivery) and straight to SQS, a daemon handling them whole; a missing object
//! failing its message, retried, never deleted; deleting objects after settle; the `pubsub`
//! binary's `publish --large-payload-bucket` and `read`; and the runner (the built
//! `simple_daemon`) reading an offloaded message and deleting its object when
//! `EXAMPLE__DELETE_LARGE_PAYLOADS` says so.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_aws::provision::{Provisioner, QueueSpec, SubscriptionSpec};
use pubsub_aws::{AwsPublisher, RequestCounter, S3ObjectStore, SqsSubscriber};
use pubsub_core::backoff::BackoffPolicy;
use pubsub_core::payload::{
    LargePayloads, ObjectStore, ObjectStoreError, PayloadPointer, PAYLOAD_SIZE_ATTRIBUTE,
};
use pubsub_core::{handler, DaemonBuilder, MessageContext, Producer, PubSubMessage, TopicMap, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use support::{pubsub, text};
use validator::Validate;

const MIB: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.big-document"]
struct BigDocument {
    id: String,
    text: String,
}

/// What the handler saw: the document, and the `ExtendedPayloadSize` attribute if it saw one.
static HANDLED: Mutex<Vec<(BigDocument, Option<String>)>> = Mutex::new(Vec::new());

#[handler]
async fn keep_big_document(document: BigDocument, context: &MessageContext) {
    let size = context.attribute(PAYLOAD_SIZE_ATTRIBUTE).map(str::to_owned);
    HANDLED.lock().unwrap().push((document, size));
}

/// The documents handled whose id starts with `prefix` (each test its own), taken.
fn handled(prefix: &str) -> Vec<(BigDocument, Option<String>)> {
    let mut all = HANDLED.lock().unwrap();
    let (mine, others) = std::mem::take(&mut *all).into_iter().partition(|(d, _)| d.id.starts_with(prefix));
    *all = others;
    let mut mine: Vec<(BigDocument, Option<String>)> = mine;
    mine.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    mine
}

struct Env {
    config: aws_config::SdkConfig,
    provisioner: Provisioner,
    sqs: aws_sdk_sqs::Client,
    store: S3ObjectStore,
    bucket: String,
}

async fn env(prefix: &str) -> Option<Env> {
    support::require_emulator()?;
    let config = support::sdk_config().await;
    let store = S3ObjectStore::new(&config);
    let bucket = bucket(&store, prefix).await;
    Some(Env {
        provisioner: Provisioner::new(&config),
        sqs: aws_sdk_sqs::Client::new(&config),
        config,
        store,
        bucket,
    })
}

impl Env {
    /// A producer to `destination` (a topic ARN or a queue URL) offloading to the bucket.
    fn producer(&self, destination: &str, counter: &RequestCounter) -> Producer {
        Producer::new(AwsPublisher::new(&self.config), TopicMap::new().default_topic(destination))
            .large_payloads(LargePayloads::new(
                S3ObjectStore::with_counter(&self.config, counter),
                &self.bucket,
            ))
    }

    async fn queue(&self, prefix: &str) -> String {
        self.provisioner.queue(&support::unique_name(prefix), &QueueSpec::default()).await.unwrap()
    }

    /// A topic and a queue subscribed to it.
    async fn wire(&self, raw_delivery: bool) -> (String, String) {
        let topic = self.provisioner.topic(&support::unique_name("large-topic")).await.unwrap();
        let queue = self.queue("large-queue").await;
        self.provisioner
            .subscribe(&topic, &queue, &SubscriptionSpec { raw_delivery, filter: None })
            .await
            .unwrap();
        (topic, queue)
    }

    /// A daemon of the document handler on `queue`, reading pointers from S3.
    async fn daemon(&self, queue: &str) -> DaemonBuilder {
        let _ = SqsSubscriber::new(&self.config, queue).await.unwrap();
        DaemonBuilder::new("large-payloads")
            .handler::<keep_big_document>()
            .object_store(S3ObjectStore::new(&self.config))
            .wait_time(Duration::from_secs(1))
            .backoff(BackoffPolicy::Fixed(Duration::ZERO))
    }

    async fn run_until_idle(&self, builder: DaemonBuilder, queue: &str) -> pubsub_core::daemon::DaemonReport {
        builder.build(SqsSubscriber::new(&self.config, queue).await.unwrap()).unwrap().run_until_idle().await
    }

    /// The keys in the bucket.
    async fn keys(&self) -> Vec<String> {
        let listed = self.store.client().list_objects_v2().bucket(&self.bucket).send().await.unwrap();
        listed.contents().iter().filter_map(|object| object.key().map(str::to_owned)).collect()
    }
}

/// A bucket of its own for a test, on the emulator; its name as S3 wants it (lower case).
async fn bucket(store: &S3ObjectStore, prefix: &str) -> String {
    let name = support::unique_name(prefix).to_ascii_lowercase().replace('_', "-");
    store.client().create_bucket().bucket(&name).send().await.unwrap();
    name
}

/// `size` bytes of text that are not all alike (a cut or a shuffled part shows).
fn text_of(size: usize) -> String {
    (0..size).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

#[tokio::test]
async fn the_s3_store_writes_reads_and_deletes_objects_and_counts_its_requests() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let counter = RequestCounter::new();
    let store = S3ObjectStore::with_counter(&config, &counter);
    let bucket = bucket(&store, "objects").await;

    for (key, size) in [("small", 10), ("one-mib", 1 << 20), ("ten-mib", 10 << 20)] {
        let pointer = PayloadPointer::new(&bucket, key);
        let body = text_of(size);
        store.put(&pointer, body.clone()).await.unwrap();
        let read = store.get(&pointer).await.unwrap();
        assert!(read == body, "{key}: {} bytes read back, {} written", read.len(), body.len());
    }
    // Multi-byte characters stay whole.
    let pointer = PayloadPointer::new(&bucket, "dir/naïve ключ");
    store.put(&pointer, "héllo wörld ✓".into()).await.unwrap();
    assert_eq!(store.get(&pointer).await.unwrap(), "héllo wörld ✓");

    store.delete(&pointer).await.unwrap();
    assert_eq!(store.get(&pointer).await, Err(ObjectStoreError::NotFound(pointer.clone())));
    // Deleting what is gone is no error.
    store.delete(&pointer).await.unwrap();
    assert_eq!(counter.get("PutObject"), 4, "{:?}", counter.counts());
    assert_eq!(counter.get("GetObject"), 5, "{:?}", counter.counts());
    assert_eq!(counter.get("DeleteObject"), 2, "{:?}", counter.counts());
}

#[tokio::test]
async fn a_missing_object_or_bucket_is_not_found_and_a_binary_object_is_refused() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let store = S3ObjectStore::new(&config);
    let bucket = bucket(&store, "missing").await;

    let missing = PayloadPointer::new(&bucket, "never-written");
    assert_eq!(store.get(&missing).await, Err(ObjectStoreError::NotFound(missing.clone())));
    let no_bucket = PayloadPointer::new(support::unique_name("no-such-bucket").to_ascii_lowercase(), "k");
    assert_eq!(store.get(&no_bucket).await, Err(ObjectStoreError::NotFound(no_bucket.clone())));
    assert_eq!(
        store.put(&no_bucket, "body".into()).await,
        Err(ObjectStoreError::NotFound(no_bucket.clone()))
    );
    store.delete(&no_bucket).await.unwrap();

    // Written by someone else: bytes that are no UTF-8 text cannot be a message body.
    let binary = PayloadPointer::new(&bucket, "binary");
    store
        .client()
        .put_object()
        .bucket(&bucket)
        .key("binary")
        .body(vec![0xff, 0xfe, 0x00, 0x80].into())
        .send()
        .await
        .unwrap();
    match store.get(&binary).await {
        Err(ObjectStoreError::Refused { pointer, reason }) => {
            assert_eq!(pointer, binary);
            assert!(reason.contains("UTF-8"), "{reason}");
        }
        other => panic!("a binary object: {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_store_is_unavailable() {
    // Nothing listens there (a port free a moment ago): no emulator needed, loopback only.
    let addr = support::free_loopback_addr();
    let credentials = aws_sdk_s3::config::Credentials::new("testing", "testing", None, None, "tests");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(support::REGION))
        .credentials_provider(credentials)
        .endpoint_url(format!("http://{addr}"))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let store = S3ObjectStore::new(&config);
    let pointer = PayloadPointer::new("bucket", "key");
    match store.get(&pointer).await {
        Err(ObjectStoreError::Unavailable(reason)) => assert!(reason.contains("s3://bucket/key"), "{reason}"),
        other => panic!("no server: {other:?}"),
    }
}

#[tokio::test]
async fn one_and_ten_mib_messages_go_through_sns_and_sqs_to_a_daemon_whole() {
    let Some(env) = env("routes").await else { return };
    let routes = [("raw", Some(true)), ("enveloped", Some(false)), ("direct", None)];
    for (route, raw_delivery) in routes {
        let (destination, queue) = match raw_delivery {
            Some(raw) => env.wire(raw).await,
            None => {
                let queue = env.queue("large-direct").await;
                (queue.clone(), queue)
            }
        };
        let counter = RequestCounter::new();
        let producer = env.producer(&destination, &counter);
        let prefix = format!("{route}-");
        let sent = vec![
            BigDocument { id: format!("{prefix}1-one-mib"), text: text_of(MIB) },
            BigDocument { id: format!("{prefix}2-ten-mib"), text: text_of(10 * MIB) },
            BigDocument { id: format!("{prefix}3-small"), text: "small".into() },
        ];
        producer.produce_batch(&sent).await.unwrap();
        assert_eq!(counter.get("PutObject"), 2, "{route}: the two large bodies offloaded, not the small one");

        let report = env.run_until_idle(env.daemon(&queue).await, &queue).await;
        assert_eq!(report.count(Verdict::Succeeded), 3, "{route}: {report}");
        let got = handled(&prefix);
        let documents: Vec<&BigDocument> = got.iter().map(|(document, _)| document).collect();
        assert!(documents == sent.iter().collect::<Vec<_>>(), "{route}: not what was sent");
        // As if sent whole: the extended clients' size attribute is gone once resolved (the
        // Python extended client, which needs it on the wire, reads ours: extended_interop.rs).
        assert!(got.iter().all(|(_, size)| size.is_none()), "{route}");
        assert_eq!(support::left_in(&env.sqs, &queue).await, 0, "{route}");
    }
    assert_eq!(env.keys().await.len(), 6, "objects are kept unless asked (SNS fans them out)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_object_fails_its_message_which_is_retried_and_not_deleted() {
    let Some(env) = env("missing").await else { return };
    let queue = env.queue("large-missing").await;
    let counter = RequestCounter::new();
    let producer = Producer::new(AwsPublisher::new(&env.config), TopicMap::new().default_topic(&queue))
        .large_payloads(LargePayloads::new(S3ObjectStore::new(&env.config), &env.bucket).always());
    let document = BigDocument { id: "missing-1".into(), text: "gone".into() };
    producer.produce(&document).await.unwrap();
    let keys = env.keys().await;
    assert_eq!(keys.len(), 1);
    let pointer = PayloadPointer::new(&env.bucket, &keys[0]);
    let body = env.store.get(&pointer).await.unwrap();
    env.store.delete(&pointer).await.unwrap();

    let reasons = Arc::new(Mutex::new(Vec::new()));
    let recorded = reasons.clone();
    let daemon = env
        .daemon(&queue)
        .await
        .on_outcome(move |handled| {
            recorded.lock().unwrap().push((handled.outcome.verdict, handled.outcome.reason.clone()))
        })
        .build(SqsSubscriber::with_counter(&env.config, &queue, &counter).await.unwrap())
        .unwrap();
    let report = daemon.run(tokio::time::sleep(Duration::from_secs(4))).await;
    let reasons = reasons.lock().unwrap().clone();
    assert!(report.count(Verdict::Failed) >= 2, "failed and retried: {report}");
    assert_eq!(report.count(Verdict::Succeeded), 0, "{report}");
    for (verdict, reason) in &reasons {
        assert_eq!(*verdict, Verdict::Failed);
        let reason = reason.as_deref().unwrap_or_default();
        assert!(
            reason.contains(&env.bucket) && reason.contains(&pointer.key),
            "names bucket and key: {reason}"
        );
    }
    assert_eq!(counter.get("DeleteMessageBatch"), 0, "never acknowledged");
    assert_eq!(support::left_in(&env.sqs, &queue).await, 1, "still in the queue");

    // Once the object is there, the next receive handles it.
    env.store.put(&pointer, body).await.unwrap();
    let report = env.run_until_idle(env.daemon(&queue).await, &queue).await;
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
    assert_eq!(handled("missing-").len(), 1);
    assert_eq!(support::left_in(&env.sqs, &queue).await, 0);
}

#[tokio::test]
async fn objects_are_deleted_after_their_messages_only_when_asked() {
    let Some(env) = env("settle").await else { return };
    for delete in [false, true] {
        let queue = env.queue("large-settle").await;
        let producer = env.producer(&queue, &RequestCounter::new());
        let id = format!("settle-{delete}");
        producer.produce(&BigDocument { id: id.clone(), text: text_of(300_000) }).await.unwrap();
        let keys = env.keys().await;
        let report = env.run_until_idle(env.daemon(&queue).await.delete_payloads(delete), &queue).await;
        assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
        assert_eq!(handled(&id).len(), 1);
        assert_eq!(support::left_in(&env.sqs, &queue).await, 0);
        let after = env.keys().await;
        assert_eq!(
            after.len(),
            if delete { keys.len() - 1 } else { keys.len() },
            "delete_payloads({delete})"
        );
    }
}

/// The lines `pubsub read` printed, parsed.
fn lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_publish_offloads_to_the_bucket_and_pubsub_read_prints_whole_messages() {
    let Some(env) = env("cli").await else { return };
    let media_type = "application/vnd.acme.pubsub.big-document";
    let big = text_of(300_000);
    let queue = env.queue("large-cli").await;
    let input = format!("{{\"id\": \"big\", \"text\": \"{big}\"}}\n{{\"id\": \"small\", \"text\": \"s\"}}\n");

    // Without a bucket: refused before any request, naming the option.
    let output = pubsub(&["publish", "--queue-url", &queue, "--media-type", media_type], &input);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("--large-payload-bucket"), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).lines().count(), 1, "the small one went");

    let publish = |extra: &[&str], input: &str| {
        let mut args = vec!["publish", "--queue-url", &queue, "--media-type", media_type];
        args.extend_from_slice(&["--large-payload-bucket", &env.bucket]);
        args.extend_from_slice(extra);
        let output = pubsub(&args, input);
        assert!(output.status.success(), "{}", text(&output.stderr));
        text(&output.stdout).lines().count()
    };
    assert_eq!(publish(&[], &input), 2);
    assert_eq!(env.keys().await.len(), 1, "over 256 KiB only");
    assert_eq!(publish(&["--large-payload-threshold", "10"], r#"{"id": "t", "text": "over ten bytes"}"#), 1);
    assert_eq!(env.keys().await.len(), 2);
    assert_eq!(publish(&["--always-offload"], r#"{"id": "a", "text": "a"}"#), 1);
    assert_eq!(env.keys().await.len(), 3);

    let output = pubsub(&["read", "--queue-url", &queue], "");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut read = lines(&output.stdout);
    read.sort_by_key(|line| line["content"]["id"].as_str().unwrap().to_owned());
    let ids: Vec<&str> = read.iter().map(|line| line["content"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a", "big", "small", "small", "t"]);
    assert_eq!(read[1]["content"]["text"].as_str().unwrap(), big, "the whole body");
    assert_eq!(read[1]["media_type"], media_type);
    assert_eq!(support::left_in(&env.sqs, &queue).await, 0);

    // Through a topic, enveloped: the pointer is in the notification.
    let (topic, queue) = env.wire(false).await;
    let args =
        ["publish", "--topic-arn", &topic, "--media-type", media_type, "--large-payload-bucket", &env.bucket];
    let output = pubsub(&args, &format!("{{\"id\": \"via-topic\", \"text\": \"{big}\"}}\n"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = pubsub(&["read", "--queue-url", &queue], "");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let read = lines(&output.stdout);
    assert_eq!(read.len(), 1);
    assert_eq!(read[0]["content"]["text"].as_str().unwrap(), big);

    // An object that is gone: printed with the error, exit 1, left in the queue.
    let queue = env.queue("large-cli-missing").await;
    let pointer = PayloadPointer::new(&env.bucket, "never-written");
    env.sqs.send_message().queue_url(&queue).message_body(pointer.to_body()).send().await.unwrap();
    let output = pubsub(&["read", "--queue-url", &queue], "");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let read = lines(&output.stdout);
    assert_eq!(read.len(), 1);
    let error = read[0]["error"].as_str().unwrap();
    assert!(error.contains("never-written"), "{error}");
    assert!(text(&output.stderr).contains("stays in the queue"), "{}", text(&output.stderr));
    assert_eq!(support::left_in(&env.sqs, &queue).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_reads_offloaded_messages_and_deletes_their_objects_when_told_by_the_environment() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let Some(env) = env("runner").await else { return };
    let queue = env.queue("large-runner").await;
    let simple = pubsub_core::UntypedMessage::new(
        "application/vnd.globality.pubsub.simple",
        serde_json::json!({"message": "m".repeat(300_000), "timestamp": 1.0}),
    )
    .unwrap();
    env.producer(&queue, &RequestCounter::new()).produce(&simple).await.unwrap();
    assert_eq!(env.keys().await.len(), 1);

    // simple_daemon's main is Runner::new("example"): EXAMPLE__* configures it.
    let mut command = Command::new(support::simple_daemon());
    for (name, _) in std::env::vars() {
        if ["EXAMPLE__", "OTEL_"].iter().any(|prefix| name.starts_with(prefix)) {
            command.env_remove(name);
        }
    }
    let mut child = command
        .env("EXAMPLE__SQS_CONSUMER__SQS_QUEUE_URL", &queue)
        .env("EXAMPLE__SQS_CONSUMER__WAIT_SECONDS", "1")
        .env("EXAMPLE__DELETE_LARGE_PAYLOADS", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (handled, was_handled) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("simple message") {
                let _ = handled.send(());
            }
            lines.push(line);
        }
        lines
    });
    let waited =
        tokio::task::spawn_blocking(move || was_handled.recv_timeout(Duration::from_secs(60))).await.unwrap();
    if waited.is_err() {
        let _ = child.kill();
        panic!("not handled in 60 s: {:#?}", log.join().unwrap());
    }
    // The delete, then the object's, go out soon after.
    let mut keys = Vec::new();
    for _ in 0..50 {
        keys = env.keys().await;
        if keys.is_empty() && support::left_in(&env.sqs, &queue).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    let log = log.join().unwrap();
    assert!(status.success(), "exit 0 on SIGTERM: {status}; log: {log:#?}");
    assert!(keys.is_empty(), "the object deleted after its message: {keys:?}; log: {log:#?}");
    assert_eq!(support::left_in(&env.sqs, &queue).await, 0);
}
