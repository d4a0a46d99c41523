//! Writing a folder beside its target and renaming it into place only when complete.
//!
//! `Staging` holds a lock beside the target (`.<name>.extpy-lock`, kept so that two runs
//! never race on it), removes leftovers of runs that were killed, and gives a sibling
//! temporary folder. `commit` swaps it in; dropping it uncommitted removes it. The target
//! is never half-written: it is the old folder or the new one.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Why a folder could not be staged or put in place.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// An I/O step failed.
    #[error("{}: {action}: {source}{}", path.display(), io_hint(source))]
    Io {
        /// The path involved.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// The target exists and is not a folder.
    #[error("{} exists and is not a folder; remove it or choose another destination", path.display())]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
}

/// Advice for an I/O failure a user can fix (disk full, no permission), or nothing.
pub fn io_hint(e: &io::Error) -> &'static str {
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

/// A temporary folder beside `target`, to be committed into place.
#[derive(Debug)]
pub struct Staging {
    target: PathBuf,
    temp: PathBuf,
    _lock: Option<File>,
    committed: bool,
}

fn io_err<'a>(path: &'a Path, action: &'static str) -> impl FnOnce(io::Error) -> PlaceError + 'a {
    move |source| PlaceError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

impl Staging {
    /// Locks `target`, clears leftovers of killed runs, and creates the temporary folder.
    pub fn begin(target: &Path) -> Result<Self, PlaceError> {
        Self::begin_with(target, true)
    }

    /// Like [`Staging::begin`] for a caller that already holds a lock covering `target`
    /// (see [`lock_folder`]), so no lock file is put beside it.
    pub fn begin_locked(target: &Path) -> Result<Self, PlaceError> {
        Self::begin_with(target, false)
    }

    fn begin_with(target: &Path, own_lock: bool) -> Result<Self, PlaceError> {
        let target =
            std::path::absolute(target).map_err(io_err(target, "cannot resolve the path"))?;
        if target.exists() && !target.is_dir() {
            return Err(PlaceError::NotAFolder { path: target });
        }
        let parent = target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "dest".into());
        fs::create_dir_all(&parent).map_err(io_err(&parent, "cannot create the folder"))?;
        let lock = if own_lock {
            Some(lock_file(&parent.join(format!(".{name}.extpy-lock")))?)
        } else {
            None
        };
        for stale in leftovers(&parent, &name) {
            fs::remove_dir_all(&stale).map_err(io_err(
                &stale,
                "cannot remove the leftover of an interrupted run",
            ))?;
        }
        let temp = parent.join(format!(".{name}.extpy-tmp-{}", std::process::id()));
        fs::create_dir(&temp).map_err(io_err(&temp, "cannot create the temporary folder"))?;
        Ok(Self {
            target,
            temp,
            _lock: lock,
            committed: false,
        })
    }

    /// The temporary folder to write into.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The final path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Puts the temporary folder in place of the target (which may exist).
    pub fn commit(mut self) -> Result<(), PlaceError> {
        let parent = self
            .target
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let name = self
            .target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if self.target.exists() {
            let old = parent.join(format!(".{name}.extpy-old-{}", std::process::id()));
            fs::rename(&self.target, &old).map_err(io_err(
                &self.target,
                "cannot move the previous folder aside",
            ))?;
            if let Err(source) = fs::rename(&self.temp, &self.target) {
                let _ = fs::rename(&old, &self.target);
                return Err(PlaceError::Io {
                    path: self.target.clone(),
                    action: "cannot move the new folder into place",
                    source,
                });
            }
            self.committed = true;
            // The new folder is in place; a leftover old copy is removed by the next run if this fails.
            let _ = fs::remove_dir_all(&old);
        } else {
            fs::rename(&self.temp, &self.target).map_err(io_err(
                &self.target,
                "cannot move the new folder into place",
            ))?;
            self.committed = true;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.temp);
        }
    }
}

/// Holds an exclusive lock on `<dir>/.extpy.lock` (creating `dir`) until dropped.
pub fn lock_folder(dir: &Path) -> Result<File, PlaceError> {
    fs::create_dir_all(dir).map_err(io_err(dir, "cannot create the folder"))?;
    lock_file(&dir.join(".extpy.lock"))
}

fn lock_file(path: &Path) -> Result<File, PlaceError> {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err(path, "cannot create the lock file"))?;
    lock.lock().map_err(io_err(path, "cannot lock"))?;
    Ok(lock)
}

fn leftovers(parent: &Path, name: &str) -> Vec<PathBuf> {
    let prefixes = [format!(".{name}.extpy-tmp-"), format!(".{name}.extpy-old-")];
    let Ok(rd) = fs::read_dir(parent) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            prefixes.iter().any(|p| n.starts_with(p.as_str()))
        })
        .map(|e| e.path())
        .collect()
}

/// A temporary folder (removed when dropped) for files extpy unpacks on its way.
pub fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, PlaceError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| PlaceError::Io {
            path: std::env::temp_dir(),
            action: "cannot create a temporary folder",
            source,
        })
}

/// Writes a file through a temporary sibling renamed into place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PlaceError> {
    let parent = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    fs::create_dir_all(&parent).map_err(io_err(&parent, "cannot create the folder"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent.join(format!(".{name}.extpy-tmp-{}", std::process::id()));
    let written = fs::write(&temp, bytes).and_then(|_| fs::rename(&temp, path));
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(PlaceError::Io {
            path: path.to_path_buf(),
            action: "cannot write",
            source,
        });
    }
    Ok(())
}

/// What is at a destination folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestState {
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
pub fn dest_state(dest: &Path) -> DestState {
    match fs::symlink_metadata(dest) {
        Err(_) => DestState::Absent,
        Ok(m) if !m.is_dir() => DestState::NotAFolder,
        Ok(_) => {
            if dest.join(crate::assemble::seal::SEAL_FILE).is_file() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_cleans() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("old.txt"), "old").unwrap();

        let s = Staging::begin(&target).unwrap();
        fs::write(s.path().join("new.txt"), "new").unwrap();
        drop(s);
        assert!(
            target.join("old.txt").is_file(),
            "an uncommitted staging leaves the target alone"
        );

        let s = Staging::begin(&target).unwrap();
        fs::write(s.path().join("new.txt"), "new").unwrap();
        s.commit().unwrap();
        assert!(target.join("new.txt").is_file());
        assert!(!target.join("old.txt").exists());
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.contains("extpy-tmp") && !n.contains("extpy-old")),
            "{names:?}"
        );
    }

    #[test]
    fn leftovers_of_killed_runs_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let stale = dir.path().join(".out.extpy-tmp-999999");
        fs::create_dir(&stale).unwrap();
        fs::write(stale.join("half"), "x").unwrap();
        let other = dir.path().join(".other.extpy-tmp-1");
        fs::create_dir(&other).unwrap();
        let s = Staging::begin(&target).unwrap();
        assert!(!stale.exists());
        assert!(other.exists(), "only this target's leftovers");
        s.commit().unwrap();
    }

    #[test]
    fn states() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        assert_eq!(dest_state(&p), DestState::Absent);
        fs::create_dir(&p).unwrap();
        assert_eq!(dest_state(&p), DestState::Empty);
        fs::write(p.join("a"), "").unwrap();
        assert_eq!(dest_state(&p), DestState::Foreign);
        fs::write(p.join(crate::assemble::seal::SEAL_FILE), "{}").unwrap();
        assert_eq!(dest_state(&p), DestState::Sealed);
        assert_eq!(dest_state(&p.join("a")), DestState::NotAFolder);
    }
}
