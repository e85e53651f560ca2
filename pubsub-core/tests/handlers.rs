//! Every result path of the results table, through `#[handler]` and the test kit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pubsub_core::testing::HandlerTest;
use pubsub_core::{
    encode, handler, handlers::HandlerSetError, outcome::Disposition, DaemonBuilder, HandlerError,
    MessageContext, OpaqueData, PubSubMessage, UntypedMessage, Verdict,
};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.command"]
struct Command {
    #[validate(length(min = 1))]
    action: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.event"]
struct Event {
    what: String,
}

struct Counter(AtomicUsize);

/// Publishes an event, then does what the command says.
#[handler]
async fn on_command(
    command: Command,
    context: &MessageContext,
    counter: &Counter,
) -> Result<(), HandlerError> {
    counter.0.fetch_add(1, Ordering::SeqCst);
    context.publish(&Event { what: format!("saw {}", command.action) })?;
    match command.action.as_str() {
        "succeed" => Ok(()),
        "skip" => Err(HandlerError::skip("nothing to do")),
        "retry" => Err(HandlerError::retry_after(Duration::from_secs(42))),
        "fail" => Err("boom".parse::<u32>().map(|_| ()).unwrap_err().into()),
        "panic" => panic!("handler exploded"),
        other => Err(HandlerError::failed(format!("unknown action {other}"))),
    }
}

#[handler(media_type = "application/vnd.acme.pubsub._.created.*")]
async fn on_created(message: UntypedMessage) {
    assert!(message.content.contains_key("uri"));
}

fn test() -> HandlerTest {
    HandlerTest::new().collaborator(Counter(AtomicUsize::new(0)))
}

async fn run(action: &str) -> pubsub_core::testing::TestRun {
    test().request_id("req-1").run(&Command { action: action.into() }).await
}

#[tokio::test]
async fn success_deletes_and_sends_what_was_published() {
    let run = run("succeed").await;
    assert_eq!(run.verdict(), Verdict::Succeeded);
    assert_eq!(run.outcome.disposition, Disposition::Delete);
    let events = run.published::<Event>();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].message.what, "saw succeed");
    assert_eq!(events[0].opaque_data.request_id(), Some("req-1"), "the request id is carried on");
    assert_eq!(events[0].opaque_data.ttl(), Some(31), "the hop budget is decremented from 32");
}

#[tokio::test]
async fn skip_deletes_and_still_sends() {
    let run = run("skip").await;
    assert_eq!(run.verdict(), Verdict::Skipped);
    assert_eq!(run.outcome.reason.as_deref(), Some("nothing to do"));
    assert_eq!(run.outcome.disposition, Disposition::Delete);
    assert_eq!(run.published.len(), 1);
}

#[tokio::test]
async fn retry_nacks_with_the_asked_delay_and_sends_nothing() {
    let run = run("retry").await;
    assert_eq!(run.verdict(), Verdict::Retried);
    assert_eq!(run.outcome.disposition, Disposition::Retry(Duration::from_secs(42)));
    assert!(run.published.is_empty(), "deferred messages do not leave on a retry");
}

#[tokio::test]
async fn failure_and_panic_are_failed_with_backoff_and_send_nothing() {
    for action in ["fail", "panic", "other"] {
        let run = run(action).await;
        assert_eq!(run.verdict(), Verdict::Failed, "{action}");
        assert_eq!(run.outcome.disposition, Disposition::Retry(Duration::from_secs(5)), "{action}");
        assert!(run.published.is_empty(), "{action}");
    }
    let panicked = run("panic").await;
    assert!(panicked.outcome.reason.unwrap().contains("handler exploded"));
    let failed = run("fail").await;
    assert!(failed.outcome.reason.unwrap().contains("invalid digit"));
}

#[tokio::test]
async fn an_invalid_or_malformed_message_fails_on_its_own() {
    let invalid = r#"{"mediaType": "application/vnd.acme.pubsub.command", "action": ""}"#;
    let run = test().handler::<on_command>().run_body(invalid).await;
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(
        run.outcome.reason.as_deref().unwrap().contains("`action` has the wrong length"),
        "{:?}",
        run.outcome
    );

    let run = test().handler::<on_command>().run_body("{not json").await;
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(run.outcome.reason.as_deref().unwrap().contains("not valid JSON"));
}

#[tokio::test]
async fn a_spent_hop_budget_expires_the_message_unhandled() {
    let counter_before = AtomicUsize::new(0);
    let run = HandlerTest::new()
        .collaborator(Counter(counter_before))
        .opaque_data(OpaqueData::new().with_ttl(0))
        .run(&Command { action: "succeed".into() })
        .await;
    assert_eq!(run.verdict(), Verdict::Expired);
    assert_eq!(run.outcome.disposition, Disposition::Delete);
    assert!(run.published.is_empty());

    // A chain of handlers publishing from each other stops when the budget is spent.
    let mut opaque = OpaqueData::new();
    let mut hops = 0;
    loop {
        let run = test().opaque_data(opaque.clone()).run(&Command { action: "succeed".into() }).await;
        if run.verdict() == Verdict::Expired {
            break;
        }
        hops += 1;
        opaque = run.published::<Event>()[0].opaque_data.clone();
    }
    assert_eq!(hops, 32, "the default budget allows 32 hops");
}

#[tokio::test]
async fn a_message_no_handler_takes_is_ignored_and_deleted() {
    let other = encode(&Event { what: "x".into() }, &OpaqueData::new()).unwrap();
    let run = test().handler::<on_command>().run_body(&other).await;
    assert_eq!(run.verdict(), Verdict::Ignored);
    assert_eq!(run.outcome.disposition, Disposition::Delete);
}

#[tokio::test]
async fn untyped_handlers_take_a_pattern() {
    assert_eq!(
        <on_created as pubsub_core::handlers::HandlerFn>::HANDLER.media_type(),
        "application/vnd.acme.pubsub._.created.*"
    );
    let body = pubsub_core::encode(
        &UntypedMessage::new("application/vnd.acme.pubsub._.created.widget", serde_json::json!({"uri": "u"}))
            .unwrap(),
        &OpaqueData::new(),
    )
    .unwrap();
    assert_eq!(
        HandlerTest::new().handler::<on_created>().run_body(&body).await.verdict(),
        Verdict::Succeeded
    );
}

#[test]
fn a_missing_collaborator_is_reported_before_any_message() {
    let error = DaemonBuilder::new("test").select_handlers(["on_command"]).handler_table().unwrap_err();
    assert!(
        matches!(&error, HandlerSetError::MissingCollaborator { handler, type_name }
        if handler.ends_with("::on_command") && type_name.ends_with("Counter")),
        "{error}"
    );
    assert!(DaemonBuilder::new("test")
        .select_handlers(["on_command"])
        .collaborator(Counter(AtomicUsize::new(0)))
        .handler_table()
        .is_ok());
    assert_eq!(
        DaemonBuilder::new("test").select_handlers(["nope"]).handler_table().unwrap_err(),
        HandlerSetError::UnknownHandler("nope".into())
    );
}
