//! The content-addressed cache: `sha256/<hex>` blobs published by rename only after their
//! digest matched, partial downloads kept apart, and a lock per artifact so that two runs
//! at once never download the same file twice or see half a file.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::base::exit::ExitCode;
use crate::mechanism::digest::{Sha256Digest, hash_file};
use crate::mechanism::fsio::{IoError, at};

/// A cache failure (always local I/O).
#[derive(Debug, thiserror::Error)]
#[error("cache {}: {}: {}\n  help: check that the folder is writable, or choose another with --cache-dir", .0.path.display(), .0.action, .0.source)]
pub struct CacheError(#[from] IoError);

impl CacheError {
    /// The exit code: always local.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::Local
    }
}

/// What the cache holds for a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// A verified copy.
    Hit {
        /// Where it is.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Nothing.
    Miss,
    /// A copy whose bytes no longer match; it has been removed.
    Corrupt {
        /// What the bytes hashed to.
        actual: Sha256Digest,
    },
}

/// The cache folder.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    root: PathBuf,
}

/// An exclusive lock on one digest; released when dropped.
#[derive(Debug)]
pub(crate) struct CacheLock {
    _file: File,
}

impl Cache {
    /// The platform's user cache folder for extpy (`%LOCALAPPDATA%\extpy`, `~/.cache/extpy`).
    pub(crate) fn default_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|d| d.join("extpy"))
    }

    /// Opens (and creates) a cache at `root`.
    pub(crate) fn open(root: &Path) -> Result<Self, CacheError> {
        for sub in ["sha256", "partial", "locks"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(at(&dir, "cannot create"))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Where a verified blob lives.
    pub(crate) fn blob_path(&self, digest: &Sha256Digest) -> PathBuf {
        self.root.join("sha256").join(digest.to_hex())
    }

    /// Where the build of the manifest with `digest` is kept (`extpy layout` reuses it while
    /// it verifies).
    pub(crate) fn build_path(&self, manifest_digest: &Sha256Digest) -> PathBuf {
        self.root.join("builds").join(manifest_digest.to_hex())
    }

    /// Where an unfinished download of `digest` is kept, so a later attempt can resume it.
    pub(crate) fn partial_path(&self, digest: &Sha256Digest) -> PathBuf {
        self.root
            .join("partial")
            .join(format!("{}.part", digest.to_hex()))
    }

    /// Checks the blob for `digest` by hashing it; a corrupt copy is removed.
    pub(crate) fn lookup(&self, digest: &Sha256Digest) -> Result<Lookup, CacheError> {
        let path = self.blob_path(digest);
        match hash_file(&path) {
            Ok((actual, size)) if actual == *digest => Ok(Lookup::Hit { path, size }),
            Ok((actual, _)) => {
                fs::remove_file(&path).map_err(at(&path, "cannot remove a corrupt entry"))?;
                Ok(Lookup::Corrupt { actual })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Lookup::Miss),
            Err(source) => Err(IoError::new(path, "cannot read", source).into()),
        }
    }

    /// Waits for, then holds, the lock for `digest`.
    pub(crate) fn lock(&self, digest: &Sha256Digest) -> Result<CacheLock, CacheError> {
        let path = self
            .root
            .join("locks")
            .join(format!("{}.lock", digest.to_hex()));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(at(&path, "cannot open lock"))?;
        file.lock().map_err(at(&path, "cannot lock"))?;
        Ok(CacheLock { _file: file })
    }

    /// Moves a verified download into place; only verified bytes are ever published.
    pub(crate) fn publish(
        &self,
        digest: &Sha256Digest,
        verified: &Path,
    ) -> Result<PathBuf, CacheError> {
        let dest = self.blob_path(digest);
        fs::rename(verified, &dest).map_err(at(&dest, "cannot publish"))?;
        Ok(dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_lookup_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let d = Sha256Digest::of(b"hello");
        assert_eq!(cache.lookup(&d).unwrap(), Lookup::Miss);
        let part = cache.partial_path(&d);
        fs::write(&part, b"hello").unwrap();
        let path = cache.publish(&d, &part).unwrap();
        assert_eq!(
            cache.lookup(&d).unwrap(),
            Lookup::Hit {
                path: path.clone(),
                size: 5
            }
        );
        fs::write(&path, b"jello").unwrap();
        assert_eq!(
            cache.lookup(&d).unwrap(),
            Lookup::Corrupt {
                actual: Sha256Digest::of(b"jello")
            }
        );
        assert!(
            !path.exists(),
            "a corrupt entry must not stay where it would be trusted"
        );
    }

    #[test]
    fn lock_is_exclusive_between_handles() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let d = Sha256Digest::of(b"x");
        let held = cache.lock(&d).unwrap();
        let other = File::options()
            .write(true)
            .open(dir.path().join("locks").join(format!("{d}.lock")))
            .unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
    }
}
