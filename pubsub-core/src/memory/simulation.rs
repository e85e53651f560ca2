//! What tests make the broker do on purpose: latency, injected failures; and request counters.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::transport::{EntryError, TransportError};

/// A kind of request the broker serves, for counting and failure injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// [`Publisher::publish_batch`](crate::transport::Publisher::publish_batch) (SNS `PublishBatch`).
    PublishBatch,
    /// [`Subscriber::receive`](crate::transport::Subscriber::receive) (SQS `ReceiveMessage`).
    Receive,
    /// [`Subscriber::ack_batch`](crate::transport::Subscriber::ack_batch) (SQS `DeleteMessageBatch`).
    AckBatch,
    /// [`Subscriber::change_visibility_batch`](crate::transport::Subscriber::change_visibility_batch)
    /// (SQS `ChangeMessageVisibilityBatch`).
    ChangeVisibilityBatch,
    /// [`MemoryBroker::send`](super::MemoryBroker::send) (SQS `SendMessage`).
    Send,
    /// [`Publisher::publish_batch`](crate::transport::Publisher::publish_batch) to a queue URL
    /// (SQS `SendMessageBatch`).
    SendMessageBatch,
    /// [`ObjectStore::put`](crate::payload::ObjectStore::put) on [`MemoryObjectStore`](super::MemoryObjectStore)
    /// (S3 `PutObject`).
    PutObject,
    /// [`ObjectStore::get`](crate::payload::ObjectStore::get) (S3 `GetObject`).
    GetObject,
    /// [`ObjectStore::delete`](crate::payload::ObjectStore::delete) (S3 `DeleteObject`).
    DeleteObject,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; OPERATIONS] = [
        Operation::PublishBatch,
        Operation::Receive,
        Operation::AckBatch,
        Operation::ChangeVisibilityBatch,
        Operation::Send,
        Operation::SendMessageBatch,
        Operation::PutObject,
        Operation::GetObject,
        Operation::DeleteObject,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// Whether its result has one entry per item of the request (the four batch calls).
    pub fn has_entries(self) -> bool {
        matches!(
            self,
            Operation::PublishBatch
                | Operation::AckBatch
                | Operation::ChangeVisibilityBatch
                | Operation::SendMessageBatch
        )
    }
}

/// How many kinds of [`Operation`] there are.
const OPERATIONS: usize = 9;

/// How many requests of each kind the broker has served (failed ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Publish batches.
    pub publish_batch: u64,
    /// Receives (each long poll counts once).
    pub receive: u64,
    /// Ack batches.
    pub ack_batch: u64,
    /// Change-visibility batches.
    pub change_visibility_batch: u64,
    /// Direct sends.
    pub send: u64,
    /// Send batches (publishes to a queue URL).
    pub send_message_batch: u64,
    /// Object writes (S3 `PutObject`) of the broker's object store.
    pub put_object: u64,
    /// Object reads (S3 `GetObject`).
    pub get_object: u64,
    /// Object deletes (S3 `DeleteObject`).
    pub delete_object: u64,
}

impl RequestCounts {
    /// All requests, SNS's, SQS's and S3's.
    pub fn total(&self) -> u64 {
        self.messaging() + self.objects()
    }

    /// The SNS and SQS requests.
    pub fn messaging(&self) -> u64 {
        self.publish_batch
            + self.receive
            + self.ack_batch
            + self.change_visibility_batch
            + self.send
            + self.send_message_batch
    }

    /// The S3 requests of the object store.
    pub fn objects(&self) -> u64 {
        self.put_object + self.get_object + self.delete_object
    }

    /// The count of one operation.
    pub fn get(&self, operation: Operation) -> u64 {
        match operation {
            Operation::PublishBatch => self.publish_batch,
            Operation::Receive => self.receive,
            Operation::AckBatch => self.ack_batch,
            Operation::ChangeVisibilityBatch => self.change_visibility_batch,
            Operation::Send => self.send,
            Operation::SendMessageBatch => self.send_message_batch,
            Operation::PutObject => self.put_object,
            Operation::GetObject => self.get_object,
            Operation::DeleteObject => self.delete_object,
        }
    }
}

/// Failures waiting for the next calls of one operation.
#[derive(Default)]
struct Faults {
    /// Whole-request failures, one per call, in order.
    requests: VecDeque<TransportError>,
    /// Entry indices the next accepted call fails.
    entries: BTreeSet<usize>,
}

/// The broker's latency, injected failures and counters.
pub(crate) struct Simulation {
    latency_nanos: AtomicU64,
    counts: [AtomicU64; OPERATIONS],
    faults: Mutex<[Faults; OPERATIONS]>,
}

impl Simulation {
    pub(crate) fn new() -> Self {
        Simulation {
            latency_nanos: AtomicU64::new(0),
            counts: Default::default(),
            faults: Mutex::new(Default::default()),
        }
    }

    fn faults(&self) -> MutexGuard<'_, [Faults; OPERATIONS]> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_latency(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency_nanos.store(nanos, Ordering::Relaxed);
    }

    pub(crate) fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed))
    }

    pub(crate) fn fail_entries(&self, operation: Operation, indices: impl IntoIterator<Item = usize>) {
        assert!(operation.has_entries(), "{operation:?} has no entries to fail; use fail_next_request");
        self.faults()[operation.index()].entries.extend(indices);
    }

    pub(crate) fn fail_next_request(&self, operation: Operation, error: TransportError) {
        self.faults()[operation.index()].requests.push_back(error);
    }

    pub(crate) fn request_counts(&self) -> RequestCounts {
        let count = |operation: Operation| self.counts[operation.index()].load(Ordering::Relaxed);
        RequestCounts {
            publish_batch: count(Operation::PublishBatch),
            receive: count(Operation::Receive),
            ack_batch: count(Operation::AckBatch),
            change_visibility_batch: count(Operation::ChangeVisibilityBatch),
            send: count(Operation::Send),
            send_message_batch: count(Operation::SendMessageBatch),
            put_object: count(Operation::PutObject),
            get_object: count(Operation::GetObject),
            delete_object: count(Operation::DeleteObject),
        }
    }

    pub(crate) fn reset_request_counts(&self) {
        for count in &self.counts {
            count.store(0, Ordering::Relaxed);
        }
    }

    /// The start of every request: count it, pay the latency, then fail it whole if a failure
    /// is waiting for this operation.
    pub(crate) async fn begin(&self, operation: Operation) -> Result<(), TransportError> {
        self.counts[operation.index()].fetch_add(1, Ordering::Relaxed);
        let latency = self.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match self.faults()[operation.index()].requests.pop_front() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The entry indices the current (accepted) call of `operation` must fail; consumed.
    pub(crate) fn take_entry_failures(&self, operation: Operation) -> BTreeSet<usize> {
        std::mem::take(&mut self.faults()[operation.index()].entries)
    }
}

/// The error of an entry failed on purpose: retryable, like an SQS/SNS `InternalError`.
pub(crate) fn injected_entry_error() -> EntryError {
    EntryError {
        code: "InternalError".to_owned(),
        message: "failure injected by MemoryBroker::fail_entries".to_owned(),
        retryable: true,
    }
}

/// Runs a batch in which the entries at `failures` fail on purpose: `run` gets the other
/// entries (in order) and returns one result each; the results are merged back in order.
pub(crate) fn with_entry_failures<I, T>(
    items: Vec<I>,
    failures: &BTreeSet<usize>,
    run: impl FnOnce(Vec<I>) -> Vec<Result<T, EntryError>>,
) -> Vec<Result<T, EntryError>> {
    if failures.is_empty() {
        return run(items);
    }
    let count = items.len();
    let kept =
        items.into_iter().enumerate().filter(|(index, _)| !failures.contains(index)).map(|(_, item)| item);
    let mut outcomes = run(kept.collect()).into_iter();
    (0..count)
        .map(|index| {
            if failures.contains(&index) {
                Err(injected_entry_error())
            } else {
                outcomes.next().expect("one outcome per entry")
            }
        })
        .collect()
}
