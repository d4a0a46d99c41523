//! What `doctor` diagnoses: a host, `host:port` or URL as a [`Target`], and the errors of
//! arguments that cannot be one. Below the probes (`connect`), the fixes and `mod.rs`, which
//! all name a target.

use rustls::pki_types::ServerName;
use url::{Host, Url};

use crate::base::exit::ExitCode;
use crate::mechanism::fsio::IoError;
use crate::mechanism::net::NetError;
/// Bad `doctor` arguments, or a diagnosis that could not start.
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    /// A host or URL argument that cannot be diagnosed.
    #[error(
        "{value:?} is not a host, host:port or URL to diagnose: {reason}\n  help: for example files.example.com, files.example.com:8443 or https://files.example.com/simple/"
    )]
    Target {
        /// The argument.
        value: String,
        /// Why.
        reason: String,
    },
    /// A bad `--resolve`.
    #[error(
        "--resolve {value:?}: {reason}\n  help: the form is HOST:PORT:ADDR[,ADDR...], for example files.example.com:443:10.0.0.5"
    )]
    Resolve {
        /// The argument.
        value: String,
        /// Why.
        reason: String,
    },
    /// `--export DIR` cannot be created.
    #[error(transparent)]
    ExportDir(#[from] IoError),
    /// The trust settings are unusable (a bad `--ca-cert`).
    #[error(transparent)]
    Net(#[from] NetError),
}

impl DoctorError {
    /// The exit code: bad arguments are input, an export folder that cannot be made local.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            DoctorError::Target { .. } | DoctorError::Resolve { .. } => ExitCode::Input,
            DoctorError::Net(n) => n.exit_code(),
            DoctorError::ExportDir(e) => e.exit_code(),
        }
    }
}

/// One host to diagnose, with the URL its HTTP probe requests.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL probed once TLS is trusted.
    pub url: Url,
    /// The host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// False for `http://` targets.
    pub tls: bool,
    /// What the host is to extpy (`python mirror`, `index`, `files`, `argument`).
    pub roles: Vec<String>,
    server_name: ServerName<'static>,
}

impl Target {
    /// A target from an argument: `host`, `host:port`, or an http(s) URL.
    pub fn parse(arg: &str) -> Result<Self, DoctorError> {
        let bad = |reason: &str| DoctorError::Target {
            value: arg.to_string(),
            reason: reason.to_string(),
        };
        let text = arg.trim();
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        let full = if text.contains("://") {
            text.to_string()
        } else {
            format!("https://{text}")
        };
        let url = Url::parse(&full).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(&format!(
                "the scheme {:?} is not https or http",
                url.scheme()
            )));
        }
        Self::from_url(&url, "argument").ok_or_else(|| bad("it names no usable host"))
    }

    /// A target for a URL extpy would download from.
    pub fn from_url(url: &Url, role: &str) -> Option<Self> {
        let host = match url.host()? {
            Host::Domain(d) if !d.is_empty() => d.to_string(),
            Host::Domain(_) => return None,
            Host::Ipv4(ip) => ip.to_string(),
            Host::Ipv6(ip) => ip.to_string(),
        };
        let server_name = ServerName::try_from(host.clone()).ok()?;
        Some(Self {
            url: url.clone(),
            port: url.port_or_known_default()?,
            tls: url.scheme() == "https",
            host,
            roles: vec![role.to_string()],
            server_name,
        })
    }

    /// `host:port`, with brackets around an IPv6 address.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The name TLS verifies (and sends as SNI when it is a DNS name).
    pub fn server_name(&self) -> ServerName<'static> {
        self.server_name.clone()
    }

    pub(crate) fn same_endpoint(&self, other: &Target) -> bool {
        self.tls == other.tls
            && self.port == other.port
            && self.host.eq_ignore_ascii_case(&other.host)
    }
}
