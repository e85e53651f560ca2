//! The broker's object store: S3 buckets in memory, where large payloads are offloaded.

use std::collections::HashMap;
use std::sync::Mutex;

use super::simulation::Operation;
use super::{lock, MemoryBroker};
use crate::payload::{ObjectStore, ObjectStoreError, PayloadPointer};
use crate::transport::{BoxFuture, TransportError};

/// Buckets by name, objects by key.
pub(super) type Buckets = Mutex<HashMap<String, HashMap<String, String>>>;

/// The [`ObjectStore`] of a [`MemoryBroker`], from [`MemoryBroker::object_store`]: its buckets
/// (made with [`MemoryBroker::create_bucket`]) hold the bodies producers offload. Clones, and
/// every store of one broker, share the same buckets.
///
/// As S3 does, a write or read in a bucket that does not exist, and a read of a key that does
/// not, is [`ObjectStoreError::NotFound`]; deleting a missing key is not an error. Every
/// request is counted ([`RequestCounts::put_object`](super::RequestCounts::put_object) and the
/// others), waits the broker's latency, and can be failed with
/// [`MemoryBroker::fail_next_request`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use pubsub_core::payload::{ObjectStore, PayloadPointer};
/// use pubsub_core::MemoryBroker;
///
/// let broker = MemoryBroker::new();
/// broker.create_bucket("payloads");
/// let store = broker.object_store();
/// let pointer = PayloadPointer::new("payloads", "k-1");
/// store.put(&pointer, "a large body".to_owned()).await?;
/// assert_eq!(store.get(&pointer).await?, "a large body");
/// assert_eq!(broker.object_count(), 1);
/// assert_eq!(broker.request_counts().put_object, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryObjectStore {
    pub(super) broker: MemoryBroker,
}

impl MemoryObjectStore {
    /// The broker whose store this is.
    pub fn broker(&self) -> &MemoryBroker {
        &self.broker
    }

    /// Counts the request and pays the latency, as every broker request does.
    async fn begin(&self, operation: Operation, pointer: &PayloadPointer) -> Result<(), ObjectStoreError> {
        self.broker.inner.simulation.begin(operation).await.map_err(|error| match error {
            TransportError::Unavailable(reason) => ObjectStoreError::Unavailable(reason),
            other => ObjectStoreError::Refused { pointer: pointer.clone(), reason: other.to_string() },
        })
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, String>>> {
        lock(&self.broker.inner.buckets)
    }
}

impl ObjectStore for MemoryObjectStore {
    fn put<'a>(
        &'a self,
        pointer: &'a PayloadPointer,
        body: String,
    ) -> BoxFuture<'a, Result<(), ObjectStoreError>> {
        Box::pin(async move {
            self.begin(Operation::PutObject, pointer).await?;
            let mut buckets = self.buckets();
            let bucket = buckets
                .get_mut(&pointer.bucket)
                .ok_or_else(|| ObjectStoreError::NotFound(pointer.clone()))?;
            bucket.insert(pointer.key.clone(), body);
            Ok(())
        })
    }

    fn get<'a>(&'a self, pointer: &'a PayloadPointer) -> BoxFuture<'a, Result<String, ObjectStoreError>> {
        Box::pin(async move {
            self.begin(Operation::GetObject, pointer).await?;
            self.buckets()
                .get(&pointer.bucket)
                .and_then(|bucket| bucket.get(&pointer.key))
                .cloned()
                .ok_or_else(|| ObjectStoreError::NotFound(pointer.clone()))
        })
    }

    fn delete<'a>(&'a self, pointer: &'a PayloadPointer) -> BoxFuture<'a, Result<(), ObjectStoreError>> {
        Box::pin(async move {
            self.begin(Operation::DeleteObject, pointer).await?;
            match self.buckets().get_mut(&pointer.bucket) {
                Some(bucket) => {
                    bucket.remove(&pointer.key);
                    Ok(())
                }
                None => Err(ObjectStoreError::NotFound(pointer.clone())),
            }
        })
    }
}

impl MemoryBroker {
    /// The broker's object store, for offloaded payloads (see [`MemoryObjectStore`]).
    pub fn object_store(&self) -> MemoryObjectStore {
        MemoryObjectStore { broker: self.clone() }
    }

    /// Creates the bucket `name` of the object store if it does not exist.
    pub fn create_bucket(&self, name: &str) {
        lock(&self.inner.buckets).entry(name.to_owned()).or_default();
    }

    /// How many objects the object store holds, in all its buckets.
    pub fn object_count(&self) -> usize {
        lock(&self.inner.buckets).values().map(HashMap::len).sum()
    }

    /// The object `pointer` holds, if it exists (read at once: no request is counted).
    pub fn object(&self, pointer: &PayloadPointer) -> Option<String> {
        lock(&self.inner.buckets).get(&pointer.bucket).and_then(|bucket| bucket.get(&pointer.key)).cloned()
    }

    /// Deletes the object `pointer`, if it exists (at once: no request is counted), as an S3
    /// lifecycle rule or another consumer would.
    pub fn remove_object(&self, pointer: &PayloadPointer) -> bool {
        lock(&self.inner.buckets)
            .get_mut(&pointer.bucket)
            .is_some_and(|bucket| bucket.remove(&pointer.key).is_some())
    }
}
