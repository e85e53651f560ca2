//! What SNS writes: message ids, ARNs, and the notification JSON a non-raw subscription
//! delivers to its queue.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

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

/// `time` as SNS's `Timestamp`: ISO-8601 UTC with milliseconds, `2026-11-27T17:32:28.960Z`.
pub(crate) fn sns_timestamp(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days((seconds / 86_400) as i64);
    let second_of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
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

/// The SNS notification JSON of one message, as SQS receives it from a non-raw subscription.
#[derive(Serialize)]
struct Notification<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "MessageId")]
    message_id: &'a str,
    #[serde(rename = "TopicArn")]
    topic_arn: &'a str,
    #[serde(rename = "Message")]
    message: &'a str,
    #[serde(rename = "Timestamp")]
    timestamp: &'a str,
    #[serde(rename = "SignatureVersion")]
    signature_version: &'static str,
    #[serde(rename = "Signature")]
    signature: &'static str,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: &'static str,
    #[serde(rename = "UnsubscribeURL")]
    unsubscribe_url: String,
    #[serde(rename = "MessageAttributes")]
    message_attributes: Attributes<'a>,
}

/// `MessageAttributes`: `media_type` and the others, by name, each `{"Type": "String",
/// "Value": ...}`; written straight from the message, with no map built for it.
struct Attributes<'a> {
    media_type: &'a str,
    others: &'a crate::transport::Attributes,
}

impl Serialize for Attributes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;

        let mut map = serializer.serialize_map(Some(self.others.len() + 1))?;
        let mut media_type = Some(self.media_type);
        for (name, value) in self.others {
            // In name order, as SNS writes them; a `media_type` among the others (the producer
            // refuses it) is left to the message's own.
            if name.as_str() >= MEDIA_TYPE_ATTRIBUTE {
                if let Some(value) = media_type.take() {
                    map.serialize_entry(
                        MEDIA_TYPE_ATTRIBUTE,
                        &Attribute { kind: "String", value: value.into() },
                    )?;
                }
                if name == MEDIA_TYPE_ATTRIBUTE {
                    continue;
                }
            }
            map.serialize_entry(name, &Attribute { kind: value.data_type(), value: value.to_text() })?;
        }
        if let Some(value) = media_type {
            map.serialize_entry(MEDIA_TYPE_ATTRIBUTE, &Attribute { kind: "String", value: value.into() })?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct Attribute<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "Value")]
    value: std::borrow::Cow<'a, str>,
}

/// What SNS tells a non-raw subscription about one published message.
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

/// The notification body, serialized by serde_json (so `Message` is escaped right), with no
/// spare capacity: it is stored in the queue until deleted, and serde_json's buffer grows by
/// doubling, which left a 1.1 KB body in a 2 KiB allocation (half the broker's memory per
/// queued message).
pub(crate) fn notification_body(fields: &NotificationFields<'_>) -> String {
    let notification = Notification {
        kind: "Notification",
        message_id: fields.message_id,
        topic_arn: fields.topic_arn,
        message: fields.message,
        timestamp: fields.timestamp,
        signature_version: "1",
        signature: SIGNATURE,
        signing_cert_url: SIGNING_CERT_URL,
        unsubscribe_url: format!("{UNSUBSCRIBE_URL_PREFIX}{}", fields.subscription_arn),
        message_attributes: Attributes { media_type: fields.media_type, others: fields.attributes },
    };
    let mut body = serde_json::to_string(&notification).expect("a notification of strings always serializes");
    body.shrink_to_fit();
    body
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

    #[test]
    fn bodies_have_no_spare_capacity() {
        let message = "x".repeat(700);
        let body = notification_body(&NotificationFields {
            message_id: "id",
            topic_arn: "arn:aws:sns:us-east-1:000000000000:t",
            subscription_arn: "arn:aws:sns:us-east-1:000000000000:t:s",
            message: &message,
            timestamp: "2026-11-27T17:32:28.960Z",
            media_type: "text/plain",
            attributes: &crate::transport::Attributes::new(),
        });
        assert!(body.len() > 1024, "{}", body.len());
        assert_eq!(body.capacity(), body.len());
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
