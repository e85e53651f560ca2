//! Lambda event records as the messages pubsub-core dispatches: an SQS record carries what
//! `ReceiveMessage` gives the daemon (body, message attributes, receive count, trace header,
//! sent time); an SNS record carries its message and attributes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sns::SnsRecord;
use aws_lambda_events::event::sqs::SqsMessage;
use pubsub_core::transport::{AttributeValue, Attributes, ReceivedMessage};

/// The SQS system attribute of the receive count.
const RECEIVE_COUNT: &str = "ApproximateReceiveCount";
/// The SQS system attribute of the X-Ray trace header.
const TRACE_HEADER: &str = "AWSTraceHeader";
/// The SQS system attribute of the time the queue took the message (ms since the epoch).
const SENT_TIMESTAMP: &str = "SentTimestamp";
/// The SQS system attribute of a FIFO message's group.
const MESSAGE_GROUP_ID: &str = "MessageGroupId";
/// The SQS system attribute of a FIFO message's deduplication id.
const MESSAGE_DEDUPLICATION_ID: &str = "MessageDeduplicationId";
/// The SQS system attribute of a FIFO message's sequence number.
const SEQUENCE_NUMBER: &str = "SequenceNumber";

/// One record of an event, ready to dispatch.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// What the dispatcher reads.
    pub(crate) message: ReceivedMessage,
    /// The queue the record came from (its URL, derived from `eventSourceARN`), for
    /// visibility changes; `None` for SNS records and SQS records without a readable ARN.
    pub(crate) queue_url: Option<String>,
    /// The FIFO queue and message group a record belongs to: records of one group are handled
    /// in order, and after one fails the rest of its group is not started.
    pub(crate) fifo_group: Option<(String, String)>,
}

/// An SQS record of an event source mapping as the daemon's receive would give it. The body
/// is an SNS notification (a subscription without raw delivery) or the raw message; both are
/// read by the dispatcher. Message attributes keep their types (`String`, `Number`, `Binary`;
/// custom types by their base type), as the daemon's receive does.
pub(crate) fn sqs_record(record: SqsMessage) -> Record {
    let system = &record.attributes;
    let receive_count = system.get(RECEIVE_COUNT).and_then(|count| count.parse().ok()).unwrap_or(1);
    let sent_at = system
        .get(SENT_TIMESTAMP)
        .and_then(|millis| millis.parse::<u64>().ok())
        .map(|millis| UNIX_EPOCH + Duration::from_millis(millis));
    let trace_header = system.get(TRACE_HEADER).cloned();
    let arn = record.event_source_arn.clone().unwrap_or_default();
    let fifo_group = match system.get(MESSAGE_GROUP_ID) {
        Some(group) if arn.ends_with(".fifo") => Some((arn.clone(), group.clone())),
        _ => None,
    };
    let attributes: Attributes = record
        .message_attributes
        .into_iter()
        .filter_map(|(name, value)| {
            let value = match value.data_type.as_deref()?.split('.').next()? {
                "Binary" => AttributeValue::Binary(value.binary_value?.0),
                data_type => AttributeValue::from_typed(data_type, value.string_value?)?,
            };
            Some((name, value))
        })
        .collect();
    let mut message = ReceivedMessage::new(
        record.message_id.unwrap_or_default(),
        record.receipt_handle.unwrap_or_default(),
        record.body.unwrap_or_default(),
    );
    message.receive_count = receive_count;
    message.attributes = attributes;
    message.trace_header = trace_header;
    message.sent_at = sent_at;
    message.group_id = system.get(MESSAGE_GROUP_ID).cloned();
    message.deduplication_id = system.get(MESSAGE_DEDUPLICATION_ID).cloned();
    message.sequence_number = system.get(SEQUENCE_NUMBER).cloned();
    Record { message, queue_url: queue_url(&arn), fifo_group }
}

/// An SNS record (SNS invoking the function) as a received message: the body is the message
/// as published (what a raw-delivery queue would hold), the attributes keep their types (a
/// `Binary` value decoded from base64), the receive count is 1 (SNS does not count Lambda's retries), and
/// there is no receipt: nothing to delete or make visible again.
pub(crate) fn sns_record(record: SnsRecord) -> Record {
    let sns = record.sns;
    let attributes: Attributes = sns
        .message_attributes
        .into_iter()
        .filter_map(|(name, value)| Some((name, AttributeValue::from_typed(&value.data_type, value.value)?)))
        .collect();
    let sent_at = u64::try_from(sns.timestamp.timestamp_millis())
        .ok()
        .map(|millis| SystemTime::UNIX_EPOCH + Duration::from_millis(millis));
    let mut message = ReceivedMessage::new(sns.message_id, String::new(), sns.message);
    message.attributes = attributes;
    message.sent_at = sent_at;
    Record { message, queue_url: None, fifo_group: None }
}

/// The URL of the SQS queue of `arn` (`arn:PARTITION:sqs:REGION:ACCOUNT:NAME`):
/// `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME` (`.amazonaws.com.cn` in China). With an
/// endpoint of its own (`AWS_ENDPOINT_URL`, an emulator) the SDK sends the request there, and
/// the queue is found by this URL's account and name.
pub(crate) fn queue_url(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("sqs"), Some(region), Some(account), Some(name)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if region.is_empty() || account.is_empty() || name.is_empty() {
        return None;
    }
    let domain = match partition {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    };
    Some(format!("https://sqs.{region}.{domain}/{account}/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_come_from_arns() {
        assert_eq!(
            queue_url("arn:aws:sqs:us-east-2:123456789012:my-queue").as_deref(),
            Some("https://sqs.us-east-2.amazonaws.com/123456789012/my-queue")
        );
        assert_eq!(
            queue_url("arn:aws-cn:sqs:cn-north-1:123456789012:q.fifo").as_deref(),
            Some("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q.fifo")
        );
        assert_eq!(
            queue_url("arn:aws-us-gov:sqs:us-gov-west-1:123456789012:q").as_deref(),
            Some("https://sqs.us-gov-west-1.amazonaws.com/123456789012/q")
        );
        for bad in [
            "",
            "arn:aws:sns:us-east-1:123456789012:topic",
            "arn:aws:sqs:us-east-1:123456789012",
            "arn:aws:sqs::1:q",
        ] {
            assert_eq!(queue_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_sqs_record_keeps_what_the_daemon_reads() {
        let record: SqsMessage = serde_json::from_value(serde_json::json!({
            "messageId": "m-1",
            "receiptHandle": "r-1",
            "body": "{}",
            "attributes": {
                "ApproximateReceiveCount": "3",
                "SentTimestamp": "1545082649183",
                "AWSTraceHeader": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                "MessageGroupId": "g-1"
            },
            "messageAttributes": {
                "team": {"stringValue": "billing", "dataType": "String", "stringListValues": [], "binaryListValues": []},
                "weight": {"stringValue": "3", "dataType": "Number"},
                "blob": {"binaryValue": "AAE=", "dataType": "Binary"}
            },
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:jobs.fifo",
            "awsRegion": "us-east-2"
        }))
        .unwrap();
        let record = sqs_record(record);
        let message = &record.message;
        assert_eq!((message.message_id.as_str(), message.receipt_handle.as_str()), ("m-1", "r-1"));
        assert_eq!(message.receive_count, 3);
        assert_eq!(message.sent_at, Some(UNIX_EPOCH + Duration::from_millis(1_545_082_649_183)));
        assert!(message.trace_header.as_deref().unwrap().starts_with("Root=1-5759e988"));
        let attributes: Vec<(&str, &AttributeValue)> =
            message.attributes.iter().map(|(k, v)| (k.as_str(), v)).collect();
        assert_eq!(
            attributes,
            [
                ("blob", &AttributeValue::Binary(vec![0, 1])),
                ("team", &AttributeValue::Text("billing".into())),
                ("weight", &AttributeValue::Number("3".into()))
            ]
        );
        assert_eq!(message.group_id.as_deref(), Some("g-1"));
        assert_eq!(
            record.queue_url.as_deref(),
            Some("https://sqs.us-east-2.amazonaws.com/123456789012/jobs.fifo")
        );
        assert_eq!(
            record.fifo_group,
            Some(("arn:aws:sqs:us-east-2:123456789012:jobs.fifo".to_owned(), "g-1".to_owned()))
        );
    }

    #[test]
    fn a_bare_sqs_record_gets_the_daemons_defaults() {
        let record = sqs_record(SqsMessage::default());
        assert_eq!(record.message.receive_count, 1);
        assert!(record.message.body.is_empty() && record.message.message_id.is_empty());
        assert_eq!((record.queue_url, record.fifo_group), (None, None));
    }
}
