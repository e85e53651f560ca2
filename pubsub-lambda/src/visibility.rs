//! Applying RETRIED's delay and FAILED's backoff to the records Lambda will hand back: SQS
//! `ChangeMessageVisibilityBatch`, ten receipts a request, one queue at a time, all at once.
//! A change that fails is logged and reported on its record; it never fails the invocation.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use pubsub_aws::SqsSubscriber;
use pubsub_core::transport::{Subscriber, VisibilityChange, MAX_BATCH};

/// What became of the visibility of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Left as it is: the record is deleted (SUCCEEDED, SKIPPED, IGNORED, EXPIRED), was not
    /// handled (its delay is the queue's visibility timeout), came from SNS, or the function
    /// changes no visibility.
    Unchanged,
    /// Made visible again after this delay (RETRIED's, or FAILED's backoff).
    Changed(Duration),
    /// The change was asked for and did not happen: the record comes back after the queue's
    /// visibility timeout instead.
    Failed {
        /// The delay that was asked for.
        delay: Duration,
        /// Why it did not happen.
        error: String,
    },
}

/// One change to make: the index of its record, its queue, its receipt and its delay.
pub(crate) struct Wanted {
    pub(crate) index: usize,
    pub(crate) queue_url: String,
    pub(crate) receipt_handle: String,
    pub(crate) delay: Duration,
}

/// Makes `wanted` through `client`; the result of each, by record index.
pub(crate) async fn change(client: &aws_sdk_sqs::Client, wanted: Vec<Wanted>) -> Vec<(usize, Visibility)> {
    let mut by_queue: BTreeMap<String, Vec<Wanted>> = BTreeMap::new();
    for change in wanted {
        by_queue.entry(change.queue_url.clone()).or_default().push(change);
    }
    let mut requests = Vec::new();
    for (queue_url, changes) in by_queue {
        // The queue's visibility timeout is not needed to change a receipt's: zero.
        let queue = SqsSubscriber::with_client(client.clone(), &queue_url, Duration::ZERO);
        let mut changes = changes.into_iter().peekable();
        while changes.peek().is_some() {
            let chunk: Vec<Wanted> = changes.by_ref().take(MAX_BATCH).collect();
            requests.push(send(queue.clone(), chunk));
        }
    }
    join_all(requests).await.into_iter().flatten().collect()
}

/// One `ChangeMessageVisibilityBatch` of up to ten receipts of one queue.
async fn send(queue: SqsSubscriber, chunk: Vec<Wanted>) -> Vec<(usize, Visibility)> {
    let changes: Vec<_> = chunk
        .iter()
        .map(|w| VisibilityChange { receipt_handle: w.receipt_handle.clone(), timeout: w.delay })
        .collect();
    let results = queue.change_visibility_batch(&changes).await;
    let queue_url = queue.queue_url();
    chunk
        .iter()
        .enumerate()
        .map(|(position, wanted)| {
            let error = match &results {
                Ok(entries) => match entries.get(position) {
                    Some(Ok(())) => None,
                    Some(Err(entry)) => Some(entry.to_string()),
                    None => Some("SQS returned no result for this entry".to_owned()),
                },
                Err(request) => Some(request.to_string()),
            };
            let visibility = match error {
                None => Visibility::Changed(wanted.delay),
                Some(error) => {
                    tracing::warn!(
                        queue_url,
                        delay_ms = wanted.delay.as_millis() as u64,
                        %error,
                        "visibility change failed; the record comes back after the queue's visibility timeout"
                    );
                    Visibility::Failed { delay: wanted.delay, error }
                }
            };
            (wanted.index, visibility)
        })
        .collect()
}
