//! Builds one of the root package's examples, as a test that runs it needs, and names its
//! executable. Included by the tests of pubsub-aws and pubsub-lambda that run the built
//! `simple_daemon` and `simple_lambda` (`#[path]`), so that both build alike.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `cargo build -p pubsub-suite --example NAME --features FEATURES` from the workspace root
/// (`workspace`), and the executable it made.
///
/// # Panics
///
/// When the build fails or names no executable.
pub fn build_example(workspace: &Path, name: &str, features: &str) -> PathBuf {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // What cargo set for this test (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, ...) would look like a
    // change to the build scripts that watch those variables (ring's), and rebuild the AWS SDK
    // here and again in the next `cargo test`: build as from a shell.
    for (variable, _) in
        std::env::vars().filter(|(variable, _)| variable.starts_with("CARGO_") && variable != "CARGO_HOME")
    {
        cargo.env_remove(variable);
    }
    let output = cargo
        .current_dir(workspace)
        .args(["build", "--locked", "--message-format=json", "-p", "pubsub-suite", "--example", name])
        .args(["--features", features])
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "building the {name} example failed");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == name)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo names no executable for the {name} example"))
}
