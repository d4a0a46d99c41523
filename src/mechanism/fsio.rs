//! Local file-system failures: one error shape (`path`, what was being done, the cause) with
//! the advice a user can act on, shared by every module that reads or writes files.

use std::io;
use std::path::{Path, PathBuf};

use crate::base::exit::ExitCode;

/// A local file or folder could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {action}: {source}{}", path.display(), hint(path, source))]
pub struct IoError {
    /// The path involved.
    pub path: PathBuf,
    /// What was being done ("cannot create the folder").
    pub action: &'static str,
    /// The cause.
    pub source: io::Error,
}

impl IoError {
    /// The failure of `action` on `path`.
    pub fn new(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Self {
        Self {
            path: path.into(),
            action,
            source,
        }
    }

    /// Local I/O exits with [`ExitCode::Local`]; a file refused by a size or kind limit is
    /// an input error.
    pub fn exit_code(&self) -> ExitCode {
        if crate::mechanism::limits::is_refusal(&self.source) {
            ExitCode::Input
        } else {
            ExitCode::Local
        }
    }
}

/// `map_err(at(path, "cannot write"))`: the I/O error of `action` on `path`.
pub(crate) fn at<'a>(
    path: &'a Path,
    action: &'static str,
) -> impl FnOnce(io::Error) -> IoError + 'a {
    move |source| IoError::new(path, action, source)
}

/// Advice for an I/O failure a user can fix (disk full, no permission), or nothing.
fn io_hint(e: &io::Error) -> &'static str {
    if sharing_violation(e) {
        return "\n  help: a process holds a file in this folder (antivirus, an open Explorer or cmd window, a running python.exe): stop CEM or close the window, then re-run";
    }
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "\n  help: the disk is full; free space and run again (nothing was changed)"
        }
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            "\n  help: this folder is not writable for you (on Windows a file in it may be in use: is CEM running with this Python?)"
        }
        _ => "",
    }
}

/// Like [`io_hint`], naming the folder a process holds a file in.
pub(crate) fn hint(path: &Path, e: &io::Error) -> String {
    if sharing_violation(e) {
        return format!(
            "\n  help: a process holds a file in {} (antivirus, an open Explorer or cmd window, a running python.exe): stop CEM or close the window, then re-run",
            path.display()
        );
    }
    io_hint(e).to_string()
}

/// A Windows error code injected into an [`io::Error`], so that the handling of Windows
/// failures runs (and is tested) on any platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WinError(pub u32);

impl std::fmt::Display for WinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.0 {
            5 => "Access is denied.",
            32 => "The process cannot access the file because it is being used by another process.",
            33 => {
                "The process cannot access the file because another process has locked a portion of the file."
            }
            _ => "Windows error",
        };
        write!(f, "{what} (os error {})", self.0)
    }
}

impl std::error::Error for WinError {}

#[cfg(test)]
impl WinError {
    /// The `io::Error` Windows would return with this code.
    pub(crate) fn io(code: u32) -> io::Error {
        let kind = if code == 5 {
            io::ErrorKind::PermissionDenied
        } else {
            io::ErrorKind::Other
        };
        io::Error::new(kind, WinError(code))
    }
}

/// The Windows error code of `e`: its raw code on Windows, or an injected [`WinError`].
pub(crate) fn windows_code(e: &io::Error) -> Option<u32> {
    if cfg!(windows)
        && let Some(code) = e.raw_os_error()
    {
        return u32::try_from(code).ok();
    }
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<WinError>())
        .map(|w| w.0)
}

/// ERROR_SHARING_VIOLATION (32) or ERROR_LOCK_VIOLATION (33): a process holds the file.
pub(crate) fn sharing_violation(e: &io::Error) -> bool {
    matches!(windows_code(e), Some(32 | 33))
}
