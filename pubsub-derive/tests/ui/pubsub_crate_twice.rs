use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
#[pubsub(crate = "::pubsub_core", crate = "::pubsub_core")]
struct Order {
    id: String,
}

fn main() {}
