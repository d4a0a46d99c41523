//! What the probe's TLS check to the token endpoint found: below `verdict` and `mod.rs`,
//! which both read it.

use serde::{Deserialize, Serialize};

/// How the TLS check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsStatus {
    /// The handshake verified.
    Ok,
    /// It failed (the verdict says why).
    Failed,
    /// `--offline`: not tried.
    Skipped,
    /// The probe did not get that far.
    NotRun,
}

/// The TLS connection to the token endpoint, with the trust requests uses.
#[derive(Debug, Clone, Serialize)]
pub struct TlsCheck {
    /// How it went.
    pub status: TlsStatus,
    /// `host:port`.
    pub endpoint: Option<String>,
    /// The proxy it went through (password hidden).
    pub proxy: Option<String>,
    /// Where that proxy is set.
    pub proxy_source: Option<String>,
    /// The TLS version agreed.
    pub version: Option<String>,
    /// What failed.
    pub error: Option<String>,
    /// The CA the server's certificate names as its issuer, when verification failed.
    pub issuer: Option<String>,
}

/// Where a TLS check stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TlsKind {
    /// The CA bundle could not be loaded.
    Bundle,
    /// The certificate did not verify.
    Certificate,
    /// Another TLS failure.
    Tls,
    /// No connection (DNS, TCP, the proxy).
    Connect,
}
