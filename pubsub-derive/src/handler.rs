//! `#[handler]`: signature checks with spans, and the link-time registration.
//!
//! On any mistake the function is emitted unchanged next to the errors, so the user sees the
//! mistake and nothing that follows from a missing function. Type mistakes the macro cannot
//! see (a first argument that is not a message type, a wrong return type) are left to trait
//! bounds spanned at the argument or return type, whose `on_unimplemented` text says what is
//! expected.

use proc_macro2::{Span, TokenStream};
use pubsub_media_type::MediaTypePattern;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitStr, Pat, Type};

use crate::ctxt::{path_text, skip_value, string_value, Errors};

struct Args {
    krate: syn::Path,
    media_type: Option<LitStr>,
}

pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error =
                syn::Error::new(Span::call_site(), "#[handler] goes on an `async fn`").to_compile_error();
            return quote!(#item #error);
        }
    };
    let mut errors = Errors::default();
    let args = parse_args(args, &mut errors);
    let plan = check_signature(&function, &mut errors);
    match plan {
        Some(plan) if errors.is_empty() => generate(&function, &args, &plan),
        _ => {
            let errors = errors.into_compile_errors();
            quote!(#function #errors)
        }
    }
}

/// `media_type = "..."` and `crate = "..."`; every mistake is recorded and parsing goes on.
fn parse_args(args: TokenStream, errors: &mut Errors) -> Args {
    let mut parsed = Args { krate: syn::parse_quote!(::pubsub_core), media_type: None };
    let mut seen = Vec::new();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("media_type") {
            let fresh = errors.once(&mut seen, &meta.path);
            let Some(lit) = string_value(&meta, "type/subtype", errors)? else { return Ok(()) };
            match MediaTypePattern::parse(&lit.value()) {
                Ok(_) if fresh => parsed.media_type = Some(lit),
                Ok(_) => {}
                Err(e) => errors.push(lit.span(), format!("invalid media type: {e}")),
            }
        } else if meta.path.is_ident("crate") {
            let fresh = errors.once(&mut seen, &meta.path);
            let Some(lit) = string_value(&meta, "my_crate::pubsub_core", errors)? else { return Ok(()) };
            match lit.parse::<syn::Path>() {
                Ok(path) if fresh => parsed.krate = path,
                Ok(_) => {}
                Err(_) => {
                    errors.push(lit.span(), "`crate` takes a path, e.g. `crate = \"my_crate::pubsub_core\"`")
                }
            }
        } else {
            errors.push(
                meta.path.span(),
                format!(
                    "unknown #[handler] argument `{}`: expected `media_type = \"type/subtype\"` (for UntypedMessage handlers) or `crate = \"path::to::pubsub_core\"`",
                    path_text(&meta.path)
                ),
            );
            skip_value(&meta)?;
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        errors.add(e);
    }
    parsed
}

struct Plan {
    message: Type,
    /// The types `T` of the `&T` arguments after the message: the context or collaborators,
    /// told apart by type in the generated code.
    extras: Vec<Type>,
}

fn check_signature(function: &ItemFn, errors: &mut Errors) -> Option<Plan> {
    let sig = &function.sig;
    let before = errors.len();
    if sig.asyncness.is_none() {
        errors.push(sig.fn_token.span(), "a #[handler] must be an `async fn`: add `async` before `fn`");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push_spanned(
            &sig.generics,
            "a #[handler] cannot be generic: the daemon calls it with one concrete message type; name the type",
        );
    }
    let mut inputs = sig.inputs.iter();
    let message = match inputs.next() {
        None => {
            errors.push(
                sig.paren_token.span.join(),
                "a #[handler] takes the message as its first argument, e.g. `async fn on_order(order: OrderCreated)`",
            );
            None
        }
        Some(FnArg::Receiver(receiver)) => {
            errors.push_spanned(
                receiver,
                "a #[handler] is a free function, not a method: it cannot take `self`; move it out of the `impl` block",
            );
            None
        }
        Some(FnArg::Typed(arg)) => match &*arg.ty {
            Type::Reference(reference) => {
                // `(context: &MessageContext, order: Order)`: the message is there, but not first.
                let by_value = sig.inputs.iter().skip(1).find_map(|input| match input {
                    FnArg::Typed(later) if !matches!(&*later.ty, Type::Reference(_)) => Some(later),
                    _ => None,
                });
                match by_value {
                    Some(later) => errors.push_spanned(
                        later,
                        format!(
                            "a #[handler] takes the message first: move `{}` to the front, before the `&` arguments",
                            quote!(#later).to_string().replace(" :", ":")
                        ),
                    ),
                    None => errors.push_spanned(reference, "a #[handler] takes its message by value: drop the `&`"),
                }
                None
            }
            ty => Some(ty.clone()),
        },
    };
    let mut extras = Vec::new();
    for input in inputs {
        let FnArg::Typed(arg) = input else { continue };
        if !matches!(&*arg.pat, Pat::Ident(_) | Pat::Wild(_)) {
            errors.push_spanned(&arg.pat, "#[handler] arguments must be plain names");
            continue;
        }
        match &*arg.ty {
            Type::Reference(reference) if reference.mutability.is_none() => {
                extras.push((*reference.elem).clone())
            }
            other => {
                // A by-value argument after a `&` first argument was reported above.
                if message.is_some() {
                    errors.push_spanned(
                        other,
                        "after the message, a #[handler] takes `&MessageContext` and collaborators as shared references `&T`; write `&` before the type",
                    )
                }
            }
        }
    }
    let message = message?;
    (errors.len() == before).then_some(Plan { message, extras })
}

fn generate(function: &ItemFn, args: &Args, plan: &Plan) -> TokenStream {
    let krate = &args.krate;
    let name = &function.sig.ident;
    let vis = &function.vis;
    let message = &plan.message;
    // Names of our own, invisible to the user's code (a handler or argument called
    // `message`, `context` or `envelope` must not be shadowed or shadow ours).
    let hygienic = |text: &str| Ident::new(text, Span::mixed_site());
    let output_span = match &function.sig.output {
        syn::ReturnType::Default => function.sig.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    };
    let (envelope, context, decoded, result, full_name) = (
        hygienic("envelope"),
        hygienic("context"),
        hygienic("message"),
        hygienic("result"),
        hygienic("NAME"),
    );
    let decode = quote_spanned! {message.span()=>
        <#message as #krate::Message>::from_envelope(#envelope)?
    };
    let mut lets = Vec::new();
    let mut call_args = vec![quote!(#decoded)];
    let mut needs = Vec::new();
    for (index, ty) in plan.extras.iter().enumerate() {
        let var = Ident::new(&format!("argument_{index}"), Span::mixed_site());
        // The context is told by its type, so a renamed import or an alias of it is the context
        // too: `__IS_MESSAGE_CONTEXT` is an inherent const of `MessageContext` and a trait const
        // (false) of every other type.
        lets.push(quote_spanned! {ty.span()=>
            let #var: &#ty = if <#ty>::__IS_MESSAGE_CONTEXT {
                #krate::__private::context_as::<#ty>(&#context)
            } else {
                #krate::__private::collaborator::<#ty>(&#context, #full_name)
            };
        });
        call_args.push(quote!(#var));
        needs.push(quote_spanned! {ty.span()=>
            #krate::__private::Need::argument::<#ty>(<#ty>::__IS_MESSAGE_CONTEXT)
        });
    }

    // Named by its declared type, so that a wrong one is reported at the return type.
    let output_type = match &function.sig.output {
        syn::ReturnType::Default => quote_spanned!(output_span=> ()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let into_result = quote_spanned! {output_span=>
        #krate::__private::handler_result::<#output_type>(#result)
    };
    let (media_type, media_type_check) = match &args.media_type {
        Some(lit) => (
            quote!(#lit),
            quote! {
                const _: () = ::core::assert!(
                    <#message as #krate::Message>::TYPE_MEDIA_TYPE.is_empty(),
                    "#[handler(media_type = ...)] is for handlers taking UntypedMessage; a typed handler handles its message type's media type"
                );
            },
        ),
        None => (
            quote!(<#message as #krate::Message>::TYPE_MEDIA_TYPE),
            quote! {
                const _: () = ::core::assert!(
                    !<#message as #krate::Message>::TYPE_MEDIA_TYPE.is_empty(),
                    "a #[handler] taking UntypedMessage must name what it handles: #[handler(media_type = \"type/subtype\")] (a `prefix.*` pattern works too)"
                );
            },
        ),
    };
    quote! {
        #function

        /// Names the handler as a type, for explicit registration:
        /// `DaemonBuilder::handler::<this_function>()`.
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #name {}

        #[doc(hidden)]
        const _: () = {
            #[allow(unused_imports)]
            use #krate::__private::NotMessageContext as _;
            const #full_name: &str = ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name));
            #media_type_check

            fn decode(
                #envelope: &#krate::__private::Envelope<'_>,
            ) -> ::core::result::Result<#krate::__private::DecodedMessage, #krate::codec::DecodeError> {
                let #decoded: #message = #decode;
                ::core::result::Result::Ok(#krate::__private::Box::new(#decoded))
            }

            fn call(
                #decoded: #krate::__private::DecodedMessage,
                #context: #krate::__private::Arc<#krate::MessageContext>,
            ) -> #krate::__private::HandlerFuture {
                let #decoded = #krate::__private::decoded::<#message>(#decoded, #full_name);
                #krate::__private::Box::pin(async move {
                    #(#lets)*
                    let #result = #name(#(#call_args),*).await;
                    #into_result
                })
            }

            impl #krate::handlers::HandlerFn for #name {
                const HANDLER: #krate::handlers::Handler =
                    #krate::__private::new_handler(#full_name, #media_type, &[#(#needs),*], decode, call);
            }

            #krate::__private::inventory::submit! {
                <#name as #krate::handlers::HandlerFn>::HANDLER
            }
        };
    }
}
