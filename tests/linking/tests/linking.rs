//! Handlers cannot be lost: a binary that never names the crate holding its handlers refuses to
//! start, saying how handlers are collected and what to write; naming the crate, or registering
//! its handlers by type, runs them.

use std::process::Command;

fn run(binary: &str) -> (Option<i32>, String, String) {
    let output = Command::new(binary).output().expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_binary_that_never_names_its_handlers_crate_refuses_to_start() {
    let (code, stdout, stderr) = run(env!("CARGO_BIN_EXE_unlinked"));
    assert_eq!(code, Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains("the daemon `shop` has no handlers"), "{stderr}");
    for advice in
        ["collected at link time", "use my_handlers as _;", "DaemonBuilder::handler::<", "allow_no_handlers"]
    {
        assert!(stderr.contains(advice), "missing {advice:?} in: {stderr}");
    }
    assert!(!stdout.contains("took order"), "{stdout}");
}

#[test]
fn naming_the_crate_links_its_handlers() {
    let (code, stdout, stderr) = run(env!("CARGO_BIN_EXE_linked"));
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("took order o-1"), "{stdout}");
    assert!(stdout.contains("succeeded=1 ignored=0"), "{stdout}");
}

#[test]
fn registering_a_handler_by_type_runs_it() {
    let (code, stdout, stderr) = run(env!("CARGO_BIN_EXE_explicit"));
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("took order o-1"), "{stdout}");
}
