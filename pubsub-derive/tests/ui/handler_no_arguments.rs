use pubsub_core::{handler, HandlerError};

#[handler]
async fn on_nothing() -> Result<(), HandlerError> {
    Ok(())
}

fn main() {}
