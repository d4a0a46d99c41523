//! Who published each artifact: its PEP 740 attestation (wheels) or Sigstore bundle (the
//! embeddable CPython) found beside it in the cache, or fetched once from the index's
//! integrity endpoint or the python mirror, verified offline against the trust root.
//!
//! The policy: an artifact whose manifest names a publisher must verify as that publisher;
//! `provenance: none` is allowed and shown, and `--require-provenance` refuses it.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use url::Url;

use crate::base::exit::ExitCode;
use crate::job::source::Sources;
use crate::mechanism::cache::Cache;
use crate::mechanism::fsio::{IoError, at};
use crate::mechanism::net::{Client, NetError};
use crate::mechanism::sigstore::{
    Expect, FoundIdentity, Identity, ProvenanceError, TrustRoot, verify_bundle, verify_provenance,
};
use crate::model::manifest::{Artifact, ArtifactKind, Manifest, WheelFilename};

/// The most bytes a provenance document or bundle may have (real ones are about 10 KB).
pub(crate) const MAX_PROVENANCE_BYTES: u64 = 1 << 20;

/// What fetch verifies provenance with.
#[derive(Debug, Clone)]
pub struct ProvenancePolicy {
    /// The Fulcio CAs and transparency logs trusted (pinned, or `--sigstore-trust-root`).
    pub(crate) trust_root: TrustRoot,
    /// `--require-provenance`: `provenance: none` is an error.
    pub require: bool,
}

impl Default for ProvenancePolicy {
    fn default() -> Self {
        Self {
            trust_root: TrustRoot::pinned(),
            require: false,
        }
    }
}

/// What was proven about one artifact's publisher.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "lowercase")]
pub(crate) enum Publisher {
    /// The signature verified, by this identity.
    Verified {
        /// The certificate's identity.
        identity: String,
        /// Its OIDC issuer.
        issuer: Option<String>,
    },
    /// `provenance: none`: nothing is proven about who published it.
    None,
}

/// Why an artifact's provenance failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceFailure {
    /// The signature did not verify, or verified as someone else.
    #[error("{0}")]
    Refused(Box<ProvenanceError>),
    /// `--require-provenance` and the manifest pins none.
    #[error(
        "{file} ({origin}): the manifest pins no publisher (provenance: none) and --require-provenance is given\n  help: pin the publisher (`extpy lock` records it where the publisher signs), or drop --require-provenance for artifacts whose publisher publishes no attestation"
    )]
    Required {
        /// File name.
        file: String,
        /// Manifest and line.
        origin: String,
    },
    /// The document could not be downloaded.
    #[error(
        "{file}: the publisher's provenance could not be fetched from {url}: {source}\n  help: the manifest pins a publisher, so the artifact is not used without it; a mirror must serve it too"
    )]
    Net {
        /// File name.
        file: String,
        /// Where it was looked for.
        url: Url,
        /// The cause.
        source: Box<NetError>,
    },
    /// `--offline` and the document is not in the cache.
    #[error(
        "{file}: --offline and its provenance is not in the cache ({path})\n  help: run `extpy fetch` on a connected machine with the same --cache-dir, or build from an offline bundle"
    )]
    Offline {
        /// File name.
        file: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The cache could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl ProvenanceFailure {
    /// The exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            ProvenanceFailure::Refused(_) | ProvenanceFailure::Required { .. } => {
                ExitCode::Verification
            }
            ProvenanceFailure::Net { source, .. } => source.exit_code(),
            ProvenanceFailure::Offline { .. } => ExitCode::Network,
            ProvenanceFailure::Io(e) => e.exit_code(),
        }
    }
}

/// Where the index serves a wheel's PEP 740 provenance: `<index>/../integrity/<project>/
/// <version>/<file>/provenance` (the index's integrity API beside its Simple API).
pub(crate) fn wheel_provenance_url(sources: &Sources, a: &Artifact) -> Option<Url> {
    let filename: WheelFilename = a.file.parse().ok()?;
    integrity_url(sources, a.project.as_deref()?, &filename.version, &a.file)
}

/// The integrity endpoint of one file of a release of `project` (its PEP 503 name).
pub(crate) fn integrity_url(
    sources: &Sources,
    project: &str,
    version: &str,
    file: &str,
) -> Option<Url> {
    sources
        .index_url
        .join(&format!(
            "../integrity/{project}/{version}/{file}/provenance"
        ))
        .ok()
}

/// Where python.org keeps a file's Sigstore bundle: beside it, `<url>.sigstore`.
fn bundle_url(sources: &Sources, manifest: &Manifest) -> Url {
    let url = sources.embeddable_url(manifest);
    Url::parse(&format!("{url}.sigstore")).unwrap_or(url)
}

/// The extension an artifact's provenance document has: `sigstore` for a CPython bundle (as
/// python.org names it), `provenance` for a wheel's PEP 740 attestation.
pub(crate) fn extension(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::Embeddable => "sigstore",
        ArtifactKind::Wheel => "provenance",
    }
}

/// Where the cache keeps an artifact's provenance: beside the blob, by the artifact's sha256.
pub(crate) fn cached_path(cache: &Cache, a: &Artifact) -> PathBuf {
    cache.blob_path(&a.sha256).with_extension(extension(a.kind))
}

/// The publisher the manifest pins for `a`; `None` when it pins none and the policy allows
/// that, an error when `--require-provenance` does not.
pub(crate) fn pinned<'a>(
    manifest: &Manifest,
    a: &'a Artifact,
    policy: &ProvenancePolicy,
) -> Result<Option<&'a Identity>, ProvenanceFailure> {
    match &a.provenance {
        Some(identity) => Ok(Some(identity)),
        None if policy.require => Err(ProvenanceFailure::Required {
            file: a.file.clone(),
            origin: match a.line {
                Some(l) => format!("{}:{l}", manifest.origin),
                None => manifest.origin.to_string(),
            },
        }),
        None => Ok(None),
    }
}

/// Verifies one artifact's provenance per the policy; `artifact` is its verified copy in the
/// cache, `client` is `None` when offline.
pub(crate) fn check(
    manifest: &Manifest,
    a: &Artifact,
    artifact: &Path,
    cache: &Cache,
    sources: &Sources,
    client: Option<&Client>,
    policy: &ProvenancePolicy,
) -> Result<Publisher, ProvenanceFailure> {
    let Some(identity) = pinned(manifest, a, policy)? else {
        return Ok(Publisher::None);
    };
    let path = cached_path(cache, a);
    let verify = |doc: &[u8]| verify_one(a, artifact, identity, doc, policy);
    if let Ok(doc) = crate::mechanism::limits::read_regular(&path, MAX_PROVENANCE_BYTES) {
        return verify(&doc);
    }
    let url = match a.kind {
        ArtifactKind::Embeddable => bundle_url(sources, manifest),
        ArtifactKind::Wheel => {
            wheel_provenance_url(sources, a).unwrap_or_else(|| sources.index_url.clone())
        }
    };
    let Some(client) = client else {
        return Err(ProvenanceFailure::Offline {
            file: a.file.clone(),
            path,
        });
    };
    let page = client
        .get_page(
            &url,
            "application/vnd.pypi.integrity.v1+json, application/json",
        )
        .map_err(|source| ProvenanceFailure::Net {
            file: a.file.clone(),
            url: url.clone(),
            source: Box::new(source),
        })?;
    let publisher = verify(&page.body)?;
    keep(&path, &page.body)?;
    Ok(publisher)
}

/// Puts a provenance document that verified at `path` in the cache, where the next run
/// trusts it; nothing else is ever kept there. Written as every other file extpy replaces:
/// through a temporary sibling of this process's own, removed on failure, renamed into place
/// (two runs sharing a cache never write one temporary file).
pub(crate) fn keep(path: &Path, doc: &[u8]) -> Result<(), IoError> {
    crate::mechanism::place::write_atomic(path, doc)
}

/// Verifies `doc` as the provenance of `a` (whose verified bytes are at `artifact`) by the
/// publisher `identity`.
pub(crate) fn verify_one(
    a: &Artifact,
    artifact: &Path,
    identity: &Identity,
    doc: &[u8],
    policy: &ProvenancePolicy,
) -> Result<Publisher, ProvenanceFailure> {
    let expect = Expect {
        file: &a.file,
        sha256: a.sha256,
        identity,
    };
    let found: FoundIdentity = match a.kind {
        ArtifactKind::Wheel => verify_provenance(&policy.trust_root, doc, &expect),
        ArtifactKind::Embeddable => {
            let bytes = fs::read(artifact).map_err(at(artifact, "cannot read"))?;
            verify_bundle(&policy.trust_root, doc, &bytes, &expect)
        }
    }
    .map_err(|e| ProvenanceFailure::Refused(Box::new(e)))?;
    Ok(Publisher::Verified {
        identity: found.san,
        issuer: found.issuer,
    })
}
