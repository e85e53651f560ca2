//! Every result path of the results table, through `#[handler]` and the test kit. Each test
//! declares the handler that takes the path it checks and runs that one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pubsub_core::testing::{HandlerTest, TestRun};
use pubsub_core::{
    encode, handler, handlers::HandlerFn, handlers::HandlerSetError, outcome::Disposition, DaemonBuilder,
    HandlerError, MessageContext, OpaqueData, PubSubMessage, UntypedMessage, Verdict,
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

/// Handler calls, read by the test after the run.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicUsize>);

impl Counter {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// What every handler here does first: count the call and publish an event, so that each
/// test sees whether the deferred message left.
fn count_and_publish(
    command: &Command,
    context: &MessageContext,
    counter: &Counter,
) -> Result<(), HandlerError> {
    counter.0.fetch_add(1, Ordering::SeqCst);
    context.publish(&Event { what: format!("saw {}", command.action) })?;
    Ok(())
}

#[handler]
async fn on_command(
    command: Command,
    context: &MessageContext,
    counter: &Counter,
) -> Result<(), HandlerError> {
    count_and_publish(&command, context, counter)
}

#[handler(media_type = "application/vnd.acme.pubsub._.created.*")]
async fn on_created(message: UntypedMessage) {
    assert!(message.content.contains_key("uri"));
}

/// Runs the handler `H` on a command, with a request id; returns the run and the call count.
async fn run<H: HandlerFn>() -> (TestRun, usize) {
    let counter = Counter::default();
    let run = HandlerTest::new()
        .handler::<H>()
        .collaborator(counter.clone())
        .request_id("req-1")
        .run(&Command { action: "go".into() })
        .await;
    (run, counter.get())
}

#[tokio::test]
async fn success_deletes_and_sends_what_was_published() {
    let (run, calls) = run::<on_command>().await;
    assert_eq!(calls, 1);
    assert_eq!(run.verdict(), Verdict::Succeeded);
    assert_eq!(run.outcome.disposition, Disposition::Delete);
    let events = run.published::<Event>();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].message.what, "saw go");
    assert_eq!(events[0].opaque_data.request_id(), Some("req-1"), "the request id is carried on");
    assert_eq!(events[0].opaque_data.ttl(), Some(31), "the hop budget is decremented from 32");
}

#[tokio::test]
async fn skip_deletes_and_still_sends() {
    #[handler]
    async fn skips(
        command: Command,
        context: &MessageContext,
        counter: &Counter,
    ) -> Result<(), HandlerError> {
        count_and_publish(&command, context, counter)?;
        Err(HandlerError::skip("nothing to do"))
    }

    let (run, calls) = run::<skips>().await;
    assert_eq!(calls, 1);
    assert_eq!(run.verdict(), Verdict::Skipped);
    assert_eq!(run.outcome.reason.as_deref(), Some("nothing to do"));
    assert_eq!(run.outcome.disposition, Disposition::Delete);
    assert_eq!(run.published.len(), 1);
}

#[tokio::test]
async fn retry_nacks_with_the_asked_delay_and_sends_nothing() {
    #[handler]
    async fn retries(
        command: Command,
        context: &MessageContext,
        counter: &Counter,
    ) -> Result<(), HandlerError> {
        count_and_publish(&command, context, counter)?;
        Err(HandlerError::retry_after(Duration::from_secs(42)))
    }

    let (run, calls) = run::<retries>().await;
    assert_eq!(calls, 1);
    assert_eq!(run.verdict(), Verdict::Retried);
    assert_eq!(run.outcome.disposition, Disposition::Retry(Duration::from_secs(42)));
    assert!(run.published.is_empty(), "deferred messages do not leave on a retry");
}

#[tokio::test]
async fn failure_and_panic_are_failed_with_backoff_and_send_nothing() {
    /// Fails with a std error, through `?`.
    #[handler]
    async fn fails(
        command: Command,
        context: &MessageContext,
        counter: &Counter,
    ) -> Result<(), HandlerError> {
        count_and_publish(&command, context, counter)?;
        "boom".parse::<u32>()?;
        Ok(())
    }

    #[handler]
    async fn fails_with_words(
        command: Command,
        context: &MessageContext,
        counter: &Counter,
    ) -> Result<(), HandlerError> {
        count_and_publish(&command, context, counter)?;
        Err(HandlerError::failed(format!("cannot {}", command.action)))
    }

    #[handler]
    async fn panics(
        command: Command,
        context: &MessageContext,
        counter: &Counter,
    ) -> Result<(), HandlerError> {
        count_and_publish(&command, context, counter)?;
        panic!("handler exploded")
    }

    let runs = [
        ("fails", run::<fails>().await),
        ("words", run::<fails_with_words>().await),
        ("panics", run::<panics>().await),
    ];
    for (name, (run, calls)) in &runs {
        assert_eq!(*calls, 1, "{name}");
        assert_eq!(run.verdict(), Verdict::Failed, "{name}");
        assert_eq!(run.outcome.disposition, Disposition::Retry(Duration::from_secs(5)), "{name}");
        assert!(run.published.is_empty(), "{name}");
    }
    let reason = |i: usize| runs[i].1 .0.outcome.reason.clone().unwrap();
    assert!(reason(0).contains("invalid digit"), "{}", reason(0));
    assert_eq!(reason(1), "cannot go");
    assert!(reason(2).contains("handler exploded"), "{}", reason(2));
}

#[tokio::test]
async fn an_invalid_or_malformed_message_fails_on_its_own() {
    let test = HandlerTest::new().handler::<on_command>().collaborator(Counter::default());
    let invalid = r#"{"mediaType": "application/vnd.acme.pubsub.command", "action": ""}"#;
    let run = test.run_body(invalid).await;
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(
        run.outcome.reason.as_deref().unwrap().contains("`action` has the wrong length"),
        "{:?}",
        run.outcome
    );

    let run = test.run_body("{not json").await;
    assert_eq!(run.verdict(), Verdict::Failed);
    assert!(run.outcome.reason.as_deref().unwrap().contains("not valid JSON"));
}

#[tokio::test]
async fn a_spent_hop_budget_expires_the_message_unhandled() {
    let counter = Counter::default();
    let test = HandlerTest::new().handler::<on_command>().collaborator(counter.clone());
    let run =
        test.clone().opaque_data(OpaqueData::new().with_ttl(0)).run(&Command { action: "go".into() }).await;
    assert_eq!(run.verdict(), Verdict::Expired);
    assert_eq!(run.outcome.disposition, Disposition::Delete);
    assert!(run.published.is_empty());
    assert_eq!(counter.get(), 0, "the handler never ran");

    // A chain of handlers publishing from each other stops when the budget is spent.
    let mut opaque = OpaqueData::new();
    let mut hops = 0;
    loop {
        let run = test.clone().opaque_data(opaque.clone()).run(&Command { action: "go".into() }).await;
        if run.verdict() == Verdict::Expired {
            break;
        }
        hops += 1;
        opaque = run.published::<Event>()[0].opaque_data.clone();
    }
    assert_eq!(hops, 32, "the default budget allows 32 hops");
    assert_eq!(counter.get(), 32);
}

#[tokio::test]
async fn a_message_no_handler_takes_is_ignored_and_deleted() {
    let other = encode(&Event { what: "x".into() }, &OpaqueData::new()).unwrap();
    let run =
        HandlerTest::new().handler::<on_command>().collaborator(Counter::default()).run_body(&other).await;
    assert_eq!(run.verdict(), Verdict::Ignored);
    assert_eq!(run.outcome.disposition, Disposition::Delete);
}

#[tokio::test]
async fn untyped_handlers_take_a_pattern() {
    assert_eq!(<on_created as HandlerFn>::HANDLER.media_type(), "application/vnd.acme.pubsub._.created.*");
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
    let error = DaemonBuilder::new("test").handler::<on_command>().handler_table().unwrap_err();
    assert!(
        matches!(&error, HandlerSetError::MissingCollaborator { handler, type_name }
        if handler.ends_with("::on_command") && type_name.ends_with("Counter")),
        "{error}"
    );
    assert!(DaemonBuilder::new("test")
        .handler::<on_command>()
        .collaborator(Counter::default())
        .handler_table()
        .is_ok());
    assert_eq!(
        DaemonBuilder::new("test")
            .handler::<on_command>()
            .select_handlers(["nope"])
            .handler_table()
            .unwrap_err(),
        HandlerSetError::UnknownHandler("nope".into())
    );
}
