//! Redriving a dead-letter queue (`pubsub_aws::redrive`, `pubsub redrive`) against the
//! emulator: bodies and attributes unchanged, `--max`, dry runs, failures half-way, FIFO
//! groups and order, and the command line's output.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use aws_smithy_types::Blob;
use pubsub_aws::redrive::{Moved, QueueRole, Redrive, RedriveError, Step};
use pubsub_core::transport::TransportError;
use support::{pubsub, text};

const MEDIA_TYPE: &str = "application/vnd.globality.pubsub._.created.widget";

async fn client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&support::sdk_config().await)
}

/// A new queue (FIFO when `fifo`), by URL.
async fn create_queue(sqs: &aws_sdk_sqs::Client, prefix: &str, fifo: bool) -> String {
    let name = support::unique_name(prefix);
    let mut request = sqs.create_queue();
    if fifo {
        request =
            request.queue_name(format!("{name}.fifo")).attributes(QueueAttributeName::FifoQueue, "true");
    } else {
        request = request.queue_name(name);
    }
    request.send().await.unwrap().queue_url.unwrap()
}

fn string(data_type: &str, value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type(data_type).string_value(value).build().unwrap()
}

fn binary(data_type: &str, value: &[u8]) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type(data_type).binary_value(Blob::new(value)).build().unwrap()
}

/// Message `i`'s body and attributes: every data type, custom ones too; its media type in the
/// `media_type` attribute, in the body, or in an SNS notification's body, in turn.
fn message(i: usize) -> (String, HashMap<String, MessageAttributeValue>) {
    let inner = serde_json::json!({"mediaType": MEDIA_TYPE, "uri": format!("http://w/{i}")}).to_string();
    let body = match i % 3 {
        0 => format!("plain body {i}"),
        1 => inner,
        _ => serde_json::json!({"Type": "Notification", "MessageId": "n", "Message": inner}).to_string(),
    };
    let mut attributes = HashMap::from([
        ("attempt".to_owned(), string("Number", &format!("{i}.50"))),
        ("count".to_owned(), string("Number.int", "42")),
        ("team".to_owned(), string("String", "billing")),
        ("note".to_owned(), string("String.x", "custom, kept as is")),
        ("blob".to_owned(), binary("Binary", &[0, 1, 2, 255, i as u8])),
        ("zipped".to_owned(), binary("Binary.gz", &[31, 139, 8])),
    ]);
    if i.is_multiple_of(3) {
        attributes.insert("media_type".to_owned(), string("String", MEDIA_TYPE));
    }
    (body, attributes)
}

/// Sends `count` messages (see [`message`]) to a standard queue; their ids.
async fn fill(sqs: &aws_sdk_sqs::Client, url: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        let (body, attributes) = message(i);
        let sent = sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .set_message_attributes(Some(attributes))
            .send()
            .await
            .unwrap();
        ids.push(sent.message_id.unwrap());
    }
    ids
}

/// Every message of the queue, received (with all attributes) and deleted, in order.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Message> {
    let mut all = Vec::new();
    loop {
        let messages = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            return all;
        }
        for message in &messages {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        all.extend(messages);
    }
}

/// (visible, in flight) messages of the queue.
async fn counts(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let count = |name| attributes[&name].parse::<u64>().unwrap();
    (
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Message attributes by name, comparable: (data type, string value, binary value).
type Attributes = BTreeMap<String, (String, Option<String>, Option<Vec<u8>>)>;

/// A message's attributes, comparable.
fn attributes_of(message: &Message) -> Attributes {
    message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let binary = value.binary_value().map(|blob| blob.as_ref().to_vec());
            (name.clone(), (value.data_type().to_owned(), value.string_value().map(str::to_owned), binary))
        })
        .collect()
}

fn comparable(attributes: &HashMap<String, MessageAttributeValue>) -> Attributes {
    let message = Message::builder().set_message_attributes(Some(attributes.clone())).build();
    attributes_of(&message)
}

#[tokio::test]
async fn moves_bodies_and_attributes_unchanged_and_empties_the_dead_letter_queue() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = client().await;
    let dlq = create_queue(&sqs, "redrive-dlq", false).await;
    let queue = create_queue(&sqs, "redrive-to", false).await;
    let ids = fill(&sqs, &dlq, 12).await;

    let mut moved: Vec<Moved> = Vec::new();
    let report = Redrive::new(&config, &dlq, &queue)
        .run(|m| {
            moved.push(m.clone());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!((report.moved, report.left, report.is_complete()), (12, Some(0), true), "{report:?}");
    assert_eq!(report.to_string(), "moved 12, left 0");
    assert_eq!(support::left_in(&sqs, &dlq).await, 0, "the dead-letter queue is empty");

    // One report per message, with its new id, its media type wherever it was, its count.
    assert_eq!(moved.iter().map(|m| &m.message_id).collect::<HashSet<_>>(), ids.iter().collect());
    for m in &moved {
        let new_id = m.new_message_id.as_deref().expect("a new id");
        assert_ne!(new_id, m.message_id);
        assert_eq!(m.receive_count, Some(1));
        let i = ids.iter().position(|id| *id == m.message_id).unwrap();
        // From the attribute, the body, or the SNS notification in the body.
        assert_eq!(m.media_type.as_deref(), Some(MEDIA_TYPE), "message {i}");
    }

    // In the queue: the same bodies, the same attributes, data types and all.
    let received = drain(&sqs, &queue).await;
    assert_eq!(received.len(), 12);
    let new_ids: HashSet<&str> = moved.iter().filter_map(|m| m.new_message_id.as_deref()).collect();
    let mut expected: HashMap<String, _> = (0..12)
        .map(|i| {
            let (body, attributes) = message(i);
            (body, comparable(&attributes))
        })
        .collect();
    for message in &received {
        assert!(new_ids.contains(message.message_id().unwrap()));
        let attributes = expected.remove(message.body().unwrap()).expect("a body sent, once");
        assert_eq!(attributes_of(message), attributes);
    }
}

#[tokio::test]
async fn max_moves_at_most_that_many() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = client().await;
    let dlq = create_queue(&sqs, "redrive-max-dlq", false).await;
    let queue = create_queue(&sqs, "redrive-max-to", false).await;
    fill(&sqs, &dlq, 15).await;

    let mut printed = 0;
    let report = Redrive::new(&config, &dlq, &queue)
        .max(4)
        .run(|_| {
            printed += 1;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!((report.moved, printed, report.left), (4, 4, Some(11)));
    assert_eq!(counts(&sqs, &dlq).await, (11, 0), "the others are still there, visible");
    assert_eq!(drain(&sqs, &queue).await.len(), 4);
}

#[tokio::test]
async fn a_dry_run_moves_nothing_and_leaves_every_message_receivable() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = client().await;
    let dlq = create_queue(&sqs, "redrive-dry-dlq", false).await;
    let queue = create_queue(&sqs, "redrive-dry-to", false).await;
    let ids = fill(&sqs, &dlq, 12).await;

    let mut would: Vec<Moved> = Vec::new();
    let report = Redrive::new(&config, &dlq, &queue)
        .dry_run(true)
        .run(|m| {
            would.push(m.clone());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!((report.dry_run, report.moved, report.left), (true, 12, Some(12)));
    assert_eq!(report.to_string(), "would move 12, moved 0, left 12");
    assert_eq!(would.iter().map(|m| &m.message_id).collect::<HashSet<_>>(), ids.iter().collect());
    assert!(would.iter().all(|m| m.new_message_id.is_none()));

    assert_eq!(support::left_in(&sqs, &queue).await, 0, "nothing sent");
    assert_eq!(counts(&sqs, &dlq).await, (12, 0), "all visible again at once");
    let again = drain(&sqs, &dlq).await;
    assert_eq!(
        again.iter().map(|m| m.message_id().unwrap().to_owned()).collect::<HashSet<_>>(),
        ids.into_iter().collect()
    );
}

#[tokio::test]
async fn a_missing_target_queue_moves_and_deletes_nothing() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = client().await;
    let dlq = create_queue(&sqs, "redrive-missing-dlq", false).await;
    fill(&sqs, &dlq, 3).await;
    let missing = format!("{}/{}", dlq.rsplit_once('/').unwrap().0, support::unique_name("no-such-queue"));

    let mut printed = 0;
    let error = Redrive::new(&config, &dlq, &missing)
        .run(|_| {
            printed += 1;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            RedriveError::Queue { role: QueueRole::To, source: TransportError::QueueNotFound(_), .. }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("does not exist") && error.to_string().contains("nothing was moved"));
    assert_eq!(printed, 0);
    assert_eq!(counts(&sqs, &dlq).await, (3, 0), "nothing received, nothing deleted");

    // And from a missing dead-letter queue.
    let error = Redrive::new(&config, &missing, &dlq).run(|_| Ok(())).await.unwrap_err();
    assert!(matches!(error, RedriveError::Queue { role: QueueRole::From, .. }), "{error:?}");

    // The same queue twice is refused before any request.
    let error = Redrive::new(&config, &dlq, format!("{dlq}/")).run(|_| Ok(())).await.unwrap_err();
    assert!(matches!(error, RedriveError::SameQueue(_)), "{error:?}");
    assert_eq!(counts(&sqs, &dlq).await, (3, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_gone_half_way_stops_the_run_and_deletes_only_what_was_sent() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = client().await;
    let dlq = create_queue(&sqs, "redrive-gone-dlq", false).await;
    let queue = create_queue(&sqs, "redrive-gone-to", false).await;
    fill(&sqs, &dlq, 15).await;

    // The target is deleted once the first message is reported: the rest of the first batch
    // was sent already; the next batch's send fails.
    let mut printed = 0;
    let runtime = tokio::runtime::Handle::current();
    let error = Redrive::new(&config, &dlq, &queue)
        .run(|_| {
            if printed == 0 {
                tokio::task::block_in_place(|| {
                    runtime.block_on(sqs.delete_queue().queue_url(&queue).send()).unwrap();
                });
            }
            printed += 1;
            Ok(())
        })
        .await
        .unwrap_err();
    let RedriveError::Stopped { step, report, .. } = &error else { panic!("{error:?}") };
    assert_eq!(*step, Step::Send, "{error}");
    assert!(report.moved > 0 && report.moved < 15, "{report:?}");
    assert_eq!(report.moved, printed, "deleted only what was sent and printed");
    assert_eq!(report.left, Some(15 - printed as u64));
    let text = error.to_string();
    assert!(
        text.contains(&format!("moved {printed}")) && text.contains("nothing of that batch was deleted"),
        "{text}"
    );
    assert_eq!(counts(&sqs, &dlq).await, (15 - printed as u64, 0), "the rest visible again");
}

#[tokio::test]
async fn fifo_to_fifo_keeps_groups_and_order() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = client().await;
    let dlq = create_queue(&sqs, "redrive-fifo-dlq", true).await;
    let queue = create_queue(&sqs, "redrive-fifo-to", true).await;
    for n in 1..=6 {
        for group in ["a", "b"] {
            sqs.send_message()
                .queue_url(&dlq)
                .message_body(format!("{group}-{n}"))
                .message_group_id(group)
                .message_deduplication_id(format!("{group}-{n}"))
                .message_attributes("n", string("Number", &n.to_string()))
                .send()
                .await
                .unwrap();
        }
    }

    let report = Redrive::new(&config, &dlq, &queue).run(|_| Ok(())).await.unwrap();
    assert_eq!((report.moved, report.left), (12, Some(0)), "{report:?}");

    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for message in drain(&sqs, &queue).await {
        let group = message.attributes().unwrap()[&MessageSystemAttributeName::MessageGroupId].clone();
        assert!(message.body().unwrap().starts_with(&format!("{group}-")));
        assert_eq!(attributes_of(&message)["n"].1.as_deref(), message.body().unwrap().split('-').nth(1));
        groups.entry(group).or_default().push(message.body().unwrap().to_owned());
    }
    for group in ["a", "b"] {
        let expected: Vec<String> = (1..=6).map(|n| format!("{group}-{n}")).collect();
        assert_eq!(groups[group], expected, "group {group} in order");
    }
}

#[tokio::test]
async fn a_fifo_move_tried_again_is_not_duplicated() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = client().await;
    let dlq = create_queue(&sqs, "redrive-again-dlq", true).await;
    let queue = create_queue(&sqs, "redrive-again-to", true).await;
    for n in 1..=4 {
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(format!("m-{n}"))
            .message_group_id("g")
            .message_deduplication_id(format!("m-{n}"))
            .send()
            .await
            .unwrap();
    }

    // Sent, but reporting the first fails (stdout closed, say): nothing is deleted.
    let error = Redrive::new(&config, &dlq, &queue)
        .run(|_| Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdout closed")))
        .await
        .unwrap_err();
    let report = error.report().unwrap().clone();
    assert!(matches!(error, RedriveError::Report { .. }), "{error:?}");
    assert_eq!((report.moved, report.not_deleted.len(), report.left), (0, 4, Some(4)), "{report:?}");
    assert_eq!(counts(&sqs, &dlq).await, (4, 0), "still in the dead-letter queue, visible again");
    assert_eq!(support::left_in(&sqs, &queue).await, 4, "and sent");

    // Run again: the same deduplication ids, so the target holds each message once.
    let report = Redrive::new(&config, &dlq, &queue).run(|_| Ok(())).await.unwrap();
    assert_eq!((report.moved, report.left), (4, Some(0)));
    let bodies: Vec<String> =
        drain(&sqs, &queue).await.iter().map(|m| m.body().unwrap().to_owned()).collect();
    assert_eq!(bodies, ["m-1", "m-2", "m-3", "m-4"]);
}

#[tokio::test]
async fn standard_to_fifo_without_a_group_is_refused_and_left_in_place() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let config = support::sdk_config().await;
    let sqs = client().await;
    let dlq = create_queue(&sqs, "redrive-nogroup-dlq", false).await;
    let queue = create_queue(&sqs, "redrive-nogroup-to", true).await;
    let ids = fill(&sqs, &dlq, 2).await;

    let mut printed = 0;
    let report = Redrive::new(&config, &dlq, &queue)
        .run(|_| {
            printed += 1;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!((report.moved, printed, report.left, report.is_complete()), (0, 0, Some(2), false));
    let refused: HashSet<&String> = report.not_moved.iter().map(|n| &n.message_id).collect();
    assert_eq!(refused, ids.iter().collect());
    assert!(report.not_moved.iter().all(|n| n.reason.contains("MessageGroupId")), "{report:?}");
    assert_eq!(support::left_in(&sqs, &queue).await, 0);
    assert_eq!(counts(&sqs, &dlq).await, (2, 0));
}

#[tokio::test]
async fn the_command_line_prints_a_line_per_message_and_a_summary() {
    let Some(_endpoint) = support::require_emulator() else { return };
    let sqs = client().await;
    let dlq = create_queue(&sqs, "redrive-cli-dlq", false).await;
    let queue = create_queue(&sqs, "redrive-cli-to", false).await;
    let ids = fill(&sqs, &dlq, 3).await;
    let lines = |stdout: &[u8]| -> Vec<serde_json::Value> {
        text(stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    };

    let dry = pubsub(&["redrive", "--from", &dlq, "--to", &queue, "--dry-run"], "");
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert!(text(&dry.stderr).contains("would move 3, moved 0, left 3"), "{}", text(&dry.stderr));
    let would = lines(&dry.stdout);
    assert_eq!(would.len(), 3);
    assert!(would.iter().all(|line| line["new_message_id"].is_null()));

    let run = pubsub(&["redrive", "--from", &dlq, "--to", &queue], "");
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(text(&run.stderr).contains("moved 3, left 0"), "{}", text(&run.stderr));
    let moved = lines(&run.stdout);
    assert_eq!(moved.len(), 3);
    for line in &moved {
        let object = line.as_object().unwrap();
        assert_eq!(
            object.keys().map(String::as_str).collect::<HashSet<_>>(),
            HashSet::from(["message_id", "new_message_id", "media_type", "receive_count"])
        );
        assert!(ids.contains(&line["message_id"].as_str().unwrap().to_owned()));
        assert!(line["new_message_id"].is_string());
        assert_eq!(line["media_type"], MEDIA_TYPE);
        assert_eq!(line["receive_count"], 2, "received once by the dry run, once now");
    }
    assert_eq!(support::left_in(&sqs, &queue).await, 3);

    let same = pubsub(&["redrive", "--from", &queue, "--to", &queue], "");
    assert_eq!(same.status.code(), Some(2));
    assert!(text(&same.stderr).contains("same queue"), "{}", text(&same.stderr));

    let missing = format!("{}/{}", queue.rsplit_once('/').unwrap().0, support::unique_name("no-such-queue"));
    let gone = pubsub(&["redrive", "--from", &queue, "--to", &missing], "");
    assert_eq!(gone.status.code(), Some(2));
    let stderr = text(&gone.stderr);
    assert!(stderr.contains("does not exist") && stderr.contains("nothing was moved"), "{stderr}");
    assert_eq!(support::left_in(&sqs, &queue).await, 3);

    // Standard to FIFO: refused message by message, named on stderr, exit status 1.
    let fifo = create_queue(&sqs, "redrive-cli-fifo", true).await;
    let refused = pubsub(&["redrive", "--from", &queue, "--to", &fifo, "--max", "2"], "");
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert_eq!(stderr.matches("not moved, still in the dead-letter queue").count(), 2, "{stderr}");
    assert!(stderr.contains("moved 0, not moved 2, left 3"), "{stderr}");
    assert_eq!(text(&refused.stdout), "");
}
