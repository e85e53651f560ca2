//! Shared by the integration tests that read a daemon's logs or watch what it receives.
//! Include it with `mod support;`.

#![allow(dead_code)] // each test binary uses a part

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pubsub_core::memory::MemorySubscriber;
use pubsub_core::transport::{
    BoxFuture, EntryError, ReceivedMessage, Subscriber, TransportError, VisibilityChange,
};

/// How captured lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `tracing_subscriber::fmt`'s text, as `pubsub_core::logging` writes it off a terminal
    /// (no colours), less the timestamp.
    Text,
    /// One JSON object a line, for tests that read fields.
    Json,
}

/// The log lines of one test.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

/// Stops the capture of its thread when dropped.
pub struct Capturing;

thread_local! {
    /// Where the log lines of this thread go, if anywhere.
    static CAPTURE: RefCell<Option<Logs>> = const { RefCell::new(None) };
}

/// The format of this test binary's one subscriber, set by its first capture.
static FORMAT: OnceLock<Format> = OnceLock::new();

/// Writes to the capture of the current thread.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(logs) = &*capture.borrow() {
                logs.0.lock().unwrap().extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURE.with(|capture| capture.borrow_mut().take());
    }
}

impl Logs {
    /// Captures everything logged on this thread at DEBUG and above until the guard drops
    /// (the tests run on current-thread runtimes, so the daemon's tasks log here too).
    ///
    /// One global subscriber serves every test of a binary, in the format of its first
    /// capture: scoped subscribers (`set_default`) on parallel test threads race in tracing's
    /// per-callsite interest cache and may lose events.
    pub fn capture(format: Format) -> (Logs, Capturing) {
        let chosen = *FORMAT.get_or_init(|| {
            let builder = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(|| ThreadWriter);
            match format {
                Format::Text => builder.without_time().init(),
                Format::Json => builder.json().init(),
            }
            format
        });
        assert_eq!(chosen, format, "one log format per test binary");
        let logs = Logs::default();
        CAPTURE.with(|capture| *capture.borrow_mut() = Some(logs.clone()));
        (logs, Capturing)
    }

    /// Every line.
    pub fn all(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(str::to_owned).collect()
    }

    /// What a daemon at the default level (info) writes.
    pub fn info(&self) -> Vec<String> {
        self.all().into_iter().filter(|line| !is_debug(line)).collect()
    }

    /// What `--debug` adds.
    pub fn debug(&self) -> Vec<String> {
        self.all().into_iter().filter(|line| is_debug(line)).collect()
    }
}

fn is_debug(line: &str) -> bool {
    match FORMAT.get() {
        Some(Format::Json) => line.contains(r#""level":"DEBUG""#) || line.contains(r#""level":"TRACE""#),
        _ => {
            let level = line.trim_start();
            level.starts_with("DEBUG") || level.starts_with("TRACE")
        }
    }
}

/// The broker's subscriber, with a look at (and a hand in) every message it hands out.
pub struct Tap {
    inner: MemorySubscriber,
    on_receive: Box<dyn Fn(&mut ReceivedMessage) + Send + Sync>,
}

impl Tap {
    /// `on_receive` sees each received message before the daemon does, and may change it.
    pub fn new(
        inner: MemorySubscriber,
        on_receive: impl Fn(&mut ReceivedMessage) + Send + Sync + 'static,
    ) -> Tap {
        Tap { inner, on_receive: Box::new(on_receive) }
    }

    /// Keeps a copy of every received message in `into`.
    pub fn recording(inner: MemorySubscriber, into: Arc<Mutex<Vec<ReceivedMessage>>>) -> Tap {
        Tap::new(inner, move |message| into.lock().unwrap().push(message.clone()))
    }
}

impl Subscriber for Tap {
    fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, TransportError>> {
        Box::pin(async move {
            let mut received = self.inner.receive(max, wait).await?;
            received.iter_mut().for_each(|message| (self.on_receive)(message));
            Ok(received)
        })
    }

    fn ack_batch<'a>(
        &'a self,
        receipt_handles: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>> {
        self.inner.ack_batch(receipt_handles)
    }

    fn change_visibility_batch<'a>(
        &'a self,
        changes: &'a [VisibilityChange],
    ) -> BoxFuture<'a, Result<Vec<Result<(), EntryError>>, TransportError>> {
        self.inner.change_visibility_batch(changes)
    }

    fn visibility_timeout(&self) -> Duration {
        self.inner.visibility_timeout()
    }
}
