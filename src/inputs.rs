//! A build's inputs and the distribution built from them: from an offline bundle, or fetched
//! into the cache and verified; the build of a manifest kept in the cache and reused while it
//! verifies.

use std::path::{Path, PathBuf};

use crate::assemble::seal::{self, Seal, VerifyOptions};
use crate::assemble::{self, BuildOptions, Inputs};
use crate::bundle::Bundle;
use crate::cache::Cache;
use crate::config::Settings;
use crate::error::Error;
use crate::fetch::{self, FetchError, FetchReport};
use crate::layout::{LayoutError, summary};
use crate::manifest::Manifest;
use crate::report::Reporter;

/// Where a build's inputs come from.
pub enum InputSource<'a> {
    /// A verified offline bundle: its artifacts are extracted and checked, no network.
    Bundle(&'a mut Bundle),
    /// The cache, downloading (and verifying) what it lacks.
    Fetch,
}

/// A build's verified inputs; files extracted from a bundle live until this is dropped.
pub struct Resolved {
    /// The artifacts, in manifest order.
    pub inputs: Inputs,
    /// The fetch that put them in the cache (none from a bundle).
    pub fetched: Option<FetchReport>,
    _temp: Option<tempfile::TempDir>,
}

/// The one way to get a build's inputs: extracted from a bundle, or fetched into the cache;
/// every file verified against its pin either way.
pub fn resolve(
    manifest: &Manifest,
    settings: &Settings,
    source: InputSource,
    reporter: &Reporter,
) -> Result<Resolved, Error> {
    match source {
        InputSource::Bundle(bundle) => {
            let temp = crate::place::temp_dir("extpy-bundle-")?;
            let inputs = bundle.extract_artifacts(temp.path())?;
            Ok(Resolved {
                inputs,
                fetched: None,
                _temp: Some(temp),
            })
        }
        InputSource::Fetch => {
            let fetched = fetch::fetch(manifest, &settings.fetch_options()?, reporter)?;
            reporter.info(fetched.summary());
            Ok(Resolved {
                inputs: from_fetch(&fetched),
                fetched: Some(fetched),
                _temp: None,
            })
        }
    }
}

/// What the cache holds of a manifest's artifacts, for a dry run: never uses the network.
pub enum Cached {
    /// Every artifact is cached and verified.
    All(Inputs),
    /// These are not (`file (manifest:line)` each); a real run downloads them.
    Missing(Vec<String>),
}

/// Looks the manifest's artifacts up in the cache (as `--offline` does), downloading nothing.
pub fn cached(
    manifest: &Manifest,
    settings: &Settings,
    reporter: &Reporter,
) -> Result<Cached, Error> {
    let mut options = settings.fetch_options()?;
    options.offline = true;
    match fetch::fetch(manifest, &options, reporter) {
        Ok(fetched) => Ok(Cached::All(from_fetch(&fetched))),
        Err(FetchError::Offline { missing, .. }) => Ok(Cached::Missing(missing)),
        Err(e) => Err(e.into()),
    }
}

/// The cache paths a fetch produced, in manifest order (the embeddable zip first).
fn from_fetch(report: &FetchReport) -> Inputs {
    let mut paths = report.artifacts.iter().map(|a| a.path.clone());
    let embeddable = paths.next().unwrap_or_default();
    Inputs {
        embeddable,
        wheels: paths.collect(),
    }
}

/// Where the distribution a layout copies comes from.
pub enum DistSource<'a> {
    /// A built distribution (checked against its seal first).
    Dir(&'a Path),
    /// An offline bundle: built into a temporary folder, no network.
    Bundle(&'a mut Bundle),
    /// A build of the manifest kept in the cache, reused while it verifies.
    Cached,
}

/// A sealed distribution ready to copy; a temporary one is removed when this is dropped.
pub struct Prepared {
    /// The folder.
    pub dir: PathBuf,
    /// Its seal.
    pub seal: Seal,
    _temp: Option<tempfile::TempDir>,
}

/// Makes the sealed distribution a layout copies.
pub fn prepare_distribution(
    manifest: &Manifest,
    settings: &Settings,
    source: DistSource,
    reporter: &Reporter,
) -> Result<Prepared, Error> {
    let options = VerifyOptions {
        jobs: settings.jobs,
        strict: false,
    };
    let read_seal = |dir: &Path| -> Result<Seal, Error> { Ok(Seal::read(dir)?) };
    match source {
        DistSource::Dir(d) => {
            let v = seal::verify(d, options)?;
            if !v.ok {
                return Err(LayoutError::BadDistribution {
                    path: d.to_path_buf(),
                    summary: summary(&v),
                }
                .into());
            }
            let seal = read_seal(d)?;
            if seal.manifest.sha256 != manifest.digest {
                reporter.warn(format!(
                    "{} was built from manifest {}@{}, not {}; its seal is what gets copied",
                    d.display(),
                    seal.manifest.name,
                    seal.manifest.sha256.short(),
                    manifest.identity()
                ));
            }
            Ok(Prepared {
                dir: d.to_path_buf(),
                seal,
                _temp: None,
            })
        }
        DistSource::Bundle(bundle) => {
            let temp = crate::place::temp_dir("extpy-layout-")?;
            let name = bundle.file_name();
            let resolved = resolve(manifest, settings, InputSource::Bundle(bundle), reporter)?;
            let dir = temp.path().join("dist");
            let seal = build_sealed(manifest, &resolved.inputs, &dir, settings, reporter)?;
            reporter.info(format!(
                "built the distribution from {name} (seal {})",
                seal.digest.short()
            ));
            Ok(Prepared {
                dir,
                seal,
                _temp: Some(temp),
            })
        }
        DistSource::Cached => {
            let dir = Cache::open(&settings.cache_dir)?.build_path(&manifest.digest);
            if let Ok(v) = seal::verify(&dir, options)
                && v.ok
                && let Ok(seal) = Seal::read(&dir)
                && seal.manifest.sha256 == manifest.digest
            {
                reporter.detail(format!("using the cached build {}", dir.display()));
                return Ok(Prepared {
                    dir,
                    seal,
                    _temp: None,
                });
            }
            let resolved = resolve(manifest, settings, InputSource::Fetch, reporter)?;
            let seal = build_sealed(manifest, &resolved.inputs, &dir, settings, reporter)?;
            reporter.info(format!(
                "built the distribution ({} files, seal {})",
                seal.files.len(),
                seal.digest.short()
            ));
            Ok(Prepared {
                dir,
                seal,
                _temp: None,
            })
        }
    }
}

/// Builds the distribution into `dir` (replacing what is there) and returns its seal.
fn build_sealed(
    manifest: &Manifest,
    inputs: &Inputs,
    dir: &Path,
    settings: &Settings,
    reporter: &Reporter,
) -> Result<Seal, Error> {
    let options = BuildOptions {
        dest: dir.to_path_buf(),
        force: true,
        jobs: settings.jobs,
    };
    assemble::build(manifest, inputs, &options, reporter)?;
    Ok(Seal::read(dir)?)
}
