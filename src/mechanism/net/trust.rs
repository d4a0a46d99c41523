//! Which certificate authorities extpy trusts, and TLS failures in plain words.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, ClientConfig};

use super::error::{NetError, TlsProblem};

/// The crypto provider every TLS connection uses.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Extra trust anchors: `--ca-cert` files, then `SSL_CERT_FILE` when set.
#[derive(Debug, Clone, Default)]
pub struct ExtraRoots {
    /// Files that were read, in order.
    pub files: Vec<PathBuf>,
    /// The certificates they hold.
    pub certs: Vec<CertificateDer<'static>>,
}

impl ExtraRoots {
    /// Reads every PEM file; a missing or empty file is an error naming it.
    pub fn load(ca_certs: &[PathBuf], ssl_cert_file: Option<PathBuf>) -> Result<Self, NetError> {
        let mut roots = Self::default();
        for path in ca_certs {
            roots.certs.extend(read_pem_certs(path)?);
            roots.files.push(path.clone());
        }
        if let Some(path) = ssl_cert_file.filter(|p| !p.as_os_str().is_empty()) {
            roots
                .certs
                .extend(read_pem_certs(&path).map_err(|e| match e {
                    NetError::CaCert { path, reason } => NetError::CaCert {
                        path,
                        reason: format!("{reason} (named by SSL_CERT_FILE)"),
                    },
                    other => other,
                })?);
            roots.files.push(path);
        }
        Ok(roots)
    }
}

/// The certificates of one file as Windows or anything else writes it: PEM (with or without
/// a UTF-8 byte-order mark, as UTF-16, with CRLF) or one DER certificate (a `.cer` file, what
/// Windows exports by default).
pub(crate) fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let bad = |reason: String| NetError::CaCert {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = crate::mechanism::limits::read_regular(path, crate::mechanism::limits::MAX_PEM)
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    if bytes.first() == Some(&0x30) {
        return match x509_parser::parse_x509_certificate(&bytes) {
            Ok(([], _)) => Ok(vec![CertificateDer::from(bytes)]),
            _ => Err(bad(format!(
                "it is binary (DER) but not one X.509 certificate (a .p7b or .pfx?); export the certificate as \"DER encoded binary X.509 (.CER)\" or \"Base-64 encoded X.509 (.CER)\", or use the .pem that `extpy doctor --export` writes{}",
                certutil_hint(path)
            ))),
        };
    }
    let text = crate::base::wintext::decode(&bytes)
        .map_err(|e| bad(format!("{e}{}", certutil_hint(path))))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("it is not valid PEM: {e}{}", certutil_hint(path))))?;
    if certs.is_empty() {
        return Err(bad(format!(
            "it holds no `-----BEGIN CERTIFICATE-----` block{}",
            certutil_hint(path)
        )));
    }
    Ok(certs)
}

/// The command that turns a certificate Windows exported into PEM.
fn certutil_hint(path: &Path) -> String {
    let pem = path.with_extension("pem");
    let pem = if pem == path {
        path.with_extension("b64.pem")
    } else {
        pem
    };
    format!(
        "\n  help: if it is a certificate exported from Windows, encode it as PEM with: certutil -encode \"{}\" \"{}\"",
        path.display(),
        pem.display()
    )
}

/// The TLS configuration of the one HTTP client: the operating system's verifier (its trust
/// store, and on Windows its chain engine), plus the extra roots.
///
/// When the operating system's verifier cannot be made, plain `http://` mirrors and cached or
/// bundled work still go on: the failure is kept and reported by the first TLS handshake
/// instead (Wine's crypt32, for one, refuses the chain engine).
pub(crate) fn client_config(extra: &ExtraRoots) -> Result<ClientConfig, NetError> {
    let verifier = match platform_verifier(extra) {
        Ok(v) => v,
        Err(NetError::TrustStore { reason }) => Arc::new(NoTrustStore::new(reason)),
        Err(e) => return Err(e),
    };
    config_with_verifier(verifier)
}

/// The operating system's verifier (its trust store, and on Windows its chain engine) with
/// the extra roots: what every TLS connection of extpy trusts.
pub(crate) fn platform_verifier(
    extra: &ExtraRoots,
) -> Result<Arc<dyn ServerCertVerifier>, NetError> {
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        extra.certs.iter().cloned(),
        provider(),
    )
    .map_err(|e| NetError::TrustStore {
        reason: e.to_string(),
    })?;
    Ok(Arc::new(verifier))
}

/// The verifier used when the operating system's could not be made: it rejects every server
/// with the reason.
#[derive(Debug)]
struct NoTrustStore {
    reason: String,
    schemes: Vec<rustls::SignatureScheme>,
}

impl NoTrustStore {
    fn new(reason: String) -> Self {
        let schemes = provider()
            .signature_verification_algorithms
            .supported_schemes();
        Self { reason, schemes }
    }

    fn error(&self) -> rustls::Error {
        rustls::Error::General(format!(
            "cannot load the operating system's trusted certificates: {}",
            self.reason
        ))
    }
}

impl ServerCertVerifier for NoTrustStore {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Err(self.error())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(self.error())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.verify_tls12_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.schemes.clone()
    }
}

/// The one TLS policy (provider, protocol versions, ALPN) around a given verifier; `doctor`
/// shakes hands with exactly what the HTTP client would offer.
pub(crate) fn config_with_verifier(
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<ClientConfig, NetError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::TrustStore {
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Finds a rustls error in an error's cause chain, looking inside `io::Error`s too (their
/// `source()` skips the error they wrap, so each one is opened explicitly).
pub(crate) fn find_tls_problem(err: &(dyn std::error::Error + 'static)) -> Option<TlsProblem> {
    let mut stack: Vec<&(dyn std::error::Error + 'static)> = vec![err];
    while let Some(e) = stack.pop() {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(classify(tls));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            stack.push(inner);
        }
        if let Some(next) = e.source() {
            stack.push(next);
        }
    }
    None
}

/// Plain words for a rustls error.
pub(crate) fn classify(err: &rustls::Error) -> TlsProblem {
    match err {
        rustls::Error::InvalidCertificate(c) => {
            match c {
                CertificateError::UnknownIssuer => TlsProblem::UnknownIssuer,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsProblem::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsProblem::NotYetValid
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsProblem::NameMismatch,
                CertificateError::Revoked => TlsProblem::Revoked,
                CertificateError::InvalidPurpose
                | CertificateError::InvalidPurposeContext { .. } => TlsProblem::InvalidPurpose,
                CertificateError::UnknownRevocationStatus => TlsProblem::RevocationUnknown,
                other => TlsProblem::BadCertificate(certificate_words(other)),
            }
        }
        rustls::Error::InvalidMessage(m) => TlsProblem::NotTls(format!("{m:?}")),
        rustls::Error::AlertReceived(a) => {
            TlsProblem::Handshake(format!("the server sent the alert {a:?}"))
        }
        rustls::Error::PeerIncompatible(p) => {
            TlsProblem::Handshake(format!("no common protocol or cipher ({p:?})"))
        }
        other => TlsProblem::Handshake(other.to_string()),
    }
}

/// The rarer certificate errors in words.
fn certificate_words(err: &CertificateError) -> String {
    match err {
        CertificateError::BadEncoding => "it is not a well-formed certificate".into(),
        CertificateError::BadSignature => "a signature in the chain does not verify".into(),
        CertificateError::UnhandledCriticalExtension => {
            "it has a critical extension that cannot be checked".into()
        }
        CertificateError::UnsupportedSignatureAlgorithmContext { .. }
        | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "it is signed with an algorithm extpy does not accept".into()
        }
        CertificateError::Other(e) => e.to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_ca_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = read_pem_certs(&missing).unwrap_err().to_string();
        assert!(
            err.contains("nope.pem") && err.contains("cannot read it"),
            "{err}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        let err = read_pem_certs(&empty).unwrap_err().to_string();
        assert!(
            err.contains("no `-----BEGIN CERTIFICATE-----` block"),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "certutil -encode \"{}\" \"{}\"",
                empty.display(),
                dir.path().join("empty.b64.pem").display()
            )),
            "{err}"
        );
        let der = dir.path().join("root.cer");
        std::fs::write(&der, [0x30, 0x82, 0x01]).unwrap();
        let err = read_pem_certs(&der).unwrap_err().to_string();
        assert!(
            err.contains("DER") && err.contains("certutil -encode"),
            "{err}"
        );
    }

    fn pem_of(der: &[u8]) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn certificate_files_as_windows_writes_them() {
        let ca = support::pki::Ca::root("Inspecting Proxy CA");
        let other = support::pki::Ca::root("Second CA");
        let pem = pem_of(&ca.der) + &pem_of(&other.der);
        let crlf = pem.replace('\n', "\r\n");
        let utf16 = |s: &str, bom: &[u8]| -> Vec<u8> {
            let mut v = bom.to_vec();
            v.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
            v
        };
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("plain.pem", pem.clone().into_bytes()),
            ("crlf.pem", crlf.clone().into_bytes()),
            (
                "bom.pem",
                [b"\xEF\xBB\xBF".as_slice(), crlf.as_bytes()].concat(),
            ),
            // Windows PowerShell 5.1: `Get-Content a.pem > b.pem`, `Out-File`.
            ("ps51.pem", utf16(&crlf, &[0xFF, 0xFE])),
        ];
        for (name, bytes) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let certs = read_pem_certs(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(certs, [ca.der.clone(), other.der.clone()], "{name}");
        }
        let cer = dir.path().join("root.cer");
        std::fs::write(&cer, ca.der.as_ref()).unwrap();
        assert_eq!(read_pem_certs(&cer).unwrap(), vec![ca.der.clone()]);
        // Extra bytes after the certificate: not one DER certificate.
        std::fs::write(&cer, [ca.der.as_ref(), b"\x00"].concat()).unwrap();
        assert!(
            read_pem_certs(&cer)
                .unwrap_err()
                .to_string()
                .contains("not one X.509")
        );
    }

    #[test]
    fn classifies_through_io_errors() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(find_tls_problem(&io), Some(TlsProblem::UnknownIssuer));
        let nested = std::io::Error::other(io);
        assert_eq!(find_tls_problem(&nested), Some(TlsProblem::UnknownIssuer));
        let plain = std::io::Error::other("nothing to see");
        assert_eq!(find_tls_problem(&plain), None);
    }

    #[test]
    fn without_a_trust_store_plain_http_works_and_tls_names_the_reason() {
        let config =
            config_with_verifier(Arc::new(NoTrustStore::new("Invalid parameter".into()))).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .unwrap();
        });
        let client = reqwest::blocking::Client::builder()
            .tls_backend_preconfigured(config)
            .build()
            .unwrap();
        let body = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(body, "ok");
        server.join().unwrap();

        let verifier = NoTrustStore::new("Invalid parameter".into());
        let name = rustls::pki_types::ServerName::try_from("example.test").unwrap();
        let err = verifier
            .verify_server_cert(
                &CertificateDer::from(vec![0x30]),
                &[],
                &name,
                &[],
                rustls::pki_types::UnixTime::now(),
            )
            .unwrap_err();
        let problem = classify(&err).to_string();
        assert!(
            problem.contains(
                "cannot load the operating system's trusted certificates: Invalid parameter"
            ),
            "{problem}"
        );
        assert!(!verifier.supported_verify_schemes().is_empty());
    }
}
