//! The seed README's producing section, in Rust: typed content, untyped (dict) content, and
//! the returned message id. Runs on the embedded broker: `cargo run --example produce`.

use std::time::{SystemTime, UNIX_EPOCH};

use pubsub_core::memory::SubscriptionOptions;
use pubsub_core::{Consumer, MemoryBroker, OpaqueData, Producer, PubSubMessage, TopicMap, UntypedMessage};
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = MemoryBroker::new();
    let topic = broker.create_topic("simple");
    broker.create_queue("simple", Default::default());
    broker.subscribe(&topic, "simple", SubscriptionOptions::default())?;
    let producer = Producer::new(
        broker.publisher(),
        TopicMap::new().route(SimpleMessage::MEDIA_TYPE, &topic)?.default_topic(&topic),
    );
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();

    // "Keyword-style" content: the typed message, validated before it is sent.
    let id = producer.produce(&SimpleMessage { message: "hello".into(), timestamp: now }).await?;
    println!("typed:   message id {id}");

    // "Dict" content: a media type and a JSON object.
    let id = producer
        .produce(&UntypedMessage::new(
            SimpleMessage::MEDIA_TYPE,
            json!({"message": "hello again", "timestamp": now}),
        )?)
        .await?;
    println!("untyped: message id {id}");

    // With opaque data: a request id that consumers carry on.
    let opaque = OpaqueData::new().with_request_id("req-42");
    let id =
        producer.produce_with(&SimpleMessage { message: "traced".into(), timestamp: now }, &opaque).await?;
    println!("traced:  message id {id}");

    // What arrived in the queue.
    let consumer = Consumer::new(broker.subscriber("simple")?);
    for delivery in consumer.consume().await? {
        let decoded = delivery.decode::<SimpleMessage>()?;
        println!(
            "received {:?} (request id {:?})",
            decoded.message.message,
            decoded.opaque_data.request_id()
        );
        delivery.ack().await?;
    }
    Ok(())
}
