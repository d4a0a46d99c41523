//! A Sigstore instance made in the test: a Fulcio-style CA, a transparency log's key and
//! Merkle tree, and the PEP 740 provenance documents and Sigstore bundles they sign. It
//! shares no code with extpy's verifier: the Merkle tree is built by RFC 6962's recursive
//! definition, the verifier walks the audit path iteratively, so each checks the other.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::{
    CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, KeyPair, PublicKeyData, SanType,
    SigningKey,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::pki::{Ca, now_unix, valid_between};

/// The OIDC issuer of GitHub Actions.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// A test Sigstore: Fulcio root and intermediate, and one log.
pub struct TestSigstore {
    pub fulcio_root: Ca,
    pub fulcio: Ca,
    log: KeyPair,
    pub origin: String,
}

/// How to sign: the identity, the subject and what to break.
#[derive(Clone, Debug)]
pub struct Sign {
    /// The certificate's SAN (a URI, or an e-mail address when it has an `@` and no `:`).
    pub san: String,
    /// The OIDC issuer extension.
    pub issuer: String,
    /// The in-toto subject's name (PEP 740) — by default the file signed.
    pub subject_name: Option<String>,
    /// The signed sha256 (hex) — by default the file's.
    pub subject_sha256: Option<String>,
    /// Certificate validity (Unix seconds); by default ten minutes around now.
    pub cert_valid: Option<(u64, u64)>,
    /// The log's integrated time; by default now.
    pub integrated_time: Option<u64>,
    /// Leave out the inclusion proof.
    pub no_inclusion_proof: bool,
    /// Leave out the signed entry timestamp.
    pub no_timestamp: bool,
    /// Change the log entry's body after the log signed it.
    pub tamper_body: bool,
    /// Replace one hash of the audit path.
    pub bad_proof: bool,
    /// Sign the certificate with a CA that is not in the trust root.
    pub foreign_ca: bool,
}

impl Sign {
    /// A GitHub Trusted Publisher: `repository`'s workflow `workflow` at a tag.
    pub fn github(repository: &str, workflow: &str) -> Sign {
        Sign::signer(
            &format!("https://github.com/{repository}/.github/workflows/{workflow}@refs/tags/v1.0"),
            GITHUB_ISSUER,
        )
    }

    /// Any signer identity and issuer (python.org's release managers sign with e-mail).
    pub fn signer(san: &str, issuer: &str) -> Sign {
        Sign {
            san: san.to_string(),
            issuer: issuer.to_string(),
            subject_name: None,
            subject_sha256: None,
            cert_valid: None,
            integrated_time: None,
            no_inclusion_proof: false,
            no_timestamp: false,
            tamper_body: false,
            bad_proof: false,
            foreign_ca: false,
        }
    }
}

impl Default for TestSigstore {
    fn default() -> Self {
        Self::new()
    }
}

impl TestSigstore {
    /// A fresh instance with its own keys.
    pub fn new() -> TestSigstore {
        let fulcio_root = Ca::root("test fulcio root");
        let fulcio = fulcio_root.intermediate("test fulcio intermediate");
        TestSigstore {
            fulcio_root,
            fulcio,
            log: KeyPair::generate().expect("log key"),
            origin: "test-rekor - 1".to_string(),
        }
    }

    fn log_spki(&self) -> Vec<u8> {
        self.log.subject_public_key_info()
    }

    fn log_id(&self) -> Vec<u8> {
        Sha256::digest(self.log_spki()).to_vec()
    }

    /// The `trusted_root.json` of this instance.
    pub fn trust_root_json(&self) -> String {
        json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{
                "baseUrl": "https://rekor.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": B64.encode(self.log_spki()),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": { "start": "2021-01-01T00:00:00Z" }
                },
                "logId": { "keyId": B64.encode(self.log_id()) }
            }],
            "certificateAuthorities": [{
                "subject": { "organization": "extpy tests", "commonName": "test fulcio" },
                "uri": "https://fulcio.test",
                "certChain": { "certificates": [
                    { "rawBytes": B64.encode(self.fulcio.der.as_ref()) },
                    { "rawBytes": B64.encode(self.fulcio_root.der.as_ref()) }
                ]},
                "validFor": { "start": "2021-01-01T00:00:00Z" }
            }],
            "ctlogs": [],
            "timestampAuthorities": []
        })
        .to_string()
    }

    /// A signing certificate for `s` and its key.
    fn certificate(&self, s: &Sign) -> (Vec<u8>, KeyPair) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        let san = if s.san.contains('@') && !s.san.contains(':') {
            SanType::Rfc822Name(s.san.clone().try_into().expect("e-mail"))
        } else {
            SanType::URI(s.san.clone().try_into().expect("uri"))
        };
        params.subject_alt_names = vec![san];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let mut v2 = vec![0x0c, s.issuer.len() as u8];
        v2.extend(s.issuer.as_bytes());
        params.custom_extensions = vec![
            CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
                s.issuer.clone().into_bytes(),
            ),
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], v2),
        ];
        let now = now_unix();
        let (from, to) = s.cert_valid.unwrap_or((now - 300, now + 300));
        valid_between(&mut params, from, to);
        let foreign;
        let ca = if s.foreign_ca {
            foreign = Ca::root("test fulcio root").intermediate("test fulcio intermediate");
            &foreign
        } else {
            &self.fulcio
        };
        let cert = params
            .signed_by(&key, &ca.issuer())
            .expect("signing certificate");
        (cert.der().to_vec(), key)
    }

    /// A transparency-log entry for `body`, as the log would return it.
    fn entry(&self, body: &serde_json::Value, kind: &str, s: &Sign) -> serde_json::Value {
        let body = B64.encode(body.to_string());
        let time = s.integrated_time.unwrap_or_else(now_unix);
        let (index, size) = (4u64, 6u64);
        let log_index = 1000 + index;
        let mut leaves: Vec<Vec<u8>> = (0..size)
            .map(|i| leaf_hash(format!("another entry {i}").as_bytes()))
            .collect();
        leaves[index as usize] = leaf_hash(&B64.decode(&body).unwrap());
        let root = mth(&leaves);
        let mut path = audit_path(index as usize, &leaves);
        if s.bad_proof {
            path[0][0] ^= 1;
        }
        let set_payload = format!(
            r#"{{"body":"{body}","integratedTime":{time},"logID":"{}","logIndex":{log_index}}}"#,
            hex(&self.log_id())
        );
        let set = self.log.sign(set_payload.as_bytes()).expect("set");
        let note = format!("{}\n{size}\n{}\n", self.origin, B64.encode(&root));
        let note_sig = self.log.sign(note.as_bytes()).expect("checkpoint");
        let mut hint_sig = self.log_id()[..4].to_vec();
        hint_sig.extend(note_sig);
        let checkpoint = format!(
            "{note}\n\u{2014} {} {}\n",
            self.origin,
            B64.encode(hint_sig)
        );
        let mut body = body;
        if s.tamper_body {
            let mut raw = B64.decode(&body).unwrap();
            let last = raw.len() - 2;
            raw[last] ^= 0x20;
            body = B64.encode(raw);
        }
        let mut e = json!({
            "logIndex": log_index.to_string(),
            "logId": { "keyId": B64.encode(self.log_id()) },
            "kindVersion": { "kind": kind, "version": "0.0.1" },
            "integratedTime": time.to_string(),
            "inclusionPromise": { "signedEntryTimestamp": B64.encode(set) },
            "inclusionProof": {
                "logIndex": index.to_string(),
                "rootHash": B64.encode(&root),
                "treeSize": size.to_string(),
                "hashes": path.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
                "checkpoint": { "envelope": checkpoint }
            },
            "canonicalizedBody": body
        });
        if s.no_inclusion_proof {
            e.as_object_mut().unwrap().remove("inclusionProof");
        }
        if s.no_timestamp {
            e.as_object_mut().unwrap().remove("inclusionPromise");
        }
        e
    }

    /// A PEP 740 provenance document for `file` with sha256 `sha256` (hex), signed as `s` says.
    pub fn provenance(&self, file: &str, sha256: &str, s: &Sign) -> String {
        let (cert, key) = self.certificate(s);
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{
                "name": s.subject_name.as_deref().unwrap_or(file),
                "digest": { "sha256": s.subject_sha256.as_deref().unwrap_or(sha256) }
            }],
            "predicateType": "https://docs.pypi.org/attestations/publish/v1",
            "predicate": null
        })
        .to_string();
        let payload_type = "application/vnd.in-toto+json";
        let pae = format!(
            "DSSEv1 {} {payload_type} {} {statement}",
            payload_type.len(),
            statement.len()
        );
        let signature = key.sign(pae.as_bytes()).expect("sign");
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": { "algorithm": "sha256", "value": hex(&Sha256::digest(pae.as_bytes())) },
                "payloadHash": { "algorithm": "sha256", "value": hex(&Sha256::digest(statement.as_bytes())) },
                "signatures": [{
                    "signature": B64.encode(&signature),
                    "verifier": B64.encode(pem(&cert))
                }]
            }
        });
        let entry = self.entry(&body, "dsse", s);
        let (owner_repo, workflow) = s
            .san
            .strip_prefix("https://github.com/")
            .and_then(|r| r.split_once("/.github/workflows/"))
            .map(|(r, w)| (r.to_string(), w.split('@').next().unwrap_or("").to_string()))
            .unwrap_or_default();
        json!({
            "version": 1,
            "attestation_bundles": [{
                "publisher": {
                    "kind": "GitHub", "repository": owner_repo, "workflow": workflow, "environment": null
                },
                "attestations": [{
                    "version": 1,
                    "verification_material": {
                        "certificate": B64.encode(&cert),
                        "transparency_entries": [entry]
                    },
                    "envelope": {
                        "statement": B64.encode(statement.as_bytes()),
                        "signature": B64.encode(&signature)
                    }
                }]
            }]
        })
        .to_string()
    }

    /// A Sigstore bundle (`.sigstore`) with a message signature over `artifact`, as
    /// python.org publishes beside CPython.
    pub fn bundle(&self, artifact: &[u8], s: &Sign) -> String {
        let (cert, key) = self.certificate(s);
        let digest = match &s.subject_sha256 {
            Some(h) => (0..32)
                .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
                .collect(),
            None => Sha256::digest(artifact).to_vec(),
        };
        let signature = key.sign(artifact).expect("sign");
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": { "hash": { "algorithm": "sha256", "value": hex(&digest) } },
                "signature": {
                    "content": B64.encode(&signature),
                    "publicKey": { "content": B64.encode(pem(&cert)) }
                }
            }
        });
        let entry = self.entry(&body, "hashedrekord", s);
        json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": { "rawBytes": B64.encode(&cert) },
                "tlogEntries": [entry]
            },
            "messageSignature": {
                "messageDigest": { "algorithm": "SHA2_256", "digest": B64.encode(&digest) },
                "signature": B64.encode(&signature)
            }
        })
        .to_string()
    }
}

fn pem(der: &[u8]) -> String {
    let b = B64.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn leaf_hash(data: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().to_vec()
}

fn node(l: &[u8], r: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().to_vec()
}

/// The largest power of two smaller than `n` (RFC 6962 2.1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH over leaf hashes.
fn mth(leaves: &[Vec<u8>]) -> Vec<u8> {
    if leaves.len() == 1 {
        return leaves[0].clone();
    }
    let k = split(leaves.len());
    node(&mth(&leaves[..k]), &mth(&leaves[k..]))
}

/// PATH(m, D[n]) of RFC 6962 2.1.1.
fn audit_path(m: usize, leaves: &[Vec<u8>]) -> Vec<Vec<u8>> {
    if leaves.len() == 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    if m < k {
        let mut p = audit_path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = audit_path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}
