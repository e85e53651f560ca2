//! The consumer daemon: pollers, bounded concurrency, batched acknowledgements, visibility
//! heartbeats and a graceful shutdown that loses nothing. Generic over the [`Subscriber`].
//!
//! Shape of the runtime (after tokio's graceful-shutdown guide):
//! - `pollers` tasks receive only as many messages as there are free permits of the
//!   concurrency semaphore, so a received message never waits for a slot;
//! - each message runs in its own task (tracked), holding its permit until its outcome is
//!   queued for settling;
//! - one settler task batches deletes and visibility changes (up to ten, or `settle_delay`),
//!   retries what failed, and flushes everything at shutdown;
//! - one heartbeat task extends the visibility of messages still in flight.
//!
//! Shutdown: stop receiving (receives under way finish, and what they bring that has not
//! started goes back to the queue at once), let handlers finish within `drain_timeout`, flush
//! the settler, return the report.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backoff::BackoffPolicy;
use crate::dispatch::{Dispatcher, Handled, HandlerSetError, HandlerTable};
use crate::handler::{Collaborators, Handler};
use crate::outcome::{Disposition, MessageResult};
use crate::producer::Producer;
use crate::transport::{ReceivedMessage, Subscriber, VisibilityChange, MAX_BATCH};

/// How a daemon runs. `Default` gives the values documented on each field.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Messages handled at once (default 10).
    pub concurrency: usize,
    /// Receives in flight at once (default: one per ten of concurrency, at least one).
    pub pollers: Option<usize>,
    /// Long-poll wait of each receive (default 20 s, SQS's maximum). At the stop, a receive
    /// under way gets one more second, then is dropped.
    pub wait_time: Duration,
    /// How long a delete or visibility change waits for nine others while handlers are still
    /// running (default 50 ms); with none running it goes at once.
    pub settle_delay: Duration,
    /// Retry delay of FAILED messages (default: fixed 5 s).
    pub backoff: BackoffPolicy,
    /// Receive count above which a message is SKIPPED unhandled (default: none, so the
    /// queue's redrive policy decides). See [`DaemonBuilder::max_attempts`] for which wins
    /// when both are set.
    pub max_attempts: Option<u32>,
    /// How long shutdown waits for handlers under way (default 30 s).
    pub drain_timeout: Duration,
    /// How long the heartbeat keeps one message invisible at most (default 1 h); past that
    /// the message may be handled elsewhere (the handler is not stopped).
    pub heartbeat_max: Duration,
    /// How long shutdown keeps retrying unsettled deletes and visibility changes (default 10 s).
    pub flush_timeout: Duration,
}

impl Default for DaemonConfig {
    fn default() -> DaemonConfig {
        DaemonConfig {
            concurrency: 10,
            pollers: None,
            wait_time: Duration::from_secs(20),
            settle_delay: Duration::from_millis(50),
            backoff: BackoffPolicy::default(),
            max_attempts: None,
            drain_timeout: Duration::from_secs(30),
            heartbeat_max: Duration::from_secs(60 * 60),
            flush_timeout: Duration::from_secs(10),
        }
    }
}

impl DaemonConfig {
    fn pollers(&self) -> usize {
        self.pollers.unwrap_or(self.concurrency.div_ceil(MAX_BATCH)).max(1)
    }
}

/// Builds a [`Daemon`]: which handlers, which collaborators, which producer, how it runs.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pubsub_core::{handler, DaemonBuilder, HandlerError, MemoryBroker, MessageResult, Producer, PubSubMessage, TopicMap};
/// # use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
/// #[media_type = "application/vnd.acme.pubsub.greeting"]
/// struct Greeting { name: String }
///
/// #[handler]
/// async fn greet(greeting: Greeting) -> Result<(), HandlerError> {
///     println!("hello, {}", greeting.name);
///     Ok(())
/// }
///
/// let broker = MemoryBroker::new();
/// let topic = broker.create_topic("greetings");
/// broker.create_queue("greeter", Default::default());
/// broker.subscribe(&topic, "greeter", Default::default())?;
/// let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));
/// producer.produce(&Greeting { name: "world".into() }).await?;
///
/// let daemon = DaemonBuilder::new("greeter").wait_time(Duration::from_millis(50)).build(broker.subscriber("greeter")?)?;
/// let report = daemon.run_until_idle().await;
/// assert_eq!(report.count(MessageResult::Succeeded), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DaemonBuilder {
    name: String,
    selection: Option<Vec<String>>,
    extra: Vec<Handler>,
    collaborators: Collaborators,
    producer: Option<Producer>,
    config: DaemonConfig,
}

impl DaemonBuilder {
    /// A daemon named `name` (for logs) running every linked handler.
    pub fn new(name: impl Into<String>) -> DaemonBuilder {
        DaemonBuilder {
            name: name.into(),
            selection: None,
            extra: Vec::new(),
            collaborators: Collaborators::new(),
            producer: None,
            config: DaemonConfig::default(),
        }
    }

    /// Runs only the linked handlers named here (function name or full path) instead of all.
    pub fn handlers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> DaemonBuilder {
        self.selection = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a handler that is not linked with `#[handler]`.
    pub fn handler(mut self, handler: Handler) -> DaemonBuilder {
        self.extra.push(handler);
        self
    }

    /// Adds a collaborator that handlers take as `&T`.
    pub fn collaborator<T: Send + Sync + 'static>(mut self, value: T) -> DaemonBuilder {
        self.collaborators = self.collaborators.with(value);
        self
    }

    /// The producer that sends what handlers publish.
    pub fn producer(mut self, producer: Producer) -> DaemonBuilder {
        self.producer = Some(producer);
        self
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: DaemonConfig) -> DaemonBuilder {
        self.config = config;
        self
    }

    /// Messages handled at once.
    pub fn concurrency(mut self, concurrency: usize) -> DaemonBuilder {
        self.config.concurrency = concurrency.max(1);
        self
    }

    /// Receives in flight at once.
    pub fn pollers(mut self, pollers: usize) -> DaemonBuilder {
        self.config.pollers = Some(pollers.max(1));
        self
    }

    /// Long-poll wait of each receive.
    pub fn wait_time(mut self, wait_time: Duration) -> DaemonBuilder {
        self.config.wait_time = wait_time;
        self
    }

    /// Retry delay policy of FAILED messages.
    pub fn backoff(mut self, backoff: BackoffPolicy) -> DaemonBuilder {
        self.config.backoff = backoff;
        self
    }

    /// Receive count above which messages are SKIPPED: deleted unhandled, with the reason
    /// logged.
    ///
    /// With a dead-letter queue too, the lower limit wins. When `maxReceiveCount` is lower,
    /// SQS moves a failing message to the dead-letter queue on the receive after its last
    /// allowed one and the daemon never sees that receive. When `max_attempts` is lower, the
    /// daemon deletes the message on receive `max_attempts + 1` and it never reaches the
    /// dead-letter queue. Leave this unset when a dead-letter queue should keep poison
    /// messages; it is for queues without one.
    pub fn max_attempts(mut self, max_attempts: u32) -> DaemonBuilder {
        self.config.max_attempts = Some(max_attempts);
        self
    }

    /// How long shutdown waits for handlers.
    pub fn drain_timeout(mut self, drain_timeout: Duration) -> DaemonBuilder {
        self.config.drain_timeout = drain_timeout;
        self
    }

    /// The handler table this builder would run, checked (duplicates, names, collaborators).
    pub fn handler_table(&self) -> Result<HandlerTable, HandlerSetError> {
        let mut chosen: Vec<Handler> = match &self.selection {
            None => Handler::linked().copied().collect(),
            Some(names) => {
                let linked: Vec<Handler> = Handler::linked().copied().collect();
                let mut chosen = Vec::new();
                for name in names {
                    let matching: Vec<Handler> =
                        linked.iter().filter(|h| h.is_named(name)).copied().collect();
                    if matching.is_empty() {
                        return Err(HandlerSetError::UnknownHandler(name.clone()));
                    }
                    chosen.extend(matching);
                }
                chosen
            }
        };
        chosen.extend(self.extra.iter().copied());
        let table = HandlerTable::new(chosen)?;
        table.check_needs(&self.collaborators)?;
        Ok(table)
    }

    /// Checks the handlers and builds the daemon over `subscriber`.
    pub fn build<S: Subscriber>(self, subscriber: S) -> Result<Daemon<S>, HandlerSetError> {
        self.build_shared(Arc::new(subscriber))
    }

    /// As [`build`](DaemonBuilder::build), over a shared subscriber.
    pub fn build_shared<S: Subscriber>(self, subscriber: Arc<S>) -> Result<Daemon<S>, HandlerSetError> {
        let handlers = Arc::new(self.handler_table()?);
        let dispatcher = Dispatcher {
            handlers,
            producer: self.producer,
            collaborators: self.collaborators,
            backoff: self.config.backoff,
            max_attempts: self.config.max_attempts,
        };
        Ok(Daemon { name: self.name, subscriber, dispatcher: Arc::new(dispatcher), config: self.config })
    }
}

/// A consumer daemon over one queue.
pub struct Daemon<S> {
    name: String,
    subscriber: Arc<S>,
    dispatcher: Arc<Dispatcher>,
    config: DaemonConfig,
}

impl<S> fmt::Debug for Daemon<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Daemon")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a daemon run did, by media type and result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonReport {
    /// Count per media type (`-` when the body had none) per result. Media types no handler
    /// takes share the row [`OTHER_MEDIA_TYPES`] once there are 256 rows.
    pub results: BTreeMap<String, BTreeMap<MessageResult, u64>>,
    /// Handlers still running when the drain timeout ran out (their messages were neither
    /// deleted nor released: they reappear after their visibility timeout).
    pub abandoned: usize,
    /// Deletes and visibility changes still failing when the flush timeout ran out (those
    /// messages reappear after their visibility timeout and are handled again).
    pub unsettled: usize,
    /// Messages received after the stop began, released at once.
    pub released: usize,
}

impl DaemonReport {
    /// Messages with `result`, all media types.
    pub fn count(&self, result: MessageResult) -> u64 {
        self.results.values().filter_map(|by_result| by_result.get(&result)).sum()
    }

    /// Messages handled, all results.
    pub fn total(&self) -> u64 {
        self.results.values().flat_map(|by_result| by_result.values()).sum()
    }

    fn record(&mut self, handled: &Handled) {
        let mut media_type = handled.media_type.as_deref().unwrap_or("-");
        // Media types no handler takes come from senders: past a bound they share one row,
        // so that a stream of made-up types cannot grow a long-running daemon's report.
        if handled.handler.is_none()
            && self.results.len() >= MAX_REPORT_ROWS
            && !self.results.contains_key(media_type)
        {
            media_type = OTHER_MEDIA_TYPES;
        }
        let row = match self.results.get_mut(media_type) {
            Some(row) => row,
            None => self.results.entry(media_type.to_owned()).or_default(),
        };
        *row.entry(handled.outcome.result).or_default() += 1;
    }
}

/// Rows a report keeps for media types no handler takes, before [`OTHER_MEDIA_TYPES`].
const MAX_REPORT_ROWS: usize = 256;
/// The row of a [`DaemonReport`] that gathers the media types no handler takes once the
/// report has 256 rows.
pub const OTHER_MEDIA_TYPES: &str = "(other media types)";

/// A table: one row per media type, one column per result.
impl fmt::Display for DaemonReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.results.keys().map(String::len).max().unwrap_or(10).max(10);
        write!(f, "{:width$}", "media type")?;
        for result in MessageResult::ALL {
            write!(f, " {:>9}", result.as_str())?;
        }
        writeln!(f)?;
        for (media_type, by_result) in &self.results {
            write!(f, "{media_type:width$}")?;
            for result in MessageResult::ALL {
                write!(f, " {:>9}", by_result.get(&result).copied().unwrap_or(0))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A delete or visibility change on its way to the settler.
enum Settle {
    Delete(String),
    Visibility(String, Duration),
}

/// A message whose handler is running.
struct InFlight {
    received_at: Instant,
    visible_until: Instant,
    extending: bool,
}

/// State shared by the tasks of one run.
struct Shared<S> {
    subscriber: Arc<S>,
    dispatcher: Arc<Dispatcher>,
    config: DaemonConfig,
    permits: Arc<Semaphore>,
    stop_receiving: CancellationToken,
    handlers: TaskTracker,
    settle: mpsc::UnboundedSender<Settle>,
    /// Settles sent and not yet done with (for idle detection).
    unsettled: AtomicUsize,
    in_flight: Mutex<HashMap<String, InFlight>>,
    report: Mutex<DaemonReport>,
    stop_when_idle: bool,
}

impl<S: Subscriber> Daemon<S> {
    /// The handlers this daemon runs.
    pub fn handlers(&self) -> &HandlerTable {
        &self.dispatcher.handlers
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
        let (settle, settle_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            subscriber: self.subscriber,
            dispatcher: self.dispatcher,
            permits: Arc::new(Semaphore::new(self.config.concurrency.max(1))),
            config: self.config,
            stop_receiving: CancellationToken::new(),
            handlers: TaskTracker::new(),
            settle,
            unsettled: AtomicUsize::new(0),
            in_flight: Mutex::new(HashMap::new()),
            report: Mutex::new(DaemonReport::default()),
            stop_when_idle,
        });
        let stop_settler = CancellationToken::new();
        let settler = tokio::spawn(settle_loop(shared.clone(), settle_rx, stop_settler.clone()));
        let stop_heartbeat = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat_loop(shared.clone(), stop_heartbeat.clone()));
        let pollers: Vec<_> =
            (0..shared.config.pollers()).map(|_| tokio::spawn(poll_loop(shared.clone()))).collect();
        tracing::info!(daemon = %self.name, handlers = ?shared.dispatcher.handlers.media_types(),
            concurrency = shared.config.concurrency, pollers = pollers.len(), "daemon started");

        tokio::select! {
            () = shutdown => tracing::info!(daemon = %self.name, "stop requested"),
            () = shared.stop_receiving.cancelled() => {}
        }
        shared.stop_receiving.cancel();
        for poller in pollers {
            let _ = poller.await;
        }
        shared.handlers.close();
        let drained = tokio::time::timeout(shared.config.drain_timeout, shared.handlers.wait()).await.is_ok();
        let abandoned = if drained { 0 } else { shared.handlers.len() };
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
        tracing::info!(daemon = %self.name, handled = report.total(), abandoned, unsettled,
            released = report.released, "daemon stopped");
        report
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

async fn poll_loop<S: Subscriber>(shared: Arc<Shared<S>>) {
    let mut failures = 0u32;
    let mut idle_streak = 0u32;
    while !shared.stop_receiving.is_cancelled() {
        let first = tokio::select! {
            permit = shared.permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = shared.stop_receiving.cancelled() => break,
        };
        let permits = shared.fill_batch(first).await;
        let receive = shared.subscriber.receive(permits.len(), shared.config.wait_time);
        tokio::pin!(receive);
        let result = tokio::select! {
            result = &mut receive => result,
            // Stopping: a long poll under way gets a moment to bring what it has (released at
            // once below); then it is dropped. Most likely it was empty; if the server had
            // handed it messages, they reappear after their visibility timeout.
            () = shared.stop_receiving.cancelled() => match tokio::time::timeout(RECEIVE_GRACE, &mut receive).await {
                Ok(result) => result,
                Err(_) => break,
            },
        };
        let received = match result {
            Ok(received) => {
                failures = 0;
                received
            }
            Err(error) => {
                failures += 1;
                let delay = retry_delay(failures);
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "receive failed");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shared.stop_receiving.cancelled() => {}
                }
                continue;
            }
        };
        if received.is_empty() {
            // Idle takes two empty receives in a row with nothing in flight or unsettled: a
            // nack settled while the first receive was under way may have made a message
            // visible that the first did not see; the second started after it.
            idle_streak = if shared.stop_when_idle && shared.is_idle() { idle_streak + 1 } else { 0 };
            if idle_streak >= 2 {
                shared.stop_receiving.cancel();
            }
            continue;
        }
        idle_streak = 0;
        for (message, permit) in received.into_iter().zip(permits) {
            shared.start(message, permit);
        }
    }
}

impl<S: Subscriber> Shared<S> {
    /// Permits for one receive: a full batch when the other permits come back within
    /// [`BATCH_GRACE`] (handlers that just finished), else what there is. A full batch is one
    /// request for ten messages instead of several for a few.
    async fn fill_batch(&self, first: OwnedSemaphorePermit) -> Vec<OwnedSemaphorePermit> {
        let batch = MAX_BATCH.min(self.config.concurrency.max(1));
        let mut permits = vec![first];
        while permits.len() < batch {
            match self.permits.clone().try_acquire_owned() {
                Ok(permit) => permits.push(permit),
                Err(_) => break,
            }
        }
        let grace = tokio::time::sleep(BATCH_GRACE);
        tokio::pin!(grace);
        while permits.len() < batch {
            tokio::select! {
                permit = self.permits.clone().acquire_owned() => permits.push(permit.expect("the semaphore is never closed")),
                () = &mut grace => break,
                () = self.stop_receiving.cancelled() => break,
            }
        }
        permits
    }

    fn is_idle(&self) -> bool {
        self.handlers.is_empty() && self.unsettled.load(Ordering::SeqCst) == 0
    }

    fn send(&self, settle: Settle) {
        self.unsettled.fetch_add(1, Ordering::SeqCst);
        if self.settle.send(settle).is_err() {
            self.unsettled.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Hands `message` to a handler task, or back to the queue if the stop has begun.
    fn start(self: &Arc<Self>, message: ReceivedMessage, permit: OwnedSemaphorePermit) {
        if self.stop_receiving.is_cancelled() {
            self.report.lock().expect("report lock").released += 1;
            self.send(Settle::Visibility(message.receipt_handle, Duration::ZERO));
            return;
        }
        let now = Instant::now();
        let visibility = self.subscriber.visibility_timeout();
        self.in_flight.lock().expect("in-flight lock").insert(
            message.receipt_handle.clone(),
            InFlight { received_at: now, visible_until: now + visibility, extending: true },
        );
        let shared = self.clone();
        self.handlers.spawn(async move {
            let handled = shared.dispatcher.dispatch(&message).await;
            // Out of the heartbeat's sight before the outcome is queued, so no extension can
            // follow (and undo) a nack.
            shared.in_flight.lock().expect("in-flight lock").remove(&message.receipt_handle);
            shared.send(match handled.outcome.disposition {
                Disposition::Delete => Settle::Delete(message.receipt_handle),
                Disposition::Retry(delay) => Settle::Visibility(message.receipt_handle, delay),
            });
            shared.report.lock().expect("report lock").record(&handled);
            drop(permit);
        });
    }
}

/// How long a long poll under way at the stop may go on before it is dropped.
const RECEIVE_GRACE: Duration = Duration::from_secs(1);

/// How long a poller waits for a full batch of permits before receiving fewer messages.
const BATCH_GRACE: Duration = Duration::from_millis(5);

/// Delay before retrying a failed request: 100 ms doubling to 5 s.
fn retry_delay(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(6).saturating_sub(1)))
        .min(Duration::from_secs(5))
}

/// How many delete or visibility requests the settler keeps in flight at once: with 20 ms
/// per request, 128 of ten entries each settle 64,000 messages a second.
const SETTLE_REQUESTS_IN_FLIGHT: usize = 128;

/// Batches and sends deletes and visibility changes, several requests at once, retrying what
/// may succeed later; at shutdown flushes everything within `flush_timeout`. Returns how many
/// it gave up on.
async fn settle_loop<S: Subscriber>(
    shared: Arc<Shared<S>>,
    mut incoming: mpsc::UnboundedReceiver<Settle>,
    stop: CancellationToken,
) -> usize {
    let mut pending = Pending::default();
    let mut requests: JoinSet<Settled> = JoinSet::new();
    let mut entries_in_requests = 0usize;
    let mut failures = 0u32;
    let mut hold_until: Option<Instant> = None;
    let mut partial_due: Option<Instant> = None;
    let mut flush_deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let finishing = flush_deadline.is_some();
        if hold_until.is_some_and(|until| now >= until) {
            hold_until = None;
        }
        if hold_until.is_none() {
            // A partial batch goes when it has waited long enough, or when no handler is
            // running, so nothing more could join it soon.
            let send_partial = finishing
                || partial_due.is_some_and(|due| now >= due)
                || (!pending.is_empty() && shared.in_flight.lock().expect("in-flight lock").is_empty());
            while requests.len() < SETTLE_REQUESTS_IN_FLIGHT {
                let Some(request) = pending.next_request(send_partial) else { break };
                entries_in_requests += request.len();
                requests.spawn(request.send(shared.clone()));
            }
            if send_partial || pending.is_empty() {
                partial_due = (!pending.is_empty()).then(|| now + shared.config.settle_delay);
            }
        }
        if finishing && pending.is_empty() && requests.is_empty() {
            break;
        }
        if flush_deadline.is_some_and(|deadline| now >= deadline) {
            requests.abort_all();
            break;
        }
        // While held after a failure nothing is sent, so only the end of the hold matters.
        let next_send = if hold_until.is_some() { hold_until } else { partial_due };
        let wake = [next_send, flush_deadline].into_iter().flatten().min();
        tokio::select! {
            item = incoming.recv(), if !finishing => match item {
                Some(item) => {
                    pending.push(item);
                    // Take whatever else is already queued, so it is batched with this one.
                    while let Ok(item) = incoming.try_recv() {
                        pending.push(item);
                    }
                    // Counted from its arrival: `now` is when this loop last woke.
                    partial_due.get_or_insert(Instant::now() + shared.config.settle_delay);
                }
                None => flush_deadline = Some(Instant::now() + shared.config.flush_timeout),
            },
            Some(done) = requests.join_next(), if !requests.is_empty() => {
                let Ok(done) = done else { continue };
                entries_in_requests -= done.request.len();
                shared.unsettled.fetch_sub(done.request.len() - done.keep.len(), Ordering::SeqCst);
                if done.went_through {
                    failures = 0;
                } else {
                    failures += 1;
                    hold_until = Some(Instant::now() + retry_delay(failures));
                }
                if !done.keep.is_empty() {
                    pending.requeue(done.request, &done.keep);
                    // Retried as soon as any hold for failures is over, full batch or not.
                    partial_due = Some(Instant::now());
                }
            }
            () = sleep_until_or_forever(wake) => {}
            () = stop.cancelled(), if !finishing => {
                while let Ok(item) = incoming.try_recv() {
                    pending.push(item);
                }
                flush_deadline = Some(Instant::now() + shared.config.flush_timeout);
            }
        }
    }
    let given_up = pending.len() + entries_in_requests;
    if given_up > 0 {
        tracing::error!(
            given_up,
            "deletes and visibility changes still failing at shutdown; those messages will be handled again"
        );
    }
    given_up
}

async fn sleep_until_or_forever(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

/// Deletes and visibility changes not yet sent. A visibility change replaces an earlier
/// unsent one of the same receipt (a nack after a heartbeat wins).
#[derive(Default)]
struct Pending {
    deletes: Vec<String>,
    changes: Vec<VisibilityChange>,
}

/// One batch request.
enum Request {
    Deletes(Vec<String>),
    Changes(Vec<VisibilityChange>),
}

/// A finished request: what it carried, whether it went through, which entries to retry.
struct Settled {
    request: Request,
    went_through: bool,
    keep: Vec<usize>,
}

impl Request {
    fn len(&self) -> usize {
        match self {
            Request::Deletes(receipts) => receipts.len(),
            Request::Changes(changes) => changes.len(),
        }
    }

    fn receipt(&self, index: usize) -> &str {
        match self {
            Request::Deletes(receipts) => &receipts[index],
            Request::Changes(changes) => &changes[index].receipt_handle,
        }
    }

    async fn send<S: Subscriber>(self, shared: Arc<Shared<S>>) -> Settled {
        let result = match &self {
            Request::Changes(changes) => shared.subscriber.change_visibility_batch(changes.clone()).await,
            Request::Deletes(receipts) => shared.subscriber.ack_batch(receipts.clone()).await,
        };
        let what = match &self {
            Request::Changes(_) => "change visibility",
            Request::Deletes(_) => "delete",
        };
        let (went_through, keep) = settle_results(result, &self, what);
        Settled { request: self, went_through, keep }
    }
}

impl Pending {
    fn push(&mut self, item: Settle) {
        match item {
            Settle::Delete(receipt) => self.deletes.push(receipt),
            Settle::Visibility(receipt_handle, timeout) => {
                match self.changes.iter_mut().find(|c| c.receipt_handle == receipt_handle) {
                    Some(change) => change.timeout = timeout,
                    None => self.changes.push(VisibilityChange { receipt_handle, timeout }),
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.changes.is_empty()
    }

    fn len(&self) -> usize {
        self.deletes.len() + self.changes.len()
    }

    /// A full batch, or with `partial` any batch; visibility changes first (a heartbeat on a
    /// message about to be deleted must not fail for want of its receipt).
    fn next_request(&mut self, partial: bool) -> Option<Request> {
        let ready = |len: usize| len >= MAX_BATCH || (partial && len > 0);
        if ready(self.changes.len()) {
            let n = self.changes.len().min(MAX_BATCH);
            return Some(Request::Changes(self.changes.drain(..n).collect()));
        }
        if ready(self.deletes.len()) {
            let n = self.deletes.len().min(MAX_BATCH);
            return Some(Request::Deletes(self.deletes.drain(..n).collect()));
        }
        None
    }

    /// Puts back the entries of `request` at `keep`.
    fn requeue(&mut self, request: Request, keep: &[usize]) {
        match request {
            Request::Deletes(receipts) => self.deletes.extend(keep.iter().map(|&i| receipts[i].clone())),
            Request::Changes(changes) => {
                for &i in keep {
                    let change = &changes[i];
                    // A newer change of the same receipt, queued meanwhile, wins.
                    if !self.changes.iter().any(|c| c.receipt_handle == change.receipt_handle) {
                        self.changes.push(change.clone());
                    }
                }
            }
        }
    }
}

/// Reads one batch call's results: whether the request went through, and the indices of the
/// entries to try again (all of them on a retryable request failure; the retryable failed
/// entries otherwise). Non-retryable failures are logged and dropped: the message reappears.
fn settle_results(
    result: Result<Vec<Result<(), crate::transport::EntryError>>, crate::transport::TransportError>,
    request: &Request,
    what: &str,
) -> (bool, Vec<usize>) {
    let len = request.len();
    match result {
        Ok(entries) => {
            let mut keep = Vec::new();
            for (index, entry) in entries.into_iter().enumerate() {
                if let Err(error) = entry {
                    if error.retryable {
                        keep.push(index);
                    } else {
                        // The service's words may quote the whole receipt handle: logs show its start.
                        let receipt = request.receipt(index);
                        let error = error.to_string().replace(receipt, &format!("{}…", truncate(receipt)));
                        tracing::warn!(receipt_handle = %truncate(receipt), %error,
                            "{what} refused; the message will reappear");
                    }
                }
            }
            (true, keep)
        }
        Err(error) if error.is_retryable() => {
            tracing::warn!(%error, entries = len, "{what} failed; will retry");
            (false, (0..len).collect())
        }
        Err(error) => {
            tracing::error!(%error, entries = len, "{what} refused; those messages will reappear");
            (false, Vec::new())
        }
    }
}

/// Extends the visibility of messages still in flight before it runs out, up to
/// `heartbeat_max` per message.
async fn heartbeat_loop<S: Subscriber>(shared: Arc<Shared<S>>, stop: CancellationToken) {
    let visibility = shared.subscriber.visibility_timeout();
    let tick = (visibility / 3).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = stop.cancelled() => return,
        }
        let now = Instant::now();
        let mut extensions = Vec::new();
        {
            let mut in_flight = shared.in_flight.lock().expect("in-flight lock");
            for (receipt, message) in in_flight.iter_mut().filter(|(_, m)| m.extending) {
                if message.visible_until.saturating_duration_since(now) > visibility / 2 {
                    continue;
                }
                // The last extension is cut short so that the message stays invisible for
                // `heartbeat_max` in all, not a moment less or a whole timeout more.
                let left = shared.config.heartbeat_max.saturating_sub(now - message.received_at);
                let extension = visibility.min(left);
                if now + extension <= message.visible_until {
                    message.extending = false;
                    tracing::warn!(receipt_handle = %truncate(receipt),
                        "handler still running at the heartbeat maximum; no longer extending, the message may be handled elsewhere");
                    continue;
                }
                message.visible_until = now + extension;
                extensions.push((receipt.clone(), extension));
            }
            // Sent under the lock: a handler that finishes now queues its outcome after these.
            for (receipt, extension) in extensions.iter() {
                shared.send(Settle::Visibility(receipt.clone(), *extension));
            }
        }
        if !extensions.is_empty() {
            tracing::debug!(extended = extensions.len(), "visibility extended");
        }
    }
}

/// Receipt handles are long; logs show their start.
fn truncate(receipt: &str) -> &str {
    &receipt[..receipt.len().min(16)]
}
