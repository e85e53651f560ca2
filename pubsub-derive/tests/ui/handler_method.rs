use pubsub_core::{handler, HandlerError, PubSubMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    id: String,
}

struct Service;

impl Service {
    #[handler]
    async fn on_order(&self, order: Order) -> Result<(), HandlerError> {
        let _ = order;
        Ok(())
    }
}

fn main() {}
