//! Certificates for the unit tests (doctor, net), made with rcgen.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;

/// A CA that can sign.
pub struct TestCa {
    pub der: CertificateDer<'static>,
    params: CertificateParams,
    key: KeyPair,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    p
}

impl TestCa {
    /// A self-signed root.
    pub fn root(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let params = ca_params(name);
        let der = params.self_signed(&key).unwrap().der().clone();
        Self { der, params, key }
    }

    /// An intermediate signed by `self`.
    pub fn intermediate(&self, name: &str) -> Self {
        self.intermediate_with(name, |_| {})
    }

    /// An intermediate signed by `self`, edited by `edit`.
    pub fn intermediate_with(&self, name: &str, edit: impl FnOnce(&mut CertificateParams)) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params(name);
        edit(&mut params);
        let der = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap()
            .der()
            .clone();
        Self { der, params, key }
    }

    /// A leaf for `names`, edited by `edit`.
    pub fn leaf(
        &self,
        names: &[&str],
        edit: impl FnOnce(&mut CertificateParams),
    ) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        edit(&mut p);
        p.signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap()
            .der()
            .clone()
    }
}

/// A self-signed leaf.
pub fn self_signed(names: &[&str]) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.self_signed(&key).unwrap().der().clone()
}

/// The AIA extension naming `uri` as where the issuer is (caIssuers).
pub fn aia(uri: &str) -> CustomExtension {
    let mut loc = vec![0x86, uri.len() as u8];
    loc.extend(uri.as_bytes());
    let mut desc = vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    desc.extend(loc);
    let mut access = vec![0x30, desc.len() as u8];
    access.extend(desc);
    let mut outer = vec![0x30, access.len() as u8];
    outer.extend(access);
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], outer)
}

/// Validity from `from` to `to`, Unix seconds.
pub fn valid(p: &mut CertificateParams, from: u64, to: u64) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    p.not_before = epoch + std::time::Duration::from_secs(from);
    p.not_after = epoch + std::time::Duration::from_secs(to);
}
