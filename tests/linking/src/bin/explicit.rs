//! Registers the library's handler by type.

mod common;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    common::run(pubsub_core::DaemonBuilder::new("shop").handler::<pubsub_fixture_handlers::take_order>())
        .await
}
