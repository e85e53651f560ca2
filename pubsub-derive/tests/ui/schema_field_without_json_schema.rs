// With pubsub-core's `schema`, every field's type needs a JSON Schema: a nested type that does
// not derive schemars' JsonSchema is reported at the field, with what to do.
use pubsub_core::PubSubMessage;
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate)]
struct Address {
    city: String,
}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    id: String,
    #[validate(nested)]
    ship_to: Address,
    // Skipped, or described by hand: no schema needed from the type.
    #[serde(skip)]
    cache: Option<Address>,
}

fn main() {}
