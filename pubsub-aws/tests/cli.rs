//! The `pubsub` command line end to end against the emulator.

mod support;

use support::{pubsub, text};

#[test]
fn provision_publish_and_read() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let dir = std::env::temp_dir().join(support::unique_name("cli"));
    std::fs::create_dir_all(&dir).unwrap();
    let (topic, queue) = (support::unique_name("topic"), support::unique_name("queue"));
    let config = dir.join("pubsub.toml");
    std::fs::write(
        &config,
        format!(
            "[[topic]]\nname = \"{topic}\"\n\n[[queue]]\nname = \"{queue}\"\ndead_letter_queue = \"{queue}-dlq\"\n\n\
             [[subscription]]\ntopic = \"{topic}\"\nqueue = \"{queue}\"\nraw = true\n\
             media_types = [\"application/vnd.globality.pubsub._.created.*\"]\n"
        ),
    )
    .unwrap();

    // Provisioning twice prints the same ARNs and URLs.
    let first = pubsub(&["provision", "--config", config.to_str().unwrap()], "");
    assert!(first.status.success(), "{}", text(&first.stderr));
    let second = pubsub(&["provision", "--config", config.to_str().unwrap()], "");
    assert_eq!(text(&first.stdout), text(&second.stdout));
    let lines: Vec<String> = text(&first.stdout).lines().map(str::to_owned).collect();
    let topic_arn =
        lines.iter().find(|l| l.starts_with("topic ")).unwrap().rsplit(' ').next().unwrap().to_owned();
    let queue_url = lines
        .iter()
        .find(|l| l.starts_with(&format!("queue {queue} ")))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();

    let media_type = "application/vnd.globality.pubsub._.created.widget";
    let one = pubsub(
        &[
            "publish",
            "--topic-arn",
            &topic_arn,
            "--media-type",
            media_type,
            "--json",
            r#"{"uri": "http://w/1"}"#,
        ],
        "",
    );
    assert!(one.status.success(), "{}", text(&one.stderr));
    assert_eq!(text(&one.stdout).lines().count(), 1);

    // A bad line is reported with its number, whatever is wrong with it (not JSON, against the
    // convention, too large for SNS); the others are published.
    let big = format!("{{\"uri\": \"http://w/6\", \"pad\": \"{}\"}}", "x".repeat(300 * 1024));
    let stdin = format!(
        "{{\"uri\": \"http://w/2\"}}\nnot json\n\n{{\"uri\": \"http://w/3\"}}\n{{\"id\": 4}}\n{big}\n"
    );
    let many = pubsub(&["publish", "--topic-arn", &topic_arn, "--media-type", media_type], &stdin);
    assert_eq!(many.status.code(), Some(1), "{}", text(&many.stderr));
    let stderr = text(&many.stderr);
    assert!(
        stderr.contains("line 2:") && stderr.contains("line 5:") && stderr.contains("`uri` is required"),
        "{stderr}"
    );
    assert!(stderr.contains("line 6:") && stderr.contains("over SNS's limit"), "{stderr}");
    assert_eq!(text(&many.stdout).lines().count(), 2, "the good lines were published");

    // Filtered out by the subscription: not the created.* prefix.
    let other = pubsub(
        &[
            "publish",
            "--topic-arn",
            &topic_arn,
            "--media-type",
            "application/vnd.globality.pubsub.simple",
            "--json",
            "{}",
        ],
        "",
    );
    assert!(other.status.success());

    let read = pubsub(&["read", "--queue-url", &queue_url, "--max", "3", "--wait-seconds", "2"], "");
    assert!(read.status.success(), "{}", text(&read.stderr));
    let messages: Vec<serde_json::Value> =
        text(&read.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(messages.len(), 3);
    for message in &messages {
        assert_eq!(message["media_type"], media_type);
        assert_eq!(message["receive_count"], 1);
        assert!(message["content"]["uri"].as_str().unwrap().starts_with("http://w/"));
        assert!(message["opaque_data"]["x-request-published"].is_string());
        assert!(message["message_id"].is_string());
    }
    let empty = pubsub(&["read", "--queue-url", &queue_url, "--wait-seconds", "1"], "");
    assert!(empty.status.success());
    assert_eq!(text(&empty.stdout), "", "all were acknowledged, the other media type filtered out");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_gets_one_clear_line_and_a_non_zero_exit() {
    let unknown_flag = pubsub(&["publish", "--no-such-flag"], "");
    assert!(!unknown_flag.status.success());
    assert!(text(&unknown_flag.stderr).contains("--no-such-flag"));

    let Some(_endpoint) = support::require_emulator() else { return };
    let missing_topic = pubsub(
        &[
            "publish",
            "--topic-arn",
            "arn:aws:sns:us-east-1:123456789012:no-such-topic",
            "--media-type",
            "a/b",
            "--json",
            "{}",
        ],
        "",
    );
    assert_eq!(missing_topic.status.code(), Some(2));
    let stderr = text(&missing_topic.stderr);
    assert!(stderr.starts_with("error: ") && stderr.contains("no-such-topic"), "{stderr}");
    let not_an_object =
        pubsub(&["publish", "--topic-arn", "arn:x", "--media-type", "a/b", "--json", "[1]"], "");
    assert_eq!(not_an_object.status.code(), Some(2));
    assert!(text(&not_an_object.stderr).contains("must be a JSON object"));
}

/// A queue holding four raw messages: not JSON, JSON without `mediaType`, a `created` without
/// `uri` (a peer's own schema), and a good one.
async fn queue_of_four(sqs: &aws_sdk_sqs::Client) -> String {
    let url =
        sqs.create_queue().queue_name(support::unique_name("read")).send().await.unwrap().queue_url.unwrap();
    for body in [
        "not json {",
        r#"{"orderId": "o-1"}"#,
        r#"{"mediaType": "application/vnd.globality.pubsub._.created.order", "opaqueData": {"x-request-id": "r-3"}, "orderId": "o-3"}"#,
        r#"{"mediaType": "application/vnd.globality.pubsub._.created.order", "uri": "http://o/4"}"#,
    ] {
        sqs.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    }
    url
}

fn lines(output: &std::process::Output) -> Vec<serde_json::Value> {
    text(&output.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn read_prints_every_message_it_takes_even_one_that_fails_a_check() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let sqs = aws_sdk_sqs::Client::new(&support::sdk_config().await);
    let url = queue_of_four(&sqs).await;

    let read = pubsub(&["read", "--queue-url", &url, "--max", "4", "--wait-seconds", "1"], "");
    // Three failed a check: the exit status says so, stdout still holds all four.
    assert_eq!(read.status.code(), Some(1), "{}", text(&read.stderr));
    let mut messages = lines(&read);
    assert_eq!(messages.len(), 4, "{}", text(&read.stdout));
    for message in &messages {
        assert!(message["message_id"].is_string() && message["receive_count"] == 1, "{message}");
        for key in ["media_type", "opaque_data", "content"] {
            assert!(message.get(key).is_some(), "{key} missing: {message}");
        }
    }
    let by = |messages: &[serde_json::Value], pick: &dyn Fn(&serde_json::Value) -> bool| {
        messages.iter().find(|m| pick(m)).cloned().unwrap_or_else(|| panic!("not found in {messages:?}"))
    };
    let not_json = by(&messages, &|m| m.get("body").is_some());
    assert_eq!(not_json["body"], "not json {");
    assert!(not_json["content"].is_null() && not_json["error"].as_str().unwrap().contains("not valid JSON"));

    let no_media_type = by(&messages, &|m| m["content"]["orderId"] == "o-1");
    assert!(no_media_type["media_type"].is_null() && no_media_type.get("body").is_none());
    assert!(no_media_type["error"].as_str().unwrap().contains("no `mediaType`"), "{no_media_type}");

    let no_uri = by(&messages, &|m| m["content"]["orderId"] == "o-3");
    assert_eq!(no_uri["media_type"], "application/vnd.globality.pubsub._.created.order");
    assert_eq!(no_uri["opaque_data"]["x-request-id"], "r-3");
    assert_eq!(no_uri["content"], serde_json::json!({"orderId": "o-3"}));
    assert!(no_uri["error"].as_str().unwrap().contains("uri"), "{no_uri}");

    let good = by(&messages, &|m| m["content"]["uri"] == "http://o/4");
    assert!(good.get("error").is_none() && good.get("body").is_none(), "{good}");
    assert!(good["opaque_data"].is_object());

    // Printed, so deleted: every one of them.
    assert_eq!(support::left_in(&sqs, &url).await, 0);
    messages.clear();

    // With --nack none is deleted: read again, they come back a second time.
    let url = queue_of_four(&sqs).await;
    let nacked = pubsub(&["read", "--queue-url", &url, "--max", "4", "--wait-seconds", "1", "--nack"], "");
    assert_eq!(lines(&nacked).len(), 4, "{}", text(&nacked.stderr));
    assert_eq!(support::left_in(&sqs, &url).await, 4);
    let again = pubsub(&["read", "--queue-url", &url, "--max", "4", "--wait-seconds", "1"], "");
    let again = lines(&again);
    assert_eq!(again.len(), 4);
    assert!(again.iter().all(|m| m["receive_count"].as_u64().unwrap() >= 2), "{again:?}");
    assert_eq!(support::left_in(&sqs, &url).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn read_acknowledges_nothing_once_stdout_is_closed() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let sqs = aws_sdk_sqs::Client::new(&support::sdk_config().await);
    let url = queue_of_four(&sqs).await;
    // stdout closed before the first line: nothing printed, so nothing deleted.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pubsub"))
        .args(["read", "--queue-url", &url, "--max", "4", "--wait-seconds", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("cannot write to standard output"), "{}", text(&output.stderr));
    assert_eq!(support::left_in(&sqs, &url).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_one_receive_brought_is_acknowledged_in_one_request() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs
        .create_queue()
        .queue_name(support::unique_name("ackall"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    for i in 0..10 {
        let body = format!(r#"{{"mediaType": "application/vnd.acme.pubsub.job", "n": {i}}}"#);
        sqs.send_message().queue_url(&url).message_body(body).send().await.unwrap();
    }
    let counter = pubsub_aws::RequestCounter::new();
    let consumer = pubsub_core::Consumer::new(
        pubsub_aws::SqsSubscriber::with_counter(&config, &url, &counter).await.unwrap(),
    )
    .wait_time(std::time::Duration::from_secs(1));
    let mut deliveries = Vec::new();
    while deliveries.len() < 10 {
        deliveries.extend(consumer.consume().await.unwrap());
    }
    counter.reset();
    let results = consumer.ack_all(&deliveries).await.unwrap();
    assert_eq!(results.len(), 10);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(counter.get("DeleteMessageBatch"), 1, "{:?}", counter.counts());
    assert_eq!(counter.total(), 1);
    assert_eq!(support::left_in(&sqs, &url).await, 0);
}
