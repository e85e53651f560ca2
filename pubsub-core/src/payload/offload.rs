//! Offloading, on the producer's side: the body of a message over the threshold is written to
//! the store and the message sent carries the pointer.
//!
//! The format follows the Python `amazon-sns-extended-client` 1.0.1 (`_make_payload`): the key
//! is a fresh `str(uuid4())`, and `ExtendedPayloadSize` is a `Number` holding the UTF-8 length
//! of the body alone (`len(message_body.encode())`), not of its attributes.

use std::borrow::Cow;

use futures_util::future::join_all;

use super::{LargePayloads, ObjectStoreError, PayloadPointer, PAYLOAD_SIZE_ATTRIBUTE};
use crate::transport::{AttributeValue, OutgoingMessage};

/// A body to write to the store before its message (the pointer) is sent.
pub(crate) struct Offloaded {
    /// The message's index in its call.
    pub(crate) index: usize,
    /// Where the body goes.
    pub(crate) pointer: PayloadPointer,
    /// The body.
    pub(crate) body: String,
}

/// Makes `message` the pointer message of `pointer` for a body of `size` bytes: the pointer
/// as its body, the size attribute, and the trace context giving way to it if there is no
/// room for both (as it gives way to the publish layers' attributes).
fn point(message: &mut OutgoingMessage, pointer: &PayloadPointer, size: usize) {
    message.body = pointer.to_body();
    message.attributes.insert(PAYLOAD_SIZE_ATTRIBUTE.to_owned(), AttributeValue::from(size));
    crate::telemetry::give_way(&mut message.attributes);
}

/// Turns every message `large` offloads into its pointer message (under a fresh key) and
/// returns the bodies to write; the others are left as they are.
pub(crate) fn offload_all<'m>(
    messages: impl Iterator<Item = &'m mut OutgoingMessage>,
    large: &LargePayloads,
) -> Vec<Offloaded> {
    let mut offloaded = Vec::new();
    for (index, message) in messages.enumerate() {
        if large.offloads(message.size()) {
            let pointer = PayloadPointer::new(large.bucket(), crate::uuid::uuid_v4());
            let body = std::mem::take(&mut message.body);
            point(message, &pointer, body.len());
            offloaded.push(Offloaded { index, pointer, body });
        }
    }
    offloaded
}

/// `message` as it would be sent by a producer that offloads with `large`, for the checks
/// made before it is (a handler's context checks what it queues at once): its pointer
/// message if it would be offloaded, else itself. Only the body is left out of the copy.
pub(crate) fn as_sent<'m>(
    message: &'m OutgoingMessage,
    large: Option<&LargePayloads>,
) -> Cow<'m, OutgoingMessage> {
    match large {
        Some(large) if large.offloads(message.size()) => {
            let mut pointer_message = OutgoingMessage {
                media_type: message.media_type.clone(),
                body: String::new(),
                attributes: message.attributes.clone(),
                group_id: message.group_id.clone(),
                deduplication_id: message.deduplication_id.clone(),
                delay: message.delay,
            };
            // A key as long as a real one: the size checked is the size sent.
            let pointer = PayloadPointer::new(large.bucket(), crate::uuid::uuid_v4());
            point(&mut pointer_message, &pointer, message.body.len());
            Cow::Owned(pointer_message)
        }
        _ => Cow::Borrowed(message),
    }
}

/// Writes every body at once. If any write fails, the objects already written are deleted
/// (best effort: a failure is logged) and the failures are returned, by index.
pub(crate) async fn put_all(
    large: &LargePayloads,
    offloaded: Vec<Offloaded>,
) -> Result<(), Vec<(usize, PayloadPointer, ObjectStoreError)>> {
    let store = large.store();
    let pointers: Vec<(usize, PayloadPointer)> =
        offloaded.iter().map(|offload| (offload.index, offload.pointer.clone())).collect();
    let results = join_all(
        offloaded
            .into_iter()
            .map(|Offloaded { pointer, body, .. }| async move { store.put(&pointer, body).await }),
    )
    .await;
    let mut failed = Vec::new();
    let mut written = Vec::new();
    for ((index, pointer), result) in pointers.into_iter().zip(results) {
        match result {
            Ok(()) => written.push(pointer),
            Err(error) => failed.push((index, pointer, error)),
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    // Nothing is sent, so nothing will ever point at what was written.
    join_all(written.iter().map(|pointer| async move {
        if let Err(error) = store.delete(pointer).await {
            tracing::warn!(bucket = %pointer.bucket, key = %pointer.key, %error,
                "an offloaded body of a batch that was not sent could not be deleted");
        }
    }))
    .await;
    Err(failed)
}
