//! The seal `extpy-seal.json`: manifest identity, Python, packages and every file with its
//! size and sha256, plus one digest over all of it; and `verify`, which recomputes it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) use super::contents::{
    Contents, SealManifest, SealPackage, SealPython, SealedFile, native, write_sealed,
};
use crate::base::exit::ExitCode;
use crate::mechanism::digest::{Sha256Digest, hash_file};
use crate::mechanism::fsio::{IoError, at};
use crate::mechanism::sign::{self, KeyId, SigProblem, SigningKey, TrustedKey};

/// The seal's file name at a distribution's root.
pub(crate) const SEAL_FILE: &str = "extpy-seal.json";
/// The site's signature of the seal, beside it (`minisign -Vm extpy-seal.json` reads it).
pub(crate) const SEAL_SIG: &str = "extpy-seal.json.minisig";
const FORMAT: &str = "extpy-seal/1";

/// The seal of a distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Seal {
    /// `extpy-seal/1`.
    pub format: String,
    /// Manifest identity.
    pub manifest: SealManifest,
    /// CPython.
    pub python: SealPython,
    /// Packages in manifest order.
    pub packages: Vec<SealPackage>,
    /// Every file except the seal, sorted by path.
    pub files: Vec<SealedFile>,
    /// sha256 over all of the above.
    pub digest: Sha256Digest,
}

#[derive(Serialize)]
struct Body<'a> {
    format: &'a str,
    manifest: &'a SealManifest,
    python: &'a SealPython,
    packages: &'a [SealPackage],
    files: &'a [SealedFile],
}

/// A seal that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The folder does not exist, or the path is not a folder.
    #[error("{} {}", path.display(), if path.symlink_metadata().is_ok() { "is not a folder" } else { "does not exist" })]
    NoFolder {
        /// The folder.
        path: PathBuf,
    },
    /// No seal in the folder.
    #[error("{} holds no {SEAL_FILE}: it was not built by extpy (or the seal was deleted)\n  help: build it with `extpy build`, or verify the folder extpy built", path.display())]
    Missing {
        /// The folder.
        path: PathBuf,
    },
    /// The seal exists but is not one extpy can read (damaged, or another format).
    #[error("{}: the seal cannot be read: {reason}", path.display())]
    Corrupt {
        /// The seal file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Unreadable.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl SealError {
    /// The exit code: a missing folder is the user's input, a missing or damaged seal a
    /// failed verification.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            SealError::NoFolder { .. } => ExitCode::Input,
            SealError::Missing { .. } | SealError::Corrupt { .. } => ExitCode::Verification,
            SealError::Io(e) => e.exit_code(),
        }
    }
}

impl Seal {
    /// A seal for tests: manifest `m` and CPython 3.12.10 `e.zip`, both with sha256 `d`, and
    /// the given packages and files.
    #[cfg(test)]
    pub(crate) fn for_test(
        d: crate::mechanism::digest::Sha256Digest,
        packages: Vec<SealPackage>,
        files: Vec<SealedFile>,
    ) -> Self {
        Seal::new(
            SealManifest {
                name: "m".into(),
                sha256: d,
            },
            SealPython {
                version: "3.12.10".into(),
                platform: "win_amd64".into(),
                embeddable: "e.zip".into(),
                sha256: d,
            },
            packages,
            files,
        )
    }

    /// A seal over `files` (sorted here) with its digest computed.
    pub(crate) fn new(
        manifest: SealManifest,
        python: SealPython,
        packages: Vec<SealPackage>,
        mut files: Vec<SealedFile>,
    ) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut seal = Seal {
            format: FORMAT.into(),
            manifest,
            python,
            packages,
            files,
            digest: Sha256Digest::of(b""),
        };
        seal.digest = seal.compute_digest();
        seal
    }

    /// What the seal says the tree holds.
    pub(crate) fn contents(&self) -> Contents<'_> {
        Contents {
            manifest: &self.manifest,
            python: &self.python,
            packages: &self.packages,
            files: &self.files,
        }
    }

    /// The digest the content implies (equal to `digest` unless the seal was edited).
    pub(crate) fn compute_digest(&self) -> Sha256Digest {
        let body = Body {
            format: &self.format,
            manifest: &self.manifest,
            python: &self.python,
            packages: &self.packages,
            files: &self.files,
        };
        Sha256Digest::of(
            &serde_json::to_vec(&body).expect(
                "serializing plain data (string keys, no failing Serialize impl) cannot fail",
            ),
        )
    }

    /// The seal file's bytes: pretty JSON, stable order, trailing newline.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self)
            .expect("serializing plain data (string keys, no failing Serialize impl) cannot fail");
        v.push(b'\n');
        v
    }

    /// Reads the seal of `dir`; [`SealError::Corrupt`] when the file exists but does not parse.
    pub(crate) fn read(dir: &Path) -> Result<Seal, SealError> {
        if !dir.is_dir() {
            return Err(SealError::NoFolder {
                path: dir.to_path_buf(),
            });
        }
        Self::read_file(&dir.join(SEAL_FILE))
    }

    /// Reads the seal file `path` (an `extpy-seal.json` in its folder, or a copy taken off a
    /// node); a missing `extpy-seal.json` is [`SealError::Missing`] for its folder.
    pub(crate) fn read_file(path: &Path) -> Result<Seal, SealError> {
        let path = path.to_path_buf();
        let bytes =
            match crate::mechanism::limits::read_regular(&path, crate::mechanism::limits::MAX_JSON)
            {
                Ok(b) => b,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        && path.file_name().is_some_and(|n| n == SEAL_FILE) =>
                {
                    return Err(SealError::Missing {
                        path: path.parent().map(Path::to_path_buf).unwrap_or_default(),
                    });
                }
                // An oversized (or not regular) seal is a seal that does not verify.
                Err(e) if crate::mechanism::limits::is_refusal(&e) => {
                    return Err(SealError::Corrupt {
                        path,
                        reason: e.to_string(),
                    });
                }
                Err(source) => return Err(IoError::new(path, "cannot read", source).into()),
            };
        let corrupt = |reason| SealError::Corrupt {
            path: path.clone(),
            reason,
        };
        let seal = serde_json::from_slice::<Seal>(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if seal.format != FORMAT {
            return Err(corrupt(format!("unknown seal format {:?}", seal.format)));
        }
        Ok(seal)
    }

    /// Total bytes of sealed files.
    pub(crate) fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// A file whose bytes differ from the seal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Changed {
    /// Relative path.
    pub path: String,
    /// Sealed size.
    pub expected_size: u64,
    /// Size on disk.
    pub actual_size: u64,
    /// Sealed sha256.
    pub expected_sha256: Sha256Digest,
    /// sha256 on disk (none when it is not a regular file).
    pub actual_sha256: Option<Sha256Digest>,
}

/// The outcome of verifying one folder.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verification {
    /// The folder.
    pub path: PathBuf,
    /// True when everything matches.
    pub ok: bool,
    /// The seal's digest (as recorded).
    pub seal_digest: Option<Sha256Digest>,
    /// Manifest name in the seal.
    pub manifest: Option<String>,
    /// Files the seal lists.
    pub files: usize,
    /// True when the seal itself was edited (its digest does not match its content).
    pub seal_altered: bool,
    /// Why the seal could not be read, when it could not.
    pub seal_error: Option<String>,
    /// Sealed files that are gone.
    pub missing: Vec<String>,
    /// Sealed files whose bytes changed.
    pub changed: Vec<Changed>,
    /// Files the seal does not list.
    pub extra: Vec<String>,
    /// Sealed files found in another form: a folder where the file was, or a name that
    /// differs only in case (never listed as missing and extra too).
    pub replaced: Vec<Replaced>,
    /// Runtime caches (`__pycache__/*.pyc`) not counted as extra.
    pub ignored: usize,
    /// Where the SBOM (`extpy-sbom.cdx.json`) disagrees with the tree, or why it is missing.
    pub sbom: Vec<String>,
    /// What the tree was checked against.
    pub checked_against: CheckedAgainst,
    /// The seal the manifest (or bundle) produces, when it was checked against it.
    pub expected_seal_digest: Option<Sha256Digest>,
    /// Where the tree's seal departs from the seal the manifest produces.
    pub not_as_built: Vec<Deviation>,
    /// The seal's signature, when it was checked (`--trusted-key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SealSignature>,
}

/// A seal's signature checked against the trusted keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct SealSignature {
    /// The key id the signature names (none when there is none, or it cannot be read).
    pub key_id: Option<KeyId>,
    /// True when a trusted key made it over this very seal.
    pub verified: bool,
    /// Why it does not verify.
    pub problem: Option<String>,
}

/// Signs the seal of `dir` with `key`: writes [`SEAL_SIG`] beside it (atomically). The
/// trusted comment holds the manifest and the seal digest, no time: the same seal signed
/// twice gives the same bytes.
pub(crate) fn sign_seal(dir: &Path, key: &SigningKey) -> Result<(), SealError> {
    let seal = Seal::read(dir)?;
    let path = dir.join(SEAL_FILE);
    let bytes = crate::mechanism::limits::read_regular(&path, crate::mechanism::limits::MAX_JSON)
        .map_err(|e| IoError::new(&path, "cannot read", e))?;
    let comment = format!("extpy seal {} digest:{}", seal.manifest.name, seal.digest);
    crate::mechanism::place::write_atomic(
        &dir.join(SEAL_SIG),
        key.sign(&bytes, &comment).as_bytes(),
    )?;
    Ok(())
}

/// Checks the signature of the seal of `dir` against `trusted` (none: nothing is checked,
/// and `None` comes back): a tree resealed by someone else, or not signed, has a problem.
pub(crate) fn seal_signature(dir: &Path, trusted: &[TrustedKey]) -> Option<SealSignature> {
    if trusted.is_empty() {
        return None;
    }
    let wanted = sign::ids(trusted);
    let read = |name: &str| {
        crate::mechanism::limits::read_regular(&dir.join(name), crate::mechanism::limits::MAX_JSON)
    };
    Some(match (read(SEAL_FILE), read(SEAL_SIG)) {
        (Ok(seal), Ok(sig)) => {
            let text = String::from_utf8_lossy(&sig);
            let key_id = sign::signed_by(&text);
            match sign::verify(&text, &seal, trusted) {
                Ok(signer) => SealSignature {
                    key_id: Some(signer.key_id),
                    verified: true,
                    problem: None,
                },
                Err(p) => SealSignature {
                    key_id,
                    verified: false,
                    problem: Some(match p {
                        SigProblem::Unreadable(why) => format!(
                            "{SEAL_SIG} cannot be read ({why}): it is damaged or truncated; expected a signature by {wanted}"
                        ),
                        SigProblem::UntrustedKey { found } => format!(
                            "{SEAL_SIG} is signed by key {found}, which is not trusted (trusted: {wanted}): someone else sealed this tree"
                        ),
                        SigProblem::Mismatch { key } => format!(
                            "{SEAL_SIG} (key {key}) does not match {SEAL_FILE}: the tree was resealed after it was signed"
                        ),
                    }),
                },
            }
        }
        (Ok(_), Err(e)) if e.kind() == io::ErrorKind::NotFound => SealSignature {
            key_id: None,
            verified: false,
            problem: Some(format!(
                "the seal is not signed (no {SEAL_SIG}), and a signature by a trusted key ({wanted}) is required\n  help: build or lay out with --sign KEY on the build host; a tree sealed by anyone else is not trusted"
            )),
        },
        (_, Err(e)) | (Err(e), _) => SealSignature {
            key_id: None,
            verified: false,
            problem: Some(format!("the seal or its signature cannot be read: {e}")),
        },
    })
}

/// [`seal_signature`] for a verified tree: a refused signature fails it.
pub(crate) fn check_signature(v: &mut Verification, trusted: &[TrustedKey]) {
    if v.seal_digest.is_none() {
        return;
    }
    let Some(signature) = seal_signature(&v.path, trusted) else {
        return;
    };
    if signature.problem.is_some() {
        v.ok = false;
    }
    v.signature = Some(signature);
}

/// What a tree was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CheckedAgainst {
    /// Only the seal found in the tree: that proves the files are as sealed (no accident),
    /// not that they are what the manifest builds (whoever can write the folder can reseal it).
    OwnSeal,
    /// The seal found in the tree and the seal the manifest (or bundle) produces.
    ExpectedSeal,
}

impl CheckedAgainst {
    /// How the human report names the check.
    pub(crate) fn words(self) -> &'static str {
        match self {
            CheckedAgainst::OwnSeal => "against its own seal only",
            CheckedAgainst::ExpectedSeal => "against the seal the manifest produces",
        }
    }
}

/// A sealed file that is there in another form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Replaced {
    /// The path the seal lists.
    pub path: String,
    /// What is there instead (`folder`, or the name on disk).
    pub found: String,
    /// In words.
    pub what: String,
}

/// A file where a tree's seal departs from the seal its manifest produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Deviation {
    /// Relative path (the seal file itself for a different manifest, Python or package list).
    pub path: String,
    /// `changed`, `missing` (the build has it, the tree does not) or `extra`.
    pub what: &'static str,
}

/// Where `found` departs from `expected`, file by file (the seal file when the identity
/// parts differ); empty when the two seals are the same.
pub(crate) fn deviations(expected: &Seal, found: &Seal) -> Vec<Deviation> {
    let mut out = Vec::new();
    if expected.manifest != found.manifest
        || expected.python != found.python
        || expected.packages != found.packages
        || expected.format != found.format
    {
        out.push(Deviation {
            path: SEAL_FILE.to_string(),
            what: "changed",
        });
    }
    let want: BTreeMap<&str, &SealedFile> = expected
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    let have: BTreeMap<&str, &SealedFile> =
        found.files.iter().map(|f| (f.path.as_str(), f)).collect();
    for (path, w) in &want {
        match have.get(path) {
            None => out.push(Deviation {
                path: path.to_string(),
                what: "missing",
            }),
            Some(h) if h != w => out.push(Deviation {
                path: path.to_string(),
                what: "changed",
            }),
            Some(_) => {}
        }
    }
    for path in have.keys().filter(|p| !want.contains_key(*p)) {
        out.push(Deviation {
            path: path.to_string(),
            what: "extra",
        });
    }
    if out.is_empty() && expected.digest != found.digest {
        out.push(Deviation {
            path: SEAL_FILE.to_string(),
            what: "changed",
        });
    }
    out
}

/// How strict `verify` is.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct VerifyOptions {
    /// Parallel hashing.
    pub jobs: usize,
    /// Count `__pycache__` files Python writes at run time as extra too.
    pub strict: bool,
}

/// Recomputes `dir` against its seal.
pub(crate) fn verify(dir: &Path, options: VerifyOptions) -> Result<Verification, SealError> {
    verify_against(dir, options, None)
}

/// Recomputes `dir` against its seal and, when given, compares that seal with `expected`
/// (the seal the manifest or bundle produces).
pub(crate) fn verify_against(
    dir: &Path,
    options: VerifyOptions,
    expected: Option<&Seal>,
) -> Result<Verification, SealError> {
    check(dir, options, expected, true)
}

/// Like [`verify`], but reads no sealed file's contents: it checks the seal itself, which
/// files are there, their kinds and sizes, and the SBOM. For a caller that hashes every
/// sealed file itself as it reads it (a layout's copy), so that nothing is hashed twice.
pub(crate) fn verify_listing(
    dir: &Path,
    options: VerifyOptions,
) -> Result<Verification, SealError> {
    check(dir, options, None, false)
}

/// [`verify_against`], hashing the contents only when `hash` is set.
fn check(
    dir: &Path,
    options: VerifyOptions,
    expected: Option<&Seal>,
    hash: bool,
) -> Result<Verification, SealError> {
    let mut v = Verification::failed(dir, None);
    if let Some(e) = expected {
        v.checked_against = CheckedAgainst::ExpectedSeal;
        v.expected_seal_digest = Some(e.digest);
    }
    let seal = match Seal::read(dir) {
        Ok(s) => s,
        Err(SealError::Corrupt { reason, .. }) => {
            v.seal_altered = true;
            v.seal_error = Some(format!("{SEAL_FILE} cannot be read: {reason}"));
            return Ok(v);
        }
        Err(e) => return Err(e),
    };
    v.seal_digest = Some(seal.digest);
    v.manifest = Some(seal.manifest.name.clone());
    v.files = seal.files.len();
    v.seal_altered = seal.compute_digest() != seal.digest;
    if let Some(e) = expected {
        v.not_as_built = deviations(e, &seal);
    }

    let on_disk = list_files(dir).map_err(at(dir, "cannot list the files"))?;
    let sealed: BTreeMap<&str, &SealedFile> =
        seal.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let present: BTreeMap<&str, &Listed> = on_disk.iter().map(|f| (f.rel.as_str(), f)).collect();
    for f in &seal.files {
        if !present.contains_key(f.path.as_str()) {
            v.missing.push(f.path.clone());
        }
    }
    for f in &on_disk {
        if f.rel == SEAL_FILE || f.rel == SEAL_SIG || sealed.contains_key(f.rel.as_str()) {
            continue;
        }
        if !options.strict && is_runtime_cache(&f.rel) {
            v.ignored += 1;
        } else {
            v.extra.push(f.rel.clone());
        }
    }
    reconcile(dir, &mut v);
    let to_hash: Vec<(&SealedFile, &Listed)> = seal
        .files
        .iter()
        .filter_map(|s| present.get(s.path.as_str()).map(|l| (s, *l)))
        .collect();
    let results = crate::parallel(crate::local_jobs(options.jobs), &to_hash, |(s, l)| {
        if !l.regular {
            return Some(Changed {
                path: s.path.clone(),
                expected_size: s.size,
                actual_size: l.size,
                expected_sha256: s.sha256,
                actual_sha256: None,
            });
        }
        if l.size != s.size {
            return Some(Changed {
                path: s.path.clone(),
                expected_size: s.size,
                actual_size: l.size,
                expected_sha256: s.sha256,
                actual_sha256: hash_file(&l.abs).ok().map(|(d, _)| d),
            });
        }
        if !hash {
            return None;
        }
        match hash_file(&l.abs) {
            Ok((d, _)) if d == s.sha256 => None,
            Ok((d, size)) => Some(Changed {
                path: s.path.clone(),
                expected_size: s.size,
                actual_size: size,
                expected_sha256: s.sha256,
                actual_sha256: Some(d),
            }),
            Err(_) => Some(Changed {
                path: s.path.clone(),
                expected_size: s.size,
                actual_size: l.size,
                expected_sha256: s.sha256,
                actual_sha256: None,
            }),
        }
    });
    v.changed = results.into_iter().flatten().collect();
    v.sbom = crate::job::assemble::sbom::check(dir, seal.contents());
    v.ok = !v.seal_altered
        && v.missing.is_empty()
        && v.changed.is_empty()
        && v.extra.is_empty()
        && v.sbom.is_empty()
        && v.replaced.is_empty()
        && v.not_as_built.is_empty();
    Ok(v)
}

/// Pairs a missing file with what took its place, so that one file is never reported as
/// both missing and extra: a folder at its path (its files are not extra), a file whose
/// name differs only in case (the same file on Windows), or a file where a sealed folder was.
fn reconcile(dir: &Path, v: &mut Verification) {
    let mut missing = Vec::new();
    for m in std::mem::take(&mut v.missing) {
        let inside = format!("{m}/");
        if native(dir, &m).is_dir() {
            let held = v.extra.iter().filter(|e| e.starts_with(&inside)).count();
            v.extra.retain(|e| !e.starts_with(&inside));
            v.replaced.push(Replaced {
                path: m,
                found: "folder".into(),
                what: format!(
                    "a folder is there instead of the file (holding {})",
                    crate::base::report::plural(held, "file")
                ),
            });
        } else if let Some(i) = v
            .extra
            .iter()
            .position(|e| e.to_lowercase() == m.to_lowercase())
        {
            let e = v.extra.remove(i);
            v.replaced.push(Replaced {
                what: format!("on disk as {e}: the name differs in case"),
                path: m,
                found: e,
            });
        } else {
            missing.push(m);
        }
    }
    v.missing = missing;
    // A file where a sealed folder was: its sealed files are not missing one by one.
    for e in std::mem::take(&mut v.extra) {
        let inside = format!("{e}/");
        let held = v.missing.iter().filter(|m| m.starts_with(&inside)).count();
        if held == 0 {
            v.extra.push(e);
            continue;
        }
        v.missing.retain(|m| !m.starts_with(&inside));
        v.replaced.push(Replaced {
            what: format!(
                "a file is there instead of the folder of {} sealed",
                crate::base::report::plural(held, "file")
            ),
            path: e,
            found: "file".into(),
        });
    }
}

/// Like [`verify`], but a folder without a seal becomes a failed result that says so
/// (so that one bad path among several still reports the others).
pub(crate) fn verify_or_explain(
    dir: &Path,
    options: VerifyOptions,
    expected: Option<&Seal>,
) -> Result<Verification, SealError> {
    match verify_against(dir, options, expected) {
        Err(e @ SealError::Missing { .. }) => Ok(Verification::failed(dir, Some(e.to_string()))),
        other => other,
    }
}

fn is_runtime_cache(rel: &str) -> bool {
    let mut parts = rel.rsplit('/');
    let file = parts.next().unwrap_or("");
    parts.next() == Some("__pycache__") && (file.ends_with(".pyc") || file.ends_with(".pyo"))
}

struct Listed {
    rel: String,
    abs: PathBuf,
    size: u64,
    regular: bool,
}

fn list_files(dir: &Path) -> io::Result<Vec<Listed>> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).min_depth(1) {
        let entry = entry.map_err(io::Error::other)?;
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        let rel = relative(dir, entry.path());
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        out.push(Listed {
            rel,
            abs: entry.path().to_path_buf(),
            size,
            regular: ft.is_file(),
        });
    }
    Ok(out)
}

/// `path` relative to `root`, `/`-separated (the form seals and bundles use).
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// What is at a destination folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DestState {
    /// Nothing there.
    Absent,
    /// An empty folder.
    Empty,
    /// A folder with an extpy seal.
    Sealed,
    /// A folder with other content.
    Foreign,
    /// A file or something else.
    NotAFolder,
}

/// Looks at `dest` without changing it.
pub(crate) fn dest_state(dest: &Path) -> DestState {
    match fs::symlink_metadata(dest) {
        Err(_) => DestState::Absent,
        Ok(m) if !m.is_dir() => DestState::NotAFolder,
        Ok(_) => {
            if dest.join(SEAL_FILE).is_file() {
                DestState::Sealed
            } else if fs::read_dir(dest)
                .map(|mut r| r.next().is_none())
                .unwrap_or(false)
            {
                DestState::Empty
            } else {
                DestState::Foreign
            }
        }
    }
}

impl Verification {
    /// A result that has not matched (yet), with why the seal could not be read if known.
    fn failed(dir: &Path, seal_error: Option<String>) -> Self {
        Verification {
            path: dir.to_path_buf(),
            ok: false,
            seal_digest: None,
            manifest: None,
            files: 0,
            seal_altered: false,
            seal_error,
            missing: vec![],
            changed: vec![],
            extra: vec![],
            replaced: vec![],
            ignored: 0,
            sbom: vec![],
            checked_against: CheckedAgainst::OwnSeal,
            expected_seal_digest: None,
            not_as_built: vec![],
            signature: None,
        }
    }

    /// The human report: one line, then one line per problem.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let digest = self
            .seal_digest
            .map(|d| d.short())
            .unwrap_or_else(|| "-".into());
        if self.ok {
            out.push_str(&format!(
                "ok    {}: {} files match seal {digest}, checked {}",
                self.path.display(),
                self.files,
                self.checked_against.words()
            ));
            if self.ignored > 0 {
                out.push_str(&format!(" ({} runtime cache files ignored)", self.ignored));
            }
            out.push('\n');
            if let Some(SealSignature {
                key_id: Some(id),
                verified: true,
                ..
            }) = &self.signature
            {
                out.push_str(&format!("      seal signed by trusted key {id}\n"));
            }
            return out;
        }
        let mut counts = Vec::new();
        if self.seal_altered {
            counts.push("seal altered".to_string());
        }
        let unsigned = self.signature.as_ref().and_then(|s| s.problem.as_ref());
        if unsigned.is_some() {
            counts.push("seal signature refused".to_string());
        }
        for (n, what) in [
            (self.changed.len(), "changed"),
            (self.missing.len(), "missing"),
            (self.extra.len(), "extra"),
            (self.replaced.len(), "replaced"),
            (self.not_as_built.len(), "not as the manifest builds"),
        ] {
            if n > 0 {
                counts.push(format!("{n} {what}"));
            }
        }
        if !self.sbom.is_empty() {
            counts.push(format!(
                "SBOM: {}",
                crate::base::report::plural(self.sbom.len(), "problem")
            ));
        }
        out.push_str(&format!(
            "FAIL  {}: {} (seal {digest}, checked {})\n",
            self.path.display(),
            counts.join(", "),
            self.checked_against.words()
        ));
        if let Some(e) = &self.seal_error {
            out.push_str(&format!(
                "  seal     {}\n",
                e.replace('\n', "\n           ")
            ));
        } else if self.seal_altered {
            out.push_str(&format!(
                "  seal     {SEAL_FILE} was edited: its digest does not match its content\n"
            ));
        }
        if let Some(p) = unsigned {
            out.push_str(&format!(
                "  signed   {}\n",
                p.replace('\n', "\n           ")
            ));
        }
        for c in &self.changed {
            let actual = c
                .actual_sha256
                .map(|d| d.short())
                .unwrap_or_else(|| "not a regular file".into());
            out.push_str(&format!(
                "  changed  {} (sha256 {} expected {}, {} bytes expected {})\n",
                c.path,
                actual,
                c.expected_sha256.short(),
                c.actual_size,
                c.expected_size
            ));
        }
        for m in &self.missing {
            out.push_str(&format!("  missing  {m}\n"));
        }
        for e in &self.extra {
            out.push_str(&format!("  extra    {e}\n"));
        }
        for s in &self.sbom {
            out.push_str(&format!(
                "  sbom     {}\n",
                s.replace('\n', "\n           ")
            ));
        }
        for r in &self.replaced {
            out.push_str(&format!("  replaced {}: {}\n", r.path, r.what));
        }
        if !self.not_as_built.is_empty() {
            out.push_str(&format!(
                "  resealed the seal in the folder is not the seal {} the manifest produces: these files (and the seal) were rewritten\n",
                self.expected_seal_digest.map(|d| d.short()).unwrap_or_default()
            ));
            for d in &self.not_as_built {
                out.push_str(&format!(
                    "  {:<8} {} (against the manifest's build)\n",
                    d.what, d.path
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        assert_eq!(dest_state(&p), DestState::Absent);
        fs::create_dir(&p).unwrap();
        assert_eq!(dest_state(&p), DestState::Empty);
        fs::write(p.join("a"), "").unwrap();
        assert_eq!(dest_state(&p), DestState::Foreign);
        fs::write(p.join(SEAL_FILE), "{}").unwrap();
        assert_eq!(dest_state(&p), DestState::Sealed);
        assert_eq!(dest_state(&p.join("a")), DestState::NotAFolder);
    }

    #[test]
    fn runtime_caches() {
        assert!(is_runtime_cache(
            "Lib/site-packages/idna/__pycache__/core.cpython-312.pyc"
        ));
        assert!(!is_runtime_cache("Lib/site-packages/idna/core.pyc"));
        assert!(!is_runtime_cache("__pycache__/notes.txt"));
    }
}
