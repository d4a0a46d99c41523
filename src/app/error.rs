//! The top-level error and the documented exit codes.

use crate::job::assemble::BuildError;
use crate::job::assemble::seal::SealError;
use crate::job::bundle::BundleError;
use crate::job::doctor::DoctorError;
use crate::job::fetch::FetchError;
use crate::job::layout::LayoutError;
use crate::job::source::SourceError;
use crate::mechanism::cache::CacheError;
use crate::mechanism::fsio::IoError;
use crate::mechanism::net::NetError;
use crate::mechanism::place::PlaceError;
use crate::model::manifest::InputError;

pub use crate::base::exit::{EXIT_CODES_HELP, ExitCode};

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
    /// A signing or trusted key could not be made or read.
    #[error(transparent)]
    Key(#[from] crate::mechanism::sign::KeyError),
    /// Writing a rollout project failed.
    #[error(transparent)]
    Rollout(#[from] crate::job::rollout::RolloutError),
    /// `extpy lock` failed.
    #[error(transparent)]
    Lock(#[from] crate::job::lock::LockError),
    /// `extpy audit` could not run.
    #[error(transparent)]
    Audit(#[from] crate::job::audit::AuditError),
    /// Laying out VU folders failed.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The PE files of a tree could not be listed.
    #[error(transparent)]
    Signatures(#[from] crate::job::signatures::SignatureError),
    /// The drift watch could not be installed, queried or written.
    #[error(transparent)]
    Watch(#[from] crate::job::watch::WatchError),
    /// Something does not match its seal, pin or checksum list (the report says what).
    #[error("{0}")]
    Mismatch(String),
    /// `doctor` could not start.
    #[error(transparent)]
    Doctor(#[from] DoctorError),
    /// The mail check could not start.
    #[error(transparent)]
    Mail(#[from] crate::job::mail::check::MailError),
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
        report: crate::job::doctor::DoctorReport,
    },
    /// A folder or file could not be put in place.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// A local file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl Error {
    /// The exit code for this error: each module's error knows its own class.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Input(_) | Error::Usage(_) => ExitCode::Input,
            Error::Mismatch(_) => ExitCode::Verification,
            Error::Diagnosed(_) => ExitCode::Network,
            Error::Mail(e) => e.exit_code(),
            Error::Explained { source, .. } => source.exit_code(),
            Error::Source(e) => e.exit_code(),
            Error::Fetch(e) => e.exit_code(),
            Error::Net(e) => e.exit_code(),
            Error::Cache(e) => e.exit_code(),
            Error::Build(e) => e.exit_code(),
            Error::Seal(e) => e.exit_code(),
            Error::Bundle(e) => e.exit_code(),
            Error::Key(e) => e.exit_code(),
            Error::Rollout(e) => e.exit_code(),
            Error::Layout(e) => e.exit_code(),
            Error::Watch(e) => e.exit_code(),
            Error::Signatures(e) => e.exit_code(),
            Error::Doctor(e) => e.exit_code(),
            Error::Place(e) => e.exit_code(),
            Error::Io(e) => e.exit_code(),
            Error::Lock(e) => e.exit_code(),
            Error::Audit(e) => e.exit_code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::assemble::seal::SealError;
    use crate::job::layout::LayoutError;
    use std::path::PathBuf;

    fn io() -> IoError {
        IoError::new("x", "cannot write", std::io::ErrorKind::StorageFull.into())
    }

    #[test]
    fn each_error_brings_its_exit_class() {
        let cases: Vec<(Error, ExitCode)> = vec![
            (Error::Io(io()), ExitCode::Local),
            (
                Error::Place(PlaceError::NotAFolder { path: "x".into() }),
                ExitCode::Input,
            ),
            (Error::Layout(LayoutError::Io(io())), ExitCode::Local),
            (
                Error::Layout(LayoutError::Seal(SealError::NoFolder { path: "x".into() })),
                ExitCode::Input,
            ),
            (
                Error::Seal(SealError::Corrupt {
                    path: PathBuf::from("x"),
                    reason: "eof".into(),
                }),
                ExitCode::Verification,
            ),
            (
                Error::Build(BuildError::Archive(
                    crate::mechanism::archive::ArchiveError::Io(io()),
                )),
                ExitCode::Local,
            ),
            (
                Error::Bundle(BundleError::NotFound {
                    path: "b.zip".into(),
                }),
                ExitCode::Input,
            ),
            (Error::Cache(CacheError::from(io())), ExitCode::Local),
            (
                Error::Fetch(FetchError::Offline {
                    cache: "c".into(),
                    missing: vec![],
                    total: 0,
                }),
                ExitCode::Network,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit_code(), code, "{e}");
        }
    }

    #[test]
    fn the_one_io_shape_names_path_action_cause_and_help() {
        let text = Error::Io(io()).to_string();
        assert!(text.starts_with("x: cannot write: "), "{text}");
        assert!(text.contains("help: the disk is full"), "{text}");
    }
}
