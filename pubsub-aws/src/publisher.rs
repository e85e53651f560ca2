//! AwsPublisher: SNS for topics, SQS for queues, by the destination's name, so that a
//! `TopicMap` (and `--sns-topic-arns-mappings`) can route a media type to either.

use aws_config::SdkConfig;
use pubsub_core::transport::{
    BoxFuture, Destination, EntryError, MessageId, OutgoingMessage, Publisher, TransportError,
};

use crate::metrics::RequestCounter;
use crate::{SnsPublisher, SqsPublisher};

/// Publishes to SNS topics (by ARN) through an [`SnsPublisher`] and straight to SQS queues
/// (by URL, `https://…` or `http://…`) through an [`SqsPublisher`], both on one SDK
/// configuration: what the runner, the Lambda builder and the `pubsub` command line publish
/// through.
///
/// ```no_run
/// # async fn example(config: &aws_config::SdkConfig) -> Result<(), Box<dyn std::error::Error>> {
/// use pubsub_aws::AwsPublisher;
/// use pubsub_core::{Producer, TopicMap};
///
/// let topics = TopicMap::new()
///     // Reminders go straight to the queue of the daemon that sends them.
///     .route("application/vnd.acme.pubsub.reminder", "https://sqs.eu-west-1.amazonaws.com/1/reminders")?
///     .default_topic("arn:aws:sns:eu-west-1:1:events");
/// let producer = Producer::new(AwsPublisher::new(config), topics);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AwsPublisher {
    sns: SnsPublisher,
    sqs: SqsPublisher,
}

impl AwsPublisher {
    /// A publisher with the configuration `config` (see [`load_config`](crate::load_config)).
    pub fn new(config: &SdkConfig) -> AwsPublisher {
        AwsPublisher { sns: SnsPublisher::new(config), sqs: SqsPublisher::new(config) }
    }

    /// As [`new`](AwsPublisher::new), counting the requests of both clients with `counter`.
    pub fn with_counter(config: &SdkConfig, counter: &RequestCounter) -> AwsPublisher {
        AwsPublisher {
            sns: SnsPublisher::with_counter(config, counter),
            sqs: SqsPublisher::with_counter(config, counter),
        }
    }

    /// A publisher over publishers of your own (custom clients, test doubles).
    pub fn from_parts(sns: SnsPublisher, sqs: SqsPublisher) -> AwsPublisher {
        AwsPublisher { sns, sqs }
    }

    /// The publisher of topics.
    pub fn sns(&self) -> &SnsPublisher {
        &self.sns
    }

    /// The publisher of queues.
    pub fn sqs(&self) -> &SqsPublisher {
        &self.sqs
    }
}

impl Publisher for AwsPublisher {
    /// To SQS when `destination` is a queue URL ([`Destination::is_queue`]), else to SNS.
    fn publish_batch<'a>(
        &'a self,
        destination: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Result<MessageId, EntryError>>, TransportError>> {
        if Destination::of(destination).is_queue() {
            self.sqs.publish_batch(destination, messages)
        } else {
            self.sns.publish_batch(destination, messages)
        }
    }
}
