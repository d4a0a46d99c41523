//! The certificates a server presented, read with x509-parser: who each one is, who signed
//! it, what it covers and until when, and which of them form the path from the leaf upwards.

use rustls::pki_types::CertificateDer;
use serde::Serialize;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS, OID_SIG_ED448, OID_SIG_ED25519,
};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::mechanism::digest::Sha256Digest;

/// One presented certificate, as the report shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    /// Its place in what the server sent (0 is the leaf).
    pub position: usize,
    /// The subject, `CN=…, O=…`.
    pub subject: String,
    /// The short name people use: the common name, else the organization, else the subject.
    pub name: String,
    /// The issuer, `CN=…, O=…`.
    pub issuer: String,
    /// The issuer's short name.
    pub issuer_name: String,
    /// DNS names and IP addresses of the subject alternative name extension.
    pub names: Vec<String>,
    /// Start of validity, RFC 3339 (UTC).
    pub not_before: String,
    /// End of validity, RFC 3339 (UTC).
    pub not_after: String,
    /// Key type and size, e.g. `ECDSA P-256` or `RSA 2048`.
    pub key: String,
    /// SHA-256 of the DER bytes, lowercase hex.
    pub sha256: String,
    /// True for a certificate authority.
    pub ca: bool,
    /// True when subject and issuer are the same name (a root, or a self-signed leaf).
    pub self_signed: bool,
    /// Where its issuer's certificate can be downloaded (AIA caIssuers URLs).
    pub ca_issuers: Vec<String>,
    /// Why it could not be read, when it could not.
    pub error: Option<String>,
    #[serde(skip)]
    pub(crate) subject_raw: Vec<u8>,
    #[serde(skip)]
    pub(crate) issuer_raw: Vec<u8>,
    #[serde(skip)]
    pub(crate) validity: (i64, i64),
    #[serde(skip)]
    pub(crate) der: CertificateDer<'static>,
}

/// What the server presented, and the path through it from the leaf.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chain {
    /// Every certificate, in the order sent.
    pub certs: Vec<CertInfo>,
    /// Indexes into `certs` from the leaf to the topmost certificate whose issuer was sent.
    pub path: Vec<usize>,
}

impl Chain {
    /// Reads the presented certificates and follows issuer names from the leaf.
    pub(crate) fn parse(ders: &[CertificateDer<'static>]) -> Self {
        let certs: Vec<CertInfo> = ders
            .iter()
            .enumerate()
            .map(|(i, d)| CertInfo::parse(i, d))
            .collect();
        let path = issuer_path(&certs);
        Self { certs, path }
    }

    /// The server's own certificate.
    pub(crate) fn leaf(&self) -> Option<&CertInfo> {
        self.certs.first()
    }

    /// The last certificate on the path: the root if the server sent it, else the highest
    /// intermediate (or the leaf itself).
    pub(crate) fn top(&self) -> Option<&CertInfo> {
        self.path.last().map(|&i| &self.certs[i])
    }

    /// The certificates on the path, leaf first.
    pub(crate) fn on_path(&self) -> impl Iterator<Item = &CertInfo> {
        self.path.iter().map(|&i| &self.certs[i])
    }

    /// True when the top of the path is a root (its own issuer) that is not the leaf.
    pub(crate) fn root_presented(&self) -> bool {
        self.path.len() > 1 && self.top().is_some_and(|c| c.self_signed)
    }

    /// True when the leaf is its own issuer.
    pub(crate) fn leaf_self_signed(&self) -> bool {
        self.leaf()
            .is_some_and(|c| c.self_signed && c.error.is_none())
    }

    /// Certificates sent that are not on the path (unneeded, or in the wrong order).
    pub(crate) fn strays(&self) -> Vec<usize> {
        (0..self.certs.len())
            .filter(|i| !self.path.contains(i))
            .collect()
    }
}

fn issuer_path(certs: &[CertInfo]) -> Vec<usize> {
    let mut path = Vec::new();
    if certs.is_empty() {
        return path;
    }
    path.push(0);
    loop {
        let current = &certs[*path.last().unwrap_or(&0)];
        if current.self_signed || current.error.is_some() {
            return path;
        }
        let next = certs.iter().position(|c| {
            c.error.is_none() && c.subject_raw == current.issuer_raw && !path.contains(&c.position)
        });
        match next {
            Some(i) => path.push(i),
            None => return path,
        }
    }
}

impl CertInfo {
    /// Reads one certificate; one that cannot be read is kept with its fingerprint and the
    /// reason.
    pub fn parse(position: usize, der: &CertificateDer<'static>) -> Self {
        let sha256 = Sha256Digest::of(der.as_ref()).to_hex();
        match X509Certificate::from_der(der.as_ref()) {
            Ok((_, x)) => Self::from_x509(position, der, sha256, &x),
            Err(e) => Self {
                position,
                subject: String::new(),
                name: format!("certificate #{position}"),
                issuer: String::new(),
                issuer_name: String::new(),
                names: Vec::new(),
                not_before: String::new(),
                not_after: String::new(),
                key: String::new(),
                sha256,
                ca: false,
                self_signed: false,
                ca_issuers: Vec::new(),
                error: Some(format!("cannot read this certificate: {e}")),
                subject_raw: Vec::new(),
                issuer_raw: Vec::new(),
                validity: (0, 0),
                der: der.clone(),
            },
        }
    }

    fn from_x509(
        position: usize,
        der: &CertificateDer<'static>,
        sha256: String,
        x: &X509Certificate<'_>,
    ) -> Self {
        let validity = (
            x.validity().not_before.timestamp(),
            x.validity().not_after.timestamp(),
        );
        let subject_raw = x.subject().as_raw().to_vec();
        let issuer_raw = x.issuer().as_raw().to_vec();
        Self {
            position,
            subject: x.subject().to_string(),
            name: short_name(x.subject()),
            issuer: x.issuer().to_string(),
            issuer_name: short_name(x.issuer()),
            names: alt_names(x),
            not_before: rfc3339(validity.0),
            not_after: rfc3339(validity.1),
            key: key_description(x),
            sha256,
            ca: x.is_ca(),
            self_signed: subject_raw == issuer_raw,
            ca_issuers: ca_issuers(x),
            error: None,
            subject_raw,
            issuer_raw,
            validity,
            der: der.clone(),
        }
    }

    /// The DER bytes.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// Validity as Unix seconds: (not before, not after).
    pub fn validity(&self) -> (i64, i64) {
        self.validity
    }
}

/// The common name of a distinguished name, else its organization, else all of it.
pub(crate) fn short_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    let first = |mut it: Box<
        dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>> + '_,
    >| { it.find_map(|a| a.as_str().ok().map(str::to_string)) };
    first(Box::new(name.iter_common_name()))
        .or_else(|| first(Box::new(name.iter_organization())))
        .unwrap_or_else(|| name.to_string())
}

fn alt_names(x: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = x.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::IPAddress(b) => ip_text(b),
            _ => None,
        })
        .collect()
}

fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}

/// The caIssuers URLs of the authority information access extension.
pub(crate) fn ca_issuers(x: &X509Certificate<'_>) -> Vec<String> {
    x.extensions()
        .iter()
        .filter_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => Some(aia),
            _ => None,
        })
        .flat_map(|aia| aia.accessdescs.iter())
        .filter(|d| d.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS)
        .filter_map(|d| match d.access_location {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect()
}

fn key_description(x: &X509Certificate<'_>) -> String {
    let spki = x.public_key();
    let alg = &spki.algorithm.algorithm;
    if *alg == OID_PKCS1_RSAENCRYPTION {
        return match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => format!("RSA {}", rsa.key_size()),
            _ => "RSA".into(),
        };
    }
    if *alg == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.clone().oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => "ECDSA P-256".into(),
            Some(c) if c == OID_NIST_EC_P384 => "ECDSA P-384".into(),
            Some(c) if c == OID_NIST_EC_P521 => "ECDSA P-521".into(),
            Some(c) => format!("ECDSA (curve {c})"),
            None => "ECDSA".into(),
        };
    }
    if *alg == OID_SIG_ED25519 {
        return "Ed25519".into();
    }
    if *alg == OID_SIG_ED448 {
        return "Ed448".into();
    }
    format!("unknown ({alg})")
}

/// Unix seconds as RFC 3339 in UTC (`2030-01-01T00:00:00Z`).
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_577_836_800), "2020-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
        assert_eq!(rfc3339(3_786_912_000), "2090-01-01T00:00:00Z");
        assert_eq!(rfc3339(-86_400), "1969-12-31T00:00:00Z");
    }

    #[test]
    fn ip_addresses_from_san_bytes() {
        assert_eq!(ip_text(&[127, 0, 0, 1]).as_deref(), Some("127.0.0.1"));
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip_text(&v6).as_deref(), Some("::1"));
        assert_eq!(ip_text(&[1, 2, 3]), None);
    }

    use support::pki::{Ca as TestCa, Leaf, aia_ca_issuers as aia};

    #[test]
    fn aia_ca_issuers_urls_are_read() {
        let root = TestCa::root("Root");
        let leaf = root
            .leaf_with(&["a.example"], |p| {
                p.custom_extensions
                    .push(aia("http://pki.example.com/issuer.cer"))
            })
            .der;
        let chain = Chain::parse(&[leaf]);
        assert_eq!(
            chain.certs[0].ca_issuers,
            vec!["http://pki.example.com/issuer.cer"]
        );
        let plain = root.leaf_with(&["a.example"], |_| {}).der;
        assert!(Chain::parse(&[plain]).certs[0].ca_issuers.is_empty());
    }

    #[test]
    fn the_path_follows_issuers_whatever_the_order_sent() {
        let root = TestCa::root("Root");
        let inter = root.intermediate("Issuing CA");
        let leaf = inter.leaf_with(&["a.example", "10.0.0.1"], |_| {}).der;
        let unrelated = TestCa::root("Somebody Else");
        let chain = Chain::parse(&[
            leaf,
            root.der.clone(),
            unrelated.der.clone(),
            inter.der.clone(),
        ]);
        assert_eq!(chain.path, vec![0, 3, 1]);
        assert!(chain.root_presented());
        assert_eq!(chain.top().unwrap().name, "Root");
        assert_eq!(chain.strays(), vec![2]);
        let leaf = &chain.certs[0];
        assert_eq!(leaf.names, vec!["a.example", "10.0.0.1"]);
        assert_eq!(leaf.issuer_name, "Issuing CA");
        assert_eq!(leaf.key, "ECDSA P-256");
        assert!(!leaf.ca && chain.certs[1].ca && chain.certs[1].self_signed);
    }

    #[test]
    fn a_chain_without_its_root_tops_out_at_the_intermediate() {
        let root = TestCa::root("Root");
        let inter = root.intermediate("Issuing CA");
        let leaf = inter.leaf_with(&["a.example"], |_| {}).der;
        let chain = Chain::parse(&[leaf, inter.der.clone()]);
        assert!(!chain.root_presented());
        assert_eq!(chain.top().unwrap().issuer_name, "Root");
        let alone = Chain::parse(&[Leaf::self_signed(&["a.example"]).der]);
        assert!(alone.leaf_self_signed() && !alone.root_presented());
    }

    #[test]
    fn garbage_is_kept_with_its_fingerprint() {
        let der = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let chain = Chain::parse(&[der]);
        let c = &chain.certs[0];
        assert!(c.error.as_deref().unwrap().starts_with("cannot read"));
        assert_eq!(c.sha256.len(), 64);
        assert_eq!(chain.path, vec![0]);
        assert!(!chain.leaf_self_signed());
    }
}
