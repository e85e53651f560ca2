// tower's RateLimit is not Clone, and a layer's service is cloned for every message.
use std::time::Duration;

use pubsub_core::DaemonBuilder;

fn main() {
    let _ = DaemonBuilder::new("payments").layer(tower::limit::RateLimitLayer::new(10, Duration::from_secs(1)));
}
