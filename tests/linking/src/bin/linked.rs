//! Names the handlers library so that its `#[handler]`s are linked and collected.

use pubsub_fixture_handlers as _;

mod common;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    common::run(pubsub_core::DaemonBuilder::new("shop")).await
}
