use pubsub_core::{handler, HandlerError, PubSubMessage};

#[handler]
async fn on_any<M: PubSubMessage>(message: M) -> Result<(), HandlerError> {
    let _ = message;
    Ok(())
}

fn main() {}
