//! `extpy lock --python X.Y.Z`: pins the embeddable zip from the python mirror's published
//! data, in python.org's layout: `<mirror>/X.Y.Z/python-X.Y.Z-embed-<arch>.zip` (or
//! `-embeddable-<arch>.zip`, the name of later 3.14 releases), its sha256
//! from the SPDX document python.org publishes beside every release file
//! (`<file>.spdx.json`, the `CPython` package's `packageFileName` and `SHA256` checksum),
//! checked against the bytes, which are downloaded into the cache (so the size is known and
//! `extpy fetch` finds them there). A version without an embeddable zip for the platform
//! (branches in security-fix mode ship source only) is refused, naming the last release of
//! that X.Y that has one, found through the mirror's directory listings.
//!
//! Its signer comes from the Sigstore bundle python.org publishes beside it
//! (`<file>.sigstore`), verified offline against the trust root and checked against the
//! release manager python.org names for that X.Y; the verified bundle is kept in the cache
//! where `fetch` looks for it.

use std::cell::RefCell;

use indicatif::ProgressBar;
use serde::Deserialize;
use url::Url;

use super::error::LockError;
use crate::job::provenance::{MAX_PROVENANCE_BYTES, extension, keep};
use crate::mechanism::cache::{Cache, Lookup};
use crate::mechanism::digest::Sha256Digest;
use crate::mechanism::fsio::at;
use crate::mechanism::net::{Client, NetError};
use crate::mechanism::sigstore::{Identity, TrustRoot, discover_bundle};
use crate::model::manifest::{ArtifactKind, Platform, PythonVersion};

/// How many release folders are listed when looking for the last one with an embeddable zip.
const MAX_LISTINGS: usize = 40;

/// The embeddable zip of a release, as pinned.
#[derive(Debug, Clone)]
pub(crate) struct PythonPin {
    /// The release.
    pub version: PythonVersion,
    /// `python-X.Y.Z-embed-amd64.zip` or `python-X.Y.Z-embeddable-amd64.zip`.
    pub file: String,
    /// Its sha256, as published and as downloaded.
    pub sha256: Sha256Digest,
    /// Where it is.
    pub url: Url,
    /// Its size.
    pub size: u64,
}

/// The signer python.org documents for each release line, as `(X, Y, identity, issuer)`:
/// from python.org's "Sigstore Information" page
/// (https://www.python.org/downloads/metadata/sigstore/), whose table names the release
/// manager of each line with the e-mail address and OIDC issuer their Sigstore
/// certificates carry. Only lines whose embeddable zips are signed with Sigstore (3.11 on;
/// 3.10's Windows binaries ended with 3.10.11) and whose row could be checked are listed.
const RELEASE_MANAGERS: &[(u8, u8, &str, &str)] = &[
    // Pablo Galindo Salgado.
    (3, 11, "pablogsal@python.org", "https://accounts.google.com"),
    // Thomas Wouters.
    (3, 12, "thomas@python.org", "https://accounts.google.com"),
    (3, 13, "thomas@python.org", "https://accounts.google.com"),
    // Hugo van Kemenade.
    (3, 14, "hugo@python.org", "https://github.com/login/oauth"),
];

/// The signer python.org names for `version`'s X.Y, if its page names one.
pub(crate) fn release_manager(version: PythonVersion) -> Option<Identity> {
    RELEASE_MANAGERS
        .iter()
        .find(|(x, y, _, _)| *x == version.major && *y == version.minor)
        .map(|(_, _, identity, issuer)| Identity::Signer {
            identity: (*identity).to_string(),
            issuer: (*issuer).to_string(),
        })
}

/// Who signed the embeddable zip, as `lock` records it.
#[derive(Debug, Clone)]
pub(crate) struct PythonSigner {
    /// The verified signer; `None` when the mirror serves no `.sigstore` for the zip.
    pub identity: Option<Identity>,
    /// What to tell the user besides: no bundle, or no documented signer to compare with.
    pub warning: Option<String>,
}

/// Fetches the Sigstore bundle beside the pinned zip, verifies it offline against `root`
/// over the cached bytes, checks the signer against python.org's release manager for that
/// X.Y, and keeps the bundle in the cache for `fetch`.
pub(crate) fn signer(
    client: &Client,
    cache: &Cache,
    root: &TrustRoot,
    pin: &PythonPin,
    requests: &RefCell<usize>,
) -> Result<PythonSigner, LockError> {
    let url = Url::parse(&format!("{}.sigstore", pin.url)).map_err(|e| LockError::Lie {
        url: pin.url.clone(),
        what: format!("cannot form the URL of its .sigstore: {e}"),
    })?;
    *requests.borrow_mut() += 1;
    let bundle = match client.get_page(&url, "application/json") {
        Ok(page) => page.body,
        Err(e) if not_found(&e) => {
            return Ok(PythonSigner {
                identity: None,
                warning: Some(format!(
                    "{url} does not exist, so the CPython signer of {} is not recorded (provenance: none); python.org signs every release file since 3.11.0, so a mirror without it most likely did not copy the .sigstore files",
                    pin.file
                )),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if bundle.len() as u64 > MAX_PROVENANCE_BYTES {
        return Err(LockError::Lie {
            url,
            what: format!(
                "the Sigstore bundle of {} has {} bytes, more than the {MAX_PROVENANCE_BYTES} a bundle may have",
                pin.file,
                bundle.len()
            ),
        });
    }
    let blob = cache.blob_path(&pin.sha256);
    let bytes = crate::mechanism::limits::read_regular(
        &blob,
        crate::model::manifest::MAX_UNPINNED_DOWNLOAD,
    )
    .map_err(at(&blob, "cannot read"))?;
    let found = discover_bundle(root, &bundle, &bytes, &pin.file, pin.sha256).map_err(|e| {
        LockError::Provenance {
            url: url.clone(),
            file: pin.file.clone(),
            found: e.found.as_ref().map_or_else(
                || "no verified certificate".to_string(),
                ToString::to_string,
            ),
            reason: e.reason,
        }
    })?;
    let warning = match release_manager(pin.version) {
        Some(expected) if expected != found => {
            return Err(LockError::PythonSigner {
                file: pin.file.clone(),
                url,
                line: format!("{}.{}", pin.version.major, pin.version.minor),
                expected,
                found,
            });
        }
        Some(_) => None,
        None => Some(format!(
            "python.org's Sigstore page names no signer for CPython {}.{} to check against; {} is recorded as signed by {found}, as its bundle verified",
            pin.version.major, pin.version.minor, pin.file
        )),
    };
    keep(
        &blob.with_extension(extension(ArtifactKind::Embeddable)),
        &bundle,
    )?;
    Ok(PythonSigner {
        identity: Some(found),
        warning,
    })
}

/// Finds, checks and caches the embeddable zip of `version` for `platform` on `mirror`:
/// under either name python.org gives it ([`PythonVersion::embed_files`]), the first whose
/// SBOM the mirror has.
pub(crate) fn pin(
    client: &Client,
    cache: &Cache,
    mirror: &Url,
    version: PythonVersion,
    platform: Platform,
    requests: &RefCell<usize>,
) -> Result<PythonPin, LockError> {
    let names = version.embed_files(platform);
    let folder = join(mirror, &format!("{version}/"))?;
    let get = |u: &Url, accept: &str| {
        *requests.borrow_mut() += 1;
        client.get_page(u, accept)
    };
    let mut found = None;
    for name in &names {
        let spdx_url = join(&folder, &format!("{name}.spdx.json"))?;
        match get(&spdx_url, "application/json") {
            Ok(page) => {
                found = Some((name.clone(), spdx_url, page.body));
                break;
            }
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let Some((file, spdx_url, spdx)) = found else {
        // No SBOM beside it: is there no zip at all, or only no published sha256?
        let listed = match get(&folder, "text/html") {
            Ok(page) => links(&String::from_utf8_lossy(&page.body)),
            Err(e) if not_found(&e) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if let Some(name) = names.iter().find(|n| listed.contains(n)) {
            return Err(LockError::PythonUnpublished {
                url: join(&folder, &format!("{name}.spdx.json"))?,
            });
        }
        let last = last_with_embeddable(&get, mirror, version, platform)?;
        return Err(LockError::PythonNoEmbeddable {
            version,
            platform,
            mirror: mirror.clone(),
            last,
        });
    };
    let url = join(&folder, &file)?;
    let published = published_sha256(&spdx, &file).map_err(|what| LockError::Lie {
        url: spdx_url.clone(),
        what,
    })?;

    let size = match cache.lookup(&published)? {
        Lookup::Hit { size, .. } => size,
        _ => {
            let part = cache.partial_path(&published);
            *requests.borrow_mut() += 1;
            let got = client.download(
                &url,
                &part,
                &ProgressBar::hidden(),
                (crate::model::manifest::MAX_UNPINNED_DOWNLOAD, false),
            )?;
            if got.sha256 != published {
                let _ = std::fs::remove_file(&part);
                return Err(LockError::Lie {
                    url: url.clone(),
                    what: format!(
                        "{file} has sha256 {}, but {file}.spdx.json beside it publishes {published}",
                        got.sha256
                    ),
                });
            }
            cache.publish(&got.sha256, &part)?;
            got.size
        }
    };
    Ok(PythonPin {
        version,
        file,
        sha256: published,
        url,
        size,
    })
}

fn join(base: &Url, rel: &str) -> Result<Url, LockError> {
    base.join(rel).map_err(|e| LockError::Lie {
        url: base.clone(),
        what: format!("cannot form the URL of {rel}: {e}"),
    })
}

fn not_found(e: &NetError) -> bool {
    matches!(e.root(), NetError::Status { status, .. } if status.as_u16() == 404 || status.as_u16() == 410)
}

/// The SPDX document python.org publishes beside a release file (only what is read).
#[derive(Deserialize)]
struct Spdx {
    #[serde(rename = "spdxVersion")]
    spdx_version: String,
    packages: Vec<SpdxPackage>,
}

#[derive(Deserialize)]
struct SpdxPackage {
    #[serde(rename = "packageFileName", default)]
    file_name: Option<String>,
    #[serde(default)]
    checksums: Vec<SpdxChecksum>,
}

#[derive(Deserialize)]
struct SpdxChecksum {
    algorithm: String,
    #[serde(rename = "checksumValue")]
    value: String,
}

/// The sha256 the SPDX document gives for the package whose file is `file`.
fn published_sha256(bytes: &[u8], file: &str) -> Result<Sha256Digest, String> {
    let doc: Spdx = serde_json::from_slice(bytes)
        .map_err(|e| format!("this is not the SPDX document of {file}: {e}"))?;
    if !doc.spdx_version.starts_with("SPDX-") {
        return Err(format!(
            "this is not an SPDX document (spdxVersion {:?})",
            doc.spdx_version
        ));
    }
    let package = doc
        .packages
        .iter()
        .find(|p| p.file_name.as_deref() == Some(file))
        .ok_or_else(|| format!("it describes no package with packageFileName {file}"))?;
    let mut sha = package
        .checksums
        .iter()
        .filter(|c| c.algorithm.eq_ignore_ascii_case("SHA256"));
    let first = sha
        .next()
        .ok_or_else(|| format!("its package {file} has no SHA256 checksum"))?;
    if sha.any(|c| !c.value.eq_ignore_ascii_case(&first.value)) {
        return Err(format!(
            "its package {file} has two different SHA256 checksums"
        ));
    }
    first
        .value
        .to_ascii_lowercase()
        .parse()
        .map_err(|e| format!("the SHA256 checksum of {file} is not one: {e}"))
}

/// The `href`s of a directory listing, without query or fragment.
fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find("href=") {
        let start = at + i + 5;
        let rest = &html[start..];
        let (quote, rest) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => (q, &rest[1..]),
            _ => (' ', rest),
        };
        let end = rest
            .find(|c: char| c == quote || c == '>' || (quote == ' ' && c.is_whitespace()))
            .unwrap_or(rest.len());
        let href = &rest[..end];
        let href = href.split(['?', '#']).next().unwrap_or(href);
        let name = href
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(href);
        if !name.is_empty() {
            out.push(if href.ends_with('/') {
                format!("{name}/")
            } else {
                name.to_string()
            });
        }
        at = start + end.max(1);
    }
    out
}

/// The newest release of `version`'s X.Y on the mirror with an embeddable zip for
/// `platform`, from the mirror's listings (none when there is none or no listing).
fn last_with_embeddable(
    get: &dyn Fn(&Url, &str) -> Result<crate::mechanism::net::Page, NetError>,
    mirror: &Url,
    version: PythonVersion,
    platform: Platform,
) -> Result<Option<PythonVersion>, LockError> {
    let root = match get(mirror, "text/html") {
        Ok(page) => links(&String::from_utf8_lossy(&page.body)),
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut same_branch: Vec<PythonVersion> = root
        .iter()
        .filter_map(|l| l.strip_suffix('/')?.parse::<PythonVersion>().ok())
        .filter(|v| v.major == version.major && v.minor == version.minor && *v != version)
        .collect();
    same_branch.sort_unstable_by(|a, b| b.cmp(a));
    same_branch.dedup();
    for v in same_branch.into_iter().take(MAX_LISTINGS) {
        let folder = join(mirror, &format!("{v}/"))?;
        match get(&folder, "text/html") {
            Ok(page) => {
                let listed = links(&String::from_utf8_lossy(&page.body));
                if v.embed_files(platform).iter().any(|f| listed.contains(f)) {
                    return Ok(Some(v));
                }
            }
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_manager_is_python_orgs_for_the_line_and_none_for_others() {
        let v = |s: &str| s.parse::<PythonVersion>().unwrap();
        let signer = |identity: &str, issuer: &str| {
            Some(Identity::Signer {
                identity: identity.into(),
                issuer: issuer.into(),
            })
        };
        assert_eq!(
            release_manager(v("3.12.10")),
            signer("thomas@python.org", "https://accounts.google.com")
        );
        assert_eq!(
            release_manager(v("3.13.0")),
            signer("thomas@python.org", "https://accounts.google.com")
        );
        assert_eq!(
            release_manager(v("3.14.2")),
            signer("hugo@python.org", "https://github.com/login/oauth")
        );
        assert_eq!(
            release_manager(v("3.11.9")),
            signer("pablogsal@python.org", "https://accounts.google.com")
        );
        assert_eq!(release_manager(v("3.15.0")), None);
        assert_eq!(release_manager(v("3.10.11")), None);
    }

    #[test]
    fn listing_links_as_autoindex_writes_them() {
        let html = "<html><body><h1>Index of /ftp/python/</h1><pre><a href=\"../\">../</a>\n<a href=\"3.12.10/\">3.12.10/</a>   08-Apr-2025 21:20   -\n<A HREF='3.12.9/'>3.12.9/</A>\n<a href=\"/ftp/python/3.12.10/python-3.12.10-embed-amd64.zip?x=1\">python-3.12.10-embed-amd64.zip</a>\n</pre></body></html>";
        assert_eq!(
            links(html),
            vec![
                "../",
                "3.12.10/",
                "3.12.9/",
                "python-3.12.10-embed-amd64.zip"
            ]
        );
    }

    #[test]
    fn the_sha256_comes_from_the_package_of_that_file() {
        let sha = "a".repeat(64);
        let doc = format!(
            "{{\"spdxVersion\":\"SPDX-2.3\",\"packages\":[{{\"name\":\"OpenSSL\",\"checksums\":[{{\"algorithm\":\"SHA256\",\"checksumValue\":\"{}\"}}]}},{{\"SPDXID\":\"SPDXRef-PACKAGE-cpython\",\"name\":\"CPython\",\"packageFileName\":\"python-3.12.10-embed-amd64.zip\",\"checksums\":[{{\"algorithm\":\"SHA256\",\"checksumValue\":\"{sha}\"}}]}}]}}",
            "b".repeat(64)
        );
        assert_eq!(
            published_sha256(doc.as_bytes(), "python-3.12.10-embed-amd64.zip")
                .unwrap()
                .to_string(),
            sha
        );
        assert!(
            published_sha256(doc.as_bytes(), "python-3.12.9-embed-amd64.zip")
                .unwrap_err()
                .contains("no package with packageFileName")
        );
        assert!(
            published_sha256(b"<html>", "x.zip")
                .unwrap_err()
                .contains("not the SPDX document")
        );
        let short = doc.replace(&sha, "abc");
        assert!(
            published_sha256(short.as_bytes(), "python-3.12.10-embed-amd64.zip")
                .unwrap_err()
                .contains("is not one")
        );
    }
}
