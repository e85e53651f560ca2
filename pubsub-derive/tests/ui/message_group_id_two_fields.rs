use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    #[message_group_id]
    customer_id: String,
    #[message_group_id]
    order_id: String,
    #[message_deduplication_id]
    #[message_deduplication_id]
    event_id: String,
}

fn main() {}
