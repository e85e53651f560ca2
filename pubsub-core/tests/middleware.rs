//! Layers around handlers, on the embedded broker: their order, tower's concurrency limit, load
//! shedding and rate limit (its timeout is tested with the daemon's own, in daemon.rs), what a layer's error or panic does to the
//! message, and the test kit running the same layers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::daemon::DaemonReport;
use pubsub_core::memory::{QueueOptions, SubscriptionOptions};
use pubsub_core::middleware::{
    BoxError, FinalRefusal, HandlerLayer, HandlerLayers, HandlerRequest, HandlerService,
};
use pubsub_core::outcome::Outcome;
use pubsub_core::testing::HandlerTest;
use pubsub_core::{
    backoff::BackoffPolicy, handler, DaemonBuilder, HandlerError, MemoryBroker, MessageContext, Producer,
    PubSubMessage, TopicMap, Verdict,
};
use serde::{Deserialize, Serialize};
use tower::layer::layer_fn;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use validator::Validate;

mod support;
use support::{Format, Logs};

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.job"]
struct Job {
    id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.chore"]
struct Chore {
    id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.job_done"]
struct JobDone {
    id: i64,
}

/// What happened, in order, shared by handlers, layers and the test.
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// Handler calls under way and the most seen at once, per handler.
#[derive(Default)]
struct Gauge {
    running: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    async fn hold(&self, time: Duration) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(time).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// A layer that writes `name>` on the way in and `<name saw VERDICT` on the way out, and then
/// lets `amend` change the outcome.
fn tag(name: &'static str, journal: &Journal, amend: fn(Outcome) -> Outcome) -> impl HandlerLayer {
    let journal = journal.clone();
    layer_fn(move |inner: HandlerService| {
        let journal = journal.clone();
        service_fn(move |request: HandlerRequest| {
            let (journal, inner) = (journal.clone(), inner.clone());
            async move {
                journal.push(format!("{name}>"));
                let outcome = inner.oneshot(request).await?;
                journal.push(format!("<{name} saw {}", outcome.verdict));
                Ok::<_, BoxError>(amend(outcome))
            }
        })
    })
}

fn unchanged(outcome: Outcome) -> Outcome {
    outcome
}

#[handler]
async fn records(job: Job, journal: &Journal) {
    journal.push(format!("handler {}", job.id));
}

#[handler]
async fn records_chores(chore: Chore, journal: &Journal) {
    journal.push(format!("chore handler {}", chore.id));
}

struct Setup {
    broker: MemoryBroker,
    producer: Producer,
    journal: Journal,
}

fn setup() -> Setup {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("work");
    broker.create_queue("work", QueueOptions::default());
    broker.subscribe(&topic, "work", SubscriptionOptions::default()).unwrap();
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    Setup { broker, producer, journal: Journal::default() }
}

impl Setup {
    fn daemon(&self) -> DaemonBuilder {
        DaemonBuilder::new("work")
            .collaborator(self.journal.clone())
            .producer(self.producer.clone())
            .wait_time(Duration::from_millis(50))
            .backoff(BackoffPolicy::Fixed(Duration::ZERO))
    }

    async fn drain(&self, daemon: DaemonBuilder) -> DaemonReport {
        daemon.build(self.broker.subscriber("work").unwrap()).unwrap().run_until_idle().await
    }

    async fn jobs(&self, ids: impl IntoIterator<Item = i64>) {
        let jobs: Vec<Job> = ids.into_iter().map(|id| Job { id }).collect();
        self.producer.produce_batch(&jobs).await.unwrap();
    }

    async fn chores(&self, ids: impl IntoIterator<Item = i64>) {
        let chores: Vec<Chore> = ids.into_iter().map(|id| Chore { id }).collect();
        self.producer.produce_batch(&chores).await.unwrap();
    }
}

/// Collects every outcome the daemon reports.
fn outcomes(daemon: DaemonBuilder) -> (DaemonBuilder, Arc<Mutex<Vec<Outcome>>>) {
    let all = Arc::new(Mutex::new(Vec::new()));
    let sink = all.clone();
    (daemon.on_outcome(move |m| sink.lock().unwrap().push(m.outcome.clone())), all)
}

#[tokio::test]
async fn layers_run_in_the_order_added_handler_layers_inside_daemon_layers() {
    let s = setup();
    let j = &s.journal;
    // D turns the handler's success into a skip: C, B and A must see the skip.
    let decline = |_: Outcome| Outcome::deleted(Verdict::Skipped, "declined by D");
    let layers = HandlerLayers::new()
        .layer(tag("A", j, unchanged))
        .layer_for::<records>(tag("C", j, unchanged))
        .layer(tag("B", j, unchanged))
        .layer_for::<records>(tag("D", j, decline));
    s.jobs([1]).await;
    let report = s.drain(s.daemon().handler::<records>().layers(layers.clone())).await;
    assert_eq!(report.count(Verdict::Skipped), 1, "{report}");
    let expected = [
        "A>",
        "B>",
        "C>",
        "D>",
        "handler 1",
        "<D saw SUCCEEDED",
        "<C saw SKIPPED",
        "<B saw SKIPPED",
        "<A saw SKIPPED",
    ];
    assert_eq!(s.journal.entries(), expected);
    assert!(s.broker.messages("work").is_empty(), "a skipped message is deleted");

    // Another handler gets the daemon's layers only.
    let s = setup();
    let j = &s.journal;
    let layers = HandlerLayers::new()
        .layer(tag("A", j, unchanged))
        .layer_for::<records>(tag("C", j, unchanged))
        .layer(tag("B", j, unchanged));
    s.chores([2]).await;
    let report = s.drain(s.daemon().handler::<records>().handler::<records_chores>().layers(layers)).await;
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
    assert_eq!(s.journal.entries(), ["A>", "B>", "chore handler 2", "<B saw SUCCEEDED", "<A saw SUCCEEDED"]);
}

#[tokio::test]
async fn the_test_kit_runs_the_handler_through_the_same_layers() {
    let journal = Journal::default();
    let decline = |_: Outcome| Outcome::deleted(Verdict::Skipped, "declined by D");
    let layers = HandlerLayers::new()
        .layer(tag("A", &journal, unchanged))
        .layer_for::<records>(tag("D", &journal, decline))
        .layer_for::<records_chores>(tag("not this handler's", &journal, unchanged));
    let run = HandlerTest::new()
        .handler::<records>()
        .collaborator(journal.clone())
        .layers(layers)
        .run(&Job { id: 3 })
        .await;
    assert_eq!(run.verdict(), Verdict::Skipped);
    assert_eq!(run.outcome.reason.as_deref(), Some("declined by D"));
    assert_eq!(journal.entries(), ["A>", "D>", "handler 3", "<D saw SUCCEEDED", "<A saw SKIPPED"]);
}

#[tokio::test(start_paused = true)]
async fn a_concurrency_limit_on_one_handler_bounds_it_alone() {
    #[derive(Default)]
    struct Gauges {
        limited: Gauge,
        free: Gauge,
    }

    #[handler]
    async fn limited(job: Job, gauges: &Arc<Gauges>) {
        let _ = job.id;
        gauges.limited.hold(Duration::from_millis(100)).await;
    }

    #[handler]
    async fn free(chore: Chore, gauges: &Arc<Gauges>) {
        let _ = chore.id;
        gauges.free.hold(Duration::from_millis(100)).await;
    }

    let s = setup();
    s.jobs(1..=8).await;
    s.chores(1..=8).await;
    let gauges = Arc::new(Gauges::default());
    let daemon = s
        .daemon()
        .handler::<limited>()
        .handler::<free>()
        .collaborator(gauges.clone())
        .concurrency(20)
        .layer_for::<limited>(tower::limit::ConcurrencyLimitLayer::new(2));
    let report = s.drain(daemon).await;
    assert_eq!(report.count(Verdict::Succeeded), 16, "{report}");
    assert_eq!(gauges.limited.max(), 2);
    assert!(gauges.free.max() > 2, "the other handler ran {} at once", gauges.free.max());
}

#[tokio::test(start_paused = true)]
async fn shed_load_is_failed_and_retried() {
    #[handler]
    async fn slow(job: Job, gauge: &Arc<Gauge>) {
        let _ = job.id;
        gauge.hold(Duration::from_millis(100)).await;
    }

    let s = setup();
    s.jobs(1..=3).await;
    let gauge = Arc::new(Gauge::default());
    let shed_at_one = ServiceBuilder::new().load_shed().concurrency_limit(1);
    let (daemon, outcomes) =
        outcomes(s.daemon().handler::<slow>().collaborator(gauge.clone()).layer_for::<slow>(shed_at_one));
    let report = s.drain(daemon).await;
    assert_eq!(report.count(Verdict::Succeeded), 3, "every message is handled in the end: {report}");
    assert!(report.count(Verdict::Failed) >= 2, "{report}");
    assert_eq!(gauge.max(), 1);
    let outcomes = outcomes.lock().unwrap();
    let shed = outcomes.iter().find(|o| o.verdict == Verdict::Failed).unwrap();
    assert!(shed.reason.as_deref().unwrap().starts_with("load shed"), "{shed:?}");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_behind_a_buffer_spaces_the_calls() {
    #[handler]
    async fn stamps(job: Job, times: &Arc<Mutex<Vec<tokio::time::Instant>>>) {
        let _ = job.id;
        times.lock().unwrap().push(tokio::time::Instant::now());
    }

    let s = setup();
    s.jobs(1..=6).await;
    let times = Arc::new(Mutex::new(Vec::new()));
    let two_a_second = ServiceBuilder::new().buffer(16).rate_limit(2, Duration::from_secs(1));
    let report =
        s.drain(s.daemon().handler::<stamps>().collaborator(times.clone()).layer(two_a_second)).await;
    assert_eq!(report.count(Verdict::Succeeded), 6, "{report}");
    let times: Vec<tokio::time::Instant> = times.lock().unwrap().clone();
    let first = times[0];
    let mut per_second: HashMap<u64, usize> = HashMap::new();
    for time in times.iter() {
        *per_second.entry(time.duration_since(first).as_secs()).or_default() += 1;
    }
    assert!(per_second.values().all(|&n| n <= 2), "{per_second:?}");
    let spread = times.last().unwrap().duration_since(first);
    assert!(spread >= Duration::from_secs(2), "{spread:?}");
}

/// Refuses job 1 for good, fails job 2, and lets the others through.
fn gatekeeper() -> impl HandlerLayer {
    layer_fn(|inner: HandlerService| {
        service_fn(move |request: HandlerRequest| {
            let inner = inner.clone();
            async move {
                match request.message::<Job>().map(|job| job.id) {
                    Some(1) => Err(BoxError::from(FinalRefusal::new("job 1 is cancelled"))),
                    Some(2) => Err(BoxError::from("the gate is jammed")),
                    _ => inner.oneshot(request).await,
                }
            }
        })
    })
}

/// The outcome names its message and media type even when a layer keeps the request (and
/// with it the handler's context) after the message is done.
#[tokio::test]
async fn an_outcome_has_its_ids_when_a_layer_keeps_the_request() {
    let held = Arc::new(Mutex::new(Vec::new()));
    let hold = {
        let held = held.clone();
        layer_fn(move |_: HandlerService| {
            let held = held.clone();
            service_fn(move |request: HandlerRequest| {
                held.lock().unwrap().push(request);
                async { Ok::<_, BoxError>(Outcome::succeeded()) }
            })
        })
    };
    let s = setup();
    s.jobs(1..=2).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let daemon = s
        .daemon()
        .handler::<records>()
        .layer(hold)
        .on_outcome(move |m| sink.lock().unwrap().push((m.message_id.clone(), m.media_type.clone())));
    let report = s.drain(daemon).await;
    assert_eq!(report.count(Verdict::Succeeded), 2, "{report}");
    // The requests, and their contexts, are still held.
    let mut expected: Vec<_> = held
        .lock()
        .unwrap()
        .iter()
        .map(|request| (request.context().message_id().to_owned(), Some(Job::MEDIA_TYPE.to_owned())))
        .collect();
    let mut seen = seen.lock().unwrap().clone();
    expected.sort();
    seen.sort();
    assert_eq!(expected.len(), 2);
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_final_refusal_is_skipped_and_any_other_layer_error_failed() {
    let s = setup();
    s.jobs(1..=3).await;
    let (daemon, outcomes) = outcomes(s.daemon().handler::<records>().layer(gatekeeper()).max_attempts(1));
    let report = s.drain(daemon).await;
    // 1: SKIPPED by the layer. 2: FAILED, then SKIPPED past max_attempts. 3: handled.
    assert_eq!(report.count(Verdict::Skipped), 2, "{report}");
    assert_eq!(report.count(Verdict::Failed), 1, "{report}");
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
    assert_eq!(s.journal.entries(), ["handler 3"]);
    let reasons: Vec<String> = outcomes.lock().unwrap().iter().filter_map(|o| o.reason.clone()).collect();
    assert!(reasons.contains(&"job 1 is cancelled".to_owned()), "{reasons:?}");
    assert!(reasons.contains(&"a layer failed: the gate is jammed".to_owned()), "{reasons:?}");
    assert!(s.broker.messages("work").is_empty());

    let run = HandlerTest::new()
        .handler::<records>()
        .collaborator(s.journal.clone())
        .layer(gatekeeper())
        .run(&Job { id: 1 })
        .await;
    assert_eq!(run.verdict(), Verdict::Skipped);
}

#[tokio::test]
async fn a_panicking_layer_fails_its_message_only() {
    let panics = layer_fn(|inner: HandlerService| {
        service_fn(move |request: HandlerRequest| {
            let id = request.message::<Job>().map(|job| job.id);
            if id == Some(1) {
                panic!("the layer broke while calling");
            }
            let inner = inner.clone();
            async move {
                if id == Some(2) {
                    panic!("the layer broke while waiting");
                }
                inner.oneshot(request).await
            }
        })
    });
    let s = setup();
    s.jobs(1..=3).await;
    let (daemon, outcomes) = outcomes(s.daemon().handler::<records>().layer(panics).max_attempts(1));
    let report = s.drain(daemon).await;
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
    assert_eq!(report.count(Verdict::Failed), 2, "{report}");
    assert_eq!(report.count(Verdict::Skipped), 2, "{report}");
    let reasons: Vec<String> = outcomes.lock().unwrap().iter().filter_map(|o| o.reason.clone()).collect();
    assert!(reasons.contains(&"a layer panicked: the layer broke while calling".to_owned()), "{reasons:?}");
    assert!(reasons.contains(&"a layer panicked: the layer broke while waiting".to_owned()), "{reasons:?}");
    assert_eq!(s.journal.entries(), ["handler 3"]);
}

#[tokio::test]
async fn what_a_handler_published_leaves_only_if_the_layers_too_say_it_succeeded() {
    #[handler]
    async fn reports_done(job: Job, context: &MessageContext) -> Result<(), HandlerError> {
        context.publish(&JobDone { id: job.id })?;
        Ok(())
    }
    // After the handler succeeded, the layer fails job 1 (say, its audit write failed).
    let audit = layer_fn(|inner: HandlerService| {
        service_fn(move |request: HandlerRequest| {
            let id = request.message::<Job>().map(|job| job.id);
            let inner = inner.clone();
            async move {
                let outcome = inner.oneshot(request).await?;
                match id {
                    Some(1) => Err(BoxError::from("the audit log is down")),
                    _ => Ok(outcome),
                }
            }
        })
    });
    let run = HandlerTest::new().handler::<reports_done>().layer(audit).run(&Job { id: 1 }).await;
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(run.published.is_empty(), "{:?}", run.published);
    let run = HandlerTest::new().handler::<reports_done>().layer(audit).run(&Job { id: 2 }).await;
    assert_eq!(run.verdict(), Verdict::Succeeded);
    assert_eq!(run.published::<JobDone>().len(), 1);
}

#[tokio::test]
async fn the_log_line_and_the_report_tell_the_outcome_the_layers_gave() {
    let (logs, _capturing) = Logs::capture(Format::Text);
    let s = setup();
    s.jobs(1..=3).await;
    let report = s.drain(s.daemon().handler::<records>().layer(gatekeeper()).max_attempts(1)).await;
    assert_eq!(
        (report.count(Verdict::Succeeded), report.count(Verdict::Skipped), report.count(Verdict::Failed)),
        (1, 2, 1),
        "{report}"
    );
    let handled: Vec<String> =
        logs.info().into_iter().filter(|line| line.contains("message handled")).collect();
    assert_eq!(handled.len(), 4, "{handled:#?}");
    let with =
        |parts: &[&str]| handled.iter().filter(|line| parts.iter().all(|part| line.contains(part))).count();
    let handler = r#"handler="middleware::records""#;
    assert_eq!(with(&[handler, r#"result="SKIPPED""#, r#"reason="job 1 is cancelled""#]), 1, "{handled:#?}");
    assert_eq!(
        with(&[handler, r#"result="FAILED""#, "a layer failed: the gate is jammed"]),
        1,
        "{handled:#?}"
    );
    assert_eq!(
        with(&[handler, r#"result="SKIPPED""#, "more than the maximum of 1 attempts"]),
        1,
        "{handled:#?}"
    );
    assert_eq!(with(&[handler, r#"result="SUCCEEDED""#]), 1, "{handled:#?}");
}
