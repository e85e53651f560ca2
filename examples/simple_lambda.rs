//! The seed README's handler on AWS Lambda: a bootstrap that handles
//! `application/vnd.globality.pubsub.simple` messages from SQS events (with partial batch
//! responses) and SNS events, through the same dispatcher as `simple_daemon`.
//!
//! ```text
//! cargo build --release --example simple_lambda --features lambda
//! cp target/release/examples/simple_lambda bootstrap && zip function.zip bootstrap
//! ```
//!
//! Deploy `function.zip` on the `provided.al2023` runtime, with an SQS event source mapping
//! whose function response types include `ReportBatchItemFailures`. Its daemon is named
//! `example`, so what a handler publishes would go to `EXAMPLE__SNS_TOPIC_ARNS__DEFAULT`
//! (and `EXAMPLE__SNS_TOPIC_ARNS__MAPPINGS`), as for the daemon.

use pubsub_core::{handler, DaemonBuilder, HandlerError, MessageContext, PubSubMessage};
use pubsub_lambda::LambdaBuilder;
use serde::{Deserialize, Serialize};
use validator::Validate;

/// The seed README's schema.
#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.globality.pubsub.simple"]
struct SimpleMessage {
    message: String,
    timestamp: f64,
}

/// `simple_daemon`'s handler.
#[handler]
async fn handle_simple(message: SimpleMessage, context: &MessageContext) -> Result<(), HandlerError> {
    tracing::info!(text = %message.message, timestamp = message.timestamp, request_id = ?context.request_id(), "simple message");
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    pubsub_lambda::logging().init(); // JSON lines for CloudWatch; AWS_LAMBDA_LOG_LEVEL=DEBUG for more
    match LambdaBuilder::from(DaemonBuilder::new("example")).run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the function stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
