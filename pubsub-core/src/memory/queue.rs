//! One SQS queue: visibility, delays, receive counts, receipt handles, the hand-off of
//! messages that exhausted their receives to the dead-letter queue, and FIFO semantics.
//!
//! Messages are numbered in arrival order. The visible ones are an ordered set of those
//! numbers (a receive takes the oldest first; see [`VisibleSet`]); the in-flight and delayed
//! ones have an entry in a min-heap of visibility deadlines. A heap entry carries the
//! message's generation at the time it was pushed: deleting a message, changing its
//! visibility or receiving it again makes the entry stale, and stale entries are dropped when
//! they reach the top (lazy invalidation), so no operation scans the queue.
//!
//! A FIFO queue also keeps, per message group, its visible messages and how many are in
//! flight, and an ordered set of the groups a receive may take from (none in flight, some
//! visible), keyed by their oldest visible message: a receive takes the oldest such group's
//! messages, in order, then the next group's, without scanning blocked groups.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::dedup::{content_id, Deduplication};
use super::notification::PendingNotification;
use super::options::{DeduplicationScope, QueueOptions, QueueStats};
use super::visible::VisibleSet;
use crate::transport::{Attributes, Destination, EntryError, MessageId, ReceivedMessage, MAX_DELAY};
use crate::uuid::Uuid;
use rustc_hash::FxHashMap;

/// SQS's limit on a visibility timeout.
pub(crate) const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);

/// The first sequence number of a FIFO queue: SQS's are decimal strings of 20 digits and
/// more, and this keeps ours 20 digits long (so they also sort as text).
const FIRST_SEQUENCE_NUMBER: u128 = 18_000_000_000_000_000_000;

/// A message's body as a queue keeps it.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// The text itself: raw delivery, a direct send, a message moved from another queue.
    Text(String),
    /// An SNS notification, kept as its parts and written out at each receive: its JSON is
    /// four times the message it carries (the message escaped, the URLs and the signature),
    /// and it was most of what a backlog held. Not boxed: its 64 bytes cost less in place
    /// than an allocation of their own.
    Notification(PendingNotification),
}

impl Body {
    /// The body as SQS gives it.
    pub(crate) fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Body::Text(text) => std::borrow::Cow::Borrowed(text),
            Body::Notification(notification) => std::borrow::Cow::Owned(notification.body()),
        }
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::Text(text)
    }
}

/// A message on its way into a queue.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub message_id: KeptId,
    pub body: Body,
    /// Its SQS message attributes, if any: none for a notification (whose are in its body),
    /// and no empty map to drop.
    pub attributes: Option<Box<Attributes>>,
    /// The FIFO message group (ignored by standard queues).
    pub group_id: Option<String>,
    /// The FIFO deduplication id (ignored by standard queues).
    pub deduplication_id: Option<String>,
    /// The message's own delay (standard queues only: a FIFO queue refuses it).
    pub delay: Option<Duration>,
}

impl NewMessage {
    /// A message with no attribute, group, deduplication id or delay.
    pub(crate) fn new(message_id: impl Into<KeptId>, body: impl Into<Body>) -> Self {
        NewMessage {
            message_id: message_id.into(),
            body: body.into(),
            attributes: None,
            group_id: None,
            deduplication_id: None,
            delay: None,
        }
    }

    /// With `attributes` as its SQS message attributes (none kept when empty).
    pub(crate) fn with_attributes(mut self, attributes: Attributes) -> Self {
        self.attributes = (!attributes.is_empty()).then(|| Box::new(attributes));
        self
    }
}

/// What a receive took, and what it found for the dead-letter queue.
pub(crate) struct Taken {
    pub messages: Vec<ReceivedMessage>,
    /// Messages that exhausted their receives, for `dead_letter_queue`.
    pub dead: Vec<NewMessage>,
    pub dead_letter_queue: Option<String>,
    /// When the next in-flight or delayed message becomes visible, if any.
    pub next_visible_at: Option<Instant>,
}

pub(crate) struct Queue {
    pub name: String,
    pub url: String,
    /// Whether it is a FIFO queue (its name ends in `.fifo`).
    pub fifo: bool,
    state: Mutex<State>,
    /// Woken when a message may have become receivable sooner than waiters expect.
    pub notify: Notify,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("url", &self.url).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Visible,
    InFlight,
    /// Sent with a delay that has not passed yet.
    Delayed,
}

/// A [`NewMessage`] as a queue keeps it: its delay spent on arrival, its FIFO ids boxed
/// (standard queues have none), so that a backlog's table entries stay small.
struct Kept {
    message_id: KeptId,
    body: Body,
    /// Its SQS message attributes, if any (a notification's are in its body).
    attributes: Option<Box<Attributes>>,
    /// The FIFO group and deduplication id, if either.
    fifo: Option<Box<(Option<String>, Option<String>)>>,
}

impl Kept {
    fn new(message: NewMessage) -> Kept {
        let fifo = match (message.group_id, message.deduplication_id) {
            (None, None) => None,
            ids => Some(Box::new(ids)),
        };
        Kept { message_id: message.message_id, body: message.body, attributes: message.attributes, fifo }
    }

    /// Back to a message, for another queue (the dead-letter queue).
    fn into_message(self) -> NewMessage {
        let (group_id, deduplication_id) = self.fifo.map(|ids| *ids).unwrap_or_default();
        NewMessage {
            message_id: self.message_id,
            body: self.body,
            attributes: self.attributes,
            group_id,
            deduplication_id,
            delay: None,
        }
    }

    fn group_id(&self) -> Option<&str> {
        self.fifo.as_ref().and_then(|ids| ids.0.as_deref())
    }

    fn deduplication_id(&self) -> Option<&str> {
        self.fifo.as_ref().and_then(|ids| ids.1.as_deref())
    }
}

/// A message id: the broker's own (a UUID) as its bits, any other as its text.
#[derive(Debug, Clone)]
pub(crate) enum KeptId {
    Uuid(Uuid),
    Text(Box<str>),
}

impl From<Uuid> for KeptId {
    fn from(uuid: Uuid) -> KeptId {
        KeptId::Uuid(uuid)
    }
}

/// Kept as its bits if it is a UUID's text.
impl From<String> for KeptId {
    fn from(text: String) -> KeptId {
        match Uuid::parse(&text) {
            Some(uuid) => KeptId::Uuid(uuid),
            None => KeptId::Text(text.into()),
        }
    }
}

impl KeptId {
    pub(crate) fn text(&self) -> String {
        match self {
            KeptId::Uuid(uuid) => uuid.text(),
            KeptId::Text(text) => text.to_string(),
        }
    }
}

struct Stored {
    message: Kept,
    /// When the queue took it (SQS's `SentTimestamp`).
    sent_at: SystemTime,
    receive_count: u32,
    /// The random half of the latest receive's handle (the other half is the sequence
    /// number); 0 before the first receive.
    receipt_nonce: u64,
    /// Bumped by every receive and visibility change: deadline entries of older generations
    /// are stale.
    generation: u64,
    status: Status,
}

/// One message group of a FIFO queue.
#[derive(Default)]
struct Group {
    /// Its visible messages, oldest first.
    visible: BTreeSet<u64>,
    /// How many of its messages are in flight: while any is, the group is blocked.
    in_flight: usize,
    /// Its key in `State::ready`, if it is there.
    ready_at: Option<u64>,
}

/// What becomes of a message sent to a queue.
enum Admission {
    /// Stored, with its deduplication id on a FIFO queue.
    Enqueue(NewMessage),
    /// A FIFO duplicate: not stored; the original's message id.
    Duplicate(MessageId),
}

/// A deduplication id, in the group it is unique in (none: the queue).
type DeduplicationKey = (Option<String>, String);

struct State {
    options: QueueOptions,
    fifo: bool,
    next_sequence: u64,
    messages: FxHashMap<u64, Stored>,
    visible: VisibleSet,
    delayed: usize,
    /// (visible again at, sequence, generation), earliest first.
    deadlines: BinaryHeap<Reverse<(Instant, u64, u64)>>,
    /// FIFO: the groups with messages visible or in flight, by id.
    groups: HashMap<String, Group>,
    /// FIFO: the groups a receive may take from, by their oldest visible message.
    ready: BTreeMap<u64, String>,
    /// FIFO: the deduplication ids of the last 5 minutes.
    deduplication: Deduplication<DeduplicationKey>,
}

impl Queue {
    pub(crate) fn new(name: &str, url: String, options: QueueOptions) -> Self {
        let fifo = Destination::of(name).is_fifo();
        Queue {
            name: name.to_owned(),
            url,
            fifo,
            state: Mutex::new(State {
                options,
                fifo,
                next_sequence: 0,
                messages: FxHashMap::default(),
                visible: VisibleSet::default(),
                delayed: 0,
                deadlines: BinaryHeap::new(),
                groups: HashMap::new(),
                ready: BTreeMap::new(),
                deduplication: Deduplication::new(),
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
        // A shorter timeout or delay changes no deadline already set; nothing to wake.
    }

    /// Takes messages as SQS `SendMessage(Batch)` does (and SNS delivers): on a FIFO queue,
    /// each needs a group and a deduplication id (or content-based deduplication), takes no
    /// delay of its own, and a duplicate of the last 5 minutes is answered with the original's
    /// message id but not enqueued again. A delay (the message's on a standard queue, else the
    /// queue's) hides the message until it passes. One result each, in order.
    pub(crate) fn send(&self, messages: Vec<NewMessage>, now: Instant) -> Vec<Result<MessageId, EntryError>> {
        self.send_with(messages, now, KeptId::text, |original| original)
    }

    /// As [`send`](Queue::send), for SNS, which has no use for the queue's message ids: only
    /// what was refused, without writing an id for each message.
    pub(crate) fn deliver(&self, messages: Vec<NewMessage>, now: Instant) -> Vec<EntryError> {
        let results = self.send_with(messages, now, |_| (), drop);
        results.into_iter().filter_map(Result::err).collect()
    }

    /// [`send`](Queue::send), with each result made by `enqueued` (from the new message's id)
    /// or `duplicate` (from the original's).
    fn send_with<T>(
        &self,
        messages: Vec<NewMessage>,
        now: Instant,
        enqueued: impl Fn(&KeptId) -> T,
        duplicate: impl Fn(MessageId) -> T,
    ) -> Vec<Result<T, EntryError>> {
        let mut any_enqueued = false;
        let results = {
            let mut state = self.state();
            messages
                .into_iter()
                .map(|message| match state.admit(message, now)? {
                    Admission::Enqueue(message) => {
                        let result = enqueued(&message.message_id);
                        state.enqueue(message, now);
                        any_enqueued = true;
                        Ok(result)
                    }
                    Admission::Duplicate(original) => Ok(duplicate(original)),
                })
                .collect()
        };
        if any_enqueued {
            // Wakes pollers also for a delayed message: its deadline may be the nearest.
            self.notify.notify_waiters();
        }
        results
    }

    /// Appends messages moved from another queue (redrive): no checks, no deduplication, no
    /// delay; group and deduplication id kept. Wakes long pollers.
    pub(crate) fn push(&self, messages: impl IntoIterator<Item = NewMessage>) {
        {
            let mut state = self.state();
            let now = Instant::now();
            for mut message in messages {
                message.delay = Some(Duration::ZERO);
                state.enqueue(message, now);
            }
        }
        self.notify.notify_waiters();
    }

    /// Receives up to `max` visible messages, oldest first, making each invisible for the
    /// visibility timeout; messages already received `max_receive_count` times are taken out
    /// for the dead-letter queue instead. A FIFO queue skips the groups that have a message in
    /// flight, and returns the oldest group's messages (in order) before the next group's.
    pub(crate) fn receive(&self, max: usize, now: Instant) -> Taken {
        let mut guard = self.state();
        let state = &mut *guard;
        state.make_due_visible(now);
        let max_receive_count =
            state.options.redrive.as_ref().map(|redrive| redrive.max_receive_count.max(1));
        let visible_until = now + state.options.visibility_timeout;
        let mut messages = Vec::with_capacity(max.min(state.visible.len()));
        let mut dead = Vec::new();
        // FIFO: the group taken from last, whose next messages come first (as SQS returns as
        // many of one group as it can); its own messages in flight are this receive's.
        let mut current_group: Option<String> = None;
        while messages.len() < max {
            let next_of_group = current_group
                .as_ref()
                .and_then(|group| state.groups.get(group))
                .and_then(|entry| entry.visible.first().copied());
            let Some(sequence) = next_of_group.or_else(|| state.next_receivable()) else { break };
            current_group = state.group_of(sequence);
            state.hide(sequence);
            let stored = state.messages.get_mut(&sequence).expect("a visible message is stored");
            if max_receive_count.is_some_and(|limit| stored.receive_count >= limit) {
                let stored = state.messages.remove(&sequence).expect("a visible message is stored");
                state.settle_group(stored.message.group_id());
                dead.push(stored.message.into_message());
                continue;
            }
            stored.receive_count += 1;
            stored.generation += 1;
            stored.status = Status::InFlight;
            stored.receipt_nonce = fastrand::u64(1..);
            let receipt = receipt_handle(sequence, stored.receipt_nonce);
            state.deadlines.push(Reverse((visible_until, sequence, stored.generation)));
            let mut received = ReceivedMessage::new(
                stored.message.message_id.text(),
                receipt,
                stored.message.body.text().into_owned(),
            );
            received.receive_count = stored.receive_count;
            if let Some(attributes) = &stored.message.attributes {
                received.attributes = Attributes::clone(attributes);
            }
            received.sent_at = Some(stored.sent_at);
            if state.fifo {
                received.group_id = stored.message.group_id().map(str::to_owned);
                received.deduplication_id = stored.message.deduplication_id().map(str::to_owned);
                received.sequence_number = Some((FIRST_SEQUENCE_NUMBER + u128::from(sequence)).to_string());
            }
            let group = stored.message.group_id().map(str::to_owned);
            state.in_flight_changed(group.as_deref(), true);
            messages.push(received);
        }
        let dead_letter_queue = if dead.is_empty() {
            None
        } else {
            state.options.redrive.as_ref().map(|redrive| redrive.dead_letter_queue.clone())
        };
        state.compact();
        let next_visible_at = state.deadlines.peek().map(|Reverse((at, _, _))| *at);
        Taken { messages, dead, dead_letter_queue, next_visible_at }
    }

    /// Deletes the messages of `receipts`; one result each, in order. On a FIFO queue, wakes
    /// long pollers: a delete may unblock a group.
    pub(crate) fn delete(&self, receipts: &[&str]) -> Vec<Result<(), EntryError>> {
        let results = {
            let mut guard = self.state();
            let state = &mut *guard;
            let results = receipts
                .iter()
                .map(|receipt| {
                    let sequence = state.current_receipt(receipt)?;
                    let status = state.messages[&sequence].status;
                    match status {
                        Status::Visible => state.hide(sequence),
                        Status::InFlight => {
                            let group = state.messages[&sequence].message.group_id().map(str::to_owned);
                            state.in_flight_changed(group.as_deref(), false);
                        }
                        Status::Delayed => unreachable!("a delayed message has no receipt"),
                    }
                    let stored =
                        state.messages.remove(&sequence).expect("a current receipt's message is stored");
                    state.settle_group(stored.message.group_id());
                    Ok(())
                })
                .collect();
            state.compact();
            results
        };
        if self.fifo {
            self.notify.notify_waiters();
        }
        results
    }

    /// Makes each receipt's message visible `timeout` from `now` (0: at once); one result
    /// each, in order. Wakes long pollers if a message may become visible sooner.
    pub(crate) fn change_visibility(
        &self,
        changes: Vec<(&str, Duration)>,
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
                    if stored.status != Status::InFlight {
                        return Err(EntryError {
                            code: "MessageNotInflight".to_owned(),
                            message: "the message is visible again: its visibility timeout ran out"
                                .to_owned(),
                            retryable: false,
                        });
                    }
                    stored.generation += 1;
                    if timeout.is_zero() {
                        let group = stored.message.group_id().map(str::to_owned);
                        state.in_flight_changed(group.as_deref(), false);
                        state.show(sequence);
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
        let delayed = state.delayed;
        QueueStats { visible, in_flight: total - visible - delayed, delayed, total }
    }

    /// The bodies of all messages, oldest first.
    pub(crate) fn bodies(&self) -> Vec<String> {
        let state = self.state();
        let mut sequences: Vec<u64> = state.messages.keys().copied().collect();
        sequences.sort_unstable();
        sequences
            .into_iter()
            .map(|sequence| state.messages[&sequence].message.body.text().into_owned())
            .collect()
    }
}

/// An entry error SQS gives for a message it refuses.
fn refused(code: &str, message: impl Into<String>) -> EntryError {
    EntryError { code: code.to_owned(), message: message.into(), retryable: false }
}

impl State {
    /// What becomes of a message sent, or why SQS would refuse it.
    fn admit(&mut self, mut message: NewMessage, now: Instant) -> Result<Admission, EntryError> {
        if !self.fifo {
            if let Some(delay) = message.delay.filter(|delay| *delay > MAX_DELAY) {
                return Err(refused(
                    "InvalidParameterValue",
                    format!(
                        "Value {} for parameter DelaySeconds is invalid. Reason: must be between 0 and 900.",
                        delay.as_secs()
                    ),
                ));
            }
            // Standard queues have no groups nor deduplication.
            message.group_id = None;
            message.deduplication_id = None;
            return Ok(Admission::Enqueue(message));
        }
        if let Some(delay) = message.delay {
            return Err(refused(
                "InvalidParameterValue",
                format!(
                    "Value {} for parameter DelaySeconds is invalid. Reason: The request include parameter \
                     that is not valid for this queue type.",
                    delay.as_secs()
                ),
            ));
        }
        let Some(group) = message.group_id.clone() else {
            return Err(refused(
                "MissingParameter",
                "The request must contain the parameter MessageGroupId.",
            ));
        };
        let deduplication_id = match message.deduplication_id.take() {
            Some(id) => id,
            None if self.options.content_based_deduplication => content_id(&message.body.text()),
            None => {
                return Err(refused(
                    "InvalidParameterValue",
                    "The queue should either have ContentBasedDeduplication enabled or \
                     MessageDeduplicationId provided explicitly",
                ))
            }
        };
        let scope = match self.options.deduplication_scope {
            DeduplicationScope::Queue => None,
            DeduplicationScope::MessageGroup => Some(group),
        };
        let key = (scope, deduplication_id.clone());
        if let Some(original) = self.deduplication.duplicate_of(key, &message.message_id.text(), now) {
            tracing::debug!(deduplication_id, "duplicate within the deduplication interval; not enqueued");
            return Ok(Admission::Duplicate(original));
        }
        message.deduplication_id = Some(deduplication_id);
        Ok(Admission::Enqueue(message))
    }

    /// Stores an admitted message, visible at once or after its delay (the queue's if it
    /// has none of its own).
    fn enqueue(&mut self, mut message: NewMessage, now: Instant) {
        let delay = message.delay.take().unwrap_or(self.options.delay);
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let status = if delay.is_zero() { Status::Visible } else { Status::Delayed };
        self.messages.insert(
            sequence,
            Stored {
                message: Kept::new(message),
                sent_at: SystemTime::now(),
                receive_count: 0,
                receipt_nonce: 0,
                generation: 0,
                status,
            },
        );
        if status == Status::Delayed {
            self.delayed += 1;
            self.deadlines.push(Reverse((now + delay, sequence, 0)));
        } else {
            self.show(sequence);
        }
    }

    /// The oldest message a receive may take: on a FIFO queue, the oldest of the groups
    /// with nothing in flight.
    fn next_receivable(&self) -> Option<u64> {
        if self.fifo {
            self.ready.first_key_value().map(|(sequence, _)| *sequence)
        } else {
            self.visible.first()
        }
    }

    /// Marks a stored message visible (in its group too).
    fn show(&mut self, sequence: u64) {
        let stored = self.messages.get_mut(&sequence).expect("a shown message is stored");
        stored.status = Status::Visible;
        self.visible.insert(sequence);
        if let Some(group) = self.group_of(sequence) {
            self.groups.entry(group.clone()).or_default().visible.insert(sequence);
            self.refresh_ready(&group);
        }
    }

    /// Takes a visible message out of the visible sets (to receive or delete it).
    fn hide(&mut self, sequence: u64) {
        self.visible.remove(sequence);
        if let Some(group) = self.group_of(sequence) {
            if let Some(entry) = self.groups.get_mut(&group) {
                entry.visible.remove(&sequence);
            }
            self.refresh_ready(&group);
        }
    }

    /// One more (`started`) or one fewer message of `group` in flight.
    fn in_flight_changed(&mut self, group: Option<&str>, started: bool) {
        let Some(group) = group.filter(|_| self.fifo) else { return };
        let entry = self.groups.entry(group.to_owned()).or_default();
        if started {
            entry.in_flight += 1;
        } else {
            entry.in_flight = entry.in_flight.saturating_sub(1);
        }
        self.refresh_ready(group);
        self.settle_group(Some(group));
    }

    /// Forgets a group with nothing visible or in flight.
    fn settle_group(&mut self, group: Option<&str>) {
        let Some(group) = group else { return };
        if self.groups.get(group).is_some_and(|entry| entry.visible.is_empty() && entry.in_flight == 0) {
            self.refresh_ready(group);
            self.groups.remove(group);
        }
    }

    /// Puts `group` in `ready` under its oldest visible message if nothing of it is in
    /// flight, else takes it out.
    fn refresh_ready(&mut self, group: &str) {
        let Some(entry) = self.groups.get_mut(group) else { return };
        let wanted = if entry.in_flight == 0 { entry.visible.first().copied() } else { None };
        if wanted == entry.ready_at {
            return;
        }
        if let Some(old) = entry.ready_at.take() {
            self.ready.remove(&old);
        }
        if let Some(new) = wanted {
            self.ready.insert(new, group.to_owned());
        }
        entry.ready_at = wanted;
    }

    /// The FIFO group of a stored message (none on a standard queue).
    fn group_of(&self, sequence: u64) -> Option<String> {
        if !self.fifo {
            return None;
        }
        self.messages.get(&sequence).and_then(|stored| stored.message.group_id().map(str::to_owned))
    }

    /// Moves the in-flight and delayed messages whose deadline has passed to the visible set,
    /// and drops stale deadlines at the top of the heap (so its top, if any, is a live one).
    fn make_due_visible(&mut self, now: Instant) {
        while let Some(&Reverse((at, sequence, generation))) = self.deadlines.peek() {
            let status = self
                .messages
                .get(&sequence)
                .filter(|stored| stored.generation == generation && stored.status != Status::Visible)
                .map(|stored| stored.status);
            if status.is_some() && at > now {
                break;
            }
            self.deadlines.pop();
            match status {
                Some(Status::InFlight) => {
                    let group = self.group_of(sequence);
                    self.in_flight_changed(group.as_deref(), false);
                    self.show(sequence);
                }
                Some(Status::Delayed) => {
                    self.delayed -= 1;
                    self.show(sequence);
                }
                Some(Status::Visible) | None => {}
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
        let waiting = self.messages.len() - self.visible.len();
        if self.deadlines.len() > 64 && self.deadlines.len() > 2 * waiting {
            let messages = &self.messages;
            self.deadlines.retain(|Reverse((_, sequence, generation))| {
                messages.get(sequence).is_some_and(|stored| {
                    stored.generation == *generation && stored.status != Status::Visible
                })
            });
        }
    }

    /// The message whose latest receive gave `receipt`.
    fn current_receipt(&self, receipt: &str) -> Result<u64, EntryError> {
        parse_receipt(receipt)
            .filter(|(sequence, nonce)| {
                // Nonce 0 is "never received": no handle has it.
                *nonce != 0
                    && self.messages.get(sequence).is_some_and(|stored| stored.receipt_nonce == *nonce)
            })
            .map(|(sequence, _)| sequence)
            .ok_or_else(|| EntryError {
                code: "ReceiptHandleIsInvalid".to_owned(),
                message: format!(
                    "the receipt handle `{receipt}` is not the latest of a message in this queue"
                ),
                retryable: false,
            })
    }
}

/// A receipt handle: the message's sequence and the receive's random nonce, in lower-case hex
/// (written digit by digit: `format!` cost ten times as much).
fn receipt_handle(sequence: u64, nonce: u64) -> String {
    crate::uuid::hex_pair(sequence, nonce)
}

/// The sequence and nonce of a handle [`receipt_handle`] wrote; `None` for any other text.
fn parse_receipt(receipt: &str) -> Option<(u64, u64)> {
    if receipt.len() != 32 {
        return None;
    }
    let (sequence, nonce) = receipt.as_bytes().split_at(16);
    Some((crate::uuid::parse_hex(sequence)?, crate::uuid::parse_hex(nonce)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random sends, receives, deletes and timeouts on a FIFO queue, against a model: a
    /// receive never returns a message of a group that had one in flight, and a group comes
    /// back with its oldest message not deleted, the rest in order.
    #[test]
    fn receipt_handles_read_back_and_nothing_else_does() {
        for (sequence, nonce) in [(0, 1), (1, u64::MAX), (0x0123_4567_89ab_cdef, 42)] {
            assert_eq!(parse_receipt(&receipt_handle(sequence, nonce)), Some((sequence, nonce)));
        }
        let handle = receipt_handle(0xab, 0xcd);
        for other in
            [&handle[1..], &format!("{handle}0"), &handle.to_uppercase(), &handle.replace('a', "g"), ""]
        {
            assert_eq!(parse_receipt(other), None, "{other}");
        }
    }

    #[test]
    fn fifo_receives_keep_group_order_under_random_operations() {
        let mut rng = fastrand::Rng::with_seed(13);
        let queue = Queue::new("q.fifo", "memory://queue/q.fifo".to_owned(), QueueOptions::default());
        let timeout = QueueOptions::default().visibility_timeout;
        let mut now = Instant::now();
        let mut sent: Vec<(String, u64)> = Vec::new(); // (group, id), in sending order
        let mut deleted = BTreeSet::new();
        let mut in_flight: HashMap<u64, (String, Instant)> = HashMap::new(); // id -> (receipt, until)
        let (mut received, mut redelivered) = (0, 0);
        for _ in 0..2000 {
            match rng.u8(0..10) {
                0..=3 => {
                    let id = sent.len() as u64;
                    let group = format!("g{}", rng.u8(0..4));
                    let mut message = NewMessage::new(id.to_string(), id.to_string());
                    message.group_id = Some(group.clone());
                    message.deduplication_id = Some(id.to_string());
                    assert!(queue.send(vec![message], now)[0].is_ok());
                    sent.push((group, id));
                }
                4..=6 => {
                    in_flight.retain(|_, (_, until)| *until > now);
                    let busy: BTreeSet<&str> =
                        in_flight.keys().map(|id| sent[*id as usize].0.as_str()).collect();
                    let taken = queue.receive(rng.usize(1..=10), now).messages;
                    let mut last_of_group: HashMap<String, u64> = HashMap::new();
                    for message in &taken {
                        let id: u64 = message.body.parse().unwrap();
                        let group = message.group_id.clone().unwrap();
                        assert!(!busy.contains(group.as_str()), "{group} had a message in flight");
                        let expected = match last_of_group.get(&group) {
                            // The next undeleted one after the previous of this receive.
                            Some(previous) => {
                                sent.iter().find(|(g, i)| *g == group && i > previous && !deleted.contains(i))
                            }
                            None => sent.iter().find(|(g, i)| *g == group && !deleted.contains(i)),
                        };
                        assert_eq!(expected.map(|(_, i)| *i), Some(id), "order of {group}");
                        last_of_group.insert(group, id);
                        received += 1;
                        redelivered += usize::from(message.receive_count > 1);
                        in_flight.insert(id, (message.receipt_handle.clone(), now + timeout));
                    }
                }
                7 | 8 => {
                    let live: Vec<u64> =
                        in_flight.iter().filter(|(_, (_, until))| *until > now).map(|(id, _)| *id).collect();
                    if let Some(&id) = live.get(rng.usize(0..live.len().max(1))) {
                        let (receipt, _) = in_flight.remove(&id).unwrap();
                        assert!(queue.delete(&[&receipt])[0].is_ok());
                        deleted.insert(id);
                    }
                }
                _ => now += Duration::from_secs(rng.u64(1..20)),
            }
            let stats = queue.stats(now);
            assert_eq!(stats.total, sent.len() - deleted.len());
        }
        assert!(received > 300 && redelivered > 30, "{received} received, {redelivered} again");
        let state = queue.state();
        for (name, group) in &state.groups {
            assert_eq!(group.ready_at.is_some(), group.in_flight == 0 && !group.visible.is_empty(), "{name}");
        }
    }

    #[test]
    fn only_the_latest_receipt_handle_of_a_message_is_taken() {
        let queue = Queue::new("q", "memory://queue/q".to_owned(), QueueOptions::default());
        let now = Instant::now();
        queue.push([NewMessage::new("a".to_owned(), "body a".to_owned())]);
        queue.push([NewMessage::new("b".to_owned(), "body b".to_owned())]);
        let first = queue.receive(1, now).messages.remove(0);
        assert_eq!((first.message_id.as_str(), first.body.as_str()), ("a", "body a"));
        // A handle of the right shape for the message never received, with the nonce of none.
        let never = format!("{:016x}{:016x}", 1, 0);
        let upper = first.receipt_handle.to_uppercase();
        let results = queue.delete(&[&never, &upper, "short"]);
        assert!(results
            .iter()
            .all(|result| result.as_ref().is_err_and(|e| e.code == "ReceiptHandleIsInvalid")));
        let again = queue.receive(1, now + Duration::from_secs(31)).messages;
        let second = again.iter().find(|message| message.message_id == "a").expect("a is visible again");
        assert!(queue.delete(&[&first.receipt_handle])[0].is_err(), "an older handle");
        assert!(queue.delete(&[&second.receipt_handle])[0].is_ok());
    }

    /// A backlog's cost per message is mostly its table entry and its body: the entry stays
    /// small (FIFO ids boxed, no delay, the receipt's nonce as a number). A notification's
    /// parts are in it (64 bytes, against 80 for an allocation of their own).
    #[test]
    fn a_stored_message_is_small() {
        assert!(std::mem::size_of::<(u64, Stored)>() <= 152, "{}", std::mem::size_of::<(u64, Stored)>());
    }

    #[test]
    fn the_message_table_gives_its_memory_back_once_a_backlog_drains() {
        let queue = Queue::new("q", "memory://queue/q".to_owned(), QueueOptions::default());
        let backlog = 20_000;
        queue.push((0..backlog).map(|i| NewMessage::new(i.to_string(), String::new())));
        let grown = queue.state().messages.capacity();
        assert!(grown >= backlog, "{grown}");
        let now = Instant::now();
        for _ in 0..backlog / 10 {
            let received = queue.receive(10, now).messages;
            let receipts: Vec<&str> = received.iter().map(|m| m.receipt_handle.as_str()).collect();
            assert!(queue.delete(&receipts).iter().all(Result::is_ok));
        }
        assert_eq!(queue.stats(now).total, 0);
        let drained = queue.state().messages.capacity();
        assert!(drained <= 4096, "capacity {drained} after draining (was {grown})");
    }
}
