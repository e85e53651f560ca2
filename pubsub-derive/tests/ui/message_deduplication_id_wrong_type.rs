use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    #[message_group_id]
    order_id: String,
    #[message_deduplication_id]
    lines: Vec<String>,
}

fn main() {}
