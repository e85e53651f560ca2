//! A handlers library, as a service keeps its handlers in a crate of their own. The binaries
//! beside it read one order from the embedded broker: `unlinked` never names this crate,
//! `linked` names it with `use pubsub_fixture_handlers as _;`, `explicit` registers its handler
//! by type.

use pubsub_core::{handler, HandlerError, PubSubMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

/// An order.
#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order_placed"]
pub struct OrderPlaced {
    /// The order's id.
    pub id: String,
}

/// Takes an order.
#[handler]
pub async fn take_order(order: OrderPlaced) -> Result<(), HandlerError> {
    println!("took order {}", order.id);
    Ok(())
}
