//! The domain data: the distribution manifest, the topology and its SC mail settings, parsed
//! and validated at the edge. Uses `mechanism` and `base`.

pub mod mail;
pub(crate) mod manifest;
pub(crate) mod topology;
pub(crate) mod winver;
