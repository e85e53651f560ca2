//! The function's configuration from its environment, named as a microcosm daemon's:
//! `{NAME}__SNS_TOPIC_ARNS__DEFAULT` (the topic of every media type without a mapping) and
//! `{NAME}__SNS_TOPIC_ARNS__MAPPINGS` (a JSON object of media type, or `prefix.*` pattern, to
//! topic ARN), where `NAME` is the daemon's name upper-cased with `-` as `_`: the variables
//! pubsub-aws's daemon runner reads (`RunnerArgs::ENVIRONMENT`). The function reads no other
//! daemon variable: its receiving is the event source mapping's, and its handling settings
//! are the `DaemonBuilder`'s.

use pubsub_core::cli::Environment;
use pubsub_core::TopicMap;

use crate::error::LambdaError;

/// The variable of the default topic of daemon `name` (`EXAMPLE__SNS_TOPIC_ARNS__DEFAULT`).
pub fn default_topic_variable(name: &str) -> String {
    Environment::of(name).variable("SNS_TOPIC_ARNS__DEFAULT")
}

/// The variable of the topics by media type of daemon `name`
/// (`EXAMPLE__SNS_TOPIC_ARNS__MAPPINGS`).
pub fn mappings_variable(name: &str) -> String {
    Environment::of(name).variable("SNS_TOPIC_ARNS__MAPPINGS")
}

/// The topics of daemon `name` from the environment; `None` when neither variable is set (or
/// both are empty). A mapping that is not a JSON object of strings, or whose key is not a
/// media type or pattern, is an error naming the variable.
pub fn topics_from_env(name: &str) -> Result<Option<TopicMap>, LambdaError> {
    topics_from(name, |variable| std::env::var(variable).ok())
}

/// [`topics_from_env`] over any source of variables.
pub(crate) fn topics_from(
    name: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<TopicMap>, LambdaError> {
    let default_variable = default_topic_variable(name);
    let mappings_variable = mappings_variable(name);
    let default = var(&default_variable).filter(|value| !value.trim().is_empty());
    let mappings = var(&mappings_variable).filter(|value| !value.trim().is_empty());
    if default.is_none() && mappings.is_none() {
        return Ok(None);
    }
    let error = |reason: String| LambdaError::Config { variable: mappings_variable.clone(), reason };
    let mut topics = TopicMap::new();
    if let Some(mappings) = mappings {
        let routes: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&mappings).map_err(|e| {
            error(format!("not a JSON object of media type to topic ARN ({e}): write {{\"application/vnd.acme.pubsub.order\": \"arn:aws:sns:...\"}}"))
        })?;
        for (media_type, topic) in routes {
            let Some(topic) = topic.as_str().filter(|topic| !topic.is_empty()) else {
                return Err(error(format!("the topic of `{media_type}` is not a topic ARN: {topic}")));
            };
            topics = topics.route(&media_type, topic).map_err(|e| error(e.to_string()))?;
        }
    }
    if let Some(default) = default {
        topics = topics.default_topic(default.trim());
    }
    Ok(Some(topics))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn topics(vars: &[(&str, &str)]) -> Result<Option<TopicMap>, LambdaError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        topics_from("order-billing", |name| vars.get(name).cloned())
    }

    #[test]
    fn variables_are_named_as_microcosm_names_them() {
        assert_eq!(default_topic_variable("example"), "EXAMPLE__SNS_TOPIC_ARNS__DEFAULT");
        assert_eq!(mappings_variable("order-billing"), "ORDER_BILLING__SNS_TOPIC_ARNS__MAPPINGS");
        // The daemon runner reads the same ones.
        let runner: Vec<&str> = pubsub_aws::RunnerArgs::ENVIRONMENT.iter().map(|(_, key)| *key).collect();
        for key in ["SNS_TOPIC_ARNS__DEFAULT", "SNS_TOPIC_ARNS__MAPPINGS"] {
            assert!(runner.contains(&key), "{key} is not among the runner's {runner:?}");
        }
    }

    #[test]
    fn topics_come_from_the_default_and_the_mappings() {
        assert!(topics(&[]).unwrap().is_none());
        assert!(topics(&[("ORDER_BILLING__SNS_TOPIC_ARNS__DEFAULT", " ")]).unwrap().is_none());
        let map = topics(&[
            ("ORDER_BILLING__SNS_TOPIC_ARNS__DEFAULT", "arn:aws:sns:us-east-1:1:events"),
            (
                "ORDER_BILLING__SNS_TOPIC_ARNS__MAPPINGS",
                r#"{"application/vnd.acme.pubsub._.created.*": "arn:aws:sns:us-east-1:1:created"}"#,
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            map.topic_for("application/vnd.acme.pubsub._.created.order").unwrap(),
            "arn:aws:sns:us-east-1:1:created"
        );
        assert_eq!(
            map.topic_for("application/vnd.acme.pubsub.other").unwrap(),
            "arn:aws:sns:us-east-1:1:events"
        );
        let only_mappings = topics(&[(
            "ORDER_BILLING__SNS_TOPIC_ARNS__MAPPINGS",
            r#"{"application/vnd.acme.pubsub.order": "arn:aws:sns:us-east-1:1:orders"}"#,
        )])
        .unwrap()
        .unwrap();
        assert!(only_mappings.topic_for("application/vnd.acme.pubsub.other").is_err());
    }

    #[test]
    fn a_bad_mapping_names_its_variable() {
        for bad in
            ["[1]", "not json", r#"{"application/vnd.acme.pubsub.order": 3}"#, r#"{"no slash": "arn:x"}"#]
        {
            let error = topics(&[("ORDER_BILLING__SNS_TOPIC_ARNS__MAPPINGS", bad)]).unwrap_err();
            assert!(
                error.to_string().starts_with("ORDER_BILLING__SNS_TOPIC_ARNS__MAPPINGS: "),
                "{bad}: {error}"
            );
        }
    }
}
