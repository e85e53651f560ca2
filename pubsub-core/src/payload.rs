//! Large payloads: a body over SNS's and SQS's limit is written to an object store (S3), and
//! the message sent carries a pointer to it instead, in the format of AWS's extended client
//! libraries (amazon-sqs-java-extended-client-lib, amazon-sns-java-extended-client-lib, and
//! the Python `amazon-sns-extended-client` and `amazon-sqs-extended-client`), so that a Rust
//! service and any of them exchange large messages both ways.
//!
//! The pointer is the message body:
//!
//! ```text
//! ["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3BucketName": "b", "s3Key": "k"}]
//! ```
//!
//! with the number attribute `ExtendedPayloadSize` holding the original body's size in bytes.
//! On read, the legacy pointer class `com.amazon.sqs.javamessaging.MessageS3Pointer` and the
//! legacy attribute `SQSLargePayloadSize` are accepted too.
//!
//! ```
//! use pubsub_core::payload::PayloadPointer;
//!
//! let pointer = PayloadPointer::new("big-events", "8c1b6b8e-2f6e-4f39-a3c7-8e4f1f3d2a10");
//! let body = pointer.to_body();
//! assert_eq!(
//!     body,
//!     r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"big-events","s3Key":"8c1b6b8e-2f6e-4f39-a3c7-8e4f1f3d2a10"}]"#
//! );
//! assert_eq!(PayloadPointer::parse(&body), Some(pointer));
//! assert_eq!(PayloadPointer::parse(r#"{"mediaType": "text/plain"}"#), None);
//! ```

mod offload;
mod resolve;

use std::sync::Arc;

pub(crate) use offload::{as_sent, offload_all, put_all};
pub(crate) use resolve::{no_store, pointer_in, Resolver};
use serde::{Deserialize, Serialize};

use crate::transport::BoxFuture;

/// The pointer class AWS's extended clients write today.
pub const POINTER_CLASS: &str = "software.amazon.payloadoffloading.PayloadS3Pointer";

/// The pointer class of the first Java SQS extended client, still accepted on read.
pub const LEGACY_POINTER_CLASS: &str = "com.amazon.sqs.javamessaging.MessageS3Pointer";

/// The number message attribute with the original body's size, in bytes.
pub const PAYLOAD_SIZE_ATTRIBUTE: &str = "ExtendedPayloadSize";

/// The legacy name of [`PAYLOAD_SIZE_ATTRIBUTE`], still accepted on read.
pub const LEGACY_PAYLOAD_SIZE_ATTRIBUTE: &str = "SQSLargePayloadSize";

/// The size over which the extended clients offload a message by default (body and
/// attributes, in bytes): SNS's limit, 256 KiB.
pub const DEFAULT_THRESHOLD: usize = 262_144;

/// Where an offloaded body is: a bucket and a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PayloadPointer {
    /// The bucket.
    pub bucket: String,
    /// The object's key.
    pub key: String,
}

/// The pointer's object, as the extended clients write it.
#[derive(Serialize, Deserialize)]
struct Location<'a> {
    #[serde(rename = "s3BucketName", borrow)]
    bucket: std::borrow::Cow<'a, str>,
    #[serde(rename = "s3Key", borrow)]
    key: std::borrow::Cow<'a, str>,
}

impl PayloadPointer {
    /// The object `key` in `bucket`.
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> PayloadPointer {
        PayloadPointer { bucket: bucket.into(), key: key.into() }
    }

    /// The message body that points at the object (the current class).
    pub fn to_body(&self) -> String {
        let location = Location { bucket: self.bucket.as_str().into(), key: self.key.as_str().into() };
        serde_json::to_string(&(POINTER_CLASS, location)).expect("strings always serialize")
    }

    /// The pointer `body` is, if it is one (of either class); `None` for any other body. Cheap
    /// for the bodies that are not: it looks at the first characters before parsing.
    pub fn parse(body: &str) -> Option<PayloadPointer> {
        let start = body.trim_start();
        let class = start.strip_prefix('[')?.trim_start().strip_prefix('"')?;
        if !(class.starts_with(POINTER_CLASS) || class.starts_with(LEGACY_POINTER_CLASS)) {
            return None;
        }
        let (class, location): (&str, Location<'_>) = serde_json::from_str(body).ok()?;
        if class != POINTER_CLASS && class != LEGACY_POINTER_CLASS {
            return None;
        }
        Some(PayloadPointer::new(location.bucket, location.key))
    }
}

impl std::fmt::Display for PayloadPointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Why an object store request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectStoreError {
    /// There is no such object (or bucket).
    #[error("{0} does not exist")]
    NotFound(PayloadPointer),
    /// The object (or bucket) exists but may not be read or written with these credentials,
    /// or holds what cannot be a message body (not UTF-8).
    #[error("{pointer} cannot be used: {reason}")]
    Refused {
        /// The object.
        pointer: PayloadPointer,
        /// The service's words.
        reason: String,
    },
    /// The store could not be reached, or failed in a way that may pass on a retry.
    #[error("the object store is unavailable: {0}")]
    Unavailable(String),
}

/// Where offloaded bodies are kept: S3 (pubsub-aws's `S3ObjectStore`, feature `s3`), or the
/// embedded broker's store ([`MemoryBroker::object_store`](crate::MemoryBroker::object_store),
/// a [`MemoryObjectStore`](crate::memory::MemoryObjectStore)).
pub trait ObjectStore: Send + Sync + 'static {
    /// Writes `body` as the object `pointer`.
    fn put<'a>(
        &'a self,
        pointer: &'a PayloadPointer,
        body: String,
    ) -> BoxFuture<'a, Result<(), ObjectStoreError>>;

    /// Reads the object `pointer`.
    fn get<'a>(&'a self, pointer: &'a PayloadPointer) -> BoxFuture<'a, Result<String, ObjectStoreError>>;

    /// Deletes the object `pointer` (deleting one that does not exist is not an error).
    fn delete<'a>(&'a self, pointer: &'a PayloadPointer) -> BoxFuture<'a, Result<(), ObjectStoreError>>;
}

impl<T: ObjectStore + ?Sized> ObjectStore for Arc<T> {
    fn put<'a>(
        &'a self,
        pointer: &'a PayloadPointer,
        body: String,
    ) -> BoxFuture<'a, Result<(), ObjectStoreError>> {
        (**self).put(pointer, body)
    }

    fn get<'a>(&'a self, pointer: &'a PayloadPointer) -> BoxFuture<'a, Result<String, ObjectStoreError>> {
        (**self).get(pointer)
    }

    fn delete<'a>(&'a self, pointer: &'a PayloadPointer) -> BoxFuture<'a, Result<(), ObjectStoreError>> {
        (**self).delete(pointer)
    }
}

/// How a producer offloads large bodies: to `bucket` of `store`, every message whose size
/// (body and attributes, as [`OutgoingMessage::size`](crate::transport::OutgoingMessage::size)
/// counts it) is over the threshold ([`DEFAULT_THRESHOLD`] unless set), or every message.
#[derive(Clone)]
pub struct LargePayloads {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    threshold: usize,
    always: bool,
}

impl LargePayloads {
    /// Offloads to `bucket` of `store` what is over [`DEFAULT_THRESHOLD`].
    pub fn new(store: impl ObjectStore, bucket: impl Into<String>) -> LargePayloads {
        LargePayloads::from_shared(Arc::new(store), bucket)
    }

    /// As [`new`](LargePayloads::new), over a shared store.
    pub fn from_shared(store: Arc<dyn ObjectStore>, bucket: impl Into<String>) -> LargePayloads {
        LargePayloads { store, bucket: bucket.into(), threshold: DEFAULT_THRESHOLD, always: false }
    }

    /// Offloads what is over `bytes` (at most [`DEFAULT_THRESHOLD`]: above it, SNS and SQS
    /// would refuse the message).
    pub fn threshold(mut self, bytes: usize) -> LargePayloads {
        self.threshold = bytes.min(DEFAULT_THRESHOLD);
        self
    }

    /// Offloads every message, whatever its size.
    pub fn always(mut self) -> LargePayloads {
        self.always = true;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Whether a message of `size` bytes is offloaded.
    pub fn offloads(&self, size: usize) -> bool {
        self.always || size > self.threshold
    }
}

impl std::fmt::Debug for LargePayloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LargePayloads")
            .field("bucket", &self.bucket)
            .field("threshold", &self.threshold)
            .field("always", &self.always)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_classes_are_read_and_other_bodies_are_not_pointers() {
        let legacy =
            r#" [ "com.amazon.sqs.javamessaging.MessageS3Pointer", {"s3Key": "k", "s3BucketName": "b"} ]"#;
        assert_eq!(PayloadPointer::parse(legacy), Some(PayloadPointer::new("b", "k")));
        for other in [
            "",
            "[]",
            r#"{"s3BucketName": "b", "s3Key": "k"}"#,
            r#"["software.amazon.payloadoffloading.PayloadS3PointerX", {"s3BucketName": "b", "s3Key": "k"}]"#,
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer", {"s3BucketName": "b"}]"#,
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer""#,
        ] {
            assert_eq!(PayloadPointer::parse(other), None, "{other}");
        }
    }
}
