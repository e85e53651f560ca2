use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd acme"]
#[serde(rename_all = "camelCase")]
struct Order {
    id: u32,
    opaque_data: String,
}

fn main() {}
