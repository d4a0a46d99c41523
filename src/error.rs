//! The top-level error and the documented exit codes.

use crate::archive::ArchiveError;
use crate::assemble::BuildError;
use crate::assemble::seal::SealError;
use crate::assemble::wheel::WheelError;
use crate::bundle::BundleError;
use crate::cache::CacheError;
use crate::doctor::DoctorError;
use crate::fetch::{ArtifactError, FetchError};
use crate::layout::LayoutError;
use crate::manifest::InputError;
use crate::net::NetError;
use crate::place::PlaceError;
use crate::source::SourceError;

/// Exit codes, documented in the README and `extpy --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Everything worked.
    Success = 0,
    /// A local failure: file system, permissions, disk full.
    Local = 1,
    /// Usage or input error: bad arguments, manifest, topology or `--ca-cert` file.
    Input = 2,
    /// Verification failed: a hash, seal or bundle does not match.
    Verification = 3,
    /// Network or TLS failure, a live check that failed, or artifacts missing with `--offline`.
    Network = 4,
}

/// The exit-code table shown in `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  local failure (file system, permissions, disk full)
  2  usage or input error (arguments, manifest, topology, --ca-cert file)
  3  verification failed (a sha256, seal or bundle does not match)
  4  network or TLS failure, a failed live check (doctor, mail check), or artifacts
     missing with --offline";

/// Anything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid input file.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A wrong argument.
    #[error("{0}")]
    Usage(String),
    /// Bad source configuration or index trouble.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Fetching failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A network failure outside a fetch.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Building the distribution failed.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// A seal could not be read.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A bundle could not be made or used.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// Writing a rollout project failed.
    #[error(transparent)]
    Rollout(#[from] crate::rollout::RolloutError),
    /// Laying out VU folders failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// Something does not match its seal, pin or checksum list (the report says what).
    #[error("{0}")]
    Mismatch(String),
    /// `doctor` could not start.
    #[error(transparent)]
    Doctor(#[from] DoctorError),
    /// The mail check could not start.
    #[error(transparent)]
    Mail(#[from] crate::mail::check::MailError),
    /// Hosts failed their diagnosis (the report says why).
    #[error("{0}")]
    Diagnosed(String),
    /// A download failed on TLS, explained by the diagnosis of each host concerned.
    #[error("{message}")]
    Explained {
        /// The error with each TLS failure replaced by its host's verdict.
        message: String,
        /// The original error (it decides the exit code).
        source: Box<Error>,
        /// The diagnosis of each host whose TLS failed.
        report: crate::doctor::DoctorReport,
    },
    /// A folder or file could not be put in place.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// A local file could not be read or written.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    /// The exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Input(_) | Error::Usage(_) => ExitCode::Input,
            Error::Source(s) => source_code(s),
            Error::Fetch(f) => fetch_code(f),
            Error::Net(n) => net_code(n),
            Error::Cache(_) | Error::Io { .. } => ExitCode::Local,
            Error::Build(b) => build_code(b),
            Error::Seal(SealError::NoFolder { .. }) => ExitCode::Input,
            Error::Seal(SealError::Missing { .. }) | Error::Mismatch(_) => ExitCode::Verification,
            Error::Doctor(d) => doctor_code(d),
            Error::Diagnosed(_) => ExitCode::Network,
            Error::Mail(m) if m.is_input() => ExitCode::Input,
            Error::Mail(_) => ExitCode::Network,
            Error::Explained { source, .. } => source.exit_code(),
            Error::Seal(SealError::Io { .. }) => ExitCode::Local,
            Error::Layout(l) => layout_code(l),
            Error::Place(PlaceError::NotAFolder { .. }) => ExitCode::Input,
            Error::Place(_) => ExitCode::Local,
            Error::Rollout(r) => match r {
                crate::rollout::RolloutError::Place(_) => ExitCode::Local,
                _ => ExitCode::Input,
            },
            Error::Bundle(b) => match b {
                BundleError::Archive(a) => archive_code(a),
                BundleError::Invalid { .. } | BundleError::Changed { .. } => ExitCode::Verification,
                BundleError::Input(_) | BundleError::NotFound { .. } => ExitCode::Input,
                BundleError::Io { .. } => ExitCode::Local,
            },
        }
    }
}

fn layout_code(l: &LayoutError) -> ExitCode {
    match l {
        LayoutError::Selection(_) | LayoutError::Place(PlaceError::NotAFolder { .. }) => {
            ExitCode::Input
        }
        LayoutError::BadDistribution { .. } | LayoutError::CopyNotVerified { .. } => {
            ExitCode::Verification
        }
        LayoutError::Place(_) => ExitCode::Local,
        LayoutError::Seal(SealError::NoFolder { .. }) => ExitCode::Input,
        LayoutError::Seal(SealError::Missing { .. }) => ExitCode::Verification,
        LayoutError::Seal(SealError::Io { .. }) => ExitCode::Local,
    }
}

fn archive_code(a: &ArchiveError) -> ExitCode {
    if a.is_io() {
        ExitCode::Local
    } else {
        ExitCode::Verification
    }
}

fn build_code(b: &BuildError) -> ExitCode {
    match b {
        BuildError::DestForeign { .. } | BuildError::Clash { .. } => ExitCode::Input,
        BuildError::Place(PlaceError::NotAFolder { .. }) => ExitCode::Input,
        BuildError::Place(_) | BuildError::Io { .. } => ExitCode::Local,
        BuildError::Embeddable { .. } => ExitCode::Verification,
        BuildError::Archive(a) => archive_code(a),
        BuildError::Wheel(WheelError::Archive(a)) => archive_code(a),
        BuildError::Wheel(_) => ExitCode::Verification,
    }
}

fn doctor_code(d: &DoctorError) -> ExitCode {
    match d {
        DoctorError::ExportDir { .. } => ExitCode::Local,
        DoctorError::Net(n) => net_code(n),
        _ if d.is_input() => ExitCode::Input,
        _ => ExitCode::Network,
    }
}

fn net_code(n: &NetError) -> ExitCode {
    if n.is_input() {
        ExitCode::Input
    } else if n.is_io() {
        ExitCode::Local
    } else {
        ExitCode::Network
    }
}

fn source_code(s: &SourceError) -> ExitCode {
    match s {
        SourceError::BadBase { .. } => ExitCode::Input,
        SourceError::IndexHashMismatch { .. } => ExitCode::Verification,
        SourceError::Net(n) => net_code(n),
        _ => ExitCode::Network,
    }
}

fn artifact_code(a: &ArtifactError) -> ExitCode {
    match a {
        ArtifactError::HashMismatch { .. } => ExitCode::Verification,
        ArtifactError::Source { source, .. } => source_code(source),
        ArtifactError::Net { source, .. } => net_code(source),
        ArtifactError::Cache(_) => ExitCode::Local,
    }
}

fn fetch_code(f: &FetchError) -> ExitCode {
    match f {
        FetchError::Offline { .. } => ExitCode::Network,
        FetchError::Cache(_) => ExitCode::Local,
        FetchError::Net(n) => net_code(n),
        // Several failures: the most actionable class wins (input, then verification).
        FetchError::Artifacts(failures) => {
            let codes: Vec<ExitCode> = failures.iter().map(artifact_code).collect();
            [ExitCode::Input, ExitCode::Verification, ExitCode::Local]
                .into_iter()
                .find(|c| codes.contains(c))
                .unwrap_or(ExitCode::Network)
        }
    }
}
