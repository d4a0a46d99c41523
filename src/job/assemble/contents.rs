//! What a build writes and what its seal and SBOM describe: the manifest's identity, the
//! CPython, the packages (with the licence each declares) and every file with its size and
//! sha256. Below `wheel`, `sbom`, `seal` and `mod.rs`, which all read or make these, so none
//! of them needs another's file for its inputs.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mechanism::archive::{Archive, ArchiveError, Entry};
use crate::mechanism::digest::Sha256Digest;
use crate::mechanism::fsio::{IoError, at};

/// A file as sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SealedFile {
    /// Relative path, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Its sha256.
    pub sha256: Sha256Digest,
}

/// The manifest a distribution was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SealManifest {
    /// Its name.
    pub name: String,
    /// Its digest.
    pub sha256: Sha256Digest,
}

/// The CPython in the distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SealPython {
    /// `3.12.10`.
    pub version: String,
    /// `win_amd64`.
    pub platform: String,
    /// The embeddable zip it came from.
    pub embeddable: String,
    /// Its sha256.
    pub sha256: Sha256Digest,
}

/// An installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SealPackage {
    /// Project name as in its metadata.
    pub name: String,
    /// Version.
    pub version: String,
    /// The wheel file.
    pub wheel: String,
    /// The wheel's sha256.
    pub sha256: Sha256Digest,
}

/// A built tree's contents as its seal lists them: the one input both the seal's check and
/// the SBOM's recomputation read, so the SBOM needs no part of the seal file's format.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Contents<'a> {
    /// The manifest it was built from.
    pub manifest: &'a SealManifest,
    /// Its CPython.
    pub python: &'a SealPython,
    /// Its packages, in manifest order.
    pub packages: &'a [SealPackage],
    /// Every file, sorted by path.
    pub files: &'a [SealedFile],
}

/// `root` joined with a `/`-separated relative path (the form seals and bundles use).
pub(crate) fn native(root: &Path, rel: &str) -> PathBuf {
    rel.split('/').fold(root.to_path_buf(), |p, c| p.join(c))
}

/// Writes `bytes` at `root`/`rel` and returns the file as the seal will list it.
pub(crate) fn write_sealed(root: &Path, rel: &str, bytes: &[u8]) -> Result<SealedFile, IoError> {
    let path = native(root, rel);
    fs::write(&path, bytes).map_err(at(&path, "cannot write"))?;
    Ok(SealedFile {
        path: rel.to_string(),
        size: bytes.len() as u64,
        sha256: Sha256Digest::of(bytes),
    })
}

/// Where a build's files go: into a folder, or nowhere when only the seal they would get is
/// wanted (`expected_seal` in mod.rs). One code path does both, so the two cannot disagree.
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

/// The licence a wheel's METADATA declares: `License-Expression` (PEP 639), else `License`,
/// else the `License ::` classifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Licence {
    /// `License-Expression` (SPDX).
    pub expression: Option<String>,
    /// `License` (free text).
    pub text: Option<String>,
    /// `Classifier: License :: ...` values.
    pub classifiers: Vec<String>,
}

impl Licence {
    /// Reads the licence fields of METADATA headers (keys lowercased).
    pub(crate) fn from_headers(h: &HashMap<String, Vec<String>>) -> Self {
        let first = |k: &str| {
            h.get(k)
                .and_then(|v| v.first())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("UNKNOWN"))
        };
        Licence {
            expression: first("license-expression"),
            text: first("license"),
            classifiers: h
                .get("classifier")
                .into_iter()
                .flatten()
                .filter(|c| c.starts_with("License ::"))
                .cloned()
                .collect(),
        }
    }
}
