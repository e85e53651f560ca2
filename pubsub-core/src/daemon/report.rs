//! What a daemon run did: counts by media type and result, and their table.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::dispatch::HandledMessage;
use crate::outcome::Verdict;
use crate::transport::TransportError;

/// What a daemon run did, by media type and result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonReport {
    /// Count per media type (`-` when the body had none) per result. Media types no handler
    /// takes share the row [`OTHER_MEDIA_TYPES`] once there are 256 rows.
    pub results: BTreeMap<String, BTreeMap<Verdict, u64>>,
    /// Handlers still running when the drain timeout ran out (their messages, and those of
    /// their FIFO group waiting behind them, were neither deleted nor released: they reappear
    /// after their visibility timeout).
    pub abandoned: usize,
    /// Deletes and visibility changes still failing when the flush timeout ran out (those
    /// messages reappear after their visibility timeout and are handled again).
    pub unsettled: usize,
    /// Messages released at once, unhandled, by the shutdown: received after the stop began,
    /// or waiting behind another of their FIFO group then.
    pub released: usize,
    /// Messages of a FIFO group released at once, unhandled, because an earlier message of
    /// the group received with them was to be retried (they come back after it, in order).
    pub released_behind_failure: usize,
    /// Why the daemon stopped on its own, failed; see [`failure`](DaemonReport::failure).
    failure: Option<DaemonFailure>,
}

impl DaemonReport {
    /// Messages with `result`, all media types.
    pub fn count(&self, result: Verdict) -> u64 {
        self.results.values().filter_map(|by_result| by_result.get(&result)).sum()
    }

    /// Messages handled, all results.
    pub fn total(&self) -> u64 {
        self.results.values().flat_map(|by_result| by_result.values()).sum()
    }

    /// Why the daemon stopped on its own, failed (receives failing past
    /// [`receive_failure_limit`](super::DaemonBuilder::receive_failure_limit)); `None` when it
    /// stopped because it was asked to or found its queue idle. A command line exits with an
    /// error on `Some`. FAILED messages are not a failure of the daemon: they are in
    /// [`results`](DaemonReport::results).
    pub fn failure(&self) -> Option<&DaemonFailure> {
        self.failure.as_ref()
    }

    pub(super) fn set_failure(&mut self, failure: Option<DaemonFailure>) {
        self.failure = failure;
    }

    pub(super) fn record(&mut self, handled: &HandledMessage) {
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
        *row.entry(handled.outcome.verdict).or_default() += 1;
    }
}

/// Why a daemon stopped on its own, failed: [`DaemonReport::failure`]. Its message names the
/// cause, e.g. `receives have failed for 61.2 s in a row (14 attempts), past the limit of 60 s;
/// the last error: transport unavailable: connection refused`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonFailure {
    /// Receives kept failing for longer than
    /// [`receive_failure_limit`](super::DaemonBuilder::receive_failure_limit).
    #[error("receives have failed for {} in a row ({attempts} attempts), past the limit of {}; the last error: {last_error}",
        Seconds(*.failing_for), Seconds(*.limit))]
    ReceivesFailing {
        /// How long receives had been failing when the daemon gave up.
        failing_for: Duration,
        /// The configured limit.
        limit: Duration,
        /// Failed receives in a row, all pollers together.
        attempts: u64,
        /// The error of the last one.
        last_error: TransportError,
    },
}

/// A duration in seconds, at most one decimal: `61.2 s`, `60 s`.
struct Seconds(Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenths = (self.0.as_millis() + 50) / 100;
        match tenths % 10 {
            0 => write!(f, "{} s", tenths / 10),
            rest => write!(f, "{}.{rest} s", tenths / 10),
        }
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
        for result in Verdict::ALL {
            write!(f, " {:>9}", result.as_str())?;
        }
        writeln!(f)?;
        for (media_type, by_result) in &self.results {
            write!(f, "{media_type:width$}")?;
            for result in Verdict::ALL {
                write!(f, " {:>9}", by_result.get(&result).copied().unwrap_or(0))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::Outcome;

    fn handled(media_type: Option<&str>, handler: Option<&'static str>, outcome: Outcome) -> HandledMessage {
        HandledMessage {
            message_id: "m-1".to_owned(),
            receive_count: 1,
            outcome,
            media_type: media_type.map(str::to_owned),
            handler,
            published: Vec::new(),
            elapsed: Duration::ZERO,
            payload: None,
        }
    }

    fn ignored(media_type: &str) -> HandledMessage {
        handled(Some(media_type), None, Outcome::deleted(Verdict::Ignored, "no handler"))
    }

    /// A report with `MAX_REPORT_ROWS` rows of media types no handler takes.
    fn full_report() -> DaemonReport {
        let mut report = DaemonReport::default();
        for i in 0..MAX_REPORT_ROWS {
            report.record(&ignored(&format!("application/vnd.made-up.{i}")));
        }
        assert_eq!(report.results.len(), MAX_REPORT_ROWS);
        assert!(!report.results.contains_key(OTHER_MEDIA_TYPES));
        report
    }

    #[test]
    fn unhandled_media_types_past_the_cap_share_one_row() {
        let mut report = full_report();
        report.record(&ignored("application/vnd.made-up.new"));
        report.record(&ignored("application/vnd.made-up.newer"));
        assert_eq!(report.results.len(), MAX_REPORT_ROWS + 1);
        assert!(!report.results.contains_key("application/vnd.made-up.new"));
        assert_eq!(report.results[OTHER_MEDIA_TYPES], BTreeMap::from([(Verdict::Ignored, 2)]));
        assert_eq!(report.count(Verdict::Ignored), MAX_REPORT_ROWS as u64 + 2);
    }

    #[test]
    fn a_media_type_with_a_row_keeps_counting_in_it_past_the_cap() {
        let mut report = full_report();
        report.record(&ignored("application/vnd.made-up.7"));
        assert_eq!(report.results["application/vnd.made-up.7"][&Verdict::Ignored], 2);
        assert!(!report.results.contains_key(OTHER_MEDIA_TYPES));
    }

    #[test]
    fn a_handled_media_type_gets_its_own_row_past_the_cap() {
        let mut report = full_report();
        report.record(&handled(Some("application/vnd.acme.order"), Some("take_order"), Outcome::succeeded()));
        assert_eq!(report.results["application/vnd.acme.order"], BTreeMap::from([(Verdict::Succeeded, 1)]));
        assert!(!report.results.contains_key(OTHER_MEDIA_TYPES));
    }

    #[test]
    fn a_message_without_a_media_type_is_counted_under_a_dash() {
        let mut report = DaemonReport::default();
        report.record(&handled(None, None, Outcome::failed(Duration::from_secs(5), "not JSON")));
        assert_eq!(report.results["-"], BTreeMap::from([(Verdict::Failed, 1)]));
        assert_eq!(report.total(), 1);
    }

    #[test]
    fn a_failure_says_how_long_receives_failed_and_the_last_error() {
        let failure = DaemonFailure::ReceivesFailing {
            failing_for: Duration::from_millis(61_249),
            limit: Duration::from_secs(60),
            attempts: 14,
            last_error: TransportError::Unavailable("connection refused".into()),
        };
        assert_eq!(
            failure.to_string(),
            "receives have failed for 61.2 s in a row (14 attempts), past the limit of 60 s; \
             the last error: transport unavailable: connection refused"
        );
        assert_eq!(Seconds(Duration::from_millis(250)).to_string(), "0.3 s");
        assert_eq!(Seconds(Duration::from_millis(49)).to_string(), "0 s");
    }

    #[test]
    fn the_table_has_one_row_per_media_type_and_one_column_per_result() {
        let mut report = DaemonReport::default();
        report.record(&handled(Some("a/b"), Some("h"), Outcome::succeeded()));
        report.record(&handled(Some("a/b"), Some("h"), Outcome::succeeded()));
        report.record(&ignored("application/vnd.x"));
        let expected = "\
media type        SUCCEEDED   SKIPPED   IGNORED   EXPIRED   RETRIED    FAILED
a/b                       2         0         0         0         0         0
application/vnd.x         0         0         1         0         0         0
";
        assert_eq!(report.to_string(), expected);
    }
}
