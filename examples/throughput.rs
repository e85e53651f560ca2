//! Throughput of the consumer daemon on the embedded broker with simulated AWS latency, and
//! API requests per message. Prints a table; the figures README quotes come from here.
//!
//! ```text
//! cargo run --release --example throughput                    # 20 ms per request
//! cargo run --release --example throughput -- --latency-ms 0 --messages 100000
//! ```
//!
//! Consume side: the queue is filled first (without latency), then a daemon with a no-op
//! handler and info-level logs written to a sink drains it. Publish side, measured apart:
//! `produce_batch` of the same messages with the same latency.

use std::time::{Duration, Instant};

use clap::Parser;
use pubsub_core::memory::{QueueOptions, SubscriptionOptions};
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
}

fn orders(n: usize) -> Vec<OrderCreated> {
    (0..n)
        .map(|i| OrderCreated {
            order_id: format!("o-{i}"),
            amount: i as i64,
            note: Some("deliver after 5pm".into()),
        })
        .collect()
}

fn setup() -> (MemoryBroker, Producer) {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("orders");
    broker.create_queue("orders", QueueOptions::default());
    broker.subscribe(&topic, "orders", SubscriptionOptions::default()).unwrap();
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    (broker, producer)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // Info-level logs, formatted and thrown away: their cost is part of the figure.
    tracing_subscriber_sink();
    let latency = Duration::from_millis(args.latency_ms);
    let messages = orders(args.messages);
    println!(
        "{} messages, {} ms per broker request, no-op handler, info logs to a sink",
        args.messages, args.latency_ms
    );

    let (broker, producer) = setup();
    broker.set_latency(latency);
    let started = Instant::now();
    producer.produce_batch(&messages).await.unwrap();
    let elapsed = started.elapsed();
    let counts = broker.request_counts();
    println!(
        "publish: {:>9.0} msg/s, {:.3} requests per message ({} PublishBatch)",
        args.messages as f64 / elapsed.as_secs_f64(),
        counts.total() as f64 / args.messages as f64,
        counts.publish_batch
    );

    println!(
        "{:>11} {:>12} {:>14} {:>10} {:>10} {:>10}",
        "concurrency", "consume/s", "requests/msg", "receives", "deletes", "visibility"
    );
    for concurrency in args.concurrency {
        let (broker, producer) = setup();
        producer.produce_batch(&messages).await.unwrap();
        broker.set_latency(latency);
        broker.reset_request_counts();
        let daemon = DaemonBuilder::new("throughput")
            .concurrency(concurrency)
            .wait_time(Duration::from_secs(1))
            .build(broker.subscriber("orders").unwrap())
            .unwrap();
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
            "{:>11} {:>12.0} {:>14.3} {:>10} {:>10} {:>10}",
            concurrency,
            args.messages as f64 / elapsed.as_secs_f64(),
            counts.total() as f64 / args.messages as f64,
            counts.receive,
            counts.ack_batch,
            counts.change_visibility_batch
        );
    }
}

fn tracing_subscriber_sink() {
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_writer(std::io::sink).finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
}
