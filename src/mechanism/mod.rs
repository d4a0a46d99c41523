//! The mechanisms: hashing, safe file I/O, input limits, the one HTTP client, the cache, the
//! one zip reader and atomic placement. They know nothing of manifests or topologies and
//! use only `base`.

pub(crate) mod archive;
pub(crate) mod cache;
pub(crate) mod digest;
pub(crate) mod fsio;
pub(crate) mod limits;
pub(crate) mod net;
pub(crate) mod pathlen;
pub(crate) mod place;
#[cfg(windows)]
pub(crate) mod registry;
pub(crate) mod sign;
pub(crate) mod sigstore;
