//! The JSON Schema method of `#[derive(PubSubMessage)]`: a private copy of the struct, with the
//! attributes schemars reads (`serde`, `validate`, `schemars`, doc comments), derives
//! `schemars::JsonSchema`, and the message's schema is that copy's. schemars then reads the
//! serde names and the validator rules exactly as serde and validator do, and the user writes
//! no second derive.
//!
//! The method sits inside `__private::json_schema_method!`, which drops it when pubsub-core is
//! built without its `schema` feature: a proc macro cannot see the features of the crate its
//! output names.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, Data, DeriveInput, Fields};

use crate::ctxt::skip_value;

/// The attributes schemars reads, on the struct and on its fields.
const SCHEMA_ATTRIBUTES: [&str; 4] = ["serde", "validate", "schemars", "doc"];

/// The copy's name: never seen by users, and not the message's, which the schema's title gives.
const COPY: &str = "__PubSubMessageSchema";

/// The `__json_schema` method of `input`'s `PubSubMessage` impl (a struct with named fields,
/// checked by the caller), wrapped for the feature switch.
pub fn json_schema_method(input: &DeriveInput, krate: &syn::Path) -> TokenStream {
    let Data::Struct(syn::DataStruct { fields: Fields::Named(fields), .. }) = &input.data else {
        return TokenStream::new();
    };
    let copy = syn::Ident::new(COPY, proc_macro2::Span::call_site());
    let container_attributes = input.attrs.iter().filter(|attr| is_schema_attribute(attr));
    let field_definitions = fields.named.iter().map(|field| {
        let attributes = field.attrs.iter().filter(|attr| is_schema_attribute(attr));
        let ident = &field.ident;
        // validator's `required` refuses `None`, so the body must hold a value, not `null`:
        // the copy's field is the `Option`'s content.
        let ty = match option_content(&field.ty) {
            Some(content) if validates_required(&field.attrs) => content,
            _ => &field.ty,
        };
        quote!(#(#attributes)* #ident: #ty)
    });
    // schemars' `crate` takes the path as a string.
    let schemars_path = format!("{}::__private::schemars", quote!(#krate).to_string().replace(' ', ""));
    let ident = &input.ident;
    let title = ident.to_string().trim_start_matches("r#").to_owned();
    // `#[serde(default)]` on the struct makes schemars read each field's default from
    // `Self::default()`: the copy's is the message's own, field by field.
    let copy_default = container_default(&input.attrs).then(|| {
        let names = fields.named.iter().map(|field| &field.ident);
        quote! {
            impl ::core::default::Default for #copy {
                fn default() -> Self {
                    let message: #ident = ::core::default::Default::default();
                    #copy { #(#names: message.#names),* }
                }
            }
        }
    });
    quote! {
        #krate::__private::json_schema_method! {
            fn __json_schema(
                generator: &mut #krate::__private::schemars::SchemaGenerator,
            ) -> ::core::option::Option<#krate::__private::schemars::Schema> {
                #[derive(#krate::__private::schemars::JsonSchema)]
                #[schemars(crate = #schemars_path)]
                #(#container_attributes)*
                #[allow(dead_code)]
                struct #copy {
                    #(#field_definitions,)*
                }
                #copy_default
                ::core::option::Option::Some(
                    #krate::__private::message_body_schema::<#copy>(generator, #title)
                )
            }
        }
    }
}

/// `T` when `ty` is `Option<T>` (as written: `Option`, `std::option::Option`, ...).
fn option_content(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(arguments) = &last.arguments else { return None };
    match (last.ident == "Option", arguments.args.first()) {
        (true, Some(syn::GenericArgument::Type(content))) if arguments.args.len() == 1 => Some(content),
        _ => None,
    }
}

/// Whether a field has `#[validate(required)]` (or `required(message = ...)`).
fn validates_required(attrs: &[Attribute]) -> bool {
    let mut found = false;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("validate")) {
        // A malformed validate attribute is validator's to report.
        let _ = attr.parse_nested_meta(|meta| {
            found |= meta.path.is_ident("required");
            skip_value(&meta)
        });
    }
    found
}

fn is_schema_attribute(attr: &Attribute) -> bool {
    SCHEMA_ATTRIBUTES.iter().any(|name| attr.path().is_ident(name))
}

/// Whether the struct has `#[serde(default)]` (bare: `default = "path"` names its own function).
fn container_default(attrs: &[Attribute]) -> bool {
    let mut found = false;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        // A malformed serde attribute is serde_derive's to report.
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("default") && !meta.input.peek(syn::Token![=]) {
                found = true;
            }
            skip_value(&meta)
        });
    }
    found
}
