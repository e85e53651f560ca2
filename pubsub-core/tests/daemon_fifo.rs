//! The daemon on a FIFO queue: the messages of a group that one receive brings run one after
//! another in receive order, other groups and messages without a group in parallel; those
//! behind a failure, or waiting at a shutdown, go back to the queue unhandled. A scripted
//! subscriber hands out the batches and records every delete and visibility change.

mod support;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::backoff::BackoffPolicy;
use pubsub_core::daemon::{Daemon, DaemonReport};
use pubsub_core::transport::{
    BoxFuture, EntryError, ReceivedMessage, Subscriber, TransportError, VisibilityChange,
};
use pubsub_core::{
    encode, handler, DaemonBuilder, HandlerError, MessageContext, OpaqueData, PubSubMessage, Verdict,
};
use serde::{Deserialize, Serialize};
use support::{Format, Logs};
use tokio::time::Instant;
use validator::Validate;

/// What a handler does with a step: take `ms`, then succeed, fail or skip.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.fifo_step"]
struct Step {
    ms: u64,
    then: Then,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, schemars::JsonSchema)]
enum Then {
    Succeed,
    Fail,
    Skip,
}

/// Handler calls, by message id, shared with the test.
#[derive(Default)]
struct Calls {
    /// (message id, started, finished) of each finished call, in order of finishing.
    done: Mutex<Vec<(String, Instant, Instant)>>,
    started: Mutex<Vec<(String, Instant)>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl Calls {
    fn started_ids(&self) -> Vec<String> {
        self.started.lock().unwrap().iter().map(|(id, _)| id.clone()).collect()
    }

    fn started_at(&self, id: &str) -> Instant {
        self.started
            .lock()
            .unwrap()
            .iter()
            .find(|(i, _)| i == id)
            .unwrap_or_else(|| panic!("{id} never started"))
            .1
    }

    fn finished_at(&self, id: &str) -> Instant {
        self.done
            .lock()
            .unwrap()
            .iter()
            .find(|(i, ..)| i == id)
            .unwrap_or_else(|| panic!("{id} never finished"))
            .2
    }

    fn was_started(&self, id: &str) -> bool {
        self.started.lock().unwrap().iter().any(|(i, _)| i == id)
    }
}

#[handler]
async fn fifo_step(step: Step, context: &MessageContext, calls: &Arc<Calls>) -> Result<(), HandlerError> {
    let id = context.message_id().to_owned();
    let started = Instant::now();
    calls.started.lock().unwrap().push((id.clone(), started));
    let running = calls.running.fetch_add(1, Ordering::SeqCst) + 1;
    calls.max_running.fetch_max(running, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(step.ms)).await;
    calls.running.fetch_sub(1, Ordering::SeqCst);
    calls.done.lock().unwrap().push((id, started, Instant::now()));
    match step.then {
        Then::Succeed => Ok(()),
        Then::Fail => Err(HandlerError::failed("the step failed")),
        Then::Skip => Err(HandlerError::skip("nothing to do")),
    }
}

/// A delete or visibility change the daemon made, by message id (receipts are `r-<id>`).
#[derive(Debug, Clone, PartialEq)]
enum Settled {
    Deleted(String),
    Visible(String, Duration),
}

/// Hands out scripted batches (cut to what the daemon asks for), then nothing; records every
/// receive size, delete and visibility change.
struct Scripted {
    batches: Mutex<VecDeque<Vec<ReceivedMessage>>>,
    asked: Mutex<Vec<usize>>,
    settled: Mutex<Vec<(Settled, Instant)>>,
    visibility_timeout: Duration,
}

impl Scripted {
    fn new(batches: Vec<Vec<ReceivedMessage>>) -> Arc<Scripted> {
        Arc::new(Scripted {
            batches: Mutex::new(batches.into()),
            asked: Mutex::default(),
            settled: Mutex::default(),
            visibility_timeout: Duration::from_secs(30),
        })
    }

    fn with_visibility_timeout(batches: Vec<Vec<ReceivedMessage>>, timeout: Duration) -> Arc<Scripted> {
        let mut scripted = Arc::into_inner(Scripted::new(batches)).unwrap();
        scripted.visibility_timeout = timeout;
        Arc::new(scripted)
    }

    fn settled(&self) -> Vec<Settled> {
        self.settled.lock().unwrap().iter().map(|(settled, _)| settled.clone()).collect()
    }

    /// The visibility changes of message `id`, with when they were made.
    fn visibility_of(&self, id: &str) -> Vec<(Duration, Instant)> {
        self.settled
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(settled, at)| match settled {
                Settled::Visible(of, timeout) if of == id => Some((*timeout, *at)),
                _ => None,
            })
            .collect()
    }

    fn is_deleted(&self, id: &str) -> bool {
        self.settled().contains(&Settled::Deleted(id.to_owned()))
    }
}

fn id_of(receipt: &str) -> String {
    receipt.strip_prefix("r-").unwrap_or(receipt).to_owned()
}

impl Subscriber for Scripted {
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, TransportError>> {
        Box::pin(async move {
            self.asked.lock().unwrap().push(max);
            let batch = {
                let mut batches = self.batches.lock().unwrap();
                match batches.pop_front() {
                    Some(mut batch) if batch.len() > max => {
                        let rest = batch.split_off(max);
                        batches.push_front(rest);
                        Some(batch)
                    }
                    other => other,
                }
            };
            match batch {
                Some(batch) => Ok(batch),
                None => {
                    tokio::time::sleep(wait).await;
                    Ok(Vec::new())
                }
            }
        })
    }

    fn ack_batch<'a>(
        &'a self,
        receipts: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>> {
        let now = Instant::now();
        let results = receipts.iter().map(|_| Ok(())).collect();
        self.settled.lock().unwrap().extend(receipts.iter().map(|r| (Settled::Deleted(id_of(r)), now)));
        Box::pin(async move { Ok(results) })
    }

    fn change_visibility_batch<'a>(
        &'a self,
        changes: &'a [VisibilityChange],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>> {
        let now = Instant::now();
        let results = changes.iter().map(|_| Ok(())).collect();
        self.settled
            .lock()
            .unwrap()
            .extend(changes.iter().map(|c| (Settled::Visible(id_of(&c.receipt_handle), c.timeout), now)));
        Box::pin(async move { Ok(results) })
    }

    fn visibility_timeout(&self) -> Duration {
        self.visibility_timeout
    }
}

/// Message `id` of FIFO group `group` (none: a standard queue's message).
fn message(id: &str, group: Option<&str>, ms: u64, then: Then) -> ReceivedMessage {
    let body = encode(&Step { ms, then }, &OpaqueData::new()).unwrap();
    let mut message = ReceivedMessage::new(id, format!("r-{id}"), body);
    message.group_id = group.map(str::to_owned);
    message
}

/// A message of group `group` that takes `ms` and succeeds; its id is `<group><n>`.
fn ok(id: &str, ms: u64) -> ReceivedMessage {
    message(id, Some(&id[..1]), ms, Then::Succeed)
}

fn daemon(subscriber: &Arc<Scripted>, calls: &Arc<Calls>, concurrency: usize) -> Daemon<Scripted> {
    DaemonBuilder::new("fifo")
        .handler::<fifo_step>()
        .collaborator(calls.clone())
        .concurrency(concurrency)
        .wait_time(Duration::from_secs(1))
        .backoff(BackoffPolicy::Fixed(Duration::from_secs(5)))
        .build_shared(subscriber.clone())
        .unwrap()
}

async fn drain(subscriber: &Arc<Scripted>, calls: &Arc<Calls>, concurrency: usize) -> DaemonReport {
    daemon(subscriber, calls, concurrency).run_until_idle().await
}

#[tokio::test(start_paused = true)]
async fn each_group_runs_in_receive_order_while_groups_overlap() {
    let batch = vec![ok("a1", 100), ok("b1", 300), ok("a2", 50), ok("c1", 100), ok("b2", 100), ok("a3", 100)];
    let subscriber = Scripted::new(vec![batch]);
    let calls = Arc::new(Calls::default());
    let report = drain(&subscriber, &calls, 8).await;

    assert_eq!(report.count(Verdict::Succeeded), 6, "{report}");
    for (earlier, later) in [("a1", "a2"), ("a2", "a3"), ("b1", "b2")] {
        assert!(
            calls.started_at(later) >= calls.finished_at(earlier),
            "{later} started before {earlier} finished"
        );
    }
    let order: Vec<_> = calls.started_ids().into_iter().filter(|id| id.starts_with('a')).collect();
    assert_eq!(order, ["a1", "a2", "a3"]);
    // The heads of the three groups start together, and a's chain runs alongside b1.
    let t0 = calls.started_at("a1");
    assert_eq!((calls.started_at("b1"), calls.started_at("c1")), (t0, t0));
    assert!(calls.finished_at("a3") < calls.finished_at("b1"), "a's chain ran while b1 did");
    assert_eq!(calls.max_running.load(Ordering::SeqCst), 3);
    for id in ["a1", "a2", "a3", "b1", "b2", "c1"] {
        assert!(subscriber.is_deleted(id), "{id}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_releases_the_rest_of_its_group_unhandled_while_other_groups_go_on() {
    let (logs, _capturing) = Logs::capture(Format::Text);
    let batch = vec![
        ok("a1", 10),
        message("b1", Some("b"), 10, Then::Skip),
        message("a2", Some("a"), 10, Then::Fail),
        ok("b2", 10),
        ok("a3", 10),
        ok("c1", 10),
        ok("a4", 10),
    ];
    let subscriber = Scripted::new(vec![batch]);
    let calls = Arc::new(Calls::default());
    let report = drain(&subscriber, &calls, 10).await;

    assert!(!calls.was_started("a3") && !calls.was_started("a4"), "{:?}", calls.started_ids());
    assert_eq!(report.released_behind_failure, 2, "{report:?}");
    assert_eq!(report.released, 0);
    assert_eq!(report.count(Verdict::Failed), 1);
    assert_eq!(report.count(Verdict::Skipped), 1, "a skip is deleted and does not stop its group");
    assert_eq!(report.count(Verdict::Succeeded), 3, "a1, b2, c1");
    // The failed one waits out its backoff; the ones behind it are visible again at once.
    assert_eq!(
        subscriber.visibility_of("a2").iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [Duration::from_secs(5)]
    );
    for id in ["a3", "a4"] {
        assert_eq!(
            subscriber.visibility_of(id).iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [Duration::ZERO],
            "{id}"
        );
        assert!(!subscriber.is_deleted(id));
    }
    for id in ["a1", "b1", "b2", "c1"] {
        assert!(subscriber.is_deleted(id), "{id}");
    }
    let released: Vec<_> = logs
        .info()
        .into_iter()
        .filter(|line| {
            line.contains("released unhandled")
                && line.contains("an earlier message of its FIFO group failed")
        })
        .collect();
    assert_eq!(released.len(), 2, "{released:#?}");
    assert!(released[0].contains("message_id=a3") && released[1].contains("message_id=a4"), "{released:#?}");
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_keeps_a_message_waiting_behind_a_slow_one_invisible() {
    let subscriber =
        Scripted::with_visibility_timeout(vec![vec![ok("a1", 9_000), ok("a2", 10)]], Duration::from_secs(2));
    let calls = Arc::new(Calls::default());
    let report = drain(&subscriber, &calls, 4).await;

    assert_eq!(report.count(Verdict::Succeeded), 2);
    let a2_started = calls.started_at("a2");
    let extended_while_waiting: Vec<_> =
        subscriber.visibility_of("a2").into_iter().filter(|(_, at)| *at < a2_started).collect();
    // 9 s of waiting with a 2 s visibility timeout: extended before each ran out.
    assert!(extended_while_waiting.len() >= 4, "{extended_while_waiting:?}");
    let received = calls.started_at("a1");
    let mut visible_until = received + Duration::from_secs(2);
    for (timeout, at) in &extended_while_waiting {
        assert!(*at < visible_until, "extended at {:?}, after it became visible", *at - received);
        visible_until = *at + *timeout;
    }
    assert!(visible_until > a2_started);
    assert!(subscriber.is_deleted("a2"));
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_mid_chain_lets_the_running_one_finish_and_releases_the_rest() {
    let batch = vec![ok("a1", 10_000), ok("a2", 10), ok("a3", 10), ok("b1", 10_000)];
    let subscriber = Scripted::new(vec![batch]);
    let calls = Arc::new(Calls::default());
    let started = Instant::now();
    let report = daemon(&subscriber, &calls, 4).run(tokio::time::sleep(Duration::from_secs(1))).await;

    assert_eq!(calls.started_ids(), ["a1", "b1"]);
    assert_eq!(report.count(Verdict::Succeeded), 2, "the running ones finish");
    assert_eq!((report.released, report.abandoned, report.unsettled), (2, 0, 0), "{report:?}");
    assert_eq!(report.released_behind_failure, 0);
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "the drain waits for a1 only: {:?}",
        started.elapsed()
    );
    // Nothing lost: each message deleted or visible again at once.
    assert!(subscriber.is_deleted("a1") && subscriber.is_deleted("b1"));
    for id in ["a2", "a3"] {
        assert_eq!(
            subscriber.visibility_of(id).iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [Duration::ZERO],
            "{id}"
        );
        assert!(!subscriber.is_deleted(id));
    }
}

#[tokio::test(start_paused = true)]
async fn messages_without_a_group_run_in_parallel() {
    let mut batch: Vec<_> = (0..6).map(|i| message(&format!("m{i}"), None, 100, Then::Succeed)).collect();
    batch[1] = message("m1", None, 100, Then::Fail);
    let subscriber = Scripted::new(vec![batch]);
    let calls = Arc::new(Calls::default());
    let report = drain(&subscriber, &calls, 6).await;

    assert_eq!(calls.max_running.load(Ordering::SeqCst), 6);
    let t0 = calls.started_at("m0");
    assert!((1..6).all(|i| calls.started_at(&format!("m{i}")) == t0));
    assert_eq!((report.count(Verdict::Succeeded), report.count(Verdict::Failed)), (5, 1));
    assert_eq!(report.released_behind_failure, 0, "a failure without a group holds nothing back");
}

#[tokio::test(start_paused = true)]
async fn messages_waiting_in_a_chain_hold_their_permits() {
    let first = vec![ok("a1", 100), ok("a2", 100), ok("a3", 100), ok("a4", 100)];
    let subscriber = Scripted::new(vec![first, vec![ok("b1", 10)]]);
    let calls = Arc::new(Calls::default());
    let report = drain(&subscriber, &calls, 4).await;

    assert_eq!(report.count(Verdict::Succeeded), 5);
    // Four in flight (one running, three waiting) fill the concurrency of four: the next
    // receive comes when a1 is done, and asks for the one free slot.
    assert_eq!(subscriber.asked.lock().unwrap()[..2], [4, 1]);
    assert!(calls.started_at("b1") >= calls.finished_at("a1"));
    assert!(calls.started_at("b1") < calls.finished_at("a2"), "b1 runs beside the chain");
}
