//! A build's inputs and the distribution built from them: from an offline bundle, or fetched
//! into the cache and verified; the build of a manifest kept in the cache and reused while it
//! verifies.

use std::path::{Path, PathBuf};

use crate::assemble::seal::{self, Seal, VerifyOptions};
use crate::assemble::{self, BuildOptions, Inputs};
use crate::config::Settings;
use crate::error::Error;
use crate::layout::{LayoutError, summary};
use crate::manifest::Manifest;
use crate::report::Reporter;

/// Where the distribution a layout copies comes from.
pub enum DistSource<'a> {
    /// A built distribution (checked against its seal first).
    Dir(&'a Path),
    /// An offline bundle: built into a temporary folder, no network.
    Bundle(&'a mut crate::bundle::Bundle),
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
            let inputs = bundle.extract_artifacts(temp.path())?;
            let dir = temp.path().join("dist");
            let seal = build_sealed(manifest, &inputs, &dir, settings, reporter)?;
            reporter.info(format!(
                "built the distribution from {} (seal {})",
                bundle.file_name(),
                seal.digest.short()
            ));
            Ok(Prepared {
                dir,
                seal,
                _temp: Some(temp),
            })
        }
        DistSource::Cached => {
            let dir = settings
                .cache_dir
                .join("builds")
                .join(manifest.digest.to_hex());
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
            let fetched = crate::fetch::fetch(manifest, &settings.fetch_options()?, reporter)?;
            reporter.info(fetched.summary());
            let seal = build_sealed(
                manifest,
                &Inputs::from_fetch(&fetched),
                &dir,
                settings,
                reporter,
            )?;
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
