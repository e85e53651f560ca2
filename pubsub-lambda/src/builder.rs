//! Building a function from a daemon builder.

use std::time::Duration;

use aws_config::SdkConfig;
use pubsub_aws::{AwsOptions, AwsPublisher};
use pubsub_core::{DaemonBuilder, Producer, TopicMap};

use crate::config::topics_from_env;
use crate::error::LambdaError;
use crate::handler::LambdaHandler;

/// The default of [`LambdaBuilder::deadline_margin`].
pub const DEFAULT_DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// Builds a Lambda function from a [`DaemonBuilder`]: the same handlers (registered or
/// linked), collaborators, layers, time limits, `max_attempts`, backoff and `on_outcome` hook,
/// run on SQS and SNS events.
///
/// ```no_run
/// use pubsub_core::{handler, DaemonBuilder, HandlerError, PubSubMessage};
/// use pubsub_lambda::LambdaBuilder;
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
/// # #[media_type = "application/vnd.acme.pubsub.order"]
/// # struct Order { id: String }
///
/// #[handler]
/// async fn on_order(order: Order) -> Result<(), HandlerError> {
///     tracing::info!(id = %order.id, "order");
///     Ok(())
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), pubsub_lambda::LambdaError> {
///     pubsub_lambda::logging().init(); // JSON lines, as CloudWatch reads them
///     LambdaBuilder::from(DaemonBuilder::new("billing").max_attempts(5))
///         .concurrency(10) // records handled at once
///         .run() // what handlers publish goes to BILLING__SNS_TOPIC_ARNS__DEFAULT
///         .await
/// }
/// ```
///
/// Of the daemon's own settings only `concurrency` is used (as the default of
/// [`concurrency`](LambdaBuilder::concurrency)); polling, heartbeat, drain and settling have no
/// use on Lambda, where the event source mapping receives and deletes.
#[derive(Debug)]
#[must_use = "a LambdaBuilder does nothing until `build` or `run`"]
pub struct LambdaBuilder {
    daemon: DaemonBuilder,
    concurrency: Option<usize>,
    deadline_margin: Duration,
    change_visibility: bool,
    sqs: Option<aws_sdk_sqs::Client>,
    topics: Option<TopicMap>,
    aws: Option<SdkConfig>,
}

impl From<DaemonBuilder> for LambdaBuilder {
    fn from(daemon: DaemonBuilder) -> LambdaBuilder {
        LambdaBuilder::new(daemon)
    }
}

impl LambdaBuilder {
    /// A function running what `daemon` would run.
    pub fn new(daemon: DaemonBuilder) -> LambdaBuilder {
        LambdaBuilder {
            daemon,
            concurrency: None,
            deadline_margin: DEFAULT_DEADLINE_MARGIN,
            change_visibility: true,
            sqs: None,
            topics: None,
            aws: None,
        }
    }

    /// Records handled at once (default: the daemon builder's concurrency, 10 unless set
    /// there). The records of one FIFO message group are handled one after another whatever
    /// this is.
    pub fn concurrency(mut self, concurrency: usize) -> LambdaBuilder {
        self.concurrency = Some(concurrency.max(1));
        self
    }

    /// How long before the invocation's deadline the function stops (default 1 s): from then
    /// no record starts, the records still running are cancelled (as a handler past its time
    /// limit is), and all of them are reported as failures, so that the answer reaches Lambda
    /// in time and the records that finished are deleted. Half of it is left for the
    /// visibility changes, half for the answer.
    pub fn deadline_margin(mut self, margin: Duration) -> LambdaBuilder {
        self.deadline_margin = margin;
        self
    }

    /// Whether RETRIED's delay and FAILED's backoff are applied with SQS
    /// `ChangeMessageVisibility` (default: yes). Off, the records Lambda is told failed come
    /// back after the queue's visibility timeout, and the function needs no SQS permission
    /// but the event source mapping's.
    pub fn change_visibility(mut self, on: bool) -> LambdaBuilder {
        self.change_visibility = on;
        self
    }

    /// The SQS client of the visibility changes (default: one from the AWS configuration).
    pub fn sqs_client(mut self, client: aws_sdk_sqs::Client) -> LambdaBuilder {
        self.sqs = Some(client);
        self
    }

    /// The SNS topics what handlers publish goes to (default: from the environment, as the
    /// daemon reads them: `{NAME}__SNS_TOPIC_ARNS__DEFAULT` and
    /// `{NAME}__SNS_TOPIC_ARNS__MAPPINGS`, see [`topics_from_env`]; a queue URL there is sent
    /// to directly, on SQS). Either makes a producer on SNS and SQS that replaces one given to
    /// the daemon builder; with neither, the daemon builder's producer (if any) is used.
    pub fn topics(mut self, topics: TopicMap) -> LambdaBuilder {
        self.topics = Some(topics);
        self
    }

    /// The AWS configuration of the SQS and SNS clients (default: loaded from the
    /// environment by [`pubsub_aws::load_config`], when one of them is needed).
    pub fn aws_config(mut self, config: SdkConfig) -> LambdaBuilder {
        self.aws = Some(config);
        self
    }

    /// Checks the handlers and builds the function. Loads the AWS configuration only when a
    /// client needs it (visibility changes without [`sqs_client`](LambdaBuilder::sqs_client),
    /// or topics to publish to); that makes no request.
    pub async fn build(self) -> Result<LambdaHandler, LambdaError> {
        let LambdaBuilder { mut daemon, concurrency, deadline_margin, change_visibility, sqs, topics, aws } =
            self;
        let topics = match topics {
            Some(topics) => Some(topics),
            None => topics_from_env(daemon.name())?,
        };
        let needs_aws = topics.is_some() || (change_visibility && sqs.is_none());
        let aws = match aws {
            Some(config) => Some(config),
            None if needs_aws => Some(pubsub_aws::load_config(&AwsOptions::default()).await),
            None => None,
        };
        if let (Some(topics), Some(config)) = (topics, &aws) {
            daemon = daemon.producer(Producer::new(AwsPublisher::new(config), topics));
        }
        let sqs = match (change_visibility, sqs, &aws) {
            (false, _, _) => None,
            (true, Some(client), _) => Some(client),
            (true, None, Some(config)) => Some(aws_sdk_sqs::Client::new(config)),
            (true, None, None) => None,
        };
        let name = daemon.name().to_owned();
        let concurrency = concurrency.unwrap_or(daemon.daemon_config().concurrency);
        // The queue is known per record only: traces name none.
        let dispatcher = daemon.build_dispatcher("")?;
        Ok(LambdaHandler::new(name, dispatcher, sqs, concurrency, deadline_margin))
    }

    /// Builds the function and serves invocations until the Lambda runtime stops (see
    /// [`LambdaHandler::run`]).
    pub async fn run(self) -> Result<(), LambdaError> {
        self.build().await?.run().await
    }
}
