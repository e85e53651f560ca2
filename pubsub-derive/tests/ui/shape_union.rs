use pubsub_core::PubSubMessage;

#[derive(PubSubMessage)]
#[media_type = "application/vnd.acme.order"]
union Order {
    id: u32,
    code: f32,
}

fn main() {}
