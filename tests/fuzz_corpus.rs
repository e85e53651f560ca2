//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) and the kept crash inputs
//! (`fuzz/regressions/<target>/`) through the fuzz targets' own checks, so a plain
//! `cargo test` keeps them as a regression suite: no panic, and every round trip holds.

use std::path::{Path, PathBuf};

use pubsub_suite::captured_entries;
use pubsub_suite::fuzz_check::{decode_any, decode_wrapped, Reached, TypedCheck};

/// The fuzz targets' message types, compiled into this test exactly as into the targets.
#[path = "../fuzz/src/lib.rs"]
mod pubsub_fuzz;

type Target = fn(&[u8], &[TypedCheck]) -> Reached;

const TARGETS: [(&str, Target); 2] = [("decode", decode_any), ("decode_sns", decode_wrapped)];

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted. A missing folder fails the test: a replay of nothing passes
/// whatever the code does.
fn files(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}; it should hold inputs", dir.display()));
    let mut files: Vec<PathBuf> =
        entries.map(|entry| entry.expect("corpus entry").path()).filter(|path| path.is_file()).collect();
    files.sort();
    files
}

/// Runs every file of `fuzz/<folder>/<target>/` through its target; returns the total reach.
fn replay(folder: &str, target: &str, run: Target) -> (usize, Reached) {
    let files = files(&fuzz_dir().join(folder).join(target));
    let mut total = Reached::default();
    for file in &files {
        let data = std::fs::read(file).expect("corpus file is readable");
        // A panic names the file, so the failing input is one `cargo fuzz run <target> <file>` away.
        let reached = std::panic::catch_unwind(|| run(&data, pubsub_fuzz::TYPED))
            .unwrap_or_else(|_| panic!("{} fails the {target} checks", file.display()));
        total.typed += reached.typed;
        total.untyped |= reached.untyped;
        total.registry |= reached.registry;
    }
    (files.len(), total)
}

#[test]
fn the_corpus_replays_and_reaches_every_decode_path() {
    for (target, run) in TARGETS {
        let (count, reached) = replay("corpus", target, run);
        assert!(count > 0, "fuzz/corpus/{target} is empty");
        assert!(reached.typed > 0 && reached.untyped && reached.registry, "{target}: {reached:?}");
    }
}

#[test]
fn regression_inputs_replay() {
    for (target, run) in TARGETS {
        let (count, reached) = replay("regressions", target, run);
        assert!(count > 0, "fuzz/regressions/{target} holds no input");
        // They still reach the typed decode and round trip they once broke.
        assert!(reached.typed > 0, "{target}: {reached:?}");
    }
    // A folder no target replays would be skipped without a word.
    for entry in std::fs::read_dir(fuzz_dir().join("regressions")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            assert!(
                TARGETS.iter().any(|(target, _)| *target == name),
                "fuzz/regressions/{name}: no such target"
            );
        }
    }
}

#[test]
fn a_missing_folder_fails_the_replay() {
    let error = std::panic::catch_unwind(|| replay("regressions", "no_such_target", decode_any)).unwrap_err();
    let message = error.downcast_ref::<String>().unwrap();
    assert!(message.contains("no_such_target") && message.contains("should hold inputs"), "{message}");
}

#[test]
fn every_captured_body_decodes_all_the_way() {
    // The corpus is minimised, so it may have dropped a fixture; the captures are checked here.
    for entry in captured_entries() {
        let reached = decode_any(entry.body.as_bytes(), pubsub_fuzz::TYPED);
        let typed = usize::from(entry.file.starts_with("order_created"));
        assert_eq!(reached.typed, typed, "{}", entry.file);
        assert!(reached.registry, "{}", entry.file);
    }
}
