//! The seed README's daemon, named `example`: handles `application/vnd.globality.pubsub.simple`
//! messages. Its `main` reads the command line and the environment as a microcosm daemon does.
//! Built with `--features aws` it is pubsub-aws's runner, which reads SQS; without, it runs on the
//! embedded broker (`--stdin`, a file, `--testing`). Either way, `--asyncapi` prints its AsyncAPI
//! document and exits:
//!
//! ```text
//! cargo run --example simple_daemon -- --asyncapi --asyncapi-format yaml
//! cargo build --features aws --example simple_daemon
//! EXAMPLE__SQS_CONSUMER__SQS_QUEUE_URL=https://sqs.us-east-1.amazonaws.com/123456789012/example \
//!   target/debug/examples/simple_daemon                 # until SIGTERM or ctrl-c
//! echo '{"mediaType": "application/vnd.globality.pubsub.simple", "message": "hi", "timestamp": 1.0}' \
//!   | target/debug/examples/simple_daemon --stdin       # the embedded broker, until drained
//! target/debug/examples/simple_daemon --help            # every option and its variable
//! ```
//!
//! Built with `--features aws,otel`, it also exports spans and metrics over OTLP when the
//! standard `OTEL_*` variables ask for it.

use pubsub_core::{handler, HandlerError, MessageContext, PubSubMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

/// The seed README's schema.
#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.globality.pubsub.simple"]
struct SimpleMessage {
    message: String,
    timestamp: f64,
}

#[handler]
async fn handle_simple(message: SimpleMessage, context: &MessageContext) -> Result<(), HandlerError> {
    tracing::info!(text = %message.message, timestamp = message.timestamp, request_id = ?context.request_id(), "simple message");
    Ok(())
}

/// With `aws`: pubsub-aws's runner (SQS, SNS, S3, the health probes).
#[cfg(feature = "aws")]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    pubsub_aws::Runner::new("example").run().await
}

/// Without: the same command line on the embedded broker (`--stdin`, a file, `--testing`).
#[cfg(not(feature = "aws"))]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    pubsub_core::cli::run("example").await
}
