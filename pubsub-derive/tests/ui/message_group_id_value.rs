use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    #[message_group_id = "orders"]
    id: String,
    #[message_deduplication_id(id)]
    event_id: String,
}

fn main() {}
