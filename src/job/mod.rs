//! The jobs: one module per thing extpy does (fetch, assemble, lay out, bundle, diagnose,
//! lock, audit, roll out, write the runbook, check mail, watch for drift), built on `model`, `mechanism` and
//! `base`, never on `app`.

pub(crate) mod assemble;
pub(crate) mod audit;
pub(crate) mod bundle;
pub mod doctor;
pub(crate) mod fetch;
pub(crate) mod layout;
pub(crate) mod lock;
pub mod mail;
pub(crate) mod provenance;
pub mod rollout;
pub mod runbook;
pub mod selftest;
pub mod signatures;
pub(crate) mod source;
pub mod watch;
