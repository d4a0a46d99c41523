//! Global settings, resolved once from flags, `EXTPY_*` variables and defaults.

use std::path::PathBuf;
use std::time::Duration;

use crate::app::error::Error;
use crate::job::fetch::FetchOptions;
use crate::job::provenance::ProvenancePolicy;
use crate::job::source::{DEFAULT_INDEX_URL, DEFAULT_PYTHON_MIRROR, Sources};
use crate::mechanism::net::auth::{Login, split_login};
use crate::mechanism::net::{ExtraRoots, Logins, NetOptions};
use crate::mechanism::sigstore::TrustRoot;
use crate::model::manifest::{InputError, Manifest};
use url::Url;

/// `--jobs` when not given: parallel downloads and copies.
pub const DEFAULT_JOBS: u16 = 8;
/// `--timeout` when not given, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// `--retries` when not given.
pub const DEFAULT_RETRIES: u32 = 4;

/// Settings every command shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--manifest`; the built-in manifest when absent.
    pub manifest: Option<PathBuf>,
    /// `--cache-dir`.
    pub cache_dir: PathBuf,
    /// `--index-url` (or `PIP_INDEX_URL`).
    pub index_url: String,
    /// `--python-mirror`.
    pub python_mirror: String,
    /// `--ca-cert` files.
    pub ca_certs: Vec<PathBuf>,
    /// `SSL_CERT_FILE`, read as extra roots too.
    pub ssl_cert_file: Option<PathBuf>,
    /// `--offline`.
    pub offline: bool,
    /// `--jobs`.
    pub jobs: usize,
    /// `--timeout`.
    pub timeout: Duration,
    /// `--retries`.
    pub retries: u32,
    /// `--sigstore-trust-root`: replaces the pinned Sigstore trust root.
    pub sigstore_trust_root: Option<PathBuf>,
    /// `--require-provenance`.
    pub require_provenance: bool,
}

impl Settings {
    /// Defaults for everything not given, from the environment where extpy documents it.
    pub fn with_defaults(
        cache_dir: Option<PathBuf>,
        index_url: Option<String>,
        python_mirror: Option<String>,
    ) -> Result<Self, Error> {
        let cache_dir = match cache_dir.or_else(crate::mechanism::cache::Cache::default_dir) {
            Some(d) => d,
            None => {
                return Err(Error::Usage(
                    "cannot find a user cache folder; pass --cache-dir DIR".into(),
                ));
            }
        };
        let index_url = index_url
            .or_else(|| {
                std::env::var("PIP_INDEX_URL")
                    .ok()
                    .filter(|s| !s.trim().is_empty())
            })
            .unwrap_or_else(|| DEFAULT_INDEX_URL.to_string());
        Ok(Self {
            manifest: None,
            cache_dir,
            index_url,
            python_mirror: python_mirror.unwrap_or_else(|| DEFAULT_PYTHON_MIRROR.to_string()),
            ca_certs: Vec::new(),
            ssl_cert_file: std::env::var_os("SSL_CERT_FILE").map(PathBuf::from),
            offline: false,
            jobs: DEFAULT_JOBS.into(),
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            retries: DEFAULT_RETRIES,
            sigstore_trust_root: None,
            require_provenance: false,
        })
    }

    /// The manifest: `--manifest` or the built-in one.
    pub fn load_manifest(&self) -> Result<Manifest, InputError> {
        match &self.manifest {
            Some(p) => Manifest::load(p),
            None => Manifest::builtin(),
        }
    }

    /// The sources named by the settings.
    pub fn sources(&self) -> Result<Sources, Error> {
        Ok(Sources::new(&self.python_mirror, &self.index_url)?)
    }

    /// HTTP client settings; reads the `--ca-cert` files.
    pub fn net_options(&self) -> Result<NetOptions, Error> {
        Ok(NetOptions {
            extra_roots: ExtraRoots::load(&self.ca_certs, self.ssl_cert_file.clone())?,
            timeout: self.timeout,
            retries: self.retries,
            resolve: Vec::new(),
            proxy: crate::mechanism::net::ProxyConfig::resolve(),
            logins: self.logins(&|name| std::env::var(name).ok())?,
        })
    }

    /// The logins of this run: the user info of `--index-url` and `--python-mirror`, then
    /// `EXTPY_INDEX_USERNAME`/`EXTPY_INDEX_PASSWORD` for the index, then the netrc file.
    pub(crate) fn logins(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Logins, Error> {
        let mut logins = Logins::default();
        let mut index = Url::parse(&self.index_url).ok();
        for url in [
            index.as_mut(),
            Url::parse(&self.python_mirror).ok().as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(login) = split_login(url) {
                logins.add(url, login);
            }
        }
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        match (var("EXTPY_INDEX_USERNAME"), var("EXTPY_INDEX_PASSWORD")) {
            (Some(user), password) => {
                if let Some(index) = &index {
                    logins.add(index, Login::new(&user, password.as_deref()));
                }
            }
            (None, Some(_)) => {
                return Err(Error::Usage(
                    "EXTPY_INDEX_PASSWORD is set but EXTPY_INDEX_USERNAME is not\n  help: set both, or neither (a token alone goes in EXTPY_INDEX_USERNAME when the mirror takes it as the user name)".into(),
                ));
            }
            (None, None) => {}
        }
        if let Some(path) = Logins::netrc_path(env) {
            logins
                .read_netrc(&path)
                .map_err(|e| Error::Usage(e.to_string()))?;
        }
        Ok(logins)
    }

    /// What `fetch` needs.
    pub fn fetch_options(&self) -> Result<FetchOptions, Error> {
        Ok(FetchOptions {
            cache_dir: self.cache_dir.clone(),
            sources: self.sources()?,
            net: self.net_options()?,
            offline: self.offline,
            jobs: self.jobs,
            provenance: self.provenance_policy()?,
        })
    }

    /// The Sigstore trust root (pinned, or `--sigstore-trust-root`) and `--require-provenance`.
    pub fn provenance_policy(&self) -> Result<ProvenancePolicy, Error> {
        let trust_root = match &self.sigstore_trust_root {
            None => TrustRoot::pinned(),
            Some(path) => {
                let bad = |why: String| {
                    Error::Usage(format!(
                        "--sigstore-trust-root {}: {why}\n  help: give a Sigstore trusted_root.json (the format of sigstore/trusted_root.json in extpy's repository)",
                        path.display()
                    ))
                };
                let bytes = crate::mechanism::limits::read_regular(path, 4 << 20)
                    .map_err(|e| bad(format!("cannot read it: {e}")))?;
                TrustRoot::from_json(&bytes).map_err(bad)?
            }
        };
        Ok(ProvenancePolicy {
            trust_root,
            require: self.require_provenance,
        })
    }
}
