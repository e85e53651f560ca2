//! How a daemon is configured and built.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Daemon, StoppedOnDrop};
use crate::backoff::BackoffPolicy;
use crate::dispatch::{
    Dispatcher, HandledMessage, HandlerSetError, HandlerTable, HandlerTimeouts, Handling, Payloads,
};
use crate::handlers::{Collaborators, Handler, HandlerFn};
use crate::health::Health;
use crate::middleware::{HandlerLayer, HandlerLayers};
use crate::payload::{ObjectStore, Resolver};
use crate::producer::Producer;
use crate::transport::{Subscriber, MAX_BATCH};

/// How a daemon runs. `Default` gives the values documented on each field; the
/// [`DaemonBuilder`] has a setter for each.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DaemonConfig {
    /// Messages handled at once (default 10).
    pub concurrency: usize,
    /// Receives in flight at once (default: concurrency / receive limit, at least one).
    pub pollers: Option<usize>,
    /// Long-poll wait of each receive (default 20 s, SQS's maximum). At the stop, a receive
    /// under way gets one more second, then is dropped.
    pub wait_time: Duration,
    /// Messages asked for per receive at most, 1 to 10 (default 10; the seed's `limit`, SQS's
    /// `MaxNumberOfMessages`). A receive asks for fewer when fewer handlers are free. On a
    /// FIFO queue a smaller limit means fewer messages received behind one that fails (see
    /// [FIFO queues](super#fifo-queues)).
    pub receive_limit: usize,
    /// How long a delete or visibility change waits for nine others while handlers are still
    /// running (default 50 ms); with none running it goes at once.
    pub settle_delay: Duration,
    /// Retry delay of FAILED messages (default: fixed 5 s).
    pub backoff: BackoffPolicy,
    /// Receive count above which a message is SKIPPED unhandled (default: none, so the
    /// queue's redrive policy decides). See [`DaemonBuilder::max_attempts`] for which wins
    /// when both are set.
    pub max_attempts: Option<u32>,
    /// How long a handler may run before it is cancelled and its message FAILED (default: no
    /// limit); see [`DaemonBuilder::handler_timeout`].
    pub handler_timeout: Option<Duration>,
    /// Time limits of single handlers, by name (the function's name or full path, as
    /// `--handler` selects), over `handler_timeout`.
    pub handler_timeouts: BTreeMap<String, Duration>,
    /// How long shutdown waits for handlers under way (default 30 s).
    pub drain_timeout: Duration,
    /// How long the heartbeat keeps one message invisible at most (default 1 h); past that
    /// the message may be handled elsewhere (the handler is not stopped).
    pub heartbeat_max: Duration,
    /// How long shutdown keeps retrying unsettled deletes and visibility changes (default 10 s).
    pub flush_timeout: Duration,
    /// How long receives may fail in a row before the daemon stops counting as
    /// [ready](crate::health::Health::ready) (default 60 s); it is ready again at the next
    /// successful receive.
    pub readiness_failure_threshold: Duration,
    /// How long receives may fail in a row before the daemon stops on its own, drains as on
    /// a stop, and reports a [`DaemonFailure`](super::DaemonFailure) (default: none, it keeps
    /// trying); see [`DaemonBuilder::receive_failure_limit`].
    pub receive_failure_limit: Option<Duration>,
}

impl Default for DaemonConfig {
    fn default() -> DaemonConfig {
        DaemonConfig {
            concurrency: 10,
            pollers: None,
            wait_time: Duration::from_secs(20),
            receive_limit: MAX_BATCH,
            settle_delay: Duration::from_millis(50),
            backoff: BackoffPolicy::default(),
            max_attempts: None,
            handler_timeout: None,
            handler_timeouts: BTreeMap::new(),
            drain_timeout: Duration::from_secs(30),
            heartbeat_max: Duration::from_secs(60 * 60),
            flush_timeout: Duration::from_secs(10),
            readiness_failure_threshold: Duration::from_secs(60),
            receive_failure_limit: None,
        }
    }
}

impl DaemonConfig {
    pub(super) fn pollers(&self) -> usize {
        self.pollers.unwrap_or(self.concurrency.div_ceil(self.receive_limit.clamp(1, MAX_BATCH))).max(1)
    }
}

/// Builds a [`Daemon`]: which handlers, which collaborators, which producer, how it runs.
///
/// On a FIFO queue the daemon keeps the order of each message group: the messages of a group
/// one receive brings run one after another, and those behind one that fails go back to the
/// queue unhandled, to come back after it. Other groups run in parallel. Every receive counts
/// towards `maxReceiveCount` (and [`max_attempts`](DaemonBuilder::max_attempts)), also for the
/// messages sent back behind a failed one: give them headroom, or lower the
/// [`receive_limit`](DaemonBuilder::receive_limit); see [FIFO queues](super#fifo-queues).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use pubsub_core::{handler, DaemonBuilder, HandlerError, MemoryBroker, Verdict, Producer, PubSubMessage, TopicMap};
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
/// assert_eq!(report.count(Verdict::Succeeded), 1);
/// # Ok(())
/// # }
/// ```
pub struct DaemonBuilder {
    name: String,
    selection: Option<Vec<String>>,
    explicit: Vec<Handler>,
    allow_no_handlers: bool,
    collaborators: Collaborators,
    producer: Option<Producer>,
    object_store: Option<Arc<dyn ObjectStore>>,
    delete_payloads: bool,
    on_outcome: Option<OutcomeHook>,
    layers: HandlerLayers,
    config: DaemonConfig,
}

/// What [`DaemonBuilder::on_outcome`] calls for every message.
pub(super) type OutcomeHook = crate::dispatch::OutcomeHook;

impl fmt::Debug for DaemonBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonBuilder")
            .field("name", &self.name)
            .field("selection", &self.selection)
            .field("explicit", &self.explicit)
            .field("layers", &self.layers)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DaemonBuilder {
    /// A daemon named `name` (for logs). It runs the handlers registered with
    /// [`handler`](DaemonBuilder::handler), or, when none is, every `#[handler]` linked into
    /// the binary.
    pub fn new(name: impl Into<String>) -> DaemonBuilder {
        DaemonBuilder {
            name: name.into(),
            selection: None,
            explicit: Vec::new(),
            allow_no_handlers: false,
            collaborators: Collaborators::new(),
            producer: None,
            object_store: None,
            delete_payloads: false,
            on_outcome: None,
            layers: HandlerLayers::new(),
            config: DaemonConfig::default(),
        }
    }

    /// Registers the `#[handler]` function `H`, named as a type:
    /// `.handler::<on_order>().handler::<on_refund>()`. A daemon with handlers registered
    /// this way runs exactly those, whatever else is linked; one with none runs every linked
    /// handler.
    pub fn handler<H: HandlerFn>(mut self) -> DaemonBuilder {
        self.explicit.push(H::HANDLER);
        self
    }

    /// Runs only the handlers named here (function name or full path), out of those the
    /// daemon would run otherwise (what the command line's `--handler NAME` sets).
    pub fn select_handlers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> DaemonBuilder {
        self.selection = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Lets the daemon build with no handler at all: every message is then IGNORED and
    /// deleted. Without this, [`build`](DaemonBuilder::build) refuses such a daemon, since it
    /// most often means the crate holding the handlers was not linked.
    pub fn allow_no_handlers(mut self) -> DaemonBuilder {
        self.allow_no_handlers = true;
        self
    }

    /// Calls `hook` with what became of every message, after its log line and before its
    /// delete or visibility change is queued. For metrics, audits and tests; it runs on the
    /// handler's task, so keep it short.
    pub fn on_outcome(mut self, hook: impl Fn(&HandledMessage) + Send + Sync + 'static) -> DaemonBuilder {
        self.on_outcome = Some(Arc::new(hook));
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

    /// The object store (S3) that the bodies of messages that come as pointers are read from
    /// (see [`payload`](crate::payload)): what a producer with
    /// [`Producer::large_payloads`] offloaded, or one of AWS's extended client libraries. A
    /// pointer is resolved before the message is decoded, whether it is the SQS body (raw
    /// delivery, or sent straight to the queue) or an SNS notification's `Message`; the
    /// handler sees the message as if it had been sent whole.
    ///
    /// An object that is missing or cannot be read FAILS the message (retried with the
    /// backoff, as any failure), the reason naming bucket and key; so does a pointer when no
    /// store is given.
    pub fn object_store(mut self, store: impl ObjectStore) -> DaemonBuilder {
        self.object_store = Some(Arc::new(store));
        self
    }

    /// Whether an offloaded body is deleted from the object store once its message is deleted
    /// from the queue (after the SQS delete succeeded; best effort, a failure is logged with
    /// bucket and key). Off by default, as in AWS's Python `amazon-sqs-extended-client`
    /// (`delete_payload_from_s3`, default `False`): an SNS topic fans one object out to every
    /// subscribed queue, so the first queue to delete it would break the others. Turn it on
    /// only when this queue is the object's sole reader (sent straight to it); otherwise let an
    /// S3 lifecycle rule on the bucket expire objects after the queues' retention period.
    pub fn delete_payloads(mut self, delete: bool) -> DaemonBuilder {
        self.delete_payloads = delete;
        self
    }

    /// Whether an object store was given with [`object_store`](DaemonBuilder::object_store).
    pub fn has_object_store(&self) -> bool {
        self.object_store.is_some()
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: DaemonConfig) -> DaemonBuilder {
        self.config = config;
        self
    }

    /// Changes the configuration in place (for the command line, which sets several fields).
    #[cfg(feature = "cli")]
    pub(crate) fn configure(mut self, change: impl FnOnce(&mut DaemonConfig)) -> DaemonBuilder {
        change(&mut self.config);
        self
    }

    /// Messages handled at once.
    pub fn concurrency(mut self, concurrency: usize) -> DaemonBuilder {
        self.config.concurrency = concurrency.max(1);
        self
    }

    /// The configuration so far (what the setters and `configure` made of it).
    pub fn daemon_config(&self) -> &DaemonConfig {
        &self.config
    }

    /// Receives in flight at once.
    pub fn pollers(mut self, pollers: usize) -> DaemonBuilder {
        self.config.pollers = Some(pollers.max(1));
        self
    }

    /// Long-poll wait of each receive (default 20 s). With zero (short polling), a receive that
    /// finds nothing is followed by a pause of 20 ms before the next, cut short as soon as a
    /// delete or visibility change of this daemon's is done (which may make a message visible,
    /// or the queue idle): no busy loop of empty receives while handlers run.
    pub fn wait_time(mut self, wait_time: Duration) -> DaemonBuilder {
        self.config.wait_time = wait_time;
        self
    }

    /// Messages asked for per receive at most, 1 to 10 (default 10): see
    /// [`DaemonConfig::receive_limit`]. On a FIFO queue whose messages fail now and then, a
    /// lower limit keeps fewer messages of a group behind each failure, whose receive counts
    /// rise with its own.
    pub fn receive_limit(mut self, limit: usize) -> DaemonBuilder {
        self.config.receive_limit = limit.clamp(1, MAX_BATCH);
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
    ///
    /// On a FIFO queue, messages released behind a failed one of their group are received
    /// again with it and their receive counts rise with its own, which `max_attempts` reads as
    /// the queue's redrive policy does: leave headroom for the attempts of the messages that
    /// may stand ahead of a message, or receive fewer at once
    /// ([`receive_limit`](DaemonBuilder::receive_limit)); see [FIFO queues](super#fifo-queues).
    pub fn max_attempts(mut self, max_attempts: u32) -> DaemonBuilder {
        self.config.max_attempts = Some(max_attempts);
        self
    }

    /// How long shutdown waits for handlers.
    pub fn drain_timeout(mut self, drain_timeout: Duration) -> DaemonBuilder {
        self.config.drain_timeout = drain_timeout;
        self
    }

    /// How long any handler may run (default: no limit). Past it the handler is cancelled at
    /// the await it is waiting on (its future is dropped, so its locals, guards and
    /// connections are dropped there; code after that await does not run), its message is
    /// FAILED with a reason that says so and retried by the backoff policy, and what it
    /// published is not sent. A handler that must not stop halfway between two effects should
    /// make them idempotent or keep them within one await.
    pub fn handler_timeout(mut self, limit: Duration) -> DaemonBuilder {
        self.config.handler_timeout = Some(limit);
        self
    }

    /// The time limit of the `#[handler]` `H` alone, over [`handler_timeout`](DaemonBuilder::handler_timeout).
    pub fn handler_timeout_for<H: HandlerFn>(mut self, limit: Duration) -> DaemonBuilder {
        self.config.handler_timeouts.insert(H::HANDLER.name().to_owned(), limit);
        self
    }

    /// Adds a [`tower::Layer`] around every handler: tower's timeout, concurrency limit, rate
    /// limit and load shedding, or a layer of your own (see [`middleware`](crate::middleware)).
    /// Layers run in the order they are added, the first outermost; an error a layer returns
    /// is FAILED and retried, a [`FinalRefusal`](crate::middleware::FinalRefusal) SKIPPED.
    pub fn layer(mut self, layer: impl HandlerLayer) -> DaemonBuilder {
        self.layers = self.layers.layer(layer);
        self
    }

    /// Adds a layer around the `#[handler]` `H` alone, inside the layers around every handler:
    /// `.layer_for::<charge>(ConcurrencyLimitLayer::new(2))`.
    pub fn layer_for<H: HandlerFn>(mut self, layer: impl HandlerLayer) -> DaemonBuilder {
        self.layers = self.layers.layer_for::<H>(layer);
        self
    }

    /// Adds a set of layers (the set a test runs its handler through with
    /// [`HandlerTest::layers`](crate::testing::HandlerTest::layers)) after those added so far.
    pub fn layers(mut self, layers: HandlerLayers) -> DaemonBuilder {
        self.layers = self.layers.extend(layers);
        self
    }

    /// How long a delete or visibility change waits for others to fill its batch.
    pub fn settle_delay(mut self, settle_delay: Duration) -> DaemonBuilder {
        self.config.settle_delay = settle_delay;
        self
    }

    /// How long the heartbeat keeps one message invisible at most.
    pub fn heartbeat_max(mut self, heartbeat_max: Duration) -> DaemonBuilder {
        self.config.heartbeat_max = heartbeat_max;
        self
    }

    /// How long shutdown keeps retrying unsettled deletes and visibility changes.
    pub fn flush_timeout(mut self, flush_timeout: Duration) -> DaemonBuilder {
        self.config.flush_timeout = flush_timeout;
        self
    }

    /// How long receives may fail in a row before the daemon stops counting as
    /// [ready](crate::health::Health::ready) (default 60 s): a readiness probe then takes the
    /// process out of service without restarting it, and puts it back at the next successful
    /// receive.
    pub fn readiness_failure_threshold(mut self, threshold: Duration) -> DaemonBuilder {
        self.config.readiness_failure_threshold = threshold;
        self
    }

    /// Stops the daemon when receives have failed in a row for longer than `limit` (default:
    /// never, it retries with backoff for as long as it runs). It notices at the first failed
    /// receive past the limit (retries back off up to 3.2 s), stops receiving, drains what is
    /// in flight as on a stop, and its [`DaemonReport::failure`](super::DaemonReport::failure)
    /// says why, naming the last error: for a command line to exit with an error and a
    /// supervisor to restart it, or to alert.
    pub fn receive_failure_limit(mut self, limit: Duration) -> DaemonBuilder {
        self.config.receive_failure_limit = Some(limit);
        self
    }

    /// The handler table this builder would run, checked (none, duplicates, names,
    /// collaborators).
    pub fn handler_table(&self) -> Result<HandlerTable, HandlerSetError> {
        let candidates = self.candidates();
        let chosen = match &self.selection {
            None => candidates,
            Some(names) => {
                let mut chosen = Vec::new();
                for name in names {
                    let before = chosen.len();
                    chosen.extend(candidates.iter().filter(|h| h.is_named(name)).copied());
                    if chosen.len() == before {
                        return Err(HandlerSetError::UnknownHandler(name.clone()));
                    }
                }
                chosen
            }
        };
        if chosen.is_empty() && !self.allow_no_handlers {
            return Err(HandlerSetError::NoHandlers { daemon: self.name.clone() });
        }
        let table = HandlerTable::new(chosen)?;
        table.check_needs(&self.collaborators)?;
        Ok(table)
    }

    /// The handlers registered with [`handler`](DaemonBuilder::handler), or else the linked ones.
    fn candidates(&self) -> Vec<Handler> {
        if self.explicit.is_empty() {
            Handler::linked().copied().collect()
        } else {
            self.explicit.clone()
        }
    }

    /// The per-handler time limits of the configuration, by each chosen handler's full name; a
    /// name that is none of the candidates' is an error (a typo would leave a handler unbounded).
    fn handler_timeouts(
        &self,
        table: &HandlerTable,
    ) -> Result<HashMap<&'static str, Duration>, HandlerSetError> {
        let candidates = self.candidates();
        let mut limits = HashMap::new();
        for (name, limit) in &self.config.handler_timeouts {
            if !candidates.iter().any(|h| h.is_named(name)) {
                return Err(HandlerSetError::UnknownHandler(name.clone()));
            }
            for handler in table.handlers().filter(|h| h.is_named(name)) {
                limits.insert(handler.name(), *limit);
            }
        }
        Ok(limits)
    }

    /// The AsyncAPI document of this daemon reading `queue` (a URL or a name), feature
    /// `schema`: what its handlers take, and what its producer's topic map may send. Write it
    /// with [`AsyncApi::render`](crate::schema::AsyncApi::render).
    ///
    /// ```
    /// use pubsub_core::registry::Registry;
    /// use pubsub_core::{handler, DaemonBuilder, HandlerError, PubSubMessage};
    /// # use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
    /// #[media_type = "application/vnd.acme.pubsub.ping"]
    /// struct Ping {}
    ///
    /// #[handler]
    /// async fn on_ping(_ping: Ping) -> Result<(), HandlerError> {
    ///     Ok(())
    /// }
    ///
    /// let document = DaemonBuilder::new("pinger").handler::<on_ping>().asyncapi("pings")?.document(Registry::global()?);
    /// assert_eq!(document["operations"]["receive_application_vnd_acme_pubsub_ping"]["action"], "receive");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "schema")]
    pub fn asyncapi(&self, queue: &str) -> Result<crate::schema::AsyncApi, HandlerSetError> {
        let table = self.handler_table()?;
        let media_types: Vec<&str> = table.handlers().map(|handler| handler.media_type()).collect();
        let document = crate::schema::AsyncApi::new(&self.name)
            .receives(queue, media_types)
            .expect("a handler's media type is a pattern");
        Ok(match &self.producer {
            Some(producer) => document.topics(crate::producer::TopicMap::clone(producer.topics())),
            None => document,
        })
    }

    /// The daemon's name, as given to [`new`](DaemonBuilder::new).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the handlers and builds the daemon over `subscriber`.
    pub fn build<S: Subscriber>(self, subscriber: S) -> Result<Daemon<S>, HandlerSetError> {
        self.build_shared(Arc::new(subscriber))
    }

    /// As [`build`](DaemonBuilder::build), over a shared subscriber.
    pub fn build_shared<S: Subscriber>(self, subscriber: Arc<S>) -> Result<Daemon<S>, HandlerSetError> {
        let (dispatcher, rest) = self.into_dispatcher(subscriber.queue_name())?;
        Ok(Daemon {
            health: StoppedOnDrop(Health::new(&rest.name, &rest.config)),
            name: rest.name,
            subscriber,
            dispatcher: Arc::new(dispatcher),
            on_outcome: rest.on_outcome,
            config: rest.config,
        })
    }

    /// Checks the handlers as [`build`](DaemonBuilder::build) does and returns what a daemon
    /// runs on each message, for a runner that receives and settles messages its own way (AWS
    /// Lambda's event source mapping, a test harness): the handlers with their collaborators,
    /// layers and time limits, the producer, `max_attempts` and the backoff.
    /// [`Dispatcher::dispatch`] then turns one received message into a
    /// [`HandledMessage`], logged and traced as the daemon's are, and calls the
    /// [`on_outcome`](DaemonBuilder::on_outcome) hook with it. `queue_name` names the queue in
    /// traces (empty when unknown). The settings of the daemon's own loop (pollers, waits,
    /// heartbeat, drain, settling) have no use here.
    pub fn build_dispatcher(self, queue_name: &str) -> Result<Dispatcher, HandlerSetError> {
        let (mut dispatcher, rest) = self.into_dispatcher(queue_name)?;
        dispatcher.on_outcome = rest.on_outcome;
        Ok(dispatcher)
    }

    /// The dispatcher (without the hook) and what a daemon needs besides.
    fn into_dispatcher(self, queue_name: &str) -> Result<(Dispatcher, Rest), HandlerSetError> {
        let handlers = Arc::new(self.handler_table()?);
        let by_handler = self.handler_timeouts(&handlers)?;
        let handling = Handling {
            max_attempts: self.config.max_attempts,
            backoff: self.config.backoff,
            timeouts: HandlerTimeouts { default: self.config.handler_timeout, by_handler },
            layers: self.layers,
        };
        let payloads = Payloads { resolver: Resolver::new(self.object_store), delete: self.delete_payloads };
        let dispatcher =
            Dispatcher::new(queue_name, handlers, self.producer, self.collaborators, handling, payloads);
        Ok((dispatcher, Rest { name: self.name, on_outcome: self.on_outcome, config: self.config }))
    }
}

/// What a [`Daemon`] keeps of its builder besides the dispatcher.
struct Rest {
    name: String,
    on_outcome: Option<OutcomeHook>,
    config: DaemonConfig,
}
