//! The quickstart: `cargo run --example quickstart`.
//!
//! On the embedded broker (no AWS, no network): declares the seed README's schema and an
//! order type, publishes a mix of messages (one invalid, one of an unknown media type), runs
//! the consumer daemon until the queue is drained, and prints what happened per media type.

use std::time::Duration;

use pubsub_core::memory::{QueueOptions, Redrive, SubscriptionOptions};
use pubsub_core::{
    handler, DaemonBuilder, HandlerError, MemoryBroker, MessageContext, Producer, PubSubMessage, TopicMap,
    UntypedMessage, Verdict,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use validator::Validate;

/// The seed README's schema.
#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.globality.pubsub.simple"]
struct SimpleMessage {
    message: String,
    timestamp: f64,
}

/// An order, by the lifecycle convention: `application/vnd.globality.pubsub._.created.order`.
#[derive(Debug, Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type(created = "Order")]
#[serde(rename_all = "camelCase")]
struct OrderCreated {
    #[validate(length(min = 1))]
    order_id: String,
    #[validate(range(min = 0))]
    amount: i64,
}

#[handler]
async fn print_simple(message: SimpleMessage, context: &MessageContext) -> Result<(), HandlerError> {
    println!("  handled {:?} (message id {})", message.message, context.message_id());
    Ok(())
}

#[handler]
async fn take_order(order: OrderCreated) -> Result<(), HandlerError> {
    if order.amount == 0 {
        return Err(HandlerError::skip("nothing to charge"));
    }
    println!("  charged {} for order {}", order.amount, order.order_id);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    pubsub_core::logging::init();

    let broker = MemoryBroker::new();
    let topic = broker.create_topic("quickstart");
    broker.create_queue("quickstart-dlq", QueueOptions::default());
    broker.create_queue(
        "quickstart",
        QueueOptions { redrive: Some(Redrive::new("quickstart-dlq", 3)), ..QueueOptions::default() },
    );
    broker.subscribe(&topic, "quickstart", SubscriptionOptions::default())?;
    let producer = Producer::new(broker.publisher(), TopicMap::new().default_topic(&topic));

    println!("publishing:");
    for (i, text) in ["hello", "world"].into_iter().enumerate() {
        let id = producer.produce(&SimpleMessage { message: text.into(), timestamp: 1.5 + i as f64 }).await?;
        println!("  simple {text:?} -> message id {id}");
    }
    for (order_id, amount) in [("o-1", 42), ("o-2", 0)] {
        let id = producer.produce(&OrderCreated { order_id: order_id.into(), amount }).await?;
        println!("  order {order_id} -> message id {id}");
    }
    // The producer refuses an invalid message before anything is sent...
    let refused = producer.produce(&OrderCreated { order_id: String::new(), amount: -5 }).await.unwrap_err();
    println!("  refused: {refused}");
    // ...so a broken producer elsewhere is simulated by sending its body straight to the queue.
    broker
        .send("quickstart", r#"{"mediaType": "application/vnd.globality.pubsub._.created.order", "orderId": "", "amount": -5}"#)
        .await?;
    let id = producer
        .produce(&UntypedMessage::new("application/vnd.globality.pubsub.unknown", json!({"x": 1}))?)
        .await?;
    println!("  unknown media type -> message id {id}");

    println!("\nhandling:");
    let daemon = DaemonBuilder::new("quickstart")
        .wait_time(Duration::from_millis(100))
        .build(broker.subscriber("quickstart")?)?;
    let report = daemon.run_until_idle().await;

    println!("\nresults:\n{report}");
    let failed = report.count(Verdict::Failed);
    println!("{} messages handled; {failed} failed and wait in the queue for a retry (then the dead-letter queue).", report.total());
    Ok(())
}
