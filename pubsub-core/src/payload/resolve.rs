//! Resolving, on the consumer's side: a received pointer is replaced by the body it points at,
//! so that decoding, dispatch and handlers see the message as if it had been sent whole.

use std::sync::Arc;

use futures_util::future::join_all;
use serde_json::{Map, Value};

use super::{ObjectStore, PayloadPointer, LEGACY_PAYLOAD_SIZE_ATTRIBUTE, PAYLOAD_SIZE_ATTRIBUTE};
use crate::envelope::Envelope;
use crate::error::{BodyPart, DecodeError};
use crate::transport::ReceivedMessage;

/// Where a received pointer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Carrier {
    /// The SQS body is the pointer (raw delivery, or sent straight to the queue).
    Body,
    /// The SNS notification's `Message` is the pointer.
    Notification,
}

/// The pointer an SQS body carries, if any, given what reading its envelope gave: a pointer
/// is a JSON array, never an object, so only a body whose envelope is not an object is looked
/// at, and the messages that are not pointers cost nothing more.
pub(crate) fn pointer_in(
    body: &str,
    envelope: &Result<Envelope<'_>, DecodeError>,
) -> Option<(PayloadPointer, Carrier)> {
    match envelope {
        Err(DecodeError::NotAnObject { part: BodyPart::Body, .. }) => {
            PayloadPointer::parse(body).map(|pointer| (pointer, Carrier::Body))
        }
        Err(DecodeError::NotAnObject { part: BodyPart::NotificationMessage, .. }) => {
            let notification: Map<String, Value> = serde_json::from_str(body).ok()?;
            let message = notification.get("Message")?.as_str()?;
            PayloadPointer::parse(message).map(|pointer| (pointer, Carrier::Notification))
        }
        _ => None,
    }
}

/// Reads the pointers of received messages from a store. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct Resolver {
    store: Option<Arc<dyn ObjectStore>>,
}

impl Resolver {
    /// Reads from `store`; with `None`, every pointer is an error saying to configure one.
    pub(crate) fn new(store: Option<Arc<dyn ObjectStore>>) -> Resolver {
        Resolver { store }
    }

    /// The store, if there is one.
    pub(crate) fn store(&self) -> Option<&Arc<dyn ObjectStore>> {
        self.store.as_ref()
    }

    /// `message` with the body `pointer` points at in place of the pointer, and without the
    /// size attribute. The error names bucket and key: a missing or unreadable object, no store.
    pub(crate) async fn resolve(
        &self,
        message: &ReceivedMessage,
        pointer: &PayloadPointer,
        carrier: Carrier,
    ) -> Result<ReceivedMessage, DecodeError> {
        let unavailable =
            |reason: String| DecodeError::PayloadUnavailable { pointer: pointer.clone(), reason };
        let Some(store) = &self.store else { return Err(no_store(pointer)) };
        let body = store.get(pointer).await.map_err(|error| {
            unavailable(format!(
                "the message's offloaded body could not be read from S3 (bucket `{}`, key `{}`): {error}",
                pointer.bucket, pointer.key
            ))
        })?;
        let mut resolved = message.clone();
        match carrier {
            Carrier::Body => resolved.body = body,
            Carrier::Notification => {
                resolved.body = with_message(&message.body, body).ok_or_else(|| {
                    unavailable(format!(
                    "the SNS notification around the pointer to bucket `{}`, key `{}` could not be rewritten",
                    pointer.bucket, pointer.key
                ))
                })?
            }
        }
        for name in [PAYLOAD_SIZE_ATTRIBUTE, LEGACY_PAYLOAD_SIZE_ATTRIBUTE] {
            resolved.attributes.remove(name);
        }
        Ok(resolved)
    }

    /// Every message of a batch with its pointer resolved, the reads at once: for each, the
    /// pointer it carried (if any) and the message to decode, or why it cannot be.
    pub(crate) async fn resolve_all(
        &self,
        messages: Vec<ReceivedMessage>,
    ) -> Vec<(ReceivedMessage, Option<Result<PayloadPointer, DecodeError>>)> {
        join_all(messages.into_iter().map(|message| async move {
            let found = pointer_in(&message.body, &Envelope::read(&message.body));
            match found {
                None => (message, None),
                Some((pointer, carrier)) => match self.resolve(&message, &pointer, carrier).await {
                    Ok(resolved) => (resolved, Some(Ok(pointer))),
                    Err(error) => (message, Some(Err(error))),
                },
            }
        }))
        .await
    }
}

/// The error of a pointer read with no object store to resolve it.
pub(crate) fn no_store(pointer: &PayloadPointer) -> DecodeError {
    DecodeError::PayloadUnavailable {
        pointer: pointer.clone(),
        reason: format!(
            "the message's body was offloaded to S3 (bucket `{}`, key `{}`), but no object store is \
             configured to read it from: give the daemon one with DaemonBuilder::object_store (a \
             consumer: Consumer::object_store)",
            pointer.bucket, pointer.key
        ),
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").field("store", &self.store.is_some()).finish()
    }
}

/// The SNS notification `notification` with `message` as its `Message`, and without the size
/// attribute among its `MessageAttributes`; `None` if it is not a JSON object.
fn with_message(notification: &str, message: String) -> Option<String> {
    let mut notification: Map<String, Value> = serde_json::from_str(notification).ok()?;
    notification.insert("Message".to_owned(), Value::String(message));
    if let Some(Value::Object(attributes)) = notification.get_mut("MessageAttributes") {
        for name in [PAYLOAD_SIZE_ATTRIBUTE, LEGACY_PAYLOAD_SIZE_ATTRIBUTE] {
            attributes.remove(name);
        }
    }
    serde_json::to_string(&notification).ok()
}
