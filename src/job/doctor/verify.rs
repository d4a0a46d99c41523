//! The captured chain checked against each trust source on its own: this machine's trust
//! store, the Mozilla root set that browsers share, and the extra roots (`--ca-cert`,
//! `SSL_CERT_FILE`). Comparing their answers is what tells the causes apart.

use std::sync::{Arc, OnceLock};

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::mechanism::net::trust::{self, classify};
use crate::mechanism::net::{ExtraRoots, TlsProblem};

use super::chain::{Chain, short_name};

/// Which trust source a check used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The operating system's trust store (on Windows its chain engine).
    System,
    /// The Mozilla root set (what browsers and the public internet trust).
    Mozilla,
    /// `--ca-cert` files and `SSL_CERT_FILE`.
    Extra,
}

/// The answer of one trust source.
#[derive(Debug, Clone, Serialize)]
pub struct TrustCheck {
    /// The source.
    pub source: Source,
    /// What it is, for people (`this machine's trust store`, the files…).
    pub label: String,
    /// True when the chain verified, host name and dates included.
    pub ok: bool,
    /// A stable code when it did not verify (`unknown_issuer`, `expired`, …).
    pub problem: Option<String>,
    /// The reason in words when it did not verify, or why the source could not be used.
    pub message: Option<String>,
    #[serde(skip)]
    pub(crate) tls_problem: Option<TlsProblem>,
}

impl TrustCheck {
    /// True when it failed because the chain ends in a CA the source does not know.
    pub fn unknown_issuer(&self) -> bool {
        self.tls_problem == Some(TlsProblem::UnknownIssuer)
    }
}

/// How the downloads' verifier uses `--ca-cert` certificates on the platform extpy runs on;
/// the doctor's check of the extra roots follows it, so that both agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtraAnchors {
    /// Any CA certificate is a trust anchor, an intermediate too (rustls' own verification,
    /// as on Linux).
    AnyCa,
    /// Only self-signed roots: Windows' chain engine takes them as an exclusive root store
    /// after the system chain failed, and an intermediate there anchors nothing.
    RootsOnly,
}

impl ExtraAnchors {
    /// What the platform extpy runs on does.
    pub(crate) fn current() -> Self {
        if cfg!(windows) {
            ExtraAnchors::RootsOnly
        } else {
            ExtraAnchors::AnyCa
        }
    }
}

/// A verifier, or why the source it stands for cannot be used.
pub(crate) type Verifier = Result<Arc<dyn ServerCertVerifier>, String>;

/// The trust sources of one run, built once.
pub(crate) struct TrustSources {
    system: Verifier,
    mozilla: Verifier,
    extra: Option<(String, Verifier)>,
    extra_subjects: Vec<Vec<u8>>,
    /// Extra certificates the platform does not take as anchors, and what to do instead.
    extra_note: Option<String>,
    anchors: ExtraAnchors,
    public_roots: OnceLock<Vec<PublicRoot>>,
}

/// A root of the Mozilla set, with its full certificate for export.
#[derive(Debug, Clone)]
pub(crate) struct PublicRoot {
    /// Its short name.
    pub name: String,
    /// Its DER certificate.
    pub der: CertificateDer<'static>,
    subject_raw: Vec<u8>,
}

impl TrustSources {
    /// The system store, the Mozilla set, and the extra roots when there are any, used as
    /// this platform's downloads use them.
    pub(crate) fn new(extra: &ExtraRoots) -> Self {
        Self::with_anchors(extra, ExtraAnchors::current())
    }

    /// Like [`TrustSources::new`], with the extra roots used as `anchors` says.
    pub(crate) fn with_anchors(extra: &ExtraRoots, anchors: ExtraAnchors) -> Self {
        let (anchor_certs, skipped) = split_anchors(&extra.certs, anchors);
        let extra_note = (!skipped.is_empty()).then(|| {
            let names = skipped
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "on Windows extpy's downloads take --ca-cert certificates as roots only, and {names} is an intermediate CA, not a root: pass its root with --ca-cert, or install it into Cert:\\LocalMachine\\Root (or its root there and it into Cert:\\LocalMachine\\CA)"
            )
        });
        let system = system_verifier();
        let mozilla = webpki_verifier(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
        let extra_check = (!extra.files.is_empty()).then(|| {
            let mut store = RootCertStore::empty();
            let (_, ignored) = store.add_parsable_certificates(anchor_certs.iter().cloned());
            let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
            let label = extra
                .files
                .iter()
                .map(|f| match &from_env {
                    Some(e) if e == f => format!("SSL_CERT_FILE {}", f.display()),
                    _ => format!("--ca-cert {}", f.display()),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let verifier = if store.is_empty() {
                Err(match &extra_note {
                    Some(note) => format!("no root to use: {note}"),
                    None => format!("none of the {ignored} certificates can serve as a root"),
                })
            } else {
                webpki_verifier(store)
            };
            (label, verifier)
        });
        let extra_subjects = anchor_certs
            .iter()
            .filter_map(|c| {
                X509Certificate::from_der(c.as_ref())
                    .ok()
                    .map(|(_, x)| x.subject().as_raw().to_vec())
            })
            .collect();
        Self {
            system,
            mozilla,
            extra: extra_check,
            extra_subjects,
            extra_note,
            anchors,
            public_roots: OnceLock::new(),
        }
    }

    /// Checks `chain` for `host` against every source.
    pub(crate) fn check(&self, chain: &Chain, host: &ServerName<'static>) -> Vec<TrustCheck> {
        let mut checks = vec![
            run_check(
                Source::System,
                "this machine's trust store".into(),
                &self.system,
                chain,
                host,
            ),
            run_check(
                Source::Mozilla,
                format!(
                    "the Mozilla root set ({} public roots)",
                    webpki_roots::TLS_SERVER_ROOTS.len()
                ),
                &self.mozilla,
                chain,
                host,
            ),
        ];
        if let Some((label, verifier)) = &self.extra {
            let mut check = run_check(Source::Extra, label.clone(), verifier, chain, host);
            if let (false, Some(note), Some(message)) = (check.ok, &self.extra_note, &check.message)
                && !message.contains(note.as_str())
            {
                check.message = Some(format!("{message}; {note}"));
            }
            checks.push(check);
        }
        checks
    }

    /// How the extra roots are used (the fixes say what works on this platform).
    pub(crate) fn anchors(&self) -> ExtraAnchors {
        self.anchors
    }

    /// True when a root with this (DER) subject is among the extra roots.
    pub(crate) fn extra_knows(&self, subject_raw: &[u8]) -> bool {
        self.extra_subjects.iter().any(|s| s == subject_raw)
    }

    /// The Mozilla root with this (DER) subject, if there is one.
    pub(crate) fn public_root(&self, subject_raw: &[u8]) -> Option<&PublicRoot> {
        self.public_roots
            .get_or_init(load_public_roots)
            .iter()
            .find(|r| r.subject_raw == subject_raw)
    }
}

/// The extra certificates that anchor chains under `anchors`, and the names of the others.
fn split_anchors(
    certs: &[CertificateDer<'static>],
    anchors: ExtraAnchors,
) -> (Vec<CertificateDer<'static>>, Vec<String>) {
    let mut used = Vec::new();
    let mut skipped = Vec::new();
    for cert in certs {
        let parsed = X509Certificate::from_der(cert.as_ref()).ok().map(|(_, x)| {
            (
                x.subject().as_raw() == x.issuer().as_raw(),
                short_name(x.subject()),
            )
        });
        match (anchors, parsed) {
            (ExtraAnchors::RootsOnly, Some((false, name))) => skipped.push(name),
            _ => used.push(cert.clone()),
        }
    }
    (used, skipped)
}

/// This machine's trust store alone (on Windows its chain engine), without `--ca-cert`.
pub(crate) fn system_verifier() -> Verifier {
    rustls_platform_verifier::Verifier::new(trust::provider())
        .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
        .map_err(|e| format!("cannot load this machine's trusted certificates: {e}"))
}

/// A verifier that trusts exactly `roots` (a CA bundle such as certifi's), with extpy's one
/// TLS policy; the error says why none of them can serve as a root.
pub(crate) fn roots_verifier(roots: &[CertificateDer<'static>]) -> Verifier {
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(roots.iter().cloned());
    if store.is_empty() {
        return Err(format!(
            "none of its {} certificates can serve as a root",
            roots.len()
        ));
    }
    webpki_verifier(store)
}

/// Checks `chain` for `host` with one verifier: `Ok` when it verifies (names and dates
/// included), else the problem.
pub(crate) fn verify_chain(
    verifier: &dyn ServerCertVerifier,
    chain: &Chain,
    host: &ServerName<'static>,
) -> Result<(), TlsProblem> {
    let Some((leaf, rest)) = chain.certs.split_first() else {
        return Err(TlsProblem::BadCertificate(
            "the server presented no certificate".into(),
        ));
    };
    let intermediates: Vec<CertificateDer<'static>> =
        rest.iter().map(|c| c.der().clone()).collect();
    verifier
        .verify_server_cert(leaf.der(), &intermediates, host, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| classify(&e))
}

fn webpki_verifier(store: RootCertStore) -> Verifier {
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), trust::provider())
        .build()
        .map(|v| v as Arc<dyn ServerCertVerifier>)
        .map_err(|e| e.to_string())
}

fn load_public_roots() -> Vec<PublicRoot> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| {
            let (_, x) = X509Certificate::from_der(der.as_ref()).ok()?;
            Some(PublicRoot {
                name: short_name(x.subject()),
                subject_raw: x.subject().as_raw().to_vec(),
                der: der.clone(),
            })
        })
        .collect()
}

fn run_check(
    source: Source,
    label: String,
    verifier: &Verifier,
    chain: &Chain,
    host: &ServerName<'static>,
) -> TrustCheck {
    let failed = |problem: Option<TlsProblem>, message: String| TrustCheck {
        source,
        label: label.clone(),
        ok: false,
        problem: problem.as_ref().map(|p| p.code().to_string()),
        message: Some(message),
        tls_problem: problem,
    };
    let verifier = match verifier {
        Ok(v) => v,
        Err(why) => return failed(None, why.clone()),
    };
    if chain.certs.is_empty() {
        return failed(None, "the server presented no certificate".into());
    }
    match verify_chain(verifier.as_ref(), chain, host) {
        Ok(()) => TrustCheck {
            source,
            label,
            ok: true,
            problem: None,
            message: None,
            tls_problem: None,
        },
        Err(problem) => {
            let message = in_words(&problem);
            failed(Some(problem), message)
        }
    }
}

/// What a source's refusal means, said of that source rather than of "this machine".
pub(crate) fn in_words(problem: &TlsProblem) -> String {
    match problem {
        TlsProblem::UnknownIssuer => "the chain does not lead to any of its roots".into(),
        TlsProblem::Expired => "a certificate of the chain has expired".into(),
        TlsProblem::NotYetValid => "a certificate of the chain is not valid yet".into(),
        TlsProblem::NameMismatch => "the certificate is not for this host name".into(),
        TlsProblem::Revoked => "a certificate of the chain is revoked".into(),
        other => other.to_string(),
    }
}
