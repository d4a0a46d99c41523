//! Assembling the External Python: the embeddable zip extracted, every wheel installed into
//! `Lib\site-packages`, `pythonXY._pth` edited, the seal written; built beside the
//! destination and renamed into place only when complete.

pub(crate) mod contents;
pub(crate) mod pth;
pub(crate) mod requires;
pub(crate) mod sbom;
pub(crate) mod seal;
pub(crate) mod wheel;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::base::exit::ExitCode;
use crate::base::report::{Reporter, human_bytes};
use crate::mechanism::archive::{Archive, ArchiveError, Entry};
use crate::mechanism::digest::Sha256Digest;
use crate::mechanism::fsio::{IoError, at};
use crate::mechanism::place::{PlaceError, Staging};
use crate::model::manifest::{Manifest, RuntimeTrust};
pub(crate) use contents::Output;
use seal::{
    DestState, SEAL_FILE, Seal, SealManifest, SealPackage, SealPython, SealedFile, dest_state,
    native, write_sealed,
};
use wheel::{WheelError, WheelPlan};

/// Where `extpy build` puts the distribution when no destination is given (as `get-py.ps1` did).
pub(crate) const DEFAULT_DEST: &str = "contents/Python/external";

/// Why a build failed. Whatever happened, the previous destination is as it was.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The destination holds something extpy did not build.
    #[error("{} is not empty and holds no {SEAL_FILE}; extpy replaces only a folder it built, or an empty one\n  help: choose another destination, or pass --force to replace it", dest.display())]
    DestForeign {
        /// The destination.
        dest: PathBuf,
    },
    /// The embeddable zip is not what it should be.
    #[error("{file}: {reason}")]
    Embeddable {
        /// The zip's file name.
        file: String,
        /// Why.
        reason: String,
    },
    /// Two sources would write the same file.
    #[error(
        "{path} would be written by both {first} and {second}; the manifest pins overlapping packages"
    )]
    Clash {
        /// The path.
        path: String,
        /// One source.
        first: String,
        /// The other.
        second: String,
    },
    /// An archive was refused.
    /// An input the build waited for was never handed over (a fault in extpy).
    #[error(
        "{file} was not among the inputs the fetch handed over; this is a fault in extpy\n  help: run the build again, and report it if it happens again"
    )]
    NotHandedOver {
        /// The artifact's file name.
        file: String,
    },
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A file of the tree would have a path over MAX_PATH at DEST.
    #[error(transparent)]
    PathTooLong(#[from] crate::mechanism::pathlen::PathTooLong),
    /// A wheel was refused.
    #[error(transparent)]
    Wheel(#[from] WheelError),
    /// Staging or renaming failed.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl BuildError {
    /// The exit code: a destination the user chose badly is input, damaged artifacts fail
    /// verification, the rest is local.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            BuildError::DestForeign { .. }
            | BuildError::Clash { .. }
            | BuildError::PathTooLong(_) => ExitCode::Input,
            BuildError::Embeddable { .. } => ExitCode::Verification,
            BuildError::NotHandedOver { .. } => ExitCode::Local,
            BuildError::Place(p) => p.exit_code(),
            BuildError::Io(e) => e.exit_code(),
            BuildError::Archive(a) => a.exit_code(),
            BuildError::Wheel(w) => w.exit_code(),
        }
    }
}

/// The verified artifacts a build reads (from the cache or a bundle), in manifest order.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The embeddable zip.
    pub embeddable: PathBuf,
    /// The wheels, in the manifest's order.
    pub wheels: Vec<PathBuf>,
}

/// Build settings.
#[derive(Debug, Clone)]
pub(crate) struct BuildOptions {
    /// Destination folder.
    pub dest: PathBuf,
    /// Replace a destination extpy did not build.
    pub force: bool,
    /// Parallel wheel installs.
    pub jobs: usize,
}

/// What a build will do; computed before anything is written.
#[derive(Debug, Clone)]
pub(crate) struct BuildPlan {
    /// Absolute destination.
    pub dest: PathBuf,
    /// What is at the destination now.
    pub replaces: DestState,
    /// The embeddable zip.
    pub embeddable: PathBuf,
    /// Its file entries.
    pub embeddable_files: Vec<Entry>,
    /// The wheels.
    pub wheels: Vec<WheelPlan>,
    /// Requirements of the wheels that the pinned set does not meet.
    pub unmet: Vec<String>,
    /// The `.pth` hook to write (`runtime_trust: system`): its path in the tree, and its text.
    pub hook: Option<(String, &'static str)>,
}

impl BuildPlan {
    /// Every file the build writes, relative and `/`-separated.
    pub(crate) fn paths(&self) -> impl Iterator<Item = String> + '_ {
        self.embeddable_files
            .iter()
            .map(|e| e.name.clone())
            .chain(self.wheels.iter().flat_map(WheelPlan::targets))
            .chain(self.hook.iter().map(|(p, _)| p.clone()))
            .chain([sbom::SBOM_FILE.to_string(), SEAL_FILE.to_string()])
    }
}

/// A dry run's account of a plan.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlanSummary {
    /// Absolute destination.
    pub dest: PathBuf,
    /// `absent`, `empty`, `sealed` or `foreign`.
    pub dest_now: &'static str,
    /// Files the embeddable zip adds (unknown until it is in the cache).
    pub embeddable_files: Option<usize>,
    /// Per wheel: name, version, files (unknown until it is in the cache).
    pub wheels: Vec<(String, String, Option<usize>)>,
    /// Requirements of the wheels that the pinned set does not meet (checked once every
    /// wheel is in the cache).
    pub unmet_requirements: Vec<String>,
    /// Artifacts not in the cache (`file (manifest:line)`): a real run downloads them, a
    /// dry run does not.
    pub to_download: Vec<String>,
    /// Always true: nothing was written.
    pub dry_run: bool,
}

impl PlanSummary {
    /// The human rendering.
    pub(crate) fn render(&self) -> String {
        let action = match self.dest_now {
            "absent" => "create",
            _ => "replace",
        };
        let mut out = format!(
            "would {action} {} ({} now)\n",
            self.dest.display(),
            self.dest_now
        );
        let files = |n: &Option<usize>| match n {
            Some(n) => format!("{n} files"),
            None => "not in the cache yet".to_string(),
        };
        out.push_str(&format!(
            "  embeddable CPython: {}\n",
            files(&self.embeddable_files)
        ));
        for (n, v, f) in &self.wheels {
            out.push_str(&format!("  {n} {v}: {}\n", files(f)));
        }
        for u in &self.unmet_requirements {
            out.push_str(&format!("  unmet: {u}\n"));
        }
        for d in &self.to_download {
            out.push_str(&format!("  would download: {d}\n"));
        }
        if !self.to_download.is_empty() {
            out.push_str("nothing was downloaded (dry run); file counts and requirements are checked once the artifacts are in the cache (`extpy fetch`)\n");
        }
        out
    }
}

impl BuildPlan {
    /// What the plan would do, for `--dry-run`.
    pub(crate) fn summary(&self) -> PlanSummary {
        PlanSummary {
            dest: self.dest.clone(),
            dest_now: dest_now(self.replaces),
            embeddable_files: Some(self.embeddable_files.len()),
            wheels: self
                .wheels
                .iter()
                .map(|w| (w.name.clone(), w.version.clone(), Some(w.files.len())))
                .collect(),
            unmet_requirements: self.unmet.clone(),
            to_download: Vec::new(),
            dry_run: true,
        }
    }
}

fn dest_now(state: DestState) -> &'static str {
    match state {
        DestState::Absent => "absent",
        DestState::Empty => "empty",
        DestState::Sealed => "sealed",
        DestState::Foreign => "foreign",
        DestState::NotAFolder => "not a folder",
    }
}

/// What a dry run can say when some artifacts are not in the cache: the destination, the
/// pinned packages, and what a real run would download (nothing is downloaded).
pub(crate) fn summary_without_inputs(
    manifest: &Manifest,
    options: &BuildOptions,
    to_download: Vec<String>,
) -> Result<PlanSummary, BuildError> {
    let (dest, replaces) = check_dest(options)?;
    Ok(PlanSummary {
        dest,
        dest_now: dest_now(replaces),
        embeddable_files: None,
        wheels: manifest
            .wheels
            .iter()
            .map(|w| (w.filename.name.clone(), w.filename.version.clone(), None))
            .collect(),
        unmet_requirements: Vec::new(),
        to_download,
        dry_run: true,
    })
}

/// The absolute destination and what is there, refusing one the build must not replace.
fn check_dest(options: &BuildOptions) -> Result<(PathBuf, DestState), BuildError> {
    let dest = absolute_dest(&options.dest);
    let replaces = dest_state(&dest);
    match replaces {
        DestState::Foreign if !options.force => Err(BuildError::DestForeign { dest }),
        DestState::NotAFolder => Err(PlaceError::not_a_folder(dest).into()),
        _ => Ok((dest, replaces)),
    }
}

/// What a build did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BuildReport {
    /// Absolute destination.
    pub dest: PathBuf,
    /// Manifest name.
    pub manifest: String,
    /// Manifest digest.
    pub manifest_sha256: Sha256Digest,
    /// CPython version.
    pub python: String,
    /// Platform.
    pub platform: String,
    /// Installed packages.
    pub packages: Vec<SealPackage>,
    /// Files in the distribution (without the seal).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The seal digest.
    pub seal_digest: Sha256Digest,
    /// True when a previous distribution was replaced.
    pub replaced: bool,
    /// Requirements of the wheels that the pinned set does not meet (the build still ran).
    pub unmet_requirements: Vec<String>,
    /// What requests and msal trust at run time: `certifi` or `system`.
    pub runtime_trust: RuntimeTrust,
}

/// The absolute destination as the user will see it.
pub(crate) fn absolute_dest(dest: &Path) -> PathBuf {
    std::path::absolute(dest).unwrap_or_else(|_| dest.to_path_buf())
}

/// Decides everything a build does, reading the archives but writing nothing.
pub(crate) fn plan(
    manifest: &Manifest,
    inputs: &Inputs,
    options: &BuildOptions,
) -> Result<BuildPlan, BuildError> {
    let (dest, replaces) = check_dest(options)?;
    let plan = plan_at(manifest, inputs, options.jobs, dest, replaces)?;
    check_paths(&plan, manifest)?;
    Ok(plan)
}

/// Refuses a plan whose longest path at its destination is over MAX_PATH, unless this
/// machine has long paths enabled (a build runs where the tree is used, or its tree is
/// copied to the same path).
fn check_paths(plan: &BuildPlan, manifest: &Manifest) -> Result<(), BuildError> {
    use crate::mechanism::pathlen::{LongPaths, preflight};
    let rels: Vec<String> = plan.paths().collect();
    preflight(
        &plan.dest.display().to_string(),
        rels.iter().map(String::as_str),
        LongPaths::here(None),
        Some(u32::from(manifest.python.minor)),
    )?;
    Ok(())
}

/// The seal a build of `manifest` from `inputs` writes, computed without writing anything:
/// every file is decompressed and hashed as a build would write it. Builds are byte-identical
/// for the same inputs, so a tree whose seal differs from this one was not built from them
/// as it stands, however consistent its own seal is.
pub(crate) fn expected_seal(
    manifest: &Manifest,
    inputs: &Inputs,
    jobs: usize,
) -> Result<Seal, BuildError> {
    let plan = plan_at(manifest, inputs, jobs, PathBuf::new(), DestState::Absent)?;
    produce(&plan, manifest, Output::SealOnly, jobs, &Reporter::silent())
}

/// Every file a build of `manifest` from `inputs` writes (relative, `/`-separated), read
/// from the archives' directories without writing or decompressing anything.
pub(crate) fn tree_files(
    manifest: &Manifest,
    inputs: &Inputs,
    jobs: usize,
) -> Result<Vec<String>, BuildError> {
    let plan = plan_at(manifest, inputs, jobs, PathBuf::new(), DestState::Absent)?;
    Ok(plan.paths().collect())
}

/// The plan for a destination already checked.
fn plan_at(
    manifest: &Manifest,
    inputs: &Inputs,
    jobs: usize,
    dest: PathBuf,
    replaces: DestState,
) -> Result<BuildPlan, BuildError> {
    let embeddable_files = plan_embeddable(manifest, &inputs.embeddable)?;
    let wheels = wheel::plan_all(manifest, &inputs.wheels, jobs)?;
    let (unmet, hook) = check_sources(manifest, &embeddable_files, &wheels)?;
    Ok(BuildPlan {
        dest,
        replaces,
        embeddable: inputs.embeddable.clone(),
        embeddable_files,
        wheels,
        unmet,
        hook,
    })
}

/// The files of the embeddable zip, refused when it is not the embeddable CPython.
fn plan_embeddable(manifest: &Manifest, path: &Path) -> Result<Vec<Entry>, BuildError> {
    let embed_file = &manifest.embeddable.file;
    let embed = Archive::open(path, &format!("embeddable zip {embed_file}"))?;
    let pth = manifest.python.pth_name();
    let embeddable_files: Vec<Entry> = embed.files().cloned().collect();
    if !embeddable_files.iter().any(|e| e.name == pth) {
        return Err(BuildError::Embeddable {
            file: embed_file.clone(),
            reason: format!(
                "it has no {pth} at its root; this is not the embeddable CPython {}",
                manifest.python
            ),
        });
    }
    if embeddable_files
        .iter()
        .any(|e| e.name.eq_ignore_ascii_case(SEAL_FILE))
    {
        return Err(BuildError::Embeddable {
            file: embed_file.clone(),
            reason: format!("it contains {SEAL_FILE}"),
        });
    }
    Ok(embeddable_files)
}

/// Files extpy itself writes, which no source may bring.
fn own_files() -> HashMap<String, String> {
    HashMap::from([
        (SEAL_FILE.to_lowercase(), "the seal".to_string()),
        (sbom::SBOM_FILE.to_lowercase(), "the SBOM".to_string()),
    ])
}

/// The `.pth` hook `runtime_trust: system` writes: its path in the tree, and its text.
type Hook = Option<(String, &'static str)>;

/// Checks the sources against each other: no two may write one file (compared as Windows
/// would: ignoring case). Returns the wheels' requirements the pinned set does not meet, and
/// the hook to write.
fn check_sources(
    manifest: &Manifest,
    embeddable_files: &[Entry],
    wheels: &[WheelPlan],
) -> Result<(Vec<String>, Hook), BuildError> {
    let embed_file = &manifest.embeddable.file;
    let mut owners = own_files();
    let hook = (manifest.runtime_trust == RuntimeTrust::System).then(|| {
        (
            format!("{}/{}", wheel::SITE_PACKAGES, pth::TRUSTSTORE_HOOK),
            pth::TRUSTSTORE_HOOK_TEXT,
        )
    });
    if let Some((path, _)) = &hook {
        owners.insert(
            path.to_lowercase(),
            "the runtime_trust: system hook".to_string(),
        );
    }
    let sources = embeddable_files
        .iter()
        .map(|e| (e.name.clone(), embed_file.clone()))
        .chain(
            wheels
                .iter()
                .flat_map(|w| w.targets().map(move |t| (t, w.wheel.clone()))),
        );
    for (path, source) in sources {
        if let Some(first) = owners.insert(path.to_lowercase(), source.clone()) {
            return Err(BuildError::Clash {
                path,
                first,
                second: source,
            });
        }
    }
    let packages: Vec<requires::Package> = wheels
        .iter()
        .map(|w| requires::Package {
            name: w.name.clone(),
            version: w.version.clone(),
            requires: w.requires.clone(),
        })
        .collect();
    let unmet = requires::unmet(
        &packages,
        &requires::Environment::target(manifest.python, manifest.platform),
    );
    Ok((unmet, hook))
}

/// Carries out a plan: writes into a sibling folder, seals it, and swaps it into place.
pub(crate) fn execute(
    plan: &BuildPlan,
    manifest: &Manifest,
    options: &BuildOptions,
    reporter: &Reporter,
) -> Result<BuildReport, BuildError> {
    warn_unmet(plan, reporter);
    let staging = Staging::begin(&plan.dest, reporter)?;
    let root = staging.path().to_path_buf();
    create_folders(&root, plan)?;
    let seal = produce(plan, manifest, Output::Dir(&root), options.jobs, reporter)?;
    finish(plan, manifest, staging, seal)
}

fn warn_unmet(plan: &BuildPlan, reporter: &Reporter) {
    for u in &plan.unmet {
        reporter.warn(format!(
            "{u}; the distribution may fail to import it (fix the manifest)"
        ));
    }
}

/// Writes the seal into the staging folder, swaps it into place, and reports.
fn finish(
    plan: &BuildPlan,
    manifest: &Manifest,
    staging: Staging,
    seal: Seal,
) -> Result<BuildReport, BuildError> {
    write_sealed(staging.path(), SEAL_FILE, &seal.to_bytes())?;
    staging.commit()?;
    Ok(BuildReport {
        dest: plan.dest.clone(),
        manifest: seal.manifest.name.clone(),
        manifest_sha256: seal.manifest.sha256,
        python: seal.python.version.clone(),
        platform: seal.python.platform.clone(),
        packages: seal.packages.clone(),
        files: seal.files.len(),
        bytes: seal.total_size(),
        seal_digest: seal.digest,
        unmet_requirements: plan.unmet.clone(),
        runtime_trust: manifest.runtime_trust,
        replaced: matches!(
            plan.replaces,
            DestState::Sealed | DestState::Foreign | DestState::Empty
        ),
    })
}

/// Every file of the plan into `out`, and the seal over them (not written).
fn produce(
    plan: &BuildPlan,
    manifest: &Manifest,
    out: Output,
    jobs: usize,
    reporter: &Reporter,
) -> Result<Seal, BuildError> {
    reporter.detail(format!("extracting {}", manifest.embeddable.file));
    let mut files = extract_embeddable(manifest, &plan.embeddable, &plan.embeddable_files, out)?;

    let bar = reporter.count_bar(plan.wheels.len() as u64, "wheels");
    let installed = crate::parallel(crate::local_jobs(jobs), &plan.wheels, |w| {
        reporter.detail(format!("installing {}", w.wheel));
        let r = wheel::install(w, out);
        bar.inc(1);
        r
    });
    bar.finish_and_clear();
    for r in installed {
        files.extend(r?);
    }
    seal_over(plan, manifest, files, out)
}

/// Extracts (or hashes) the embeddable zip's files into `out` (their folders exist), the
/// `._pth` edited to enable site-packages.
fn extract_embeddable(
    manifest: &Manifest,
    path: &Path,
    entries: &[Entry],
    out: Output,
) -> Result<Vec<SealedFile>, BuildError> {
    let pth = manifest.python.pth_name();
    let mut embed = Archive::open(
        path,
        &format!("embeddable zip {}", manifest.embeddable.file),
    )?;
    let mut files: Vec<SealedFile> = Vec::new();
    for entry in entries {
        if entry.name == pth {
            continue;
        }
        let (sha256, size) = out.extract(&mut embed, entry, &entry.name)?;
        files.push(SealedFile {
            path: entry.name.clone(),
            size,
            sha256,
        });
    }
    if let Some(entry) = entries.iter().find(|e| e.name == pth) {
        let original = embed.read(entry)?;
        let edited = pth::enable_site_packages(&String::from_utf8_lossy(&original));
        files.push(out.write(&pth, edited.as_bytes())?);
    }
    Ok(files)
}

/// Writes (or hashes) the SBOM into `out`, and returns the seal over `files` and it.
fn seal_over(
    plan: &BuildPlan,
    manifest: &Manifest,
    mut files: Vec<SealedFile>,
    out: Output,
) -> Result<Seal, BuildError> {
    if let Some((path, text)) = &plan.hook {
        files.push(out.write(path, text.as_bytes())?);
    }
    let sbom = sbom::Subject::of_plan(manifest, &plan.wheels).document();
    files.push(out.write(sbom::SBOM_FILE, &sbom.to_bytes())?);
    Ok(Seal::new(
        SealManifest {
            name: manifest.name.clone(),
            sha256: manifest.digest,
        },
        SealPython {
            version: manifest.python.to_string(),
            platform: manifest.platform.to_string(),
            embeddable: manifest.embeddable.file.clone(),
            sha256: manifest.embeddable.sha256,
        },
        plan.wheels
            .iter()
            .map(|w| SealPackage {
                name: w.name.clone(),
                version: w.version.clone(),
                wheel: w.wheel.clone(),
                sha256: w.sha256,
            })
            .collect(),
        files,
    ))
}

/// One verified input, as it arrives: the embeddable zip (`None`) or the wheel at this
/// index of the manifest, and its path.
pub(crate) type Arrival = (Option<usize>, PathBuf);

/// What became of one input while the others were still downloading.
struct Early<P> {
    /// Its plan (for a wheel) or file list (the embeddable).
    planned: Option<Result<P, BuildError>>,
    /// Its files, extracted into the staging folder; none when it was not extracted (it
    /// would have clashed, or the staging folder is unusable).
    extracted: Option<Result<Vec<SealedFile>, BuildError>>,
    path: PathBuf,
}

impl<P> Default for Early<P> {
    fn default() -> Self {
        Self {
            planned: None,
            extracted: None,
            path: PathBuf::new(),
        }
    }
}

/// Builds while the inputs arrive: `produce` (the fetch) runs on its own thread and calls
/// its argument for each input the moment it is verified in the cache; each is planned and
/// extracted into the staging folder at once, on `--jobs` threads, so that the build ends
/// soon after the last byte. Nothing else changes: once every input is there the checks of
/// [`plan`] run over all of them, in manifest order (same errors as a build that waited),
/// then the SBOM and seal are written and the folder swapped into place. Any failure, of
/// the fetch or of the build, drops the staging folder: the destination is as it was.
/// Returns the producer's error if it failed, else its value and the build's result.
pub(crate) fn build_as_inputs_arrive<T: Send, E: Send>(
    manifest: &Manifest,
    options: &BuildOptions,
    reporter: &Reporter,
    produce: impl FnOnce(&(dyn Fn(Arrival) + Sync)) -> Result<T, E> + Send,
) -> Result<(T, Result<BuildReport, BuildError>), E> {
    let dest = check_dest(options);
    // The staging folder exists from the start; what beginning it creates besides (the
    // destination's parent folders, the lock file) is removed again if the build fails, as
    // a build that checked everything before writing never created it.
    let created = dest.as_ref().map(|(d, _)| Created::before(d)).ok();
    let staging = match &dest {
        Ok((d, _)) => Some(Staging::begin(d, reporter).map_err(BuildError::from)),
        Err(_) => None,
    };
    let root = match &staging {
        Some(Ok(st)) => Some(st.path().to_path_buf()),
        _ => None,
    };
    let embed: std::sync::Mutex<Early<Vec<Entry>>> = Default::default();
    let wheels: Vec<std::sync::Mutex<Early<WheelPlan>>> =
        manifest.wheels.iter().map(|_| Default::default()).collect();
    // Targets claimed so far (as in check_sources): an input that would write over another's
    // file is not extracted; the checks at the end then name the clash.
    let owners = std::sync::Mutex::new(own_files());
    let claim = |source: &str, targets: Vec<String>| -> bool {
        let Ok(mut owners) = owners.lock() else {
            return false;
        };
        if targets
            .iter()
            .any(|t| owners.contains_key(&t.to_lowercase()))
        {
            return false;
        }
        for t in targets {
            owners.insert(t.to_lowercase(), source.to_string());
        }
        true
    };
    let folders_for = |root: &Path, targets: &[String]| -> Result<(), BuildError> {
        let mut dirs: Vec<&str> = targets
            .iter()
            .filter_map(|t| t.rsplit_once('/').map(|(d, _)| d))
            .collect();
        dirs.sort_unstable();
        dirs.dedup();
        for d in dirs {
            let path = native(root, d);
            std::fs::create_dir_all(&path).map_err(at(&path, "cannot create the folder"))?;
        }
        Ok(())
    };
    let process = |(index, path): Arrival| match index {
        None => {
            let planned = plan_embeddable(manifest, &path);
            let mut extracted = None;
            if let (Ok(entries), Some(root)) = (&planned, &root) {
                let targets: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
                if claim(&manifest.embeddable.file, targets.clone()) {
                    reporter.detail(format!("extracting {}", manifest.embeddable.file));
                    extracted = Some(folders_for(root, &targets).and_then(|()| {
                        extract_embeddable(manifest, &path, entries, Output::Dir(root))
                    }));
                }
            }
            if let Ok(mut slot) = embed.lock() {
                *slot = Early {
                    planned: Some(planned),
                    extracted,
                    path,
                };
            }
        }
        Some(i) => {
            let Some(pin) = manifest.wheels.get(i) else {
                return;
            };
            let planned = wheel::plan(&path, pin, manifest.python, manifest.platform)
                .map_err(BuildError::from);
            let mut extracted = None;
            if let (Ok(w), Some(root)) = (&planned, &root) {
                let targets: Vec<String> = w.files.iter().map(|f| f.target.clone()).collect();
                if claim(&w.wheel, w.targets().collect()) {
                    reporter.detail(format!("installing {}", w.wheel));
                    extracted = Some(folders_for(root, &targets).and_then(|()| {
                        wheel::install(w, Output::Dir(root)).map_err(BuildError::from)
                    }));
                }
            }
            if let Ok(mut slot) = wheels[i].lock() {
                *slot = Early {
                    planned: Some(planned),
                    extracted,
                    path,
                };
            }
        }
    };

    let (send, receive) = std::sync::mpsc::channel::<Arrival>();
    let receive = std::sync::Mutex::new(receive);
    let send = std::sync::Mutex::new(Some(send));
    let produced = std::thread::scope(|scope| {
        for _ in 0..crate::local_jobs(options.jobs) {
            scope.spawn(|| {
                loop {
                    let next = match receive.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match next {
                        Ok(arrival) => process(arrival),
                        Err(_) => return,
                    }
                }
            });
        }
        let deliver = |arrival: Arrival| {
            if let Ok(s) = send.lock()
                && let Some(s) = s.as_ref()
            {
                let _ = s.send(arrival);
            }
        };
        let produced = produce(&deliver);
        // Closing the channel lets the workers end once they have taken every arrival.
        if let Ok(mut s) = send.lock() {
            s.take();
        }
        produced
    });
    let produced = match produced {
        Ok(p) => p,
        Err(e) => {
            drop(staging);
            created.iter().for_each(Created::undo);
            return Err(e);
        }
    };

    let result = (move || {
        let (dest, replaces) = dest?;
        let embed = embed.into_inner().unwrap_or_default();
        let wheels: Vec<Early<WheelPlan>> = wheels
            .into_iter()
            .map(|w| w.into_inner().unwrap_or_default())
            .collect();
        let missing = |file: &str| BuildError::NotHandedOver {
            file: file.to_string(),
        };
        let embed_file = manifest.embeddable.file.as_str();
        let embeddable_files = embed.planned.unwrap_or_else(|| Err(missing(embed_file)))?;
        let mut plans = Vec::with_capacity(wheels.len());
        let mut extracted = vec![(embed_file, embed.extracted)];
        for (w, pin) in wheels.into_iter().zip(&manifest.wheels) {
            let file = pin.artifact.file.as_str();
            plans.push(w.planned.unwrap_or_else(|| Err(missing(file)))?);
            extracted.push((file, w.extracted));
        }
        let (unmet, hook) = check_sources(manifest, &embeddable_files, &plans)?;
        let plan = BuildPlan {
            dest,
            replaces,
            embeddable: embed.path,
            embeddable_files,
            wheels: plans,
            unmet,
            hook,
        };
        let staging = staging.unwrap_or_else(|| Err(missing(embed_file)))?;
        let mut files = Vec::new();
        for (file, e) in extracted {
            // No clash was found over all the inputs, so every one was extracted.
            files.extend(e.unwrap_or_else(|| Err(missing(file)))?);
        }
        // The files were extracted as they arrived, into the staging folder; the tree is
        // refused before anything reaches DEST.
        check_paths(&plan, manifest)?;
        warn_unmet(&plan, reporter);
        let seal = seal_over(&plan, manifest, files, Output::Dir(staging.path()))?;
        finish(&plan, manifest, staging, seal)
    })();
    if result.is_err() {
        created.iter().for_each(Created::undo);
    }
    Ok((produced, result))
}

/// What [`Staging::begin`] will create beside a destination that is not there yet.
struct Created {
    /// Missing folders on the way to the destination's parent, innermost first.
    folders: Vec<PathBuf>,
    /// The lock file, when it does not exist yet.
    lock: Option<PathBuf>,
}

impl Created {
    fn before(dest: &Path) -> Self {
        let folders = dest
            .ancestors()
            .skip(1)
            .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
            .map(Path::to_path_buf)
            .collect();
        let lock = crate::mechanism::place::staging_lock_path(dest);
        Self {
            folders,
            lock: (!lock.exists()).then_some(lock),
        }
    }

    /// Removes them again (a folder only while empty), once the staging folder is gone.
    fn undo(&self) {
        if let Some(lock) = &self.lock {
            let _ = std::fs::remove_file(lock);
        }
        for f in &self.folders {
            if std::fs::remove_dir(f).is_err() {
                break;
            }
        }
    }
}

/// Plans and executes a build.
pub(crate) fn build(
    manifest: &Manifest,
    inputs: &Inputs,
    options: &BuildOptions,
    reporter: &Reporter,
) -> Result<BuildReport, BuildError> {
    let plan = plan(manifest, inputs, options)?;
    execute(&plan, manifest, options, reporter)
}

/// Creates every folder the plan writes into, once, before the files.
fn create_folders(root: &Path, plan: &BuildPlan) -> Result<(), BuildError> {
    let mut folders: Vec<&str> = plan
        .embeddable_files
        .iter()
        .map(|e| e.name.as_str())
        .chain(
            plan.wheels
                .iter()
                .flat_map(|w| w.files.iter().map(|f| f.target.as_str())),
        )
        .filter_map(|p| p.rsplit_once('/').map(|(dir, _)| dir))
        .collect();
    folders.sort_unstable();
    folders.dedup();
    for f in folders {
        let path = native(root, f);
        std::fs::create_dir_all(&path).map_err(at(&path, "cannot create the folder"))?;
    }
    Ok(())
}

impl BuildReport {
    /// The human result.
    pub(crate) fn render(&self) -> String {
        let mut out = format!(
            "Built CPython {} ({}) with {} packages: {} files, {}, seal {}\n",
            self.python,
            self.platform,
            self.packages.len(),
            self.files,
            human_bytes(self.bytes),
            self.seal_digest.short()
        );
        for p in &self.packages {
            out.push_str(&format!("  {:<24} {}\n", p.name, p.version));
        }
        out.push_str(&match self.runtime_trust {
            RuntimeTrust::Certifi => "Runtime trust: requests and msal verify TLS against certifi's bundle (Lib\\site-packages\\certifi\\cacert.pem), not the Windows store; a TLS-inspecting proxy needs runtime_trust: system\n".to_string(),
            RuntimeTrust::System => format!(
                "Runtime trust: requests and msal verify TLS against the Windows certificate store (truststore, hook Lib\\site-packages\\{})\n",
                pth::TRUSTSTORE_HOOK
            ),
        });
        out.push_str(&format!(
            "Check it any time with: extpy verify \"{}\"\n",
            self.dest.display()
        ));
        out
    }
}
