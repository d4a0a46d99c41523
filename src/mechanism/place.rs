//! Writing a folder beside its target and renaming it into place only when complete.
//!
//! `Staging` holds a lock beside the target (`.<name>.extpy-lock`, kept so that two runs
//! never race on it), removes leftovers of runs that were killed, and gives a sibling
//! temporary folder. `commit` swaps it in; dropping it uncommitted removes it. The target
//! is never half-written: it is the old folder or the new one.
//!
//! On Windows a rename or delete fails with os error 5, 32 or 33 while any process holds a
//! handle inside the folder (antivirus scanning what was just written, an Explorer or cmd
//! window open in it, a running python.exe). Every rename and delete of a swap is retried
//! with a bounded backoff, saying what it waits for; the file-system calls go through
//! [`FsOps`] so tests can make them fail the way Windows does.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::base::exit::ExitCode;
use crate::base::report::Reporter;
#[cfg(test)]
use crate::mechanism::fsio::WinError;
#[cfg(any(windows, test))]
use crate::mechanism::fsio::sharing_violation;
use crate::mechanism::fsio::{IoError, at, windows_code};

/// How long a rename or delete is retried while a process holds a file in the folder.
pub(crate) const RETRY_LIMIT: Duration = Duration::from_secs(30);

/// Why a folder could not be staged or put in place.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// An I/O step failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The target exists and is not a folder.
    #[error("{} exists and is not a folder; remove it or choose another destination", path.display())]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// The target is a symbolic link (or junction): a folder renamed into its place would
    /// replace the link, not write where it points.
    #[error("{} is a symbolic link (to {}), not a folder: extpy writes a new folder beside the destination and renames it into place, which would replace the link itself, not write into {}\n  help: give the folder the link points to as the destination, or remove the link", path.display(), to.display(), to.display())]
    Link {
        /// The link.
        path: PathBuf,
        /// Where it points.
        to: PathBuf,
    },
    /// The new folder could not be put in place and the previous one could not be put back.
    #[error(
        "{}: cannot move the new folder into place: {source}\n  the previous copy is kept at {}\n  help: rename {} back to {} (or re-run the same extpy command, which puts it back or completes the change), after stopping what holds a file in the folder",
        target.display(),
        old.display(),
        old.display(),
        target.display()
    )]
    Stranded {
        /// The destination, now missing.
        target: PathBuf,
        /// Where the previous copy is.
        old: PathBuf,
        /// Why the new folder could not be moved in.
        source: io::Error,
    },
    /// Several previous copies of interrupted swaps exist and the destination is missing.
    #[error(
        "{} is missing and several previous copies of interrupted runs exist: {}\n  help: rename the one to keep back to {}, remove the others, then re-run",
        target.display(),
        copies.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        target.display()
    )]
    SeveralOld {
        /// The destination.
        target: PathBuf,
        /// The copies found.
        copies: Vec<PathBuf>,
    },
    /// A rollback was asked for where no previous copy was kept.
    #[error(
        "{}: no previous copy is kept ({} does not exist), so there is nothing to roll back to (nothing was changed)\n  help: roll back only VUs laid out with `extpy layout --keep-previous`; to go back otherwise, lay out the previous manifest again",
        target.display(),
        kept.display()
    )]
    NothingKept {
        /// The destination.
        target: PathBuf,
        /// Where the kept copy would be.
        kept: PathBuf,
    },
    /// A Python in the destination is running.
    #[error(
        "{}: {} is in use by a running process, so the folder cannot be replaced (nothing was changed)\n  help: stop CEM (or whatever runs this Python) on this node, then re-run",
        target.display(),
        file.display()
    )]
    InUse {
        /// The destination.
        target: PathBuf,
        /// The file in use.
        file: PathBuf,
    },
}

impl PlaceError {
    /// The exit code: a destination that is not a folder is the user's input; the rest
    /// (I/O, a stranded or busy swap) is local.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            PlaceError::NotAFolder { .. }
            | PlaceError::Link { .. }
            | PlaceError::NothingKept { .. } => ExitCode::Input,
            PlaceError::Io(e) => e.exit_code(),
            PlaceError::Stranded { .. }
            | PlaceError::SeveralOld { .. }
            | PlaceError::InUse { .. } => ExitCode::Local,
        }
    }

    /// The error for a destination that exists and is not a folder, naming a link as a link.
    pub fn not_a_folder(path: PathBuf) -> Self {
        match fs::read_link(&path) {
            Ok(to) => PlaceError::Link { path, to },
            Err(_) => PlaceError::NotAFolder { path },
        }
    }
}

/// A failure that goes away when the process holding a handle lets go (5, 32, 33).
fn transient(e: &io::Error) -> bool {
    matches!(windows_code(e), Some(5 | 32 | 33))
}

/// The file-system calls of a swap, behind a seam: tests inject the failures of Windows.
pub(crate) trait FsOps: Send + Sync {
    /// Renames a folder.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    /// Deletes a folder tree.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }
    /// Makes every read-only entry of a tree deletable.
    fn clear_readonly(&self, path: &Path) -> io::Result<()> {
        clear_readonly_tree(path)
    }
    /// True when a running process has `file` open (Windows keeps a running image locked).
    fn in_use(&self, file: &Path) -> bool {
        file_in_use(file)
    }
    /// Waits between two tries.
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
    /// True when names differ only in case name the same file (Windows).
    fn case_insensitive(&self) -> bool {
        cfg!(windows)
    }
}

/// The real file system.
pub(crate) struct RealFs;

impl FsOps for RealFs {}

#[cfg(windows)]
fn file_in_use(file: &Path) -> bool {
    use std::os::windows::fs::OpenOptionsExt;
    // A running image or a loaded DLL cannot be opened for writing without sharing.
    match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .share_mode(0)
        .open(file)
    {
        Ok(_) => false,
        Err(e) => sharing_violation(&e),
    }
}

#[cfg(not(windows))]
fn file_in_use(_file: &Path) -> bool {
    // Elsewhere a running binary can be replaced: nothing to check.
    false
}

fn clear_readonly_tree(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        make_writable(path, &meta)?;
        for entry in fs::read_dir(path)? {
            clear_readonly_tree(&entry?.path())?;
        }
    } else if meta.is_file() {
        make_writable(path, &meta)?;
    }
    Ok(())
}

fn make_writable(path: &Path, meta: &fs::Metadata) -> io::Result<()> {
    if !meta.permissions().readonly() {
        return Ok(());
    }
    let mut perms = meta.permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        perms.set_mode(perms.mode() | 0o200);
    }
    #[cfg(not(unix))]
    {
        // The Windows read-only attribute: only this flag changes.
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
    }
    fs::set_permissions(path, perms)
}

/// Renames and deletes with retries, saying what they wait for.
#[derive(Clone)]
pub(crate) struct Mover {
    ops: Arc<dyn FsOps>,
    reporter: Reporter,
}

impl std::fmt::Debug for Mover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mover")
    }
}

impl Mover {
    /// The real file system, reporting through `reporter`.
    pub(crate) fn new(reporter: &Reporter) -> Self {
        Self::with_ops(reporter, Arc::new(RealFs))
    }

    /// Through `ops` (tests).
    pub(crate) fn with_ops(reporter: &Reporter, ops: Arc<dyn FsOps>) -> Self {
        Self {
            ops,
            reporter: reporter.clone(),
        }
    }

    /// Runs `op` until it succeeds, fails for good, or [`RETRY_LIMIT`] has passed.
    fn retry(&self, path: &Path, mut op: impl FnMut() -> io::Result<()>) -> io::Result<()> {
        let mut waited = Duration::ZERO;
        let mut delay = Duration::from_millis(100);
        let mut said = false;
        loop {
            match op() {
                Err(e) if transient(&e) && waited < RETRY_LIMIT => {
                    if !said {
                        self.reporter.info(format!(
                            "waiting for {}: a process holds a file in it ({e}); retrying for up to {} s (antivirus, an open window or a running python.exe)",
                            path.display(),
                            RETRY_LIMIT.as_secs()
                        ));
                        said = true;
                    }
                    self.ops.sleep(delay);
                    waited += delay;
                    delay = (delay * 2).min(Duration::from_secs(4));
                }
                other => return other,
            }
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.retry(from, || self.ops.rename(from, to))
    }

    /// Deletes a tree, clearing read-only attributes when the plain delete is refused.
    fn remove_tree(&self, path: &Path) -> io::Result<()> {
        self.retry(path, || match self.ops.remove_dir_all(path) {
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                self.ops.clear_readonly(path)?;
                self.ops.remove_dir_all(path)
            }
            other => other,
        })
    }

    /// The first Python image in `dir` that a running process holds.
    fn python_in_use(&self, dir: &Path) -> Option<PathBuf> {
        let rd = fs::read_dir(dir).ok()?;
        rd.filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_python_image(p))
            .find(|p| self.ops.in_use(p))
    }
}

/// python.exe, pythonw.exe and the python3*.dll files of an embeddable distribution.
fn is_python_image(p: &Path) -> bool {
    let Some(name) = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
    else {
        return false;
    };
    name == "python.exe"
        || name == "pythonw.exe"
        || (name.starts_with("python3") && name.ends_with(".dll"))
}

/// A temporary folder beside `target`, to be committed into place.
#[derive(Debug)]
pub(crate) struct Staging {
    target: PathBuf,
    temp: PathBuf,
    _lock: Option<File>,
    committed: bool,
    mover: Mover,
}

/// The leftovers of interrupted runs beside a target.
struct Leftovers {
    /// `.<name>.extpy-tmp-*`: new folders that never got in.
    temps: Vec<PathBuf>,
    /// `.<name>.extpy-old-*`: folders a swap moved aside.
    olds: Vec<PathBuf>,
    /// Those of `olds` that a rollback moved aside (`.<name>.extpy-old-rollback-*`).
    rolled_from: Vec<PathBuf>,
    /// `.<name>.previous.extpy-old-*`: kept copies being replaced by newer ones.
    gone: Vec<PathBuf>,
}

impl Staging {
    /// Locks `target`, clears leftovers of killed runs, and creates the temporary folder.
    pub(crate) fn begin(target: &Path, reporter: &Reporter) -> Result<Self, PlaceError> {
        Self::begin_with(target, true, Mover::new(reporter))
    }

    /// Like [`Staging::begin`] for a caller that already holds a lock covering `target`
    /// (see [`lock_folder`]), so no lock file is put beside it.
    pub(crate) fn begin_locked(target: &Path, reporter: &Reporter) -> Result<Self, PlaceError> {
        Self::begin_with(target, false, Mover::new(reporter))
    }

    /// Like [`Staging::begin`], through `mover` (tests inject Windows failures there).
    pub(crate) fn begin_with(
        target: &Path,
        own_lock: bool,
        mover: Mover,
    ) -> Result<Self, PlaceError> {
        let target = std::path::absolute(target).map_err(at(target, "cannot resolve the path"))?;
        if fs::symlink_metadata(&target).is_ok_and(|m| !m.is_dir()) {
            return Err(PlaceError::not_a_folder(target));
        }
        let (parent, name) = parent_and_name(&target);
        fs::create_dir_all(&parent).map_err(at(&parent, "cannot create the folder"))?;
        let lock = if own_lock {
            Some(lock_file(&staging_lock_path(&target))?)
        } else {
            None
        };
        let found = leftovers(&parent, &name, mover.ops.case_insensitive());
        let mut stale = found.temps;
        stale.extend(found.gone);
        if target.exists() {
            // A swap completed but its previous copy could not be deleted.
            stale.extend(found.olds);
        } else {
            restore_previous(&target, found.olds, &mover)?;
        }
        remove_leftovers(&stale, &mover);
        if let Some(file) = mover.python_in_use(&target) {
            return Err(PlaceError::InUse { target, file });
        }
        let temp = parent.join(format!(".{name}.extpy-tmp-{}", std::process::id()));
        fs::create_dir(&temp).map_err(at(&temp, "cannot create the temporary folder"))?;
        Ok(Self {
            target,
            temp,
            _lock: lock,
            committed: false,
            mover,
        })
    }

    /// The temporary folder to write into.
    pub(crate) fn path(&self) -> &Path {
        &self.temp
    }

    /// Puts the temporary folder in place of the target (which may exist).
    pub(crate) fn commit(mut self) -> Result<(), PlaceError> {
        let (parent, name) = parent_and_name(&self.target);
        if !self.target.exists() {
            self.mover
                .rename(&self.temp, &self.target)
                .map_err(at(&self.target, "cannot move the new folder into place"))?;
            self.committed = true;
            return Ok(());
        }
        if let Some(file) = self.mover.python_in_use(&self.target) {
            return Err(PlaceError::InUse {
                target: self.target.clone(),
                file,
            });
        }
        let old = parent.join(format!(".{name}.extpy-old-{}", std::process::id()));
        swap(
            &self.mover,
            &self.target,
            &old,
            &self.temp,
            NEW_FOR_PREVIOUS,
        )?;
        self.committed = true;
        if let Err(e) = self.mover.remove_tree(&old) {
            self.mover.reporter.warn(format!(
                "cannot remove the previous copy {}: {e}; the next run removes it",
                old.display()
            ));
        }
        Ok(())
    }
}

impl Staging {
    /// Like [`Staging::commit`], but the replaced folder is kept at [`kept_path`] (replacing
    /// a copy kept before, which is moved aside under a name of its own and deleted) instead
    /// of being deleted. A run killed between the renames leaves the target missing and the
    /// folder it held kept: the next layout fills the target, the next rollback puts the
    /// kept copy back.
    pub(crate) fn commit_keeping(mut self) -> Result<(), PlaceError> {
        if !self.target.exists() {
            return self.commit();
        }
        if let Some(file) = self.mover.python_in_use(&self.target) {
            return Err(PlaceError::InUse {
                target: self.target.clone(),
                file,
            });
        }
        let (parent, name) = parent_and_name(&self.target);
        let kept = kept_path(&self.target);
        let older = parent.join(format!(".{name}.previous.extpy-old-{}", std::process::id()));
        if kept.exists() {
            self.mover
                .rename(&kept, &older)
                .map_err(at(&kept, "cannot move the copy kept before aside"))?;
        }
        let swapped = swap(
            &self.mover,
            &self.target,
            &kept,
            &self.temp,
            NEW_FOR_PREVIOUS,
        );
        if let Err(e) = swapped {
            // The target is back (or stranded at `kept`): the copy kept before returns.
            if !matches!(e, PlaceError::Stranded { .. }) && older.exists() {
                let _ = self.mover.rename(&older, &kept);
            }
            return Err(e);
        }
        self.committed = true;
        remove_leftovers(
            &leftovers(&parent, &name, self.mover.ops.case_insensitive()).gone,
            &self.mover,
        );
        Ok(())
    }
}

/// What the errors of a [`swap`] call its steps.
struct SwapWords {
    /// Moving the target aside failed.
    aside: &'static str,
    /// Moving the new folder in failed, and the target is back.
    into_place: &'static str,
}

/// A build's or layout's swap: a new folder replaces the previous one.
const NEW_FOR_PREVIOUS: SwapWords = SwapWords {
    aside: "cannot move the previous folder aside",
    into_place: "cannot move the new folder into place (the previous folder is back)",
};

/// A rollback's swap: the kept copy replaces the current folder.
const KEPT_FOR_CURRENT: SwapWords = SwapWords {
    aside: "cannot move the current folder aside",
    into_place: "cannot move the kept copy into place (the current folder is back)",
};

/// The swap of every replacement, each rename retried: `target` moves to `aside`, then `new`
/// is renamed into its place. When that fails, `target` is put back; when even that fails,
/// the error names where it is ([`PlaceError::Stranded`]), which the next run restores.
fn swap(
    mover: &Mover,
    target: &Path,
    aside: &Path,
    new: &Path,
    words: SwapWords,
) -> Result<(), PlaceError> {
    mover
        .rename(target, aside)
        .map_err(at(target, words.aside))?;
    if let Err(source) = mover.rename(new, target) {
        if mover.rename(aside, target).is_err() {
            return Err(PlaceError::Stranded {
                target: target.to_path_buf(),
                old: aside.to_path_buf(),
                source,
            });
        }
        return Err(IoError::new(target, words.into_place, source).into());
    }
    Ok(())
}

/// Removes leftovers of interrupted runs, warning for those that cannot go yet.
fn remove_leftovers(paths: &[PathBuf], mover: &Mover) {
    for path in paths {
        if let Err(e) = mover.remove_tree(path) {
            mover.reporter.warn(format!(
                "cannot remove {}, the leftover of an interrupted run: {e}; remove it when nothing holds it",
                path.display()
            ));
        }
    }
}

/// Where `layout --keep-previous` keeps the folder it replaced: `<target>.previous` beside it
/// (`...\ExternalPython1\Python\External.previous`), on the same volume so that putting it
/// back is a rename.
pub(crate) fn kept_path(target: &Path) -> PathBuf {
    let (parent, name) = parent_and_name(target);
    parent.join(format!("{name}.previous"))
}

/// What [`roll_back`] will do at a target, decided before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RollbackStep {
    /// Put the copy kept at `kept` in place (after restoring a folder an interrupted run
    /// moved aside, if any).
    PutBack {
        /// The kept copy.
        kept: PathBuf,
    },
    /// A rollback was killed after its swap: only the folder it replaced is left to delete.
    Finish,
}

/// What [`roll_back`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RolledBack {
    /// The kept copy is in place; the folder it replaced is gone.
    RolledBack,
    /// A rollback killed after its swap was finished: its leftover was removed.
    Finished,
}

/// Decides what rolling `target` back means: a kept copy to put back, an interrupted
/// rollback to finish, or nothing kept (an error, before anything changed). A Python running
/// from `target` is an error here too, so that a rollback of several VUs stops before the
/// first one changes.
pub(crate) fn rollback_step(target: &Path, mover: &Mover) -> Result<RollbackStep, PlaceError> {
    let (parent, name) = parent_and_name(target);
    let kept = kept_path(target);
    match fs::symlink_metadata(&kept) {
        // A link renamed into place would make the VU folder point anywhere.
        Ok(m) if !m.is_dir() => return Err(PlaceError::not_a_folder(kept)),
        _ => {}
    }
    if kept.is_dir() {
        if let Some(file) = mover.python_in_use(target) {
            return Err(PlaceError::InUse {
                target: target.to_path_buf(),
                file,
            });
        }
        return Ok(RollbackStep::PutBack { kept });
    }
    let found = leftovers(&parent, &name, mover.ops.case_insensitive());
    if target.exists() && !found.rolled_from.is_empty() {
        return Ok(RollbackStep::Finish);
    }
    Err(PlaceError::NothingKept {
        target: target.to_path_buf(),
        kept,
    })
}

/// Carries out [`rollback_step`]'s decision with the swap, retries and recovery of
/// [`Staging::commit`]: the target moves aside (as `.<name>.extpy-old-rollback-<pid>`),
/// the kept copy is renamed in, and the folder moved aside is deleted. A run killed after
/// the first rename is undone and redone by the next (the folder moved aside is put back
/// first, as `build` and `layout` do too); one killed after the second is finished by it.
/// The caller holds the lock covering `target`.
pub(crate) fn roll_back(
    target: &Path,
    step: &RollbackStep,
    mover: &Mover,
) -> Result<RolledBack, PlaceError> {
    let (parent, name) = parent_and_name(target);
    let found = leftovers(&parent, &name, mover.ops.case_insensitive());
    let kept = match step {
        RollbackStep::Finish => {
            for old in &found.rolled_from {
                mover.remove_tree(old).map_err(at(
                    old,
                    "cannot remove the folder an interrupted rollback replaced",
                ))?;
            }
            return Ok(RolledBack::Finished);
        }
        RollbackStep::PutBack { kept } => kept,
    };
    if !target.exists() {
        restore_previous(target, found.olds.clone(), mover)?;
    }
    if !target.exists() {
        mover
            .rename(kept, target)
            .map_err(at(kept, "cannot move the kept copy into place"))?;
        return Ok(RolledBack::RolledBack);
    }
    let stale: Vec<PathBuf> = found
        .olds
        .iter()
        .chain(&found.temps)
        .filter(|p| p.exists())
        .cloned()
        .collect();
    remove_leftovers(&stale, mover);
    if let Some(file) = mover.python_in_use(target) {
        return Err(PlaceError::InUse {
            target: target.to_path_buf(),
            file,
        });
    }
    let old = parent.join(format!(".{name}.extpy-old-rollback-{}", std::process::id()));
    swap(mover, target, &old, kept, KEPT_FOR_CURRENT)?;
    remove_leftovers(&[old], mover);
    Ok(RolledBack::RolledBack)
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            // No waiting here: a temporary folder left behind is removed by the next run.
            let ops = &self.mover.ops;
            if ops.remove_dir_all(&self.temp).is_err() {
                let _ = ops.clear_readonly(&self.temp);
                let _ = ops.remove_dir_all(&self.temp);
            }
        }
    }
}

/// The lock file [`Staging::begin`] puts beside `target`.
pub(crate) fn staging_lock_path(target: &Path) -> PathBuf {
    let (parent, name) = parent_and_name(target);
    parent.join(format!(".{name}.extpy-lock"))
}

fn parent_and_name(target: &Path) -> (PathBuf, String) {
    let parent = target
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dest".into());
    (parent, name)
}

/// With the target missing, an interrupted swap's previous copy is the user's folder: put a
/// lone one back; with several, refuse to guess.
fn restore_previous(target: &Path, olds: Vec<PathBuf>, mover: &Mover) -> Result<(), PlaceError> {
    match olds.as_slice() {
        [] => Ok(()),
        [old] => {
            mover
                .rename(old, target)
                .map_err(at(old, "cannot restore the previous copy"))?;
            mover.reporter.warn(format!(
                "restored {} from {}, left by a run interrupted during its swap",
                target.display(),
                old.display()
            ));
            Ok(())
        }
        _ => Err(PlaceError::SeveralOld {
            target: target.to_path_buf(),
            copies: olds,
        }),
    }
}

/// Holds an exclusive lock on `<dir>/.extpy.lock` (creating `dir`) until dropped.
pub(crate) fn lock_folder(dir: &Path) -> Result<File, IoError> {
    fs::create_dir_all(dir).map_err(at(dir, "cannot create the folder"))?;
    lock_file(&dir.join(".extpy.lock"))
}

fn lock_file(path: &Path) -> Result<File, IoError> {
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(at(path, "cannot create the lock file"))?;
    lock.lock().map_err(at(path, "cannot lock"))?;
    Ok(lock)
}

fn leftovers(parent: &Path, name: &str, case_insensitive: bool) -> Leftovers {
    let fold = |s: &str| {
        if case_insensitive {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let (tmp, old, rolled, gone) = (
        fold(&format!(".{name}.extpy-tmp-")),
        fold(&format!(".{name}.extpy-old-")),
        fold(&format!(".{name}.extpy-old-rollback-")),
        fold(&format!(".{name}.previous.extpy-old-")),
    );
    let mut found = Leftovers {
        temps: Vec::new(),
        olds: Vec::new(),
        rolled_from: Vec::new(),
        gone: Vec::new(),
    };
    let Ok(rd) = fs::read_dir(parent) else {
        return found;
    };
    for e in rd.filter_map(Result::ok) {
        let n = fold(&e.file_name().to_string_lossy());
        if n.starts_with(&tmp) {
            found.temps.push(e.path());
        } else if n.starts_with(&old) {
            if n.starts_with(&rolled) {
                found.rolled_from.push(e.path());
            }
            found.olds.push(e.path());
        } else if n.starts_with(&gone) {
            found.gone.push(e.path());
        }
    }
    found.temps.sort();
    found.olds.sort();
    found.rolled_from.sort();
    found.gone.sort();
    found
}

/// A temporary folder (removed when dropped) for files extpy unpacks on its way.
pub(crate) fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, IoError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| {
            IoError::new(
                std::env::temp_dir(),
                "cannot create a temporary folder",
                source,
            )
        })
}

/// Writes a file through a temporary sibling renamed into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let parent = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    fs::create_dir_all(&parent).map_err(at(&parent, "cannot create the folder"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = parent.join(format!(".{name}.extpy-tmp-{}", std::process::id()));
    let written = fs::write(&temp, bytes).and_then(|_| fs::rename(&temp, path));
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(IoError::new(path, "cannot write", source));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Clone, Copy, PartialEq)]
    enum Op {
        Rename,
        Remove,
    }

    /// A failure to inject: `times` calls of `op` on a path whose name contains `name`.
    struct Fault {
        op: Op,
        name: &'static str,
        times: u32,
        code: u32,
    }

    /// The real file system, failing the way Windows does where told to.
    #[derive(Default)]
    struct Windowsish {
        faults: Mutex<Vec<Fault>>,
        sleeps: Mutex<Vec<Duration>>,
        in_use: AtomicBool,
        case_insensitive: bool,
    }

    impl Windowsish {
        fn failing(faults: Vec<Fault>) -> Arc<Self> {
            Arc::new(Self {
                faults: Mutex::new(faults),
                ..Self::default()
            })
        }

        fn inject(&self, op: Op, path: &Path) -> io::Result<()> {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let mut faults = self.faults.lock().unwrap();
            if let Some(f) = faults
                .iter_mut()
                .find(|f| f.op == op && f.times > 0 && name.contains(f.name))
            {
                f.times -= 1;
                return Err(WinError::io(f.code));
            }
            Ok(())
        }

        fn waited(&self) -> Duration {
            self.sleeps.lock().unwrap().iter().sum()
        }
    }

    fn any_readonly(path: &Path) -> bool {
        let Ok(m) = fs::symlink_metadata(path) else {
            return false;
        };
        m.permissions().readonly()
            || (m.is_dir()
                && fs::read_dir(path)
                    .unwrap()
                    .any(|e| any_readonly(&e.unwrap().path())))
    }

    impl FsOps for Windowsish {
        fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
            self.inject(Op::Rename, from)?;
            fs::rename(from, to)
        }
        fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
            self.inject(Op::Remove, path)?;
            // Windows Server 2016 cannot delete a tree holding a read-only file.
            if any_readonly(path) {
                return Err(WinError::io(5));
            }
            fs::remove_dir_all(path)
        }
        fn in_use(&self, file: &Path) -> bool {
            self.in_use.load(Ordering::SeqCst) && file.ends_with("python.exe")
        }
        fn sleep(&self, d: Duration) {
            self.sleeps.lock().unwrap().push(d);
        }
        fn case_insensitive(&self) -> bool {
            self.case_insensitive
        }
    }

    /// The new folder never gets in, and what was moved aside to `aside` never gets back.
    fn stranding(aside: &'static str) -> Arc<Windowsish> {
        let fault = |name| Fault {
            op: Op::Rename,
            name,
            times: u32::MAX,
            code: 32,
        };
        Windowsish::failing(vec![fault("extpy-tmp"), fault(aside)])
    }

    fn mover(ops: Arc<Windowsish>) -> (Mover, Arc<Mutex<Vec<String>>>) {
        let (reporter, lines) = Reporter::capture();
        (Mover::with_ops(&reporter, ops), lines)
    }

    fn folder(path: &Path, file: &str, text: &str) {
        fs::create_dir_all(path).unwrap();
        fs::write(path.join(file), text).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with("extpy-lock"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_rename_refused_twice_then_allowed_completes_with_a_waiting_line() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        folder(&target, "old.txt", "old");
        let ops = Windowsish::failing(vec![Fault {
            op: Op::Rename,
            name: "out",
            times: 2,
            code: 32,
        }]);
        let (m, lines) = mover(ops.clone());
        let s = Staging::begin_with(&target, true, m).unwrap();
        fs::write(s.path().join("new.txt"), "new").unwrap();
        s.commit().unwrap();
        assert!(target.join("new.txt").is_file());
        assert_eq!(names(dir.path()), ["out"]);
        let lines = lines.lock().unwrap();
        let waiting: Vec<_> = lines
            .iter()
            .filter(|l| l.starts_with("waiting for "))
            .collect();
        assert_eq!(waiting.len(), 1, "{lines:?}");
        assert!(
            waiting[0].contains(&target.display().to_string()),
            "{lines:?}"
        );
        assert!(waiting[0].contains("os error 32"), "{lines:?}");
        assert_eq!(ops.sleeps.lock().unwrap().len(), 2);
    }

    #[test]
    fn retries_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let ops = Windowsish::failing(vec![Fault {
            op: Op::Rename,
            name: "extpy-tmp",
            times: u32::MAX,
            code: 33,
        }]);
        let (m, _) = mover(ops.clone());
        let s = Staging::begin_with(&target, true, m).unwrap();
        let e = s.commit().unwrap_err();
        assert!(ops.waited() >= RETRY_LIMIT, "{:?}", ops.waited());
        assert!(ops.waited() < RETRY_LIMIT + Duration::from_secs(5));
        let msg = e.to_string();
        assert!(msg.contains("os error 33"), "{msg}");
        assert!(
            msg.contains(&format!("a process holds a file in {}", target.display()))
                && msg.contains("stop CEM or close the window, then re-run"),
            "{msg}"
        );
        assert_eq!(
            names(dir.path()),
            Vec::<String>::new(),
            "nothing left behind"
        );
    }

    #[test]
    fn a_failed_swap_retries_the_rollback() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        folder(&target, "old.txt", "old");
        let ops = Windowsish::failing(vec![
            Fault {
                op: Op::Rename,
                name: "extpy-tmp",
                times: u32::MAX,
                code: 5,
            },
            Fault {
                op: Op::Rename,
                name: "extpy-old",
                times: 3,
                code: 32,
            },
        ]);
        let (m, _) = mover(ops);
        let s = Staging::begin_with(&target, true, m).unwrap();
        let e = s.commit().unwrap_err();
        assert!(matches!(e, PlaceError::Io(_)), "{e}");
        assert!(e.to_string().contains("the previous folder is back"), "{e}");
        assert_eq!(fs::read_to_string(target.join("old.txt")).unwrap(), "old");
        assert_eq!(names(dir.path()), ["out"]);
    }

    #[test]
    fn a_stranded_previous_copy_is_named_and_restored_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        folder(&target, "old.txt", "old");
        let (m, _) = mover(stranding("extpy-old"));
        let s = Staging::begin_with(&target, true, m).unwrap();
        let e = s.commit().unwrap_err();
        let PlaceError::Stranded { old, .. } = &e else {
            panic!("{e}")
        };
        assert!(old.join("old.txt").is_file());
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("the previous copy is kept at {}", old.display())),
            "{msg}"
        );
        assert!(msg.contains("help: rename"), "{msg}");
        assert!(!target.exists());

        let (reporter, lines) = Reporter::capture();
        let s = Staging::begin(&target, &reporter).unwrap();
        drop(s);
        assert_eq!(fs::read_to_string(target.join("old.txt")).unwrap(), "old");
        assert!(!old.exists());
        assert!(
            lines.lock().unwrap().iter().any(|l| l.contains("restored")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_kill_between_the_two_renames_is_undone_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        // What a run killed after moving the target aside leaves: no target, its previous
        // copy, and the new folder that never got in.
        folder(&dir.path().join(".out.extpy-old-4242"), "old.txt", "old");
        folder(&dir.path().join(".out.extpy-tmp-4242"), "new.txt", "new");
        let (reporter, _) = Reporter::capture();
        let s = Staging::begin(&target, &reporter).unwrap();
        assert_eq!(fs::read_to_string(target.join("old.txt")).unwrap(), "old");
        assert!(!target.join("new.txt").exists());
        drop(s); // this run fails too: the previous copy stays
        assert_eq!(names(dir.path()), ["out"]);
    }

    #[test]
    fn several_previous_copies_are_kept_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        folder(&dir.path().join(".out.extpy-old-1"), "a", "1");
        folder(&dir.path().join(".out.extpy-old-2"), "a", "2");
        let e = Staging::begin(&target, &Reporter::silent()).unwrap_err();
        assert!(matches!(e, PlaceError::SeveralOld { .. }), "{e}");
        assert!(e.to_string().contains(".out.extpy-old-2"), "{e}");
        assert_eq!(names(dir.path()), [".out.extpy-old-1", ".out.extpy-old-2"]);
    }

    #[test]
    fn a_leftover_that_cannot_be_deleted_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        folder(&target, "old.txt", "old");
        let stuck = dir.path().join(".out.extpy-old-77");
        folder(&stuck, "x", "x");
        let ops = Windowsish::failing(vec![Fault {
            op: Op::Remove,
            name: "extpy-old-77",
            times: u32::MAX,
            code: 32,
        }]);
        let (m, lines) = mover(ops);
        let s = Staging::begin_with(&target, true, m).unwrap();
        s.commit().unwrap();
        assert!(stuck.exists());
        let lines = lines.lock().unwrap();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("warning: cannot remove") && l.contains("extpy-old-77")),
            "{lines:?}"
        );
    }

    #[test]
    fn leftover_names_compare_case_insensitively_where_the_file_system_does() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let stale = dir.path().join(".OUT.extpy-tmp-5");
        folder(&stale, "x", "x");
        let (m, _) = mover(Arc::new(Windowsish::default()));
        drop(Staging::begin_with(&target, true, m).unwrap());
        assert!(
            stale.exists(),
            "a case-sensitive file system: another folder's"
        );
        let ops = Arc::new(Windowsish {
            case_insensitive: true,
            ..Windowsish::default()
        });
        let (m, _) = mover(ops);
        drop(Staging::begin_with(&target, true, m).unwrap());
        assert!(!stale.exists());
    }

    #[test]
    fn read_only_files_are_made_deletable() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        folder(&target, "old.txt", "old");
        let ro = target.join("Lib").join("ro.pyc");
        folder(ro.parent().unwrap(), "ro.pyc", "x");
        let mut perms = fs::metadata(&ro).unwrap().permissions();
        perms.set_readonly(true);
        fs::set_permissions(&ro, perms).unwrap();
        let ops = Arc::new(Windowsish::default());
        let (m, _) = mover(ops.clone());
        let s = Staging::begin_with(&target, true, m).unwrap();
        s.commit().unwrap();
        assert_eq!(names(dir.path()), ["out"], "the previous copy was deleted");
    }

    #[test]
    fn a_running_python_is_reported_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        folder(&target, "python.exe", "MZ");
        let ops = Arc::new(Windowsish::default());
        ops.in_use.store(true, Ordering::SeqCst);
        let (m, _) = mover(ops.clone());
        let e = Staging::begin_with(&target, true, m.clone()).unwrap_err();
        assert!(matches!(e, PlaceError::InUse { .. }), "{e}");
        assert!(e.to_string().contains("python.exe is in use"), "{e}");
        assert!(e.to_string().contains("help: stop CEM"), "{e}");

        // Started while nothing ran, then CEM started: the swap refuses before moving anything.
        ops.in_use.store(false, Ordering::SeqCst);
        let s = Staging::begin_with(&target, true, m).unwrap();
        ops.in_use.store(true, Ordering::SeqCst);
        assert!(matches!(s.commit(), Err(PlaceError::InUse { .. })));
        assert!(target.join("python.exe").is_file());
        assert_eq!(names(dir.path()), ["out"]);
    }

    #[test]
    fn only_windows_codes_are_waited_for() {
        // On Linux, raw 32 is EPIPE and 5 is EIO: real failures, not sharing violations.
        if !cfg!(windows) {
            assert!(!transient(&io::Error::from_raw_os_error(32)));
            assert!(!transient(&io::Error::from_raw_os_error(5)));
        }
        assert!(transient(&WinError::io(32)));
        assert!(sharing_violation(&WinError::io(33)));
        assert!(!sharing_violation(&WinError::io(5)));
        assert!(is_python_image(Path::new("x/python311.dll")));
        assert!(is_python_image(Path::new("x/PYTHON.EXE")));
        assert!(!is_python_image(Path::new("x/python.cat")));
    }

    #[test]
    fn commit_replaces_and_drop_cleans() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("old.txt"), "old").unwrap();

        let s = Staging::begin(&target, &Reporter::silent()).unwrap();
        fs::write(s.path().join("new.txt"), "new").unwrap();
        drop(s);
        assert!(
            target.join("old.txt").is_file(),
            "an uncommitted staging leaves the target alone"
        );

        let s = Staging::begin(&target, &Reporter::silent()).unwrap();
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

    /// `dir/out` holding v.txt `now`, with `dir/out.previous` holding v.txt `kept`.
    fn with_kept(dir: &Path, now: &str, kept: &str) -> PathBuf {
        let target = dir.join("out");
        folder(&target, "v.txt", now);
        folder(&kept_path(&target), "v.txt", kept);
        target
    }

    /// Renames of paths named like `name` fail `times` times with Windows error `code`.
    fn renames_fail(name: &'static str, times: u32, code: u32) -> Arc<Windowsish> {
        Windowsish::failing(vec![Fault {
            op: Op::Rename,
            name,
            times,
            code,
        }])
    }

    fn version(dir: &Path) -> String {
        fs::read_to_string(dir.join("v.txt")).unwrap()
    }

    #[test]
    fn keeping_the_previous_copy_replaces_the_one_kept_before() {
        let dir = tempfile::tempdir().unwrap();
        let target = with_kept(dir.path(), "2", "1");
        let (m, _) = mover(Arc::new(Windowsish::default()));
        let s = Staging::begin_with(&target, true, m).unwrap();
        fs::write(s.path().join("v.txt"), "3").unwrap();
        s.commit_keeping().unwrap();
        assert_eq!(version(&target), "3");
        assert_eq!(version(&kept_path(&target)), "2");
        assert_eq!(names(dir.path()), ["out", "out.previous"]);
    }

    #[test]
    fn a_keeping_swap_that_fails_puts_both_folders_back() {
        let dir = tempfile::tempdir().unwrap();
        let target = with_kept(dir.path(), "2", "1");
        let ops = renames_fail("extpy-tmp", u32::MAX, 5);
        let (m, _) = mover(ops);
        let s = Staging::begin_with(&target, true, m).unwrap();
        let e = s.commit_keeping().unwrap_err();
        assert!(e.to_string().contains("the previous folder is back"), "{e}");
        assert_eq!(version(&target), "2");
        assert_eq!(version(&kept_path(&target)), "1");
        assert_eq!(names(dir.path()), ["out", "out.previous"]);
    }

    #[test]
    fn a_stranded_keeping_swap_is_completed_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        folder(&target, "v.txt", "2");
        let (m, _) = mover(stranding("out.previous"));
        let s = Staging::begin_with(&target, true, m).unwrap();
        let e = s.commit_keeping().unwrap_err();
        let PlaceError::Stranded { old, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(old, &kept_path(&target));
        assert!(!target.exists());
        assert!(e.to_string().contains("completes the change"), "{e}");
        // The layout run again puts the new tree in and keeps the one that was in place.
        let (m, _) = mover(Arc::new(Windowsish::default()));
        let s = Staging::begin_with(&target, true, m).unwrap();
        fs::write(s.path().join("v.txt"), "3").unwrap();
        s.commit_keeping().unwrap();
        assert_eq!(version(&target), "3");
        assert_eq!(version(&kept_path(&target)), "2");
        assert_eq!(names(dir.path()), ["out", "out.previous"]);
    }

    #[test]
    fn a_rollback_waits_for_a_held_folder_then_swaps() {
        let dir = tempfile::tempdir().unwrap();
        let target = with_kept(dir.path(), "new", "old");
        let ops = renames_fail("out.previous", 2, 32);
        let (m, lines) = mover(ops);
        let step = rollback_step(&target, &m).unwrap();
        assert!(matches!(step, RollbackStep::PutBack { .. }), "{step:?}");
        assert_eq!(
            roll_back(&target, &step, &m).unwrap(),
            RolledBack::RolledBack
        );
        assert_eq!(version(&target), "old");
        assert_eq!(names(dir.path()), ["out"]);
        assert!(
            lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.starts_with("waiting for ")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_rollback_whose_swap_fails_leaves_the_current_folder_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let target = with_kept(dir.path(), "new", "old");
        let ops = renames_fail("out.previous", u32::MAX, 33);
        let (m, _) = mover(ops);
        let step = rollback_step(&target, &m).unwrap();
        let e = roll_back(&target, &step, &m).unwrap_err();
        assert!(e.to_string().contains("the current folder is back"), "{e}");
        assert_eq!(version(&target), "new");
        assert_eq!(names(dir.path()), ["out", "out.previous"]);
    }

    #[test]
    fn a_running_python_stops_a_rollback_before_it_starts() {
        let dir = tempfile::tempdir().unwrap();
        let target = with_kept(dir.path(), "new", "old");
        fs::write(target.join("python.exe"), "MZ").unwrap();
        let ops = Arc::new(Windowsish::default());
        ops.in_use.store(true, Ordering::SeqCst);
        let (m, _) = mover(ops);
        let e = rollback_step(&target, &m).unwrap_err();
        assert!(matches!(e, PlaceError::InUse { .. }), "{e}");
        assert_eq!(version(&target), "new");
        assert_eq!(names(dir.path()), ["out", "out.previous"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_kept_copy_that_is_a_link_is_not_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        folder(&target, "v.txt", "new");
        let elsewhere = dir.path().join("elsewhere");
        folder(&elsewhere, "v.txt", "other");
        std::os::unix::fs::symlink(&elsewhere, kept_path(&target)).unwrap();
        let (m, _) = mover(Arc::new(Windowsish::default()));
        let e = rollback_step(&target, &m).unwrap_err();
        assert!(matches!(e, PlaceError::Link { .. }), "{e}");
        assert_eq!(e.exit_code(), ExitCode::Input);
        assert_eq!(version(&target), "new");
    }

    #[test]
    fn nothing_kept_is_refused_before_anything_changes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        folder(&target, "v.txt", "new");
        let (m, _) = mover(Arc::new(Windowsish::default()));
        let e = rollback_step(&target, &m).unwrap_err();
        assert!(matches!(e, PlaceError::NothingKept { .. }), "{e}");
        assert_eq!(e.exit_code(), ExitCode::Input);
        assert_eq!(names(dir.path()), ["out"]);
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
        let s = Staging::begin(&target, &Reporter::silent()).unwrap();
        assert!(!stale.exists());
        assert!(other.exists(), "only this target's leftovers");
        s.commit().unwrap();
    }
}
