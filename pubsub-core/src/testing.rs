//! A test kit for users' own tests: run one handler on one message, with a test context,
//! and assert on its result and on what it published, without a daemon or a broker.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use pubsub_core::testing::HandlerTest;
//! use pubsub_core::{handler, HandlerError, MessageContext, Verdict, PubSubMessage};
//! # use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
//! #[media_type = "application/vnd.acme.pubsub.order_placed"]
//! struct OrderPlaced { id: String }
//!
//! #[derive(Serialize, Deserialize, validator::Validate, PubSubMessage)]
//! #[media_type = "application/vnd.acme.pubsub.invoice_due"]
//! struct InvoiceDue { order_id: String }
//!
//! #[handler]
//! async fn bill(order: OrderPlaced, context: &MessageContext) -> Result<(), HandlerError> {
//!     context.publish(&InvoiceDue { order_id: order.id })?;
//!     Ok(())
//! }
//!
//! let run = HandlerTest::new().request_id("req-7").run(&OrderPlaced { id: "o-1".into() }).await;
//! assert_eq!(run.verdict(), Verdict::Succeeded);
//! let invoices = run.published::<InvoiceDue>();
//! assert_eq!(invoices.len(), 1);
//! assert_eq!(invoices[0].message.order_id, "o-1");
//! assert_eq!(invoices[0].opaque_data.request_id(), Some("req-7"));
//! assert_eq!(invoices[0].opaque_data.ttl(), Some(31));
//! # }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backoff::BackoffPolicy;
use crate::dispatch::{Dispatcher, HandlerTable, HandlerTimeouts, Handling, Payloads};
use crate::envelope::{decode, Decoded};
use crate::handlers::{Collaborators, Handler, HandlerFn};
use crate::memory::MemoryObjectStore;
use crate::middleware::{HandlerLayer, HandlerLayers};
use crate::opaque::OpaqueData;
use crate::outcome::{Outcome, Verdict};
use crate::payload::{LargePayloads, PayloadPointer, Resolver};
use crate::producer::{Producer, TopicMap};
use crate::transport::{
    AttributeValue, Attributes, BoxFuture, EntryError, MessageId, OutgoingMessage, Publisher,
    ReceivedMessage, TransportError, MEDIA_TYPE_ATTRIBUTE,
};
#[cfg(doc)]
use crate::untyped::UntypedMessage;
use crate::{encode, MediaTypePattern, Message};

/// The topic every message published in a test goes to.
pub const TEST_TOPIC: &str = "arn:aws:sns:us-east-1:000000000000:test";

/// The bucket of the test's object store that large published messages are offloaded to
/// (see [`HandlerTest::object_store`]).
pub const TEST_BUCKET: &str = "test-payloads";

/// Runs a handler on a message as the daemon would, with the context set up here.
#[derive(Debug, Clone)]
pub struct HandlerTest {
    handler: Option<Handler>,
    timeout: Option<Duration>,
    layers: HandlerLayers,
    collaborators: Collaborators,
    opaque_data: OpaqueData,
    receive_count: u32,
    message_id: String,
    backoff: BackoffPolicy,
    attributes: Attributes,
    group_id: Option<String>,
    object_store: Option<MemoryObjectStore>,
}

impl Default for HandlerTest {
    fn default() -> HandlerTest {
        HandlerTest::new()
    }
}

impl HandlerTest {
    /// First delivery, no opaque data, no collaborators; the handler is the linked one of the
    /// message's media type, unless [`handler`](HandlerTest::handler) names one.
    pub fn new() -> HandlerTest {
        HandlerTest {
            handler: None,
            timeout: None,
            layers: HandlerLayers::new(),
            collaborators: Collaborators::new(),
            opaque_data: OpaqueData::new(),
            receive_count: 1,
            message_id: "test-message-1".to_owned(),
            backoff: BackoffPolicy::default(),
            attributes: Attributes::new(),
            group_id: None,
            object_store: None,
        }
    }

    /// Runs the `#[handler]` function `H` (named as a type: `.handler::<bill>()`), whatever
    /// else is linked.
    pub fn handler<H: HandlerFn>(mut self) -> HandlerTest {
        self.handler = Some(H::HANDLER);
        self
    }

    /// Cancels the handler after `limit`, as a daemon with that handler timeout does.
    pub fn timeout(mut self, limit: Duration) -> HandlerTest {
        self.timeout = Some(limit);
        self
    }

    /// Runs the handler through `layers`, as a daemon built with
    /// [`DaemonBuilder::layers`](crate::daemon::DaemonBuilder::layers) does: those around every
    /// handler, then those for this handler.
    pub fn layers(mut self, layers: HandlerLayers) -> HandlerTest {
        self.layers = self.layers.extend(layers);
        self
    }

    /// Adds a layer around the handler.
    pub fn layer(mut self, layer: impl HandlerLayer) -> HandlerTest {
        self.layers = self.layers.layer(layer);
        self
    }

    /// Adds a collaborator.
    pub fn collaborator<T: Send + Sync + 'static>(mut self, value: T) -> HandlerTest {
        self.collaborators = self.collaborators.with(value);
        self
    }

    /// The opaque data the message arrives with.
    pub fn opaque_data(mut self, opaque_data: OpaqueData) -> HandlerTest {
        self.opaque_data = opaque_data;
        self
    }

    /// Sets `x-request-id` on the incoming message.
    pub fn request_id(mut self, request_id: &str) -> HandlerTest {
        self.opaque_data.set_request_id(request_id);
        self
    }

    /// The receive count the handler sees.
    pub fn receive_count(mut self, receive_count: u32) -> HandlerTest {
        self.receive_count = receive_count;
        self
    }

    /// A message attribute the message arrives with (besides `media_type`, which it always
    /// has): what the handler's [`MessageContext::attributes`](crate::MessageContext::attributes)
    /// shows.
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<AttributeValue>) -> HandlerTest {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// The FIFO message group the message arrives in (what
    /// [`MessageContext::message_group_id`](crate::MessageContext::message_group_id) shows).
    pub fn group_id(mut self, group_id: impl Into<String>) -> HandlerTest {
        self.group_id = Some(group_id.into());
        self
    }

    /// Runs as a daemon with an object store and a producer that offloads large bodies (see
    /// [`payload`](crate::payload)): a body given to [`run_body`](HandlerTest::run_body) that
    /// is a pointer is read from `store`, and what the handler publishes over the threshold is
    /// offloaded to its bucket [`TEST_BUCKET`] (created here). [`TestRun::published`] reads
    /// the offloaded bodies back.
    pub fn object_store(mut self, store: MemoryObjectStore) -> HandlerTest {
        store.broker().create_bucket(TEST_BUCKET);
        self.object_store = Some(store);
        self
    }

    /// Runs the handler on `message` (a derived type or an [`UntypedMessage`]).
    ///
    /// # Panics
    /// When `message` is invalid (a test mistake, not the handler's); when no handler was
    /// named and not exactly one linked handler takes its media type; when the handler takes a
    /// collaborator the test was not given.
    pub async fn run<M: Message>(&self, message: &M) -> TestRun {
        let body = encode(message, &self.opaque_data)
            .unwrap_or_else(|e| panic!("the test message does not encode: {e}"));
        let handler = match self.handler {
            Some(handler) => handler,
            None => linked_handler_of(message.media_type()),
        };
        // As a raw delivery brings it: the media type among the attributes.
        let media_type = (MEDIA_TYPE_ATTRIBUTE.to_owned(), AttributeValue::from(message.media_type()));
        self.run_handler(handler, &body, Some(media_type)).await
    }

    /// Runs the handler named with [`handler`](HandlerTest::handler) on a raw SQS body (to test
    /// malformed input, or a captured message).
    ///
    /// # Panics
    /// When no handler was named, or it takes a collaborator the test was not given.
    pub async fn run_body(&self, body: &str) -> TestRun {
        let handler = self.handler.unwrap_or_else(|| {
            panic!("run_body needs the handler to run: HandlerTest::new().handler::<your_handler>()")
        });
        self.run_handler(handler, body, None).await
    }

    async fn run_handler(
        &self,
        handler: Handler,
        body: &str,
        media_type: Option<(String, AttributeValue)>,
    ) -> TestRun {
        if let Some(type_name) = handler.missing_collaborator(&self.collaborators) {
            panic!(
                "handler `{}` takes a `&{type_name}`, but the test has no such collaborator; add it with HandlerTest::collaborator",
                handler.name(),
            );
        }
        let recorder = Arc::new(Recorder::default());
        let mut producer = Producer::from_shared(recorder.clone(), TopicMap::new().default_topic(TEST_TOPIC));
        if let Some(store) = &self.object_store {
            producer = producer.large_payloads(LargePayloads::new(store.clone(), TEST_BUCKET));
        }
        let store = self.object_store.clone().map(|store| Arc::new(store) as _);
        let handling = Handling {
            backoff: self.backoff,
            timeouts: HandlerTimeouts { default: self.timeout, by_handler: Default::default() },
            layers: self.layers.clone(),
            ..Handling::default()
        };
        let dispatcher = Dispatcher::new(
            "test",
            Arc::new(HandlerTable::new([handler]).unwrap_or_else(|e| panic!("{e}"))),
            Some(producer),
            self.collaborators.clone(),
            handling,
            Payloads { resolver: Resolver::new(store), delete: false },
        );
        let mut received = ReceivedMessage::new(self.message_id.clone(), "test-receipt", body);
        received.receive_count = self.receive_count;
        received.attributes = self.attributes.clone();
        received.attributes.extend(media_type);
        received.group_id.clone_from(&self.group_id);
        let handled = dispatcher.dispatch(&received).await;
        let published = std::mem::take(&mut *recorder.sent.lock().expect("recorder lock"));
        TestRun { outcome: handled.outcome, published, object_store: self.object_store.clone() }
    }
}

/// The one linked handler that takes `media_type`.
fn linked_handler_of(media_type: &str) -> Handler {
    let handlers: Vec<Handler> = Handler::linked()
        .filter(|h| MediaTypePattern::parse(h.media_type()).is_ok_and(|p| p.matches(media_type)))
        .copied()
        .collect();
    match handlers.as_slice() {
        [handler] => *handler,
        [] => panic!("no #[handler] for `{media_type}` is linked into this test binary"),
        several => panic!(
            "{} linked handlers take `{media_type}` ({}): name the one to run with HandlerTest::new().handler::<name>()",
            several.len(),
            several.iter().map(|h| h.name()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// What a handler run came to.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The result, its reason and what it would do to the message.
    pub outcome: Outcome,
    /// What the handler published and the daemon sent (only on SUCCEEDED or SKIPPED); an
    /// offloaded message as sent, its body the pointer.
    pub published: Vec<OutgoingMessage>,
    object_store: Option<MemoryObjectStore>,
}

impl TestRun {
    /// The result.
    pub fn verdict(&self) -> Verdict {
        self.outcome.verdict
    }

    /// The published messages of type `M`, decoded (an offloaded one from its body in the
    /// object store); with [`UntypedMessage`], every one.
    pub fn published<M: Message>(&self) -> Vec<Decoded<M>> {
        self.published
            .iter()
            .filter(|m| M::TYPE_MEDIA_TYPE.is_empty() || m.media_type == M::TYPE_MEDIA_TYPE)
            .map(|m| decode(&self.whole_body(m)).expect("what a handler published decodes"))
            .collect()
    }

    /// The body `message` was published with: read back from the store if it was offloaded.
    fn whole_body(&self, message: &OutgoingMessage) -> String {
        match (PayloadPointer::parse(&message.body), &self.object_store) {
            (Some(pointer), Some(store)) => store
                .broker()
                .object(&pointer)
                .unwrap_or_else(|| panic!("the offloaded body {pointer} is not in the test's object store")),
            _ => message.body.clone(),
        }
    }
}

/// A publisher that keeps what it is given.
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<OutgoingMessage>>,
}

impl Publisher for Recorder {
    fn publish_batch<'a>(
        &'a self,
        _topic: &'a str,
        messages: Vec<OutgoingMessage>,
    ) -> BoxFuture<'a, Result<Vec<Result<MessageId, EntryError>>, TransportError>> {
        Box::pin(async move {
            let mut sent = self.sent.lock().expect("recorder lock");
            let ids =
                (0..messages.len()).map(|i| Ok(format!("test-published-{}", sent.len() + i + 1))).collect();
            sent.extend(messages);
            Ok(ids)
        })
    }
}
