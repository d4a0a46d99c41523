//! Deterministic offline bundles for air-gapped sites: the manifest, every artifact
//! byte-identical to its pin (stored, never recompressed), the topology and its plan, extpy
//! itself on request, and `SHA256SUMS`. Entries are sorted, with fixed timestamps and modes
//! and nothing about the machine that made them, so the same inputs give the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;

use crate::base::exit::ExitCode;
use crate::base::report::text_for;
use crate::job::assemble::Inputs;
use crate::job::fetch::FetchReport;
use crate::job::provenance::{self, ProvenanceFailure, ProvenancePolicy, Publisher};
use crate::mechanism::archive::{Archive, ArchiveError};
use crate::mechanism::digest::{HashingWriter, Sha256Digest, hash_file};
use crate::mechanism::fsio::{IoError, at};
use crate::mechanism::sign::{self, KeyId, SigProblem, SigningKey, TrustedKey};
use crate::mechanism::sigstore::Identity;
use crate::model::manifest::yaml::Origin;
use crate::model::manifest::{Artifact, ArtifactKind, InputError, Manifest};
use crate::model::topology::Topology;

/// The bundle's description of itself.
pub(crate) const META: &str = "extpy-bundle.json";
/// The checksum list (`sha256sum -c` reads it).
pub(crate) const SUMS: &str = "SHA256SUMS";
/// The site's signature of the checksum list (`minisign -Vm SHA256SUMS` reads it).
pub(crate) const SIG: &str = "SHA256SUMS.minisig";
/// The SBOM of the distribution the bundle builds (as the built tree carries it).
pub(crate) use crate::job::assemble::sbom::SBOM_FILE;
/// The manifest, as given.
pub(crate) const MANIFEST: &str = "manifest.yaml";
/// The topology, as given.
pub(crate) const TOPOLOGY: &str = "topology.yaml";
/// The rendered plan.
pub(crate) const PLAN: &str = "plan.md";
/// Where artifacts live in the bundle.
pub(crate) const ARTIFACTS: &str = "artifacts/";
/// The entry of an extpy for Windows nodes (`rollout --target windows` takes it).
pub(crate) const WINDOWS_EXE: &str = "bin/extpy.exe";
const FORMAT: &str = "extpy-bundle/1";
const DOS_EPOCH: u64 = 315_532_800; // 1980-01-01T00:00:00Z, the earliest time a zip can hold

/// Why a bundle could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// There is no bundle at the path.
    #[error("{} does not exist\n  help: check the path of the bundle (made with `extpy bundle create`)", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The zip is unreadable or has a hostile entry.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The bundle does not verify.
    #[error("the bundle {} does not verify, so it was not used:\n{}", path.display(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The bundle.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// Its manifest or topology does not parse.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// `--include-exe` names a file that is not there.
    #[error("--include-exe {}: no such file\n  help: build extpy.exe with scripts/build-windows.sh (it writes target/windows/x86_64-pc-windows-gnu/release/extpy.exe) or take it from the release archive", path.display())]
    ExeMissing {
        /// The path given.
        path: PathBuf,
    },
    /// `--include-exe` names a file that Windows nodes cannot run.
    #[error("--include-exe {}: not a Windows x86-64 executable: {reason}\n  help: pass the extpy.exe built for x86_64-pc-windows-gnu (scripts/build-windows.sh) or the one from the release archive", path.display())]
    NotWindowsExe {
        /// The path given.
        path: PathBuf,
        /// What the file is instead.
        reason: String,
    },
    /// A publisher the bundle's manifest pins does not verify from the bundle's copy.
    #[error("{}", crate::job::fetch::render_provenance(.0))]
    Provenance(Vec<ProvenanceFailure>),
    /// An artifact changed between fetch and bundling.
    #[error(
        "{file}: the cached copy no longer matches its pin (sha256 {actual}, pinned {expected}); run `extpy fetch` again"
    )]
    Changed {
        /// The artifact.
        file: String,
        /// The pin.
        expected: Sha256Digest,
        /// What was read.
        actual: Sha256Digest,
    },
}

impl BundleError {
    /// The exit code: a bundle that does not verify fails verification; a missing one or
    /// one whose manifest does not parse is the user's input.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            BundleError::Archive(a) => a.exit_code(),
            BundleError::Invalid { .. } | BundleError::Changed { .. } => ExitCode::Verification,
            BundleError::Provenance(failures) => failures
                .iter()
                .map(ProvenanceFailure::exit_code)
                .find(|c| *c != ExitCode::Verification)
                .unwrap_or(ExitCode::Verification),
            BundleError::Input(_)
            | BundleError::NotFound { .. }
            | BundleError::ExeMissing { .. }
            | BundleError::NotWindowsExe { .. } => ExitCode::Input,
            BundleError::Io(e) => e.exit_code(),
        }
    }
}

/// The manifest as the bundle records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaManifest {
    /// Name.
    pub name: String,
    /// Digest.
    pub sha256: Sha256Digest,
}

/// An artifact as the bundle records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaArtifact {
    /// File name (under `artifacts/`).
    pub file: String,
    /// `embeddable` or `wheel`.
    pub kind: String,
    /// Its pinned sha256.
    pub sha256: Sha256Digest,
    /// Its size.
    pub size: u64,
}

/// `extpy-bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// `extpy-bundle/1`.
    pub format: String,
    /// The manifest.
    pub manifest: MetaManifest,
    /// CPython version.
    pub python: String,
    /// Platform.
    pub platform: String,
    /// Every artifact, in manifest order.
    pub artifacts: Vec<MetaArtifact>,
    /// True when `topology.yaml` is included.
    pub topology: bool,
    /// True when `plan.md` is included.
    pub plan: bool,
    /// The extpy executable's entry, when included.
    pub executable: Option<String>,
}

/// What `create` made.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Created {
    /// The bundle.
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: Sha256Digest,
    /// Its size.
    pub size: u64,
    /// Entries written.
    pub entries: usize,
    /// The key that signed it, when signed.
    pub signed_by: Option<KeyId>,
}

enum Content {
    Bytes(Vec<u8>),
    File(PathBuf),
}

struct NewEntry {
    name: String,
    content: Content,
    sha256: Sha256Digest,
    executable: bool,
}

/// What goes into a bundle besides the manifest and its artifacts.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// The topology text.
    pub topology: Option<String>,
    /// The rendered plan.
    pub plan: Option<String>,
    /// The extpy executable to include, and its entry (`bin/extpy` or [`WINDOWS_EXE`]).
    pub executable: Option<(PathBuf, String)>,
    /// `SOURCE_DATE_EPOCH`: the time every entry carries (default 1980-01-01).
    pub epoch: Option<u64>,
    /// The SBOM of the distribution the bundle builds ([`crate::job::assemble::sbom::for_wheels`]).
    pub sbom: Vec<u8>,
    /// The site key that signs `SHA256SUMS` (`--sign`).
    pub signer: Option<SigningKey>,
}

/// Writes a bundle of `manifest` with the verified artifacts of `fetched`, beside `out`
/// first and renamed into place when complete.
pub(crate) fn create(
    out: &Path,
    manifest: &Manifest,
    fetched: &FetchReport,
    extras: Extras,
) -> Result<Created, BundleError> {
    let mut entries = Vec::new();
    let bytes = |name: &str, data: Vec<u8>| NewEntry {
        name: name.to_string(),
        sha256: Sha256Digest::of(&data),
        content: Content::Bytes(data),
        executable: false,
    };
    let mut meta_artifacts = Vec::new();
    for (a, pinned) in fetched.artifacts.iter().zip(manifest.artifacts()) {
        entries.push(NewEntry {
            name: format!("{ARTIFACTS}{}", a.file),
            content: Content::File(a.path.clone()),
            sha256: a.sha256,
            executable: false,
        });
        // The fetch verified the pinned publisher's document and keeps it beside the blob;
        // the bundle carries it, so an air-gapped build verifies the publisher too.
        if pinned.provenance.is_some() {
            let doc = a.path.with_extension(provenance::extension(a.kind));
            let (sha256, _) = hash_file(&doc).map_err(at(&doc, "cannot read"))?;
            entries.push(NewEntry {
                name: provenance_entry(pinned),
                content: Content::File(doc),
                sha256,
                executable: false,
            });
        }
        meta_artifacts.push(MetaArtifact {
            file: a.file.clone(),
            kind: match a.kind {
                ArtifactKind::Embeddable => "embeddable".into(),
                ArtifactKind::Wheel => "wheel".into(),
            },
            sha256: a.sha256,
            size: a.size,
        });
    }
    let executable = match &extras.executable {
        Some((exe, name)) => {
            let (sha256, _) = hash_file(exe).map_err(at(exe, "cannot read"))?;
            entries.push(NewEntry {
                name: name.clone(),
                content: Content::File(exe.clone()),
                sha256,
                executable: true,
            });
            Some(name.clone())
        }
        None => None,
    };
    entries.push(bytes(MANIFEST, manifest.text.as_bytes().to_vec()));
    entries.push(bytes(SBOM_FILE, extras.sbom.clone()));
    if let Some(t) = &extras.topology {
        entries.push(bytes(TOPOLOGY, t.as_bytes().to_vec()));
    }
    if let Some(p) = &extras.plan {
        // A bundle goes to a Windows site: its texts have the line ends Notepad shows.
        entries.push(bytes(PLAN, text_for(p, true).into_bytes()));
    }
    let meta = Meta {
        format: FORMAT.into(),
        manifest: MetaManifest {
            name: manifest.name.clone(),
            sha256: manifest.digest,
        },
        python: manifest.python.to_string(),
        platform: manifest.platform.to_string(),
        artifacts: meta_artifacts,
        topology: extras.topology.is_some(),
        plan: extras.plan.is_some(),
        executable,
    };
    let mut meta_bytes = serde_json::to_vec_pretty(&meta)
        .expect("serializing plain data (string keys, no failing Serialize impl) cannot fail");
    meta_bytes.push(b'\n');
    entries.push(bytes(META, meta_bytes));
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let sums: String = entries
        .iter()
        .map(|e| format!("{}  {}\n", e.sha256, e.name))
        .collect();
    let sums = text_for(&sums, true).into_bytes();
    // The trusted comment is made of the signed bytes only (no time): the same bundle signed
    // twice gives the same signature.
    if let Some(key) = &extras.signer {
        let comment = format!(
            "extpy bundle {} SHA256SUMS sha256:{}",
            manifest.identity(),
            Sha256Digest::of(&sums)
        );
        entries.push(bytes(SIG, key.sign(&sums, &comment).into_bytes()));
    }
    entries.push(bytes(SUMS, sums));
    entries.sort_by(|a, b| a.name.cmp(&b.name));

    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle.zip".into());
    let temp = parent.join(format!(".{name}.extpy-tmp-{}", std::process::id()));
    let result = write_zip(&temp, &entries, extras.epoch).and_then(|n| {
        fs::rename(&temp, out).map_err(at(out, "cannot move the bundle into place"))?;
        Ok(n)
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    let count = result?;
    let (sha256, size) = hash_file(out).map_err(at(out, "cannot read"))?;
    Ok(Created {
        path: out.to_path_buf(),
        sha256,
        size,
        entries: count,
        signed_by: extras.signer.as_ref().map(SigningKey::id),
    })
}

/// The bundle entry of an artifact's provenance document: beside the artifact,
/// `artifacts/<file>.provenance` (a wheel) or `artifacts/<file>.sigstore` (CPython).
fn provenance_entry(a: &Artifact) -> String {
    format!("{ARTIFACTS}{}.{}", a.file, provenance::extension(a.kind))
}

/// Checks that `path` is an executable Windows nodes run: a PE32+ image for x86-64 that is
/// not a DLL. Only the headers are read.
pub(crate) fn check_windows_exe(path: &Path) -> Result<(), BundleError> {
    let mut head = Vec::with_capacity(4096);
    match File::open(path) {
        Ok(f) => f.take(4096).read_to_end(&mut head),
        Err(e) => Err(e),
    }
    .map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => BundleError::ExeMissing {
            path: path.to_path_buf(),
        },
        _ => BundleError::Io(IoError::new(path.to_path_buf(), "cannot read", source)),
    })?;
    pe_problem(&head).map_or(Ok(()), |reason| {
        Err(BundleError::NotWindowsExe {
            path: path.to_path_buf(),
            reason,
        })
    })
}

/// What keeps the first bytes of a file from being a PE32+ x86-64 executable, if anything.
fn pe_problem(head: &[u8]) -> Option<String> {
    let u16_at = |i: usize| head.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |i: usize| {
        head.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if head.starts_with(b"\x7fELF") {
        return Some("it is an ELF (Linux) executable".into());
    }
    if !head.starts_with(b"MZ") {
        return Some("it does not start with the MZ header of a Windows program".into());
    }
    let Some(pe) = u32_at(0x3c).map(|o| o as usize) else {
        return Some("it ends inside the MZ header".into());
    };
    if head.get(pe..pe + 4) != Some(b"PE\0\0".as_slice()) {
        return Some("it has no PE header (an MS-DOS program, or damaged)".into());
    }
    let (Some(machine), Some(flags), Some(magic)) =
        (u16_at(pe + 4), u16_at(pe + 22), u16_at(pe + 24))
    else {
        return Some("it ends inside the PE header".into());
    };
    match (magic, machine) {
        (0x20b, 0x8664) if flags & 0x2000 != 0 => Some("it is a DLL, not a program".into()),
        (0x20b, 0x8664) => None,
        (0x10b, _) => Some("it is a 32-bit (PE32) program".into()),
        (0x20b, m) => Some(format!("it is built for machine type {m:#06x}, not x86-64")),
        (m, _) => Some(format!("its optional header magic {m:#06x} is not PE32+")),
    }
}

fn write_zip(path: &Path, entries: &[NewEntry], epoch: Option<u64>) -> Result<usize, BundleError> {
    let io_err = |source| IoError::new(path.to_path_buf(), "cannot write", source);
    let file = File::create(path).map_err(io_err)?;
    let mut zip = zip::ZipWriter::new(io::BufWriter::new(file));
    let base = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .system(zip::System::Unix)
        .last_modified_time(zip_time(epoch))
        .large_file(false);
    for e in entries {
        let mode = if e.executable { 0o755 } else { 0o644 };
        zip.start_file(e.name.as_str(), base.unix_permissions(mode))
            .map_err(|e| io_err(io::Error::other(e)))?;
        let mut w = HashingWriter::new(&mut zip);
        match &e.content {
            Content::Bytes(b) => w.write_all(b).map_err(io_err)?,
            Content::File(p) => {
                let mut f = File::open(p).map_err(at(p, "cannot read"))?;
                io::copy(&mut f, &mut w).map_err(io_err)?;
            }
        }
        let (_, actual, _) = w.finish();
        if actual != e.sha256 {
            return Err(BundleError::Changed {
                file: e.name.clone(),
                expected: e.sha256,
                actual,
            });
        }
    }
    let mut inner = zip.finish().map_err(|e| io_err(io::Error::other(e)))?;
    inner.flush().map_err(io_err)?;
    inner.get_ref().sync_all().map_err(io_err)?;
    Ok(entries.len())
}

/// The zip time for `SOURCE_DATE_EPOCH` (zips start in 1980 and keep even seconds).
fn zip_time(epoch: Option<u64>) -> zip::DateTime {
    let secs = epoch.unwrap_or(DOS_EPOCH).max(DOS_EPOCH);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    zip::DateTime::from_date_and_time(
        y.min(2107) as u16,
        m,
        d,
        (rem / 3600) as u8,
        (rem % 3600 / 60) as u8,
        (rem % 60) as u8,
    )
    .unwrap_or_default()
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// A bundle that was checked entry by entry.
pub struct Bundle {
    /// The file.
    pub path: PathBuf,
    /// Its sha256.
    pub sha256: Sha256Digest,
    /// Its description.
    pub meta: Meta,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its topology, if it has one.
    pub topology: Option<Topology>,
    archive: Archive,
}

/// The result of checking a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The bundle.
    pub path: PathBuf,
    /// True when every entry matches.
    pub ok: bool,
    /// The bundle's sha256.
    pub sha256: Sha256Digest,
    /// Entries in the zip.
    pub entries: usize,
    /// Every problem found.
    pub problems: Vec<String>,
    /// Its signature, when it has one.
    pub signature: Option<SignatureCheck>,
}

/// What a bundle's signature says.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureCheck {
    /// The key id the signature names (none when it cannot be read).
    pub key_id: Option<KeyId>,
    /// True when it verified with a trusted key (`--trusted-key`); false when none was given
    /// or it did not verify.
    pub verified: bool,
    /// The signed trusted comment, once verified.
    pub trusted_comment: Option<String>,
}

/// Checks the bundle's signature of `sums` against `trusted`: what it says, and the problem
/// when `trusted` is not empty and it does not verify.
fn check_signature(
    signature: Option<&Vec<u8>>,
    sums: &[u8],
    trusted: &[TrustedKey],
) -> (Option<SignatureCheck>, Option<String>) {
    let wanted = sign::ids(trusted);
    let Some(signature) = signature else {
        let problem = (!trusted.is_empty()).then(|| {
            format!("the bundle is not signed (it has no {SIG}), and a signature by a trusted key ({wanted}) is required\n  help: make it with `extpy bundle create --sign KEY` on the build host")
        });
        return (None, problem);
    };
    let text = String::from_utf8_lossy(signature);
    let key_id = sign::signed_by(&text);
    if trusted.is_empty() {
        let check = SignatureCheck {
            key_id,
            verified: false,
            trusted_comment: None,
        };
        return (Some(check), None);
    }
    match sign::verify(&text, sums, trusted) {
        Ok(signer) => (
            Some(SignatureCheck {
                key_id: Some(signer.key_id),
                verified: true,
                trusted_comment: Some(signer.trusted_comment),
            }),
            None,
        ),
        Err(problem) => {
            let check = SignatureCheck {
                key_id,
                verified: false,
                trusted_comment: None,
            };
            let why = match problem {
                SigProblem::Unreadable(why) => format!(
                    "{SIG} cannot be read ({why}): it is damaged or truncated; expected a signature by {wanted}"
                ),
                SigProblem::UntrustedKey { found } => format!(
                    "{SIG} is signed by key {found}, which is not trusted (trusted: {wanted})\n  help: the bundle was signed by another build host or re-signed; if {found} is a new key of this site, add its .pub with --trusted-key"
                ),
                SigProblem::Mismatch { key } => format!(
                    "{SIG} (key {key}) does not match {SUMS}: the bundle changed after it was signed, or the signature was edited"
                ),
            };
            (Some(check), Some(why))
        }
    }
}

/// Opens a bundle through the safe archive reader and checks every entry against
/// `SHA256SUMS`, and every artifact against the manifest's pin.
///
/// With `trusted` keys, the bundle must also carry a signature of `SHA256SUMS` by one of them.
pub(crate) fn open(
    path: &Path,
    trusted: &[TrustedKey],
) -> Result<(Option<Bundle>, Check), BundleError> {
    if !path.is_file() {
        return Err(BundleError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let label = format!("bundle {}", path.display());
    let (sha256, _) = hash_file(path).map_err(at(path, "cannot read"))?;
    let mut archive = Archive::open(path, &label)?;
    let mut problems = Vec::new();
    let files: Vec<crate::mechanism::archive::Entry> = archive.files().cloned().collect();
    let mut digests: BTreeMap<String, Sha256Digest> = BTreeMap::new();
    let mut texts: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for e in &files {
        let keep =
            [SUMS, SIG, META, MANIFEST, TOPOLOGY, PLAN, SBOM_FILE].contains(&e.name.as_str());
        if keep && e.size > crate::mechanism::limits::MAX_JSON {
            problems.push(format!(
                "{} declares {} bytes, more than a bundle's {} can be",
                e.name, e.size, e.name
            ));
            let (d, _) = archive.copy(e, &mut io::sink())?;
            digests.insert(e.name.clone(), d);
        } else if keep {
            let data = archive.read(e)?;
            digests.insert(e.name.clone(), Sha256Digest::of(&data));
            texts.insert(e.name.clone(), data);
        } else {
            let (d, _) = archive.copy(e, &mut io::sink())?;
            digests.insert(e.name.clone(), d);
        }
    }
    let check = |problems: Vec<String>, signature: Option<SignatureCheck>| Check {
        path: path.to_path_buf(),
        ok: problems.is_empty(),
        sha256,
        entries: files.len(),
        problems,
        signature,
    };

    let Some(sums) = texts.get(SUMS) else {
        problems.push(format!(
            "it has no {SUMS}: this is not an extpy bundle, or a damaged or truncated one"
        ));
        return Ok((None, check(problems, None)));
    };
    let (signature, unsigned) = check_signature(texts.get(SIG), sums, trusted);
    problems.extend(unsigned);
    let mut listed: BTreeMap<String, Sha256Digest> = BTreeMap::new();
    for (i, line) in String::from_utf8_lossy(sums).lines().enumerate() {
        let parsed = line
            .split_once("  ")
            .or_else(|| line.split_once(" *"))
            .and_then(|(h, n)| h.parse::<Sha256Digest>().ok().map(|d| (d, n.to_string())));
        match parsed {
            Some((d, n)) => {
                listed.insert(n, d);
            }
            None => problems.push(format!("{SUMS} line {} is not `<sha256>  <name>`", i + 1)),
        }
    }
    for (name, actual) in &digests {
        if name == SUMS || name == SIG {
            continue;
        }
        match listed.get(name) {
            None => problems.push(format!("extra entry {name}: it is not listed in {SUMS}")),
            Some(expected) if expected != actual => problems.push(format!(
                "{name} changed: sha256 {actual}, {SUMS} says {expected}"
            )),
            Some(_) => {}
        }
    }
    for name in listed.keys() {
        if !digests.contains_key(name) {
            problems.push(format!("{name} is listed in {SUMS} but missing"));
        }
    }

    let meta: Option<Meta> = match texts.get(META).map(|b| serde_json::from_slice::<Meta>(b)) {
        Some(Ok(m)) if m.format == FORMAT => Some(m),
        Some(Ok(m)) => {
            problems.push(format!("{META} has the unknown format {:?}", m.format));
            None
        }
        Some(Err(e)) => {
            problems.push(format!("{META} cannot be read: {e}"));
            None
        }
        None => {
            problems.push(format!("{META} is missing"));
            None
        }
    };
    let manifest = match texts.get(MANIFEST) {
        Some(t) => match Manifest::parse(
            Origin(format!("{}:{MANIFEST}", path.display())),
            &String::from_utf8_lossy(t),
        ) {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        },
        None => {
            problems.push(format!("{MANIFEST} is missing"));
            None
        }
    };
    let mut allowed: BTreeSet<String> = [SUMS, SIG, META, MANIFEST, SBOM_FILE]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let (Some(meta), Some(manifest)) = (&meta, &manifest) {
        if meta.manifest.sha256 != manifest.digest {
            problems.push(format!(
                "{MANIFEST} is not the manifest {META} names ({}@{})",
                meta.manifest.name,
                meta.manifest.sha256.short()
            ));
        }
        for a in manifest.artifacts() {
            let name = format!("{ARTIFACTS}{}", a.file);
            match digests.get(&name) {
                None => problems.push(format!("{name} is missing")),
                Some(d) if *d != a.sha256 => problems.push(format!(
                    "{name} does not match its pin: sha256 {d}, pinned {}",
                    a.sha256
                )),
                Some(_) => {}
            }
            allowed.insert(name);
            if let Some(identity) = &a.provenance {
                let name = provenance_entry(a);
                if !digests.contains_key(&name) {
                    problems.push(format!(
                        "{name} is missing: the manifest pins the publisher of {} ({identity}), and an offline build verifies it from the bundle's copy\n  help: make the bundle again with `extpy bundle create` (its fetch verifies the publisher and keeps the document)",
                        a.file
                    ));
                }
                allowed.insert(name);
            }
        }
        if meta.topology {
            allowed.insert(TOPOLOGY.into());
        }
        if meta.plan {
            allowed.insert(PLAN.into());
        }
        if let Some(exe) = &meta.executable {
            allowed.insert(exe.clone());
        }
    }
    for name in digests.keys().filter(|n| !allowed.contains(*n)) {
        if meta.is_some() && manifest.is_some() {
            problems.push(format!(
                "extra entry {name}: the bundle's manifest does not account for it"
            ));
        }
    }
    let topology = match (
        meta.as_ref().is_some_and(|m| m.topology),
        texts.get(TOPOLOGY),
    ) {
        (true, Some(t)) => match Topology::parse(
            Origin(format!("{}:{TOPOLOGY}", path.display())),
            &String::from_utf8_lossy(t),
        ) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        },
        (true, None) => {
            problems.push(format!("{TOPOLOGY} is missing"));
            None
        }
        _ => None,
    };
    let mut bundle = match (problems.is_empty(), meta, manifest) {
        (true, Some(meta), Some(manifest)) => Some(Bundle {
            path: path.to_path_buf(),
            sha256,
            meta,
            manifest,
            topology,
            archive,
        }),
        _ => None,
    };
    if let Some(b) = bundle.as_mut() {
        problems.extend(b.sbom_problems(texts.get(SBOM_FILE))?);
    }
    problems.sort();
    problems.dedup();
    let result = check(problems, signature);
    Ok((bundle.filter(|_| result.ok), result))
}

/// Opens a bundle and refuses it unless every entry verifies (and, with `trusted` keys, its
/// signature by one of them).
pub(crate) fn open_verified(path: &Path, trusted: &[TrustedKey]) -> Result<Bundle, BundleError> {
    match open(path, trusted)? {
        (Some(b), _) => Ok(b),
        (None, check) => Err(BundleError::Invalid {
            path: path.to_path_buf(),
            problems: check.problems,
        }),
    }
}

impl Bundle {
    /// Why the bundle's SBOM is not the one its verified artifacts give (none when it is).
    fn sbom_problems(&mut self, sbom: Option<&Vec<u8>>) -> Result<Vec<String>, BundleError> {
        let Some(sbom) = sbom else {
            return Ok(vec![format!(
                "{SBOM_FILE} is missing: a bundle carries the SBOM of the distribution it builds\n  help: make the bundle again with `extpy bundle create`"
            )]);
        };
        let temp = crate::mechanism::place::temp_dir("extpy-bundle-sbom-")?;
        let inputs = self.extract_artifacts(temp.path())?;
        let expected =
            match crate::job::assemble::sbom::for_wheels(&self.manifest, &inputs.wheels, 0) {
                Ok(e) => e,
                Err(e) => {
                    return Ok(vec![format!(
                        "the SBOM cannot be made from the bundle's wheels: {e}"
                    )]);
                }
            };
        Ok(if expected == *sbom {
            vec![]
        } else {
            vec![format!(
                "{SBOM_FILE} is not the SBOM of the distribution this bundle builds (it was edited, or made by another extpy version)\n  help: make the bundle again with `extpy bundle create`"
            )]
        })
    }

    /// Extracts the artifacts into `dir` (checked again as they are written) for a build.
    pub fn extract_artifacts(&mut self, dir: &Path) -> Result<Inputs, BundleError> {
        let mut paths = Vec::new();
        for a in self.manifest.artifacts().cloned().collect::<Vec<_>>() {
            let name = format!("{ARTIFACTS}{}", a.file);
            let entry = self
                .archive
                .find(&name)
                .cloned()
                .ok_or_else(|| BundleError::Invalid {
                    path: self.path.clone(),
                    problems: vec![format!("{name} is missing")],
                })?;
            let dest = dir.join(&a.file);
            let (d, _) = self.archive.extract(&entry, &dest)?;
            if d != a.sha256 {
                return Err(BundleError::Changed {
                    file: a.file.clone(),
                    expected: a.sha256,
                    actual: d,
                });
            }
            paths.push(dest);
        }
        let mut it = paths.into_iter();
        Ok(Inputs {
            embeddable: it.next().unwrap_or_default(),
            wheels: it.collect(),
        })
    }

    /// Verifies, from the bundle's copies, the publisher the manifest pins for each artifact
    /// (`inputs` are the artifacts as [`Bundle::extract_artifacts`] gave them), per `policy`.
    pub(crate) fn check_provenance(
        &mut self,
        inputs: &Inputs,
        policy: &ProvenancePolicy,
    ) -> Result<Vec<Publisher>, BundleError> {
        let paths = std::iter::once(&inputs.embeddable).chain(&inputs.wheels);
        let mut publishers = Vec::new();
        let mut failures = Vec::new();
        for (a, path) in self.manifest.artifacts().zip(paths) {
            let identity = match provenance::pinned(&self.manifest, a, policy) {
                Ok(Some(identity)) => identity,
                Ok(None) => {
                    publishers.push(Publisher::None);
                    continue;
                }
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            let name = provenance_entry(a);
            let entry = self.archive.find(&name).cloned();
            let doc = match entry {
                Some(e) if e.size <= provenance::MAX_PROVENANCE_BYTES => self.archive.read(&e)?,
                Some(e) => {
                    return Err(self.invalid(format!(
                        "{name} declares {} bytes, more than a provenance document can be",
                        e.size
                    )));
                }
                None => {
                    return Err(self.invalid(format!(
                        "{name} is missing: the manifest pins the publisher of {}",
                        a.file
                    )));
                }
            };
            match provenance::verify_one(a, path, identity, &doc, policy) {
                Ok(p) => publishers.push(p),
                Err(e) => failures.push(e),
            }
        }
        if failures.is_empty() {
            Ok(publishers)
        } else {
            Err(BundleError::Provenance(failures))
        }
    }

    fn invalid(&self, problem: String) -> BundleError {
        BundleError::Invalid {
            path: self.path.clone(),
            problems: vec![problem],
        }
    }

    /// Extracts the entry `name` to `dest`; false when the bundle has no such entry.
    pub fn extract_entry(&mut self, name: &str, dest: &Path) -> Result<bool, BundleError> {
        let Some(entry) = self.archive.find(name).cloned() else {
            return Ok(false);
        };
        self.archive.extract(&entry, dest)?;
        Ok(true)
    }

    /// The bundle's file name.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

impl Check {
    /// The human report.
    pub fn render(&self) -> String {
        if self.ok {
            let signed = match &self.signature {
                Some(SignatureCheck {
                    key_id: Some(id),
                    verified: true,
                    ..
                }) => format!("      signed by trusted key {id}\n"),
                Some(SignatureCheck {
                    key_id: Some(id), ..
                }) => format!(
                    "      signed by key {id}, not checked (pass --trusted-key PUB to require it)\n"
                ),
                _ => String::new(),
            };
            return format!(
                "ok    {}: {} entries match SHA256SUMS and their pins (sha256 {})\n{signed}",
                self.path.display(),
                self.entries,
                self.sha256
            );
        }
        let mut out = format!(
            "FAIL  {}: {} problem(s)\n",
            self.path.display(),
            self.problems.len()
        );
        for p in &self.problems {
            out.push_str(&format!("  - {p}\n"));
        }
        out
    }
}

/// What `bundle inspect` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The check.
    pub check: Check,
    /// Its description.
    pub meta: Meta,
    /// The topology's system, nodes and pairs.
    pub topology: Option<TopologySummary>,
    /// Each artifact's pinned publisher and the document the bundle carries for it.
    pub publishers: Vec<CarriedPublisher>,
}

/// An artifact's publisher as a bundle carries it.
#[derive(Debug, Clone, Serialize)]
pub struct CarriedPublisher {
    /// The artifact's file name.
    pub file: String,
    /// The manifest's `provenance:` pin: the identity, or `"none"`.
    #[serde(serialize_with = "crate::model::manifest::serialize_pin")]
    pub provenance: Option<Identity>,
    /// The bundle entry that holds its provenance document (`artifacts/<file>.provenance` or
    /// `.sigstore`), when the pin names a publisher; an opened bundle always has it.
    pub document: Option<String>,
    /// That entry's size in bytes.
    pub document_size: Option<u64>,
}

/// A topology in brief.
#[derive(Debug, Clone, Serialize)]
pub struct TopologySummary {
    /// System name.
    pub system: String,
    /// Nodes.
    pub nodes: Vec<String>,
    /// Every core with its VU.
    pub pairs: Vec<crate::model::topology::Pair>,
}

impl Bundle {
    /// What `bundle inspect` shows.
    pub fn inspect(&self, check: Check) -> Inspection {
        Inspection {
            check,
            meta: self.meta.clone(),
            topology: self.topology.as_ref().map(|t| TopologySummary {
                system: t.system.clone(),
                nodes: t.nodes.iter().map(|n| n.name.clone()).collect(),
                pairs: t.pairs.clone(),
            }),
            publishers: self
                .manifest
                .artifacts()
                .map(|a| {
                    let entry = a.provenance.as_ref().and_then(|_| {
                        let name = provenance_entry(a);
                        self.archive.find(&name).map(|e| (name, e.size))
                    });
                    let (document, document_size) = entry.unzip();
                    CarriedPublisher {
                        file: a.file.clone(),
                        provenance: a.provenance.clone(),
                        document,
                        document_size,
                    }
                })
                .collect(),
        }
    }
}

impl Inspection {
    /// The human rendering.
    pub fn render(&self) -> String {
        let m = &self.meta;
        let mut out = format!(
            "bundle   {}\nsha256   {}\nmanifest {}@{}\npython   {} ({})\n",
            self.check.path.display(),
            self.check.sha256,
            m.manifest.name,
            m.manifest.sha256.short(),
            m.python,
            m.platform
        );
        out.push_str(&format!("artifacts ({}):\n", m.artifacts.len()));
        for a in &m.artifacts {
            out.push_str(&format!(
                "  {:<52} {:>10}  sha256 {}\n",
                a.file,
                crate::base::report::human_bytes(a.size),
                a.sha256
            ));
        }
        match &self.topology {
            Some(t) => {
                out.push_str(&format!(
                    "topology {} ({} nodes, {} cores):\n",
                    t.system,
                    t.nodes.len(),
                    t.pairs.len()
                ));
                for p in &t.pairs {
                    out.push_str(&format!(
                        "  {:<10} {:<10} {:<18} {}\n",
                        p.node, p.core, p.vu, p.external_python_directory
                    ));
                }
            }
            None => out.push_str("topology none\n"),
        }
        out.push_str("publishers:\n");
        for p in &self.publishers {
            out.push_str(&format!(
                "  {:<52} {}\n",
                p.file,
                crate::model::manifest::describe_pin(&p.provenance)
            ));
            if let (Some(d), Some(size)) = (&p.document, p.document_size) {
                out.push_str(&format!(
                    "  {:<52} carried as {d} ({})\n",
                    "",
                    crate::base::report::human_bytes(size)
                ));
            }
        }
        out.push_str(&format!(
            "plan     {}\n",
            if m.plan { PLAN } else { "none" }
        ));
        out.push_str(&format!(
            "extpy    {}\n",
            m.executable.as_deref().unwrap_or("not included")
        ));
        out.push_str(&self.check.render());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn zip_times_are_clamped_and_fixed() {
        assert_eq!(zip_time(None), zip::DateTime::default());
        assert_eq!(zip_time(Some(0)), zip::DateTime::default());
        let t = zip_time(Some(1_700_000_000)); // 2023-11-14T22:13:20Z
        assert_eq!(
            (t.year(), t.month(), t.day(), t.hour(), t.minute()),
            (2023, 11, 14, 22, 13)
        );
    }

    /// The first bytes of a PE image: MZ header, PE signature at 0x40, COFF header, magic.
    fn pe(machine: u16, characteristics: u16, magic: u16) -> Vec<u8> {
        let mut b = vec![0u8; 0x200];
        b[..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        b[0x40..0x44].copy_from_slice(b"PE\0\0");
        b[0x44..0x46].copy_from_slice(&machine.to_le_bytes());
        b[0x56..0x58].copy_from_slice(&characteristics.to_le_bytes());
        b[0x58..0x5a].copy_from_slice(&magic.to_le_bytes());
        b
    }

    #[test]
    fn only_a_pe32_plus_x86_64_program_is_a_windows_exe() {
        assert_eq!(pe_problem(&pe(0x8664, 0x22, 0x20b)), None);
        let why = |b: &[u8]| pe_problem(b).unwrap_or_default();
        assert!(why(&pe(0x8664, 0x2022, 0x20b)).contains("DLL"));
        assert!(why(&pe(0x14c, 0x102, 0x10b)).contains("32-bit"));
        assert!(why(&pe(0xaa64, 0x22, 0x20b)).contains("0xaa64"));
        assert!(why(b"\x7fELF\x02\x01\x01").contains("ELF"));
        assert!(why(b"#!/bin/sh\n").contains("MZ header"));
        assert!(why(b"MZ\x90").contains("inside the MZ header"));
        let mut dos = pe(0x8664, 0x22, 0x20b);
        dos[0x40..0x44].copy_from_slice(b"NE\0\0");
        assert!(why(&dos).contains("no PE header"));
        assert!(why(&pe(0x8664, 0x22, 0x20b)[..0x50]).contains("inside the PE header"));
    }

    #[test]
    fn a_missing_or_foreign_exe_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("extpy.exe");
        let err = check_windows_exe(&missing).unwrap_err();
        assert!(matches!(err, BundleError::ExeMissing { .. }), "{err}");
        assert!(err.to_string().contains("extpy.exe: no such file"), "{err}");
        let text = dir.path().join("notes.txt");
        fs::write(&text, "hello").unwrap();
        let err = check_windows_exe(&text).unwrap_err().to_string();
        assert!(
            err.contains("notes.txt: not a Windows x86-64 executable"),
            "{err}"
        );
        assert!(err.contains("help: "), "{err}");
        let good = dir.path().join("good.exe");
        fs::write(&good, pe(0x8664, 0x22, 0x20b)).unwrap();
        check_windows_exe(&good).unwrap();
    }
}
