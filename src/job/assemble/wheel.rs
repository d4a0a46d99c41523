//! Installing a wheel the way an installer must (the binary distribution format, PEP 427):
//! tags checked, every file checked against RECORD, `.data` mapped, `INSTALLER` and a
//! correct RECORD written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::base::exit::ExitCode;
use crate::job::assemble::contents::{Licence, Output, SealedFile};
use crate::mechanism::archive::{
    Archive, ArchiveError, Entry, check_entry_name, check_windows_component,
};
use crate::mechanism::digest::Sha256Digest;
use crate::mechanism::fsio::IoError;
use crate::model::manifest::wheel::{Tag, supported_tags};
use crate::model::manifest::{Platform, PythonVersion, Wheel, normalize_name};

/// Where purelib and platlib go in the embeddable layout.
pub(crate) const SITE_PACKAGES: &str = "Lib/site-packages";
/// What `INSTALLER` says.
pub(crate) const INSTALLER: &[u8] = b"extpy\n";

/// Why a wheel cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    /// The archive is unsafe or unreadable.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The wheel breaks the format.
    #[error("wheel {wheel}: {reason}")]
    Invalid {
        /// The wheel file.
        wheel: String,
        /// Why.
        reason: String,
    },
    /// A file's bytes disagree with RECORD.
    #[error(
        "wheel {wheel}: {file} does not match its RECORD entry (sha256 {actual}, RECORD says {expected}); the wheel is rejected"
    )]
    RecordMismatch {
        /// The wheel.
        wheel: String,
        /// The file.
        file: String,
        /// RECORD's digest.
        expected: Sha256Digest,
        /// The bytes' digest.
        actual: Sha256Digest,
    },
    /// A file could not be written.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl WheelError {
    /// The exit code: local I/O is local, anything about the wheel's content a failed
    /// verification.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            WheelError::Archive(a) => a.exit_code(),
            WheelError::Io(e) => e.exit_code(),
            WheelError::Invalid { .. } | WheelError::RecordMismatch { .. } => {
                ExitCode::Verification
            }
        }
    }
}

/// A file of a wheel and where it goes.
#[derive(Debug, Clone)]
pub(crate) struct PlannedFile {
    /// The archive entry.
    pub entry: Entry,
    /// Destination relative to the distribution root, `/`-separated.
    pub target: String,
    /// The digest RECORD gives.
    pub expected: Sha256Digest,
}

/// What installing one wheel will do.
#[derive(Debug, Clone)]
pub(crate) struct WheelPlan {
    /// The wheel file name.
    pub wheel: String,
    /// The verified wheel file.
    pub source: PathBuf,
    /// Its sha256.
    pub sha256: Sha256Digest,
    /// Project name from METADATA.
    pub name: String,
    /// Version from METADATA.
    pub version: String,
    /// The `.dist-info` folder name.
    pub dist_info: String,
    /// Its `Requires-Dist` values.
    pub requires: Vec<String>,
    /// The licence its METADATA declares.
    pub licence: Licence,
    /// Files to extract.
    pub files: Vec<PlannedFile>,
}

impl WheelPlan {
    /// Every path the install writes (extracted files plus INSTALLER and RECORD).
    pub(crate) fn targets(&self) -> impl Iterator<Item = String> + '_ {
        self.files
            .iter()
            .map(|f| f.target.clone())
            .chain([self.installer_path(), self.record_path()])
    }

    fn installer_path(&self) -> String {
        format!("{SITE_PACKAGES}/{}/INSTALLER", self.dist_info)
    }

    fn record_path(&self) -> String {
        format!("{SITE_PACKAGES}/{}/RECORD", self.dist_info)
    }
}

/// Reads a wheel and decides where each file goes; nothing is written.
pub(crate) fn plan(
    source: &Path,
    wheel: &Wheel,
    python: PythonVersion,
    platform: Platform,
) -> Result<WheelPlan, WheelError> {
    let file = wheel.artifact.file.clone();
    let invalid = |reason: String| WheelError::Invalid {
        wheel: file.clone(),
        reason,
    };
    let mut archive = Archive::open(source, &format!("wheel {file}"))?;

    let mut dist_infos: Vec<String> = archive
        .entries()
        .iter()
        .filter_map(|e| {
            e.name
                .split('/')
                .next()
                .filter(|top| top.ends_with(".dist-info"))
                .map(str::to_string)
        })
        .collect();
    dist_infos.sort();
    dist_infos.dedup();
    let dist_info = match dist_infos.as_slice() {
        [one] => one.clone(),
        [] => return Err(invalid("it has no .dist-info folder".into())),
        many => {
            return Err(invalid(format!(
                "it has several .dist-info folders: {}",
                many.join(", ")
            )));
        }
    };
    let stem = dist_info.trim_end_matches(".dist-info");
    let (di_name, _) = stem
        .split_once('-')
        .ok_or_else(|| invalid(format!("{dist_info} is not name-version.dist-info")))?;
    check_windows_component(di_name)
        .map_err(|why| invalid(format!("its {dist_info} cannot name a folder: {why}")))?;
    if normalize_name(di_name) != wheel.filename.normalized_name() {
        return Err(invalid(format!(
            "its {dist_info} is for another project than the file name says"
        )));
    }

    let read = |archive: &mut Archive, name: &str| -> Result<Vec<u8>, WheelError> {
        let entry = archive
            .find(name)
            .cloned()
            .ok_or_else(|| invalid(format!("{name} is missing")))?;
        Ok(archive.read(&entry)?)
    };
    let wheel_meta = headers(&String::from_utf8_lossy(&read(
        &mut archive,
        &format!("{dist_info}/WHEEL"),
    )?));
    let version = wheel_meta
        .get("wheel-version")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    if version.split('.').next() != Some("1") {
        return Err(invalid(format!(
            "Wheel-Version {version:?} is not supported (extpy installs version 1 wheels)"
        )));
    }
    let purelib = match wheel_meta
        .get("root-is-purelib")
        .and_then(|v| v.first())
        .map(|s| s.to_ascii_lowercase())
    {
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        _ => return Err(invalid("WHEEL has no valid Root-Is-Purelib".into())),
    };
    let _ = purelib; // purelib and platlib are the same folder in the embeddable layout
    let supported = supported_tags(python, platform);
    let tags: Vec<Tag> = wheel_meta
        .get("tag")
        .map(|ts| ts.iter().filter_map(|t| parse_tag(t)).collect())
        .unwrap_or_default();
    if !tags.is_empty() && !tags.iter().any(|t| supported.contains(t)) {
        let list: Vec<String> = tags.iter().map(ToString::to_string).collect();
        return Err(invalid(format!(
            "its WHEEL tags ({}) cannot run on CPython {python} for {platform}",
            list.join(", ")
        )));
    }
    let metadata = headers(&String::from_utf8_lossy(&read(
        &mut archive,
        &format!("{dist_info}/METADATA"),
    )?));
    let name = metadata
        .get("name")
        .and_then(|v| v.first())
        .cloned()
        .ok_or_else(|| invalid("METADATA has no Name".into()))?;
    check_project_name(&name, &wheel.filename.normalized_name()).map_err(&invalid)?;
    let meta_version = metadata
        .get("version")
        .and_then(|v| v.first())
        .cloned()
        .ok_or_else(|| invalid("METADATA has no Version".into()))?;

    let record_name = format!("{dist_info}/RECORD");
    let record_text = String::from_utf8(read(&mut archive, &record_name)?)
        .map_err(|_| invalid("RECORD is not UTF-8".into()))?;
    let record = parse_record(&record_text).map_err(&invalid)?;
    let unsigned = |n: &str| {
        n == record_name || n == format!("{record_name}.jws") || n == format!("{record_name}.p7s")
    };
    for path in record.keys() {
        if !unsigned(path) && archive.find(path).is_none() {
            return Err(invalid(format!(
                "RECORD lists {path}, which the wheel does not contain"
            )));
        }
    }

    let data_dir = format!("{stem}.data/");
    let mut files = Vec::new();
    for entry in archive.files() {
        if unsigned(&entry.name) {
            continue;
        }
        let (hash, size) = match record.get(&entry.name) {
            Some(RecordRow {
                sha256: Some(h),
                size,
            }) => (*h, *size),
            Some(_) => {
                return Err(invalid(format!(
                    "RECORD gives no sha256 for {}",
                    entry.name
                )));
            }
            None => return Err(invalid(format!("{} is not listed in RECORD", entry.name))),
        };
        if let Some(s) = size
            && s != entry.size
        {
            return Err(invalid(format!(
                "RECORD says {} has {s} bytes, the archive says {}",
                entry.name, entry.size
            )));
        }
        let target = match entry.name.strip_prefix(&data_dir) {
            Some(rest) => data_target(rest, &name).map_err(&invalid)?,
            None => format!("{SITE_PACKAGES}/{}", entry.name),
        };
        files.push(PlannedFile {
            entry: entry.clone(),
            target,
            expected: hash,
        });
    }
    Ok(WheelPlan {
        wheel: file,
        source: source.to_path_buf(),
        sha256: wheel.artifact.sha256,
        name,
        version: meta_version,
        dist_info,
        requires: metadata.get("requires-dist").cloned().unwrap_or_default(),
        licence: Licence::from_headers(&metadata),
        files,
    })
}

/// Plans every wheel of `manifest` (its verified files at `paths`, in manifest order), in
/// parallel.
pub(crate) fn plan_all(
    manifest: &crate::model::manifest::Manifest,
    paths: &[PathBuf],
    jobs: usize,
) -> Result<Vec<WheelPlan>, WheelError> {
    let pairs: Vec<(usize, &PathBuf)> = paths.iter().enumerate().collect();
    crate::parallel(crate::local_jobs(jobs), &pairs, |(i, path)| {
        plan(
            path,
            &manifest.wheels[*i],
            manifest.python,
            manifest.platform,
        )
    })
    .into_iter()
    .collect()
}

/// Extracts the planned files into `out`, checking each against RECORD, then writes
/// INSTALLER and a RECORD of what was installed. Returns every written file for the seal.
pub(crate) fn install(plan: &WheelPlan, out: Output) -> Result<Vec<SealedFile>, WheelError> {
    let mut archive = Archive::open(&plan.source, &format!("wheel {}", plan.wheel))?;
    let mut sealed = Vec::with_capacity(plan.files.len() + 2);
    for f in &plan.files {
        let (digest, size) = out.extract(&mut archive, &f.entry, &f.target)?;
        if digest != f.expected {
            return Err(WheelError::RecordMismatch {
                wheel: plan.wheel.clone(),
                file: f.entry.name.clone(),
                expected: f.expected,
                actual: digest,
            });
        }
        sealed.push(SealedFile {
            path: f.target.clone(),
            size,
            sha256: digest,
        });
    }
    sealed.push(out.write(&plan.installer_path(), INSTALLER)?);
    let record = render_record(&sealed, &plan.record_path());
    sealed.push(out.write(&plan.record_path(), record.as_bytes())?);
    Ok(sealed)
}

/// A METADATA `Name` becomes a folder (`Include/<name>`): it must be a valid project name
/// (PEP 508: letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit), one
/// safe path component, and the project the wheel's file name says (compared after PEP 503
/// normalization).
fn check_project_name(name: &str, file_project: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        return Err(format!(
            "METADATA Name {name:?} is not a project name (letters, digits, '.', '_' and '-' only)"
        ));
    }
    check_windows_component(name)
        .map_err(|why| format!("METADATA Name {name:?} cannot name a folder: {why}"))?;
    if normalize_name(name) != file_project {
        return Err(format!(
            "METADATA Name {name:?} is another project than the file name says ({file_project})"
        ));
    }
    Ok(())
}

fn data_target(rest: &str, project: &str) -> Result<String, String> {
    let (scheme, path) = rest
        .split_once('/')
        .ok_or_else(|| format!(".data entry {rest:?} has no scheme folder"))?;
    if path.is_empty() {
        return Err(format!(".data entry {rest:?} is empty"));
    }
    Ok(match scheme {
        "purelib" | "platlib" => format!("{SITE_PACKAGES}/{path}"),
        "scripts" => format!("Scripts/{path}"),
        "data" => path.to_string(),
        "headers" => format!("Include/{project}/{path}"),
        other => return Err(format!(".data has an unknown scheme folder {other:?}")),
    })
}

/// `Key: value` headers (email style), keys lowercased, repeated keys kept in order.
/// The header fields of a METADATA or WHEEL file (keys lowercased), up to the body; a
/// folded line (starting with a space or tab) continues the value above it.
pub(crate) fn headers(text: &str) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.is_empty() {
            break; // the body starts
        }
        if line.starts_with([' ', '\t']) {
            if let Some(value) = last
                .as_ref()
                .and_then(|k| out.get_mut(k))
                .and_then(|v| v.last_mut())
            {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            let key = k.trim().to_ascii_lowercase();
            out.entry(key.clone())
                .or_default()
                .push(v.trim().to_string());
            last = Some(key);
        }
    }
    out
}

fn parse_tag(t: &str) -> Option<Tag> {
    let mut p = t.trim().splitn(3, '-');
    Some(Tag::new(p.next()?, p.next()?, p.next()?))
}

#[derive(Debug)]
struct RecordRow {
    sha256: Option<Sha256Digest>,
    size: Option<u64>,
}

fn parse_record(text: &str) -> Result<HashMap<String, RecordRow>, String> {
    let mut rows = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields =
            split_csv(line).ok_or_else(|| format!("RECORD line {} is not valid CSV", i + 1))?;
        let [path, hash, size] = fields.as_slice() else {
            return Err(format!(
                "RECORD line {} needs 3 fields, has {}",
                i + 1,
                fields.len()
            ));
        };
        let path = check_entry_name(path)
            .map_err(|why| format!("RECORD line {} names {path:?}: {why}", i + 1))?;
        let sha256 = if hash.is_empty() {
            None
        } else {
            let (algo, value) = hash
                .split_once('=')
                .ok_or_else(|| format!("RECORD line {}: bad hash {hash:?}", i + 1))?;
            if algo != "sha256" {
                return Err(format!(
                    "RECORD line {} uses {algo}; extpy checks sha256 RECORDs",
                    i + 1
                ));
            }
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(value.trim_end_matches('='))
                .map_err(|_| format!("RECORD line {}: the hash is not base64", i + 1))?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            Some(
                hex.parse::<Sha256Digest>()
                    .map_err(|e| format!("RECORD line {}: {e}", i + 1))?,
            )
        };
        let size = if size.is_empty() {
            None
        } else {
            Some(
                size.parse::<u64>()
                    .map_err(|_| format!("RECORD line {}: bad size {size:?}", i + 1))?,
            )
        };
        if rows
            .insert(path.clone(), RecordRow { sha256, size })
            .is_some()
        {
            return Err(format!("RECORD lists {path} twice"));
        }
    }
    Ok(rows)
}

/// Splits one CSV line (quotes and doubled quotes as Python's csv module writes them).
fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(cur);
    Some(fields)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// RECORD for installed files: paths relative to site-packages, sorted, RECORD itself last
/// without a hash.
fn render_record(files: &[SealedFile], record_path: &str) -> String {
    let mut rows: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(f.sha256.as_bytes());
            (record_relative(&f.path), format!("sha256={b64},{}", f.size))
        })
        .collect();
    rows.sort();
    let mut out = String::new();
    for (path, rest) in rows {
        out.push_str(&format!("{},{rest}\n", csv_field(&path)));
    }
    out.push_str(&format!("{},,\n", csv_field(&record_relative(record_path))));
    out
}

fn record_relative(target: &str) -> String {
    match target.strip_prefix(&format!("{SITE_PACKAGES}/")) {
        Some(inner) => inner.to_string(),
        None => format!("../../{target}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines() {
        assert_eq!(split_csv("a,b,c").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(
            split_csv("\"a,b\",\"x\"\"y\",").unwrap(),
            vec!["a,b", "x\"y", ""]
        );
        assert!(split_csv("\"open,b").is_none());
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }

    #[test]
    fn data_schemes() {
        assert_eq!(
            data_target("purelib/x.py", "p").unwrap(),
            "Lib/site-packages/x.py"
        );
        assert_eq!(
            data_target("platlib/x.pyd", "p").unwrap(),
            "Lib/site-packages/x.pyd"
        );
        assert_eq!(data_target("scripts/tool", "p").unwrap(), "Scripts/tool");
        assert_eq!(data_target("data/share/x", "p").unwrap(), "share/x");
        assert_eq!(data_target("headers/x.h", "p").unwrap(), "Include/p/x.h");
        assert!(data_target("weird/x", "p").is_err());
        assert!(data_target("purelib", "p").is_err());
    }

    #[test]
    fn project_names_that_would_become_paths_are_refused() {
        assert!(check_project_name("Data_Pkg", "data-pkg").is_ok());
        for (bad, why) in [
            ("../../x", "not a project name"),
            ("/abs", "not a project name"),
            ("C:x", "not a project name"),
            ("a\\b", "not a project name"),
            ("", "not a project name"),
            ("con", "reserves"),
            ("other", "another project"),
        ] {
            let file_project = if bad == "con" { "con" } else { "data-pkg" };
            let err = check_project_name(bad, file_project).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn record_parsing() {
        let good = "a/b.py,sha256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0,3\npkg-1.dist-info/RECORD,,\n";
        let rows = parse_record(good).unwrap();
        assert_eq!(rows["a/b.py"].sha256.unwrap(), Sha256Digest::of(b"abc"));
        assert_eq!(rows["a/b.py"].size, Some(3));
        assert!(
            parse_record("a,md5=xx,1\n")
                .unwrap_err()
                .contains("uses md5")
        );
        assert!(parse_record("../a,,\n").unwrap_err().contains("'..'"));
        assert!(parse_record("a,,\na,,\n").unwrap_err().contains("twice"));
        assert!(parse_record("a,b\n").unwrap_err().contains("3 fields"));
    }

    #[test]
    fn record_paths_are_relative_to_site_packages() {
        assert_eq!(record_relative("Lib/site-packages/a/b.py"), "a/b.py");
        assert_eq!(record_relative("Scripts/tool"), "../../Scripts/tool");
    }
}
