//! A test binary with no `#[handler]` at all, as a service binary that never names the crate
//! holding its handlers: its daemon refuses to build unless told that no handler is meant.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::handlers::{Handler, HandlerSetError};
use pubsub_core::memory::QueueOptions;
use pubsub_core::outcome::HandledMessage;
use pubsub_core::{encode, DaemonBuilder, MemoryBroker, OpaqueData, PubSubMessage, Verdict};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    id: i64,
}

fn broker() -> MemoryBroker {
    let broker = MemoryBroker::new();
    broker.create_queue("orders", QueueOptions::default());
    broker
}

#[test]
fn a_daemon_with_no_handler_linked_refuses_to_build_and_says_what_to_write() {
    assert_eq!(Handler::linked().count(), 0, "this binary must link no handler");
    let broker = broker();
    let error = DaemonBuilder::new("orders").build(broker.subscriber("orders").unwrap()).unwrap_err();
    assert_eq!(error, HandlerSetError::NoHandlers { daemon: "orders".into() });
    let text = error.to_string();
    for words in [
        "`orders` has no handlers",
        "collected at link time",
        "use my_handlers as _;",
        "DaemonBuilder::handler::<",
        "allow_no_handlers",
    ] {
        assert!(text.contains(words), "`{words}` missing from: {text}");
    }
}

#[tokio::test]
async fn allowed_no_handlers_a_daemon_ignores_and_deletes_every_message() {
    let broker = broker();
    let id = broker.send("orders", encode(&Order { id: 1 }, &OpaqueData::new()).unwrap()).await.unwrap();
    let outcomes = Arc::new(Mutex::new(Vec::<HandledMessage>::new()));
    let seen = outcomes.clone();
    let report = DaemonBuilder::new("orders")
        .allow_no_handlers()
        .wait_time(Duration::from_millis(50))
        .on_outcome(move |handled| seen.lock().unwrap().push(handled.clone()))
        .build(broker.subscriber("orders").unwrap())
        .unwrap()
        .run_until_idle()
        .await;
    assert_eq!((report.total(), report.count(Verdict::Ignored)), (1, 1), "{report}");
    let outcomes = outcomes.lock().unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].message_id, id);
    assert_eq!(outcomes[0].outcome.verdict, Verdict::Ignored);
    assert_eq!(outcomes[0].media_type.as_deref(), Some(Order::MEDIA_TYPE));
    assert_eq!(broker.queue_stats("orders").total, 0, "deleted");
}
