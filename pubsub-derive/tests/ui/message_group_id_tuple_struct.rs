use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order(#[message_group_id] String);

fn main() {}
