//! The fix for a verdict: which certificate to trust (exported as PEM and DER `.cer` with
//! `--export DIR`), the exact commands that install it on Windows and Linux, and the
//! per-run alternative `--ca-cert`; or, for causes a certificate does not fix, what to do.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;
use serde::Serialize;

use crate::mechanism::digest::Sha256Digest;

use super::chain::{CertInfo, Chain};
use super::target::Target;
use super::verdict::Verdict;
use super::verify::{ExtraAnchors, TrustSources};

/// What to do about a host.
#[derive(Debug, Clone, Serialize)]
pub struct Fix {
    /// The fix in one or two sentences.
    pub summary: String,
    /// The certificate to trust, when trusting one is the fix.
    pub certificate: Option<TrustCert>,
    /// Commands, in the order to run them.
    pub commands: Vec<FixCommand>,
    /// Further advice.
    pub notes: Vec<String>,
}

/// The certificate to trust.
#[derive(Debug, Clone, Serialize)]
pub struct TrustCert {
    /// Its short name.
    pub name: String,
    /// Its subject.
    pub subject: String,
    /// SHA-256 of its DER bytes, lowercase hex: compare before trusting it.
    pub sha256: String,
    /// `root`, `intermediate` (the server did not send its root) or `self_signed`.
    pub role: &'static str,
    /// `presented` (sent by the server) or `mozilla` (from the public root set).
    pub origin: &'static str,
    /// The file name without extension that `--export` writes.
    pub file_stem: String,
    /// The PEM file written by `--export`.
    pub pem: Option<PathBuf>,
    /// The DER `.cer` file written by `--export`.
    pub cer: Option<PathBuf>,
    /// Why the files could not be written.
    pub export_error: Option<String>,
    #[serde(skip)]
    pub(crate) der: CertificateDer<'static>,
}

/// One command of a fix.
#[derive(Debug, Clone, Serialize)]
pub struct FixCommand {
    /// `windows-powershell`, `windows-cmd`, `linux-debian`, `linux-rhel` or `extpy`.
    pub platform: &'static str,
    /// Where to run it, for people.
    pub label: &'static str,
    /// The command line.
    pub command: String,
}

/// How the advice is phrased for the command that asked.
#[derive(Debug, Clone)]
pub struct Advice {
    /// The command named in `extpy … --ca-cert` (`build`, `fetch`).
    pub command: String,
    /// Where `--export` writes, if asked.
    pub export: Option<PathBuf>,
    /// True when a failed download asked (no `--export` there: point at `extpy doctor`).
    pub after_failure: bool,
}

/// Works out the fix for `verdict`, exporting the certificate when asked.
pub(crate) fn fix_for(
    verdict: &Verdict,
    target: &Target,
    chain: &Chain,
    sources: &TrustSources,
    advice: &Advice,
) -> Option<Fix> {
    if verdict.ok() {
        return None;
    }
    if verdict.wants_trust() {
        return Some(trust_fix(verdict, target, chain, sources, advice));
    }
    Some(other_fix(verdict, target, advice, sources.anchors()))
}

fn trust_fix(
    verdict: &Verdict,
    target: &Target,
    chain: &Chain,
    sources: &TrustSources,
    advice: &Advice,
) -> Fix {
    let mut notes = Vec::new();
    let Some(mut cert) = cert_to_trust(verdict, chain, sources) else {
        let name = match verdict {
            Verdict::RootNotTrusted { root, .. } => root.clone(),
            Verdict::TlsInspection { ca, .. } => ca.clone(),
            _ => "its CA".into(),
        };
        let stem = file_stem(&name);
        notes.push(format!(
            "The server sent only its own certificate, so extpy cannot export \"{name}\". Get that CA's certificate from whoever runs it (the network team for a TLS-inspecting proxy), save it as {stem}.cer / {stem}.pem, then run the commands above."
        ));
        return Fix {
            summary: format!(
                "trust \"{name}\" on this machine, or pass it to extpy with --ca-cert FILE"
            ),
            certificate: None,
            commands: install_commands(&stem, None, advice, true, true),
            notes,
        };
    };
    if let Some(dir) = &advice.export {
        match export(dir, &cert.file_stem, &cert.der) {
            Ok((pem, cer)) => {
                cert.file_stem = file_name_stem(&pem);
                cert.pem = Some(pem);
                cert.cer = Some(cer);
            }
            Err(e) => cert.export_error = Some(e),
        }
    }
    let exported = cert.pem.clone().zip(cert.cer.clone());
    if exported.is_none() && advice.after_failure {
        notes.push(format!(
            "Run `extpy doctor --export DIR {}` to write {1}.pem and {1}.cer into DIR (the commands name that folder DIR).",
            target.url, cert.file_stem
        ));
    } else if exported.is_none() {
        notes.push(format!(
            "Add --export DIR to write {0}.pem and {0}.cer into DIR (the commands name that folder DIR).",
            cert.file_stem
        ));
    } else if cfg!(windows) {
        notes.push(format!(
            "For a Linux machine, copy {}.pem there and run the Linux commands in that folder.",
            cert.file_stem
        ));
    } else {
        notes.push(format!(
            "For a Windows machine, copy {}.cer there and run the Windows commands in that folder, in an administrator PowerShell or cmd.",
            cert.file_stem
        ));
    }
    // On Windows --ca-cert anchors only at a root; the machine's Root store takes any CA.
    let ca_cert_works = cert.role != "intermediate" || sources.anchors() == ExtraAnchors::AnyCa;
    if cert.role == "intermediate" && ca_cert_works {
        notes.push(format!(
            "The server did not send its root, so this is the highest certificate it sent, the intermediate \"{}\"; trusting it is enough for extpy, but its root is the better thing to install.",
            cert.name
        ));
    } else if cert.role == "intermediate" {
        notes.push(format!(
            "The server did not send its root, so this is the highest certificate it sent, the intermediate \"{}\". On Windows extpy's --ca-cert takes roots only, so it does not help here: install \"{0}\" into Cert:\\LocalMachine\\Root as above (Windows anchors at any CA there), or get its root and install or pass that.",
            cert.name
        ));
    }
    notes.push(format!(
        "Check the SHA-256 fingerprint {} with whoever runs this CA before trusting it.",
        cert.sha256
    ));
    let what = match verdict {
        Verdict::SelfSigned { .. } => "this self-signed certificate",
        Verdict::TlsInspection { .. } => "the inspecting CA",
        _ => "this root",
    };
    let summary = if ca_cert_works {
        format!(
            "trust {what} \"{}\" on this machine (Windows or Linux below), or pass it to extpy with --ca-cert FILE",
            cert.name
        )
    } else {
        format!(
            "trust {what} \"{}\" on this machine: install it into Cert:\\LocalMachine\\Root (below)",
            cert.name
        )
    };
    let commands = install_commands(&cert.file_stem, exported, advice, true, ca_cert_works);
    Fix {
        summary,
        certificate: Some(cert),
        commands,
        notes,
    }
}

/// The certificate whose trust fixes the verdict: the public root from the Mozilla set, the
/// presented root, or else the highest certificate the server sent above its leaf.
fn cert_to_trust(verdict: &Verdict, chain: &Chain, sources: &TrustSources) -> Option<TrustCert> {
    let make = |c: &CertInfo, role, origin| TrustCert {
        name: c.name.clone(),
        subject: c.subject.clone(),
        sha256: c.sha256.clone(),
        role,
        origin,
        file_stem: file_stem(&c.name),
        pem: None,
        cer: None,
        export_error: None,
        der: c.der().clone(),
    };
    let top = chain.top()?;
    match verdict {
        Verdict::SelfSigned { .. } => chain.leaf().map(|l| make(l, "self_signed", "presented")),
        Verdict::RootNotTrusted { public: true, .. } => {
            if chain.root_presented() {
                return Some(make(top, "root", "presented"));
            }
            let root = sources.public_root(&top.issuer_raw)?;
            let info = CertInfo::parse(0, &root.der);
            Some(make(&info, "root", "mozilla"))
        }
        _ if chain.root_presented() => Some(make(top, "root", "presented")),
        _ if chain.path.len() > 1 => Some(make(top, "intermediate", "presented")),
        _ => None,
    }
}

fn other_fix(verdict: &Verdict, target: &Target, advice: &Advice, anchors: ExtraAnchors) -> Fix {
    let host = &target.host;
    let port = target.port;
    let mut commands = Vec::new();
    let mut notes = Vec::new();
    let summary = match verdict {
        Verdict::MissingIntermediate { issuer, url } => {
            let stem = file_stem(issuer);
            commands = intermediate_commands(&stem, url, advice, anchors);
            notes.push(
                "The URL is the one the server's certificate names for its issuer; check the fingerprint of what you download with the server's administrators before installing it."
                    .to_string(),
            );
            format!(
                "the server's administrators must configure it to send its full chain (its certificate followed by \"{issuer}\"); until then, install \"{issuer}\" from {url} on this machine"
            )
        }
        Verdict::Expired { clock_hint, .. } | Verdict::NotYetValid { clock_hint, .. } => {
            if clock_hint.is_some() {
                "correct this machine's clock if it is wrong (see above); otherwise the server's administrators must install a currently valid certificate".into()
            } else {
                "the server's administrators must install a currently valid certificate; nothing on this machine fixes this".into()
            }
        }
        Verdict::NameMismatch { names, .. } => {
            notes.push("If a proxy or a captive portal answered instead of the server, check HTTPS_PROXY and NO_PROXY.".into());
            if names.is_empty() {
                format!("have the certificate reissued with {host} as a subject alternative name")
            } else {
                format!(
                    "connect with a name the certificate covers ({}), or have it reissued to include {host}",
                    names.join(", ")
                )
            }
        }
        Verdict::CertificateRejected { .. } => {
            "report this to the server's administrators: the certificate must be replaced".into()
        }
        Verdict::Revoked { .. } => {
            notes.push("Do not work around a revocation (no --ca-cert, no other root): the issuer withdrew the certificate.".into());
            "the server's administrators must replace the revoked certificate; nothing on this machine should fix this".into()
        }
        Verdict::Distrusted { root, .. } => {
            commands.push(FixCommand {
                platform: "windows-powershell",
                label: "Windows",
                command: "Get-ChildItem Cert:\\LocalMachine\\Disallowed, Cert:\\CurrentUser\\Disallowed | Format-List Subject, Thumbprint, NotAfter".into(),
            });
            notes.push("An administrator, a Group Policy or Windows Update put it there, usually on purpose: ask before removing it (Remove-Item Cert:\\LocalMachine\\Disallowed\\<Thumbprint>).".into());
            format!(
                "find out why this machine distrusts the chain to \"{root}\" (its Disallowed store); installing the root again does not help"
            )
        }
        Verdict::RestrictedByPolicy { root, .. } => {
            commands.push(FixCommand {
                platform: "windows-powershell",
                label: "Windows",
                command: "certlm.msc".into(),
            });
            notes.push(format!("In certlm.msc: Trusted Root Certification Authorities, Certificates, \"{root}\", Properties: \"Enable all purposes for this certificate\" or at least \"Server Authentication\". If a Group Policy sets it, its administrators must change it there."));
            format!(
                "allow \"{root}\" to vouch for TLS servers (Server Authentication) on this machine, or have the Group Policy that restricts it changed"
            )
        }
        Verdict::RevocationUnknown { .. } => {
            commands.push(FixCommand {
                platform: "windows-powershell",
                label: "Windows",
                command: "netsh winhttp show proxy".into(),
            });
            notes.push("Windows fetches CRLs and OCSP answers through the WinHTTP proxy (netsh winhttp), not the user's browser settings.".into());
            "let this machine reach the CRL and OCSP addresses named in the certificates (directly or through the WinHTTP proxy), then run again".into()
        }
        Verdict::HandshakeFailed { .. } => {
            notes.push(format!("Compare with `curl -v https://{}/` or `openssl s_client -connect {}` from this machine.", target.authority(), target.authority()));
            "check that this is the server's TLS port and that it accepts TLS 1.2 or 1.3; a device in between that breaks TLS must let it through".into()
        }
        Verdict::NotTls { .. } => format!(
            "use the port where {host} speaks TLS (usually 443), or http:// if this port is meant to be plain"
        ),
        Verdict::DnsFailed { name, .. } => {
            commands.push(FixCommand {
                platform: "windows-powershell",
                label: "Windows",
                command: format!("Resolve-DnsName {name}"),
            });
            commands.push(FixCommand {
                platform: "linux-debian",
                label: "Linux",
                command: format!("getent hosts {name}"),
            });
            notes.push(format!(
                "--resolve {host}:{port}:ADDR makes extpy doctor test one address without DNS."
            ));
            "check the name and this machine's DNS settings; if this network reaches the internet only through a proxy, set HTTPS_PROXY".into()
        }
        Verdict::ConnectFailed { .. } => {
            commands.push(FixCommand {
                platform: "windows-powershell",
                label: "Windows",
                command: format!("Test-NetConnection {host} -Port {port}"),
            });
            commands.push(FixCommand {
                platform: "linux-debian",
                label: "Linux",
                command: format!("nc -vz {host} {port}"),
            });
            "check that the server runs and listens on this port, and that firewalls let this machine reach it; if the internet is reachable only through a proxy, set HTTPS_PROXY".into()
        }
        Verdict::ProxyFailed { .. } => format!(
            "check the proxy setting (HTTPS_PROXY); ask the proxy's administrators to allow CONNECT to {}, or, if {host} can be reached directly, list it in NO_PROXY",
            target.authority()
        ),
        Verdict::ProbeFailed { .. } => "TLS is fine; see the HTTP error above".into(),
        _ => String::new(),
    };
    Fix {
        summary,
        certificate: None,
        commands,
        notes,
    }
}

/// The commands that install a trusted root (`exported`: the files written, if any).
fn install_commands(
    stem: &str,
    exported: Option<(PathBuf, PathBuf)>,
    advice: &Advice,
    root: bool,
    with_extpy: bool,
) -> Vec<FixCommand> {
    let (win_cer, linux_pem, extpy_pem) = paths(stem, exported.as_ref());
    let store = if root { "Root" } else { "CA" };
    let mut commands = vec![
        FixCommand {
            platform: "windows-powershell",
            label: "Windows (PowerShell as administrator)",
            command: format!(
                "Import-Certificate -FilePath \"{win_cer}\" -CertStoreLocation Cert:\\LocalMachine\\{store}"
            ),
        },
        FixCommand {
            platform: "windows-cmd",
            label: "Windows (cmd as administrator)",
            command: format!("certutil -addstore -f {store} \"{win_cer}\""),
        },
        FixCommand {
            platform: "linux-debian",
            label: "Linux (Debian, Ubuntu, SUSE)",
            command: format!(
                "sudo cp {} /usr/local/share/ca-certificates/{stem}.crt && sudo update-ca-certificates",
                sh_quote(&linux_pem)
            ),
        },
        FixCommand {
            platform: "linux-rhel",
            label: "Linux (RHEL, Fedora)",
            command: format!(
                "sudo cp {} /etc/pki/ca-trust/source/anchors/{stem}.pem && sudo update-ca-trust",
                sh_quote(&linux_pem)
            ),
        },
    ];
    if with_extpy {
        commands.push(FixCommand {
            platform: "extpy",
            label: "or, for extpy only",
            command: format!(
                "extpy {} --ca-cert {}",
                advice.command,
                quote_here(&extpy_pem)
            ),
        });
    }
    commands
}

/// The commands that install a missing intermediate; `--ca-cert` only where it anchors
/// at an intermediate (not on Windows).
fn intermediate_commands(
    stem: &str,
    url: &str,
    advice: &Advice,
    anchors: ExtraAnchors,
) -> Vec<FixCommand> {
    let mut commands = vec![
        FixCommand {
            platform: "windows-powershell",
            label: "Windows (PowerShell as administrator)",
            command: format!(
                "Invoke-WebRequest -Uri \"{url}\" -OutFile \"{stem}.cer\"; Import-Certificate -FilePath \"{stem}.cer\" -CertStoreLocation Cert:\\LocalMachine\\CA"
            ),
        },
        FixCommand {
            platform: "windows-cmd",
            label: "Windows (cmd as administrator, after downloading it)",
            command: format!("certutil -addstore -f CA \"{stem}.cer\""),
        },
        FixCommand {
            platform: "linux-debian",
            label: "Linux (Debian, Ubuntu, SUSE)",
            command: format!(
                "curl -fsSL -o {stem}.cer '{url}' && openssl x509 -inform der -in {stem}.cer -out {stem}.pem && sudo cp {stem}.pem /usr/local/share/ca-certificates/{stem}.crt && sudo update-ca-certificates"
            ),
        },
    ];
    if anchors == ExtraAnchors::AnyCa {
        commands.push(FixCommand {
            platform: "extpy",
            label: "or, for extpy only (with the PEM from above; not on Windows, where --ca-cert takes roots only)",
            command: format!("extpy {} --ca-cert {stem}.pem", advice.command),
        });
    }
    commands
}

/// The certificate paths as each command shows them: the real path on the OS this runs on,
/// the bare file name for the other OS (the file is copied there), and `DIR` before export.
fn paths(stem: &str, exported: Option<&(PathBuf, PathBuf)>) -> (String, String, String) {
    match exported {
        Some((pem, cer)) => {
            let (pem, cer) = (absolute(pem), absolute(cer));
            if cfg!(windows) {
                (cer.clone(), format!("{stem}.pem"), pem)
            } else {
                (format!("{stem}.cer"), pem.clone(), pem)
            }
        }
        None => {
            let dir_pem = if cfg!(windows) {
                format!("DIR\\{stem}.pem")
            } else {
                format!("DIR/{stem}.pem")
            };
            (
                format!("DIR\\{stem}.cer"),
                format!("DIR/{stem}.pem"),
                dir_pem,
            )
        }
    }
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// Quotes a path for the shell of the OS this runs on.
fn quote_here(s: &str) -> String {
    if cfg!(windows) {
        if s.contains(' ') {
            format!("\"{s}\"")
        } else {
            s.to_string()
        }
    } else {
        sh_quote(s)
    }
}

/// Quotes for a POSIX shell when needed.
fn sh_quote(s: &str) -> String {
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@,%".contains(c));
    if safe && !s.is_empty() {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A file name stem from a CA's name: letters, digits, `-`, `_` and `.`, other runs become
/// `-`; never empty, never a name Windows reserves.
pub(crate) fn file_stem(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out
        .trim_matches(|c| c == '-' || c == '.')
        .chars()
        .take(64)
        .collect();
    out = out.trim_end_matches(['-', '.']).to_string();
    if out.is_empty() {
        return "certificate".into();
    }
    const RESERVED: &[&str] = &[
        "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
        "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
    ];
    let base = out.split('.').next().unwrap_or("").to_ascii_lowercase();
    if RESERVED.contains(&base.as_str()) {
        out.push_str("-ca");
    }
    out
}

fn file_name_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes `<stem>.pem` and `<stem>.cer` into `dir`; a different certificate already there
/// under that name is kept, and this one gets its fingerprint appended.
pub(crate) fn export(
    dir: &Path,
    stem: &str,
    der: &CertificateDer<'static>,
) -> Result<(PathBuf, PathBuf), String> {
    let pem = pem_text(der);
    let taken = |p: &Path| std::fs::read(p).is_ok_and(|b| b != pem.as_bytes());
    let mut stem = stem.to_string();
    if taken(&dir.join(format!("{stem}.pem"))) {
        stem = format!("{stem}-{}", &Sha256Digest::of(der.as_ref()).to_hex()[..12]);
    }
    let pem_path = dir.join(format!("{stem}.pem"));
    let cer_path = dir.join(format!("{stem}.cer"));
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the folder {}: {e}", dir.display()))?;
    write_beside(&pem_path, pem.as_bytes())?;
    write_beside(&cer_path, der.as_ref())?;
    Ok((pem_path, cer_path))
}

/// Writes a sibling temporary file and renames it into place.
fn write_beside(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.extpy-tmp"));
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })
}

/// A certificate as PEM text, 64 columns.
pub(crate) fn pem_text(der: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Reads back one PEM certificate.
#[cfg(test)]
fn der_of_pem(pem: &[u8]) -> Option<CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::doctor::verdict::{Facts, classify};
    use crate::job::doctor::verify::Source;
    use crate::mechanism::net::ExtraRoots;
    use rustls::pki_types::ServerName;
    use support::pki::Ca as TestCa;

    fn build_advice() -> Advice {
        Advice {
            command: "build".into(),
            export: None,
            after_failure: false,
        }
    }

    #[test]
    fn a_missing_intermediate_is_offered_to_ca_cert_only_where_it_anchors() {
        let target = Target::parse("www.example.com").unwrap();
        let advice = build_advice();
        let verdict = Verdict::MissingIntermediate {
            issuer: "Issuing CA 2".into(),
            url: "http://pki.example.com/ca2.cer".into(),
        };
        let ca_cert = |anchors| {
            other_fix(&verdict, &target, &advice, anchors)
                .commands
                .iter()
                .any(|c| c.command.contains("--ca-cert"))
        };
        assert!(ca_cert(ExtraAnchors::AnyCa));
        assert!(!ca_cert(ExtraAnchors::RootsOnly));
    }

    #[test]
    fn refusals_of_this_machine_get_their_own_fix_and_never_a_root_to_install() {
        let target = Target::parse("www.example.com").unwrap();
        let advice = build_advice();
        let root = "Public Root R1".to_string();
        let cases = [
            (
                Verdict::Revoked {
                    subject: "www.example.com".into(),
                },
                "replace the revoked certificate",
            ),
            (
                Verdict::Distrusted {
                    root: root.clone(),
                    reason: String::new(),
                },
                "Disallowed",
            ),
            (
                Verdict::RestrictedByPolicy {
                    root: root.clone(),
                    reason: String::new(),
                },
                "Server Authentication",
            ),
            (
                Verdict::RevocationUnknown {
                    reason: String::new(),
                },
                "CRL and OCSP",
            ),
        ];
        for (verdict, words) in cases {
            let fix = other_fix(&verdict, &target, &advice, ExtraAnchors::current());
            let text = format!("{} {:?} {:?}", fix.summary, fix.commands, fix.notes);
            assert!(text.contains(words), "{verdict:?}: {text}");
            assert!(fix.certificate.is_none());
            assert!(!fix.summary.contains("--ca-cert"), "{}", fix.summary);
            assert!(!fix.summary.contains("trust this root"), "{}", fix.summary);
        }
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("extpy test root CA"), "extpy-test-root-CA");
        assert_eq!(file_stem("Zscaler Root CA / 2"), "Zscaler-Root-CA-2");
        assert_eq!(file_stem("..\\..\\evil"), "evil");
        assert_eq!(file_stem("  "), "certificate");
        assert_eq!(file_stem("CON"), "CON-ca");
        assert_eq!(file_stem("nul.x"), "nul.x-ca");
        assert_eq!(file_stem("Ünïcode Ç A"), "n-code-A");
        assert!(file_stem(&"x".repeat(200)).len() <= 64);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("/tmp/roots/a.pem"), "/tmp/roots/a.pem");
        assert_eq!(sh_quote("/tmp/my roots/a.pem"), "'/tmp/my roots/a.pem'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn export_writes_pem_and_der_and_never_overwrites_another_cert() {
        let dir = tempfile::tempdir().unwrap();
        let a = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let b = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x02]);
        let (pem, cer) = export(dir.path(), "ca", &a).unwrap();
        assert_eq!(std::fs::read(&cer).unwrap(), a.as_ref());
        let back = der_of_pem(&std::fs::read(&pem).unwrap()).unwrap();
        assert_eq!(back.as_ref(), a.as_ref());
        let again = export(dir.path(), "ca", &a).unwrap();
        assert_eq!(again.0, pem, "the same certificate keeps its name");
        let (other, _) = export(dir.path(), "ca", &b).unwrap();
        assert_ne!(other, pem);
        assert!(
            other
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("ca-")
        );
    }

    /// A TLS-inspecting proxy's issuing CA (an intermediate) given with --ca-cert: Linux
    /// downloads anchor at it, Windows downloads do not, and the doctor says the same.
    #[test]
    #[cfg_attr(
        windows,
        ignore = "the OS-store check here runs through crypt32, which Wine answers with a revocation error instead of an unknown root; the Linux run covers both anchor policies"
    )]
    fn an_intermediate_given_with_ca_cert_counts_only_where_downloads_use_it() {
        let root = TestCa::root("Proxy Root CA");
        let inter = root.intermediate("Proxy Issuing CA");
        let certs = [
            inter.leaf_with(&["files.example.com"], |_| {}).der,
            inter.der.clone(),
        ];
        let chain = Chain::parse(&certs);
        let host = ServerName::try_from("files.example.com").unwrap();
        let extra = ExtraRoots {
            files: vec!["issuing.pem".into()],
            certs: vec![inter.der.clone()],
        };
        let verdict_under = |anchors| {
            let sources = TrustSources::with_anchors(&extra, anchors);
            let checks = sources.check(&chain, &host);
            let verdict = classify(&Facts {
                host: "files.example.com",
                chain: &chain,
                checks: &checks,
                name_covered: true,
                top_issuer_known: false,
                public_root: None,
                now: 1_800_000_000,
                skew: None,
            });
            let target = Target::parse("files.example.com").unwrap();
            let advice = Advice {
                command: "build".into(),
                export: None,
                after_failure: false,
            };
            let fix = fix_for(&verdict, &target, &chain, &sources, &advice);
            (checks, verdict, fix)
        };

        let (checks, verdict, fix) = verdict_under(ExtraAnchors::AnyCa);
        assert!(checks.iter().any(|c| c.source == Source::Extra && c.ok));
        assert!(verdict.ok(), "{verdict:?}");
        assert!(fix.is_none());

        let (checks, verdict, fix) = verdict_under(ExtraAnchors::RootsOnly);
        let extra = checks.iter().find(|c| c.source == Source::Extra).unwrap();
        assert!(!extra.ok);
        let message = extra.message.clone().unwrap();
        assert!(
            message.contains("\"Proxy Issuing CA\" is an intermediate CA")
                && message.contains("Cert:\\LocalMachine\\Root"),
            "{message}"
        );
        assert!(!verdict.ok(), "{verdict:?}");
        let fix = fix.unwrap();
        let text = format!("{} {:?} {:?}", fix.summary, fix.commands, fix.notes);
        assert!(
            !fix.commands.iter().any(|c| c.command.contains("--ca-cert")),
            "{text}"
        );
        assert!(!fix.summary.contains("--ca-cert"), "{text}");
        assert!(fix.summary.contains("Cert:\\LocalMachine\\Root"), "{text}");
        assert!(
            fix.commands
                .iter()
                .any(|c| c.command.contains("Cert:\\LocalMachine\\Root")),
            "{text}"
        );

        // A root given with --ca-cert works on both.
        let extra = ExtraRoots {
            files: vec!["root.pem".into()],
            certs: vec![root.der.clone()],
        };
        for anchors in [ExtraAnchors::AnyCa, ExtraAnchors::RootsOnly] {
            let sources = TrustSources::with_anchors(&extra, anchors);
            let checks = sources.check(&chain, &host);
            assert!(
                checks.iter().any(|c| c.source == Source::Extra && c.ok),
                "{anchors:?}"
            );
        }
    }
}
