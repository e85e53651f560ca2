//! The seed README's daemon: handles `application/vnd.globality.pubsub.simple` messages.
//!
//! ```text
//! echo '{"mediaType": "application/vnd.globality.pubsub.simple", "message": "hi", "timestamp": 1.0}' \
//!   | cargo run --example simple_daemon -- --testing --stdin
//! cargo run --example simple_daemon -- --sqs-queue-url messages.jsonl
//! ```
//!
//! A real SQS queue needs the AWS transport: build with `--features aws` (which compiles the
//! AWS SDK), then `--sqs-queue-url https://...` consumes it until SIGTERM or ctrl-c.
//! Without the feature the example says so and exits 2.

use clap::Parser;
use pubsub_core::cli::{run_embedded, CliError, DaemonArgs};
use pubsub_core::{handler, HandlerError, MessageContext, PubSubMessage, Verdict};
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
    tracing::info!(message = %message.message, timestamp = message.timestamp, request_id = ?context.request_id(), "simple message");
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = DaemonArgs::parse();
    args.init_tracing();
    let outcome = match args.source() {
        #[cfg(feature = "aws")]
        Ok(pubsub_core::cli::Source::Queue(url)) => return run_queue(&args, &url).await,
        Ok(source) => run_embedded(args.builder(), &source).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(report) => {
            eprintln!("{report}");
            if report.count(Verdict::Failed) > 0 {
                eprintln!("some messages failed; see the log lines above");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(error @ (CliError::NeedsAws(_) | CliError::NoSource)) => {
            eprintln!("error: {error}");
            if matches!(error, CliError::NeedsAws(_)) {
                eprintln!("hint: cargo run --features aws --example simple_daemon -- --sqs-queue-url URL");
            }
            std::process::ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Consumes a real SQS queue until SIGTERM or ctrl-c.
#[cfg(feature = "aws")]
async fn run_queue(args: &DaemonArgs, url: &str) -> std::process::ExitCode {
    let options = pubsub_aws::AwsOptions {
        region: args.region.clone(),
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
    };
    let config = pubsub_aws::load_config(&options).await;
    let subscriber = match pubsub_aws::SqsSubscriber::new(&config, url).await {
        Ok(subscriber) => subscriber,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    match args.builder().build(subscriber) {
        Ok(daemon) => {
            eprintln!("{}", daemon.run_until_signal().await);
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::from(2)
        }
    }
}
