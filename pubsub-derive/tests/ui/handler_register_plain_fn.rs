use pubsub_core::DaemonBuilder;

async fn not_a_handler() {}

fn main() {
    let _ = not_a_handler;
    let _ = DaemonBuilder::new("daemon").handler::<not_a_handler>();
}
