//! extpy: fetch, verify, build and lay out the External Python that the CEM component of
//! Sinch Contact Pro needs, and write the runbook that goes with it.

pub mod digest;
pub mod manifest;
