//! Daemons as real processes against the server (moto, started by scripts/test.sh):
//!
//! - SIGTERM with messages in flight, then a restart: the stopped daemon finishes what it
//!   started, flushes its acks, leaves nothing invisible behind and exits 0 within its drain
//!   timeout; across both runs every message is handled, and none twice.
//! - Three daemons on one queue: every message handled, none lost, duplicates counted.
//!
//! Each daemon is this test binary started again as a child process on the `#[ignore]`d
//! [`child_daemon`] entry point, so it links the same handler. Handlers write one line per
//! start and per finish to a journal file shared by all processes of a test (appends of one
//! short line are atomic), which the parent reads to count.
//!
//! Run alone, with figures: `./scripts/moto.sh run cargo test -p pubsub-aws --test
//! daemon_processes -- --nocapture`.

mod support;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use pubsub_aws::provision::{Provisioner, QueueSpec};
use pubsub_aws::SqsSubscriber;
use pubsub_core::{encode, handler, DaemonBuilder, HandlerError, MessageContext, OpaqueData, PubSubMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

/// What the child daemons are told, through their environment.
const QUEUE_VAR: &str = "PUBSUB_CHILD_QUEUE_URL";
const JOURNAL_VAR: &str = "PUBSUB_CHILD_JOURNAL";
const MODE_VAR: &str = "PUBSUB_CHILD_MODE";
/// A child's drain timeout: the parent checks that a stop takes less.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.work_item"]
struct WorkItem {
    n: u32,
    /// How long the handler works on it.
    work_ms: u64,
    /// On its first receive only: `"panic"` panics, `"nack"` asks for a retry at once.
    #[serde(default)]
    fault: Option<String>,
}

/// The journal file of one test, appended to by every daemon process.
struct Journal(PathBuf);

impl Journal {
    fn write(&self, line: String) {
        let mut file = OpenOptions::new().create(true).append(true).open(&self.0).expect("open journal");
        // One write of one short line: O_APPEND keeps lines of several processes whole.
        file.write_all(format!("{line}\n").as_bytes()).expect("write journal");
    }
}

#[handler]
async fn work_item(
    item: WorkItem,
    context: &MessageContext,
    journal: &Arc<Journal>,
) -> Result<(), HandlerError> {
    let pid = std::process::id();
    journal.write(format!("start {} {} {pid} {}", item.n, context.receive_count(), now_ms()));
    tokio::time::sleep(Duration::from_millis(item.work_ms)).await;
    if context.receive_count() == 1 {
        match item.fault.as_deref() {
            Some("panic") => {
                journal.write(format!("panic {} {pid}", item.n));
                panic!("work item {} panics on its first receive", item.n);
            }
            Some("nack") => {
                journal.write(format!("nack {} {pid}", item.n));
                return Err(HandlerError::retry_after(Duration::ZERO));
            }
            _ => {}
        }
    }
    journal.write(format!("done {} {pid} {}", item.n, now_ms()));
    Ok(())
}

/// Milliseconds since the Unix epoch: one clock for every process of a test.
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// The daemon process: reads the queue until SIGTERM (`MODE=signal`) or until idle
/// (`MODE=idle`), then prints its report as one `REPORT` line.
#[test]
#[ignore = "a daemon process, started by the other tests of this file"]
fn child_daemon() {
    let queue = std::env::var(QUEUE_VAR).expect("started by a test of this file, with a queue");
    let journal = Arc::new(Journal(std::env::var(JOURNAL_VAR).expect("a journal").into()));
    let until_idle = std::env::var(MODE_VAR).as_deref() == Ok("idle");
    let _ = pubsub_core::logging::Logging::new().debug(true).quiet(pubsub_aws::SDK_LOG_TARGETS).try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let config = support::sdk_config().await;
        let daemon = DaemonBuilder::new("worker")
            .handler::<work_item>()
            .collaborator(journal)
            .concurrency(10)
            .wait_time(Duration::from_secs(1))
            .drain_timeout(DRAIN_TIMEOUT)
            .backoff(pubsub_core::backoff::BackoffPolicy::Fixed(Duration::ZERO))
            .build(SqsSubscriber::new(&config, &queue).await.expect("the queue"))
            .expect("the handler set");
        let report = if until_idle { daemon.run_until_idle().await } else { daemon.run_until_signal().await };
        println!(
            "REPORT succeeded={} failed={} retried={} abandoned={} unsettled={} released={}",
            report.count(pubsub_core::Verdict::Succeeded),
            report.count(pubsub_core::Verdict::Failed),
            report.count(pubsub_core::Verdict::Retried),
            report.abandoned,
            report.unsettled,
            report.released,
        );
    });
}

/// One test's queue, journal and child processes.
struct World {
    sqs: aws_sdk_sqs::Client,
    queue: String,
    dir: PathBuf,
    journal: PathBuf,
}

impl World {
    async fn new(name: &str, visibility_timeout: Duration) -> Option<World> {
        support::require_emulator()?;
        let config = support::sdk_config().await;
        let spec = QueueSpec { visibility_timeout: Some(visibility_timeout), ..QueueSpec::default() };
        let queue = Provisioner::new(&config).queue(&support::unique_name(name), &spec).await.unwrap();
        let dir = std::env::temp_dir().join(support::unique_name(name));
        std::fs::create_dir_all(&dir).unwrap();
        let journal = dir.join("journal");
        Some(World { sqs: aws_sdk_sqs::Client::new(&config), queue, dir, journal })
    }

    /// Sends work items straight to the queue, ten a request.
    async fn send(&self, items: &[WorkItem]) {
        for chunk in items.chunks(10) {
            let entries = chunk.iter().map(|item| {
                let body = encode(item, &OpaqueData::new()).unwrap();
                SendMessageBatchRequestEntry::builder()
                    .id(item.n.to_string())
                    .message_body(body)
                    .build()
                    .unwrap()
            });
            let sent = self
                .sqs
                .send_message_batch()
                .queue_url(&self.queue)
                .set_entries(Some(entries.collect()))
                .send()
                .await
                .unwrap();
            assert!(sent.failed().is_empty(), "{:?}", sent.failed());
        }
    }

    /// Starts a daemon process; its output goes to files named after `label`.
    fn spawn(&self, label: &str, mode: &str) -> Daemon {
        let stdout = self.dir.join(format!("{label}.out"));
        let stderr = self.dir.join(format!("{label}.err"));
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["child_daemon", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(QUEUE_VAR, &self.queue)
            .env(JOURNAL_VAR, &self.journal)
            .env(MODE_VAR, mode)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start a daemon process");
        Daemon { child, stdout, stderr }
    }

    fn journal(&self) -> Vec<Entry> {
        std::fs::read_to_string(&self.journal).unwrap_or_default().lines().map(Entry::parse).collect()
    }

    /// Visible and in-flight messages, as the server counts them.
    async fn counts(&self) -> (u64, u64) {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attributes = attributes.attributes().unwrap();
        let count = |name| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
        (
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Daemon {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// A daemon's `REPORT` line.
#[derive(Debug, Default)]
struct Report(BTreeMap<String, u64>);

impl Report {
    fn get(&self, key: &str) -> u64 {
        self.0[key]
    }
}

impl Daemon {
    fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -TERM");
    }

    /// Waits for the process to exit, for at most `limit`, and reads its report.
    async fn finish(mut self, limit: Duration) -> (ExitStatus, Report) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the daemon did not exit within {limit:?}\n{}", self.output());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let stdout = std::fs::read_to_string(&self.stdout).unwrap();
        let Some(line) = stdout.lines().find_map(|line| line.split_once("REPORT ").map(|(_, report)| report))
        else {
            panic!("no report from the daemon (exit {status})\n{}", self.output());
        };
        let report = line
            .split(' ')
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.parse().unwrap()))
            .collect();
        (status, Report(report))
    }

    fn output(&self) -> String {
        let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();
        format!("stdout:\n{}\nstderr:\n{}", read(&self.stdout), read(&self.stderr))
    }
}

/// One line of the journal.
#[derive(Debug)]
enum Entry {
    Start { n: u32, receive_count: u32, pid: u32, at_ms: u64 },
    Done { n: u32, pid: u32 },
    Fault { n: u32 },
}

impl Entry {
    fn parse(line: &str) -> Entry {
        let fields: Vec<&str> = line.split(' ').collect();
        let number = |i: usize| fields[i].parse::<u64>().unwrap_or_else(|_| panic!("journal line {line:?}"));
        let small = |i: usize| number(i) as u32;
        match fields[0] {
            "start" => Entry::Start { n: small(1), receive_count: small(2), pid: small(3), at_ms: number(4) },
            "done" => Entry::Done { n: small(1), pid: small(2) },
            "panic" | "nack" => Entry::Fault { n: small(1) },
            _ => panic!("journal line {line:?}"),
        }
    }
}

/// Per work item: how many times its handler started, and how many times it finished.
fn tally(journal: &[Entry]) -> (BTreeMap<u32, u32>, BTreeMap<u32, u32>) {
    let (mut starts, mut dones) = (BTreeMap::new(), BTreeMap::new());
    for entry in journal {
        match entry {
            Entry::Start { n, .. } => *starts.entry(*n).or_default() += 1,
            Entry::Done { n, .. } => *dones.entry(*n).or_default() += 1,
            Entry::Fault { .. } => {}
        }
    }
    (starts, dones)
}

fn reports_text(reports: &[Report]) -> String {
    reports.iter().map(|r| format!("{:?}\n", r.0)).collect()
}

fn items(count: u32, work_ms: u64) -> Vec<WorkItem> {
    (0..count).map(|n| WorkItem { n, work_ms, fault: None }).collect()
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_messages_in_flight_then_a_restart_handles_each_once() {
    // A visibility timeout long enough that an ack the daemon forgot, or a message it kept
    // without handling, would still be invisible when it has exited: counted below.
    let Some(world) = World::new("sigterm", Duration::from_secs(60)).await else { return };
    let total = 120;
    world.send(&items(total, 300)).await;

    let first = world.spawn("first", "signal");
    wait_for("25 handlers to start", Duration::from_secs(60), || {
        world.journal().iter().filter(|e| matches!(e, Entry::Start { .. })).count() >= 25
    })
    .await;
    first.terminate();
    let signalled = Instant::now();
    let (status, report) = first.finish(DRAIN_TIMEOUT + Duration::from_secs(10)).await;
    let stop_time = signalled.elapsed();
    assert!(status.success(), "the daemon exits 0 on SIGTERM: {status}");
    assert!(stop_time < DRAIN_TIMEOUT, "it stopped within its drain timeout: {stop_time:?}");

    let (starts, dones) = tally(&world.journal());
    assert_eq!(
        starts.keys().collect::<Vec<_>>(),
        dones.keys().collect::<Vec<_>>(),
        "it finished what it started"
    );
    let handled_first = dones.len() as u64;
    assert!(handled_first < u64::from(total), "the stop came with work left: {handled_first}");
    assert_eq!(report.get("succeeded"), handled_first);
    assert_eq!((report.get("abandoned"), report.get("unsettled")), (0, 0), "{report:?}");
    // Every ack was flushed and every message received but not started was released: nothing
    // is left invisible, and exactly the unhandled messages are visible.
    let (visible, invisible) = world.counts().await;
    assert_eq!(invisible, 0, "messages left invisible after the stop");
    assert_eq!(visible, u64::from(total) - handled_first);

    let restarted = Instant::now();
    let (status, second) = world.spawn("second", "idle").finish(Duration::from_secs(120)).await;
    assert!(status.success(), "{status}");
    let (starts, dones) = tally(&world.journal());
    assert_eq!(dones.len() as u32, total, "every message handled across the stop and the restart");
    assert!(starts.values().chain(dones.values()).all(|&count| count == 1), "none twice: {starts:?}");
    assert_eq!(handled_first + second.get("succeeded"), u64::from(total));
    assert_eq!(world.counts().await, (0, 0));
    eprintln!(
        "figures: sigterm: {total} sent; first run handled {handled_first} (released {} received after \
         the stop), exited 0 in {stop_time:?} after SIGTERM; second run handled {} in {:?}; \
         duplicates 0; lost 0",
        report.get("released"),
        second.get("succeeded"),
        restarted.elapsed(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_on_one_queue_handle_every_message_once() {
    let Some(world) = World::new("three", Duration::from_secs(30)).await else { return };
    let total = 300;
    let mut sent = items(total, 20);
    // A few faults on the way, each the message's own: a panic and a nack on first receive.
    for n in [7, 77, 177] {
        sent[n].fault = Some("panic".into());
    }
    for n in [42, 142, 242] {
        sent[n].fault = Some("nack".into());
    }
    world.send(&sent).await;

    let started = Instant::now();
    let daemons: Vec<Daemon> = (0..3).map(|i| world.spawn(&format!("daemon-{i}"), "idle")).collect();
    let mut reports = Vec::new();
    for daemon in daemons {
        let (status, report) = daemon.finish(Duration::from_secs(180)).await;
        assert!(status.success(), "{status}");
        reports.push(report);
    }
    let elapsed = started.elapsed();

    let journal = world.journal();
    let (starts, dones) = tally(&journal);
    assert_eq!(dones.len() as u32, total, "every message handled: {}", reports_text(&reports));
    assert_eq!(world.counts().await, (0, 0), "and deleted");
    let faulty = [7, 42, 77, 142, 177, 242];
    let mut faults: Vec<u32> =
        journal.iter().filter_map(|e| if let Entry::Fault { n } = e { Some(*n) } else { None }).collect();
    faults.sort_unstable();
    faults.dedup();
    assert_eq!(faults, [7, 42, 77, 142, 177, 242], "each fault happened");
    for n in faulty {
        let retried =
            journal.iter().any(|e| matches!(e, Entry::Start { n: m, receive_count: 2.., .. } if *m == n));
        assert!(retried, "work item {n} was received again after its fault");
    }

    // Each message starts once, and a faulty one once more (its fault, then its success). Any
    // other start is a duplicate, and must be one the server made: the same message handed to
    // two receives at once (moto's ReceiveMessage checks and marks a message's visibility
    // without a lock, on a server that answers requests on many threads; SQS standard queues
    // also promise only at-least-once). Such copies start within moments of each other in
    // two processes, far inside the 30 s visibility timeout; a redelivery caused by the daemon
    // (a lost ack, an early release, a heartbeat gap) could not.
    let expected = |n: &u32| 1 + u32::from(faulty.contains(n));
    assert!(starts.iter().all(|(n, &count)| count >= expected(n)), "{starts:?}");
    let duplicates: u32 = starts.iter().map(|(n, &count)| count - expected(n)).sum();
    for (n, _) in starts.iter().filter(|(n, &count)| count > expected(n)) {
        let copies: Vec<(u32, u64)> = journal
            .iter()
            .filter_map(|e| match e {
                Entry::Start { n: m, pid, at_ms, .. } if m == n => Some((*pid, *at_ms)),
                _ => None,
            })
            .collect();
        let span = copies.iter().map(|c| c.1).max().unwrap() - copies.iter().map(|c| c.1).min().unwrap();
        let processes: std::collections::BTreeSet<u32> = copies.iter().map(|c| c.0).collect();
        assert!(
            span < 5_000 && processes.len() > 1,
            "work item {n} was handled again, and not by a concurrent delivery: {copies:?}"
        );
    }
    assert!(duplicates <= total / 50, "{duplicates} duplicates: more than a rare race");
    // Every start ended in exactly one result.
    let results: u64 =
        ["succeeded", "failed", "retried"].iter().flat_map(|key| reports.iter().map(|r| r.get(key))).sum();
    assert_eq!(results as usize, journal.iter().filter(|e| matches!(e, Entry::Start { .. })).count());
    assert!(reports.iter().map(|r| r.get("failed")).sum::<u64>() >= 3, "the panics");
    assert!(reports.iter().map(|r| r.get("retried")).sum::<u64>() >= 3, "the nacks");
    let succeeded: Vec<u64> = reports.iter().map(|r| r.get("succeeded")).collect();
    let pids: std::collections::BTreeSet<u32> = journal
        .iter()
        .filter_map(|e| match e {
            Entry::Done { pid, .. } | Entry::Start { pid, .. } => Some(*pid),
            Entry::Fault { .. } => None,
        })
        .collect();
    eprintln!(
        "figures: three daemons: {total} sent, {} handled (per daemon {succeeded:?}, {} processes \
         took work), {duplicates} duplicates (concurrent deliveries by the server), 0 lost, in {elapsed:?}",
        dones.len(),
        pids.len(),
    );
}
