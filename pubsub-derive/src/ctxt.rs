//! The error collector both macros share, and the attribute-parsing helpers that record a
//! mistake and keep going.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::LitStr;

/// Every mistake found in one macro input, reported at once, each at its own span (as
/// serde_derive's `Ctxt`): parsing goes on after a mistake so the user sees them all.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        self.add(syn::Error::new(span, message));
    }

    pub fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// An error spanning all of `tokens` (an attribute, the generics), not just their first token.
    pub fn push_spanned(&mut self, tokens: impl quote::ToTokens, message: impl std::fmt::Display) {
        self.add(syn::Error::new_spanned(tokens, message));
    }

    /// Records `key` as seen; an error if it was seen before.
    pub fn once(&mut self, seen: &mut Vec<String>, key: &syn::Path) -> bool {
        let text = path_text(key);
        if seen.contains(&text) {
            self.push(key.span(), format!("`{text}` is given twice: keep one"));
            return false;
        }
        seen.push(text);
        true
    }

    /// How many mistakes so far (a combined `syn::Error` counts each).
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |e| e.clone().into_iter().count())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn into_compile_errors(self) -> TokenStream {
        self.0.map(|e| e.to_compile_error()).unwrap_or_default()
    }
}

/// The string literal after `key =`; a mistake is recorded (with what to write) and `None`
/// returned, so parsing goes on with the next key.
pub fn string_value(
    meta: &syn::meta::ParseNestedMeta,
    example: &str,
    errors: &mut Errors,
) -> syn::Result<Option<LitStr>> {
    let key = path_text(&meta.path);
    if !meta.input.peek(syn::Token![=]) {
        errors.push(meta.path.span(), format!("`{key}` takes a string: write `{key} = \"{example}\"`"));
        skip_value(meta)?;
        return Ok(None);
    }
    match meta.value()?.parse::<syn::Expr>()? {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(lit), .. }) => Ok(Some(lit)),
        other => {
            errors.push_spanned(
                other,
                format!("`{key}` takes a string literal: write `{key} = \"{example}\"`"),
            );
            Ok(None)
        }
    }
}

/// A path as written, without spaces (`my_crate::pubsub_core`).
pub fn path_text(path: &syn::Path) -> String {
    quote!(#path).to_string().replace(' ', "")
}

/// Skips the value of an unknown or malformed key (`= expr` or `(...)`), so parsing goes on
/// with the next key.
pub fn skip_value(meta: &syn::meta::ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<proc_macro2::TokenStream>()?;
    }
    Ok(())
}
