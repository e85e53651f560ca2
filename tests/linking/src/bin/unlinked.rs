//! Depends on the handlers library but never names it, so its `#[handler]`s are not linked.

mod common;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    common::run(pubsub_core::DaemonBuilder::new("shop")).await
}
