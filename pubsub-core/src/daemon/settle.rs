//! The settler: batches deletes and visibility changes, sends several requests at once,
//! retries what may succeed later, and flushes everything at shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{truncate, Shared};
use crate::payload::{ObjectStore, PayloadPointer};
use crate::transport::{Subscriber, VisibilityChange, MAX_BATCH};

/// A delete or visibility change on its way to the settler. A delete may carry the object
/// the message's body was offloaded to, deleted once the message is.
pub(super) enum Settle {
    Delete(String, Option<PayloadPointer>),
    Visibility(String, Duration),
}

/// Delay before retrying a failed request: 100 ms doubling to 5 s.
pub(super) fn retry_delay(failures: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(6).saturating_sub(1)))
        .min(Duration::from_secs(5))
}

/// How many delete or visibility requests the settler keeps in flight at once: with 20 ms
/// per request, 128 of ten entries each settle 64,000 messages a second.
const SETTLE_REQUESTS_IN_FLIGHT: usize = 128;

/// Batches and sends deletes and visibility changes, several requests at once, retrying what
/// may succeed later; at shutdown flushes everything within `flush_timeout`. Returns how many
/// it gave up on.
pub(super) async fn settle_loop<S: Subscriber>(
    shared: Arc<Shared<S>>,
    mut incoming: mpsc::UnboundedReceiver<Settle>,
    stop: CancellationToken,
) -> usize {
    let mut pending = Pending::default();
    let mut requests: JoinSet<Settled> = JoinSet::new();
    let mut entries_in_requests = 0usize;
    let mut failures = 0u32;
    let mut hold_until: Option<Instant> = None;
    let mut partial_due: Option<Instant> = None;
    let mut flush_deadline: Option<Instant> = None;
    // Deletes of offloaded bodies, awaited before the settler returns.
    let mut object_deletes: JoinSet<()> = JoinSet::new();
    loop {
        while object_deletes.try_join_next().is_some() {}
        let now = Instant::now();
        let finishing = flush_deadline.is_some();
        if hold_until.is_some_and(|until| now >= until) {
            hold_until = None;
        }
        if hold_until.is_none() {
            // A partial batch goes when it has waited long enough, or when no handler is
            // running, so nothing more could join it soon.
            let send_partial = finishing
                || partial_due.is_some_and(|due| now >= due)
                || (!pending.is_empty()
                    && shared.in_flight.lock().expect("in-flight lock").messages.is_empty());
            while requests.len() < SETTLE_REQUESTS_IN_FLIGHT {
                let Some(request) = pending.next_request(send_partial) else { break };
                entries_in_requests += request.len();
                requests.spawn(request.send(shared.clone()));
            }
            if send_partial || pending.is_empty() {
                partial_due = (!pending.is_empty()).then(|| now + shared.config.settle_delay);
            }
        }
        if finishing && pending.is_empty() && requests.is_empty() {
            break;
        }
        if flush_deadline.is_some_and(|deadline| now >= deadline) {
            requests.abort_all();
            break;
        }
        // While held after a failure nothing is sent, so only the end of the hold matters.
        let next_send = if hold_until.is_some() { hold_until } else { partial_due };
        let wake = [next_send, flush_deadline].into_iter().flatten().min();
        tokio::select! {
            item = incoming.recv(), if !finishing => match item {
                Some(item) => {
                    pending.push(item);
                    // Take whatever else is already queued, so it is batched with this one.
                    while let Ok(item) = incoming.try_recv() {
                        pending.push(item);
                    }
                    // Counted from its arrival: `now` is when this loop last woke.
                    partial_due.get_or_insert(Instant::now() + shared.config.settle_delay);
                }
                None => flush_deadline = Some(Instant::now() + shared.config.flush_timeout),
            },
            Some(done) = requests.join_next(), if !requests.is_empty() => {
                let Ok(done) = done else { continue };
                entries_in_requests -= done.request.len();
                if let Some(store) = shared.dispatcher.object_store() {
                    for pointer in pending.settled_payloads(&done) {
                        object_deletes.spawn(delete_object(store.clone(), pointer));
                    }
                }
                shared.unsettled.fetch_sub(done.request.len() - done.keep.len(), Ordering::SeqCst);
                shared.settled.notify_waiters();
                if done.went_through {
                    failures = 0;
                } else {
                    failures += 1;
                    hold_until = Some(Instant::now() + retry_delay(failures));
                }
                if !done.keep.is_empty() {
                    shared.dispatcher.telemetry.settle_failed(done.keep.len());
                    pending.requeue(done.request, &done.keep);
                    // Retried as soon as any hold for failures is over, full batch or not.
                    partial_due = Some(Instant::now());
                }
            }
            () = sleep_until_or_forever(wake) => {}
            () = stop.cancelled(), if !finishing => {
                while let Ok(item) = incoming.try_recv() {
                    pending.push(item);
                }
                flush_deadline = Some(Instant::now() + shared.config.flush_timeout);
            }
        }
    }
    let deletes = async { while object_deletes.join_next().await.is_some() {} };
    if tokio::time::timeout(shared.config.flush_timeout, deletes).await.is_err() {
        tracing::warn!("deletes of offloaded bodies still running at shutdown; abandoned");
    }
    let given_up = pending.len() + entries_in_requests;
    if given_up > 0 {
        tracing::error!(
            given_up,
            "deletes and visibility changes still failing at shutdown; those messages will be handled again"
        );
    }
    given_up
}

/// Deletes an offloaded body whose message was deleted; a failure is logged, not retried (an
/// S3 lifecycle rule is the usual clean-up of what is left).
async fn delete_object(store: std::sync::Arc<dyn ObjectStore>, pointer: PayloadPointer) {
    match store.delete(&pointer).await {
        Ok(()) => tracing::debug!(bucket = %pointer.bucket, key = %pointer.key, "offloaded body deleted"),
        Err(error) => tracing::warn!(bucket = %pointer.bucket, key = %pointer.key, %error,
            "the offloaded body of a deleted message could not be deleted; it is left in the bucket"),
    }
}

async fn sleep_until_or_forever(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

/// Deletes and visibility changes not yet sent. A visibility change replaces an earlier
/// unsent one of the same receipt (a nack after a heartbeat wins).
#[derive(Default)]
struct Pending {
    deletes: Vec<String>,
    changes: Vec<VisibilityChange>,
    /// The offloaded bodies to delete after their messages, by receipt handle (empty unless
    /// the daemon deletes payloads).
    payloads: std::collections::HashMap<String, PayloadPointer>,
}

/// One batch request.
#[derive(Debug, PartialEq)]
enum Request {
    Deletes(Vec<String>),
    Changes(Vec<VisibilityChange>),
}

/// A finished request: what it carried, whether it went through, which entries to retry,
/// which were refused for good.
struct Settled {
    request: Request,
    went_through: bool,
    keep: Vec<usize>,
    refused: Vec<usize>,
}

impl Request {
    fn len(&self) -> usize {
        match self {
            Request::Deletes(receipts) => receipts.len(),
            Request::Changes(changes) => changes.len(),
        }
    }

    fn receipt(&self, index: usize) -> &str {
        match self {
            Request::Deletes(receipts) => &receipts[index],
            Request::Changes(changes) => &changes[index].receipt_handle,
        }
    }

    async fn send<S: Subscriber>(self, shared: Arc<Shared<S>>) -> Settled {
        let result = match &self {
            Request::Changes(changes) => shared.subscriber.change_visibility_batch(changes).await,
            Request::Deletes(receipts) => {
                // At most ten, borrowed on the stack: the receipts stay here, to retry.
                let mut handles = [""; MAX_BATCH];
                for (handle, receipt) in handles.iter_mut().zip(receipts) {
                    *handle = receipt;
                }
                shared.subscriber.ack_batch(&handles[..receipts.len()]).await
            }
        };
        let what = match &self {
            Request::Changes(_) => "change visibility",
            Request::Deletes(_) => "delete",
        };
        let (went_through, keep, refused) = settle_results(result, &self, what);
        Settled { request: self, went_through, keep, refused }
    }
}

impl Pending {
    fn push(&mut self, item: Settle) {
        match item {
            Settle::Delete(receipt, payload) => {
                if let Some(pointer) = payload {
                    self.payloads.insert(receipt.clone(), pointer);
                }
                self.deletes.push(receipt);
            }
            Settle::Visibility(receipt_handle, timeout) => {
                match self.changes.iter_mut().find(|c| c.receipt_handle == receipt_handle) {
                    Some(change) => change.timeout = timeout,
                    None => self.changes.push(VisibilityChange { receipt_handle, timeout }),
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.changes.is_empty()
    }

    fn len(&self) -> usize {
        self.deletes.len() + self.changes.len()
    }

    /// A full batch, or with `partial` any batch; visibility changes first (a heartbeat on a
    /// message about to be deleted must not fail for want of its receipt).
    fn next_request(&mut self, partial: bool) -> Option<Request> {
        let ready = |len: usize| len >= MAX_BATCH || (partial && len > 0);
        if ready(self.changes.len()) {
            let n = self.changes.len().min(MAX_BATCH);
            return Some(Request::Changes(self.changes.drain(..n).collect()));
        }
        if ready(self.deletes.len()) {
            let n = self.deletes.len().min(MAX_BATCH);
            return Some(Request::Deletes(self.deletes.drain(..n).collect()));
        }
        None
    }

    /// The offloaded bodies of the messages `done` deleted, no longer tracked; those of the
    /// entries refused for good are dropped too (their messages reappear, and bring their
    /// pointers again), those to retry stay.
    fn settled_payloads(&mut self, done: &Settled) -> Vec<PayloadPointer> {
        let Request::Deletes(receipts) = &done.request else { return Vec::new() };
        if self.payloads.is_empty() {
            return Vec::new();
        }
        let mut deleted = Vec::new();
        for (index, receipt) in receipts.iter().enumerate() {
            if done.keep.contains(&index) {
                continue;
            }
            if let Some(pointer) = self.payloads.remove(receipt) {
                if done.went_through && !done.refused.contains(&index) {
                    deleted.push(pointer);
                }
            }
        }
        deleted
    }

    /// Puts back the entries of `request` at `keep`.
    fn requeue(&mut self, request: Request, keep: &[usize]) {
        match request {
            Request::Deletes(receipts) => self.deletes.extend(keep.iter().map(|&i| receipts[i].clone())),
            Request::Changes(changes) => {
                for &i in keep {
                    let change = &changes[i];
                    // A newer change of the same receipt, queued meanwhile, wins.
                    if !self.changes.iter().any(|c| c.receipt_handle == change.receipt_handle) {
                        self.changes.push(change.clone());
                    }
                }
            }
        }
    }
}

/// Reads one batch call's results: whether the request went through, the indices of the
/// entries to try again (all of them on a retryable request failure; the retryable failed
/// entries otherwise), and those of the entries refused for good. Non-retryable failures are
/// logged and dropped: the message reappears.
fn settle_results(
    result: Result<Vec<Result<(), crate::transport::EntryError>>, crate::transport::TransportError>,
    request: &Request,
    what: &str,
) -> (bool, Vec<usize>, Vec<usize>) {
    let len = request.len();
    match result {
        Ok(entries) => {
            let mut keep = Vec::new();
            let mut refused = Vec::new();
            // A transport that answers for fewer entries leaves the rest unconfirmed.
            refused.extend(entries.len()..len);
            for (index, entry) in entries.into_iter().enumerate() {
                if let Err(error) = entry {
                    if error.retryable {
                        keep.push(index);
                    } else {
                        refused.push(index);
                        // The service's words may quote the whole receipt handle: logs show its start.
                        let receipt = request.receipt(index);
                        let error = error.to_string().replace(receipt, &format!("{}…", truncate(receipt)));
                        tracing::warn!(receipt_handle = %truncate(receipt), %error,
                            "{what} refused; the message will reappear");
                    }
                }
            }
            (true, keep, refused)
        }
        Err(error) if error.is_retryable() => {
            tracing::warn!(%error, entries = len, "{what} failed; will retry");
            (false, (0..len).collect(), Vec::new())
        }
        Err(error) => {
            tracing::error!(%error, entries = len, "{what} refused; those messages will reappear");
            (false, Vec::new(), Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{EntryError, TransportError};

    fn delete(receipt: &str) -> Settle {
        Settle::Delete(receipt.to_owned(), None)
    }

    fn visibility(receipt: &str, secs: u64) -> Settle {
        Settle::Visibility(receipt.to_owned(), Duration::from_secs(secs))
    }

    fn change(receipt: &str, secs: u64) -> VisibilityChange {
        VisibilityChange { receipt_handle: receipt.to_owned(), timeout: Duration::from_secs(secs) }
    }

    fn receipts(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    }

    fn refused(retryable: bool) -> Result<(), EntryError> {
        Err(EntryError { code: "Refused".into(), message: "no".into(), retryable })
    }

    #[test]
    fn a_full_batch_of_deletes_goes_as_one_request_and_an_eleventh_waits() {
        let mut pending = Pending::default();
        for receipt in receipts("r", 11) {
            pending.push(Settle::Delete(receipt, None));
        }
        assert_eq!(pending.next_request(false), Some(Request::Deletes(receipts("r", 10))));
        assert_eq!(pending.next_request(false), None, "one delete is not a full batch");
        assert_eq!(pending.deletes, ["r10"]);
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn a_partial_batch_goes_only_when_asked() {
        let mut pending = Pending::default();
        pending.push(delete("a"));
        pending.push(delete("b"));
        assert_eq!(pending.next_request(false), None);
        assert_eq!(pending.len(), 2);
        assert_eq!(pending.next_request(true), Some(Request::Deletes(vec!["a".into(), "b".into()])));
        assert!(pending.is_empty());
        assert_eq!(pending.next_request(true), None, "nothing left to send");
    }

    #[test]
    fn visibility_changes_go_before_deletes() {
        let mut pending = Pending::default();
        for receipt in receipts("d", 10) {
            pending.push(Settle::Delete(receipt, None));
        }
        pending.push(visibility("v", 30));
        // A full batch of deletes waits behind even a partial batch of changes.
        assert_eq!(pending.next_request(true), Some(Request::Changes(vec![change("v", 30)])));
        assert_eq!(pending.next_request(true), Some(Request::Deletes(receipts("d", 10))));

        // Without `partial`, a full batch of changes still goes first.
        let mut pending = Pending::default();
        for receipt in receipts("d", 10) {
            pending.push(Settle::Delete(receipt, None));
        }
        for receipt in receipts("v", 10) {
            pending.push(Settle::Visibility(receipt, Duration::ZERO));
        }
        let Some(Request::Changes(changes)) = pending.next_request(false) else { panic!("changes first") };
        assert_eq!(changes.len(), 10);
        assert_eq!(pending.next_request(false), Some(Request::Deletes(receipts("d", 10))));
    }

    #[test]
    fn a_later_visibility_change_replaces_an_unsent_earlier_one() {
        let mut pending = Pending::default();
        pending.push(visibility("a", 60));
        pending.push(visibility("b", 60));
        pending.push(visibility("a", 0));
        assert_eq!(pending.changes, [change("a", 0), change("b", 60)]);
        assert_eq!(pending.len(), 2);
    }

    #[test]
    fn a_visibility_change_after_one_already_sent_is_queued_anew() {
        let mut pending = Pending::default();
        pending.push(visibility("a", 60));
        assert_eq!(pending.next_request(true), Some(Request::Changes(vec![change("a", 60)])));
        pending.push(visibility("a", 0));
        assert_eq!(pending.changes, [change("a", 0)]);
    }

    #[test]
    fn requeue_puts_back_only_the_kept_deletes() {
        let mut pending = Pending::default();
        pending.push(delete("x"));
        pending.requeue(Request::Deletes(receipts("r", 4)), &[1, 3]);
        assert_eq!(pending.deletes, ["x", "r1", "r3"]);
        assert!(pending.changes.is_empty());
    }

    #[test]
    fn requeue_puts_back_only_the_kept_changes_and_a_newer_change_wins() {
        let mut pending = Pending::default();
        // Queued while the request was out: a nack of `b` after its heartbeat extension.
        pending.push(visibility("b", 0));
        let request = Request::Changes(vec![change("a", 30), change("b", 30), change("c", 30)]);
        pending.requeue(request, &[0, 1]);
        assert_eq!(pending.changes, [change("b", 0), change("a", 30)]);
        assert!(pending.deletes.is_empty());
    }

    #[test]
    fn settle_results_keeps_the_retryable_failed_entries_only() {
        let request = Request::Deletes(receipts("r", 4));
        let result = Ok(vec![Ok(()), refused(true), refused(false), refused(true)]);
        assert_eq!(settle_results(result, &request, "delete"), (true, vec![1, 3], vec![2]));
    }

    #[test]
    fn settle_results_keeps_nothing_when_every_entry_went_through() {
        let request = Request::Changes(vec![change("a", 0), change("b", 0)]);
        assert_eq!(
            settle_results(Ok(vec![Ok(()), Ok(())]), &request, "change visibility"),
            (true, vec![], vec![])
        );
    }

    #[test]
    fn settle_results_keeps_all_on_a_retryable_request_failure() {
        let request = Request::Deletes(receipts("r", 3));
        let result = Err(TransportError::Unavailable("timeout".into()));
        assert_eq!(settle_results(result, &request, "delete"), (false, vec![0, 1, 2], vec![]));
    }

    #[test]
    fn settle_results_keeps_none_on_a_non_retryable_request_failure() {
        let request = Request::Deletes(receipts("r", 3));
        let result = Err(TransportError::Invalid("bad".into()));
        assert_eq!(settle_results(result, &request, "delete"), (false, vec![], vec![]));
    }

    #[test]
    fn a_refused_non_ascii_receipt_is_logged_without_panicking() {
        // Byte 16 falls inside an `é`: slicing there used to panic in the settler.
        let receipt = format!("a{}", "é".repeat(20));
        let request = Request::Deletes(vec![receipt.clone()]);
        let error = EntryError { code: "ReceiptHandleIsInvalid".into(), message: receipt, retryable: false };
        assert_eq!(settle_results(Ok(vec![Err(error)]), &request, "delete"), (true, vec![], vec![0]));
    }

    #[test]
    fn retry_delays_double_from_100_ms() {
        let delays: Vec<u64> = (1..=8).map(|n| retry_delay(n).as_millis() as u64).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 3200, 3200]);
        assert_eq!(retry_delay(u32::MAX), Duration::from_millis(3200));
    }
}
