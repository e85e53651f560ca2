//! Running the records of one invocation through the dispatcher: bounded concurrency, FIFO
//! groups in order, a cut-off before the deadline, and a report per record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use pubsub_core::handlers::{fifo_chains, Dispatcher};
use pubsub_core::outcome::HandledMessage;
use pubsub_core::Verdict;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::records::Record;
use crate::visibility::Visibility;

/// What one invocation came to, record by record, in the order of the event.
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    /// One report per record of the event, in its order.
    pub records: Vec<RecordReport>,
}

/// What became of one record.
#[derive(Debug, Clone)]
pub struct RecordReport {
    /// The record's message id (SQS's `messageId`, SNS's `MessageId`).
    pub message_id: String,
    /// Whether it was handled, and how.
    pub outcome: RecordOutcome,
    /// What became of its visibility in the queue.
    pub visibility: Visibility,
}

/// Whether a record was handled.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RecordOutcome {
    /// The dispatcher handled it: its result in the results table, as the daemon logs it.
    Handled(HandledMessage),
    /// Its handling started and did not finish: cancelled at the deadline cut-off (dropped at
    /// the await it was waiting on, what it published not sent), or its task panicked outside
    /// the handler. Reported as a failure.
    Interrupted {
        /// Why.
        reason: String,
    },
    /// Never started: the invocation was near its deadline, or an earlier record of its FIFO
    /// message group failed. Reported as a failure, so that it comes back.
    NotStarted {
        /// Why.
        reason: String,
    },
}

impl RecordReport {
    /// The record's result: the handled message's, or FAILED for a record that was not
    /// handled to the end.
    pub fn verdict(&self) -> Verdict {
        match &self.outcome {
            RecordOutcome::Handled(handled) => handled.outcome.verdict,
            RecordOutcome::Interrupted { .. } | RecordOutcome::NotStarted { .. } => Verdict::Failed,
        }
    }

    /// Whether the record is returned to Lambda as a failure (RETRIED and FAILED, handled or
    /// not), so that it stays in its queue.
    pub fn is_failure(&self) -> bool {
        !self.verdict().deletes()
    }
}

impl BatchReport {
    /// How many records came to `verdict` (records not handled to the end count as FAILED).
    pub fn count(&self, verdict: Verdict) -> usize {
        self.records.iter().filter(|record| record.verdict() == verdict).count()
    }

    /// The records returned as failures, in the order of the event.
    pub fn failures(&self) -> impl Iterator<Item = &RecordReport> {
        self.records.iter().filter(|record| record.is_failure())
    }

    /// The partial batch response (`ReportBatchItemFailures`): each RETRIED and FAILED
    /// record (and each record not handled to the end) by its message id, in the order of the
    /// event. Lambda deletes the others from the queue.
    pub fn batch_response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .failures()
            .map(|record| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = record.message_id.clone();
                failure
            })
            .collect();
        response
    }
}

/// How the records of an invocation run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Records handled at once.
    pub(crate) concurrency: usize,
    /// No record starts, and those running are cancelled, this long before the deadline.
    pub(crate) deadline_margin: Duration,
}

/// Where a record stands while the batch runs.
#[derive(Debug)]
enum Slot {
    Waiting,
    Running,
    Done(Box<HandledMessage>),
    Blocked,
}

/// The instant of the cut-off: `margin` before `deadline`; `None` without a deadline.
pub(crate) fn cut_off(deadline: Option<SystemTime>, margin: Duration) -> Option<Instant> {
    let deadline = deadline?;
    let left = deadline.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
    Some(Instant::now() + left.saturating_sub(margin))
}

/// Dispatches `records`, at most `limits.concurrency` at once, the records of one FIFO group
/// one after another; at `cut_off` nothing more starts and what runs is cancelled. One
/// outcome per record, in order.
pub(crate) async fn run(
    dispatcher: &Arc<Dispatcher>,
    records: &[Record],
    limits: Limits,
    cut_off: Option<Instant>,
) -> Vec<RecordOutcome> {
    let slots: Arc<Mutex<Vec<Slot>>> = Arc::new(Mutex::new(records.iter().map(|_| Slot::Waiting).collect()));
    let permits = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut chain_of_task = HashMap::new();
    // One chain per FIFO message group, keyed by queue and group: one group id on two queues
    // is two groups.
    for chain in fifo_chains(records, |record| record.fifo_group.as_ref()) {
        let dispatcher = dispatcher.clone();
        let slots = slots.clone();
        let permits = permits.clone();
        let messages: Vec<_> = chain.iter().map(|&index| (index, records[index].message.clone())).collect();
        // In the invocation's span (the runtime's, with the Lambda request id), so that the
        // lines of each record carry it.
        let handle = tasks.spawn(Instrument::instrument(
            async move {
                let mut messages = messages.into_iter();
                for (index, message) in messages.by_ref() {
                    let Ok(_permit) = permits.acquire().await else { return };
                    // A timer past its instant fires on the runtime's next turn: check the clock too.
                    if cut_off.is_some_and(|at| Instant::now() >= at) {
                        return;
                    }
                    lock(&slots)[index] = Slot::Running;
                    let handled = dispatcher.dispatch(&message).await;
                    let failed = !handled.outcome.verdict.deletes();
                    lock(&slots)[index] = Slot::Done(Box::new(handled));
                    if failed {
                        // Only FIFO chains hold more than one record: keep the group's order.
                        break;
                    }
                }
                for (index, _) in messages {
                    lock(&slots)[index] = Slot::Blocked;
                }
            },
            tracing::Span::current(),
        ));
        chain_of_task.insert(handle.id(), chain);
    }
    let mut panics = Vec::new();
    let finished = async {
        while let Some(joined) = tasks.join_next_with_id().await {
            if let Err(error) = joined {
                panics.push(error);
            }
        }
    };
    let cut = match cut_off {
        None => {
            finished.await;
            false
        }
        Some(at) => tokio::time::timeout_at(at, finished).await.is_err(),
    };
    if cut {
        // Nothing starts any more; what runs is dropped at its await.
        permits.close();
        tasks.abort_all();
        while let Some(joined) = tasks.join_next_with_id().await {
            match joined {
                Err(error) if error.is_panic() => panics.push(error),
                _ => {}
            }
        }
    }
    let cut = cut || cut_off.is_some_and(|at| Instant::now() >= at);
    let mut panicked: HashMap<usize, String> = HashMap::new();
    for error in panics {
        let id = error.id();
        let reason = match error.try_into_panic() {
            Ok(payload) => format!("the record's task panicked: {}", panic_text(&*payload)),
            Err(error) => format!("the record's task ended: {error}"),
        };
        for &index in chain_of_task.get(&id).into_iter().flatten() {
            panicked.insert(index, reason.clone());
        }
    }
    let slots = std::mem::take(&mut *lock(&slots));
    slots
        .into_iter()
        .enumerate()
        .map(|(index, slot)| match slot {
            Slot::Done(handled) => RecordOutcome::Handled(*handled),
            Slot::Running => RecordOutcome::Interrupted {
                reason: panicked.remove(&index).unwrap_or_else(|| {
                    "cancelled: the invocation neared its deadline while it was being handled; what it published was not sent".to_owned()
                }),
            },
            Slot::Blocked => RecordOutcome::NotStarted {
                reason: "not started: an earlier message of its FIFO message group failed".to_owned(),
            },
            Slot::Waiting if cut => RecordOutcome::NotStarted {
                reason: "not started: the invocation neared its deadline".to_owned(),
            },
            Slot::Waiting => RecordOutcome::NotStarted {
                reason: panicked
                    .remove(&index)
                    .map(|reason| format!("not started: an earlier message of its FIFO message group failed ({reason})"))
                    .unwrap_or_else(|| "not started".to_owned()),
            },
        })
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The text a panic was raised with.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}
