//! Which handlers a daemon runs, and what it tells of every message: explicit registration
//! beside link-time collection, the refusal of a daemon with no handler, handler selection,
//! the outcome hook, and how a handler's arguments are told apart.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pubsub_core::handlers::HandlerSetError;
use pubsub_core::memory::QueueOptions;
use pubsub_core::outcome::HandledMessage;
use pubsub_core::{
    encode, handler, DaemonBuilder, HandlerError, MemoryBroker, MessageContext, OpaqueData, PubSubMessage,
    Verdict,
};
use serde::{Deserialize, Serialize};
use validator::Validate;

const ORDER: &str = "application/vnd.acme.pubsub.order";
const REFUND: &str = "application/vnd.acme.pubsub.refund";

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.refund"]
struct Refund {
    id: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.receipt"]
struct Receipt {
    id: i64,
}

/// Calls of each handler of this file, by name.
#[derive(Default)]
struct Calls(Mutex<Vec<&'static str>>);

impl Calls {
    fn record(&self, name: &'static str) {
        self.0.lock().unwrap().push(name);
    }

    fn of(&self, name: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|n| **n == name).count()
    }
}

#[handler]
async fn take_order(_order: Order, calls: &Arc<Calls>) {
    calls.record("take_order");
}

/// Linked into this binary, never registered with a daemon of this file.
#[handler]
async fn take_refund(_refund: Refund, calls: &Arc<Calls>) {
    calls.record("take_refund");
}

/// A queue on an embedded broker, and every outcome of the daemons run on it.
struct Inbox {
    broker: MemoryBroker,
    outcomes: Arc<Mutex<Vec<HandledMessage>>>,
    calls: Arc<Calls>,
}

impl Inbox {
    fn new() -> Inbox {
        let broker = MemoryBroker::new();
        broker.create_queue("inbox", QueueOptions::default());
        Inbox { broker, outcomes: Arc::default(), calls: Arc::default() }
    }

    /// Sends `body` as it is; returns its message id.
    async fn send(&self, body: impl Into<String>) -> String {
        self.broker.send("inbox", body.into()).await.unwrap()
    }

    async fn send_message(&self, message: &impl pubsub_core::Message) -> String {
        self.send(encode(message, &OpaqueData::new()).unwrap()).await
    }

    /// A daemon that records every outcome, with no handler yet.
    fn daemon(&self) -> DaemonBuilder {
        let outcomes = self.outcomes.clone();
        DaemonBuilder::new("inbox")
            .collaborator(self.calls.clone())
            .wait_time(Duration::from_millis(50))
            .backoff(pubsub_core::backoff::BackoffPolicy::Fixed(Duration::from_secs(600)))
            .on_outcome(move |handled| outcomes.lock().unwrap().push(handled.clone()))
    }

    async fn run(&self, daemon: DaemonBuilder) -> pubsub_core::daemon::DaemonReport {
        daemon.build(self.broker.subscriber("inbox").unwrap()).unwrap().run_until_idle().await
    }

    /// The one outcome of message `id`.
    fn outcome(&self, id: &str) -> HandledMessage {
        let outcomes = self.outcomes.lock().unwrap();
        let of_id: Vec<&HandledMessage> = outcomes.iter().filter(|h| h.message_id == id).collect();
        assert_eq!(of_id.len(), 1, "outcomes of {id}: {of_id:#?}");
        of_id[0].clone()
    }
}

#[tokio::test]
async fn a_daemon_with_explicit_handlers_runs_only_those() {
    let inbox = Inbox::new();
    let order = inbox.send_message(&Order { id: 1 }).await;
    let refund = inbox.send_message(&Refund { id: 2 }).await;
    let daemon = inbox.daemon().handler::<take_order>();
    assert_eq!(daemon.handler_table().unwrap().media_types(), [ORDER]);
    let report = inbox.run(daemon).await;

    assert_eq!(inbox.outcome(&order).outcome.verdict, Verdict::Succeeded);
    let refund = inbox.outcome(&refund);
    assert_eq!(refund.outcome.verdict, Verdict::Ignored, "linked but not registered: {refund:?}");
    assert_eq!(refund.outcome.reason.as_deref(), Some("no handler for this media type"));
    assert_eq!(refund.handler, None);
    assert_eq!((inbox.calls.of("take_order"), inbox.calls.of("take_refund")), (1, 0));
    assert_eq!((report.count(Verdict::Succeeded), report.count(Verdict::Ignored)), (1, 1), "{report}");
    assert_eq!(inbox.broker.queue_stats("inbox").total, 0, "both deleted");
}

#[test]
fn a_daemon_left_with_no_handler_refuses_to_build_and_says_what_to_write() {
    // An empty selection leaves none (no_handlers.rs has a binary that links none).
    let broker = MemoryBroker::new();
    broker.create_queue("billing", QueueOptions::default());
    let builder = DaemonBuilder::new("billing").handler::<take_order>().select_handlers(Vec::<String>::new());
    let error = builder.build(broker.subscriber("billing").unwrap()).unwrap_err();
    assert_eq!(error, HandlerSetError::NoHandlers { daemon: "billing".into() });
    let text = error.to_string();
    for words in ["`billing`", "use my_handlers as _;", "DaemonBuilder::handler::<", "allow_no_handlers"] {
        assert!(text.contains(words), "`{words}` missing from: {text}");
    }
}

#[test]
fn select_handlers_picks_among_the_explicit_handlers() {
    let calls = Arc::new(Calls::default());
    let both = || {
        DaemonBuilder::new("both")
            .handler::<take_order>()
            .handler::<take_refund>()
            .collaborator(calls.clone())
    };
    assert_eq!(both().handler_table().unwrap().media_types(), [ORDER, REFUND]);
    // By its last segment or its full path.
    assert_eq!(both().select_handlers(["take_refund"]).handler_table().unwrap().media_types(), [REFUND]);
    assert_eq!(
        both().select_handlers(["registration::take_order"]).handler_table().unwrap().media_types(),
        [ORDER]
    );
    assert_eq!(
        both().select_handlers(["take_order", "nope"]).handler_table().unwrap_err(),
        HandlerSetError::UnknownHandler("nope".into())
    );
    // A linked handler that was not registered cannot be selected either.
    let only_order = DaemonBuilder::new("orders").handler::<take_order>().collaborator(calls.clone());
    assert_eq!(
        only_order.select_handlers(["take_refund"]).handler_table().unwrap_err(),
        HandlerSetError::UnknownHandler("take_refund".into())
    );
    // Without explicit handlers, the selection is made among the linked ones.
    let linked =
        DaemonBuilder::new("linked").collaborator(calls).select_handlers(["take_order", "take_refund"]);
    assert_eq!(linked.handler_table().unwrap().media_types(), [ORDER, REFUND]);
}

#[tokio::test]
async fn on_outcome_is_called_once_per_message_with_its_verdict_and_reason() {
    /// Succeeds on order 1, skips order 2, asks for a retry of order 3, fails the others.
    #[handler]
    async fn judge(order: Order, calls: &Arc<Calls>) -> Result<(), HandlerError> {
        calls.record("judge");
        match order.id {
            1 => Ok(()),
            2 => Err(HandlerError::skip("already shipped")),
            3 => Err(HandlerError::retry_after(Duration::from_secs(60))),
            _ => Err(HandlerError::failed("out of stock")),
        }
    }

    let inbox = Inbox::new();
    let mut ids = Vec::new();
    for id in 1..=4 {
        ids.push(inbox.send_message(&Order { id }).await);
    }
    let not_json = inbox.send("not json").await;
    let bad_field = inbox.send(format!(r#"{{"mediaType": "{ORDER}", "id": "one"}}"#)).await;
    let unknown = inbox.send_message(&Receipt { id: 9 }).await;
    let expired = inbox.send(encode(&Order { id: 1 }, &OpaqueData::new().with_ttl(0)).unwrap()).await;
    let report = inbox.run(inbox.daemon().handler::<judge>()).await;

    assert_eq!(inbox.outcomes.lock().unwrap().len(), 8, "one call per message");
    assert_eq!(report.total(), 8, "{report}");
    assert_eq!(inbox.calls.of("judge"), 4);
    let expected: [(&str, Verdict, Option<&str>); 8] = [
        (&ids[0], Verdict::Succeeded, None),
        (&ids[1], Verdict::Skipped, Some("already shipped")),
        (&ids[2], Verdict::Retried, Some("retry requested after 60s")),
        (&ids[3], Verdict::Failed, Some("out of stock")),
        (&not_json, Verdict::Failed, Some("not valid JSON")),
        (&bad_field, Verdict::Failed, Some(r#"invalid type: string "one", expected i64"#)),
        (&unknown, Verdict::Ignored, Some("no handler for this media type")),
        (&expired, Verdict::Expired, Some("x-request-ttl is 0")),
    ];
    for (id, verdict, words) in expected {
        let handled = inbox.outcome(id);
        assert_eq!(handled.outcome.verdict, verdict, "{handled:?}");
        assert_eq!(handled.receive_count, 1, "{handled:?}");
        match words {
            None => assert_eq!(handled.outcome.reason, None, "{handled:?}"),
            Some(words) => {
                let reason = handled.outcome.reason.as_deref().unwrap_or_default();
                assert!(reason.contains(words), "`{words}` not in `{reason}`");
            }
        }
    }
    // What the hook says beside the verdict.
    let judged = inbox.outcome(&ids[0]);
    assert_eq!(judged.media_type.as_deref(), Some(ORDER));
    assert_eq!(
        judged.handler,
        // A handler declared in a fn is named by its module, as `module_path!` names it.
        Some("registration::judge")
    );
    assert!(judged.published.is_empty());
    assert_eq!(inbox.outcome(&not_json).media_type, None, "no envelope to read it from");
    assert_eq!(inbox.outcome(&unknown).media_type.as_deref(), Some(Receipt::MEDIA_TYPE));
    assert_eq!(inbox.outcome(&unknown).handler, None);
}

/// A renamed import and an alias of the context type.
use pubsub_core::MessageContext as Ctx;
type Context = MessageContext;

/// A collaborator, whatever its argument is called.
#[derive(Clone, Default)]
struct Tally(Arc<AtomicUsize>);

/// What the handlers below saw: (message id from their context, tally they were given).
#[derive(Default)]
struct SeenIds(Mutex<Vec<String>>);

#[tokio::test]
async fn the_context_is_told_by_its_type_whatever_it_is_called() {
    #[handler]
    async fn with_renamed_import(_order: Order, ctx: &Ctx, seen: &Arc<SeenIds>) {
        seen.0.lock().unwrap().push(ctx.message_id().to_owned());
    }

    #[handler]
    async fn with_alias(_refund: Refund, message: &Context, seen: &Arc<SeenIds>) {
        seen.0.lock().unwrap().push(message.message_id().to_owned());
    }

    /// `context` here is a collaborator, not the message context.
    #[handler]
    async fn with_a_collaborator_named_context(_receipt: Receipt, context: &Tally) {
        context.0.fetch_add(1, Ordering::SeqCst);
    }

    let inbox = Inbox::new();
    let order = inbox.send_message(&Order { id: 1 }).await;
    let refund = inbox.send_message(&Refund { id: 2 }).await;
    let receipt = inbox.send_message(&Receipt { id: 3 }).await;
    let seen = Arc::new(SeenIds::default());
    let tally = Tally::default();
    let daemon = || {
        inbox
            .daemon()
            .handler::<with_renamed_import>()
            .handler::<with_alias>()
            .handler::<with_a_collaborator_named_context>()
            .collaborator(seen.clone())
    };
    // The collaborator named `context` is checked for like any other.
    assert!(matches!(
        daemon().handler_table(),
        Err(HandlerSetError::MissingCollaborator { type_name, .. }) if type_name.ends_with("Tally")
    ));
    let report = inbox.run(daemon().collaborator(tally.clone())).await;

    assert_eq!(report.count(Verdict::Succeeded), 3, "{report}");
    let mut got = seen.0.lock().unwrap().clone();
    got.sort();
    let mut expected = vec![order, refund];
    expected.sort();
    assert_eq!(got, expected, "each handler read its own message's id from the context");
    assert_eq!(tally.0.load(Ordering::SeqCst), 1);
    assert_eq!(inbox.outcome(&receipt).outcome.verdict, Verdict::Succeeded);
}

#[tokio::test]
async fn publishing_in_a_daemon_without_a_producer_fails_and_says_so() {
    #[handler]
    async fn issues_receipt(order: Order, context: &MessageContext) -> Result<(), HandlerError> {
        context.publish(&Receipt { id: order.id })?;
        Ok(())
    }

    let inbox = Inbox::new();
    let order = inbox.send_message(&Order { id: 1 }).await;
    let report = inbox.run(inbox.daemon().handler::<issues_receipt>()).await;
    assert_eq!(report.count(Verdict::Failed), 1, "{report}");
    let handled = inbox.outcome(&order);
    let reason = handled.outcome.reason.as_deref().unwrap();
    assert!(reason.contains("the daemon has no producer"), "{reason}");
    assert!(reason.contains("DaemonBuilder::producer"), "{reason}");
    assert!(!reason.contains("TopicMap::route"), "{reason}");
    assert_eq!(inbox.broker.queue_stats("inbox").in_flight, 1, "kept for a retry");
}
