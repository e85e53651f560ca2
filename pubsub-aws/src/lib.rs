//! The AWS transport of the pubsub toolkit: [`SnsPublisher`] (to topics), [`SqsPublisher`]
//! (straight to queues) and [`SqsSubscriber`] implement pubsub-core's `Publisher` and
//! `Subscriber` with `aws-sdk-sns` and `aws-sdk-sqs`; [`AwsPublisher`] publishes to either,
//! by the destination (a topic ARN or a queue URL). All dispatch logic stays in pubsub-core.
//!
//! Credentials are never configured here: the AWS default chain (environment, profile,
//! instance role) provides them. Region, profile and endpoint come from the environment
//! (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`) or from [`AwsOptions`], which a command
//! line's [`AwsArgs`] (`--region`, `--profile`, `--endpoint-url`) gives.
//!
//! Also: [`provision`] creates topics, queues and subscriptions; [`runner`] runs a daemon on
//! SQS; [`redrive`] moves messages back from a dead-letter queue (each sent before it is
//! deleted, bodies and message attributes unchanged), as `pubsub redrive` does.
//!
//! With the feature `s3` (on by default), `S3ObjectStore` keeps the bodies of large messages
//! in S3, as AWS's extended client libraries do (pubsub-core's `payload`).

mod args;
mod batch;
mod config;
mod errors;
mod metrics;
pub mod provision;
mod publisher;
pub mod redrive;
pub mod runner;
#[cfg(feature = "s3")]
mod s3;
mod sns;
mod sqs;
mod sqs_publish;

pub use args::{AwsArgs, SDK_LOG_TARGETS};
pub use config::{load_config, AwsOptions, Timeouts};
pub use metrics::{RequestCounter, RequestCounts};
pub use publisher::AwsPublisher;
pub use runner::{Runner, RunnerArgs};
#[cfg(feature = "s3")]
pub use s3::S3ObjectStore;
pub use sns::SnsPublisher;
pub use sqs::SqsSubscriber;
pub use sqs_publish::SqsPublisher;
