//! What SNS writes: message ids, ARNs, and the notification JSON a non-raw subscription
//! delivers to its queue.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::json::{push_escaped, push_escaped_words, push_json_string};
use crate::transport::MEDIA_TYPE_ATTRIBUTE;

/// The ARN prefix of every topic: region `us-east-1`, account `000000000000`.
pub(crate) const TOPIC_ARN_PREFIX: &str = "arn:aws:sns:us-east-1:000000000000:";

/// The URL prefix of every queue.
pub(crate) const QUEUE_URL_PREFIX: &str = "memory://queue/";

const SIGNING_CERT_URL: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000000000000.pem";
const UNSUBSCRIBE_URL_PREFIX: &str =
    "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=";
/// Base64 of "memory-broker-fake-signature": nothing is signed.
const SIGNATURE: &str = "bWVtb3J5LWJyb2tlci1mYWtlLXNpZ25hdHVyZQ==";

/// SNS's and SQS's message ids are random UUIDs (version 4), as the object keys of offloaded
/// payloads are.
pub(crate) use crate::uuid::uuid_v4 as new_message_id;
use crate::uuid::Uuid;

/// `time` as SNS's `Timestamp`: ISO-8601 UTC with milliseconds, `2026-11-27T17:32:28.960Z`.
/// Written digit by digit: `format!` cost a tenth of a publish.
pub(crate) fn sns_timestamp(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let second_of_day = seconds % 86_400;
    let mut text = String::with_capacity(24);
    // A year before 0 or after 9999 is not a SystemTime SNS would write.
    push_digits(&mut text, year.clamp(0, 9999) as u64, 4);
    text.push('-');
    push_digits(&mut text, u64::from(month), 2);
    text.push('-');
    push_digits(&mut text, u64::from(day), 2);
    text.push('T');
    push_digits(&mut text, second_of_day / 3600, 2);
    text.push(':');
    push_digits(&mut text, second_of_day / 60 % 60, 2);
    text.push(':');
    push_digits(&mut text, second_of_day % 60, 2);
    text.push('.');
    push_digits(&mut text, u64::from(since_epoch.subsec_millis()), 3);
    text.push('Z');
    text
}

/// The last `width` decimal digits of `value`, zero-padded.
fn push_digits(text: &mut String, value: u64, width: u32) {
    for power in (0..width).rev() {
        text.push(char::from(b'0' + (value / 10u64.pow(power) % 10) as u8));
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// What SNS tells a non-raw subscription about one published message.
#[cfg(test)]
pub(crate) struct NotificationFields<'a> {
    pub message_id: &'a str,
    pub topic_arn: &'a str,
    pub subscription_arn: &'a str,
    pub message: &'a str,
    pub timestamp: &'a str,
    /// The `media_type` message attribute.
    pub media_type: &'a str,
    /// The other message attributes.
    pub attributes: &'a crate::transport::Attributes,
}

/// What a queue keeps of a notification until it is received: its parts, shared where they
/// can be (what the batch's notifications to one subscription have in common, the media
/// type), the message id as its bits.
#[derive(Debug, Clone)]
pub(crate) struct PendingNotification {
    pub message_id: Uuid,
    pub batch: Arc<NotificationBatch>,
    pub message: Box<str>,
    pub media_type: Arc<str>,
    /// The message's other attributes, if any.
    pub attributes: Option<Box<crate::transport::Attributes>>,
}

/// What the notifications of one publish batch to one subscription share (the topic, the
/// subscription, the time), as the JSON around each message's own parts: escaped once for the
/// batch rather than at every receive.
#[derive(Debug)]
pub(crate) struct NotificationBatch {
    /// From the comma after `MessageId`'s value to the key of `Message`.
    after_message_id: String,
    /// From the comma after `Message`'s value to the end of `Timestamp`'s.
    after_message: String,
    /// The subscription ARN in the unsubscribe URL, escaped, to the opening brace of
    /// `MessageAttributes`.
    after_unsubscribe_prefix: String,
}

impl NotificationBatch {
    pub(crate) fn new(topic_arn: &str, subscription_arn: &str, timestamp: &str) -> NotificationBatch {
        // Sized for the text and a few escapes, so that each is written in one allocation.
        let room =
            |text: &str, constant: usize| String::with_capacity(text.len() + text.len() / 8 + constant + 8);
        let mut after_message_id = room(topic_arn, 24);
        after_message_id.push_str(r#","TopicArn":"#);
        push_json_string(&mut after_message_id, topic_arn);
        after_message_id.push_str(r#","Message":"#);
        let mut after_message = room(timestamp, 16);
        after_message.push_str(r#","Timestamp":"#);
        push_json_string(&mut after_message, timestamp);
        let mut after_unsubscribe_prefix = room(subscription_arn, 24);
        push_escaped(&mut after_unsubscribe_prefix, subscription_arn);
        after_unsubscribe_prefix.push_str(r#"","MessageAttributes":{"#);
        NotificationBatch { after_message_id, after_message, after_unsubscribe_prefix }
    }
}

impl PendingNotification {
    /// The notification's JSON, as SQS delivers it.
    pub(crate) fn body(&self) -> String {
        static NONE: crate::transport::Attributes = crate::transport::Attributes::new();
        let message_id = self.message_id.ascii();
        write_notification(
            &self.batch,
            std::str::from_utf8(&message_id).expect("a UUID's text is ASCII"),
            &self.message,
            &self.media_type,
            self.attributes.as_deref().unwrap_or(&NONE),
        )
    }
}

/// The notification body of `fields` (the batch's parts made for it alone).
#[cfg(test)]
pub(crate) fn notification_body(fields: &NotificationFields<'_>) -> String {
    let batch = NotificationBatch::new(fields.topic_arn, fields.subscription_arn, fields.timestamp);
    write_notification(&batch, fields.message_id, fields.message, fields.media_type, fields.attributes)
}

/// The notification body, written by hand in the order SNS writes it, with the strings escaped
/// as serde_json escapes them (the constant parts, and the batch's, are already JSON):
/// serde_json's serializer escaped every constant byte again, and was the broker's largest
/// cost per message. Written at each receive (a queue keeps the parts), into one allocation
/// for most messages.
fn write_notification(
    batch: &NotificationBatch,
    message_id: &str,
    message: &str,
    media_type: &str,
    attributes: &crate::transport::Attributes,
) -> String {
    let constant = constant_middle();
    // Room for the text and an escape in eight of its bytes: enough for most messages (the
    // body lives only while its message is handled, so spare room costs little).
    let text = message_id.len()
        + message.len()
        + attributes.iter().map(|(name, value)| name.len() + value.len() + 40).sum::<usize>()
        + media_type.len();
    let mut body = String::with_capacity(
        text + text / 8
            + batch.after_message_id.len()
            + batch.after_message.len()
            + constant.len()
            + batch.after_unsubscribe_prefix.len()
            + 80,
    );
    body.push_str(r#"{"Type":"Notification","MessageId":"#);
    push_json_string(&mut body, message_id);
    body.push_str(&batch.after_message_id);
    body.push('"');
    push_escaped_words(&mut body, message);
    body.push('"');
    body.push_str(&batch.after_message);
    body.push_str(constant);
    body.push_str(&batch.after_unsubscribe_prefix);
    // `MessageAttributes`: `media_type` and the others, by name, each `{"Type": ..., "Value":
    // ...}`; in name order, as SNS writes them. A `media_type` among the others (the producer
    // refuses it) is left to the message's own.
    let mut media_type = Some(media_type);
    let others = attributes.iter().filter(|(name, _)| name.as_str() != MEDIA_TYPE_ATTRIBUTE);
    for (name, value) in others {
        if name.as_str() > MEDIA_TYPE_ATTRIBUTE {
            if let Some(media_type) = media_type.take() {
                push_media_type_attribute(&mut body, media_type);
                body.push(',');
            }
        }
        push_attribute(&mut body, name, value.data_type(), &value.to_text());
        body.push(',');
    }
    match media_type {
        Some(media_type) => push_media_type_attribute(&mut body, media_type),
        None => {
            body.pop(); // the comma after the last attribute
        }
    }
    body.push_str("}}");
    body
}

/// The `media_type` attribute of `MessageAttributes`, its constant part written as one.
fn push_media_type_attribute(body: &mut String, media_type: &str) {
    // What `push_attribute(body, MEDIA_TYPE_ATTRIBUTE, "String", ..)` writes before the value
    // (nothing in it to escape; the tests hold the whole body to serde_json's).
    const START: &str = r#""media_type":{"Type":"String","Value":"#;
    body.push_str(START);
    push_json_string(body, media_type);
    body.push('}');
}

/// One attribute of `MessageAttributes`: `"name":{"Type":"String","Value":"..."}`.
fn push_attribute(body: &mut String, name: &str, kind: &str, value: &str) {
    push_json_string(body, name);
    body.push_str(r#":{"Type":"#);
    push_json_string(body, kind);
    body.push_str(r#","Value":"#);
    push_json_string(body, value);
    body.push('}');
}

/// The constant middle of every notification, from `SignatureVersion` to the unsubscribe
/// URL's prefix (the subscription ARN follows).
fn constant_middle() -> &'static str {
    static CONSTANT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CONSTANT.get_or_init(|| {
        format!(
            r#","SignatureVersion":"1","Signature":{},"SigningCertURL":{},"UnsubscribeURL":"{}"#,
            serde_json::to_string(SIGNATURE).expect("a string serializes"),
            serde_json::to_string(SIGNING_CERT_URL).expect("a string serializes"),
            // The unsubscribe URL's prefix holds nothing to escape; the batch's part follows.
            UNSUBSCRIBE_URL_PREFIX,
        )
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_iso_8601_utc_with_millis() {
        let at = |seconds: u64, millis: u64| {
            sns_timestamp(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_795_800_748, 960), "2026-11-27T17:32:28.960Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }

    /// The body as serde_json writes it, field by field: what the hand-written one must equal.
    fn reference_body(fields: &NotificationFields<'_>) -> String {
        let json = |text: &str| serde_json::to_string(text).unwrap();
        let mut attributes: Vec<(String, String, String)> = fields
            .attributes
            .iter()
            .filter(|(name, _)| name.as_str() != MEDIA_TYPE_ATTRIBUTE)
            .map(|(name, value)| (name.clone(), value.data_type().to_owned(), value.to_text().into_owned()))
            .collect();
        attributes.push((MEDIA_TYPE_ATTRIBUTE.to_owned(), "String".to_owned(), fields.media_type.to_owned()));
        attributes.sort();
        let attributes: Vec<String> = attributes
            .iter()
            .map(|(name, kind, value)| {
                format!(r#"{}:{{"Type":{},"Value":{}}}"#, json(name), json(kind), json(value))
            })
            .collect();
        format!(
            r#"{{"Type":"Notification","MessageId":{},"TopicArn":{},"Message":{},"Timestamp":{},"SignatureVersion":"1","Signature":{},"SigningCertURL":{},"UnsubscribeURL":{},"MessageAttributes":{{{}}}}}"#,
            json(fields.message_id),
            json(fields.topic_arn),
            json(fields.message),
            json(fields.timestamp),
            json(SIGNATURE),
            json(SIGNING_CERT_URL),
            json(&format!("{UNSUBSCRIBE_URL_PREFIX}{}", fields.subscription_arn)),
            attributes.join(","),
        )
    }

    #[test]
    fn bodies_are_escaped_as_serde_json_escapes_them() {
        let message = "{\"a\":\"q\\\"b\\\\s\\n\"}\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f} é€😀 </script>";
        let attributes: crate::transport::Attributes = [
            ("Zone", crate::transport::AttributeValue::from("e\"u\n")),
            ("count", crate::transport::AttributeValue::from(3)),
            ("raw", crate::transport::AttributeValue::from(vec![0u8, 255])),
            ("zeta", crate::transport::AttributeValue::from("ß")),
            (MEDIA_TYPE_ATTRIBUTE, crate::transport::AttributeValue::from("other/type")),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
        for (message, attributes) in [(message, attributes), ("", crate::transport::Attributes::new())] {
            let fields = NotificationFields {
                message_id: "0f6e1c1e-2b1a-4c1d-9e1f-000000000001",
                topic_arn: "arn:aws:sns:us-east-1:000000000000:t\"1",
                subscription_arn: "arn:aws:sns:us-east-1:000000000000:t:s\\",
                message,
                timestamp: "2026-11-27T17:32:28.960Z",
                media_type: "application/vnd.globality.pubsub._.created.order",
                attributes: &attributes,
            };
            let body = notification_body(&fields);
            assert_eq!(body, reference_body(&fields));
            let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(parsed["Message"], message);
        }
    }

    #[test]
    fn every_byte_to_escape_is_found_wherever_it_is() {
        for special in ["\"", "\\", "\n", "\u{0}", "\u{1f}", "é", "\u{7f}", "x"] {
            for length in 0..20 {
                for position in 0..=length {
                    let text = format!(
                        "{}{special}{}",
                        "ab c".repeat(5)[..position].to_owned(),
                        "é-".repeat(length - position)
                    );
                    let mut escaped = String::new();
                    push_escaped(&mut escaped, &text);
                    let expected = serde_json::to_string(&text).unwrap();
                    assert_eq!(format!("\"{escaped}\""), expected, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn message_attributes_are_written_in_name_order_with_the_media_type() {
        let attributes = |others: &[(&str, &str)]| {
            let others: crate::transport::Attributes =
                others.iter().map(|(name, value)| (name.to_string(), (*value).into())).collect();
            let body = notification_body(&NotificationFields {
                message_id: "id",
                topic_arn: "arn:aws:sns:us-east-1:000000000000:t",
                subscription_arn: "arn:aws:sns:us-east-1:000000000000:t:s",
                message: "{}",
                timestamp: "2026-11-27T17:32:28.960Z",
                media_type: "text/plain",
                attributes: &others,
            });
            let start = body.find(r#""MessageAttributes":"#).unwrap();
            body[start..].to_owned()
        };
        let media_type = r#""media_type":{"Type":"String","Value":"text/plain"}"#;
        assert_eq!(attributes(&[]), format!(r#""MessageAttributes":{{{media_type}}}}}"#));
        assert_eq!(
            attributes(&[("team", "billing"), ("Zone", "eu"), ("a.b", "x\"y")]),
            format!(
                r#""MessageAttributes":{{"Zone":{{"Type":"String","Value":"eu"}},"a.b":{{"Type":"String","Value":"x\"y"}},{media_type},"team":{{"Type":"String","Value":"billing"}}}}}}"#
            )
        );
        // Never two `media_type` keys, whatever the map holds.
        let twice = attributes(&[("media_type", "other/type")]);
        assert_eq!(twice.matches("media_type").count(), 1, "{twice}");
        assert!(twice.contains("text/plain"), "{twice}");
    }

    #[test]
    fn message_ids_are_uuid_v4_shaped() {
        let id = new_message_id();
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert!(groups[2].starts_with('4'), "{id}");
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'), "{id}");
        assert_ne!(new_message_id(), id);
    }
}
