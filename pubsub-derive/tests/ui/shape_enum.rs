use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PubSubMessage)]
#[media_type = "application/vnd.acme.order"]
enum Order {
    Created { id: u32 },
    Deleted { id: u32 },
}

fn main() {}
