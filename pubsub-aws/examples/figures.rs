//! Publish and consume rates against an SNS/SQS server, and API requests per message as the
//! SDK layer counts them. For moto, started by the script:
//!
//! ```text
//! ./scripts/moto.sh run cargo run --release -p pubsub-aws --example figures -- --messages 300
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use pubsub_aws::provision::{Provisioner, QueueSpec, SubscriptionSpec};
use pubsub_aws::{load_config, AwsOptions, RequestCounter, SnsPublisher, SqsSubscriber};
use pubsub_core::{handler, DaemonBuilder, Producer, PubSubMessage, TopicMap, Verdict};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(created = "Order")]
#[serde(rename_all = "camelCase")]
struct OrderCreated {
    #[validate(length(min = 1))]
    order_id: String,
    amount: i64,
}

#[handler]
async fn no_op(_order: OrderCreated) {}

#[derive(Parser)]
struct Args {
    /// Messages to publish and consume.
    #[arg(long, default_value_t = 300)]
    messages: usize,
    /// Handlers at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = load_config(&AwsOptions::default()).await;
    let provisioner = Provisioner::new(&config);
    let suffix = std::process::id();
    let topic = provisioner.topic(&format!("figures-{suffix}")).await?;
    let queue = provisioner.queue(&format!("figures-{suffix}"), &QueueSpec::default()).await?;
    provisioner.subscribe(&topic, &queue, &SubscriptionSpec { raw_delivery: true, filter: None }).await?;

    let published = RequestCounter::new();
    let producer =
        Producer::new(SnsPublisher::with_counter(&config, &published), TopicMap::new().default_topic(&topic));
    let orders: Vec<OrderCreated> =
        (0..args.messages).map(|i| OrderCreated { order_id: format!("o-{i}"), amount: i as i64 }).collect();
    let started = Instant::now();
    producer.produce_batch(&orders).await?;
    let publish_elapsed = started.elapsed();

    let consumed = RequestCounter::new();
    let subscriber = SqsSubscriber::with_counter(&config, &queue, &consumed).await?;
    consumed.reset();
    let daemon = DaemonBuilder::new("figures")
        .concurrency(args.concurrency)
        .wait_time(Duration::from_secs(1))
        .build(subscriber)?;
    let started = Instant::now();
    let report = daemon.run_until_idle().await;
    // The run ends with two empty long polls that find the queue idle; they are not consuming.
    let consume_elapsed = started.elapsed().saturating_sub(Duration::from_secs(2));
    assert_eq!(report.count(Verdict::Succeeded), args.messages as u64, "{report}");

    let n = args.messages as f64;
    println!("{} messages, concurrency {}", args.messages, args.concurrency);
    println!(
        "publish: {:.0} msg/s, {:.3} requests per message {:?}",
        n / publish_elapsed.as_secs_f64(),
        published.total() as f64 / n,
        published.counts()
    );
    println!(
        "consume: {:.0} msg/s, {:.3} requests per message {:?}",
        n / consume_elapsed.as_secs_f64(),
        consumed.total() as f64 / n,
        consumed.counts()
    );
    Ok(())
}
