//! A test kit for users' own tests: run one handler on one message, with a test context,
//! and assert on its result and on what it published, without a daemon or a broker.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use pubsub_core::testing::HandlerTest;
//! use pubsub_core::{handler, HandlerError, MessageContext, MessageResult, PubSubMessage};
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
//! assert_eq!(run.result(), MessageResult::Succeeded);
//! let invoices = run.published::<InvoiceDue>();
//! assert_eq!(invoices.len(), 1);
//! assert_eq!(invoices[0].message.order_id, "o-1");
//! assert_eq!(invoices[0].opaque_data.request_id(), Some("req-7"));
//! assert_eq!(invoices[0].opaque_data.ttl(), Some(31));
//! # }
//! ```

use std::sync::{Arc, Mutex};

use crate::backoff::BackoffPolicy;
use crate::dispatch::{Dispatcher, HandlerTable};
use crate::envelope::{decode, Decoded};
use crate::handler::{Collaborators, Handler};
use crate::opaque::OpaqueData;
use crate::outcome::{MessageResult, Outcome};
use crate::producer::{Producer, TopicMap};
use crate::transport::{
    BoxFuture, EntryError, MessageId, OutgoingMessage, Publisher, ReceivedMessage, TransportError,
};
use crate::untyped::{decode_untyped, UntypedMessage};
use crate::{encode, PubSubMessage};

/// The topic every message published in a test goes to.
pub const TEST_TOPIC: &str = "arn:aws:sns:us-east-1:000000000000:test";

/// Runs a handler on a message as the daemon would, with the context set up here.
#[derive(Debug, Clone)]
pub struct HandlerTest {
    collaborators: Collaborators,
    opaque_data: OpaqueData,
    receive_count: u32,
    message_id: String,
    backoff: BackoffPolicy,
}

impl Default for HandlerTest {
    fn default() -> HandlerTest {
        HandlerTest::new()
    }
}

impl HandlerTest {
    /// First delivery, no opaque data, no collaborators.
    pub fn new() -> HandlerTest {
        HandlerTest {
            collaborators: Collaborators::new(),
            opaque_data: OpaqueData::new(),
            receive_count: 1,
            message_id: "test-message-1".to_owned(),
            backoff: BackoffPolicy::default(),
        }
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

    /// Runs the linked handler of `M`'s media type on `message`.
    ///
    /// # Panics
    /// When no linked handler, or more than one, handles `M`.
    pub async fn run<M: PubSubMessage>(&self, message: &M) -> TestRun {
        let handlers: Vec<Handler> =
            Handler::linked().filter(|h| h.media_type() == M::MEDIA_TYPE).copied().collect();
        match handlers.as_slice() {
            [handler] => self.run_with(*handler, message).await,
            [] => panic!("no #[handler] for `{}` is linked into this test binary", M::MEDIA_TYPE),
            _ => panic!("several handlers handle `{}`: use run_named", M::MEDIA_TYPE),
        }
    }

    /// Runs the linked handler named `name` (function name or full path) on `message`.
    ///
    /// # Panics
    /// When no linked handler has that name.
    pub async fn run_named<M: PubSubMessage>(&self, name: &str, message: &M) -> TestRun {
        let handler = Handler::linked().find(|h| h.is_named(name)).copied();
        let handler =
            handler.unwrap_or_else(|| panic!("no #[handler] named `{name}` is linked into this test binary"));
        self.run_with(handler, message).await
    }

    /// Runs `handler` on `message`.
    ///
    /// # Panics
    /// When `message` is invalid (a test mistake, not the handler's).
    pub async fn run_with<M: PubSubMessage>(&self, handler: Handler, message: &M) -> TestRun {
        let body = encode(message, &self.opaque_data)
            .unwrap_or_else(|e| panic!("the test message does not encode: {e}"));
        self.run_body(handler, &body).await
    }

    /// Runs `handler` on a raw SQS body (to test malformed input, or a captured message).
    pub async fn run_body(&self, handler: Handler, body: &str) -> TestRun {
        let recorder = Arc::new(Recorder::default());
        let producer = Producer::from_shared(recorder.clone(), TopicMap::new().default_topic(TEST_TOPIC));
        let dispatcher = Dispatcher {
            handlers: Arc::new(HandlerTable::new([handler]).unwrap_or_else(|e| panic!("{e}"))),
            producer: Some(producer),
            collaborators: self.collaborators.clone(),
            backoff: self.backoff,
            max_attempts: None,
        };
        if let Err(error) = dispatcher.handlers.check_needs(&self.collaborators) {
            panic!("{error}; add it with HandlerTest::collaborator");
        }
        let received = ReceivedMessage {
            message_id: self.message_id.clone(),
            receipt_handle: "test-receipt".to_owned(),
            body: body.to_owned(),
            receive_count: self.receive_count,
            attributes: Default::default(),
        };
        let handled = dispatcher.dispatch(&received).await;
        let published = std::mem::take(&mut *recorder.sent.lock().expect("recorder lock"));
        TestRun { outcome: handled.outcome, published }
    }
}

/// What a handler run came to.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The result, its reason and what it would do to the message.
    pub outcome: Outcome,
    /// What the handler published and the daemon sent (only on SUCCEEDED or SKIPPED).
    pub published: Vec<OutgoingMessage>,
}

impl TestRun {
    /// The result.
    pub fn result(&self) -> MessageResult {
        self.outcome.result
    }

    /// The published messages of type `M`, decoded.
    pub fn published<M: PubSubMessage>(&self) -> Vec<Decoded<M>> {
        self.published
            .iter()
            .filter(|m| m.media_type == M::MEDIA_TYPE)
            .map(|m| decode(&m.body).expect("what a handler published decodes"))
            .collect()
    }

    /// Every published message, untyped.
    pub fn published_untyped(&self) -> Vec<Decoded<UntypedMessage>> {
        self.published
            .iter()
            .map(|m| decode_untyped(&m.body).expect("what a handler published decodes"))
            .collect()
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
