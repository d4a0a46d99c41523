//! The publisher `lock` records for each locked wheel: the index's PEP 740 provenance (its
//! integrity endpoint, beside the Simple API), verified offline against the trust root, as
//! the identity to pin; `provenance: none` where the index has none for the file (404).

use std::cell::RefCell;

use crate::job::provenance::{MAX_PROVENANCE_BYTES, integrity_url};
use crate::job::source::Sources;
use crate::mechanism::digest::Sha256Digest;
use crate::mechanism::net::{Client, NetError};
use crate::mechanism::sigstore::{Identity, TrustRoot, discover_provenance};

use super::error::LockError;

/// One locked file, as its publisher is looked up.
pub(crate) struct File<'a> {
    /// The PEP 503 project name.
    pub project: &'a str,
    /// The version.
    pub version: &'a str,
    /// The wheel's file name.
    pub file: &'a str,
    /// Its sha256, as locked.
    pub sha256: Sha256Digest,
}

/// The publisher of `f` as it is to be pinned: the signer of its verified attestation, or
/// `None` when the index serves none for it.
pub(crate) fn find(
    client: &Client,
    sources: &Sources,
    root: &TrustRoot,
    f: &File<'_>,
    requests: &RefCell<usize>,
) -> Result<Option<Identity>, LockError> {
    let url = integrity_url(sources, f.project, f.version, f.file).ok_or_else(|| {
        LockError::Internal(format!(
            "no integrity URL for {} under {}",
            f.file, sources.index_url
        ))
    })?;
    *requests.borrow_mut() += 1;
    let page = match client.get_page(
        &url,
        "application/vnd.pypi.integrity.v1+json, application/json",
    ) {
        Ok(page) => page,
        Err(e) if matches!(e.root(), NetError::Status { status, .. } if status.as_u16() == 404) => {
            return Ok(None);
        }
        Err(e) => return Err(LockError::Net(e)),
    };
    if page.body.len() as u64 > MAX_PROVENANCE_BYTES {
        return Err(LockError::Lie {
            url,
            what: format!(
                "the provenance of {} has {} bytes, more than the {MAX_PROVENANCE_BYTES} a provenance document may have",
                f.file,
                page.body.len()
            ),
        });
    }
    discover_provenance(root, &page.body, f.file, f.sha256)
        .map(Some)
        .map_err(|e| LockError::Provenance {
            url,
            file: f.file.to_string(),
            found: e.found.as_ref().map_or_else(
                || "no verified certificate".to_string(),
                ToString::to_string,
            ),
            reason: e.reason,
        })
}
