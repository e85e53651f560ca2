//! What a daemon run did: counts by media type and result, and their table.

use std::collections::BTreeMap;
use std::fmt;

use crate::dispatch::Handled;
use crate::outcome::MessageResult;

/// What a daemon run did, by media type and result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonReport {
    /// Count per media type (`-` when the body had none) per result. Media types no handler
    /// takes share the row [`OTHER_MEDIA_TYPES`] once there are 256 rows.
    pub results: BTreeMap<String, BTreeMap<MessageResult, u64>>,
    /// Handlers still running when the drain timeout ran out (their messages were neither
    /// deleted nor released: they reappear after their visibility timeout).
    pub abandoned: usize,
    /// Deletes and visibility changes still failing when the flush timeout ran out (those
    /// messages reappear after their visibility timeout and are handled again).
    pub unsettled: usize,
    /// Messages received after the stop began, released at once.
    pub released: usize,
}

impl DaemonReport {
    /// Messages with `result`, all media types.
    pub fn count(&self, result: MessageResult) -> u64 {
        self.results.values().filter_map(|by_result| by_result.get(&result)).sum()
    }

    /// Messages handled, all results.
    pub fn total(&self) -> u64 {
        self.results.values().flat_map(|by_result| by_result.values()).sum()
    }

    pub(super) fn record(&mut self, handled: &Handled) {
        let mut media_type = handled.media_type.as_deref().unwrap_or("-");
        // Media types no handler takes come from senders: past a bound they share one row,
        // so that a stream of made-up types cannot grow a long-running daemon's report.
        if handled.handler.is_none()
            && self.results.len() >= MAX_REPORT_ROWS
            && !self.results.contains_key(media_type)
        {
            media_type = OTHER_MEDIA_TYPES;
        }
        let row = match self.results.get_mut(media_type) {
            Some(row) => row,
            None => self.results.entry(media_type.to_owned()).or_default(),
        };
        *row.entry(handled.outcome.result).or_default() += 1;
    }
}

/// Rows a report keeps for media types no handler takes, before [`OTHER_MEDIA_TYPES`].
const MAX_REPORT_ROWS: usize = 256;
/// The row of a [`DaemonReport`] that gathers the media types no handler takes once the
/// report has 256 rows.
pub const OTHER_MEDIA_TYPES: &str = "(other media types)";

/// A table: one row per media type, one column per result.
impl fmt::Display for DaemonReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.results.keys().map(String::len).max().unwrap_or(10).max(10);
        write!(f, "{:width$}", "media type")?;
        for result in MessageResult::ALL {
            write!(f, " {:>9}", result.as_str())?;
        }
        writeln!(f)?;
        for (media_type, by_result) in &self.results {
            write!(f, "{media_type:width$}")?;
            for result in MessageResult::ALL {
                write!(f, " {:>9}", by_result.get(&result).copied().unwrap_or(0))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

