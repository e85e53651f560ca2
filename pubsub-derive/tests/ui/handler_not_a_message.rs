use pubsub_core::{handler, HandlerError};

struct NotAMessage {
    id: String,
}

#[handler]
async fn on_thing(thing: NotAMessage) -> Result<(), HandlerError> {
    let _ = thing.id;
    Ok(())
}

fn main() {}
