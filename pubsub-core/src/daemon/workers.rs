//! The handler workers: as many tasks as the concurrency, started with the daemon, each taking
//! the next received message (or FIFO chain) from one shared queue and handling it. A task
//! spawned for every message cost a fifth of the daemon's own work per message (its allocation,
//! aligned to 128 bytes, and a trip through the scheduler); a worker costs a queue push and a
//! wake-up. Each message still runs apart from the others, on whichever runtime thread wakes
//! its worker, as a task of its own would.
//!
//! The permits bound the messages received and not yet settled to the concurrency, and a
//! work holds at least one of them, so there are never more works than workers: none waits
//! in the queue for a free worker.
//!
//! A worker keeps the state of the handling under way in its own task (about 2.5 KB), so a
//! daemon holds concurrency × 2.5 KB from its start: what tasks per message held at full load.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, OwnedSemaphorePermit};

use super::Shared;
use crate::transport::{ReceivedMessage, Subscriber};

/// A received message as a worker gets it: its receipt handle is in the in-flight table,
/// under `key`, until it is settled.
pub(super) struct Handed {
    pub(super) message: ReceivedMessage,
    pub(super) key: u64,
    pub(super) permit: OwnedSemaphorePermit,
}

/// What one receive hands a worker.
// A message by value: boxing it would cost an allocation per message, which is what the
// workers save, and the queue holds at most `concurrency` of them.
#[allow(clippy::large_enum_variant)]
pub(super) enum Work {
    /// A message of its own (no FIFO group).
    One(Handed),
    /// The messages of one FIFO group from one receive, handled in order (see
    /// [`run_chain`](Shared::run_chain)).
    Chain(Vec<Handed>),
}

/// The works waiting for a worker, and the count of works not finished.
#[derive(Default)]
pub(super) struct WorkQueue {
    waiting: Mutex<VecDeque<Work>>,
    /// Wakes one idle worker per work pushed; all of them at the close.
    ready: Notify,
    /// Works pushed and not finished: waiting, or under way.
    unfinished: AtomicUsize,
    /// Told when `unfinished` drops to 0.
    all_finished: Notify,
    closed: AtomicBool,
}

impl WorkQueue {
    /// Queues `work` for the next free worker.
    pub(super) fn push(&self, work: Work) {
        self.unfinished.fetch_add(1, Ordering::SeqCst);
        self.waiting.lock().expect("work queue lock").push_back(work);
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<Work> {
        self.waiting.lock().expect("work queue lock").pop_front()
    }

    fn finished(&self) {
        if self.unfinished.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.all_finished.notify_waiters();
        }
    }

    /// Works pushed and not finished.
    pub(super) fn unfinished(&self) -> usize {
        self.unfinished.load(Ordering::SeqCst)
    }

    /// Resolves once every work pushed so far has finished.
    pub(super) async fn all_finished(&self) {
        loop {
            let notified = self.all_finished.notified();
            tokio::pin!(notified);
            // Registered before the check, so a finish between the two is not missed.
            notified.as_mut().enable();
            if self.unfinished() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// No more works come: idle workers end now, busy ones when the queue is empty.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.ready.notify_waiters();
    }
}

/// Closes the queue when dropped: the workers end with the daemon's run, also when its future
/// is dropped half way.
pub(super) struct CloseOnDrop<'q>(pub(super) &'q WorkQueue);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Marks a work finished when dropped.
struct Finished<'q>(&'q WorkQueue);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.finished();
    }
}

/// One worker: handles works until the queue is closed and empty.
pub(super) async fn worker_loop<S: Subscriber>(shared: Arc<Shared<S>>) {
    let queue = &shared.work;
    loop {
        let ready = queue.ready.notified();
        tokio::pin!(ready);
        // Registered before the checks, so that neither a push nor the close is missed.
        ready.as_mut().enable();
        if let Some(work) = queue.pop() {
            // Counted as finished also if the worker panics (a bug of ours: handlers' panics
            // are caught), so that the drain and the idle check do not wait for it.
            let _finished = Finished(queue);
            match work {
                Work::One(Handed { message, key, permit }) => {
                    shared.handle(message, key).await;
                    drop(permit);
                }
                Work::Chain(chain) => shared.run_chain(chain).await,
            }
            continue;
        }
        if queue.closed.load(Ordering::SeqCst) {
            return;
        }
        ready.await;
    }
}
