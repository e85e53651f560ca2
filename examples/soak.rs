//! Memory on a long run: the consumer daemon handles `--messages` (default 100,000) typed
//! messages on the embedded broker, and the process's resident memory (`VmRSS`) and its peak
//! (`VmHWM`) are read from `/proc/self/status` after start-up and at checkpoints (1k, 10k,
//! 50k, 100k handled, then 200k, 500k, 1M, ... and the last message). Linux only; elsewhere
//! the memory columns say "unavailable".
//!
//! ```text
//! cargo run --release --example soak                                   # 100,000, concurrency 100
//! cargo run --release --example soak -- --latency-ms 20 --concurrency 500
//! cargo run --release --example soak -- --backlog                      # all published up front
//! cargo run --release --example soak -- --messages 1000000
//! ```
//!
//! Default (steady) mode: a producer task publishes in batches of `--batch` while the queue
//! holds fewer than `--max-queued` messages, so the queue stays bounded (a few thousand) and
//! what grows, if anything, is the daemon (its settler, its in-flight table, its report, the
//! dispatcher) and not a backlog. With `--backlog` every message is published before the daemon
//! starts (without latency), so the peak includes the broker holding all of them: the figure
//! users ask for when a queue has piled up, and not a measure of the daemon.
//!
//! The handler decodes an order with a few fields and a short `Vec` of lines, checks the total
//! and counts the message in a collaborator. `--latency-ms` is paid by every broker request
//! (publish, receive, delete), as AWS would. The daemon's info logs (one line per message) are
//! formatted and thrown away, so their cost is part of the run. The daemon is stopped
//! gracefully at the end, and the report must count every message as SUCCEEDED.
//!
//! Columns: messages handled; time since the daemon started (for the `published` row of
//! `--backlog`: the publishing time); msg/s since the previous row; messages in the queue;
//! `VmRSS` and `VmHWM` in MiB. The verdict is the growth from 10k to 100k handled, then from 50k
//! to the end in bytes per message: past the allocator's warm-up, a leak shows there.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use pubsub_core::memory::{QueueOptions, SubscriptionOptions};
use pubsub_core::{
    handler, DaemonBuilder, HandlerError, MemoryBroker, Producer, PubSubMessage, TopicMap, Verdict,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, Notify};
use validator::Validate;

/// One line of an order.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct OrderLine {
    #[validate(length(min = 1))]
    sku: String,
    #[validate(range(min = 1))]
    quantity: u32,
    #[validate(range(min = 0))]
    unit_price: i64,
}

/// An order with a few fields and a short list of lines (about 400 bytes on the wire, 700 as
/// an SNS notification).
#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(created = "SoakOrder")]
#[serde(rename_all = "camelCase")]
struct SoakOrderCreated {
    #[validate(length(min = 1))]
    order_id: String,
    #[validate(length(min = 1))]
    customer_id: String,
    #[validate(length(equal = 3))]
    currency: String,
    #[validate(range(min = 0))]
    amount: i64,
    #[validate(length(min = 1, max = 20), nested)]
    lines: Vec<OrderLine>,
    note: Option<String>,
}

/// What the handler counts, shared with `main` (a collaborator of the daemon).
struct Tally {
    handled: AtomicU64,
    /// Sum of the order amounts, so the work is not optimised away.
    amount: AtomicU64,
    /// Handled counts at which `main` reads the memory, ascending.
    checkpoints: Vec<u64>,
    /// Woken when `handled` reaches a checkpoint.
    reached: Notify,
}

#[handler]
async fn take_order(order: SoakOrderCreated, tally: &Arc<Tally>) -> Result<(), HandlerError> {
    let total: i64 = order.lines.iter().map(|line| i64::from(line.quantity) * line.unit_price).sum();
    if total != order.amount {
        return Err(HandlerError::skip(format!("order {} does not add up", order.order_id)));
    }
    tally.amount.fetch_add(order.amount as u64, Ordering::Relaxed);
    let handled = tally.handled.fetch_add(1, Ordering::Relaxed) + 1;
    if tally.checkpoints.binary_search(&handled).is_ok() {
        tally.reached.notify_one();
    }
    Ok(())
}

#[derive(Parser)]
struct Args {
    /// Messages to handle.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Messages the daemon handles at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Simulated latency of every broker request (publish, receive, delete), in ms.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Publish every message before the daemon starts (the queue holds them all at first).
    #[arg(long)]
    backlog: bool,
    /// Messages per `produce_batch` call of the producer.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Steady mode: the producer publishes only while the queue holds fewer than this.
    #[arg(long, default_value_t = 4_000)]
    max_queued: usize,
}

const QUEUE: &str = "soak";

/// Orders `from..from + n`: two to five lines each.
fn orders(from: u64, n: u64) -> Vec<SoakOrderCreated> {
    (from..from + n)
        .map(|i| {
            let lines: Vec<OrderLine> = (0..2 + i % 4)
                .map(|l| OrderLine {
                    sku: format!("SKU-{:05}", (i * 7 + l) % 10_000),
                    quantity: 1 + (l as u32 % 3),
                    unit_price: 100 + ((i + l) % 900) as i64,
                })
                .collect();
            SoakOrderCreated {
                order_id: format!("o-{i:08}"),
                customer_id: format!("c-{:06}", i % 5_000),
                currency: "EUR".into(),
                amount: lines.iter().map(|line| i64::from(line.quantity) * line.unit_price).sum(),
                lines,
                note: i.is_multiple_of(3).then(|| "leave at the door".into()),
            }
        })
        .collect()
}

/// Resident memory of this process, from `/proc/self/status` (Linux).
#[derive(Debug, Clone, Copy)]
struct Memory {
    /// `VmRSS`: resident now, KiB.
    rss_kib: u64,
    /// `VmHWM`: the highest resident size so far ("high water mark"), KiB.
    hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` (both in kB) from `/proc/self/status`; `None` where there is no
/// such file (not Linux) or it lacks them.
fn memory() -> Option<Memory> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse::<u64>().ok())
    };
    Some(Memory { rss_kib: field("VmRSS:")?, hwm_kib: field("VmHWM:")? })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// 1k, 10k, 50k, 100k, then 200k, 500k, 1M, 2M, 5M, ...: those below `messages`, and `messages`.
fn checkpoints(messages: u64) -> Vec<u64> {
    let mut points = vec![1_000, 10_000, 50_000, 100_000];
    let mut decade = 100_000;
    while decade < messages {
        points.extend([2 * decade, 5 * decade, 10 * decade]);
        decade *= 10;
    }
    points.retain(|&p| p < messages);
    points.push(messages);
    points
}

/// One row of the table.
struct Row {
    label: String,
    handled: u64,
    elapsed: Duration,
    /// Since the previous row with messages handled.
    rate: Option<f64>,
    queued: usize,
    memory: Option<Memory>,
}

fn print_header() {
    println!(
        "{:>12} {:>10} {:>9} {:>9} {:>8} {:>9} {:>10}",
        "", "handled", "elapsed", "msg/s", "queued", "RSS MiB", "peak MiB"
    );
}

fn print_row(row: &Row) {
    let rate = row.rate.map_or_else(|| "-".to_owned(), |rate| format!("{rate:.0}"));
    let (rss, hwm) = match row.memory {
        Some(memory) => (format!("{:.1}", mib(memory.rss_kib)), format!("{:.1}", mib(memory.hwm_kib))),
        None => ("unavailable".to_owned(), "unavailable".to_owned()),
    };
    println!(
        "{:>12} {:>10} {:>8.2}s {:>9} {:>8} {:>9} {:>10}",
        row.label,
        row.handled,
        row.elapsed.as_secs_f64(),
        rate,
        row.queued,
        rss,
        hwm
    );
}

fn sink_logs() {
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::INFO).with_writer(std::io::sink).finish();
    tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
}

/// Publishes `messages` in batches of `batch`; with `max_queued`, only while the queue holds
/// fewer than that many.
async fn publish(
    broker: MemoryBroker,
    producer: Producer,
    messages: u64,
    batch: u64,
    max_queued: Option<usize>,
) {
    let mut published = 0;
    while published < messages {
        if max_queued.is_some_and(|max| broker.queue_stats(QUEUE).total >= max) {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        let n = batch.min(messages - published);
        if let Err(error) = producer.produce_batch(&orders(published, n)).await {
            tracing::error!(%error, "publish failed");
            std::process::exit(1);
        }
        published += n;
    }
}

/// How long without a checkpoint before the run is declared stuck.
const STALL: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() {
    let args = Args::parse();
    sink_logs();
    let batch = args.batch.max(1) as u64;
    let latency = Duration::from_millis(args.latency_ms);
    let mode = if args.backlog {
        format!("backlog ({} published before the daemon starts)", args.messages)
    } else {
        format!("steady (producer keeps under {} queued, batches of {batch})", args.max_queued)
    };
    println!(
        "{} messages, concurrency {}, {} ms per broker request, mode {mode}",
        args.messages, args.concurrency, args.latency_ms
    );

    let broker = MemoryBroker::new();
    let topic = broker.create_topic(QUEUE);
    broker.create_queue(QUEUE, QueueOptions::default());
    broker.subscribe(&topic, QUEUE, SubscriptionOptions::default()).expect("queue and topic exist");
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    let tally = Arc::new(Tally {
        handled: AtomicU64::new(0),
        amount: AtomicU64::new(0),
        checkpoints: checkpoints(args.messages),
        reached: Notify::new(),
    });

    let mut rows = Vec::new();
    print_header();
    let mut record = |row: Row| {
        print_row(&row);
        rows.push(row);
    };
    record(Row {
        label: "baseline".into(),
        handled: 0,
        elapsed: Duration::ZERO,
        rate: None,
        queued: 0,
        memory: memory(),
    });

    let producing = if args.backlog {
        let started = Instant::now();
        publish(broker.clone(), producer, args.messages, batch, None).await;
        record(Row {
            label: "published".into(),
            handled: 0,
            elapsed: started.elapsed(),
            rate: Some(args.messages as f64 / started.elapsed().as_secs_f64()),
            queued: broker.queue_stats(QUEUE).total,
            memory: memory(),
        });
        broker.set_latency(latency);
        None
    } else {
        broker.set_latency(latency);
        Some(tokio::spawn(publish(
            broker.clone(),
            producer,
            args.messages,
            batch,
            Some(args.max_queued.max(1)),
        )))
    };

    let daemon = DaemonBuilder::new("soak")
        .collaborator(tally.clone())
        .concurrency(args.concurrency)
        .wait_time(Duration::from_secs(1))
        .build(broker.subscriber(QUEUE).expect("the queue exists"))
        .expect("the handler's collaborator is given");
    let (stop, stopped) = oneshot::channel::<()>();
    let started = Instant::now();
    let run = tokio::spawn(daemon.run(async {
        let _ = stopped.await;
    }));

    let (mut previous_handled, mut previous_at) = (0u64, Duration::ZERO);
    for &checkpoint in &tally.checkpoints {
        let mut waited_since = Instant::now();
        let mut last_seen = tally.handled.load(Ordering::Relaxed);
        while tally.handled.load(Ordering::Relaxed) < checkpoint {
            // Woken by the handler that reaches a checkpoint; the timeout is a safety net.
            let _ = tokio::time::timeout(Duration::from_secs(1), tally.reached.notified()).await;
            let now_seen = tally.handled.load(Ordering::Relaxed);
            if now_seen != last_seen {
                (last_seen, waited_since) = (now_seen, Instant::now());
            } else if waited_since.elapsed() > STALL {
                eprintln!("stuck at {now_seen} handled for {STALL:?}; queue {:?}", broker.queue_stats(QUEUE));
                std::process::exit(1);
            }
        }
        let memory = memory();
        let elapsed = started.elapsed();
        let handled = tally.handled.load(Ordering::Relaxed);
        let rate = (handled - previous_handled) as f64 / (elapsed - previous_at).as_secs_f64();
        (previous_handled, previous_at) = (handled, elapsed);
        record(Row {
            label: String::new(),
            handled,
            elapsed,
            rate: Some(rate),
            queued: broker.queue_stats(QUEUE).total,
            memory,
        });
    }

    // Every message handled: stop gracefully (the settler flushes the last deletes).
    let total_elapsed = started.elapsed();
    if let Some(producing) = producing {
        producing.await.expect("the producer does not panic");
    }
    let _ = stop.send(());
    let report = run.await.expect("the daemon does not panic");
    record(Row {
        label: "stopped".into(),
        handled: report.total(),
        elapsed: started.elapsed(),
        rate: None,
        queued: broker.queue_stats(QUEUE).total,
        memory: memory(),
    });
    assert_eq!(report.count(Verdict::Succeeded), args.messages, "{report}");
    assert_eq!(broker.queue_stats(QUEUE).total, 0, "every message deleted");
    assert_eq!(report.unsettled, 0);
    println!(
        "{} handled in {:.2}s ({:.0} msg/s); all SUCCEEDED and deleted; {} broker requests",
        args.messages,
        total_elapsed.as_secs_f64(),
        args.messages as f64 / total_elapsed.as_secs_f64(),
        broker.request_counts().total()
    );
    verdict(&rows, args.messages);
}

/// Growth of RSS (and of the peak) from the 10k checkpoint to the 100k one (or the last, if
/// fewer), then from 50k to the last: past the warm-up, the bytes kept per message handled.
fn verdict(rows: &[Row], messages: u64) {
    let at = |handled: u64| rows.iter().find(|row| row.label.is_empty() && row.handled >= handled);
    let growth = |from: &Row, to: &Row| {
        let (Some(a), Some(b)) = (from.memory, to.memory) else { return None };
        let delta = |a: u64, b: u64| {
            let delta = mib(b) - mib(a);
            format!("{:.1} -> {:.1} MiB, {delta:+.1} MiB ({:+.1}%)", mib(a), mib(b), 100.0 * delta / mib(a))
        };
        Some((delta(a.rss_kib, b.rss_kib), delta(a.hwm_kib, b.hwm_kib), b.rss_kib as f64 - a.rss_kib as f64))
    };
    let (Some(first), Some(last)) = (at(10_000), at(messages.min(100_000))) else {
        println!("verdict: fewer than 10,000 messages; nothing to compare");
        return;
    };
    let Some((rss, peak, _)) = growth(first, last) else {
        println!("verdict: memory unavailable on this system");
        return;
    };
    println!("verdict: from {} to {} handled, RSS {rss}; peak {peak}", first.handled, last.handled);
    if let (Some(first), Some(last)) = (at(50_000), at(messages)) {
        if let Some((rss, _, kib)) = growth(first, last).filter(|_| last.handled > first.handled) {
            let per_message = kib * 1024.0 / (last.handled - first.handled) as f64;
            println!(
                "after warm-up: from {} to {} handled, RSS {rss}: {per_message:+.1} bytes per message",
                first.handled, last.handled
            );
        }
    }
}
