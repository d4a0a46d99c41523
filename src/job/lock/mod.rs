//! `extpy lock`: resolves the manifest's `requires:` for its CPython and platform against the
//! index and pins every wheel by file name, sha256, URL and size; keeps current pins unless
//! an upgrade is asked or a requirement forces a change; writes the manifest's own text back
//! with only the pins edited, atomically, and only after the result parses to what was meant.

mod edit;
mod error;
pub(crate) mod index;
mod publisher;
mod python;
pub(crate) mod resolve;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

use pep508_rs::PackageName;
use pep508_rs::pep440_rs::Version;
use serde::Serialize;
use url::Url;

use crate::base::report::Reporter;
use crate::job::source::Sources;
use crate::mechanism::cache::Cache;
use crate::mechanism::net::{Client, NetOptions};
use crate::mechanism::sigstore::{Identity, TrustRoot};
use crate::model::manifest::{
    InputError, Manifest, Origin, PythonVersion, describe_pin, serialize_pin,
};

use edit::{PinText, PythonChange};
pub(crate) use error::LockError;

/// What `extpy lock` is asked.
#[derive(Debug, Clone, Default)]
pub(crate) struct LockOptions {
    /// Upgrade every package to the newest allowed.
    pub upgrade: bool,
    /// Upgrade only these.
    pub upgrade_packages: Vec<String>,
    /// Write nothing; fail when the lock is stale.
    pub check: bool,
    /// Write here instead of the manifest.
    pub out: Option<PathBuf>,
    /// Leave `url:` and `size:` out of new pins (fetch then finds files through the index).
    pub no_urls: bool,
    /// Pin this CPython release's embeddable zip (and resolve for it).
    pub python: Option<PythonVersion>,
}

/// One line of the diff table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Change {
    /// Normalized project name.
    pub package: String,
    /// The version pinned before, if any.
    pub old: Option<String>,
    /// The version pinned now, if any.
    pub new: Option<String>,
    /// Why.
    pub why: String,
}

/// One resulting pin.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LockedPin {
    /// Normalized project name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Wheel file name.
    pub file: String,
    /// sha256.
    pub sha256: String,
    /// Download URL.
    pub url: String,
    /// Size, when known.
    pub size: Option<u64>,
    /// Who needs it.
    pub required_by: Vec<String>,
    /// Its publisher, from the index's verified attestation, or `"none"` when the index has
    /// none for the file.
    #[serde(serialize_with = "serialize_pin")]
    pub provenance: Option<Identity>,
}

/// The embeddable zip pinned by `--python`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EmbeddablePin {
    /// File name.
    pub file: String,
    /// sha256, as published beside it and as downloaded.
    pub sha256: String,
    /// Download URL.
    pub url: String,
    /// Size.
    pub size: u64,
    /// Its signer, from the verified `.sigstore` bundle beside it, or `"none"` when the
    /// mirror serves none.
    #[serde(serialize_with = "serialize_pin")]
    pub provenance: Option<Identity>,
}

/// What `extpy lock` did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LockReport {
    /// The manifest read.
    pub manifest: String,
    /// Where the result was written (none with `--check` or when nothing changed).
    pub written: Option<String>,
    /// CPython the lock is for.
    pub python: String,
    /// Platform.
    pub platform: String,
    /// The embeddable zip, when `--python` asked for it.
    pub embeddable: Option<EmbeddablePin>,
    /// The pins.
    pub pins: Vec<LockedPin>,
    /// What changed against the manifest's pins.
    pub changes: Vec<Change>,
    /// The lock differs from the manifest's pins.
    pub stale: bool,
    /// Remarks (yanked pins kept because a requirement pins them exactly).
    pub warnings: Vec<String>,
    /// Requests to the index.
    pub requests: usize,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Everything a lock needs from the global settings.
#[derive(Debug, Clone)]
pub(crate) struct LockInputs {
    /// The manifest file, if any (the built-in one otherwise).
    pub path: Option<PathBuf>,
    /// The manifest.
    pub manifest: Manifest,
    /// Sources.
    pub sources: Sources,
    /// HTTP settings.
    pub net: NetOptions,
    /// Cache folder.
    pub cache_dir: PathBuf,
    /// The Sigstore trust root the index's attestations are verified against.
    pub trust_root: TrustRoot,
}

/// Resolves and (unless `--check`) writes the manifest.
pub(crate) fn lock(
    inputs: &LockInputs,
    options: &LockOptions,
    reporter: &Reporter,
) -> Result<LockReport, LockError> {
    let started = Instant::now();
    let manifest = &inputs.manifest;
    let target = match (&options.out, &inputs.path) {
        (Some(o), _) => Some(o.clone()),
        (None, Some(p)) => Some(p.clone()),
        (None, None) if options.check => None,
        (None, None) => return Err(LockError::Builtin),
    };
    if manifest.requires.is_empty() {
        return Err(LockError::NoRequires {
            origin: manifest.origin.clone(),
        });
    }
    let client = Client::new(inputs.net.clone(), reporter.clone())?;
    let cache = Cache::open(&inputs.cache_dir)?;
    let python = options.python.unwrap_or(manifest.python);
    let index = index::Index::new(&client, &inputs.sources, &cache, python, manifest.platform);
    let embeddable = options
        .python
        .map(|v| {
            python::pin(
                &client,
                &cache,
                &inputs.sources.python_mirror,
                v,
                manifest.platform,
                &index.requests,
            )
        })
        .transpose()?;
    let python_signer = embeddable
        .as_ref()
        .map(|pin| python::signer(&client, &cache, &inputs.trust_root, pin, &index.requests))
        .transpose()?;

    let upgrade: BTreeSet<PackageName> = options
        .upgrade_packages
        .iter()
        .map(|n| {
            PackageName::from_str(n).map_err(|e| {
                LockError::Input(InputError::at(
                    &Origin("--upgrade-package".into()),
                    None,
                    "--upgrade-package",
                    format!("{n:?} is not a project name: {e}"),
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let old = old_pins(manifest);
    let preferences: BTreeMap<PackageName, Version> = if options.upgrade {
        BTreeMap::new()
    } else {
        old.iter()
            .filter(|(n, _)| !upgrade.contains(*n))
            .map(|(n, (v, _, _))| (n.clone(), v.clone()))
            .collect()
    };
    let request = resolve::Request {
        requires: &manifest.requires,
        preferences,
    };
    let resolution = resolve::resolve(&index, manifest.platform, &request)?;

    let mut pins = Vec::new();
    let mut warnings: Vec<String> = python_signer
        .iter()
        .filter_map(|s| s.warning.clone())
        .collect();
    let python_provenance = python_signer.and_then(|s| s.identity);
    for (name, (version, c)) in &resolution.pins {
        let (sha256, size) = index.sha256_of(&c.file)?;
        let provenance = publisher::find(
            &client,
            &inputs.sources,
            &inputs.trust_root,
            &publisher::File {
                project: name.as_ref(),
                version: &version.to_string(),
                file: &c.file.filename,
                sha256,
            },
            &index.requests,
        )?;
        if let Some(why) = &c.file.yanked {
            warnings.push(format!(
                "{} is yanked on the index{}; it is kept only because a requirement pins {name}=={version} exactly",
                c.file.filename,
                if why.is_empty() { String::new() } else { format!(" ({why})") }
            ));
        }
        pins.push(LockedPin {
            package: name.to_string(),
            version: version.to_string(),
            file: c.file.filename.clone(),
            sha256: sha256.to_string(),
            url: c.file.url.to_string(),
            size,
            required_by: resolution
                .required_by
                .get(name)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
            provenance,
        });
    }
    let mut changes = diff(&old, &pins, options, &upgrade, &index)?;
    let python_change = embeddable.as_ref().map(|e| PythonChange {
        old_version: manifest.python.to_string(),
        new_version: e.version.to_string(),
        old_file: manifest.embeddable.file.clone(),
        old_sha256: manifest.embeddable.sha256.to_string(),
        new_file: e.file.clone(),
        new_sha256: e.sha256.to_string(),
        url: (!options.no_urls).then(|| e.url.to_string()),
        size: (!options.no_urls).then_some(e.size),
        provenance: edit::pin_yaml(&python_provenance),
    });
    if let Some(e) = &embeddable {
        let signer = publisher_change(&manifest.embeddable.provenance, &python_provenance);
        let why = if e.version == manifest.python && e.sha256 == manifest.embeddable.sha256 {
            signer
        } else {
            let why = if e.version == manifest.python {
                format!("{} is published with another sha256", e.file)
            } else {
                "--python asked".into()
            };
            Some(match signer {
                Some(change) if manifest.embeddable.provenance.is_some() => {
                    format!("{why}; {change}")
                }
                _ => why,
            })
        };
        if let Some(why) = why {
            changes.insert(
                0,
                Change {
                    package: "python".into(),
                    old: Some(manifest.python.to_string()),
                    new: Some(e.version.to_string()),
                    why,
                },
            );
        }
    }
    let stale = !changes.is_empty();

    let mut written = None;
    if !options.check
        && let Some(target) = target
    {
        let text = new_text(manifest, &pins, options, python_change.as_ref());
        if text != manifest.text || options.out.is_some() {
            check_result(
                manifest,
                &text,
                &pins,
                python_change.as_ref().map(|c| (c, &python_provenance)),
            )?;
            crate::mechanism::place::write_atomic(&target, text.as_bytes())?;
            written = Some(target.display().to_string());
        }
    }
    Ok(LockReport {
        manifest: manifest.origin.to_string(),
        written,
        python: python.to_string(),
        platform: manifest.platform.to_string(),
        embeddable: embeddable.map(|e| EmbeddablePin {
            file: e.file,
            sha256: e.sha256.to_string(),
            url: e.url.to_string(),
            size: e.size,
            provenance: python_provenance.clone(),
        }),
        pins,
        changes,
        stale,
        warnings,
        requests: *index.requests.borrow(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// The manifest's pins by project: version, file name and pinned publisher.
fn old_pins(manifest: &Manifest) -> BTreeMap<PackageName, (Version, String, Option<Identity>)> {
    manifest
        .listed_wheels()
        .filter_map(|w| {
            let name = PackageName::from_str(&w.filename.name).ok()?;
            let version = Version::from_str(&w.filename.version).ok()?;
            Some((
                name,
                (
                    version,
                    w.artifact.file.clone(),
                    w.artifact.provenance.clone(),
                ),
            ))
        })
        .collect()
}

/// How the publisher changed, in words, when it did: a pinned publisher that changed or
/// went away is said as loudly as a changed file; one found where none was pinned too.
fn publisher_change(old: &Option<Identity>, new: &Option<Identity>) -> Option<String> {
    if old == new {
        return None;
    }
    Some(match old {
        None => format!("publisher found: {}", describe_pin(new)),
        Some(a) => format!("publisher changed: {a} -> {}", describe_pin(new)),
    })
}

fn diff(
    old: &BTreeMap<PackageName, (Version, String, Option<Identity>)>,
    pins: &[LockedPin],
    options: &LockOptions,
    upgrade: &BTreeSet<PackageName>,
    index: &index::Index<'_>,
) -> Result<Vec<Change>, LockError> {
    let mut rows = Vec::new();
    let new: BTreeMap<String, &LockedPin> = pins.iter().map(|p| (p.package.clone(), p)).collect();
    let mut names: BTreeSet<String> = new.keys().cloned().collect();
    names.extend(old.keys().map(ToString::to_string));
    for name in names {
        let before = old.iter().find(|(n, _)| n.to_string() == name);
        let after = new.get(&name);
        let row = |why: String| Change {
            package: name.clone(),
            old: before.map(|(_, (v, _, _))| v.to_string()),
            new: after.map(|p| p.version.clone()),
            why,
        };
        match (before, after) {
            (Some((_, (_, file, publisher))), Some(p)) if *file == p.file => {
                if let Some(why) = publisher_change(publisher, &p.provenance) {
                    rows.push(row(why));
                }
            }
            (None, Some(p)) => {
                rows.push(row(format!("new: needed by {}", p.required_by.join(", "))))
            }
            (Some(_), None) => rows.push(row("no longer needed".into())),
            (Some((n, (v, file, publisher))), Some(p)) => {
                let project = index.project(n)?;
                let why = if let Some(y) = project
                    .yanked
                    .get(v)
                    .map(|c| c.file.yanked.clone().unwrap_or_default())
                    .filter(|_| !project.usable.contains_key(v))
                {
                    if y.is_empty() {
                        format!("{v} is yanked")
                    } else {
                        format!("{v} is yanked ({y})")
                    }
                } else if options.upgrade || upgrade.contains(n) {
                    "upgrade asked".to_string()
                } else if !project.usable.contains_key(v) {
                    format!("{file} can no longer be used")
                } else if p.version == v.to_string() {
                    format!("a better fitting wheel {}", p.file)
                } else {
                    format!(
                        "the requirements exclude {v} (needed by {})",
                        p.required_by.join(", ")
                    )
                };
                let why = match publisher_change(publisher, &p.provenance) {
                    Some(change) if publisher.is_some() => format!("{why}; {change}"),
                    _ => why,
                };
                rows.push(row(why));
            }
            (None, None) => {}
        }
    }
    Ok(rows)
}

fn new_text(
    manifest: &Manifest,
    pins: &[LockedPin],
    options: &LockOptions,
    python: Option<&PythonChange>,
) -> String {
    // Existing projects keep their place; new ones follow, by name.
    let mut ordered: Vec<&LockedPin> = Vec::new();
    for w in manifest.listed_wheels() {
        let n = w.filename.normalized_name();
        if let Some(p) = pins.iter().find(|p| p.package == n) {
            ordered.push(p);
        }
    }
    for p in pins {
        if !ordered.iter().any(|q| q.package == p.package) {
            ordered.push(p);
        }
    }
    let texts: Vec<PinText> = ordered
        .iter()
        .map(|p| PinText {
            file: p.file.clone(),
            sha256: p.sha256.clone(),
            url: (!options.no_urls).then(|| p.url.clone()),
            size: if options.no_urls { None } else { p.size },
            provenance: Some(edit::pin_yaml(&p.provenance)),
        })
        .collect();
    edit::rewrite(&manifest.text, &texts, python)
}

/// Parses the new text and refuses it unless its wheels are exactly `pins` (and its CPython
/// the one `--python` pinned).
fn check_result(
    manifest: &Manifest,
    text: &str,
    pins: &[LockedPin],
    python: Option<(&PythonChange, &Option<Identity>)>,
) -> Result<(), LockError> {
    let parsed = Manifest::parse(manifest.origin.clone(), text)
        .map_err(|e| LockError::Internal(format!("the rewritten manifest does not parse: {e}")))?;
    type Pin = (String, String, Option<Identity>);
    let got: BTreeSet<Pin> = parsed
        .listed_wheels()
        .map(|w| {
            (
                w.artifact.file.clone(),
                w.artifact.sha256.to_string(),
                w.artifact.provenance.clone(),
            )
        })
        .collect();
    let want: BTreeSet<Pin> = pins
        .iter()
        .map(|p| (p.file.clone(), p.sha256.clone(), p.provenance.clone()))
        .collect();
    if got != want || parsed.requires.len() != manifest.requires.len() {
        return Err(LockError::Internal(
            "the rewritten manifest does not hold exactly the locked pins".into(),
        ));
    }
    if let Some((p, signer)) = python {
        let e = &parsed.embeddable;
        let url_ok = p.url.as_deref() == e.url.as_ref().map(Url::as_str) || p.url.is_none();
        if parsed.python.to_string() != p.new_version
            || e.file != p.new_file
            || e.sha256.to_string() != p.new_sha256
            || e.provenance != *signer
            || !url_ok
        {
            return Err(LockError::Internal(
                "the rewritten manifest does not hold the pinned CPython (is its embeddable: written in flow style?)".into(),
            ));
        }
    }
    Ok(())
}

impl LockReport {
    /// The human result: the diff table and a summary.
    pub(crate) fn render(&self) -> String {
        let mut s = String::new();
        if !self.changes.is_empty() {
            let rows: Vec<[String; 3]> = self
                .changes
                .iter()
                .map(|c| {
                    [
                        c.package.clone(),
                        format!(
                            "{} -> {}",
                            c.old.as_deref().unwrap_or("(none)"),
                            c.new.as_deref().unwrap_or("(removed)")
                        ),
                        c.why.clone(),
                    ]
                })
                .collect();
            s.push_str(&crate::model::topology::render_table(
                &["package", "old -> new", "why"],
                &rows,
            ));
        }
        let what = if self.changes.is_empty() {
            "up to date".to_string()
        } else {
            format!(
                "{} changed",
                crate::base::report::plural(self.changes.len(), "pin")
            )
        };
        s.push_str(&format!(
            "{} for CPython {} {}: {}",
            crate::base::report::plural(self.pins.len(), "package"),
            self.python,
            self.platform,
            what
        ));
        match &self.written {
            Some(w) => s.push_str(&format!("; written to {w}\n")),
            None => s.push('\n'),
        }
        s
    }
}
