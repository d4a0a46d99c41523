//! What this build of extpy is: version, commit, build date, target, the built-in manifest,
//! the TLS backend and the trust sources a download would use (`extpy version`).

use std::path::PathBuf;

use serde::Serialize;

use crate::app::config::Settings;
use crate::mechanism::net::trust::read_pem_certs;
use crate::model::manifest::Manifest;

/// The version of extpy (the first key of every `--json` document).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The build's identity and configuration.
#[derive(Debug, Clone, Serialize)]
pub struct BuildInfo {
    /// The crate version.
    pub version: &'static str,
    /// The git commit it was built from (`unknown` without git).
    pub commit: &'static str,
    /// The build date, `YYYY-MM-DD` (UTC).
    pub build_date: &'static str,
    /// `SOURCE_DATE_EPOCH` or `build time`.
    pub build_date_source: &'static str,
    /// The target triple.
    pub target: &'static str,
    /// The manifest built into the executable.
    pub builtin_manifest: ManifestId,
    /// How TLS is done.
    pub tls: Tls,
    /// Where trusted certificate authorities come from, in the order they are consulted.
    pub trust_sources: Vec<TrustSource>,
}

/// A manifest's name and digest.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestId {
    /// Its `name:`.
    pub name: String,
    /// The sha256 of its text.
    pub sha256: String,
}

/// The TLS stack.
#[derive(Debug, Clone, Serialize)]
pub struct Tls {
    /// The library and its version.
    pub backend: String,
    /// The cryptography provider.
    pub provider: &'static str,
    /// Who verifies a server's certificate for downloads.
    pub verifier: &'static str,
}

/// Where trusted certificate authorities come from.
#[derive(Debug, Clone, Serialize)]
pub struct TrustSource {
    /// `system`, `extra` or `mozilla`.
    pub source: &'static str,
    /// What it is, in words.
    pub label: String,
    /// The file, for extra roots.
    pub path: Option<PathBuf>,
    /// Certificates it holds, where known without asking the operating system.
    pub certificates: Option<usize>,
    /// Why the file cannot be used, when it cannot.
    pub error: Option<String>,
    /// Used for downloads (false: only the doctor compares against it).
    pub downloads: bool,
}

impl BuildInfo {
    /// This build, with the trust sources `settings` configures.
    pub fn collect(settings: &Settings) -> Result<Self, crate::model::manifest::InputError> {
        let manifest = Manifest::builtin()?;
        let system = if cfg!(windows) {
            "the Windows certificate store, through the CryptoAPI chain engine"
        } else if cfg!(target_os = "macos") {
            "the macOS keychain, through the Security framework"
        } else {
            "the operating system's CA bundle (as OpenSSL finds it, SSL_CERT_FILE and SSL_CERT_DIR honoured)"
        };
        let mut trust_sources = vec![TrustSource {
            source: "system",
            label: system.to_string(),
            path: None,
            certificates: None,
            error: None,
            downloads: true,
        }];
        let extra = settings
            .ca_certs
            .iter()
            .map(|p| (p.clone(), "--ca-cert"))
            .chain(
                settings
                    .ssl_cert_file
                    .iter()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(|p| (p.clone(), "SSL_CERT_FILE")),
            );
        for (path, from) in extra {
            let read = read_pem_certs(&path);
            trust_sources.push(TrustSource {
                source: "extra",
                label: format!("extra roots from {from}"),
                certificates: read.as_ref().ok().map(Vec::len),
                error: read.err().map(|e| e.to_string()),
                path: Some(path),
                downloads: true,
            });
        }
        trust_sources.push(TrustSource {
            source: "mozilla",
            label: format!(
                "the Mozilla roots built in (webpki-roots {}), which the doctor compares against to tell a public CA from a private one",
                env!("EXTPY_WEBPKI_ROOTS_VERSION")
            ),
            path: None,
            certificates: Some(webpki_roots::TLS_SERVER_ROOTS.len()),
            error: None,
            downloads: false,
        });
        Ok(Self {
            version: VERSION,
            commit: env!("EXTPY_COMMIT"),
            build_date: env!("EXTPY_BUILD_DATE"),
            build_date_source: env!("EXTPY_BUILD_DATE_SOURCE"),
            target: env!("EXTPY_TARGET"),
            builtin_manifest: ManifestId {
                name: manifest.name.clone(),
                sha256: manifest.digest.to_string(),
            },
            tls: Tls {
                backend: format!("rustls {}", env!("EXTPY_RUSTLS_VERSION")),
                provider: "ring",
                verifier: "rustls-platform-verifier (the operating system's verifier), plus the extra roots",
            },
            trust_sources,
        })
    }

    /// The human report (ASCII).
    pub fn render(&self) -> String {
        let mut out = format!("extpy {}\n", self.version);
        let mut line = |k: &str, v: &str| out.push_str(&format!("  {k:<19}{v}\n"));
        line("commit", self.commit);
        line(
            "build date",
            &format!("{} ({})", self.build_date, self.build_date_source),
        );
        line("target", self.target);
        line(
            "built-in manifest",
            &format!(
                "{} sha256 {}",
                self.builtin_manifest.name, self.builtin_manifest.sha256
            ),
        );
        line(
            "TLS",
            &format!("{} ({} provider)", self.tls.backend, self.tls.provider),
        );
        line("verifier", self.tls.verifier);
        for (i, t) in self.trust_sources.iter().enumerate() {
            let mut v = t.label.clone();
            if let Some(p) = &t.path {
                v.push_str(&format!(": {}", p.display()));
            }
            if let Some(n) = t.certificates {
                v.push_str(&format!(" ({n} certificates)"));
            }
            if let Some(e) = &t.error {
                v.push_str(&format!(" (UNUSABLE: {e})"));
            }
            line(if i == 0 { "trust" } else { "" }, &v);
        }
        out
    }
}
