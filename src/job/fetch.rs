//! `extpy fetch`: every artifact of a manifest into the cache, verified, in parallel.
//!
//! Decide first (what is cached, what is missing), then act (download the missing ones).
//! A warm cache opens no connection at all; `--offline` never does.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use url::Url;

use crate::base::exit::ExitCode;
use crate::base::report::{Reporter, human_bytes};
use crate::job::provenance::{ProvenanceFailure, ProvenancePolicy, Publisher};
use crate::job::source::{SourceError, Sources};
use crate::mechanism::cache::{Cache, CacheError, Lookup};
use crate::mechanism::digest::Sha256Digest;
use crate::mechanism::net::{Client, NetError, NetOptions};
use crate::model::manifest::{Artifact, ArtifactKind, Manifest};
use crate::parallel;

/// What a fetch needs.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The cache folder.
    pub cache_dir: PathBuf,
    /// Where artifacts come from.
    pub sources: Sources,
    /// HTTP client settings.
    pub net: NetOptions,
    /// Never touch the network.
    pub offline: bool,
    /// Parallel downloads.
    pub jobs: usize,
    /// How publishers' signatures are verified.
    pub provenance: ProvenancePolicy,
}

/// Where a fetched artifact came from.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Provenance {
    /// Already in the cache.
    Cache,
    /// Downloaded now.
    Network,
}

/// One artifact, verified and in the cache.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Fetched {
    /// File name.
    pub file: String,
    /// Embeddable or wheel.
    pub kind: ArtifactKind,
    /// The pinned (and verified) digest.
    pub sha256: Sha256Digest,
    /// Size in bytes.
    pub size: u64,
    /// The verified copy in the cache.
    pub path: PathBuf,
    /// Cache or network.
    pub from: Provenance,
    /// The URL it was downloaded from (after redirects); none from cache.
    pub url: Option<Url>,
    /// True when a partial download was continued.
    pub resumed: bool,
    /// HTTP requests made for the file itself.
    pub attempts: u32,
    /// Who published it, as verified (`none` for `provenance: none`).
    pub publisher: Publisher,
}

/// The result of a fetch.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FetchReport {
    /// Manifest name.
    pub manifest: String,
    /// Manifest digest.
    pub manifest_sha256: Sha256Digest,
    /// Every artifact, in manifest order.
    pub artifacts: Vec<Fetched>,
    /// Bytes that came over the network.
    pub downloaded_bytes: u64,
    /// Wall time.
    #[serde(serialize_with = "ser_millis", rename = "elapsed_ms")]
    pub elapsed: Duration,
}

fn ser_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// Why one artifact could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Its bytes do not match the pin.
    #[error(
        "{file}: downloaded bytes do not match the pinned sha256\n  expected: {expected}\n  actual:   {actual}\n  url: {url}\n  nothing was put in the cache; the server or something between it and you changed the file"
    )]
    HashMismatch {
        /// File name.
        file: String,
        /// The URL.
        url: Url,
        /// The pin.
        expected: Sha256Digest,
        /// What arrived.
        actual: Sha256Digest,
    },
    /// Its location could not be found.
    #[error("{file} ({origin}:{line}): {source}")]
    Source {
        /// File name.
        file: String,
        /// Manifest.
        origin: String,
        /// Manifest line.
        line: String,
        /// The cause.
        source: SourceError,
    },
    /// The download failed.
    #[error("{file} ({origin}:{line}): {source}")]
    Net {
        /// File name.
        file: String,
        /// Manifest.
        origin: String,
        /// Manifest line.
        line: String,
        /// The cause.
        source: NetError,
    },
    /// The cache could not be used.
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl ArtifactError {
    /// The exit code of this artifact's failure.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ArtifactError::HashMismatch { .. } => ExitCode::Verification,
            ArtifactError::Source { source, .. } => source.exit_code(),
            ArtifactError::Net { source, .. } => source.exit_code(),
            ArtifactError::Cache(c) => c.exit_code(),
        }
    }
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// `--offline` and artifacts are not cached.
    #[error("--offline: {} of {total} artifacts are not in the cache {}:\n{}\n  help: run `extpy fetch` on a connected machine with the same --cache-dir (it downloads what is missing or was corrupt), or use an offline bundle (`extpy build --bundle FILE`)", missing.len(), cache.display(), missing.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Offline {
        /// The cache folder.
        cache: PathBuf,
        /// `file (manifest:line)` of each missing artifact.
        missing: Vec<String>,
        /// Artifacts in the manifest.
        total: usize,
    },
    /// Some artifacts failed.
    #[error("{}", render_failures(.0))]
    Artifacts(Vec<ArtifactError>),
    /// Some artifacts' publishers could not be verified.
    #[error("{}", render_provenance(.0))]
    Provenance(Vec<ProvenanceFailure>),
    /// The cache could not be opened.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Net(#[from] NetError),
}

fn render_failures(failures: &[ArtifactError]) -> String {
    render_list(failures, "artifacts could not be fetched")
}

/// The provenance failures of several artifacts, as one message.
pub(crate) fn render_provenance(failures: &[ProvenanceFailure]) -> String {
    render_list(failures, "artifacts failed the provenance check")
}

/// One failure as it is; several as a list under `what`, each indented.
fn render_list<T: std::fmt::Display>(failures: &[T], what: &str) -> String {
    if failures.len() == 1 {
        return failures[0].to_string();
    }
    let (messages, advice) = crate::mechanism::net::proxy::shared_advice(
        failures.iter().map(|f| f.to_string()).collect(),
    );
    let mut s = format!("{} {what}:", failures.len());
    for m in messages {
        s.push_str("\n- ");
        s.push_str(&m.replace('\n', "\n  "));
    }
    s.push_str(advice.as_deref().unwrap_or(""));
    s
}

impl FetchError {
    /// The exit code; of several failures the most actionable class wins (input, then
    /// verification, then local).
    pub fn exit_code(&self) -> ExitCode {
        match self {
            FetchError::Offline { .. } => ExitCode::Network,
            FetchError::Cache(c) => c.exit_code(),
            FetchError::Net(n) => n.exit_code(),
            FetchError::Provenance(failures) => {
                let codes: Vec<ExitCode> =
                    failures.iter().map(ProvenanceFailure::exit_code).collect();
                [ExitCode::Verification, ExitCode::Local]
                    .into_iter()
                    .find(|c| codes.contains(c))
                    .unwrap_or(ExitCode::Network)
            }
            FetchError::Artifacts(failures) => {
                let codes: Vec<ExitCode> = failures.iter().map(ArtifactError::exit_code).collect();
                [ExitCode::Input, ExitCode::Verification, ExitCode::Local]
                    .into_iter()
                    .find(|c| codes.contains(c))
                    .unwrap_or(ExitCode::Network)
            }
        }
    }
}

/// Fetches every artifact of `manifest` into the cache and verifies it.
pub(crate) fn fetch(
    manifest: &Manifest,
    options: &FetchOptions,
    reporter: &Reporter,
) -> Result<FetchReport, FetchError> {
    fetch_each(manifest, options, reporter, &|_, _| {})
}

/// Like [`fetch`], and calls `ready` with each artifact's index (in [`Manifest::artifacts`]
/// order) and its verified copy the moment it is in the cache, from the downloading thread,
/// so that work on it can start while the others download.
pub(crate) fn fetch_each(
    manifest: &Manifest,
    options: &FetchOptions,
    reporter: &Reporter,
    ready: &(dyn Fn(usize, &Fetched) + Sync),
) -> Result<FetchReport, FetchError> {
    let started = Instant::now();
    let cache = Cache::open(&options.cache_dir)?;
    let artifacts: Vec<&Artifact> = manifest.artifacts().collect();

    // Decide: what the cache already holds.
    let mut done: Vec<Option<Fetched>> = vec![None; artifacts.len()];
    let mut missing = Vec::new();
    // What a corrupt copy was, by index: said in the offline error, not as "not cached".
    let mut corrupt: Vec<(usize, String)> = Vec::new();
    for (i, a) in artifacts.iter().enumerate() {
        match cache.lookup(&a.sha256)? {
            Lookup::Hit { path, size } => done[i] = Some(from_cache(a, path, size)),
            Lookup::Miss => missing.push(i),
            Lookup::Corrupt { actual } => {
                let what = format!(
                    "the cached copy {} was corrupt (sha256 {actual}, expected {}) and was removed",
                    cache.blob_path(&a.sha256).display(),
                    a.sha256
                );
                if !options.offline {
                    reporter.warn(format!("{}: {what}; it is downloaded again", a.file));
                }
                corrupt.push((i, what));
                missing.push(i);
            }
        }
    }
    if !missing.is_empty() && options.offline {
        return Err(FetchError::Offline {
            cache: options.cache_dir.clone(),
            missing: missing
                .iter()
                .map(|&i| match corrupt.iter().find(|(c, _)| *c == i) {
                    Some((_, what)) => format!(
                        "{}: {what}; the disk, an antivirus or another program changed it",
                        describe(manifest, artifacts[i])
                    ),
                    None => describe(manifest, artifacts[i]),
                })
                .collect(),
            total: artifacts.len(),
        });
    }
    for (i, f) in done.iter().enumerate() {
        if let Some(f) = f {
            ready(i, f);
        }
    }

    // Act: download what is missing, in parallel, the largest first so that no large file
    // starts late behind small ones while the link idles at the end.
    missing.sort_by_key(|&i| download_order(artifacts[i]));
    let mut downloaded_bytes = 0;
    let mut client = None;
    if !missing.is_empty() {
        let client = client.insert(Client::new(options.net.clone(), reporter.clone())?);
        let total_bar = reporter.count_bar(missing.len() as u64, "artifacts");
        let results: Vec<(usize, Result<Fetched, ArtifactError>)> =
            parallel(options.jobs, &missing, |&i| {
                let r = fetch_one(client, &cache, options, manifest, artifacts[i], reporter);
                if let Ok(f) = &r {
                    ready(i, f);
                }
                total_bar.inc(1);
                (i, r)
            });
        total_bar.finish_and_clear();
        let mut failures = Vec::new();
        for (i, r) in results {
            match r {
                Ok(f) => {
                    if f.from == Provenance::Network {
                        downloaded_bytes += f.size;
                    }
                    done[i] = Some(f)
                }
                Err(e) => failures.push(e),
            }
        }
        if !failures.is_empty() {
            return Err(FetchError::Artifacts(failures));
        }
    }

    // Then who published them: each pinned publisher's signature, verified offline.
    let mut failures = Vec::new();
    for (i, a) in artifacts.iter().enumerate() {
        let Some(f) = done[i].as_mut() else { continue };
        if a.provenance.is_some() && client.is_none() && !options.offline {
            client = Some(Client::new(options.net.clone(), reporter.clone())?);
        }
        match crate::job::provenance::check(
            manifest,
            a,
            &f.path,
            &cache,
            &options.sources,
            client.as_ref().filter(|_| !options.offline),
            &options.provenance,
        ) {
            Ok(p) => f.publisher = p,
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        return Err(FetchError::Provenance(failures));
    }

    Ok(FetchReport {
        manifest: manifest.name.clone(),
        manifest_sha256: manifest.digest,
        artifacts: done.into_iter().flatten().collect(),
        downloaded_bytes,
        elapsed: started.elapsed(),
    })
}

/// The order downloads start in: artifacts with a pinned `size:` (a locked manifest has one
/// for each) largest first; the others after them by kind, which says enough where sizes are
/// unknown before the download: the embeddable CPython is by far the largest, then wheels
/// with compiled code, then pure ones.
fn download_order(a: &Artifact) -> (std::cmp::Reverse<Option<u64>>, u8) {
    let kind = match a.kind {
        ArtifactKind::Embeddable => 0,
        ArtifactKind::Wheel if !a.file.ends_with("-any.whl") => 1,
        ArtifactKind::Wheel => 2,
    };
    (std::cmp::Reverse(a.size), kind)
}

fn from_cache(a: &Artifact, path: PathBuf, size: u64) -> Fetched {
    Fetched {
        file: a.file.clone(),
        kind: a.kind,
        sha256: a.sha256,
        size,
        path,
        from: Provenance::Cache,
        url: None,
        resumed: false,
        attempts: 0,
        publisher: Publisher::None,
    }
}

fn describe(manifest: &Manifest, a: &Artifact) -> String {
    match a.line {
        Some(l) => format!("{} ({}:{l})", a.file, manifest.origin),
        None => format!("{} ({})", a.file, manifest.origin),
    }
}

fn fetch_one(
    client: &Client,
    cache: &Cache,
    options: &FetchOptions,
    manifest: &Manifest,
    a: &Artifact,
    reporter: &Reporter,
) -> Result<Fetched, ArtifactError> {
    let origin = manifest.origin.to_string();
    let line = a.line.map(|l| l.to_string()).unwrap_or_else(|| "?".into());
    let _lock = cache.lock(&a.sha256)?;
    // Another run may have published it while we waited for the lock.
    if let Lookup::Hit { path, size } = cache.lookup(&a.sha256)? {
        return Ok(from_cache(a, path, size));
    }
    let located = options
        .sources
        .locate(client, manifest, a)
        .map_err(|source| ArtifactError::Source {
            file: a.file.clone(),
            origin: origin.clone(),
            line: line.clone(),
            source,
        })?;
    if let Some(w) = &located.warning {
        reporter.warn(w);
    }
    reporter.detail(format!("downloading {} from {}", a.file, located.url));
    let part = cache.partial_path(&a.sha256);
    let bar = reporter.file_bar(&a.file);
    let net_err = |source| ArtifactError::Net {
        file: a.file.clone(),
        origin: origin.clone(),
        line: line.clone(),
        source,
    };
    let mut got = client
        .download(
            &located.url,
            &part,
            &bar,
            (a.download_limit(), a.size.is_some()),
        )
        .map_err(net_err)?;
    if got.sha256 != a.sha256 && got.resumed {
        // The kept prefix may be from other bytes: one more try from scratch.
        reporter.warn(format!(
            "{}: the resumed download did not verify; downloading it again from the start",
            a.file
        ));
        let _ = std::fs::remove_file(&part);
        let again = client
            .download(
                &located.url,
                &part,
                &bar,
                (a.download_limit(), a.size.is_some()),
            )
            .map_err(net_err)?;
        got = crate::mechanism::net::Downloaded {
            attempts: got.attempts + again.attempts,
            ..again
        };
    }
    bar.finish_and_clear();
    if got.sha256 != a.sha256 {
        let _ = std::fs::remove_file(&part);
        return Err(ArtifactError::HashMismatch {
            file: a.file.clone(),
            url: got.url,
            expected: a.sha256,
            actual: got.sha256,
        });
    }
    let path = cache.publish(&a.sha256, &part)?;
    reporter.detail(format!(
        "{} verified ({}, sha256 {})",
        a.file,
        human_bytes(got.size),
        a.sha256.short()
    ));
    Ok(Fetched {
        file: a.file.clone(),
        kind: a.kind,
        sha256: a.sha256,
        size: got.size,
        path,
        from: Provenance::Network,
        url: Some(got.url),
        resumed: got.resumed,
        attempts: got.attempts,
        publisher: Publisher::None,
    })
}

impl ArtifactError {
    /// The network error inside, if that is what failed.
    pub fn net(&self) -> Option<&NetError> {
        match self {
            ArtifactError::Net { source, .. } => Some(source),
            ArtifactError::Source {
                source: SourceError::Net(n),
                ..
            } => Some(n),
            _ => None,
        }
    }
}

impl FetchReport {
    /// One line: how many artifacts, from where.
    pub(crate) fn summary(&self) -> String {
        let net = self
            .artifacts
            .iter()
            .filter(|a| a.from == Provenance::Network)
            .count();
        format!(
            "{} artifacts verified ({} downloaded, {}; {} from cache)",
            self.artifacts.len(),
            net,
            human_bytes(self.downloaded_bytes),
            self.artifacts.len() - net
        )
    }

    /// The human result: one line per artifact, then a summary.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for a in &self.artifacts {
            let from = match (&a.from, a.resumed) {
                (Provenance::Cache, _) => "cached",
                (Provenance::Network, true) => "resumed",
                (Provenance::Network, false) => "fetched",
            };
            out.push_str(&format!(
                "{from:<8} {:<52} {:>10}  sha256 {}\n",
                a.file,
                human_bytes(a.size),
                a.sha256.short()
            ));
        }
        let net = self
            .artifacts
            .iter()
            .filter(|a| a.from == Provenance::Network)
            .count();
        out.push_str(&format!(
            "{} artifacts verified for {} ({} downloaded, {}; {} from cache) in {:.2}s\n",
            self.artifacts.len(),
            self.manifest,
            net,
            human_bytes(self.downloaded_bytes),
            self.artifacts.len() - net,
            self.elapsed.as_secs_f64()
        ));
        out
    }
}
