//! FIFO deduplication, shared by FIFO topics and queues: ids remembered for 5 minutes, and
//! the content-based id (SHA-256 of the body).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::options::DEDUPLICATION_INTERVAL;
use crate::transport::MessageId;

/// The deduplication id SNS and SQS derive from a body: its SHA-256, in hex.
pub(crate) fn content_id(body: &str) -> String {
    Sha256::digest(body.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The ids seen in the last [`DEDUPLICATION_INTERVAL`], with the message id each was given.
pub(crate) struct Deduplication<K> {
    /// Each key has exactly one entry in `expiries` while it is here.
    seen: HashMap<K, MessageId>,
    /// (forgotten at, id), oldest first: ids are remembered from their first message, so the
    /// expiries come in order and pruning pops from the front.
    expiries: VecDeque<(Instant, K)>,
}

impl<K: Eq + Hash + Clone> Deduplication<K> {
    pub(crate) fn new() -> Self {
        Deduplication { seen: HashMap::new(), expiries: VecDeque::new() }
    }

    /// The message id of an earlier message with `key` within the interval, if any;
    /// otherwise remembers `key` for `message_id` from `now`. A duplicate does not extend the
    /// interval (as SNS and SQS).
    pub(crate) fn duplicate_of(&mut self, key: K, message_id: &str, now: Instant) -> Option<MessageId> {
        while let Some((at, _)) = self.expiries.front() {
            if *at > now {
                break;
            }
            let (_, expired) = self.expiries.pop_front().expect("peeked");
            self.seen.remove(&expired);
        }
        if let Some(original) = self.seen.get(&key) {
            return Some(original.clone());
        }
        let forget_at = now + DEDUPLICATION_INTERVAL;
        self.seen.insert(key.clone(), message_id.to_owned());
        self.expiries.push_back((forget_at, key));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ids_are_the_sha256_of_the_body() {
        assert_eq!(content_id(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(content_id("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
