//! The pipeline bench's workload, shared with `examples/cost_per_message.rs`, which counts the
//! instructions of the same pipeline stage by stage: one order type, a handler that does
//! nothing, and a round of orders.

use pubsub_core::{handler, PubSubMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

/// The messages of one round (one iteration of the bench).
pub const MESSAGES: usize = 2_000;

/// The order every message is.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(created = "Order")]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    #[validate(length(min = 1))]
    pub order_id: String,
    #[validate(range(min = 0))]
    pub amount: i64,
    pub note: Option<String>,
}

/// Handles an order by doing nothing: what is measured is around it.
#[handler]
pub async fn no_op(_order: OrderCreated) {}

/// One round of orders.
pub fn orders() -> Vec<OrderCreated> {
    (0..MESSAGES)
        .map(|i| OrderCreated {
            order_id: format!("o-{i}"),
            amount: i as i64,
            note: Some("deliver after 5pm".into()),
        })
        .collect()
}
