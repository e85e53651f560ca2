use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};
use validator::Validate;

mod reexport {
    pub use pubsub_core;
}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Literal {
    id: u32,
}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(created = "Order")]
struct Created {
    id: u32,
}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(changed = "Order", organization = "acme")]
struct Changed {
    id: u32,
}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(deleted = "Order", organization = "acme", public)]
struct Deleted {
    id: u32,
}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.reexported"]
#[pubsub(crate = "reexport::pubsub_core")]
struct ThroughReexport {
    id: u32,
}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.renamed"]
#[serde(rename_all = "camelCase")]
struct Renamed {
    order_id: u32,
    #[serde(rename = "kind")]
    media_kind: String,
    #[serde(alias = "previousId")]
    prior_id: Option<u32>,
    #[serde(skip)]
    media_type: String,
    #[serde(skip)]
    opaque_data: Vec<u8>,
}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.ping"]
struct Ping {}

fn main() {
    assert_eq!(Literal::MEDIA_TYPE, "application/vnd.acme.pubsub.order");
    assert_eq!(Created::MEDIA_TYPE, "application/vnd.globality.pubsub._.created.order");
    assert_eq!(Changed::MEDIA_TYPE, "application/vnd.acme.pubsub._.changed.order");
    assert_eq!(Deleted::MEDIA_TYPE, "application/vnd.acme.pubsub.deleted.order");
    assert_eq!(ThroughReexport::MEDIA_TYPE, "application/vnd.acme.pubsub.reexported");
    assert_eq!(Renamed::wire_name("order_id"), "orderId");
    assert_eq!(Renamed::wire_name("media_kind"), "kind");
    assert_eq!(Renamed::wire_name("prior_id"), "priorId");
    assert_eq!(Renamed::wire_name("media_type"), "media_type");
    assert_eq!(Ping::MEDIA_TYPE, "application/vnd.acme.pubsub.ping");
    assert!(Ping::FIELD_WIRE_NAMES.is_empty());
}
