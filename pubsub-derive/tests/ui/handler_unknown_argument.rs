use pubsub_core::{handler, PubSubMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    id: String,
}

#[handler(queue = "orders")]
async fn on_order(order: Order) {
    let _ = order;
}

fn main() {}
