//! Laying out the `ExternalPythonN` VU folders: for every core, `<root>\<VU>\Python\External`
//! holding the sealed distribution, each copy verified against the seal and renamed into
//! place only when it matched. Decide first (what each VU folder holds and needs), then act.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::assemble::seal::{
    self, DestState, SEAL_FILE, Seal, SealError, Verification, VerifyOptions, dest_state, native,
};
use crate::digest::Sha256Digest;
use crate::exit::ExitCode;
use crate::fsio::{IoError, at};
use crate::manifest::Manifest;
use crate::place::{self, PlaceError, Staging};
use crate::report::{Reporter, plural};
use crate::topology::{Node, Pair, Topology, render_table};

/// Why a layout failed.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The nodes or folders asked for do not fit the topology.
    #[error("{0}")]
    Selection(String),
    /// The distribution to copy does not match its own seal.
    #[error("the distribution {} does not match its seal ({}); rebuild it with `extpy build`", path.display(), summary)]
    BadDistribution {
        /// The folder.
        path: PathBuf,
        /// What differs.
        summary: String,
    },
    /// A copy did not verify.
    #[error("the copy into {} did not verify against the seal ({summary}); it was discarded", path.display())]
    CopyNotVerified {
        /// The VU folder.
        path: PathBuf,
        /// What differed.
        summary: String,
    },
    /// Staging, copying or renaming failed.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// A seal could not be read.
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    /// A file could not be copied.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl LayoutError {
    /// The exit code: a selection that does not fit the topology is input, a distribution
    /// or copy that does not match its seal a failed verification.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            LayoutError::Selection(_) => ExitCode::Input,
            LayoutError::BadDistribution { .. } | LayoutError::CopyNotVerified { .. } => {
                ExitCode::Verification
            }
            LayoutError::Place(p) => p.exit_code(),
            LayoutError::Seal(s) => s.exit_code(),
            LayoutError::Io(e) => e.exit_code(),
        }
    }
}

/// Where one node's VU folders go on this machine.
#[derive(Debug, Clone)]
pub struct NodeTarget {
    /// The node.
    pub node: Node,
    /// The local folder that holds its VU folders.
    pub root: PathBuf,
}

/// What a VU folder holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Found {
    /// Nothing (or an empty folder).
    Absent,
    /// This manifest's distribution, matching its seal.
    Matches,
    /// Another manifest's distribution, matching its own seal.
    Outdated {
        /// The manifest name in that seal.
        manifest: String,
    },
    /// A sealed distribution that differs from its seal.
    Damaged {
        /// What differs.
        summary: String,
    },
    /// Files without a seal.
    Foreign,
}

/// What the layout does to a VU folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Copy the distribution into a new folder.
    Create,
    /// Nothing: it already matches.
    Keep,
    /// Replace another distribution with this one.
    Update,
    /// Replace damaged or foreign content (`--repair`).
    Repair,
    /// Leave damaged or foreign content and report it.
    Leave,
}

impl Action {
    fn past(self, dry_run: bool) -> &'static str {
        match (self, dry_run) {
            (Action::Create, false) => "created",
            (Action::Create, true) => "would create",
            (Action::Keep, _) => "unchanged",
            (Action::Update, false) => "updated",
            (Action::Update, true) => "would update",
            (Action::Repair, false) => "repaired",
            (Action::Repair, true) => "would repair",
            (Action::Leave, _) => "DIFFERS (left; --repair replaces it)",
        }
    }

    fn writes(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Repair)
    }
}

/// One VU in the plan.
#[derive(Debug, Clone, Serialize)]
pub struct VuPlan {
    /// The core, VU and Windows paths.
    #[serde(flatten)]
    pub pair: Pair,
    /// The local folder that receives the distribution (`…\<VU>\Python\External`).
    pub path: PathBuf,
    /// What it holds now.
    pub found: Found,
    /// What will be done.
    pub action: Action,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct LayoutPlan {
    /// Every VU of the selected nodes.
    pub vus: Vec<VuPlan>,
    /// True for `--dry-run`.
    pub dry_run: bool,
}

/// The result of a layout.
#[derive(Debug, Clone, Serialize)]
pub struct LayoutReport {
    /// Manifest name.
    pub manifest: String,
    /// The seal every VU now matches (none in a dry run).
    pub seal_digest: Option<Sha256Digest>,
    /// Per VU: plan and outcome.
    pub vus: Vec<VuPlan>,
    /// VUs written.
    pub written: usize,
    /// VUs left differing (no `--repair`).
    pub left: usize,
    /// Where the pairing was written, when staging.
    pub pairing_file: Option<PathBuf>,
    /// True for `--dry-run`.
    pub dry_run: bool,
}

/// Decides which nodes to lay out and where, from `--out`, `--node` and `--vu-root`.
pub fn targets(
    topology: &Topology,
    out: Option<&Path>,
    node: Option<&str>,
    vu_root: Option<&Path>,
) -> Result<Vec<NodeTarget>, LayoutError> {
    let nodes: Vec<&Node> = match (node, vu_root) {
        (Some(n), _) => vec![topology.node(n).map_err(LayoutError::Selection)?],
        (None, Some(_)) if topology.nodes.len() == 1 => vec![&topology.nodes[0]],
        (None, Some(_)) => {
            return Err(LayoutError::Selection(format!(
                "--vu-root is the VU root of one node; name it with --node ({})",
                topology
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        (None, None) => topology.nodes.iter().collect(),
    };
    nodes
        .into_iter()
        .map(|n| {
            let root = match (vu_root, out) {
                (Some(r), _) => r.to_path_buf(),
                (None, Some(o)) => o.join(&n.name),
                (None, None) => n.vu_root.to_native().ok_or_else(|| {
                    LayoutError::Selection(format!(
                        "node {}'s VU root {} is a Windows path; on this machine pass --out DIR to stage, or --node {} --vu-root PATH",
                        n.name, n.vu_root, n.name
                    ))
                })?,
            };
            Ok(NodeTarget { node: n.clone(), root })
        })
        .collect()
}

/// The local folder of a VU's distribution under a node root.
pub fn vu_dir(root: &Path, vu: &str) -> PathBuf {
    root.join(vu).join("Python").join("External")
}

/// Looks at what a VU folder holds (hashing it against its seal), changing nothing.
pub fn inspect(dir: &Path, manifest: &Manifest, jobs: usize) -> Result<Found, LayoutError> {
    match dest_state(dir) {
        DestState::Absent | DestState::Empty => return Ok(Found::Absent),
        DestState::Foreign => return Ok(Found::Foreign),
        DestState::NotAFolder => {
            return Err(PlaceError::NotAFolder {
                path: dir.to_path_buf(),
            }
            .into());
        }
        DestState::Sealed => {}
    }
    let v = seal::verify(
        dir,
        VerifyOptions {
            jobs,
            strict: false,
        },
    )?;
    if !v.ok {
        return Ok(Found::Damaged {
            summary: summary(&v),
        });
    }
    match Seal::read(dir) {
        Ok(s) if s.manifest.sha256 == manifest.digest => Ok(Found::Matches),
        Ok(s) => Ok(Found::Outdated {
            manifest: format!("{}@{}", s.manifest.name, s.manifest.sha256.short()),
        }),
        Err(SealError::Corrupt { reason, .. }) => Ok(Found::Damaged { summary: reason }),
        Err(e) => Err(e.into()),
    }
}

/// One line on what differs.
pub fn summary(v: &Verification) -> String {
    let mut parts = Vec::new();
    if v.seal_altered {
        parts.push("seal altered".to_string());
    }
    for (n, what) in [
        (v.changed.len(), "changed"),
        (v.missing.len(), "missing"),
        (v.extra.len(), "extra"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let first = v
        .changed
        .first()
        .map(|c| c.path.clone())
        .or_else(|| v.missing.first().cloned())
        .or_else(|| v.extra.first().cloned());
    match first {
        Some(f) => format!(
            "{}: {f}{}",
            parts.join(", "),
            if parts.len() > 1 || v.changed.len() + v.missing.len() + v.extra.len() > 1 {
                ", ..."
            } else {
                ""
            }
        ),
        None => parts.join(", "),
    }
}

/// Decides what to do with every VU of the targets.
pub fn plan(
    topology: &Topology,
    targets: &[NodeTarget],
    manifest: &Manifest,
    repair: bool,
    dry_run: bool,
    jobs: usize,
) -> Result<LayoutPlan, LayoutError> {
    let mut vus = Vec::new();
    for t in targets {
        for pair in topology.pairs_of(&t.node.name) {
            let path = vu_dir(&t.root, &pair.vu);
            let found = inspect(&path, manifest, jobs)?;
            let action = match &found {
                Found::Absent => Action::Create,
                Found::Matches => Action::Keep,
                Found::Outdated { .. } => Action::Update,
                Found::Damaged { .. } | Found::Foreign if repair => Action::Repair,
                Found::Damaged { .. } | Found::Foreign => Action::Leave,
            };
            vus.push(VuPlan {
                pair: pair.clone(),
                path,
                found,
                action,
            });
        }
    }
    Ok(LayoutPlan { vus, dry_run })
}

/// Carries out the plan: copies `dist` (sealed by `seal`) into every VU that needs it, in
/// parallel; each copy is verified against the seal before it is renamed into place.
pub fn execute(
    plan: &LayoutPlan,
    targets: &[NodeTarget],
    dist: &Path,
    seal: &Seal,
    manifest: &Manifest,
    jobs: usize,
    reporter: &Reporter,
) -> Result<LayoutReport, LayoutError> {
    let mut report = plan.report(manifest);
    report.seal_digest = Some(seal.digest);
    // One lock per node root keeps two layouts of the same node apart.
    let _locks = targets
        .iter()
        .map(|t| place::lock_folder(&t.root))
        .collect::<Result<Vec<_>, _>>()?;
    let work: Vec<&VuPlan> = plan.vus.iter().filter(|v| v.action.writes()).collect();
    let bar = reporter.count_bar(work.len() as u64, "VUs");
    let results = crate::parallel(crate::local_jobs(jobs), &work, |v| {
        let r = copy_verified(dist, seal, &v.path, jobs, reporter);
        bar.inc(1);
        if r.is_ok() {
            reporter.detail(format!(
                "{} {} ({})",
                v.action.past(false),
                v.pair.vu,
                v.path.display()
            ));
        }
        r
    });
    bar.finish_and_clear();
    for r in results {
        r?;
        report.written += 1;
    }
    Ok(report)
}

/// Copies the sealed files of `dist` into `target` through a sibling folder, verifies the
/// copy against the seal, and only then renames it into place.
pub fn copy_verified(
    dist: &Path,
    seal: &Seal,
    target: &Path,
    jobs: usize,
    reporter: &Reporter,
) -> Result<(), LayoutError> {
    let staging = Staging::begin_locked(target, reporter)?;
    let root = staging.path();
    let mut folders: Vec<&str> = seal
        .files
        .iter()
        .filter_map(|f| f.path.rsplit_once('/').map(|(d, _)| d))
        .collect();
    folders.sort_unstable();
    folders.dedup();
    for f in folders {
        let p = native(root, f);
        fs::create_dir_all(&p).map_err(at(&p, "cannot create the folder"))?;
    }
    for rel in seal
        .files
        .iter()
        .map(|f| f.path.as_str())
        .chain([SEAL_FILE])
    {
        let (from, to) = (native(dist, rel), native(root, rel));
        fs::copy(&from, &to).map_err(at(&to, "cannot copy"))?;
    }
    let v = seal::verify(
        root,
        VerifyOptions {
            jobs: 1.max(jobs / 4),
            strict: true,
        },
    )?;
    if !v.ok || v.seal_digest != Some(seal.digest) {
        return Err(LayoutError::CopyNotVerified {
            path: target.to_path_buf(),
            summary: summary(&v),
        });
    }
    staging.commit()?;
    Ok(())
}

/// Writes `pairing.json` into `out` (through a temporary file renamed into place).
pub fn write_pairing(
    out: &Path,
    topology: &Topology,
    manifest: &Manifest,
    seal_digest: Sha256Digest,
) -> Result<PathBuf, LayoutError> {
    #[derive(Serialize)]
    struct Doc<'a> {
        system: &'a str,
        manifest: String,
        seal_digest: Sha256Digest,
        vu_prefix: &'a str,
        pairs: &'a [Pair],
    }
    let doc = Doc {
        system: &topology.system,
        manifest: manifest.identity(),
        seal_digest,
        vu_prefix: &topology.vu_prefix,
        pairs: &topology.pairs,
    };
    let path = out.join("pairing.json");
    let mut bytes = serde_json::to_vec_pretty(&doc)
        .expect("serializing plain data (string keys, no failing Serialize impl) cannot fail");
    bytes.push(b'\n');
    place::write_atomic(&path, &bytes)?;
    Ok(path)
}

impl LayoutPlan {
    /// True when some VU folder will be written.
    pub fn writes(&self) -> bool {
        self.vus.iter().any(|v| v.action.writes())
    }

    /// The seal digest of VU folders that already match, if any.
    pub fn matching_seal(&self) -> Option<Sha256Digest> {
        self.vus
            .iter()
            .filter(|v| v.found == Found::Matches)
            .find_map(|v| Seal::read(&v.path).ok().map(|s| s.digest))
    }

    /// The report of this plan before anything is done (what `--dry-run` shows).
    pub fn report(&self, manifest: &Manifest) -> LayoutReport {
        LayoutReport {
            manifest: manifest.name.clone(),
            seal_digest: None,
            vus: self.vus.clone(),
            written: 0,
            left: self
                .vus
                .iter()
                .filter(|v| v.action == Action::Leave)
                .count(),
            pairing_file: None,
            dry_run: self.dry_run,
        }
    }
}

impl LayoutReport {
    /// The pairing table with what happened to each VU, and a summary line.
    pub fn render(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .vus
            .iter()
            .map(|v| {
                [
                    v.pair.node.clone(),
                    v.pair.core.clone(),
                    v.pair.vu.clone(),
                    v.pair.external_python_directory.to_string(),
                    v.action.past(self.dry_run).to_string(),
                ]
            })
            .collect();
        let mut out = render_table(
            &["node", "core", "VU", "External Python Directory", "status"],
            &rows,
        );
        for v in self
            .vus
            .iter()
            .filter(|v| v.action == Action::Leave || v.action == Action::Repair)
        {
            let why = match &v.found {
                Found::Damaged { summary } => format!("differs from its seal: {summary}"),
                Found::Foreign => "holds files extpy did not put there (no seal)".to_string(),
                _ => continue,
            };
            out.push_str(&format!("{} {}: {why}\n", v.pair.vu, v.path.display()));
        }
        let kept = self.vus.iter().filter(|v| v.action == Action::Keep).count();
        if self.dry_run {
            let would = self.vus.iter().filter(|v| v.action.writes()).count();
            out.push_str(&format!(
                "dry run: {} would be written, {kept} already match; nothing was changed\n",
                plural(would, "VU folder")
            ));
        } else if self.written == 0 && self.left == 0 {
            out.push_str(&format!(
                "nothing to do: all {} already match seal {}\n",
                plural(kept, "VU folder"),
                short(self.seal_digest)
            ));
        } else {
            out.push_str(&format!(
                "{} written and verified against seal {}, {kept} unchanged{}\n",
                plural(self.written, "VU folder"),
                short(self.seal_digest),
                if self.left > 0 {
                    format!(", {} left as they are (use --repair)", self.left)
                } else {
                    String::new()
                }
            ));
        }
        if let Some(p) = &self.pairing_file {
            out.push_str(&format!("pairing written to {}\n", p.display()));
        }
        out
    }
}

fn short(d: Option<Sha256Digest>) -> String {
    d.map(|d| d.short()).unwrap_or_else(|| "-".into())
}

/// The check of one VU (`extpy verify --topology`).
#[derive(Debug, Clone, Serialize)]
pub struct VuCheck {
    /// The core, VU and Windows paths.
    #[serde(flatten)]
    pub pair: Pair,
    /// The local folder checked.
    pub path: PathBuf,
    /// True when it holds this manifest's distribution, matching its seal.
    pub ok: bool,
    /// What it holds.
    pub found: Found,
    /// The seal digest found, if any.
    pub seal_digest: Option<Sha256Digest>,
}

/// Checks every VU of the targets (the vendor's "verify that the Python distribution was
/// copied to the VU folder").
pub fn check(
    topology: &Topology,
    targets: &[NodeTarget],
    manifest: &Manifest,
    jobs: usize,
) -> Result<Vec<VuCheck>, LayoutError> {
    let mut out = Vec::new();
    for t in targets {
        for pair in topology.pairs_of(&t.node.name) {
            let path = vu_dir(&t.root, &pair.vu);
            let found = inspect(&path, manifest, jobs)?;
            let seal_digest = Seal::read(&path).ok().map(|s| s.digest);
            out.push(VuCheck {
                pair: pair.clone(),
                path,
                ok: found == Found::Matches,
                found,
                seal_digest,
            });
        }
    }
    Ok(out)
}

/// One line per VU.
pub fn render_checks(checks: &[VuCheck]) -> String {
    let mut out = String::new();
    for c in checks {
        let (tag, what) = match &c.found {
            Found::Matches => (
                "ok  ",
                format!(
                    "matches seal {}",
                    c.seal_digest.map(|d| d.short()).unwrap_or_default()
                ),
            ),
            Found::Absent => (
                "FAIL",
                "missing: no distribution in the VU folder".to_string(),
            ),
            Found::Outdated { manifest } => {
                ("FAIL", format!("holds another distribution ({manifest})"))
            }
            Found::Damaged { summary } => ("FAIL", format!("differs from its seal: {summary}")),
            Found::Foreign => ("FAIL", "holds files without an extpy seal".to_string()),
        };
        out.push_str(&format!(
            "{tag}  {} {} ({}) {}: {what}\n",
            c.pair.node,
            c.pair.vu,
            c.pair.core,
            c.path.display()
        ));
    }
    out
}
