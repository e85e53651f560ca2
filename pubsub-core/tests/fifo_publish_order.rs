//! The producer's requests to a FIFO destination go one after another, in order, so that a
//! message group arrives as given; a standard destination's go at once. And a batch with
//! per-message options (`produce_batch_with_options`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::producer::PublishOptions;
use pubsub_core::transport::{BoxFuture, EntryError, MessageId, OutgoingMessage, Publisher, TransportError};
use pubsub_core::{Producer, TopicMap, UntypedMessage};

/// Records every request's messages; the earlier a request, the longer it takes, so requests
/// sent at once finish in reverse order.
#[derive(Default)]
struct Recorder {
    requests: Mutex<Vec<Vec<OutgoingMessage>>>,
    started: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

#[derive(Clone, Default)]
struct Recording(Arc<Recorder>);

impl Publisher for Recording {
    fn publish_batch<'a>(
        &'a self,
        _destination: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Result<MessageId, EntryError>>, TransportError>> {
        Box::pin(async move {
            let recorder = &self.0;
            let order = recorder.started.fetch_add(1, Ordering::SeqCst);
            let now = recorder.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            recorder.most_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(60u64.saturating_sub(order as u64 * 20))).await;
            recorder.in_flight.fetch_sub(1, Ordering::SeqCst);
            let ids = messages.iter().map(|m| Ok(m.body.clone())).collect();
            recorder.requests.lock().unwrap().push(messages);
            Ok(ids)
        })
    }
}

fn widgets(group: impl Fn(usize) -> String) -> Vec<(UntypedMessage, PublishOptions)> {
    (0..30)
        .map(|i| {
            let widget = UntypedMessage::created("Widget", &format!("http://example.com/api/v1/widget/{i}"));
            let options = PublishOptions::new().group_id(group(i)).attribute("n", i);
            (widget, options)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fifo_destination_gets_its_requests_one_after_another() {
    let recording = Recording::default();
    let queue = "https://sqs.us-east-1.amazonaws.com/1/orders.fifo";
    let producer = Producer::new(recording.clone(), TopicMap::new().default_topic(queue));
    let messages = widgets(|i| format!("g-{}", i % 3));
    let ids = producer.produce_batch_with_options(&messages).await.unwrap();
    assert_eq!(ids.len(), 30);
    assert_eq!(recording.0.most_in_flight.load(Ordering::SeqCst), 1, "one request at a time");
    let sent: Vec<String> = recording
        .0
        .requests
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .map(|m| m.attributes["n"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..30).map(|i| i.to_string()).collect();
    assert_eq!(sent, expected, "in the order given");
    let groups: Vec<_> =
        recording.0.requests.lock().unwrap()[0].iter().map(|m| m.group_id.clone().unwrap()).collect();
    assert_eq!(
        groups[..3],
        ["g-0".to_owned(), "g-1".to_owned(), "g-2".to_owned()],
        "each message's own group"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standard_destination_gets_its_requests_at_once() {
    let recording = Recording::default();
    let queue = "https://sqs.us-east-1.amazonaws.com/1/orders";
    let producer = Producer::new(recording.clone(), TopicMap::new().default_topic(queue));
    producer.produce_batch_with_options(&widgets(|_| "ignored".into())).await.unwrap();
    assert_eq!(recording.0.most_in_flight.load(Ordering::SeqCst), 3, "three requests at once");
}

#[tokio::test]
async fn a_batch_with_options_is_refused_whole_when_one_is_refused() {
    let recording = Recording::default();
    let queue = "https://sqs.us-east-1.amazonaws.com/1/orders.fifo";
    let producer = Producer::new(recording.clone(), TopicMap::new().default_topic(queue));
    let mut messages = widgets(|i| format!("g-{i}"));
    messages[7].1.group_id = None;
    let error = producer.produce_batch_with_options(&messages).await.unwrap_err();
    assert!(
        error.to_string().contains("index 7") && error.to_string().contains("no message group id"),
        "{error}"
    );
    assert!(recording.0.requests.lock().unwrap().is_empty(), "nothing was sent");
}
