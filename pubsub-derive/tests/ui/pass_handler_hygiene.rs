//! Handlers and arguments named like the generated code's own variables, the context under
//! another name, and explicit registration by type.

use pubsub_core::handlers::HandlerFn;
use pubsub_core::MessageContext as Ctx;
use pubsub_core::{handler, DaemonBuilder, HandlerError, MessageContext, PubSubMessage, UntypedMessage};
use serde::{Deserialize, Serialize};
use validator::Validate;

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.order"]
struct Order {
    id: String,
}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.refund"]
struct Refund {
    id: String,
}

#[derive(Serialize, Deserialize, Validate, PubSubMessage)]
#[media_type = "application/vnd.acme.pubsub.note"]
struct Note {
    id: String,
}

struct Db;

type Context = MessageContext;

#[handler]
async fn message(message: Order, context: &MessageContext, envelope: &Db) -> Result<(), HandlerError> {
    let _ = (message.id, context.message_id(), envelope);
    Ok(())
}

#[handler]
async fn context(handler: Refund, message: &Ctx) -> Result<(), HandlerError> {
    let _ = (handler.id, message.receive_count());
    Ok(())
}

#[handler]
async fn envelope(context: Note, handler: &Context) {
    let _ = (context.id, handler.media_type());
}

#[handler(media_type = "application/vnd.acme.pubsub.misc.*")]
async fn handler(envelope: UntypedMessage, message: &Db, context: &pubsub_core::MessageContext) {
    let _ = (envelope.content, message, context.request_id());
}

fn main() {
    let builder = DaemonBuilder::new("hygiene")
        .collaborator(Db)
        .handler::<message>()
        .handler::<context>()
        .handler::<envelope>()
        .handler::<handler>();
    let _ = builder;
    assert_eq!(<handler as HandlerFn>::HANDLER.collaborators().count(), 1);
    assert_eq!(<context as HandlerFn>::HANDLER.collaborators().count(), 0);
}
