//! The function itself: one invocation, an SQS or SNS event, through the daemon's dispatcher.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Context, LambdaEvent};
use pubsub_core::handlers::Dispatcher;
use pubsub_core::outcome::Disposition;
use pubsub_core::Verdict;
use serde_json::Value;

use crate::batch::{self, BatchReport, Limits, RecordOutcome, RecordReport};
use crate::error::{InvocationError, LambdaError};
use crate::records::{self, Record};
use crate::visibility::{self, Visibility, Wanted};

/// The variables `lambda_runtime` reads at start (it panics without them; we say which).
const RUNTIME_VARIABLES: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// A Lambda function that runs pubsub handlers on SQS and SNS events: what
/// [`LambdaBuilder::build`](crate::LambdaBuilder::build) makes and
/// [`run`](LambdaHandler::run) serves. Cheap to clone; [`handle`](LambdaHandler::handle),
/// [`handle_sqs`](LambdaHandler::handle_sqs) and [`handle_sns`](LambdaHandler::handle_sns)
/// run one invocation, without the Lambda runtime (for tests, or a runtime of your own).
#[derive(Clone)]
pub struct LambdaHandler {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    dispatcher: Arc<Dispatcher>,
    sqs: Option<aws_sdk_sqs::Client>,
    limits: Limits,
}

impl std::fmt::Debug for LambdaHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaHandler")
            .field("name", &self.inner.name)
            .field("concurrency", &self.inner.limits.concurrency)
            .field("deadline_margin", &self.inner.limits.deadline_margin)
            .field("change_visibility", &self.inner.sqs.is_some())
            .finish_non_exhaustive()
    }
}

/// The kind of an event, from its first record.
enum Kind {
    Sqs,
    Sns,
}

impl LambdaHandler {
    pub(crate) fn new(
        name: String,
        dispatcher: Dispatcher,
        sqs: Option<aws_sdk_sqs::Client>,
        concurrency: usize,
        deadline_margin: Duration,
    ) -> LambdaHandler {
        let limits = Limits { concurrency: concurrency.max(1), deadline_margin };
        LambdaHandler { inner: Arc::new(Inner { name, dispatcher: Arc::new(dispatcher), sqs, limits }) }
    }

    /// Serves invocations from the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`) until the
    /// runtime stops: the function's `main` ends with this.
    ///
    /// Fails at once, naming it, when a variable Lambda sets is missing
    /// (`AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, `AWS_LAMBDA_FUNCTION_VERSION`): this runs inside
    /// Lambda, or under a Runtime API emulator that sets them.
    pub async fn run(self) -> Result<(), LambdaError> {
        for variable in RUNTIME_VARIABLES {
            if std::env::var_os(variable).is_none_or(|value| value.is_empty()) {
                return Err(LambdaError::Config {
                    variable: variable.to_owned(),
                    reason: "not set: Lambda sets it; outside Lambda, run this under a Runtime API emulator (cargo lambda watch) that does".to_owned(),
                });
            }
        }
        tracing::info!(name = %self.inner.name, concurrency = self.inner.limits.concurrency, change_visibility = self.inner.sqs.is_some(), "pubsub function started");
        let service = lambda_runtime::service_fn(move |event: LambdaEvent<Value>| {
            let handler = self.clone();
            async move { handler.handle(event).await }
        });
        lambda_runtime::run(service).await.map_err(LambdaError::Runtime)
    }

    /// One invocation, as the runtime calls it: an SQS event (records with `eventSource`
    /// `aws:sqs`) is answered with its partial batch response (`{"batchItemFailures": [...]}`)
    /// and never fails because of its records; an SNS event (`EventSource` `aws:sns`) is
    /// answered with `null`, or fails when a record failed, so that Lambda retries it. Any
    /// other event fails the invocation.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, InvocationError> {
        let (payload, context) = event.into_parts();
        match kind(&payload)? {
            Kind::Sqs => {
                let event: SqsEvent = serde_json::from_value(payload)
                    .map_err(|error| InvocationError::Malformed { kind: "SQS", error })?;
                let report = self.handle_sqs(event, &context).await;
                Ok(serde_json::to_value(report.batch_response()).expect("a batch response serializes"))
            }
            Kind::Sns => {
                let event: SnsEvent = serde_json::from_value(payload)
                    .map_err(|error| InvocationError::Malformed { kind: "SNS", error })?;
                let report = self.handle_sns(event, &context).await;
                sns_result(&report)?;
                Ok(Value::Null)
            }
        }
    }

    /// Handles the records of an SQS event (an event source mapping), at most `concurrency`
    /// at once, those of one FIFO message group in order; then makes RETRIED and FAILED
    /// records visible again after their delay (when the function changes visibility). The
    /// report's [`batch_response`](BatchReport::batch_response) is what Lambda is answered.
    ///
    /// `context.deadline` (when not 0) bounds the work: `deadline_margin` before it, no
    /// record starts any more and those still running are cancelled, all reported as
    /// failures, so that the answer reaches Lambda before the deadline and the records that
    /// finished are deleted.
    pub async fn handle_sqs(&self, event: SqsEvent, context: &Context) -> BatchReport {
        let records: Vec<Record> = event.records.into_iter().map(records::sqs_record).collect();
        self.handle_records("SQS", records, context).await
    }

    /// Handles the records of an SNS event (SNS invoking the function), as
    /// [`handle_sqs`](LambdaHandler::handle_sqs) does, with no visibility to change. Through
    /// [`handle`](LambdaHandler::handle), a record that failed fails the invocation.
    pub async fn handle_sns(&self, event: SnsEvent, context: &Context) -> BatchReport {
        let records: Vec<Record> = event.records.into_iter().map(records::sns_record).collect();
        self.handle_records("SNS", records, context).await
    }

    async fn handle_records(
        &self,
        kind: &'static str,
        records: Vec<Record>,
        context: &Context,
    ) -> BatchReport {
        let started = Instant::now();
        let inner = &self.inner;
        let deadline = (context.deadline != 0).then(|| context.deadline());
        let cut_off = batch::cut_off(deadline, inner.limits.deadline_margin);
        let outcomes = batch::run(&inner.dispatcher, &records, inner.limits, cut_off).await;
        let mut visibility: Vec<Visibility> = records.iter().map(|_| Visibility::Unchanged).collect();
        if let Some(sqs) = &inner.sqs {
            let wanted = wanted_changes(&records, &outcomes);
            if !wanted.is_empty() {
                let delays: Vec<(usize, std::time::Duration)> =
                    wanted.iter().map(|w| (w.index, w.delay)).collect();
                // The changes get half the margin; the rest is for the answer.
                let limit = visibility_limit(deadline, inner.limits.deadline_margin);
                let changed = match limit {
                    Some(limit) => tokio::time::timeout(limit, visibility::change(sqs, wanted)).await,
                    None => Ok(visibility::change(sqs, wanted).await),
                };
                match changed {
                    Ok(changed) => {
                        for (index, result) in changed {
                            visibility[index] = result;
                        }
                    }
                    Err(_) => {
                        tracing::warn!(records = delays.len(), "visibility changes did not finish before the deadline; those records come back after the queue's visibility timeout");
                        for (index, delay) in delays {
                            visibility[index] = Visibility::Failed {
                                delay,
                                error: "did not finish before the deadline".to_owned(),
                            };
                        }
                    }
                }
            }
        }
        let report = BatchReport {
            records: records
                .into_iter()
                .zip(outcomes)
                .zip(visibility)
                .map(|((record, outcome), visibility)| RecordReport {
                    message_id: record.message.message_id,
                    outcome,
                    visibility,
                })
                .collect(),
        };
        log(kind, &report, context, started.elapsed());
        report
    }
}

/// The kind of `payload`, from the source of its first record (an empty SQS batch has none).
fn kind(payload: &Value) -> Result<Kind, InvocationError> {
    let Some(records) = payload.get("Records").and_then(Value::as_array) else {
        return Err(InvocationError::Unsupported("the event has no `Records` array".to_owned()));
    };
    let Some(first) = records.first() else { return Ok(Kind::Sqs) };
    match (first.get("eventSource").and_then(Value::as_str), first.get("EventSource").and_then(Value::as_str))
    {
        (Some("aws:sqs"), _) => Ok(Kind::Sqs),
        (_, Some("aws:sns")) => Ok(Kind::Sns),
        (Some(source), _) | (_, Some(source)) => {
            Err(InvocationError::Unsupported(format!("records from `{}`", pubsub_excerpt(source))))
        }
        (None, None) => Err(InvocationError::Unsupported("records with no event source".to_owned())),
    }
}

/// At most 64 bytes of what an event says, for an error message.
fn pubsub_excerpt(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The visibility changes the outcomes ask for: RETRIED's delay and FAILED's backoff, for the
/// handled records that have a queue and a receipt.
fn wanted_changes(records: &[Record], outcomes: &[RecordOutcome]) -> Vec<Wanted> {
    records
        .iter()
        .zip(outcomes)
        .enumerate()
        .filter_map(|(index, (record, outcome))| {
            let RecordOutcome::Handled(handled) = outcome else { return None };
            let Disposition::Retry(delay) = handled.outcome.disposition else { return None };
            let queue_url = record.queue_url.clone()?;
            if record.message.receipt_handle.is_empty() {
                return None;
            }
            Some(Wanted { index, queue_url, receipt_handle: record.message.receipt_handle.clone(), delay })
        })
        .collect()
}

/// How long the visibility changes may take: until half the margin before the deadline.
fn visibility_limit(deadline: Option<SystemTime>, margin: Duration) -> Option<Duration> {
    let left = deadline?.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
    Some(left.saturating_sub(margin / 2))
}

/// An SNS event's result: an error when a record is a failure.
fn sns_result(report: &BatchReport) -> Result<(), InvocationError> {
    let failed: Vec<&str> = report.failures().map(|record| record.message_id.as_str()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    Err(InvocationError::SnsRecordsFailed {
        failed: failed.len(),
        total: report.records.len(),
        ids: failed.join(", "),
    })
}

/// A line for each record that was not handled to the end (the dispatcher logged the
/// others), and one for the invocation.
fn log(kind: &'static str, report: &BatchReport, context: &Context, elapsed: Duration) {
    for record in &report.records {
        if let RecordOutcome::Interrupted { reason } | RecordOutcome::NotStarted { reason } = &record.outcome
        {
            tracing::warn!(message_id = %record.message_id, result = "FAILED", reason = %reason, "record not handled");
        }
    }
    let changed = report.records.iter().filter(|r| matches!(r.visibility, Visibility::Changed(_))).count();
    let change_failed =
        report.records.iter().filter(|r| matches!(r.visibility, Visibility::Failed { .. })).count();
    tracing::info!(
        event = kind,
        aws_request_id = %context.request_id,
        records = report.records.len(),
        failures = report.failures().count(),
        succeeded = report.count(Verdict::Succeeded),
        skipped = report.count(Verdict::Skipped),
        ignored = report.count(Verdict::Ignored),
        expired = report.count(Verdict::Expired),
        retried = report.count(Verdict::Retried),
        failed = report.count(Verdict::Failed),
        visibility_changed = changed,
        visibility_change_failed = change_failed,
        elapsed_ms = elapsed.as_micros() as f64 / 1000.0,
        "batch handled"
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_are_told_apart_by_their_first_record() {
        assert!(matches!(kind(&json!({"Records": [{"eventSource": "aws:sqs"}]})), Ok(Kind::Sqs)));
        assert!(matches!(kind(&json!({"Records": [{"EventSource": "aws:sns"}]})), Ok(Kind::Sns)));
        assert!(matches!(kind(&json!({"Records": []})), Ok(Kind::Sqs)));
        for (event, says) in [
            (json!({"Records": [{"eventSource": "aws:kinesis"}]}), "records from `aws:kinesis`"),
            (json!({"Records": [{}]}), "records with no event source"),
            (json!({"detail": {}}), "no `Records` array"),
        ] {
            let error = kind(&event).err().unwrap();
            assert!(error.to_string().contains(says), "{error}");
            assert_eq!(error.error_type(), "UnsupportedEvent");
        }
    }
}
