use pubsub_core::{handler, HandlerError, MessageContext, PubSubMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    id: String,
}

#[handler]
async fn on_order(context: &MessageContext, order: Order) -> Result<(), HandlerError> {
    let _ = (context, order);
    Ok(())
}

fn main() {}
