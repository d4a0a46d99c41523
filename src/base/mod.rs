//! The base layer: exit codes, parse helpers, the one reporter and Windows console text.
//! It uses nothing else of the crate.

pub(crate) mod exit;
pub(crate) mod parse;
pub mod report;
pub(crate) mod wintext;
