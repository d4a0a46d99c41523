//! The network's failures: `NetError`, and the TLS problems it names in plain words. Below
//! the client (`mod.rs`) and the trust store (`trust.rs`), which both return them.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

use super::auth::{self, shown};
use crate::base::exit::ExitCode;
use crate::mechanism::fsio::IoError;

/// The longest `Retry-After` extpy honours before giving up instead.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The largest index page extpy reads.
pub(crate) const MAX_PAGE_BYTES: u64 = 64 * 1024 * 1024;

/// A network failure, with the URL and what to do.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A `--ca-cert` (or `SSL_CERT_FILE`) file is unusable.
    #[error("cannot use the CA certificate file {}: {reason}", path.display())]
    CaCert {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The operating system's trust store could not be read.
    #[error(
        "cannot load the operating system's trusted certificates: {reason}\n  help: pass the roots to trust with --ca-cert FILE"
    )]
    TrustStore {
        /// Why.
        reason: String,
    },
    /// TLS failed.
    #[error(
        "TLS with {host} failed: {problem}\n  url: {shown_url}\n  help: run `extpy doctor {shown_url}` to see the certificate chain and the fix; behind a TLS-inspecting proxy or a private CA, pass its root certificate with --ca-cert FILE", shown_url = shown(url))]
    Tls {
        /// The URL requested.
        url: Url,
        /// Its host.
        host: String,
        /// What failed.
        problem: TlsProblem,
    },
    /// The host name does not resolve.
    #[error(
        "cannot resolve the host name {host} (url {shown_url}): {detail}\n  help: check the name, the DNS settings, or set HTTPS_PROXY if this network only reaches the internet through a proxy{auto_proxy}", shown_url = shown(url))]
    Resolve {
        /// The URL.
        url: Url,
        /// Its host.
        host: String,
        /// The resolver's words.
        detail: String,
        /// The advice when no proxy is set but a PAC file or WPAD is, else empty.
        auto_proxy: String,
    },
    /// The TCP connection (or the proxy) failed.
    #[error("cannot connect to {host} (url {shown_url}): {detail}{proxy}{auto_proxy}", shown_url = shown(url))]
    Connect {
        /// The URL.
        url: Url,
        /// Its host.
        host: String,
        /// The cause chain.
        detail: String,
        /// A note naming the proxy in use, if any.
        proxy: String,
        /// The advice when no proxy is set but a PAC file or WPAD is, else empty.
        auto_proxy: String,
    },
    /// No data within the timeout.
    #[error(
        "{shown_url} sent nothing for {secs}s (timed out)\n  help: a slow link may need --timeout SECS{auto_proxy}", shown_url = shown(url))]
    Timeout {
        /// The URL.
        url: Url,
        /// The timeout.
        secs: u64,
        /// The advice when no proxy is set but a PAC file or WPAD is, else empty.
        auto_proxy: String,
    },
    /// An HTTP status that is not success.
    #[error("{shown_url} answered {status}", shown_url = shown(url))]
    Status {
        /// The URL.
        url: Url,
        /// The status.
        status: StatusCode,
    },
    /// The body ended early.
    #[error("{shown_url}: the connection closed after {got} of {} bytes", expected.map(|e| e.to_string()).unwrap_or_else(|| "the expected".into()), shown_url = shown(url))]
    Incomplete {
        /// The URL.
        url: Url,
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        expected: Option<u64>,
    },
    /// The server asked us to wait too long.
    #[error("{shown_url} answered {status} and asked to retry after {}s, longer than extpy waits ({}s); try again later", after.as_secs(), MAX_RETRY_AFTER.as_secs(), shown_url = shown(url))]
    RetryAfterTooLong {
        /// The URL.
        url: Url,
        /// 429 or 503.
        status: StatusCode,
        /// What it asked.
        after: Duration,
    },
    /// A page larger than we read.
    #[error("{shown_url} is larger than {} MiB; this is not an index page", MAX_PAGE_BYTES / 1024 / 1024, shown_url = shown(url))]
    TooLarge {
        /// The URL.
        url: Url,
    },
    /// Redirects failed (loop, too many, or a bad target).
    #[error("{shown_url}: redirect failed: {detail}", shown_url = shown(url))]
    Redirect {
        /// The URL.
        url: Url,
        /// Why.
        detail: String,
    },
    /// A redirect to something other than http(s), which is never followed.
    #[error("{shown_from} redirected the download to {shown_to}: {}; extpy follows redirects to http and https URLs only\n  help: the server (or a proxy in between) sends downloads where they must not go; fix the mirror, or pin the artifact's url: in the manifest", if to.starts_with("file:") { "a download redirected to a local file URL is refused" } else { "a download redirected to a URL that is not http or https is refused" }, shown_from = shown(from), shown_to = auth::shown_text(to))]
    RedirectScheme {
        /// The URL that answered with the redirect.
        from: Url,
        /// Where it pointed (its Location, resolved).
        to: String,
    },
    /// The server sends (or announces) more bytes than the artifact may have.
    #[error("{shown_url}: the server {} more than the {limit} bytes {}; the download was stopped\n  help: the server sends something else than the pinned file; check the mirror (or the manifest's size:)", if *announced { "announces" } else { "sent" }, if *pinned { "the manifest pins" } else { "a download without a pinned size may have" }, shown_url = shown(url))]
    Oversized {
        /// The URL.
        url: Url,
        /// The limit.
        limit: u64,
        /// True when the limit is the manifest's `size:`.
        pinned: bool,
        /// True when the response announced it (and nothing was read).
        announced: bool,
    },
    /// Retries ran out.
    #[error("{last} (gave up after {attempts} attempts)")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: Box<NetError>,
    },
    /// A local file could not be written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

impl NetError {
    /// The failure under any retry wrapper.
    pub fn root(&self) -> &NetError {
        match self {
            NetError::GaveUp { last, .. } => last.root(),
            other => other,
        }
    }

    /// The exit code: a bad `--ca-cert` file is input, a local file local, the rest network.
    pub fn exit_code(&self) -> ExitCode {
        match self.root() {
            NetError::CaCert { .. } => ExitCode::Input,
            NetError::Io(e) => e.exit_code(),
            NetError::Oversized { .. } => ExitCode::Verification,
            _ => ExitCode::Network,
        }
    }
}

/// What went wrong in a TLS handshake, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsProblem {
    /// The chain ends in a CA this machine does not trust.
    UnknownIssuer,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The certificate does not name the host.
    NameMismatch,
    /// The certificate was revoked.
    Revoked,
    /// A certificate on the path may not be used for TLS servers (its key usage, or a
    /// restriction this machine puts on its root).
    InvalidPurpose,
    /// Whether a certificate is revoked could not be learnt, and that was reason to refuse.
    RevocationUnknown,
    /// Some other certificate problem.
    BadCertificate(String),
    /// The peer does not speak TLS (or not a version we accept).
    NotTls(String),
    /// The handshake failed (alert, protocol, cipher).
    Handshake(String),
}

impl TlsProblem {
    /// A stable snake_case name for JSON documents.
    pub fn code(&self) -> &'static str {
        match self {
            TlsProblem::UnknownIssuer => "unknown_issuer",
            TlsProblem::Expired => "expired",
            TlsProblem::NotYetValid => "not_yet_valid",
            TlsProblem::NameMismatch => "name_mismatch",
            TlsProblem::Revoked => "revoked",
            TlsProblem::InvalidPurpose => "invalid_purpose",
            TlsProblem::RevocationUnknown => "revocation_unknown",
            TlsProblem::BadCertificate(_) => "bad_certificate",
            TlsProblem::NotTls(_) => "not_tls",
            TlsProblem::Handshake(_) => "handshake",
        }
    }
}

impl std::fmt::Display for TlsProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsProblem::UnknownIssuer => {
                f.write_str("the server's certificate is issued by a certificate authority this machine does not trust")
            }
            TlsProblem::Expired => f.write_str("the server's certificate has expired (or this machine's clock is wrong)"),
            TlsProblem::NotYetValid => {
                f.write_str("the server's certificate is not valid yet (or this machine's clock is wrong)")
            }
            TlsProblem::NameMismatch => f.write_str("the server's certificate is for a different host name"),
            TlsProblem::Revoked => f.write_str("the server's certificate has been revoked"),
            TlsProblem::InvalidPurpose => f.write_str(
                "a certificate on the path may not be used for TLS servers (extended key usage)",
            ),
            TlsProblem::RevocationUnknown => f.write_str(
                "whether the server's certificate is revoked could not be checked",
            ),
            TlsProblem::BadCertificate(why) => write!(f, "the server's certificate was rejected: {why}"),
            TlsProblem::NotTls(why) => write!(f, "the server did not answer with TLS ({why})"),
            TlsProblem::Handshake(why) => write!(f, "the TLS handshake failed: {why}"),
        }
    }
}
