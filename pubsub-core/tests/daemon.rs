//! The daemon on the embedded broker: per-message faults, redrive, heartbeat, graceful
//! shutdown, retries of failed requests, concurrency and batching. Each test declares the
//! handler that does what it needs and registers it explicitly, so the daemon runs that one
//! and no other handler of this binary.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::memory::{FilterPolicy, Operation, QueueOptions, Redrive, SubscriptionOptions};
use pubsub_core::transport::TransportError;
use pubsub_core::{
    backoff::BackoffPolicy, handler, DaemonBuilder, HandlerError, MemoryBroker, MessageContext, Producer,
    PubSubMessage, TopicMap, Verdict,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.job"]
struct Job {
    #[validate(range(min = 0))]
    id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.job_done"]
struct JobDone {
    id: i64,
}

/// What the handlers saw, shared with the test.
#[derive(Default)]
struct Seen {
    calls: Mutex<HashMap<i64, usize>>,
    /// When each call started, in order.
    started_at: Mutex<Vec<(i64, tokio::time::Instant)>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    started: Notify,
    release: Notify,
}

/// A handler call under way; it stops counting as running when dropped.
struct Running<'a> {
    seen: &'a Seen,
    /// 1 on the first call for this job, 2 on the second, ...
    call: usize,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.seen.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Seen {
    /// Records the start of a call for job `id`; every handler of this file begins with it.
    fn enter(&self, id: i64) -> Running<'_> {
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let call = calls.entry(id).or_default();
            *call += 1;
            *call
        };
        self.started_at.lock().unwrap().push((id, tokio::time::Instant::now()));
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(running, Ordering::SeqCst);
        self.started.notify_waiters();
        Running { seen: self, call }
    }

    fn calls(&self, id: i64) -> usize {
        self.calls.lock().unwrap().get(&id).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }
}

/// Succeeds at once; for the tests about the daemon rather than the handler.
#[handler]
async fn succeeds(job: Job, seen: &Arc<Seen>) {
    let _running = seen.enter(job.id);
}

struct Setup {
    broker: MemoryBroker,
    topic: String,
    producer: Producer,
    seen: Arc<Seen>,
}

fn setup(options: QueueOptions) -> Setup {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("jobs");
    broker.create_queue("jobs", options);
    broker.subscribe(&topic, "jobs", SubscriptionOptions::default()).unwrap();
    broker.create_queue("done", QueueOptions::default());
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    Setup { broker, topic, producer, seen: Arc::new(Seen::default()) }
}

impl Setup {
    /// A daemon on the jobs queue that runs the handler `H` and only it.
    fn daemon<H: pubsub_core::handlers::HandlerFn>(&self) -> DaemonBuilder {
        DaemonBuilder::new("jobs")
            .handler::<H>()
            .collaborator(self.seen.clone())
            .producer(self.producer.clone())
            .wait_time(Duration::from_millis(50))
            .backoff(BackoffPolicy::Fixed(Duration::ZERO))
    }

    /// Runs `daemon` on the jobs queue until it is idle.
    async fn drain(&self, daemon: DaemonBuilder) -> pubsub_core::daemon::DaemonReport {
        daemon.build(self.broker.subscriber("jobs").unwrap()).unwrap().run_until_idle().await
    }

    /// Subscribes the `done` queue to the `JobDone` messages handlers publish (raw delivery).
    fn collect_done(&self) {
        let only_done = FilterPolicy::media_types([JobDone::MEDIA_TYPE]);
        self.broker
            .subscribe(
                &self.topic,
                "done",
                SubscriptionOptions { raw_delivery: true, filter: Some(only_done) },
            )
            .unwrap();
    }

    async fn publish(&self, ids: impl IntoIterator<Item = i64>) {
        let jobs: Vec<Job> = ids.into_iter().map(|id| Job { id }).collect();
        self.producer.produce_batch(&jobs).await.unwrap();
    }
}

/// The handler workers, pollers, settler and heartbeat all end with the run: a daemon leaves
/// no task behind, whatever its concurrency.
#[tokio::test]
async fn a_finished_run_leaves_no_task_behind() {
    let s = setup(QueueOptions::default());
    s.publish(0..30).await;
    let tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let before = tasks();
    let report = s.drain(s.daemon::<succeeds>().concurrency(50)).await;
    assert_eq!(report.count(Verdict::Succeeded), 30);
    // The ends of the last tasks may take a turn of the scheduler or two.
    for _ in 0..100 {
        if tasks() == before {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(tasks(), before, "tasks left running after the daemon stopped");
}

#[tokio::test]
async fn a_batch_mixing_good_and_bad_messages_handles_each_on_its_own() {
    let s = setup(QueueOptions::default());
    s.publish([1, 2]).await;
    for bad in [
        "not json at all",
        r#"{"mediaType": "application/vnd.acme.pubsub.job", "id": -1}"#,
        r#"{"mediaType": "application/vnd.acme.pubsub.job", "id": "three"}"#,
        r#"{"no": "media type"}"#,
        r#"{"mediaType": "application/vnd.acme.pubsub.unknown"}"#,
    ] {
        s.broker.send("jobs", bad).await.unwrap();
    }
    s.publish([3]).await;
    let report =
        s.drain(s.daemon::<succeeds>().backoff(BackoffPolicy::Fixed(Duration::from_secs(600)))).await;

    assert_eq!(report.count(Verdict::Succeeded), 3);
    assert_eq!(report.count(Verdict::Failed), 4, "{report}");
    assert_eq!(report.count(Verdict::Ignored), 1);
    assert_eq!((s.seen.calls(1), s.seen.calls(2), s.seen.calls(3)), (1, 1, 1));
    // Deleted: the successes and the ignored one. Kept for a retry: the four failures.
    let stats = s.broker.queue_stats("jobs");
    assert_eq!((stats.total, stats.in_flight), (4, 4), "{stats:?}");
}

#[tokio::test]
async fn a_poison_message_reaches_the_dead_letter_queue_at_max_receive_count() {
    /// Job 1 is poison to it; every other job succeeds.
    #[handler]
    async fn cannot_do_job_1(job: Job, seen: &Arc<Seen>) -> Result<(), HandlerError> {
        let _running = seen.enter(job.id);
        match job.id {
            1 => Err(HandlerError::failed("job 1 always fails")),
            _ => Ok(()),
        }
    }

    let s = setup(QueueOptions { redrive: Some(Redrive::new("jobs-dlq", 3)), ..QueueOptions::default() });
    s.publish([1, 2]).await;
    let report = s.drain(s.daemon::<cannot_do_job_1>()).await;
    assert_eq!(s.seen.calls(1), 3, "handled once per receive, up to maxReceiveCount");
    assert_eq!(s.seen.calls(2), 1);
    assert_eq!(report.count(Verdict::Failed), 3);
    assert_eq!(s.broker.queue_stats("jobs").total, 0);
    let dead = s.broker.messages("jobs-dlq");
    assert_eq!(dead.len(), 1);
    assert!(dead[0].contains(r#"\"id\":1"#), "{}", dead[0]);
}

#[tokio::test]
async fn the_daemon_maximum_of_attempts_skips_instead() {
    #[handler]
    async fn always_fails(job: Job, seen: &Arc<Seen>) -> Result<(), HandlerError> {
        let _running = seen.enter(job.id);
        Err(HandlerError::failed("always fails"))
    }

    let s = setup(QueueOptions { redrive: Some(Redrive::new("jobs-dlq", 10)), ..QueueOptions::default() });
    s.publish([1]).await;
    let report = s.drain(s.daemon::<always_fails>().max_attempts(2)).await;
    assert_eq!(s.seen.calls(1), 2);
    assert_eq!(report.count(Verdict::Skipped), 1, "{report}");
    assert!(s.broker.messages("jobs-dlq").is_empty(), "skipped messages are deleted, not dead-lettered");
    assert_eq!(s.broker.queue_stats("jobs").total, 0);
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_keeps_a_slow_message_invisible() {
    /// Takes 9 s on its first call (4.5 visibility timeouts).
    #[handler]
    async fn slow_the_first_time(job: Job, seen: &Arc<Seen>) {
        let running = seen.enter(job.id);
        if running.call == 1 {
            tokio::time::sleep(Duration::from_secs(9)).await;
        }
    }

    let s = setup(QueueOptions { visibility_timeout: Duration::from_secs(2), ..QueueOptions::default() });
    s.publish([1]).await;
    let report = s.drain(s.daemon::<slow_the_first_time>().concurrency(4)).await;
    assert_eq!(s.seen.calls(1), 1, "never redelivered while its handler ran for 4.5 visibility timeouts");
    assert_eq!(report.count(Verdict::Succeeded), 1);
    assert_eq!(s.broker.queue_stats("jobs").total, 0);
    assert!(s.broker.request_counts().change_visibility_batch >= 4, "{:?}", s.broker.request_counts());
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_stops_at_its_maximum() {
    /// Takes 10 s on its first call, returns at once after.
    #[handler]
    async fn hangs_the_first_time(job: Job, seen: &Arc<Seen>) {
        let running = seen.enter(job.id);
        if running.call == 1 {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }

    let s = setup(QueueOptions { visibility_timeout: Duration::from_secs(2), ..QueueOptions::default() });
    s.publish([1]).await;
    let report = s
        .drain(s.daemon::<hangs_the_first_time>().concurrency(4).heartbeat_max(Duration::from_secs(4)))
        .await;
    assert_eq!(s.seen.calls(1), 2, "once the heartbeat gives up the message is handled elsewhere");
    let starts = s.seen.started_at.lock().unwrap().clone();
    let again = starts[1].1 - starts[0].1;
    assert!(
        again >= Duration::from_secs(4) && again < Duration::from_millis(4500),
        "invisible for the heartbeat maximum of 4 s, not less, nor a whole timeout more: {again:?}"
    );
    assert_eq!(report.count(Verdict::Succeeded), 2);
    // The second copy deleted it; the first one's delete came with a stale receipt.
    assert_eq!(s.broker.queue_stats("jobs").total, 0);
}

/// Takes 100 ms on its first call.
#[handler]
async fn takes_100_ms(job: Job, seen: &Arc<Seen>) {
    let running = seen.enter(job.id);
    if running.call == 1 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn shutdown_with_messages_in_flight_loses_none_and_handles_none_twice() {
    let s = setup(QueueOptions::default());
    let total = 60;
    s.publish(0..total).await;

    // Stop once some handlers are running.
    let seen = s.seen.clone();
    let stop = async move {
        while seen.total() < 5 {
            seen.started.notified().await;
        }
    };
    let first = s
        .daemon::<takes_100_ms>()
        .concurrency(20)
        .build(s.broker.subscriber("jobs").unwrap())
        .unwrap()
        .run(stop)
        .await;
    let handled_first = first.count(Verdict::Succeeded);
    assert!(handled_first >= 5 && handled_first < total as u64, "{first}");
    assert_eq!(first.abandoned, 0);
    assert_eq!(first.unsettled, 0);
    // Whatever was received but not started went back at once: all of the rest is visible.
    let stats = s.broker.queue_stats("jobs");
    assert_eq!(stats.in_flight, 0, "{stats:?}");
    assert_eq!(stats.total as u64, total as u64 - handled_first);

    let second = s.drain(s.daemon::<takes_100_ms>().concurrency(20)).await;
    assert_eq!(handled_first + second.count(Verdict::Succeeded), total as u64);
    for id in 0..total {
        assert_eq!(s.seen.calls(id), 1, "job {id}");
    }
    assert_eq!(s.broker.queue_stats("jobs").total, 0);
}

/// Waits until the test lets it go.
#[handler]
async fn waits_for_release(job: Job, seen: &Arc<Seen>) {
    let _running = seen.enter(job.id);
    seen.release.notified().await;
}

#[tokio::test]
async fn more_than_ten_handlers_run_at_once_when_asked() {
    let s = setup(QueueOptions::default());
    s.publish(0..32).await;
    let seen = s.seen.clone();
    let daemon =
        s.daemon::<waits_for_release>().concurrency(32).build(s.broker.subscriber("jobs").unwrap()).unwrap();
    let run = tokio::spawn(daemon.run_until_idle());
    tokio::time::timeout(Duration::from_secs(10), async {
        while seen.running.load(Ordering::SeqCst) < 32 {
            seen.started.notified().await;
        }
    })
    .await
    .expect("32 handlers running together");
    seen.release.notify_waiters();
    let report = run.await.unwrap();
    assert_eq!(report.count(Verdict::Succeeded), 32);
    assert_eq!(s.seen.max_running.load(Ordering::SeqCst), 32);
}

#[tokio::test]
async fn concurrency_is_bounded() {
    #[handler]
    async fn takes_20_ms(job: Job, seen: &Arc<Seen>) {
        let _running = seen.enter(job.id);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let s = setup(QueueOptions::default());
    s.publish(0..40).await;
    let report = s.drain(s.daemon::<takes_20_ms>().concurrency(3)).await;
    assert_eq!(report.count(Verdict::Succeeded), 40);
    let max_running = s.seen.max_running.load(Ordering::SeqCst);
    assert!((1..=3).contains(&max_running), "{max_running} handlers at once");
}

#[tokio::test]
async fn deletes_are_batched() {
    let s = setup(QueueOptions::default());
    s.publish(0..100).await;
    s.broker.reset_request_counts();
    let report = s.drain(s.daemon::<succeeds>().concurrency(20)).await;
    assert_eq!(report.count(Verdict::Succeeded), 100);
    let counts = s.broker.request_counts();
    // With request latency, deletes still go ten at a time (they once went one by one).
    assert!(counts.ack_batch <= 12, "100 deletes in {} requests", counts.ack_batch);
    assert!(counts.receive <= 25, "100 messages in {} receives", counts.receive);
}

// Paused time with an hour of visibility: a delete that is never retried shows as a second
// handling (after the clock jumps an hour), deterministically.
#[tokio::test(start_paused = true)]
async fn failed_requests_are_retried_and_nothing_is_lost() {
    let s = setup(QueueOptions { visibility_timeout: Duration::from_secs(3600), ..QueueOptions::default() });
    s.publish(0..20).await;
    s.broker.fail_next_request(Operation::Receive, TransportError::Unavailable("connection reset".into()));
    s.broker.fail_next_request(Operation::AckBatch, TransportError::Unavailable("connection reset".into()));
    s.broker.fail_entries(Operation::AckBatch, [0, 3]);
    let report = s.drain(s.daemon::<succeeds>()).await;
    assert_eq!(report.count(Verdict::Succeeded), 20);
    assert_eq!(report.unsettled, 0);
    assert_eq!(s.broker.queue_stats("jobs").total, 0, "every delete went through in the end");
    for id in 0..20 {
        assert_eq!(s.seen.calls(id), 1);
    }
}

#[tokio::test]
async fn published_messages_leave_only_after_success_and_a_failed_send_nacks() {
    #[handler]
    async fn reports_done(job: Job, context: &MessageContext, seen: &Arc<Seen>) -> Result<(), HandlerError> {
        let _running = seen.enter(job.id);
        context.publish(&JobDone { id: job.id })?;
        Ok(())
    }

    let s = setup(QueueOptions::default());
    s.collect_done();
    s.publish([1]).await;
    s.broker.fail_next_request(Operation::PublishBatch, TransportError::Unavailable("SNS is down".into()));
    let report = s.drain(s.daemon::<reports_done>()).await;
    // First attempt: the handler succeeded but its message could not be sent: FAILED, kept.
    // Second attempt (backoff 0): sent, then deleted.
    assert_eq!(report.count(Verdict::Failed), 1, "{report}");
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
    assert_eq!(s.seen.calls(1), 2);
    let done = s.broker.messages("done");
    assert_eq!(done.len(), 1);
    let done = pubsub_core::decode::<JobDone>(&done[0]).unwrap();
    assert_eq!(done.message.id, 1);
    assert_eq!(done.opaque_data.ttl(), Some(31));
}

#[tokio::test]
async fn made_up_media_types_cannot_grow_the_report_without_bound() {
    let s = setup(QueueOptions::default());
    for n in 0..300 {
        s.broker
            .send("jobs", format!(r#"{{"mediaType": "application/vnd.acme.pubsub.junk{n}"}}"#))
            .await
            .unwrap();
    }
    s.publish([1]).await;
    let report = s.drain(s.daemon::<succeeds>()).await;
    assert_eq!(report.count(Verdict::Ignored), 300);
    assert_eq!(report.count(Verdict::Succeeded), 1, "a handled type always has its row");
    assert!(report.results.len() <= 258, "{} rows", report.results.len());
    let other = &report.results[pubsub_core::daemon::OTHER_MEDIA_TYPES];
    assert!(other[&Verdict::Ignored] >= 300 - 256, "{other:?}");
}

#[tokio::test(start_paused = true)]
async fn a_handler_past_the_drain_timeout_is_abandoned_and_its_message_comes_back() {
    /// Job 1 waits until the test lets it go; every other job succeeds at once.
    #[handler]
    async fn job_1_waits(job: Job, seen: &Arc<Seen>) {
        let _running = seen.enter(job.id);
        if job.id == 1 {
            seen.release.notified().await;
        }
    }

    let s = setup(QueueOptions { visibility_timeout: Duration::from_secs(30), ..QueueOptions::default() });
    s.publish([1, 2]).await;
    let seen = s.seen.clone();
    let stop = async move {
        while seen.calls(1) == 0 || seen.calls(2) == 0 {
            seen.started.notified().await;
        }
    };
    let stopped_at = tokio::time::Instant::now();
    let report = s
        .daemon::<job_1_waits>()
        .drain_timeout(Duration::from_secs(2))
        .build(s.broker.subscriber("jobs").unwrap())
        .unwrap()
        .run(stop)
        .await;
    let took = stopped_at.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(4), "stopped after {took:?}");
    assert_eq!(report.abandoned, 1, "{report}");
    assert_eq!(report.count(Verdict::Succeeded), 1, "the other one was acked: {report}");
    // Neither deleted nor released: it reappears after its visibility timeout, not at once.
    let stats = s.broker.queue_stats("jobs");
    assert_eq!((stats.total, stats.in_flight), (1, 1), "{stats:?}");

    tokio::time::sleep(Duration::from_secs(30)).await;
    // From now on every waiting handler is let go, the abandoned one (still alive in this
    // runtime) and the second copy alike.
    let release = {
        let seen = s.seen.clone();
        tokio::spawn(async move {
            loop {
                seen.release.notify_waiters();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let report = s.drain(s.daemon::<job_1_waits>()).await;
    release.abort();
    assert_eq!(report.count(Verdict::Succeeded), 1, "handled on its second receive: {report}");
    assert_eq!(s.seen.calls(1), 2);
    assert_eq!(s.broker.queue_stats("jobs").total, 0);
}

/// A subscriber whose receives that bring messages take a while to return them (as a poller
/// preempted between the queue's answer and handing the messages out), while empty ones
/// return at once.
struct SlowToBring<S>(S);

impl<S: pubsub_core::transport::Subscriber> pubsub_core::transport::Subscriber for SlowToBring<S> {
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> pubsub_core::transport::BoxFuture<
        '_,
        Result<Vec<pubsub_core::transport::ReceivedMessage>, TransportError>,
    > {
        Box::pin(async move {
            let received = self.0.receive(max, wait).await?;
            if !received.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(received)
        })
    }

    fn ack_batch<'a>(
        &'a self,
        receipts: &'a [&'a str],
    ) -> pubsub_core::transport::BoxFuture<
        'a,
        Result<Vec<Result<(), pubsub_core::transport::EntryError>>, TransportError>,
    > {
        self.0.ack_batch(receipts)
    }

    fn change_visibility_batch<'a>(
        &'a self,
        changes: &'a [pubsub_core::transport::VisibilityChange],
    ) -> pubsub_core::transport::BoxFuture<
        'a,
        Result<Vec<Result<(), pubsub_core::transport::EntryError>>, TransportError>,
    > {
        self.0.change_visibility_batch(changes)
    }

    fn visibility_timeout(&self) -> Duration {
        self.0.visibility_timeout()
    }
}

/// A short poll (`wait_time` of zero) that finds nothing waits for a settle, or a moment,
/// before the next: while slow handlers run, the queue is not asked again and again (before,
/// thousands of empty receives a second, a core taken from the handlers). In real time: with
/// the clock paused, a busy poller would keep it from ever moving on.
#[tokio::test]
async fn short_polls_that_find_nothing_wait_while_handlers_run() {
    #[handler]
    async fn takes_300_ms(job: Job, seen: &Arc<Seen>) {
        let _running = seen.enter(job.id);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let s = setup(QueueOptions::default());
    s.publish(0..10).await;
    s.broker.reset_request_counts();
    let report =
        s.drain(s.daemon::<takes_300_ms>().concurrency(20).pollers(1).wait_time(Duration::ZERO)).await;
    assert_eq!(report.count(Verdict::Succeeded), 10, "{report}");
    let receives = s.broker.request_counts().receive;
    // The receive that brings the ten, an empty one each 20 ms pause of the 300 ms the
    // handlers take (fewer if the timer runs late), one when their deletes are done, and the
    // two that find the queue idle.
    assert!((5..=20).contains(&receives), "{receives} receives");
}

/// A message a handler sends back is received again as soon as its visibility change is done,
/// not after a pause: the settle wakes the poller.
#[tokio::test(start_paused = true)]
async fn a_short_poll_takes_a_nacked_message_again_as_its_settle_is_done() {
    #[handler]
    async fn fails_the_first_time(job: Job, seen: &Arc<Seen>) -> Result<(), HandlerError> {
        let running = seen.enter(job.id);
        match running.call {
            1 => Err(HandlerError::failed("first time")),
            _ => Ok(()),
        }
    }

    let s = setup(QueueOptions::default());
    s.publish([1]).await;
    let started = tokio::time::Instant::now();
    let report = s.drain(s.daemon::<fails_the_first_time>().wait_time(Duration::ZERO)).await;
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
    assert_eq!(report.count(Verdict::Failed), 1, "{report}");
    // The settle delay batches the nack and the delete; no 20 ms pause comes between them.
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(20), "{elapsed:?}");
}

/// Found by the pipeline bench under load: one poller's empty receives took the queue for idle
/// while another's receive was still bringing ten messages, which were then released instead
/// of handled.
#[tokio::test(start_paused = true)]
async fn a_batch_still_arriving_when_another_poller_finds_the_queue_idle_is_handled() {
    let s = setup(QueueOptions::default());
    s.publish(0..10).await;
    let daemon = s
        .daemon::<succeeds>()
        .concurrency(20)
        .pollers(2)
        .wait_time(Duration::ZERO)
        .build(SlowToBring(s.broker.subscriber("jobs").unwrap()))
        .unwrap();
    let report = daemon.run_until_idle().await;
    assert_eq!(report.released, 0, "{report:?}");
    assert_eq!(report.count(Verdict::Succeeded), 10, "{report}");
    assert_eq!(s.seen.total(), 10);
    assert!(s.broker.messages("jobs").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_handler_past_its_timeout_is_failed_its_publishes_dropped_and_its_batch_mates_unaffected() {
    #[handler]
    async fn hangs_on_job_1(
        job: Job,
        context: &MessageContext,
        seen: &Arc<Seen>,
    ) -> Result<(), HandlerError> {
        let _running = seen.enter(job.id);
        context.publish(&JobDone { id: job.id })?;
        if job.id == 1 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Ok(())
    }

    // The daemon's own time limit, and tower's timeout as a layer around the handler.
    type Limit = fn(DaemonBuilder) -> DaemonBuilder;
    let ways: [(Limit, &str); 2] = [
        (|d| d.handler_timeout_for::<hangs_on_job_1>(Duration::from_secs(2)), "handler timed out after 2s"),
        (
            |d| d.layer_for::<hangs_on_job_1>(tower::timeout::TimeoutLayer::new(Duration::from_secs(2))),
            "timed out in a timeout layer",
        ),
    ];
    for (limit, reason) in ways {
        let s = setup(QueueOptions::default());
        s.collect_done();
        s.publish(1..=5).await;
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let seen_reasons = reasons.clone();
        let started = tokio::time::Instant::now();
        let report = s
            .drain(limit(s.daemon::<hangs_on_job_1>()).max_attempts(1).on_outcome(move |m| {
                seen_reasons.lock().unwrap().push((m.outcome.verdict, m.outcome.reason.clone()))
            }))
            .await;
        // Job 1 timed out (FAILED), came back, and was SKIPPED past max_attempts; the others
        // succeeded.
        assert_eq!(report.count(Verdict::Succeeded), 4, "{report}");
        assert_eq!(report.count(Verdict::Failed), 1, "{report}");
        assert_eq!(report.count(Verdict::Skipped), 1, "{report}");
        let reasons = reasons.lock().unwrap();
        let failed = reasons.iter().find(|(verdict, _)| *verdict == Verdict::Failed).unwrap();
        assert!(failed.1.as_deref().unwrap().starts_with(reason), "{failed:?}");
        // Only the four that succeeded published: the timed-out handler's message was dropped.
        let done: Vec<i64> = s
            .broker
            .messages("done")
            .iter()
            .map(|body| pubsub_core::decode::<JobDone>(body).unwrap().message.id)
            .collect();
        assert_eq!(done.len(), 4, "{done:?}");
        assert!(!done.contains(&1), "{done:?}");
        // Neither the run nor its shutdown waited for the hour-long handler (nor the 30 s drain).
        assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }
}

#[tokio::test(start_paused = true)]
async fn the_daemon_wide_timeout_applies_and_the_test_kit_runs_the_same_limit() {
    #[handler]
    async fn sleeps_a_minute(job: Job) {
        let _ = job.id;
        tokio::time::sleep(Duration::from_secs(60)).await;
    }

    let run = pubsub_core::testing::HandlerTest::new()
        .handler::<sleeps_a_minute>()
        .timeout(Duration::from_secs(1))
        .run(&Job { id: 7 })
        .await;
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(run.outcome.reason.as_deref().unwrap().contains("timed out after 1s"));

    let s = setup(QueueOptions::default());
    s.publish([1]).await;
    let report =
        s.drain(s.daemon::<sleeps_a_minute>().handler_timeout(Duration::from_secs(1)).max_attempts(1)).await;
    assert_eq!(report.count(Verdict::Failed), 1, "{report}");
    assert_eq!(report.count(Verdict::Skipped), 1, "{report}");
    // Without a limit, the minute-long handler succeeds.
    s.publish([2]).await;
    let report = s.drain(s.daemon::<sleeps_a_minute>()).await;
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
}
