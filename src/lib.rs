//! Shared helpers for this repository's examples and integration tests (not published).

use std::path::PathBuf;

pub mod fuzz_check;

/// The README's Rust snippets, compiled (and run, unless marked `no_run`) as doc tests, so the
/// guide cannot drift from the API. Those that need pubsub-aws sit behind
/// `#[cfg(feature = "aws")]` in hidden lines and compile under `--features aws`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct Readme;

/// One captured SQS `ReceiveMessage` entry from `fixtures/`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CapturedEntry {
    /// The file name it was read from, e.g. `order_created.sns.json`.
    #[serde(skip)]
    pub file: String,
    /// SQS message id.
    pub message_id: String,
    /// The SQS body: an SNS notification or the raw message.
    pub body: String,
    /// SQS attributes (`ApproximateReceiveCount`, ...).
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// The folder of the microcosm-pubsub 3.0.0 captures, copied from the design notes.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/microcosm-pubsub-3.0.0")
}

/// Every captured entry, sorted by file name.
pub fn captured_entries() -> Vec<CapturedEntry> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures folder is readable")
        .map(|entry| entry.expect("fixture entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("fixture is readable");
            let mut entry: CapturedEntry = serde_json::from_str(&text).expect("fixture is an SQS entry");
            entry.file = path.file_name().unwrap().to_string_lossy().into_owned();
            entry
        })
        .collect()
}

/// The captured entry named `file`.
pub fn captured(file: &str) -> CapturedEntry {
    captured_entries()
        .into_iter()
        .find(|entry| entry.file == file)
        .unwrap_or_else(|| panic!("no fixture named {file}"))
}
