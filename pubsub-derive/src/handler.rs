//! `#[handler]`: signature checks with spans, and the link-time registration.
//!
//! On any mistake the function is emitted unchanged next to the errors, so the user sees the
//! mistake and nothing that follows from a missing function. Type mistakes the macro cannot
//! see (a first argument that is not a message type, a wrong return type) are left to trait
//! bounds spanned at the argument or return type, whose `on_unimplemented` text says what is
//! expected.

use proc_macro2::{Span, TokenStream};
use pubsub_media_type::MediaTypePattern;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, Pat, Type};

use crate::serde_names::skip_value;

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
    let mut errors: Vec<syn::Error> = Vec::new();
    let args = parse_args(args, &mut errors);
    let plan = check_signature(&function, &mut errors);
    match (
        errors.into_iter().reduce(|mut all, e| {
            all.combine(e);
            all
        }),
        plan,
    ) {
        (None, Some(plan)) => generate(&function, &args, &plan),
        (error, _) => {
            let error = error.map(|e| e.to_compile_error());
            quote!(#function #error)
        }
    }
}

fn parse_args(args: TokenStream, errors: &mut Vec<syn::Error>) -> Args {
    let mut parsed = Args { krate: syn::parse_quote!(::pubsub_core), media_type: None };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("media_type") {
            let lit: LitStr = meta.value()?.parse()?;
            match MediaTypePattern::parse(&lit.value()) {
                Ok(_) => parsed.media_type = Some(lit),
                Err(e) => errors.push(syn::Error::new(lit.span(), format!("invalid media type: {e}"))),
            }
        } else if meta.path.is_ident("crate") {
            let lit: LitStr = meta.value()?.parse()?;
            match lit.parse::<syn::Path>() {
                Ok(path) => parsed.krate = path,
                Err(_) => errors.push(syn::Error::new(
                    lit.span(),
                    "`crate` takes a path, e.g. `crate = \"my_crate::pubsub_core\"`",
                )),
            }
        } else {
            errors.push(syn::Error::new(
                meta.path.span(),
                "unknown #[handler] argument: expected `media_type = \"type/subtype\"` (for UntypedMessage handlers) or `crate = \"path::to::pubsub_core\"`",
            ));
            skip_value(&meta)?;
        }
        Ok(())
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, args) {
        errors.push(e);
    }
    parsed
}

enum Extra {
    Context,
    Collaborator(Box<Type>),
}

struct Plan {
    message: Type,
    extras: Vec<Extra>,
}

fn check_signature(function: &ItemFn, errors: &mut Vec<syn::Error>) -> Option<Plan> {
    let sig = &function.sig;
    let before = errors.len();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span(),
            "a #[handler] must be an `async fn`: add `async` before `fn`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "a #[handler] cannot be generic: the daemon calls it with one concrete message type; name the type",
        ));
    }
    let mut inputs = sig.inputs.iter();
    let message = match inputs.next() {
        None => {
            errors.push(syn::Error::new(
                sig.paren_token.span.join(),
                "a #[handler] takes the message as its first argument, e.g. `async fn on_order(order: OrderCreated)`",
            ));
            None
        }
        Some(FnArg::Receiver(receiver)) => {
            errors.push(syn::Error::new_spanned(
                receiver,
                "a #[handler] is a free function, not a method: it cannot take `self`; move it out of the `impl` block",
            ));
            None
        }
        Some(FnArg::Typed(arg)) => match &*arg.ty {
            Type::Reference(reference) => {
                errors.push(syn::Error::new_spanned(
                    reference,
                    "a #[handler] takes its message by value: drop the `&`",
                ));
                None
            }
            ty => Some(ty.clone()),
        },
    };
    let mut extras = Vec::new();
    let mut seen_context = false;
    // When the first argument is wrong, what follows it cannot be read right.
    let message = message?;
    for input in inputs {
        let FnArg::Typed(arg) = input else { continue };
        if !matches!(&*arg.pat, Pat::Ident(_) | Pat::Wild(_)) {
            errors.push(syn::Error::new_spanned(&arg.pat, "#[handler] arguments must be plain names"));
            continue;
        }
        match &*arg.ty {
            Type::Reference(reference) if reference.mutability.is_none() => {
                if is_context(&reference.elem) {
                    if seen_context {
                        errors.push(syn::Error::new_spanned(&arg.ty, "the `&MessageContext` is taken once"));
                    }
                    seen_context = true;
                    extras.push(Extra::Context);
                } else {
                    extras.push(Extra::Collaborator(reference.elem.clone()));
                }
            }
            other => errors.push(syn::Error::new_spanned(
                other,
                "after the message, a #[handler] takes `&MessageContext` and collaborators as shared references `&T`; write `&` before the type",
            )),
        }
    }
    (errors.len() == before).then_some(Plan { message, extras })
}

fn is_context(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path.path.segments.last().is_some_and(|s| s.ident == "MessageContext"),
        _ => false,
    }
}

fn generate(function: &ItemFn, args: &Args, plan: &Plan) -> TokenStream {
    let krate = &args.krate;
    let name = &function.sig.ident;
    let message = &plan.message;
    let decode = quote_spanned! {message.span()=>
        <#message as #krate::HandlerInput>::from_envelope(envelope)?
    };
    let mut lets = Vec::new();
    let mut call_args = vec![quote!(message)];
    let mut needs = Vec::new();
    for (index, extra) in plan.extras.iter().enumerate() {
        match extra {
            Extra::Context => call_args.push(quote!(&*context)),
            Extra::Collaborator(ty) => {
                let var = format_ident!("__collaborator_{}", index);
                lets.push(quote! { let #var = #krate::__private::collaborator::<#ty>(&context, NAME); });
                call_args.push(quote!(#var));
                needs.push(quote_spanned! {ty.span()=> #krate::Need::of::<#ty>() });
            }
        }
    }
    let output_span = match &function.sig.output {
        syn::ReturnType::Default => function.sig.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    };
    let into_result = quote_spanned! {output_span=>
        #krate::IntoHandlerResult::into_handler_result(__result)
    };
    let (media_type, media_type_check) = match &args.media_type {
        Some(lit) => (
            quote!(#lit),
            quote! {
                const _: () = ::core::assert!(
                    <#message as #krate::HandlerInput>::MEDIA_TYPE.is_empty(),
                    "#[handler(media_type = ...)] is for handlers taking UntypedMessage; a typed handler handles its message type's media type"
                );
            },
        ),
        None => (
            quote!(<#message as #krate::HandlerInput>::MEDIA_TYPE),
            quote! {
                const _: () = ::core::assert!(
                    !<#message as #krate::HandlerInput>::MEDIA_TYPE.is_empty(),
                    "a #[handler] taking UntypedMessage must name what it handles: #[handler(media_type = \"type/subtype\")] (a `prefix.*` pattern works too)"
                );
            },
        ),
    };
    quote! {
        #function

        #[doc(hidden)]
        const _: () = {
            const NAME: &str = ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name));
            #media_type_check

            fn __pubsub_call(
                envelope: &#krate::__private::Envelope<'_>,
                context: #krate::__private::Arc<#krate::MessageContext>,
            ) -> ::core::result::Result<#krate::HandlerFuture, #krate::DecodeError> {
                let message = #decode;
                ::core::result::Result::Ok(#krate::__private::Box::pin(async move {
                    #(#lets)*
                    let __result = #name(#(#call_args),*).await;
                    #into_result
                }))
            }

            #krate::__private::inventory::submit! {
                #krate::Handler::new(NAME, #media_type, &[#(#needs),*], __pubsub_call)
            }
        };
    }
}
