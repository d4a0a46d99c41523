//! Why a lock fails: `LockError`, below the lock's parts (`index`, `python`, `resolve`)
//! and `mod.rs`, which all return it.

use url::Url;

use crate::job::source::SourceError;
use crate::mechanism::archive::ArchiveError;
use crate::mechanism::cache::CacheError;
use crate::mechanism::net::NetError;
use crate::model::manifest::{InputError, Origin, Platform, PythonVersion};

/// Why a lock failed.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The manifest states no requirements.
    #[error(
        "{origin}: the manifest has no `requires:`, so there is nothing to lock\n  help: add `requires:` with what CEM needs (PEP 508), e.g.\n    requires:\n      - msal>=1.39"
    )]
    NoRequires {
        /// The manifest.
        origin: Origin,
    },
    /// The built-in manifest cannot be rewritten.
    #[error(
        "the built-in manifest cannot be rewritten\n  help: copy it (`extpy bundle inspect` shows it) and pass --manifest FILE, or write the result with --out FILE"
    )]
    Builtin,
    /// The requirements cannot be met together.
    #[error(
        "the requirements cannot be met together:\n{}{}\n  help: relax the requirement named first in the chain, or pick another --python",
        indent(chain),
        notes_text(notes)
    )]
    Unsatisfiable {
        /// The solver's chain of reasons.
        chain: String,
        /// Versions that exist but cannot be used, and why.
        notes: Vec<String>,
    },
    /// The index contradicts itself or serves something that is not what it says.
    #[error(
        "{url}: {what}\n  help: the index is inconsistent; nothing was written. Try again later or use another --index-url"
    )]
    Lie {
        /// Where.
        url: Url,
        /// What does not match.
        what: String,
    },
    /// The index serves an attestation for a locked wheel that does not verify.
    #[error(
        "{url}: the provenance of {file} does not verify: {reason}\n  signed by: {found}\n  help: nothing was written; {}",
        reason.help()
    )]
    Provenance {
        /// The integrity endpoint.
        url: Url,
        /// The wheel.
        file: String,
        /// The certificate's identity, or that none verified.
        found: String,
        /// What failed.
        reason: crate::mechanism::sigstore::Reason,
    },
    /// The embeddable zip's bundle verifies, but for another signer than python.org names.
    #[error(
        "{url}: {file} is signed by another identity than python.org names for CPython {line}\n  expected: {expected}\n  found:    {found}\n  help: nothing was written; do not use this zip. If the release manager really changed, python.org's Sigstore Information page names the new one: check it there, then report it so extpy's table follows"
    )]
    PythonSigner {
        /// The embeddable zip.
        file: String,
        /// Its `.sigstore` bundle.
        url: Url,
        /// `X.Y`.
        line: String,
        /// The signer python.org documents for that line.
        expected: crate::mechanism::sigstore::Identity,
        /// The signer whose signature verified.
        found: crate::mechanism::sigstore::Identity,
    },
    /// The python mirror has no embeddable zip of that release for the platform.
    #[error(
        "CPython {version} has no embeddable zip for {platform} on {mirror} (a branch in its security-fix phase ships source only){}",
        match last {
            Some(l) => format!("\n  help: the last {}.{} release with one is {l}: extpy lock --python {l}", version.major, version.minor),
            None => format!("\n  help: no {}.{} release on that mirror has one; pick another --python", version.major, version.minor),
        }
    )]
    PythonNoEmbeddable {
        /// The release asked for.
        version: PythonVersion,
        /// The platform.
        platform: Platform,
        /// The python mirror.
        mirror: Url,
        /// The newest release of that X.Y with an embeddable zip, if any.
        last: Option<PythonVersion>,
    },
    /// The zip is there but nothing publishes its sha256.
    #[error(
        "{url} does not exist, so the mirror publishes no sha256 for the embeddable zip beside it\n  help: use a mirror that keeps python.org's .spdx.json files, or pin embeddable: by hand after checking its sha256 on python.org"
    )]
    PythonUnpublished {
        /// The missing SPDX document.
        url: Url,
    },
    /// The rewritten manifest did not parse to what was meant (a bug; nothing was written).
    #[error("{0}\n  help: nothing was written; please report this with the manifest")]
    Internal(String),
    /// A local file could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::mechanism::fsio::IoError),
    /// An index page.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A download.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The cache.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A wheel read for its metadata.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The manifest itself.
    #[error(transparent)]
    Input(#[from] InputError),
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

fn notes_text(notes: &[String]) -> String {
    notes
        .iter()
        .map(|n| format!("  note: {n}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
}

impl LockError {
    /// The exit code: 2 input, 3 verification, 4 network, 1 local.
    pub fn exit_code(&self) -> crate::base::exit::ExitCode {
        use crate::base::exit::ExitCode;
        match self {
            LockError::NoRequires { .. }
            | LockError::Builtin
            | LockError::Unsatisfiable { .. }
            | LockError::PythonNoEmbeddable { .. }
            | LockError::PythonUnpublished { .. }
            | LockError::Input(_) => ExitCode::Input,
            LockError::Lie { .. }
            | LockError::Provenance { .. }
            | LockError::PythonSigner { .. } => ExitCode::Verification,
            LockError::Internal(_) => ExitCode::Local,
            LockError::Io(e) => e.exit_code(),
            LockError::Cache(e) => e.exit_code(),
            LockError::Archive(e) => e.exit_code(),
            LockError::Source(SourceError::BadPage { .. }) => ExitCode::Verification,
            LockError::Source(e) => e.exit_code(),
            LockError::Net(e) => e.exit_code(),
        }
    }
}
