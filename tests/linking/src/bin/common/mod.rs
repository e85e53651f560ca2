//! What the binaries share: run a daemon over one order on the embedded broker.

use std::process::ExitCode;
use std::time::Duration;

use pubsub_core::{DaemonBuilder, MemoryBroker, Verdict};

/// The order every binary reads (a copy of the library's, so `unlinked` need not name it).
const ORDER_BODY: &str =
    r#"{"mediaType": "application/vnd.acme.pubsub.order_placed", "opaqueData": {}, "id": "o-1"}"#;

/// Builds the daemon, runs it until the queue is drained, and prints the outcome: exit 2 when
/// the daemon does not build, 0 when the order SUCCEEDED, 1 otherwise.
pub async fn run(builder: DaemonBuilder) -> ExitCode {
    let broker = MemoryBroker::new();
    broker.create_queue("orders", Default::default());
    broker.send("orders", ORDER_BODY).await.expect("the queue takes the order");
    let daemon =
        match builder.wait_time(Duration::from_millis(50)).build(broker.subscriber("orders").unwrap()) {
            Ok(daemon) => daemon,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        };
    let report = daemon.run_until_idle().await;
    println!("succeeded={} ignored={}", report.count(Verdict::Succeeded), report.count(Verdict::Ignored));
    if report.count(Verdict::Succeeded) == 1 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
