//! The runbook as data: its phases, steps and tables, what it was made from, and the views
//! every renderer reads (the pairing table, the summaries, the digest). Below the builders
//! (`install`, `upgrade`) and the renderers (`markdown`, `html`), which all read it.

use serde::Serialize;

use crate::job::doctor::summary::DoctorSummary;
use crate::job::mail::check::PlanChecks;
use crate::mechanism::digest::Sha256Digest;
use crate::model::mail::Mail;
use crate::model::manifest::Manifest;
use crate::model::topology::Pair;

/// The plan's schema name, bumped on incompatible changes.
pub const SCHEMA: &str = "extpy-plan/1";

/// The phases of the procedure, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Before an upgrade of the distribution: the nodes' Windows, CEM stopped, backups.
    Precheck,
    /// Before the upgrade: certificates, the distribution.
    Prepare,
    /// Infrastructure Administrator.
    Ia,
    /// The normal upgrade procedure.
    Upgrade,
    /// System Configurator.
    Sc,
    /// The new distribution staged beside the current one in each VU, and swapped in.
    Switch,
    /// Checks.
    Verify,
    /// Going back to the distribution kept beside each VU, if the checks after fail.
    Rollback,
}

impl Phase {
    /// The heading a renderer shows.
    pub fn title(self) -> &'static str {
        match self {
            Phase::Precheck => "Before the upgrade",
            Phase::Prepare => "Prepare",
            Phase::Ia => "Infrastructure Administrator",
            Phase::Upgrade => "Upgrade",
            Phase::Sc => "System Configurator: e-mail",
            Phase::Switch => "Stage and switch",
            Phase::Verify => "Verify",
            Phase::Rollback => "Rollback (only if the checks after the upgrade fail)",
        }
    }
}

/// Who carries out a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// A command of extpy.
    Extpy,
    /// Infrastructure Administrator.
    Ia,
    /// System Configurator.
    Sc,
}

impl Actor {
    /// The short label renderers show.
    pub fn label(self) -> &'static str {
        match self {
            Actor::Extpy => "extpy",
            Actor::Ia => "IA",
            Actor::Sc => "SC",
        }
    }
}

/// A small table inside a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

/// One step of the runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Stable identifier (`ia.create-vu.externalpython1`).
    pub id: String,
    /// Phase.
    pub phase: Phase,
    /// Who acts.
    pub actor: Actor,
    /// One line.
    pub title: String,
    /// What to do, with the concrete names and values.
    pub instruction: String,
    /// Commands to run, in order.
    pub commands: Vec<String>,
    /// Values to enter, when there are several.
    pub table: Option<Table>,
    /// The command that proves the step done, where one exists.
    pub check: Option<String>,
    /// Things to watch out for.
    pub warnings: Vec<String>,
}

impl Step {
    pub(super) fn new(
        id: impl Into<String>,
        phase: Phase,
        actor: Actor,
        title: impl Into<String>,
        instruction: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            phase,
            actor,
            title: title.into(),
            instruction: instruction.into(),
            commands: vec![],
            table: None,
            check: None,
            warnings: vec![],
        }
    }

    pub(super) fn command(mut self, c: impl Into<String>) -> Self {
        self.commands.push(c.into());
        self
    }

    pub(super) fn check(mut self, c: impl Into<String>) -> Self {
        self.check = Some(c.into());
        self
    }

    pub(super) fn warn(mut self, w: impl Into<String>) -> Self {
        self.warnings.push(w.into());
        self
    }

    pub(super) fn table(mut self, headers: &[&str], rows: Vec<Vec<String>>) -> Self {
        self.table = Some(Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows,
        });
        self
    }
}

/// A host the certificate check looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostCheck {
    /// `host:port`.
    pub host: String,
    /// True when trusted.
    pub ok: bool,
    /// The verdict in words.
    pub verdict: String,
    /// The certificate to trust, when that is the fix.
    pub trust: Option<TrustFix>,
}

/// A certificate to install into the machine's trusted roots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrustFix {
    /// Its subject (common name).
    pub name: String,
    /// Its SHA-256 fingerprint.
    pub sha256_fingerprint: String,
    /// The file name (without extension) `extpy doctor --export` writes it to.
    pub file_stem: String,
}

/// The certificate section of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Certificates {
    /// Not checked.
    Skipped {
        /// Why, and how to check.
        note: String,
    },
    /// Checked (live or from a saved `extpy doctor --json`).
    Checked {
        /// `live`, or the report file.
        source: String,
        /// Every host.
        hosts: Vec<HostCheck>,
    },
}

impl Certificates {
    /// The results of a doctor run (live, or a saved `extpy doctor --json`).
    pub fn from_doctor(doctor: &DoctorSummary, source: String) -> Self {
        let hosts = doctor
            .hosts
            .iter()
            .map(|h| HostCheck {
                host: format!("{}:{}", h.host, h.port),
                ok: h.ok,
                verdict: match &h.verdict {
                    Some(v) => v.summary.clone(),
                    None if h.ok => "trusted".into(),
                    None => "failed".into(),
                },
                trust: h
                    .fix
                    .as_ref()
                    .and_then(|f| f.certificate.as_ref())
                    .map(|c| TrustFix {
                        name: c.name.clone(),
                        sha256_fingerprint: c.sha256.clone(),
                        file_stem: c.file_stem.clone(),
                    }),
            })
            .collect();
        Certificates::Checked { source, hosts }
    }
}

/// Where the distribution comes from, for the prepare step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanOptions {
    /// The topology file as the user named it (for commands in the plan).
    pub topology_arg: String,
    /// An offline bundle to build from, if any.
    pub bundle: Option<String>,
    /// A generated rollout playbook, if the copy is scripted.
    pub rollout: Option<String>,
    /// Results of `extpy mail check` (live or saved), if any.
    pub mail_check: Option<PlanChecks>,
    /// The files of the distribution (relative), when its artifacts are in the cache: the
    /// plan then shows the longest path in each VU.
    pub tree_files: Option<Vec<String>>,
}

/// The whole runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The system's name.
    pub system: String,
    /// `extpy <version>`.
    pub generated_by: String,
    /// The topology file.
    pub topology: String,
    /// Manifest identity and what it builds.
    pub manifest: PlanManifest,
    /// What an upgrade runbook upgrades from (`plan --upgrade-from`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<PlanUpgrade>,
    /// Every core with its VU.
    pub pairs: Vec<Pair>,
    /// The certificate check.
    pub certificates: Certificates,
    /// SC e-mail settings, when the topology has them.
    pub mail: Option<Mail>,
    /// Results of `extpy mail check`, when the plan was made with them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_check: Option<PlanChecks>,
    /// Warnings about the inputs.
    pub warnings: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// The manifest as the plan names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanManifest {
    /// Name.
    pub name: String,
    /// Digest.
    pub sha256: String,
    /// CPython version.
    pub python: String,
    /// Platform.
    pub platform: String,
    /// `name version` of every package.
    pub packages: Vec<String>,
}

impl PlanManifest {
    /// How the plan names `m`.
    pub(crate) fn of(m: &Manifest) -> Self {
        Self {
            name: m.name.clone(),
            sha256: m.digest.to_string(),
            python: m.python.to_string(),
            platform: m.platform.to_string(),
            packages: m
                .wheels
                .iter()
                .map(|w| format!("{} {}", w.filename.name, w.filename.version))
                .collect(),
        }
    }
}

/// What an upgrade runbook upgrades from, and which nodes can take the new CPython.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanUpgrade {
    /// The manifest the nodes run now.
    pub from: PlanManifest,
    /// The file it was read from, as given to `--upgrade-from`.
    pub from_file: String,
    /// When that was a seal found on a node (not a manifest): its digest, which every VU
    /// must hold before the upgrade.
    pub from_seal_digest: Option<Sha256Digest>,
    /// The OS gate, per node.
    pub nodes: Vec<NodeGate>,
}

/// Whether a node's Windows runs the new CPython.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeGate {
    /// The node.
    pub node: String,
    /// Its Windows version as the topology's `os:` gives it, if it does.
    pub os: Option<String>,
    /// The verdict.
    pub verdict: Gate,
    /// The verdict in words.
    pub reason: String,
}

/// The OS gate's verdict for one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Its Windows runs the new CPython: it is upgraded.
    Ok,
    /// Its Windows cannot: it stays on the old manifest.
    Refused,
    /// The topology does not say: it is upgraded, and the layout on the node checks.
    Unknown,
}

/// The formats a plan renders to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Markdown checklist.
    Markdown,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// One self-contained printable HTML page.
    Html,
}

impl Plan {
    /// The pairing as a table: node, core, VU, External Python Directory.
    pub fn pairs_table(&self) -> Table {
        Table {
            headers: ["node", "core", "VU", "External Python Directory"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rows: self
                .pairs
                .iter()
                .map(|p| {
                    vec![
                        p.node.clone(),
                        p.core.clone(),
                        p.vu.clone(),
                        p.external_python_directory.to_string(),
                    ]
                })
                .collect(),
        }
    }

    /// What the page is: an installation runbook, or an upgrade runbook.
    pub fn kind(&self) -> &'static str {
        if self.upgrade.is_some() {
            "External Python upgrade runbook"
        } else {
            "External Python runbook"
        }
    }

    /// For an upgrade runbook, one sentence on what it upgrades from and which nodes.
    pub fn upgrade_summary(&self) -> Option<String> {
        let u = self.upgrade.as_ref()?;
        let stays: Vec<&str> = u
            .nodes
            .iter()
            .filter(|g| g.verdict == Gate::Refused)
            .map(|g| g.node.as_str())
            .collect();
        Some(format!(
            "Upgrade from `{}@{}` (CPython {}, {}) to CPython {}: {} of {} nodes{}.",
            u.from.name,
            &u.from.sha256[..12],
            u.from.python,
            u.from_file,
            self.manifest.python,
            u.nodes.len() - stays.len(),
            u.nodes.len(),
            if stays.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} stay{} on CPython {} (Windows too old)",
                    stays.join(", "),
                    if stays.len() == 1 { "s" } else { "" },
                    u.from.python
                )
            }
        ))
    }

    /// One sentence on the certificate check.
    pub fn certificates_summary(&self) -> String {
        match &self.certificates {
            Certificates::Skipped { note } => format!("Not checked: {note}"),
            Certificates::Checked { source, hosts } => {
                let failed = hosts.iter().filter(|h| !h.ok).count();
                format!(
                    "Checked ({source}): {} of {} hosts trusted.",
                    hosts.len() - failed,
                    hosts.len()
                )
            }
        }
    }

    /// The plan's digest: the sha256 of its JSON document exactly as `--format json` writes
    /// it, so `sha256sum` of that output gives the same value. The HTML page keys its ticks
    /// by it: another plan (other topology, manifest or version) starts with none ticked.
    pub fn digest(&self) -> crate::mechanism::digest::Sha256Digest {
        crate::mechanism::digest::Sha256Digest::of(self.json().as_bytes())
    }

    /// The plan as `--format json` writes it.
    pub fn json(&self) -> String {
        let mut s = crate::base::report::json_document(self);
        s.push('\n');
        s
    }
}
