//! The daemon command line, as the seed's: `--sqs-queue-url` (a queue URL, a file of JSON
//! messages, or `STDIN`), `--stdin`, `--testing`, `--debug`, `--concurrency`, a daemon name;
//! and ours: `--handler NAME`, `--handler-timeout [NAME=]SECONDS`.
//!
//! [`run_embedded`] runs the embedded broker: messages from a file or from standard input (one
//! JSON message per line) are handled until the queue is drained. A queue URL needs a
//! transport, whose crate adds its own flags (pubsub-aws: `AwsArgs`, flattened beside these).

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::daemon::{DaemonBuilder, DaemonReport};
use crate::handlers::HandlerSetError;
use crate::memory::{MemoryBroker, QueueOptions};

/// The arguments every daemon takes.
#[derive(Debug, Clone, Parser)]
#[command(about = "A pubsub consumer daemon")]
pub struct DaemonArgs {
    /// The daemon's name, for logs.
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
    /// Run only these handlers (function names); all linked handlers when absent.
    #[arg(long = "handler", value_name = "NAME")]
    pub handlers: Vec<String>,
    /// Cancel a handler still running after this many seconds (`30`, `2.5`), or only the
    /// handler named (`charge=10`); repeatable, a named limit wins over the plain one. A
    /// handler past its limit has its message FAILED and retried, and what it published is not
    /// sent. No limit when absent.
    #[arg(long = "handler-timeout", value_name = "[NAME=]SECONDS", value_parser = HandlerTimeout::parse)]
    pub handler_timeouts: Vec<HandlerTimeout>,
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
        match seconds.parse::<f64>() {
            Ok(value) if value > 0.0 && value.is_finite() => {
                Ok(HandlerTimeout { handler, limit: Duration::from_secs_f64(value) })
            }
            _ => Err(format!(
                "`{seconds}` is not a number of seconds above 0: write `30`, `2.5`, or `handler_name=30`"
            )),
        }
    }
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
    /// The handlers cannot run together.
    #[error(transparent)]
    Handlers(#[from] HandlerSetError),
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
    /// Where to read from.
    pub fn source(&self) -> Result<Source, CliError> {
        if self.stdin {
            return Ok(Source::Stdin);
        }
        match self.sqs_queue_url.as_deref() {
            Some("STDIN") | Some("-") => Ok(Source::Stdin),
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                Ok(Source::Queue(url.to_owned()))
            }
            Some(path) => Ok(Source::File(PathBuf::from(path))),
            None if self.testing => Ok(Source::Embedded),
            None => Err(CliError::NoSource),
        }
    }

    /// A daemon builder with this command line's name, concurrency, handler selection and
    /// handler timeout.
    pub fn builder(&self) -> DaemonBuilder {
        let mut builder = DaemonBuilder::new(&self.name).concurrency(self.concurrency);
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

/// Runs `builder` on the embedded broker with what `source` holds: a file or standard input is
/// handled until drained; [`Source::Embedded`] runs until ctrl-c or SIGTERM.
pub async fn run_embedded(builder: DaemonBuilder, source: &Source) -> Result<DaemonReport, CliError> {
    let broker = MemoryBroker::new();
    let queue = "daemon";
    broker.create_queue(queue, QueueOptions::default());
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
        // A line SQS could not carry (over 256 KiB) is reported and skipped, not fatal.
        if let Err(error) = broker.send(queue, line).await {
            tracing::warn!(line = number, %error, "input line refused; skipped");
        }
    }
    let subscriber = broker.subscriber(queue).expect("the daemon's queue exists");
    let daemon = builder.wait_time(EMBEDDED_WAIT).build(subscriber)?;
    Ok(match source {
        Source::Embedded => daemon.run_until_signal().await,
        _ => daemon.run_until_idle().await,
    })
}

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
