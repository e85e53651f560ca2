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
//!
//! Built with `--features otel`, it exports spans and metrics over OTLP when the standard
//! `OTEL_*` variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318`); the
//! service name is `OTEL_SERVICE_NAME`, else `--name`.

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

/// The seed's daemon flags and, with the AWS transport, `--region`, `--profile`,
/// `--endpoint-url`.
#[derive(Parser)]
#[command(about = "A pubsub consumer daemon")]
struct Args {
    #[command(flatten)]
    daemon: DaemonArgs,
    #[cfg(feature = "aws")]
    #[command(flatten)]
    aws: pubsub_aws::AwsArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let all = Args::parse();
    let args = &all.daemon;
    #[cfg(feature = "aws")]
    let logging = args.logging().quiet(pubsub_aws::SDK_LOG_TARGETS);
    #[cfg(not(feature = "aws"))]
    let logging = args.logging();
    if let Err(error) = logging.try_init() {
        eprintln!("error: {error}");
        return std::process::ExitCode::from(2);
    }
    // Spans and metrics over OTLP when the OTEL_* variables ask for it; kept until main
    // returns, so what is pending is sent after the daemon stops (SIGTERM included).
    #[cfg(feature = "otel")]
    let _export = match pubsub_core::telemetry::export::Export::from_env(&args.name) {
        Ok(export) => export,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let outcome = match args.source() {
        #[cfg(feature = "aws")]
        Ok(pubsub_core::cli::Source::Queue(url)) => return run_queue(args, all.aws.clone(), &url).await,
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
        Err(error @ (CliError::NotEmbedded(_) | CliError::NoSource)) => {
            eprintln!("error: {error}");
            if matches!(error, CliError::NotEmbedded(_)) {
                eprintln!(
                    "hint: this build has no AWS transport; to read an SQS queue: \
                     cargo run --features aws --example simple_daemon -- --sqs-queue-url URL"
                );
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
async fn run_queue(args: &DaemonArgs, aws: pubsub_aws::AwsArgs, url: &str) -> std::process::ExitCode {
    let config = pubsub_aws::load_config(&aws.into_options()).await;
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
