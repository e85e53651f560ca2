use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Reading {
    #[message_group_id]
    temperature: f64,
}

fn main() {}
