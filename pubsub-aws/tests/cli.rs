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
