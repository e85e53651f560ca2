//! One SQS queue: visibility, receive counts, receipt handles, and the hand-off of messages
//! that exhausted their receives to the dead-letter queue.
//!
//! Messages are numbered in arrival order. The visible ones are an ordered set of those
//! numbers (a receive takes the oldest first); the in-flight ones have an entry in a min-heap
//! of visibility deadlines. A heap entry carries the message's generation at the time it was
//! pushed: deleting a message, changing its visibility or receiving it again makes the entry
//! stale, and stale entries are dropped when they reach the top (lazy invalidation), so no
//! operation scans the queue.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::options::{QueueOptions, QueueStats};
use crate::transport::{Attributes, EntryError, ReceivedMessage};

/// SQS's limit on a visibility timeout.
const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);

/// A message on its way into a queue.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub message_id: String,
    pub body: String,
    pub attributes: Attributes,
}

/// What a receive took, and what it found for the dead-letter queue.
pub(crate) struct Taken {
    pub messages: Vec<ReceivedMessage>,
    /// Messages that exhausted their receives, for `dead_letter_queue`.
    pub dead: Vec<NewMessage>,
    pub dead_letter_queue: Option<String>,
    /// When the next in-flight message becomes visible, if any is in flight.
    pub next_visible_at: Option<Instant>,
}

pub(crate) struct Queue {
    pub name: String,
    pub url: String,
    state: Mutex<State>,
    /// Woken when a message may have become receivable sooner than waiters expect.
    pub notify: Notify,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("url", &self.url).finish_non_exhaustive()
    }
}

struct Stored {
    message: NewMessage,
    /// When the queue took it (SQS's `SentTimestamp`).
    sent_at: SystemTime,
    receive_count: u32,
    /// The handle of the latest receive.
    receipt: Option<String>,
    /// Bumped by every receive and visibility change: deadline entries of older generations
    /// are stale.
    generation: u64,
    visible: bool,
}

struct State {
    options: QueueOptions,
    next_sequence: u64,
    messages: HashMap<u64, Stored>,
    visible: BTreeSet<u64>,
    /// (visible again at, sequence, generation), earliest first.
    deadlines: BinaryHeap<Reverse<(Instant, u64, u64)>>,
}

impl Queue {
    pub(crate) fn new(name: &str, url: String, options: QueueOptions) -> Self {
        Queue {
            name: name.to_owned(),
            url,
            state: Mutex::new(State {
                options,
                next_sequence: 0,
                messages: HashMap::new(),
                visible: BTreeSet::new(),
                deadlines: BinaryHeap::new(),
            }),
            notify: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn options(&self) -> QueueOptions {
        self.state().options.clone()
    }

    pub(crate) fn set_options(&self, options: QueueOptions) {
        self.state().options = options;
        // A shorter timeout changes no deadline already set; nothing to wake.
    }

    /// Appends messages, visible at once, and wakes long pollers.
    pub(crate) fn push(&self, messages: impl IntoIterator<Item = NewMessage>) {
        {
            let mut state = self.state();
            let state = &mut *state;
            let sent_at = SystemTime::now();
            for message in messages {
                let sequence = state.next_sequence;
                state.next_sequence += 1;
                state.messages.insert(
                    sequence,
                    Stored {
                        message,
                        sent_at,
                        receive_count: 0,
                        receipt: None,
                        generation: 0,
                        visible: true,
                    },
                );
                state.visible.insert(sequence);
            }
        }
        self.notify.notify_waiters();
    }

    /// Receives up to `max` visible messages, oldest first, making each invisible for the
    /// visibility timeout; messages already received `max_receive_count` times are taken out
    /// for the dead-letter queue instead.
    pub(crate) fn receive(&self, max: usize, now: Instant) -> Taken {
        let mut guard = self.state();
        let state = &mut *guard;
        state.make_due_visible(now);
        let redrive = state.options.redrive.as_ref();
        let max_receive_count = redrive.map(|redrive| redrive.max_receive_count.max(1));
        let visible_until = now + state.options.visibility_timeout;
        let mut messages = Vec::with_capacity(max.min(state.visible.len()));
        let mut dead = Vec::new();
        while messages.len() < max {
            let Some(sequence) = state.visible.pop_first() else { break };
            let stored = state.messages.get_mut(&sequence).expect("a visible message is stored");
            if max_receive_count.is_some_and(|limit| stored.receive_count >= limit) {
                let stored = state.messages.remove(&sequence).expect("a visible message is stored");
                dead.push(stored.message);
                continue;
            }
            stored.receive_count += 1;
            stored.generation += 1;
            stored.visible = false;
            let receipt = new_receipt(sequence);
            stored.receipt = Some(receipt.clone());
            state.deadlines.push(Reverse((visible_until, sequence, stored.generation)));
            let mut received =
                ReceivedMessage::new(stored.message.message_id.clone(), receipt, stored.message.body.clone());
            received.receive_count = stored.receive_count;
            received.attributes = stored.message.attributes.clone();
            received.sent_at = Some(stored.sent_at);
            messages.push(received);
        }
        let dead_letter_queue =
            if dead.is_empty() { None } else { redrive.map(|redrive| redrive.dead_letter_queue.clone()) };
        state.compact();
        let next_visible_at = state.deadlines.peek().map(|Reverse((at, _, _))| *at);
        Taken { messages, dead, dead_letter_queue, next_visible_at }
    }

    /// Deletes the messages of `receipts`; one result each, in order.
    pub(crate) fn delete(&self, receipts: Vec<String>) -> Vec<Result<(), EntryError>> {
        let mut guard = self.state();
        let state = &mut *guard;
        let results = receipts
            .iter()
            .map(|receipt| {
                let sequence = state.current_receipt(receipt)?;
                let stored = state.messages.remove(&sequence).expect("a current receipt's message is stored");
                if stored.visible {
                    state.visible.remove(&sequence);
                }
                Ok(())
            })
            .collect();
        state.compact();
        results
    }

    /// Makes each receipt's message visible `timeout` from `now` (0: at once); one result
    /// each, in order. Wakes long pollers if a message may become visible sooner.
    pub(crate) fn change_visibility(
        &self,
        changes: Vec<(String, Duration)>,
        now: Instant,
    ) -> Vec<Result<(), EntryError>> {
        let mut wake = false;
        let results = {
            let mut guard = self.state();
            let state = &mut *guard;
            state.make_due_visible(now);
            let results = changes
                .iter()
                .map(|(receipt, timeout)| {
                    let sequence = state.current_receipt(receipt)?;
                    if *timeout > MAX_VISIBILITY_TIMEOUT {
                        return Err(EntryError {
                            code: "InvalidParameterValue".to_owned(),
                            message: format!("visibility timeout {timeout:?} is over 12 hours"),
                            retryable: false,
                        });
                    }
                    let stored =
                        state.messages.get_mut(&sequence).expect("a current receipt's message is stored");
                    if stored.visible {
                        return Err(EntryError {
                            code: "MessageNotInflight".to_owned(),
                            message: "the message is visible again: its visibility timeout ran out"
                                .to_owned(),
                            retryable: false,
                        });
                    }
                    stored.generation += 1;
                    if timeout.is_zero() {
                        stored.visible = true;
                        state.visible.insert(sequence);
                        wake = true;
                    } else {
                        let at = now + *timeout;
                        wake |= state.deadlines.peek().is_none_or(|Reverse((first, _, _))| at < *first);
                        state.deadlines.push(Reverse((at, sequence, stored.generation)));
                    }
                    Ok(())
                })
                .collect();
            state.compact();
            results
        };
        if wake {
            self.notify.notify_waiters();
        }
        results
    }

    pub(crate) fn stats(&self, now: Instant) -> QueueStats {
        let mut state = self.state();
        state.make_due_visible(now);
        let total = state.messages.len();
        let visible = state.visible.len();
        QueueStats { visible, in_flight: total - visible, total }
    }

    /// The bodies of all messages, oldest first.
    pub(crate) fn bodies(&self) -> Vec<String> {
        let state = self.state();
        let mut sequences: Vec<u64> = state.messages.keys().copied().collect();
        sequences.sort_unstable();
        sequences.into_iter().map(|sequence| state.messages[&sequence].message.body.clone()).collect()
    }
}

impl State {
    /// Moves the in-flight messages whose deadline has passed to the visible set, and drops
    /// stale deadlines at the top of the heap (so its top, if any, is a live deadline).
    fn make_due_visible(&mut self, now: Instant) {
        while let Some(&Reverse((at, sequence, generation))) = self.deadlines.peek() {
            let live = self
                .messages
                .get(&sequence)
                .is_some_and(|stored| stored.generation == generation && !stored.visible);
            if live && at > now {
                break;
            }
            self.deadlines.pop();
            if live {
                let stored = self.messages.get_mut(&sequence).expect("checked above");
                stored.visible = true;
                self.visible.insert(sequence);
            }
        }
    }

    /// Drops the stale deadlines when they outnumber the live ones (amortized O(1) per push),
    /// and gives back the message table's memory once a backlog has drained: a `HashMap` keeps
    /// its largest capacity otherwise (15 MiB after 100,000 messages). Shrunk to twice the
    /// messages left when under an eighth full: the next shrink comes only after at least 40%
    /// of the entries this one moved are deleted (amortized O(1)), and the new table, allocated
    /// while the old one is still there, is small.
    fn compact(&mut self) {
        if self.messages.capacity() > 4096 && self.messages.len() * 8 < self.messages.capacity() {
            self.messages.shrink_to(self.messages.len() * 2);
        }
        let in_flight = self.messages.len() - self.visible.len();
        if self.deadlines.len() > 64 && self.deadlines.len() > 2 * in_flight {
            let messages = &self.messages;
            self.deadlines.retain(|Reverse((_, sequence, generation))| {
                messages
                    .get(sequence)
                    .is_some_and(|stored| stored.generation == *generation && !stored.visible)
            });
        }
    }

    /// The message whose latest receive gave `receipt`.
    fn current_receipt(&self, receipt: &str) -> Result<u64, EntryError> {
        parse_receipt(receipt)
            .filter(|sequence| {
                self.messages.get(sequence).is_some_and(|stored| stored.receipt.as_deref() == Some(receipt))
            })
            .ok_or_else(|| EntryError {
                code: "ReceiptHandleIsInvalid".to_owned(),
                message: format!(
                    "the receipt handle `{receipt}` is not the latest of a message in this queue"
                ),
                retryable: false,
            })
    }
}

/// A fresh receipt handle: the message's sequence and a random nonce, in hex.
fn new_receipt(sequence: u64) -> String {
    format!("{sequence:016x}{:016x}", fastrand::u64(..))
}

fn parse_receipt(receipt: &str) -> Option<u64> {
    if receipt.len() != 32 {
        return None;
    }
    u64::from_str_radix(receipt.get(..16)?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_table_gives_its_memory_back_once_a_backlog_drains() {
        let queue = Queue::new("q", "memory://queue/q".to_owned(), QueueOptions::default());
        let backlog = 20_000;
        queue.push((0..backlog).map(|i| NewMessage {
            message_id: i.to_string(),
            body: String::new(),
            attributes: Attributes::new(),
        }));
        let grown = queue.state().messages.capacity();
        assert!(grown >= backlog, "{grown}");
        let now = Instant::now();
        for _ in 0..backlog / 10 {
            let receipts = queue.receive(10, now).messages.into_iter().map(|m| m.receipt_handle).collect();
            assert!(queue.delete(receipts).iter().all(Result::is_ok));
        }
        assert_eq!(queue.stats(now).total, 0);
        let drained = queue.state().messages.capacity();
        assert!(drained <= 4096, "capacity {drained} after draining (was {grown})");
    }
}
