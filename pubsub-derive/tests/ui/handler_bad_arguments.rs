use pubsub_core::{handler, UntypedMessage};

#[handler(media_type = 5, retries = 3, crate = "not a path", media_type = "a/b")]
async fn on_anything(message: UntypedMessage) {
    let _ = message;
}

fn main() {}
