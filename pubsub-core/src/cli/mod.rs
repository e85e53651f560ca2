//! The daemon command line, as the seed's: `--sqs-queue-url` (a queue URL, a file of JSON
//! messages, or `STDIN`), `--stdin`, `--testing`, `--debug`, `--concurrency`, a daemon name;
//! the seed's consumer options (`--wait-seconds`, `--receive-limit`, `--backoff-policy`,
//! `--retry-delay-seconds`, `--max-attempts`); and ours: `--handler NAME`,
//! `--handler-timeout [NAME=]SECONDS`, `--drain-timeout`. Each can come from the environment,
//! named as microcosm names it ([`Environment`], [`DaemonArgs::ENVIRONMENT`]).
//!
//! [`run_embedded`] runs the embedded broker: messages from a file or from standard input (one
//! JSON message per line) are handled until the queue is drained. A queue URL needs a
//! transport, whose crate adds its own flags (pubsub-aws: `AwsArgs`, flattened beside these,
//! and a runner that does it all).

mod environment;

pub use environment::{parse_with_environment, Environment, EnvironmentTable};

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::backoff::BackoffPolicy;
use crate::daemon::{Daemon, DaemonBuilder, DaemonReport};
use crate::handlers::HandlerSetError;
use crate::memory::{MemoryBroker, MemorySubscriber, QueueOptions};
use crate::payload::{ObjectStore, PayloadPointer};

/// The arguments every daemon takes.
#[derive(Debug, Clone, Parser)]
#[command(about = "A pubsub consumer daemon")]
pub struct DaemonArgs {
    /// The daemon's name: for logs, the service name of its traces, and the prefix of its
    /// environment variables (upper-cased, `-` as `_`).
    #[arg(long, default_value = "daemon")]
    pub name: String,
    /// Where messages come from: an SQS queue URL, a file of JSON messages (one per line), or
    /// `STDIN`.
    #[arg(long, value_name = "URL|FILE|STDIN")]
    pub sqs_queue_url: Option<String>,
    /// Read JSON messages from standard input, one per line (same as `--sqs-queue-url STDIN`).
    #[arg(long)]
    pub stdin: bool,
    /// Use the embedded in-memory broker instead of a real queue.
    #[arg(long)]
    pub testing: bool,
    /// Log at debug level (message bodies included; AWS SDK internals stay at info).
    #[arg(long)]
    pub debug: bool,
    /// Messages handled at once.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Long-poll wait of each receive, 0 to 20 seconds (default 20).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wait_seconds: Option<u64>,
    /// Messages asked for per receive at most, 1 to 10 (SQS's MaxNumberOfMessages).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=10))]
    pub receive_limit: u16,
    /// How FAILED messages wait before their next attempt: NaiveBackoffPolicy (fixed:
    /// --retry-delay-seconds), ExponentialBackoffPolicy, ExponentialBackoffBaseJitterPolicy.
    #[arg(long, value_name = "POLICY", default_value = "NaiveBackoffPolicy", value_parser = backoff_policy_name)]
    pub backoff_policy: String,
    /// The fixed backoff policy's delay, in whole seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub retry_delay_seconds: u64,
    /// Receive count above which a message is SKIPPED unhandled; no limit when absent (the
    /// queue's redrive policy decides).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: Option<u32>,
    /// How long the stop waits for handlers under way, in seconds (default 30).
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub drain_timeout: Option<Duration>,
    /// Not ready (`/health/ready` 503) once receives have failed for this many seconds in a
    /// row (default 60).
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub readiness_failure_threshold_seconds: Option<Duration>,
    /// Stop, drained, and exit 1 once receives have failed for this many seconds in a row (a
    /// daemon that cannot reach its queue leaves it to its supervisor to restart it); `0`
    /// keeps trying forever.
    #[arg(long, value_name = "SECONDS", default_value = "300", value_parser = seconds_or_never)]
    pub receive_failure_limit_seconds: Duration,
    /// Run only these handlers (function names); all linked handlers when absent. Repeatable,
    /// or comma-separated.
    #[arg(long = "handler", value_name = "NAME", value_delimiter = ',')]
    pub handlers: Vec<String>,
    /// Cancel a handler still running after this many seconds (`30`, `2.5`), or only the
    /// handler named (`charge=10`); repeatable, a named limit wins over the plain one. A
    /// handler past its limit has its message FAILED and retried, and what it published is not
    /// sent. No limit when absent.
    #[arg(long = "handler-timeout", value_name = "[NAME=]SECONDS", value_parser = HandlerTimeout::parse, value_delimiter = ',')]
    pub handler_timeouts: Vec<HandlerTimeout>,
    /// Print this daemon's AsyncAPI 3.0 document (the queue it reads, the topics it publishes
    /// to, the schema of each message) to standard output, and exit.
    #[cfg(feature = "schema")]
    #[arg(long)]
    pub asyncapi: bool,
    /// The format of `--asyncapi`.
    #[cfg(feature = "schema")]
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = crate::schema::AsyncApiFormat::Json)]
    pub asyncapi_format: crate::schema::AsyncApiFormat,
}

/// One `--handler-timeout`: a limit for every handler, or for the one named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerTimeout {
    /// The handler (function name or full path); every handler when `None`.
    pub handler: Option<String>,
    /// The limit.
    pub limit: Duration,
}

impl HandlerTimeout {
    /// Reads `SECONDS` or `NAME=SECONDS`.
    pub fn parse(text: &str) -> Result<HandlerTimeout, String> {
        let (handler, seconds) = match text.split_once('=') {
            Some(("", _)) => return Err(format!("`{text}` names no handler before `=`")),
            Some((name, seconds)) => (Some(name.to_owned()), seconds),
            None => (None, text),
        };
        let limit = self::seconds(seconds).map_err(|error| format!("{error}, or `handler_name=30`"))?;
        Ok(HandlerTimeout { handler, limit })
    }
}

/// Whether `url` has what a queue URL has: a host, then a path (`/ACCOUNT/QUEUE`), and nothing
/// that a URL cannot hold.
fn is_queue_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or("", |(_, rest)| rest);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_end_matches('/');
    !host.is_empty()
        && !host.starts_with(':')
        && !path.is_empty()
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A number of seconds above 0 (`30`, `2.5`).
fn seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value > 0.0 && value.is_finite() && value < 1e9 => Ok(Duration::from_secs_f64(value)),
        _ => Err(format!("`{text}` is not a number of seconds above 0: write `30` or `2.5`")),
    }
}

/// A number of seconds above 0, or `0` for never (zero).
fn seconds_or_never(text: &str) -> Result<Duration, String> {
    if text.trim().parse::<f64>() == Ok(0.0) {
        return Ok(Duration::ZERO);
    }
    seconds(text).map_err(|error| format!("{error}, or `0` for never"))
}

/// A backoff policy's name, checked.
fn backoff_policy_name(text: &str) -> Result<String, String> {
    BackoffPolicy::named(text, Duration::ZERO)
        .map(|_| text.trim().to_owned())
        .map_err(|error| error.to_string())
}

/// Where a daemon reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A queue URL: read by a transport's subscriber, not by [`run_embedded`].
    Queue(String),
    /// A file of JSON messages, one per line.
    File(PathBuf),
    /// Standard input, one JSON message per line.
    Stdin,
    /// The embedded broker with nothing fed in: runs until stopped.
    Embedded,
}

/// What stops a daemon command line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A queue URL given to the embedded runner.
    #[error("`{0}` is a queue URL: the embedded runner reads files and standard input; read a queue with a transport's subscriber")]
    NotEmbedded(String),
    /// No source given.
    #[error("nothing to read: give --sqs-queue-url URL|FILE|STDIN, --stdin, or --testing")]
    NoSource,
    /// `--sqs-queue-url` starts as a URL but is not a queue's.
    #[error(
        "--sqs-queue-url (or {variable}): `{url}` is not a queue URL: write \
         https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE (or a file, or STDIN)"
    )]
    BadQueueUrl {
        /// The value.
        url: String,
        /// The environment variable it may have come from.
        variable: String,
    },
    /// The handlers cannot run together.
    #[error(transparent)]
    Handlers(#[from] HandlerSetError),
    /// The linked message types cannot be told apart.
    #[error(transparent)]
    Registry(crate::registry::RegistryError),
    /// Reading the input failed.
    #[error("cannot read {what}: {error}")]
    Read {
        /// The file or standard input.
        what: String,
        /// Why.
        error: std::io::Error,
    },
}

impl DaemonArgs {
    /// The environment variable of each option, after the daemon's name
    /// ([`Environment::variable`]): the seed's names for the seed's options, and a `DAEMON`
    /// group for ours.
    pub const ENVIRONMENT: EnvironmentTable = &[
        ("sqs_queue_url", "SQS_CONSUMER__SQS_QUEUE_URL"),
        ("wait_seconds", "SQS_CONSUMER__WAIT_SECONDS"),
        ("receive_limit", "SQS_CONSUMER__LIMIT"),
        ("backoff_policy", "SQS_CONSUMER__BACKOFF_POLICY"),
        ("retry_delay_seconds", "SQS_CONSUMER__MESSAGE_RETRY_VISIBILITY_TIMEOUT_SECONDS"),
        ("max_attempts", "SQS_MESSAGE_DISPATCHER__MESSAGE_MAX_PROCESSING_ATTEMPTS"),
        ("stdin", "DAEMON__STDIN"),
        ("testing", "DAEMON__TESTING"),
        ("debug", "DAEMON__DEBUG"),
        ("concurrency", "DAEMON__CONCURRENCY"),
        ("drain_timeout", "DAEMON__DRAIN_TIMEOUT_SECONDS"),
        ("readiness_failure_threshold_seconds", "DAEMON__READINESS_FAILURE_THRESHOLD_SECONDS"),
        ("receive_failure_limit_seconds", "DAEMON__RECEIVE_FAILURE_LIMIT_SECONDS"),
        ("handlers", "DAEMON__HANDLERS"),
        ("handler_timeouts", "DAEMON__HANDLER_TIMEOUTS"),
    ];

    /// Parses the process's command line and environment ([`parse_with_environment`]) for a
    /// daemon named `default_name` unless `--name` says otherwise; on an error, prints it and
    /// exits 2.
    pub fn parse_for(default_name: &str) -> DaemonArgs {
        parse_with_environment(default_name, &[DaemonArgs::ENVIRONMENT], std::env::args_os())
            .unwrap_or_else(|error| error.exit())
    }

    /// The backoff policy of `--backoff-policy` and `--retry-delay-seconds`.
    pub fn backoff(&self) -> BackoffPolicy {
        BackoffPolicy::named(&self.backoff_policy, Duration::from_secs(self.retry_delay_seconds))
            .expect("checked when parsed")
    }

    /// Where to read from.
    pub fn source(&self) -> Result<Source, CliError> {
        let url = self.sqs_queue_url.as_deref();
        let is_url = |url: &str| url.starts_with("https://") || url.starts_with("http://");
        // A URL that is not a queue's is an error even when --stdin wins: a mistake all the same.
        if let Some(url) = url.filter(|url| is_url(url) && !is_queue_url(url)) {
            let variable = Environment::of(&self.name).variable("SQS_CONSUMER__SQS_QUEUE_URL");
            return Err(CliError::BadQueueUrl { url: url.to_owned(), variable });
        }
        if self.stdin {
            return Ok(Source::Stdin);
        }
        match url {
            Some("STDIN") | Some("-") => Ok(Source::Stdin),
            Some(url) if is_url(url) => Ok(Source::Queue(url.to_owned())),
            Some(path) => Ok(Source::File(PathBuf::from(path))),
            None if self.testing => Ok(Source::Embedded),
            None => Err(CliError::NoSource),
        }
    }

    /// A daemon builder with this command line's name, options, handler selection and
    /// handler timeouts.
    pub fn builder(&self) -> DaemonBuilder {
        let mut builder = DaemonBuilder::new(&self.name)
            .concurrency(self.concurrency)
            .receive_limit(self.receive_limit.into())
            .backoff(self.backoff());
        if let Some(wait) = self.wait_seconds {
            builder = builder.wait_time(Duration::from_secs(wait));
        }
        if let Some(attempts) = self.max_attempts {
            builder = builder.max_attempts(attempts);
        }
        if let Some(drain) = self.drain_timeout {
            builder = builder.drain_timeout(drain);
        }
        if let Some(threshold) = self.readiness_failure_threshold_seconds {
            builder = builder.readiness_failure_threshold(threshold);
        }
        if !self.receive_failure_limit_seconds.is_zero() {
            builder = builder.receive_failure_limit(self.receive_failure_limit_seconds);
        }
        if !self.handlers.is_empty() {
            builder = builder.select_handlers(self.handlers.clone());
        }
        builder.configure(|config| {
            for timeout in &self.handler_timeouts {
                match &timeout.handler {
                    None => config.handler_timeout = Some(timeout.limit),
                    Some(name) => {
                        config.handler_timeouts.insert(name.clone(), timeout.limit);
                    }
                }
            }
        })
    }

    /// The logging this command line asks for: info, or debug with `--debug` (`RUST_LOG`
    /// overrides). Add the targets of your transport to keep quiet
    /// ([`Logging::quiet`](crate::logging::Logging::quiet)), then `.init()`.
    pub fn logging(&self) -> crate::logging::Logging {
        crate::logging::Logging::new().debug(self.debug)
    }
}

impl DaemonArgs {
    /// With `--asyncapi`: prints the AsyncAPI document of the daemon `builder` would build
    /// (with `topics` as what it publishes, when given) to standard output and returns the exit
    /// code, 0, or 2 when its handlers cannot run together. `None` without `--asyncapi`, or
    /// without the feature `schema`: run the daemon.
    ///
    /// Call it before anything else happens: the document is all that goes to standard output.
    pub fn print_asyncapi(
        &self,
        builder: &DaemonBuilder,
        topics: Option<&crate::TopicMap>,
    ) -> Option<ExitCode> {
        #[cfg(feature = "schema")]
        if self.asyncapi {
            return Some(match self.asyncapi_document(builder, topics) {
                Ok(document) => {
                    print!("{document}");
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(2)
                }
            });
        }
        let _ = (builder, topics);
        None
    }

    /// The AsyncAPI document `--asyncapi` prints, in the `--asyncapi-format` asked for. The
    /// queue is `--sqs-queue-url`'s when it is a URL, else the daemon's name.
    #[cfg(feature = "schema")]
    pub fn asyncapi_document(
        &self,
        builder: &DaemonBuilder,
        topics: Option<&crate::TopicMap>,
    ) -> Result<String, CliError> {
        let queue = match self.source() {
            Ok(Source::Queue(url)) => url,
            _ => self.name.clone(),
        };
        let mut document = builder.asyncapi(&queue)?;
        if let Some(topics) = topics {
            document = document.topics(topics.clone());
        }
        let registry = crate::registry::Registry::global().map_err(CliError::Registry)?;
        Ok(document.render(registry, self.asyncapi_format))
    }
}

/// Runs the daemon named `default_name` (unless `--name` says otherwise) from its command line
/// and environment, on the embedded broker: a file or standard input is handled until drained,
/// `--testing` runs until ctrl-c or SIGTERM, and `--asyncapi` prints the daemon's document
/// (feature `schema`). Reading a queue takes a transport: pubsub-aws's runner is this plus SQS,
/// SNS and S3.
///
/// The exit code is 0, 1 when the daemon failed, 2 on a configuration error (printed).
///
/// ```no_run
/// #[tokio::main]
/// async fn main() -> std::process::ExitCode {
///     pubsub_core::cli::run("example").await
/// }
/// ```
pub async fn run(default_name: &str) -> ExitCode {
    let args = DaemonArgs::parse_for(default_name);
    let builder = args.builder();
    if let Some(code) = args.print_asyncapi(&builder, None) {
        return code;
    }
    match args.logging().try_init() {
        // A program that set up its own logs keeps them.
        Ok(()) | Err(crate::logging::LoggingError::AlreadySet(_)) => {}
        Err(error) => return configuration_error(error),
    }
    let source = match args.source() {
        Ok(Source::Queue(url)) => return configuration_error(CliError::NotEmbedded(url)),
        Ok(source) => source,
        Err(error) => return configuration_error(error),
    };
    match EmbeddedDaemon::new(builder, &source).await {
        Ok(daemon) => exit_code(&daemon.run().await),
        Err(error) => configuration_error(error),
    }
}

/// Prints a stopped daemon's report to standard error and returns the exit code: 1 when the
/// daemon itself failed (messages that failed are in the report and the log, not a failure of
/// the daemon), else 0.
pub fn exit_code(report: &DaemonReport) -> ExitCode {
    eprintln!("{report}");
    if report.count(crate::Verdict::Failed) > 0 {
        eprintln!("some messages failed; see the log lines above");
    }
    match report.failure() {
        Some(failure) => {
            eprintln!("error: the daemon failed: {failure}");
            ExitCode::FAILURE
        }
        None => ExitCode::SUCCESS,
    }
}

/// Exit 2, before any message: the configuration cannot work.
fn configuration_error(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(2)
}

/// Runs `builder` on the embedded broker with what `source` holds: a file or standard input is
/// handled until drained; [`Source::Embedded`] runs until ctrl-c or SIGTERM.
pub async fn run_embedded(builder: DaemonBuilder, source: &Source) -> Result<DaemonReport, CliError> {
    Ok(EmbeddedDaemon::new(builder, source).await?.run().await)
}

/// A daemon on the embedded broker, fed with what a [`Source`] holds, not yet running: take its
/// [`health`](Daemon::health) first, then [`run`](EmbeddedDaemon::run) it.
#[derive(Debug)]
pub struct EmbeddedDaemon {
    /// The daemon.
    pub daemon: Daemon<MemorySubscriber>,
    /// Whether it runs until its queue is drained (a file, standard input) rather than until
    /// a signal (`--testing`).
    pub until_idle: bool,
}

impl EmbeddedDaemon {
    /// Reads the file or standard input into a queue of a new embedded broker and builds the
    /// daemon that reads it. Unless the builder has an object store of its own, the daemon
    /// reads pointers from the broker's, and a line over SQS's limit is offloaded to it
    /// (bucket [`EMBEDDED_BUCKET`]) and sent as a pointer.
    pub async fn new(builder: DaemonBuilder, source: &Source) -> Result<EmbeddedDaemon, CliError> {
        let broker = MemoryBroker::new();
        let queue = "daemon";
        broker.create_queue(queue, QueueOptions::default());
        broker.create_bucket(EMBEDDED_BUCKET);
        // A builder with a store of its own reads pointers from it: nothing is offloaded here.
        let offload = !builder.has_object_store();
        let builder = if offload { builder.object_store(broker.object_store()) } else { builder };
        let lines: Vec<(usize, String)> = match source {
            Source::Queue(url) => return Err(CliError::NotEmbedded(url.clone())),
            Source::File(path) => read_lines(std::io::BufReader::new(
                std::fs::File::open(path)
                    .map_err(|error| CliError::Read { what: path.display().to_string(), error })?,
            ))
            .map_err(|error| CliError::Read { what: path.display().to_string(), error })?,
            Source::Stdin => read_lines(std::io::stdin().lock())
                .map_err(|error| CliError::Read { what: "standard input".to_owned(), error })?,
            Source::Embedded => Vec::new(),
        };
        for (number, line) in lines {
            // Offloaded as an extended client would: a body SQS could not carry.
            let line = if offload && line.len() > crate::memory::MAX_PAYLOAD_BYTES {
                let pointer = PayloadPointer::new(EMBEDDED_BUCKET, crate::uuid::uuid_v4());
                let body = pointer.to_body();
                let offloaded = broker.object_store().put(&pointer, line).await;
                if let Err(error) = offloaded {
                    tracing::warn!(line = number, %error, "input line could not be offloaded; skipped");
                    continue;
                }
                body
            } else {
                line
            };
            if let Err(error) = broker.send(queue, line).await {
                tracing::warn!(line = number, %error, "input line refused; skipped");
            }
        }
        let subscriber = broker.subscriber(queue).expect("the daemon's queue exists");
        let daemon = builder.wait_time(EMBEDDED_WAIT).build(subscriber)?;
        Ok(EmbeddedDaemon { daemon, until_idle: !matches!(source, Source::Embedded) })
    }

    /// Runs until drained, or until a signal.
    pub async fn run(self) -> DaemonReport {
        if self.until_idle {
            self.daemon.run_until_idle().await
        } else {
            self.daemon.run_until_signal().await
        }
    }
}

/// The bucket of the embedded broker's object store that [`EmbeddedDaemon`] offloads input
/// lines over SQS's limit to.
pub const EMBEDDED_BUCKET: &str = "embedded-payloads";

/// The embedded broker answers at once: a short long-poll keeps the idle check quick.
const EMBEDDED_WAIT: Duration = Duration::from_millis(200);
/// Non-blank lines, with their numbers (from 1).
fn read_lines(reader: impl BufRead) -> std::io::Result<Vec<(usize, String)>> {
    reader
        .lines()
        .enumerate()
        .filter(|(_, line)| !matches!(line, Ok(text) if text.trim().is_empty()))
        .map(|(index, line)| line.map(|text| (index + 1, text)))
        .collect()
}
