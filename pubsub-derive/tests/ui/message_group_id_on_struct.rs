use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
#[message_group_id]
struct Order {
    order_id: String,
}

fn main() {}
