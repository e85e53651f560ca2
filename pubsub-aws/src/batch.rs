//! What SNS and SQS batch calls share: the size check, entries with their index as id,
//! reading results back by that id, and a message's attributes as both services take them.

use std::borrow::Cow;

use aws_smithy_types::error::operation::BuildError;
use pubsub_core::transport::{
    AttributeValue, EntryError, OutgoingMessage, TransportError, MAX_BATCH, MEDIA_TYPE_ATTRIBUTE,
};

/// Refuses an empty batch or one over ten, as the services do, before any request.
pub(crate) fn check_len(len: usize) -> Result<(), TransportError> {
    if len == 0 || len > MAX_BATCH {
        return Err(TransportError::Invalid(format!("a batch holds 1 to 10 entries, not {len}")));
    }
    Ok(())
}

/// One request entry per item, each with its index as its id.
pub(crate) fn entries<I, T>(
    items: &[I],
    build: impl Fn(String, &I) -> Result<T, BuildError>,
) -> Result<Vec<T>, TransportError> {
    check_len(items.len())?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            build(index.to_string(), item).map_err(|e| TransportError::Invalid(e.to_string()))
        })
        .collect()
}

/// The index an entry id stands for.
pub(crate) fn entry_index(id: Option<&str>, len: usize) -> Option<usize> {
    id?.parse::<usize>().ok().filter(|index| *index < len)
}

/// A result per entry, each `Err(NoResult)` until the response says otherwise: an entry the
/// service says nothing about is reported, never taken as done.
pub(crate) fn no_results<T>(len: usize, service: &str) -> Vec<Result<T, EntryError>> {
    (0..len)
        .map(|_| {
            Err(EntryError {
                code: "NoResult".into(),
                message: format!("{service} returned no result for this entry"),
                retryable: true,
            })
        })
        .collect()
}

/// A refused entry: retryable unless the service blames the sender.
pub(crate) fn entry_error(code: &str, message: Option<&str>, sender_fault: bool) -> EntryError {
    EntryError {
        code: code.to_owned(),
        message: message.unwrap_or_default().to_owned(),
        retryable: !sender_fault,
    }
}

/// A failed entry of a batch response: `(id, code, message, sender fault)`.
pub(crate) type Failed<'a> = (&'a str, &'a str, Option<&'a str>, bool);

/// One result per entry of a batch call of `len` entries to `service`, from the response's
/// successful entries (`(id, value)`; one without a value counts as not answered) and failed
/// ones: what every batch call of SNS and SQS answers.
pub(crate) fn batch_results<'a, T>(
    len: usize,
    service: &str,
    successful: impl IntoIterator<Item = (Option<&'a str>, Option<T>)>,
    failed: impl IntoIterator<Item = Failed<'a>>,
) -> Vec<Result<T, EntryError>> {
    let mut results = no_results(len, service);
    for (id, value) in successful {
        if let (Some(index), Some(value)) = (entry_index(id, len), value) {
            results[index] = Ok(value);
        }
    }
    for (id, code, message, sender_fault) in failed {
        if let Some(index) = entry_index(Some(id), len) {
            results[index] = Err(entry_error(code, message, sender_fault));
        }
    }
    results
}

/// The message attributes SNS and SQS are sent for `message`: `media_type` (a `String`),
/// then its other attributes, typed (the message's own media type wins over an attribute of
/// that name). The same shape SNS raw delivery gives a queue, so a message sent to a queue
/// directly reads as one delivered through a topic.
pub(crate) fn message_attributes(message: &OutgoingMessage) -> Vec<(&str, Cow<'_, AttributeValue>)> {
    let mut attributes = Vec::with_capacity(message.attributes.len() + 1);
    attributes.push((MEDIA_TYPE_ATTRIBUTE, Cow::Owned(AttributeValue::Text(message.media_type.to_string()))));
    for (name, value) in &message.attributes {
        if name != MEDIA_TYPE_ATTRIBUTE {
            attributes.push((name.as_str(), Cow::Borrowed(value)));
        }
    }
    attributes
}

/// A message attribute as the SDK crate `$sdk` (`aws_sdk_sns` or `aws_sdk_sqs`, whose types
/// are alike but distinct) takes it.
macro_rules! sdk_attribute {
    ($sdk:ident, $value:expr) => {{
        let value: &pubsub_core::transport::AttributeValue = $value;
        let builder = $sdk::types::MessageAttributeValue::builder().data_type(value.data_type());
        match value {
            pubsub_core::transport::AttributeValue::Text(text)
            | pubsub_core::transport::AttributeValue::Number(text) => builder.string_value(text),
            pubsub_core::transport::AttributeValue::Binary(bytes) => {
                builder.binary_value($sdk::primitives::Blob::new(bytes.clone()))
            }
        }
        .build()
    }};
}
pub(crate) use sdk_attribute;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_entries_map_to_their_index_with_retryability() {
        let results = batch_results(
            4,
            "SQS",
            [(Some("0"), Some(())), (Some("2"), Some(()))],
            [("1", "ReceiptHandleIsInvalid", Some("stale"), true), ("3", "InternalError", None, false)],
        );
        assert_eq!(results[0], Ok(()));
        assert_eq!(results[2], Ok(()));
        assert_eq!(
            results[1],
            Err(EntryError {
                code: "ReceiptHandleIsInvalid".into(),
                message: "stale".into(),
                retryable: false
            })
        );
        assert!(matches!(&results[3], Err(e) if e.retryable && e.code == "InternalError"));
        // An entry the service says nothing about, or answers without an id, is reported,
        // not taken as done.
        let silent = batch_results(3, "SNS", [(Some("0"), Some("m-0")), (Some("1"), None)], []);
        assert_eq!(silent[0], Ok("m-0"));
        assert!(matches!(&silent[1], Err(e) if e.code == "NoResult" && e.retryable));
        assert!(matches!(&silent[2], Err(e) if e.code == "NoResult" && e.message.contains("SNS")));
    }

    #[test]
    fn media_type_comes_first_and_wins() {
        let mut message = OutgoingMessage::new("text/plain", "{}").with_attribute("weight", 3);
        message.attributes.insert(MEDIA_TYPE_ATTRIBUTE.into(), "other".into());
        let attributes = message_attributes(&message);
        assert_eq!(attributes.len(), 2);
        assert_eq!(attributes[0], (MEDIA_TYPE_ATTRIBUTE, Cow::Owned(AttributeValue::from("text/plain"))));
        assert_eq!(attributes[1], ("weight", Cow::Owned(AttributeValue::from(3))));
    }
}
