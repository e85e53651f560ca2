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

use std::cell::RefCell;
use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
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
        } else if colour {
            Box::new(builder.with_ansi(true).fmt_fields(PlainFields).finish())
        } else {
            let line = PlainLine { timer: UtcMicros };
            Box::new(builder.with_ansi(false).fmt_fields(PlainFields).event_format(line).finish())
        }
    }
}

/// The time of a line as tracing-subscriber's `SystemTime` writes it (RFC 3339 in UTC with
/// microseconds, `2026-12-01T10:00:00.123456Z`), written digit by digit: through `core::fmt`
/// it was a fifth of the cost of the line logged for each message.
#[derive(Clone, Copy)]
struct UtcMicros;

impl FormatTime for UtcMicros {
    fn format_time(&self, writer: &mut Writer<'_>) -> fmt::Result {
        let now = std::time::SystemTime::now();
        match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(since) if since.as_secs() < YEAR_10000 => write_utc_micros(writer, since),
            // Before 1970 or after 9999: the default's signs and widths.
            _ => SystemTime.format_time(writer),
        }
    }
}

thread_local! {
    /// The millisecond this thread last wrote and its text up to the microseconds
    /// (`2026-12-01T10:00:00.123`): the lines of one millisecond share it, so that only the
    /// last three digits are worked out for each, and those of one second share all but the
    /// milliseconds.
    static MILLISECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Writes `since` the epoch (before [`YEAR_10000`]) as [`utc_micros`] does.
fn write_utc_micros(writer: &mut Writer<'_>, since: std::time::Duration) -> fmt::Result {
    let micros = since.subsec_micros() as usize;
    // The last three digits and the `Z`, sliced from a table: no UTF-8 check of a few bytes.
    let last = &DIGITS_Z[micros % 1000 * 4..micros % 1000 * 4 + 4];
    let millisecond = since.as_secs() * 1000 + (micros / 1000) as u64;
    MILLISECOND.with(|cached| {
        let Ok(mut cached) = cached.try_borrow_mut() else {
            let text = utc_micros(since);
            return writer.write_str(std::str::from_utf8(&text).expect("digits and ASCII punctuation"));
        };
        if cached.0 != millisecond {
            // The same second: only the milliseconds change.
            if cached.0 / 1000 == since.as_secs() {
                cached.1.truncate(20);
            } else {
                let text = utc_micros(since);
                cached.1.clear();
                cached.1.push_str(std::str::from_utf8(&text[..20]).expect("digits and ASCII punctuation"));
            }
            let millis = micros / 1000;
            cached.1.push_str(&DIGITS_Z[millis * 4..millis * 4 + 3]);
            cached.0 = millisecond;
        }
        writer.write_str(&cached.1)?;
        writer.write_str(last)
    })
}

/// `000Z001Z` … `999Z`: three digits and the `Z` of a time, sliced by value.
static DIGITS_Z: &str = ascii(&DIGITS_Z_BYTES);

/// The bytes of [`DIGITS_Z`].
static DIGITS_Z_BYTES: [u8; 4000] = triples(b'Z', false);

/// The thousand texts of three digits, `000` to `999`, each with `mark` before it (`.000`)
/// or after it (`000Z`): four bytes a value, sliced rather than checked as UTF-8 each time
/// (for short text, the check costs more than the copy).
const fn triples(mark: u8, mark_first: bool) -> [u8; 4000] {
    let mut bytes = [0; 4000];
    let mut value = 0;
    while value < 1000 {
        let digits = if mark_first { value * 4 + 1 } else { value * 4 };
        bytes[if mark_first { value * 4 } else { value * 4 + 3 }] = mark;
        bytes[digits] = b'0' + (value / 100) as u8;
        bytes[digits + 1] = b'0' + (value / 10 % 10) as u8;
        bytes[digits + 2] = b'0' + (value % 10) as u8;
        value += 1;
    }
    bytes
}

/// `bytes` as text, checked once when the program is built.
const fn ascii(bytes: &'static [u8]) -> &'static str {
    match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => panic!("ASCII digits"),
    }
}

/// 10000-01-01T00:00:00Z in seconds since the epoch: the first time with a fifth year digit.
const YEAR_10000: u64 = 253_402_300_800;

/// `since` the epoch (before [`YEAR_10000`]) as `YYYY-MM-DDTHH:MM:SS.ffffffZ`, on the stack:
/// a `String` a line cost an allocation and its free.
fn utc_micros(since: std::time::Duration) -> [u8; 27] {
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
    text
}

/// The text line of an event as tracing-subscriber's default format (`Format<Full>`) writes
/// it without colours, `TIME LEVEL span{fields}:span: target: fields`, written piece by piece:
/// the default writes the level, each span and the target through `core::fmt` (`write!`),
/// which cost the line logged for each message about 1,000 instructions more. The coloured
/// line stays the default's.
struct PlainLine<T> {
    timer: T,
}

/// `level` as the default writes it, five wide and right-aligned, with the spaces either
/// side: one write for three.
fn level_text(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        Level::ERROR => " ERROR ",
    }
}

impl<S, N, T> FormatEvent<S, N> for PlainLine<T>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    N: for<'writer> FormatFields<'writer> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The line is written into a buffer of this thread's, without a dynamic call a piece,
        // and handed on whole. The buffer is the writer's kind (no colours, escapes
        // sanitized). It is busy only if a value's formatting writes a line through another
        // subscriber (tracing drops an event inside another's); that line goes straight on.
        if writer.has_ansi_escapes() || !writer.sanitizes_ansi_escapes() {
            return self.write_line(ctx, &mut writer, event);
        }
        LINE.with(|line| match line.try_borrow_mut() {
            Ok(mut line) => {
                line.clear();
                self.write_line(ctx, &mut *line, event)?;
                let written = writer.write_str(&line);
                // A line of a long value does not keep its room.
                if line.capacity() > LINE_ROOM {
                    *line = String::with_capacity(LINE_ROOM);
                }
                written
            }
            Err(_) => self.write_line(ctx, &mut writer, event),
        })
    }
}

thread_local! {
    /// The line being written on this thread (see [`PlainLine`]).
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The room a thread's line keeps between lines.
const LINE_ROOM: usize = 1024;

impl<T: FormatTime> PlainLine<T> {
    /// Writes the line of `event` to `out`. Its fields are written by [`PlainVisitor`] here,
    /// not through the formatter's `N` (always [`PlainFields`]), so that they are written to
    /// `out` statically.
    fn write_line<S, N, O>(&self, ctx: &FmtContext<'_, S, N>, out: &mut O, event: &Event<'_>) -> fmt::Result
    where
        S: Subscriber + for<'lookup> LookupSpan<'lookup>,
        N: for<'writer> FormatFields<'writer> + 'static,
        O: PlainOut,
    {
        // A `log` record comes as an event of the log tracer's: its own target and level are
        // in fields, which the default reads back the same way.
        let normalized = event.normalized_metadata();
        let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
        // As the default: a timer's failure is no reason to lose the line.
        if self.timer.format_time(&mut out.writer()).is_err() {
            out.write_str("<unknown time>")?;
        }
        out.write_str(level_text(metadata.level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut any = false;
            for span in scope.from_root() {
                any = true;
                out.write_str(span.metadata().name())?;
                // The span's fields, formatted once when it was created, by the same `N`.
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        out.write_char('{')?;
                        out.write_str(fields)?;
                        out.write_char('}')?;
                    }
                }
                out.write_char(':')?;
            }
            if any {
                out.write_char(' ')?;
            }
        }
        out.write_str(metadata.target())?;
        out.write_str(": ")?;
        let mut visitor = PlainVisitor::new(&mut *out);
        event.record(&mut visitor);
        visitor.finish()?;
        out.write_char('\n')
    }
}

/// Where a [`PlainVisitor`] writes: the writer tracing-subscriber hands a field formatter
/// (dynamic calls), or a line's own buffer.
trait PlainOut: fmt::Write {
    /// Whether colours are written ([`Writer::has_ansi_escapes`]).
    fn has_ansi_escapes(&self) -> bool;
    /// Whether terminal controls in text are escaped ([`Writer::sanitizes_ansi_escapes`]).
    fn sanitizes_ansi_escapes(&self) -> bool;
    /// A [`Writer`] onto this, of the same kind, for the default's visitor and the timer.
    fn writer(&mut self) -> Writer<'_>;
}

impl PlainOut for Writer<'_> {
    fn has_ansi_escapes(&self) -> bool {
        Writer::has_ansi_escapes(self)
    }

    fn sanitizes_ansi_escapes(&self) -> bool {
        Writer::sanitizes_ansi_escapes(self)
    }

    fn writer(&mut self) -> Writer<'_> {
        self.by_ref()
    }
}

/// A line's buffer: as [`Writer::new`] makes one, without colours, escapes sanitized.
impl PlainOut for String {
    fn has_ansi_escapes(&self) -> bool {
        false
    }

    fn sanitizes_ansi_escapes(&self) -> bool {
        true
    }

    fn writer(&mut self) -> Writer<'_> {
        Writer::new(self)
    }
}

impl<O: PlainOut + ?Sized> PlainOut for &mut O {
    fn has_ansi_escapes(&self) -> bool {
        (**self).has_ansi_escapes()
    }

    fn sanitizes_ansi_escapes(&self) -> bool {
        (**self).sanitizes_ansi_escapes()
    }

    fn writer(&mut self) -> Writer<'_> {
        (**self).writer()
    }
}

/// The fields of a text line, as tracing-subscriber's default writes them (`name="text"`,
/// `name=42`), with a short cut for the common values: text of printable ASCII with no quote
/// or backslash, integers and booleans are written as they are, where the default formats
/// every value through `Debug` (a string character by character, for its escapes), which was
/// most of the cost of the line logged for each message. Everything else, and every field of
/// a coloured line, goes to the default's visitor.
struct PlainFields;

impl<'a> MakeVisitor<Writer<'a>> for PlainFields {
    type Visitor = PlainVisitor<Writer<'a>>;

    fn make_visitor(&self, writer: Writer<'a>) -> PlainVisitor<Writer<'a>> {
        PlainVisitor::new(writer)
    }
}

struct PlainVisitor<O> {
    writer: O,
    is_empty: bool,
    /// The closing quote of a plain string is still to be written: it waits to go with the
    /// space before the next field, in one write.
    quote_open: bool,
    result: fmt::Result,
}

impl<O: PlainOut> PlainVisitor<O> {
    fn new(writer: O) -> Self {
        PlainVisitor { writer, is_empty: true, quote_open: false, result: Ok(()) }
    }

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

    /// Writes the closing quote of a plain string if it is still to be written.
    fn close(&mut self) -> fmt::Result {
        if std::mem::take(&mut self.quote_open) {
            self.writer.write_char('"')
        } else {
            Ok(())
        }
    }

    /// Writes what goes before a field: nothing before the first, else a space, after the
    /// closing quote still to be written if any. Each write is a dynamic call and a push onto
    /// a `String`, so the fewer the better.
    fn separate(&mut self) -> fmt::Result {
        if self.is_empty {
            self.is_empty = false;
            Ok(())
        } else if std::mem::take(&mut self.quote_open) {
            self.writer.write_str("\" ")
        } else {
            self.writer.write_char(' ')
        }
    }

    /// Writes the name and `equals` (`=`, or `="` before text), separated from any field before.
    fn start(&mut self, field: &Field, equals: &str) -> fmt::Result {
        self.separate()?;
        self.writer.write_str(field.name())?;
        self.writer.write_str(equals)
    }

    /// Writes `name=` and `write`'s text for a plain field, or hands `value` to the default.
    /// `equals` is `=` or, where the value is short, `=` and the value (see [`equals_small`]).
    fn plain_value(
        &mut self,
        field: &Field,
        value: &dyn fmt::Debug,
        equals: &str,
        write: impl FnOnce(&mut O) -> fmt::Result,
    ) {
        if self.result.is_err() {
            return;
        }
        if !self.plain(field) {
            return self.record_debug(field, value);
        }
        self.result = self.start(field, equals).and_then(|()| write(&mut self.writer));
    }

    /// Writes the message as the default does, its `Debug` with the controls a terminal acts
    /// on escaped, a piece at a time where the default's escaping goes character by character.
    fn message(&mut self, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        self.result = self.separate().and_then(|()| {
            let writer = &mut self.writer;
            if writer.sanitizes_ansi_escapes() {
                write!(Sanitizing(writer), "{value:?}")
            } else {
                write!(writer, "{value:?}")
            }
        });
    }

    /// Writes a message given as text as [`message`](Self::message) writes its `Debug`.
    fn message_text(&mut self, text: &str) {
        self.result = self.separate().and_then(|()| {
            let writer = &mut self.writer;
            if writer.sanitizes_ansi_escapes() {
                Sanitizing(writer).write_str(text)
            } else {
                writer.write_str(text)
            }
        });
    }

    /// Hands a field to the default's visitor, which writes it after a space if need be (and
    /// skips the `log.` fields).
    fn default_visitor(&mut self, field: &Field, record: impl FnOnce(&mut DefaultVisitor<'_>)) {
        if self.result.is_err() {
            return;
        }
        if let Err(error) = self.close() {
            self.result = Err(error);
            return;
        }
        let mut visitor = DefaultVisitor::new(self.writer.writer(), self.is_empty);
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
fn write_thousandths(writer: &mut impl fmt::Write, thousandths: u64) -> fmt::Result {
    write_u64(writer, thousandths / 1000)?;
    write_fraction(writer, thousandths)
}

/// The point and fraction of `thousandths` / 1000 as `f64`'s `Debug` writes them: `.5`,
/// `.001`, `.0`.
fn write_fraction(writer: &mut impl fmt::Write, thousandths: u64) -> fmt::Result {
    let fraction = (thousandths % 1000) as usize;
    if fraction == 0 {
        return writer.write_str(".0");
    }
    // `.ddd`, less its trailing zeros.
    let text = &POINT_TRIPLES[fraction * 4..fraction * 4 + 4];
    writer.write_str(text.trim_end_matches('0'))
}

/// `.000.001.002` … `.999`: the text of any three digits, after a point (see [`triples`]).
static POINT_TRIPLES: &str = ascii(&POINT_TRIPLE_BYTES);

/// The bytes of [`POINT_TRIPLES`].
static POINT_TRIPLE_BYTES: [u8; 4000] = triples(b'.', true);

/// `=` and `value` (under 1000) in decimal: a field's `=` and a count or a number of
/// milliseconds in one write, where they were two.
fn equals_small(value: usize) -> &'static str {
    let (from, width) = match value {
        0..10 => (2 * value, 2),
        10..100 => (20 + 3 * (value - 10), 3),
        _ => (290 + 4 * (value - 100), 4),
    };
    &EQUALS_SMALL[from..from + width]
}

/// `=0=1` … `=9=10` … `=999`, sliced by [`equals_small`].
static EQUALS_SMALL: &str = ascii(&EQUALS_SMALL_BYTES);

/// The bytes of [`EQUALS_SMALL`].
static EQUALS_SMALL_BYTES: [u8; 3890] = {
    let mut bytes = [0; 3890];
    let (mut value, mut at) = (0, 0);
    while value < 1000 {
        bytes[at] = b'=';
        at += 1;
        if value >= 100 {
            bytes[at] = b'0' + (value / 100) as u8;
            at += 1;
        }
        if value >= 10 {
            bytes[at] = b'0' + (value / 10 % 10) as u8;
            at += 1;
        }
        bytes[at] = b'0' + (value % 10) as u8;
        at += 1;
        value += 1;
    }
    bytes
};

/// `value` in decimal, as its `Display` and `Debug` write it, without `core::fmt`'s
/// machinery (a tenth of the cost of a field).
fn write_u64(writer: &mut impl fmt::Write, mut value: u64) -> fmt::Result {
    if value < 1000 {
        return writer.write_str(&equals_small(value as usize)[1..]);
    }
    let mut text = [0u8; 20];
    let mut at = text.len();
    loop {
        at -= 1;
        text[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    writer.write_str(std::str::from_utf8(&text[at..]).expect("ASCII digits"))
}

/// `value` in decimal, as its `Display` and `Debug` write it.
fn write_i64(writer: &mut impl fmt::Write, value: i64) -> fmt::Result {
    if value < 0 {
        writer.write_char('-')?;
    }
    write_u64(writer, value.unsigned_abs())
}

/// Whether [`Sanitizing`] looks at `byte`: a control a terminal acts on, or the first byte
/// of a C1 control.
const fn acts_on(byte: u8) -> bool {
    matches!(byte, 0x07 | 0x08 | 0x0c | 0x1b | 0x7f | 0xc2)
}

/// [`acts_on`] by value.
static ACTS_ON: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = acts_on(byte as u8);
        byte += 1;
    }
    table
};

/// Text written as tracing-subscriber escapes a message (`EscapeGuard`): the C0 controls a
/// terminal acts on as `\x1b`, the C1 controls as `\u{85}`, each piece written whole when it
/// holds none of them.
struct Sanitizing<'a, W>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Sanitizing<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // 0xc2 starts every character from U+0080 to U+00BF, the C1 controls among them. No
        // short cut on the first hit, so that the loop is vectorised; short text (a message
        // such as `message handled`) by a table, which costs less than the vector loop's ends.
        let clean = if text.len() < 32 {
            !text.bytes().any(|byte| ACTS_ON[usize::from(byte)])
        } else {
            text.bytes().fold(true, |clean, byte| clean & !acts_on(byte))
        };
        if clean {
            return self.0.write_str(text);
        }
        for character in text.chars() {
            match character {
                '\x07' | '\x08' | '\x0c' | '\x1b' | '\x7f' => {
                    write!(self.0, "\\x{:02x}", u32::from(character))?
                }
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", u32::from(character))?,
                _ => self.0.write_char(character)?,
            }
        }
        Ok(())
    }
}

/// Whether `str`'s `Debug` is the text in quotes: printable ASCII, no quote, no backslash.
fn debug_is_quoted(text: &str) -> bool {
    // No short cut on the first other byte, so that the loop is vectorised: nearly every
    // value is plain, and read to its end anyway.
    text.bytes()
        .fold(true, |plain, byte| plain & (byte.wrapping_sub(0x20) < 0x5f) & (byte != b'"') & (byte != b'\\'))
}

impl<O: PlainOut> Visit for PlainVisitor<O> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        // A message given as text (`message = "..."`): as the default writes it, through
        // `format_args!("{}")`, without the formatting machinery.
        if field.name() == "message" && !self.writer.has_ansi_escapes() {
            return self.message_text(value);
        }
        if !(self.plain(field) && debug_is_quoted(value)) {
            return self.default_visitor(field, |visitor| visitor.record_str(field, value));
        }
        self.result = self.start(field, "=\"").and_then(|()| self.writer.write_str(value));
        self.quote_open = true;
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        match usize::try_from(value) {
            Ok(small @ 0..1000) => self.plain_value(field, &value, equals_small(small), |_| Ok(())),
            _ => self.plain_value(field, &value, "=", |writer| write_i64(writer, value)),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match usize::try_from(value) {
            Ok(small @ 0..1000) => self.plain_value(field, &value, equals_small(small), |_| Ok(())),
            _ => self.plain_value(field, &value, "=", |writer| write_u64(writer, value)),
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.plain_value(field, &value, if value { "=true" } else { "=false" }, |_| Ok(()));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.result.is_err() {
            return;
        }
        match (self.plain(field), thousandths(value)) {
            (true, Some(thousandths)) => {
                let whole = (thousandths / 1000) as usize;
                self.result = if whole < 1000 {
                    self.start(field, equals_small(whole))
                        .and_then(|()| write_fraction(&mut self.writer, thousandths))
                } else {
                    self.start(field, "=").and_then(|()| write_thousandths(&mut self.writer, thousandths))
                };
            }
            _ => self.record_debug(field, &value),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.default_visitor(field, |visitor| visitor.record_error(field, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The message has no colours of its own; a coloured line's is still the default's.
        if field.name() == "message" && !self.writer.has_ansi_escapes() {
            return self.message(value);
        }
        self.default_visitor(field, |visitor| visitor.record_debug(field, value));
    }
}

impl<O: PlainOut> VisitOutput<fmt::Result> for PlainVisitor<O> {
    fn finish(mut self) -> fmt::Result {
        self.result.and_then(|()| self.close())
    }
}

impl<O: PlainOut> VisitFmt for PlainVisitor<O> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        // After the quote still to be written, so that what is written here comes after it.
        if let Err(error) = self.close() {
            self.result = Err(error);
        }
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
                    ok = true, elapsed_ms = 1.5, whole_ms = 12.0, tiny = 0.001, most = 999.999, thousand = 1000.5, zero = 0.0,
                    small = 7u64, large = 1000u64, true_ = true, negative = -1000i64, positive = 999i64, third = 0.1 + 0.2, big = 1e21, quoted = "say \"hi\"", slash = "a\\b", line = "a\nb",
                    unicode = "café ☕", tab = "a\tb", del = "a\u{7f}", empty = "", absent = none, r#type = "t",
                    debug = ?vec![1, 2], display = %"shown", error = &error as &dyn std::error::Error,
                    "message {} handled", 7);
                tracing::info!("no fields");
                tracing::info!(only = "one");
                tracing::warn!(first = ?"x", second = "y", third = 3u64, "mixed");
                // The per-message line's own fields: after text, after a number, first, large
                // and small numbers.
                tracing::info!(
                    receive_count = 1u32,
                    handler = "h",
                    elapsed_ms = 1500.25,
                    published = 2000usize,
                    result = "SUCCEEDED",
                    media_type = "m",
                    trace_id = "t",
                    span_id = "s",
                    message_id = "x",
                    reason = "plain",
                    "message handled"
                );
                tracing::info!(published = 0usize, elapsed_ms = 0.5, receive_count = 1234u32);
                tracing::warn!(reason = "bad \"body\"", media_type = "m", handler = ?"h", result = "R");
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

    /// A clock stopped at one time, so that two formatters' lines compare byte for byte.
    #[derive(Clone)]
    struct Stopped;

    impl FormatTime for Stopped {
        fn format_time(&self, writer: &mut Writer<'_>) -> fmt::Result {
            writer.write_str("2026-12-01T10:00:00.123456Z")
        }
    }

    /// A clock that fails, which both formatters write as `<unknown time>`.
    #[derive(Clone)]
    struct Broken;

    impl FormatTime for Broken {
        fn format_time(&self, _writer: &mut Writer<'_>) -> fmt::Result {
            Err(fmt::Error)
        }
    }

    /// Events of every kind the daemon and its libraries log: every level, in and out of
    /// spans (with and without fields, nested, an explicit parent, none), fields on either
    /// path of `PlainFields`, odd messages, and `log` records as the log tracer hands them on.
    fn varied_events() {
        use tracing_log::log;

        let error = std::io::Error::other("disk \"full\"");
        let none: Option<&str> = None;
        tracing::trace!(step = 1u8, "tracing");
        tracing::debug!(body = "{\"id\":1}", "message body");
        tracing::info!(
            media_type = "application/json",
            message_id = "m-1",
            handler = "orders",
            result = "SUCCEEDED",
            elapsed_ms = 1.5,
            receive_count = 1u32,
            published = 0usize,
            trace_id = none,
            span_id = none,
            "message handled"
        );
        tracing::warn!(message_id = "m-2", result = "FAILED", reason = "bad \"body\"\n", "message handled");
        tracing::error!(error = &error as &dyn std::error::Error, "cannot receive");
        tracing::info!("");
        tracing::info!("two\nlines\r\n");
        tracing::info!("escapes \x1b[31mred\x1b[0m \x07\x08\x0c\x7f \u{85}\u{9f} \u{a0} café");
        tracing::info!("message {} of {:?}", 7, "x");
        // Each control on its own in a piece of the message, as in none.
        for text in [
            "bell \x07",
            "bs \x08",
            "ff \x0c",
            "esc \x1b",
            "del \x7f",
            "c1 \u{80}\u{9f}",
            "nbsp \u{a0}",
            "\u{7e}",
        ] {
            tracing::info!("{text}");
        }
        tracing::info!("argument {} and {:?}", "\x1b[1mbold\u{9b}", "\x1b");
        tracing::info!(message = "as a field", r#type = "t");
        tracing::info!(only = ?vec![1, 2], display = %"shown", flag = false, delta = -3i64, third = 0.1 + 0.2);
        tracing::info!(target: "custom::target", "elsewhere");
        // A value whose formatting logs: tracing drops an event dispatched inside another's
        // (the line's buffer is busy then), and the outer line is written.
        struct Logs;
        impl fmt::Debug for Logs {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                tracing::info!(inner = "yes", "logged while formatting");
                f.write_str("logs")
            }
        }
        tracing::info!(value = ?Logs, "outer");
        // Long values, a message longer than any field.
        let (long, longer) = ("l".repeat(300), "m".repeat(600));
        tracing::info!(a = &*long, b = &*long, n = 12345u64, c = &*longer, after = ?"x", d = &*long, "{}", longer);
        let outer = tracing::info_span!("outer", queue = "orders", count = 2u64, odd = ?"q\"");
        let inner = tracing::debug_span!(parent: &outer, "inner", id = "m-3");
        tracing::info_span!("root").in_scope(|| tracing::info!("in a span without fields"));
        outer.in_scope(|| {
            tracing::info!(result = "SUCCEEDED", "in a span");
            tracing::info_span!("empty").in_scope(|| {
                tracing::warn!("in two spans");
                tracing::info!(parent: None, "no parent");
                tracing::info!(parent: &inner, "explicit parent");
            });
        });
        inner.in_scope(|| tracing::error!(n = 1u64, "nested"));
        let late = tracing::info_span!("late", first = "a", later = tracing::field::Empty, last = 2u64);
        late.record("later", "recorded");
        late.in_scope(|| tracing::info!(after = "b", "fields recorded later"));
        let record = |level, target, text: &str| {
            tracing_log::format_trace(
                &log::Record::builder()
                    .level(level)
                    .target(target)
                    .module_path(Some("some::module"))
                    .file(Some("src/lib.rs"))
                    .line(Some(42))
                    .args(format_args!("{text}"))
                    .build(),
            )
            .unwrap();
        };
        record(log::Level::Info, "log_crate::client", "from the log crate");
        record(log::Level::Warn, "log_crate", "a \"warning\"");
        record(log::Level::Trace, "log_crate::deep", "");
        outer.in_scope(|| record(log::Level::Error, "log_crate", "in a span\nand two lines"));
    }

    /// What `PlainLine` writes with `PlainFields` and `timer`, then what the default
    /// `Format<Full>` writes without colours with the same, then with its own fields too.
    fn lines<T: FormatTime + Clone + Send + Sync + 'static>(timer: T) -> [String; 3] {
        let run = |line: bool, plain_fields: bool| {
            let buffer = Buffer::default();
            let writer = buffer.clone();
            let builder = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_timer(timer.clone());
            let events = varied_events;
            match (line, plain_fields) {
                (true, _) => {
                    let line = PlainLine { timer: timer.clone() };
                    let subscriber = builder.fmt_fields(PlainFields).event_format(line).finish();
                    tracing::subscriber::with_default(subscriber, events);
                }
                (false, true) => {
                    tracing::subscriber::with_default(builder.fmt_fields(PlainFields).finish(), events);
                }
                (false, false) => tracing::subscriber::with_default(builder.finish(), events),
            }
            buffer.text()
        };
        [run(true, true), run(false, true), run(false, false)]
    }

    #[test]
    fn plain_lines_are_what_the_default_format_writes() {
        let [plain, default, stock] = lines(Stopped);
        assert_eq!(plain, default);
        assert_eq!(default, stock, "PlainFields writes what the default's fields write");
        for expected in [
            "2026-12-01T10:00:00.123456Z TRACE pubsub_core::logging::tests: tracing step=1\n",
            " INFO pubsub_core::logging::tests: message handled media_type=\"application/json\"",
            " WARN outer{queue=\"orders\" count=2 odd=\"q\\\"\"}:empty: pubsub_core::logging::tests: in two spans\n",
            "ERROR outer{queue=\"orders\" count=2 odd=\"q\\\"\"}:inner{id=\"m-3\"}: pubsub_core::logging::tests: nested n=1\n",
            " INFO log_crate::client: from the log crate\n",
            "TRACE log_crate::deep: \n",
            " INFO root: pubsub_core::logging::tests: in a span without fields\n",
            " INFO pubsub_core::logging::tests: no parent\n",
            " INFO pubsub_core::logging::tests: outer value=logs\n",
            " INFO late{first=\"a\" last=2 later=\"recorded\"}: pubsub_core::logging::tests: fields recorded later after=\"b\"\n",
            "ERROR outer{queue=\"orders\" count=2 odd=\"q\\\"\"}: log_crate: in a span\nand two lines\n",
        ] {
            assert!(plain.contains(expected), "{expected:?} not in\n{plain}");
        }
        assert!(!plain.contains("logged while formatting"), "{plain}");
        assert!(plain.contains(r"escapes \x1b[31mred\x1b[0m \x07\x08\x0c\x7f \u{85}\u{9f}"), "{plain}");
        let [plain, default, stock] = lines(Broken);
        assert_eq!(plain, default);
        assert_eq!(default, stock);
        assert!(plain.starts_with("<unknown time> TRACE "), "{plain}");
    }

    #[test]
    fn plain_lines_with_the_clock_are_the_default_s_after_the_time() {
        let [plain, default, stock] = lines(UtcMicros);
        let after_time =
            |text: &str| -> Vec<String> {
                text.lines()
                    .map(|line| {
                        if starts_with_utc_timestamp(line) {
                            line[27..].to_owned()
                        } else {
                            line.to_owned()
                        }
                    })
                    .collect()
            };
        assert_eq!(after_time(&plain), after_time(&default));
        assert_eq!(after_time(&default), after_time(&stock));
        assert!(starts_with_utc_timestamp(&plain), "{plain}");
    }

    #[test]
    fn times_are_written_as_the_default_timer_writes_them() {
        let at =
            |seconds: u64, micros: u32| utc_micros(std::time::Duration::new(seconds, micros * 1000 + 999));
        let at = |seconds, micros| String::from_utf8(at(seconds, micros).to_vec()).unwrap();
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(1_795_800_748, 960_123), "2026-11-27T17:32:28.960123Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(at(YEAR_10000 - 1, 999_999), "9999-12-31T23:59:59.999999Z");
        // Through the millisecond kept from line to line: the same millisecond, another of
        // the same second, the next second, an earlier one.
        for (seconds, micros) in [
            (1_795_800_748, 1),
            (1_795_800_748, 999),
            (1_795_800_748, 960_123),
            (1_795_800_748, 960_999),
            (1_795_800_748, 961_000),
            (1_795_800_749, 0),
            (1_795_800_749, 1_000),
            (0, 7),
            (1_795_800_748, 999_999),
            (1_795_800_748, 0),
        ] {
            let since = std::time::Duration::new(seconds, micros * 1000);
            let mut text = String::new();
            write_utc_micros(&mut Writer::new(&mut text), since).unwrap();
            assert_eq!(text, at(seconds, micros));
        }
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
    fn integers_are_written_as_display_writes_them() {
        let mut rng = fastrand::Rng::with_seed(16);
        let mut values = vec![0, 1, -1, 9, 10, -10, 99, 100, i64::MIN, i64::MAX, i64::MIN + 1];
        values.extend((0..10_000).map(|_| rng.i64(..) >> rng.u32(0..64)));
        for value in values {
            let mut text = String::new();
            write_i64(&mut Writer::new(&mut text), value).unwrap();
            assert_eq!(text, value.to_string());
            let unsigned = value as u64;
            text.clear();
            write_u64(&mut Writer::new(&mut text), unsigned).unwrap();
            assert_eq!(text, unsigned.to_string());
        }
        for value in 0..1000 {
            assert_eq!(equals_small(value), format!("={value}"));
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
