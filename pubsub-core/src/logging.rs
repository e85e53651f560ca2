//! Logs to standard error in the form operators and log shippers read: one line an event,
//! each starting with its UTC timestamp (`2026-12-01T10:00:00.123456Z`), in text by default or
//! one JSON object a line on request.
//!
//! Nothing is logged until a subscriber is installed: a program calls [`init`] (text, `info`)
//! or builds a [`Logging`] once at start. `RUST_LOG` overrides the level filter; the crates log
//! under their module paths, so `RUST_LOG=pubsub_core=debug`, `pubsub_core::dispatch=info`
//! or `pubsub_aws=debug` select them.
//!
//! Text is coloured only when standard error is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>): a file, a pipe, journald or CloudWatch gets plain lines.
//!
//! ```no_run
//! use pubsub_core::logging::Logging;
//!
//! // `--debug` on the command line: everything at debug but the chatty HTTP client.
//! let debug = std::env::args().any(|arg| arg == "--debug");
//! Logging::new().debug(debug).json(true).quiet(["hyper", "h2"]).init();
//! tracing::info!(queue = "orders", "started");
//! ```
//!
//! Tests that install a subscriber of their own call [`Logging::try_init`], which returns an
//! error instead of panicking when one is already set.

use std::ffi::OsStr;
use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// The environment variable whose filter replaces the default one.
pub const FILTER_ENV: &str = "RUST_LOG";

/// Installs text logs at `info` on standard error (`RUST_LOG` overrides the filter); the same
/// as `Logging::new().init()`.
///
/// # Panics
///
/// When a global subscriber is already set, or `RUST_LOG` does not parse.
pub fn init() {
    Logging::new().init();
}

/// How a program logs: built once at start, then [`init`](Logging::init) installs it as the
/// global `tracing` subscriber.
#[derive(Debug, Clone, Default)]
#[must_use = "a Logging does nothing until `init` or `try_init`"]
pub struct Logging {
    debug: bool,
    json: bool,
    quiet: Vec<String>,
}

/// Why [`Logging::try_init`] installed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// `RUST_LOG`, or a target given to [`Logging::quiet`], is not a valid filter.
    #[error("invalid log filter `{filter}`: {error}")]
    Filter {
        /// The filter as written.
        filter: String,
        /// Why it does not parse.
        #[source]
        error: tracing_subscriber::filter::ParseError,
    },
    /// This process already has a global subscriber.
    #[error("a global tracing subscriber is already set")]
    AlreadySet(#[source] tracing_subscriber::util::TryInitError),
}

impl Logging {
    /// Text logs at `info`.
    pub fn new() -> Logging {
        Logging::default()
    }

    /// Logs at `debug` (message bodies included, cut at 4 KiB) when `on`, save the targets
    /// named with [`quiet`](Logging::quiet), which stay at `info`.
    pub fn debug(mut self, on: bool) -> Logging {
        self.debug = on;
        self
    }

    /// One JSON object a line when `on`, with the event's fields at the top level beside
    /// `timestamp`, `level`, `target` and `message`; text otherwise.
    pub fn json(mut self, on: bool) -> Logging {
        self.json = on;
        self
    }

    /// Targets (crate or module paths, such as `aws_config` or `hyper`) kept at `info` under
    /// [`debug`](Logging::debug): their debug output is noise, or holds secrets (request
    /// signatures). Adds to those already named.
    pub fn quiet(mut self, targets: impl IntoIterator<Item = impl AsRef<str>>) -> Logging {
        self.quiet.extend(targets.into_iter().map(|target| target.as_ref().to_owned()));
        self
    }

    /// The filter used when `RUST_LOG` is unset or empty: `info`, or `debug` with each quiet
    /// target at `info`.
    pub fn default_filter(&self) -> String {
        if !self.debug {
            return "info".to_owned();
        }
        let mut filter = "debug".to_owned();
        for target in &self.quiet {
            filter.push(',');
            filter.push_str(target);
            filter.push_str("=info");
        }
        filter
    }

    /// Installs these logs as the global subscriber.
    ///
    /// # Panics
    ///
    /// When [`try_init`](Logging::try_init) fails: a global subscriber is already set, or
    /// the filter does not parse.
    pub fn init(self) {
        if let Err(error) = self.try_init() {
            panic!("cannot set up logging: {error}");
        }
    }

    /// Installs these logs as the global subscriber, or says why not.
    pub fn try_init(self) -> Result<(), LoggingError> {
        self.try_init_with(std::env::var(FILTER_ENV).ok().as_deref())
    }

    /// [`try_init`](Logging::try_init) with `rust_log` in place of the environment's.
    pub(crate) fn try_init_with(self, rust_log: Option<&str>) -> Result<(), LoggingError> {
        let filter = self.filter(rust_log)?;
        let colour = use_colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
        self.subscriber(filter, std::io::stderr, colour).try_init().map_err(LoggingError::AlreadySet)
    }

    /// Installs these logs as the global subscriber, writing to `writer` instead of standard
    /// error (a file, a pipe, or a sink in a benchmark), never coloured: a writer of one's own
    /// is not a terminal. `RUST_LOG` applies as in [`try_init`](Logging::try_init).
    pub fn try_init_writer<W>(self, writer: W) -> Result<(), LoggingError>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        let filter = self.filter(std::env::var(FILTER_ENV).ok().as_deref())?;
        self.subscriber(filter, writer, false).try_init().map_err(LoggingError::AlreadySet)
    }

    /// `rust_log` when it is set and not blank, else [`default_filter`](Logging::default_filter).
    fn filter(&self, rust_log: Option<&str>) -> Result<EnvFilter, LoggingError> {
        let filter = match rust_log {
            Some(value) if !value.trim().is_empty() => value.to_owned(),
            _ => self.default_filter(),
        };
        EnvFilter::builder().parse(&filter).map_err(|error| LoggingError::Filter { filter, error })
    }

    /// The subscriber, writing to `writer`; `colour` applies to text only.
    fn subscriber<W>(
        &self,
        filter: EnvFilter,
        writer: W,
        colour: bool,
    ) -> Box<dyn tracing::Subscriber + Send + Sync>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        // RFC 3339 in UTC with microseconds, as the default timer writes it.
        let builder =
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_timer(UtcMicros);
        if self.json {
            Box::new(builder.with_ansi(false).json().flatten_event(true).finish())
        } else {
            Box::new(builder.with_ansi(colour).fmt_fields(PlainFields).finish())
        }
    }
}

/// The time of a line as tracing-subscriber's `SystemTime` writes it (RFC 3339 in UTC with
/// microseconds, `2026-12-01T10:00:00.123456Z`), written digit by digit: through `core::fmt`
/// it was a fifth of the cost of the line logged for each message.
struct UtcMicros;

impl FormatTime for UtcMicros {
    fn format_time(&self, writer: &mut Writer<'_>) -> fmt::Result {
        let now = std::time::SystemTime::now();
        match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(since) if since.as_secs() < YEAR_10000 => writer.write_str(&utc_micros(since)),
            // Before 1970 or after 9999: the default's signs and widths.
            _ => SystemTime.format_time(writer),
        }
    }
}

/// 10000-01-01T00:00:00Z in seconds since the epoch: the first time with a fifth year digit.
const YEAR_10000: u64 = 253_402_300_800;

/// `since` the epoch (before [`YEAR_10000`]) as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn utc_micros(since: std::time::Duration) -> String {
    let seconds = since.as_secs();
    let (year, month, day) = crate::memory::notification::civil_from_days((seconds / 86_400) as i64);
    let second_of_day = seconds % 86_400;
    let mut text = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for index in (at..at + width).rev() {
            text[index] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year as u64);
    put(5, 2, u64::from(month));
    put(8, 2, u64::from(day));
    put(11, 2, second_of_day / 3600);
    put(14, 2, second_of_day / 60 % 60);
    put(17, 2, second_of_day % 60);
    put(20, 6, u64::from(since.subsec_micros()));
    String::from_utf8(text.to_vec()).expect("digits and ASCII punctuation")
}

/// The fields of a text line, as tracing-subscriber's default writes them (`name="text"`,
/// `name=42`), with a short cut for the common values: text of printable ASCII with no quote
/// or backslash, integers and booleans are written as they are, where the default formats
/// every value through `Debug` (a string character by character, for its escapes), which was
/// most of the cost of the line logged for each message. Everything else, and every field of
/// a coloured line, goes to the default's visitor.
struct PlainFields;

impl<'a> MakeVisitor<Writer<'a>> for PlainFields {
    type Visitor = PlainVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> PlainVisitor<'a> {
        PlainVisitor { writer, is_empty: true, result: Ok(()) }
    }
}

struct PlainVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// Whether `field` may take the short cut: named plainly on a line without colours.
    /// `message` has escapes of its own, `r#` names lose the prefix, and `log.` fields (from
    /// the `log` crate) are skipped: those are the default's.
    fn plain(&self, field: &Field) -> bool {
        let name = field.name();
        !self.writer.has_ansi_escapes()
            && name != "message"
            && !name.starts_with("r#")
            && !name.starts_with("log.")
    }

    /// Writes `name=` after a space if a field came before.
    fn start(&mut self, field: &Field) -> fmt::Result {
        if self.is_empty {
            self.is_empty = false;
        } else {
            self.writer.write_char(' ')?;
        }
        self.writer.write_str(field.name())?;
        self.writer.write_char('=')
    }

    /// Writes `value` as `Display`, which is its `Debug` for integers and booleans.
    fn display(&mut self, field: &Field, value: impl fmt::Display + fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        if !self.plain(field) {
            return self.record_debug(field, &value);
        }
        self.result = self.start(field).and_then(|()| write!(self.writer, "{value}"));
    }

    /// Hands a field to the default's visitor, which writes it after a space if need be (and
    /// skips the `log.` fields).
    fn default_visitor(&mut self, field: &Field, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if self.result.is_err() {
            return;
        }
        let mut visitor = DefaultVisitor::new(self.writer.by_ref(), self.is_empty);
        record(&mut visitor);
        self.result = visitor.finish();
        self.is_empty &= field.name().starts_with("log.");
    }
}

/// `value` in thousandths, when it is a whole number of them under a billion units, not
/// negative: a duration in milliseconds from microseconds (`elapsed_ms`). Such a value's
/// `Debug` is that decimal, trailing zeros dropped: the shortest text that reads back as
/// it, since under a billion half its spacing to the next `f64` is under 10^-7, and any
/// other decimal of three places or fewer is 10^-3 away.
fn thousandths(value: f64) -> Option<u64> {
    if !(0.0..1e9).contains(&value) || value.is_sign_negative() {
        return None;
    }
    let thousandths = (value * 1000.0).round();
    (thousandths / 1000.0 == value).then_some(thousandths as u64)
}

/// `thousandths` / 1000 as `f64`'s `Debug` writes it: `1.5`, `0.001`, `12.0`.
fn write_thousandths(writer: &mut Writer<'_>, thousandths: u64) -> fmt::Result {
    write!(writer, "{}.", thousandths / 1000)?;
    let mut fraction = thousandths % 1000;
    if fraction == 0 {
        return fmt::Write::write_char(writer, '0');
    }
    let mut digits = 3;
    while fraction.is_multiple_of(10) {
        fraction /= 10;
        digits -= 1;
    }
    write!(writer, "{fraction:0digits$}")
}

/// Whether `str`'s `Debug` is the text in quotes: printable ASCII, no quote, no backslash.
fn debug_is_quoted(text: &str) -> bool {
    text.bytes().all(|byte| (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\')
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        if !(self.plain(field) && debug_is_quoted(value)) {
            return self.default_visitor(field, |visitor| visitor.record_str(field, value));
        }
        self.result = self.start(field).and_then(|()| {
            self.writer.write_char('"')?;
            self.writer.write_str(value)?;
            self.writer.write_char('"')
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.display(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.display(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.display(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.result.is_err() {
            return;
        }
        match (self.plain(field), thousandths(value)) {
            (true, Some(thousandths)) => {
                self.result =
                    self.start(field).and_then(|()| write_thousandths(&mut self.writer, thousandths));
            }
            _ => self.record_debug(field, &value),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.default_visitor(field, |visitor| visitor.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.default_visitor(field, |visitor| visitor.record_debug(field, value));
    }
}

impl VisitOutput<fmt::Result> for PlainVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for PlainVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// Whether text logs are coloured: only on a terminal, and never when `NO_COLOR` is set to
/// anything but the empty string.
fn use_colour(is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    is_terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))), "an empty NO_COLOR is unset");
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(true, Some(OsStr::new("0"))), "any value turns colour off");
        assert!(!use_colour(false, None));
        assert!(!use_colour(false, Some(OsStr::new(""))));
    }

    /// Captures what a subscriber writes.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// The lines `logging` writes for one per-message line and one debug line.
    fn written(logging: &Logging, filter: &str, colour: bool) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber =
            logging.subscriber(logging.filter(Some(filter)).unwrap(), move || writer.clone(), colour);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(message_id = "m-1", result = "SUCCEEDED", elapsed_ms = 1.5, "message handled");
            tracing::debug!(target: "noisy::client", "signing a request");
        });
        buffer.text()
    }

    /// `2026-12-01T10:00:00.123456Z ` at the start of `line`.
    fn starts_with_utc_timestamp(line: &str) -> bool {
        let shape = "dddd-dd-ddTdd:dd:dd.ddddddZ ";
        line.len() >= shape.len()
            && line.bytes().zip(shape.bytes()).all(|(byte, want)| match want {
                b'd' => byte.is_ascii_digit(),
                _ => byte == want,
            })
    }

    #[test]
    fn the_shape_check_fails_on_other_shapes() {
        assert!(starts_with_utc_timestamp("2026-12-01T10:00:00.123456Z  INFO x"));
        assert!(!starts_with_utc_timestamp("2026-12-01T10:00:00.123Z  INFO x"), "milliseconds");
        assert!(!starts_with_utc_timestamp("2026-12-01T10:00:00.123456+01:00 INFO x"));
        assert!(!starts_with_utc_timestamp("\x1b[2m2026-12-01T10:00:00.123456Z\x1b[0m  INFO x"));
    }

    #[test]
    fn text_lines_start_with_a_utc_timestamp_and_carry_no_escapes_off_a_terminal() {
        let colour = use_colour(false, None);
        let text = written(&Logging::new(), "info", colour);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line = lines[0];
        assert!(starts_with_utc_timestamp(line), "{line:?}");
        assert!(!line.contains("\x1b["), "{line:?}");
        assert!(line.contains(" INFO pubsub_core::logging::tests: message handled"), "{line:?}");
        assert!(line.contains("message_id=\"m-1\"") && line.contains("result=\"SUCCEEDED\""), "{line:?}");
    }

    #[test]
    fn plain_fields_write_what_the_default_writes() {
        let lines = |plain: bool| {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let builder = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .without_time();
            let events = || {
                let error = std::io::Error::other("disk \"full\"");
                let none: Option<&str> = None;
                tracing::info!(message_id = "m-1", media_type = "application/vnd.x+json", count = 3u32, delta = -7i64,
                    ok = true, elapsed_ms = 1.5, whole_ms = 12.0, tiny = 0.001, third = 0.1 + 0.2, big = 1e21, quoted = "say \"hi\"", slash = "a\\b", line = "a\nb",
                    unicode = "café ☕", tab = "a\tb", del = "a\u{7f}", empty = "", absent = none, r#type = "t",
                    debug = ?vec![1, 2], display = %"shown", error = &error as &dyn std::error::Error,
                    "message {} handled", 7);
                tracing::info!("no fields");
                tracing::info!(only = "one");
                tracing::warn!(first = ?"x", second = "y", third = 3u64, "mixed");
            };
            if plain {
                tracing::subscriber::with_default(builder.fmt_fields(PlainFields).finish(), events);
            } else {
                tracing::subscriber::with_default(builder.finish(), events);
            }
            buffer.text()
        };
        let (plain, default) = (lines(true), lines(false));
        assert_eq!(plain, default);
        assert!(
            plain.contains(
                r#"message 7 handled message_id="m-1" media_type="application/vnd.x+json" count=3"#
            ),
            "{plain}"
        );
    }

    #[test]
    fn times_are_written_as_the_default_timer_writes_them() {
        let at =
            |seconds: u64, micros: u32| utc_micros(std::time::Duration::new(seconds, micros * 1000 + 999));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(1_795_800_748, 960_123), "2026-11-27T17:32:28.960123Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(at(YEAR_10000 - 1, 999_999), "9999-12-31T23:59:59.999999Z");
        // Against the default, to the day (the two read the clock at different times).
        let mut ours = String::new();
        UtcMicros.format_time(&mut Writer::new(&mut ours)).unwrap();
        let mut default = String::new();
        SystemTime.format_time(&mut Writer::new(&mut default)).unwrap();
        assert_eq!(ours.len(), default.len());
        assert_eq!(ours[..10], default[..10], "{ours} {default}");
    }

    #[test]
    fn thousandths_are_written_as_debug_writes_them() {
        let mut values: Vec<f64> = (0..200_000u64).map(|micros| micros as f64 / 1000.0).collect();
        let mut rng = fastrand::Rng::with_seed(16);
        values.extend((0..100_000).map(|_| rng.u64(..1_000_000_000_000) as f64 / 1000.0));
        for value in values {
            let thousandths = thousandths(value).unwrap();
            let mut text = String::new();
            write_thousandths(&mut Writer::new(&mut text), thousandths).unwrap();
            assert_eq!(text, format!("{value:?}"));
        }
        for other in [-0.0, -1.5, 0.0001, 1e-7, 1e9, 2.5e15, f64::NAN, f64::INFINITY, 0.1 + 0.2] {
            assert_eq!(thousandths(other), None, "{other:?}");
        }
    }

    #[test]
    fn text_is_coloured_when_asked() {
        let text = written(&Logging::new(), "info", true);
        assert!(text.contains("\x1b["), "{text:?}");
    }

    #[test]
    fn json_lines_hold_the_fields_at_the_top_level() {
        let text = written(&Logging::new().json(true), "info", true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(!text.contains("\x1b["), "JSON is never coloured: {text:?}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(starts_with_utc_timestamp(&format!("{timestamp} ")), "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["target"], "pubsub_core::logging::tests", "{line}");
        assert_eq!(line["message"], "message handled", "{line}");
        assert_eq!(line["message_id"], "m-1", "{line}");
        assert_eq!(line["result"], "SUCCEEDED", "{line}");
    }

    #[test]
    fn debug_keeps_the_quiet_targets_at_info() {
        let logging = Logging::new().debug(true).quiet(["noisy", "other"]);
        assert_eq!(logging.default_filter(), "debug,noisy=info,other=info");
        assert_eq!(Logging::new().quiet(["noisy"]).default_filter(), "info");
        let text = written(&logging, &logging.default_filter(), false);
        assert!(text.contains("message handled") && !text.contains("signing"), "{text}");
        let text = written(&Logging::new().debug(true), &Logging::new().debug(true).default_filter(), false);
        assert!(text.contains("DEBUG noisy::client: signing a request"), "{text}");
    }

    #[test]
    fn rust_log_replaces_the_default_filter_unless_blank() {
        let logging = Logging::new();
        let text = written(&logging, "noisy=debug", false);
        assert!(!text.contains("message handled") && text.contains("signing"), "{text}");
        assert_eq!(logging.filter(Some("  ")).unwrap().to_string(), "info");
        assert_eq!(logging.filter(None).unwrap().to_string(), "info");
        let error = logging.filter(Some("pubsub_core=loud")).unwrap_err();
        assert!(error.to_string().starts_with("invalid log filter `pubsub_core=loud`"), "{error}");
    }
}
