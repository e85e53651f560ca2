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
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
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
    let schema_type = |field: &syn::Field| match option_content(&field.ty) {
        // validator's `required` refuses `None`, so the body must hold a value, not `null`:
        // the copy's field is the `Option`'s content.
        Some(content) if validates_required(&field.attrs) => content.clone(),
        _ => field.ty.clone(),
    };
    // Fields whose schema comes from their own type: a missing one is explained at the field.
    let field_checks =
        fields.named.iter().filter(|field| !schema_given_otherwise(&field.attrs)).map(|field| {
            let ty = schema_type(field);
            quote_spanned!(ty.span()=> #krate::__private::field_schema::<#ty>();)
        });
    let field_definitions = fields.named.iter().map(|field| {
        let attributes = field.attrs.iter().filter(|attr| is_schema_attribute(attr));
        let ident = &field.ident;
        let ty = schema_type(field);
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
                #(#field_checks)*
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

/// Whether a field's schema does not come from its type: skipped by serde, read or written
/// through functions of its own (`with`), or described with `#[schemars(...)]`.
fn schema_given_otherwise(attrs: &[Attribute]) -> bool {
    const SERDE_KEYS: [&str; 5] =
        ["skip", "skip_deserializing", "with", "deserialize_with", "serialize_with"];
    attrs.iter().any(|attr| {
        if attr.path().is_ident("schemars") {
            return true;
        }
        let mut found = false;
        if attr.path().is_ident("serde") {
            // A malformed serde attribute is serde_derive's to report.
            let _ = attr.parse_nested_meta(|meta| {
                found |= SERDE_KEYS.iter().any(|key| meta.path.is_ident(key));
                skip_value(&meta)
            });
        }
        found
    })
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
