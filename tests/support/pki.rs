//! Certificates made in the test: a root CA, intermediates and leaves, with rcgen.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority that can sign others.
pub struct Ca {
    pub name: String,
    pub params: CertificateParams,
    pub key: KeyPair,
    pub der: CertificateDer<'static>,
    pub pem: String,
}

impl Ca {
    /// A self-signed root named `name`.
    pub fn root(name: &str) -> Self {
        let key = KeyPair::generate().expect("key");
        let params = ca_params(name);
        let cert = params.self_signed(&key).expect("self-signed root");
        Self {
            name: name.to_string(),
            pem: cert.pem(),
            der: cert.der().clone(),
            params,
            key,
        }
    }

    /// An intermediate CA signed by `self`.
    pub fn intermediate(&self, name: &str) -> Ca {
        self.intermediate_with(name, |_| {})
    }

    /// An intermediate CA signed by `self`, its parameters adjusted by `edit` (validity...).
    pub fn intermediate_with(&self, name: &str, edit: impl FnOnce(&mut CertificateParams)) -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = ca_params(name);
        edit(&mut params);
        let cert = params
            .signed_by(&key, &self.issuer())
            .expect("intermediate");
        Ca {
            name: name.to_string(),
            pem: cert.pem(),
            der: cert.der().clone(),
            params,
            key,
        }
    }

    /// The issuer handle rcgen signs with.
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// A server leaf for `names` (DNS names or IP addresses), valid for a long time.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, |_| {})
    }

    /// A leaf with its parameters adjusted by `edit` (validity, extensions…).
    pub fn leaf_with(&self, names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let key = KeyPair::generate().expect("key");
        let mut params = leaf_params(names);
        edit(&mut params);
        let cert = params.signed_by(&key, &self.issuer()).expect("leaf");
        Leaf {
            der: cert.der().clone(),
            pem: cert.pem(),
            key: key.serialize_der(),
        }
    }

    /// The SHA-256 fingerprint of the CA certificate (lowercase hex).
    pub fn sha256(&self) -> String {
        crate::sha256_hex(self.der.as_ref())
    }

    /// Writes the CA certificate as PEM into `dir` and returns the path.
    pub fn write_pem(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, &self.pem).expect("write CA pem");
        path
    }
}

/// A server certificate and its key.
pub struct Leaf {
    pub der: CertificateDer<'static>,
    pub pem: String,
    pub key: Vec<u8>,
}

impl Leaf {
    /// The SHA-256 fingerprint of the certificate (lowercase hex).
    pub fn sha256(&self) -> String {
        crate::sha256_hex(self.der.as_ref())
    }

    /// A self-signed leaf (no CA at all).
    pub fn self_signed(names: &[&str]) -> Leaf {
        let key = KeyPair::generate().expect("key");
        let mut params = leaf_params(names);
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("self-signed"),
        );
        let cert = params.self_signed(&key).expect("self-signed leaf");
        Leaf {
            der: cert.der().clone(),
            pem: cert.pem(),
            key: key.serialize_der(),
        }
    }

    /// A rustls server configuration presenting `self` followed by `chain`.
    pub fn server_config(&self, chain: &[&CertificateDer<'static>]) -> Arc<rustls::ServerConfig> {
        let mut certs = vec![self.der.clone()];
        certs.extend(chain.iter().map(|c| (*c).clone()));
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
        Arc::new(config)
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "extpy tests");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2090, 1, 1);
    params
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("names");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2090, 1, 1);
    params
}

/// An authority information access extension naming where the issuer's certificate is
/// (caIssuers): SEQUENCE { SEQUENCE { OID 1.3.6.1.5.5.7.48.2, [6] IA5String uri } }.
pub fn aia_ca_issuers(uri: &str) -> CustomExtension {
    let oid = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    let mut location = vec![0x86];
    location.extend(der_len(uri.len()));
    location.extend(uri.as_bytes());
    let mut desc = oid.to_vec();
    desc.extend(location);
    let mut access = vec![0x30];
    access.extend(der_len(desc.len()));
    access.extend(desc);
    let mut outer = vec![0x30];
    outer.extend(der_len(access.len()));
    outer.extend(access);
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], outer)
}

fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=0x7f => vec![n as u8],
        0x80..=0xff => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

/// Sets the validity to run from `from` to `to` (Unix seconds).
pub fn valid_between(params: &mut CertificateParams, from: u64, to: u64) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + std::time::Duration::from_secs(from);
    params.not_after = epoch + std::time::Duration::from_secs(to);
}

/// Now, in Unix seconds.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
