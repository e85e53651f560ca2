//! Redriving a dead-letter queue: [`Redrive`] moves messages back from a dead-letter queue to
//! another queue (usually the one whose redrive policy sent them there), with
//! `ReceiveMessage`, `SendMessageBatch` and `DeleteMessageBatch`, ten at a time.
//!
//! What it guarantees:
//!
//! - A message is sent before it is deleted, and deleted only once its send succeeded and it
//!   was reported (the `on_moved` callback of [`Redrive::run`] returned `Ok`): nothing leaves
//!   the dead-letter queue unseen, and a failure half-way loses nothing.
//! - Bodies and message attributes are sent unchanged, whatever their data type (`String`,
//!   `Number`, `Binary`, and custom ones such as `String.x` or `Number.int`).
//! - To a FIFO queue, each message keeps its `MessageGroupId`, and its deduplication id is its
//!   message id in the dead-letter queue: fresh for every message, the same when a move is
//!   tried again, so a re-run after a send whose delete failed does not duplicate (within
//!   SQS's five-minute deduplication window). A message without a group (from a standard
//!   queue) is not sent to a FIFO queue: it is reported in [`RedriveReport::not_moved`] and
//!   stays in the dead-letter queue.
//! - A message SQS refuses (a failed entry of `SendMessageBatch`) is reported and stays in the
//!   dead-letter queue; the run goes on with the others. A whole request failing (the target
//!   queue deleted, the network gone) stops the run: [`RedriveError::Stopped`] carries the
//!   report of what moved before it.
//! - Every message received and not deleted is made visible again (visibility timeout 0) when
//!   the run ends, however it ends: hidden until then, it is tried once per run, and messages
//!   later in its FIFO group are not received meanwhile (their order is kept).
//! - A dry run ([`Redrive::dry_run`]) reports what would move and moves nothing.
//!
//! `StartMessageMoveTask`, SQS's own redrive, is not used: it moves only to the source queue
//! or another queue by ARN with no report per message, and not every emulator has it.
//!
//! ```no_run
//! # async fn example(config: &aws_config::SdkConfig) -> Result<(), pubsub_aws::redrive::RedriveError> {
//! use pubsub_aws::redrive::Redrive;
//!
//! let report = Redrive::new(config, "https://sqs.../orders-dlq", "https://sqs.../orders")
//!     .max(100)
//!     .run(|moved| {
//!         println!("{}", serde_json::to_string(moved)?);
//!         Ok(())
//!     })
//!     .await?;
//! eprintln!("{report}"); // moved 42, left 0
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageAttributeValue,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use pubsub_core::transport::TransportError;
use serde::Serialize;
use serde_json::Value;

use crate::config::Timeouts;
use crate::errors::{transport_error, Resource};

/// Messages per receive, send and delete: SQS's batch limit.
const BATCH: usize = 10;

/// SQS's longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// SQS's longest visibility timeout (12 hours).
const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);

/// How long a received message stays hidden unless [`Redrive::visibility_timeout`] says: long
/// enough for one batch to be sent, reported and deleted.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long each receive waits for messages unless [`Redrive::wait_time`] says; a receive that
/// brings nothing new ends the run.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);

/// A redrive of one dead-letter queue to one queue; see the [module](self) for what it
/// guarantees.
#[derive(Debug, Clone)]
pub struct Redrive {
    client: aws_sdk_sqs::Client,
    from: String,
    to: String,
    max: Option<usize>,
    dry_run: bool,
    visibility_timeout: Duration,
    wait: Duration,
}

/// A message moved (or, in a dry run, that would move): what [`Redrive::run`] reports of each,
/// after its send succeeded and before it is deleted. Serialized, it is one JSON object with
/// these four keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// Its message id in the dead-letter queue.
    pub message_id: String,
    /// Its message id in the target queue; `None` in a dry run.
    pub new_message_id: Option<String>,
    /// Its `media_type` message attribute, else the `mediaType` of its body (a pubsub message,
    /// raw or inside an SNS notification, whose `MessageAttributes` are read too); `None` when
    /// neither says.
    pub media_type: Option<String>,
    /// Its `ApproximateReceiveCount`, this receive included.
    pub receive_count: Option<u32>,
}

/// A message left in the dead-letter queue, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotMoved {
    /// Its message id in the dead-letter queue.
    pub message_id: String,
    /// Why: SQS's code and message, or the redrive's own reason.
    pub reason: String,
}

/// What a run did. Its `Display` is the one-line summary: `moved 3, left 0`, or in a dry run
/// `would move 3, moved 0, left 3`, with the messages not moved and those sent but not deleted
/// counted when there are any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Messages sent to the target, reported and deleted from the dead-letter queue; in a dry
    /// run, the messages that would move.
    pub moved: usize,
    /// Messages not sent (refused, or a failed entry of `SendMessageBatch`): they are still in
    /// the dead-letter queue, visible again.
    pub not_moved: Vec<NotMoved>,
    /// Messages sent to the target but still in the dead-letter queue (their delete failed, or
    /// reporting them failed): a re-run sends them again, which a FIFO target deduplicates
    /// within five minutes and a standard one does not.
    pub not_deleted: Vec<NotMoved>,
    /// The messages in the dead-letter queue when the run ended (SQS's approximate counts of
    /// visible and in-flight messages); `None` when they could not be read.
    pub left: Option<u64>,
}

impl RedriveReport {
    /// Whether every message received was moved (or, in a dry run, would move).
    pub fn is_complete(&self) -> bool {
        self.not_moved.is_empty() && self.not_deleted.is_empty()
    }
}

impl fmt::Display for RedriveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dry_run {
            write!(f, "would move {}, moved 0", self.moved)?;
        } else {
            write!(f, "moved {}", self.moved)?;
        }
        if !self.not_moved.is_empty() {
            write!(f, ", not moved {}", self.not_moved.len())?;
        }
        if !self.not_deleted.is_empty() {
            write!(f, ", sent but not deleted {}", self.not_deleted.len())?;
        }
        match self.left {
            Some(left) => write!(f, ", left {left}"),
            None => write!(f, ", left unknown"),
        }
    }
}

/// Which queue of a redrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRole {
    /// The dead-letter queue messages are taken from.
    From,
    /// The queue they are sent to.
    To,
}

impl fmt::Display for QueueRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueRole::From => "the dead-letter queue (from)",
            QueueRole::To => "the target queue (to)",
        })
    }
}

/// The request whose failure stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `ReceiveMessage` from the dead-letter queue.
    Receive,
    /// `SendMessageBatch` to the target: nothing of that batch was deleted.
    Send,
    /// `DeleteMessageBatch` from the dead-letter queue: that batch was sent and reported but
    /// is still in the dead-letter queue.
    Delete,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Receive => "receiving from the dead-letter queue",
            Step::Send => "sending to the target queue (nothing of that batch was deleted)",
            Step::Delete => "deleting from the dead-letter queue (that batch was sent but not deleted)",
        })
    }
}

/// Why a redrive did not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// The dead-letter queue and the target are the same queue.
    #[error("the dead-letter queue and the target are the same queue ({0}): nothing to redrive")]
    SameQueue(String),
    /// A setting is out of SQS's range.
    #[error("invalid redrive: {0}")]
    Invalid(String),
    /// A queue does not exist, or cannot be read; nothing was received.
    #[error("{role}: {source}; nothing was moved")]
    Queue {
        /// Which queue.
        role: QueueRole,
        /// The queue's URL.
        url: String,
        /// What `GetQueueAttributes` said.
        #[source]
        source: TransportError,
    },
    /// A request failed half-way: the run stopped; `report` says what moved before it. Every
    /// message received and not deleted was made visible again.
    #[error("{step} failed: {source}; stopped: {report}")]
    Stopped {
        /// The request that failed.
        step: Step,
        /// Its error.
        #[source]
        source: TransportError,
        /// What the run did before it.
        report: RedriveReport,
    },
    /// Reporting a moved message failed (the callback of [`Redrive::run`]): the run stopped;
    /// that message and the rest of its batch were sent but not deleted.
    #[error("reporting a moved message failed: {source}; stopped: {report}")]
    Report {
        /// The callback's error.
        #[source]
        source: std::io::Error,
        /// What the run did before it.
        report: RedriveReport,
    },
}

impl RedriveError {
    /// What the run did before it stopped; `None` when it did not start.
    pub fn report(&self) -> Option<&RedriveReport> {
        match self {
            RedriveError::Stopped { report, .. } | RedriveError::Report { report, .. } => Some(report),
            _ => None,
        }
    }
}

/// Why the loop stopped, before the report is final.
enum Stop {
    Step(Step, TransportError),
    Report(std::io::Error),
}

/// A run's state: the report so far, every message id received, and the receipt handle of
/// each message to make visible again at the end.
struct State {
    report: RedriveReport,
    seen: HashSet<String>,
    held: HashMap<String, String>,
}

impl Redrive {
    /// A redrive from the dead-letter queue at URL `from` to the queue at URL `to`, with the
    /// SQS client this crate makes from `config`.
    pub fn new(config: &SdkConfig, from: impl Into<String>, to: impl Into<String>) -> Redrive {
        Redrive::with_client(crate::metrics::sqs_client(config, None), from, to)
    }

    /// As [`new`](Redrive::new), over a client of your own.
    pub fn with_client(
        client: aws_sdk_sqs::Client,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Redrive {
        Redrive {
            client,
            from: from.into(),
            to: to.into(),
            max: None,
            dry_run: false,
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            wait: DEFAULT_WAIT,
        }
    }

    /// Takes at most `max` messages from the dead-letter queue (all of them by default).
    pub fn max(self, max: usize) -> Redrive {
        self.max_messages(Some(max))
    }

    /// As [`max`](Redrive::max), `None` for no limit.
    pub fn max_messages(mut self, max: Option<usize>) -> Redrive {
        self.max = max;
        self
    }

    /// Reports what would move, and moves nothing: every message received stays hidden until
    /// the run ends, then is made visible again at once. Of a FIFO dead-letter queue, it sees
    /// what SQS hands out while the groups it received stay in flight.
    pub fn dry_run(mut self, dry_run: bool) -> Redrive {
        self.dry_run = dry_run;
        self
    }

    /// How long each received message stays hidden ([`DEFAULT_VISIBILITY_TIMEOUT`]): at least
    /// the time to move one batch; in a dry run, the whole run. 1 second to 12 hours.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Redrive {
        self.visibility_timeout = timeout;
        self
    }

    /// How long each receive waits for messages ([`DEFAULT_WAIT`], at most 20 seconds).
    pub fn wait_time(mut self, wait: Duration) -> Redrive {
        self.wait = wait.min(MAX_WAIT);
        self
    }

    /// Checks both queues, then moves messages until a receive brings nothing new or the
    /// maximum is reached. `on_moved` is called for each message once its send succeeded and
    /// before it is deleted (in a dry run, for each message that would move); when it fails,
    /// the run stops and that message stays in the dead-letter queue.
    ///
    /// # Errors
    ///
    /// [`RedriveError::SameQueue`], [`RedriveError::Invalid`] and [`RedriveError::Queue`]
    /// before anything is received; [`RedriveError::Stopped`] and [`RedriveError::Report`]
    /// with the report of what moved before. Messages refused one by one do not fail the run:
    /// they are in [`RedriveReport::not_moved`].
    pub async fn run<F>(&self, mut on_moved: F) -> Result<RedriveReport, RedriveError>
    where
        F: FnMut(&Moved) -> std::io::Result<()>,
    {
        if !(Duration::from_secs(1)..=MAX_VISIBILITY_TIMEOUT).contains(&self.visibility_timeout) {
            return Err(RedriveError::Invalid(format!(
                "the visibility timeout is 1 s to 12 h, not {:?}",
                self.visibility_timeout
            )));
        }
        if self.from.trim_end_matches('/') == self.to.trim_end_matches('/') {
            return Err(RedriveError::SameQueue(self.from.clone()));
        }
        let (from_arn, _) = self.queue(QueueRole::From, &self.from).await?;
        let (to_arn, to_fifo) = self.queue(QueueRole::To, &self.to).await?;
        if from_arn.is_some() && from_arn == to_arn {
            return Err(RedriveError::SameQueue(self.from.clone()));
        }
        tracing::debug!(from = %self.from, to = %self.to, dry_run = self.dry_run, max = ?self.max, "redrive");
        let mut state = State {
            report: RedriveReport { dry_run: self.dry_run, ..RedriveReport::default() },
            seen: HashSet::new(),
            held: HashMap::new(),
        };
        let result = self.move_all(&mut state, to_fifo, &mut on_moved).await;
        self.release(&state.held).await;
        let mut report = state.report;
        report.left = self.left().await;
        tracing::debug!(%report, "redrive done");
        match result {
            Ok(()) => Ok(report),
            Err(Stop::Step(step, source)) => Err(RedriveError::Stopped { step, source, report }),
            Err(Stop::Report(source)) => Err(RedriveError::Report { source, report }),
        }
    }

    /// The queue's ARN (when SQS gives it) and whether it is FIFO; an error when it does not
    /// exist.
    async fn queue(&self, role: QueueRole, url: &str) -> Result<(Option<String>, bool), RedriveError> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .attribute_names(QueueAttributeName::FifoQueue)
            .send()
            .await
            .map_err(|e| RedriveError::Queue {
                role,
                url: url.to_owned(),
                source: transport_error(e, Resource::Queue(url)),
            })?;
        let attributes = output.attributes();
        let arn = attributes.and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned();
        let fifo = match attributes.and_then(|a| a.get(&QueueAttributeName::FifoQueue)) {
            Some(fifo) => fifo.eq_ignore_ascii_case("true"),
            None => url.trim_end_matches('/').ends_with(".fifo"),
        };
        Ok((arn, fifo))
    }

    /// Batch after batch until a receive brings nothing new or the maximum is reached.
    async fn move_all<F>(&self, state: &mut State, to_fifo: bool, on_moved: &mut F) -> Result<(), Stop>
    where
        F: FnMut(&Moved) -> std::io::Result<()>,
    {
        loop {
            let room = self.max.map_or(BATCH, |max| max.saturating_sub(state.seen.len()).min(BATCH));
            if room == 0 {
                return Ok(());
            }
            let received = self.receive(room).await.map_err(|e| Stop::Step(Step::Receive, e))?;
            let mut fresh = Vec::new();
            for message in received {
                let id = message.message_id().unwrap_or_default().to_owned();
                if state.seen.insert(id.clone()) {
                    fresh.push(message);
                } else {
                    // Back after its visibility timeout: tried once per run, kept hidden.
                    state.held.insert(id, message.receipt_handle().unwrap_or_default().to_owned());
                }
            }
            if fresh.is_empty() {
                return Ok(());
            }
            tracing::debug!(messages = fresh.len(), "received");
            if self.dry_run {
                for message in &fresh {
                    hold(state, message);
                    on_moved(&moved(message, None)).map_err(Stop::Report)?;
                    state.report.moved += 1;
                }
            } else {
                self.move_batch(state, fresh, to_fifo, on_moved).await?;
            }
        }
    }

    /// One batch: sent, reported, deleted.
    async fn move_batch<F>(
        &self,
        state: &mut State,
        messages: Vec<Message>,
        to_fifo: bool,
        on_moved: &mut F,
    ) -> Result<(), Stop>
    where
        F: FnMut(&Moved) -> std::io::Result<()>,
    {
        // What is sent, each entry's id its index here.
        let mut sending: Vec<Message> = Vec::new();
        let mut entries = Vec::new();
        for message in messages {
            match send_entry(sending.len(), &message, to_fifo) {
                Ok(entry) => {
                    entries.push(entry);
                    sending.push(message);
                }
                Err(reason) => {
                    not_moved(state, &message, reason);
                    hold(state, &message);
                }
            }
        }
        if entries.is_empty() {
            return Ok(());
        }
        let output = match self
            .client
            .send_message_batch()
            .queue_url(&self.to)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) => {
                for message in &sending {
                    hold(state, message);
                }
                return Err(Stop::Step(Step::Send, transport_error(error, Resource::Queue(&self.to))));
            }
        };
        let mut results: Vec<Result<String, String>> =
            vec![Err("SendMessageBatch returned no result for this entry".to_owned()); sending.len()];
        for sent in output.successful() {
            if let Some(index) = entry_index(sent.id(), sending.len()) {
                results[index] = Ok(sent.message_id().to_owned());
            }
        }
        for failed in output.failed() {
            if let Some(index) = entry_index(failed.id(), sending.len()) {
                results[index] = Err(match failed.message() {
                    Some(message) => format!("{}: {message}", failed.code()),
                    None => failed.code().to_owned(),
                });
            }
        }
        // Reported, in order, before anything is deleted; after a failed report, nothing
        // else of the batch is reported or deleted.
        let mut reported: Vec<&Message> = Vec::new();
        let mut report_error = None;
        for (message, result) in sending.iter().zip(results) {
            match result {
                Ok(new_id) if report_error.is_none() => match on_moved(&moved(message, Some(new_id))) {
                    Ok(()) => reported.push(message),
                    Err(error) => {
                        not_deleted(state, message, format!("sent, but reporting it failed: {error}"));
                        hold(state, message);
                        report_error = Some(error);
                    }
                },
                Ok(_) => {
                    not_deleted(state, message, "sent, but not reported (reporting stopped)".to_owned());
                    hold(state, message);
                }
                Err(reason) => {
                    not_moved(state, message, reason);
                    hold(state, message);
                }
            }
        }
        if !reported.is_empty() {
            self.delete(state, &reported).await?;
        }
        match report_error {
            Some(error) => Err(Stop::Report(error)),
            None => Ok(()),
        }
    }

    /// Deletes what was sent and reported; a whole request failing stops the run.
    async fn delete(&self, state: &mut State, messages: &[&Message]) -> Result<(), Stop> {
        let entries = messages
            .iter()
            .enumerate()
            .map(|(index, message)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let output = match self
            .client
            .delete_message_batch()
            .queue_url(&self.from)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) => {
                let error = transport_error(error, Resource::Queue(&self.from));
                for message in messages {
                    not_deleted(state, message, format!("sent, but its delete failed: {error}"));
                    hold(state, message);
                }
                return Err(Stop::Step(Step::Delete, error));
            }
        };
        let mut deleted = vec![false; messages.len()];
        for done in output.successful() {
            if let Some(index) = entry_index(done.id(), messages.len()) {
                deleted[index] = true;
            }
        }
        let failures: HashMap<usize, String> = output
            .failed()
            .iter()
            .filter_map(|failed| {
                let index = entry_index(failed.id(), messages.len())?;
                Some((index, format!("{}: {}", failed.code(), failed.message().unwrap_or_default())))
            })
            .collect();
        for (index, message) in messages.iter().enumerate() {
            if deleted[index] {
                state.report.moved += 1;
            } else {
                let reason = failures
                    .get(&index)
                    .cloned()
                    .unwrap_or_else(|| "DeleteMessageBatch returned no result for this entry".to_owned());
                not_deleted(state, message, format!("sent, but its delete failed: {reason}"));
                hold(state, message);
            }
        }
        Ok(())
    }

    /// Up to `max` messages, with every message attribute and system attribute.
    async fn receive(&self, max: usize) -> Result<Vec<Message>, TransportError> {
        let timeouts =
            aws_sdk_sqs::config::Builder::default().timeout_config(Timeouts::default().config(self.wait));
        let output = self
            .client
            .receive_message()
            .queue_url(&self.from)
            .max_number_of_messages(max.clamp(1, BATCH) as i32)
            .visibility_timeout(self.visibility_timeout.as_secs() as i32)
            .wait_time_seconds(self.wait.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .customize()
            .config_override(timeouts)
            .send()
            .await
            .map_err(|e| transport_error(e, Resource::Queue(&self.from)))?;
        Ok(output.messages.unwrap_or_default())
    }

    /// Makes the messages received and not deleted visible again; a failure is logged (they
    /// come back when their visibility timeout ends anyway).
    async fn release(&self, held: &HashMap<String, String>) {
        let held: Vec<(&String, &String)> = held.iter().collect();
        for chunk in held.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(index, (_, receipt))| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(index.to_string())
                        .receipt_handle(receipt.as_str())
                        .visibility_timeout(0)
                        .build()
                        .expect("id and receipt handle are set")
                })
                .collect();
            match self
                .client
                .change_message_visibility_batch()
                .queue_url(&self.from)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => {
                    for failed in output.failed() {
                        let id = entry_index(failed.id(), chunk.len()).map(|i| chunk[i].0.as_str());
                        tracing::warn!(
                            message_id = id.unwrap_or_default(),
                            code = failed.code(),
                            "not made visible again: it will be when its visibility timeout ends"
                        );
                    }
                }
                Err(error) => {
                    let error = transport_error(error, Resource::Queue(&self.from));
                    tracing::warn!(
                        %error,
                        messages = chunk.len(),
                        "not made visible again: they will be when their visibility timeout ends"
                    );
                }
            }
        }
    }

    /// The messages in the dead-letter queue, visible or in flight.
    async fn left(&self) -> Option<u64> {
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.from)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .ok()?;
        let attributes = output.attributes()?;
        let count = |name| attributes.get(&name).and_then(|n| n.parse::<u64>().ok());
        Some(
            count(QueueAttributeName::ApproximateNumberOfMessages)?
                + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible).unwrap_or(0),
        )
    }
}

/// Keeps a message to be made visible again when the run ends.
fn hold(state: &mut State, message: &Message) {
    state.held.insert(
        message.message_id().unwrap_or_default().to_owned(),
        message.receipt_handle().unwrap_or_default().to_owned(),
    );
}

fn not_moved(state: &mut State, message: &Message, reason: String) {
    let message_id = message.message_id().unwrap_or_default().to_owned();
    tracing::debug!(%message_id, %reason, "not moved");
    state.report.not_moved.push(NotMoved { message_id, reason });
}

fn not_deleted(state: &mut State, message: &Message, reason: String) {
    let message_id = message.message_id().unwrap_or_default().to_owned();
    tracing::debug!(%message_id, %reason, "not deleted");
    state.report.not_deleted.push(NotMoved { message_id, reason });
}

/// The index an entry id stands for.
fn entry_index(id: &str, len: usize) -> Option<usize> {
    id.parse::<usize>().ok().filter(|index| *index < len)
}

/// The `SendMessageBatch` entry that moves `message`, or why it cannot be sent.
fn send_entry(
    index: usize,
    message: &Message,
    to_fifo: bool,
) -> Result<SendMessageBatchRequestEntry, String> {
    let mut entry = SendMessageBatchRequestEntry::builder()
        .id(index.to_string())
        .message_body(message.body().unwrap_or_default());
    for (name, value) in message.message_attributes().into_iter().flatten() {
        entry = entry.message_attributes(name, attribute(value)?);
    }
    if to_fifo {
        let group = message.attributes().and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId));
        let Some(group) = group else {
            return Err(
                "the target is a FIFO queue and this message has no MessageGroupId (it comes from a \
                        standard queue): not sent"
                    .to_owned(),
            );
        };
        // Fresh per message, the same on every try of this move.
        let deduplication_id = message.message_id().unwrap_or_default();
        entry = entry.message_group_id(group).message_deduplication_id(deduplication_id);
    }
    entry.build().map_err(|e| e.to_string())
}

/// A received message attribute as it is sent: its data type and value as they are.
fn attribute(value: &MessageAttributeValue) -> Result<MessageAttributeValue, String> {
    let non_empty = |values: &[String]| (!values.is_empty()).then(|| values.to_vec());
    MessageAttributeValue::builder()
        .data_type(value.data_type())
        .set_string_value(value.string_value().map(str::to_owned))
        .set_binary_value(value.binary_value().cloned())
        .set_string_list_values(non_empty(value.string_list_values()))
        .set_binary_list_values(
            (!value.binary_list_values().is_empty()).then(|| value.binary_list_values().to_vec()),
        )
        .build()
        .map_err(|e| e.to_string())
}

/// What is reported of a message.
fn moved(message: &Message, new_message_id: Option<String>) -> Moved {
    Moved {
        message_id: message.message_id().unwrap_or_default().to_owned(),
        new_message_id,
        media_type: media_type(message),
        receive_count: message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|count| count.parse().ok()),
    }
}

/// The `media_type` message attribute, else the body's: `mediaType` of a pubsub message, or of
/// the one inside an SNS notification (whose own `MessageAttributes` come first).
fn media_type(message: &Message) -> Option<String> {
    let attribute = message.message_attributes().and_then(|a| a.get(MEDIA_TYPE_ATTRIBUTE));
    if let Some(media_type) = attribute.and_then(|value| value.string_value()) {
        return Some(media_type.to_owned());
    }
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(message.body()?) else { return None };
    if let Some(Value::String(media_type)) = body.get(MEDIA_TYPE_KEY) {
        return Some(media_type.clone());
    }
    let notified =
        body.get("MessageAttributes").and_then(|a| a.get(MEDIA_TYPE_ATTRIBUTE)).and_then(|a| a.get("Value"));
    if let Some(Value::String(media_type)) = notified {
        return Some(media_type.clone());
    }
    let Some(Value::String(inner)) = body.get("Message") else { return None };
    match serde_json::from_str::<Value>(inner) {
        Ok(Value::Object(inner)) => inner.get(MEDIA_TYPE_KEY)?.as_str().map(str::to_owned),
        _ => None,
    }
}

const MEDIA_TYPE_ATTRIBUTE: &str = "media_type";
const MEDIA_TYPE_KEY: &str = "mediaType";

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> Message {
        Message::builder().message_id("m-1").receipt_handle("r-1").body(body).build()
    }

    #[test]
    fn media_type_from_the_attribute_then_the_body() {
        let attributed = Message::builder()
            .body(r#"{"mediaType": "from/body"}"#)
            .message_attributes(
                "media_type",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("from/attribute")
                    .build()
                    .unwrap(),
            )
            .build();
        assert_eq!(media_type(&attributed).as_deref(), Some("from/attribute"));
        assert_eq!(media_type(&message(r#"{"mediaType": "from/body"}"#)).as_deref(), Some("from/body"));
        let inner = serde_json::to_string(&serde_json::json!({"mediaType": "from/inner"})).unwrap();
        let notification = serde_json::json!({"Type": "Notification", "Message": inner}).to_string();
        assert_eq!(media_type(&message(&notification)).as_deref(), Some("from/inner"));
        let with_attributes = serde_json::json!({
            "Type": "Notification",
            "Message": inner,
            "MessageAttributes": {"media_type": {"Type": "String", "Value": "from/notification"}},
        })
        .to_string();
        assert_eq!(media_type(&message(&with_attributes)).as_deref(), Some("from/notification"));
        assert_eq!(media_type(&message("not json")), None);
        assert_eq!(media_type(&message(r#"{"other": 1}"#)), None);
    }

    #[test]
    fn a_fifo_target_needs_a_group_and_gets_the_message_id_as_deduplication_id() {
        let standard = message("body");
        assert!(send_entry(0, &standard, true).unwrap_err().contains("MessageGroupId"));
        let entry = send_entry(3, &standard, false).unwrap();
        assert_eq!((entry.id(), entry.message_group_id()), ("3", None));
        let grouped = Message::builder()
            .message_id("m-2")
            .body("body")
            .attributes(MessageSystemAttributeName::MessageGroupId, "g")
            .build();
        let entry = send_entry(0, &grouped, true).unwrap();
        assert_eq!(entry.message_group_id(), Some("g"));
        assert_eq!(entry.message_deduplication_id(), Some("m-2"));
        // Not to a standard queue.
        assert_eq!(send_entry(0, &grouped, false).unwrap().message_group_id(), None);
    }

    #[test]
    fn the_summary_line() {
        let mut report = RedriveReport { moved: 3, left: Some(0), ..Default::default() };
        assert_eq!(report.to_string(), "moved 3, left 0");
        report.not_moved.push(NotMoved { message_id: "m".into(), reason: "r".into() });
        report.left = None;
        assert_eq!(report.to_string(), "moved 3, not moved 1, left unknown");
        let dry = RedriveReport { dry_run: true, moved: 2, left: Some(2), ..Default::default() };
        assert_eq!(dry.to_string(), "would move 2, moved 0, left 2");
    }
}
