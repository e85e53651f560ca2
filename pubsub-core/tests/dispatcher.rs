//! `DaemonBuilder::build_dispatcher`: the daemon's dispatcher for a runner of another kind (AWS
//! Lambda): the same checks as `build`, the same results, the producer, and the builder's
//! `on_outcome` hook called once per message.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::backoff::BackoffPolicy;
use pubsub_core::handlers::{Dispatcher, HandlerSetError};
use pubsub_core::outcome::{Disposition, HandledMessage};
use pubsub_core::transport::ReceivedMessage;
use pubsub_core::{
    encode, handler, DaemonBuilder, HandlerError, MemoryBroker, MessageContext, OpaqueData, Producer,
    PubSubMessage, TopicMap, Verdict,
};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.dispatcher_job"]
struct Job {
    #[validate(length(min = 1))]
    name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.dispatcher_done"]
struct Done {
    name: String,
}

/// A collaborator the handler needs.
struct Prefix(&'static str);

#[handler]
async fn on_job(job: Job, context: &MessageContext, prefix: &Prefix) -> Result<(), HandlerError> {
    match job.name.as_str() {
        "later" => Err(HandlerError::retry_after(Duration::from_secs(7))),
        "boom" => panic!("boom"),
        name => {
            context.publish(&Done { name: format!("{}{name}", prefix.0) })?;
            Ok(())
        }
    }
}

fn received(id: &str, body: String, receive_count: u32) -> ReceivedMessage {
    let mut message = ReceivedMessage::new(id, format!("receipt-{id}"), body);
    message.receive_count = receive_count;
    message
}

fn job(name: &str, opaque: &OpaqueData) -> String {
    encode(&Job { name: name.to_owned() }, opaque).unwrap()
}

#[tokio::test]
async fn a_dispatcher_from_the_builder_runs_the_results_table_and_calls_the_hook() {
    let broker = MemoryBroker::new();
    let done = broker.create_topic("done");
    broker.create_queue("done", Default::default());
    broker.subscribe(&done, "done", Default::default()).unwrap();
    let seen: Arc<Mutex<Vec<(String, Verdict)>>> = Arc::default();
    let hook = seen.clone();
    let dispatcher: Dispatcher = DaemonBuilder::new("lambda-like")
        .handler::<on_job>()
        .collaborator(Prefix("done-"))
        .producer(Producer::new(broker.publisher(), TopicMap::new().default_topic(&done)))
        .backoff(BackoffPolicy::Fixed(Duration::from_secs(3)))
        .on_outcome(move |handled: &HandledMessage| {
            hook.lock().unwrap().push((handled.message_id.clone(), handled.outcome.verdict))
        })
        .build_dispatcher("jobs")
        .unwrap();

    let with_request = OpaqueData::new().with_request_id("req-9");
    let cases = [
        ("ok", job("a", &with_request), Verdict::Succeeded, Disposition::Delete),
        (
            "later",
            job("later", &OpaqueData::new()),
            Verdict::Retried,
            Disposition::Retry(Duration::from_secs(7)),
        ),
        (
            "boom",
            job("boom", &OpaqueData::new()),
            Verdict::Failed,
            Disposition::Retry(Duration::from_secs(3)),
        ),
        ("malformed", "not json".to_owned(), Verdict::Failed, Disposition::Retry(Duration::from_secs(3))),
        (
            "unknown",
            r#"{"mediaType": "application/vnd.acme.pubsub.nobody", "x": 1}"#.to_owned(),
            Verdict::Ignored,
            Disposition::Delete,
        ),
        ("expired", job("a", &OpaqueData::new().with_ttl(0)), Verdict::Expired, Disposition::Delete),
    ];
    for (id, body, verdict, disposition) in &cases {
        let handled = dispatcher.dispatch(&received(id, body.clone(), 1)).await;
        assert_eq!(
            (handled.outcome.verdict, handled.outcome.disposition),
            (*verdict, *disposition),
            "{id}: {handled:?}"
        );
    }
    // A body that does not validate (an empty name) is FAILED, as in the daemon.
    let invalid = r#"{"mediaType": "application/vnd.acme.pubsub.dispatcher_job", "name": ""}"#.to_owned();
    let handled = dispatcher.dispatch(&received("invalid", invalid, 1)).await;
    assert_eq!(handled.outcome.verdict, Verdict::Failed, "{handled:?}");
    assert!(handled.outcome.reason.as_deref().unwrap().contains("name"), "{handled:?}");

    let seen = seen.lock().unwrap().clone();
    let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["ok", "later", "boom", "malformed", "unknown", "expired", "invalid"]);
    // What the successful handler published went out once, with the request id.
    let sent = broker.messages("done");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let decoded = pubsub_core::decode::<Done>(&sent[0]).unwrap();
    assert_eq!(decoded.message.name, "done-a");
    assert_eq!(decoded.opaque_data.request_id(), Some("req-9"));
}

#[test]
fn a_dispatcher_is_checked_as_a_daemon_is() {
    let missing = DaemonBuilder::new("lambda-like").handler::<on_job>().build_dispatcher("jobs").unwrap_err();
    assert!(matches!(missing, HandlerSetError::MissingCollaborator { .. }), "{missing}");
    let builder = DaemonBuilder::new("lambda-like").concurrency(40);
    assert_eq!(builder.name(), "lambda-like");
    assert_eq!(builder.daemon_config().concurrency, 40);
}
