//! What handling a message came to, and what that does to the message in the queue.

use std::fmt;
use std::time::Duration;

/// The result names of the seed's results table, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageResult {
    /// The handler succeeded: deleted.
    Succeeded,
    /// The handler declined, or the receive count passed the configured maximum: deleted.
    Skipped,
    /// No schema or no handler for the media type: deleted, and logged.
    Ignored,
    /// The hop budget `x-request-ttl` is spent: deleted.
    Expired,
    /// The handler asked to be retried after a delay: visibility set to that delay.
    Retried,
    /// The handler failed, panicked, or the message did not decode: visibility per backoff.
    Failed,
}

impl MessageResult {
    /// Every result, in table order.
    pub const ALL: [MessageResult; 6] = [
        MessageResult::Succeeded,
        MessageResult::Skipped,
        MessageResult::Ignored,
        MessageResult::Expired,
        MessageResult::Retried,
        MessageResult::Failed,
    ];

    /// The upper-case name, as the seed logs it.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageResult::Succeeded => "SUCCEEDED",
            MessageResult::Skipped => "SKIPPED",
            MessageResult::Ignored => "IGNORED",
            MessageResult::Expired => "EXPIRED",
            MessageResult::Retried => "RETRIED",
            MessageResult::Failed => "FAILED",
        }
    }

    /// Whether the message is deleted from the queue.
    pub fn deletes(self) -> bool {
        !matches!(self, MessageResult::Retried | MessageResult::Failed)
    }
}

impl fmt::Display for MessageResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A result with its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Which row of the table.
    pub result: MessageResult,
    /// Why, for every result but SUCCEEDED: the skip reason, the error, the ignored media type.
    pub reason: Option<String>,
    /// What is done to the message.
    pub disposition: Disposition,
}

/// What happens to the message in its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Deleted (acknowledged).
    Delete,
    /// Made visible again after this delay (nacked).
    Retry(Duration),
}

impl Outcome {
    /// SUCCEEDED.
    pub fn succeeded() -> Outcome {
        Outcome { result: MessageResult::Succeeded, reason: None, disposition: Disposition::Delete }
    }

    /// A deleting result with a reason (SKIPPED, IGNORED, EXPIRED).
    pub fn deleted(result: MessageResult, reason: impl Into<String>) -> Outcome {
        debug_assert!(result.deletes());
        Outcome { result, reason: Some(reason.into()), disposition: Disposition::Delete }
    }

    /// RETRIED after `delay`.
    pub fn retried(delay: Duration, reason: impl Into<String>) -> Outcome {
        Outcome {
            result: MessageResult::Retried,
            reason: Some(reason.into()),
            disposition: Disposition::Retry(delay),
        }
    }

    /// FAILED, retried after `delay`.
    pub fn failed(delay: Duration, reason: impl Into<String>) -> Outcome {
        Outcome {
            result: MessageResult::Failed,
            reason: Some(reason.into()),
            disposition: Disposition::Retry(delay),
        }
    }
}
