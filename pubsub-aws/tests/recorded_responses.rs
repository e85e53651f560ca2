//! Batch entries SNS or SQS refuse while the rest of the batch passes, and service errors,
//! driven by recorded responses through the SDK's own test HTTP client (moto rarely fails a
//! single entry). No emulator needed.

use std::time::Duration;

use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::infallible_client_fn;
use pubsub_aws::{SnsPublisher, SqsPublisher, SqsSubscriber};
use pubsub_core::transport::{OutgoingMessage, Publisher, Subscriber, TransportError};
use pubsub_core::{producer::PublishError, Producer, TopicMap, UntypedMessage};

const QUEUE: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/orders";

fn sqs(status: u16, body: &'static str) -> SqsSubscriber {
    let http = infallible_client_fn(move |_request| {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.0")
            .body(body)
            .unwrap()
    });
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .http_client(http)
        .build();
    SqsSubscriber::with_client(aws_sdk_sqs::Client::from_conf(config), QUEUE, Duration::from_secs(30))
}

fn sns(status: u16, body: &'static str) -> SnsPublisher {
    let http = infallible_client_fn(move |_request| {
        http::Response::builder().status(status).header("content-type", "text/xml").body(body).unwrap()
    });
    let config = aws_sdk_sns::Config::builder()
        .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
        .region(aws_sdk_sns::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .http_client(http)
        .build();
    SnsPublisher::with_client(aws_sdk_sns::Client::from_conf(config))
}

#[tokio::test]
async fn refused_delete_entries_are_reported_by_index_with_retryability() {
    let subscriber = sqs(
        200,
        r#"{"Successful": [{"Id": "0"}, {"Id": "3"}],
            "Failed": [{"Id": "1", "Code": "ReceiptHandleIsInvalid", "Message": "stale receipt", "SenderFault": true},
                       {"Id": "2", "Code": "InternalError", "Message": "try again", "SenderFault": false}]}"#,
    );
    let results = subscriber.ack_batch(&["r0", "r1", "r2", "r3"]).await.unwrap();
    assert!(results[0].is_ok() && results[3].is_ok());
    let stale = results[1].as_ref().unwrap_err();
    assert_eq!(
        (stale.code.as_str(), stale.message.as_str(), stale.retryable),
        ("ReceiptHandleIsInvalid", "stale receipt", false)
    );
    let internal = results[2].as_ref().unwrap_err();
    assert!(internal.retryable, "a server-side entry failure is retried by the daemon");
}

#[tokio::test]
async fn an_entry_the_service_says_nothing_about_is_not_taken_as_done() {
    let subscriber = sqs(200, r#"{"Successful": [{"Id": "0"}], "Failed": []}"#);
    let change = pubsub_core::transport::VisibilityChange {
        receipt_handle: "r".into(),
        timeout: Duration::from_millis(1500),
    };
    let results = subscriber.change_visibility_batch(&[change.clone(), change]).await.unwrap();
    assert!(results[0].is_ok());
    assert!(matches!(&results[1], Err(e) if e.code == "NoResult" && e.retryable));
}

#[tokio::test]
async fn service_errors_map_to_what_a_retry_can_do() {
    let missing = sqs(
        400,
        r#"{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."}"#,
    );
    let error = missing.ack_batch(&["r"]).await.unwrap_err();
    assert_eq!(error, TransportError::QueueNotFound(QUEUE.into()));

    let down = sqs(503, r#"{"__type": "com.amazonaws.sqs#ServiceUnavailable", "message": "busy"}"#);
    let error = down.receive(10, Duration::ZERO).await.unwrap_err();
    assert!(error.is_retryable(), "{error}");

    let invalid = sqs(400, r#"{"__type": "com.amazonaws.sqs#InvalidParameterValue", "message": "bad"}"#);
    let error = invalid.ack_batch(&["r"]).await.unwrap_err();
    assert!(
        matches!(&error, TransportError::Invalid(text) if text.contains("InvalidParameterValue")),
        "{error}"
    );

    assert!(
        matches!(invalid.ack_batch(&[]).await, Err(TransportError::Invalid(_))),
        "empty batches never leave"
    );
}

#[tokio::test]
async fn a_refused_publish_entry_reaches_the_caller_with_what_was_sent() {
    let publisher = sns(
        200,
        r#"<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
             <PublishBatchResult>
               <Successful><member><Id>0</Id><MessageId>m-0</MessageId></member></Successful>
               <Failed><member><Id>1</Id><Code>InvalidParameter</Code><Message>bad attribute</Message><SenderFault>true</SenderFault></member></Failed>
             </PublishBatchResult>
             <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
           </PublishBatchResponse>"#,
    );
    let message = |n: u32| OutgoingMessage::new("a/b", format!("{{\"n\": {n}}}"));
    let results =
        publisher.publish_batch("arn:aws:sns:us-east-1:1:t", vec![message(0), message(1)]).await.unwrap();
    assert_eq!(results[0].as_deref(), Ok("m-0"));
    assert!(matches!(&results[1], Err(e) if e.code == "InvalidParameter" && !e.retryable));

    let producer = Producer::new(publisher, TopicMap::new().default_topic("arn:aws:sns:us-east-1:1:t"));
    let messages: Vec<UntypedMessage> =
        (0..2).map(|n| UntypedMessage::new("a/b", serde_json::json!({ "n": n })).unwrap()).collect();
    let Err(PublishError::Partial { sent, failures }) = producer.produce_batch(&messages).await else {
        panic!("a partial failure is reported")
    };
    assert_eq!(sent, vec![Some("m-0".to_owned()), None]);
    assert_eq!(failures[0].0, 1);
}

#[tokio::test]
async fn publish_results_are_matched_by_entry_id_and_an_entry_sns_omits_is_not_taken_as_sent() {
    // Successes out of order, one refused entry, one entry the response says nothing about.
    let publisher = sns(
        200,
        r#"<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
             <PublishBatchResult>
               <Successful>
                 <member><Id>2</Id><MessageId>m-2</MessageId></member>
                 <member><Id>0</Id><MessageId>m-0</MessageId></member>
               </Successful>
               <Failed><member><Id>1</Id><Code>InternalError</Code><Message>try again</Message><SenderFault>false</SenderFault></member></Failed>
             </PublishBatchResult>
             <ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata>
           </PublishBatchResponse>"#,
    );
    let producer = Producer::new(publisher, TopicMap::new().default_topic("arn:aws:sns:us-east-1:1:t"));
    let messages: Vec<UntypedMessage> =
        (0..4).map(|n| UntypedMessage::new("a/b", serde_json::json!({ "n": n })).unwrap()).collect();
    let error = producer.produce_batch(&messages).await.unwrap_err();
    let PublishError::Partial { sent, failures } = &error else { panic!("{error:?}") };
    assert_eq!(sent, &[Some("m-0".to_owned()), None, Some("m-2".to_owned()), None]);
    let reasons: Vec<(usize, &str, bool)> =
        failures.iter().map(|(index, e)| (*index, e.code.as_str(), e.retryable)).collect();
    assert_eq!(reasons, [(1, "InternalError", true), (3, "NoResult", true)]);
    assert_eq!(
        error.to_string(),
        "2 of 4 messages were not published, the first at index 1: InternalError: try again; the other 2 \
         were published (their ids are in `sent`)"
    );
    assert_eq!(error.sent(), Some(&sent[..]));
}

#[tokio::test]
async fn a_publish_to_a_missing_topic_names_it_and_says_nothing_was_published() {
    let publisher = sns(
        404,
        r#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
             <Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic does not exist</Message></Error>
             <RequestId>r-3</RequestId>
           </ErrorResponse>"#,
    );
    let topic = "arn:aws:sns:us-east-1:1:gone";
    let producer = Producer::new(publisher, TopicMap::new().default_topic(topic));
    let messages: Vec<UntypedMessage> =
        (0..2).map(|n| UntypedMessage::new("a/b", serde_json::json!({ "n": n })).unwrap()).collect();
    let error = producer.produce_batch(&messages).await.unwrap_err();
    assert!(
        matches!(&error, PublishError::Transport { error: TransportError::TopicNotFound(t), sent, .. }
            if t == topic && sent == &[None, None]),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "publishing failed: topic `arn:aws:sns:us-east-1:1:gone` does not exist (create the topic, or map \
         the media type to an existing one with TopicMap); none of the 2 messages was published"
    );
}

#[tokio::test]
async fn every_attribute_is_a_string_message_attribute_of_its_entry() {
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = bodies.clone();
    let http = infallible_client_fn(move |request| {
        let body = request.body().bytes().map(|bytes| String::from_utf8_lossy(bytes).into_owned());
        seen.lock().unwrap().push(body.unwrap_or_default());
        http::Response::builder()
            .status(200)
            .header("content-type", "text/xml")
            .body(
                r#"<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
                     <PublishBatchResult>
                       <Successful><member><Id>0</Id><MessageId>m-0</MessageId></member></Successful>
                       <Failed></Failed>
                     </PublishBatchResult>
                   </PublishBatchResponse>"#,
            )
            .unwrap()
    });
    let config = aws_sdk_sns::Config::builder()
        .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
        .region(aws_sdk_sns::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sns::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .http_client(http)
        .build();
    let publisher = SnsPublisher::with_client(aws_sdk_sns::Client::from_conf(config));
    let message =
        OutgoingMessage::new("a/b", "{}").with_attribute("team", "billing").with_attribute("x.y", "1 2");
    let results = publisher.publish_batch("arn:aws:sns:us-east-1:1:t", vec![message]).await.unwrap();
    assert_eq!(results[0].as_deref(), Ok("m-0"));

    let body = bodies.lock().unwrap().remove(0);
    let form: std::collections::BTreeMap<String, String> = body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (decode(key), decode(value)))
        .collect();
    // The entry's attributes, by name: (data type, string value).
    let prefix = "PublishBatchRequestEntries.member.1.MessageAttributes.entry.";
    let mut attributes = std::collections::BTreeMap::new();
    for n in 1.. {
        let Some(name) = form.get(&format!("{prefix}{n}.Name")) else { break };
        let data_type = form[&format!("{prefix}{n}.Value.DataType")].clone();
        let value = form[&format!("{prefix}{n}.Value.StringValue")].clone();
        attributes.insert(name.clone(), (data_type, value));
    }
    let string = |value: &str| ("String".to_owned(), value.to_owned());
    assert_eq!(
        attributes,
        std::collections::BTreeMap::from([
            ("media_type".to_owned(), string("a/b")),
            ("team".to_owned(), string("billing")),
            ("x.y".to_owned(), string("1 2")),
        ]),
        "{body}"
    );
}

#[tokio::test]
async fn a_queue_refusing_some_entries_reports_them_and_gets_each_field_it_takes() {
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = bodies.clone();
    let http = infallible_client_fn(move |request| {
        let body = request.body().bytes().map(|bytes| String::from_utf8_lossy(bytes).into_owned());
        seen.lock().unwrap().push(body.unwrap_or_default());
        http::Response::builder()
            .status(200)
            .header("content-type", "application/x-amz-json-1.0")
            .body(
                r#"{"Successful": [{"Id": "0", "MessageId": "m-0", "MD5OfMessageBody": "x"}],
                    "Failed": [{"Id": "1", "Code": "InvalidParameterValue", "Message": "no deduplication id", "SenderFault": true},
                               {"Id": "2", "Code": "InternalError", "Message": "try again", "SenderFault": false}]}"#,
            )
            .unwrap()
    });
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .http_client(http)
        .build();
    let publisher = SqsPublisher::with_client(aws_sdk_sqs::Client::from_conf(config));
    let fifo = "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo";
    let message = |n: u32| {
        OutgoingMessage::new("a/b", format!("{{\"n\": {n}}}"))
            .with_group_id("g")
            .with_attribute("weight", n)
            .with_attribute("blob", vec![0u8, 255])
    };
    let mut first = message(0).with_deduplication_id("d-0");
    // A delay is never sent to a FIFO queue (the producer refuses it before).
    first.delay = Some(Duration::from_secs(5));
    let results = publisher.publish_batch(fifo, vec![first, message(1), message(2)]).await.unwrap();
    assert_eq!(results[0].as_deref(), Ok("m-0"));
    assert!(matches!(&results[1], Err(e) if e.code == "InvalidParameterValue" && !e.retryable));
    assert!(matches!(&results[2], Err(e) if e.code == "InternalError" && e.retryable));

    let request: serde_json::Value = serde_json::from_str(&bodies.lock().unwrap()[0]).unwrap();
    assert_eq!(request["QueueUrl"], fifo);
    let entry = &request["Entries"][0];
    assert_eq!(entry["Id"], "0");
    assert_eq!(entry["MessageBody"], r#"{"n": 0}"#);
    assert_eq!(entry["MessageGroupId"], "g");
    assert_eq!(entry["MessageDeduplicationId"], "d-0");
    assert!(entry.get("DelaySeconds").is_none(), "{entry}");
    let attributes = &entry["MessageAttributes"];
    assert_eq!(attributes["media_type"], serde_json::json!({"DataType": "String", "StringValue": "a/b"}));
    assert_eq!(attributes["weight"], serde_json::json!({"DataType": "Number", "StringValue": "0"}));
    assert_eq!(attributes["blob"], serde_json::json!({"DataType": "Binary", "BinaryValue": "AP8="}));
    assert!(request["Entries"][1].get("MessageDeduplicationId").is_none());

    // To a standard queue: the delay, and no FIFO field.
    let standard = "https://sqs.us-east-1.amazonaws.com/123456789012/orders";
    let delayed =
        OutgoingMessage::new("a/b", "{}").with_group_id("g").with_delay(Duration::from_millis(2500));
    publisher.publish_batch(standard, vec![delayed]).await.unwrap();
    let request: serde_json::Value = serde_json::from_str(&bodies.lock().unwrap()[1]).unwrap();
    let entry = &request["Entries"][0];
    assert_eq!(entry["DelaySeconds"], 3, "{entry}");
    assert!(entry.get("MessageGroupId").is_none(), "{entry}");
}

/// A form-urlencoded key or value, decoded.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                index += 2;
            }
            byte => out.push(byte),
        }
        index += 1;
    }
    String::from_utf8(out).unwrap()
}
