//! Assembling the External Python: the embeddable zip extracted, every wheel installed into
//! `Lib\site-packages`, `pythonXY._pth` edited, the seal written; built beside the
//! destination and renamed into place only when complete.

pub(crate) mod pth;
pub(crate) mod requires;
pub(crate) mod sbom;
pub(crate) mod seal;
pub(crate) mod wheel;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::archive::{Archive, ArchiveError, Entry};
use crate::digest::Sha256Digest;
use crate::exit::ExitCode;
use crate::fsio::{IoError, at};
use crate::manifest::{Manifest, RuntimeTrust};
use crate::place::{PlaceError, Staging};
use crate::report::{Reporter, human_bytes};
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
    #[error(transparent)]
    Archive(#[from] ArchiveError),
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
            BuildError::DestForeign { .. } | BuildError::Clash { .. } => ExitCode::Input,
            BuildError::Embeddable { .. } => ExitCode::Verification,
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
    /// The `._pth` to edit.
    pub pth: String,
    /// The wheels.
    pub wheels: Vec<WheelPlan>,
    /// Requirements of the wheels that the pinned set does not meet.
    pub unmet: Vec<String>,
    /// The `.pth` hook to write (`runtime_trust: system`): its path in the tree, and its text.
    pub hook: Option<(String, &'static str)>,
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
    plan_at(manifest, inputs, options.jobs, dest, replaces)
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

/// The plan for a destination already checked.
fn plan_at(
    manifest: &Manifest,
    inputs: &Inputs,
    jobs: usize,
    dest: PathBuf,
    replaces: DestState,
) -> Result<BuildPlan, BuildError> {
    let embed_file = &manifest.embeddable.file;
    let embed = Archive::open(&inputs.embeddable, &format!("embeddable zip {embed_file}"))?;
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

    let wheels = wheel::plan_all(manifest, &inputs.wheels, jobs)?;

    // No two sources may write one file (compared as Windows would: ignoring case).
    let mut owners: HashMap<String, String> = HashMap::new();
    owners.insert(SEAL_FILE.to_string(), "the seal".to_string());
    owners.insert(sbom::SBOM_FILE.to_string(), "the SBOM".to_string());
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
    Ok(BuildPlan {
        dest,
        replaces,
        embeddable: inputs.embeddable.clone(),
        embeddable_files,
        pth,
        wheels,
        unmet,
        hook,
    })
}

/// Carries out a plan: writes into a sibling folder, seals it, and swaps it into place.
pub(crate) fn execute(
    plan: &BuildPlan,
    manifest: &Manifest,
    options: &BuildOptions,
    reporter: &Reporter,
) -> Result<BuildReport, BuildError> {
    for u in &plan.unmet {
        reporter.warn(format!(
            "{u}; the distribution may fail to import it (fix the manifest)"
        ));
    }
    let staging = Staging::begin(&plan.dest, reporter)?;
    let root = staging.path().to_path_buf();
    create_folders(&root, plan)?;
    let seal = produce(plan, manifest, Output::Dir(&root), options.jobs, reporter)?;
    write_sealed(&root, SEAL_FILE, &seal.to_bytes())?;
    staging.commit()?;
    Ok(BuildReport {
        dest: plan.dest.clone(),
        manifest: manifest.name.clone(),
        manifest_sha256: manifest.digest,
        python: manifest.python.to_string(),
        platform: manifest.platform.to_string(),
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

/// Where a build's files go: into a folder, or nowhere when only the seal they would get is
/// wanted ([`expected_seal`]). One code path does both, so the two cannot disagree.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Output<'a> {
    /// Written under this root.
    Dir(&'a Path),
    /// Hashed only.
    SealOnly,
}

impl Output<'_> {
    /// Extracts (or only hashes) an archive entry as `rel`.
    pub(crate) fn extract(
        self,
        archive: &mut Archive,
        entry: &Entry,
        rel: &str,
    ) -> Result<(Sha256Digest, u64), ArchiveError> {
        match self {
            Output::Dir(root) => archive.extract(entry, &native(root, rel)),
            Output::SealOnly => archive.copy(entry, &mut std::io::sink()),
        }
    }

    /// Writes (or only hashes) `bytes` as `rel`.
    pub(crate) fn write(self, rel: &str, bytes: &[u8]) -> Result<SealedFile, IoError> {
        match self {
            Output::Dir(root) => write_sealed(root, rel, bytes),
            Output::SealOnly => Ok(SealedFile {
                path: rel.to_string(),
                size: bytes.len() as u64,
                sha256: Sha256Digest::of(bytes),
            }),
        }
    }
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
    let mut embed = Archive::open(
        &plan.embeddable,
        &format!("embeddable zip {}", manifest.embeddable.file),
    )?;
    let mut files: Vec<SealedFile> = Vec::new();
    for entry in &plan.embeddable_files {
        if entry.name == plan.pth {
            continue;
        }
        let (sha256, size) = out.extract(&mut embed, entry, &entry.name)?;
        files.push(SealedFile {
            path: entry.name.clone(),
            size,
            sha256,
        });
    }
    let pth_entry = plan
        .embeddable_files
        .iter()
        .find(|e| e.name == plan.pth)
        .cloned();
    if let Some(entry) = pth_entry {
        let original = embed.read(&entry)?;
        let edited = pth::enable_site_packages(&String::from_utf8_lossy(&original));
        files.push(out.write(&plan.pth, edited.as_bytes())?);
    }

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
