//! Message schemas as contracts: [`compat`] classifies the changes between two versions.

pub mod compat;
