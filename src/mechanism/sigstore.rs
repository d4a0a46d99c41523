//! Sigstore verification, offline: who published an artifact, proved from its PEP 740
//! attestation (wheels) or Sigstore bundle (CPython) against a pinned trust root.
//!
//! What one verification proves, in order: the signing certificate chains to a Fulcio CA of
//! the trust root and was valid when the transparency log integrated the entry; the log's
//! signed entry timestamp and its inclusion proof (RFC 6962 audit path up to a checkpoint
//! signed by the log's key) both verify; the log entry is this signature by this
//! certificate; the signature verifies with the certificate's key; the signed digest is the
//! pinned sha256 of this file; and the certificate's identity (SAN and OIDC issuer) is the
//! expected one. Nothing here touches the network.
//!
//! Written by hand on x509-parser (its `verify` feature) and ring, which the TLS stack already
//! links, because no maintained crate verifies this offline: the `sigstore` crate (0.15.0, its
//! `bundle::verify::Verifier`) leaves the inclusion proof and the signed entry timestamp as
//! TODOs (sigstore-rs#285, in `verify_digest_with`), and brings 102 crates more (aws-lc-rs or
//! OpenSSL, openidconnect, webbrowser, tokio); `sigstore-verification` (0.2.8) checks a proof
//! only when one is present, never the checkpoint's signature, and brings reqwest, tokio and an
//! OCI client. `sigstore_protobuf_specs` only has the types, and not PEP 740's. The reasons and
//! measurements are in docs/src/provenance.md.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{self as sig, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::*;

use crate::mechanism::digest::Sha256Digest;

/// The public-good trust root pinned in the repository (see `sigstore/README.md`).
pub(crate) const PINNED_TRUST_ROOT: &str = include_str!("../../sigstore/trusted_root.json");

/// The OIDC issuer of GitHub Actions, the issuer of every GitHub Trusted Publisher.
pub(crate) const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Whose signature an artifact must carry: the identity pinned in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Identity {
    /// A GitHub Trusted Publisher: this repository's workflow file signed it.
    GitHub {
        /// `owner/name` of the repository.
        repository: String,
        /// The workflow file name, such as `publish.yml`.
        workflow: String,
    },
    /// A certificate identity (an e-mail address or URI) and the OIDC issuer that vouched for it.
    Signer {
        /// The subject alternative name of the signing certificate.
        identity: String,
        /// The OIDC issuer URL.
        issuer: String,
    },
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::GitHub {
                repository,
                workflow,
            } => write!(f, "GitHub repository {repository}, workflow {workflow}"),
            Identity::Signer { identity, issuer } => write!(f, "{identity} (issuer {issuer})"),
        }
    }
}

/// The identity a signing certificate names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundIdentity {
    /// The certificate's subject alternative name (URI or e-mail).
    pub san: String,
    /// The OIDC issuer extension, if the certificate has one.
    pub issuer: Option<String>,
}

impl fmt::Display for FoundIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issuer = self.issuer.as_deref().unwrap_or("none");
        write!(f, "{} (issuer {issuer})", self.san)
    }
}

impl Identity {
    /// True when the certificate's identity is this one.
    fn matches(&self, found: &FoundIdentity) -> bool {
        match self {
            Identity::GitHub {
                repository,
                workflow,
            } => {
                let prefix =
                    format!("https://github.com/{repository}/.github/workflows/{workflow}@");
                found.issuer.as_deref() == Some(GITHUB_ISSUER)
                    && found.san.len() > prefix.len()
                    && found.san[..prefix.len()].eq_ignore_ascii_case(&prefix)
            }
            Identity::Signer { identity, issuer } => {
                found.san == *identity && found.issuer.as_deref() == Some(issuer.as_str())
            }
        }
    }

    /// The identity a found certificate would be pinned as (for `lock`).
    pub(crate) fn from_found(found: &FoundIdentity) -> Option<Identity> {
        let issuer = found.issuer.clone()?;
        if issuer == GITHUB_ISSUER
            && let Some(rest) = found.san.strip_prefix("https://github.com/")
            && let Some((repository, tail)) = rest.split_once("/.github/workflows/")
            && let Some((workflow, _git_ref)) = tail.split_once('@')
        {
            return Some(Identity::GitHub {
                repository: repository.to_string(),
                workflow: workflow.to_string(),
            });
        }
        Some(Identity::Signer {
            identity: found.san.clone(),
            issuer,
        })
    }
}

/// Why provenance does not verify: the artifact, the identities and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{artifact}: provenance does not verify: {reason}\n  expected: {expected}\n  found:    {}\n  help: {}",
    found.as_ref().map_or_else(|| "no verified certificate".to_string(), ToString::to_string),
    reason.help()
)]
pub struct ProvenanceError {
    /// The artifact's file name.
    pub artifact: String,
    /// The identity the manifest pins.
    pub expected: Identity,
    /// The certificate's identity, when the certificate could be read.
    pub found: Option<FoundIdentity>,
    /// What failed.
    pub reason: Reason,
}

/// What failed in a verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// The attestation or bundle is not what the format says.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which part.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// No attestation was signed by the expected identity.
    #[error("signed by another identity")]
    OtherIdentity,
    /// The signed subject is another file.
    #[error("the attestation is for {found:?}, not this file")]
    OtherFile {
        /// The subject name.
        found: String,
    },
    /// The signed digest is not the pin.
    #[error("the signed sha256 is {found}, the pinned sha256 is {pinned}")]
    Digest {
        /// What was signed.
        found: String,
        /// The manifest's pin.
        pinned: Sha256Digest,
    },
    /// The certificate does not chain to a Fulcio CA of the trust root.
    #[error("the certificate was not issued by a certificate authority of the trust root")]
    UntrustedCertificate,
    /// The certificate was not valid when the log recorded the signature.
    #[error(
        "the certificate was not valid at the log's integrated time {time} (valid {from} to {to})"
    )]
    CertificateTime {
        /// Integrated time.
        time: i64,
        /// Not before.
        from: i64,
        /// Not after.
        to: i64,
    },
    /// The artifact signature does not verify with the certificate's key.
    #[error("the signature does not verify with the certificate's key")]
    Signature,
    /// No transparency-log entry, or one from a log not in the trust root.
    #[error("{0}")]
    Log(String),
    /// The log entry is not this signature.
    #[error("the transparency-log entry does not record this signature: {0}")]
    LogEntry(String),
    /// No inclusion proof.
    #[error("the transparency-log entry has no inclusion proof")]
    NoInclusionProof,
    /// The audit path does not lead to the checkpoint's root.
    #[error("the inclusion proof does not lead to the checkpoint's root hash")]
    InclusionProof,
    /// The checkpoint is not signed by the log.
    #[error("the checkpoint is not signed by the log's key: {0}")]
    Checkpoint(String),
    /// No signed entry timestamp.
    #[error("the transparency-log entry has no signed entry timestamp")]
    NoTimestamp,
    /// The signed entry timestamp does not verify.
    #[error("the signed entry timestamp does not verify with the log's key")]
    Timestamp,
}

impl Reason {
    /// What to do about it.
    pub(crate) fn help(&self) -> &'static str {
        match self {
            Reason::OtherIdentity | Reason::OtherFile { .. } | Reason::Digest { .. } => {
                "do not use this artifact; if the publisher really changed, check why with the publisher and then update `provenance:` in the manifest (`extpy lock` shows the new identity)"
            }
            Reason::UntrustedCertificate | Reason::Log(_) => {
                "if your site uses its own Sigstore instance, pass its trust root with --sigstore-trust-root FILE; otherwise do not use this artifact"
            }
            _ => {
                "the attestation was altered or damaged after it was signed; fetch it again (delete it from the cache) and do not use the artifact until it verifies"
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The trust root (the `trusted_root.json` of sigstore's protobuf specs).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrustRootFile {
    #[serde(default)]
    tlogs: Vec<TlogFile>,
    #[serde(default)]
    certificate_authorities: Vec<CaFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogFile {
    public_key: PublicKeyFile,
    log_id: KeyId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyFile {
    raw_bytes: String,
    key_details: String,
    #[serde(default)]
    valid_for: Option<ValidFor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyId {
    key_id: String,
}

#[derive(Deserialize)]
struct ValidFor {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaFile {
    cert_chain: CertChainFile,
    #[serde(default)]
    valid_for: Option<ValidFor>,
}

#[derive(Debug, Clone, Deserialize)]
struct CertChainFile {
    certificates: Vec<RawBytes>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

/// A transparency log's key.
#[derive(Debug, Clone)]
struct LogKey {
    id: Vec<u8>,
    key: VerifyKey,
    valid: Window,
}

/// A Fulcio CA: its chain, leaf-side first.
#[derive(Debug, Clone)]
struct Authority {
    chain: Vec<Vec<u8>>,
    valid: Window,
}

/// A validity window in Unix seconds.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    end: i64,
}

impl Window {
    fn of(v: Option<&ValidFor>) -> Result<Window, String> {
        let start = v
            .and_then(|v| v.start.as_deref())
            .map(rfc3339)
            .transpose()?;
        let end = v.and_then(|v| v.end.as_deref()).map(rfc3339).transpose()?;
        Ok(Window {
            start: start.unwrap_or(i64::MIN),
            end: end.unwrap_or(i64::MAX),
        })
    }

    fn contains(&self, t: i64) -> bool {
        self.start <= t && t <= self.end
    }
}

/// A verification key of a log: ECDSA (P-256, P-384) or Ed25519.
#[derive(Debug, Clone, PartialEq, Eq)]
enum VerifyKey {
    EcdsaP256(Vec<u8>),
    EcdsaP384(Vec<u8>),
    Ed25519(Vec<u8>),
}

impl VerifyKey {
    /// From a DER SubjectPublicKeyInfo.
    fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<VerifyKey, String> {
        let point = spki.subject_public_key.data.to_vec();
        let alg = spki.algorithm.algorithm.to_id_string();
        match alg.as_str() {
            "1.2.840.10045.2.1" => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default();
                match curve.as_str() {
                    "1.2.840.10045.3.1.7" => Ok(VerifyKey::EcdsaP256(point)),
                    "1.3.132.0.34" => Ok(VerifyKey::EcdsaP384(point)),
                    other => Err(format!("unsupported elliptic curve {other}")),
                }
            }
            "1.3.101.112" => Ok(VerifyKey::Ed25519(point)),
            other => Err(format!("unsupported key algorithm {other}")),
        }
    }

    /// True when `signature` (DER for ECDSA) is over `message` with this key.
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let (alg, key): (&dyn sig::VerificationAlgorithm, &[u8]) = match self {
            VerifyKey::EcdsaP256(k) => (&sig::ECDSA_P256_SHA256_ASN1, k),
            VerifyKey::EcdsaP384(k) => (&sig::ECDSA_P384_SHA384_ASN1, k),
            VerifyKey::Ed25519(k) => (&sig::ED25519, k),
        };
        UnparsedPublicKey::new(alg, key)
            .verify(message, signature)
            .is_ok()
    }
}

/// The Fulcio CAs and Rekor keys that verification trusts.
#[derive(Debug, Clone)]
pub(crate) struct TrustRoot {
    logs: Vec<LogKey>,
    authorities: Vec<Authority>,
}

impl TrustRoot {
    /// The public-good root pinned in the repository.
    pub(crate) fn pinned() -> TrustRoot {
        TrustRoot::from_json(PINNED_TRUST_ROOT.as_bytes())
            .expect("the pinned trust root parses: a test checks it")
    }

    /// Parses a `trusted_root.json`; the error says which part is wrong.
    pub(crate) fn from_json(bytes: &[u8]) -> Result<TrustRoot, String> {
        let file: TrustRootFile = serde_json::from_slice(bytes)
            .map_err(|e| format!("not a Sigstore trusted root: {e}"))?;
        let mut logs = Vec::new();
        for (i, t) in file.tlogs.iter().enumerate() {
            let der = b64(&t.public_key.raw_bytes).map_err(|e| format!("tlogs[{i}]: {e}"))?;
            let (_, spki) = SubjectPublicKeyInfo::from_der(&der)
                .map_err(|e| format!("tlogs[{i}]: public key: {e}"))?;
            let key = VerifyKey::from_spki(&spki).map_err(|e| format!("tlogs[{i}]: {e}"))?;
            let _details = &t.public_key.key_details;
            logs.push(LogKey {
                id: b64(&t.log_id.key_id).map_err(|e| format!("tlogs[{i}]: logId: {e}"))?,
                key,
                valid: Window::of(t.public_key.valid_for.as_ref())
                    .map_err(|e| format!("tlogs[{i}]: validFor: {e}"))?,
            });
        }
        let mut authorities = Vec::new();
        for (i, c) in file.certificate_authorities.iter().enumerate() {
            let mut chain = Vec::new();
            for (j, cert) in c.cert_chain.certificates.iter().enumerate() {
                let der = b64(&cert.raw_bytes)
                    .map_err(|e| format!("certificateAuthorities[{i}].certChain[{j}]: {e}"))?;
                X509Certificate::from_der(&der).map_err(|e| {
                    format!("certificateAuthorities[{i}].certChain[{j}]: not a certificate: {e}")
                })?;
                chain.push(der);
            }
            if chain.is_empty() {
                return Err(format!("certificateAuthorities[{i}]: empty certChain"));
            }
            authorities.push(Authority {
                chain,
                valid: Window::of(c.valid_for.as_ref())
                    .map_err(|e| format!("certificateAuthorities[{i}].validFor: {e}"))?,
            });
        }
        if logs.is_empty() || authorities.is_empty() {
            return Err(
                "a trusted root needs at least one tlog and one certificate authority".into(),
            );
        }
        Ok(TrustRoot { logs, authorities })
    }
}

// ---------------------------------------------------------------------------------------
// PEP 740 provenance and Sigstore bundles.

/// A PEP 740 provenance document (what the index serves at `/integrity/.../provenance`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProvenanceFile {
    attestation_bundles: Vec<AttestationBundle>,
}

#[derive(Debug, Clone, Deserialize)]
struct AttestationBundle {
    attestations: Vec<Attestation>,
}

#[derive(Debug, Clone, Deserialize)]
struct Attestation {
    verification_material: VerificationMaterial,
    envelope: Envelope,
}

#[derive(Debug, Clone, Deserialize)]
struct VerificationMaterial {
    certificate: String,
    transparency_entries: Vec<TlogEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct Envelope {
    statement: String,
    signature: String,
}

/// A transparency-log entry in the protobuf-JSON form both formats use.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TlogEntry {
    log_index: String,
    log_id: KeyId,
    integrated_time: String,
    #[serde(default)]
    inclusion_promise: Option<Promise>,
    #[serde(default)]
    inclusion_proof: Option<InclusionProof>,
    canonicalized_body: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Promise {
    signed_entry_timestamp: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionProof {
    log_index: String,
    root_hash: String,
    tree_size: String,
    hashes: Vec<String>,
    checkpoint: Checkpoint,
}

#[derive(Debug, Clone, Deserialize)]
struct Checkpoint {
    envelope: String,
}

/// A Sigstore bundle (`.sigstore`, as python.org publishes beside CPython).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BundleFile {
    verification_material: BundleMaterial,
    message_signature: MessageSignature,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BundleMaterial {
    #[serde(default)]
    certificate: Option<RawBytes>,
    #[serde(default)]
    x509_certificate_chain: Option<CertChainFile>,
    tlog_entries: Vec<TlogEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageSignature {
    message_digest: MessageDigest,
    signature: String,
}

#[derive(Debug, Clone, Deserialize)]
struct MessageDigest {
    algorithm: String,
    digest: String,
}

/// The in-toto statement a PEP 740 attestation signs.
#[derive(Deserialize)]
struct Statement {
    subject: Vec<Subject>,
}

#[derive(Deserialize)]
struct Subject {
    name: String,
    digest: std::collections::BTreeMap<String, String>,
}

/// What a verification needs besides the attestation.
pub(crate) struct Expect<'a> {
    /// The artifact's file name.
    pub file: &'a str,
    /// Its pinned sha256.
    pub sha256: Sha256Digest,
    /// The pinned identity.
    pub identity: &'a Identity,
}

impl<'a> Expect<'a> {
    /// What an artifact whose signer is not pinned yet is verified against first.
    fn probe(file: &'a str, sha256: Sha256Digest) -> Self {
        Expect {
            file,
            sha256,
            identity: &NOBODY,
        }
    }

    fn fail(&self, found: Option<FoundIdentity>, reason: Reason) -> ProvenanceError {
        ProvenanceError {
            artifact: self.file.to_string(),
            expected: self.identity.clone(),
            found,
            reason,
        }
    }
}

/// Verifies a PEP 740 provenance document: one of its attestations must verify fully and
/// be signed by the expected identity.
pub(crate) fn verify_provenance(
    root: &TrustRoot,
    provenance: &[u8],
    expect: &Expect<'_>,
) -> Result<FoundIdentity, ProvenanceError> {
    let file: ProvenanceFile = serde_json::from_slice(provenance)
        .map_err(|e| expect.fail(None, malformed("provenance document", e.to_string())))?;
    let mut first_error = None;
    for a in file
        .attestation_bundles
        .iter()
        .flat_map(|b| &b.attestations)
    {
        match verify_attestation(root, a, expect) {
            Ok(found) => return Ok(found),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error
        .unwrap_or_else(|| expect.fail(None, malformed("provenance document", "no attestations"))))
}

/// Verifies a PEP 740 provenance document whose publisher is not pinned yet (`lock`) and
/// returns the publisher as it would be pinned: the signer of the first attestation that
/// verifies in full, found and checked by [`discover_signer`].
pub(crate) fn discover_provenance(
    root: &TrustRoot,
    provenance: &[u8],
    file: &str,
    sha256: Sha256Digest,
) -> Result<Identity, ProvenanceError> {
    let probe = Expect::probe(file, sha256);
    let doc: ProvenanceFile = serde_json::from_slice(provenance)
        .map_err(|e| probe.fail(None, malformed("provenance document", e.to_string())))?;
    let mut first_error = None;
    for a in doc.attestation_bundles.iter().flat_map(|b| &b.attestations) {
        match discover_signer(&probe, |expect| verify_attestation(root, a, expect)) {
            Ok(signer) => return Ok(signer),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error
        .unwrap_or_else(|| probe.fail(None, malformed("provenance document", "no attestations"))))
}

fn verify_attestation(
    root: &TrustRoot,
    a: &Attestation,
    expect: &Expect<'_>,
) -> Result<FoundIdentity, ProvenanceError> {
    let leaf = b64(&a.verification_material.certificate)
        .map_err(|e| expect.fail(None, malformed("certificate", e)))?;
    let statement =
        b64(&a.envelope.statement).map_err(|e| expect.fail(None, malformed("statement", e)))?;
    let signature =
        b64(&a.envelope.signature).map_err(|e| expect.fail(None, malformed("signature", e)))?;
    let signed = Signed {
        leaf: &leaf,
        signature: &signature,
        message: Message::Dsse(&statement),
        entries: &a.verification_material.transparency_entries,
    };
    let found = verify_signed(root, &signed, expect)?;
    check_statement(&statement, expect).map_err(|r| expect.fail(Some(found.clone()), r))?;
    Ok(found)
}

/// Verifies a Sigstore bundle that signs the artifact directly (a message signature, as
/// python.org's `.sigstore` files do); `artifact` is the file's bytes.
pub(crate) fn verify_bundle(
    root: &TrustRoot,
    bundle: &[u8],
    artifact: &[u8],
    expect: &Expect<'_>,
) -> Result<FoundIdentity, ProvenanceError> {
    let file: BundleFile = serde_json::from_slice(bundle)
        .map_err(|e| expect.fail(None, malformed("Sigstore bundle", e.to_string())))?;
    let m = &file.verification_material;
    // Only the leaf counts: the CA certificates come from the trust root, never the bundle.
    let leaf = match (&m.certificate, &m.x509_certificate_chain) {
        (Some(c), _) => &c.raw_bytes,
        (None, Some(c)) if !c.certificates.is_empty() => &c.certificates[0].raw_bytes,
        _ => return Err(expect.fail(None, malformed("Sigstore bundle", "no certificate"))),
    };
    let leaf = b64(leaf).map_err(|e| expect.fail(None, malformed("certificate", e)))?;
    let signature = b64(&file.message_signature.signature)
        .map_err(|e| expect.fail(None, malformed("signature", e)))?;
    let d = &file.message_signature.message_digest;
    let digest = b64(&d.digest).map_err(|e| expect.fail(None, malformed("message digest", e)))?;
    if d.algorithm != "SHA2_256" || digest.len() != 32 {
        return Err(expect.fail(
            None,
            malformed(
                "message digest",
                format!("algorithm {} is not SHA2_256", d.algorithm),
            ),
        ));
    }
    // The pin first: a bundle for another file fails here, before any signature work.
    if digest != expect.sha256.as_bytes() {
        let found = leaf_identity(&leaf).ok();
        return Err(expect.fail(
            found,
            Reason::Digest {
                found: hex(&digest),
                pinned: expect.sha256,
            },
        ));
    }
    let signed = Signed {
        leaf: &leaf,
        signature: &signature,
        message: Message::Artifact {
            digest: &digest,
            bytes: artifact,
        },
        entries: &m.tlog_entries,
    };
    verify_signed(root, &signed, expect)
}

/// Verifies a Sigstore bundle over `artifact` (a message signature) whose signer is not
/// pinned yet (`lock --python`) and returns the signer as it would be pinned, found and
/// checked by [`discover_signer`].
pub(crate) fn discover_bundle(
    root: &TrustRoot,
    bundle: &[u8],
    artifact: &[u8],
    file: &str,
    sha256: Sha256Digest,
) -> Result<Identity, ProvenanceError> {
    discover_signer(&Expect::probe(file, sha256), |expect| {
        verify_bundle(root, bundle, artifact, expect)
    })
}

/// The identity nobody has, which an artifact whose signer is not pinned yet is first
/// verified against.
static NOBODY: Identity = Identity::Signer {
    identity: String::new(),
    issuer: String::new(),
};

/// The signer `verify` finds for an artifact whose signer is not pinned yet. Verified
/// against [`NOBODY`], a document fails last and only for the identity (after digest,
/// certificate, log, signature), so the signer it names is one whose signature verified;
/// `verify` then runs again with that signer pinned, the check `fetch` makes.
fn discover_signer(
    probe: &Expect<'_>,
    verify: impl Fn(&Expect<'_>) -> Result<FoundIdentity, ProvenanceError>,
) -> Result<Identity, ProvenanceError> {
    let found = match verify(probe) {
        Err(ProvenanceError {
            reason: Reason::OtherIdentity,
            found: Some(found),
            ..
        })
        | Ok(found) => found,
        Err(e) => return Err(e),
    };
    let signer = Identity::from_found(&found)
        .ok_or_else(|| probe.fail(None, malformed("certificate", "it names no OIDC issuer")))?;
    verify(&Expect {
        identity: &signer,
        ..*probe
    })?;
    Ok(signer)
}

/// What was signed: a DSSE payload (in-toto statement), or the artifact itself (a message
/// signature, whose bundle also records the artifact's SHA-256).
enum Message<'a> {
    Dsse(&'a [u8]),
    Artifact { digest: &'a [u8], bytes: &'a [u8] },
}

struct Signed<'a> {
    leaf: &'a [u8],
    signature: &'a [u8],
    message: Message<'a>,
    entries: &'a [TlogEntry],
}

/// Everything but the subject check: certificate, log, signature, identity.
fn verify_signed(
    root: &TrustRoot,
    s: &Signed<'_>,
    expect: &Expect<'_>,
) -> Result<FoundIdentity, ProvenanceError> {
    let (_, cert) = X509Certificate::from_der(s.leaf)
        .map_err(|e| expect.fail(None, malformed("certificate", e.to_string())))?;
    let found = identity_of(&cert).map_err(|e| expect.fail(None, malformed("certificate", e)))?;
    let fail = |r: Reason| expect.fail(Some(found.clone()), r);
    let entry = s
        .entries
        .first()
        .ok_or_else(|| fail(Reason::Log("no transparency-log entry".into())))?;
    let time = verify_entry(root, entry).map_err(&fail)?;
    check_body(entry, s, &cert).map_err(|d| fail(Reason::LogEntry(d)))?;
    let (from, to) = (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    );
    if time < from || time > to {
        return Err(fail(Reason::CertificateTime { time, from, to }));
    }
    if !chains_to_root(root, &cert, time) {
        return Err(fail(Reason::UntrustedCertificate));
    }
    let key = VerifyKey::from_spki(cert.public_key())
        .map_err(|e| fail(malformed("certificate key", e)))?;
    let ok = match s.message {
        Message::Dsse(payload) => key.verifies(&pae(payload), s.signature),
        // ring hashes the message itself, so the file's bytes are what is verified.
        Message::Artifact { bytes, .. } => key.verifies(bytes, s.signature),
    };
    if !ok {
        return Err(fail(Reason::Signature));
    }
    // Last, so that this failure means a valid signature by someone else.
    if !expect.identity.matches(&found) {
        return Err(fail(Reason::OtherIdentity));
    }
    Ok(found)
}

/// The subject of the statement is this file with the pinned digest.
fn check_statement(statement: &[u8], expect: &Expect<'_>) -> Result<(), Reason> {
    let st: Statement = serde_json::from_slice(statement)
        .map_err(|e| malformed("in-toto statement", e.to_string()))?;
    let subject = st
        .subject
        .iter()
        .find(|s| s.name == expect.file)
        .ok_or_else(|| Reason::OtherFile {
            found: st
                .subject
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let signed = subject.digest.get("sha256").cloned().unwrap_or_default();
    if signed.to_ascii_lowercase() != expect.sha256.to_hex() {
        return Err(Reason::Digest {
            found: signed,
            pinned: expect.sha256,
        });
    }
    Ok(())
}

/// The log entry: its key is in the trust root, its signed entry timestamp and its
/// inclusion proof verify. Returns the integrated time the timestamp vouches for.
fn verify_entry(root: &TrustRoot, e: &TlogEntry) -> Result<i64, Reason> {
    let id = b64(&e.log_id.key_id).map_err(|d| malformed("log id", d))?;
    let time: i64 = e
        .integrated_time
        .parse()
        .map_err(|_| malformed("integratedTime", e.integrated_time.clone()))?;
    let log = root
        .logs
        .iter()
        .find(|l| l.id == id && l.valid.contains(time))
        .ok_or_else(|| {
            Reason::Log(format!(
                "the transparency log {} is not in the trust root (or its key was not valid then)",
                B64.encode(&id)
            ))
        })?;
    let body = e.canonicalized_body.as_str();
    let promise = e.inclusion_promise.as_ref().ok_or(Reason::NoTimestamp)?;
    let set =
        b64(&promise.signed_entry_timestamp).map_err(|d| malformed("signedEntryTimestamp", d))?;
    let index: u64 = e
        .log_index
        .parse()
        .map_err(|_| malformed("logIndex", e.log_index.clone()))?;
    let canonical = format!(
        r#"{{"body":"{body}","integratedTime":{time},"logID":"{}","logIndex":{index}}}"#,
        hex(&id)
    );
    if !log.key.verifies(canonical.as_bytes(), &set) {
        return Err(Reason::Timestamp);
    }
    let proof = e.inclusion_proof.as_ref().ok_or(Reason::NoInclusionProof)?;
    let leaf_body = b64(body).map_err(|d| malformed("canonicalizedBody", d))?;
    let root_hash = b64(&proof.root_hash).map_err(|d| malformed("rootHash", d))?;
    let leaf_index: u64 = proof
        .log_index
        .parse()
        .map_err(|_| malformed("inclusionProof.logIndex", proof.log_index.clone()))?;
    let size: u64 = proof
        .tree_size
        .parse()
        .map_err(|_| malformed("treeSize", proof.tree_size.clone()))?;
    let path: Vec<Vec<u8>> = proof
        .hashes
        .iter()
        .map(|h| b64(h))
        .collect::<Result<_, _>>()
        .map_err(|d| malformed("inclusionProof.hashes", d))?;
    let computed = merkle_root(&leaf_hash(&leaf_body), leaf_index, size, &path)
        .ok_or(Reason::InclusionProof)?;
    if computed[..] != root_hash[..] {
        return Err(Reason::InclusionProof);
    }
    verify_checkpoint(&proof.checkpoint.envelope, &log.key, size, &root_hash)
        .map_err(Reason::Checkpoint)?;
    Ok(time)
}

/// A signed note (`origin\nsize\nroot\n[extensions]\n\n— name base64(hint+sig)\n`): one
/// signature verifies with the log's key, and it commits to this size and root.
fn verify_checkpoint(note: &str, key: &VerifyKey, size: u64, root: &[u8]) -> Result<(), String> {
    let (text, signatures) = note
        .split_once("\n\n")
        .ok_or_else(|| "not a signed note (no blank line)".to_string())?;
    let text = format!("{text}\n");
    let mut lines = text.lines();
    let _origin = lines.next().ok_or("no origin line")?;
    let noted_size: u64 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("no tree size")?;
    let noted_root = lines.next().map(b64).transpose()?.ok_or("no root hash")?;
    if noted_size != size || noted_root != root {
        return Err("it names another tree size or root hash than the proof".into());
    }
    let verified = signatures
        .lines()
        .filter_map(|l| l.strip_prefix("\u{2014} "))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, s)| b64(s).ok()))
        .any(|s| s.len() > 4 && key.verifies(text.as_bytes(), &s[4..]));
    if verified {
        Ok(())
    } else {
        Err("no signature line verifies".into())
    }
}

/// The Rekor body records this signature by this certificate over this payload.
fn check_body(e: &TlogEntry, s: &Signed<'_>, cert: &X509Certificate<'_>) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Body {
        kind: String,
        spec: serde_json::Value,
    }
    let raw = b64(&e.canonicalized_body)?;
    let body: Body = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
    let text = |v: &serde_json::Value, path: &[&str]| -> Option<String> {
        let mut v = v;
        for p in path {
            v = if let Ok(i) = p.parse::<usize>() {
                v.get(i)?
            } else {
                v.get(p)?
            };
        }
        v.as_str().map(str::to_string)
    };
    let (digest, sig_b64, cert_b64) = match (&s.message, body.kind.as_str()) {
        (Message::Dsse(payload), "dsse") => (
            (
                Sha256Digest::of(payload).to_hex(),
                text(&body.spec, &["payloadHash", "value"]),
            ),
            text(&body.spec, &["signatures", "0", "signature"]),
            text(&body.spec, &["signatures", "0", "verifier"]),
        ),
        (Message::Artifact { digest: d, .. }, "hashedrekord") => (
            (hex(d), text(&body.spec, &["data", "hash", "value"])),
            text(&body.spec, &["signature", "content"]),
            text(&body.spec, &["signature", "publicKey", "content"]),
        ),
        (_, kind) => return Err(format!("unexpected entry kind {kind:?}")),
    };
    if digest.1.as_deref() != Some(digest.0.as_str()) {
        return Err("another payload digest".into());
    }
    if sig_b64.and_then(|s| b64(&s).ok()).as_deref() != Some(s.signature) {
        return Err("another signature".into());
    }
    let pem = cert_b64.and_then(|c| b64(&c).ok()).unwrap_or_default();
    let der = pem_body(&pem).ok_or("no certificate")?;
    if der != cert.as_raw() {
        return Err("another certificate".into());
    }
    Ok(())
}

/// True when `leaf` chains to a CA of the root that was valid at `time`, through the
/// CA's own chain (leaf-side first, ending in a self-signed root), every certificate valid
/// then.
fn chains_to_root(root: &TrustRoot, leaf: &X509Certificate<'_>, time: i64) -> bool {
    let valid_at = |c: &X509Certificate<'_>| {
        c.validity().not_before.timestamp() <= time && time <= c.validity().not_after.timestamp()
    };
    root.authorities
        .iter()
        .filter(|a| a.valid.contains(time))
        .any(|a| {
            let parsed: Vec<X509Certificate<'_>> = a
                .chain
                .iter()
                .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
                .collect();
            let mut child = leaf;
            for parent in &parsed {
                if !parent.is_ca()
                    || child.issuer() != parent.subject()
                    || !valid_at(parent)
                    || child.verify_signature(Some(parent.public_key())).is_err()
                {
                    return false;
                }
                child = parent;
            }
            child.issuer() == child.subject() && child.verify_signature(None).is_ok()
        })
}

/// The identity a DER certificate names.
fn leaf_identity(der: &[u8]) -> Result<FoundIdentity, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("certificate: {e}"))?;
    identity_of(&cert)
}

/// SAN and OIDC issuer of a Fulcio certificate.
fn identity_of(cert: &X509Certificate<'_>) -> Result<FoundIdentity, String> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("subject alternative name: {e}"))?
        .and_then(|ext| {
            ext.value.general_names.iter().find_map(|n| match n {
                GeneralName::URI(u) => Some(u.to_string()),
                GeneralName::RFC822Name(m) => Some(m.to_string()),
                _ => None,
            })
        })
        .ok_or("the certificate names no identity (no URI or e-mail SAN)")?;
    let mut v1 = None;
    let mut v2 = None;
    for ext in cert.extensions() {
        match ext.oid.to_id_string().as_str() {
            // The original issuer extension holds the raw URL.
            "1.3.6.1.4.1.57264.1.1" => v1 = String::from_utf8(ext.value.to_vec()).ok(),
            // Its successor holds a DER UTF8String.
            "1.3.6.1.4.1.57264.1.8" => v2 = der_utf8(ext.value),
            _ => {}
        }
    }
    Ok(FoundIdentity {
        san,
        issuer: v2.or(v1),
    })
}

fn der_utf8(der: &[u8]) -> Option<String> {
    let (&tag, rest) = der.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = match len {
        0..=0x7f => (len as usize, rest),
        0x81 => (*rest.first()? as usize, &rest[1..]),
        0x82 => (
            (*rest.first()? as usize) << 8 | *rest.get(1)? as usize,
            rest.get(2..)?,
        ),
        _ => return None,
    };
    (tag == 0x0c && rest.len() == len).then(|| String::from_utf8(rest.to_vec()).ok())?
}

/// DSSE's pre-authentication encoding of an in-toto payload.
fn pae(payload: &[u8]) -> Vec<u8> {
    const TYPE: &str = "application/vnd.in-toto+json";
    let mut out = format!("DSSEv1 {} {TYPE} {} ", TYPE.len(), payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// RFC 6962 leaf hash.
fn leaf_hash(body: &[u8]) -> [u8; 32] {
    let mut data = Vec::with_capacity(body.len() + 1);
    data.push(0);
    data.extend_from_slice(body);
    *Sha256Digest::of(&data).as_bytes()
}

fn node_hash(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut data = Vec::with_capacity(65);
    data.push(1);
    data.extend_from_slice(left);
    data.extend_from_slice(right);
    *Sha256Digest::of(&data).as_bytes()
}

/// The root an RFC 6962 / RFC 9162 (2.1.3.2) audit path leads to, or `None` if the path
/// does not fit the index and size.
fn merkle_root(leaf: &[u8; 32], index: u64, size: u64, path: &[Vec<u8>]) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if p.len() != 32 || s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

fn malformed(what: &'static str, detail: impl Into<String>) -> Reason {
    Reason::Malformed {
        what,
        detail: detail.into(),
    }
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    B64.decode(s.trim()).map_err(|e| format!("not base64: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The DER inside a PEM certificate.
fn pem_body(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let inner: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    B64.decode(inner.trim()).ok()
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` to Unix seconds (what trusted_root.json writes).
fn rfc3339(s: &str) -> Result<i64, String> {
    let bad = || format!("not an RFC 3339 UTC time: {s:?}");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !s.ends_with('Z') {
        return Err(bad());
    }
    let num =
        |r: std::ops::Range<usize>| s.get(r).and_then(|t| t.parse::<i64>().ok()).ok_or_else(bad);
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Ok(days * 86400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use support::sigstore::{Sign, TestSigstore};

    /// The real PEP 740 provenance of pypi_attestations-0.0.19.tar.gz (see tests/data/README.md).
    const REAL: &[u8] =
        include_bytes!("../../tests/data/pypi_attestations-0.0.19.tar.gz.provenance");
    const REAL_FILE: &str = "pypi_attestations-0.0.19.tar.gz";
    const REAL_SHA: &str = "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3";

    fn real_identity() -> Identity {
        Identity::GitHub {
            repository: "trailofbits/pypi-attestations".into(),
            workflow: "release.yml".into(),
        }
    }

    fn real_check(doc: &[u8], id: &Identity) -> Result<FoundIdentity, ProvenanceError> {
        let expect = Expect {
            file: REAL_FILE,
            sha256: REAL_SHA.parse().unwrap(),
            identity: id,
        };
        verify_provenance(&TrustRoot::pinned(), doc, &expect)
    }

    #[test]
    fn the_pinned_trust_root_is_the_file_its_readme_names() {
        assert_eq!(
            Sha256Digest::of(PINNED_TRUST_ROOT.as_bytes()).to_hex(),
            "6494e21ea73fa7ee769f85f57d5a3e6a08725eae1e38c755fc3517c9e6bc0b66"
        );
        let root = TrustRoot::pinned();
        assert!(!root.logs.is_empty() && !root.authorities.is_empty());
    }

    #[test]
    fn the_real_attestation_verifies_against_the_pinned_root() {
        let found = real_check(REAL, &real_identity()).unwrap();
        assert_eq!(found.issuer.as_deref(), Some(GITHUB_ISSUER));
        assert!(
            found.san.starts_with(
                "https://github.com/trailofbits/pypi-attestations/.github/workflows/release.yml@"
            ),
            "{found}"
        );
        assert_eq!(Identity::from_found(&found), Some(real_identity()));
    }

    #[test]
    fn the_real_attestation_for_another_publisher_is_refused_naming_both() {
        let other = Identity::GitHub {
            repository: "trailofbits/pypi-attestations".into(),
            workflow: "other.yml".into(),
        };
        let e = real_check(REAL, &other).unwrap_err();
        assert_eq!(e.reason, Reason::OtherIdentity);
        let text = e.to_string();
        assert!(text.contains("workflow other.yml"), "{text}");
        assert!(text.contains("/.github/workflows/release.yml@"), "{text}");
    }

    /// Every byte of the real document that carries meaning, altered by one, is refused:
    /// one byte inside each base64 field (decoded, flipped, encoded again).
    #[test]
    fn the_real_attestation_altered_by_one_byte_is_refused() {
        let doc: serde_json::Value = serde_json::from_slice(REAL).unwrap();
        let a = "/attestation_bundles/0/attestations/0";
        let e = format!("{a}/verification_material/transparency_entries/0");
        for (field, byte) in [
            (format!("{a}/envelope/statement"), 40),
            (format!("{a}/envelope/signature"), 20),
            (format!("{a}/verification_material/certificate"), 300),
            (format!("{e}/canonicalizedBody"), 50),
            (format!("{e}/inclusionPromise/signedEntryTimestamp"), 20),
            (format!("{e}/inclusionProof/rootHash"), 3),
            (format!("{e}/inclusionProof/hashes/0"), 3),
        ] {
            let mut d = doc.clone();
            let v = d.pointer_mut(&field).unwrap_or_else(|| panic!("{field}"));
            let mut raw = b64(v.as_str().unwrap()).unwrap();
            raw[byte] ^= 0x01;
            *v = B64.encode(raw).into();
            let bytes = serde_json::to_vec(&d).unwrap();
            assert!(
                real_check(&bytes, &real_identity()).is_err(),
                "{field} byte {byte} altered and still verified"
            );
        }
        // The checkpoint text and the integrated time (plain strings).
        for field in [format!("{e}/integratedTime"), format!("{e}/logIndex")] {
            let mut d = doc.clone();
            let v = d.pointer_mut(&field).unwrap();
            let n: i64 = v.as_str().unwrap().parse().unwrap();
            *v = (n + 1).to_string().into();
            let bytes = serde_json::to_vec(&d).unwrap();
            assert!(
                real_check(&bytes, &real_identity()).is_err(),
                "{field} altered"
            );
        }
        // Unaltered after the same round trip: it is the flips that fail, not the encoding.
        let bytes = serde_json::to_vec(&doc).unwrap();
        real_check(&bytes, &real_identity()).unwrap();
    }

    #[test]
    fn the_real_attestation_for_another_digest_is_refused() {
        let id = real_identity();
        let other = Sha256Digest::of(b"not the file");
        let expect = Expect {
            file: REAL_FILE,
            sha256: other,
            identity: &id,
        };
        let e = verify_provenance(&TrustRoot::pinned(), REAL, &expect).unwrap_err();
        assert!(matches!(e.reason, Reason::Digest { .. }), "{e}");
    }

    // A trust root made in the test: each failure has a reason and names both identities.

    const FILE: &str = "demo-1.0-py3-none-any.whl";

    fn pinned_demo() -> Identity {
        Identity::GitHub {
            repository: "example/demo".into(),
            workflow: "publish.yml".into(),
        }
    }

    fn check(sig: &TestSigstore, s: &Sign) -> Result<FoundIdentity, ProvenanceError> {
        let sha = Sha256Digest::of(b"demo wheel");
        let doc = sig.provenance(FILE, &sha.to_hex(), s);
        let root = TrustRoot::from_json(sig.trust_root_json().as_bytes()).unwrap();
        let id = pinned_demo();
        let expect = Expect {
            file: FILE,
            sha256: sha,
            identity: &id,
        };
        verify_provenance(&root, doc.as_bytes(), &expect)
    }

    fn refused(s: Sign) -> ProvenanceError {
        let e = check(&TestSigstore::new(), &s).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with(FILE), "{text}");
        assert!(
            text.contains("expected: GitHub repository example/demo, workflow publish.yml"),
            "{text}"
        );
        assert!(text.contains("found:"), "{text}");
        e
    }

    fn good() -> Sign {
        Sign::github("example/demo", "publish.yml")
    }

    #[test]
    fn a_good_attestation_verifies_with_a_test_root() {
        let found = check(&TestSigstore::new(), &good()).unwrap();
        assert_eq!(Identity::from_found(&found), Some(pinned_demo()));
    }

    #[test]
    fn the_pinned_root_refuses_what_a_test_root_signed() {
        let sig = TestSigstore::new();
        let sha = Sha256Digest::of(b"demo wheel");
        let doc = sig.provenance(FILE, &sha.to_hex(), &good());
        let id = pinned_demo();
        let expect = Expect {
            file: FILE,
            sha256: sha,
            identity: &id,
        };
        let e = verify_provenance(&TrustRoot::pinned(), doc.as_bytes(), &expect).unwrap_err();
        assert!(matches!(e.reason, Reason::Log(_)), "{e}");
    }

    #[test]
    fn a_wrong_identity_is_refused() {
        let e = refused(Sign::github("attacker/demo", "publish.yml"));
        assert_eq!(e.reason, Reason::OtherIdentity);
        assert!(
            e.to_string()
                .contains("found:    https://github.com/attacker/demo/"),
            "{e}"
        );
        let e = refused(Sign::github("example/demo", "other.yml"));
        assert_eq!(e.reason, Reason::OtherIdentity);
    }

    #[test]
    fn a_wrong_issuer_is_refused() {
        let mut s = good();
        s.issuer = "https://issuer.example".into();
        let e = refused(s);
        assert_eq!(e.reason, Reason::OtherIdentity);
        assert!(
            e.to_string().contains("(issuer https://issuer.example)"),
            "{e}"
        );
    }

    #[test]
    fn a_digest_that_does_not_match_is_refused() {
        let mut s = good();
        s.subject_sha256 = Some(Sha256Digest::of(b"other bytes").to_hex());
        assert!(matches!(refused(s).reason, Reason::Digest { .. }));
    }

    #[test]
    fn an_attestation_for_another_file_is_refused() {
        let mut s = good();
        s.subject_name = Some("demo-0.9-py3-none-any.whl".into());
        assert!(matches!(refused(s).reason, Reason::OtherFile { .. }));
    }

    #[test]
    fn a_certificate_expired_at_the_log_time_is_refused() {
        let mut s = good();
        let now = support::pki::now_unix();
        s.cert_valid = Some((now - 7200, now - 6600));
        let e = refused(s);
        assert!(matches!(e.reason, Reason::CertificateTime { .. }), "{e}");
    }

    #[test]
    fn a_missing_inclusion_proof_or_timestamp_is_refused() {
        let mut s = good();
        s.no_inclusion_proof = true;
        assert_eq!(refused(s).reason, Reason::NoInclusionProof);
        let mut s = good();
        s.no_timestamp = true;
        assert_eq!(refused(s).reason, Reason::NoTimestamp);
    }

    #[test]
    fn a_tampered_log_entry_is_refused() {
        let mut s = good();
        s.tamper_body = true;
        let e = refused(s);
        assert_eq!(e.reason, Reason::Timestamp, "{e}");
    }

    #[test]
    fn a_bad_inclusion_proof_is_refused() {
        let mut s = good();
        s.bad_proof = true;
        assert_eq!(refused(s).reason, Reason::InclusionProof);
    }

    #[test]
    fn a_broken_chain_is_refused() {
        let mut s = good();
        s.foreign_ca = true;
        assert_eq!(refused(s).reason, Reason::UntrustedCertificate);
    }

    #[test]
    fn a_cpython_bundle_verifies_and_refuses_another_file() {
        let sig = TestSigstore::new();
        let root = TrustRoot::from_json(sig.trust_root_json().as_bytes()).unwrap();
        let id = Identity::Signer {
            identity: "thomas@python.org".into(),
            issuer: "https://accounts.google.com".into(),
        };
        let zip = b"embeddable zip bytes";
        let s = Sign::signer("thomas@python.org", "https://accounts.google.com");
        let bundle = sig.bundle(zip, &s);
        let expect = Expect {
            file: "python-3.12.10-embed-amd64.zip",
            sha256: Sha256Digest::of(zip),
            identity: &id,
        };
        let found = verify_bundle(&root, bundle.as_bytes(), zip, &expect).unwrap();
        assert_eq!(found.san, "thomas@python.org");
        // Another file's bundle: its digest is not the pin.
        let other = sig.bundle(b"another zip", &s);
        let e = verify_bundle(&root, other.as_bytes(), zip, &expect).unwrap_err();
        assert!(matches!(e.reason, Reason::Digest { .. }), "{e}");
        // Another signer.
        let bad = sig.bundle(
            zip,
            &Sign::signer("mallory@example.org", "https://accounts.google.com"),
        );
        let e = verify_bundle(&root, bad.as_bytes(), zip, &expect).unwrap_err();
        assert_eq!(e.reason, Reason::OtherIdentity);
        assert!(
            e.to_string().contains("found:    mallory@example.org"),
            "{e}"
        );
    }

    #[test]
    fn a_cpython_bundle_names_its_verified_signer_and_refuses_what_does_not_verify() {
        let sig = TestSigstore::new();
        let root = TrustRoot::from_json(sig.trust_root_json().as_bytes()).unwrap();
        let file = "python-3.12.10-embed-amd64.zip";
        let zip = b"embeddable zip bytes";
        let sha = Sha256Digest::of(zip);
        let s = Sign::signer("thomas@python.org", "https://accounts.google.com");
        let bundle = sig.bundle(zip, &s);
        let signer = discover_bundle(&root, bundle.as_bytes(), zip, file, sha).unwrap();
        assert_eq!(
            signer,
            Identity::Signer {
                identity: "thomas@python.org".into(),
                issuer: "https://accounts.google.com".into(),
            }
        );
        // What was found is what fetch then verifies.
        let expect = Expect {
            file,
            sha256: sha,
            identity: &signer,
        };
        verify_bundle(&root, bundle.as_bytes(), zip, &expect).unwrap();
        // Another file's bundle: the digest is refused before any signer is named.
        let other = sig.bundle(b"another zip", &s);
        let e = discover_bundle(&root, other.as_bytes(), zip, file, sha).unwrap_err();
        assert!(matches!(e.reason, Reason::Digest { .. }), "{e}");
        // A root that does not know the signer's CA: no signer is named as verified.
        let e =
            discover_bundle(&TrustRoot::pinned(), bundle.as_bytes(), zip, file, sha).unwrap_err();
        assert!(matches!(e.reason, Reason::Log(_)), "{e}");
        // A damaged bundle.
        let e = discover_bundle(&root, b"{}", zip, file, sha).unwrap_err();
        assert!(matches!(e.reason, Reason::Malformed { .. }), "{e}");
        // The right digest but other bytes: the signature does not verify over them.
        let e = discover_bundle(&root, bundle.as_bytes(), b"other bytes", file, sha).unwrap_err();
        assert_eq!(e.reason, Reason::Signature, "{e}");
    }

    #[test]
    fn a_trust_root_that_is_not_one_is_refused_with_its_part() {
        let e = TrustRoot::from_json(b"{}").unwrap_err();
        assert!(e.contains("at least one tlog"), "{e}");
        let e = TrustRoot::from_json(br#"{"tlogs":[{"publicKey":{"rawBytes":"!!","keyDetails":"x"},"logId":{"keyId":"AA=="}}]}"#).unwrap_err();
        assert!(e.contains("tlogs[0]"), "{e}");
    }
}
