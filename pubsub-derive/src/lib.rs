//! Procedural macros of the pubsub toolkit. Use them through `pubsub_core`, which re-exports
//! them; the generated code names `::pubsub_core` (override with `#[pubsub(crate = "...")]`).

mod ctxt;
mod handler;
mod message;
mod schema;
mod serde_names;

use proc_macro::TokenStream;

/// Derives `pubsub_core::PubSubMessage`: the media type, the wire names of the fields (for
/// validation errors), the FIFO message group and deduplication id (from the fields marked
/// `#[message_group_id]` and `#[message_deduplication_id]`), and the registration of the type
/// in the runtime registry; with pubsub-core's feature `schema`, the JSON Schema of the body, from
/// the serde and validator attributes (and `#[schemars(...)]` ones, which schemars reads).
///
/// See the `pubsub_core::PubSubMessage` documentation for the attributes.
#[proc_macro_derive(
    PubSubMessage,
    attributes(media_type, pubsub, message_group_id, message_deduplication_id, schemars)
)]
pub fn derive_pubsub_message(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    message::expand(&input).into()
}

/// Marks an `async fn` as a message handler and registers it at link time; see
/// `pubsub_core::handler`.
#[proc_macro_attribute]
pub fn handler(args: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand(args.into(), item.into()).into()
}
