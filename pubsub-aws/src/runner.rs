//! The daemon runner: a daemon's `main` in one call. It reads the command line and the
//! environment (named as microcosm names it), sets up logging (and OTLP export with the `otlp`
//! feature), loads the AWS configuration, builds the SQS subscriber and, when topics are
//! configured, the producer handlers publish through; runs until SIGTERM or ctrl-c; prints
//! the report; and exits 0 (stopped cleanly), 2 (bad configuration, before any message) or
//! 1 (the daemon itself failed: receives failing past `--receive-failure-limit-seconds`, a
//! panic outside the handlers). `--health-addr` serves `/health/live` and `/health/ready`
//! meanwhile. With the feature `s3` (a default one), messages that come as S3 pointers (large
//! payloads, see pubsub-core's `payload`) are read from S3, `--large-payload-bucket` offloads
//! what handlers publish over 256 KiB, and `--delete-large-payloads` deletes an object once its
//! message is deleted. `--testing`, `--stdin` and a file run on the embedded broker through the same
//! call. With the feature `schema` (a default one), `--asyncapi` prints the daemon's AsyncAPI
//! document (its queue, the topics of `--sns-topic-arn-default` and the mappings, the schema of
//! each message) and exits 0, before anything else happens.
//!
//! ```no_run
//! use pubsub_core::{handler, HandlerError, PubSubMessage};
//! # use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
//! #[media_type = "application/vnd.acme.pubsub.greeting"]
//! struct Greeting { name: String }
//!
//! #[handler]
//! async fn greet(greeting: Greeting) -> Result<(), HandlerError> {
//!     tracing::info!(name = %greeting.name, "hello");
//!     Ok(())
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     // GREETER__SQS_CONSUMER__SQS_QUEUE_URL=https://... greeter, or greeter --sqs-queue-url ...
//!     pubsub_aws::Runner::new("greeter").run().await
//! }
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::ExitCode;

use pubsub_core::cli::{parse_with_environment, DaemonArgs, EmbeddedDaemon, EnvironmentTable, Source};
use pubsub_core::daemon::Daemon;
use pubsub_core::health::HealthServer;
use pubsub_core::transport::Subscriber;
use pubsub_core::{DaemonBuilder, Producer, TopicMap};

use crate::{load_config, AwsArgs, AwsPublisher, SqsSubscriber, SDK_LOG_TARGETS};

/// A daemon's command line: the daemon's options, the AWS ones, the topics what its handlers
/// publish goes to, and its health address. Each option can come from the environment
/// ([`RunnerArgs::ENVIRONMENT`], [`DaemonArgs::ENVIRONMENT`], [`AwsArgs::ENVIRONMENT`]).
#[derive(Debug, Clone, clap::Parser)]
#[command(about = "A pubsub consumer daemon")]
#[non_exhaustive]
pub struct RunnerArgs {
    /// The daemon's options.
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// The AWS options.
    #[command(flatten)]
    pub aws: AwsArgs,
    /// The topic of what handlers publish, for every media type the mappings do not route
    /// (an SNS topic ARN, or an SQS queue URL to send to the queue directly).
    #[arg(long, value_name = "ARN")]
    pub sns_topic_arn_default: Option<String>,
    /// Topics by media type (or `prefix.*` pattern), a JSON object:
    /// `{"application/vnd.acme.pubsub.greeting": "arn:aws:sns:..."}`; a value may be an SQS
    /// queue URL (`https://sqs...`), which is sent to directly.
    #[arg(long, value_name = "JSON", value_parser = topic_mappings)]
    pub sns_topic_arns_mappings: Option<TopicMappings>,
    /// Serve `/health/live` and `/health/ready` on this address (`0.0.0.0:8080`).
    #[arg(long, value_name = "HOST:PORT")]
    pub health_addr: Option<SocketAddr>,
    /// Offload what handlers publish over 256 KiB (body and attributes) to this S3 bucket, as
    /// AWS's extended client libraries do: the message sent is a pointer to the object. Messages
    /// that come as pointers are read from S3 with or without it.
    #[cfg(feature = "s3")]
    #[arg(long, value_name = "BUCKET")]
    pub large_payload_bucket: Option<String>,
    /// Delete a large payload's S3 object once its message is deleted from the queue. Only when
    /// this queue is the object's sole reader: through an SNS topic, every subscribed queue
    /// reads the same object.
    #[cfg(feature = "s3")]
    #[arg(long)]
    pub delete_large_payloads: bool,
}

/// Topics (or queue URLs) by media type pattern, as `--sns-topic-arns-mappings` gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicMappings(pub BTreeMap<String, String>);

fn topic_mappings(text: &str) -> Result<TopicMappings, String> {
    let mappings: BTreeMap<String, String> = serde_json::from_str(text).map_err(|error| {
        format!("not a JSON object of media type to topic ARN ({error}): write {{\"application/vnd.acme.pubsub.x\": \"arn:aws:sns:...\"}}")
    })?;
    for pattern in mappings.keys() {
        TopicMap::new().route(pattern, "").map_err(|error| format!("`{pattern}`: {error}"))?;
    }
    Ok(TopicMappings(mappings))
}

impl RunnerArgs {
    /// The environment variable of each option of ours, after the daemon's name: the seed's
    /// `SNS_TOPIC_ARNS` group, `DAEMON__HEALTH_ADDR`, and with the feature `s3`
    /// `LARGE_PAYLOAD_BUCKET` and `DELETE_LARGE_PAYLOADS`.
    #[cfg(feature = "s3")]
    pub const ENVIRONMENT: EnvironmentTable = &[
        ("sns_topic_arn_default", "SNS_TOPIC_ARNS__DEFAULT"),
        ("sns_topic_arns_mappings", "SNS_TOPIC_ARNS__MAPPINGS"),
        ("health_addr", "DAEMON__HEALTH_ADDR"),
        ("large_payload_bucket", "LARGE_PAYLOAD_BUCKET"),
        ("delete_large_payloads", "DELETE_LARGE_PAYLOADS"),
    ];

    /// The environment variable of each option of ours, after the daemon's name: the seed's
    /// `SNS_TOPIC_ARNS` group and `DAEMON__HEALTH_ADDR`.
    #[cfg(not(feature = "s3"))]
    pub const ENVIRONMENT: EnvironmentTable = &[
        ("sns_topic_arn_default", "SNS_TOPIC_ARNS__DEFAULT"),
        ("sns_topic_arns_mappings", "SNS_TOPIC_ARNS__MAPPINGS"),
        ("health_addr", "DAEMON__HEALTH_ADDR"),
    ];

    /// The topics configured, if any.
    pub fn topics(&self) -> Option<TopicMap> {
        let mappings = self.sns_topic_arns_mappings.as_ref().map(|mappings| &mappings.0);
        if self.sns_topic_arn_default.is_none() && mappings.is_none_or(BTreeMap::is_empty) {
            return None;
        }
        let mut topics = TopicMap::new();
        if let Some(default) = &self.sns_topic_arn_default {
            topics = topics.default_topic(default);
        }
        for (pattern, topic) in mappings.into_iter().flatten() {
            topics = topics.route(pattern, topic).expect("checked when parsed");
        }
        Some(topics)
    }
}

type Configure = Box<dyn FnOnce(DaemonBuilder) -> DaemonBuilder + Send>;

/// Runs a daemon from its command line and environment: see the [module](self).
#[must_use = "a runner does nothing until `.run().await`"]
pub struct Runner {
    name: String,
    configure: Vec<Configure>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Runner {
    /// The runner of a daemon named `name` (unless `--name` says otherwise), which is also the
    /// prefix of its environment variables: `Runner::new("example")` reads
    /// `EXAMPLE__SQS_CONSUMER__SQS_QUEUE_URL`.
    pub fn new(name: impl Into<String>) -> Runner {
        Runner { name: name.into(), configure: Vec::new() }
    }

    /// Adds to the daemon what the command line cannot say: collaborators, layers, handlers
    /// given by hand.
    ///
    /// ```no_run
    /// # async fn run() -> std::process::ExitCode {
    /// pubsub_aws::Runner::new("billing")
    ///     .configure(|daemon| daemon.collaborator(String::from("postgres://...")))
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn configure(
        mut self,
        configure: impl FnOnce(DaemonBuilder) -> DaemonBuilder + Send + 'static,
    ) -> Runner {
        self.configure.push(Box::new(configure));
        self
    }

    /// Parses `args` (the program name first) and the environment.
    pub fn try_parse_args_from(
        &self,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Result<RunnerArgs, clap::Error> {
        parse_with_environment(
            &self.name,
            &[DaemonArgs::ENVIRONMENT, AwsArgs::ENVIRONMENT, RunnerArgs::ENVIRONMENT],
            args,
        )
    }

    /// Parses the process's command line and environment, runs, and returns the exit code; a
    /// bad command line or variable prints the error and exits 2.
    pub async fn run(self) -> ExitCode {
        let args = self.try_parse_args_from(std::env::args_os()).unwrap_or_else(|error| error.exit());
        self.run_with(args).await
    }

    /// Runs with `args`; the exit code.
    pub async fn run_with(self, args: RunnerArgs) -> ExitCode {
        let mut builder = args.daemon.builder();
        for configure in self.configure {
            builder = configure(builder);
        }
        // Before the logs and the exporter: with `--asyncapi`, the document is all there is.
        if let Some(code) = args.daemon.print_asyncapi(&builder, args.topics().as_ref()) {
            return code;
        }
        match args.daemon.logging().quiet(SDK_LOG_TARGETS).try_init() {
            // A program that set up its own logs keeps them.
            Ok(()) | Err(pubsub_core::logging::LoggingError::AlreadySet(_)) => {}
            Err(error) => return configuration_error(error),
        }
        #[cfg(feature = "otlp")]
        let _export = match pubsub_core::telemetry::export::Export::from_env(&args.daemon.name) {
            Ok(export) => export,
            Err(error) => return configuration_error(error),
        };
        let source = match args.daemon.source() {
            Ok(source) => source,
            Err(error) => return configuration_error(error),
        };
        match source {
            Source::Queue(url) => {
                let config = load_config(&args.aws.clone().into_options()).await;
                let subscriber = match SqsSubscriber::new(&config, &url).await {
                    Ok(subscriber) => subscriber,
                    Err(error) => return configuration_error(format!("queue {url}: {error}")),
                };
                let producer = args.topics().map(|topics| Producer::new(AwsPublisher::new(&config), topics));
                // With S3 compiled in, pointers are always resolved: a message offloaded by any
                // producer (or an extended client) is handled whole, whatever this one publishes.
                #[cfg(feature = "s3")]
                let producer = {
                    let store: std::sync::Arc<dyn pubsub_core::payload::ObjectStore> =
                        std::sync::Arc::new(crate::S3ObjectStore::new(&config));
                    builder = builder.object_store(store.clone()).delete_payloads(args.delete_large_payloads);
                    match (producer, &args.large_payload_bucket) {
                        (Some(producer), Some(bucket)) => {
                            Some(producer.large_payloads(pubsub_core::payload::LargePayloads::from_shared(
                                store, bucket,
                            )))
                        }
                        (None, Some(bucket)) => {
                            tracing::warn!(%bucket, "--large-payload-bucket without a topic: nothing is published");
                            None
                        }
                        (producer, None) => producer,
                    }
                };
                if let Some(producer) = producer {
                    builder = builder.producer(producer);
                }
                let daemon = match builder.build(subscriber) {
                    Ok(daemon) => daemon,
                    Err(error) => return configuration_error(error),
                };
                tracing::info!(queue = %url, name = %args.daemon.name, "daemon started");
                serve_and_run(daemon, args.health_addr, false).await
            }
            // Its errors (no handlers, an input that cannot be read) all come before any message.
            embedded => match EmbeddedDaemon::new(builder, &embedded).await {
                Ok(EmbeddedDaemon { daemon, until_idle }) => {
                    serve_and_run(daemon, args.health_addr, until_idle).await
                }
                Err(error) => configuration_error(error),
            },
        }
    }
}

/// Serves the health probes (when asked) while `daemon` runs, until idle or until a signal;
/// prints the report; the exit code.
async fn serve_and_run<S: Subscriber + 'static>(
    daemon: Daemon<S>,
    health_addr: Option<SocketAddr>,
    until_idle: bool,
) -> ExitCode {
    let health = daemon.health();
    // Bound before the daemon starts: a port in use is a configuration error.
    let serving = match health_addr {
        None => None,
        Some(addr) => match HealthServer::bind(addr).await {
            Ok(server) => {
                tracing::info!(addr = %server.local_addr(), "health probes at /health/live and /health/ready");
                Some(tokio::spawn(server.serve(health.clone(), health.stopped())))
            }
            Err(error) => return configuration_error(format!("--health-addr {addr}: {error}")),
        },
    };
    // On a task of its own, so that a panic outside the handlers (which are caught per
    // message) is the daemon's failure, exit 1, not an abort.
    let running = tokio::spawn(async move {
        if until_idle {
            daemon.run_until_idle().await
        } else {
            daemon.run_until_signal().await
        }
    });
    let report = match running.await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: the daemon failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(serving) = serving {
        // It ends once the daemon has stopped.
        let _ = serving.await;
    }
    pubsub_core::cli::exit_code(&report)
}

/// Exit 2, before any message: the configuration cannot work.
fn configuration_error(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_come_from_the_default_and_the_mappings() {
        let runner = Runner::new("example");
        let args = runner.try_parse_args_from(["example", "--testing"]).unwrap();
        assert!(args.topics().is_none(), "no topic, no producer");
        let args = runner
            .try_parse_args_from([
                "example",
                "--testing",
                "--sns-topic-arn-default",
                "arn:aws:sns:us-east-1:1:default",
                "--sns-topic-arns-mappings",
                r#"{"application/vnd.acme.pubsub.invoice": "arn:aws:sns:us-east-1:1:invoices"}"#,
            ])
            .unwrap();
        let topics = args.topics().unwrap();
        assert_eq!(
            topics.topic_for("application/vnd.acme.pubsub.invoice").unwrap(),
            "arn:aws:sns:us-east-1:1:invoices"
        );
        assert_eq!(
            topics.topic_for("application/vnd.acme.pubsub.other").unwrap(),
            "arn:aws:sns:us-east-1:1:default"
        );
        assert_eq!(args.daemon.name, "example", "the runner's name is --name's default");
        for bad in ["[1]", r#"{"not a media type": "arn"}"#] {
            let error =
                runner.try_parse_args_from(["example", "--sns-topic-arns-mappings", bad]).unwrap_err();
            assert!(error.to_string().contains("--sns-topic-arns-mappings"), "{error}");
        }
    }

    #[cfg(feature = "s3")]
    #[test]
    fn the_large_payload_options_come_from_flags_or_the_environment() {
        let runner = Runner::new("large_payload_runner_test");
        let args = runner.try_parse_args_from(["large_payload_runner_test", "--testing"]).unwrap();
        assert_eq!((args.large_payload_bucket, args.delete_large_payloads), (None, false));
        let args = runner
            .try_parse_args_from([
                "large_payload_runner_test",
                "--large-payload-bucket",
                "big",
                "--delete-large-payloads",
            ])
            .unwrap();
        assert_eq!((args.large_payload_bucket.as_deref(), args.delete_large_payloads), (Some("big"), true));
        // Variables no other test reads (this test's daemon name).
        std::env::set_var("LARGE_PAYLOAD_RUNNER_TEST__LARGE_PAYLOAD_BUCKET", "from-env");
        std::env::set_var("LARGE_PAYLOAD_RUNNER_TEST__DELETE_LARGE_PAYLOADS", "true");
        let args = runner.try_parse_args_from(["large_payload_runner_test"]).unwrap();
        assert_eq!(
            (args.large_payload_bucket.as_deref(), args.delete_large_payloads),
            (Some("from-env"), true)
        );
    }
}
