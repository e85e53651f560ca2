// tower's RateLimit is not Clone, and a publish layer's service is cloned for every message.
use std::time::Duration;

use pubsub_core::{MemoryBroker, Producer, TopicMap};

fn main() {
    let producer = Producer::new(MemoryBroker::new().publisher(), TopicMap::new());
    let _ = producer.layer(tower::limit::RateLimitLayer::new(10, Duration::from_secs(1)));
}
