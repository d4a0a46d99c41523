//! The verdict: from what was observed (the chain, each trust source's answer, the host
//! name, the clock) to one cause in plain words. Pure data in, data out.

use serde::Serialize;

use crate::mechanism::net::TlsProblem;

use super::chain::{Chain, rfc3339};
use super::verify::{Source, TrustCheck};

/// The one cause that decides a host's fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// The chain verifies against this machine's store or the extra roots extpy uses.
    Trusted {
        /// `system` or `extra`.
        by: Source,
    },
    /// An `http://` target: reachable, nothing to verify.
    PlainHttp,
    /// The chain ends in a root this machine's store lacks.
    RootNotTrusted {
        /// The root (or the topmost issuer when the server did not send the root).
        root: String,
        /// True when the root is in the Mozilla set (browsers trust it).
        public: bool,
        /// True when the server sent that root.
        presented: bool,
    },
    /// A public-looking name served with a chain no public root set knows.
    TlsInspection {
        /// The CA that signed it (the root, or the topmost issuer).
        ca: String,
        /// True when the server sent that CA's certificate.
        presented: bool,
        /// A known inspecting product named in the CA, if any.
        product: Option<String>,
    },
    /// The leaf's issuer was not sent and no trust source knows it.
    MissingIntermediate {
        /// The missing issuer.
        issuer: String,
        /// Where the certificate says it can be downloaded (AIA caIssuers).
        url: String,
    },
    /// A certificate on the path has expired.
    Expired {
        /// Whose certificate.
        subject: String,
        /// Its end of validity (RFC 3339).
        not_after: String,
        /// A hint that this machine's clock, not the certificate, may be wrong.
        clock_hint: Option<String>,
    },
    /// A certificate on the path is not valid yet.
    NotYetValid {
        /// Whose certificate.
        subject: String,
        /// Its start of validity (RFC 3339).
        not_before: String,
        /// A hint that this machine's clock may be wrong.
        clock_hint: Option<String>,
    },
    /// The certificate does not cover the host name.
    NameMismatch {
        /// The name asked for.
        host: String,
        /// The names the certificate covers.
        names: Vec<String>,
    },
    /// The leaf is its own issuer.
    SelfSigned {
        /// Its subject.
        subject: String,
    },
    /// This machine says a certificate on the path has been revoked.
    Revoked {
        /// Whose certificate (the leaf when the refusal does not say).
        subject: String,
    },
    /// This machine explicitly distrusts a certificate on the path (on Windows: it is in the
    /// Disallowed store).
    Distrusted {
        /// The root the chain leads to.
        root: String,
        /// The refusal in the system's words.
        reason: String,
    },
    /// This machine trusts the root, but a policy restricts what it may be used for.
    RestrictedByPolicy {
        /// The root the chain leads to.
        root: String,
        /// The refusal in the system's words.
        reason: String,
    },
    /// This machine could not learn whether a certificate is revoked (CRL or OCSP servers
    /// unreachable) and refuses for that.
    RevocationUnknown {
        /// The refusal in the system's words.
        reason: String,
    },
    /// Rejected for another reason (bad signature, wrong key usage, revoked...).
    CertificateRejected {
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed (alert, no common protocol or cipher, closed).
    HandshakeFailed {
        /// Why.
        reason: String,
    },
    /// The server answered, but not with TLS.
    NotTls {
        /// Its first line, when it answered in plain HTTP.
        answer: Option<String>,
    },
    /// The host name does not resolve.
    DnsFailed {
        /// The name.
        name: String,
        /// The resolver's words.
        error: String,
    },
    /// No TCP connection.
    ConnectFailed {
        /// The address tried last.
        address: Option<String>,
        /// Why.
        error: String,
    },
    /// The proxy is unreachable or refused the tunnel.
    ProxyFailed {
        /// The proxy.
        proxy: String,
        /// Its answer to CONNECT, when it gave one.
        answer: Option<String>,
        /// Why, in words.
        error: String,
    },
    /// TLS is trusted, but the HTTP request got no answer.
    ProbeFailed {
        /// The URL requested.
        url: String,
        /// Why.
        error: String,
    },
}

impl Verdict {
    /// True when downloads from this host can work.
    pub fn ok(&self) -> bool {
        matches!(self, Verdict::Trusted { .. } | Verdict::PlainHttp)
    }

    /// True for the verdicts a trusted certificate fixes.
    pub fn wants_trust(&self) -> bool {
        matches!(
            self,
            Verdict::RootNotTrusted { .. }
                | Verdict::TlsInspection { .. }
                | Verdict::SelfSigned { .. }
        )
    }

    /// The verdict on one line.
    pub fn summary(&self) -> String {
        match self {
            Verdict::Trusted { by: Source::Extra } => "trusted (with --ca-cert)".into(),
            Verdict::Trusted { .. } => "trusted".into(),
            Verdict::PlainHttp => "reachable over plain http (no TLS, nothing to verify)".into(),
            Verdict::RootNotTrusted { root, .. } => {
                format!("root not trusted by this machine: \"{root}\"")
            }
            Verdict::TlsInspection { ca, .. } => {
                format!("TLS-inspecting proxy or private CA: \"{ca}\"")
            }
            Verdict::MissingIntermediate { issuer, .. } => {
                format!("missing intermediate: the server does not send \"{issuer}\"")
            }
            Verdict::Expired {
                subject, not_after, ..
            } => {
                format!("expired: \"{subject}\" was valid until {not_after}")
            }
            Verdict::NotYetValid {
                subject,
                not_before,
                ..
            } => format!("not yet valid: \"{subject}\" is valid from {not_before}"),
            Verdict::NameMismatch { host, names } if names.is_empty() => {
                format!("host name mismatch: the certificate names no host, not {host}")
            }
            Verdict::NameMismatch { host, names } => format!(
                "host name mismatch: the certificate is for {}, not {host}",
                names.join(", ")
            ),
            Verdict::SelfSigned { subject } => format!("self-signed certificate: \"{subject}\""),
            Verdict::Revoked { subject } => {
                format!("revoked: this machine says \"{subject}\" has been revoked")
            }
            Verdict::Distrusted { root, .. } => {
                format!("distrusted: this machine explicitly distrusts the chain to \"{root}\"")
            }
            Verdict::RestrictedByPolicy { root, .. } => format!(
                "restricted by policy: this machine does not let \"{root}\" vouch for TLS servers"
            ),
            Verdict::RevocationUnknown { .. } => {
                "revocation unknown: this machine could not check whether the certificate is revoked".into()
            }
            Verdict::CertificateRejected { reason } => format!("certificate rejected: {reason}"),
            Verdict::HandshakeFailed { reason } => format!("handshake failure: {reason}"),
            Verdict::NotTls { answer: Some(a) } => {
                format!(
                    "handshake failure: the server speaks no TLS on this port (it answered \"{a}\")"
                )
            }
            Verdict::NotTls { answer: None } => {
                "handshake failure: the server speaks no TLS on this port".into()
            }
            Verdict::DnsFailed { name, error } => format!("DNS failure: {name}: {error}"),
            Verdict::ConnectFailed { address, error } => match address {
                Some(a) => format!("connect failure: {a}: {error}"),
                None => format!("connect failure: {error}"),
            },
            Verdict::ProxyFailed { error, .. } => format!("proxy failure: {error}"),
            Verdict::ProbeFailed { error, .. } => {
                format!("trusted, but the HTTP request failed: {error}")
            }
        }
    }

    /// Why, in a few sentences.
    pub fn explanation(&self) -> String {
        match self {
            Verdict::Trusted { by: Source::System } => {
                "The chain the server presented verifies against this machine's trust store.".into()
            }
            Verdict::Trusted { by: Source::Extra } => "The chain verifies against the roots given with --ca-cert (or SSL_CERT_FILE), which extpy trusts besides this machine's store.".into(),
            Verdict::Trusted { .. } => "The chain verifies.".into(),
            Verdict::PlainHttp => "This source is plain http: nothing is encrypted or authenticated, so extpy relies on the pinned sha256 of every file alone.".into(),
            Verdict::RootNotTrusted { root, public: true, .. } => format!(
                "The chain ends in the public root \"{root}\". Browsers and the public internet trust it (it is in the Mozilla root set), but this machine's trust store lacks it: a hardened or minimal server image (AWS EC2 Windows images are the known case) whose roots are not filled in by Windows Update."
            ),
            Verdict::RootNotTrusted { root, public: false, presented } => format!(
                "The chain ends in \"{root}\", a certificate authority this machine does not trust and no public root set knows: a private CA (your organisation's own, or the server's){}. Trust it only if you know who runs it.",
                if *presented { "" } else { "; the server did not send that CA's certificate" }
            ),
            Verdict::TlsInspection { ca, product, .. } => format!(
                "The certificate for this public name was issued by \"{ca}\", which no public root set knows. Something between this machine and the internet re-signs TLS connections: a TLS-inspecting proxy or firewall{} (or the host uses a private CA). Either trust that CA's root, or ask the network team to exclude this host from inspection.",
                product.as_ref().map(|p| format!(" ({p})")).unwrap_or_default()
            ),
            Verdict::MissingIntermediate { issuer, url } => format!(
                "The server sends its certificate without the intermediate CA \"{issuer}\" that signed it, and no trust source here knows that CA. Browsers often fetch it on their own from {url}; extpy, curl and pip do not. The server should send its full chain."
            ),
            Verdict::Expired { clock_hint, .. } | Verdict::NotYetValid { clock_hint, .. } => {
                let base = if matches!(self, Verdict::Expired { .. }) {
                    "A certificate on the path has expired by this machine's clock."
                } else {
                    "A certificate on the path is not valid yet by this machine's clock."
                };
                match clock_hint {
                    Some(h) => format!("{base} {h}"),
                    None => base.into(),
                }
            }
            Verdict::NameMismatch { .. } => "The certificate does not cover the name extpy connected to: the name or address is not one the server serves, or something else (a proxy, a captive portal, a load balancer) answered.".into(),
            Verdict::SelfSigned { .. } => "The server presented a certificate that signs itself: no certificate authority vouches for it. Trust exactly this certificate only if you know the server.".into(),
            Verdict::Revoked { .. } => "This machine's certificate checks say a certificate on the path has been revoked by its issuer: it must not be trusted, whatever else trusts it. Installing a root does not change this.".into(),
            Verdict::Distrusted { reason, .. } => format!(
                "This machine's trust store has the chain's root, or a certificate on the path, on its list of explicitly distrusted certificates (on Windows the Disallowed store, filled by an administrator, a Group Policy or Windows Update): {reason}. Installing the root again does not change this."
            ),
            Verdict::RestrictedByPolicy { reason, .. } => format!(
                "This machine knows the root, but a policy limits it (its allowed purposes in the store, or a Group Policy), so it may not vouch for a TLS server: {reason}."
            ),
            Verdict::RevocationUnknown { reason } => format!(
                "This machine tries to check revocation (CRL or OCSP) for each certificate and could not reach the servers that answer, so it refuses the chain: {reason}."
            ),
            Verdict::CertificateRejected { .. } => "The chain is complete, but a certificate in it cannot be accepted.".into(),
            Verdict::HandshakeFailed { .. } => "The server and extpy could not agree on TLS. extpy offers TLS 1.3 and 1.2 with modern ciphers; a very old server or a device in between may refuse them.".into(),
            Verdict::NotTls { .. } => "Something listens on this port, but it does not speak TLS.".into(),
            Verdict::DnsFailed { .. } => "This machine cannot turn the host name into an address.".into(),
            Verdict::ConnectFailed { .. } => "The name resolved, but no TCP connection could be opened.".into(),
            Verdict::ProxyFailed { .. } => "The connection has to go through the proxy named by the environment, and the proxy did not open a tunnel to the host.".into(),
            Verdict::ProbeFailed { .. } => "TLS works, but the request for a real file got no HTTP answer.".into(),
        }
    }
}

/// What the verdict is decided from.
pub(crate) struct Facts<'a> {
    /// The host name (or IP address) connected to.
    pub host: &'a str,
    /// What the server presented.
    pub chain: &'a Chain,
    /// Each trust source's answer.
    pub checks: &'a [TrustCheck],
    /// True when the leaf covers the host name.
    pub name_covered: bool,
    /// True when the issuer above the topmost presented certificate is a root of the
    /// Mozilla set or of the extra roots.
    pub top_issuer_known: bool,
    /// The Mozilla root the chain leads to, when there is one.
    pub public_root: Option<String>,
    /// Now, in Unix seconds, by this machine's clock.
    pub now: i64,
    /// The server's clock minus this machine's, when an HTTP `Date` was seen.
    pub skew: Option<i64>,
}

/// Decides the verdict for a chain that was captured.
pub(crate) fn classify(f: &Facts<'_>) -> Verdict {
    let check = |s: Source| f.checks.iter().find(|c| c.source == s);
    if check(Source::System).is_some_and(|c| c.ok) {
        return Verdict::Trusted { by: Source::System };
    }
    if check(Source::Extra).is_some_and(|c| c.ok) {
        return Verdict::Trusted { by: Source::Extra };
    }
    let Some(leaf) = f.chain.leaf() else {
        return Verdict::CertificateRejected {
            reason: "the server presented no certificate".into(),
        };
    };
    if let Some(v) = dates(f) {
        return v;
    }
    if !f.name_covered {
        return Verdict::NameMismatch {
            host: f.host.to_string(),
            names: leaf.names.clone(),
        };
    }
    if f.chain.leaf_self_signed() {
        return Verdict::SelfSigned {
            subject: leaf.name.clone(),
        };
    }
    let Some(top) = f.chain.top() else {
        return Verdict::CertificateRejected {
            reason: "the server presented no certificate".into(),
        };
    };
    // Only an unknown issuer may lead to "install the root": a refusal of this machine's own
    // (revoked, distrusted, restricted) stands whatever the Mozilla set says.
    let root = f.public_root.clone().unwrap_or_else(|| {
        if top.self_signed {
            top.name.clone()
        } else {
            top.issuer_name.clone()
        }
    });
    let public_ok = check(Source::Mozilla).is_some_and(|c| c.ok);
    if let Some(v) =
        check(Source::System).and_then(|c| system_refusal(c, &leaf.name, &root, public_ok))
    {
        return v;
    }
    if public_ok {
        return Verdict::RootNotTrusted {
            root,
            public: true,
            presented: f.chain.root_presented(),
        };
    }
    let refusals: Vec<&TrustCheck> = f
        .checks
        .iter()
        .filter(|c| !c.ok && c.tls_problem.is_some())
        .collect();
    if refusals.is_empty() || !refusals.iter().all(|c| c.unknown_issuer()) {
        let reason = refusals
            .iter()
            .find(|c| !c.unknown_issuer())
            .or(refusals.first())
            .and_then(|c| c.message.clone())
            .or_else(|| f.checks.first().and_then(|c| c.message.clone()))
            .unwrap_or_else(|| "no trust source could check it".into());
        return Verdict::CertificateRejected { reason };
    }
    if !top.self_signed
        && !f.top_issuer_known
        && let Some(url) = top.ca_issuers.first()
    {
        return Verdict::MissingIntermediate {
            issuer: top.issuer_name.clone(),
            url: url.clone(),
        };
    }
    let presented = f.chain.root_presented();
    let ca = if presented {
        top.name.clone()
    } else {
        top.issuer_name.clone()
    };
    if is_public_name(f.host) {
        let product = inspection_product(&format!("{} {}", top.subject, top.issuer));
        Verdict::TlsInspection {
            ca,
            presented,
            product,
        }
    } else {
        Verdict::RootNotTrusted {
            root: ca,
            public: false,
            presented,
        }
    }
}

/// Windows CryptoAPI results (HRESULTs) that the platform verifier passes on as
/// `... (os error N)` in its message; the ones it maps itself arrive as rustls errors.
mod hresult {
    pub(super) const CERT_E_UNTRUSTEDCA: i32 = 0x800B_0112_u32 as i32;
    pub(super) const CERT_E_INVALID_POLICY: i32 = 0x800B_0113_u32 as i32;
    pub(super) const CERT_E_PURPOSE: i32 = 0x800B_0106_u32 as i32;
    pub(super) const CERT_E_REVOKED: i32 = 0x800B_010C_u32 as i32;
    pub(super) const CERT_E_REVOCATION_FAILURE: i32 = 0x800B_010E_u32 as i32;
    pub(super) const TRUST_E_EXPLICIT_DISTRUST: i32 = 0x800B_0111_u32 as i32;
    pub(super) const CRYPT_E_NO_REVOCATION_CHECK: i32 = 0x8009_2012_u32 as i32;
    pub(super) const CRYPT_E_REVOCATION_OFFLINE: i32 = 0x8009_2013_u32 as i32;
}

/// The Windows error code in a refusal's words (`... (os error -2146762479)`).
fn os_error(message: &str) -> Option<i32> {
    let at = message.rfind("os error ")? + "os error ".len();
    let digits: String = message[at..]
        .chars()
        .enumerate()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '-'))
        .map(|(_, c)| c)
        .collect();
    digits.parse().ok()
}

/// The verdict for a refusal of this machine's own, which installing a root cannot fix;
/// `None` for an unknown issuer (or anything else the other sources decide). A wrong
/// purpose is this machine's restriction only when the public set accepts the chain.
fn system_refusal(system: &TrustCheck, leaf: &str, root: &str, public_ok: bool) -> Option<Verdict> {
    use hresult::*;
    if system.ok {
        return None;
    }
    let reason = system.message.clone().unwrap_or_default();
    let code = os_error(&reason);
    let verdict = match (&system.tls_problem, code) {
        (Some(TlsProblem::Revoked), _) | (_, Some(CERT_E_REVOKED)) => Verdict::Revoked {
            subject: leaf.to_string(),
        },
        (_, Some(TRUST_E_EXPLICIT_DISTRUST)) => Verdict::Distrusted {
            root: root.to_string(),
            reason,
        },
        (_, Some(CERT_E_UNTRUSTEDCA | CERT_E_INVALID_POLICY | CERT_E_PURPOSE)) if public_ok => {
            Verdict::RestrictedByPolicy {
                root: root.to_string(),
                reason,
            }
        }
        (Some(TlsProblem::InvalidPurpose), _) if public_ok => Verdict::RestrictedByPolicy {
            root: root.to_string(),
            reason,
        },
        (
            _,
            Some(
                CRYPT_E_NO_REVOCATION_CHECK
                | CRYPT_E_REVOCATION_OFFLINE
                | CERT_E_REVOCATION_FAILURE,
            ),
        ) => Verdict::RevocationUnknown { reason },
        (Some(TlsProblem::RevocationUnknown), _) => Verdict::RevocationUnknown { reason },
        _ => return None,
    };
    Some(verdict)
}

/// Expired or not-yet-valid: the leaf always; the CAs on the path when a source says dates
/// are the problem (an unneeded expired cross-sign is no reason to fail).
fn dates(f: &Facts<'_>) -> Option<Verdict> {
    let reported = f.checks.iter().any(|c| {
        matches!(
            c.tls_problem,
            Some(TlsProblem::Expired | TlsProblem::NotYetValid)
        )
    });
    let candidates = f
        .chain
        .on_path()
        .enumerate()
        .filter(|(i, c)| c.error.is_none() && (*i == 0 || reported));
    for (_, cert) in candidates {
        let (not_before, not_after) = cert.validity();
        if f.now > not_after {
            return Some(Verdict::Expired {
                subject: cert.name.clone(),
                not_after: cert.not_after.clone(),
                clock_hint: clock_hint(f.now, not_after, f.skew, true),
            });
        }
        if f.now < not_before {
            return Some(Verdict::NotYetValid {
                subject: cert.name.clone(),
                not_before: cert.not_before.clone(),
                clock_hint: clock_hint(f.now, not_before, f.skew, false),
            });
        }
    }
    None
}

/// The earliest moment this version of extpy can be running at (2025-01-01): a clock before
/// it is wrong.
const CLOCK_FLOOR: i64 = 1_735_689_600;
/// How far from a certificate's edge of validity the local clock must be for it to look
/// right: a certificate expiring or starting within this window is a reason to check.
const CLOCK_WINDOW: i64 = 2 * 86_400;
/// Server and local clocks further apart than this are worth mentioning.
const SKEW_LIMIT: i64 = 300;

/// A hint that this machine's clock, not the certificate, is wrong; `edge` is the moment the
/// certificate crossed (its end for `expired`, its start otherwise).
pub(crate) fn clock_hint(now: i64, edge: i64, skew: Option<i64>, expired: bool) -> Option<String> {
    const CHECK: &str = "check this machine's clock (Windows: `w32tm /query /status`, `w32tm /resync`; Linux: `timedatectl`)";
    if let Some(skew) = skew.filter(|s| s.abs() > SKEW_LIMIT) {
        let side = if skew > 0 { "behind" } else { "ahead of" };
        return Some(format!(
            "This machine's clock is {} {side} the server's (its HTTP Date header): {CHECK}.",
            duration_words(skew.abs())
        ));
    }
    if now < CLOCK_FLOOR {
        return Some(format!(
            "This machine's clock says {}, before this version of extpy was made: the clock is wrong; {CHECK}.",
            rfc3339(now)
        ));
    }
    let distance = (now - edge).abs();
    if distance > CLOCK_WINDOW {
        return None;
    }
    Some(if expired {
        format!(
            "It expired only {} ago: if its owner has just renewed it, this machine's clock may be ahead; {CHECK}.",
            duration_words(distance)
        )
    } else {
        format!(
            "It becomes valid in {}: certificates are used as soon as they are issued, so this machine's clock is probably behind; {CHECK}.",
            duration_words(distance)
        )
    })
}

/// A duration in the largest whole unit: `3 minutes`, `5 hours`, `12 days`.
pub(crate) fn duration_words(secs: i64) -> String {
    let (n, unit) = match secs {
        s if s < 120 => (s, "second"),
        s if s < 2 * 3600 => (s / 60, "minute"),
        s if s < 2 * 86_400 => (s / 3600, "hour"),
        s if s < 2 * 365 * 86_400 => (s / 86_400, "day"),
        s => (s / (365 * 86_400), "year"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// Suffixes of names that only exist inside a network.
const PRIVATE_SUFFIXES: &[&str] = &[
    ".local",
    ".lan",
    ".internal",
    ".corp",
    ".home.arpa",
    ".intranet",
    ".localdomain",
    ".localhost",
    ".test",
    ".invalid",
];

/// True for a name that looks like one on the public internet: a DNS name with a dot, not an
/// IP address, not `localhost`, not under a private-use suffix.
pub(crate) fn is_public_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok()
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::Ipv6Addr>()
            .is_ok()
    {
        return false;
    }
    if !host.contains('.') || host == "localhost" {
        return false;
    }
    !PRIVATE_SUFFIXES.iter().any(|s| host.ends_with(s))
}

/// TLS-inspecting products whose name shows in the CAs they make.
const INSPECTORS: &[(&str, &str)] = &[
    ("zscaler", "Zscaler"),
    ("fortinet", "Fortinet FortiGate"),
    ("fortigate", "Fortinet FortiGate"),
    ("palo alto", "Palo Alto Networks"),
    ("blue coat", "Blue Coat / Symantec ProxySG"),
    ("bluecoat", "Blue Coat / Symantec ProxySG"),
    ("netskope", "Netskope"),
    ("sophos", "Sophos"),
    ("forcepoint", "Forcepoint"),
    ("websense", "Forcepoint (Websense)"),
    ("cisco umbrella", "Cisco Umbrella"),
    ("check point", "Check Point"),
    ("checkpoint", "Check Point"),
    ("barracuda", "Barracuda"),
    ("mcafee", "McAfee / Skyhigh Web Gateway"),
    ("skyhigh", "McAfee / Skyhigh Web Gateway"),
    ("menlo security", "Menlo Security"),
    ("iboss", "iboss"),
    ("kaspersky", "Kaspersky (web traffic scanning)"),
    ("eset ssl filter", "ESET (SSL/TLS filtering)"),
    ("avast", "Avast (web shield)"),
    ("bitdefender", "Bitdefender (encrypted web scan)"),
];

/// The inspecting product a CA's names point to, if any.
pub(crate) fn inspection_product(names: &str) -> Option<String> {
    let lower = names.to_ascii_lowercase();
    INSPECTORS
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map(|(_, product)| product.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_looking_names() {
        for public in ["files.example.com", "www.python.org", "mirror.example.net."] {
            assert!(is_public_name(public), "{public}");
        }
        for private in [
            "127.0.0.1",
            "::1",
            "[::1]",
            "localhost",
            "intranet",
            "build.local",
            "mirror.corp",
            "pkg.lan",
            "host.home.arpa",
            "svc.internal",
            "a.intranet",
            "box.localdomain",
            "nothing.invalid",
        ] {
            assert!(!is_public_name(private), "{private}");
        }
    }

    #[test]
    fn clock_hints() {
        let now = 1_800_000_000;
        assert!(clock_hint(now, now - 400 * 86_400, None, true).is_none());
        let just = clock_hint(now, now - 300, None, true).unwrap();
        assert!(just.contains("expired only 5 minutes ago"), "{just}");
        let soon = clock_hint(now, now + 3 * 3600, None, false).unwrap();
        assert!(
            soon.contains("becomes valid in 3 hours") && soon.contains("behind"),
            "{soon}"
        );
        let skew = clock_hint(now, now - 400 * 86_400, Some(7200), true).unwrap();
        assert!(skew.contains("2 hours behind the server's"), "{skew}");
        assert!(clock_hint(now, now - 400 * 86_400, Some(30), true).is_none());
        let past = clock_hint(1_000_000_000, 1_600_000_000, None, false).unwrap();
        assert!(
            past.contains("2001-09-09") && past.contains("clock is wrong"),
            "{past}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration_words(1), "1 second");
        assert_eq!(duration_words(300), "5 minutes");
        assert_eq!(duration_words(3 * 3600), "3 hours");
        assert_eq!(duration_words(40 * 86_400), "40 days");
        assert_eq!(duration_words(3 * 365 * 86_400), "3 years");
    }

    use rustls::pki_types::CertificateDer;
    use support::pki::{Ca as TestCa, Leaf, aia_ca_issuers as aia, valid_between as valid};

    const NOW: i64 = 1_800_000_000;

    fn check(source: Source, problem: Option<TlsProblem>) -> TrustCheck {
        TrustCheck {
            source,
            label: String::new(),
            ok: problem.is_none(),
            problem: problem.as_ref().map(|p| p.code().to_string()),
            message: problem.as_ref().map(|p| p.to_string()),
            tls_problem: problem,
        }
    }

    fn unknown_everywhere() -> Vec<TrustCheck> {
        vec![
            check(Source::System, Some(TlsProblem::UnknownIssuer)),
            check(Source::Mozilla, Some(TlsProblem::UnknownIssuer)),
        ]
    }

    fn verdict(host: &str, certs: &[CertificateDer<'static>], checks: &[TrustCheck]) -> Verdict {
        verdict_with(host, certs, checks, |_| {})
    }

    fn verdict_with(
        host: &str,
        certs: &[CertificateDer<'static>],
        checks: &[TrustCheck],
        edit: impl FnOnce(&mut Facts<'_>),
    ) -> Verdict {
        let chain = Chain::parse(certs);
        let mut facts = Facts {
            host,
            chain: &chain,
            checks,
            name_covered: true,
            top_issuer_known: false,
            public_root: None,
            now: NOW,
            skew: None,
        };
        edit(&mut facts);
        classify(&facts)
    }

    #[test]
    fn trusted_by_the_system_or_the_extra_roots() {
        let root = TestCa::root("Root");
        let certs = [root.leaf_with(&["a.example"], |_| {}).der];
        let mut checks = unknown_everywhere();
        checks[0] = check(Source::System, None);
        assert_eq!(
            verdict("a.example", &certs, &checks),
            Verdict::Trusted { by: Source::System }
        );
        let mut checks = unknown_everywhere();
        checks.push(check(Source::Extra, None));
        assert_eq!(
            verdict("a.example", &certs, &checks),
            Verdict::Trusted { by: Source::Extra }
        );
    }

    #[test]
    fn a_public_root_missing_from_this_machine() {
        let root = TestCa::root("Public Root R1");
        let inter = root.intermediate("Public Issuing CA");
        let certs = [
            inter.leaf_with(&["www.example.com"], |_| {}).der,
            inter.der.clone(),
        ];
        let checks = [
            check(Source::System, Some(TlsProblem::UnknownIssuer)),
            check(Source::Mozilla, None),
        ];
        let v = verdict_with("www.example.com", &certs, &checks, |f| {
            f.public_root = Some("Public Root R1".into());
            f.top_issuer_known = true;
        });
        assert_eq!(
            v,
            Verdict::RootNotTrusted {
                root: "Public Root R1".into(),
                public: true,
                presented: false
            }
        );
        assert!(v.wants_trust() && !v.ok());
    }

    /// Windows' own refusals, as the platform verifier reports them, with the Mozilla set
    /// accepting the chain: only an unknown issuer means "install the public root".
    #[test]
    fn refusals_of_this_machine_are_not_a_missing_root() {
        let root = TestCa::root("Public Root R1");
        let inter = root.intermediate("Public Issuing CA");
        let certs = [
            inter.leaf_with(&["www.example.com"], |_| {}).der,
            inter.der.clone(),
        ];
        let windows = |hresult: u32, words: &str| {
            TlsProblem::BadCertificate(format!("{words} (os error {})", hresult as i32))
        };
        let cases = [
            (TlsProblem::Revoked, "revoked"),
            (
                windows(0x800B_010C, "The certificate is revoked."),
                "revoked",
            ),
            (
                windows(
                    0x800B_0111,
                    "The certificate was explicitly marked as untrusted by the user.",
                ),
                "distrusted",
            ),
            (TlsProblem::InvalidPurpose, "restricted_by_policy"),
            (
                windows(
                    0x800B_0112,
                    "A certification chain processed correctly, but one of the CA certificates is not trusted by the policy provider.",
                ),
                "restricted_by_policy",
            ),
            (
                windows(
                    0x8009_2013,
                    "The revocation function was unable to check revocation because the revocation server was offline.",
                ),
                "revocation_unknown",
            ),
            (TlsProblem::RevocationUnknown, "revocation_unknown"),
            (TlsProblem::UnknownIssuer, "root_not_trusted"),
        ];
        for (problem, kind) in cases {
            let checks = [
                check(Source::System, Some(problem.clone())),
                check(Source::Mozilla, None),
            ];
            let v = verdict_with("www.example.com", &certs, &checks, |f| {
                f.public_root = Some("Public Root R1".into());
                f.top_issuer_known = true;
            });
            let json = serde_json::to_value(&v).unwrap();
            assert_eq!(json["kind"], kind, "{problem:?}: {v:?}");
            assert_eq!(v.wants_trust(), kind == "root_not_trusted", "{kind}");
            assert!(!v.ok());
            assert!(v.summary().is_ascii() && v.explanation().is_ascii());
        }
        // A leaf that is wrong for TLS everywhere is not a policy of this machine.
        let checks = [
            check(Source::System, Some(TlsProblem::InvalidPurpose)),
            check(Source::Mozilla, Some(TlsProblem::InvalidPurpose)),
        ];
        let v = verdict("www.example.com", &certs, &checks);
        assert!(matches!(v, Verdict::CertificateRejected { .. }), "{v:?}");
    }

    #[test]
    fn os_errors_in_refusal_words() {
        assert_eq!(os_error("x (os error -2146762479)"), Some(-2146762479));
        assert_eq!(os_error("x (os error 5)"), Some(5));
        assert_eq!(os_error("no code"), None);
    }

    #[test]
    fn unknown_ca_private_name_or_public_name() {
        let root = TestCa::root("Zscaler Root CA");
        let certs = [
            root.leaf_with(&["files.example.com", "10.1.1.1"], |_| {})
                .der,
            root.der.clone(),
        ];
        let public = verdict("files.example.com", &certs, &unknown_everywhere());
        assert_eq!(
            public,
            Verdict::TlsInspection {
                ca: "Zscaler Root CA".into(),
                presented: true,
                product: Some("Zscaler".into())
            }
        );
        let private = verdict("10.1.1.1", &certs, &unknown_everywhere());
        assert_eq!(
            private,
            Verdict::RootNotTrusted {
                root: "Zscaler Root CA".into(),
                public: false,
                presented: true
            }
        );
    }

    #[test]
    fn missing_intermediate_needs_an_unknown_issuer_and_its_url() {
        let root = TestCa::root("Root");
        let inter = root.intermediate("Issuing CA 2");
        let url = "http://pki.example.com/ca2.cer";
        let certs = [inter
            .leaf_with(&["a.example.com"], |p| p.custom_extensions.push(aia(url)))
            .der];
        assert_eq!(
            verdict("a.example.com", &certs, &unknown_everywhere()),
            Verdict::MissingIntermediate {
                issuer: "Issuing CA 2".into(),
                url: url.into()
            }
        );
        // The issuer is a root some source knows: not an intermediate problem.
        let v = verdict_with("a.example.com", &certs, &unknown_everywhere(), |f| {
            f.top_issuer_known = true
        });
        assert!(
            matches!(v, Verdict::TlsInspection { ref ca, presented: false, .. } if ca == "Issuing CA 2"),
            "{v:?}"
        );
        // No AIA: the missing issuer is named as the CA to trust.
        let bare = [inter.leaf_with(&["a.example.com"], |_| {}).der];
        let v = verdict("a.example.com", &bare, &unknown_everywhere());
        assert!(
            matches!(
                v,
                Verdict::TlsInspection {
                    presented: false,
                    ..
                }
            ),
            "{v:?}"
        );
    }

    #[test]
    fn dates_come_before_names_and_trust() {
        let root = TestCa::root("Root");
        let certs = [root
            .leaf_with(&["a.example"], |p| {
                valid(p, 1_600_000_000, NOW as u64 - 600)
            })
            .der];
        let v = verdict_with("b.example", &certs, &unknown_everywhere(), |f| {
            f.name_covered = false
        });
        match v {
            Verdict::Expired {
                subject,
                not_after,
                clock_hint,
            } => {
                assert_eq!(subject, "a.example");
                assert_eq!(not_after, rfc3339(NOW - 600));
                assert!(clock_hint.unwrap().contains("expired only 10 minutes ago"));
            }
            other => panic!("{other:?}"),
        }
        let later = [root
            .leaf_with(&["a.example"], |p| {
                valid(p, NOW as u64 + 86_400 * 30, NOW as u64 + 86_400 * 400)
            })
            .der];
        let v = verdict("a.example", &later, &unknown_everywhere());
        assert!(
            matches!(
                v,
                Verdict::NotYetValid {
                    clock_hint: None,
                    ..
                }
            ),
            "{v:?}"
        );
    }

    #[test]
    fn an_expired_ca_counts_only_when_a_source_says_so() {
        let root = TestCa::root("Root");
        let inter = root.intermediate_with("Old Issuing CA", |p| {
            valid(p, 1_500_000_000, NOW as u64 - 400 * 86_400)
        });
        let certs = [inter.leaf_with(&["a.lan"], |_| {}).der, inter.der.clone()];
        // Unknown issuer everywhere: the old CA may not even be on the path a source builds.
        let v = verdict("a.lan", &certs, &unknown_everywhere());
        assert!(matches!(v, Verdict::RootNotTrusted { .. }), "{v:?}");
        let checks = [
            check(Source::System, Some(TlsProblem::Expired)),
            check(Source::Mozilla, Some(TlsProblem::UnknownIssuer)),
        ];
        let v = verdict("a.lan", &certs, &checks);
        assert!(
            matches!(&v, Verdict::Expired { subject, clock_hint: None, .. } if subject == "Old Issuing CA"),
            "{v:?}"
        );
    }

    #[test]
    fn name_mismatch_lists_the_names() {
        let root = TestCa::root("Root");
        let certs = [root.leaf_with(&["a.example", "b.example"], |_| {}).der];
        let v = verdict_with("c.example", &certs, &unknown_everywhere(), |f| {
            f.name_covered = false
        });
        assert_eq!(
            v,
            Verdict::NameMismatch {
                host: "c.example".into(),
                names: vec!["a.example".into(), "b.example".into()]
            }
        );
        assert_eq!(
            v.summary(),
            "host name mismatch: the certificate is for a.example, b.example, not c.example"
        );
    }

    #[test]
    fn self_signed_leaf() {
        let certs = [Leaf::self_signed(&["box.example.com"]).der];
        assert_eq!(
            verdict("box.example.com", &certs, &unknown_everywhere()),
            Verdict::SelfSigned {
                subject: "box.example.com".into()
            }
        );
    }

    #[test]
    fn other_refusals_are_passed_on() {
        let root = TestCa::root("Root");
        let certs = [root.leaf_with(&["a.example"], |_| {}).der];
        let checks = [
            check(
                Source::System,
                Some(TlsProblem::BadCertificate("a signature is invalid".into())),
            ),
            check(Source::Mozilla, Some(TlsProblem::UnknownIssuer)),
        ];
        let v = verdict("a.example", &certs, &checks);
        assert!(
            matches!(&v, Verdict::CertificateRejected { reason } if reason.contains("a signature is invalid")),
            "{v:?}"
        );
    }

    #[test]
    fn inspecting_products_are_named() {
        assert_eq!(
            inspection_product("CN=Zscaler Intermediate Root CA, O=Zscaler Inc.").as_deref(),
            Some("Zscaler")
        );
        assert_eq!(inspection_product("CN=extpy test root CA"), None);
    }
}
