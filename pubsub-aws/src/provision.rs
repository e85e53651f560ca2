//! Idempotent provisioning: topics, queues with dead-letter queues, subscriptions (raw
//! delivery on or off, a filter policy on `media_type`) and the queue policy that lets a
//! topic deliver. Running it twice changes nothing.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use pubsub_core::memory::FilterPolicy;
use pubsub_core::transport::TransportError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::errors::{transport_error, Resource};

/// A queue to create.
#[derive(Debug, Clone, Default)]
pub struct QueueSpec {
    /// Its visibility timeout (SQS's default, 30 s, when absent).
    pub visibility_timeout: Option<Duration>,
    /// `(dead-letter queue name, maxReceiveCount)`: the dead-letter queue is created too.
    pub dead_letter: Option<(String, u32)>,
}

/// A subscription of a queue to a topic.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionSpec {
    /// Raw message delivery: the body is the message, not an SNS notification.
    pub raw_delivery: bool,
    /// Deliver only the messages it accepts, on their media type and other message
    /// attributes (every message when absent).
    pub filter: Option<FilterPolicy>,
}

/// What `pubsub provision --config FILE` creates, read from TOML:
///
/// ```
/// use pubsub_aws::provision::ProvisionConfig;
///
/// let config = ProvisionConfig::from_toml(r#"
///     [[topic]]
///     name = "orders"
///
///     [[queue]]
///     name = "billing"
///     visibility_timeout = 60
///     dead_letter_queue = "billing-dlq"
///     max_receive_count = 5
///
///     [[subscription]]
///     topic = "orders"
///     queue = "billing"
///     raw = true
///     media_types = ["application/vnd.acme.pubsub._.created.*"]
/// "#)?;
/// assert_eq!(config.subscriptions[0].filter().unwrap().to_json(),
///     r#"{"media_type":[{"prefix":"application/vnd.acme.pubsub._.created."}]}"#);
/// # Ok::<(), pubsub_aws::provision::ProvisionError>(())
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionConfig {
    /// `[[topic]]` tables.
    #[serde(default, rename = "topic")]
    pub topics: Vec<TopicConfig>,
    /// `[[queue]]` tables.
    #[serde(default, rename = "queue")]
    pub queues: Vec<QueueConfig>,
    /// `[[subscription]]` tables.
    #[serde(default, rename = "subscription")]
    pub subscriptions: Vec<SubscriptionConfig>,
}

/// A topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Its name.
    pub name: String,
}

/// A queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Its name.
    pub name: String,
    /// Visibility timeout in seconds.
    pub visibility_timeout: Option<u64>,
    /// The dead-letter queue's name (created too).
    pub dead_letter_queue: Option<String>,
    /// Receives before a message moves to the dead-letter queue (default 5).
    pub max_receive_count: Option<u32>,
}

/// A subscription of a queue to a topic, both by name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// The topic's name.
    pub topic: String,
    /// The queue's name.
    pub queue: String,
    /// Raw message delivery.
    #[serde(default)]
    pub raw: bool,
    /// Media types (or `prefix.*` patterns) delivered; all when absent. Typically the media
    /// types the queue's daemon handles (`HandlerTable::media_types`).
    pub media_types: Option<Vec<String>>,
}

impl SubscriptionConfig {
    /// The filter policy on `media_type` its media types make.
    pub fn filter(&self) -> Option<FilterPolicy> {
        filter_for(self.media_types.as_deref()?)
    }
}

/// A filter policy accepting `patterns`: media types, or `prefix.*` patterns.
pub fn filter_for<S: AsRef<str>>(patterns: &[S]) -> Option<FilterPolicy> {
    let mut policy: Option<FilterPolicy> = None;
    for pattern in patterns {
        let pattern = pattern.as_ref();
        policy = Some(match (policy, pattern.strip_suffix('*')) {
            (None, Some(prefix)) => FilterPolicy::media_type_prefix(prefix),
            (None, None) => FilterPolicy::media_types([pattern]),
            (Some(policy), Some(prefix)) => policy.or_prefix(prefix),
            (Some(policy), None) => policy.or_media_type(pattern),
        });
    }
    policy
}

/// Why provisioning stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The file is not valid TOML, or has unknown keys.
    #[error("invalid provisioning file: {0}")]
    Toml(#[from] toml::de::Error),
    /// The file refers to something it does not declare.
    #[error("invalid provisioning file: {0}")]
    Invalid(String),
    /// A request failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

impl ProvisionConfig {
    /// Reads and checks a TOML provisioning file.
    pub fn from_toml(text: &str) -> Result<ProvisionConfig, ProvisionError> {
        let config: ProvisionConfig = toml::from_str(text)?;
        for subscription in &config.subscriptions {
            if !config.topics.iter().any(|t| t.name == subscription.topic) {
                return Err(ProvisionError::Invalid(format!(
                    "subscription of `{}` names topic `{}`, which no [[topic]] declares",
                    subscription.queue, subscription.topic
                )));
            }
            if !config.queues.iter().any(|q| q.name == subscription.queue) {
                return Err(ProvisionError::Invalid(format!(
                    "subscription to `{}` names queue `{}`, which no [[queue]] declares",
                    subscription.topic, subscription.queue
                )));
            }
            for media_type in subscription.media_types.iter().flatten() {
                pubsub_core::media_type::MediaTypePattern::parse(media_type)
                    .map_err(|e| ProvisionError::Invalid(format!("subscription media type: {e}")))?;
            }
        }
        Ok(config)
    }
}

impl SubscriptionSpec {
    /// A subscription that delivers only what `handlers` handle (a daemon's
    /// `DaemonBuilder::handler_table()`), so its queue receives nothing it would ignore.
    pub fn for_handlers(
        handlers: &pubsub_core::handlers::HandlerTable,
        raw_delivery: bool,
    ) -> SubscriptionSpec {
        SubscriptionSpec { raw_delivery, filter: filter_for(&handlers.media_types()) }
    }
}

/// Creates SNS and SQS resources, idempotently.
#[derive(Debug, Clone)]
pub struct Provisioner {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
}

impl Provisioner {
    /// A provisioner with the configuration `config`.
    pub fn new(config: &SdkConfig) -> Provisioner {
        Provisioner { sns: aws_sdk_sns::Client::new(config), sqs: aws_sdk_sqs::Client::new(config) }
    }

    /// Creates everything `config` describes; returns `(kind, name, ARN or URL)` of each.
    pub async fn apply(
        &self,
        config: &ProvisionConfig,
    ) -> Result<Vec<(&'static str, String, String)>, ProvisionError> {
        let mut created = Vec::new();
        let mut topics = std::collections::HashMap::new();
        for topic in &config.topics {
            let arn = self.topic(&topic.name).await?;
            created.push(("topic", topic.name.clone(), arn.clone()));
            topics.insert(topic.name.clone(), arn);
        }
        let mut queues = std::collections::HashMap::new();
        for queue in &config.queues {
            let spec = QueueSpec {
                visibility_timeout: queue.visibility_timeout.map(Duration::from_secs),
                dead_letter: queue
                    .dead_letter_queue
                    .clone()
                    .map(|dlq| (dlq, queue.max_receive_count.unwrap_or(5))),
            };
            let url = self.queue(&queue.name, &spec).await?;
            created.push(("queue", queue.name.clone(), url.clone()));
            queues.insert(queue.name.clone(), url);
        }
        for subscription in &config.subscriptions {
            let spec = SubscriptionSpec { raw_delivery: subscription.raw, filter: subscription.filter() };
            let arn =
                self.subscribe(&topics[&subscription.topic], &queues[&subscription.queue], &spec).await?;
            created.push(("subscription", format!("{}->{}", subscription.topic, subscription.queue), arn));
        }
        Ok(created)
    }

    /// Creates the topic `name` (or finds it); returns its ARN.
    pub async fn topic(&self, name: &str) -> Result<String, TransportError> {
        let output = self
            .sns
            .create_topic()
            .name(name)
            .send()
            .await
            .map_err(|e| transport_error(e, Resource::Topic(name)))?;
        output
            .topic_arn()
            .map(str::to_owned)
            .ok_or_else(|| TransportError::Invalid("CreateTopic returned no ARN".into()))
    }

    /// Creates the queue `name` (and its dead-letter queue), or brings an existing one to
    /// `spec`; returns its URL.
    pub async fn queue(&self, name: &str, spec: &QueueSpec) -> Result<String, TransportError> {
        let mut attributes = Vec::new();
        if let Some(timeout) = spec.visibility_timeout {
            attributes.push((QueueAttributeName::VisibilityTimeout, timeout.as_secs().to_string()));
        }
        if let Some((dead_letter, max_receive_count)) = &spec.dead_letter {
            let dlq_url = Box::pin(self.queue(dead_letter, &QueueSpec::default())).await?;
            let dlq_arn = self.queue_arn(&dlq_url).await?;
            let policy =
                json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count.to_string()});
            attributes.push((QueueAttributeName::RedrivePolicy, policy.to_string()));
        }
        let output = self
            .sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| transport_error(e, Resource::Queue(name)))?;
        let url = output
            .queue_url()
            .map(str::to_owned)
            .ok_or_else(|| TransportError::Invalid("CreateQueue returned no URL".into()))?;
        // Attributes are set apart, so a second run with a changed spec updates the queue
        // instead of failing with QueueAlreadyExists.
        if !attributes.is_empty() {
            let mut request = self.sqs.set_queue_attributes().queue_url(&url);
            for (name, value) in attributes {
                request = request.attributes(name, value);
            }
            request.send().await.map_err(|e| transport_error(e, Resource::Queue(&url)))?;
        }
        Ok(url)
    }

    /// The ARN of the queue at `queue_url`.
    pub async fn queue_arn(&self, queue_url: &str) -> Result<String, TransportError> {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| transport_error(e, Resource::Queue(queue_url)))?;
        output
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| TransportError::Invalid("the queue has no QueueArn attribute".into()))
    }

    /// Subscribes the queue to the topic (or updates the existing subscription to `spec`),
    /// after allowing the topic to send to the queue; returns the subscription ARN.
    pub async fn subscribe(
        &self,
        topic_arn: &str,
        queue_url: &str,
        spec: &SubscriptionSpec,
    ) -> Result<String, TransportError> {
        let queue_arn = self.queue_arn(queue_url).await?;
        self.allow_topic(topic_arn, queue_url, &queue_arn).await?;
        let raw = if spec.raw_delivery { "true" } else { "false" };
        let filter = spec.filter.as_ref().map(FilterPolicy::to_json);
        if let Some(existing) = self.find_subscription(topic_arn, &queue_arn).await? {
            self.set_subscription_attribute(&existing, "RawMessageDelivery", raw).await?;
            // An empty policy removes the filter.
            self.set_subscription_attribute(&existing, "FilterPolicy", filter.as_deref().unwrap_or(""))
                .await?;
            return Ok(existing);
        }
        let mut request = self
            .sns
            .subscribe()
            .topic_arn(topic_arn)
            .protocol("sqs")
            .endpoint(&queue_arn)
            .return_subscription_arn(true)
            .attributes("RawMessageDelivery", raw);
        if let Some(filter) = filter {
            request = request.attributes("FilterPolicy", filter);
        }
        let output = request.send().await.map_err(|e| transport_error(e, Resource::Topic(topic_arn)))?;
        output
            .subscription_arn()
            .map(str::to_owned)
            .ok_or_else(|| TransportError::Invalid("Subscribe returned no ARN".into()))
    }

    async fn find_subscription(
        &self,
        topic_arn: &str,
        queue_arn: &str,
    ) -> Result<Option<String>, TransportError> {
        let mut next = None;
        loop {
            let output = self
                .sns
                .list_subscriptions_by_topic()
                .topic_arn(topic_arn)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| transport_error(e, Resource::Topic(topic_arn)))?;
            if let Some(found) = output
                .subscriptions()
                .iter()
                .find(|s| s.endpoint() == Some(queue_arn) && s.protocol() == Some("sqs"))
                .and_then(|s| s.subscription_arn())
            {
                return Ok(Some(found.to_owned()));
            }
            match output.next_token() {
                Some(token) => next = Some(token.to_owned()),
                None => return Ok(None),
            }
        }
    }

    async fn set_subscription_attribute(
        &self,
        subscription: &str,
        name: &str,
        value: &str,
    ) -> Result<(), TransportError> {
        self.sns
            .set_subscription_attributes()
            .subscription_arn(subscription)
            .attribute_name(name)
            .attribute_value(value)
            .send()
            .await
            .map_err(|e| transport_error(e, Resource::Topic(subscription)))?;
        Ok(())
    }

    /// Adds to the queue's policy a statement letting `topic_arn` send to it, unless one is
    /// there already.
    async fn allow_topic(
        &self,
        topic_arn: &str,
        queue_url: &str,
        queue_arn: &str,
    ) -> Result<(), TransportError> {
        let output = self
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::Policy)
            .send()
            .await
            .map_err(|e| transport_error(e, Resource::Queue(queue_url)))?;
        let current = output.attributes().and_then(|a| a.get(&QueueAttributeName::Policy)).cloned();
        let Some(policy) = with_topic_statement(current.as_deref(), topic_arn, queue_arn) else {
            return Ok(());
        };
        self.sqs
            .set_queue_attributes()
            .queue_url(queue_url)
            .attributes(QueueAttributeName::Policy, policy)
            .send()
            .await
            .map_err(|e| transport_error(e, Resource::Queue(queue_url)))?;
        Ok(())
    }
}

/// The queue policy with a statement allowing `topic_arn`, or `None` when it has one already.
fn with_topic_statement(current: Option<&str>, topic_arn: &str, queue_arn: &str) -> Option<String> {
    let mut policy: Value = current
        .and_then(|text| serde_json::from_str(text).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"Version": "2012-10-17", "Statement": []}));
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    let allows = |s: &Value| {
        s["Condition"]["ArnEquals"]["aws:SourceArn"] == topic_arn && s["Action"] == "sqs:SendMessage"
    };
    if statements.iter().any(allows) {
        return None;
    }
    let mut statements = statements;
    statements.push(json!({
        "Sid": format!("pubsub-{}", topic_arn.rsplit(':').next().unwrap_or("topic")),
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
    }));
    policy["Statement"] = Value::Array(statements);
    Some(policy.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_topic_statement_is_added_once() {
        let first = with_topic_statement(None, "arn:aws:sns:us-east-1:1:orders", "arn:aws:sqs:us-east-1:1:q")
            .unwrap();
        assert_eq!(
            with_topic_statement(Some(&first), "arn:aws:sns:us-east-1:1:orders", "arn:aws:sqs:us-east-1:1:q"),
            None
        );
        let second =
            with_topic_statement(Some(&first), "arn:aws:sns:us-east-1:1:other", "arn:aws:sqs:us-east-1:1:q")
                .unwrap();
        let policy: Value = serde_json::from_str(&second).unwrap();
        assert_eq!(policy["Statement"].as_array().unwrap().len(), 2);
    }
}
