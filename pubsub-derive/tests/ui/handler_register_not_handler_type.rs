use pubsub_core::DaemonBuilder;

struct Db;

fn main() {
    let _ = DaemonBuilder::new("daemon").handler::<Db>();
}
