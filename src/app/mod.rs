//! The application: configuration from options and environment, the inputs a command
//! resolves, the error type with its exit codes, and one function per command. Uses every
//! layer below; only `main.rs` uses it.

pub mod commands;
pub mod config;
pub mod error;
pub(crate) mod inputs;
pub mod version;
