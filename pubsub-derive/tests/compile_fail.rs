//! trybuild suite of `#[derive(PubSubMessage)]`: every `tests/ui/*.rs` must fail to compile
//! with exactly the errors in its `.stderr`, except `tests/ui/pass_*.rs`, which must compile.
//!
//! Regenerate the expected output with
//! `TRYBUILD=overwrite cargo test -p pubsub-derive --test compile_fail`, then read every diff.

use std::path::PathBuf;

#[test]
fn compile_fail() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir("tests/ui")
        .expect("tests/ui exists")
        .map(|entry| entry.expect("readable tests/ui entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in tests/ui");

    let t = trybuild::TestCases::new();
    for case in &cases {
        let is_pass =
            case.file_name().and_then(|name| name.to_str()).is_some_and(|name| name.starts_with("pass_"));
        if is_pass {
            t.pass(case);
        } else {
            t.compile_fail(case);
        }
    }
}
