//! Laying out the `ExternalPythonN` VU folders: for every core, `<root>\<VU>\Python\External`
//! holding the sealed distribution, each copy verified against the seal and renamed into
//! place only when it matched. Decide first (what each VU folder holds and needs), then act.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use serde::Serialize;

use crate::base::exit::ExitCode;
use crate::base::report::{Reporter, plural};
use crate::job::assemble::seal::{
    self, DestState, SEAL_FILE, Seal, SealError, SealedFile, Verification, VerifyOptions,
    dest_state, native,
};
use crate::mechanism::digest::Sha256Digest;
use crate::mechanism::fsio::{IoError, at};
use crate::mechanism::place::{self, PlaceError, Staging};
use crate::model::manifest::{Manifest, PythonVersion};
use crate::model::topology::{Node, Pair, Topology, render_table};
use crate::model::winver::{self, WindowsVersion};

/// Why a layout failed.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// The nodes or folders asked for do not fit the topology.
    #[error("{0}")]
    Selection(String),
    /// A node's Windows cannot run the manifest's CPython.
    #[error("{0}")]
    OsGate(String),
    /// The distribution to copy does not match its own seal.
    #[error("the distribution {} does not match its seal ({}); rebuild it with `extpy build`", path.display(), summary)]
    BadDistribution {
        /// The folder.
        path: PathBuf,
        /// What differs.
        summary: String,
    },
    /// A given distribution matches its own seal, but that is not the seal its manifest
    /// produces.
    #[error("the distribution {} matches its own seal, but not the seal {manifest} produces ({summary}): it was changed and resealed, or built from other inputs; nothing was laid out\n  help: rebuild it with `extpy build` (or lay out without --dist); --trust-dist-seal copies it on its own seal", path.display())]
    NotAsBuilt {
        /// The folder.
        path: PathBuf,
        /// The manifest's identity.
        manifest: String,
        /// The files that differ.
        summary: String,
    },
    /// The seal a given distribution must hold is unknown here.
    #[error("the distribution {} was checked against its own seal only: the artifacts of {manifest} are not in the cache (--offline), so the seal they produce is unknown; nothing was laid out\n  help: run `extpy fetch` on a connected machine (or lay out from the bundle with --bundle); --trust-dist-seal copies the folder on its own seal", path.display())]
    OwnSealOnly {
        /// The folder.
        path: PathBuf,
        /// The manifest's identity.
        manifest: String,
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
    /// The copy a rollback would put back does not match its own seal.
    #[error("the copy kept at {} does not match its seal ({problem}), so it is not put back; nothing was rolled back\n  help: lay out the previous manifest again (`extpy layout TOPOLOGY --manifest OLD.yaml`) instead of rolling back", path.display())]
    KeptNotIntact {
        /// The kept copy.
        path: PathBuf,
        /// What differs.
        problem: String,
    },
    /// A file would have a path over MAX_PATH in its VU folder.
    #[error(transparent)]
    PathTooLong(#[from] crate::mechanism::pathlen::PathTooLong),
}

impl LayoutError {
    /// The exit code: a selection that does not fit the topology is input, a distribution
    /// or copy that does not match its seal a failed verification.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            LayoutError::Selection(_) | LayoutError::PathTooLong(_) | LayoutError::OsGate(_) => {
                ExitCode::Input
            }
            LayoutError::BadDistribution { .. }
            | LayoutError::CopyNotVerified { .. }
            | LayoutError::NotAsBuilt { .. }
            | LayoutError::KeptNotIntact { .. } => ExitCode::Verification,
            // As artifacts missing with --offline are.
            LayoutError::OwnSealOnly { .. } => ExitCode::Network,
            LayoutError::Place(p) => p.exit_code(),
            LayoutError::Seal(s) => s.exit_code(),
            LayoutError::Io(e) => e.exit_code(),
        }
    }
}

/// Where one node's VU folders go on this machine.
#[derive(Debug, Clone)]
pub(crate) struct NodeTarget {
    /// The node.
    pub node: Node,
    /// The local folder that holds its VU folders.
    pub root: PathBuf,
    /// That folder as the node sees it: the topology's `vu_root`, or `--vu-root` (where the
    /// tree is used, so where its path length counts).
    pub on_node: String,
}

impl NodeTarget {
    /// A VU's `Python\External` folder as the node sees it.
    pub(crate) fn vu_dir_on_node(&self, vu: &str) -> String {
        if self.on_node.contains('\\') || self.on_node.as_bytes().get(1) == Some(&b':') {
            format!(
                "{}\\{vu}\\Python\\External",
                self.on_node.trim_end_matches('\\')
            )
        } else {
            vu_dir(Path::new(&self.on_node), vu).display().to_string()
        }
    }
}

/// What a VU folder holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum Found {
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
    /// A distribution that matches its own seal, but that seal is not the one the manifest
    /// (or bundle) produces: files and seal were rewritten together.
    Resealed {
        /// The seal the manifest produces.
        expected: Sha256Digest,
        /// Which files depart from it.
        summary: String,
    },
    /// Files without a seal.
    Foreign,
}

/// What the layout does to a VU folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
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
pub(crate) struct VuPlan {
    /// The core, VU and Windows paths.
    #[serde(flatten)]
    pub pair: Pair,
    /// The local folder that receives the distribution (`…\<VU>\Python\External`).
    pub path: PathBuf,
    /// What it holds now.
    pub found: Found,
    /// What will be done.
    pub action: Action,
    /// True when the distribution it replaces is kept beside it (`--keep-previous`, for
    /// `extpy rollback`): only an outdated one that matches its own seal is.
    pub keeps_previous: bool,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LayoutPlan {
    /// Every VU of the selected nodes.
    pub vus: Vec<VuPlan>,
    /// True for `--dry-run`.
    pub dry_run: bool,
}

/// The result of a layout.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LayoutReport {
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
pub(crate) fn targets(
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
            let on_node = match vu_root {
                Some(r) => std::path::absolute(r)
                    .unwrap_or_else(|_| r.to_path_buf())
                    .display()
                    .to_string(),
                None => n.vu_root.to_string(),
            };
            Ok(NodeTarget {
                node: n.clone(),
                root,
                on_node,
            })
        })
        .collect()
}

/// The OS gate of a layout: every target node's Windows version must run the manifest's
/// CPython. A node's version is `running` (this machine's, when laying out on the node
/// itself) or else its `os:` in the topology; the warnings name the nodes whose version is
/// unknown. A refusal names each node that cannot run it and what to do.
pub(crate) fn os_gate(
    python: PythonVersion,
    manifest: &str,
    targets: &[NodeTarget],
    running: Option<WindowsVersion>,
) -> Result<Vec<String>, LayoutError> {
    let mut refused = Vec::new();
    let mut unknown = Vec::new();
    for t in targets {
        let (os, whence) = match (running, &t.node.os) {
            (Some(r), _) => (r, "this machine runs".to_string()),
            (None, Some(os)) => (os.version, format!("os: {:?} in the topology:", os.given)),
            (None, None) => {
                unknown.push(t.node.name.clone());
                continue;
            }
        };
        if let Err(why) = winver::check(python, os) {
            refused.push(format!("node {} ({whence} {os}): {why}", t.node.name));
        }
    }
    if !refused.is_empty() {
        let min = winver::minimum(python).map_or("a newer Windows", |m| m.products);
        return Err(LayoutError::OsGate(format!(
            "{manifest} cannot be laid out: {}\n  help: keep these nodes on a manifest of a CPython line that runs there (the 3.12 manifest, manifests/python-3.12-win-amd64.yaml) until they run {min} or newer; lay out the other nodes with --node NAME",
            refused.join("; ")
        )));
    }
    Ok(if unknown.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "the Windows version of node{} {} is unknown, so extpy cannot check that it runs CPython {}.{}; add os: (for example os: Server 2019) to {} in the topology",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", "),
            python.major,
            python.minor,
            if unknown.len() == 1 {
                "that node"
            } else {
                "those nodes"
            }
        )]
    })
}

/// The local folder of a VU's distribution under a node root.
pub(crate) fn vu_dir(root: &Path, vu: &str) -> PathBuf {
    root.join(vu).join("Python").join("External")
}

/// Looks at what a VU folder holds (hashing it against its seal, and comparing that seal with
/// `expected`, the seal the manifest or bundle produces, when known), changing nothing.
pub(crate) fn inspect(
    dir: &Path,
    manifest: &Manifest,
    expected: Option<&Seal>,
    jobs: usize,
) -> Result<Found, LayoutError> {
    match dest_state(dir) {
        DestState::Absent | DestState::Empty => return Ok(Found::Absent),
        DestState::Foreign => return Ok(Found::Foreign),
        DestState::NotAFolder => {
            return Err(PlaceError::not_a_folder(dir.to_path_buf()).into());
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
    let found = match Seal::read(dir) {
        Ok(s) => s,
        Err(SealError::Corrupt { reason, .. }) => return Ok(Found::Damaged { summary: reason }),
        Err(e) => return Err(e.into()),
    };
    let outdated = || Found::Outdated {
        manifest: format!("{}@{}", found.manifest.name, found.manifest.sha256.short()),
    };
    Ok(match expected {
        Some(e) if found.digest == e.digest => Found::Matches,
        Some(e) if found.manifest.sha256 != e.manifest.sha256 => outdated(),
        Some(e) => Found::Resealed {
            expected: e.digest,
            summary: deviation_summary(&seal::deviations(e, &found)),
        },
        None if found.manifest.sha256 == manifest.digest => Found::Matches,
        None => outdated(),
    })
}

/// One line on which files depart from the expected seal.
fn deviation_summary(d: &[seal::Deviation]) -> String {
    let shown: Vec<String> = d
        .iter()
        .take(3)
        .map(|d| format!("{} {}", d.path, d.what))
        .collect();
    format!(
        "{}{}",
        shown.join(", "),
        if d.len() > 3 { ", ..." } else { "" }
    )
}

/// One line on what differs.
pub(crate) fn summary(v: &Verification) -> String {
    let mut parts = Vec::new();
    if v.seal_altered {
        parts.push("seal altered".to_string());
    }
    for (n, what) in [
        (v.changed.len(), "changed"),
        (v.missing.len(), "missing"),
        (v.extra.len(), "extra"),
        (v.replaced.len(), "replaced"),
        (v.not_as_built.len(), "not as the manifest builds"),
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
        .or_else(|| v.extra.first().cloned())
        .or_else(|| v.replaced.first().map(|r| r.path.clone()));
    match first {
        Some(f) => format!(
            "{}: {f}{}",
            parts.join(", "),
            if parts.len() > 1
                || v.changed.len() + v.missing.len() + v.extra.len() + v.replaced.len() > 1
            {
                ", ..."
            } else {
                ""
            }
        ),
        None => parts.join(", "),
    }
}

/// Decides what to do with every VU of the targets, comparing each with `expected` (the
/// seal the manifest or bundle produces) when known.
pub(crate) fn plan(
    topology: &Topology,
    targets: &[NodeTarget],
    manifest: &Manifest,
    expected: Option<&Seal>,
    repair: bool,
    dry_run: bool,
    jobs: usize,
) -> Result<LayoutPlan, LayoutError> {
    let mut vus = Vec::new();
    for t in targets {
        for pair in topology.pairs_of(&t.node.name) {
            let path = vu_dir(&t.root, &pair.vu);
            let found = inspect(&path, manifest, expected, jobs)?;
            let action = match &found {
                Found::Absent => Action::Create,
                Found::Matches => Action::Keep,
                Found::Outdated { .. } => Action::Update,
                Found::Damaged { .. } | Found::Resealed { .. } | Found::Foreign if repair => {
                    Action::Repair
                }
                Found::Damaged { .. } | Found::Resealed { .. } | Found::Foreign => Action::Leave,
            };
            if let (true, Some(seal)) = (action.writes(), expected) {
                let rels = seal
                    .files
                    .iter()
                    .map(|f| f.path.as_str())
                    .chain([seal::SEAL_FILE]);
                crate::mechanism::pathlen::preflight(
                    &t.vu_dir_on_node(&pair.vu),
                    rels,
                    crate::mechanism::pathlen::LongPaths::here(Some(t.node.long_paths)),
                    Some(u32::from(manifest.python.minor)),
                )?;
            }
            vus.push(VuPlan {
                pair: pair.clone(),
                path,
                found,
                action,
                keeps_previous: false,
            });
        }
    }
    Ok(LayoutPlan { vus, dry_run })
}

/// Carries out the plan: copies `dist` (sealed by `seal`) into every VU that needs it, in
/// parallel; each copy is verified against the seal before it is renamed into place.
pub(crate) fn execute(
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
    let paths: Vec<&Path> = work.iter().map(|v| v.path.as_path()).collect();
    let keep: Vec<bool> = work.iter().map(|v| v.keeps_previous).collect();
    let results = copy_verified(dist, seal, &paths, &keep, jobs, reporter);
    bar.finish_and_clear();
    for (v, r) in work.iter().zip(results) {
        r?;
        reporter.detail(format!(
            "{} {} ({}){}",
            v.action.past(false),
            v.pair.vu,
            v.path.display(),
            if v.keeps_previous {
                format!(
                    "; the previous copy is kept at {}",
                    place::kept_path(&v.path).display()
                )
            } else {
                String::new()
            }
        ));
        report.written += 1;
    }
    Ok(report)
}

/// Files at least this large are written into the targets by every worker at once (one task
/// per target), so that one large file does not keep a single core busy while the others
/// have finished the small ones.
const SHARED_FROM: u64 = 1 << 20;
/// How much of a file is written, or read back and compared, at a time. Reading back into a
/// buffer each worker reuses allocates nothing; writing each file whole (one 9.9 MB write)
/// made the whole layout take twice the CPU time on ext4 (see the guide's Performance page).
const CHUNK: usize = 256 * 1024;

/// Copies the sealed files of `dist` into every one of `targets` at once, each through a
/// sibling folder renamed into place only when all its files matched.
///
/// Each file is read once and checked against the seal (size and sha256); those very bytes
/// are written into every target, and each written file is read back and compared with
/// them. So the source is hashed once, not once per copy, and every copy is verified byte
/// for byte against bytes that matched the seal. One result per target, in order. Where
/// `keep[i]` is true, the folder target `i` held is kept beside it instead of deleted.
pub(crate) fn copy_verified(
    dist: &Path,
    seal: &Seal,
    targets: &[&Path],
    keep: &[bool],
    jobs: usize,
    reporter: &Reporter,
) -> Vec<Result<(), LayoutError>> {
    let stagings: Vec<Result<Staging, LayoutError>> = targets
        .iter()
        .map(|t| Staging::begin_locked(t, reporter).map_err(LayoutError::from))
        .collect();
    let failed: Vec<Mutex<Option<LayoutError>>> =
        targets.iter().map(|_| Mutex::default()).collect();
    let mut folders: Vec<&str> = seal
        .files
        .iter()
        .filter_map(|f| f.path.rsplit_once('/').map(|(d, _)| d))
        .collect();
    folders.sort_unstable();
    folders.dedup();
    for (i, staging) in stagings.iter().enumerate() {
        let Ok(staging) = staging else { continue };
        for f in &folders {
            let p = native(staging.path(), f);
            if let Err(source) = fs::create_dir_all(&p) {
                fail(
                    &failed[i],
                    IoError::new(p, "cannot create the folder", source).into(),
                );
                break;
            }
        }
    }
    let mut files: Vec<(&str, Option<&SealedFile>)> = seal
        .files
        .iter()
        .map(|f| (f.path.as_str(), Some(f)))
        .chain([(SEAL_FILE, None)])
        .collect();
    // Largest first: a large file fans out to every worker early, small ones fill the end.
    files.sort_by_key(|(_, f)| std::cmp::Reverse(f.map_or(0, |f| f.size)));
    let copier = Copier {
        dist,
        seal,
        targets,
        stagings: &stagings,
        failed: &failed,
        source_failed: Mutex::default(),
        queue: Mutex::new(Queue {
            tasks: files.into_iter().map(|(r, f)| Task::Source(r, f)).collect(),
            running: 0,
        }),
        wake: Condvar::new(),
    };
    let workers = crate::local_jobs(jobs);
    if workers == 1 {
        copier.work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| copier.work());
            }
        });
    }
    let source_failed = copier.source_failed.into_inner().ok().flatten();
    stagings
        .into_iter()
        .zip(failed)
        .enumerate()
        .map(|(i, (staging, failed))| {
            let staging = staging?;
            if let Some(e) = &source_failed {
                return Err(LayoutError::BadDistribution {
                    path: dist.to_path_buf(),
                    summary: e.clone(),
                });
            }
            if let Some(e) = failed.into_inner().ok().flatten() {
                return Err(e);
            }
            if keep.get(i).copied().unwrap_or(false) {
                staging.commit_keeping()?;
            } else {
                staging.commit()?;
            }
            Ok(())
        })
        .collect()
}

/// Records the first failure of a target.
fn fail(slot: &Mutex<Option<LayoutError>>, e: LayoutError) {
    if let Ok(mut slot) = slot.lock() {
        slot.get_or_insert(e);
    }
}

/// One piece of [`copy_verified`]'s work.
enum Task<'a> {
    /// Read one source file and check it against the seal; a small one is then written into
    /// every target by the same worker, a large one becomes one [`Task::Copy`] per target.
    Source(&'a str, Option<&'a SealedFile>),
    /// Write a large file, already checked against the seal, into one target.
    Copy {
        rel: &'a str,
        bytes: Arc<Vec<u8>>,
        target: usize,
    },
}

/// The tasks not yet started, and how many are running (a running [`Task::Source`] may add
/// [`Task::Copy`] tasks, so an empty queue is the end only when nothing runs).
struct Queue<'a> {
    tasks: VecDeque<Task<'a>>,
    running: usize,
}

/// What the workers of [`copy_verified`] share.
struct Copier<'a> {
    dist: &'a Path,
    seal: &'a Seal,
    targets: &'a [&'a Path],
    stagings: &'a [Result<Staging, LayoutError>],
    failed: &'a [Mutex<Option<LayoutError>>],
    /// Why the source did not match its seal: then nothing more is written anywhere.
    source_failed: Mutex<Option<String>>,
    queue: Mutex<Queue<'a>>,
    wake: Condvar,
}

/// Marks a task finished when dropped, even by a panic, so no worker waits for it forever.
struct Running<'c, 'a>(&'c Copier<'a>);

impl Drop for Running<'_, '_> {
    fn drop(&mut self) {
        let mut q = self.0.lock_queue();
        q.running -= 1;
        if q.running == 0 && q.tasks.is_empty() {
            self.0.wake.notify_all();
        }
    }
}

impl<'a> Copier<'a> {
    /// One worker: takes tasks until none is left, with buffers it reuses for every file.
    fn work(&self) {
        let mut source = Vec::new();
        let mut back = vec![0; CHUNK];
        while let Some(task) = self.next() {
            let _running = Running(self);
            match task {
                Task::Source(rel, Some(f)) if f.size >= SHARED_FROM => {
                    // Its own buffer, shared by the copy tasks and freed by the last one.
                    let mut own = Vec::new();
                    let Some(n) = self.read_source(rel, Some(f), &mut own) else {
                        continue;
                    };
                    own.truncate(n);
                    let bytes = Arc::new(own);
                    let copies = (0..self.targets.len()).map(|target| Task::Copy {
                        rel,
                        bytes: Arc::clone(&bytes),
                        target,
                    });
                    self.push_front(copies);
                }
                Task::Source(rel, entry) => {
                    let Some(n) = self.read_source(rel, entry, &mut source) else {
                        continue;
                    };
                    for target in 0..self.targets.len() {
                        self.write(target, rel, &source[..n], &mut back);
                    }
                }
                Task::Copy { rel, bytes, target } => self.write(target, rel, &bytes, &mut back),
            }
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue<'a>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next task, waiting while the queue is empty but another worker may still add
    /// some; `None` when all is done, or the source failed.
    fn next(&self) -> Option<Task<'a>> {
        let mut q = self.lock_queue();
        loop {
            if self.source_has_failed() {
                q.tasks.clear();
            }
            if let Some(task) = q.tasks.pop_front() {
                q.running += 1;
                return Some(task);
            }
            if q.running == 0 {
                return None;
            }
            q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Puts `tasks` at the front of the queue, in order, and wakes the waiting workers.
    fn push_front(&self, tasks: impl DoubleEndedIterator<Item = Task<'a>>) {
        let mut q = self.lock_queue();
        for task in tasks.rev() {
            q.tasks.push_front(task);
        }
        self.wake.notify_all();
    }

    fn source_has_failed(&self) -> bool {
        self.source_failed.lock().map_or(true, |f| f.is_some())
    }

    /// Reads a source file into `buf` and checks it; the length read, or `None` when it
    /// did not match (recorded, which stops the copy).
    fn read_source(
        &self,
        rel: &str,
        entry: Option<&SealedFile>,
        buf: &mut Vec<u8>,
    ) -> Option<usize> {
        match read_sealed(self.dist, rel, entry, self.seal, buf) {
            Ok(n) => Some(n),
            Err(e) => {
                if let Ok(mut slot) = self.source_failed.lock() {
                    slot.get_or_insert(e);
                }
                None
            }
        }
    }

    /// Writes `bytes` as `rel` into target `i` and compares its read-back, unless that
    /// target has already failed.
    fn write(&self, i: usize, rel: &str, bytes: &[u8], back: &mut [u8]) {
        let Ok(staging) = &self.stagings[i] else {
            return;
        };
        if self.failed[i].lock().map_or(true, |f| f.is_some()) || self.source_has_failed() {
            return;
        }
        let to = native(staging.path(), rel);
        if let Err(e) = write_compared(&to, rel, bytes, back, self.targets[i]) {
            fail(&self.failed[i], e);
        }
    }
}

/// One file of the distribution, read once into `buf` and checked: a sealed file against its
/// size and sha256, the seal file by parsing it to the digest of the seal being copied.
/// Returns how many bytes of `buf` it holds.
fn read_sealed(
    dist: &Path,
    rel: &str,
    entry: Option<&SealedFile>,
    seal: &Seal,
    buf: &mut Vec<u8>,
) -> Result<usize, String> {
    let path = native(dist, rel);
    let cannot_read = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut file = File::open(&path).map_err(cannot_read)?;
    match entry {
        Some(f) => {
            // One byte more than sealed, to see a file that grew.
            let limit = usize::try_from(f.size).map_or(usize::MAX, |s| s.saturating_add(1));
            let n = read_up_to(&mut file, buf, limit).map_err(cannot_read)?;
            let actual = Sha256Digest::of(&buf[..n]);
            if n as u64 != f.size || actual != f.sha256 {
                return Err(format!(
                    "{rel} changed since the distribution was checked (sha256 {actual}, sealed {})",
                    f.sha256
                ));
            }
            Ok(n)
        }
        None => {
            buf.clear();
            file.read_to_end(buf).map_err(cannot_read)?;
            match serde_json::from_slice::<Seal>(buf) {
                Ok(s) if s.digest == seal.digest && s.compute_digest() == seal.digest => {
                    Ok(buf.len())
                }
                _ => Err(format!("{rel} changed since the distribution was checked")),
            }
        }
    }
}

/// Reads `from` to its end, or up to `limit` bytes, into the start of `buf` (grown to `limit`
/// when shorter; never shrunk, so a reused buffer is not zeroed again). Returns the count.
fn read_up_to(from: &mut impl Read, buf: &mut Vec<u8>, limit: usize) -> std::io::Result<usize> {
    if buf.len() < limit {
        buf.resize(limit, 0);
    }
    let mut n = 0;
    while n < limit {
        match from.read(&mut buf[n..limit]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes `bytes` to a new file at `to`, then reads it back through `back` and compares.
fn write_compared(
    to: &Path,
    rel: &str,
    bytes: &[u8],
    back: &mut [u8],
    target: &Path,
) -> Result<(), LayoutError> {
    // A new file in a new folder: nothing of the same name is there to follow or overwrite.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(at(to, "cannot create"))?;
    for part in bytes.chunks(CHUNK) {
        file.write_all(part).map_err(at(to, "cannot write"))?;
    }
    file.seek(SeekFrom::Start(0))
        .map_err(at(to, "cannot read back"))?;
    if !reads_back_as(&mut file, bytes, back).map_err(at(to, "cannot read back"))? {
        return Err(LayoutError::CopyNotVerified {
            path: target.to_path_buf(),
            summary: format!("{rel} read back differs from what was written"),
        });
    }
    Ok(())
}

/// True when `from` holds exactly `expected` from here to its end, read a chunk (the length of
/// `chunk`) at a time and each chunk compared as it arrives.
fn reads_back_as(from: &mut impl Read, expected: &[u8], chunk: &mut [u8]) -> std::io::Result<bool> {
    let mut at = 0;
    loop {
        let n = match from.read(chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(at == expected.len());
        }
        match expected.get(at..at + n) {
            Some(want) if want == &chunk[..n] => at += n,
            _ => return Ok(false),
        }
    }
}

/// Writes `pairing.json` into `out` (through a temporary file renamed into place).
pub(crate) fn write_pairing(
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
    /// `--keep-previous`: every VU whose outdated distribution (intact under its own seal) is
    /// replaced keeps it beside it. A damaged or foreign one that `--repair` replaces is not
    /// kept: a copy kept before stays, not one that could not be rolled back to.
    pub(crate) fn keep_previous(&mut self) {
        for v in &mut self.vus {
            v.keeps_previous = v.action == Action::Update;
        }
    }

    /// True when some VU folder will be written.
    pub(crate) fn writes(&self) -> bool {
        self.vus.iter().any(|v| v.action.writes())
    }

    /// The seal digest of VU folders that already match, if any.
    pub(crate) fn matching_seal(&self) -> Option<Sha256Digest> {
        self.vus
            .iter()
            .filter(|v| v.found == Found::Matches)
            .find_map(|v| Seal::read(&v.path).ok().map(|s| s.digest))
    }

    /// The report of this plan before anything is done (what `--dry-run` shows).
    pub(crate) fn report(&self, manifest: &Manifest) -> LayoutReport {
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
    pub(crate) fn render(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .vus
            .iter()
            .map(|v| {
                [
                    v.pair.node.clone(),
                    v.pair.core.clone(),
                    v.pair.vu.clone(),
                    v.pair.external_python_directory.to_string(),
                    if v.keeps_previous {
                        format!("{}, previous kept", v.action.past(self.dry_run))
                    } else {
                        v.action.past(self.dry_run).to_string()
                    },
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
                Found::Resealed { expected, summary } => resealed_words(*expected, summary),
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

/// Why a resealed VU fails.
fn resealed_words(expected: Sha256Digest, summary: &str) -> String {
    format!(
        "matches its own seal, but that is not the seal {} the manifest produces ({summary}): files and seal were rewritten",
        expected.short()
    )
}

fn short(d: Option<Sha256Digest>) -> String {
    d.map(|d| d.short()).unwrap_or_else(|| "-".into())
}

/// The check of one VU (`extpy verify --topology`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct VuCheck {
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
    /// The seal the manifest (or bundle) produces.
    pub expected_seal_digest: Sha256Digest,
    /// What is in place, as its seal names it.
    pub in_place: Option<Sealed>,
    /// The copy `--keep-previous` kept, if any.
    pub previous: Option<Kept>,
    /// The seal's signature, when it was checked (`--trusted-key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<seal::SealSignature>,
}

/// A distribution as its seal names it (`verify --topology`, `rollback`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Sealed {
    /// The manifest name in its seal.
    pub manifest: String,
    /// The CPython version in its seal.
    pub python: String,
    /// Its seal's digest.
    pub seal_digest: Sha256Digest,
}

impl Sealed {
    /// What the seal in `dir` names, or `None` without a readable seal.
    pub(crate) fn read(dir: &Path) -> Option<Self> {
        Seal::read(dir).ok().map(|s| Self::of(&s))
    }

    fn of(seal: &Seal) -> Self {
        Self {
            manifest: seal.manifest.name.clone(),
            python: seal.python.version.to_string(),
            seal_digest: seal.digest,
        }
    }

    fn words(&self) -> String {
        format!(
            "{} (CPython {}, seal {})",
            self.manifest,
            self.python,
            self.seal_digest.short()
        )
    }
}

/// The copy `layout --keep-previous` kept beside a VU folder, checked against its own seal.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Kept {
    /// The folder (`...\Python\External.previous`).
    pub path: PathBuf,
    /// What its seal names, when readable.
    pub sealed: Option<Sealed>,
    /// True when it matches its seal, so `extpy rollback` can put it back.
    pub intact: bool,
    /// What is wrong with it, when not intact.
    pub problem: Option<String>,
}

impl Kept {
    /// The copy kept beside the VU folder `vu`, or `None` when nothing is kept.
    pub(crate) fn check(vu: &Path, jobs: usize) -> Result<Option<Self>, LayoutError> {
        let path = place::kept_path(vu);
        let broken = |path: PathBuf, sealed, problem: String| Kept {
            path,
            sealed,
            intact: false,
            problem: Some(problem),
        };
        match dest_state(&path) {
            DestState::Absent => return Ok(None),
            DestState::NotAFolder => {
                return Ok(Some(broken(path, None, "not a folder".into())));
            }
            DestState::Empty | DestState::Foreign => {
                return Ok(Some(broken(path, None, format!("holds no {SEAL_FILE}"))));
            }
            DestState::Sealed => {}
        }
        let seal = match Seal::read(&path) {
            Ok(s) => s,
            Err(SealError::Corrupt { reason, .. }) => {
                return Ok(Some(broken(
                    path,
                    None,
                    format!("its seal cannot be read: {reason}"),
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let v = seal::verify(
            &path,
            VerifyOptions {
                jobs,
                strict: false,
            },
        )?;
        let sealed = Some(Sealed::of(&seal));
        Ok(Some(if v.ok {
            Kept {
                path,
                sealed,
                intact: true,
                problem: None,
            }
        } else {
            broken(path, sealed, summary(&v))
        }))
    }

    fn words(&self) -> String {
        let what = self
            .sealed
            .as_ref()
            .map_or("a folder".to_string(), Sealed::words);
        match &self.problem {
            None => format!("{what} at {}, matching its seal", self.path.display()),
            Some(p) => format!(
                "{what} at {}, which DIFFERS from its seal ({p}): `extpy rollback` refuses it",
                self.path.display()
            ),
        }
    }
}

/// Checks every VU of the targets (the vendor's "verify that the Python distribution was
/// copied to the VU folder") against its own seal and against `expected`, the seal the
/// manifest or bundle produces.
pub(crate) fn check(
    topology: &Topology,
    targets: &[NodeTarget],
    manifest: &Manifest,
    expected: &Seal,
    jobs: usize,
) -> Result<Vec<VuCheck>, LayoutError> {
    let mut out = Vec::new();
    for t in targets {
        for pair in topology.pairs_of(&t.node.name) {
            let path = vu_dir(&t.root, &pair.vu);
            let found = inspect(&path, manifest, Some(expected), jobs)?;
            let seal_digest = Seal::read(&path).ok().map(|s| s.digest);
            let in_place = Sealed::read(&path);
            let previous = Kept::check(&path, jobs)?;
            out.push(VuCheck {
                in_place,
                previous,
                pair: pair.clone(),
                path,
                ok: found == Found::Matches,
                found,
                seal_digest,
                expected_seal_digest: expected.digest,
                signature: None,
            });
        }
    }
    Ok(out)
}

/// One line per VU.
pub(crate) fn render_checks(checks: &[VuCheck]) -> String {
    let mut out = String::new();
    for c in checks {
        let (tag, what) = match &c.found {
            Found::Matches => (
                "ok  ",
                format!(
                    "matches seal {}, the seal the manifest produces",
                    c.seal_digest.map(|d| d.short()).unwrap_or_default()
                ),
            ),
            Found::Resealed { expected, summary } => ("FAIL", resealed_words(*expected, summary)),
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
        let tag = if c.ok { tag } else { "FAIL" };
        out.push_str(&format!(
            "{tag}  {} {} ({}) {}: {what}\n",
            c.pair.node,
            c.pair.vu,
            c.pair.core,
            c.path.display()
        ));
        if let Some(s) = &c.in_place {
            out.push_str(&format!("      in place: {}\n", s.words()));
        }
        match &c.signature {
            Some(seal::SealSignature {
                problem: Some(p), ..
            }) => out.push_str(&format!("      signature: {p}\n")),
            Some(seal::SealSignature {
                key_id: Some(id), ..
            }) => out.push_str(&format!("      seal signed by trusted key {id}\n")),
            _ => {}
        }
        match &c.previous {
            Some(p) => out.push_str(&format!("      previous copy kept: {}\n", p.words())),
            None => out.push_str("      no previous copy kept\n"),
        }
    }
    out
}

/// What `extpy rollback` did to one VU.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RolledBackVu {
    /// The core, VU and Windows paths.
    #[serde(flatten)]
    pub pair: Pair,
    /// The local folder.
    pub path: PathBuf,
    /// Rolled back now, or an interrupted rollback finished.
    pub outcome: place::RolledBack,
    /// What is in place now.
    pub in_place: Option<Sealed>,
}

/// Puts back, in every VU of the targets, the copy `layout --keep-previous` kept. Every VU
/// is checked first, and nothing changes unless all can be rolled back: one with nothing
/// kept is refused (exit 2), one whose kept copy differs from its seal too (exit 3).
pub(crate) fn rollback(
    topology: &Topology,
    targets: &[NodeTarget],
    jobs: usize,
    reporter: &Reporter,
) -> Result<Vec<RolledBackVu>, LayoutError> {
    let _locks = targets
        .iter()
        .map(|t| place::lock_folder(&t.root))
        .collect::<Result<Vec<_>, _>>()?;
    let mover = place::Mover::new(reporter);
    let mut steps = Vec::new();
    for t in targets {
        for pair in topology.pairs_of(&t.node.name) {
            let path = vu_dir(&t.root, &pair.vu);
            let step = place::rollback_step(&path, &mover)?;
            if let place::RollbackStep::PutBack { .. } = step
                && let Some(kept) = Kept::check(&path, jobs)?
                && !kept.intact
            {
                return Err(LayoutError::KeptNotIntact {
                    path: kept.path,
                    problem: kept.problem.unwrap_or_default(),
                });
            }
            steps.push((pair.clone(), path, step));
        }
    }
    let mut out = Vec::new();
    for (pair, path, step) in steps {
        let outcome = place::roll_back(&path, &step, &mover)?;
        reporter.detail(format!("rolled back {} ({})", pair.vu, path.display()));
        out.push(RolledBackVu {
            in_place: Sealed::read(&path),
            pair,
            path,
            outcome,
        });
    }
    Ok(out)
}

/// The rollback as people read it.
pub(crate) fn render_rollback(vus: &[RolledBackVu]) -> String {
    let mut out = String::new();
    for v in vus {
        let now = v
            .in_place
            .as_ref()
            .map_or("a folder without a seal".to_string(), Sealed::words);
        let how = match v.outcome {
            place::RolledBack::Finished => "finished an interrupted rollback",
            place::RolledBack::RolledBack => "rolled back",
        };
        out.push_str(&format!(
            "{} {} ({}): {how}; in place: {now}\n",
            v.pair.node,
            v.pair.vu,
            v.path.display()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::assemble::seal::write_sealed;

    /// A small sealed distribution in `dir`, with its SBOM.
    fn sealed_dist(dir: &Path) -> Seal {
        sealed_dist_with(dir, &[])
    }

    /// A sealed distribution in `dir` with its SBOM, a few small files and `more`.
    fn sealed_dist_with(dir: &Path, more: &[(&str, &[u8])]) -> Seal {
        fs::create_dir_all(dir.join("Lib").join("site-packages")).unwrap();
        let d = Sha256Digest::of(b"m");
        let sbom = crate::job::assemble::sbom::Subject {
            manifest: "m".into(),
            manifest_sha256: d,
            python: "3.12.10".parse().unwrap(),
            platform: crate::model::manifest::Platform::WinAmd64,
            embeddable: "e.zip".into(),
            embeddable_sha256: d,
            embeddable_provenance: None,
            packages: vec![],
        }
        .document();
        let mut files = vec![
            write_sealed(dir, "python.exe", b"MZ python").unwrap(),
            write_sealed(dir, "Lib/site-packages/a.py", &[7u8; 100_000]).unwrap(),
            write_sealed(dir, crate::job::assemble::sbom::SBOM_FILE, &sbom.to_bytes()).unwrap(),
        ];
        for (rel, bytes) in more {
            files.push(write_sealed(dir, rel, bytes).unwrap());
        }
        let seal = Seal::for_test(d, vec![], files);
        fs::write(dir.join(SEAL_FILE), seal.to_bytes()).unwrap();
        seal
    }

    fn strict(dir: &Path) -> Verification {
        seal::verify(
            dir,
            VerifyOptions {
                jobs: 1,
                strict: true,
            },
        )
        .unwrap()
    }

    #[test]
    fn every_target_gets_a_copy_that_verifies_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        let seal = sealed_dist(&dist);
        let vus: Vec<PathBuf> = (1..=3)
            .map(|i| vu_dir(&tmp.path().join("out"), &format!("ExternalPython{i}")))
            .collect();
        let targets: Vec<&Path> = vus.iter().map(PathBuf::as_path).collect();
        let results = copy_verified(&dist, &seal, &targets, &[], 4, &Reporter::silent());
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        for vu in &vus {
            let v = strict(vu);
            assert!(
                v.ok && v.seal_digest == Some(seal.digest),
                "{}",
                summary(&v)
            );
            let siblings: Vec<_> = fs::read_dir(vu.parent().unwrap()).unwrap().collect();
            assert_eq!(
                siblings.len(),
                1,
                "no temporary folder is left beside {}",
                vu.display()
            );
        }
    }

    #[test]
    fn an_edited_seal_file_is_never_copied() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        let seal = sealed_dist(&dist);
        let text = fs::read_to_string(dist.join(SEAL_FILE)).unwrap();
        fs::write(
            dist.join(SEAL_FILE),
            text.replace("python.exe", "pythonw.exe"),
        )
        .unwrap();
        let vu = vu_dir(tmp.path(), "ExternalPython1");
        let results = copy_verified(&dist, &seal, &[vu.as_path()], &[], 2, &Reporter::silent());
        assert!(
            matches!(results[0], Err(LayoutError::BadDistribution { .. })),
            "{results:?}"
        );
        assert!(!vu.exists());
    }

    #[test]
    fn a_target_that_cannot_be_written_fails_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        let seal = sealed_dist(&dist);
        let blocked = tmp.path().join("blocked");
        fs::write(&blocked, b"a file where a folder should be").unwrap();
        let bad = vu_dir(&blocked, "ExternalPython1");
        let good = vu_dir(&tmp.path().join("out"), "ExternalPython2");
        let results = copy_verified(
            &dist,
            &seal,
            &[bad.as_path(), good.as_path()],
            &[],
            2,
            &Reporter::silent(),
        );
        assert!(results[0].is_err(), "{results:?}");
        assert!(results[1].is_ok(), "{results:?}");
        assert!(strict(&good).ok);
    }

    /// Bytes that differ from place to place, so a misplaced chunk cannot compare equal.
    fn varied(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    /// A reader that hands out at most `most` bytes per read, as a file may.
    struct Trickle<'a> {
        bytes: &'a [u8],
        most: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.most).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_back_is_compared_chunk_by_chunk_to_its_last_byte() {
        let want = varied(2 * CHUNK + CHUNK / 2);
        let mut chunk = vec![0; CHUNK];
        let same = |got: &[u8], chunk: &mut [u8]| {
            reads_back_as(&mut std::io::Cursor::new(got), &want, chunk).unwrap()
        };
        assert!(same(&want, &mut chunk), "an exact copy over three chunks");
        for at in [0, CHUNK - 1, CHUNK, 2 * CHUNK + 1, want.len() - 1] {
            let mut got = want.clone();
            got[at] ^= 1;
            assert!(!same(&got, &mut chunk), "a byte changed at {at}");
        }
        assert!(!same(&want[..want.len() - 1], &mut chunk), "one byte short");
        let mut longer = want.clone();
        longer.push(0);
        assert!(!same(&longer, &mut chunk), "one byte more");
        let mut odd = Trickle {
            bytes: &want,
            most: 4093,
        };
        assert!(
            reads_back_as(&mut odd, &want, &mut chunk).unwrap(),
            "short reads that do not line up with the chunks"
        );
        let mut changed = want.clone();
        *changed.last_mut().unwrap() ^= 0x80;
        let mut odd = Trickle {
            bytes: &changed,
            most: 4093,
        };
        assert!(!reads_back_as(&mut odd, &want, &mut chunk).unwrap());
    }

    #[test]
    fn an_empty_read_back_matches_only_an_empty_file() {
        let mut chunk = vec![0; CHUNK];
        let read = |got: &[u8], want: &[u8], chunk: &mut [u8]| {
            reads_back_as(&mut std::io::Cursor::new(got), want, chunk).unwrap()
        };
        assert!(read(b"", b"", &mut chunk));
        assert!(!read(b"x", b"", &mut chunk));
        assert!(!read(b"", b"x", &mut chunk));
    }

    #[test]
    fn a_source_read_stops_one_byte_past_its_limit() {
        let bytes = varied(10_000);
        let mut buf = vec![0xaa; 20_000];
        let n = read_up_to(&mut std::io::Cursor::new(&bytes), &mut buf, 20_000).unwrap();
        assert_eq!(&buf[..n], &bytes[..], "a reused, longer buffer");
        let mut buf = Vec::new();
        let n = read_up_to(&mut std::io::Cursor::new(&bytes), &mut buf, 5_001).unwrap();
        assert_eq!(n, 5_001, "no more than the limit");
        assert_eq!(&buf[..n], &bytes[..5_001]);
    }

    #[test]
    fn large_and_empty_files_are_copied_to_every_target_and_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        // Larger than the size copied by every worker at once, and not a whole number of
        // chunks; and a file with no bytes at all.
        let large = varied(SHARED_FROM as usize + CHUNK + 3);
        let seal = sealed_dist_with(
            &dist,
            &[("Lib/big.pyd", &large), ("Lib/site-packages/empty.py", b"")],
        );
        let vus: Vec<PathBuf> = (1..=5)
            .map(|i| vu_dir(&tmp.path().join("out"), &format!("ExternalPython{i}")))
            .collect();
        let targets: Vec<&Path> = vus.iter().map(PathBuf::as_path).collect();
        let results = copy_verified(&dist, &seal, &targets, &[], 3, &Reporter::silent());
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        for vu in &vus {
            let v = strict(vu);
            assert!(v.ok, "{}", summary(&v));
            assert_eq!(fs::read(vu.join("Lib").join("big.pyd")).unwrap(), large);
            let empty = vu.join("Lib").join("site-packages").join("empty.py");
            assert_eq!(fs::metadata(empty).unwrap().len(), 0);
        }
    }

    #[test]
    fn a_source_file_changed_after_its_check_is_never_copied() {
        let large = varied(SHARED_FROM as usize + 10);
        let mut large_changed = large.clone();
        *large_changed.last_mut().unwrap() ^= 1;
        // A small file copied by one worker, a large one by all; both changed after the
        // distribution was checked, the large one keeping its size.
        for (rel, changed) in [
            ("Lib/site-packages/a.py", &b"changed"[..]),
            ("Lib/big.pyd", &large_changed),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let dist = tmp.path().join("dist");
            let seal = sealed_dist_with(&dist, &[("Lib/big.pyd", &large)]);
            fs::write(native(&dist, rel), changed).unwrap();
            let vus: Vec<PathBuf> = (1..=3)
                .map(|i| vu_dir(tmp.path(), &format!("ExternalPython{i}")))
                .collect();
            let targets: Vec<&Path> = vus.iter().map(PathBuf::as_path).collect();
            let results = copy_verified(&dist, &seal, &targets, &[], 2, &Reporter::silent());
            for (vu, r) in vus.iter().zip(&results) {
                match r {
                    Err(LayoutError::BadDistribution { summary, .. }) => {
                        assert!(summary.contains(&format!("{rel} changed")), "{summary}")
                    }
                    other => panic!("expected a refused distribution, got {other:?}"),
                }
                assert_eq!(
                    fs::read_dir(vu.parent().unwrap()).unwrap().count(),
                    0,
                    "nothing is placed from a changed distribution, no temporary folder is left beside {}",
                    vu.display()
                );
            }
        }
    }

    #[test]
    fn one_worker_copies_the_same_as_many() {
        let tmp = tempfile::tempdir().unwrap();
        let dist = tmp.path().join("dist");
        let seal = sealed_dist_with(&dist, &[("Lib/big.pyd", &varied(SHARED_FROM as usize))]);
        let vu = vu_dir(tmp.path(), "ExternalPython1");
        let results = copy_verified(&dist, &seal, &[vu.as_path()], &[], 1, &Reporter::silent());
        assert!(results[0].is_ok(), "{results:?}");
        assert!(strict(&vu).ok);
    }
}
