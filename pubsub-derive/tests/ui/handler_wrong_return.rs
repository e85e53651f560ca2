use pubsub_core::{handler, PubSubMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    id: String,
}

#[handler]
async fn on_order(order: Order) -> Option<String> {
    Some(order.id)
}

fn main() {}
