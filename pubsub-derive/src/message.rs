//! `#[derive(PubSubMessage)]`: attribute parsing, schema checks and expansion.
//!
//! Every mistake is collected and reported at once, each at its own span. When the struct's
//! shape is usable the trait impl is still emitted (with a placeholder media type), so a user
//! sees the mistake itself and not a cascade of "trait not implemented" errors elsewhere.

use proc_macro2::{Span, TokenStream};
use pubsub_media_type::{Change, Lifecycle, MediaType, DEFAULT_ORGANIZATION};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, Ident, LitStr, Meta, Type};

use crate::ctxt::{path_text, skip_value, string_value, Errors};
use crate::serde_names::{ContainerNames, FieldNames};

/// Keys of the message body that belong to the envelope.
const RESERVED_KEYS: [(&str, &str); 2] = [
    (
        "mediaType",
        "the envelope reserves it for the media type, which comes from #[media_type]",
    ),
    (
        "opaqueData",
        "the envelope reserves it for opaque data (request id, TTL), which decoding returns as `Decoded::opaque_data`",
    ),
];

/// Placeholder media type of a type whose attribute was rejected (never registered).
const INVALID_MEDIA_TYPE: &str = "application/x.pubsub-invalid";

const EXAMPLE_ATTRIBUTE: &str =
    "#[media_type = \"application/vnd.acme.pubsub.order\"] or #[media_type(created = \"Order\")]";

pub fn expand(input: &DeriveInput) -> TokenStream {
    let mut errors = Errors::default();
    let krate = crate_path(&input.attrs, &mut errors);
    let media_type = media_type(input, &mut errors);
    let wire_names = wire_names(input, &mut errors);
    let fifo_ids = fifo_ids(input, &mut errors);
    check_generics(input, &mut errors);

    let ident = &input.ident;
    let mut out = TokenStream::new();
    if let Some(wire_names) = wire_names.filter(|_| input.generics.params.is_empty()) {
        let registered = errors.is_empty();
        let media_type = media_type.unwrap_or_else(|| INVALID_MEDIA_TYPE.to_owned());
        let pairs = wire_names.pairs.iter().map(|(rust, wire)| quote!((#rust, #wire)));
        let without_envelope = !wire_names.flattened;
        let registration = registered.then(|| {
            quote! {
                #krate::__private::inventory::submit! {
                    #krate::__private::MessageRegistration::of::<#ident>(
                        ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident))
                    )
                }
            }
        });
        let group_id = fifo_ids.group.map(|field| {
            let call = field.call(&krate, "message_group_id");
            quote! {
                fn __message_group_id(&self) -> ::core::option::Option<::std::string::String> {
                    #call
                }
            }
        });
        let deduplication_id = fifo_ids.deduplication.map(|field| {
            let call = field.call(&krate, "message_deduplication_id");
            quote! {
                fn __message_deduplication_id(&self) -> ::core::option::Option<::std::string::String> {
                    #call
                }
            }
        });
        // Only for a type that is registered: a rejected one would add schemars' errors to ours.
        let json_schema = registered.then(|| crate::schema::json_schema_method(input, &krate));
        out.extend(quote! {
            #[automatically_derived]
            impl #krate::PubSubMessage for #ident {
                const MEDIA_TYPE: &'static str = #media_type;
                const FIELD_WIRE_NAMES: &'static [(&'static str, &'static str)] = &[#(#pairs),*];
                const __CONTENT_WITHOUT_ENVELOPE: bool = #without_envelope;
                #group_id
                #deduplication_id
                #json_schema
            }
            #registration
        });
    }
    out.extend(errors.into_compile_errors());
    quote!(const _: () = { #out };)
}

/// `#[pubsub(crate = "path")]`, else `::pubsub_core`.
fn crate_path(attrs: &[Attribute], errors: &mut Errors) -> syn::Path {
    let mut path = syn::parse_quote!(::pubsub_core);
    let mut seen = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("pubsub")) {
        let parsed = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let fresh = errors.once(&mut seen, &meta.path);
                let Some(lit) = string_value(&meta, "my_crate::pubsub_core", errors)? else { return Ok(()) };
                match lit.parse::<syn::Path>() {
                    Ok(p) if fresh => path = p,
                    Ok(_) => {}
                    Err(_) => errors.push(
                        lit.span(),
                        format!(
                            "`{}` is not a path: write #[pubsub(crate = \"my_crate::pubsub_core\")]",
                            lit.value()
                        ),
                    ),
                }
            } else {
                errors.push(
                    meta.path.span(),
                    format!(
                        "unknown key `{}` in #[pubsub(...)]: the only key is `crate = \"path::to::pubsub_core\"`",
                        path_text(&meta.path)
                    ),
                );
                skip_value(&meta)?;
            }
            Ok(())
        });
        if let Err(e) = parsed {
            errors.push(e.span(), e);
        }
    }
    path
}

/// The media type from `#[media_type = "..."]` or `#[media_type(created = "Order", ...)]`.
fn media_type(input: &DeriveInput, errors: &mut Errors) -> Option<String> {
    let mut found: Option<Option<String>> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("media_type")) {
        if found.is_some() {
            errors.push_spanned(attr, "duplicate #[media_type]: a message type has exactly one media type; remove this attribute or the other one");
            continue;
        }
        found = Some(match &attr.meta {
            Meta::NameValue(nv) => literal_media_type(&nv.value, errors),
            Meta::List(_) => lifecycle_media_type(attr, errors),
            Meta::Path(_) => {
                errors.push_spanned(attr, format!("#[media_type] needs a value: write {EXAMPLE_ATTRIBUTE}"));
                None
            }
        });
    }
    match found {
        Some(media_type) => media_type,
        None => {
            errors.push(input.ident.span(), format!(
                "missing #[media_type]: every message type declares the media type it is published under; add {EXAMPLE_ATTRIBUTE} to `{}`",
                input.ident
            ));
            None
        }
    }
}

fn literal_media_type(value: &syn::Expr, errors: &mut Errors) -> Option<String> {
    let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(lit), .. }) = value else {
        errors.push(
            value.span(),
            format!("#[media_type = ...] takes a string literal: write {EXAMPLE_ATTRIBUTE}"),
        );
        return None;
    };
    let text = lit.value();
    match MediaType::validate(&text) {
        Ok(()) => Some(text),
        Err(e) => {
            errors.push(lit.span(), format!("invalid media type: {e}"));
            None
        }
    }
}

fn lifecycle_media_type(attr: &Attribute, errors: &mut Errors) -> Option<String> {
    let mut change: Option<(Change, LitStr)> = None;
    let mut organization: Option<LitStr> = None;
    let mut public = false;
    let mut ok = true;
    let mut seen = Vec::new();
    let parsed = attr.parse_nested_meta(|meta| {
        let key = path_text(&meta.path);
        if let Some(word) = Change::from_word(&key) {
            let lit = string_value(&meta, "Order", errors)?;
            match (&change, lit) {
                (Some((first, _)), _) => {
                    ok = false;
                    if *first == word {
                        errors.push(meta.path.span(), format!("`{word}` is given twice: keep one"));
                    } else {
                        errors.push(meta.path.span(), format!(
                            "#[media_type(...)] names one change, but this adds `{word}` to `{first}`: keep one of `created`, `changed` or `deleted`"
                        ));
                    }
                }
                (None, Some(lit)) => change = Some((word, lit)),
                (None, None) => ok = false,
            }
        } else if key == "organization" {
            ok &= errors.once(&mut seen, &meta.path);
            match string_value(&meta, DEFAULT_ORGANIZATION, errors)? {
                Some(lit) => organization = Some(lit),
                None => ok = false,
            }
        } else if key == "public" {
            ok &= errors.once(&mut seen, &meta.path);
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                ok = false;
                errors.push(meta.path.span(), "`public` is a flag: write `public` alone, without a value");
                skip_value(&meta)?;
            }
            public = true;
        } else {
            ok = false;
            errors.push(meta.path.span(), format!(
                "unknown key `{key}` in #[media_type(...)]: expected `created`, `changed` or `deleted` = \"Resource\", `organization = \"{DEFAULT_ORGANIZATION}\"`, or the flag `public`"
            ));
            skip_value(&meta)?;
        }
        Ok(())
    });
    if let Err(e) = parsed {
        errors.push(e.span(), e);
        return None;
    }
    let Some((change, resource)) = change else {
        if !ok {
            return None; // the key at fault is already reported
        }
        errors.push_spanned(attr, "#[media_type(...)] needs the change: add one of `created = \"Resource\"`, `changed = \"Resource\"` or `deleted = \"Resource\"`");
        return None;
    };
    let org_text = organization.as_ref().map_or_else(|| DEFAULT_ORGANIZATION.to_owned(), LitStr::value);
    if let Err(e) = Lifecycle::check_names(&resource.value(), &org_text) {
        let span = match e.what() {
            "organization" => organization.as_ref().map_or(attr.span(), LitStr::span),
            _ => resource.span(),
        };
        errors.push(span, e);
        return None;
    }
    if !ok {
        return None;
    }
    let mut lifecycle = Lifecycle::new(change, &resource.value());
    lifecycle.organization = org_text;
    lifecycle.public = public;
    let text = lifecycle.media_type();
    match MediaType::validate(&text) {
        Ok(()) => Some(text),
        Err(e) => {
            errors.push_spanned(attr, format!("invalid media type: {e}"));
            None
        }
    }
}

/// Checks the shape (a struct with named fields) and the serde names of its fields; returns
/// `(rust name, wire name)` pairs of serialized fields when the shape is usable.
/// What the derive learns of the fields' names on the wire.
struct WireNames {
    /// `(Rust name, wire name)` of each serialized field that is not flattened.
    pairs: Vec<(String, String)>,
    /// Whether a field is flattened: it may collect any key, the envelope's too.
    flattened: bool,
}

fn wire_names(input: &DeriveInput, errors: &mut Errors) -> Option<WireNames> {
    const NAMED_ONLY: &str = "PubSubMessage can only be derived for a struct with named fields, because a message body is a JSON object";
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named,
            Fields::Unnamed(unnamed) => {
                errors.push(
                    unnamed.span(),
                    format!(
                        "{NAMED_ONLY}: give the fields names, e.g. `struct {} {{ value: T }}`",
                        input.ident
                    ),
                );
                return None;
            }
            Fields::Unit => {
                errors.push(
                    input.ident.span(),
                    format!(
                        "{NAMED_ONLY}: a message with no content is written `struct {} {{}}`",
                        input.ident
                    ),
                );
                return None;
            }
        },
        Data::Enum(data) => {
            errors.push(data.enum_token.span(), format!("{NAMED_ONLY}, not an enum: put the enum in a field of a struct, e.g. `struct OrderEvent {{ event: {} }}`", input.ident));
            return None;
        }
        Data::Union(data) => {
            errors.push(data.union_token.span(), format!("{NAMED_ONLY}, not a union: declare a struct"));
            return None;
        }
    };
    let container = ContainerNames::read(&input.attrs);
    if let Some(span) = container.deny_unknown_fields {
        errors.push(span, "#[serde(deny_unknown_fields)] cannot be used on a PubSubMessage: every body also carries `mediaType` and `opaqueData`, and consumers must accept fields that newer producers add; remove it");
    }
    let mut pairs = Vec::new();
    let mut flattened = false;
    for field in &fields.named {
        for attr in
            field.attrs.iter().filter(|a| a.path().is_ident("media_type") || a.path().is_ident("pubsub"))
        {
            errors.push_spanned(
                attr,
                "this attribute belongs on the struct, not on a field: move it above `struct`",
            );
        }
        let Some(names) = FieldNames::read(field, &container) else { continue };
        let primary = names.serialized.iter().chain(&names.deserialized);
        if let Some((key, why)) = RESERVED_KEYS.iter().find(|(key, _)| primary.clone().any(|n| n == key)) {
            errors.push(names.span, format!(
                "field `{}` appears on the wire as `{key}`, and {why}; rename the field or give it another name with #[serde(rename = \"...\")]",
                names.rust
            ));
        }
        for alias in &names.aliases {
            if let Some((key, why)) = RESERVED_KEYS.iter().find(|(key, _)| alias.value() == *key) {
                errors.push(
                    alias.span(),
                    format!(
                    "field `{}` accepts `{key}` as an alias, and {why}; remove this alias or choose another",
                    names.rust
                ),
                );
            }
        }
        flattened |= names.flatten;
        if let (Some(wire), false) = (names.serialized, names.flatten) {
            pairs.push((names.rust, wire));
        }
    }
    Some(WireNames { pairs, flattened })
}

/// The fields `#[message_group_id]` and `#[message_deduplication_id]` are on.
#[derive(Default)]
struct FifoIds {
    group: Option<FifoField>,
    deduplication: Option<FifoField>,
}

/// A named field whose value is a FIFO id.
struct FifoField {
    ident: Ident,
    ty: Type,
}

impl FifoField {
    /// The id of `self`'s field through `__private::{function}`, whose bound on the field's
    /// type is reported at that type when it is not a string or an integer.
    fn call(&self, krate: &syn::Path, function: &str) -> TokenStream {
        let (ident, ty) = (&self.ident, &self.ty);
        let function = Ident::new(function, Span::call_site());
        quote_spanned! {ty.span()=>
            #krate::__private::#function::<#ty>(&self.#ident)
        }
    }
}

/// The two FIFO id attributes: (attribute name, what its field's value is, example field).
const FIFO_ATTRIBUTES: [(&str, &str, &str); 2] = [
    ("message_group_id", "group", "order_id: String"),
    ("message_deduplication_id", "deduplication id", "event_id: String"),
];

/// `#[message_group_id]` and `#[message_deduplication_id]`: each bare, on at most one named
/// field. Mistakes are recorded; a rejected attribute leaves its id unset.
fn fifo_ids(input: &DeriveInput, errors: &mut Errors) -> FifoIds {
    let mut ids = FifoIds::default();
    for attr in &input.attrs {
        let Some((name, what, example)) = fifo_attribute(attr) else { continue };
        errors.push_spanned(
            attr,
            format!(
                "#[{name}] goes on a field, not on the struct: put it on the field whose value is the {what}, e.g. `#[{name}] {example}`"
            ),
        );
    }
    // Fields of a tuple struct or an enum are not looked at: the shape is reported already.
    let Data::Struct(syn::DataStruct { fields: Fields::Named(fields), .. }) = &input.data else {
        return ids;
    };
    for field in &fields.named {
        let Some(ident) = &field.ident else { continue };
        for attr in &field.attrs {
            let Some((name, what, _)) = fifo_attribute(attr) else { continue };
            let slot = if name == "message_group_id" { &mut ids.group } else { &mut ids.deduplication };
            if let Some(value) = attribute_value(&attr.meta) {
                errors.push_spanned(
                    value,
                    format!(
                        "#[{name}] takes no value: the {what} is the value of the field it is on; write `#[{name}]` alone, above that field"
                    ),
                );
                continue;
            }
            match slot {
                Some(first) if first.ident == *ident => errors.push_spanned(
                    attr,
                    format!("#[{name}] is given twice on field `{}`: keep one", unraw(ident)),
                ),
                Some(first) => errors.push_spanned(
                    attr,
                    format!(
                        "#[{name}] is already on field `{}`: a message has one {what}; remove the attribute from one of the two fields",
                        unraw(&first.ident)
                    ),
                ),
                None => *slot = Some(FifoField { ident: ident.clone(), ty: field.ty.clone() }),
            }
        }
    }
    ids
}

/// The name, what it stands for and an example field, when `attr` is a FIFO id attribute.
fn fifo_attribute(attr: &Attribute) -> Option<(&'static str, &'static str, &'static str)> {
    FIFO_ATTRIBUTES.iter().copied().find(|(name, _, _)| attr.path().is_ident(name))
}

/// What follows the attribute's name, if anything: `= value` or `(...)`.
fn attribute_value(meta: &Meta) -> Option<TokenStream> {
    match meta {
        Meta::Path(_) => None,
        Meta::NameValue(nv) => {
            let (eq, value) = (&nv.eq_token, &nv.value);
            Some(quote!(#eq #value))
        }
        Meta::List(list) => {
            let span = list.delimiter.span().join();
            Some(quote_spanned!(span=> ()))
        }
    }
}

/// A field name as written in the source, without `r#`.
fn unraw(ident: &Ident) -> String {
    ident.to_string().trim_start_matches("r#").to_owned()
}

fn check_generics(input: &DeriveInput, errors: &mut Errors) {
    if !input.generics.params.is_empty() {
        errors.push_spanned(
            &input.generics,
            "PubSubMessage cannot be derived for a generic type: each message type has one media type and registers itself at link time; declare a concrete struct with concrete field types",
        );
    }
}
