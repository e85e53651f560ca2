use pubsub_core::{handler, UntypedMessage};

#[handler]
async fn on_anything(message: UntypedMessage) {
    let _ = message;
}

fn main() {}
