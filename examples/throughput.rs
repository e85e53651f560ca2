//! Throughput of the consumer daemon on the embedded broker with simulated AWS latency, and
//! API requests per message. Prints a table; the figures README quotes come from here.
//!
//! ```text
//! cargo run --release --example throughput                    # 20 ms per request
//! cargo run --release --example throughput -- --latency-ms 0 --messages 100000
//! cargo run --release --example throughput -- --fifo-groups 1,10,100 --messages 5000
//! cargo run --release --example throughput -- --payload-bytes 1048576 --messages 2000 --concurrency 100
//! ```
//!
//! Consume side: the queue is filled first (without latency), then a daemon with a no-op
//! handler and info-level logs written to a sink drains it. Publish side, measured apart:
//! `produce_batch` of the same messages with the same latency.
//!
//! FIFO side (`--fifo-groups`): the messages spread over that many message groups, sent
//! straight to a FIFO queue, drained by one daemon at the first `--concurrency`; the daemon
//! handles a group's messages one after another and the queue holds a group back while one of
//! its messages is in flight, so fewer groups means less parallelism.
//!
//! Large messages (`--payload-bytes N`): each message carries N bytes more, the producer
//! offloads every body over 256 KiB to the broker's object store (`Producer::large_payloads`)
//! and the daemon reads them back (`DaemonBuilder::object_store`); S3 requests are counted
//! apart from SNS's and SQS's. The messages are published 500 at a time, to bound memory.

use std::time::{Duration, Instant};

use clap::Parser;
use pubsub_core::memory::{QueueOptions, SubscriptionOptions};
use pubsub_core::payload::LargePayloads;
use pubsub_core::{handler, DaemonBuilder, MemoryBroker, Producer, PubSubMessage, TopicMap, Verdict};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(created = "Order")]
#[serde(rename_all = "camelCase")]
struct OrderCreated {
    #[validate(length(min = 1))]
    order_id: String,
    #[validate(range(min = 0))]
    amount: i64,
    note: Option<String>,
}

#[handler]
async fn no_op(_order: OrderCreated) {}

/// A message of one FIFO group.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.step"]
struct Step {
    #[message_group_id]
    group: usize,
    #[message_deduplication_id]
    id: usize,
}

#[handler]
async fn no_op_step(_step: Step) {}

#[derive(Parser)]
struct Args {
    /// Simulated latency of every broker request.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Messages per run.
    #[arg(long, default_value_t = 50_000)]
    messages: usize,
    /// Concurrency settings to run.
    #[arg(long, value_delimiter = ',', default_value = "10,100,500,1000")]
    concurrency: Vec<usize>,
    /// Instead: a FIFO queue, with its messages in this many groups (each a run).
    #[arg(long, value_delimiter = ',')]
    fifo_groups: Vec<usize>,
    /// Bytes of payload per message; over 256 KiB, bodies are offloaded to the object store.
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
}

/// The bucket large bodies are offloaded to.
const BUCKET: &str = "payloads";

/// How many large messages are made and published at once.
const LARGE_CHUNK: usize = 500;

fn orders(range: std::ops::Range<usize>, payload_bytes: usize) -> Vec<OrderCreated> {
    let note = if payload_bytes == 0 { "deliver after 5pm".to_owned() } else { "x".repeat(payload_bytes) };
    range
        .map(|i| OrderCreated { order_id: format!("o-{i}"), amount: i as i64, note: Some(note.clone()) })
        .collect()
}

/// Publishes `n` orders: in one batch, or large ones [`LARGE_CHUNK`] at a time.
async fn publish(producer: &Producer, n: usize, payload_bytes: usize) {
    let chunk = if payload_bytes == 0 { n.max(1) } else { LARGE_CHUNK };
    for start in (0..n).step_by(chunk) {
        producer.produce_batch(&orders(start..n.min(start + chunk), payload_bytes)).await.unwrap();
    }
}

/// A broker with a topic and a subscribed queue, and a producer to the topic; with
/// `large`, a bucket, and the producer offloads to it.
fn setup(large: bool) -> (MemoryBroker, Producer) {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("orders");
    broker.create_queue("orders", QueueOptions::default());
    broker.subscribe(&topic, "orders", SubscriptionOptions::default()).unwrap();
    let mut producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    if large {
        broker.create_bucket(BUCKET);
        producer = producer.large_payloads(LargePayloads::new(broker.object_store(), BUCKET));
    }
    (broker, producer)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // Info-level logs, formatted and thrown away: their cost is part of the figure.
    tracing_subscriber_sink();
    let latency = Duration::from_millis(args.latency_ms);
    if !args.fifo_groups.is_empty() {
        return fifo(&args, latency).await;
    }
    let large = args.payload_bytes > 0;
    let payload =
        if large { format!(", {} bytes of payload per message", args.payload_bytes) } else { String::new() };
    println!(
        "{} messages{payload}, {} ms per broker request, no-op handler, info logs to a sink",
        args.messages, args.latency_ms
    );

    let (broker, producer) = setup(large);
    broker.set_latency(latency);
    let started = Instant::now();
    publish(&producer, args.messages, args.payload_bytes).await;
    let elapsed = started.elapsed();
    let counts = broker.request_counts();
    println!(
        "publish: {:>9.0} msg/s, {:.3} requests per message ({} PublishBatch, {:.3} S3 PutObject per message)",
        args.messages as f64 / elapsed.as_secs_f64(),
        counts.total() as f64 / args.messages as f64,
        counts.publish_batch,
        counts.put_object as f64 / args.messages as f64
    );
    drop((broker, producer));

    println!(
        "{:>11} {:>12} {:>14} {:>10} {:>10} {:>10} {:>10}",
        "concurrency", "consume/s", "requests/msg", "receives", "deletes", "visibility", "s3/msg"
    );
    for concurrency in args.concurrency {
        let (broker, producer) = setup(large);
        publish(&producer, args.messages, args.payload_bytes).await;
        broker.set_latency(latency);
        broker.reset_request_counts();
        let mut daemon =
            DaemonBuilder::new("throughput").concurrency(concurrency).wait_time(Duration::from_secs(1));
        if large {
            daemon = daemon.object_store(broker.object_store());
        }
        let daemon = daemon.build(broker.subscriber("orders").unwrap()).unwrap();
        let started = Instant::now();
        let run = tokio::spawn(daemon.run_until_idle());
        // Timed to the last delete; the idle check that ends the run (one empty long poll) is
        // not part of the throughput.
        while broker.queue_stats("orders").total > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        let counts = broker.request_counts();
        let report = run.await.unwrap();
        assert_eq!(report.count(Verdict::Succeeded), args.messages as u64, "{report}");
        assert_eq!(broker.queue_stats("orders").total, 0);
        println!(
            "{:>11} {:>12.0} {:>14.3} {:>10} {:>10} {:>10} {:>10.3}",
            concurrency,
            args.messages as f64 / elapsed.as_secs_f64(),
            counts.total() as f64 / args.messages as f64,
            counts.receive,
            counts.ack_batch,
            counts.change_visibility_batch,
            counts.objects() as f64 / args.messages as f64
        );
    }
}

/// One daemon draining a FIFO queue whose messages are in `groups` groups, per groups count.
async fn fifo(args: &Args, latency: Duration) {
    let concurrency = args.concurrency[0];
    println!(
        "{} messages on a FIFO queue, {} ms per broker request, concurrency {concurrency}, no-op handler",
        args.messages, args.latency_ms
    );
    println!(
        "{:>7} {:>12} {:>14} {:>10} {:>10}",
        "groups", "consume/s", "requests/msg", "receives", "deletes"
    );
    for &groups in &args.fifo_groups {
        let broker = MemoryBroker::new();
        let queue = broker.create_queue("steps.fifo", QueueOptions::default());
        let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&queue));
        // Round robin over the groups, as orders of many customers arrive.
        let steps: Vec<Step> = (0..args.messages).map(|id| Step { group: id % groups.max(1), id }).collect();
        producer.produce_batch(&steps).await.unwrap();
        broker.set_latency(latency);
        broker.reset_request_counts();
        let daemon = DaemonBuilder::new("throughput")
            .concurrency(concurrency)
            .wait_time(Duration::from_secs(1))
            .build(broker.subscriber("steps.fifo").unwrap())
            .unwrap();
        let started = Instant::now();
        let run = tokio::spawn(daemon.run_until_idle());
        while broker.queue_stats("steps.fifo").total > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed();
        let counts = broker.request_counts();
        let report = run.await.unwrap();
        assert_eq!(report.count(Verdict::Succeeded), args.messages as u64, "{report}");
        println!(
            "{:>7} {:>12.0} {:>14.3} {:>10} {:>10}",
            groups,
            args.messages as f64 / elapsed.as_secs_f64(),
            counts.total() as f64 / args.messages as f64,
            counts.receive,
            counts.ack_batch
        );
    }
}

fn tracing_subscriber_sink() {
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_writer(std::io::sink).finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
}
