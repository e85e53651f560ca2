//! An idempotency layer: a message whose key was handled already is SKIPPED (deleted, not
//! handled again), so a duplicate (a producer's retry, SNS's at-least-once delivery, a
//! redelivery after a lost delete) does not charge a card twice.
//!
//! The handled keys live behind a trait, [`IdempotencyStore`]; this example keeps them in
//! memory ([`MemoryStore`]), which is right for one process. Across processes back the trait
//! with a shared store: Redis (`SET key in-flight NX PX <claim ttl>` to claim, `SET key done PX
//! <ttl>` to complete, `DEL` to release) or DynamoDB (a conditional `PutItem` with
//! `attribute_not_exists(pk) OR expires_at < :now` to claim).
//!
//! ```text
//! cargo run --example idempotency
//! ```
//!
//! The key is the message's id unless told otherwise. SNS gives every delivery of a message to
//! a queue its own SQS message id, so to catch a publisher's duplicates key by what identifies
//! the work, as `main` does with the payment id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use pubsub_core::memory::QueueOptions;
use pubsub_core::middleware::{BoxError, HandlerRequest};
use pubsub_core::outcome::Outcome;
use pubsub_core::transport::BoxFuture;
use pubsub_core::{handler, DaemonBuilder, HandlerError, MemoryBroker, PubSubMessage, Verdict};
use serde::{Deserialize, Serialize};
use tower::{Layer, Service};
use validator::Validate;

/// What a store says when a key is claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody has the key: the caller handles the message.
    Fresh,
    /// Another handling of the key is under way (and its claim has not expired).
    InFlight,
    /// The key was handled.
    Done,
}

/// Where handled keys are kept. Every method may fail (the store is a network service); a
/// failure fails the message, which is then retried.
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for one handling, atomically: only one caller gets [`Claim::Fresh`] until
    /// the claim is completed, released, or expires.
    fn claim<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Claim, BoxError>>;
    /// Records that `key` was handled.
    fn complete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BoxError>>;
    /// Gives up the claim on `key` (the handling failed), so that a retry can claim it.
    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// Keys in this process's memory: a claim lasts `claim_ttl` (a handler that died holding one
/// does not block its key forever), a handled key is remembered for `done_ttl`.
pub struct MemoryStore {
    keys: Mutex<HashMap<String, (Claim, Instant)>>,
    claim_ttl: Duration,
    done_ttl: Duration,
}

impl MemoryStore {
    /// A store with the given lifetimes.
    pub fn new(claim_ttl: Duration, done_ttl: Duration) -> MemoryStore {
        MemoryStore { keys: Mutex::new(HashMap::new()), claim_ttl, done_ttl }
    }

    fn set(&self, key: &str, state: Claim, ttl: Duration) {
        self.keys.lock().unwrap().insert(key.to_owned(), (state, Instant::now() + ttl));
    }
}

impl IdempotencyStore for MemoryStore {
    fn claim<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Claim, BoxError>> {
        let mut keys = self.keys.lock().unwrap();
        let now = Instant::now();
        let claim = match keys.get(key) {
            Some((state, expires)) if *expires > now => *state,
            _ => {
                keys.insert(key.to_owned(), (Claim::InFlight, now + self.claim_ttl));
                Claim::Fresh
            }
        };
        Box::pin(std::future::ready(Ok(claim)))
    }

    fn complete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BoxError>> {
        self.set(key, Claim::Done, self.done_ttl);
        Box::pin(std::future::ready(Ok(())))
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BoxError>> {
        self.keys.lock().unwrap().remove(key);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// How a message's key is found; `None` lets the message through unchecked.
type KeyFn = Arc<dyn Fn(&HandlerRequest) -> Option<String> + Send + Sync>;

/// Skips a message whose key was handled; a message whose key is being handled elsewhere is
/// RETRIED after `in_flight_retry`, so that it is checked again once that handling is over.
pub struct IdempotencyLayer<S> {
    store: Arc<S>,
    key: KeyFn,
    in_flight_retry: Duration,
}

impl<S> Clone for IdempotencyLayer<S> {
    fn clone(&self) -> Self {
        IdempotencyLayer {
            store: self.store.clone(),
            key: self.key.clone(),
            in_flight_retry: self.in_flight_retry,
        }
    }
}

impl<S: IdempotencyStore> IdempotencyLayer<S> {
    /// Keyed by the message id; a duplicate being handled is retried after 30 s.
    pub fn new(store: S) -> IdempotencyLayer<S> {
        IdempotencyLayer {
            store: Arc::new(store),
            key: Arc::new(|request: &HandlerRequest| Some(request.context().message_id().to_owned())),
            in_flight_retry: Duration::from_secs(30),
        }
    }

    /// Keyed by `key` instead: what identifies the work, e.g. a payment id.
    pub fn key(mut self, key: impl Fn(&HandlerRequest) -> Option<String> + Send + Sync + 'static) -> Self {
        self.key = Arc::new(key);
        self
    }

    /// How long a duplicate waits while the first is being handled.
    pub fn in_flight_retry(mut self, delay: Duration) -> Self {
        self.in_flight_retry = delay;
        self
    }
}

impl<S, Inner> Layer<Inner> for IdempotencyLayer<S> {
    type Service = Idempotent<S, Inner>;

    fn layer(&self, inner: Inner) -> Self::Service {
        Idempotent { layer: self.clone(), inner }
    }
}

/// The service [`IdempotencyLayer`] makes.
pub struct Idempotent<S, Inner> {
    layer: IdempotencyLayer<S>,
    inner: Inner,
}

impl<S, Inner: Clone> Clone for Idempotent<S, Inner> {
    fn clone(&self) -> Self {
        Idempotent { layer: self.layer.clone(), inner: self.inner.clone() }
    }
}

impl<S, Inner> Service<HandlerRequest> for Idempotent<S, Inner>
where
    S: IdempotencyStore,
    Inner: Service<HandlerRequest, Response = Outcome, Error = BoxError> + Clone + Send + 'static,
    Inner::Future: Send,
{
    type Response = Outcome;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Outcome, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HandlerRequest) -> Self::Future {
        // The service made ready is the one to call; leave a fresh clone in its place.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let Some(key) = (self.layer.key)(&request) else { return Box::pin(inner.call(request)) };
        let (store, retry) = (self.layer.store.clone(), self.layer.in_flight_retry);
        Box::pin(async move {
            match store.claim(&key).await? {
                Claim::Done => Ok(Outcome::deleted(Verdict::Skipped, format!("already handled: `{key}`"))),
                Claim::InFlight => Ok(Outcome::retried(retry, format!("`{key}` is being handled elsewhere"))),
                Claim::Fresh => {
                    let outcome = inner.call(request).await;
                    match &outcome {
                        Ok(done) if done.verdict.deletes() => store.complete(&key).await?,
                        _ => store.release(&key).await?,
                    }
                    outcome
                }
            }
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.charge_requested"]
struct ChargeRequested {
    #[validate(length(min = 1))]
    payment_id: String,
    cents: i64,
}

/// The card charges made, by payment id.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<Vec<String>>>);

#[handler]
async fn charge(request: ChargeRequested, ledger: &Ledger) -> Result<(), HandlerError> {
    ledger.0.lock().unwrap().push(request.payment_id);
    Ok(())
}

/// By payment id: two messages for one payment are one charge.
fn by_payment_id(request: &HandlerRequest) -> Option<String> {
    request.message::<ChargeRequested>().map(|charge| format!("payment:{}", charge.payment_id))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    pubsub_core::logging::init();
    let broker = MemoryBroker::new();
    broker.create_queue("payments", QueueOptions::default());
    // p-1 is sent twice, as a producer that retried after a timeout would.
    for payment_id in ["p-1", "p-2", "p-1"] {
        let message = ChargeRequested { payment_id: payment_id.into(), cents: 1999 };
        broker.send("payments", pubsub_core::encode(&message, &Default::default())?).await?;
    }
    let ledger = Ledger::default();
    let store = MemoryStore::new(Duration::from_secs(60), Duration::from_secs(24 * 60 * 60));
    let daemon = DaemonBuilder::new("payments")
        .handler::<charge>()
        .collaborator(ledger.clone())
        .concurrency(1)
        .wait_time(Duration::from_millis(100))
        .layer_for::<charge>(IdempotencyLayer::new(store).key(by_payment_id))
        .build(broker.subscriber("payments")?)?;
    let report = daemon.run_until_idle().await;
    println!("{report}");
    println!("charged: {:?}", ledger.0.lock().unwrap());
    Ok(())
}

#[cfg(test)]
mod tests {
    use pubsub_core::testing::HandlerTest;

    use super::*;

    fn charge_test(store: &Arc<MemoryStore>, ledger: &Ledger) -> HandlerTest {
        let layer = IdempotencyLayer {
            store: store.clone(),
            key: Arc::new(by_payment_id),
            in_flight_retry: Duration::from_secs(5),
        };
        HandlerTest::new().handler::<charge>().collaborator(ledger.clone()).layer(layer)
    }

    fn payment(id: &str) -> ChargeRequested {
        ChargeRequested { payment_id: id.into(), cents: 100 }
    }

    #[tokio::test]
    async fn a_duplicate_is_skipped_and_charged_once() {
        let store = Arc::new(MemoryStore::new(Duration::from_secs(60), Duration::from_secs(60)));
        let ledger = Ledger::default();
        let test = charge_test(&store, &ledger);
        assert_eq!(test.run(&payment("p-1")).await.verdict(), Verdict::Succeeded);
        let again = test.run(&payment("p-1")).await;
        assert_eq!(again.verdict(), Verdict::Skipped);
        assert_eq!(again.outcome.reason.as_deref(), Some("already handled: `payment:p-1`"));
        assert_eq!(test.run(&payment("p-2")).await.verdict(), Verdict::Succeeded);
        assert_eq!(*ledger.0.lock().unwrap(), ["p-1", "p-2"]);
    }

    #[tokio::test]
    async fn a_duplicate_of_a_message_under_way_is_retried_later() {
        let store = Arc::new(MemoryStore::new(Duration::from_secs(60), Duration::from_secs(60)));
        assert_eq!(store.claim("payment:p-3").await.unwrap(), Claim::Fresh);
        let ledger = Ledger::default();
        let run = charge_test(&store, &ledger).run(&payment("p-3")).await;
        assert_eq!(run.verdict(), Verdict::Retried);
        assert!(ledger.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_handling_releases_its_key_so_the_retry_is_handled() {
        #[handler]
        async fn declines_once(request: ChargeRequested, ledger: &Ledger) -> Result<(), HandlerError> {
            let mut charges = ledger.0.lock().unwrap();
            charges.push(request.payment_id);
            if charges.len() == 1 {
                return Err(HandlerError::failed("the card network timed out"));
            }
            Ok(())
        }
        let store = Arc::new(MemoryStore::new(Duration::from_secs(60), Duration::from_secs(60)));
        let ledger = Ledger::default();
        let test = charge_test(&store, &ledger).handler::<declines_once>();
        assert_eq!(test.run(&payment("p-4")).await.verdict(), Verdict::Failed);
        assert_eq!(test.run(&payment("p-4")).await.verdict(), Verdict::Succeeded);
        assert_eq!(test.run(&payment("p-4")).await.verdict(), Verdict::Skipped);
        assert_eq!(ledger.0.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn the_daemon_charges_each_payment_once() {
        let broker = MemoryBroker::new();
        broker.create_queue("payments", QueueOptions::default());
        for payment_id in ["p-1", "p-2", "p-1", "p-1"] {
            broker
                .send("payments", pubsub_core::encode(&payment(payment_id), &Default::default()).unwrap())
                .await
                .unwrap();
        }
        let ledger = Ledger::default();
        let store = MemoryStore::new(Duration::from_secs(60), Duration::from_secs(60));
        let report = DaemonBuilder::new("payments")
            .handler::<charge>()
            .collaborator(ledger.clone())
            .concurrency(1)
            .wait_time(Duration::from_millis(20))
            .layer_for::<charge>(IdempotencyLayer::new(store).key(by_payment_id))
            .build(broker.subscriber("payments").unwrap())
            .unwrap()
            .run_until_idle()
            .await;
        assert_eq!(report.count(Verdict::Succeeded), 2, "{report}");
        assert_eq!(report.count(Verdict::Skipped), 2, "{report}");
        assert_eq!(*ledger.0.lock().unwrap(), ["p-1", "p-2"]);
        assert!(broker.messages("payments").is_empty());
    }
}
