//! The pubsub toolkit's handlers in AWS Lambda: the same `#[handler]` functions and
//! collaborators a daemon runs, on SQS events (an event source mapping) and SNS events (a
//! subscription), through the same dispatcher: the same results table, request ids, TTL,
//! time limits and layers, and what handlers publish sent after they succeed.
//!
//! ```no_run
//! use pubsub_core::{handler, DaemonBuilder, HandlerError, PubSubMessage};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
//! # #[media_type = "application/vnd.acme.pubsub.order"]
//! # struct Order { id: String }
//!
//! #[handler]
//! async fn on_order(order: Order) -> Result<(), HandlerError> {
//!     tracing::info!(id = %order.id, "order");
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), pubsub_lambda::LambdaError> {
//!     pubsub_lambda::logging().init();
//!     pubsub_lambda::LambdaBuilder::from(DaemonBuilder::new("billing")).run().await
//! }
//! ```
//!
//! # SQS events: partial batch responses
//!
//! Each record is dispatched on its own (bounded concurrency; the records of one FIFO message
//! group in order, and after one fails the rest of its group is not started). The function
//! answers with the partial batch response of `ReportBatchItemFailures`: RETRIED and FAILED
//! records are listed in `batchItemFailures` by message id, so they stay in the queue;
//! SUCCEEDED, SKIPPED, IGNORED and EXPIRED records are not, so Lambda deletes them. A bad record
//! never fails the invocation, nor does a handler that panics (that record is FAILED).
//!
//! With an SQS client (the default; [`LambdaBuilder::change_visibility`] turns it off),
//! RETRIED's delay and FAILED's backoff are applied with `ChangeMessageVisibilityBatch` on the
//! record's queue (its URL derived from `eventSourceARN`). A change that fails is logged and
//! changes nothing else: the record comes back after the queue's visibility timeout.
//!
//! Near the deadline ([`LambdaBuilder::deadline_margin`] before it) no record starts any
//! more and those running are cancelled; they are reported as failures rather than cut off
//! by the end of the invocation, which would bring the whole batch back.
//!
//! # SNS events
//!
//! Each record is dispatched the same way; SNS has no partial response, so a record that
//! failed (FAILED, RETRIED, or not handled before the deadline) fails the invocation, and
//! Lambda's asynchronous invocation retries the whole event (twice by default, then its
//! on-failure destination or dead-letter queue, when the function has one). Records that
//! succeeded run again on a retry: handlers are idempotent, as they are for SQS redelivery.
//! RETRIED's delay cannot be honoured there: Lambda's retry schedule applies.
//!
//! # The pieces
//!
//! [`LambdaBuilder`] (from a `DaemonBuilder`) builds a [`LambdaHandler`], which
//! [`run`](LambdaHandler::run)s on `lambda_runtime` or handles one event at a time
//! ([`handle`](LambdaHandler::handle), [`handle_sqs`](LambdaHandler::handle_sqs),
//! [`handle_sns`](LambdaHandler::handle_sns)) and reports each record ([`BatchReport`]).
//! [`logging`] is the recommended logging on Lambda; [`config`] reads the topics handlers
//! publish to from the environment, as the daemon does.

mod batch;
mod builder;
pub mod config;
mod error;
mod handler;
mod records;
mod visibility;

pub use batch::{BatchReport, RecordOutcome, RecordReport};
pub use builder::{LambdaBuilder, DEFAULT_DEADLINE_MARGIN};
pub use error::{InvocationError, LambdaError};
pub use handler::LambdaHandler;
pub use visibility::Visibility;

/// The event types this crate reads and answers with, from `aws_lambda_events`.
pub mod events {
    pub use aws_lambda_events::event::sns::{SnsEvent, SnsMessage, SnsRecord};
    pub use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
}

/// The runtime's invocation types, from `lambda_runtime`.
pub use lambda_runtime::{Context, LambdaEvent};

/// The logging recommended on Lambda: one JSON object a line (CloudWatch Logs Insights reads
/// its fields), unless the function's log format is `Text` (`AWS_LAMBDA_LOG_FORMAT`); at debug
/// when its application log level (`AWS_LAMBDA_LOG_LEVEL`) is `DEBUG` or `TRACE`, with the AWS
/// SDK's and the HTTP client's own lines kept at info. `RUST_LOG` overrides the filter. Call
/// `.init()` on it first thing in `main`.
pub fn logging() -> pubsub_core::logging::Logging {
    logging_from(|name| std::env::var(name).ok())
}

fn logging_from(var: impl Fn(&str) -> Option<String>) -> pubsub_core::logging::Logging {
    let text = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|format| format.eq_ignore_ascii_case("text"));
    let debug = var("AWS_LAMBDA_LOG_LEVEL")
        .is_some_and(|level| level.eq_ignore_ascii_case("debug") || level.eq_ignore_ascii_case("trace"));
    pubsub_core::logging::Logging::new().json(!text).debug(debug).quiet(pubsub_aws::SDK_LOG_TARGETS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logging_follows_the_functions_log_settings() {
        let of = |vars: &'static [(&'static str, &'static str)]| {
            logging_from(move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
        };
        assert_eq!(of(&[]).default_filter(), "info");
        let debug = of(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG")]).default_filter();
        assert!(debug.starts_with("debug,") && debug.contains("aws_smithy_runtime=info"), "{debug}");
        assert_eq!(format!("{:?}", of(&[])), format!("{:?}", of(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")])));
        assert_ne!(format!("{:?}", of(&[])), format!("{:?}", of(&[("AWS_LAMBDA_LOG_FORMAT", "Text")])));
    }
}
