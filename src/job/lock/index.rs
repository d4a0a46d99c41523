//! What the index offers a resolver: each project's wheels grouped by version, filtered to
//! what the embeddable CPython accepts (tags, `Requires-Python`, yanks), and each chosen
//! file's core metadata, read from the PEP 658/714 metadata file when offered (its sha256
//! checked) and from the wheel itself otherwise. Verified bytes land in the cache, so a
//! second lock reads no metadata from the network and `fetch` reuses downloaded wheels.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::str::FromStr;

use indicatif::ProgressBar;
use pep508_rs::pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{PackageName, Requirement};
use url::Url;

use crate::job::source::{ListedFile, SourceError, Sources, parse_project_page};
use crate::mechanism::archive::Archive;
use crate::mechanism::cache::{Cache, Lookup};
use crate::mechanism::digest::Sha256Digest;
use crate::mechanism::fsio::IoError;
use crate::mechanism::net::{Client, NetError};
use crate::model::manifest::wheel::{Tag, supported_tags};
use crate::model::manifest::{Platform, PythonVersion, WheelFilename};

use super::error::LockError;

const SIMPLE_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// The largest metadata file read (real ones are a few KiB; a huge one is a broken index).
const MAX_METADATA_BYTES: usize = 4 * 1024 * 1024;

/// One version of a project as the target can install it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The best wheel of this version for the target (the most specific tag).
    pub file: ListedFile,
    /// Its parsed name.
    pub wheel: WheelFilename,
}

/// Why a version of a project cannot be used, for the explanation of a failed resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// No wheel with a tag the target accepts.
    NoWheel,
    /// Every fitting wheel wants another Python.
    RequiresPython(String),
    /// Every fitting wheel is yanked.
    Yanked(String),
}

/// A project page read and sorted.
#[derive(Debug, Default)]
pub(crate) struct Project {
    /// Usable versions, each with its best wheel.
    pub usable: BTreeMap<Version, Candidate>,
    /// Versions present but not usable, and why.
    pub unusable: BTreeMap<Version, Unusable>,
    /// Yanked versions that have a fitting wheel (used only when pinned exactly with `==`).
    pub yanked: BTreeMap<Version, Candidate>,
}

/// A wheel's core metadata, as much as locking and the SBOM need.
#[derive(Debug, Clone)]
pub(crate) struct CoreMetadata {
    /// `Requires-Dist`.
    pub requires: Vec<Requirement>,
}

/// The index as a resolver sees it, with every page and metadata file read once.
pub(crate) struct Index<'a> {
    client: &'a Client,
    sources: &'a Sources,
    cache: &'a Cache,
    python: PythonVersion,
    python_version: Version,
    tags: Vec<Tag>,
    projects: RefCell<HashMap<PackageName, Rc<Project>>>,
    metadata: RefCell<HashMap<(PackageName, Version), Rc<CoreMetadata>>>,
    /// Requests made to the network, for the summary.
    pub requests: RefCell<usize>,
}

impl<'a> Index<'a> {
    /// An index for CPython `python` on `platform`.
    pub(crate) fn new(
        client: &'a Client,
        sources: &'a Sources,
        cache: &'a Cache,
        python: PythonVersion,
        platform: Platform,
    ) -> Self {
        Self {
            client,
            sources,
            cache,
            python,
            python_version: Version::new([
                u64::from(python.major),
                u64::from(python.minor),
                u64::from(python.patch),
            ]),
            tags: supported_tags(python, platform),
            projects: RefCell::default(),
            metadata: RefCell::default(),
            requests: RefCell::new(0),
        }
    }

    /// The project's page, read and sorted (once).
    pub(crate) fn project(&self, name: &PackageName) -> Result<Rc<Project>, LockError> {
        if let Some(p) = self.projects.borrow().get(name) {
            return Ok(p.clone());
        }
        let url = self.sources.project_page(name.as_ref());
        *self.requests.borrow_mut() += 1;
        let page = self
            .client
            .get_page(&url, SIMPLE_ACCEPT)
            .map_err(|e| match e.root() {
                NetError::Status { status, .. } if status.as_u16() == 404 => {
                    LockError::Source(SourceError::NoProject {
                        index: self.sources.index_url.clone(),
                        project: name.to_string(),
                        url: url.clone(),
                    })
                }
                _ => LockError::Source(SourceError::Net(e)),
            })?;
        let files = parse_project_page(&page.url, &page.content_type, &page.body)?;
        let project = Rc::new(self.sort(name, &page.url, files)?);
        self.projects
            .borrow_mut()
            .insert(name.clone(), project.clone());
        Ok(project)
    }

    fn sort(
        &self,
        name: &PackageName,
        page: &Url,
        files: Vec<ListedFile>,
    ) -> Result<Project, LockError> {
        // Per version: every wheel of this project, with the rank of its best fitting tag.
        let mut by_version: BTreeMap<Version, Vec<(usize, ListedFile, WheelFilename)>> =
            BTreeMap::new();
        let mut seen_versions: BTreeMap<Version, ()> = BTreeMap::new();
        for f in files {
            let Ok(wheel) = WheelFilename::from_str(&f.filename) else {
                continue; // sdists and other files: extpy installs wheels only
            };
            if wheel.normalized_name() != name.as_ref() {
                return Err(SourceError::BadPage {
                    url: page.clone(),
                    reason: format!("it lists {}, a file of another project", f.filename),
                }
                .into());
            }
            let Ok(version) = Version::from_str(&wheel.version) else {
                continue; // not PEP 440: pip ignores such files too
            };
            seen_versions.insert(version.clone(), ());
            let rank = wheel
                .tags()
                .iter()
                .filter_map(|t| self.tags.iter().position(|s| s == t))
                .min();
            if let Some(rank) = rank {
                by_version
                    .entry(version)
                    .or_default()
                    .push((rank, f, wheel));
            }
        }
        let mut project = Project::default();
        for version in seen_versions.into_keys() {
            let mut fitting = by_version.remove(&version).unwrap_or_default();
            if fitting.is_empty() {
                project.unusable.insert(version, Unusable::NoWheel);
                continue;
            }
            let mut wants = None;
            fitting.retain(|(_, f, _)| match &f.requires_python {
                Some(rp) if !self.python_ok(rp) => {
                    wants = Some(rp.clone());
                    false
                }
                _ => true,
            });
            if fitting.is_empty() {
                project
                    .unusable
                    .insert(version, Unusable::RequiresPython(wants.unwrap_or_default()));
                continue;
            }
            let (live, yanked): (Vec<_>, Vec<_>) = fitting
                .into_iter()
                .partition(|(_, f, _)| f.yanked.is_none());
            let best = |mut v: Vec<(usize, ListedFile, WheelFilename)>| {
                v.sort_by(|a, b| {
                    a.0.cmp(&b.0)
                        .then_with(|| b.2.build.cmp(&a.2.build))
                        .then_with(|| a.1.filename.cmp(&b.1.filename))
                });
                v.into_iter()
                    .next()
                    .map(|(_, file, wheel)| Candidate { file, wheel })
            };
            if let Some(c) = best(live) {
                project.usable.insert(version, c);
            } else if let Some(c) = best(yanked) {
                let reason = c.file.yanked.clone().unwrap_or_default();
                project.yanked.insert(version.clone(), c);
                project.unusable.insert(version, Unusable::Yanked(reason));
            }
        }
        Ok(project)
    }

    /// True when `Requires-Python` admits the target; an unreadable one does not (as pip).
    fn python_ok(&self, requires_python: &str) -> bool {
        VersionSpecifiers::from_str(requires_python).is_ok_and(|s| s.contains(&self.python_version))
    }

    /// The target CPython.
    pub(crate) fn python(&self) -> PythonVersion {
        self.python
    }

    /// The core metadata of `candidate` (version `version` of `name`).
    pub(crate) fn metadata(
        &self,
        name: &PackageName,
        version: &Version,
        candidate: &Candidate,
    ) -> Result<Rc<CoreMetadata>, LockError> {
        let key = (name.clone(), version.clone());
        if let Some(m) = self.metadata.borrow().get(&key) {
            return Ok(m.clone());
        }
        let text = self.metadata_text(candidate)?;
        let meta = Rc::new(parse_metadata(&text, name, version, &candidate.file)?);
        self.metadata.borrow_mut().insert(key, meta.clone());
        Ok(meta)
    }

    fn metadata_text(&self, c: &Candidate) -> Result<String, LockError> {
        let f = &c.file;
        match f.core_metadata {
            Some(published) => {
                if let Some(h) = published
                    && let Lookup::Hit { path, .. } = self.cache.lookup(&h)?
                {
                    return read_text(&path, &f.filename);
                }
                let url = metadata_url(&f.url);
                *self.requests.borrow_mut() += 1;
                let page = self.client.get_page(&url, "*/*")?;
                if page.body.len() > MAX_METADATA_BYTES {
                    return Err(LockError::Lie {
                        url,
                        what: format!(
                            "the metadata file of {} has {} bytes; real ones have a few KiB",
                            f.filename,
                            page.body.len()
                        ),
                    });
                }
                let actual = Sha256Digest::of(&page.body);
                if let Some(h) = published {
                    if h != actual {
                        return Err(LockError::Lie {
                            url,
                            what: format!(
                                "the metadata file of {} has sha256 {actual}, but the index page publishes {h}",
                                f.filename
                            ),
                        });
                    }
                    let part = self.cache.partial_path(&h);
                    std::fs::write(&part, &page.body)
                        .map_err(|e| IoError::new(&part, "cannot write", e))?;
                    self.cache.publish(&h, &part)?;
                }
                String::from_utf8(page.body).map_err(|_| LockError::Lie {
                    url,
                    what: format!("the metadata file of {} is not UTF-8", f.filename),
                })
            }
            None => {
                let path = self.wheel_in_cache(f)?;
                let mut archive = Archive::open(&path, &format!("wheel {}", f.filename))?;
                let stem = format!("{}-{}.dist-info/METADATA", c.wheel.name, c.wheel.version);
                let entry = archive
                    .entries()
                    .iter()
                    .find(|e| e.name.eq_ignore_ascii_case(&stem))
                    .or_else(|| {
                        archive.entries().iter().find(|e| {
                            e.name.ends_with(".dist-info/METADATA")
                                && e.name.matches('/').count() == 1
                        })
                    })
                    .cloned()
                    .ok_or_else(|| LockError::Lie {
                        url: f.url.clone(),
                        what: format!("{} has no .dist-info/METADATA", f.filename),
                    })?;
                let bytes = archive.read(&entry)?;
                String::from_utf8(bytes).map_err(|_| LockError::Lie {
                    url: f.url.clone(),
                    what: format!("the METADATA of {} is not UTF-8", f.filename),
                })
            }
        }
    }

    /// The wheel in the cache, downloaded and checked against the index's sha256 if needed.
    /// A file the index gives no sha256 for is downloaded and hashed; its hash becomes the pin.
    pub(crate) fn wheel_in_cache(&self, f: &ListedFile) -> Result<std::path::PathBuf, LockError> {
        if let Some(h) = f.sha256
            && let Lookup::Hit { path, .. } = self.cache.lookup(&h)?
        {
            return Ok(path);
        }
        let key = f
            .sha256
            .unwrap_or_else(|| Sha256Digest::of(f.url.as_str().as_bytes()));
        let part = self.cache.partial_path(&key);
        *self.requests.borrow_mut() += 1;
        let got = self.client.download(
            &f.url,
            &part,
            &ProgressBar::hidden(),
            (
                f.size
                    .unwrap_or(crate::model::manifest::MAX_UNPINNED_DOWNLOAD),
                f.size.is_some(),
            ),
        )?;
        if let Some(h) = f.sha256
            && got.sha256 != h
        {
            let _ = std::fs::remove_file(&part);
            return Err(LockError::Lie {
                url: f.url.clone(),
                what: format!(
                    "{} has sha256 {}, but the index page publishes {h}",
                    f.filename, got.sha256
                ),
            });
        }
        Ok(self.cache.publish(&got.sha256, &part)?)
    }

    /// The sha256 of a chosen file: the index's, or the one of the bytes when it gives none.
    pub(crate) fn sha256_of(
        &self,
        f: &ListedFile,
    ) -> Result<(Sha256Digest, Option<u64>), LockError> {
        match f.sha256 {
            Some(h) => Ok((h, f.size)),
            None => {
                let path = self.wheel_in_cache(f)?;
                let (h, size) = crate::mechanism::digest::hash_file(&path)
                    .map_err(|e| IoError::new(&path, "cannot read", e))?;
                Ok((h, Some(size)))
            }
        }
    }
}

fn metadata_url(file: &Url) -> Url {
    let mut u = file.clone();
    u.set_path(&format!("{}.metadata", file.path()));
    u
}

fn read_text(path: &std::path::Path, file: &str) -> Result<String, LockError> {
    let bytes = std::fs::read(path).map_err(|e| IoError::new(path, "cannot read", e))?;
    String::from_utf8(bytes).map_err(|_| {
        IoError::new(
            path,
            "cannot read",
            std::io::Error::other(format!("the cached metadata of {file} is not UTF-8")),
        )
        .into()
    })
}

/// Reads the headers of a METADATA file (RFC 822 style, up to the body).
pub(crate) fn headers(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push('\n');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

fn parse_metadata(
    text: &str,
    name: &PackageName,
    version: &Version,
    file: &ListedFile,
) -> Result<CoreMetadata, LockError> {
    let lie = |what: String| LockError::Lie {
        url: file.url.clone(),
        what,
    };
    let h = headers(text);
    let get = |k: &str| h.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let meta_name =
        get("name").ok_or_else(|| lie(format!("the metadata of {} has no Name", file.filename)))?;
    let meta_version = get("version")
        .ok_or_else(|| lie(format!("the metadata of {} has no Version", file.filename)))?;
    let same_name = PackageName::from_str(meta_name).is_ok_and(|n| n == *name);
    let same_version = Version::from_str(meta_version).is_ok_and(|v| v == *version);
    if !same_name || !same_version {
        return Err(lie(format!(
            "the metadata of {} describes {meta_name} {meta_version}",
            file.filename
        )));
    }
    let mut requires = Vec::new();
    for (k, v) in &h {
        if k == "requires-dist" {
            let r = crate::model::manifest::requirement(v).map_err(|first| {
                lie(format!(
                    "{} {version} states an unreadable requirement {v:?}: {first}",
                    name
                ))
            })?;
            requires.push(r);
        }
    }
    Ok(CoreMetadata { requires })
}
