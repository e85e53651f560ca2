//! Placeholder: the embedded broker is being written.

/// The embedded SNS+SQS broker.
#[derive(Debug, Default, Clone)]
pub struct MemoryBroker {}
