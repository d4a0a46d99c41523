//! The one proxy resolution of a run: downloads, the doctor and the diagnosis of a failed
//! download all take their proxy from here, and every output names where it came from.
//!
//! In order: the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), then on
//! Windows the user's Internet Settings in the registry (`ProxyServer`, per-scheme
//! `http=...;https=...` values, `ProxyOverride` with `<local>`), then the WinHTTP machine proxy
//! (`netsh winhttp set proxy`, what services and SYSTEM use). The Windows settings are parsed
//! from their stored data, so the parsing runs and is tested everywhere.

use serde::Serialize;
use url::Url;

/// Where a proxy setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxySource {
    /// `HTTPS_PROXY` and its siblings.
    Environment,
    /// The user's Internet Settings (what browsers use).
    UserRegistry,
    /// The WinHTTP machine proxy (`netsh winhttp`).
    Winhttp,
    /// Nothing is set: connections are direct.
    None,
}

impl ProxySource {
    /// In words.
    pub fn label(self) -> &'static str {
        match self {
            ProxySource::Environment => "the environment",
            ProxySource::UserRegistry => "the user registry",
            ProxySource::Winhttp => "WinHTTP",
            ProxySource::None => "none",
        }
    }
}

/// One entry of a bypass list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bypass {
    /// A `NO_PROXY` entry: `*`, a name, or a domain suffix (`.corp`, `*.corp`).
    Suffix(String),
    /// A Windows entry with `*` wildcards anywhere (`10.*`, `*.corp.example`).
    Glob(String),
    /// Windows' `<local>`: names without a dot.
    Local,
}

/// The proxy configuration of this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Where it came from.
    pub source: ProxySource,
    http: Option<(String, String)>,
    https: Option<(String, String)>,
    bypass: Vec<Bypass>,
}

/// The proxy a URL goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyChoice {
    /// The proxy as set (it may hold credentials).
    pub value: String,
    /// The setting it came from: `HTTPS_PROXY`, `ProxyServer`, `netsh winhttp show proxy`.
    pub setting: String,
    /// Where that setting lives.
    pub source: ProxySource,
}

impl ProxyChoice {
    /// The setting and its place, for people: `the environment: HTTPS_PROXY`.
    pub fn origin(&self) -> String {
        format!("{}: {}", self.source.label(), self.setting)
    }
}

/// The Windows proxy settings, as stored (tests give them as data).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowsSettings {
    /// `ProxyEnable` of the user's Internet Settings.
    pub user_enable: Option<u32>,
    /// `ProxyServer` of the user's Internet Settings.
    pub user_server: Option<String>,
    /// `ProxyOverride` of the user's Internet Settings.
    pub user_override: Option<String>,
    /// The `WinHttpSettings` value (REG_BINARY) that `netsh winhttp set proxy` writes.
    pub winhttp: Option<Vec<u8>>,
}

const USER_KEY: &str = "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings";

impl ProxyConfig {
    /// No proxy: every connection is direct.
    pub fn direct() -> Self {
        Self {
            source: ProxySource::None,
            http: None,
            https: None,
            bypass: Vec::new(),
        }
    }

    /// The proxy of this run: the environment, else this machine's Windows settings.
    pub fn resolve() -> Self {
        Self::resolve_from(&|name| std::env::var(name).ok(), &windows_settings())
    }

    /// The proxy from `env` (a variable's value) and the Windows `settings`.
    pub fn resolve_from(env: &dyn Fn(&str) -> Option<String>, settings: &WindowsSettings) -> Self {
        let var = |names: &[&str]| {
            names.iter().find_map(|n| {
                env(n)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (v.trim().to_string(), n.to_string()))
            })
        };
        let scheme = |(v, n): (String, String)| (with_scheme(&v), n);
        let http = var(&["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]).map(scheme);
        let https = var(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]).map(scheme);
        if http.is_some() || https.is_some() {
            let no_proxy = var(&["NO_PROXY", "no_proxy"])
                .map(|(v, _)| v)
                .unwrap_or_default();
            return Self {
                source: ProxySource::Environment,
                http,
                https,
                bypass: no_proxy
                    .split(',')
                    .map(|s| s.trim().to_ascii_lowercase())
                    .filter(|s| !s.is_empty())
                    .map(Bypass::Suffix)
                    .collect(),
            };
        }
        if settings.user_enable == Some(1)
            && let Some(server) = settings.user_server.as_deref()
            && let Some(config) = from_windows(
                ProxySource::UserRegistry,
                &format!("ProxyServer in {USER_KEY}"),
                server,
                settings.user_override.as_deref().unwrap_or(""),
            )
        {
            return config;
        }
        if let Some((server, bypass)) = settings.winhttp.as_deref().and_then(parse_winhttp)
            && let Some(config) = from_windows(
                ProxySource::Winhttp,
                "netsh winhttp show proxy",
                &server,
                &bypass,
            )
        {
            return config;
        }
        Self::direct()
    }

    /// The proxy `url` goes through, or `None` when it goes direct.
    pub fn for_url(&self, url: &Url) -> Option<ProxyChoice> {
        let choice = self.setting(url)?;
        if self.bypasses(url.host_str().unwrap_or("")) {
            return None;
        }
        Some(choice)
    }

    /// The proxy set for `url`'s scheme, before the bypass list is consulted.
    pub fn setting(&self, url: &Url) -> Option<ProxyChoice> {
        let (value, setting) = match url.scheme() {
            "https" => self.https.as_ref(),
            _ => self.http.as_ref(),
        }?;
        Some(ProxyChoice {
            value: value.clone(),
            setting: setting.clone(),
            source: self.source,
        })
    }

    /// True when `host` is on the bypass list.
    pub fn bypasses(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        self.bypass.iter().any(|b| match b {
            Bypass::Suffix(entry) if entry == "*" => true,
            Bypass::Suffix(entry) => {
                let entry = entry.trim_start_matches("*.").trim_start_matches('.');
                host == entry || host.ends_with(&format!(".{entry}"))
            }
            Bypass::Glob(pattern) => glob(pattern, &host),
            Bypass::Local => !host.contains('.') && !host.contains(':'),
        })
    }
}

/// A configuration from a Windows proxy string (`host:port`, or `http=h:p;https=h:p`) and
/// bypass list (`*.corp;10.*;<local>`); `None` when it names no http or https proxy.
fn from_windows(
    source: ProxySource,
    setting: &str,
    server: &str,
    bypass: &str,
) -> Option<ProxyConfig> {
    let server = server.trim();
    let named = |v: &str| (with_scheme(v), setting.to_string());
    let (http, https) = if server.contains('=') {
        let mut http = None;
        let mut https = None;
        for entry in server.split([';', ' ']).filter(|e| !e.is_empty()) {
            match entry.split_once('=') {
                Some((scheme, v)) if scheme.eq_ignore_ascii_case("http") && !v.is_empty() => {
                    http = Some(named(v))
                }
                Some((scheme, v)) if scheme.eq_ignore_ascii_case("https") && !v.is_empty() => {
                    https = Some(named(v))
                }
                _ => {}
            }
        }
        (http, https)
    } else {
        let first = server.split([';', ' ']).find(|e| !e.is_empty())?;
        (Some(named(first)), Some(named(first)))
    };
    if http.is_none() && https.is_none() {
        return None;
    }
    Some(ProxyConfig {
        source,
        http,
        https,
        bypass: bypass
            .split([';', ',', ' '])
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s == "<local>" {
                    Bypass::Local
                } else {
                    Bypass::Glob(s)
                }
            })
            .collect(),
    })
}

/// `proxy:8080` as a URL the HTTP client takes (`http://proxy:8080`).
fn with_scheme(v: &str) -> String {
    if v.contains("://") {
        v.to_string()
    } else {
        format!("http://{v}")
    }
}

/// The proxy and bypass list in a `WinHttpSettings` value: a DWORD header, a DWORD counter,
/// DWORD flags (2 set: a proxy is used), then two DWORD-length-prefixed strings.
pub(crate) fn parse_winhttp(blob: &[u8]) -> Option<(String, String)> {
    let dword = |at: usize| -> Option<u32> {
        blob.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let flags = dword(8)?;
    if flags & 2 == 0 {
        return None;
    }
    let string = |at: usize| -> Option<(String, usize)> {
        let len = usize::try_from(dword(at)?).ok()?;
        let bytes = blob.get(at + 4..at + 4 + len)?;
        Some((String::from_utf8_lossy(bytes).into_owned(), at + 4 + len))
    };
    let (server, next) = string(12)?;
    let bypass = string(next).map(|(b, _)| b).unwrap_or_default();
    (!server.trim().is_empty()).then_some((server, bypass))
}

/// `pattern` with `*` wildcards matches all of `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The settings of this machine: read from the registry on Windows, none elsewhere.
#[cfg(windows)]
fn windows_settings() -> WindowsSettings {
    use crate::mechanism::registry;
    use windows_sys::Win32::System::Registry::{HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE};
    let user = "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings";
    let machine = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections";
    WindowsSettings {
        user_enable: registry::dword(HKEY_CURRENT_USER, user, "ProxyEnable"),
        user_server: registry::string(HKEY_CURRENT_USER, user, "ProxyServer"),
        user_override: registry::string(HKEY_CURRENT_USER, user, "ProxyOverride"),
        winhttp: registry::binary(HKEY_LOCAL_MACHINE, machine, "WinHttpSettings"),
    }
}

#[cfg(not(windows))]
fn windows_settings() -> WindowsSettings {
    WindowsSettings::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn url(u: &str) -> Url {
        Url::parse(u).unwrap()
    }

    /// What `netsh winhttp set proxy proxy-server="..." bypass-list="..."` stores.
    fn winhttp_blob(server: &str, bypass: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(0x28u32.to_le_bytes());
        b.extend(7u32.to_le_bytes());
        b.extend(3u32.to_le_bytes());
        b.extend((server.len() as u32).to_le_bytes());
        b.extend(server.as_bytes());
        b.extend((bypass.len() as u32).to_le_bytes());
        b.extend(bypass.as_bytes());
        b
    }

    #[test]
    fn the_environment_comes_first() {
        let settings = WindowsSettings {
            user_enable: Some(1),
            user_server: Some("userproxy:8080".into()),
            ..Default::default()
        };
        let c = ProxyConfig::resolve_from(
            &env(&[
                ("HTTPS_PROXY", "http://envproxy:3128"),
                ("NO_PROXY", "localhost,.corp.example"),
            ]),
            &settings,
        );
        let choice = c.for_url(&url("https://files.example.com/")).unwrap();
        assert_eq!(choice.value, "http://envproxy:3128");
        assert_eq!(choice.origin(), "the environment: HTTPS_PROXY");
        assert_eq!(c.for_url(&url("https://a.corp.example/")), None);
        assert_eq!(
            c.for_url(&url("http://files.example.com/")),
            None,
            "no HTTP_PROXY"
        );
    }

    #[test]
    fn the_user_registry_with_per_scheme_values_and_local_bypass() {
        let settings = WindowsSettings {
            user_enable: Some(1),
            user_server: Some("http=webproxy:80;https=secure.proxy:8443;ftp=ftp:21".into()),
            user_override: Some("*.corp.example;10.*;<local>".into()),
            winhttp: Some(winhttp_blob("machineproxy:3128", "")),
        };
        let c = ProxyConfig::resolve_from(&env(&[]), &settings);
        assert_eq!(c.source, ProxySource::UserRegistry);
        let https = c.for_url(&url("https://files.example.com/")).unwrap();
        assert_eq!(https.value, "http://secure.proxy:8443");
        assert_eq!(
            https.origin(),
            format!("the user registry: ProxyServer in {USER_KEY}")
        );
        let http = c.for_url(&url("http://files.example.com/")).unwrap();
        assert_eq!(http.value, "http://webproxy:80");
        for direct in [
            "https://build.corp.example/",
            "https://10.1.2.3/",
            "https://intranet/",
        ] {
            assert_eq!(c.for_url(&url(direct)), None, "{direct}");
        }
        assert!(c.for_url(&url("https://corp.example.com/")).is_some());
    }

    #[test]
    fn a_disabled_user_proxy_falls_back_to_winhttp_then_direct() {
        let mut settings = WindowsSettings {
            user_enable: Some(0),
            user_server: Some("userproxy:8080".into()),
            user_override: None,
            winhttp: Some(winhttp_blob(
                "machineproxy:3128",
                "<local>;*.internal.example",
            )),
        };
        let c = ProxyConfig::resolve_from(&env(&[]), &settings);
        assert_eq!(c.source, ProxySource::Winhttp);
        let choice = c.for_url(&url("https://files.example.com/")).unwrap();
        assert_eq!(choice.value, "http://machineproxy:3128");
        assert_eq!(choice.origin(), "WinHTTP: netsh winhttp show proxy");
        assert_eq!(c.for_url(&url("https://pkg.internal.example/")), None);
        assert_eq!(c.for_url(&url("https://localhost/")), None);

        // `netsh winhttp reset proxy`: flags say direct.
        let mut direct = winhttp_blob("", "");
        direct[8] = 1;
        settings.winhttp = Some(direct);
        let c = ProxyConfig::resolve_from(&env(&[]), &settings);
        assert_eq!(c.source, ProxySource::None);
        assert_eq!(c.for_url(&url("https://files.example.com/")), None);
    }

    #[test]
    fn broken_winhttp_data_is_no_proxy() {
        assert_eq!(parse_winhttp(&[]), None);
        assert_eq!(
            parse_winhttp(&[0x28, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]),
            None
        );
        let mut cut = winhttp_blob("proxy:1", "");
        cut.truncate(18);
        assert_eq!(parse_winhttp(&cut), None);
        assert_eq!(
            parse_winhttp(&winhttp_blob("proxy:1", "")),
            Some(("proxy:1".into(), String::new()))
        );
    }

    #[test]
    fn globs() {
        assert!(glob("10.*", "10.1.2.3"));
        assert!(glob("*.corp", "a.b.corp"));
        assert!(glob("*mid*", "xmidy"));
        assert!(!glob("10.*", "110.1.2.3"));
        assert!(!glob("*.corp", "corp"));
    }
}
