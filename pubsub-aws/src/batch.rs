//! What SNS and SQS batch calls share: the size check, entries with their index as id, and
//! reading results back by that id.

use aws_smithy_types::error::operation::BuildError;
use pubsub_core::transport::{EntryError, TransportError, MAX_BATCH};

/// Refuses an empty batch or one over ten, as the services do, before any request.
pub(crate) fn check_len(len: usize) -> Result<(), TransportError> {
    if len == 0 || len > MAX_BATCH {
        return Err(TransportError::Invalid(format!("a batch holds 1 to 10 entries, not {len}")));
    }
    Ok(())
}

/// One request entry per item, each with its index as its id.
pub(crate) fn entries<I, T>(
    items: &[I],
    build: impl Fn(String, &I) -> Result<T, BuildError>,
) -> Result<Vec<T>, TransportError> {
    check_len(items.len())?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            build(index.to_string(), item).map_err(|e| TransportError::Invalid(e.to_string()))
        })
        .collect()
}

/// The index an entry id stands for.
pub(crate) fn entry_index(id: Option<&str>, len: usize) -> Option<usize> {
    id?.parse::<usize>().ok().filter(|index| *index < len)
}

/// A result per entry, each `Err(NoResult)` until the response says otherwise: an entry the
/// service says nothing about is reported, never taken as done.
pub(crate) fn no_results<T>(len: usize, service: &str) -> Vec<Result<T, EntryError>> {
    (0..len)
        .map(|_| {
            Err(EntryError {
                code: "NoResult".into(),
                message: format!("{service} returned no result for this entry"),
                retryable: true,
            })
        })
        .collect()
}

/// A refused entry: retryable unless the service blames the sender.
pub(crate) fn entry_error(code: &str, message: Option<&str>, sender_fault: bool) -> EntryError {
    EntryError {
        code: code.to_owned(),
        message: message.unwrap_or_default().to_owned(),
        retryable: !sender_fault,
    }
}
