//! What can go wrong reading the two inputs, with what to do about it.

use std::fmt;

/// Which of the two inputs an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The older document (`--baseline`).
    Baseline,
    /// The newer document (`--current`).
    Current,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Baseline => "baseline",
            Side::Current => "current",
        })
    }
}

/// An input that cannot be compared. Every message names the input (baseline or current), the
/// place in it, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    /// Neither an AsyncAPI document nor a JSON Schema.
    #[error(
        "the {side} input is neither an AsyncAPI 3 document (an object with \"asyncapi\") nor a JSON \
         Schema (an object with \"type\", \"properties\", \"$ref\", \"oneOf\", ...): pass the AsyncAPI \
         document of a service or the JSON Schema of one message"
    )]
    NotADocument {
        /// The input at fault.
        side: Side,
    },
    /// An AsyncAPI document of another major version.
    #[error(
        "the {side} input is an AsyncAPI {version} document; only AsyncAPI 3.x is supported: \
         regenerate it with this version of the toolkit"
    )]
    UnsupportedAsyncApiVersion {
        /// The input at fault.
        side: Side,
        /// Its `asyncapi` field.
        version: String,
    },
    /// A `$ref` whose target is not in the document.
    #[error(
        "the {side} input: `$ref` \"{reference}\" at {location} points to nothing in the document: \
         add the missing definition or fix the reference"
    )]
    UnresolvableRef {
        /// The input at fault.
        side: Side,
        /// The reference as written.
        reference: String,
        /// Where it is (a JSON Pointer).
        location: String,
    },
    /// A `$ref` to another file or URL.
    #[error(
        "the {side} input: `$ref` \"{reference}\" at {location} points outside the document; only \
         references within it (starting with \"#\") are followed: bundle the schemas into one document"
    )]
    ExternalRef {
        /// The input at fault.
        side: Side,
        /// The reference as written.
        reference: String,
        /// Where it is (a JSON Pointer).
        location: String,
    },
    /// `$ref`s (or `allOf`s of `$ref`s) that lead back to themselves without any schema between.
    #[error(
        "the {side} input: `$ref` \"{reference}\" leads back to itself without reaching a schema: \
         break the loop of references"
    )]
    RefLoop {
        /// The input at fault.
        side: Side,
        /// The reference that was being followed again.
        reference: String,
    },
    /// A bare schema whose message cannot be named.
    #[error(
        "the {side} input is a JSON Schema with neither `properties.mediaType.const` nor a `title`, so \
         its message cannot be matched with the other input's: give the schema a title"
    )]
    UnnamedSchema {
        /// The input at fault.
        side: Side,
    },
    /// Something at a place that does not have the shape JSON Schema or AsyncAPI requires.
    #[error("the {side} input: {location} {problem}")]
    Malformed {
        /// The input at fault.
        side: Side,
        /// Where (a JSON Pointer).
        location: String,
        /// What is wrong there, e.g. "is not a schema (expected an object or a boolean)".
        problem: String,
    },
}
