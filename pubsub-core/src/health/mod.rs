//! A daemon's health, for container probes and operators: what phase it is in, whether its
//! receives succeed, what it has handled.
//!
//! [`Daemon::health`](crate::daemon::Daemon::health) hands out a [`Health`] before the daemon
//! runs; the daemon keeps it up to date with a few atomic operations per message and per
//! receive, and [`Health::snapshot`] reads it when asked. With the feature `health`,
//! `HealthServer` (in this module) serves it as `GET /health/live` and `GET /health/ready`.
//!
//! - **Live** ([`Health::live`]): the daemon has not stopped, and no receive is stuck (under
//!   way for longer than its long-poll wait plus [`RECEIVE_STUCK_AFTER`] with none finishing).
//!   Failing receives do not make it dead: restarting the process does not bring back an
//!   unreachable queue, it only loses what is in flight. That is readiness's concern, and
//!   [`receive_failure_limit`](crate::daemon::DaemonBuilder::receive_failure_limit)'s.
//! - **Ready** ([`Health::ready`]): a receive has succeeded, the daemon is not draining, and
//!   receives have not been failing for longer than
//!   [`readiness_failure_threshold`](crate::daemon::DaemonBuilder::readiness_failure_threshold).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use pubsub_core::health::Phase;
//! use pubsub_core::{DaemonBuilder, MemoryBroker, Verdict};
//!
//! let broker = MemoryBroker::new();
//! broker.create_queue("jobs", Default::default());
//! broker.send("jobs", r#"{"mediaType": "application/vnd.acme.unknown"}"#).await?;
//! let daemon = DaemonBuilder::new("jobs")
//!     .allow_no_handlers()
//!     .wait_time(Duration::from_millis(20))
//!     .build(broker.subscriber("jobs")?)?;
//! let health = daemon.health();
//! assert_eq!(health.phase(), Phase::Starting);
//! assert!(health.live() && !health.ready(), "live at once, ready after a receive");
//!
//! let report = daemon.run_until_idle().await;
//! let snapshot = health.snapshot();
//! assert_eq!(snapshot.phase, Phase::Stopped);
//! assert_eq!(snapshot.results.get(Verdict::Ignored), report.count(Verdict::Ignored));
//! assert!(snapshot.last_receive_seconds_ago.is_some());
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "health")]
mod server;

#[cfg(feature = "health")]
pub use server::HealthServer;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::daemon::{DaemonConfig, DaemonFailure};
use crate::outcome::{bound_reason, Verdict};
use crate::transport::TransportError;

/// How long a receive may stay under way past the daemon's long-poll wait, with no other
/// receive finishing meanwhile, before the daemon counts as stuck and no longer
/// [live](Health::live): 2 minutes. The AWS transport times its calls out well before (30 s
/// past the wait), so only a transport that hangs gets there.
pub const RECEIVE_STUCK_AFTER: Duration = Duration::from_secs(120);

/// Where a daemon is in its life. The phases only move forward, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Built, or running with no receive succeeded yet.
    Starting,
    /// A receive has succeeded (later ones may be failing: see
    /// [`HealthSnapshot::receive_failures`]).
    Running,
    /// A stop was asked (or the daemon failed, or found its queue idle): no more receives,
    /// handlers under way finish, deletes are flushed.
    Draining,
    /// The run is over (or its future was dropped, or the daemon was dropped without running).
    Stopped,
}

impl Phase {
    /// The lower-case name, as the JSON body has it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Draining => "draining",
            Phase::Stopped => "stopped",
        }
    }

    fn from_u8(value: u8) -> Phase {
        match value {
            0 => Phase::Starting,
            1 => Phase::Running,
            2 => Phase::Draining,
            _ => Phase::Stopped,
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A daemon's health: a cheap, cloneable handle on state the daemon updates as it runs. Get it
/// from [`Daemon::health`](crate::daemon::Daemon::health) before running the daemon; see the
/// [module](self) for what live and ready mean.
#[derive(Clone)]
pub struct Health {
    state: Arc<State>,
}

/// Timestamps are nanoseconds since `origin` plus one, so that 0 means "never" and each fits
/// one atomic.
struct State {
    daemon: String,
    readiness_failure_threshold: Duration,
    /// The long-poll wait plus [`RECEIVE_STUCK_AFTER`].
    stuck_after: Duration,
    origin: Instant,
    phase: AtomicU8,
    stopped: CancellationToken,
    last_receive: AtomicU64,
    /// When the current run of failed receives began (0: receives are not failing).
    failing_since: AtomicU64,
    failures_in_a_row: AtomicU64,
    /// Written on failed receives only, never on the path of a message.
    last_error: Mutex<Option<TransportError>>,
    /// Receives under way, and when one last finished (or began with none under way).
    receiving: AtomicU64,
    receive_progress: AtomicU64,
    in_flight: AtomicU64,
    results: [AtomicU64; Verdict::ALL.len()],
    failure: Mutex<Option<DaemonFailure>>,
}

impl Health {
    pub(crate) fn new(daemon: &str, config: &DaemonConfig) -> Health {
        Health {
            state: Arc::new(State {
                daemon: daemon.to_owned(),
                readiness_failure_threshold: config.readiness_failure_threshold,
                stuck_after: config.wait_time.saturating_add(RECEIVE_STUCK_AFTER),
                origin: Instant::now(),
                phase: AtomicU8::new(Phase::Starting as u8),
                stopped: CancellationToken::new(),
                last_receive: AtomicU64::new(0),
                failing_since: AtomicU64::new(0),
                failures_in_a_row: AtomicU64::new(0),
                last_error: Mutex::new(None),
                receiving: AtomicU64::new(0),
                receive_progress: AtomicU64::new(0),
                in_flight: AtomicU64::new(0),
                results: Default::default(),
                failure: Mutex::new(None),
            }),
        }
    }

    /// The daemon's name.
    pub fn daemon(&self) -> &str {
        &self.state.daemon
    }

    /// Where the daemon is in its life.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.state.phase.load(Ordering::Acquire))
    }

    /// Whether the daemon is alive: not stopped, and no receive stuck (see the
    /// [module](self)). What a liveness probe asks: when false, restarting the process helps.
    pub fn live(&self) -> bool {
        self.state.live(self.phase(), Instant::now())
    }

    /// Whether the daemon is ready: a receive has succeeded, it is not draining or stopped,
    /// and receives have not been failing for longer than the readiness threshold. What a
    /// readiness probe asks.
    pub fn ready(&self) -> bool {
        self.state.ready(self.phase(), Instant::now())
    }

    /// Why the daemon stopped on its own, failed, once it has (the same as
    /// [`DaemonReport::failure`](crate::daemon::DaemonReport::failure)).
    pub fn failure(&self) -> Option<DaemonFailure> {
        self.state.failure.lock().expect("failure lock").clone()
    }

    /// Resolves once the daemon has [stopped](Phase::Stopped) (at once if it has): for
    /// serving health until the daemon's run is over, e.g.
    /// `server.serve(health.clone(), health.stopped())`.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.state.stopped.clone().cancelled_owned()
    }

    /// Everything at once, read now: for the HTTP body, logs and tests. Only this does any
    /// work beyond an atomic load.
    pub fn snapshot(&self) -> HealthSnapshot {
        let state = &*self.state;
        let now = Instant::now();
        let phase = self.phase();
        let failing_since = state.at(state.failing_since.load(Ordering::Acquire));
        let results = ResultCounts(std::array::from_fn(|i| state.results[i].load(Ordering::Relaxed)));
        let in_a_row = state.failures_in_a_row.load(Ordering::Relaxed);
        let last_error = match failing_since {
            Some(_) => state
                .last_error
                .lock()
                .expect("last error lock")
                .as_ref()
                .map(|e| bound_reason(e.to_string())),
            None => None,
        };
        HealthSnapshot {
            daemon: state.daemon.clone(),
            phase,
            live: state.live(phase, now),
            ready: state.ready(phase, now),
            in_flight: state.in_flight.load(Ordering::Relaxed),
            results,
            last_receive_seconds_ago: state
                .at(state.last_receive.load(Ordering::Acquire))
                .map(|at| seconds(now.saturating_duration_since(at))),
            receiving_for_seconds: state.receiving_for(now).map(seconds),
            receive_failures: ReceiveFailures {
                in_a_row: if failing_since.is_some() { in_a_row } else { 0 },
                failing_for_seconds: failing_since.map(|since| seconds(now.saturating_duration_since(since))),
                last_error,
            },
            failure: self.failure().map(|failure| failure.to_string()),
        }
    }

    // What the daemon calls.

    /// A receive begins; it ends when the guard drops (finished or abandoned at the stop).
    pub(crate) fn receiving(&self) -> Receiving<'_> {
        let state = &*self.state;
        if state.receiving.fetch_add(1, Ordering::AcqRel) == 0 {
            state.receive_progress.store(state.stamp(Instant::now()), Ordering::Release);
        }
        Receiving { state }
    }

    /// A receive succeeded (empty or not).
    pub(crate) fn received(&self) {
        let state = &*self.state;
        state.last_receive.store(state.stamp(Instant::now()), Ordering::Release);
        // Loads first: on the usual path (running, not failing) nothing is written but the time.
        if state.failing_since.load(Ordering::Relaxed) != 0 {
            state.failing_since.store(0, Ordering::Release);
            state.failures_in_a_row.store(0, Ordering::Relaxed);
        }
        if state.phase.load(Ordering::Relaxed) == Phase::Starting as u8 {
            // Not over a stop that began meanwhile.
            let _ = state.phase.compare_exchange(
                Phase::Starting as u8,
                Phase::Running as u8,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// A receive failed: returns how long receives have been failing and how many in a row.
    pub(crate) fn receive_failed(&self, error: &TransportError) -> (Duration, u64) {
        let state = &*self.state;
        let now = Instant::now();
        *state.last_error.lock().expect("last error lock") = Some(error.clone());
        let in_a_row = state.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        let since = match state.failing_since.compare_exchange(
            0,
            state.stamp(now),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => now,
            Err(stamp) => state.at(stamp).unwrap_or(now),
        };
        (now.saturating_duration_since(since), in_a_row)
    }

    /// A message's handling begins.
    pub(crate) fn message_started(&self) {
        self.state.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A message's handling came to `verdict`.
    pub(crate) fn message_finished(&self, verdict: Verdict) {
        self.state.results[verdict as usize].fetch_add(1, Ordering::Relaxed);
        self.state.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// The daemon stops: `failure` says why when it stops on its own, failed (the first one
    /// given is kept).
    pub(crate) fn fail(&self, failure: DaemonFailure) {
        self.state.failure.lock().expect("failure lock").get_or_insert(failure);
    }

    /// Moves to `phase` unless the daemon is already past it.
    pub(crate) fn advance(&self, phase: Phase) {
        self.state.phase.fetch_max(phase as u8, Ordering::AcqRel);
        if phase == Phase::Stopped {
            self.state.stopped.cancel();
        }
    }
}

impl fmt::Debug for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Health")
            .field("daemon", &self.state.daemon)
            .field("phase", &self.phase())
            .field("live", &self.live())
            .field("ready", &self.ready())
            .finish_non_exhaustive()
    }
}

impl State {
    fn stamp(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX - 1) + 1
    }

    fn at(&self, stamp: u64) -> Option<Instant> {
        stamp.checked_sub(1).map(|nanos| self.origin + Duration::from_nanos(nanos))
    }

    fn live(&self, phase: Phase, now: Instant) -> bool {
        phase != Phase::Stopped
            && self.receiving_for(now).is_none_or(|under_way| under_way <= self.stuck_after)
    }

    fn ready(&self, phase: Phase, now: Instant) -> bool {
        let failing_for = self
            .at(self.failing_since.load(Ordering::Acquire))
            .map(|since| now.saturating_duration_since(since));
        phase == Phase::Running
            && failing_for.is_none_or(|failing| failing <= self.readiness_failure_threshold)
    }

    /// How long receives have been under way with none finishing; `None` when none is.
    fn receiving_for(&self, now: Instant) -> Option<Duration> {
        if self.receiving.load(Ordering::Acquire) == 0 {
            return None;
        }
        let progress = self.at(self.receive_progress.load(Ordering::Acquire))?;
        Some(now.saturating_duration_since(progress))
    }
}

/// A receive under way; see [`Health::receiving`].
pub(crate) struct Receiving<'a> {
    state: &'a State,
}

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        self.state.receive_progress.store(self.state.stamp(Instant::now()), Ordering::Release);
        self.state.receiving.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Seconds with millisecond precision, for the JSON body.
fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

/// A daemon's health at one moment: what the health endpoints send as JSON, e.g.
///
/// ```json
/// {"daemon": "orders", "phase": "running", "live": true, "ready": true, "in_flight": 3,
///  "results": {"SUCCEEDED": 1200, "SKIPPED": 0, "IGNORED": 4, "EXPIRED": 0, "RETRIED": 2, "FAILED": 1},
///  "last_receive_seconds_ago": 0.412, "receiving_for_seconds": 0.2,
///  "receive_failures": {"in_a_row": 0, "failing_for_seconds": null, "last_error": null},
///  "failure": null}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HealthSnapshot {
    /// The daemon's name.
    pub daemon: String,
    /// Where it is in its life.
    pub phase: Phase,
    /// [`Health::live`].
    pub live: bool,
    /// [`Health::ready`].
    pub ready: bool,
    /// Messages whose handlers are running.
    pub in_flight: u64,
    /// Messages handled, by result: the counts of the
    /// [`DaemonReport`](crate::daemon::DaemonReport), all media types together.
    pub results: ResultCounts,
    /// Seconds since the last successful receive (empty or not); `null` before the first.
    pub last_receive_seconds_ago: Option<f64>,
    /// Seconds the receives under way have run with none finishing (a long poll runs up to
    /// its wait); `null` when none is under way.
    pub receiving_for_seconds: Option<f64>,
    /// The receives failing now, if any.
    pub receive_failures: ReceiveFailures,
    /// Why the daemon stopped on its own, failed
    /// ([`DaemonFailure`]'s message); `null` otherwise.
    pub failure: Option<String>,
}

/// The receives failing now: since the last successful one, across all pollers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ReceiveFailures {
    /// Failed receives since the last successful one (0 when receives are not failing).
    pub in_a_row: u64,
    /// Seconds since the first of them; `null` when receives are not failing.
    pub failing_for_seconds: Option<f64>,
    /// The error of the last of them (at most 512 bytes); `null` when receives are not failing.
    pub last_error: Option<String>,
}

/// Messages handled, by [`Verdict`]; serialized as an object with one key per result, in the
/// table's order (`{"SUCCEEDED": 3, "SKIPPED": 0, ...}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ResultCounts([u64; Verdict::ALL.len()]);

impl ResultCounts {
    /// Messages with `verdict`.
    pub fn get(&self, verdict: Verdict) -> u64 {
        self.0[verdict as usize]
    }

    /// Messages handled, all results.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Each result with its count, in the table's order.
    pub fn iter(&self) -> impl Iterator<Item = (Verdict, u64)> + '_ {
        Verdict::ALL.into_iter().map(|verdict| (verdict, self.get(verdict)))
    }
}

impl Serialize for ResultCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Verdict::ALL.len()))?;
        for (verdict, count) in self.iter() {
            map.serialize_entry(verdict.as_str(), &count)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(threshold: Duration) -> Health {
        let config = DaemonConfig { readiness_failure_threshold: threshold, ..DaemonConfig::default() };
        Health::new("jobs", &config)
    }

    fn unavailable() -> TransportError {
        TransportError::Unavailable("connection refused".into())
    }

    #[test]
    fn verdicts_index_the_counts_in_table_order() {
        for (i, verdict) in Verdict::ALL.into_iter().enumerate() {
            assert_eq!(verdict as usize, i, "{verdict}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ready_after_a_receive_until_the_drain_and_live_until_the_stop() {
        let health = health(Duration::from_secs(60));
        assert_eq!((health.phase(), health.live(), health.ready()), (Phase::Starting, true, false));
        health.received();
        assert_eq!((health.phase(), health.live(), health.ready()), (Phase::Running, true, true));
        health.advance(Phase::Draining);
        health.received();
        assert_eq!((health.phase(), health.live(), health.ready()), (Phase::Draining, true, false));
        health.advance(Phase::Running);
        assert_eq!(health.phase(), Phase::Draining, "phases never go back");
        health.advance(Phase::Stopped);
        assert_eq!((health.phase(), health.live(), health.ready()), (Phase::Stopped, false, false));
        tokio::time::timeout(Duration::from_secs(1), health.stopped()).await.expect("stopped resolves");
    }

    #[tokio::test(start_paused = true)]
    async fn failing_receives_unready_past_the_threshold_and_a_success_resets_them() {
        let health = health(Duration::from_secs(60));
        health.received();
        assert_eq!(health.receive_failed(&unavailable()), (Duration::ZERO, 1));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(health.receive_failed(&unavailable()), (Duration::from_secs(60), 2));
        assert!(health.ready(), "60 s is not past the threshold of 60 s");
        tokio::time::advance(Duration::from_millis(1)).await;
        let snapshot = health.snapshot();
        assert!(!snapshot.ready && snapshot.live, "{snapshot:?}");
        assert_eq!(snapshot.phase, Phase::Running);
        assert_eq!(snapshot.receive_failures.in_a_row, 2);
        assert_eq!(snapshot.receive_failures.failing_for_seconds, Some(60.001));
        assert_eq!(
            snapshot.receive_failures.last_error.as_deref(),
            Some("transport unavailable: connection refused")
        );
        assert_eq!(snapshot.last_receive_seconds_ago, Some(60.001));

        health.received();
        let snapshot = health.snapshot();
        assert!(snapshot.ready);
        assert_eq!(
            snapshot.receive_failures,
            ReceiveFailures { in_a_row: 0, failing_for_seconds: None, last_error: None }
        );
        assert_eq!(health.receive_failed(&unavailable()), (Duration::ZERO, 1), "a new run of failures");
    }

    #[tokio::test(start_paused = true)]
    async fn a_receive_under_way_past_the_wait_and_the_margin_is_stuck() {
        let health = health(Duration::from_secs(60));
        let limit = DaemonConfig::default().wait_time + RECEIVE_STUCK_AFTER;
        let receiving = health.receiving();
        tokio::time::advance(limit).await;
        assert!(health.live());
        // Another receive starting does not hide the one under way.
        let other = health.receiving();
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!health.live(), "{:?}", health.snapshot());
        assert_eq!(health.snapshot().receiving_for_seconds, Some(limit.as_secs_f64() + 0.001));
        drop(receiving);
        assert!(health.live(), "a receive finishing is progress");
        drop(other);
        assert_eq!(health.snapshot().receiving_for_seconds, None);
        // Long with none under way (every permit taken by handlers) is not stuck.
        tokio::time::advance(limit * 2).await;
        let _receiving = health.receiving();
        assert!(health.live());
    }

    #[tokio::test]
    async fn a_daemon_dropped_before_or_while_running_is_stopped() {
        let broker = crate::MemoryBroker::new();
        broker.create_queue("jobs", Default::default());
        let build = || {
            crate::DaemonBuilder::new("jobs")
                .allow_no_handlers()
                .wait_time(Duration::from_millis(10))
                .build(broker.subscriber("jobs").unwrap())
                .unwrap()
        };
        let daemon = build();
        let health = daemon.health();
        drop(daemon);
        assert_eq!(health.phase(), Phase::Stopped);

        let daemon = build();
        let health = daemon.health();
        let run = tokio::spawn(daemon.run(std::future::pending()));
        while health.phase() != Phase::Running {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        run.abort();
        assert!(run.await.unwrap_err().is_cancelled());
        assert_eq!(health.phase(), Phase::Stopped);
        tokio::time::timeout(Duration::from_secs(1), health.stopped()).await.expect("stopped resolves");
    }

    #[test]
    fn counts_serialize_by_result_name_in_table_order() {
        let health = health(Duration::from_secs(60));
        for verdict in [Verdict::Succeeded, Verdict::Succeeded, Verdict::Ignored, Verdict::Failed] {
            health.message_started();
            health.message_finished(verdict);
        }
        health.message_started();
        let snapshot = health.snapshot();
        assert_eq!(snapshot.in_flight, 1);
        assert_eq!(snapshot.results.total(), 4);
        let json = serde_json::to_string(&snapshot.results).unwrap();
        assert_eq!(json, r#"{"SUCCEEDED":2,"SKIPPED":0,"IGNORED":1,"EXPIRED":0,"RETRIED":0,"FAILED":1}"#);
        let body: serde_json::Value = serde_json::to_value(&snapshot).unwrap();
        assert_eq!(body["phase"], "starting");
        assert_eq!(body["last_receive_seconds_ago"], serde_json::Value::Null);
    }
}
