//! The one proxy resolution of a run: downloads, the doctor and the diagnosis of a failed
//! download all take their proxy from here, and every output names where it came from.
//!
//! In order: the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`), then on
//! Windows the user's Internet Settings in the registry (`ProxyServer`, per-scheme
//! `http=...;https=...` values, `ProxyOverride` with `<local>`), then the WinHTTP machine proxy
//! (`netsh winhttp set proxy`, what services and SYSTEM use). The Windows settings are parsed
//! from their stored data, so the parsing runs and is tested everywhere.
//!
//! A proxy auto-configuration (a PAC file's `AutoConfigURL`, or WPAD's "Automatically detect
//! settings") is detected but not evaluated: a PAC file is a JavaScript program, and every
//! evaluator found (proxy-watch, proxyparser) embeds a JavaScript engine (boa, QuickJS) to run
//! a script fetched from the network. When no proxy is set but an auto-configuration is, a
//! failed connection says so, with the `HTTPS_PROXY` to set after reading the PAC file.
//! WinHTTP's own auto-proxy (`WinHttpGetProxyForUrl`) is decided at run time and stored
//! nowhere, so only the Internet Settings tell of one.

use serde::{Deserialize, Serialize};
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
    auto: Option<AutoConfig>,
}

/// A proxy auto-configuration that extpy detects but does not evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutoConfig {
    /// The PAC file's URL (`AutoConfigURL`), if one is set.
    pub pac_url: Option<String>,
    /// True when "Automatically detect settings" (WPAD) is on.
    pub auto_detect: bool,
    /// The registry values it was read from.
    pub setting: String,
}

impl AutoConfig {
    /// What is set, in words: `no proxy is set, but a proxy auto-configuration (PAC) file
    /// is set: URL (from ...); extpy does not evaluate PAC files`.
    pub fn summary(&self) -> String {
        let what = match &self.pac_url {
            Some(pac) => format!(
                "a proxy auto-configuration (PAC) file is set: {}",
                super::auth::shown_text(pac)
            ),
            None => "Windows' automatic proxy detection (WPAD) is on".to_string(),
        };
        format!(
            "no proxy is set, but {what} (from {}); extpy does not evaluate PAC files",
            self.setting
        )
    }

    /// How to find the proxy for `url` and set it, for cmd and PowerShell.
    pub fn help(&self, url: &Url) -> String {
        let host = url.host_str().unwrap_or("the download host");
        // WPAD is on by default on Windows, so it is named as a possible cause only.
        let open = match &self.pac_url {
            Some(pac) => format!("open {}", super::auth::shown_text(pac)),
            None => "if this network publishes its proxy by WPAD, open http://wpad/wpad.dat (the file WPAD looks for; if it does not load, WPAD is not the cause)".to_string(),
        };
        format!(
            "{open}, find the `PROXY host:port` it returns for {host}, then set that proxy and run again:\n  cmd:        set HTTPS_PROXY=http://HOST:PORT\n  PowerShell: $env:HTTPS_PROXY = \"http://HOST:PORT\""
        )
    }

    /// [`summary`](Self::summary) and [`help`](Self::help) as the `note:` and `help:` lines
    /// that follow an error about `url`.
    pub fn advice(&self, url: &Url) -> String {
        format!(
            "\n  note: {}\n  help: {}",
            self.summary(),
            self.help(url).replace('\n', "\n  ")
        )
    }
}

/// Several failures' messages with the auto-configuration advice they share said once: the
/// messages without it, and the advice (from its `\n  note:` on), when more than one held
/// the same.
pub(crate) fn shared_advice(messages: Vec<String>) -> (Vec<String>, Option<String>) {
    const MARK: &str = "\n  note: no proxy is set, but ";
    let tails: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.find(MARK).map(|at| &m[at..]))
        .collect();
    let Some(first) = tails.first().map(|t| t.to_string()) else {
        return (messages, None);
    };
    if tails.len() < 2 || tails.iter().any(|t| *t != first) {
        return (messages, None);
    }
    let stripped = messages
        .into_iter()
        .map(|m| {
            m.strip_suffix(first.as_str())
                .map(str::to_string)
                .unwrap_or(m)
        })
        .collect();
    (stripped, Some(first))
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowsSettings {
    /// `ProxyEnable` of the user's Internet Settings.
    pub user_enable: Option<u32>,
    /// `ProxyServer` of the user's Internet Settings.
    pub user_server: Option<String>,
    /// `ProxyOverride` of the user's Internet Settings.
    pub user_override: Option<String>,
    /// The `WinHttpSettings` value (REG_BINARY) that `netsh winhttp set proxy` writes.
    #[serde(deserialize_with = "hex_blob")]
    pub winhttp: Option<Vec<u8>>,
    /// `AutoConfigURL` of the user's Internet Settings (a PAC file).
    pub user_autoconfig: Option<String>,
    /// `DefaultConnectionSettings` (REG_BINARY) of the user's `Internet Settings\Connections`.
    #[serde(deserialize_with = "hex_blob")]
    pub user_connections: Option<Vec<u8>>,
    /// `ProxySettingsPerUser` of the machine's Internet Settings policy: 0 makes the
    /// machine's settings apply to every user.
    pub per_user: Option<u32>,
    /// `AutoConfigURL` of the machine's Internet Settings.
    pub machine_autoconfig: Option<String>,
    /// `DefaultConnectionSettings` of the machine's `Internet Settings\Connections`.
    #[serde(deserialize_with = "hex_blob")]
    pub machine_connections: Option<Vec<u8>>,
}

/// Names a JSON file of stored Windows proxy settings (the fields of [`WindowsSettings`],
/// binary values in hex) read instead of the registry, on any system. A test seam.
pub(crate) const SETTINGS_ENV: &str = "EXTPY_WINDOWS_PROXY_SETTINGS";

const USER_KEY: &str = "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings";
const MACHINE_KEY: &str = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings";

impl ProxyConfig {
    /// No proxy: every connection is direct.
    pub fn direct() -> Self {
        Self {
            source: ProxySource::None,
            http: None,
            https: None,
            bypass: Vec::new(),
            auto: None,
        }
    }

    /// The auto-configuration detected when no proxy is set (it is not evaluated).
    pub fn auto_config(&self) -> Option<&AutoConfig> {
        self.auto.as_ref()
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
                auto: None,
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
        Self {
            auto: auto_config(settings),
            ..Self::direct()
        }
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
        auto: None,
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

/// `PROXY_TYPE_AUTO_PROXY_URL` and `PROXY_TYPE_AUTO_DETECT` of a connection's flags.
const AUTO_PROXY_URL: u32 = 0x04;
const AUTO_DETECT: u32 = 0x08;

/// The flags and the auto-configuration URL of a `DefaultConnectionSettings` value: a DWORD
/// version, a DWORD counter, the DWORD flags at offset 8 (`PROXY_TYPE_*`: 0x02 a proxy,
/// 0x04 an auto-config URL, 0x08 auto-detect), then three DWORD-length-prefixed strings:
/// proxy, bypass list, auto-config URL. The layout is the one .NET Framework's
/// `System.Net.RegBlobWebProxyDataBuilder` (reference source) reads; `None` when the value is
/// too short to hold the flags.
pub(crate) fn parse_connections(blob: &[u8]) -> Option<(u32, Option<String>)> {
    let dword = |at: usize| -> Option<u32> {
        blob.get(at..at.checked_add(4)?)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let flags = dword(8)?;
    let string = |at: usize| -> Option<(String, usize)> {
        let len = usize::try_from(dword(at)?).ok()?;
        let end = at.checked_add(4)?.checked_add(len)?;
        let bytes = blob.get(at + 4..end)?;
        Some((String::from_utf8_lossy(bytes).into_owned(), end))
    };
    let url = string(12)
        .and_then(|(_, next)| string(next))
        .and_then(|(_, next)| string(next))
        .map(|(url, _)| url.trim().to_string())
        .filter(|url| !url.is_empty() && flags & AUTO_PROXY_URL != 0);
    Some((flags, url))
}

/// The PAC file or WPAD detection the settings turn on: the machine's when the policy
/// `ProxySettingsPerUser` is 0, else the user's; `None` when neither is on.
fn auto_config(settings: &WindowsSettings) -> Option<AutoConfig> {
    let (autoconfig, connections, key) = if settings.per_user == Some(0) {
        (
            &settings.machine_autoconfig,
            &settings.machine_connections,
            MACHINE_KEY,
        )
    } else {
        (
            &settings.user_autoconfig,
            &settings.user_connections,
            USER_KEY,
        )
    };
    let parsed = connections.as_deref().and_then(parse_connections);
    let flags = parsed.as_ref().map_or(0, |(f, _)| *f);
    let stored = || format!("DefaultConnectionSettings in {key}\\Connections");
    let (pac_url, setting) = match autoconfig.as_deref().map(str::trim) {
        Some(url) if !url.is_empty() => (Some(url.to_string()), format!("AutoConfigURL in {key}")),
        _ => (parsed.and_then(|(_, url)| url), stored()),
    };
    let auto_detect = flags & AUTO_DETECT != 0;
    if pac_url.is_none() && !auto_detect {
        return None;
    }
    let place = if settings.per_user == Some(0) {
        "the machine registry"
    } else {
        "the user registry"
    };
    Some(AutoConfig {
        setting: format!("{place}: {setting}"),
        pac_url,
        auto_detect,
    })
}

/// A binary registry value given as hex (`"46000000..."`) in the [`SETTINGS_ENV`] file.
fn hex_blob<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .filter(|p| p.len() == 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| serde::de::Error::custom(format!("not hex: {text:?}")))
        })
        .collect::<Result<Vec<u8>, _>>()
        .map(Some)
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

/// The settings of this machine: the [`SETTINGS_ENV`] file when it is set, else the registry
/// on Windows, else none.
fn windows_settings() -> WindowsSettings {
    match std::env::var_os(SETTINGS_ENV) {
        Some(path) if !path.is_empty() => std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default(),
        _ => registry_settings(),
    }
}

#[cfg(windows)]
fn registry_settings() -> WindowsSettings {
    use crate::mechanism::registry;
    use windows_sys::Win32::System::Registry::{HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE};
    let user = "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings";
    let user_connections =
        "Software\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections";
    let machine_settings = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings";
    let machine = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections";
    let policy = "SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings";
    WindowsSettings {
        user_enable: registry::dword(HKEY_CURRENT_USER, user, "ProxyEnable"),
        user_server: registry::string(HKEY_CURRENT_USER, user, "ProxyServer"),
        user_override: registry::string(HKEY_CURRENT_USER, user, "ProxyOverride"),
        winhttp: registry::binary(HKEY_LOCAL_MACHINE, machine, "WinHttpSettings"),
        user_autoconfig: registry::string(HKEY_CURRENT_USER, user, "AutoConfigURL"),
        user_connections: registry::binary(
            HKEY_CURRENT_USER,
            user_connections,
            "DefaultConnectionSettings",
        ),
        per_user: registry::dword(HKEY_LOCAL_MACHINE, policy, "ProxySettingsPerUser"),
        machine_autoconfig: registry::string(HKEY_LOCAL_MACHINE, machine_settings, "AutoConfigURL"),
        machine_connections: registry::binary(
            HKEY_LOCAL_MACHINE,
            machine,
            "DefaultConnectionSettings",
        ),
    }
}

#[cfg(not(windows))]
fn registry_settings() -> WindowsSettings {
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
            ..Default::default()
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
            ..Default::default()
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

    /// What Internet Options stores in `DefaultConnectionSettings`.
    fn connections_blob(flags: u32, server: &str, bypass: &str, pac: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(0x46u32.to_le_bytes());
        b.extend(12u32.to_le_bytes());
        b.extend(flags.to_le_bytes());
        for s in [server, bypass, pac] {
            b.extend((s.len() as u32).to_le_bytes());
            b.extend(s.as_bytes());
        }
        b.extend([0u8; 32]);
        b
    }

    #[test]
    fn connection_settings_give_the_auto_config_url_and_auto_detect() {
        let pac = "http://pac.corp.example/proxy.pac";
        assert_eq!(
            parse_connections(&connections_blob(0x05, "", "", pac)),
            Some((0x05, Some(pac.into())))
        );
        assert_eq!(
            parse_connections(&connections_blob(0x09, "", "", "")),
            Some((0x09, None))
        );
        // A URL left behind after "Use automatic configuration script" was unticked.
        assert_eq!(
            parse_connections(&connections_blob(0x01, "p:1", "<local>", pac)),
            Some((0x01, None))
        );
        // Malformed: too short for the flags, or a length past the end.
        assert_eq!(parse_connections(&[]), None);
        assert_eq!(parse_connections(&[0x46, 0, 0, 0, 1, 0, 0, 0, 5]), None);
        let mut cut = connections_blob(0x0d, "", "", pac);
        cut.truncate(30);
        assert_eq!(parse_connections(&cut), Some((0x0d, None)));
        let mut huge = connections_blob(0x05, "", "", "");
        huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(parse_connections(&huge), Some((0x05, None)));
    }

    #[test]
    fn a_pac_file_or_wpad_is_reported_when_no_proxy_is_set() {
        let pac = "http://pac.corp.example/proxy.pac";
        let mut settings = WindowsSettings {
            user_autoconfig: Some(pac.into()),
            ..Default::default()
        };
        let c = ProxyConfig::resolve_from(&env(&[]), &settings);
        assert_eq!(c.source, ProxySource::None);
        let auto = c.auto_config().unwrap();
        assert_eq!(auto.pac_url.as_deref(), Some(pac));
        assert!(!auto.auto_detect);
        assert_eq!(
            auto.setting,
            format!("the user registry: AutoConfigURL in {USER_KEY}")
        );
        let advice = auto.advice(&url("https://files.example.com/x"));
        for part in [
            "note: no proxy is set, but a proxy auto-configuration (PAC) file is set: http://pac.corp.example/proxy.pac",
            "extpy does not evaluate PAC files",
            "find the `PROXY host:port` it returns for files.example.com",
            "cmd:        set HTTPS_PROXY=http://HOST:PORT",
            "PowerShell: $env:HTTPS_PROXY = \"http://HOST:PORT\"",
        ] {
            assert!(advice.contains(part), "{part}\n{advice}");
        }

        // Only the connection settings: the URL from the blob, and WPAD.
        settings.user_autoconfig = None;
        settings.user_connections = Some(connections_blob(0x0d, "", "", pac));
        let c = ProxyConfig::resolve_from(&env(&[]), &settings);
        let auto = c.auto_config().unwrap();
        assert_eq!(auto.pac_url.as_deref(), Some(pac));
        assert!(auto.auto_detect);
        assert_eq!(
            auto.setting,
            format!("the user registry: DefaultConnectionSettings in {USER_KEY}\\Connections")
        );
        settings.user_connections = Some(connections_blob(0x09, "", "", ""));
        let c = ProxyConfig::resolve_from(&env(&[]), &settings);
        let auto = c.auto_config().unwrap();
        assert_eq!(auto.pac_url, None);
        assert!(
            auto.summary()
                .contains("automatic proxy detection (WPAD) is on")
        );
        assert!(
            auto.help(&url("https://h/"))
                .contains("http://wpad/wpad.dat")
        );

        // Direct only, absent values, a malformed blob: nothing to report.
        for blob in [
            Some(connections_blob(0x01, "", "", "")),
            None,
            Some(vec![1, 2]),
        ] {
            settings.user_connections = blob;
            let c = ProxyConfig::resolve_from(&env(&[]), &settings);
            assert_eq!(c.auto_config(), None);
        }
        settings.user_autoconfig = Some("  ".into());
        assert_eq!(
            ProxyConfig::resolve_from(&env(&[]), &settings).auto_config(),
            None
        );
    }

    #[test]
    fn the_machine_policy_makes_the_machine_auto_config_count() {
        let settings = WindowsSettings {
            user_autoconfig: Some("http://user/p.pac".into()),
            per_user: Some(0),
            machine_autoconfig: Some("http://machine/p.pac".into()),
            ..Default::default()
        };
        let c = ProxyConfig::resolve_from(&env(&[]), &settings);
        let auto = c.auto_config().unwrap();
        assert_eq!(auto.pac_url.as_deref(), Some("http://machine/p.pac"));
        assert_eq!(
            auto.setting,
            format!("the machine registry: AutoConfigURL in {MACHINE_KEY}")
        );
        let machine_blob = WindowsSettings {
            per_user: Some(0),
            machine_connections: Some(connections_blob(0x05, "", "", "http://m/w.pac")),
            user_autoconfig: Some("http://user/p.pac".into()),
            ..Default::default()
        };
        let c = ProxyConfig::resolve_from(&env(&[]), &machine_blob);
        assert_eq!(
            c.auto_config().unwrap().pac_url.as_deref(),
            Some("http://m/w.pac")
        );
        // Any other policy value: the user's settings.
        let per_user = WindowsSettings {
            per_user: Some(1),
            ..settings
        };
        let c = ProxyConfig::resolve_from(&env(&[]), &per_user);
        assert_eq!(
            c.auto_config().unwrap().pac_url.as_deref(),
            Some("http://user/p.pac")
        );
    }

    #[test]
    fn an_explicit_proxy_hides_the_auto_config() {
        let settings = WindowsSettings {
            user_autoconfig: Some("http://pac/p.pac".into()),
            user_connections: Some(connections_blob(0x0f, "", "", "http://pac/p.pac")),
            ..Default::default()
        };
        let c = ProxyConfig::resolve_from(&env(&[("HTTPS_PROXY", "http://p:3128")]), &settings);
        assert_eq!(c.auto_config(), None);
        let user = WindowsSettings {
            user_enable: Some(1),
            user_server: Some("userproxy:8080".into()),
            ..settings.clone()
        };
        assert_eq!(
            ProxyConfig::resolve_from(&env(&[]), &user).auto_config(),
            None
        );
        let machine = WindowsSettings {
            winhttp: Some(winhttp_blob("machineproxy:3128", "")),
            ..settings
        };
        assert_eq!(
            ProxyConfig::resolve_from(&env(&[]), &machine).auto_config(),
            None
        );
    }

    #[test]
    fn shared_advice_is_said_once() {
        let auto = AutoConfig {
            pac_url: Some("http://pac/p.pac".into()),
            auto_detect: false,
            setting: "the user registry: AutoConfigURL".into(),
        };
        let advice = auto.advice(&url("https://h/"));
        let (messages, once) = shared_advice(vec![format!("a{advice}"), format!("b{advice}")]);
        assert_eq!(messages, ["a", "b"]);
        assert_eq!(once.as_deref(), Some(advice.as_str()));
        // One message, or different advice (another host): left as they are.
        let one = vec![format!("a{advice}"), "b".to_string()];
        assert_eq!(shared_advice(one.clone()), (one, None));
        let other = auto.advice(&url("https://other/"));
        let two = vec![format!("a{advice}"), format!("b{other}")];
        assert_eq!(shared_advice(two.clone()), (two, None));
    }

    #[test]
    fn the_settings_file_gives_binary_values_in_hex() {
        let s: WindowsSettings = serde_json::from_str(
            r#"{"user_autoconfig": "http://pac/p.pac", "user_connections": "46000000 0c000000 09000000"}"#,
        )
        .unwrap();
        assert_eq!(s.user_autoconfig.as_deref(), Some("http://pac/p.pac"));
        assert_eq!(
            s.user_connections.as_deref().and_then(parse_connections),
            Some((9, None))
        );
        assert!(serde_json::from_str::<WindowsSettings>(r#"{"winhttp": "4g"}"#).is_err());
        assert!(serde_json::from_str::<WindowsSettings>(r#"{"winhttp": "460"}"#).is_err());
        assert!(serde_json::from_str::<WindowsSettings>(r#"{"pac": "x"}"#).is_err());
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
