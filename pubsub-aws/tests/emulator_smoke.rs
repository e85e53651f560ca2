//! The emulator path end to end, with the AWS SDK alone: `support` finds the SNS/SQS emulator
//! that `./scripts/test.sh` started, and a queue on it takes and gives back a message. When this
//! fails, the transport's own tests cannot pass either.

mod support;

use aws_sdk_sqs::types::MessageSystemAttributeName;

#[tokio::test]
async fn a_message_sent_to_an_emulated_queue_comes_back_once() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);

    let name = support::unique_name("smoke");
    let created = sqs.create_queue().queue_name(&name).send().await.expect("create the queue");
    let queue_url = created.queue_url().expect("CreateQueue returns the queue's URL").to_owned();

    // Delete the queue whatever the checks find: run them once it is gone.
    let outcome = send_and_receive(&sqs, &queue_url).await;
    sqs.delete_queue().queue_url(&queue_url).send().await.expect("delete the queue");
    let (body, receive_count) = outcome.expect("send and receive one message");

    assert_eq!(body, "hello from the pubsub-aws smoke test");
    assert_eq!(receive_count.as_deref(), Some("1"), "ApproximateReceiveCount of a first receive");
}

/// Sends one message and receives it (a few short polls at most), with its receive count.
async fn send_and_receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<(String, Option<String>), String> {
    sqs.send_message()
        .queue_url(queue_url)
        .message_body("hello from the pubsub-aws smoke test")
        .send()
        .await
        .map_err(|e| format!("SendMessage: {e:?}"))?;
    for _ in 0..5 {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage: {e:?}"))?;
        if let Some(message) = received.messages().first() {
            let body = message.body().unwrap_or_default().to_owned();
            let count = message
                .attributes()
                .and_then(|attributes| attributes.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .cloned();
            return Ok((body, count));
        }
    }
    Err("no message received after 5 polls".to_owned())
}

#[test]
fn only_loopback_endpoints_are_accepted() {
    for url in [
        "http://127.0.0.1:4566",
        "http://127.0.0.1:4566/",
        "http://localhost:5000",
        "https://LOCALHOST",
        "http://[::1]:4566",
    ] {
        assert!(support::is_loopback_url(url), "{url}");
    }
    for url in [
        "http://169.254.169.254",
        "https://sqs.us-east-1.amazonaws.com",
        "http://127.0.0.1.example.com:4566",
        "http://user@example.com@127.0.0.1:1",
        "http://localhost:notaport",
        "http://10.0.0.1:4566",
        "127.0.0.1:4566",
        "ftp://127.0.0.1",
    ] {
        assert!(!support::is_loopback_url(url), "{url}");
    }
}

#[test]
fn unique_names_are_valid_queue_and_topic_names() {
    let a = support::unique_name("orders");
    let b = support::unique_name("orders");
    assert_ne!(a, b);
    assert!(a.starts_with("orders-"), "{a}");
    let long = support::unique_name(&"x.y/z".repeat(40));
    for name in [&a, &b, &long] {
        assert!(name.len() <= support::MAX_UNIQUE_NAME_LEN, "{name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{name}");
    }
    assert!(format!("{long}.fifo").len() <= 80, "{long}");
}
