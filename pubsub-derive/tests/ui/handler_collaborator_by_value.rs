use pubsub_core::{handler, HandlerError, PubSubMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    id: String,
}

struct Db;

#[handler]
async fn on_order(order: Order, db: Db) -> Result<(), HandlerError> {
    let _ = (order, db);
    Ok(())
}

fn main() {}
