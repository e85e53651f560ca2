//! The consumer: receive a batch, and acknowledge or nack each message yourself, or let a
//! scope do it (the seed's context manager).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::backoff::BackoffPolicy;
use crate::envelope::{decode_envelope, Decoded, Envelope};
use crate::error::DecodeError;
use crate::message::Message;
use crate::payload::{no_store, pointer_in, ObjectStore, PayloadPointer, Resolver};
use crate::transport::{
    EntryError, ReceivedMessage, Subscriber, TransportError, VisibilityChange, MAX_BATCH,
};

/// Reads one queue a batch at a time.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pubsub_core::{Consumer, MemoryBroker, UntypedMessage};
///
/// let broker = MemoryBroker::new();
/// broker.create_queue("work", Default::default());
/// broker.send("work", r#"{"mediaType": "application/vnd.acme.pubsub.job", "id": "j-1"}"#).await?;
///
/// let consumer = Consumer::new(broker.subscriber("work")?);
/// for delivery in consumer.consume().await? {
///     let job = delivery.decode::<UntypedMessage>()?;
///     assert_eq!(job.message.content["id"], "j-1");
///     delivery.ack().await?;
/// }
/// # Ok(())
/// # }
/// ```
pub struct Consumer<S> {
    subscriber: Arc<S>,
    max_messages: usize,
    wait_time: Duration,
    backoff: BackoffPolicy,
    resolver: Resolver,
}

impl<S: Subscriber> Consumer<S> {
    /// Up to ten messages per call, waiting up to 1 s for the first (the seed's defaults).
    pub fn new(subscriber: S) -> Consumer<S> {
        Consumer {
            subscriber: Arc::new(subscriber),
            max_messages: MAX_BATCH,
            wait_time: Duration::from_secs(1),
            backoff: BackoffPolicy::default(),
            resolver: Resolver::default(),
        }
    }

    /// How many messages one [`consume`](Consumer::consume) returns at most (1 to 10).
    pub fn max_messages(mut self, max: usize) -> Consumer<S> {
        self.max_messages = max.clamp(1, MAX_BATCH);
        self
    }

    /// How long one [`consume`](Consumer::consume) waits for a first message.
    pub fn wait_time(mut self, wait: Duration) -> Consumer<S> {
        self.wait_time = wait;
        self
    }

    /// The delay of a nack that names none, and of a failed scope.
    pub fn backoff(mut self, backoff: BackoffPolicy) -> Consumer<S> {
        self.backoff = backoff;
        self
    }

    /// The object store (S3) that the bodies of messages that come as pointers are read from
    /// (see [`payload`](crate::payload)), on receipt, all of a batch at once: then
    /// [`Delivery::decode`] decodes the whole message, whether the pointer was the SQS body or
    /// an SNS notification's `Message`. An object that is missing or cannot be read makes
    /// `decode` fail with [`DecodeError::PayloadUnavailable`], naming bucket and key; so does a
    /// pointer when no store is given.
    pub fn object_store(mut self, store: impl ObjectStore) -> Consumer<S> {
        self.resolver = Resolver::new(Some(std::sync::Arc::new(store)));
        self
    }

    /// The next batch; empty when the queue had nothing within the wait time.
    pub async fn consume(&self) -> Result<Vec<Delivery<S>>, TransportError> {
        self.consume_up_to(self.max_messages).await
    }

    /// The next batch of at most `max` messages (and at most the consumer's maximum).
    pub async fn consume_up_to(&self, max: usize) -> Result<Vec<Delivery<S>>, TransportError> {
        let max = max.clamp(1, self.max_messages);
        let messages = self.subscriber.receive(max, self.wait_time).await?;
        let delivery = |message, payload| Delivery {
            message,
            payload,
            subscriber: self.subscriber.clone(),
            backoff: self.backoff,
        };
        // Without a store, nothing is looked at here: `decode` says what a pointer needs.
        if self.resolver.store().is_none() {
            return Ok(messages.into_iter().map(|message| delivery(message, None)).collect());
        }
        let resolved = self.resolver.resolve_all(messages).await;
        Ok(resolved.into_iter().map(|(message, payload)| delivery(message, payload)).collect())
    }

    /// Deletes every delivery from the queue: one request per ten (what one
    /// [`consume`](Consumer::consume) returns takes one request), where
    /// [`Delivery::ack`] takes one each. One result per delivery, in order; an entry that
    /// failed (a stale receipt, say) does not stop the others.
    ///
    /// `Err` when a whole request failed: the requests before it took effect, the ones after
    /// it were not sent; acking again is harmless. The deliveries must come from this
    /// consumer (else `Err(TransportError::Invalid)`, and nothing is sent).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let broker = pubsub_core::MemoryBroker::new();
    /// # broker.create_queue("work", Default::default());
    /// # broker.send("work", r#"{"mediaType": "application/vnd.acme.pubsub.job"}"#).await?;
    /// let consumer = pubsub_core::Consumer::new(broker.subscriber("work")?);
    /// let deliveries = consumer.consume().await?;
    /// for (delivery, result) in deliveries.iter().zip(consumer.ack_all(&deliveries).await?) {
    ///     if let Err(error) = result {
    ///         eprintln!("{}: not acknowledged: {error}", delivery.message().message_id);
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn ack_all(
        &self,
        deliveries: &[Delivery<S>],
    ) -> Result<Vec<Result<(), EntryError>>, TransportError> {
        self.check_own(deliveries)?;
        let mut results = Vec::with_capacity(deliveries.len());
        for chunk in deliveries.chunks(MAX_BATCH) {
            let handles: Vec<&str> = chunk.iter().map(|d| d.message.receipt_handle.as_str()).collect();
            results.extend(entry_results(chunk.len(), self.subscriber.ack_batch(&handles).await?));
        }
        Ok(results)
    }

    /// Makes every delivery visible again after `delay`, or each after the backoff policy's
    /// delay for its receive count: one request per ten, as [`ack_all`](Consumer::ack_all),
    /// with the same results and errors.
    pub async fn nack_all(
        &self,
        deliveries: &[Delivery<S>],
        delay: Option<Duration>,
    ) -> Result<Vec<Result<(), EntryError>>, TransportError> {
        self.check_own(deliveries)?;
        let mut results = Vec::with_capacity(deliveries.len());
        for chunk in deliveries.chunks(MAX_BATCH) {
            let changes: Vec<_> = chunk.iter().map(|d| d.visibility_change(delay)).collect();
            results
                .extend(entry_results(chunk.len(), self.subscriber.change_visibility_batch(&changes).await?));
        }
        Ok(results)
    }

    /// A receipt handle means something only to its own queue.
    fn check_own(&self, deliveries: &[Delivery<S>]) -> Result<(), TransportError> {
        if deliveries.iter().all(|d| Arc::ptr_eq(&d.subscriber, &self.subscriber)) {
            Ok(())
        } else {
            Err(TransportError::Invalid("a delivery received by another consumer".to_owned()))
        }
    }
}

/// One result per entry: a transport that answers for fewer entries than it was sent leaves
/// the rest unconfirmed, which must not read as acknowledged.
fn entry_results(
    count: usize,
    results: Vec<Result<(), EntryError>>,
) -> impl Iterator<Item = Result<(), EntryError>> {
    let missing = count.saturating_sub(results.len());
    results.into_iter().take(count).chain(std::iter::repeat_n(
        Err(EntryError {
            code: "NoResult".to_owned(),
            message: "the transport returned no result for this entry".to_owned(),
            retryable: true,
        }),
        missing,
    ))
}

impl<S> fmt::Debug for Consumer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("max_messages", &self.max_messages)
            .field("wait_time", &self.wait_time)
            .finish_non_exhaustive()
    }
}

/// One received message, to be acknowledged or nacked.
pub struct Delivery<S> {
    message: ReceivedMessage,
    /// The pointer it came as, resolved or not.
    payload: Option<Result<PayloadPointer, DecodeError>>,
    subscriber: Arc<S>,
    backoff: BackoffPolicy,
}

/// Why a scope did not finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ScopeError<E> {
    /// The closure failed; the message was nacked (unless the nack itself failed: `nacked`).
    #[error("the scope failed and its message was {}: {error}", if *.nacked { "nacked" } else { "left to its visibility timeout" })]
    Failed {
        /// The closure's error.
        error: E,
        /// Whether the nack went through.
        nacked: bool,
    },
    /// The closure succeeded but the acknowledgement failed; the message will reappear.
    #[error("the scope succeeded but its acknowledgement failed: {0}")]
    Ack(TransportError),
}

impl<S: Subscriber> Delivery<S> {
    /// The message as received; if it came as a pointer that was resolved, with the whole
    /// body in its place.
    pub fn message(&self) -> &ReceivedMessage {
        &self.message
    }

    /// The object its body was offloaded to, if it came as a pointer (see
    /// [`Consumer::object_store`]): to delete once the message is acknowledged, if this
    /// queue is its only reader.
    pub fn payload(&self) -> Option<&PayloadPointer> {
        match &self.payload {
            Some(Ok(pointer)) => Some(pointer),
            Some(Err(DecodeError::PayloadUnavailable { pointer, .. })) => Some(pointer),
            _ => None,
        }
    }

    /// Decodes it as `M`: a derived type (its media type checked), or
    /// [`UntypedMessage`](crate::UntypedMessage) for any media type.
    pub fn decode<M: Message>(&self) -> Result<Decoded<M>, DecodeError> {
        if let Some(Err(DecodeError::PayloadUnavailable { pointer, reason })) = &self.payload {
            return Err(DecodeError::PayloadUnavailable { pointer: pointer.clone(), reason: reason.clone() });
        }
        let envelope = Envelope::read(&self.message.body);
        if let Some((pointer, _)) = pointer_in(&self.message.body, &envelope) {
            return Err(no_store(&pointer));
        }
        decode_envelope(envelope?)
    }

    /// Deletes it from the queue (one request; [`Consumer::ack_all`] takes one per ten).
    pub async fn ack(&self) -> Result<(), TransportError> {
        let results = self.subscriber.ack_batch(&[&self.message.receipt_handle]).await?;
        single(results)
    }

    /// Makes it visible again after `delay`, or after the backoff policy's delay.
    pub async fn nack(&self, delay: Option<Duration>) -> Result<(), TransportError> {
        single(self.subscriber.change_visibility_batch(&[self.visibility_change(delay)]).await?)
    }

    fn visibility_change(&self, delay: Option<Duration>) -> VisibilityChange {
        let timeout = delay.unwrap_or_else(|| self.backoff.delay(self.message.receive_count));
        VisibilityChange { receipt_handle: self.message.receipt_handle.clone(), timeout }
    }

    /// Awaits `work` (which may borrow this delivery): acks when it returns `Ok`, nacks
    /// (backoff delay) when it returns `Err`.
    ///
    /// ```no_run
    /// # async fn f(delivery: pubsub_core::consumer::Delivery<pubsub_core::memory::MemorySubscriber>) {
    /// let result = delivery
    ///     .scope(async {
    ///         let message = delivery.decode::<pubsub_core::UntypedMessage>()?;
    ///         println!("{}", message.media_type);
    ///         Ok::<(), pubsub_core::codec::DecodeError>(())
    ///     })
    ///     .await;
    /// # }
    /// ```
    pub async fn scope<T, E>(&self, work: impl Future<Output = Result<T, E>>) -> Result<T, ScopeError<E>> {
        match work.await {
            Ok(value) => {
                self.ack().await.map_err(ScopeError::Ack)?;
                Ok(value)
            }
            Err(error) => {
                let nacked = self.nack(None).await.is_ok();
                Err(ScopeError::Failed { error, nacked })
            }
        }
    }
}

impl<S> fmt::Debug for Delivery<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery").field("message_id", &self.message.message_id).finish_non_exhaustive()
    }
}

fn single(results: Vec<Result<(), crate::transport::EntryError>>) -> Result<(), TransportError> {
    match results.into_iter().next() {
        Some(Ok(())) => Ok(()),
        Some(Err(error)) if error.retryable => Err(TransportError::Unavailable(error.to_string())),
        Some(Err(error)) => Err(TransportError::Invalid(error.to_string())),
        None => Err(TransportError::Invalid("the transport returned no result".to_owned())),
    }
}
