use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(created = "Order", organization = "acme", organization = "other")]
struct Order {
    id: String,
}

fn main() {}
