//! The step plan (runbook): every IA and SC step of the procedure, instantiated with the
//! topology's concrete names and values, as one list of data that every renderer reads.
//!
//! `plan` is the data; `install` and `upgrade` build it; `markdown` and `html` render it.

pub(crate) mod html;
pub(crate) mod install;
pub(crate) mod markdown;
pub(crate) mod plan;
pub(crate) mod upgrade;

pub use install::build;
pub use plan::{
    Actor, Certificates, Format, Gate, HostCheck, NodeGate, Phase, Plan, PlanManifest, PlanOptions,
    PlanUpgrade, SCHEMA, Step, Table, TrustFix,
};

impl Plan {
    /// The plan in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => markdown::render(self),
            Format::Html => html::render(self),
            Format::Json => self.json(),
            Format::Yaml => serde_yaml::to_string(self).unwrap_or_default(),
        }
    }
}
