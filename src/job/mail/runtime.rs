//! The trust CEM will use at run time. The External Python's `requests` and `msal` do not
//! verify TLS against what this machine trusts: they use certifi's bundle inside the
//! distribution, or (with `runtime_trust: system` in the manifest) the Windows certificate
//! store through truststore. So a CA that only this machine trusts (a TLS-inspecting proxy's)
//! lets the download and the doctor pass while CEM's OAuth fails. Here every endpoint's chain
//! is checked both ways, and a difference is named with its fix.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Serialize;

use crate::job::assemble::pth::TRUSTSTORE_HOOK;
use crate::job::doctor::chain::Chain;
use crate::job::doctor::verify::{self, Verifier, in_words};
use crate::mechanism::net::trust::read_pem_certs;
use crate::model::manifest::RuntimeTrust;

use super::verdict::MailFix;

/// Where the distribution keeps site-packages, from its root.
const SITE_PACKAGES: [&str; 2] = ["Lib", "site-packages"];

/// Bad `--dist`: the folder is not a distribution whose trust can be read.
#[derive(Debug, thiserror::Error)]
#[error("--dist {path}: {reason}\n  help: {help}")]
pub struct DistError {
    /// The folder as given.
    pub path: String,
    /// What is wrong.
    pub reason: String,
    /// What to do.
    pub help: String,
}

/// A built distribution's run-time trust, read from its files.
#[derive(Debug)]
pub(crate) struct Distribution {
    root: PathBuf,
    trust: RuntimeTrust,
    bundle: Option<(PathBuf, Vec<CertificateDer<'static>>)>,
    certifi_version: Option<String>,
    notes: Vec<String>,
}

impl Distribution {
    /// Reads `dir` (a build's DEST, or a VU's `Python\External`): whether the truststore hook
    /// is installed, and certifi's bundle.
    pub(crate) fn open(dir: &Path) -> Result<Self, DistError> {
        let shown = dir.display().to_string();
        let bad = |reason: String, help: &str| DistError {
            path: shown.clone(),
            reason,
            help: help.into(),
        };
        let which = "give the folder `extpy build` wrote (DEST, by default contents\\Python\\external) or a VU's Python\\External folder";
        let meta = fs::metadata(dir).map_err(|e| bad(format!("cannot read it: {e}"), which))?;
        if !meta.is_dir() {
            return Err(bad("it is not a folder".into(), which));
        }
        let site: PathBuf = SITE_PACKAGES
            .iter()
            .fold(dir.to_path_buf(), |p, c| p.join(c));
        if !site.is_dir() {
            return Err(bad(
                "it is not a built External Python: it has no Lib\\site-packages".into(),
                which,
            ));
        }
        let mut notes = Vec::new();
        let hook = site.join(TRUSTSTORE_HOOK).is_file();
        let package = site.join("truststore").is_dir();
        let trust = match (hook, package) {
            (true, true) => RuntimeTrust::System,
            (true, false) => {
                notes.push(format!(
                    "Lib\\site-packages\\{TRUSTSTORE_HOOK} is there but the truststore package is not: Python reports an error at every start and requests uses certifi's bundle; rebuild with extpy build"
                ));
                RuntimeTrust::Certifi
            }
            (false, _) => RuntimeTrust::Certifi,
        };
        let pem = site.join("certifi").join("cacert.pem");
        let bundle = if pem.is_file() {
            let certs = read_pem_certs(&pem).map_err(|e| {
                bad(
                    format!("certifi's bundle cannot be used: {}", first_line(&e.to_string())),
                    "rebuild the distribution with extpy build; extpy verify DIR shows what changed",
                )
            })?;
            Some((pem, certs))
        } else if trust == RuntimeTrust::Certifi {
            return Err(bad(
                "it has no certifi bundle (Lib\\site-packages\\certifi\\cacert.pem), so requests in it cannot verify TLS at all (requests needs certifi)".into(),
                "build it from a manifest that pins certifi (the shipped one does), or give the folder of a complete build",
            ));
        } else {
            None
        };
        let certifi_version = fs::read_dir(&site).ok().and_then(|entries| {
            entries.filter_map(Result::ok).find_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let rest = name.strip_prefix("certifi-")?.strip_suffix(".dist-info")?;
                Some(rest.to_string())
            })
        });
        Ok(Self {
            root: dir.to_path_buf(),
            trust,
            bundle,
            certifi_version,
            notes,
        })
    }

    /// What requests in it verifies TLS against.
    pub(crate) fn trust(&self) -> RuntimeTrust {
        self.trust
    }

    /// Remarks on what was found (a hook without its package).
    pub(crate) fn notes(&self) -> &[String] {
        &self.notes
    }
}

/// One trust source's answer for one chain.
#[derive(Debug, Clone, Serialize)]
pub struct TrustAnswer {
    /// True when the chain verified (names and dates included).
    pub ok: bool,
    /// A stable code when it did not (`unknown_issuer`, `expired`, ...).
    pub problem: Option<String>,
    /// The reason in words.
    pub message: Option<String>,
}

impl TrustAnswer {
    fn of(verifier: &Verifier, chain: &Chain, host: &ServerName<'static>) -> Self {
        let verifier = match verifier {
            Ok(v) => v,
            Err(why) => {
                return Self {
                    ok: false,
                    problem: None,
                    message: Some(why.clone()),
                };
            }
        };
        match verify::verify_chain(verifier.as_ref(), chain, host) {
            Ok(()) => Self {
                ok: true,
                problem: None,
                message: None,
            },
            Err(p) => Self {
                ok: false,
                problem: Some(p.code().to_string()),
                message: Some(in_words(&p)),
            },
        }
    }
}

/// How one endpoint's trust compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    /// This machine and CEM's Python both trust the chain.
    Trusted,
    /// This machine trusts it, CEM's Python would not: the TLS-inspecting proxy case.
    RuntimeRejects,
    /// This machine does not trust it (the check's own TLS verdict says why).
    RejectedHere,
    /// No chain could be captured.
    NotCaptured,
}

/// One endpoint checked as this machine does and as the distribution would.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeEndpoint {
    /// `identity platform`, `imap` or `smtp`.
    pub role: &'static str,
    /// `host:port`.
    pub endpoint: String,
    /// How the two compare.
    pub kind: Comparison,
    /// True when CEM's Python would trust it (false also when nothing was captured).
    pub ok: bool,
    /// The CA the chain leads to (the root's name).
    pub issuer: Option<String>,
    /// This machine: its trust store plus `--ca-cert`, as the mail check connects.
    pub here: Option<TrustAnswer>,
    /// This machine's trust store alone (what truststore would use on this machine).
    pub system: Option<TrustAnswer>,
    /// The distribution's trust (certifi's bundle, or the system store).
    pub runtime: Option<TrustAnswer>,
    /// One line.
    pub summary: String,
    /// What to do.
    pub fix: Option<MailFix>,
}

/// The run-time trust comparison of a mail check.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeReport {
    /// False when no distribution was given (`--dist`), so nothing was compared.
    pub compared: bool,
    /// The distribution's folder.
    pub distribution: Option<String>,
    /// What it trusts: `certifi` or `system`.
    pub trust: Option<RuntimeTrust>,
    /// The CA bundle that was used (certifi's `cacert.pem` inside it).
    pub bundle: Option<String>,
    /// How many certificates that bundle holds.
    pub bundle_certificates: Option<usize>,
    /// certifi's version (from its dist-info folder).
    pub certifi_version: Option<String>,
    /// True when CEM's Python would trust every endpoint; null when nothing was compared.
    pub ok: Option<bool>,
    /// The identity platform, IMAP and SMTP endpoints.
    pub endpoints: Vec<RuntimeEndpoint>,
    /// Remarks.
    pub notes: Vec<String>,
}

impl RuntimeReport {
    /// The report when no distribution was given.
    pub fn not_compared() -> Self {
        Self {
            compared: false,
            distribution: None,
            trust: None,
            bundle: None,
            bundle_certificates: None,
            certifi_version: None,
            ok: None,
            endpoints: Vec::new(),
            notes: vec![
                "the trust CEM's Python uses at run time was not compared: pass --dist DIR (the built distribution, or a VU's Python\\External folder) to check every endpoint against it too".into(),
            ],
        }
    }
}

/// An endpoint to compare, with the chain it presented or why none was captured.
pub(crate) struct Presented {
    /// `identity platform`, `imap` or `smtp`.
    pub role: &'static str,
    /// `host:port`.
    pub endpoint: String,
    /// The name TLS verifies.
    pub host: String,
    /// The chain, leaf first, or why there is none.
    pub chain: Result<Vec<CertificateDer<'static>>, String>,
}

/// Compares every endpoint: `here` is the verifier the mail check connected with.
pub(crate) fn compare(
    dist: &Distribution,
    here: &Arc<dyn ServerCertVerifier>,
    extra_given: bool,
    endpoints: Vec<Presented>,
) -> RuntimeReport {
    let system = verify::system_verifier();
    let runtime: Verifier = match (dist.trust, &dist.bundle) {
        (RuntimeTrust::System, _) => system.clone(),
        (RuntimeTrust::Certifi, Some((_, roots))) => verify::roots_verifier(roots),
        (RuntimeTrust::Certifi, None) => Err("the distribution has no certifi bundle".into()),
    };
    let here: Verifier = Ok(here.clone());
    let judged: Vec<RuntimeEndpoint> = endpoints
        .into_iter()
        .map(|p| judge(dist, &here, &system, &runtime, extra_given, p))
        .collect();
    let captured: Vec<&RuntimeEndpoint> = judged
        .iter()
        .filter(|e| e.kind != Comparison::NotCaptured)
        .collect();
    let ok = (!captured.is_empty()).then(|| captured.iter().all(|e| e.ok));
    let mut notes = dist.notes.clone();
    if dist.trust == RuntimeTrust::System {
        notes.push("the distribution uses the system certificate store (runtime_trust: system, truststore): it was checked against this machine's store; the CEM nodes' stores must hold the same roots".into());
    }
    RuntimeReport {
        compared: true,
        distribution: Some(dist.root.display().to_string()),
        trust: Some(dist.trust),
        bundle: dist.bundle.as_ref().map(|(p, _)| p.display().to_string()),
        bundle_certificates: dist.bundle.as_ref().map(|(_, c)| c.len()),
        certifi_version: dist.certifi_version.clone(),
        ok,
        endpoints: judged,
        notes,
    }
}

fn judge(
    dist: &Distribution,
    here_v: &Verifier,
    system_v: &Verifier,
    runtime_v: &Verifier,
    extra_given: bool,
    p: Presented,
) -> RuntimeEndpoint {
    let uncaptured = |why: String| RuntimeEndpoint {
        role: p.role,
        endpoint: p.endpoint.clone(),
        kind: Comparison::NotCaptured,
        ok: false,
        issuer: None,
        here: None,
        system: None,
        runtime: None,
        summary: format!("not compared: no certificate chain was captured ({why})"),
        fix: None,
    };
    let certs = match p.chain {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => return uncaptured("the server presented no certificate".into()),
        Err(why) => return uncaptured(why),
    };
    let host = match ServerName::try_from(p.host.clone()) {
        Ok(h) => h,
        Err(e) => return uncaptured(format!("{:?} cannot be verified by TLS: {e}", p.host)),
    };
    let chain = Chain::parse(&certs);
    let issuer = chain.top().map(|t| {
        if t.self_signed {
            t.name.clone()
        } else {
            t.issuer_name.clone()
        }
    });
    let ca = issuer.clone().unwrap_or_else(|| "its root".into());
    let here = TrustAnswer::of(here_v, &chain, &host);
    let system = TrustAnswer::of(system_v, &chain, &host);
    let runtime = TrustAnswer::of(runtime_v, &chain, &host);
    let via_ca_cert = here.ok && !system.ok && extra_given;
    let uses = match dist.trust {
        RuntimeTrust::Certifi => "certifi's bundle in the distribution".to_string(),
        RuntimeTrust::System => "the system certificate store (runtime_trust: system)".to_string(),
    };
    let (kind, summary, fix) = if !here.ok {
        (
            Comparison::RejectedHere,
            format!(
                "this machine does not trust {} either ({}); CEM's Python {} it",
                p.endpoint,
                here.message.as_deref().unwrap_or("refused"),
                if runtime.ok {
                    "would trust"
                } else {
                    "would not trust"
                }
            ),
            None,
        )
    } else if runtime.ok {
        (
            Comparison::Trusted,
            format!("CEM's Python trusts it too ({uses})"),
            None,
        )
    } else {
        let (summary, fix) = runtime_fix(dist, &p.endpoint, &ca, via_ca_cert, &runtime);
        (Comparison::RuntimeRejects, summary, Some(fix))
    };
    RuntimeEndpoint {
        role: p.role,
        endpoint: p.endpoint,
        kind,
        ok: runtime.ok,
        issuer,
        here: Some(here),
        system: Some(system),
        runtime: Some(runtime),
        summary,
        fix,
    }
}

/// What CEM's Python would say, and the fix, for a chain only this machine trusts.
pub(crate) fn runtime_fix(
    dist: &Distribution,
    endpoint: &str,
    ca: &str,
    via_ca_cert: bool,
    runtime: &TrustAnswer,
) -> (String, MailFix) {
    let why = runtime.message.as_deref().unwrap_or("it refuses the chain");
    let store_step = if via_ca_cert {
        format!(
            "\"{ca}\" is trusted here only through --ca-cert: install it into Cert:\\LocalMachine\\Root on every CEM node (Import-Certificate -FilePath <its PEM> -CertStoreLocation Cert:\\LocalMachine\\Root; extpy doctor {endpoint} --export DIR writes it)"
        )
    } else {
        format!(
            "\"{ca}\" is in this machine's store; it must be in Cert:\\LocalMachine\\Root of every CEM node too"
        )
    };
    match dist.trust {
        RuntimeTrust::Certifi => {
            let bundle = dist
                .bundle
                .as_ref()
                .map(|(p, _)| p.display().to_string())
                .unwrap_or_default();
            (
                format!(
                    "CEM would reject {endpoint}: its chain leads to \"{ca}\", which this machine trusts but certifi's bundle in the distribution does not hold ({why})"
                ),
                MailFix {
                    summary: "let CEM's Python use the Windows certificate store: runtime_trust: system in the manifest, then rebuild and lay out again".into(),
                    steps: vec![
                        format!("requests and msal in the External Python verify TLS against {bundle}, not against the Windows store; \"{ca}\" is not in it (a TLS-inspecting proxy's CA never is)"),
                        "add the line `runtime_trust: system` to the manifest (start from the shipped one: extpy help manifest) and pass it with --manifest FILE".into(),
                        "extpy build --manifest FILE DEST: it installs the pinned truststore wheel and Lib\\site-packages\\extpy-truststore.pth, which makes requests and msal use the Windows store (CPython 3.10 or later)".into(),
                        "extpy layout TOPOLOGY --manifest FILE (or extpy rollout): every ExternalPythonN VU gets the new build; then restart CEM".into(),
                        store_step,
                    ],
                },
            )
        }
        RuntimeTrust::System => (
            format!(
                "CEM would reject {endpoint}: the distribution uses the system certificate store (runtime_trust: system), and this machine's store does not trust \"{ca}\" ({why})"
            ),
            MailFix {
                summary: format!(
                    "install \"{ca}\" into Cert:\\LocalMachine\\Root on every CEM node"
                ),
                steps: vec![store_step],
            },
        ),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}
