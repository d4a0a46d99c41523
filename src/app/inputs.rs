//! A build's inputs and the distribution built from them: from an offline bundle, or fetched
//! into the cache and verified; the build of a manifest kept in the cache and reused while it
//! verifies.

use std::path::{Path, PathBuf};

use crate::app::config::Settings;
use crate::app::error::Error;
use crate::base::report::Reporter;
use crate::job::assemble::seal::{self, Seal, VerifyOptions};
use crate::job::assemble::{self, BuildOptions, Inputs};
use crate::job::bundle::Bundle;
use crate::job::fetch::{self, FetchError, FetchReport};
use crate::job::layout::{LayoutError, summary};
use crate::mechanism::cache::Cache;
use crate::model::manifest::Manifest;

/// Where a build's inputs come from.
pub(crate) enum InputSource<'a> {
    /// A verified offline bundle: its artifacts are extracted and checked, no network.
    Bundle(&'a mut Bundle),
    /// The cache, downloading (and verifying) what it lacks.
    Fetch,
}

/// A build's verified inputs; files extracted from a bundle live until this is dropped.
pub(crate) struct Resolved {
    /// The artifacts, in manifest order.
    pub inputs: Inputs,
    /// The fetch that put them in the cache (none from a bundle).
    pub fetched: Option<FetchReport>,
    _temp: Option<tempfile::TempDir>,
}

/// The one way to get a build's inputs: extracted from a bundle, or fetched into the cache;
/// every file verified against its pin either way.
pub(crate) fn resolve(
    manifest: &Manifest,
    settings: &Settings,
    source: InputSource,
    reporter: &Reporter,
) -> Result<Resolved, Error> {
    match source {
        InputSource::Bundle(bundle) => {
            let temp = crate::mechanism::place::temp_dir("extpy-bundle-")?;
            let inputs = bundle.extract_artifacts(temp.path())?;
            // The pinned publishers, verified from the bundle's copies of their documents.
            bundle.check_provenance(&inputs, &settings.provenance_policy()?)?;
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
pub(crate) enum Cached {
    /// Every artifact is cached and verified.
    All(Inputs),
    /// These are not (`file (manifest:line)` each); a real run downloads them.
    Missing(Vec<String>),
}

/// Looks the manifest's artifacts up in the cache (as `--offline` does), downloading nothing.
pub(crate) fn cached(
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

/// Where the distribution a layout copies (and the seal it is checked against) comes from.
pub(crate) enum DistSource<'a> {
    /// A built distribution (checked against its seal, see [`reference`]); its seal is the
    /// reference once it is the seal the manifest produces (or `trust_own_seal` is given).
    Dir {
        /// The folder.
        path: &'a Path,
        /// `--trust-dist-seal`: its own seal is the reference, compared with nothing.
        trust_own_seal: bool,
    },
    /// An offline bundle: the seal its artifacts produce, built into a temporary folder.
    Bundle(&'a mut Bundle),
    /// The manifest's artifacts in the cache (downloaded when missing): the seal they
    /// produce, and their build kept in the cache, reused while it matches that seal.
    Cached,
}

/// The seal a tree must carry to hold what the manifest (or bundle) builds.
pub(crate) struct Reference {
    /// The seal a build produces (for `--dist`, that distribution's own seal).
    pub seal: Seal,
    /// What it was computed from.
    pub origin: String,
    kind: RefKind,
}

enum RefKind {
    /// A given distribution; `hashed` once its files' contents were checked, not only listed.
    Dir {
        path: PathBuf,
        hashed: bool,
    },
    Built {
        inputs: Resolved,
        bundle: bool,
    },
}

/// The seal the manifest (or bundle, or `--dist` distribution) produces. Builds are
/// byte-identical for the same inputs, so this is computed from the verified artifacts
/// without writing anything; artifacts missing from the cache are downloaded. A `--dist`
/// distribution is checked against its seal by listing here, and its files' contents as the
/// layout copies them (or by [`Reference::check_contents`] when it copies nothing).
pub(crate) fn reference(
    manifest: &Manifest,
    settings: &Settings,
    source: DistSource,
    reporter: &Reporter,
) -> Result<Reference, Error> {
    let found = reference_from(manifest, settings, source, false, reporter)?;
    Ok(found.expect("a look-up that may download finds every artifact or fails"))
}

/// Like [`reference`], but downloads nothing (for a dry run): `None` when some artifact is
/// not in the cache.
pub(crate) fn cached_reference(
    manifest: &Manifest,
    settings: &Settings,
    source: DistSource,
    reporter: &Reporter,
) -> Result<Option<Reference>, Error> {
    reference_from(manifest, settings, source, true, reporter)
}

fn reference_from(
    manifest: &Manifest,
    settings: &Settings,
    source: DistSource,
    cache_only: bool,
    reporter: &Reporter,
) -> Result<Option<Reference>, Error> {
    let options = VerifyOptions {
        jobs: settings.jobs,
        strict: false,
    };
    let (inputs, bundle, origin) = match source {
        DistSource::Dir {
            path: d,
            trust_own_seal,
        } => {
            // A layout that copies hashes every file as it reads it and refuses one that
            // differs, so only a dry run (which copies nothing) hashes them here.
            let v = if cache_only {
                seal::verify(d, options)?
            } else {
                seal::verify_listing(d, options)?
            };
            matches_seal(d, &v)?;
            let seal = Seal::read(d)?;
            if trust_own_seal {
                reporter.warn(format!(
                    "--trust-dist-seal: {} is copied on its own seal, not compared with the seal {} produces",
                    d.display(),
                    manifest.identity()
                ));
            } else {
                same_as_built(d, &seal, manifest, settings, cache_only, reporter)?;
            }
            if seal.manifest.sha256 != manifest.digest {
                reporter.warn(format!(
                    "{} was built from manifest {}@{}, not {}; its seal is what gets copied",
                    d.display(),
                    seal.manifest.name,
                    seal.manifest.sha256.short(),
                    manifest.identity()
                ));
            }
            return Ok(Some(Reference {
                seal,
                origin: format!("the distribution {}", d.display()),
                kind: RefKind::Dir {
                    path: d.to_path_buf(),
                    hashed: cache_only,
                },
            }));
        }
        DistSource::Bundle(b) => {
            let origin = format!("the bundle {}", b.file_name());
            let r = resolve(manifest, settings, InputSource::Bundle(b), reporter)?;
            (r, true, origin)
        }
        // A dry run does not even create the cache.
        DistSource::Cached if cache_only && !settings.cache_dir.is_dir() => return Ok(None),
        DistSource::Cached if cache_only => match cached(manifest, settings, reporter)? {
            Cached::All(inputs) => (
                Resolved {
                    inputs,
                    fetched: None,
                    _temp: None,
                },
                false,
                format!("manifest {}", manifest.identity()),
            ),
            Cached::Missing(_) => return Ok(None),
        },
        DistSource::Cached => {
            let r = resolve(manifest, settings, InputSource::Fetch, reporter)?;
            (r, false, format!("manifest {}", manifest.identity()))
        }
    };
    let seal = assemble::expected_seal(manifest, &inputs.inputs, settings.jobs)?;
    reporter.detail(format!("{origin} produces seal {}", seal.digest.short()));
    Ok(Some(Reference {
        seal,
        origin,
        kind: RefKind::Built { inputs, bundle },
    }))
}

/// Refuses a given distribution whose (consistent) seal is not the seal the manifest
/// produces: a tree changed and resealed by whoever could write it. When the manifest's
/// artifacts are not in the cache with `--offline`, that seal is unknown, and a layout
/// stops rather than fan the tree out on its own word (a dry run says so and goes on).
fn same_as_built(
    dir: &Path,
    seal: &Seal,
    manifest: &Manifest,
    settings: &Settings,
    cache_only: bool,
    reporter: &Reporter,
) -> Result<(), Error> {
    let expected = if cache_only || settings.offline {
        reference_from(manifest, settings, DistSource::Cached, true, reporter)?
    } else {
        Some(reference(manifest, settings, DistSource::Cached, reporter)?)
    };
    let Some(expected) = expected else {
        if cache_only {
            reporter.warn(format!(
                "{} was checked against its own seal only: the artifacts of {} are not in the cache (a layout stops here; run `extpy fetch` first)",
                dir.display(),
                manifest.identity()
            ));
            return Ok(());
        }
        return Err(LayoutError::OwnSealOnly {
            path: dir.to_path_buf(),
            manifest: manifest.identity(),
        }
        .into());
    };
    let differ = seal::deviations(&expected.seal, seal);
    if differ.is_empty() {
        reporter.detail(format!(
            "{} holds the seal {} produces",
            dir.display(),
            manifest.identity()
        ));
        return Ok(());
    }
    let mut named: Vec<String> = differ
        .iter()
        .take(5)
        .map(|d| format!("{} {}", d.what, d.path))
        .collect();
    if differ.len() > 5 {
        named.push(format!("and {} more", differ.len() - 5));
    }
    Err(LayoutError::NotAsBuilt {
        path: dir.to_path_buf(),
        manifest: manifest.identity(),
        summary: named.join(", "),
    }
    .into())
}

impl Reference {
    /// Hashes the files of a given distribution that were only listed so far (see
    /// [`reference`]), for a layout that copies nothing and so would never read them.
    pub(crate) fn check_contents(&self, settings: &Settings) -> Result<(), Error> {
        let RefKind::Dir {
            path,
            hashed: false,
        } = &self.kind
        else {
            return Ok(());
        };
        let options = VerifyOptions {
            jobs: settings.jobs,
            strict: false,
        };
        matches_seal(path, &seal::verify(path, options)?)
    }
}

/// Refuses a given distribution that does not match its seal.
fn matches_seal(dir: &Path, v: &seal::Verification) -> Result<(), Error> {
    if v.ok {
        return Ok(());
    }
    Err(LayoutError::BadDistribution {
        path: dir.to_path_buf(),
        summary: summary(v),
    }
    .into())
}

/// A sealed distribution ready to copy; a temporary one is removed when this is dropped.
pub(crate) struct Prepared {
    /// The folder.
    pub dir: PathBuf,
    /// Its seal (the reference's).
    pub seal: Seal,
    _temp: Option<tempfile::TempDir>,
}

/// Makes the sealed distribution a layout copies, holding exactly the reference seal: the
/// given distribution, the cached build while it matches, or a new build.
pub(crate) fn prepare_distribution(
    manifest: &Manifest,
    settings: &Settings,
    reference: &Reference,
    reporter: &Reporter,
) -> Result<Prepared, Error> {
    let (inputs, bundle) = match &reference.kind {
        RefKind::Dir { path, .. } => {
            return Ok(Prepared {
                dir: path.clone(),
                seal: reference.seal.clone(),
                _temp: None,
            });
        }
        RefKind::Built { inputs, bundle } => (&inputs.inputs, *bundle),
    };
    let (dir, temp) = if bundle {
        let temp = crate::mechanism::place::temp_dir("extpy-layout-")?;
        (temp.path().join("dist"), Some(temp))
    } else {
        let dir = Cache::open(&settings.cache_dir)?.build_path(&manifest.digest);
        let options = VerifyOptions {
            jobs: settings.jobs,
            strict: false,
        };
        if let Ok(v) = seal::verify_against(&dir, options, Some(&reference.seal))
            && v.ok
        {
            reporter.detail(format!("using the cached build {}", dir.display()));
            return Ok(Prepared {
                dir,
                seal: reference.seal.clone(),
                _temp: None,
            });
        }
        (dir, None)
    };
    let seal = build_sealed(manifest, inputs, &dir, settings, reporter)?;
    if seal.digest != reference.seal.digest {
        return Err(LayoutError::BadDistribution {
            path: dir,
            summary: format!(
                "its seal {} is not the seal {} computed from the same artifacts",
                seal.digest.short(),
                reference.seal.digest.short()
            ),
        }
        .into());
    }
    reporter.info(format!(
        "built the distribution from {} ({} files, seal {})",
        reference.origin,
        seal.files.len(),
        seal.digest.short()
    ));
    Ok(Prepared {
        dir,
        seal,
        _temp: temp,
    })
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
