//! Idempotent provisioning: topics (standard or FIFO), queues (standard or FIFO, with
//! dead-letter queues, delays, content-based deduplication, high throughput), subscriptions
//! (raw delivery on or off, a filter policy on `media_type` and any other message attribute)
//! and the queue policy that lets a topic deliver. Running it twice changes nothing: what
//! exists is read, and only what differs is set.
//!
//! A topic or queue is FIFO when its name ends in `.fifo` (as SNS and SQS require); a FIFO
//! queue's dead-letter queue must be FIFO too, a standard queue's standard. Whether a topic
//! or queue is FIFO cannot change once it exists (it is part of its name); its other
//! attributes are brought to the spec.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use pubsub_core::memory::FilterPolicy;
use pubsub_core::transport::{Destination, TransportError, MAX_DELAY};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::errors::{transport_error, Resource};
use crate::metrics::RequestCounter;

/// A topic to create; FIFO when its name ends in `.fifo`.
#[derive(Debug, Clone, Default)]
pub struct TopicSpec {
    /// FIFO topics only: deduplicate on a hash of the body when a message has no
    /// deduplication id (`ContentBasedDeduplication`).
    pub content_based_deduplication: bool,
}

/// A queue to create; FIFO when its name ends in `.fifo`.
#[derive(Debug, Clone, Default)]
pub struct QueueSpec {
    /// Its visibility timeout (SQS's default, 30 s, when absent).
    pub visibility_timeout: Option<Duration>,
    /// `(dead-letter queue name, maxReceiveCount)`: the dead-letter queue is created too (FIFO
    /// for a FIFO queue: its name must end in `.fifo`).
    pub dead_letter: Option<(String, u32)>,
    /// How long each message stays hidden after it is sent (`DelaySeconds`, up to 15
    /// minutes; SQS's default, none, when absent).
    pub delay: Option<Duration>,
    /// FIFO queues only: deduplicate on a hash of the body when a message has no
    /// deduplication id (`ContentBasedDeduplication`).
    pub content_based_deduplication: bool,
    /// FIFO queues only: high-throughput mode, deduplication and throughput limit per message
    /// group (`DeduplicationScope=messageGroup`, `FifoThroughputLimit=perMessageGroupId`)
    /// rather than per queue.
    pub high_throughput: bool,
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
///     [[topic]]
///     name = "payments.fifo"              # FIFO: the name says so
///     content_based_deduplication = true
///
///     [[queue]]
///     name = "billing"
///     visibility_timeout = 60
///     delay_seconds = 5
///     dead_letter_queue = "billing-dlq"
///     max_receive_count = 5
///
///     [[queue]]
///     name = "ledger.fifo"
///     high_throughput = true
///     dead_letter_queue = "ledger-dlq.fifo"  # a FIFO queue's dead-letter queue is FIFO
///
///     [[subscription]]
///     topic = "orders"
///     queue = "billing"
///     raw = true
///     media_types = ["application/vnd.acme.pubsub._.created.*"]
///     filter_policy = '{"team": ["billing"]}'
///
///     [[subscription]]
///     topic = "payments.fifo"
///     queue = "ledger.fifo"
///     raw = true
/// "#)?;
/// assert_eq!(config.subscriptions[0].filter()?.unwrap().to_json(),
///     r#"{"media_type":[{"prefix":"application/vnd.acme.pubsub._.created."}],"team":["billing"]}"#);
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
    /// Its name; FIFO when it ends in `.fifo`.
    pub name: String,
    /// Optional, as a check: `true` refuses a name without `.fifo`, `false` one with it.
    pub fifo: Option<bool>,
    /// FIFO topics only: content-based deduplication.
    #[serde(default)]
    pub content_based_deduplication: bool,
}

/// A queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Its name; FIFO when it ends in `.fifo`.
    pub name: String,
    /// Optional, as a check: `true` refuses a name without `.fifo`, `false` one with it.
    pub fifo: Option<bool>,
    /// Visibility timeout in seconds.
    pub visibility_timeout: Option<u64>,
    /// Delay of every message in seconds (`DelaySeconds`, at most 900).
    pub delay_seconds: Option<u64>,
    /// The dead-letter queue's name (created too; ending in `.fifo` for a FIFO queue).
    pub dead_letter_queue: Option<String>,
    /// Receives before a message moves to the dead-letter queue (default 5).
    pub max_receive_count: Option<u32>,
    /// FIFO queues only: content-based deduplication.
    #[serde(default)]
    pub content_based_deduplication: bool,
    /// FIFO queues only: high-throughput mode (deduplication and throughput per message
    /// group).
    #[serde(default)]
    pub high_throughput: bool,
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
    /// A filter policy on other message attributes, SNS's JSON
    /// (`'{"team": ["billing"]}'`), as [`FilterPolicy::from_json`] reads it; with
    /// `media_types`, a message must pass both (one policy with both keys).
    pub filter_policy: Option<String>,
}

impl SubscriptionConfig {
    /// The filter policy its media types and its `filter_policy` make (none without either).
    pub fn filter(&self) -> Result<Option<FilterPolicy>, ProvisionError> {
        let invalid = |reason: String| {
            ProvisionError::Invalid(format!("subscription of `{}` to `{}`: {reason}", self.queue, self.topic))
        };
        let media_types = self.media_types.as_deref().and_then(filter_for);
        let Some(text) = &self.filter_policy else { return Ok(media_types) };
        let Ok(Value::Object(mut policy)) = serde_json::from_str::<Value>(text) else {
            return Err(invalid(format!("filter_policy {text:?} is not a JSON object")));
        };
        if let Some(media_types) = media_types {
            if policy.contains_key(pubsub_core::transport::MEDIA_TYPE_ATTRIBUTE) {
                return Err(invalid(
                    "both media_types and a `media_type` key in filter_policy: give the media types in \
                     one place"
                        .into(),
                ));
            }
            if let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(&media_types.to_json()) {
                policy.extend(keys);
            }
        }
        FilterPolicy::from_json(&Value::Object(policy).to_string())
            .map(Some)
            .map_err(|e| invalid(format!("filter_policy: {e}")))
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
    /// Reads and checks a TOML provisioning file: every name a subscription gives is declared,
    /// its media types and filter policy parse, FIFO settings are on FIFO names only, a FIFO
    /// queue's dead-letter queue is FIFO (and a standard one's standard), no FIFO queue is
    /// subscribed to a standard topic (SNS delivers to FIFO queues from FIFO topics only).
    pub fn from_toml(text: &str) -> Result<ProvisionConfig, ProvisionError> {
        let config: ProvisionConfig = toml::from_str(text)?;
        for topic in &config.topics {
            check_fifo_name("topic", &topic.name, topic.fifo)?;
            let spec = TopicSpec { content_based_deduplication: topic.content_based_deduplication };
            spec.check(&topic.name).map_err(invalid)?;
        }
        for queue in &config.queues {
            check_fifo_name("queue", &queue.name, queue.fifo)?;
            queue.spec().check(&queue.name).map_err(invalid)?;
        }
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
            if is_fifo(&subscription.queue) && !is_fifo(&subscription.topic) {
                return Err(ProvisionError::Invalid(format!(
                    "subscription of FIFO queue `{}` to standard topic `{}`: SNS delivers to FIFO queues \
                     from FIFO topics only (a name ending in `.fifo`)",
                    subscription.queue, subscription.topic
                )));
            }
            for media_type in subscription.media_types.iter().flatten() {
                pubsub_core::media_type::MediaTypePattern::parse(media_type)
                    .map_err(|e| ProvisionError::Invalid(format!("subscription media type: {e}")))?;
            }
            subscription.filter()?;
        }
        Ok(config)
    }
}

impl QueueConfig {
    /// What to create.
    pub fn spec(&self) -> QueueSpec {
        QueueSpec {
            visibility_timeout: self.visibility_timeout.map(Duration::from_secs),
            dead_letter: self.dead_letter_queue.clone().map(|dlq| (dlq, self.max_receive_count.unwrap_or(5))),
            delay: self.delay_seconds.map(Duration::from_secs),
            content_based_deduplication: self.content_based_deduplication,
            high_throughput: self.high_throughput,
        }
    }
}

fn invalid(error: TransportError) -> ProvisionError {
    match error {
        TransportError::Invalid(reason) => ProvisionError::Invalid(reason),
        other => ProvisionError::Transport(other),
    }
}

/// Whether a topic or queue named `name` is FIFO: its name ends in `.fifo`.
fn is_fifo(name: &str) -> bool {
    Destination::of(name).is_fifo()
}

/// Refuses `fifo = true` on a name without `.fifo`, and `fifo = false` on one with it: SNS
/// and SQS make a topic or queue FIFO by its name, and the name must say so.
fn check_fifo_name(kind: &str, name: &str, fifo: Option<bool>) -> Result<(), ProvisionError> {
    match fifo {
        Some(true) if !is_fifo(name) => Err(ProvisionError::Invalid(format!(
            "{kind} `{name}` has fifo = true, but a FIFO {kind}'s name must end in `.fifo`: name it \
             `{name}.fifo`"
        ))),
        Some(false) if is_fifo(name) => Err(ProvisionError::Invalid(format!(
            "{kind} `{name}` has fifo = false, but its name ends in `.fifo`, which only a FIFO {kind}'s may"
        ))),
        _ => Ok(()),
    }
}

impl TopicSpec {
    /// Refuses FIFO settings on a standard topic.
    fn check(&self, name: &str) -> Result<(), TransportError> {
        if self.content_based_deduplication && !is_fifo(name) {
            return Err(TransportError::Invalid(format!(
                "topic `{name}` has content_based_deduplication, which only FIFO topics take (a name \
                 ending in `.fifo`)"
            )));
        }
        Ok(())
    }
}

impl QueueSpec {
    /// Refuses FIFO settings on a standard queue, a dead-letter queue of the other kind, a
    /// delay over 15 minutes.
    fn check(&self, name: &str) -> Result<(), TransportError> {
        let fifo = is_fifo(name);
        let refuse = |reason: String| Err(TransportError::Invalid(format!("queue `{name}` {reason}")));
        if !fifo && (self.content_based_deduplication || self.high_throughput) {
            return refuse(
                "has content_based_deduplication or high_throughput, which only FIFO queues take (a name \
                 ending in `.fifo`)"
                    .into(),
            );
        }
        if let Some((dead_letter, _)) = &self.dead_letter {
            match (fifo, is_fifo(dead_letter)) {
                (true, false) => {
                    return refuse(format!(
                        "is FIFO, so its dead-letter queue must be FIFO too: name it `{dead_letter}.fifo`"
                    ))
                }
                (false, true) => {
                    return refuse(format!(
                        "is a standard queue, so its dead-letter queue `{dead_letter}` must be standard too \
                         (a name not ending in `.fifo`)"
                    ))
                }
                _ => {}
            }
        }
        if self.delay.is_some_and(|delay| delay > MAX_DELAY) {
            return refuse("has a delay over SQS's limit of 900 seconds".into());
        }
        Ok(())
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

/// Creates SNS and SQS resources, idempotently: what exists is read, and only what differs
/// from the spec is set.
#[derive(Debug, Clone)]
pub struct Provisioner {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
}

impl Provisioner {
    /// A provisioner with the configuration `config`.
    pub fn new(config: &SdkConfig) -> Provisioner {
        Provisioner {
            sns: crate::metrics::sns_client(config, None),
            sqs: crate::metrics::sqs_client(config, None),
        }
    }

    /// As [`new`](Provisioner::new), counting requests with `counter` (a second run of the
    /// same spec makes no `Create*`, `Set*` or `Subscribe` request but `CreateTopic`, which
    /// is how SNS finds a topic by name).
    pub fn with_counter(config: &SdkConfig, counter: &RequestCounter) -> Provisioner {
        Provisioner {
            sns: crate::metrics::sns_client(config, Some(counter)),
            sqs: crate::metrics::sqs_client(config, Some(counter)),
        }
    }

    /// Creates everything `config` describes; returns `(kind, name, ARN or URL)` of each.
    pub async fn apply(
        &self,
        config: &ProvisionConfig,
    ) -> Result<Vec<(&'static str, String, String)>, ProvisionError> {
        let mut created = Vec::new();
        let mut topics = HashMap::new();
        for topic in &config.topics {
            let spec = TopicSpec { content_based_deduplication: topic.content_based_deduplication };
            let arn = self.topic_with(&topic.name, &spec).await?;
            created.push(("topic", topic.name.clone(), arn.clone()));
            topics.insert(topic.name.clone(), arn);
        }
        let mut queues = HashMap::new();
        for queue in &config.queues {
            let url = self.queue(&queue.name, &queue.spec()).await?;
            created.push(("queue", queue.name.clone(), url.clone()));
            queues.insert(queue.name.clone(), url);
        }
        for subscription in &config.subscriptions {
            let spec = SubscriptionSpec { raw_delivery: subscription.raw, filter: subscription.filter()? };
            let arn =
                self.subscribe(&topics[&subscription.topic], &queues[&subscription.queue], &spec).await?;
            created.push(("subscription", format!("{}->{}", subscription.topic, subscription.queue), arn));
        }
        Ok(created)
    }

    /// Creates the topic `name` (or finds it), FIFO if its name ends in `.fifo`; returns its
    /// ARN.
    pub async fn topic(&self, name: &str) -> Result<String, TransportError> {
        self.topic_with(name, &TopicSpec::default()).await
    }

    /// Creates the topic `name` (FIFO if its name ends in `.fifo`), or brings an existing one
    /// to `spec`; returns its ARN.
    pub async fn topic_with(&self, name: &str, spec: &TopicSpec) -> Result<String, TransportError> {
        spec.check(name)?;
        let fifo = is_fifo(name);
        let mut request = self.sns.create_topic().name(name);
        // Only what cannot change is given at creation: SNS refuses to "create" an existing
        // topic with other attributes. The rest is set below when it differs.
        if fifo {
            request = request.attributes("FifoTopic", "true");
        }
        let output = request.send().await.map_err(|e| transport_error(e, Resource::Topic(name)))?;
        let arn = output
            .topic_arn()
            .map(str::to_owned)
            .ok_or_else(|| TransportError::Invalid("CreateTopic returned no ARN".into()))?;
        if fifo {
            let current = self
                .sns
                .get_topic_attributes()
                .topic_arn(&arn)
                .send()
                .await
                .map_err(|e| transport_error(e, Resource::Topic(&arn)))?;
            let attribute = |key: &str| current.attributes().and_then(|a| a.get(key)).map(String::as_str);
            if attribute("FifoTopic") == Some("false") {
                return Err(TransportError::Invalid(format!(
                    "topic `{name}` exists and is not FIFO; a topic cannot become FIFO once created"
                )));
            }
            let wanted = spec.content_based_deduplication.to_string();
            if attribute("ContentBasedDeduplication").unwrap_or("false") != wanted {
                self.sns
                    .set_topic_attributes()
                    .topic_arn(&arn)
                    .attribute_name("ContentBasedDeduplication")
                    .attribute_value(wanted)
                    .send()
                    .await
                    .map_err(|e| transport_error(e, Resource::Topic(&arn)))?;
            }
        }
        Ok(arn)
    }

    /// Creates the queue `name` (FIFO if its name ends in `.fifo`) and its dead-letter queue,
    /// or brings an existing one to `spec` (setting only the attributes that differ); returns
    /// its URL.
    pub async fn queue(&self, name: &str, spec: &QueueSpec) -> Result<String, TransportError> {
        spec.check(name)?;
        let fifo = is_fifo(name);
        let mut wanted: Vec<(QueueAttributeName, String)> = Vec::new();
        if let Some(timeout) = spec.visibility_timeout {
            wanted.push((QueueAttributeName::VisibilityTimeout, timeout.as_secs().to_string()));
        }
        if let Some(delay) = spec.delay {
            wanted.push((QueueAttributeName::DelaySeconds, delay.as_secs().to_string()));
        }
        if let Some((dead_letter, max_receive_count)) = &spec.dead_letter {
            let dlq_url = Box::pin(self.queue(dead_letter, &QueueSpec::default())).await?;
            let dlq_arn = self.queue_arn(&dlq_url).await?;
            let policy =
                json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count.to_string()});
            wanted.push((QueueAttributeName::RedrivePolicy, policy.to_string()));
        }
        if fifo {
            let (scope, limit) = if spec.high_throughput {
                ("messageGroup", "perMessageGroupId")
            } else {
                ("queue", "perQueue")
            };
            wanted.push((
                QueueAttributeName::ContentBasedDeduplication,
                spec.content_based_deduplication.to_string(),
            ));
            wanted.push((QueueAttributeName::DeduplicationScope, scope.to_owned()));
            wanted.push((QueueAttributeName::FifoThroughputLimit, limit.to_owned()));
        }
        let existing = self.sqs.get_queue_url().queue_name(name).send().await;
        let url = match existing.map_err(|e| transport_error(e, Resource::Queue(name))) {
            Ok(output) => output.queue_url().map(str::to_owned),
            Err(TransportError::QueueNotFound(_)) => None,
            Err(error) => return Err(error),
        };
        let Some(url) = url else {
            // All at creation: FifoQueue can be given only then.
            let mut request = self.sqs.create_queue().queue_name(name);
            if fifo {
                request = request.attributes(QueueAttributeName::FifoQueue, "true");
            }
            for (attribute, value) in wanted {
                request = request.attributes(attribute, value);
            }
            let output = request.send().await.map_err(|e| transport_error(e, Resource::Queue(name)))?;
            return output
                .queue_url()
                .map(str::to_owned)
                .ok_or_else(|| TransportError::Invalid("CreateQueue returned no URL".into()));
        };
        let current = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| transport_error(e, Resource::Queue(&url)))?;
        let current = current.attributes().cloned().unwrap_or_default();
        let is_fifo_now = current.get(&QueueAttributeName::FifoQueue).is_some_and(|v| v == "true");
        if is_fifo_now != fifo {
            return Err(TransportError::Invalid(format!(
                "queue `{name}` exists and is {}; whether a queue is FIFO cannot change once it is created",
                if is_fifo_now { "FIFO" } else { "not FIFO" }
            )));
        }
        let differing: Vec<_> = wanted
            .into_iter()
            .filter(|(attribute, value)| !same_attribute(attribute, current.get(attribute), value))
            .collect();
        if !differing.is_empty() {
            tracing::info!(queue = %name, attributes = ?differing, "updating queue attributes");
            let mut request = self.sqs.set_queue_attributes().queue_url(&url);
            for (attribute, value) in differing {
                request = request.attributes(attribute, value);
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

    /// Subscribes the queue to the topic (or brings the existing subscription to `spec`,
    /// setting only what differs), after allowing the topic to send to the queue; returns the
    /// subscription ARN.
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
            let current = self
                .sns
                .get_subscription_attributes()
                .subscription_arn(&existing)
                .send()
                .await
                .map_err(|e| transport_error(e, Resource::Topic(&existing)))?;
            let current = current.attributes().cloned().unwrap_or_default();
            if current.get("RawMessageDelivery").map_or("false", String::as_str) != raw {
                self.set_subscription_attribute(&existing, "RawMessageDelivery", raw).await?;
            }
            let policy = |text: Option<&str>| {
                text.filter(|text| !text.trim().is_empty())
                    .and_then(|text| serde_json::from_str::<Value>(text).ok())
            };
            if policy(current.get("FilterPolicy").map(String::as_str)) != policy(filter.as_deref()) {
                // An empty policy removes the filter.
                self.set_subscription_attribute(&existing, "FilterPolicy", filter.as_deref().unwrap_or(""))
                    .await?;
            }
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

/// Whether a queue attribute's current value is the one wanted: a redrive policy by its
/// target and count (SQS gives the count back as a number), the others as text.
fn same_attribute(attribute: &QueueAttributeName, current: Option<&String>, wanted: &str) -> bool {
    let Some(current) = current else { return false };
    if *attribute != QueueAttributeName::RedrivePolicy {
        return current == wanted;
    }
    let read = |text: &str| {
        let policy: Value = serde_json::from_str(text).ok()?;
        let count = match &policy["maxReceiveCount"] {
            Value::Number(count) => count.to_string(),
            Value::String(count) => count.clone(),
            _ => return None,
        };
        Some((policy["deadLetterTargetArn"].as_str()?.to_owned(), count))
    };
    read(current).is_some_and(|current| Some(current) == read(wanted))
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

    fn refused(toml: &str) -> String {
        match ProvisionConfig::from_toml(toml) {
            Err(ProvisionError::Invalid(reason)) => reason,
            other => panic!("not refused as invalid: {other:?}"),
        }
    }

    #[test]
    fn fifo_is_the_name_and_fifo_settings_need_it() {
        let reason = refused("[[queue]]\nname = \"q\"\nfifo = true\n");
        assert!(reason.contains("must end in `.fifo`") && reason.contains("`q.fifo`"), "{reason}");
        let reason = refused("[[topic]]\nname = \"t.fifo\"\nfifo = false\n");
        assert!(reason.contains("fifo = false"), "{reason}");
        let reason = refused("[[topic]]\nname = \"t\"\ncontent_based_deduplication = true\n");
        assert!(reason.contains("only FIFO topics"), "{reason}");
        let reason = refused("[[queue]]\nname = \"q\"\nhigh_throughput = true\n");
        assert!(reason.contains("only FIFO queues"), "{reason}");
        let reason = refused("[[queue]]\nname = \"q.fifo\"\ndead_letter_queue = \"dlq\"\n");
        assert!(reason.contains("must be FIFO too") && reason.contains("`dlq.fifo`"), "{reason}");
        let reason = refused("[[queue]]\nname = \"q\"\ndead_letter_queue = \"dlq.fifo\"\n");
        assert!(reason.contains("must be standard too"), "{reason}");
        let reason = refused("[[queue]]\nname = \"q\"\ndelay_seconds = 901\n");
        assert!(reason.contains("900 seconds"), "{reason}");
        let reason = refused(
            "[[topic]]\nname = \"t\"\n[[queue]]\nname = \"q.fifo\"\n[[subscription]]\ntopic = \"t\"\nqueue = \"q.fifo\"\n",
        );
        assert!(reason.contains("FIFO topics only"), "{reason}");

        let config = ProvisionConfig::from_toml(
            "[[queue]]\nname = \"q.fifo\"\nfifo = true\nhigh_throughput = true\ncontent_based_deduplication = true\n\
             delay_seconds = 2\ndead_letter_queue = \"dlq.fifo\"\n",
        )
        .unwrap();
        let spec = config.queues[0].spec();
        assert!(spec.high_throughput && spec.content_based_deduplication);
        assert_eq!(spec.delay, Some(Duration::from_secs(2)));
        assert_eq!(spec.dead_letter, Some(("dlq.fifo".to_owned(), 5)));
    }

    #[test]
    fn a_filter_policy_joins_the_media_types_in_one_policy() {
        let subscription = |media_types: Option<&str>, policy: Option<&str>| {
            let mut toml = "topic = \"t\"\nqueue = \"q\"\n".to_owned();
            if let Some(media_types) = media_types {
                toml += &format!("media_types = {media_types}\n");
            }
            if let Some(policy) = policy {
                toml += &format!("filter_policy = '{policy}'\n");
            }
            toml::from_str::<SubscriptionConfig>(&toml).unwrap()
        };
        let both =
            subscription(Some(r#"["a/b.*", "a/c"]"#), Some(r#"{"team": ["billing", {"prefix": "ops-"}]}"#));
        assert_eq!(
            both.filter().unwrap().unwrap().to_json(),
            r#"{"media_type":[{"prefix":"a/b."},"a/c"],"team":["billing",{"prefix":"ops-"}]}"#
        );
        let alone = subscription(None, Some(r#"{"team": ["billing"]}"#));
        assert_eq!(alone.filter().unwrap().unwrap().to_json(), r#"{"team":["billing"]}"#);
        assert!(subscription(None, None).filter().unwrap().is_none());
        for (media_types, policy, expected) in [
            (Some(r#"["a/b"]"#), r#"{"media_type": ["a/c"]}"#, "in one place"),
            (None, "[1]", "not a JSON object"),
            (None, r#"{"team": []}"#, "filter_policy: invalid filter policy"),
        ] {
            let error = subscription(media_types, Some(policy)).filter().unwrap_err().to_string();
            assert!(error.contains(expected) && error.contains("subscription of `q` to `t`"), "{error}");
        }
    }

    #[test]
    fn a_redrive_policy_is_the_same_whether_its_count_is_a_number_or_text() {
        let wanted = r#"{"deadLetterTargetArn":"arn:dlq","maxReceiveCount":"5"}"#;
        let current = r#"{"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": 5}"#.to_owned();
        assert!(same_attribute(&QueueAttributeName::RedrivePolicy, Some(&current), wanted));
        let other = r#"{"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": 6}"#.to_owned();
        assert!(!same_attribute(&QueueAttributeName::RedrivePolicy, Some(&other), wanted));
        assert!(!same_attribute(&QueueAttributeName::RedrivePolicy, None, wanted));
        assert!(same_attribute(&QueueAttributeName::DelaySeconds, Some(&"2".to_owned()), "2"));
    }
}
