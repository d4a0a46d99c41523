//! The one safe zip reader, for the embeddable zip, wheels and bundles.
//!
//! Every entry is checked before anything is extracted: no `..`, absolute paths, drive
//! letters, UNC prefixes, backslash tricks, names Windows cannot hold, symlinks, duplicates
//! or names that collide when case is ignored (the target is Windows), no encrypted entries,
//! and no sizes or compression ratios that only a zip bomb has. Extraction also stops an
//! entry that inflates beyond the size it declared.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use zip::ZipArchive;

use crate::base::exit::ExitCode;
use crate::mechanism::digest::{HashingWriter, Sha256Digest};
use crate::mechanism::fsio::IoError;

/// Limits that tell an archive from a zip bomb.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Most entries.
    pub max_entries: usize,
    /// Largest single entry, uncompressed.
    pub max_entry_size: u64,
    /// Largest sum of entries, uncompressed.
    pub max_total_size: u64,
    /// Highest compression ratio for entries above `ratio_floor` bytes.
    pub max_ratio: u64,
    /// Entries smaller than this are not ratio-checked (tiny files compress absurdly well).
    pub ratio_floor: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_entry_size: 1 << 30,
            max_total_size: 4 << 30,
            max_ratio: 200,
            ratio_floor: 1 << 20,
        }
    }
}

/// Why an archive was refused or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not a readable zip.
    #[error("{archive}: {}", plain_zip_error(source))]
    Open {
        /// The archive.
        archive: String,
        /// The cause.
        source: zip::result::ZipError,
    },
    /// An entry is unsafe or malformed.
    #[error("{archive}: refused entry {entry:?}: {reason}")]
    Entry {
        /// The archive.
        archive: String,
        /// The entry name as stored.
        entry: String,
        /// Why.
        reason: String,
    },
    /// An entry could not be decompressed or failed its CRC.
    #[error("{archive}: cannot read entry {entry:?}: {source}")]
    Read {
        /// The archive.
        archive: String,
        /// The entry.
        entry: String,
        /// The cause.
        source: io::Error,
    },
    /// Writing an extracted file failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl ArchiveError {
    /// The exit code: local I/O is local; an archive that cannot be read or holds a
    /// refused entry fails verification.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ArchiveError::Io(e) => e.exit_code(),
            _ => ExitCode::Verification,
        }
    }
}

/// A checked entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Index in the zip.
    pub index: usize,
    /// The name, `/`-separated, without a trailing `/`.
    pub name: String,
    /// Declared uncompressed size.
    pub size: u64,
    /// True for directory entries.
    pub is_dir: bool,
}

/// An opened, checked archive.
pub(crate) struct Archive {
    label: String,
    zip: ZipArchive<BufReader<File>>,
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("label", &self.label)
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl Archive {
    /// Opens `path` and checks every entry with the default limits; `label` names it in errors.
    pub(crate) fn open(path: &Path, label: &str) -> Result<Self, ArchiveError> {
        Self::open_with(path, label, Limits::default())
    }

    /// Opens with explicit limits.
    pub(crate) fn open_with(
        path: &Path,
        label: &str,
        limits: Limits,
    ) -> Result<Self, ArchiveError> {
        let open_err = |source| ArchiveError::Open {
            archive: label.to_string(),
            source,
        };
        let file = File::open(path).map_err(|e| open_err(zip::result::ZipError::Io(e)))?;
        let mut zip = ZipArchive::new(BufReader::new(file)).map_err(open_err)?;
        let refuse = |entry: &str, reason: String| ArchiveError::Entry {
            archive: label.to_string(),
            entry: entry.to_string(),
            reason,
        };
        if zip.has_duplicate_names() {
            let dup = find_duplicate_name(path).unwrap_or_else(|| "?".into());
            return Err(refuse(
                &dup,
                "the archive holds two entries with this name".into(),
            ));
        }
        if zip.len() > limits.max_entries {
            return Err(refuse(
                "*",
                format!(
                    "{} entries is more than the {} allowed",
                    zip.len(),
                    limits.max_entries
                ),
            ));
        }
        let mut raw_file = File::open(path).map_err(|e| open_err(zip::result::ZipError::Io(e)))?;
        let mut entries = Vec::with_capacity(zip.len());
        let mut total: u64 = 0;
        let mut files_ci: HashMap<String, String> = HashMap::new();
        let mut dirs_ci: HashMap<String, String> = HashMap::new();
        for index in 0..zip.len() {
            let f = zip.by_index_raw(index).map_err(open_err)?;
            let raw = f
                .name()
                .map(|n| n.into_owned())
                .unwrap_or_else(|_| String::from_utf8_lossy(f.name_raw()).into_owned());
            let name = check_entry_name(&raw).map_err(|reason| refuse(&raw, reason.to_string()))?;
            check_local_header(&mut raw_file, &f).map_err(|reason| refuse(&raw, reason))?;
            if f.is_symlink() {
                return Err(refuse(&raw, "it is a symbolic link".into()));
            }
            if f.encrypted() {
                return Err(refuse(&raw, "it is encrypted".into()));
            }
            let is_dir = f.is_dir();
            let (size, compressed) = (f.size(), f.compressed_size());
            if size > limits.max_entry_size {
                return Err(refuse(
                    &raw,
                    format!(
                        "it declares {size} bytes, more than the {} allowed",
                        limits.max_entry_size
                    ),
                ));
            }
            if size > limits.ratio_floor && size / compressed.max(1) > limits.max_ratio {
                return Err(refuse(
                    &raw,
                    format!(
                        "it expands {compressed} bytes to {size} (more than {}:1): a zip bomb",
                        limits.max_ratio
                    ),
                ));
            }
            total = total.saturating_add(size);
            if total > limits.max_total_size {
                return Err(refuse(
                    &raw,
                    format!(
                        "the archive expands to more than {} bytes",
                        limits.max_total_size
                    ),
                ));
            }
            let key = name.to_lowercase();
            let (this, other) = if is_dir {
                (&mut dirs_ci, &files_ci)
            } else {
                (&mut files_ci, &dirs_ci)
            };
            if let Some(prev) = other
                .get(&key)
                .or_else(|| if is_dir { None } else { this.get(&key) })
            {
                return Err(refuse(
                    &raw,
                    format!("it collides with {prev:?} on a case-insensitive file system"),
                ));
            }
            this.insert(key.clone(), name.clone());
            if !is_dir {
                // Every ancestor is a directory; a file must not stand where one is.
                let mut prefix = String::new();
                for part in key.split('/').take(key.split('/').count() - 1) {
                    if !prefix.is_empty() {
                        prefix.push('/');
                    }
                    prefix.push_str(part);
                    if let Some(prev) = files_ci.get(&prefix) {
                        return Err(refuse(
                            &raw,
                            format!("it needs a folder where the file {prev:?} is"),
                        ));
                    }
                    dirs_ci
                        .entry(prefix.clone())
                        .or_insert_with(|| prefix.clone());
                }
            }
            entries.push(Entry {
                index,
                name,
                size,
                is_dir,
            });
        }
        let by_name = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_dir)
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        Ok(Self {
            label: label.to_string(),
            zip,
            entries,
            by_name,
        })
    }

    /// All entries, in archive order.
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// File entries only.
    pub(crate) fn files(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.is_dir)
    }

    /// A file entry by exact name.
    pub(crate) fn find(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// Reads a (small) entry into memory.
    pub(crate) fn read(&mut self, entry: &Entry) -> Result<Vec<u8>, ArchiveError> {
        let mut out = Vec::with_capacity(entry.size as usize);
        self.copy(entry, &mut out)?;
        Ok(out)
    }

    /// Streams an entry into `w`, returning its digest and size; refuses an entry that
    /// inflates beyond its declared size.
    pub(crate) fn copy(
        &mut self,
        entry: &Entry,
        w: &mut dyn Write,
    ) -> Result<(Sha256Digest, u64), ArchiveError> {
        let read_err = |source| ArchiveError::Read {
            archive: self.label.clone(),
            entry: entry.name.clone(),
            source,
        };
        let f = self
            .zip
            .by_index(entry.index)
            .map_err(|e| read_err(io::Error::other(e)))?;
        let mut hashing = HashingWriter::new(w);
        let n = io::copy(&mut f.take(entry.size + 1), &mut hashing).map_err(read_err)?;
        if n > entry.size {
            return Err(ArchiveError::Entry {
                archive: self.label.clone(),
                entry: entry.name.clone(),
                reason: format!("it inflates beyond the {} bytes it declares", entry.size),
            });
        }
        let (_, digest, size) = hashing.finish();
        Ok((digest, size))
    }

    /// Extracts an entry to `dest` (a missing parent folder is created), returning digest
    /// and size.
    pub(crate) fn extract(
        &mut self,
        entry: &Entry,
        dest: &Path,
    ) -> Result<(Sha256Digest, u64), ArchiveError> {
        let write_err = |source| ArchiveError::Io(IoError::new(dest, "cannot write", source));
        let created = match File::create(dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent).map_err(write_err)?;
                }
                File::create(dest)
            }
            other => other,
        };
        let mut file = io::BufWriter::with_capacity(256 * 1024, created.map_err(write_err)?);
        let result = self.copy(entry, &mut file);
        match result {
            Ok(r) => {
                file.flush().map_err(write_err)?;
                Ok(r)
            }
            // A write failure surfaces as a read error of the copy; say what really failed.
            Err(ArchiveError::Read { source, .. }) if is_write_side(&source) => {
                Err(write_err(source))
            }
            Err(e) => Err(e),
        }
    }
}

/// The zip library's words ("Could not find EOCD", "Invalid CDFH offset") in plain words.
fn plain_zip_error(e: &zip::result::ZipError) -> String {
    use zip::result::ZipError;
    match e {
        ZipError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            "the archive is truncated (it ends in the middle of an entry or of its table of contents)\n  help: download or copy it again".into()
        }
        ZipError::Io(io) => format!("cannot read it: {io}"),
        ZipError::InvalidArchive(why) => format!(
            "it is not a zip archive, or it is truncated or damaged (its table of contents cannot be read: {})\n  help: download or copy it again; a file that is not a zip cannot be used here",
            why.to_lowercase()
        ),
        ZipError::UnsupportedArchive(why) => format!(
            "it uses a zip feature extpy does not read ({})",
            why.to_lowercase()
        ),
        other => format!("it is not a readable zip archive ({other})"),
    }
}

/// The local file header of an entry must say what the central directory says (name,
/// method and, unless a data descriptor follows, CRC and sizes): a reader that trusts the
/// central directory and one that streams local headers must never see two archives.
fn check_local_header(
    raw: &mut File,
    f: &zip::read::ZipFile<'_, BufReader<File>>,
) -> Result<(), String> {
    use std::io::{Seek, SeekFrom};
    let le16 = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let le32 = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let mut head = [0u8; 30];
    raw.seek(SeekFrom::Start(f.header_start()))
        .and_then(|_| raw.read_exact(&mut head))
        .map_err(|_| "its local header lies outside the archive".to_string())?;
    if le32(&head, 0) != 0x0403_4b50 {
        return Err("the central directory points at no local header for it".into());
    }
    let mut name = vec![0u8; le16(&head, 26) as usize];
    raw.read_exact(&mut name)
        .map_err(|_| "its local header is cut short".to_string())?;
    let disagree = |what: String| {
        format!(
            "its local header disagrees with the central directory: {what}; the archive was tampered with or is damaged"
        )
    };
    if name != f.name_raw() {
        return Err(disagree(format!(
            "the local header names {:?}",
            String::from_utf8_lossy(&name)
        )));
    }
    #[allow(deprecated)] // the numeric method is what both headers store
    let method = f.compression().to_u16();
    if le16(&head, 8) != method {
        return Err(disagree(format!(
            "compression method {} against {method}",
            le16(&head, 8)
        )));
    }
    let descriptor = le16(&head, 6) & 0x8 != 0;
    let (crc, csize, usize) = (le32(&head, 14), le32(&head, 18), le32(&head, 22));
    if !descriptor {
        if crc != f.crc32() {
            return Err(disagree(format!("CRC {crc:08x} against {:08x}", f.crc32())));
        }
        let zip64 = csize == u32::MAX || usize == u32::MAX;
        if !zip64 && (u64::from(csize) != f.compressed_size() || u64::from(usize) != f.size()) {
            return Err(disagree(format!(
                "sizes {csize}/{usize} against {}/{}",
                f.compressed_size(),
                f.size()
            )));
        }
    }
    Ok(())
}

fn is_write_side(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::QuotaExceeded
    )
}

/// Checks one entry name; returns it normalized (`/`-separated, no trailing `/`).
pub(crate) fn check_entry_name(raw: &str) -> Result<String, &'static str> {
    if raw.is_empty() {
        return Err("the name is empty");
    }
    if raw.contains('\0') {
        return Err("the name holds a NUL byte");
    }
    if raw.starts_with("\\\\") || raw.starts_with("//") {
        return Err("it is a UNC path");
    }
    if raw.starts_with('/') || raw.starts_with('\\') {
        return Err("it is an absolute path");
    }
    let bytes = raw.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Err("it starts with a drive letter");
    }
    let normalized = raw.replace('\\', "/");
    let trimmed = normalized.strip_suffix('/').unwrap_or(&normalized);
    if trimmed.is_empty() {
        return Err("the name is empty");
    }
    for part in trimmed.split('/') {
        match part {
            "" => return Err("it has an empty path component"),
            "." => return Err("it has a '.' path component"),
            ".." => return Err("it climbs out of the destination with '..'"),
            _ => {}
        }
        check_windows_component(part)?;
    }
    Ok(trimmed.to_string())
}

/// The longest name component Windows (NTFS) holds.
pub(crate) const MAX_COMPONENT_LEN: usize = 255;

/// The one check for a name that becomes a single path component (archive entry parts,
/// project and `.dist-info` names, VU names and prefixes, node names): not empty, no path
/// separator, not `.` or `..`, no drive letter or other `<>:"|?*` or control character, no
/// device name Windows reserves (CON, PRN, AUX, NUL, COMn, LPTn, CONIN$, CONOUT$), no trailing
/// dot or space, at most 255 characters.
pub(crate) fn check_windows_component(part: &str) -> Result<(), &'static str> {
    if part.is_empty() {
        return Err("the name is empty");
    }
    if part.contains(['/', '\\']) {
        return Err("it holds a path separator (/ or \\); it must be a single folder name");
    }
    if part == "." || part == ".." {
        return Err("it is '.' or '..', which climbs out of the destination");
    }
    if part
        .chars()
        .any(|c| c < ' ' || c == '\u{7f}' || "<>:\"|?*".contains(c))
    {
        return Err(
            "it holds a character Windows does not allow in names (<>:\"|?*, a drive letter's ':' or a control character)",
        );
    }
    if part.ends_with('.') || part.ends_with(' ') {
        return Err("a name component ends in a dot or space, which Windows drops");
    }
    if part.chars().count() > MAX_COMPONENT_LEN {
        return Err("a name component is longer than the 255 characters Windows allows");
    }
    let stem = part
        .split('.')
        .next()
        .unwrap_or(part)
        .trim_end()
        .to_uppercase();
    let numbered = |prefix: &str| {
        stem.strip_prefix(prefix).is_some_and(|n| {
            matches!(
                n,
                "0" | "1"
                    | "2"
                    | "3"
                    | "4"
                    | "5"
                    | "6"
                    | "7"
                    | "8"
                    | "9"
                    | "\u{b9}"
                    | "\u{b2}"
                    | "\u{b3}"
            )
        })
    };
    let reserved = matches!(
        stem.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || numbered("COM")
        || numbered("LPT");
    if reserved {
        return Err("it uses a device name Windows reserves (CON, PRN, AUX, NUL, COMn, LPTn)");
    }
    Ok(())
}

/// Scans the raw central directory for a name that occurs twice (for the error message;
/// the zip reader keeps only one of them).
fn find_duplicate_name(path: &Path) -> Option<String> {
    let data = fs::read(path).ok()?;
    let mut seen = HashSet::new();
    let mut i = 0;
    while i + 46 <= data.len() {
        if data[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] {
            let name_len = u16::from_le_bytes([data[i + 28], data[i + 29]]) as usize;
            let extra_len = u16::from_le_bytes([data[i + 30], data[i + 31]]) as usize;
            let comment_len = u16::from_le_bytes([data[i + 32], data[i + 33]]) as usize;
            let name = String::from_utf8_lossy(data.get(i + 46..i + 46 + name_len)?).into_owned();
            if !seen.insert(name.clone()) {
                return Some(name);
            }
            i += 46 + name_len + extra_len + comment_len;
        } else {
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names() {
        assert_eq!(check_entry_name("a/b.py").unwrap(), "a/b.py");
        assert_eq!(check_entry_name("pkg/").unwrap(), "pkg");
        assert_eq!(check_entry_name("a\\b.py").unwrap(), "a/b.py");
        for (bad, why) in [
            ("../evil", "'..'"),
            ("a/../../evil", "'..'"),
            ("..\\..\\evil.dll", "'..'"),
            ("/etc/passwd", "absolute"),
            ("\\Windows\\x", "absolute"),
            ("C:/Windows/x", "drive letter"),
            ("c:evil", "drive letter"),
            ("\\\\server\\share\\x", "UNC"),
            ("//server/share/x", "UNC"),
            ("a/./b", "'.'"),
            ("a//b", "empty path component"),
            ("file.txt:stream", "Windows does not allow"),
            ("aux.py", "reserves"),
            ("pkg/COM1", "reserves"),
            ("pkg/name. ", "dot or space"),
            ("", "empty"),
            ("pkg/conout$.txt", "reserves"),
            ("pkg/com\u{b9}.py", "reserves"),
            ("a\u{7f}b", "control character"),
        ] {
            let err = check_entry_name(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(
            check_entry_name("console.py").is_ok(),
            "CON only as a whole stem"
        );
        assert!(check_entry_name("com10.txt").is_ok());
        assert!(
            check_entry_name(&"a".repeat(5000))
                .unwrap_err()
                .contains("255")
        );
    }

    #[test]
    fn single_components() {
        for (bad, why) in [
            ("", "empty"),
            ("a/b", "separator"),
            ("..\\x", "separator"),
            ("..", "'..'"),
            (".", "'.'"),
            ("C:x", "drive letter"),
            ("NUL", "reserves"),
            ("lpt9.log", "reserves"),
            ("vu.", "dot or space"),
            ("vu ", "dot or space"),
            ("a\tb", "control"),
        ] {
            let err = check_windows_component(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(check_windows_component("ExternalPython1").is_ok());
    }
}
