//! The daemon's health over real HTTP on 127.0.0.1 (feature `health`), with the embedded
//! broker: ready only after a receive, 503 during the drain, counts equal to the report,
//! failing receives making the daemon unready past the threshold and, with a limit, stopping
//! it failed. The client side is a bare TcpStream; the server is hyper.
//!
//! Real time throughout (sockets and paused time do not mix): short thresholds, and waits
//! that poll for a state rather than sleep for one.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pubsub_core::backoff::BackoffPolicy;
use pubsub_core::daemon::{Daemon, DaemonFailure, DaemonReport};
use pubsub_core::health::{Health, HealthServer};
use pubsub_core::memory::{MemorySubscriber, QueueOptions, SubscriptionOptions};
use pubsub_core::transport::{
    BoxFuture, EntryError, ReceivedMessage, Subscriber, TransportError, VisibilityChange,
};
use pubsub_core::{
    encode, handler, DaemonBuilder, HandlerError, MemoryBroker, OpaqueData, Producer, PubSubMessage,
    TopicMap, Verdict,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.health_job"]
struct Job {
    #[validate(range(min = 0))]
    id: i64,
}

/// What the tests do to the handlers: count the calls under way, hold them until released.
struct Hold {
    started: Semaphore,
    release: Semaphore,
}

impl Default for Hold {
    fn default() -> Hold {
        Hold { started: Semaphore::new(0), release: Semaphore::new(0) }
    }
}

impl Hold {
    async fn wait_started(&self, count: u32) {
        let permits = within(Duration::from_secs(5), self.started.acquire_many(count)).await.unwrap();
        permits.forget();
    }
}

/// Succeeds at once, but job 4 is SKIPPED and job 5 RETRIED (in ten minutes, so not during
/// the test).
#[handler]
async fn by_id(job: Job) -> Result<(), HandlerError> {
    match job.id {
        4 => Err(HandlerError::skip("job 4 is not ours")),
        5 => Err(HandlerError::retry_after(Duration::from_secs(600))),
        _ => Ok(()),
    }
}

/// Runs until the test releases it.
#[handler]
async fn held(_job: Job, hold: &Arc<Hold>) {
    hold.started.add_permits(1);
    hold.release.acquire().await.unwrap().forget();
}

/// The broker's subscriber under the test's control: receives wait until the gate opens, and
/// fail (as a network that refuses connections) while `failing` is set.
struct Controlled {
    inner: MemorySubscriber,
    gate: watch::Receiver<bool>,
    failing: Arc<AtomicBool>,
}

impl Subscriber for Controlled {
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, TransportError>> {
        Box::pin(async move {
            let _ = self.gate.clone().wait_for(|open| *open).await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(TransportError::Unavailable("connection refused (by the test)".into()));
            }
            self.inner.receive(max, wait).await
        })
    }

    fn ack_batch<'a>(
        &'a self,
        receipt_handles: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>> {
        self.inner.ack_batch(receipt_handles)
    }

    fn change_visibility_batch<'a>(
        &'a self,
        changes: &'a [VisibilityChange],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>> {
        self.inner.change_visibility_batch(changes)
    }

    fn visibility_timeout(&self) -> Duration {
        self.inner.visibility_timeout()
    }
}

/// A broker with a jobs queue, a daemon builder for it, and the controls of its subscriber.
struct Setup {
    broker: MemoryBroker,
    producer: Producer,
    hold: Arc<Hold>,
    gate: watch::Sender<bool>,
    failing: Arc<AtomicBool>,
}

fn setup() -> Setup {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("jobs");
    broker.create_queue("jobs", QueueOptions::default());
    broker.subscribe(&topic, "jobs", SubscriptionOptions::default()).unwrap();
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
    let (gate, _) = watch::channel(true);
    Setup { broker, producer, hold: Arc::default(), gate, failing: Arc::default() }
}

impl Setup {
    fn daemon<H: pubsub_core::handlers::HandlerFn>(&self) -> DaemonBuilder {
        DaemonBuilder::new("jobs")
            .handler::<H>()
            .collaborator(self.hold.clone())
            .wait_time(Duration::from_millis(50))
            .backoff(BackoffPolicy::Fixed(Duration::from_secs(600)))
    }

    fn build(&self, builder: DaemonBuilder) -> Daemon<Controlled> {
        let subscriber = Controlled {
            inner: self.broker.subscriber("jobs").unwrap(),
            gate: self.gate.subscribe(),
            failing: self.failing.clone(),
        };
        builder.build(subscriber).unwrap()
    }

    async fn publish(&self, ids: impl IntoIterator<Item = i64>) {
        let jobs: Vec<Job> = ids.into_iter().map(|id| Job { id }).collect();
        self.producer.produce_batch(&jobs).await.unwrap();
    }
}

/// A daemon running with its health served on a free port of 127.0.0.1 until it stops.
struct Running {
    addr: SocketAddr,
    health: Health,
    stop: Option<oneshot::Sender<()>>,
    run: JoinHandle<DaemonReport>,
    serving: JoinHandle<()>,
}

async fn start(daemon: Daemon<Controlled>) -> Running {
    let server = HealthServer::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let health = daemon.health();
    let serving = tokio::spawn(server.serve(health.clone(), health.stopped()));
    let (stop, stopped) = oneshot::channel::<()>();
    let run = tokio::spawn(daemon.run(async move {
        let _ = stopped.await;
    }));
    Running { addr, health, stop: Some(stop), run, serving }
}

impl Running {
    async fn get(&self, path: &str) -> Response {
        request(self.addr, "GET", path).await
    }

    /// Polls `path` until `until` holds of its answer.
    async fn wait_for(&self, path: &str, until: impl Fn(&Response) -> bool) -> Response {
        within(Duration::from_secs(10), async {
            loop {
                let response = self.get(path).await;
                if until(&response) {
                    return response;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
    }

    fn ask_stop(&mut self) {
        self.stop.take().expect("stopped once").send(()).unwrap();
    }

    /// The daemon's report once it stops on its own or after a stop was asked; the server
    /// must stop with it.
    async fn finish(self) -> DaemonReport {
        let report = within(Duration::from_secs(10), self.run).await.unwrap();
        within(Duration::from_secs(5), self.serving).await.expect("the server stops after the daemon");
        let refused = TcpStream::connect(self.addr).await;
        assert!(refused.is_err(), "nothing listens once the daemon has stopped");
        report
    }
}

/// An HTTP answer: status, headers as lines, JSON body.
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: Value,
}

impl Response {
    fn phase(&self) -> &str {
        self.body["phase"].as_str().unwrap_or_default()
    }

    fn count(&self, verdict: Verdict) -> u64 {
        self.body["results"][verdict.as_str()].as_u64().unwrap()
    }
}

/// One HTTP/1.1 request on its own connection, read to the end.
async fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    within(Duration::from_secs(5), stream.read_to_string(&mut raw)).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of headers: {raw:?}"));
    let status =
        head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("{head}"));
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    // The answer to HEAD has no body.
    let body = match method {
        "HEAD" => Value::Null,
        _ => serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}")),
    };
    Response { status, head: head.to_owned(), body }
}

async fn within<F: Future>(limit: Duration, future: F) -> F::Output {
    tokio::time::timeout(limit, future).await.expect("in time")
}

#[tokio::test]
async fn ready_is_503_until_a_receive_succeeds_live_is_200_from_the_start() {
    let s = setup();
    s.gate.send_replace(false);
    let mut running = start(s.build(s.daemon::<by_id>())).await;

    let ready = running.get("/health/ready").await;
    assert_eq!((ready.status, ready.phase()), (503, "starting"), "{ready:?}");
    assert_eq!(ready.body["ready"], false);
    assert_eq!(ready.body["last_receive_seconds_ago"], Value::Null);
    assert_eq!(ready.body["daemon"], "jobs");
    assert!(ready.head.to_ascii_lowercase().contains("cache-control: no-store"), "{}", ready.head);
    let live = running.get("/health/live").await;
    assert_eq!((live.status, live.phase()), (200, "starting"), "{live:?}");

    s.gate.send_replace(true);
    let ready = running.wait_for("/health/ready", |r| r.status == 200).await;
    assert_eq!(ready.phase(), "running");
    assert!(ready.body["last_receive_seconds_ago"].as_f64().unwrap() < 5.0, "{ready:?}");
    assert_eq!(running.get("/health/live").await.status, 200);

    running.ask_stop();
    let report = running.finish().await;
    assert_eq!(report.total(), 0);
    assert!(report.failure().is_none());
}

#[tokio::test]
async fn counts_by_result_are_served_while_running_and_equal_the_report() {
    let s = setup();
    s.publish([1, 2, 3, 4, 5]).await;
    let expired = encode(&Job { id: 6 }, &OpaqueData::new().with_ttl(0)).unwrap();
    s.broker.send("jobs", expired).await.unwrap();
    s.broker.send("jobs", r#"{"mediaType": "application/vnd.acme.pubsub.unknown"}"#).await.unwrap();
    s.broker.send("jobs", "not json at all").await.unwrap();
    let mut running = start(s.build(s.daemon::<by_id>())).await;

    let ready = running
        .wait_for("/health/ready", |r| {
            r.body["results"].as_object().unwrap().values().filter_map(Value::as_u64).sum::<u64>() == 8
        })
        .await;
    assert_eq!(ready.status, 200, "{ready:?}");
    let expected = [
        (Verdict::Succeeded, 3),
        (Verdict::Skipped, 1),
        (Verdict::Ignored, 1),
        (Verdict::Expired, 1),
        (Verdict::Retried, 1),
        (Verdict::Failed, 1),
    ];
    for (verdict, count) in expected {
        assert_eq!(ready.count(verdict), count, "{verdict}: {ready:?}");
    }
    let keys: Vec<&String> = ready.body["results"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 6, "every result, those at 0 too");
    assert_eq!(ready.body["in_flight"], 0);
    assert_eq!(ready.body["receive_failures"]["in_a_row"], 0);

    running.ask_stop();
    let health = running.health.clone();
    let report = running.finish().await;
    let snapshot = health.snapshot();
    for (verdict, count) in expected {
        assert_eq!(report.count(verdict), count, "{verdict}: {report}");
        assert_eq!(snapshot.results.get(verdict), report.count(verdict), "{verdict}");
    }
    assert_eq!((snapshot.live, snapshot.ready, snapshot.phase.as_str()), (false, false, "stopped"));
}

#[tokio::test]
async fn ready_is_503_during_the_drain_while_live_stays_200() {
    let s = setup();
    s.publish([1, 2]).await;
    let mut running = start(s.build(s.daemon::<held>())).await;
    s.hold.wait_started(2).await;
    let ready = running.wait_for("/health/ready", |r| r.status == 200).await;
    assert_eq!(ready.body["in_flight"], 2, "{ready:?}");

    running.ask_stop();
    let ready = running.wait_for("/health/ready", |r| r.phase() == "draining").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert_eq!(ready.body["in_flight"], 2);
    let live = running.get("/health/live").await;
    assert_eq!((live.status, live.phase()), (200, "draining"), "draining is alive: {live:?}");
    // Still draining while a handler runs: the server serves the whole drain.
    s.hold.release.add_permits(1);
    let ready = running.wait_for("/health/ready", |r| r.body["in_flight"] == 1).await;
    assert_eq!((ready.status, ready.phase()), (503, "draining"), "{ready:?}");
    assert_eq!(ready.count(Verdict::Succeeded), 1);

    s.hold.release.add_permits(1);
    let report = running.finish().await;
    assert_eq!(report.count(Verdict::Succeeded), 2, "{report}");
    assert!(report.failure().is_none());
    assert_eq!(s.broker.queue_stats("jobs").total, 0);
}

#[tokio::test]
async fn failing_receives_make_ready_503_past_the_threshold_until_one_succeeds() {
    let s = setup();
    let threshold = Duration::from_millis(200);
    let mut running = start(s.build(s.daemon::<by_id>().readiness_failure_threshold(threshold))).await;
    running.wait_for("/health/ready", |r| r.status == 200).await;

    s.failing.store(true, Ordering::SeqCst);
    let failing_from = Instant::now();
    // Each answer is ready exactly when receives have failed for no longer than the threshold
    // (the machine's speed decides how many answers come before it is past).
    let failing_for = |r: &Response| r.body["receive_failures"]["failing_for_seconds"].as_f64();
    let consistent = |r: &Response| match failing_for(r) {
        Some(seconds) if seconds < 0.2 => r.status == 200,
        Some(seconds) if seconds > 0.2 => r.status == 503,
        _ => true, // none yet, or 0.2 to the millisecond
    };
    let first_failure =
        running.wait_for("/health/ready", |r| r.body["receive_failures"]["in_a_row"] != 0).await;
    assert!(consistent(&first_failure), "{first_failure:?}");
    let ready = running
        .wait_for("/health/ready", |r| {
            assert!(consistent(r), "{r:?}");
            r.status == 503
        })
        .await;
    assert!(failing_from.elapsed() > threshold, "unready only past the threshold");
    assert_eq!(ready.phase(), "running");
    let failures = &ready.body["receive_failures"];
    assert!(failing_for(&ready).unwrap() >= 0.2, "{failures}");
    assert!(
        failures["last_error"].as_str().unwrap().contains("connection refused (by the test)"),
        "{failures}"
    );
    let live = running.get("/health/live").await;
    assert_eq!(live.status, 200, "failing receives are no reason to restart: {live:?}");

    // Without a limit the daemon keeps trying: still there after a second of failures.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!running.run.is_finished());
    s.failing.store(false, Ordering::SeqCst);
    let ready = running.wait_for("/health/ready", |r| r.status == 200).await;
    assert_eq!(
        ready.body["receive_failures"],
        serde_json::json!({"in_a_row": 0, "failing_for_seconds": null, "last_error": null})
    );

    running.ask_stop();
    let report = running.finish().await;
    assert!(report.failure().is_none(), "{:?}", report.failure());
}

#[tokio::test]
async fn past_the_receive_failure_limit_the_daemon_drains_and_stops_failed() {
    let s = setup();
    s.publish([1]).await;
    let limit = Duration::from_millis(300);
    let builder = s
        .daemon::<held>()
        .readiness_failure_threshold(Duration::from_millis(100))
        .receive_failure_limit(limit);
    // Never asked to stop: it stops on its own.
    let running = start(s.build(builder)).await;
    s.hold.wait_started(1).await;
    s.failing.store(true, Ordering::SeqCst);
    let failing_from = Instant::now();

    let ready = running.wait_for("/health/ready", |r| r.phase() == "draining").await;
    assert!(failing_from.elapsed() > limit, "not before the limit: {:?}", failing_from.elapsed());
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["in_flight"], 1, "the handler under way is drained: {ready:?}");
    let failure = ready.body["failure"].as_str().unwrap();
    assert!(
        failure.contains("past the limit of 0.3 s") && failure.contains("connection refused (by the test)"),
        "{failure}"
    );

    s.hold.release.add_permits(1);
    let report = running.finish().await;
    assert_eq!(report.count(Verdict::Succeeded), 1, "{report}");
    assert_eq!(s.broker.queue_stats("jobs").total, 0, "its delete was flushed");
    let Some(DaemonFailure::ReceivesFailing { failing_for, limit: reported, attempts, last_error }) =
        report.failure()
    else {
        panic!("the report says the daemon failed: {:?}", report.failure());
    };
    assert!(*failing_for > limit && *reported == limit && *attempts >= 2, "{:?}", report.failure());
    assert_eq!(*last_error, TransportError::Unavailable("connection refused (by the test)".into()));
    let message = report.failure().unwrap().to_string();
    assert!(
        message.starts_with("receives have failed for ")
            && message.ends_with("connection refused (by the test)"),
        "{message}"
    );
}

#[tokio::test]
async fn unknown_paths_are_404_and_other_methods_405() {
    let s = setup();
    let mut running = start(s.build(s.daemon::<by_id>())).await;
    running.wait_for("/health/ready", |r| r.status == 200).await;

    for path in ["/", "/health", "/health/live/", "/metrics"] {
        let response = running.get(path).await;
        assert_eq!(response.status, 404, "{path}: {response:?}");
    }
    for method in ["POST", "PUT", "DELETE", "HEAD"] {
        let response = request(running.addr, method, "/health/ready").await;
        assert_eq!(response.status, 405, "{method}: {response:?}");
        assert!(response.head.to_ascii_lowercase().contains("allow: get"), "{}", response.head);
    }
    // A query string changes nothing.
    assert_eq!(running.get("/health/ready?verbose=1").await.status, 200);

    running.ask_stop();
    running.finish().await;
}

#[tokio::test]
async fn binding_an_address_in_use_is_an_error_before_anything_runs() {
    let first = HealthServer::bind("127.0.0.1:0").await.unwrap();
    let error = HealthServer::bind(first.local_addr()).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    let error = HealthServer::bind("not an address").await.unwrap_err();
    assert!(!error.to_string().is_empty());
}
