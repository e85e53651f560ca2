use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PubSubMessage)]
#[media_type = "application/vnd.acme.order"]
struct Order;

fn main() {}
