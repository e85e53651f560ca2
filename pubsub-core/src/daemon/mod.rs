//! The consumer daemon: pollers, bounded concurrency, batched acknowledgements, visibility
//! heartbeats and a graceful shutdown that loses nothing. Generic over the [`Subscriber`].
//!
//! Shape of the runtime (after tokio's graceful-shutdown guide):
//! - `pollers` tasks receive only as many messages as there are free permits of the
//!   concurrency semaphore, so a received message never waits for a slot (other than its
//!   turn in its FIFO group);
//! - `concurrency` handler workers (tasks started with the daemon) take each received message
//!   from one queue and handle it, apart from the others, holding its permit until its outcome
//!   is queued for settling; the messages of one FIFO group that one receive brought go to one
//!   worker, which runs them in order (see below);
//! - one settler task batches deletes and visibility changes (up to ten, or `settle_delay`),
//!   retries what failed, and flushes everything at shutdown;
//! - one heartbeat task extends the visibility of messages still in flight.
//!
//! Shutdown: stop receiving (receives under way finish, and what they bring that has not
//! started goes back to the queue at once), let handlers finish within `drain_timeout`, flush
//! the settler, return the report. Receives failing for longer than `receive_failure_limit`
//! (when set) start the same shutdown, and the report says the daemon failed.
//!
//! # FIFO queues
//!
//! Messages with a group ([`ReceivedMessage::group_id`](crate::transport::ReceivedMessage))
//! that one receive brings are handled one after another, in the order received; other groups,
//! and messages without a group, run in parallel up to the concurrency. A message waiting for
//! its turn holds its permit and is kept invisible by the heartbeat, as one being handled. When
//! one is to be retried (FAILED or RETRIED), the messages of its group received behind it are
//! not handled: they are made visible again at once and counted in
//! [`DaemonReport::released_behind_failure`], with a line each at info. SQS hands out no more
//! of a FIFO group while one of its messages is invisible, so the group comes back in order
//! when the failed message does. SKIPPED, IGNORED and EXPIRED messages are deleted and do not
//! stop their group. At a shutdown the message being handled finishes and those waiting behind
//! it go back to the queue at once.
//!
//! SQS counts every receive: the messages returned behind a failed one are received again with
//! it, and their receive counts rise with its own (by one per failed attempt of the messages
//! ahead of them). With a low `maxReceiveCount` they reach the dead-letter queue together with
//! it, never having failed themselves; the daemon's [`max_attempts`](DaemonBuilder::max_attempts)
//! reads the same counts and would skip them with it. Remedies: headroom in `maxReceiveCount`,
//! and in `max_attempts` when set (the attempts a message needs, plus those of the messages
//! that may stand ahead of it); fewer messages per receive from a FIFO queue
//! ([`DaemonConfig::receive_limit`]; at 1, none waits behind another).
//!
//! The daemon's [`Health`] (phase, receives, counts) is updated as it runs: see
//! [`Daemon::health`] and [`health`](crate::health).

mod builder;
mod chain;
mod heartbeat;
mod poll;
mod report;
mod settle;
mod workers;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dispatch::{Dispatcher, HandlerTable};
use crate::health::{Health, Phase};
use crate::transport::Subscriber;
use builder::OutcomeHook;
use rustc_hash::FxHashMap;

pub use builder::{DaemonBuilder, DaemonConfig};
pub use report::{DaemonFailure, DaemonReport, OTHER_MEDIA_TYPES};

use heartbeat::heartbeat_loop;
use poll::poll_loop;
use settle::{settle_loop, Settle};
use workers::{worker_loop, CloseOnDrop, WorkQueue};

/// A consumer daemon over one queue.
pub struct Daemon<S> {
    name: String,
    subscriber: Arc<S>,
    dispatcher: Arc<Dispatcher>,
    on_outcome: Option<OutcomeHook>,
    config: DaemonConfig,
    /// Stopped once the run is over, or if the daemon is dropped without running.
    health: StoppedOnDrop,
}

impl<S> fmt::Debug for Daemon<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Daemon")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A received message not yet settled: being handled, or waiting for its turn in its FIFO
/// group.
struct InFlight {
    /// Taken out of the message when it is received, and given to its settle: kept here rather
    /// than copied, as the key it was (an allocation a message).
    receipt_handle: String,
    received_at: Instant,
    visible_until: Instant,
    extending: bool,
}

/// The messages in flight, each under a key of its own, which its work carries.
#[derive(Default)]
struct InFlightTable {
    next_key: u64,
    messages: FxHashMap<u64, InFlight>,
}

impl InFlightTable {
    fn insert(&mut self, message: InFlight) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.messages.insert(key, message);
        key
    }

    /// The receipt handle of the message under `key`, no longer in flight.
    fn remove(&mut self, key: u64) -> String {
        self.messages
            .remove(&key)
            .expect("a message is in flight until it is settled or released")
            .receipt_handle
    }
}

/// State shared by the tasks of one run.
struct Shared<S> {
    subscriber: Arc<S>,
    dispatcher: Arc<Dispatcher>,
    on_outcome: Option<OutcomeHook>,
    config: DaemonConfig,
    permits: Arc<Semaphore>,
    stop_receiving: CancellationToken,
    /// The stop came from a run that found the queue idle, not from its shutdown: messages a
    /// receive brings after it are handled, since the queue was not idle after all.
    stopped_idle: AtomicBool,
    /// Received messages for the handler workers.
    work: WorkQueue,
    settle: mpsc::UnboundedSender<Settle>,
    /// Settles sent and not yet done with (for idle detection).
    unsettled: AtomicUsize,
    /// Woken when settles are done with: what a short poll that found nothing waits for (a
    /// message made visible again, or the last one settled).
    settled: Notify,
    in_flight: Mutex<InFlightTable>,
    report: Mutex<DaemonReport>,
    stop_when_idle: bool,
    health: Health,
}

impl<S: Subscriber> Daemon<S> {
    /// The handlers this daemon runs.
    pub fn handlers(&self) -> &HandlerTable {
        &self.dispatcher.handlers
    }

    /// The daemon's health, updated as it runs: take it before [`run`](Daemon::run) to serve
    /// probes (see [`health`](crate::health)) or watch it.
    pub fn health(&self) -> Health {
        self.health.0.clone()
    }

    /// Runs until `shutdown` resolves, then stops gracefully.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> DaemonReport {
        self.run_inner(shutdown, false).await
    }

    /// Runs until a receive finds the queue empty with nothing in flight or unsettled (messages
    /// waiting out a retry delay stay in the queue), then stops gracefully. For tests, the
    /// quickstart, and one-shot runs over a file.
    pub async fn run_until_idle(self) -> DaemonReport {
        self.run_inner(std::future::pending(), true).await
    }

    /// Runs until ctrl-c or SIGTERM, then stops gracefully.
    pub async fn run_until_signal(self) -> DaemonReport {
        let signal = listen_for_shutdown();
        self.run(signal).await
    }

    async fn run_inner(
        self,
        shutdown: impl Future<Output = ()> + Send,
        stop_when_idle: bool,
    ) -> DaemonReport {
        // Stopped when the run ends, and also if its future is dropped half way.
        let stopped = self.health;
        let (settle, settle_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            subscriber: self.subscriber,
            dispatcher: self.dispatcher,
            on_outcome: self.on_outcome,
            permits: Arc::new(Semaphore::new(self.config.concurrency.max(1))),
            config: self.config,
            stop_receiving: CancellationToken::new(),
            stopped_idle: AtomicBool::new(false),
            work: WorkQueue::default(),
            settle,
            unsettled: AtomicUsize::new(0),
            settled: Notify::new(),
            in_flight: Mutex::new(InFlightTable::default()),
            report: Mutex::new(DaemonReport::default()),
            stop_when_idle,
            health: stopped.0.clone(),
        });
        let stop_settler = CancellationToken::new();
        let settler = tokio::spawn(settle_loop(shared.clone(), settle_rx, stop_settler.clone()));
        let stop_heartbeat = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat_loop(shared.clone(), stop_heartbeat.clone()));
        // Ended with the run, however it ends.
        let _close_work = CloseOnDrop(&shared.work);
        for _ in 0..shared.config.concurrency.max(1) {
            tokio::spawn(worker_loop(shared.clone()));
        }
        let pollers: Vec<_> =
            (0..shared.config.pollers()).map(|_| tokio::spawn(poll_loop(shared.clone()))).collect();
        tracing::info!(daemon = %self.name, handlers = ?shared.dispatcher.handlers.media_types(),
            concurrency = shared.config.concurrency, pollers = pollers.len(), "daemon started");

        tokio::select! {
            () = shutdown => tracing::info!(daemon = %self.name, "stop requested"),
            () = shared.stop_receiving.cancelled() => {}
        }
        shared.stop_receiving.cancel();
        shared.health.advance(Phase::Draining);
        for poller in pollers {
            let _ = poller.await;
        }
        shared.work.close();
        let drained =
            tokio::time::timeout(shared.config.drain_timeout, shared.work.all_finished()).await.is_ok();
        let abandoned = if drained { 0 } else { shared.work.unfinished() };
        if abandoned > 0 {
            tracing::warn!(daemon = %self.name, abandoned,
                "drain timeout: handlers still running; their messages reappear after their visibility timeout");
        }
        stop_heartbeat.cancel();
        stop_settler.cancel();
        let _ = heartbeat.await;
        let unsettled = settler.await.unwrap_or(0);
        let mut report = std::mem::take(&mut *shared.report.lock().expect("report lock"));
        report.abandoned = abandoned;
        report.unsettled = unsettled;
        report.set_failure(shared.health.failure());
        match report.failure() {
            Some(failure) => {
                tracing::error!(daemon = %self.name, handled = report.total(), abandoned, unsettled,
                released = report.released, released_behind_failure = report.released_behind_failure,
                %failure, "daemon stopped: failed")
            }
            None => tracing::info!(daemon = %self.name, handled = report.total(), abandoned, unsettled,
                released = report.released, released_behind_failure = report.released_behind_failure,
                "daemon stopped"),
        }
        report
    }
}

/// Moves the health to [`Phase::Stopped`] when dropped.
pub(super) struct StoppedOnDrop(pub(super) Health);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        self.0.advance(Phase::Stopped);
    }
}

/// Resolves on ctrl-c, or SIGTERM on Unix.
pub async fn shutdown_signal() {
    listen_for_shutdown().await
}

/// Starts listening for SIGINT and SIGTERM at once, not at the first poll: from the moment a
/// daemon starts, a signal stops it gracefully instead of killing the process.
#[cfg(unix)]
fn listen_for_shutdown() -> impl Future<Output = ()> + Send {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn listen_for_shutdown() -> impl Future<Output = ()> + Send {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl<S: Subscriber> Shared<S> {
    fn is_idle(&self) -> bool {
        self.work.unfinished() == 0 && self.unsettled.load(Ordering::SeqCst) == 0
    }

    fn send(&self, settle: Settle) {
        self.unsettled.fetch_add(1, Ordering::SeqCst);
        if self.settle.send(settle).is_err() {
            self.unsettled.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Receipt handles are long; logs show their start: at most 16 bytes, cut at a char boundary.
fn truncate(receipt: &str) -> &str {
    let mut end = receipt.len().min(16);
    while !receipt.is_char_boundary(end) {
        end -= 1;
    }
    &receipt[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_keeps_the_first_16_bytes_of_an_ascii_receipt() {
        assert_eq!(truncate("AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a"), "AQEBwJnKyrHigUMZ");
        assert_eq!(truncate("short"), "short");
        assert_eq!(truncate(""), "");
    }

    #[test]
    fn truncate_cuts_a_non_ascii_receipt_at_a_char_boundary() {
        // 16 bytes would split the eighth `é` (bytes 15 and 16): used to panic.
        assert_eq!(truncate("aééééééééééé"), "aééééééé");
        // Three-byte chars: the boundary before 16 is 15.
        assert_eq!(truncate("€€€€€€€"), "€€€€€");
        // Eleven two-byte chars: 16 is a boundary, all 16 bytes are kept.
        assert_eq!(truncate("ééééééééééé"), "éééééééé");
    }
}
