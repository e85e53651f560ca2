//! The pipeline of `benches/pipeline.rs` cut at successive points, for counting the
//! instructions each stage costs a message (`scripts/cost-per-message.sh` runs it under
//! `perf stat`, or callgrind, at two round counts and subtracts, so that start-up does not
//! count).
//!
//! ```text
//! cargo run --release -p pubsub-core --example cost_per_message -- MODE ROUNDS [multi-thread]
//! ```
//!
//! It runs on tokio's current-thread runtime, so that the count is the same from one run to
//! the next (on the multi-threaded one, as the bench runs, the workers' parking and stealing
//! under valgrind moved it by up to 8,000 instructions a message); `multi-thread` as a third
//! argument runs it as the bench does.
//!
//! Each round is 2,000 messages on a fresh broker, as one iteration of the bench. The modes
//! are cumulative, each the one before plus one more stage:
//!
//! - `encode`: `Producer::produce_batch` to a publisher that drops what it is given;
//! - `broker`: the same to the embedded broker (SNS notification), then receive and delete
//!   every message straight from the queue, ten at a time;
//! - `decode`: `broker`, plus the typed decode of every received body;
//! - `dispatch`: `broker`, with every received message through the daemon's `Dispatcher`
//!   (unwrap, decode, handler, outcome) and no log subscriber;
//! - `daemon`: the bench's pipeline (poller, permits, handler tasks, settler), no log;
//! - `pipeline`: the same with the per-message info line formatted and written to a sink,
//!   through `pubsub_core::logging`;
//! - `pipeline-fmt`: the same with the subscriber the bench installed before issue 16,
//!   `tracing_subscriber::fmt()` with its defaults (ANSI colours on), for comparison.

use std::time::Duration;

use pubsub_core::memory::{QueueOptions, SubscriptionOptions};
use pubsub_core::transport::{
    BoxFuture, EntryError, MessageId, OutgoingMessage, Publisher, Subscriber, TransportError,
};
use pubsub_core::{DaemonBuilder, MemoryBroker, Producer, TopicMap, Verdict};

#[path = "../benches/support/workload.rs"]
mod workload;

use workload::{orders, OrderCreated, MESSAGES};

/// Takes every message and keeps none: what encoding costs without a broker.
#[derive(Debug)]
struct Drop;

impl Publisher for Drop {
    fn publish_batch<'a>(
        &'a self,
        _topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Result<MessageId, EntryError>>, TransportError>> {
        Box::pin(async move { Ok(messages.iter().map(|_| Ok(String::new())).collect()) })
    }
}

/// A broker with the bench's topic, queue and (enveloped) subscription, and a producer to it.
fn broker() -> (MemoryBroker, Producer) {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("orders");
    broker.create_queue("orders", QueueOptions::default());
    broker.subscribe(&topic, "orders", SubscriptionOptions::default()).unwrap();
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    (broker, producer)
}

fn daemon() -> DaemonBuilder {
    DaemonBuilder::new("bench").concurrency(100).wait_time(Duration::ZERO)
}

async fn round(mode: &str, orders: &[OrderCreated]) {
    if mode == "encode" {
        let producer = Producer::new(Drop, TopicMap::new().default_topic("orders"));
        producer.produce_batch(orders).await.unwrap();
        return;
    }
    let (broker, producer) = broker();
    producer.produce_batch(orders).await.unwrap();
    let subscriber = broker.subscriber("orders").unwrap();
    if matches!(mode, "daemon" | "pipeline" | "pipeline-fmt") {
        let report = daemon().build(subscriber).unwrap().run_until_idle().await;
        assert_eq!(report.count(Verdict::Succeeded), MESSAGES as u64);
        return;
    }
    let dispatcher = (mode == "dispatch").then(|| daemon().build_dispatcher("orders").unwrap());
    let mut handled = 0;
    loop {
        let received = subscriber.receive(10, Duration::ZERO).await.unwrap();
        if received.is_empty() {
            break;
        }
        for message in &received {
            match (mode, &dispatcher) {
                ("decode", _) => {
                    std::hint::black_box(pubsub_core::decode::<OrderCreated>(&message.body).unwrap());
                }
                (_, Some(dispatcher)) => {
                    let outcome = dispatcher.dispatch(message).await;
                    assert_eq!(outcome.outcome.verdict, Verdict::Succeeded);
                }
                _ => {}
            }
        }
        handled += received.len();
        let receipts: Vec<&str> = received.iter().map(|message| message.receipt_handle.as_str()).collect();
        assert!(subscriber.ack_batch(&receipts).await.unwrap().iter().all(Result::is_ok));
    }
    assert_eq!(handled, MESSAGES);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "pipeline".to_owned());
    let rounds: usize = args.next().map_or(1, |rounds| rounds.parse().expect("ROUNDS is a number"));
    assert!(
        ["encode", "broker", "decode", "dispatch", "daemon", "pipeline", "pipeline-fmt"]
            .contains(&mode.as_str()),
        "MODE is encode, broker, decode, dispatch, daemon, pipeline or pipeline-fmt"
    );
    match mode.as_str() {
        "pipeline" => pubsub_core::logging::Logging::new().try_init_writer(std::io::sink).unwrap(),
        "pipeline-fmt" => tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_writer(std::io::sink)
                .finish(),
        )
        .unwrap(),
        _ => {}
    }
    let runtime = match args.next().as_deref() {
        Some("multi-thread") => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        None => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Some(other) => panic!("unknown argument {other:?}: the third, if any, is `multi-thread`"),
    }
    .unwrap();
    let orders = orders();
    for _ in 0..rounds {
        runtime.block_on(round(&mode, std::hint::black_box(&orders)));
    }
}
