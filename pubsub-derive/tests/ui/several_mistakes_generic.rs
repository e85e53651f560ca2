use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PubSubMessage)]
#[media_type = "application/vnd acme"]
struct Order<'a> {
    #[serde(rename = "mediaType")]
    id: &'a str,
}

fn main() {}
