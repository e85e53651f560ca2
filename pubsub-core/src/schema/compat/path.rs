//! Where a change is: a field's place in a body, in wire names.

/// A field's place in a body, in wire names: `order.lines[].quantity`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(String);

impl FieldPath {
    /// The body itself.
    pub(crate) fn root() -> Self {
        FieldPath(String::new())
    }

    /// A message's headers (AsyncAPI): `(headers)`, then `(headers).name`.
    pub(crate) fn headers() -> Self {
        FieldPath("(headers)".to_owned())
    }

    pub(crate) fn field(&self, name: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(name.to_owned())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    pub(crate) fn items(&self) -> Self {
        FieldPath(format!("{}[]", self.0))
    }

    pub(crate) fn item(&self, index: usize) -> Self {
        FieldPath(format!("{}[{index}]", self.0))
    }

    pub(crate) fn map_values(&self) -> Self {
        self.field("*")
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}
