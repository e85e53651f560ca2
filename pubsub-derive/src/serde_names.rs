//! The names serde gives fields on the wire, read from `#[serde(...)]` attributes the same way
//! serde_derive reads them. Keys this module does not need are skipped: serde_derive itself
//! reports malformed serde attributes, so we never add a second error for them.

use crate::ctxt::skip_value;
use syn::{Attribute, Field, LitStr};

/// serde's `rename_all` rules as they apply to field names.
#[derive(Clone, Copy)]
pub enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    fn from_str(rule: &str) -> Option<RenameRule> {
        Some(match rule {
            "lowercase" => RenameRule::Lower,
            "UPPERCASE" => RenameRule::Upper,
            "PascalCase" => RenameRule::Pascal,
            "camelCase" => RenameRule::Camel,
            "snake_case" => RenameRule::Snake,
            "SCREAMING_SNAKE_CASE" => RenameRule::ScreamingSnake,
            "kebab-case" => RenameRule::Kebab,
            "SCREAMING-KEBAB-CASE" => RenameRule::ScreamingKebab,
            _ => return None,
        })
    }

    /// Applies the rule to a snake_case Rust field name, as serde does.
    fn apply(self, field: &str) -> String {
        match self {
            RenameRule::Lower | RenameRule::Snake => field.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
            RenameRule::Pascal => pascal(field),
            RenameRule::Camel => {
                let pascal = pascal(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => pascal,
                }
            }
        }
    }
}

fn pascal(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut capitalize = true;
    for ch in field.chars() {
        if ch == '_' {
            capitalize = true;
        } else if capitalize {
            out.push(ch.to_ascii_uppercase());
            capitalize = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// What the container's `#[serde(...)]` attributes say that matters to us.
#[derive(Default)]
pub struct ContainerNames {
    rename_all_ser: Option<RenameRule>,
    rename_all_de: Option<RenameRule>,
    /// The span of `deny_unknown_fields`, if present.
    pub deny_unknown_fields: Option<proc_macro2::Span>,
}

impl ContainerNames {
    pub fn read(attrs: &[Attribute]) -> ContainerNames {
        let mut names = ContainerNames::default();
        for attr in serde_attrs(attrs) {
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("rename_all") {
                    let (ser, de) = read_pair(&meta)?;
                    let rule = |lit: Option<LitStr>| lit.and_then(|l| RenameRule::from_str(&l.value()));
                    names.rename_all_ser = rule(ser).or(names.rename_all_ser);
                    names.rename_all_de = rule(de).or(names.rename_all_de);
                } else if meta.path.is_ident("deny_unknown_fields") {
                    names.deny_unknown_fields = Some(syn::spanned::Spanned::span(&meta.path));
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            });
        }
        names
    }
}

/// The names one field has on the wire.
pub struct FieldNames {
    /// The Rust name (without `r#`).
    pub rust: String,
    /// The name written when serializing; `None` when the field is not serialized.
    pub serialized: Option<String>,
    /// The name read when deserializing; `None` when the field is not deserialized.
    pub deserialized: Option<String>,
    /// `#[serde(alias = "...")]` names, also accepted when deserializing.
    pub aliases: Vec<LitStr>,
    /// `#[serde(flatten)]`: the field's own fields stand at the top level.
    pub flatten: bool,
    /// Where to point an error about these names: the rename literal if any, else the field.
    pub span: proc_macro2::Span,
}

impl FieldNames {
    pub fn read(field: &Field, container: &ContainerNames) -> Option<FieldNames> {
        let ident = field.ident.as_ref()?;
        let rust = ident.to_string().trim_start_matches("r#").to_owned();
        let mut rename_ser = None;
        let mut rename_de = None;
        let mut aliases = Vec::new();
        let (mut skip_ser, mut skip_de, mut flatten) = (false, false, false);
        for attr in serde_attrs(&field.attrs) {
            let _ = attr.parse_nested_meta(|meta| {
                let path = &meta.path;
                if path.is_ident("rename") {
                    let (ser, de) = read_pair(&meta)?;
                    rename_ser = ser.or(rename_ser.take());
                    rename_de = de.or(rename_de.take());
                } else if path.is_ident("alias") {
                    aliases.push(meta.value()?.parse::<LitStr>()?);
                } else if path.is_ident("skip") {
                    (skip_ser, skip_de) = (true, true);
                } else if path.is_ident("skip_serializing") {
                    skip_ser = true;
                } else if path.is_ident("skip_deserializing") {
                    skip_de = true;
                } else if path.is_ident("flatten") {
                    flatten = true;
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            });
        }
        let span =
            rename_ser.as_ref().or(rename_de.as_ref()).map(LitStr::span).unwrap_or_else(|| ident.span());
        let named = |rename: Option<LitStr>, rule: Option<RenameRule>| match rename {
            Some(lit) => lit.value(),
            None => rule.map_or_else(|| rust.clone(), |rule| rule.apply(&rust)),
        };
        let serialized = (!skip_ser && !flatten).then(|| named(rename_ser, container.rename_all_ser));
        let deserialized = (!skip_de && !flatten).then(|| named(rename_de, container.rename_all_de));
        if skip_de || flatten {
            aliases.clear();
        }
        Some(FieldNames { rust, serialized, deserialized, aliases, flatten, span })
    }
}

fn serde_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|attr| attr.path().is_ident("serde"))
}

/// Reads `key = "x"` or `key(serialize = "x", deserialize = "y")`.
fn read_pair(meta: &syn::meta::ParseNestedMeta) -> syn::Result<(Option<LitStr>, Option<LitStr>)> {
    if meta.input.peek(syn::Token![=]) {
        let lit: LitStr = meta.value()?.parse()?;
        return Ok((Some(lit.clone()), Some(lit)));
    }
    let (mut ser, mut de) = (None, None);
    meta.parse_nested_meta(|inner| {
        let lit: LitStr = inner.value()?.parse()?;
        if inner.path.is_ident("serialize") {
            ser = Some(lit);
        } else if inner.path.is_ident("deserialize") {
            de = Some(lit);
        }
        Ok(())
    })?;
    Ok((ser, de))
}

#[cfg(test)]
mod tests {
    use super::RenameRule;

    #[test]
    fn rename_rules_match_serde() {
        let cases = [
            ("camelCase", "order_id", "orderId"),
            ("PascalCase", "order_id", "OrderId"),
            ("SCREAMING_SNAKE_CASE", "order_id", "ORDER_ID"),
            ("kebab-case", "order_id", "order-id"),
            ("SCREAMING-KEBAB-CASE", "order_id", "ORDER-ID"),
            ("lowercase", "order_id", "order_id"),
            ("UPPERCASE", "order_id", "ORDER_ID"),
            ("snake_case", "order_id", "order_id"),
            ("camelCase", "media_type", "mediaType"),
        ];
        for (rule, field, expected) in cases {
            assert_eq!(RenameRule::from_str(rule).unwrap().apply(field), expected, "{rule}");
        }
    }
}
