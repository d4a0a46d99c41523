//! Logins for private mirrors, and the one way a URL is shown.
//!
//! A mirror is often given as `https://user:token@mirror/simple` (pip, uv and Artifactory
//! document the form). The login is taken out of the URL where the setting is read
//! ([`split_login`]), so no URL that extpy keeps, prints, records or writes into a file holds
//! it; the client adds it back, as Basic authorization, to requests for the origin (scheme,
//! host and port) it was given for, and to no other. The HTTP client drops the header when a
//! redirect leaves that origin. Logins also come from `EXTPY_INDEX_USERNAME` and
//! `EXTPY_INDEX_PASSWORD` (for the index) and from a netrc file (`NETRC`, else `~/.netrc`, or
//! `_netrc` in the user's profile on Windows), by host, as curl, pip and uv read it.
//!
//! Whatever URL is shown (a message, an error, a report) goes through [`Shown`], which
//! replaces a user info it still holds by `user:****@`.

use std::fmt;
use std::path::{Path, PathBuf};

use url::Url;

use crate::mechanism::limits;

/// The largest netrc file read.
pub(crate) const MAX_NETRC: u64 = 1 << 20;

/// A URL as it may be shown: user info becomes `user:****@`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shown<'a>(pub(crate) &'a Url);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        if url.username().is_empty() && url.password().is_none() {
            return f.write_str(url.as_str());
        }
        let mut bare = url.clone();
        let _ = bare.set_password(None);
        let _ = bare.set_username("");
        let text = bare.as_str();
        let at = text.find("://").map(|i| i + 3).unwrap_or(0);
        let user = if url.username().is_empty() {
            "****"
        } else {
            url.username()
        };
        write!(f, "{}{user}:****@{}", &text[..at], &text[at..])
    }
}

/// Shows a URL without its password.
pub(crate) fn shown(url: &Url) -> Shown<'_> {
    Shown(url)
}

/// A setting that may be a URL, as it may be shown: the same as [`Shown`] when it parses,
/// else everything between `://` and the last `@` of the authority is hidden.
pub(crate) fn shown_text(value: &str) -> String {
    if let Ok(url) = Url::parse(value) {
        // `proxy:8080` parses as a URL of scheme `proxy`; show such a value as it is.
        if url.has_host() {
            let shown = shown(&url).to_string();
            // Keep the value's own form (`http://proxy:3128` has no trailing slash).
            return if value.ends_with('/') {
                shown
            } else {
                shown.trim_end_matches('/').to_string()
            };
        }
    }
    let start = value.find("://").map(|i| i + 3).unwrap_or(0);
    let end = value[start..]
        .find(['/', '?', '#'])
        .map(|i| start + i)
        .unwrap_or(value.len());
    match value[start..end].rfind('@') {
        Some(at) => format!("{}****@{}", &value[..start], &value[start + at + 1..]),
        None => value.to_string(),
    }
}

/// A user name and password; never shown.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Login {
    username: String,
    password: Option<String>,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Login({}:****)", self.username)
    }
}

impl Login {
    /// A login.
    pub(crate) fn new(username: &str, password: Option<&str>) -> Self {
        Self {
            username: username.to_string(),
            password: password.map(str::to_string),
        }
    }
}

/// Takes the user info out of `url`; returns it, percent-decoded, if there was one.
pub(crate) fn split_login(url: &mut Url) -> Option<Login> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let login = Login {
        username: decode(url.username()),
        password: url.password().map(decode),
    };
    let _ = url.set_password(None);
    let _ = url.set_username("");
    Some(login)
}

/// Scheme, host and port: the one place a login given for a URL is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn of(url: &Url) -> Option<Self> {
        Some(Self {
            scheme: url.scheme().to_string(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default(),
        })
    }
}

/// The logins of this run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Logins {
    by_origin: Vec<(Origin, Login)>,
    /// netrc `machine` entries (host → login) and its `default`, if any.
    netrc: Vec<(String, Login)>,
    netrc_default: Option<Login>,
}

/// A netrc file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the netrc file {}: {reason}\n  help: fix the file, or point NETRC at another one", path.display())]
pub(crate) struct NetrcError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

impl Logins {
    /// Adds the login of `url`'s origin (the first one given for an origin wins).
    pub(crate) fn add(&mut self, url: &Url, login: Login) {
        if let Some(origin) = Origin::of(url)
            && !self.by_origin.iter().any(|(o, _)| *o == origin)
        {
            self.by_origin.push((origin, login));
        }
    }

    /// Reads the netrc file at `path`.
    pub(crate) fn read_netrc(&mut self, path: &Path) -> Result<(), NetrcError> {
        let err = |reason: String| NetrcError {
            path: path.to_path_buf(),
            reason,
        };
        let text = limits::read_regular(path, MAX_NETRC).map_err(|e| err(e.to_string()))?;
        let parsed = String::from_utf8_lossy(&text)
            .parse::<netrc::Netrc>()
            .map_err(|e| err(e.to_string()))?;
        let mut hosts: Vec<_> = parsed.hosts.into_iter().collect();
        hosts.sort_by(|a, b| a.0.cmp(&b.0));
        for (host, a) in hosts {
            let login = Login::new(
                &a.login,
                Some(a.password.as_str()).filter(|p| !p.is_empty()),
            );
            if host == "default" {
                self.netrc_default = Some(login);
            } else {
                self.netrc.push((host.to_ascii_lowercase(), login));
            }
        }
        Ok(())
    }

    /// The netrc file to read: `NETRC` when set, else the one in the user's home (`.netrc`,
    /// then `_netrc` on Windows), if it exists.
    pub(crate) fn netrc_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
        if let Some(p) = env("NETRC").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let home = dirs::home_dir()?;
        let names: &[&str] = if cfg!(windows) {
            &[".netrc", "_netrc"]
        } else {
            &[".netrc"]
        };
        names.iter().map(|n| home.join(n)).find(|p| p.is_file())
    }

    /// The login to send with a request for `url`: the one given for its origin, else the
    /// netrc entry of its host, else the netrc `default`.
    pub(crate) fn for_url(&self, url: &Url) -> Option<&Login> {
        let origin = Origin::of(url)?;
        if let Some((_, login)) = self.by_origin.iter().find(|(o, _)| *o == origin) {
            return Some(login);
        }
        self.netrc
            .iter()
            .find(|(h, _)| *h == origin.host)
            .map(|(_, l)| l)
            .or(self.netrc_default.as_ref())
    }

    /// Adds the login to `req` when one is known for `url`.
    pub(crate) fn authorize(
        &self,
        req: reqwest::blocking::RequestBuilder,
        url: &Url,
    ) -> reqwest::blocking::RequestBuilder {
        match self.for_url(url) {
            Some(l) => req.basic_auth(&l.username, l.password.as_deref()),
            None => req,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn shown_hides_the_password_and_keeps_the_user() {
        let u = url("https://u:SECRET@mirror.example:8443/simple/");
        assert_eq!(
            shown(&u).to_string(),
            "https://u:****@mirror.example:8443/simple/"
        );
        let token_only = url("https://:SECRET@mirror.example/simple/");
        assert_eq!(
            shown(&token_only).to_string(),
            "https://****:****@mirror.example/simple/"
        );
        let plain = url("https://mirror.example/simple/");
        assert_eq!(shown(&plain).to_string(), "https://mirror.example/simple/");
    }

    #[test]
    fn shown_text_hides_what_does_not_parse_too() {
        assert_eq!(
            shown_text("http://me:pw@proxy:3128"),
            "http://me:****@proxy:3128"
        );
        assert_eq!(
            shown_text("https://u:SE CRET@bad host/simple"),
            "https://****@bad host/simple"
        );
        assert_eq!(shown_text("proxy:8080"), "proxy:8080");
        assert_eq!(
            shown_text("not a url at all"),
            "not a url at all".to_string()
        );
    }

    #[test]
    fn a_login_leaves_the_url_and_is_decoded() {
        let mut u = url("https://us%40er:p%3Ass+w@mirror.example/simple/");
        let login = split_login(&mut u).unwrap();
        assert_eq!(u.as_str(), "https://mirror.example/simple/");
        assert_eq!(login, Login::new("us@er", Some("p:ss+w")));
        assert!(!format!("{login:?}").contains("p:ss"));
        assert_eq!(split_login(&mut u), None);
    }

    #[test]
    fn a_login_goes_to_its_origin_only() {
        let mut logins = Logins::default();
        logins.add(
            &url("https://mirror.example/simple/"),
            Login::new("u", Some("pw")),
        );
        assert!(
            logins
                .for_url(&url("https://mirror.example/files/a.whl"))
                .is_some()
        );
        assert!(
            logins
                .for_url(&url("https://MIRROR.example:443/x"))
                .is_some()
        );
        for other in [
            "https://files.example/a.whl",
            "https://mirror.example:8443/simple/",
            "http://mirror.example/simple/",
            "https://mirror.example.evil/simple/",
        ] {
            assert!(logins.for_url(&url(other)).is_none(), "{other}");
        }
    }

    #[test]
    fn netrc_gives_logins_by_host_and_a_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netrc");
        std::fs::write(
            &path,
            "machine mirror.example login alice password \"s3 cret\"\n\ndefault login anon password x\n",
        )
        .unwrap();
        let mut logins = Logins::default();
        logins.read_netrc(&path).unwrap();
        assert_eq!(
            logins.for_url(&url("https://mirror.example:8443/simple/")),
            Some(&Login::new("alice", Some("s3 cret")))
        );
        assert_eq!(
            logins.for_url(&url("https://other.example/")),
            Some(&Login::new("anon", Some("x")))
        );
        // A login given for the origin wins over the netrc file.
        logins.add(&url("https://mirror.example/"), Login::new("bob", None));
        assert_eq!(
            logins.for_url(&url("https://mirror.example/simple/")),
            Some(&Login::new("bob", None))
        );
    }

    #[test]
    fn an_unusable_netrc_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut logins = Logins::default();
        let err = logins.read_netrc(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a folder") && err.contains("help:"), "{err}");
        let bad = dir.path().join("netrc");
        std::fs::write(&bad, "machine\n").unwrap();
        let err = logins.read_netrc(&bad).unwrap_err().to_string();
        assert!(err.starts_with("cannot use the netrc file"), "{err}");
    }

    #[test]
    fn netrc_path_prefers_the_variable() {
        let env = |n: &str| (n == "NETRC").then(|| "/x/netrc".to_string());
        assert_eq!(Logins::netrc_path(&env), Some(PathBuf::from("/x/netrc")));
    }
}
